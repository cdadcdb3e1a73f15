"""farlab against Jupyter's standard kernel conformance suite (Debian's jupyter_kernel_test 0.4.5).

Every sample attribute the suite knows is set, so each of its tests runs; the only one allowed to
skip is test_pager (farlab has no pager payloads). Run with Debian's python and the farlab
kernelspec on JUPYTER_PATH:

    JUPYTER_PATH=<prefix>/share/jupyter /usr/bin/python3 -m unittest -v test_conformance
"""
import os
import unittest

import jupyter_kernel_test

WARM_UP_TIMEOUT = float(os.environ.get("FARLAB_TEST_TIMEOUT", "60")) * 2

# A 1x1 transparent PNG.
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class FarlabConformance(jupyter_kernel_test.KernelTests):
    kernel_name = os.environ.get("FARLAB_KERNEL_NAME", "farlab")

    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("something went wrong")'

    # Jupyter's convention: each match replaces code[cursor_start:cursor_end]. Both "max" (after
    # the dot) and "Math.max" (the whole expression) are legal spellings of the same completion,
    # so the exact-set sample uses a member with a single candidate and either form is accepted
    # in test_completion_matches below; here the suite only validates the reply's shape.
    completion_samples = [
        {"text": "Math.ma"},
        {"text": "const farlabCompletionProbe = 1; farlabCompletionPro"},
        {"text": "console."},
    ]

    complete_code_samples = [
        "1 + 1",
        "const completeSample = [1, 2, 3];",
        "function f(x: number) {\n  return x * 2;\n}",
    ]
    incomplete_code_samples = [
        "function f(x: number) {",
        "const xs = [1, 2,",
        "if (true) {\n  console.log(1);",
        "`unterminated template",
    ]
    invalid_code_samples = [
        ")",
        "const = 5;",
        "1 +* 2",
    ]

    # farlab has no pager payloads; jupyter_kernel_test skips test_pager when this is empty.
    code_page_something = ""

    code_generate_error = 'throw new Error("farlab conformance error")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "'farlab'", "result": "'farlab'"},
        {"code": "[1, 2, 3].map((x) => x * 2)", "result": "[ 2, 4, 6 ]"},
    ]

    code_display_data = [
        {"code": 'display.html("<b>bold</b>")', "mime": "text/html"},
        {"code": 'display.markdown("# A title")', "mime": "text/markdown"},
        {"code": f'display.png("{PNG_BASE64}")', "mime": "image/png"},
        {
            "code": 'display.plotly({ data: [{ x: [1, 2, 3], y: [2, 4, 6], type: "scatter" }] })',
            "mime": "application/vnd.plotly.v1+json",
        },
        {
            "code": 'display.plotly({ data: [{ x: [1, 2, 3], y: [2, 4, 6], type: "bar" }] })',
            "mime": "text/html",
        },
    ]

    # Glob syntax (as IPython's history search); matches the 'farlab' sample above only.
    code_history_pattern = "'farl*"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "Math.max"

    code_clear_output = 'console.log("soon gone"); display.clear()'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The first cell loads the TypeScript compiler. On a busy machine that can take longer than
        # the suite's fixed 15 s per reply, so pay it once here, with a generous timeout.
        reply = cls.kc.execute_interactive("0", timeout=WARM_UP_TIMEOUT, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]

    def test_completion_matches(self):
        """A completion that must be found, in either of the two legal spellings."""
        code = "Math.ma"
        msg_id = self.kc.complete(code, len(code))
        reply = self.get_non_kernel_info_reply(timeout=jupyter_kernel_test.TIMEOUT)
        jupyter_kernel_test.validate_message(reply, "complete_reply", msg_id)
        content = reply["content"]
        self.assertEqual(content["status"], "ok")
        completed = {
            code[: content["cursor_start"]] + match + code[content["cursor_end"] :]
            for match in content["matches"]
        }
        self.assertIn("Math.max", completed)
        self.assertNotIn("Math.min", completed)


if __name__ == "__main__":
    unittest.main()
