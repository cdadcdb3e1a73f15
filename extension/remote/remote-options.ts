/**
 * The options of `%%remote` (shared/MAGICS.md table), declared once: `%%remote` parses them,
 * `%remote config` stores notebook-wide defaults of the same options, and both are turned into
 * the agent protocol's SessionRef + timeout here. The parser (extension/magics) checks kinds,
 * sizes and durations; this module checks what the parser cannot (GPU specs, volume mounts,
 * names) so that a bad cell fails before anything is sent to an agent.
 */
import type { Lang, Resources, SessionRef } from "../../remote-agent/protocol/messages";
import { formatDuration } from "../../kernel/display/progress";
import { MagicUsageError } from "../magics/errors";
import type { FlagSpec, OptionSpec, ParsedMagic } from "../magics/types";

export const REMOTE_OPTIONS: readonly OptionSpec[] = [
  {
    name: "lang",
    type: { kind: "enum", values: ["ts", "python", "sh"], aliases: { typescript: "ts", py: "python", bash: "sh" } },
    help: "language of the cell body: ts (typescript), python (py) or sh (bash); default ts",
  },
  { name: "agent", type: { kind: "string" }, help: "agent to run on; default: the embedded local agent" },
  { name: "session", type: { kind: "string" }, help: "named persistent session; cells naming it share state" },
  { name: "gpu", type: { kind: "string" }, help: "GPU spec: A100, H100:2, any, any:2, H100|A100" },
  { name: "cpu", type: { kind: "number", min: 0 }, help: "CPU cores (may be fractional)" },
  { name: "memory", type: { kind: "size" }, help: "memory limit: 512 (MiB), 512MiB, 16GiB" },
  { name: "timeout", type: { kind: "duration" }, help: "time limit per cell: 300 (s), 90s, 10m, 2h; default 1h" },
  { name: "image", type: { kind: "string" }, help: "container image (docker backend)" },
  { name: "backend", type: { kind: "enum", values: ["docker", "process"] }, help: "docker or process; default: the agent's" },
  { name: "volumes", type: { kind: "list" }, help: "volumes to mount: name:/mount[:ro], comma-separated" },
  { name: "secrets", type: { kind: "list" }, help: "secret names, comma-separated, injected as environment variables" },
  { name: "apt", type: { kind: "list" }, help: "Debian packages installed into a derived image (docker backend), comma-separated" },
  { name: "pip", type: { kind: "list" }, help: "pip packages installed into a derived image (docker backend), comma-separated" },
];

export const REMOTE_FLAGS: readonly FlagSpec[] = [
  { name: "fresh", help: "run in a throwaway runtime torn down after the cell" },
];

export const DEFAULT_TIMEOUT_MS = 3_600_000;

/** Option values as the parser gives them (sizes in MiB, durations in ms). */
export type RemoteOptionValues = ParsedMagic["options"];

/** What one %%remote run asks the agent for. */
export interface RemotePlan {
  agent: string | undefined;
  session: SessionRef;
  timeoutMs: number;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const GPU_ALTERNATIVE = /^(?:any|[A-Za-z0-9][A-Za-z0-9._-]*)(?::[1-9][0-9]*)?$/;
const SECRET_NAME = NAME;

/** Checks every option value beyond its kind; throws MagicUsageError naming the option. */
export function validateRemoteOptions(options: RemoteOptionValues): void {
  const gpu = options.gpu;
  if (typeof gpu === "string" && !gpu.split("|").every((alt) => GPU_ALTERNATIVE.test(alt))) {
    throw new MagicUsageError(
      `gpu=${gpu} is not a GPU spec; accepted: a GPU type (A100), a type and a count (H100:2), ` +
        "any, any:2, or alternatives in order of preference (H100|A100)",
    );
  }
  if (typeof options.cpu === "number" && !(options.cpu > 0)) {
    throw new MagicUsageError(`cpu=${options.cpu} must be more than 0 cores (e.g. cpu=2 or cpu=0.5)`);
  }
  if (typeof options.session === "string" && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(options.session)) {
    throw new MagicUsageError(
      `session=${options.session} is not a session name; accepted: letters, digits, '.', '_' and '-', ` +
        "starting with a letter or digit, at most 128 characters",
    );
  }
  if (Array.isArray(options.volumes)) options.volumes.forEach(parseVolume);
  if (Array.isArray(options.secrets)) {
    for (const name of options.secrets) {
      if (!SECRET_NAME.test(name)) {
        throw new MagicUsageError(`secrets=: '${name}' is not a secret name; accepted: ${NAME.source}`);
      }
    }
  }
}

/** `name:/mount[:ro]` -> a Resources volume. */
function parseVolume(text: string): NonNullable<Resources["volumes"]>[number] {
  const parts = text.split(":");
  const [name, mountPath, mode] = parts;
  const problem =
    parts.length < 2 || parts.length > 3
      ? "expected name:/mount or name:/mount:ro"
      : !NAME.test(name)
        ? `'${name}' is not a volume name (accepted: ${NAME.source})`
        : !mountPath.startsWith("/")
          ? `the mount point '${mountPath}' must be an absolute path`
          : mode !== undefined && mode !== "ro" && mode !== "rw"
            ? `'${mode}' is not a mount mode (ro or rw)`
            : undefined;
  if (problem) throw new MagicUsageError(`volumes=${text}: ${problem}`);
  return { name, mountPath, readOnly: mode === "ro" };
}

/** Turns one %%remote invocation (plus the notebook's %remote config defaults) into a plan. */
export function planRemoteRun(
  magic: Pick<ParsedMagic, "options" | "flags">,
  defaults: { options: RemoteOptionValues; flags: ReadonlySet<string> },
): RemotePlan {
  const options = { ...defaults.options, ...magic.options };
  validateRemoteOptions(options);
  const str = (key: string) => (typeof options[key] === "string" ? (options[key] as string) : undefined);
  const num = (key: string) => (typeof options[key] === "number" ? (options[key] as number) : undefined);
  const list = (key: string) => (Array.isArray(options[key]) ? (options[key] as string[]) : undefined);

  const resources: Resources = {};
  if (str("gpu")) resources.gpu = str("gpu");
  if (num("cpu") !== undefined) resources.cpu = num("cpu");
  if (num("memory") !== undefined) resources.memoryMiB = num("memory");
  if (str("image")) resources.image = str("image");
  if (str("backend")) resources.backend = str("backend") as Resources["backend"];
  const volumes = list("volumes");
  if (volumes?.length) resources.volumes = volumes.map(parseVolume);
  const secrets = list("secrets");
  if (secrets?.length) resources.secrets = secrets;
  for (const key of ["apt", "pip"] as const) {
    const packages = list(key);
    if (packages?.length) resources[key] = packages;
  }

  return {
    agent: str("agent"),
    session: {
      name: str("session"),
      lang: (str("lang") ?? "ts") as Lang,
      resources,
      fresh: magic.flags.has("fresh") || defaults.flags.has("fresh"),
    },
    timeoutMs: Math.round(num("timeout") ?? DEFAULT_TIMEOUT_MS),
  };
}

/**
 * Notebook-wide defaults set by `%remote config key=value ...`, read by every %%remote (one per
 * executor process, i.e. per kernel; a kernel restart forgets them, like the notebook's state).
 */
export class RemoteDefaults {
  options: RemoteOptionValues = {};
  flags = new Set<string>();

  set(options: RemoteOptionValues, flags: ReadonlySet<string>): void {
    validateRemoteOptions({ ...this.options, ...options });
    this.options = { ...this.options, ...options };
    for (const flag of flags) this.flags.add(flag);
  }

  unset(key: string): void {
    delete this.options[key];
  }

  reset(): void {
    this.options = {};
    this.flags.clear();
  }

  /** `key=value` lines as a user would type them. */
  describe(): string[] {
    const lines = Object.entries(this.options).map(([key, value]) => `${key}=${formatOption(key, value)}`);
    for (const flag of this.flags) lines.push(`--${flag}`);
    return lines;
  }
}

export const remoteDefaults = new RemoteDefaults();

function formatOption(key: string, value: unknown): string {
  if (key === "memory" && typeof value === "number") return `${value}MiB`;
  if (key === "timeout" && typeof value === "number") return formatDuration(value / 1000);
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}
