"""A thin layer over jupyter_client for farlab's protocol tests.

It starts a real kernel (``start_new_kernel``) and keeps every shell reply and iopub message it
reads, filed by the request (parent msg_id) they answer, so a test can send several requests
without waiting and then look at each one's reply and outputs independently.
"""
import json
import os
import queue
import time
import unittest
from collections import defaultdict

from jupyter_client.manager import start_new_kernel

KERNEL_NAME = os.environ.get("FARLAB_KERNEL_NAME", "farlab")
# Generous: the 2-core test machine is shared, and the first cell loads the TypeScript compiler.
TIMEOUT = float(os.environ.get("FARLAB_TEST_TIMEOUT", "60"))


def parent_id(msg):
    return msg.get("parent_header", {}).get("msg_id")


def of_type(outputs, msg_type):
    return [m["content"] for m in outputs if m["msg_type"] == msg_type]


def stream_text(outputs, name="stdout"):
    return "".join(c["text"] for c in of_type(outputs, "stream") if c["name"] == name)


def describe(reply, outputs):
    return json.dumps({"reply": reply, "iopub": [(m["msg_type"], m["content"]) for m in outputs]}, indent=1)[:4000]


class KernelSession:
    def __init__(self, kernel_name=KERNEL_NAME, startup_timeout=TIMEOUT):
        self.km, self.kc = start_new_kernel(kernel_name=kernel_name, startup_timeout=startup_timeout)
        self.shell_replies = {}
        self.iopub = defaultdict(list)
        self.control_replies = {}
        # The first cell loads the TypeScript compiler; pay for it once, with room for a busy machine.
        content, _ = self.run("0", timeout=2 * TIMEOUT)
        assert content["status"] == "ok", f"warm-up cell failed: {content}"

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    # ---- shell -------------------------------------------------------------------------

    def execute(self, code, **kwargs):
        """Send an execute_request without waiting; returns its msg_id."""
        return self.kc.execute(code, **kwargs)

    def reply(self, msg_id, timeout=TIMEOUT):
        """The shell reply to request msg_id (other replies read meanwhile are kept)."""
        return self._await_reply("shell", self.kc.get_shell_msg, self.shell_replies, msg_id, timeout)

    def drain_shell(self, timeout):
        """Read shell replies for up to `timeout` seconds (for asserting that none came)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                msg = self.kc.get_shell_msg(timeout=remaining)
            except queue.Empty:
                return
            self.shell_replies[parent_id(msg)] = msg

    # ---- iopub -------------------------------------------------------------------------

    def _read_iopub(self, timeout):
        msg = self.kc.get_iopub_msg(timeout=timeout)
        self.iopub[parent_id(msg)].append(msg)
        return msg

    def wait_iopub(self, msg_id, predicate, timeout=TIMEOUT, what="iopub message"):
        """The first iopub message of request msg_id that satisfies predicate."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            msgs = self.iopub[msg_id]
            for msg in msgs[seen:]:
                if predicate(msg):
                    return msg
            seen = len(msgs)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [(m["msg_type"], m["content"]) for m in msgs]
                raise AssertionError(f"no {what} for {msg_id} within {timeout}s; got {kinds}")
            try:
                self._read_iopub(remaining)
            except queue.Empty:
                pass

    def outputs(self, msg_id, timeout=TIMEOUT):
        """All iopub messages of request msg_id between busy and idle (exclusive)."""
        self.wait_iopub(
            msg_id,
            lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle",
            timeout,
            what="status idle",
        )
        msgs = self.iopub[msg_id]
        states = [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"]
        assert states[0] == "busy", f"first status of {msg_id} was {states}"
        return [m for m in msgs if m["msg_type"] != "status"]

    def run(self, code, timeout=TIMEOUT, **kwargs):
        """Execute and wait: (reply content, iopub outputs other than status/execute_input)."""
        msg_id = self.execute(code, **kwargs)
        reply = self.reply(msg_id, timeout)
        outputs = self.outputs(msg_id, timeout)
        return reply["content"], [m for m in outputs if m["msg_type"] != "execute_input"]

    def result_text(self, code, **kwargs):
        """text/plain of the execute_result of a cell that must succeed."""
        content, outputs = self.run(code, **kwargs)
        assert content["status"] == "ok", f"{code!r} failed: {content}"
        results = [m for m in outputs if m["msg_type"] == "execute_result"]
        assert len(results) == 1, f"{code!r}: expected one execute_result, got {outputs}"
        return results[0]["content"]["data"]["text/plain"]

    # ---- control -----------------------------------------------------------------------

    def send_control(self, msg_type, content=None):
        msg = self.kc.session.msg(msg_type, content or {})
        self.kc.control_channel.send(msg)
        return msg["header"]["msg_id"]

    def control_reply(self, msg_id, timeout=TIMEOUT):
        """The control reply to request msg_id (other replies read meanwhile are kept)."""
        return self._await_reply("control", self.kc.get_control_msg, self.control_replies, msg_id, timeout)

    # ---- replies -----------------------------------------------------------------------

    @staticmethod
    def _await_reply(channel, get_msg, replies, msg_id, timeout):
        """Read `channel` with get_msg, filing every reply in `replies` by its request, until the
        reply to msg_id is there."""
        deadline = time.monotonic() + timeout
        while msg_id not in replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {channel} reply to {msg_id} within {timeout}s")
            try:
                msg = get_msg(timeout=remaining)
            except queue.Empty:
                continue
            replies[parent_id(msg)] = msg
        return replies[msg_id]


class SharedKernel:
    """One KernelSession for every test of a module (start-up is the slow part).

    A test module writes

        KERNEL = SharedKernel()
        setUpModule, tearDownModule = KERNEL.start, KERNEL.close

    and its tests use KERNEL like the KernelSession it holds (run, execute, kc, km, ...).
    """

    def __init__(self):
        self.session = None

    def start(self):
        self.session = KernelSession()

    def close(self):
        if self.session is not None:
            self.session.close()
            self.session = None

    def __getattr__(self, name):
        # Only reached for what SharedKernel itself does not have: the session's attributes.
        if self.session is None:
            raise AttributeError(f"no kernel to give {name!r}: SharedKernel.start() runs in setUpModule")
        return getattr(self.session, name)


class KernelTestCase(unittest.TestCase):
    """A TestCase whose tests share one KernelSession, self.k, started for the class (a kernel of
    its own: state other classes left behind cannot reach it) and closed after it."""

    @classmethod
    def setUpClass(cls):
        cls.k = KernelSession()

    @classmethod
    def tearDownClass(cls):
        cls.k.close()
