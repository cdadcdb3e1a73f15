"""One cell through jupyter_client, timed from execute_request to the kernel's idle, with what it
sent on iopub: the benchmarks' drivers time every cell this way.
"""
import re
import time

TIMEOUT = 300


class CellRun:
    """What a cell sent on iopub, timed from execute_request."""

    def __init__(self):
        self.elapsed = 0.0
        self.first_stream_s = None
        self.messages = 0
        self.stream_messages = 0
        self.stream_chars = 0
        self.outputs = []  # text/plain of execute_result / display_data, and stream text (first 200 chars)
        self.error = None


def run_cell(kc, code, timeout=TIMEOUT):
    """Runs `code`; returns a CellRun once the kernel is idle again and the reply is in."""
    run = CellRun()
    started = time.perf_counter()
    msg_id = kc.execute(code)
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        now = time.perf_counter() - started
        kind = msg["msg_type"]
        if kind == "status":
            if msg["content"]["execution_state"] == "idle":
                run.elapsed = now
                break
            continue
        run.messages += 1
        if kind == "stream":
            run.stream_messages += 1
            run.stream_chars += len(msg["content"]["text"])
            if run.first_stream_s is None:
                run.first_stream_s = now
            if len(run.outputs) < 20:
                run.outputs.append(msg["content"]["text"][:200])
        elif kind in ("execute_result", "display_data"):
            run.outputs.append(msg["content"]["data"].get("text/plain", ""))
        elif kind == "error":
            run.error = "%s: %s" % (msg["content"]["ename"], msg["content"]["evalue"])
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
    if run.error is None and reply["content"]["status"] != "ok":
        run.error = str(reply["content"])
    return run


def shown(text):
    """An output as the user reads it: no colours, no `Out[0:3]: ` prompt (ipyparallel's), no line end."""
    return re.sub(r"^Out\[[^\]]*\]: ", "", re.sub(r"\x1b\[[0-9;]*m", "", text)).strip()


def checked(kc, code, expect=None, timeout=TIMEOUT):
    """run_cell that fails loudly when the cell fails or no output is exactly `expect`
    (a result's text/plain, or a stream's text without its line end)."""
    run = run_cell(kc, code, timeout)
    if run.error:
        raise RuntimeError("%r failed: %s" % (code[:80], run.error))
    if expect is not None and not any(shown(out) == expect for out in run.outputs):
        raise RuntimeError("%r: expected an output %r, got %r" % (code[:80], expect, run.outputs))
    return run
