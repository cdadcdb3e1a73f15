/**
 * The Docker backend end to end: the real kernel, driven by Debian's jupyter_client
 * (test/python/test_docker.py), with its embedded agent on `--backend docker` and the test image
 * as the default image; then, once the kernel has shut down, no container of that agent is left.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { containersOf, requireDocker, TEST_IMAGE } from "./docker-helpers";
import { kernelDriverSuite } from "./helpers/python-driver";
import { waitFor } from "./helpers/wait";

let agentDir = "";

test("a Docker engine and the test image are there", requireDocker);

kernelDriverSuite({
  name: "docker",
  script: "test_docker.py",
  env: (scratch) => {
    agentDir = path.join(scratch, "agent");
    return { FARLAB_AGENT_BACKEND: "docker", FARLAB_DOCKER_IMAGE: TEST_IMAGE };
  },
  behaviours: {
    test_1_status_names_the_docker_backend: "%remote status names the docker backend",
    test_2_python_state_in_a_container: "Python cells keep state in a container of image=",
    test_3_typescript_state_in_the_default_image: "TypeScript cells keep state in the default image (no node in it)",
  },
});

test("the kernel's shutdown removed the session containers", async () => {
  assert.ok(agentDir, "the driver ran");
  // The embedded agent stops its sessions after the kernel has gone: wait for that, bounded.
  await waitFor(async () => (await containersOf(agentDir)).length === 0, { what: `no containers labelled ${agentDir}`, timeoutMs: 30_000 });
});
