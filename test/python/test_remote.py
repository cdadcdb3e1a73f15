"""%%remote and %remote through the real farlab kernel, driven by jupyter_client.

Run by test/remote-cells.test.ts with /usr/bin/python3, JUPYTER_PATH pointing at a prefix where
`farlab install --prefix` put the kernelspec, FARLAB_EMBEDDED_AGENT_DIR at a temporary agent data
dir, FARLAB_TEST_TMP at a scratch dir, and a stand-in `nvidia-smi` first on PATH. The kernel (and
with it the embedded agent) inherits that environment.

No sleeps as synchronisation: every wait is for a message (with a generous bound).
"""
import os
import re
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_session import SharedKernel, describe, of_type, stream_text  # noqa: E402,F401  (H4's shared jupyter_client layer; test_map imports the helpers from here)

TMP = os.environ.get("FARLAB_TEST_TMP", "/tmp")


def result_of(outputs):
    results = of_type(outputs, "execute_result")
    return results[-1]["data"] if results else None


# One kernel for every test; the interrupt tests run last.
KERNEL = SharedKernel()
setUpModule, tearDownModule = KERNEL.start, KERNEL.close


class RemoteCellTestCase(unittest.TestCase):
    @property
    def kernel(self):
        return KERNEL

    def ok(self, code):
        reply, outputs = self.kernel.run(code)
        self.assertEqual(reply["status"], "ok", describe(reply, outputs))
        # The embedded agent's own log never lands in a cell.
        self.assertNotIn("farlab-agent", stream_text(outputs, "stderr"))
        return outputs

    def fails(self, code, ename):
        reply, outputs = self.kernel.run(code)
        self.assertEqual(reply["status"], "error", describe(reply, outputs))
        errors = of_type(outputs, "error")
        self.assertTrue(errors, describe(reply, outputs))
        self.assertEqual(errors[-1]["ename"], ename, describe(reply, outputs))
        self.assertEqual(reply["ename"], ename)
        return errors[-1]

    def value(self, code):
        messages = self.ok(code)
        data = result_of(messages)
        self.assertIsNotNone(data, f"no execute_result for {code!r}: {messages}")
        return data


class TestRemoteCells(RemoteCellTestCase):
    def test_state_across_cells_typescript(self):
        self.ok("%%remote\nconst base = 40;\nlet step = 1;")
        self.ok("%%remote\nstep = 2;")
        self.assertEqual(self.value("%%remote\nbase + step")["text/plain"], "42")

    def test_state_across_cells_python(self):
        self.ok("%%remote lang=python\nanswer = 41")
        self.assertEqual(self.value("%%remote lang=py\nanswer + 1")["text/plain"], "42")

    def test_shell_cell(self):
        messages = self.ok("%%remote lang=bash\necho from-bash")
        self.assertIn("from-bash", stream_text(messages))

    def test_output_streams_live(self):
        gate = os.path.join(TMP, f"gate-{uuid.uuid4().hex}")
        code = (
            "%%remote lang=python\n"
            "import os, time\n"
            "print('first', flush=True)\n"
            f"while not os.path.exists({gate!r}):\n"
            "    time.sleep(0.02)\n"
            "print('second')\n"
        )
        msg_id = self.kernel.execute(code)
        # The cell cannot end before the gate exists: seeing "first" now proves it streamed live.
        self.kernel.wait_iopub(
            msg_id, lambda m: m["msg_type"] == "stream" and "first" in m["content"]["text"], what="'first' on stdout"
        )
        self.assertNotIn(msg_id, self.kernel.shell_replies)
        open(gate, "w").close()
        reply = self.kernel.reply(msg_id)["content"]
        outputs = self.kernel.outputs(msg_id)
        self.assertEqual(reply["status"], "ok", describe(reply, outputs))
        self.assertEqual(stream_text(outputs), "first\nsecond\n")

    def test_native_output_is_captured(self):
        messages = self.ok('%%remote lang=python\nimport os\nos.system("echo native")\nprint("python")')
        text = stream_text(messages)
        self.assertIn("native\n", text)
        self.assertIn("python\n", text)

    def test_stream_output_is_coalesced(self):
        messages = self.ok("%%remote lang=python\nfor i in range(5000):\n    print(i)")
        streams = [c for c in of_type(messages, "stream") if c["name"] == "stdout"]
        self.assertEqual("".join(c["text"] for c in streams), "".join(f"{i}\n" for i in range(5000)))
        self.assertLess(len(streams), 500, f"{len(streams)} stream messages for 5000 lines")

    def test_output_flood_is_capped_and_attach_replays_it(self):
        lines = 2_500_000  # ~20 MB
        expected = "".join(f"{i}\n" for i in range(1, lines + 1))
        messages = self.ok(f"%%remote lang=bash\nseq 1 {lines}")
        shown = stream_text(messages)
        self.assertLessEqual(len(shown), 1024 * 1024)
        self.assertTrue(expected.startswith(shown), "the notebook got the start of the output, in order")
        notice = stream_text(messages, "stderr")
        match = re.search(r"`%remote attach (job-[\w-]+)`", notice)
        self.assertIsNotNone(match, f"no notice naming the job in {notice!r}")
        self.assertEqual(notice.count("%remote attach"), 1, notice)
        # Nothing lost: attach replays the whole output, in order, with no notice.
        replay = self.ok(f"%remote attach {match.group(1)}")
        self.assertEqual(stream_text(replay), expected)
        self.assertNotIn("output shown up to", stream_text(replay, "stderr"))

    def test_pandas_result_is_html(self):
        data = self.value('%%remote lang=python\nimport pandas as pd\npd.DataFrame({"col": [1, 2, 3]})')
        self.assertIn("<table", data.get("text/html", ""))
        self.assertIn("col", data["text/plain"])

    def test_progress_bar_updates_in_place(self):
        messages = self.ok("%%remote lang=python\nfrom farlab import progress\nfor i in progress(range(40)):\n    pass")
        displays = [c for c in of_type(messages, "display_data") if c.get("transient", {}).get("display_id")]
        self.assertEqual(len(displays), 1, messages)
        display_id = displays[0]["transient"]["display_id"]
        updates = of_type(messages, "update_display_data")
        self.assertTrue(updates, "no update_display_data")
        self.assertTrue(all(u["transient"]["display_id"] == display_id for u in updates))
        final = updates[-1]["data"]["text/plain"]
        self.assertTrue("100%" in final and "40/40" in final, final)

    def test_typescript_progress_bar(self):
        messages = self.ok("%%remote\nconst bar = progress({ total: 5 });\nfor (let i = 0; i < 5; i++) bar.tick();\nbar.done();")
        displays = [c for c in of_type(messages, "display_data") if c.get("transient", {}).get("display_id")]
        self.assertEqual(len(displays), 1, messages)
        updates = of_type(messages, "update_display_data")
        self.assertTrue(updates and "5/5" in updates[-1]["data"]["text/plain"], messages)

    def test_matplotlib_figure_is_png(self):
        messages = self.ok("%%remote lang=python\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')")
        pngs = [c for c in of_type(messages, "display_data") if "image/png" in c["data"]]
        self.assertEqual(len(pngs), 1, [m["msg_type"] for m in messages])

    def test_plotly_figure(self):
        messages = self.ok(
            "%%remote lang=python\nimport plotly.graph_objects as go\ngo.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))"
        )
        bundles = of_type(messages, "execute_result") + of_type(messages, "display_data")
        plotly = [b["data"] for b in bundles if "application/vnd.plotly.v1+json" in b["data"]]
        self.assertTrue(plotly, [m["msg_type"] for m in messages])
        self.assertIn("text/html", plotly[0])
        self.assertIn("text/plain", plotly[0])

    def test_typescript_display_plotly(self):
        messages = self.ok("%%remote\ndisplay.plotly({ data: [{ type: 'bar', y: [1, 2] }] });")
        plotly = [c["data"] for c in of_type(messages, "display_data") if "application/vnd.plotly.v1+json" in c["data"]]
        self.assertTrue(plotly, messages)

    def test_inputs_and_output(self):
        self.ok("const nums = [1, 2, 3];\nconst cfg = { scale: 10, label: 'x' };")
        messages = self.ok('%%remote lang=python -i nums,cfg -o total\nsum(nums) * cfg["scale"]')
        self.assertEqual(of_type(messages, "execute_result"), [])
        self.assertEqual(self.value("total")["text/plain"], "60")
        self.ok("%%remote -i nums -o doubled\nnums.map((n: number) => n * 2)")
        self.assertEqual(self.value("doubled")["text/plain"], "[ 2, 4, 6 ]")

    def test_input_that_is_not_json_names_the_variable(self):
        self.ok("const handler = () => 1;\nconst table = new Map([[1, 2]]);")
        error = self.fails("%%remote lang=python -i handler\n1", "SerializationError")
        self.assertIn("handler", error["evalue"])
        error = self.fails("%%remote lang=python -i table\n1", "SerializationError")
        self.assertIn("table", error["evalue"])
        self.assertIn("Map", error["evalue"])

    def test_output_that_is_not_json_names_the_variable(self):
        error = self.fails("%%remote lang=python -o gen\n(i for i in range(3))", "SerializationError")
        self.assertIn("gen", error["evalue"])

    def test_remote_error_has_remote_name_and_traceback(self):
        error = self.fails('%%remote lang=python\nx = 1\nraise ValueError("boom")', "ValueError")
        self.assertEqual(error["evalue"], "boom")
        traceback = "\n".join(error["traceback"])
        self.assertIn("line 3", traceback)
        self.assertNotIn("agent-client", traceback)  # no local stack trace

    def test_typescript_error(self):
        error = self.fails('%%remote\nconst a = 1;\nthrow new RangeError("out of range")', "RangeError")
        self.assertEqual(error["evalue"], "out of range")

    def test_gpu_inventory_in_status(self):
        data = self.value("%remote status")
        text = data["text/plain"]
        self.assertIn("A100", text)
        self.assertIn("H100", text)
        self.assertIn("40.0 GiB", text)
        self.assertIn("<table", data["text/html"])
        self.assertIn("A100", data["text/html"])

    def test_gpu_session_gets_the_matching_gpu(self):
        data = self.value("%%remote lang=python gpu=H100\nimport os\nos.environ['CUDA_VISIBLE_DEVICES']")
        self.assertEqual(data["text/plain"], "'1'")
        sessions = self.value("%remote sessions")["text/plain"]
        self.assertIn("gpu=H100", sessions)

    def test_named_session_with_other_resources_is_a_usage_error(self):
        self.ok("%%remote lang=python session=fixed cpu=1\nv = 1")
        error = self.fails("%%remote lang=python session=fixed cpu=2\nv", "MagicUsageError")
        self.assertIn("fixed", error["evalue"])

    def test_config_sets_defaults(self):
        try:
            self.ok("%remote config lang=python")
            self.assertEqual(self.value("%%remote\nimport sys\nsys.version_info[0]")["text/plain"], "3")
        finally:
            self.ok("%remote config reset")
        self.fails("%remote config gpu=A100:zero", "MagicUsageError")

    def test_stop_and_restart_sessions(self):
        self.ok("%%remote lang=python session=temp\nkept = 5")
        self.ok("%remote restart temp")
        self.fails("%%remote lang=python session=temp\nkept", "NameError")
        self.ok("%remote stop temp")
        self.assertNotIn("temp ", self.value("%remote sessions")["text/plain"])

    def test_jobs_lists_cells(self):
        self.ok("%%remote lang=python\nprint('listed job')")
        self.assertIn("print('listed job')", self.value("%remote jobs")["text/plain"])

    def test_bad_options_send_nothing(self):
        before = self.value("%remote jobs")["text/plain"]
        for code, expected in [
            ("%%remote memory=lots\n1", "memory"),
            ("%%remote timeout=soon\n1", "timeout"),
            ("%%remote colour=red\n1", "colour"),
            ("%%remote lang=ruby\n1", "lang"),
            ("%%remote gpu=A100:x\n1", "gpu"),
            ("%%remote volumes=data\n1", "volumes"),
            ("%%remote -i missing_variable\n1", "missing_variable"),
        ]:
            error = self.fails(code, "MagicUsageError")
            self.assertIn(expected, error["evalue"])
        self.assertEqual(self.value("%remote jobs")["text/plain"], before)

    def test_unknown_agent_and_subcommand(self):
        error = self.fails("%%remote agent=gpu1\n1", "MagicUsageError")
        self.assertIn("%remote connect", error["evalue"])
        error = self.fails("%remote connect", "MagicUsageError")
        self.assertIn("missing the agent's URL", error["evalue"])
        error = self.fails("%remote connect http://h:1", "MagicUsageError")
        self.assertIn("ssh://[user@]host[:port] or tcp://HOST:PORT", error["evalue"])
        error = self.fails("%remote connect tcp://h:1", "MagicUsageError")
        self.assertIn("server_key", error["evalue"])
        error = self.fails("%remote nope", "MagicUsageError")
        self.assertIn("connect", error["evalue"])


class TestRemoteInterrupts(RemoteCellTestCase):
    """Runs after TestRemoteCells (unittest orders classes by name), on the same kernel."""

    def test_interrupt_keeps_session_state(self):
        self.ok("%%remote lang=python session=calc\nkept = 7")
        msg_id = self.kernel.execute("%%remote lang=python session=calc\nimport time\nprint('sleeping', flush=True)\ntime.sleep(120)")
        self.kernel.wait_iopub(
            msg_id, lambda m: m["msg_type"] == "stream" and "sleeping" in m["content"]["text"], what="'sleeping'"
        )
        self.kernel.km.interrupt_kernel()
        reply = self.kernel.reply(msg_id)["content"]
        outputs = self.kernel.outputs(msg_id)
        self.assertEqual(reply["status"], "error", describe(reply, outputs))
        self.assertEqual(reply["ename"], "KeyboardInterrupt", describe(reply, outputs))
        self.assertEqual(self.value("%%remote lang=python session=calc\nkept")["text/plain"], "7")

    def test_waiting_for_a_gpu_shows_why(self):
        self.ok("%%remote lang=python session=holder gpu=A100\nheld = True")
        msg_id = self.kernel.execute("%%remote lang=python session=waiter gpu=A100\n1")
        status = self.kernel.wait_iopub(
            msg_id,
            lambda m: m["msg_type"] == "display_data" and "waiting for A100" in m["content"]["data"]["text/plain"],
            what="a 'waiting for A100' status line",
        )
        self.assertIn("holder", status["content"]["data"]["text/plain"])
        self.assertTrue(status["content"]["transient"]["display_id"])
        self.kernel.km.interrupt_kernel()  # stop waiting
        reply = self.kernel.reply(msg_id)["content"]
        self.assertEqual(reply["status"], "error", reply)
        self.kernel.outputs(msg_id)
        self.ok("%remote stop holder")

    def test_timeout_is_a_timeout_error(self):
        error = self.fails("%%remote lang=python session=slow timeout=2s\nimport time\ntime.sleep(60)", "TimeoutError")
        self.assertIn("timeout=2s", error["evalue"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
