/**
 * For the Docker backend's tests: the real engine and the test image must be there. They are not
 * skipped when dockerd is down: CI (.ci/run) starts it and builds the image, so a missing engine
 * is a broken setup, reported by name.
 */
import assert from "node:assert/strict";
import Docker from "dockerode";
import { LABEL_DATA_DIR, LABEL_SESSION } from "../remote-agent/backends/docker";
import type { JobEvent } from "../remote-agent/protocol/messages";

export const TEST_IMAGE = process.env.FARLAB_TEST_IMAGE ?? "farlab-test:latest";
export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

/** The texts of a job's status events, in order. */
export const statuses = (events: JobEvent[]) => events.flatMap((e) => (e.event.kind === "status" ? [e.event.text] : []));

/** A job's error event, if it has one. */
export function errorOf(events: JobEvent[]): { ename: string; evalue: string } | undefined {
  const found = events.find((e) => e.event.kind === "error");
  return found?.event as { ename: string; evalue: string } | undefined;
}

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
