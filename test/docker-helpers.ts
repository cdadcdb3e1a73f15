/**
 * For the Docker backend's tests: the real engine and the test image must be there. They are not
 * skipped when dockerd is down: CI (.ci/run) starts it and builds the image, so a missing engine
 * is a broken setup, reported by name.
 */
import assert from "node:assert/strict";
import Docker from "dockerode";
import { LABEL_DATA_DIR, LABEL_SESSION } from "../remote-agent/backends/docker";

export const TEST_IMAGE = process.env.FARLAB_TEST_IMAGE ?? "farlab-test:latest";
export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

/** Fails (never skips) with what to do when dockerd or the test image is missing. */
export async function requireDocker(): Promise<void> {
  try {
    await docker.ping();
  } catch (e) {
    assert.fail(
      `no Docker engine answers on /var/run/docker.sock (${(e as Error).message}); ` +
        "start one: `dockerd --host unix:///var/run/docker.sock &` (.ci/run does)",
    );
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    assert.fail(`the test image ${TEST_IMAGE} is missing; build it with \`bash test/images/build.sh\` (.ci/run does)`);
  }
}

/** The containers of an agent's data dir (optionally of one session), running or not. */
export async function containersOf(dataDir: string, session?: string): Promise<Docker.ContainerInfo[]> {
  const label = [`${LABEL_DATA_DIR}=${dataDir}`, ...(session ? [`${LABEL_SESSION}=${session}`] : [])];
  return docker.listContainers({ all: true, filters: { label } });
}

/** Removes whatever a failed test left behind under `dataDir`. */
export async function removeContainersOf(dataDir: string): Promise<void> {
  for (const info of await containersOf(dataDir)) await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
}
