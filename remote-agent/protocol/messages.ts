/**
 * The farlab agent protocol, declared once. Both ends import these schemas: the agent validates
 * every request at its edge (a bad frame gets an `error` reply, never a crash), the client
 * validates every reply and event.
 *
 * A message is a JSON header plus at most one optional binary payload (file chunks, images);
 * see ./framing.ts for how frames travel over stdio/SSH (length-prefixed) and ZeroMQ (multipart).
 *
 * Jobs: one cell run (or one %map). Every job event carries a per-job sequence number `seq`
 * (1, 2, 3, ...) and is appended to the on-disk journal before it is sent. The client
 * acknowledges what it has rendered (`ack`); after a reconnect it `attach`es from its last seq.
 */
import { z } from "zod";

export const PROTOCOL_VERSION = 1;
/** Largest header accepted, in bytes; larger frames are refused with an error reply. */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
/** Largest binary payload accepted in one frame. */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Shared pieces

export const Lang = z.enum(["ts", "python", "sh"]);
export type Lang = z.infer<typeof Lang>;

/** Resources fixed when a session starts. Sizes in MiB, durations in ms. */
export const Resources = z.object({
  gpu: z.string().optional(), // spec: "A100", "H100:2", "any", "any:2", "H100|A100"
  cpu: z.number().positive().optional(),
  memoryMiB: z.number().positive().optional(),
  image: z.string().optional(),
  backend: z.enum(["docker", "process", "slurm"]).optional(),
  volumes: z.array(z.object({ name: z.string(), mountPath: z.string(), readOnly: z.boolean() })).optional(),
  secrets: z.array(z.string()).optional(),
});
export type Resources = z.infer<typeof Resources>;

export const SessionRef = z.object({
  /** Named session; absent = the default session for (client, lang, resources). */
  name: z.string().min(1).max(128).optional(),
  lang: Lang,
  resources: Resources,
  /** Throwaway runtime torn down after the cell. */
  fresh: z.boolean().default(false),
});
export type SessionRef = z.infer<typeof SessionRef>;

const MimeBundle = z.record(z.string(), z.unknown());

// ---------------------------------------------------------------------------------------------
// Job events (agent -> client), journalled

export const JobEventBody = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("queued"), position: z.number().int(), reason: z.string() }),
  z.object({ kind: z.literal("status"), text: z.string() }), // "waiting for A100: held by session 'two'"
  z.object({ kind: z.literal("started"), where: z.string(), session: z.string(), gpus: z.array(z.string()) }),
  z.object({ kind: z.literal("stream"), name: z.enum(["stdout", "stderr"]), text: z.string() }),
  z.object({ kind: z.literal("display"), data: MimeBundle, metadata: z.record(z.string(), z.unknown()), displayId: z.string().optional() }),
  z.object({ kind: z.literal("update_display"), data: MimeBundle, metadata: z.record(z.string(), z.unknown()), displayId: z.string() }),
  z.object({ kind: z.literal("clear_output"), wait: z.boolean() }),
  z.object({
    kind: z.literal("progress"),
    id: z.string(),
    n: z.number(),
    total: z.number().nullable(),
    description: z.string().optional(),
    closed: z.boolean().default(false),
  }),
  z.object({
    kind: z.literal("result"),
    data: MimeBundle,
    metadata: z.record(z.string(), z.unknown()),
    /** JSON value of the last expression, present when the run asked for it (-o). */
    value: z.unknown().optional(),
    /** Set when the run asked for the value but it is not JSON-serialisable. */
    valueError: z.string().optional(),
  }),
  z.object({ kind: z.literal("error"), ename: z.string(), evalue: z.string(), traceback: z.array(z.string()) }),
  z.object({
    kind: z.literal("done"),
    status: z.enum(["ok", "error", "interrupted", "timeout", "cancelled"]),
    elapsedMs: z.number(),
  }),
]);
export type JobEventBody = z.infer<typeof JobEventBody>;

export const JobEvent = z.object({
  type: z.literal("event"),
  jobId: z.string(),
  seq: z.number().int().positive(),
  time: z.number(), // ms since epoch
  event: JobEventBody,
});
export type JobEvent = z.infer<typeof JobEvent>;

// ---------------------------------------------------------------------------------------------
// Requests (client -> agent). Every request has an `id` chosen by the client; the agent answers
// with exactly one `reply` or `error` carrying `re: id`.

const base = { v: z.literal(PROTOCOL_VERSION), id: z.string().min(1).max(128) };

export const Request = z.discriminatedUnion("type", [
  z.object({ ...base, type: z.literal("hello"), client: z.object({ id: z.string(), name: z.string().optional() }) }),
  z.object({
    ...base,
    type: z.literal("run"),
    session: SessionRef,
    code: z.string(),
    /** Values to bind in the remote namespace before running (-i). */
    inputs: z.record(z.string(), z.unknown()).default({}),
    /** Ask for the last expression's JSON value (-o). */
    wantValue: z.boolean().default(false),
    timeoutMs: z.number().int().positive().default(3_600_000),
  }),
  z.object({ ...base, type: z.literal("interrupt"), jobId: z.string() }),
  z.object({ ...base, type: z.literal("cancel"), jobId: z.string() }),
  /** Replay a job's events with seq > fromSeq, then follow it live until done. */
  z.object({ ...base, type: z.literal("attach"), jobId: z.string(), fromSeq: z.number().int().min(0).default(0) }),
  z.object({ ...base, type: z.literal("ack"), jobId: z.string(), seq: z.number().int().min(0) }),
  z.object({ ...base, type: z.literal("jobs") }),
  z.object({ ...base, type: z.literal("status") }),
  z.object({ ...base, type: z.literal("sessions") }),
  z.object({ ...base, type: z.literal("session_stop"), name: z.string() }),
  z.object({ ...base, type: z.literal("session_restart"), name: z.string() }),
]);
export type Request = z.infer<typeof Request>;
export type RequestType = Request["type"];

// ---------------------------------------------------------------------------------------------
// Replies (agent -> client)

export const GpuInfo = z.object({
  index: z.number().int(),
  uuid: z.string(),
  name: z.string(),
  memoryTotalMiB: z.number(),
  memoryUsedMiB: z.number(),
  /** Session holding it, if allocated. */
  heldBy: z.string().nullable(),
});
export type GpuInfo = z.infer<typeof GpuInfo>;

export const SessionInfo = z.object({
  name: z.string(),
  lang: Lang,
  resources: Resources,
  backend: z.string(),
  gpus: z.array(z.string()),
  state: z.enum(["starting", "idle", "busy", "stopped"]),
  startedAt: z.number(),
  cells: z.number().int(),
});
export type SessionInfo = z.infer<typeof SessionInfo>;

export const JobInfo = z.object({
  jobId: z.string(),
  session: z.string(),
  state: z.enum(["queued", "running", "done"]),
  status: z.string().optional(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
  lastSeq: z.number().int(),
  codePreview: z.string(),
});
export type JobInfo = z.infer<typeof JobInfo>;

export const ReplyBody = z.discriminatedUnion("of", [
  z.object({ of: z.literal("hello"), agentVersion: z.string(), protocol: z.number(), backend: z.string(), agentId: z.string() }),
  z.object({ of: z.literal("run"), jobId: z.string() }),
  z.object({ of: z.literal("interrupt") }),
  z.object({ of: z.literal("cancel") }),
  z.object({ of: z.literal("attach"), jobId: z.string(), lastSeq: z.number().int() }),
  z.object({ of: z.literal("ack") }),
  z.object({ of: z.literal("jobs"), jobs: z.array(JobInfo) }),
  z.object({
    of: z.literal("status"),
    agentId: z.string(),
    agentVersion: z.string(),
    backend: z.string(),
    gpus: z.array(GpuInfo),
    sessions: z.array(SessionInfo),
    jobs: z.array(JobInfo),
  }),
  z.object({ of: z.literal("sessions"), sessions: z.array(SessionInfo) }),
  z.object({ of: z.literal("session_stop") }),
  z.object({ of: z.literal("session_restart") }),
]);
export type ReplyBody = z.infer<typeof ReplyBody>;

export const Reply = z.object({ type: z.literal("reply"), re: z.string(), body: ReplyBody });
export type Reply = z.infer<typeof Reply>;

/** Error codes a client can tell apart (mapped onto typed errors in extension/). */
export const ErrorCode = z.enum([
  "bad_frame", // not parseable / failed validation
  "too_large",
  "unsupported_version",
  "unknown_type",
  "not_found", // job, session, volume, secret
  "usage", // e.g. resource mismatch for a named session, GPU spec never satisfiable
  "unauthorized",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorReply = z.object({
  type: z.literal("error"),
  re: z.string().nullable(), // null when the request id could not be read
  code: ErrorCode,
  message: z.string(),
});
export type ErrorReply = z.infer<typeof ErrorReply>;

/** Everything the agent sends. */
export const FromAgent = z.discriminatedUnion("type", [JobEvent, Reply, ErrorReply]);
export type FromAgent = z.infer<typeof FromAgent>;
