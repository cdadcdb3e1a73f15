/**
 * One handler per request type. A handler returns its reply body or throws an AgentError; the
 * dispatcher (./dispatcher.ts) validates requests and writes replies and errors.
 */
import { PROTOCOL_VERSION } from "../protocol/messages";
import type { Agent } from "./agent";
import type { HandlerTable } from "./dispatcher";
import { notFound } from "./errors";
import { followForeignJob } from "./journal-follow";
import { journalJobsOf, journalOwnedBy } from "./ownership";
import { capStreams } from "./stream-cap";
import { createVolumeHandlers } from "../volumes/handlers";
import { createMapHandlers } from "../map/handlers";

/** Recent jobs `jobs` lists from the journal beside those in memory. */
const JOURNAL_JOBS_LISTED = 50;

export function createHandlers(agent: Agent): HandlerTable {
  // Isolation (./ownership.ts): a connection finds only its own user's jobs and sessions; anyone
  // else's are "not found", exactly like jobs that do not exist.
  const ownJob = (jobId: string, owner: string) => {
    const found = agent.findJob(jobId);
    return found && found.job.owner === owner ? found : undefined;
  };
  const liveJob = (jobId: string, owner: string) => {
    const found = ownJob(jobId, owner);
    if (found) return found;
    if (journalOwnedBy(agent.journal, jobId, owner) && agent.journal.ownedByLiveAgent(jobId)) {
      throw notFound(`job '${jobId}' is run by another agent process on this host; \`%remote attach ${jobId}\` follows it, but it cannot be stopped from this connection`);
    }
    throw notFound(`no running or recent job '${jobId}'; \`%remote jobs\` lists them`);
  };

  return {
    ...createVolumeHandlers(agent.volumes, agent.transfers, agent.secrets),
    ...createMapHandlers(agent),

    hello(request, { connection }) {
      connection.clientId = request.client.id;
      connection.owner = connection.ownerFor(request.client);
      agent.log(`client ${request.client.id}${request.client.name ? ` (${request.client.name})` : ""} said hello`);
      return { of: "hello", agentVersion: agent.version, protocol: PROTOCOL_VERSION, backend: agent.backendName, agentId: agent.id };
    },

    run(request, { connection, afterReply }) {
      const session = agent.sessions.resolve(connection.owner, connection.clientId, request.session);
      let job;
      try {
        job = agent.createJob(
          session,
          { code: request.code, inputs: request.inputs, wantValue: request.wantValue, timeoutMs: request.timeoutMs },
          // Its owner and meta files are written with `started`, while the runner already runs it
          // (Session.runJob; a session that has to start its runtime first writes them before that).
          { claimWithFirstEvent: true },
        );
      } catch (e) {
        if (session.fresh) void session.stop(); // made for this job alone
        throw e;
      }
      (agent.log.fileOnly ?? agent.log)(`job ${job.id}: queued in session ${session.name}`);
      // The client learns the job id from the reply before any of the job's events.
      afterReply(() => {
        connection.follow(job.id, (deliver, flow) => job.follow(0, deliver, { capChars: request.streamCapChars, flow }));
        session.enqueue(job);
      });
      return { of: "run", jobId: job.id };
    },

    interrupt(request, { connection }) {
      const { job, session } = liveJob(request.jobId, connection.owner);
      void session.stopJob(job, "interrupted").catch((e) => agent.log(`interrupt ${job.id}: ${(e as Error).stack}`));
      return { of: "interrupt" };
    },

    cancel(request, { connection }) {
      const { job, session } = liveJob(request.jobId, connection.owner);
      void session.stopJob(job, "cancelled").catch((e) => agent.log(`cancel ${job.id}: ${(e as Error).stack}`));
      return { of: "cancel" };
    },

    attach(request, { connection, afterReply }) {
      const found = ownJob(request.jobId, connection.owner);
      if (found) {
        afterReply(() =>
          connection.follow(found.job.id, (deliver, flow) => found.job.follow(request.fromSeq, deliver, { capChars: request.streamCapChars, flow })),
        );
        return { of: "attach", jobId: found.job.id, lastSeq: found.job.lastSeq };
      }
      // A job of another agent process on this data dir (still running, or long done): the
      // journal is the meeting point.
      const events = journalOwnedBy(agent.journal, request.jobId, connection.owner) ? agent.journal.read(request.jobId) : [];
      if (events.length === 0) throw notFound(`no job '${request.jobId}' on this agent; \`%remote jobs\` lists them`);
      afterReply(() =>
        connection.follow(request.jobId, (deliver) =>
          request.streamCapChars === undefined
            ? followForeignJob(agent.journal, request.jobId, request.fromSeq, deliver)
            : followForeignJob(agent.journal, request.jobId, 0, capStreams(request.streamCapChars, request.fromSeq, deliver)),
        ),
      );
      return { of: "attach", jobId: request.jobId, lastSeq: events[events.length - 1].seq };
    },

    ack(request, { connection }) {
      const found = ownJob(request.jobId, connection.owner);
      if (found) found.job.ackedSeq = Math.max(found.job.ackedSeq, request.seq);
      else if (!journalOwnedBy(agent.journal, request.jobId, connection.owner)) throw notFound(`no job '${request.jobId}' on this agent`);
      return { of: "ack" };
    },

    jobs(_request, { connection }) {
      const inMemory = agent.jobInfos(connection.owner);
      const known = new Set(inMemory.map((job) => job.jobId));
      return { of: "jobs", jobs: [...inMemory, ...journalJobsOf(agent.journal, connection.owner, known, JOURNAL_JOBS_LISTED)] };
    },

    async status(_request, { connection }) {
      return {
        of: "status",
        agentId: agent.id,
        agentVersion: agent.version,
        backend: agent.backendName,
        gpus: await agent.gpuInfos(),
        sessions: agent.sessions.list(connection.owner),
        jobs: agent.jobInfos(connection.owner),
      };
    },

    sessions(_request, { connection }) {
      return { of: "sessions", sessions: agent.sessions.list(connection.owner) };
    },

    async session_stop(request, { connection }) {
      await agent.sessions.find(request.name, connection.owner).stop();
      return { of: "session_stop" };
    },

    async session_restart(request, { connection }) {
      await agent.sessions.find(request.name, connection.owner).restart();
      return { of: "session_restart" };
    },
  };
}
