/**
 * Benchmark: the Docker backend beside the process backend, through a real `farlab-agent serve
 * --stdio` (the tests' harness), in one run:
 * - baseline: `docker run --rm farlab-test:latest true` (the engine's own container start);
 * - cold session start: `run` of a new session -> its first stream event (`print('hi')`), Python,
 *   on both backends (the process backend's number is the runtime's own start);
 *   goal: docker <= 1.5 x baseline + the process backend's cold start;
 * - warm round trip: `run` -> `done` of `x = 1` in a started session, both backends.
 *
 *   npx tsc -p . && node scripts/bundle-runtimes.js && node dist/bench/docker-cell.js --runs 10
 */
import { execFileSync } from "node:child_process";
import { AgentHarness } from "../test/agent-harness";
import { median, option, runBench } from "./lib";

const IMAGE = "farlab-test:latest";

function dockerRunTrue(): number {
  const start = performance.now();
  execFileSync("docker", ["run", "--rm", IMAGE, "true"]);
  return performance.now() - start;
}

async function measure(backend: "docker" | "process", runs: number): Promise<{ cold_ms: number; warm_ms: number }> {
  const agent = AgentHarness.start({ args: ["--backend", backend] });
  try {
    const session = (name: string) => ({ name, lang: "python", resources: backend === "docker" ? { image: IMAGE } : {} });
    const cold: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      const jobId = await agent.run("print('hi')", session(`cold-${i}`));
      await agent.waitForEvent(jobId, (e) => e.kind === "stream");
      cold.push(performance.now() - start);
      await agent.done(jobId);
      await agent.ok({ type: "session_stop", name: `cold-${i}` });
    }
    const warm: number[] = [];
    await agent.done(await agent.run("x = 0", session("warm")));
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      await agent.done(await agent.run("x = 1", session("warm")));
      warm.push(performance.now() - start);
    }
    return { cold_ms: median(cold), warm_ms: median(warm) };
  } finally {
    await agent.close();
  }
}

runBench(async () => {
  const runs = Number(option("runs", "10"));
  dockerRunTrue(); // first start warms the engine's caches
  const baseline = median(Array.from({ length: runs }, dockerRunTrue));
  const docker = await measure("docker", runs);
  const processBackend = await measure("process", runs);
  const goal = 1.5 * baseline + processBackend.cold_ms;
  console.log(
    JSON.stringify(
      {
        runs,
        docker_run_true_ms: Math.round(baseline),
        docker: { cold_start_to_first_output_ms: Math.round(docker.cold_ms), warm_round_trip_ms: Math.round(docker.warm_ms) },
        process: { cold_start_to_first_output_ms: Math.round(processBackend.cold_ms), warm_round_trip_ms: Math.round(processBackend.warm_ms) },
        cold_goal_ms: Math.round(goal),
        cold_goal_met: docker.cold_ms <= goal,
      },
      null,
      1,
    ),
  );
});
