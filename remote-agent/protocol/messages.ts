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
  /** Docker backend: packages installed into a derived image (built once, cached by content). */
  apt: z.array(z.string()).optional(),
  pip: z.array(z.string()).optional(),
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
// %map (docs/map.md): inputs travel in windows (`map_inputs`), results come back as job events.

/** Largest single %map input, or result, as JSON (bytes). Larger ones are refused by name. */
export const MAP_MAX_ITEM_BYTES = 4 * 1024 * 1024;

export const MapItemError = z.object({
  index: z.number().int().min(0),
  ename: z.string(),
  evalue: z.string(),
  traceback: z.array(z.string()),
  /** How many times the input was tried. */
  attempts: z.number().int(),
  /** The input itself, so the client can show which one failed. */
  input: z.unknown().optional(),
});
export type MapItemError = z.infer<typeof MapItemError>;


const mapBase = { v: z.literal(PROTOCOL_VERSION), id: z.string().min(1).max(128) };

const MAP_REQUESTS = [
  /**
   * Call the function `fn` of `session` on many inputs, on `workers` replicas of the session.
   * The reply names the job; its inputs follow in `map_inputs` windows.
   */
  z.object({
    ...mapBase,
    type: z.literal("map"),
    session: SessionRef,
    fn: z.string().min(1).max(256),
    /**
     * The user named the session but no language or resources: a running session of that name
     * is used with its own settings (`%map f xs session=mc` after `%%remote lang=python session=mc`).
     */
    sessionSettingsFromName: z.boolean().default(false),
    workers: z.number().int().min(1).max(256).optional(),
    retries: z.number().int().min(0).max(100).default(0),
    /** Inputs per dispatch; absent = adaptive. */
    batch: z.number().int().min(1).max(100_000).optional(),
    /** For the whole map. */
    timeoutMs: z.number().int().positive().default(3_600_000),
  }),
  /**
   * A window of inputs (`end` on the last one). The reply comes once the agent has room for more:
   * that is the back-pressure, so a client sends its next window after the reply.
   */
  z.object({
    ...mapBase,
    type: z.literal("map_inputs"),
    jobId: z.string(),
    /** Index of values[0]; the window holds inputs start, start + 1, ... */
    start: z.number().int().min(0),
    values: z.array(z.unknown()),
    end: z.boolean().default(false),
  }),
] as const;

const MAP_REPLIES = [
  z.object({ of: z.literal("map"), jobId: z.string(), workers: z.number().int() }),
  /** `held`: inputs the agent holds, not yet dispatched; `ended`: the map is over, send no more. */
  z.object({ of: z.literal("map_inputs"), held: z.number().int(), ended: z.boolean() }),
] as const;

// ---------------------------------------------------------------------------------------------
// Job events (agent -> client), journalled

export const JobEventBody = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("queued"), position: z.number().int(), reason: z.string() }),
  z.object({ kind: z.literal("status"), text: z.string() }), // "waiting for A100: held by session 'two'"
  z.object({ kind: z.literal("started"), where: z.string(), session: z.string(), gpus: z.array(z.string()) }),
  z.object({ kind: z.literal("stream"), name: z.enum(["stdout", "stderr"]), text: z.string() }),
  /**
   * Sent (never journalled) to a follower that asked for a stream cap (`streamCapChars` of `run`
   * or `attach`) in place of the stream event that reaches the cap: `text` is that event's text
   * up to the cap; the job's later stream text is journalled but not sent to that follower
   * (`attach` without a cap replays it all). It takes that event's seq, so resuming stays exact.
   */
  z.object({ kind: z.literal("stream_truncated"), name: z.enum(["stdout", "stderr"]), text: z.string(), capChars: z.number().int() }),
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
  /**
   * %map: final outcomes of some inputs (each index once per job): values[i] is the result of
   * input indices[i] (null for None/undefined); `errors` are inputs that failed after their retries.
   */
  z.object({
    kind: z.literal("map_results"),
    indices: z.array(z.number().int().min(0)),
    values: z.array(z.unknown()),
    errors: z.array(MapItemError).default([]),
  }),
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
// Volumes and secrets (docs/volumes.md). A transfer is a stream of chunks, each a request with
// a binary payload (put: `transfer_chunk` carries it; get: the `transfer_read` reply carries it),
// acknowledged one by one, so the sender keeps at most a window of chunks unacknowledged.

const volumeBase = { v: z.literal(PROTOCOL_VERSION), id: z.string().min(1).max(128) };
const volumeName = z.string().min(1).max(63);
const volumePath = z.string().max(4096);

export const VolumeEntry = z.object({
  name: z.string(),
  type: z.enum(["file", "dir", "symlink", "other"]),
  size: z.number(),
  mtime: z.number(),
});
export type VolumeEntry = z.infer<typeof VolumeEntry>;

export const VolumeInfo = z.object({ name: z.string(), bytes: z.number(), files: z.number().int(), mountedBy: z.array(z.string()) });
export type VolumeInfo = z.infer<typeof VolumeInfo>;

const VOLUME_REQUESTS = [
  z.object({ ...volumeBase, type: z.literal("volume_create"), name: volumeName }),
  z.object({ ...volumeBase, type: z.literal("volume_list") }),
  z.object({ ...volumeBase, type: z.literal("volume_ls"), name: volumeName, path: volumePath.default("") }),
  z.object({ ...volumeBase, type: z.literal("volume_rm"), name: volumeName, path: volumePath, recursive: z.boolean().default(false) }),
  z.object({ ...volumeBase, type: z.literal("volume_delete"), name: volumeName }),
  /** Starts an upload of a file or folder (kind) to `path` in the volume. */
  z.object({
    ...volumeBase,
    type: z.literal("volume_put"),
    name: volumeName,
    path: volumePath,
    kind: z.enum(["file", "dir"]),
    streamBytes: z.number().int().min(0),
  }),
  /** Starts a download of `path` (a file or folder) from the volume. */
  z.object({ ...volumeBase, type: z.literal("volume_get"), name: volumeName, path: volumePath }),
  /** Upload: chunk `seq` (0, 1, 2, ...) of the stream, as the payload. */
  z.object({ ...volumeBase, type: z.literal("transfer_chunk"), transferId: z.string(), seq: z.number().int().min(0) }),
  /** Download: asks for chunk `seq`; the reply carries it as its payload. */
  z.object({ ...volumeBase, type: z.literal("transfer_read"), transferId: z.string(), seq: z.number().int().min(0) }),
  /** Upload: all chunks sent; the agent checks the sha256 of the stream, fsyncs and renames. */
  z.object({ ...volumeBase, type: z.literal("transfer_end"), transferId: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  /** Either direction: stop and remove everything temporary. */
  z.object({ ...volumeBase, type: z.literal("transfer_abort"), transferId: z.string() }),
] as const;

const VOLUME_REPLIES = [
  z.object({ of: z.literal("volume_create"), created: z.boolean() }),
  z.object({ of: z.literal("volume_list"), volumes: z.array(VolumeInfo) }),
  z.object({ of: z.literal("volume_ls"), path: z.string(), entries: z.array(VolumeEntry) }),
  z.object({ of: z.literal("volume_rm"), removed: z.number().int() }),
  z.object({ of: z.literal("volume_delete") }),
  z.object({ of: z.literal("volume_put"), transferId: z.string(), chunkBytes: z.number().int().positive(), window: z.number().int().positive() }),
  z.object({
    of: z.literal("volume_get"),
    transferId: z.string(),
    kind: z.enum(["file", "dir"]),
    files: z.number().int(),
    dataBytes: z.number(),
    streamBytes: z.number(),
    chunkBytes: z.number().int().positive(),
    window: z.number().int().positive(),
  }),
  z.object({ of: z.literal("transfer_chunk"), seq: z.number().int() }),
  /** `eof`: no payload and no more chunks; `sha256` is then the hash of the whole stream. */
  z.object({ of: z.literal("transfer_read"), seq: z.number().int(), eof: z.boolean(), sha256: z.string().optional() }),
  z.object({ of: z.literal("transfer_end"), files: z.number().int(), bytes: z.number() }),
  z.object({ of: z.literal("transfer_abort") }),
] as const;

/** Secret names and keys; values travel only in `secret_set` and are never logged or journalled. */
const secretName = z.string().min(1).max(63);
export const SecretInfo = z.object({ name: z.string(), keys: z.array(z.string()), updatedAt: z.number() });
export type SecretInfo = z.infer<typeof SecretInfo>;

const SECRET_REQUESTS = [
  z.object({ ...volumeBase, type: z.literal("secret_set"), name: secretName, values: z.record(z.string(), z.string()) }),
  z.object({ ...volumeBase, type: z.literal("secret_list") }),
  z.object({ ...volumeBase, type: z.literal("secret_delete"), name: secretName }),
] as const;

const SECRET_REPLIES = [
  z.object({ of: z.literal("secret_set"), name: z.string(), keys: z.array(z.string()) }),
  z.object({ of: z.literal("secret_list"), secrets: z.array(SecretInfo) }),
  z.object({ of: z.literal("secret_delete") }),
] as const;

// ---------------------------------------------------------------------------------------------
// Requests (client -> agent). Every request has an `id` chosen by the client; the agent answers
// with exactly one `reply` or `error` carrying `re: id`.

const base = { v: z.literal(PROTOCOL_VERSION), id: z.string().min(1).max(128) };

const STREAM_CAP = z.number().int().positive().optional();

export const Request = z.discriminatedUnion("type", [
  z.object({
    ...base,
    type: z.literal("hello"),
    client: z.object({
      /** This connection's client (a kernel): default sessions are per client id. */
      id: z.string().max(256),
      name: z.string().max(256).optional(),
      /**
       * Who the client acts for, stable across kernels (e.g. its CURVE public key): jobs and named
       * sessions belong to a user, and a user sees only their own. A ZeroMQ agent ignores this
       * claim and uses the key the connection authenticated with.
       */
      user: z.string().max(256).optional(),
      /** ZeroMQ: proof that the client holds the CURVE key of `user` (remote-agent/keys/user-proof.ts). */
      proof: z.string().max(128).optional(),
    }),
  }),
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
    /**
     * Send at most this many characters of the job's stream text to this client, then one
     * `stream_truncated` event; the rest is journalled only. Absent: all of it.
     */
    streamCapChars: STREAM_CAP,
  }),
  z.object({ ...base, type: z.literal("interrupt"), jobId: z.string() }),
  z.object({ ...base, type: z.literal("cancel"), jobId: z.string() }),
  /** Replay a job's events with seq > fromSeq, then follow it live until done. */
  /** `streamCapChars`: as for `run`, counted from the job's first event (a resume passes the run's cap). */
  z.object({ ...base, type: z.literal("attach"), jobId: z.string(), fromSeq: z.number().int().min(0).default(0), streamCapChars: STREAM_CAP }),
  z.object({ ...base, type: z.literal("ack"), jobId: z.string(), seq: z.number().int().min(0) }),
  z.object({ ...base, type: z.literal("jobs") }),
  z.object({ ...base, type: z.literal("status") }),
  z.object({ ...base, type: z.literal("sessions") }),
  z.object({ ...base, type: z.literal("session_stop"), name: z.string() }),
  z.object({ ...base, type: z.literal("session_restart"), name: z.string() }),
  ...VOLUME_REQUESTS,
  ...SECRET_REQUESTS,
  ...MAP_REQUESTS,
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
  ...VOLUME_REPLIES,
  ...SECRET_REPLIES,
  ...MAP_REPLIES,
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
