"""%map through the real farlab kernel, driven by jupyter_client.

Run by test/map-cells.test.ts with /usr/bin/python3, JUPYTER_PATH pointing at a prefix where
`farlab install --prefix` put the kernelspec, FARLAB_EMBEDDED_AGENT_DIR at a temporary agent data
dir and FARLAB_TEST_TMP at a scratch dir (marker files of the "fails once" functions live there).

No sleeps as synchronisation: every wait is for a message (with a generous bound).
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_remote  # noqa: E402  (H7's helpers: ok / fails / value on one shared kernel)
from test_remote import describe, of_type, stream_text  # noqa: E402

TMP = os.environ.get("FARLAB_TEST_TMP", "/tmp")
MARKS = os.path.join(TMP, "marks")

SETUP = f"""%%remote lang=python session=mc
import os, random, time
MARKS = {MARKS!r}
os.makedirs(MARKS, exist_ok=True)

def trial(seed):
    rng = random.Random(seed)
    return sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(20_000))

def square(x):
    return x * x

def boom(x):
    if x == 3:
        raise ValueError("bad input %d" % x)
    return x

def huge(x):
    return "x" * (5 * 1024 * 1024)

def first_time(tag, x):
    mark = os.path.join(MARKS, "%s-%s" % (tag, x))
    if os.path.exists(mark):
        return False
    open(mark, "w").close()
    return True

def flaky(x):
    if first_time("flaky", x):
        raise RuntimeError("first try of %d fails" % x)
    return x + 1000

def exits(x):
    if x == 5 and first_time("exits", x):
        os._exit(7)
    return -x

def loud(x):
    print("working on", x)
    return x

def slow(x):
    time.sleep(0.2)
    return x
"""


# test_remote's helpers (ok / fails / value) run on its shared kernel: this module starts and closes it.
setUpModule, tearDownModule = test_remote.KERNEL.start, test_remote.KERNEL.close


def bar_texts(outputs):
    """text/plain of every display and update of the progress bar(s)."""
    return [
        (c["transient"]["display_id"], c["data"]["text/plain"])
        for m in outputs
        if m["msg_type"] in ("display_data", "update_display_data")
        for c in [m["content"]]
        if "farlab-progress" in c.get("transient", {}).get("display_id", "")
    ]


class TestMap(test_remote.RemoteCellTestCase):
    @classmethod
    def setUpClass(cls):
        reply, outputs = test_remote.KERNEL.run(SETUP)
        assert reply["status"] == "ok", describe(reply, outputs)

    def local(self, code):
        return self.value(code)["text/plain"]

    def local_json(self, expression):
        """A local value, through JSON (undefined becomes null inside arrays)."""
        text = self.local("JSON.stringify(%s)" % expression)
        self.assertTrue(text.startswith("'") and text.endswith("'"), text)
        return json.loads(text[1:-1])

    def test_monte_carlo_pi(self):
        self.ok("const seeds = Array.from({ length: 40 }, (_, i) => i);")
        outputs = self.ok("%map trial seeds session=mc workers=4 -o counts")
        # The same trials run in the session itself give the same counts, in the same order.
        self.ok("%%remote session=mc lang=python -o expected\n[trial(s) for s in range(40)]")
        self.assertEqual(self.local("JSON.stringify(counts) === JSON.stringify(expected)"), "true")
        pi = float(self.local("4 * counts.reduce((a: number, b: number) => a + b, 0) / (40 * 20000)"))
        self.assertAlmostEqual(pi, 3.1416, delta=0.02)
        bars = bar_texts(outputs)
        self.assertEqual(len({display_id for display_id, _ in bars}), 1, bars)
        self.assertIn("40/40", bars[-1][1])

    def test_ten_thousand_inputs_in_order(self):
        self.ok("%map square (Array.from({ length: 10000 }, (_, i) => i)) session=mc workers=2 -o squares")
        self.assertEqual(self.local("squares.length"), "10000")
        self.assertEqual(self.local("squares.every((v: number, i: number) => v === i * i)"), "true")

    def test_result_without_output_is_the_cell_value(self):
        self.assertEqual(self.local("%map square [1, 2, 3] session=mc"), "[ 1, 4, 9 ]")

    def test_function_output_is_shown_per_worker(self):
        outputs = self.ok("%map loud [7, 8] session=mc workers=2")
        text = stream_text(outputs)
        for x in (7, 8):
            self.assertRegex(text, r"(?m)^\[worker \d+\] working on %d$" % x)

    def test_unordered_results_are_all_there(self):
        self.ok("%map square [3, 1, 2, 5] session=mc workers=2 ordered=false -o unordered")
        self.assertEqual(sorted(self.local_json("unordered")), [1, 4, 9, 25])

    def test_failing_input_names_index_and_error(self):
        error = self.fails("%map boom [0, 1, 2, 3, 4] session=mc workers=2 -o partial", "MapError")
        self.assertIn("input 3", error["evalue"])
        self.assertIn("ValueError: bad input 3", error["evalue"])
        self.assertTrue(any("<cell" in line for line in error["traceback"]), error["traceback"])
        # The other inputs finished; -o holds them (and undefined for the failed one).
        self.assertEqual(self.local_json("partial"), [0, 1, 2, None, 4])

    def test_return_exceptions_puts_errors_in_place(self):
        self.ok("%map boom [0, 1, 2, 3, 4] session=mc --return-exceptions -o mixed")
        self.assertEqual(self.local("mixed[3] instanceof Error"), "true")
        self.assertEqual(self.local("`${mixed[3].name}: ${mixed[3].message} @${mixed[3].index}`"), "'ValueError: bad input 3 @3'")
        self.assertEqual(self.local("mixed[4]"), "4")

    def test_result_over_the_size_limit_is_named(self):
        self.ok("%map huge [1] session=mc --return-exceptions -o big")
        self.assertEqual(self.local("big[0].name"), "'ResultTooLarge'")
        self.assertIn("MiB", self.local("big[0].message"))

    def test_retries_recover_inputs_that_fail_once(self):
        self.ok("%map flaky (Array.from({ length: 12 }, (_, i) => i)) session=mc workers=2 retries=1 -o recovered")
        self.assertEqual(self.local_json("recovered"), [x + 1000 for x in range(12)])

    def test_worker_that_exits_is_replaced_and_its_inputs_redone(self):
        outputs = self.ok("%map exits (Array.from({ length: 20 }, (_, i) => i)) session=mc workers=2 -o negated")
        self.assertEqual(self.local_json("negated"), [-x for x in range(20)])
        self.assertRegex(stream_text(outputs, "stderr"), r"worker \d+ exited \(exit status 7\)")

    def test_typescript_function(self):
        self.ok("%%remote session=tsmap\nfunction cube(x: number) { return x ** 3; }\nasync function later(x: number) { return x + 1; }")
        self.assertEqual(self.local("%map cube [1, 2, 3] session=tsmap workers=2"), "[ 1, 8, 27 ]")
        self.assertEqual(self.local("%map later [1, 2, 3] session=tsmap"), "[ 2, 3, 4 ]")

    def test_undefined_function_is_a_clear_error(self):
        error = self.fails("%map no_such_fn [1, 2] session=mc", "NameError")
        self.assertIn("no_such_fn", error["evalue"])
        self.assertIn("session 'mc'", error["evalue"])

    def test_zz_interrupt_stops_the_map_and_keeps_what_finished(self):
        msg_id = self.kernel.execute("%map slow (Array.from({ length: 200 }, (_, i) => i)) session=mc workers=2 -o some")
        self.kernel.wait_iopub(
            msg_id,
            lambda m: m["msg_type"] == "update_display_data" and re.search(r"\b[1-9]\d*/200", m["content"]["data"]["text/plain"]),
            what="progress past 0/200",
        )
        self.kernel.km.interrupt_kernel()
        reply = self.kernel.reply(msg_id)["content"]
        outputs = self.kernel.outputs(msg_id)
        self.assertEqual(reply["status"], "error", describe(reply, outputs))
        self.assertEqual(reply["ename"], "KeyboardInterrupt", describe(reply, outputs))
        self.assertRegex(reply["evalue"], r"\d+ of 200 inputs completed")
        done = int(self.local("some.filter((x: unknown) => x !== undefined).length"))
        self.assertTrue(0 < done < 200, done)
        # The workers survived the interrupt: the next map runs on them.
        self.assertEqual(self.local("%map square [4] session=mc workers=2"), "[ 16 ]")


if __name__ == "__main__":
    unittest.main(verbosity=2)
