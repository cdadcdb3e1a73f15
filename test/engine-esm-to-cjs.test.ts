/**
 * kernel/executor/esm-to-cjs.ts, the fast path of tslab's ES module -> CommonJS step: for every
 * module it accepts, its output must be exactly ts.transpileModule's (with tslab's options), and
 * modules it cannot convert that way must be refused (undefined) so transpileModule handles them.
 * The modules below are what tslab 1.0.22's first step emits for the cells in the comments.
 * Then the engine end to end: state through exported functions and classes across cells.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ts from "@tslab/typescript-for-tslab";
import { fastEsmToCommonJs } from "../kernel/executor/esm-to-cjs";
import { TypeScriptEngine } from "../kernel/executor/typescript-engine";

/** tslab's own esModuleToCommonJSModule options (tslab/dist/converter.js). */
function transpile(js: string): string {
  return ts.transpileModule(js, {
    fileName: "custom.js",
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      esModuleInterop: true,
      target: ts.ScriptTarget.ES2022,
      newLine: ts.NewLineKind.LineFeed,
      noImplicitUseStrict: true,
    },
  }).outputText;
}

const accepted: Record<string, string> = {
  "1+1": "export const tsLastExpr = 1 + 1;\nexport {};\n",
  "let x = 1; x": "let x = 1;\nexport const tsLastExpr = x;\nexport { x };\n",
  "const a = 1, b = 'q'; // hi\\nconsole.log(a)": "const a = 1, b = 'q'; // hi\nexport const tsLastExpr = console.log(a);\nexport { a, b };\n",
  "function f(n) ...; class C ...; f(2)": "function f(n) { return n + 1; }\nclass C {\n    y = 2;\n}\nexport const tsLastExpr = f(2);\nexport { f, C };\n",
  "x + 1 (x from an earlier cell)": "export const tsLastExpr = exports.x + 1;\nexport {};\n",
  "destructuring": "const { p, q } = { p: 1, q: 2 };\nlet [r, s] = [1, 2];\nexport { p, q, r, s };\n",
  "await": "export const tsLastExpr = await Promise.resolve(3);\nexport {};\n",
  "await, a comment": "let z = await Promise.resolve(3);\nexport const tsLastExpr = \n/* c */ z;\nexport { z };\n",
  "statements only": "for (let i = 0; i < 2; i++) { }\nif (exports.x) {\n    console.log(1);\n}\nexport {};\n",
  "template": "export const tsLastExpr = `tmpl ${exports.x}`;\nexport {};\n",
  "parenthesised": "const o = { a: 1 };\nexport const tsLastExpr = (o);\nexport { o };\n",
  "locals shadowing nothing exported": "function g() {\n    let k = 0;\n    k += 1;\n    return k;\n}\nexport const tsLastExpr = g();\nexport { g };\n",
  "arrow, object result": "const mk = () => ({ a: 1 });\nexport const tsLastExpr = mk();\nexport { mk };\n",
  "leading comment on a statement": "let m = 1;\n// why\nlet n = m + 1;\nexport { m, n };\n",
  "many names": Array.from({ length: 60 }, (_, i) => `let v${i} = ${i};\n`).join("") + `export { ${Array.from({ length: 60 }, (_, i) => `v${i}`).join(", ")} };\n`,
  "declaration only": "let u;\nexport { u };\n",
};

const refused: Record<string, string> = {
  "an exported name assigned later": "let u;\nu = 5;\nexport const tsLastExpr = u;\nexport { u };\n",
  "an exported name incremented in a function": "let count = 0;\nfunction inc() { count++; }\nexport { count, inc };\n",
  "an enum (assigns its own name)": 'var E;\n(function (E) {\n    E[E["A"] = 0] = "A";\n})(E || (E = {}));\nexport { E };\n',
  "an import": "import * as fs from 'fs';\nexport const tsLastExpr = fs.existsSync('/');\nexport { fs };\n",
  "dynamic import": "export const tsLastExpr = import('fs');\nexport {};\n",
  "a user's export const used later": "export const a = 1;\nexport const tsLastExpr = a;\n",
  "a name declared in a block": "{\n    var w = 1;\n}\nexport { w };\n",
  "destructuring assignment": "let d = 1;\n[d] = [2];\nexport { d };\n",
  "a renamed export": "let e = 1;\nexport { e as f };\n",
  "no exports (not a module)": "console.log(1);\n",
  "a comment before everything": "// head\nlet h = 1;\nexport { h };\n",
};

test("the fast ES module -> CommonJS step prints exactly what ts.transpileModule prints", () => {
  for (const [cell, esm] of Object.entries(accepted)) {
    const fast = fastEsmToCommonJs(esm);
    assert.notEqual(fast, undefined, `expected the fast path to accept: ${cell}`);
    assert.equal(fast, transpile(esm), `output differs for: ${cell}`);
  }
});

test("modules the fast step cannot convert by its rewrite are left to ts.transpileModule", () => {
  for (const [cell, esm] of Object.entries(refused)) {
    assert.equal(fastEsmToCommonJs(esm), undefined, `expected a fallback for: ${cell}`);
  }
});

test("cells converted either way share state: functions, classes, counters, errors with cell positions", async (t) => {
  const engine = new TypeScriptEngine();
  t.after(() => engine.close());
  await engine.run("let total = 0;\nfunction add(n: number) { total += n; return total; }", "1");
  assert.deepEqual(await engine.run("add(2); add(3)", "2"), { value: 5, hasValue: true });
  assert.deepEqual(await engine.run("total", "3"), { value: 5, hasValue: true });
  await engine.run("class Point { constructor(readonly x: number) {} }\nconst p = new Point(4);", "4");
  assert.deepEqual(await engine.run("p.x + 1", "5"), { value: 5, hasValue: true });
  assert.deepEqual(await engine.run("let y = await Promise.resolve(7);\ny", "6"), { value: 7, hasValue: true });
  assert.deepEqual(await engine.run("y * 2", "7"), { value: 14, hasValue: true });
  await assert.rejects(engine.run("const q = 1;\nthrow new RangeError('bad ' + q)", "8"), (error: Error) => {
    const content = engine.errorContent(error);
    assert.equal(content.ename, "RangeError");
    assert.match(content.traceback.join("\n"), /In\[8\]:2:7/);
    return true;
  });
});
