/**
 * Derived images (apt=) on the Docker backend, against the real dockerd: built once from a
 * generated Dockerfile with the build's progress in the cell, then found by their content tag;
 * a build that fails is an ImageBuildError with the build log. Needs deb.debian.org (reachable
 * on these machines, as for .ci/run's apt-get).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DERIVED_REPOSITORY, derivedDockerfile } from "../remote-agent/backends/docker";
import { withAgent } from "./agent-harness";
import { TEST_IMAGE, docker, errorOf, requireDocker, statuses } from "./docker-helpers";

/** Removes earlier builds for `what` (label farlab.derived), so that this run builds again. */
async function removeDerived(what: RegExp): Promise<void> {
  for (const image of await docker.listImages({ filters: { reference: [DERIVED_REPOSITORY] } })) {
    if (what.test(image.Labels?.["farlab.derived"] ?? "")) await docker.getImage(image.Id).remove({ force: true }).catch(() => undefined);
  }
}

test("the derived Dockerfile quotes package names and refuses shell syntax", () => {
  assert.equal(
    derivedDockerfile("base:1", ["jq"], ["numpy>=1.2"]),
    "FROM base:1\n" +
      "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends 'jq' && rm -rf /var/lib/apt/lists/*\n" +
      "RUN python3 -m pip install --no-cache-dir 'numpy>=1.2' || python3 -m pip install --no-cache-dir --break-system-packages 'numpy>=1.2'\n",
  );
  assert.throws(() => derivedDockerfile("base:1", ["jq; rm -rf /"], []), { name: "ImageBuildError", message: /is not a package name/ });
});

test("apt= builds a derived image once, shows the build in the cell, and reuses it", async () => {
  await requireDocker();
  await removeDerived(/^apt=jq on /);
  await withAgent({ args: ["--backend", "docker"] }, async (agent) => {
    const session = { lang: "sh", resources: { image: TEST_IMAGE, apt: ["jq"] } };
    const first = await agent.run("echo '{\"a\": 41}' | jq '.a + 1'", { name: "one", ...session });
    const built = await agent.done(first);
    assert.equal(built.status, "ok", JSON.stringify(built.events.slice(-5)));
    assert.equal(agent.stdoutOf(first), "42\n");
    const shown = statuses(built.events);
    assert.ok(shown.includes(`building image for apt=jq on ${TEST_IMAGE}`), shown.join("\n"));
    assert.ok(shown.some((s) => /^build: Step 2\/\d : RUN apt-get update/.test(s)), shown.join("\n"));

    // Another session with the same packages: the image is found by its tag, not built again.
    const second = await agent.run("jq --version", { name: "two", ...session });
    const reused = await agent.done(second);
    assert.equal(reused.status, "ok");
    assert.match(agent.stdoutOf(second), /^jq-/);
    assert.deepEqual(statuses(reused.events).filter((s) => s.startsWith("build")), []);
  });
});

test("a derived image that cannot be built is an ImageBuildError with the build log", async () => {
  await requireDocker();
  await withAgent({ args: ["--backend", "docker"] }, async (agent) => {
    const jobId = await agent.run("true", { lang: "sh", resources: { image: TEST_IMAGE, apt: ["farlab-no-such-package"] } });
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "error");
    const error = errorOf(events);
    assert.equal(error?.ename, "ImageBuildError", JSON.stringify(error));
    assert.match(error!.evalue, /building the image for apt=farlab-no-such-package on farlab-test:latest failed/);
    assert.match(error!.evalue, /Unable to locate package farlab-no-such-package/);
  });
});

test("apt= on the process backend is a usage error", () =>
  withAgent({ args: ["--backend", "process"] }, async (agent) => {
    const answer = await agent.request({ type: "run", code: "true", session: { lang: "sh", resources: { apt: ["jq"] } } });
    assert.equal(answer.type, "error");
    assert.match(JSON.stringify(answer), /apt= and pip= build a container image: they need the docker backend/);
  }));
