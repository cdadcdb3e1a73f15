/**
 * The agent's %map requests: `map` starts a map job on a session's workers, `map_inputs` feeds it
 * (its reply is the back-pressure). A map is a job like a cell run: it is journalled, listed by
 * `jobs`, followed, attached, interrupted and cancelled through the same requests; it does not
 * queue behind the session's cells (it runs on the session's replicas, not on its runtime).
 */
import * as os from "node:os";
import type { Agent } from "../agent/agent";
import type { Connection } from "../agent/connection";
import type { HandlerTable } from "../agent/dispatcher";
import { notFound, usageError } from "../agent/errors";
import type { Session } from "../agent/session";
import { MapRun } from "./map-run";
import { WorkerPool } from "./worker-pool";

/** The maps each connection is streaming inputs to. */
const mapsOf = new WeakMap<Connection, Set<MapRun>>();

/** Called when a connection's incoming side has ended: its unfinished maps can never get their inputs. */
export function abandonMapsOf(connection: Connection): void {
  for (const run of mapsOf.get(connection) ?? []) run.abandon();
  mapsOf.delete(connection);
}

/** Workers when `workers=` is not given: the agent host's cores, at most 8. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(8, os.availableParallelism?.() ?? os.cpus().length));
}

export function createMapHandlers(agent: Agent): Pick<HandlerTable, "map" | "map_inputs"> {
  const pools = new WeakMap<Session, WorkerPool>();
  const runs = new Map<string, MapRun>();

  const poolOf = (session: Session): WorkerPool => {
    let pool = pools.get(session);
    if (!pool || pool.closed) {
      pool = new WorkerPool(session, agent.log);
      pools.set(session, pool);
    }
    return pool;
  };

  /** The caller's own session `name`: another user's session of the same name is never used. */
  const existingSession = (name: string, owner: string): Session | undefined => {
    try {
      return agent.sessions.find(name, owner);
    } catch {
      return undefined;
    }
  };

  /** Sessions whose recorded cells seem to define `fn`: a hint for "not defined" errors. */
  const sessionsDefining = (fn: string, owner: string): string[] => {
    const name = fn.split(".")[0].replace(/[$]/g, "\\$");
    const defines = new RegExp(`(?:^|\\n)\\s*(?:async\\s+)?(?:def|function|const|let|var|class)\\s+${name}\\b|(?:^|\\n)${name}\\s*=`);
    return agent.sessions
      .list(owner)
      .map((info) => existingSession(info.name, owner))
      .filter((s): s is Session => !!s && s.replay.cells.some((cell) => defines.test(cell.code)))
      .map((s) => `'${s.name}' (lang=${s.lang})`);
  };

  return {
    map(request, { connection, afterReply }) {
      if (request.session.fresh) {
        throw usageError("%map runs a function of a session, and --fresh has none; define the function with %%remote (session= optional) and map it there");
      }
      if (request.session.lang === "sh") {
        throw usageError("%map needs a function of a lang=python or lang=ts session; bash cells define none");
      }
      const session =
        (request.sessionSettingsFromName && request.session.name && existingSession(request.session.name, connection.owner)) ||
        agent.sessions.resolve(connection.owner, connection.clientId, request.session);
      const job = agent.createJob(session, { code: `%map ${request.fn}`, inputs: {}, wantValue: false, timeoutMs: request.timeoutMs });
      const run = new MapRun(job, poolOf(session), request, request.workers ?? defaultWorkers(), agent.log, (fn) => sessionsDefining(fn, connection.owner));
      runs.set(job.id, run);
      let streaming = mapsOf.get(connection);
      if (!streaming) mapsOf.set(connection, (streaming = new Set()));
      streaming.add(run);
      void job.finished.then(() => {
        runs.delete(job.id);
        streaming.delete(run);
      });
      agent.log(`job ${job.id}: %map ${request.fn} on ${run.workers} workers of session ${session.name}`);
      afterReply(() => {
        connection.follow(job.id, (deliver) => job.follow(0, deliver));
        void run.run();
      });
      return { of: "map", jobId: job.id, workers: run.workers };
    },

    async map_inputs(request) {
      const run = runs.get(request.jobId);
      if (!run) {
        if (agent.findJob(request.jobId)) return { of: "map_inputs", held: 0, ended: true }; // it has ended
        throw notFound(`no running %map job '${request.jobId}'`);
      }
      const { held, ended } = await run.addInputs(request.start, request.values, request.end);
      return { of: "map_inputs", held, ended };
    },
  };
}
