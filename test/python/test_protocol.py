"""farlab's Jupyter protocol behaviour, driven by Debian's jupyter_client (a real client, real
ZeroMQ sockets, a real kernel process started from the installed kernelspec).

    JUPYTER_PATH=<prefix>/share/jupyter /usr/bin/python3 -m unittest -v test_protocol
"""
import unittest
import uuid

import zmq
from jupyter_client.session import Session

from kernel_session import TIMEOUT, KernelTestCase

# The stdin helper of local cells: a global `input(prompt?, { password? })` returning a promise,
# like Python's input() (kernel/executor/farlab-typings.ts declares it).
INPUT_CELL = 'const answer = await input("Your name? "); "hello " + answer'


def error_of(outputs):
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1, f"expected one error output, got {outputs}"
    return errors[0]


class ProtocolTests(KernelTestCase):
    """Requests that leave the kernel idle and healthy; one kernel for all of them."""

    # ---- kernel_info -------------------------------------------------------------------

    def test_kernel_info_has_full_language_info(self):
        msg_id = self.k.kc.kernel_info()
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["status"], "ok")
        self.assertTrue(content["protocol_version"].startswith("5."), content["protocol_version"])
        self.assertEqual(content["implementation"], "farlab")
        self.assertTrue(content["implementation_version"])
        info = content["language_info"]
        self.assertEqual(info["name"], "typescript")
        self.assertEqual(info["file_extension"], ".ts")
        self.assertRegex(info["version"], r"^\d+\.\d+")
        for field in ("mimetype", "pygments_lexer", "codemirror_mode"):
            self.assertIn(field, info, f"language_info lacks {field}: {info}")
        self.assertIn("typescript", info["mimetype"])

    # ---- stop_on_error -----------------------------------------------------------------

    def test_stop_on_error_aborts_only_requests_queued_at_the_error(self):
        # The first cell takes a moment before it fails, so the next two are certainly queued
        # in the kernel when the error happens.
        failing = self.k.execute(
            'await new Promise((r) => setTimeout(r, 300)); throw new Error("stop here")'
        )
        queued_1 = self.k.execute("(globalThis as any).abortedSideEffect = 1")
        queued_2 = self.k.execute("2 + 2")
        self.assertEqual(self.k.reply(failing)["content"]["status"], "error")
        self.assertEqual(self.k.reply(queued_1)["content"]["status"], "aborted")
        self.assertEqual(self.k.reply(queued_2)["content"]["status"], "aborted")
        # Aborted requests still go busy -> idle, and publish no outputs.
        for msg_id in (queued_1, queued_2):
            outputs = self.k.outputs(msg_id)
            self.assertEqual([m for m in outputs if m["msg_type"] != "execute_input"], [])
        # A request sent after the error runs, and the aborted cell never ran.
        self.assertEqual(
            self.k.result_text("typeof (globalThis as any).abortedSideEffect"), "'undefined'"
        )

    def test_stop_on_error_false_lets_the_queue_run(self):
        failing = self.k.execute('throw new Error("keep going")', stop_on_error=False)
        following = self.k.execute("40 + 2")
        self.assertEqual(self.k.reply(failing)["content"]["status"], "error")
        self.assertEqual(self.k.reply(following)["content"]["status"], "ok")
        results = [m for m in self.k.outputs(following) if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")

    # ---- execution_count ---------------------------------------------------------------

    def test_execution_count_rules(self):
        first, outputs = self.k.run("1")
        n = first["execution_count"]
        result = [m for m in outputs if m["msg_type"] == "execute_result"][0]
        self.assertEqual(result["content"]["execution_count"], n)

        silent_id = self.k.execute("let silentlySet = 5; silentlySet", silent=True)
        self.assertEqual(self.k.reply(silent_id)["content"]["status"], "ok")
        silent_outputs = self.k.outputs(silent_id)
        self.assertEqual(silent_outputs, [], "a silent cell publishes no execute_input nor result")

        unstored, _ = self.k.run("2", store_history=False)
        self.assertEqual(unstored["status"], "ok")

        second, _ = self.k.run("3")
        self.assertEqual(second["execution_count"], n + 1, "silent/store_history=false must not count")

        failed, _ = self.k.run('throw new Error("counted")')
        self.assertEqual(failed["status"], "error")
        self.assertEqual(failed["execution_count"], n + 2, "an error cell is counted")
        third, outputs = self.k.run("silentlySet")
        self.assertEqual(third["execution_count"], n + 3)
        # The silent cell did run: its declaration is visible.
        result = [m for m in outputs if m["msg_type"] == "execute_result"][0]
        self.assertEqual(result["content"]["data"]["text/plain"], "5")

    def test_execute_input_carries_code_and_count(self):
        msg_id = self.k.execute("const echoed = 7")
        reply = self.k.reply(msg_id)["content"]
        inputs = [m for m in self.k.outputs(msg_id) if m["msg_type"] == "execute_input"]
        self.assertEqual(len(inputs), 1)
        self.assertEqual(inputs[0]["content"]["code"], "const echoed = 7")
        self.assertEqual(inputs[0]["content"]["execution_count"], reply["execution_count"])

    # ---- history -----------------------------------------------------------------------

    def test_history_is_kept_across_cells(self):
        self.k.run("const historyA = 20")
        self.k.run("historyA + 1", store_history=False)
        self.k.run("historyA * 2")
        msg_id = self.k.kc.history(hist_access_type="tail", n=2, output=False, raw=True)
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["status"], "ok")
        self.assertEqual([h[2] for h in content["history"]], ["const historyA = 20", "historyA * 2"])
        lines = [h[1] for h in content["history"]]
        self.assertEqual(lines[1], lines[0] + 1)

        msg_id = self.k.kc.history(hist_access_type="tail", n=1, output=True, raw=True)
        (entry,) = self.k.reply(msg_id)["content"]["history"]
        source, output = entry[2]
        self.assertEqual(source, "historyA * 2")
        self.assertIn("40", str(output))

    # ---- comms -------------------------------------------------------------------------

    def test_comm_info(self):
        msg_id = self.k.kc.comm_info()
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["status"], "ok")
        self.assertIsInstance(content["comms"], dict)

    def test_comm_open_to_unknown_target_is_closed(self):
        comm_id = uuid.uuid4().hex
        msg = self.k.kc.session.msg(
            "comm_open", {"comm_id": comm_id, "target_name": "no.such.target", "data": {}}
        )
        self.k.kc.shell_channel.send(msg)
        closed = self.k.wait_iopub(
            msg["header"]["msg_id"],
            lambda m: m["msg_type"] == "comm_close",
            what="comm_close",
        )
        self.assertEqual(closed["content"]["comm_id"], comm_id)

    # ---- complete / inspect / is_complete (cursor positions in code points) ------------

    def test_complete_cursor_positions_are_code_points(self):
        # Four astral characters (two UTF-16 units each) before the cursor: a kernel counting
        # UTF-16 units would look 4 characters too early ("Mat") and answer for the wrong text.
        code = 'const smileys = "😀😀😀😀"; Math.ma'
        msg_id = self.k.kc.complete(code, len(code))
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["status"], "ok")
        self.assertEqual(content["cursor_end"], len(code))
        completed = {
            code[: content["cursor_start"]] + m + code[content["cursor_end"] :]
            for m in content["matches"]
        }
        self.assertIn('const smileys = "😀😀😀😀"; Math.max', completed)

    def test_complete_in_the_middle_of_a_cell(self):
        code = '"😀😀"; Math.ma\nconst after = 1'
        cursor = code.index("\n")
        msg_id = self.k.kc.complete(code, cursor)
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["cursor_end"], cursor)
        completed = {code[: content["cursor_start"]] + m for m in content["matches"]}
        self.assertIn('"😀😀"; Math.max', completed)

    def test_inspect_cursor_position_is_code_points(self):
        self.k.run('const alphaVar = 1; const bv: string = "b"')
        # Cursor at the end, after "bv". Four code points earlier is "alphaVar" (after its last
        # letter), where a kernel counting UTF-16 units would look.
        code = '"😀😀😀😀"; alphaVar+ bv'
        msg_id = self.k.kc.inspect(code, len(code))
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["status"], "ok")
        self.assertTrue(content["found"], content)
        text = content["data"]["text/plain"]
        self.assertIn("bv", text)
        self.assertIn("string", text)
        self.assertNotIn("alphaVar", text)

    def test_inspect_nothing_found(self):
        code = "   "
        msg_id = self.k.kc.inspect(code, 1)
        content = self.k.reply(msg_id)["content"]
        self.assertEqual(content["status"], "ok")
        self.assertFalse(content["found"])

    def test_is_complete(self):
        cases = {
            "1 + 1": "complete",
            "function f() {": "incomplete",
            "const xs = [1,": "incomplete",
            ")": "invalid",
        }
        for code, status in cases.items():
            with self.subTest(code=code):
                msg_id = self.k.kc.is_complete(code)
                content = self.k.reply(msg_id)["content"]
                self.assertEqual(content["status"], status)
                if status == "incomplete":
                    self.assertIsInstance(content.get("indent"), str)

    # ---- magics: parse errors are error cells, nothing runs -----------------------------

    def magic_error(self, code):
        content, outputs = self.k.run(code)
        self.assertEqual(content["status"], "error", f"{code!r} should fail: {content}")
        error = error_of(outputs)
        self.assertEqual(content["ename"], error["ename"])
        return error

    def test_malformed_remote_option_is_a_usage_error(self):
        error = self.magic_error("%%remote gpu=\n1 + 1")
        self.assertEqual(error["ename"], "MagicUsageError")
        self.assertIn("gpu", error["evalue"])

    def test_unknown_remote_option_names_the_nearest(self):
        error = self.magic_error("%%remote gpus=A100\n1 + 1")
        self.assertEqual(error["ename"], "MagicUsageError")
        self.assertIn("gpus", error["evalue"])
        self.assertIn("gpu", error["evalue"].replace("gpus", ""))

    def test_bad_enum_value_lists_the_valid_ones(self):
        error = self.magic_error("%%remote lang=ruby\nputs 1")
        self.assertEqual(error["ename"], "MagicUsageError")
        for accepted in ("ts", "python", "sh"):
            self.assertIn(accepted, error["evalue"])

    def test_unknown_magic_is_a_usage_error(self):
        error = self.magic_error("%nosuch")
        self.assertEqual(error["ename"], "MagicUsageError")
        self.assertIn("nosuch", error["evalue"])
        self.assertIn("remote", error["evalue"], "the valid magics are listed")

    def test_misspelt_magic_suggests_the_nearest_name(self):
        error = self.magic_error("%remot status")
        self.assertEqual(error["ename"], "MagicUsageError")
        self.assertIn("%remote", error["evalue"])

    # ---- HMAC --------------------------------------------------------------------------

    def test_message_signed_with_a_wrong_key_is_ignored(self):
        forger = Session(key=b"not-the-kernel-key", username=self.k.kc.session.username)
        forged = forger.send(
            self.k.kc.shell_channel.socket,
            "execute_request",
            {
                "code": "globalThis.forgedRan = true; let forgedCellRan = 1",
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        # Sent on the same socket after the forged one, so the kernel reads it after.
        self.assertEqual(self.k.result_text("typeof (globalThis as any).forgedRan"), "'undefined'")
        self.assertNotIn(forged["header"]["msg_id"], self.k.shell_replies)
        self.assertNotIn(forged["header"]["msg_id"], self.k.iopub)


class InputTests(KernelTestCase):
    def answer_input(self, code, prompt, password, answer):
        """Run a cell that asks for input: check its input_request, answer it; the cell's result text."""
        msg_id = self.k.execute(code, allow_stdin=True)
        request = self.k.kc.get_stdin_msg(timeout=TIMEOUT)
        self.assertEqual(request["msg_type"], "input_request")
        self.assertEqual(request["parent_header"]["msg_id"], msg_id)
        self.assertEqual(request["content"]["prompt"], prompt)
        self.assertIs(request["content"]["password"], password)
        self.k.kc.input(answer)
        self.assertEqual(self.k.reply(msg_id)["content"]["status"], "ok")
        results = [m for m in self.k.outputs(msg_id) if m["msg_type"] == "execute_result"]
        return results[0]["content"]["data"]["text/plain"]

    def test_input_request_when_stdin_is_allowed(self):
        self.assertEqual(self.answer_input(INPUT_CELL, "Your name? ", False, "farlab"), "'hello farlab'")

    def test_password_input_is_marked_as_password(self):
        code = 'const secretValue = await input("Token: ", { password: true }); secretValue.length'
        self.assertEqual(self.answer_input(code, "Token: ", True, "s3cret"), "6")

    def test_input_without_stdin_is_an_error(self):
        content, outputs = self.k.run(INPUT_CELL, allow_stdin=False)
        self.assertEqual(content["status"], "error")
        self.assertEqual(error_of(outputs)["ename"], "StdinNotAllowedError")


class InterruptTests(KernelTestCase):
    """Blocked cells: interrupts in both modes, heartbeat while blocked, state kept."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.k.run("let keptAcrossInterrupts = 41")

    def start_spinning(self, code='console.log("spinning"); while (true) {}'):
        """Start a blocking cell and wait until it is running (its first output arrived)."""
        msg_id = self.k.execute(code)
        self.k.wait_iopub(
            msg_id,
            lambda m: m["msg_type"] == "stream" and "spinning" in m["content"]["text"],
            what="the cell's first output",
        )
        return msg_id

    def assert_interrupted(self, msg_id):
        reply = self.k.reply(msg_id)["content"]
        self.assertEqual(reply["status"], "error", reply)
        self.assertTrue(reply["ename"], reply)
        outputs = self.k.outputs(msg_id)
        self.assertEqual(len([m for m in outputs if m["msg_type"] == "error"]), 1)
        self.assertEqual(self.k.result_text("keptAcrossInterrupts + 1"), "42")

    def test_signal_mode_interrupt_of_a_busy_loop(self):
        # The kernelspec asks for signal mode, so the manager sends SIGINT to the kernel process.
        self.assertEqual(self.k.km.kernel_spec.interrupt_mode, "signal")
        msg_id = self.start_spinning()
        self.k.km.interrupt_kernel()
        self.assert_interrupted(msg_id)

    def test_interrupt_request_on_control_of_a_busy_loop(self):
        msg_id = self.start_spinning()
        control_id = self.k.send_control("interrupt_request")
        self.assertEqual(self.k.control_reply(control_id)["content"]["status"], "ok")
        self.assert_interrupted(msg_id)

    def test_interrupt_request_of_a_never_settling_promise(self):
        msg_id = self.start_spinning('console.log("spinning"); await new Promise(() => {})')
        control_id = self.k.send_control("interrupt_request")
        self.assertEqual(self.k.control_reply(control_id)["content"]["status"], "ok")
        self.assert_interrupted(msg_id)

    def test_heartbeat_and_control_answer_while_a_cell_blocks(self):
        msg_id = self.start_spinning()
        info = self.k.km.get_connection_info()
        context = zmq.Context.instance()
        hb = context.socket(zmq.REQ)
        hb.linger = 0
        hb.connect(f"{info['transport']}://{info['ip']}:{info['hb_port']}")
        try:
            for i in range(3):
                payload = f"ping {i}".encode()
                hb.send(payload)
                self.assertTrue(hb.poll(int(TIMEOUT * 1000)), "heartbeat not answered while blocked")
                self.assertEqual(hb.recv(), payload)
        finally:
            hb.close()
        self.assertTrue(self.k.kc.is_alive())
        # kernel_info on control is answered too while the shell is busy.
        info_id = self.k.send_control("kernel_info_request")
        self.assertEqual(self.k.control_reply(info_id)["content"]["status"], "ok")
        control_id = self.k.send_control("interrupt_request")
        self.k.control_reply(control_id)
        self.assert_interrupted(msg_id)


if __name__ == "__main__":
    unittest.main()
