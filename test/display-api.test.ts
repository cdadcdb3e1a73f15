/**
 * kernel/display: the DisplayApi over a sink, progress bars (throttling with an injected clock
 * and scheduler, text and HTML), plotly figures (bundle shape, plotly.js once per session), and
 * tslab's display API.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDisplayApi } from "../kernel/display/display-api";
import { toBundle } from "../kernel/display/bundle";
import { ProgressDisplay, progressText } from "../kernel/display/progress";
import { PLOTLY_MIME, PlotlyFigure, PlotlyLibrary } from "../kernel/display/plotly";
import { createTslabModule } from "../kernel/display/tslab-compat";
import { JUPYTER_DISPLAY, type DisplayMessage, type MimeBundle } from "../kernel/display/types";

function recordingSink(): { messages: DisplayMessage[]; publish(message: DisplayMessage): void } {
  const messages: DisplayMessage[] = [];
  return { messages, publish: (message) => messages.push(message) };
}

function dataOf(message: DisplayMessage | undefined): MimeBundle {
  assert.ok(message && message.msgType !== "clear_output", `expected a display, got ${JSON.stringify(message)}`);
  return message.content.data;
}

/** A clock and a scheduler the test moves by hand. */
function manualTime() {
  let now = 0;
  const timers: { at: number; callback: () => void; cancelled: boolean }[] = [];
  return {
    now: () => now,
    schedule: (callback: () => void, delayMs: number) => {
      const timer = { at: now + delayMs, callback, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
    advance(ms: number) {
      now += ms;
      for (const timer of timers.splice(0)) {
        if (timer.cancelled) continue;
        if (timer.at <= now) timer.callback();
        else timers.push(timer);
      }
    },
    pending: () => timers.filter((t) => !t.cancelled).length,
  };
}

test("display(value): util.inspect text, or the object's own bundle", () => {
  const sink = recordingSink();
  const display = createDisplayApi(sink);
  display([2, 4, 6]);
  display({ [JUPYTER_DISPLAY]: () => ({ data: { "text/plain": "t", "text/html": "<b>t</b>" }, metadata: { isolated: true } }) });
  assert.deepEqual(sink.messages[0], { msgType: "display_data", content: { data: { "text/plain": "[ 2, 4, 6 ]" }, metadata: {} } });
  assert.deepEqual(sink.messages[1], {
    msgType: "display_data",
    content: { data: { "text/plain": "t", "text/html": "<b>t</b>" }, metadata: { isolated: true } },
  });
  // A bundle without text/plain gets one.
  assert.equal(toBundle({ [JUPYTER_DISPLAY]: () => ({ "text/html": "<i>x</i>" }) }).data["text/plain"].length > 0, true);
});

test("display(value, { displayId, update }) shows and then replaces one display", () => {
  const sink = recordingSink();
  const display = createDisplayApi(sink);
  display("first", { displayId: "d1" });
  display("second", { displayId: "d1", update: true });
  assert.deepEqual(sink.messages.map((m) => m.msgType), ["display_data", "update_display_data"]);
  assert.deepEqual(sink.messages.map((m) => (m.msgType === "clear_output" ? undefined : m.content.transient?.display_id)), ["d1", "d1"]);
  assert.equal(dataOf(sink.messages[1])["text/plain"], "'second'");
  assert.throws(() => display("x", { update: true }), TypeError);
});

test("the typed helpers send their MIME type, binary data as base64, and always text/plain", () => {
  const sink = recordingSink();
  const display = createDisplayApi(sink);
  display.html("<b>h</b>");
  display.markdown("# m");
  display.latex("$x^2$");
  display.svg("<svg/>");
  display.png(new Uint8Array([137, 80, 78, 71]));
  display.jpeg("/9j/");
  display.json({ a: [1] });
  display.text("plain");
  display.raw("application/x-custom", { k: 1 }, { m: 1 });
  display.bundle({ "text/plain": "b", "text/csv": "a,b" });
  display.clear(true);
  const d = sink.messages.map((m) => (m.msgType === "clear_output" ? m.content : m.content.data));
  assert.equal((d[0] as MimeBundle)["text/html"], "<b>h</b>");
  assert.equal((d[1] as MimeBundle)["text/markdown"], "# m");
  assert.equal((d[2] as MimeBundle)["text/latex"], "$x^2$");
  assert.equal((d[3] as MimeBundle)["image/svg+xml"], "<svg/>");
  assert.equal((d[4] as MimeBundle)["image/png"], "iVBORw==");
  assert.equal((d[5] as MimeBundle)["image/jpeg"], "/9j/");
  assert.deepEqual((d[6] as MimeBundle)["application/json"], { a: [1] });
  assert.deepEqual(d[7], { "text/plain": "plain" });
  assert.deepEqual((d[8] as MimeBundle)["application/x-custom"], { k: 1 });
  assert.deepEqual(sink.messages[8].msgType !== "clear_output" && sink.messages[8].content.metadata, { m: 1 });
  assert.deepEqual(d[9], { "text/plain": "b", "text/csv": "a,b" });
  assert.deepEqual(d[10], { wait: true });
  for (const bundle of d.slice(0, 10)) assert.equal(typeof (bundle as MimeBundle)["text/plain"], "string");
});

test("newDisplay(): display_data first, then update_display_data with the same display_id", () => {
  const sink = recordingSink();
  const handle = createDisplayApi(sink).newDisplay();
  handle.text("one");
  handle.html("<b>two</b>");
  handle.update([3]);
  assert.deepEqual(sink.messages.map((m) => m.msgType), ["display_data", "update_display_data", "update_display_data"]);
  for (const m of sink.messages) assert.equal(m.msgType !== "clear_output" && m.content.transient?.display_id, handle.displayId);
  assert.equal(dataOf(sink.messages[2])["text/plain"], "[ 3 ]");
});

test("progress: text with count, bar, percentage, rate and ETA; HTML with a <progress> and the percentage", () => {
  assert.equal(progressText({ n: 42, total: 100, description: "label" }, 3400), "label  42/100 [########            ] 42% 12.4 it/s ETA 5s");
  assert.equal(progressText({ n: 0, total: 10 }, 0), "0/10 [                    ] 0%");
  assert.equal(progressText({ n: 42 }, 2000), "42 it 21.0 it/s");
  assert.equal(progressText({ n: 3000, total: 3000 }, 1000), "3000/3000 [####################] 100% 3000 it/s");
  const time = manualTime();
  const sink = recordingSink();
  const bar = new ProgressDisplay(sink, { total: 100, description: "label", now: time.now, schedule: time.schedule });
  time.advance(3400);
  bar.set(42);
  const html = dataOf(sink.messages[1])["text/html"] as string;
  assert.match(html, /<progress value="42" max="100"/);
  assert.match(html, /42%/);
  // Unknown total: an indeterminate <progress>.
  const open = new ProgressDisplay(recordingSink(), { now: time.now, schedule: time.schedule });
  assert.match(open.bundle()["text/html"] as string, /<progress style=/);
});

test("progress is throttled (minIntervalMs), a trailing update publishes the latest state, done() always publishes", () => {
  const time = manualTime();
  const sink = recordingSink();
  const display = createDisplayApi(sink, { progress: { now: time.now, schedule: time.schedule } });
  const bar = display.progress({ total: 1000 });
  assert.equal(sink.messages.length, 1);
  assert.equal(sink.messages[0].msgType, "display_data");
  const id = bar.displayId;
  for (let i = 0; i < 500; i++) {
    bar.tick();
    time.advance(1); // 500 ticks over 500 ms
  }
  const updates = sink.messages.filter((m) => m.msgType === "update_display_data");
  assert.ok(updates.length >= 4 && updates.length <= 6, `about 10 updates a second, got ${updates.length} in 500 ms`);
  for (const m of sink.messages) assert.equal(m.msgType !== "clear_output" && m.content.transient?.display_id, id);
  // Ticks inside the interval: nothing now, the scheduled update brings the latest count.
  const before = sink.messages.length;
  bar.tick(10);
  assert.equal(sink.messages.length, before);
  assert.equal(time.pending(), 1);
  time.advance(100);
  assert.equal(sink.messages.length, before + 1);
  assert.match(dataOf(sink.messages.at(-1))["text/plain"], /^510\/1000 /);
  // done() right after an update still publishes the final state, once.
  bar.tick(490);
  bar.done();
  bar.done();
  assert.match(dataOf(sink.messages.at(-1))["text/plain"], /^1000\/1000 .* 100%/);
  const finals = sink.messages.filter((m) => m.msgType === "update_display_data" && /^1000\/1000/.test(dataOf(m)["text/plain"]));
  assert.equal(finals.length, 1);
  time.advance(1000);
  assert.equal(sink.messages.at(-1), finals[0], "nothing after done()");
});

test("progress.update sets count, total and description (remote progress events); wrap counts items", async () => {
  const time = manualTime();
  const sink = recordingSink();
  const bar = new ProgressDisplay(sink, { minIntervalMs: 0, now: time.now, schedule: time.schedule });
  time.advance(1000);
  bar.update({ n: 5, total: 20, description: "remote" });
  assert.equal(dataOf(sink.messages.at(-1))["text/plain"], "remote  5/20 [#####               ] 25% 5.0 it/s ETA 3s");
  const counted = new ProgressDisplay(recordingSink(), { minIntervalMs: 0, now: time.now, schedule: time.schedule });
  const seen: string[] = [];
  for await (const item of counted.wrap(["a", "b", "c"])) seen.push(item);
  assert.deepEqual(seen, ["a", "b", "c"]);
  assert.deepEqual(counted.state(), { n: 3, total: 3, description: undefined });
});

test("plotly: the figure's bundle has the plotly JSON, a text/plain summary and offline HTML", () => {
  const library = new PlotlyLibrary();
  const figure = new PlotlyFigure({ data: [{ type: "bar", y: [1, 2] }], layout: { title: { text: "Bars" } } }, { library });
  const bundle = toBundle(figure).data;
  assert.deepEqual(bundle[PLOTLY_MIME], { data: [{ type: "bar", y: [1, 2] }], layout: { title: { text: "Bars" } }, config: {} });
  assert.equal(bundle["text/plain"], '<Plotly figure: 1 trace (bar) "Bars">');
  const html = bundle["text/html"] as string;
  assert.match(html, /if \(window\.Plotly\) return;/, "the library is guarded");
  assert.ok(html.includes("plotly.js v"), "plotly.js is inlined from the npm package");
  assert.ok(html.length > 1_000_000);
  assert.match(html, /window\.Plotly\.newPlot\("farlab-plotly-[0-9a-f-]+", \[\{"type":"bar","y":\[1,2\]\}\]/);
  assert.ok(html.indexOf("</script>") > 1_000_000, "no </script> inside the inlined library");
  assert.throws(() => new PlotlyFigure({} as never), TypeError);
});

test("plotly.js is inlined into the first figure of a session only, unless includePlotlyJs forces it", () => {
  const library = new PlotlyLibrary();
  const sink = recordingSink();
  const display = createDisplayApi(sink, { plotlyLibrary: library });
  display.plotly({ data: [{ y: [1] }] });
  display.plotly({ data: [{ y: [2] }] });
  display.plotly({ data: [{ y: [3] }] }, { includePlotlyJs: true });
  const sizes = sink.messages.map((m) => (dataOf(m)["text/html"] as string).length);
  assert.ok(sizes[0] > 1_000_000, "first figure carries plotly.js");
  assert.ok(sizes[1] < 5_000, `later figures are small (${sizes[1]} bytes)`);
  assert.ok(sizes[2] > 1_000_000, "forced inclusion");
  const second = dataOf(sink.messages[1])["text/html"] as string;
  assert.match(second, /window\.Plotly/);
  assert.match(second, /includePlotlyJs: true/, "says how to recover when the library is missing");
  // Without the library file (e.g. a bundle without node_modules), figures still render against window.Plotly.
  const bare = new PlotlyFigure({ data: [] }, { library: new PlotlyLibrary(() => null) });
  assert.ok((toBundle(bare).data["text/html"] as string).length < 5_000);
});

test("tslab's display API: tslab.display.* and tslab.newDisplay()", () => {
  const sink = recordingSink();
  const tslab = createTslabModule(createDisplayApi(sink), { tslab: "1.0.22", typescript: "5.0.4" });
  tslab.display.html("<b>t</b>");
  tslab.display.png(new Uint8Array([1, 2, 3]));
  tslab.display.text("just text");
  const handle = tslab.newDisplay();
  handle.markdown("a");
  handle.markdown("b");
  assert.equal(dataOf(sink.messages[0])["text/html"], "<b>t</b>");
  assert.equal(dataOf(sink.messages[1])["image/png"], "AQID");
  assert.deepEqual(dataOf(sink.messages[2]), { "text/plain": "just text" });
  assert.deepEqual(sink.messages.slice(3).map((m) => m.msgType), ["display_data", "update_display_data"]);
  assert.equal(dataOf(sink.messages[4])["text/markdown"], "b");
  assert.equal(tslab.versions.node, process.version);
});
