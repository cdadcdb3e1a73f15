/**
 * The magic router: which cells are magic cells, cell magics and their bodies, mixed cells of line
 * magics and TypeScript run in order, validation of every line before anything runs, -i/-o,
 * %lsmagic and help, and the registry. TypeScript pieces run in a small real engine (TypeScript's
 * transpiler + a vm context) whose variables are the cell's locals; magics are real handlers.
 */
import assert from "node:assert/strict";
import { inspect } from "node:util";
import vm from "node:vm";
import { describe, test } from "node:test";
import ts from "typescript";
import type { DisplayApi } from "../kernel/display/api-types";
import { JUPYTER_DISPLAY, type MimeBundle, type SelfDisplaying } from "../kernel/display/types";
import { MagicUsageError } from "../extension/magics/errors";
import { createMagicRouter, MagicRegistry, registerMagic } from "../extension/magics/index";
import type { MagicContext, MagicHandler, ParsedMagic } from "../extension/magics/types";

/** A notebook's local side: TypeScript cells evaluated in one vm context, which holds the locals. */
class Notebook {
  readonly sources: string[] = [];
  readonly events: string[] = [];
  private readonly context = vm.createContext({});
  readonly controller = new AbortController();

  runTypeScript = async (source: string): Promise<unknown> => {
    this.sources.push(source);
    this.events.push(`ts:${source.trim().split("\n").join("|")}`);
    const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
    return vm.runInContext(js, this.context);
  };

  readonly ctx: MagicContext = {
    display: recordingDisplay(this.events),
    stream: (name, text) => this.events.push(`${name}:${text}`),
    input: async (prompt) => `answer to ${prompt}`,
    locals: {
      has: (name) => vm.runInContext(`typeof ${name} !== "undefined"`, this.context) as boolean,
      get: (name) => vm.runInContext(name, this.context),
      set: async (name, value) => {
        (this.context as Record<string, unknown>)[name] = value;
      },
      evaluate: async (expression) => vm.runInContext(`(${expression})`, this.context),
    },
    signal: this.controller.signal,
  };
}

/** A DisplayApi that writes what it is asked to show into the notebook's event list. */
function recordingDisplay(events: string[]): DisplayApi {
  const show = (value: unknown) => events.push(`display:${inspect(value)}`);
  return new Proxy(show, {
    get: (_target, method) => (...args: unknown[]) => events.push(`display.${String(method)}:${inspect(args)}`),
  }) as unknown as DisplayApi;
}

/** `%echo WORDS [-o NAME]`: returns its words joined; records that it ran. */
function echoMagic(events: string[]): MagicHandler {
  return {
    spec: {
      name: "echo",
      kind: "line",
      help: "Return the words given.\nSecond line of help that %lsmagic leaves out.",
      usage: "WORDS...",
      options: [{ name: "sep", type: { kind: "string" }, help: "separator" }],
      flags: [{ name: "upper", help: "upper-case" }],
      acceptsOutput: true,
      positionals: [0, Infinity],
    },
    async run(magic: ParsedMagic) {
      events.push(`echo:${magic.positionals.join(" ")}`);
      const text = magic.positionals.join((magic.options.sep as string | undefined) ?? " ");
      return magic.flags.has("upper") ? text.toUpperCase() : text;
    },
  };
}

/** `%%shout [-i NAMES] [-o NAME]`: upper-cases its body; reads -i variables from the notebook. */
function shoutMagic(events: string[]): MagicHandler {
  return {
    spec: {
      name: "shout",
      kind: "cell",
      help: "Upper-case the cell body.",
      options: [{ name: "times", type: { kind: "int", min: 1 }, help: "repeat" }],
      flags: [],
      acceptsInputs: true,
      acceptsOutput: true,
    },
    async run(magic, ctx) {
      events.push(`shout:${magic.body}@${magic.bodyStartLine}`);
      const inputs = magic.inputs.map((name) => `${name}=${String(ctx.locals.get(name))}`);
      return [(magic.body ?? "").toUpperCase().repeat((magic.options.times as number | undefined) ?? 1), ...inputs].join(" ");
    },
  };
}

/** `%quiet` (line): returns nothing. `%%quiet` (cell) is a different magic with the same name. */
function quietMagics(events: string[]): MagicHandler[] {
  return [
    { spec: { name: "quiet", kind: "line", help: "Do nothing.", options: [], flags: [] }, run: async () => void events.push("quiet:line") },
    { spec: { name: "quiet", kind: "cell", help: "Do nothing to a body.", options: [], flags: [] }, run: async () => void events.push("quiet:cell") },
  ];
}

function setup() {
  const notebook = new Notebook();
  const registry = new MagicRegistry();
  registry.register(echoMagic(notebook.events));
  registry.register(shoutMagic(notebook.events));
  for (const handler of quietMagics(notebook.events)) registry.register(handler);
  const router = createMagicRouter(registry);
  const run = (code: string) => router.run(code, notebook.ctx, notebook.runTypeScript);
  return { notebook, registry, router, run };
}

async function usageError(promise: Promise<unknown>, ...fragments: string[]): Promise<string> {
  let message = "";
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MagicUsageError, `expected MagicUsageError, got ${String(error)}`);
    assert.equal(error.name, "MagicUsageError");
    message = error.message;
    for (const fragment of fragments) assert.ok(message.includes(fragment), `"${message}" should contain "${fragment}"`);
    return true;
  });
  return message;
}

function plainTextOf(value: unknown): string {
  const bundle = (value as SelfDisplaying)[JUPYTER_DISPLAY]() as MimeBundle;
  return bundle["text/plain"];
}

describe("isMagicCell", () => {
  const { router } = setup();
  test("a cell with a % or %% line (followed by a letter, at the line start) is a magic cell", () => {
    assert.equal(router.isMagicCell("%%remote\n1"), true);
    assert.equal(router.isMagicCell("const a = 1\n%echo a\na"), true);
    assert.equal(router.isMagicCell("\n\n%%shout\nhi"), true);
    assert.equal(router.isMagicCell("%nosuchmagic"), true); // so that it gets its error
    assert.equal(router.isMagicCell("const r = 7 % 3\nr"), false);
    assert.equal(router.isMagicCell("const x = 10\n% 3"), false);
    assert.equal(router.isMagicCell("  %echo indented"), false);
    assert.equal(router.isMagicCell("`%echo in a string`"), false);
    assert.equal(router.isMagicCell(""), false);
  });
});

describe("cell magics", () => {
  test("the first line is the magic and the rest its body, with the body's line number", async () => {
    const { notebook, run } = setup();
    const result = await run("%%shout times=2\nhello\nworld");
    assert.deepEqual(result, { value: "HELLO\nWORLDHELLO\nWORLD" });
    assert.deepEqual(notebook.events, ["shout:hello\nworld@2"]);
    assert.deepEqual(notebook.sources, []);
  });

  test("leading blank lines are skipped; the body keeps its lines, % lines included", async () => {
    const { notebook, run } = setup();
    await run("\n  \n%%shout\n%echo not a magic here\n");
    assert.deepEqual(notebook.events, ["shout:%echo not a magic here\n@4"]);
  });

  test("a cell magic's usage error names the magic, with no line number, and runs nothing", async () => {
    const { notebook, run } = setup();
    const message = await usageError(run("%%shout times=0\nhello"), "times=0 is out of range");
    assert.match(message, /^%%shout: /);
    assert.deepEqual(notebook.events, []);
  });

  test("a cell magic not on the first line is an error, and nothing runs", async () => {
    const { notebook, run } = setup();
    await usageError(run("1 + 1\n%%shout\nhi"), "line 2: %%shout: a cell magic must be the first line of the cell");
    assert.deepEqual(notebook.events, []);
  });
});

describe("mixed cells", () => {
  test("line magics and TypeScript run in order; consecutive TypeScript lines run as one group", async () => {
    const { notebook, run } = setup();
    const result = await run("const a = 20\nconst b = a + 1\n%echo first\n\n%echo second\nb * 2");
    assert.deepEqual(notebook.events, ["ts:const a = 20|const b = a + 1", "echo:first", "echo:second", "ts:b * 2"]);
    assert.deepEqual(result, { value: 42 });
  });

  test("TypeScript groups keep the cell's line numbers (blank lines stand in for the lines above)", async () => {
    const { notebook, run } = setup();
    await run("%echo x\nconst y = 1\n%echo z\ny");
    assert.deepEqual(notebook.sources, ["\nconst y = 1", "\n\n\ny"]);
  });

  test("the cell's value is the last piece's: a magic's return value", async () => {
    const { run } = setup();
    assert.deepEqual(await run("const s = '-'\n%echo a b sep=+ --upper"), { value: "A+B" });
  });

  test("a magic returning undefined gives no value; blank lines after it do not count as a piece", async () => {
    const { notebook, run } = setup();
    assert.equal(await run("1 + 1\n%quiet\n\n  \n"), undefined);
    assert.deepEqual(notebook.events, ["ts:1 + 1", "quiet:line"]);
  });

  test("a usage error on any line stops the cell before anything runs, and names the line", async () => {
    const { notebook, run } = setup();
    await usageError(run("const z = 1\n%echo ok\n%echo bad=1"), "line 3: %echo: unknown option bad=.", "valid options: sep=", "flags: --upper");
    assert.deepEqual(notebook.events, []);
    assert.equal(notebook.ctx.locals.has("z"), false);
  });

  test("an error in a TypeScript piece stops the pieces after it", async () => {
    const { notebook, run } = setup();
    await assert.rejects(run("%echo before\nthrow new RangeError('boom')\n%echo after"), { name: "RangeError", message: "boom" });
    assert.deepEqual(notebook.events, ["echo:before", "ts:throw new RangeError('boom')"]);
  });

  test("an interrupt (aborted signal) stops the pieces that have not started", async () => {
    const { notebook, run, registry } = setup();
    registry.register({
      spec: { name: "interrupt", kind: "line", help: "Interrupts the kernel.", options: [], flags: [] },
      run: async () => notebook.controller.abort(new Error("Interrupted")),
    });
    await assert.rejects(run("%echo a\n%interrupt\n%echo b"), /Interrupted/);
    assert.deepEqual(notebook.events, ["echo:a"]);
  });
});

describe("unknown and misused magics", () => {
  test("an unknown magic names the nearest one, lists the valid ones and mentions %lsmagic", async () => {
    const { notebook, run } = setup();
    const message = await usageError(run("%ecko hi"), "unknown magic %ecko. Did you mean %echo?", "Valid magics: %%quiet, %%shout, %echo, %lsmagic, %quiet", "%lsmagic lists them");
    assert.doesNotMatch(message, /line \d/); // a one-line cell needs no line number
    await usageError(run("%%shuot\nx"), "Did you mean %%shout?");
    await usageError(run("%shuot x"), "Did you mean %%shout?"); // the other form, when it is the only near one
    const far = await usageError(run("%zzzzzzzz"), "unknown magic %zzzzzzzz.");
    assert.doesNotMatch(far, /Did you mean/);
    assert.deepEqual(notebook.events, []);
  });

  test("a line magic used as a cell magic, and the other way round, say how to write them", async () => {
    const { run } = setup();
    await usageError(run("%%echo\nbody"), "%%echo: %echo is a line magic: write it as %echo on a line of its own");
    await usageError(run("%shout"), "%shout: %%shout is a cell magic: write %%shout as the first line of the cell");
  });

  test("the same name can be a line magic and a cell magic", async () => {
    const { notebook, run } = setup();
    await run("%quiet");
    await run("%%quiet\nbody");
    assert.deepEqual(notebook.events, ["quiet:line", "quiet:cell"]);
  });

  test("a malformed magic name is an error", async () => {
    const { run } = setup();
    await usageError(run("%echo:x"), "%echo:x is not a valid magic name");
  });
});

describe("-o and -i", () => {
  test("-o assigns the magic's value to a local, which later pieces can use; the cell has no value", async () => {
    const { notebook, run } = setup();
    assert.equal(await run("%echo a b -o words"), undefined);
    assert.equal(notebook.ctx.locals.get("words"), "a b");
    assert.deepEqual(await run("%echo x y -o w2\nw2.length"), { value: 3 });
  });

  test("-o of a cell magic", async () => {
    const { notebook, run } = setup();
    assert.equal(await run("%%shout -o loud\nhey"), undefined);
    assert.equal(notebook.ctx.locals.get("loud"), "HEY");
  });

  test("-i names a local that must exist, checked before anything runs", async () => {
    const { notebook, run } = setup();
    await usageError(run("%echo first\n%%shout -i nope\nx"), "%%shout: a cell magic must be the first line"); // (placement first)
    await usageError(run("%%shout -i nope,other\nx"), "%%shout: -i nope,other: no local variable named nope, other");
    assert.deepEqual(notebook.events, []);
    await run("const seed = 7");
    assert.deepEqual(await run("%%shout -i seed\nx"), { value: "X seed=7" });
  });

  test("-i of a line magic may name a variable that TypeScript or -o earlier in the cell defines", async () => {
    const { notebook, run, registry } = setup();
    registry.register({
      spec: { name: "send", kind: "line", help: "Reads -i variables.", options: [], flags: [], acceptsInputs: true },
      run: async (magic, ctx) => magic.inputs.map((name) => ctx.locals.get(name)),
    });
    assert.deepEqual(await run("const early = 1\n%echo b -o late\n%send -i early,late"), { value: [1, "b"] });
    await usageError(run("%send -i never"), "no local variable named never");
    await usageError(run("const other = 1\n%send -i never"), "no local variable named never");
    assert.deepEqual(notebook.events.at(-1), "ts:const other = 1"); // checked when it ran
  });
});

describe("%lsmagic and help", () => {
  test("%lsmagic lists cell and line magics with the first line of their help", async () => {
    const { run } = setup();
    const result = await run("%lsmagic");
    assert.ok(result);
    const text = plainTextOf(result.value);
    assert.match(text, /Cell magics \(first line of a cell\):\n {2}%%quiet +Do nothing to a body\.\n {2}%%shout +Upper-case the cell body\./);
    assert.match(text, /Line magics \(a line of their own\):\n {2}%echo +Return the words given\.\n {2}%lsmagic +List the available magics/);
    assert.doesNotMatch(text, /Second line/);
    assert.equal(inspect(result.value), text); // shows as text even where Jupyter.display is not honoured
  });

  test("%lsmagic takes no arguments", async () => {
    const { run } = setup();
    await usageError(run("%lsmagic all"), "%lsmagic: unexpected argument 'all': it takes no arguments");
  });

  test("--help and ? show the usage and options instead of running", async () => {
    const { notebook, run } = setup();
    const help = await run("%echo --help");
    assert.ok(help);
    const text = plainTextOf(help.value);
    assert.match(text, /^Usage: %echo WORDS\.\.\. \[options\] \[-o NAME\]\n\nReturn the words given\./);
    assert.match(text, /sep=TEXT +separator/);
    assert.match(text, /--upper +upper-case/);
    assert.match(text, /-o NAME +assign the result/);
    const question = await run("%%shout?\nbody");
    assert.ok(question);
    assert.match(plainTextOf(question.value), /times=N +repeat/);
    assert.deepEqual(notebook.events, []);
  });
});

describe("registry", () => {
  test("a name can be registered once per form", () => {
    const { registry } = setup();
    const events: string[] = [];
    assert.throws(() => registry.register(echoMagic(events)), /magic %echo is already registered/);
    assert.throws(() => registry.register({ ...shoutMagic(events), spec: { ...shoutMagic(events).spec, kind: "both" } }), /%%shout is already registered/);
  });

  test("malformed specs are refused at registration", () => {
    const registry = new MagicRegistry();
    const base = { kind: "line" as const, help: "h", options: [], flags: [] };
    const run = async () => undefined;
    assert.throws(() => registry.register({ spec: { ...base, name: "bad name" }, run }), /name must be/);
    assert.throws(
      () => registry.register({ spec: { ...base, name: "dup", options: [{ name: "x", type: { kind: "string" }, help: "" }], flags: [{ name: "x", help: "" }] }, run }),
      /x is declared twice/,
    );
    assert.throws(() => registry.register({ spec: { ...base, name: "helpful", flags: [{ name: "help", help: "" }] }, run }), /--help is reserved/);
    assert.throws(() => registry.register({ spec: { ...base, name: "sub", subcommands: ["a"] }, run }), /subcommands needs at least one positional/);
    assert.throws(() => registry.register({ spec: { ...base, name: "range", positionals: [2, 1] }, run }), /is not a range/);
  });

  test("registerMagic adds to the registry that createMagicRouter() uses by default", async () => {
    registerMagic({
      spec: { name: "globalecho", kind: "both", help: "Registered globally.", options: [], flags: [], positionals: [0, 1] },
      run: async (magic) => `${magic.isCell ? "cell" : "line"}:${magic.positionals[0] ?? magic.body}`,
    });
    const notebook = new Notebook();
    const router = createMagicRouter();
    assert.deepEqual(await router.run("%globalecho hi", notebook.ctx, notebook.runTypeScript), { value: "line:hi" });
    assert.deepEqual(await router.run("%%globalecho\nbody", notebook.ctx, notebook.runTypeScript), { value: "cell:body" });
    const listing = await router.run("%lsmagic", notebook.ctx, notebook.runTypeScript);
    assert.ok(listing);
    assert.match(plainTextOf(listing.value), /%%globalecho +Registered globally\./);
    assert.match(plainTextOf(listing.value), /\n  %globalecho +Registered globally\./);
  });
});
