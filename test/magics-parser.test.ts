/**
 * The magic grammar (shared/MAGICS.md "Grammar", docs/magics.md): tokenizer, sizes, durations,
 * option validation against a spec, -i/-o, flags, positionals, and the words of the errors.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FarlabError, MagicUsageError } from "../extension/magics/errors";
import { isVariableName, nearestName } from "../extension/magics/names";
import { parseMagic, splitMagicLine, wantsHelp, type MagicLine } from "../extension/magics/parser";
import { tokenize } from "../extension/magics/tokenizer";
import type { MagicSpec } from "../extension/magics/types";
import { parseDuration, parseInteger, parseNumber, parseSize } from "../extension/magics/units";

/** A spec shaped like %%remote's, with a few kinds more, to exercise every option kind. */
const REMOTE: MagicSpec = {
  name: "remote",
  kind: "cell",
  help: "Run the cell on an agent.",
  options: [
    { name: "lang", type: { kind: "enum", values: ["ts", "python", "sh"], aliases: { typescript: "ts", py: "python", bash: "sh" } }, help: "language" },
    { name: "agent", type: { kind: "string" }, help: "agent" },
    { name: "gpu", type: { kind: "string" }, help: "gpu" },
    { name: "cpu", type: { kind: "number", min: 0.1 }, help: "cores" },
    { name: "memory", type: { kind: "size" }, help: "memory" },
    { name: "timeout", type: { kind: "duration" }, help: "timeout" },
    { name: "secrets", type: { kind: "list" }, help: "secrets" },
    { name: "workers", type: { kind: "int", min: 1, max: 64 }, help: "workers" },
    { name: "ordered", type: { kind: "bool" }, help: "ordered" },
  ],
  flags: [{ name: "fresh", help: "throwaway runtime" }],
  acceptsInputs: true,
  acceptsOutput: true,
};

const MAP: MagicSpec = {
  name: "map",
  kind: "line",
  help: "Fan a remote function out over inputs.",
  usage: "FN INPUTS",
  options: [{ name: "workers", type: { kind: "int", min: 1 }, help: "workers" }],
  flags: [{ name: "return-exceptions", help: "failed inputs become Error values" }],
  acceptsOutput: true,
  positionals: [2, 2],
};

const VOLUME: MagicSpec = {
  name: "volume",
  kind: "line",
  help: "Volumes.",
  subcommands: ["create", "list", "ls", "put", "get", "rm", "delete"],
  options: [{ name: "agent", type: { kind: "string" }, help: "agent" }],
  flags: [{ name: "r", help: "recursive" }, { name: "yes", help: "confirm" }],
  positionals: [1, 4],
};

function line(text: string): MagicLine {
  const magic = splitMagicLine(text);
  assert.ok(magic, `${text} should be a magic line`);
  return magic;
}

function parse(spec: MagicSpec, text: string) {
  return parseMagic(spec, line(text), spec.kind === "cell" ? { body: "1 + 1", bodyStartLine: 2 } : undefined);
}

/** Asserts a MagicUsageError whose message contains every fragment. */
function rejects(spec: MagicSpec, text: string, ...fragments: string[]): string {
  let message = "";
  assert.throws(
    () => parse(spec, text),
    (error: unknown) => {
      assert.ok(error instanceof MagicUsageError, `expected MagicUsageError, got ${String(error)}`);
      message = error.message;
      for (const fragment of fragments) assert.ok(message.includes(fragment), `"${message}" should contain "${fragment}"`);
      return true;
    },
  );
  return message;
}

describe("errors", () => {
  test("MagicUsageError's name is its Jupyter ename and it is a FarlabError", () => {
    const error = new MagicUsageError("bad");
    assert.equal(error.name, "MagicUsageError");
    assert.equal(error.ename, "MagicUsageError");
    assert.ok(error instanceof FarlabError);
    assert.ok(error instanceof Error);
    assert.equal(error.message, "bad");
  });

  test("a subclass of FarlabError is named after its class without boilerplate", () => {
    class QuotaExceededError extends FarlabError {}
    assert.equal(new QuotaExceededError("x").name, "QuotaExceededError");
    assert.match(String(new QuotaExceededError("over")), /^QuotaExceededError: over$/);
  });
});

describe("tokenizer", () => {
  const values = (text: string) => tokenize(text).map((token) => token.value);

  test("splits on any run of whitespace", () => {
    assert.deepEqual(values("  a \t b   c  "), ["a", "b", "c"]);
    assert.deepEqual(values(""), []);
    assert.deepEqual(values("   "), []);
  });

  test("removes quotes, keeps spaces inside them, and marks the token quoted", () => {
    assert.deepEqual(values(`image="my image:1" name='a b'`), ["image=my image:1", "name=a b"]);
    const [token] = tokenize(`"--fresh"`);
    assert.equal(token.value, "--fresh");
    assert.equal(token.raw, `"--fresh"`);
    assert.equal(token.quoted, true);
    assert.equal(tokenize("plain")[0].quoted, false);
  });

  test("quotes may sit inside a token and next to each other", () => {
    assert.deepEqual(values(`a"b c"d 'x'"y"`), ["ab cd", "xy"]);
    assert.deepEqual(values(`key=""`), ["key="]);
  });

  test(`inside "..." only \\" and \\\\ are escapes; inside '...' nothing is`, () => {
    assert.deepEqual(values(String.raw`"say \"hi\"" "C:\dir\\sub" 'it\'`), [`say "hi"`, String.raw`C:\dir\sub`, "it\\"]);
    assert.deepEqual(values(`"it's" 'say "hi"'`), ["it's", `say "hi"`]);
  });

  test("an unterminated quote is a MagicUsageError that says which quote", () => {
    assert.throws(() => tokenize(`gpu="A100 lang=py`), (error: unknown) => {
      assert.ok(error instanceof MagicUsageError);
      assert.match(error.message, /unterminated " quote/);
      assert.match(error.message, /"A100 lang=py/);
      return true;
    });
    assert.throws(() => tokenize(`name='x`), /unterminated ' quote/);
  });

  test("a token that starts with a bracket is one expression token, spaces and all", () => {
    assert.deepEqual(values("trial (range(100)) workers=8"), ["trial", "(range(100))", "workers=8"]);
    assert.deepEqual(values("f [1, 2, 3] -o r"), ["f", "[1, 2, 3]", "-o", "r"]);
    assert.deepEqual(values("f [1, 2].map((x) => x * 2) b"), ["f", "[1, 2].map((x) => x * 2)", "b"]);
    assert.deepEqual(values("{ a: [1, (2)] } (a) (b)"), ["{ a: [1, (2)] }", "(a)", "(b)"]);
    assert.equal(tokenize("[1]")[0].expression, true);
  });

  test("quotes inside an expression are kept verbatim and may hold brackets and spaces", () => {
    assert.deepEqual(values(`f [")", 'a ] b', \`(\${x}\`] next`), ["f", `[")", 'a ] b', \`(\${x}\`]`, "next"]);
    assert.deepEqual(values(String.raw`["a\"]"] z`), [String.raw`["a\"]"]`, "z"]);
  });

  test("unbalanced or mismatched brackets are a MagicUsageError that says what is missing", () => {
    assert.throws(() => tokenize("f (range(100)"), /unbalanced brackets in \(range\(100\): missing '\)'/);
    assert.throws(() => tokenize("f [1, 2)"), /expected '\]' but found '\)'/);
    assert.throws(() => tokenize("f (a))"), /'\)' closes nothing/);
    assert.throws(() => tokenize(`f ["a]`), /unterminated " string in the expression/);
  });
});

describe("sizes (MiB)", () => {
  test("a plain number is MiB; units are binary, and decimal spellings read as binary", () => {
    assert.equal(parseSize("512"), 512);
    assert.equal(parseSize("512MiB"), 512);
    assert.equal(parseSize("512M"), 512);
    assert.equal(parseSize("16GiB"), 16384);
    assert.equal(parseSize("16GB"), 16384);
    assert.equal(parseSize("16gb"), 16384);
    assert.equal(parseSize("1.5GiB"), 1536);
    assert.equal(parseSize("512KiB"), 0.5);
    assert.equal(parseSize("1TiB"), 1024 * 1024);
    assert.equal(parseSize("1_024"), 1024);
  });

  test("anything else is refused", () => {
    for (const bad of ["", "GiB", "16XB", "16 GiB", "-1", "0", "0GiB", "1.5.2GiB", "ten", "16GiBs", "1e3"]) {
      assert.equal(parseSize(bad), undefined, bad);
    }
  });
});

describe("durations (ms)", () => {
  test("a plain number is seconds; s, m, h, d, ms and combinations are accepted", () => {
    assert.equal(parseDuration("300"), 300_000);
    assert.equal(parseDuration("90s"), 90_000);
    assert.equal(parseDuration("10m"), 600_000);
    assert.equal(parseDuration("2h"), 7_200_000);
    assert.equal(parseDuration("1d"), 86_400_000);
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("1.5h"), 5_400_000);
    assert.equal(parseDuration("0.5"), 500);
  });

  test("anything else is refused", () => {
    for (const bad of ["", "s", "10x", "1h30", "-5", "0", "0s", "ten", "10 m", "h1"]) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });
});

describe("numbers", () => {
  test("integers and decimals, with _ separators", () => {
    assert.equal(parseInteger("100_000"), 100_000);
    assert.equal(parseInteger("-3"), -3);
    assert.equal(parseInteger("1.5"), undefined);
    assert.equal(parseInteger("99999999999999999999"), undefined);
    assert.equal(parseNumber("0.5"), 0.5);
    assert.equal(parseNumber(".5"), 0.5);
    assert.equal(parseNumber("1e3"), 1000);
    assert.equal(parseNumber("1,5"), undefined);
    assert.equal(parseNumber("NaN"), undefined);
  });
});

describe("magic lines", () => {
  test("%%name is a cell magic, %name a line magic; the rest is the argument text", () => {
    assert.deepEqual(splitMagicLine("%%remote gpu=A100 lang=python"), {
      name: "remote",
      isCell: true,
      args: " gpu=A100 lang=python",
      line: "%%remote gpu=A100 lang=python",
      help: false,
    });
    const magic = line("%map trial seeds");
    assert.equal(magic.isCell, false);
    assert.equal(magic.name, "map");
  });

  test("only % or %% directly followed by a letter starts a magic", () => {
    for (const notMagic of ["% x", "%5", "x %y", " %remote", "%%", "%%%remote", "%"]) {
      assert.equal(splitMagicLine(notMagic), undefined, notMagic);
    }
  });

  test("a name glued to other characters is refused with a message", () => {
    assert.throws(() => splitMagicLine("%remote:status"), (error: unknown) => {
      assert.ok(error instanceof MagicUsageError);
      assert.match(error.message, /%remote:status is not a valid magic name/);
      return true;
    });
  });

  test("%name? and --help ask for help", () => {
    assert.equal(line("%map?").help, true);
    assert.equal(line("%map?").name, "map");
    assert.equal(wantsHelp(line("%map --help")), true);
    assert.equal(wantsHelp(line("%map f xs")), false);
    assert.equal(wantsHelp(line(`%map "--help"`)), false);
    assert.equal(wantsHelp(line(`%map "unterminated`)), false);
  });
});

describe("parsing against a spec", () => {
  test("options are converted by kind; the body and its line travel along", () => {
    const parsed = parse(
      REMOTE,
      `%%remote lang=py gpu="H100|A100" cpu=2.5 memory=16GB timeout=10m secrets=hf,wandb workers=8 ordered=FALSE --fresh`,
    );
    assert.deepEqual(parsed.options, {
      lang: "python",
      gpu: "H100|A100",
      cpu: 2.5,
      memory: 16384,
      timeout: 600_000,
      secrets: ["hf", "wandb"],
      workers: 8,
      ordered: false,
    });
    assert.deepEqual([...parsed.flags], ["fresh"]);
    assert.equal(parsed.isCell, true);
    assert.equal(parsed.name, "remote");
    assert.equal(parsed.body, "1 + 1");
    assert.equal(parsed.bodyStartLine, 2);
    assert.deepEqual(parsed.positionals, []);
    assert.deepEqual(parsed.inputs, []);
    assert.equal(parsed.output, undefined);
    assert.ok(parsed.line.startsWith("%%remote lang=py"));
  });

  test("enum values and aliases are matched case-insensitively and made canonical", () => {
    assert.equal(parse(REMOTE, "%%remote lang=Python").options.lang, "python");
    assert.equal(parse(REMOTE, "%%remote lang=TypeScript").options.lang, "ts");
    assert.equal(parse(REMOTE, "%%remote lang=bash").options.lang, "sh");
  });

  test("a quoted empty value is a value; an unquoted one is an error", () => {
    assert.equal(parse(REMOTE, `%%remote agent=""`).options.agent, "");
    rejects(REMOTE, "%%remote agent=", "option agent= has no value", "without spaces");
  });

  test("-i takes comma-separated names and -o one name", () => {
    const parsed = parse(REMOTE, "%%remote -i a,b_2 -o result -i a,c");
    assert.deepEqual(parsed.inputs, ["a", "b_2", "c"]);
    assert.equal(parsed.output, "result");
  });

  test("%map's INPUTS may be a bracketed expression with spaces", () => {
    const parsed = parse(MAP, "%map trial (range(100)) workers=8 -o counts");
    assert.deepEqual(parsed.positionals, ["trial", "(range(100))"]);
    assert.deepEqual(parsed.options, { workers: 8 });
    assert.equal(parsed.output, "counts");
    assert.deepEqual(parse(MAP, "%map f [1, 2, 3]").positionals, ["f", "[1, 2, 3]"]);
    assert.deepEqual(parse(MAP, "%map f seeds --return-exceptions").flags, new Set(["return-exceptions"]));
  });

  test("one-letter flags are written with one dash", () => {
    const parsed = parse(VOLUME, "%volume rm data logs -r");
    assert.deepEqual(parsed.positionals, ["rm", "data", "logs"]);
    assert.ok(parsed.flags.has("r"));
    assert.ok(parse(VOLUME, "%volume delete data --yes").flags.has("yes"));
    rejects(VOLUME, "%volume delete data -yes", "write --yes with two dashes");
  });

  test("an unquoted name=value is an option; the error says to quote it where arguments are taken", () => {
    rejects(VOLUME, "%volume put data a=b.txt", "unknown option a=.", `to pass a=b.txt as an argument, quote it: "a=b.txt"`);
    const message = rejects(REMOTE, "%%remote a=b", "unknown option a=.");
    assert.doesNotMatch(message, /quote it/);
  });

  test("quoted tokens and negative numbers are positionals, never flags or options", () => {
    assert.deepEqual(parse(VOLUME, `%volume put data "--fresh" "a=b"`).positionals, ["put", "data", "--fresh", "a=b"]);
    assert.deepEqual(parse(VOLUME, "%volume ls data -5").positionals, ["ls", "data", "-5"]);
    assert.deepEqual(parse(VOLUME, `%volume put data "my file.txt" 'dir/sub dir'`).positionals, [
      "put",
      "data",
      "my file.txt",
      "dir/sub dir",
    ]);
  });

  test("an unknown option names the nearest valid one and lists them all", () => {
    const message = rejects(REMOTE, "%%remote gpus=A100", "%%remote: unknown option gpus=.", "Did you mean gpu=?", "valid options: agent=, cpu=");
    assert.match(message, /flags: --fresh/);
    assert.match(message, /-i NAMES, -o NAME/);
    rejects(REMOTE, "%%remote mem=4GiB", "Did you mean memory=?");
    const far = rejects(REMOTE, "%%remote zzzzzz=1", "unknown option zzzzzz=", "valid options:");
    assert.doesNotMatch(far, /Did you mean/);
  });

  test("an unknown flag names the nearest valid one", () => {
    rejects(REMOTE, "%%remote --frsh", "unknown flag --frsh.", "Did you mean --fresh?", "flags: --fresh");
    rejects(VOLUME, "%volume rm a b -x", "unknown flag -x");
  });

  test("options and flags used in each other's form say how to write them", () => {
    rejects(REMOTE, "%%remote fresh=true", "fresh is a flag and takes no value: write --fresh");
    rejects(REMOTE, "%%remote --gpu", "gpu is an option, not a flag: write gpu=VALUE");
    rejects(REMOTE, "%%remote --gpu=A100", "gpu is an option, not a flag");
    rejects(REMOTE, "%%remote --fresh=yes", "--fresh is a flag and takes no value");
  });

  test("malformed values say what was given and what is accepted", () => {
    rejects(REMOTE, "%%remote memory=16XB", "memory=16XB is not accepted", "512MiB, 16GiB");
    rejects(REMOTE, "%%remote timeout=soon", "timeout=soon is not accepted", "90s, 10m, 2h");
    rejects(REMOTE, "%%remote workers=two", "workers=two is not accepted: expected a whole number from 1 to 64");
    rejects(REMOTE, "%%remote workers=0", "workers=0 is out of range: expected a whole number from 1 to 64");
    rejects(REMOTE, "%%remote workers=1.5", "expected a whole number");
    rejects(REMOTE, "%%remote cpu=0", "cpu=0 is out of range: expected a number of at least 0.1");
    rejects(REMOTE, "%%remote cpu=lots", "expected a number of at least 0.1");
    rejects(REMOTE, "%%remote ordered=maybe", "expected true or false");
    rejects(REMOTE, "%%remote secrets=a,,b", "without empty items");
    rejects(REMOTE, "%%remote lang=pyhton", "lang=pyhton is not accepted: expected one of ts, python, sh (or typescript, py, bash); did you mean python?");
  });

  test("an option given twice is an error", () => {
    rejects(REMOTE, "%%remote gpu=A100 gpu=H100", "option gpu= is given twice");
  });

  test("-i and -o are only accepted where the spec says, and need a valid name", () => {
    rejects(VOLUME, "%volume list -o vols", "-o is not accepted here");
    rejects(MAP, "%map f xs -i a", "-i is not accepted here");
    rejects(REMOTE, "%%remote -o", "-o needs a variable name");
    rejects(REMOTE, "%%remote -o --fresh", "-o needs a variable name");
    rejects(REMOTE, "%%remote -o 2x", "-o 2x: not a valid variable name");
    rejects(REMOTE, "%%remote -o class", "-o class: not a valid variable name");
    rejects(REMOTE, "%%remote -o a-b", "not a valid variable name");
    rejects(REMOTE, "%%remote -o a -o b", "-o is given twice");
    rejects(REMOTE, "%%remote -i a,,b", "'' is not a variable name");
    rejects(REMOTE, "%%remote -i a,def", "'def' is not a variable name");
    rejects(REMOTE, "%%remote -i", "-i needs a comma-separated list of local variable names");
  });

  test("missing and extra positionals show the usage", () => {
    rejects(MAP, "%map trial", "%map: missing argument (usage: %map FN INPUTS [options] [-o NAME])");
    rejects(MAP, "%map", "missing arguments");
    rejects(MAP, "%map f xs ys", "unexpected argument 'ys': it takes at most 2");
    rejects(REMOTE, "%%remote python", "unexpected argument 'python': it takes no arguments");
  });

  test("key = value with spaces gets a hint", () => {
    rejects(REMOTE, "%%remote gpu = A100", "unexpected argument 'gpu'", "key=value without spaces");
    rejects(REMOTE, "%%remote gpu= A100", "option gpu= has no value");
  });

  test("subcommands are checked, with the nearest suggested", () => {
    rejects(VOLUME, "%volume", "missing subcommand: one of create, list, ls, put, get, rm, delete");
    rejects(VOLUME, "%volume lst", "unknown subcommand 'lst'. Did you mean 'list'?", "Subcommands: create,");
    assert.deepEqual(parse(VOLUME, "%volume list agent=gpu1").options, { agent: "gpu1" });
  });

  test("tokenizer errors are reported with the magic's name", () => {
    rejects(REMOTE, `%%remote image="x`, "%%remote: unterminated \" quote");
    rejects(MAP, "%map f (range(3)", "%map: unbalanced brackets");
  });
});

describe("names", () => {
  test("nearestName finds typos and prefixes, not unrelated words", () => {
    assert.equal(nearestName("gpus", ["gpu", "cpu", "memory"]), "gpu");
    assert.equal(nearestName("mem", ["gpu", "cpu", "memory"]), "memory");
    assert.equal(nearestName("Timeot", ["timeout", "image"]), "timeout");
    assert.equal(nearestName("banana", ["gpu", "cpu"]), undefined);
    assert.equal(nearestName("x", []), undefined);
  });

  test("isVariableName accepts identifiers and refuses keywords of both languages", () => {
    for (const good of ["a", "_x", "result2", "camelCase"]) assert.equal(isVariableName(good), true, good);
    for (const bad of ["", "2a", "a-b", "a.b", "$x", "const", "await", "lambda", "None", "é"]) {
      assert.equal(isVariableName(bad), false, bad);
    }
  });
});
