/**
 * Pulling a missing image, for real: a docker-registry on a loopback port (test/helpers/
 * registry.ts) holds a small image the engine does not have; a `%%remote image=` cell on the
 * Docker backend shows the pull's progress (layers, bytes) as status lines and then runs in it.
 * A name the registry lacks is a clear not-found error.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { withAgent } from "./agent-harness";
import { docker, errorOf, requireDocker, statuses } from "./docker-helpers";
import { Registry } from "./helpers/registry";

let registry: Registry;
let image = "";
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

before(async () => {
  await requireDocker();
  registry = await Registry.start();
  image = registry.pushSmallImage("farlab-pull-test", randomBytes(4).toString("hex"));
});

after(async () => {
  await docker.getImage(image).remove({ force: true }).catch(() => undefined);
  await registry?.stop();
});

test("an image missing locally is pulled with its progress (layers, bytes) shown in the cell, then the cell runs in it", async (t) => {
  await assert.rejects(docker.getImage(image).inspect(), "the image is not here before the cell");
  await withAgent({ args: ["--backend", "docker"] }, async (agent) => {
    const jobId = await agent.run("console.log(`${1 + 41} from ${require('node:os').platform()}`)", { lang: "ts", resources: { image } });
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "ok", JSON.stringify(events.slice(-3)));
    assert.equal(agent.stdoutOf(jobId), "42 from linux\n");
    const shown = statuses(events);
    t.diagnostic(`status lines: ${shown.join(" | ")}`);
    assert.equal(shown[0], `pulling image ${image}`, shown.join("\n"));
    assert.ok(!shown.some((s) => s.includes("0/0 layers")), "no progress line before the layers are known");
    const escaped = escapeRegExp(image);
    assert.ok(
      shown.some((s) => new RegExp(`^pulling image ${escaped}: 1/1 layers, [\\d.]+/[\\d.]+ MB; done$`).test(s)),
      `the cell shows the layers and bytes pulled:\n${shown.join("\n")}`,
    );
    // The status lines come before the cell starts.
    const started = events.findIndex((e) => e.event.kind === "started");
    assert.ok(started > events.findIndex((e) => e.event.kind === "status" && e.event.text.endsWith("; done")));
  });
  await docker.getImage(image).inspect(); // pulled, and kept for the next session
});

test("pulling a name the registry lacks is a clear not-found error", async (t) => {
  const missing = `${registry.host}/farlab-no-such-image:1`;
  await withAgent({ args: ["--backend", "docker"] }, async (agent) => {
    const jobId = await agent.run("console.log(1)", { lang: "ts", resources: { image: missing } });
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "error");
    const error = errorOf(events);
    assert.equal(error?.ename, "RuntimeStartError", JSON.stringify(error));
    t.diagnostic(`error: ${error!.evalue}`);
    assert.match(error!.evalue, new RegExp(`^image ${escapeRegExp(missing)} not found locally, and pulling it failed: the registry has no such image`));
    assert.match(error!.evalue, /manifest unknown|not found/);
  });
});
