/**
 * The Python runtime (remote-agent/runtimes/python) as a real process driven over its runner
 * channel, with Debian's python3 (numpy, pandas, matplotlib, plotly, tqdm installed).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SYSTEM_PYTHON } from "./helpers/processes";
import { useRuntime } from "./helpers/runner-harness";
import { assertFinalBar, assertThrottledBar } from "./helpers/runner-progress";

const py = useRuntime("python", { python: SYSTEM_PYTHON });

test("announces itself ready with its pid and language", () => {
  assert.equal(py().ready.lang, "python");
  assert.equal(py().ready.pid, py().child.pid);
});

test("state persists across cells; the last expression is the result; None gives none", async () => {
  assert.equal((await py().run("x = 40\ndef add(a):\n    return a + 2")).status, "ok");
  const value = await py().run("add(x)");
  assert.equal(value.status, "ok");
  assert.deepEqual(value.result?.data, { "text/plain": "42" });
  const none = await py().run("print('side effect')\nNone");
  assert.equal(none.result, undefined);
  assert.equal(none.text("stdout"), "side effect\n");
  const statement = await py().run("y = add(1)");
  assert.equal(statement.result, undefined);
});

test("a pandas DataFrame is an HTML table with its repr as text/plain", async () => {
  const out = await py().run("import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'n': [1, 2]})");
  assert.equal(out.status, "ok", JSON.stringify(out.error));
  const html = out.result?.data["text/html"];
  assert.equal(typeof html, "string");
  assert.match(html as string, /<table[\s\S]*Oslo[\s\S]*Lima[\s\S]*<\/table>/);
  assert.match(out.result?.data["text/plain"] as string, /city\s+n\n0\s+Oslo\s+1/);
});

test("a plotly figure is plotly JSON plus HTML and text fallbacks", async () => {
  const out = await py().run("import plotly.graph_objects as go\ngo.Figure(go.Bar(x=['a', 'b'], y=[3, 4]))");
  assert.equal(out.status, "ok", JSON.stringify(out.error));
  const figure = out.result?.data["application/vnd.plotly.v1+json"] as { data: Array<{ type: string; y: number[] }> };
  assert.equal(figure.data[0].type, "bar");
  assert.deepEqual(figure.data[0].y, [3, 4]);
  assert.match(out.result?.data["text/html"] as string, /Plotly\.newPlot/);
  assert.equal(out.result?.data["text/plain"], "<Plotly figure: 1 trace (bar)>");
});

test("objects show themselves through _repr_*_ methods and _repr_mimebundle_", async () => {
  const out = await py().run(
    [
      "class Card:",
      "    def _repr_html_(self): return '<b>card</b>'",
      "    def _repr_markdown_(self): return None",
      "    def __repr__(self): return 'Card()'",
      "class Bundle:",
      "    def _repr_mimebundle_(self, include=None, exclude=None): return {'text/markdown': '# hi'}",
      "    def __repr__(self): return 'Bundle()'",
      "from farlab import display",
      "display(Bundle())",
      "Card()",
    ].join("\n"),
  );
  assert.deepEqual(out.of("display")[0].data, { "text/markdown": "# hi", "text/plain": "Bundle()" });
  assert.deepEqual(out.result?.data, { "text/html": "<b>card</b>", "text/plain": "Card()" });
});

test("print goes over the channel; os.system output is captured at the fd level", async () => {
  const out = await py().run("import os\nprint('from print')\nos.system('echo from-the-shell')\nprint('after')");
  assert.equal(out.status, "ok");
  assert.equal(out.text("stdout"), "from print\nafter\n");
  assert.doesNotMatch(out.text("stdout"), /from-the-shell/);
  await py().waitForPipe("stdout", "from-the-shell\n");
});

test("print in a forked child (multiprocessing, DataLoader workers) reaches the captured fd", async () => {
  const code = [
    "import multiprocessing as mp",
    "def child(i):",
    "    print('child', i, 'printed', flush=True)",
    "ps = [mp.get_context('fork').Process(target=child, args=(i,)) for i in range(2)]",
    "[p.start() for p in ps]; [p.join() for p in ps]",
    "[p.exitcode for p in ps]",
  ].join("\n");
  const out = await py().run(code);
  assert.equal(out.status, "ok", JSON.stringify(out.error));
  assert.deepEqual(out.result?.data, { "text/plain": "[0, 0]" });
  await py().waitForPipe("stdout", "child 0 printed\n");
  await py().waitForPipe("stdout", "child 1 printed\n");
});

test("open matplotlib figures become PNG displays at the end of the cell and are closed", async () => {
  const out = await py().run("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nNone");
  assert.equal(out.status, "ok", JSON.stringify(out.error));
  const pngs = out.of("display").filter((m) => "image/png" in m.data);
  assert.equal(pngs.length, 1);
  assert.ok((pngs[0].data["image/png"] as string).startsWith("iVBORw0KGgo"), "base64 of a PNG signature");
  const next = await py().run("len(plt.get_fignums())");
  assert.equal(next.result?.data["text/plain"], "0");
  const shown = await py().run("plt.figure(); plt.plot([1]); plt.show()\nprint('after show')");
  assert.equal(shown.of("display").filter((m) => "image/png" in m.data).length, 1);
  assert.doesNotMatch(shown.text("stderr"), /non-interactive|cannot be shown/);
  const value = await py().run("fig = plt.figure(); plt.plot([2, 1]); fig");
  assert.equal(value.of("display").length, 0, "the figure that is the result is not displayed twice");
  assert.ok((value.result?.data["image/png"] as string).startsWith("iVBORw0KGgo"));
});

test("child Python processes inherit MPLBACKEND=Agg and do not need farlab", async () => {
  const out = await py().run(
    "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import matplotlib.pyplot as plt; plt.plot([1]); print(\"child\", plt.get_backend())'], check=True)\nNone",
  );
  assert.equal(out.status, "ok", JSON.stringify(out.error));
  await py().waitForPipe("stdout", "child agg\n");
});

test("progress() sends throttled updates and always a final closed one", async () => {
  const n = 300_000;
  const out = await py().run(`from farlab import progress\nfor i in progress(range(${n}), desc='work'):\n    pass`);
  assert.equal(out.status, "ok");
  const bars = assertThrottledBar(out, n, "work");
  assert.equal(new Set(bars.map((b) => b.barId)).size, 1);
  assertFinalBar(await py().run("bar = progress(total=3)\nbar.update(2)\nbar.close()"), { n: 2, total: 3 });
});

test("tqdm's carriage-return lines pass through stderr as they are", async () => {
  const out = await py().run("from tqdm import tqdm\nfor _ in tqdm(range(3)): pass");
  assert.equal(out.status, "ok");
  assert.match(out.text("stderr"), /\r100%\|.*\| 3\/3/);
});

test("an error points at the cell's line and hides the runner's frames", async () => {
  const out = await py().run("def inner(v):\n    raise ValueError(f'bad value {v}')\n\ninner(7)");
  assert.equal(out.status, "error");
  assert.equal(out.error?.ename, "ValueError");
  assert.equal(out.error?.evalue, "bad value 7");
  const tb = out.error!.traceback.join("\n");
  assert.match(tb, /File "<cell \d+>", line 4, in <module>\n\s+inner\(7\)/);
  assert.match(tb, /File "<cell \d+>", line 2, in inner\n\s+raise ValueError/);
  assert.doesNotMatch(tb, /farlab|_execute|runpy/);
  const syntax = await py().run("x = (1,\nprint('never')");
  assert.equal(syntax.error?.ename, "SyntaxError");
  assert.equal(syntax.text("stdout"), "");
});

test("SIGINT interrupts `while True: pass` with KeyboardInterrupt and keeps the namespace", async () => {
  const out = await py().interruptAfter("kept = 41\nprint('looping', flush=True)\nwhile True:\n    pass", "looping");
  assert.equal(out.status, "interrupted");
  assert.equal(out.error?.ename, "KeyboardInterrupt");
  assert.match(out.error!.traceback.join("\n"), /line 3|line 4/);
  const after = await py().run("kept + 1");
  assert.equal(after.result?.data["text/plain"], "42");
});

test("inputs are bound first; wantValue returns the JSON value or says why not", async () => {
  const out = await py().run("a * 10 + sum(b)", { inputs: { a: 2, b: [1, 2] }, wantValue: true });
  assert.equal(out.result?.value, 23);
  const dict = await py().run("{'k': [1, None, 'x']}", { wantValue: true });
  assert.deepEqual(dict.result?.value, { k: [1, null, "x"] });
  const none = await py().run("None", { wantValue: true });
  assert.equal(none.result?.value, null);
  assert.deepEqual(none.result?.data, {});
  const bad = await py().run("pd.DataFrame({'a': [1]})", { wantValue: true });
  assert.equal(bad.result?.value, undefined);
  assert.match(bad.result?.valueError ?? "", /DataFrame.*not JSON-serialisable/);
  assert.match(bad.result?.data["text/html"] as string, /<table/);
});

test("display API: html, update in place, clear", async () => {
  const out = await py().run(
    "from farlab import display\nh = display.new_display()\nh.html('<i>one</i>')\nh.html('<i>two</i>')\ndisplay.markdown('**m**')\ndisplay.clear(wait=True)",
  );
  const [first, second] = [out.of("display")[0], out.of("update_display")[0]];
  assert.equal(first.data["text/html"], "<i>one</i>");
  assert.equal(second.data["text/html"], "<i>two</i>");
  assert.equal(first.displayId, second.displayId);
  assert.equal(out.of("display")[1].data["text/markdown"], "**m**");
  assert.deepEqual(out.of("clear_output").map((m) => m.wait), [true]);
});
