/**
 * DATA_DIR/authorized_keys: the client CURVE keys an agent accepts over ZeroMQ. One key per line,
 * Z85 (40 characters), optionally followed by a name; `#` starts a comment line.
 *
 *     rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7   alice-laptop
 *
 * The file is re-read whenever it changes (checked on each lookup, which happens once per new
 * connection), so `farlab-agent authorize` takes effect without restarting the agent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { curveKeyProblem } from "./z85";

export const AUTHORIZED_KEYS_FILE = "authorized_keys";

export interface AuthorizedKey {
  key: string;
  name: string | undefined;
  line: number;
}

export function authorizedKeysPath(dataDir: string): string {
  return path.join(dataDir, AUTHORIZED_KEYS_FILE);
}

/** Parses the file's text; malformed lines are reported, not fatal (one typo must not lock everyone out). */
export function parseAuthorizedKeys(text: string): { keys: AuthorizedKey[]; problems: string[] } {
  const keys: AuthorizedKey[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [key, ...rest] = line.split(/\s+/);
    const problem = curveKeyProblem(key);
    if (problem) problems.push(`line ${index + 1}: ${problem}`);
    else keys.push({ key, name: rest.join(" ") || undefined, line: index + 1 });
  });
  return { keys, problems };
}

/** The keys of one authorized_keys file, re-read when the file changes. */
export class AuthorizedKeys {
  private stamp = "";
  private byKey = new Map<string, AuthorizedKey>();

  constructor(
    readonly file: string,
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** The entry for `key`, or undefined when it is not authorized. */
  lookup(key: string): AuthorizedKey | undefined {
    this.refresh();
    return this.byKey.get(key);
  }

  private refresh(): void {
    let stamp: string;
    try {
      const stat = fs.statSync(this.file);
      stamp = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    } catch {
      stamp = "missing"; // no file: nobody is authorized yet
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    const text = stamp === "missing" ? "" : fs.readFileSync(this.file, "utf8");
    const { keys, problems } = parseAuthorizedKeys(text);
    for (const problem of problems) this.warn(`${this.file} ${problem} (line ignored)`);
    this.byKey = new Map(keys.map((entry) => [entry.key, entry]));
  }
}

/**
 * Adds a key to the file (made 0600 if new). Returns false when the key was already there.
 * Throws with a message for the user when the key is not a Z85 CURVE key or the name is unusable.
 */
export function authorizeKey(file: string, key: string, name?: string): boolean {
  const problem = curveKeyProblem(key);
  if (problem) throw new Error(`${problem}. The key to authorize is what \`farlab keys\` prints on the client.`);
  if (name !== undefined && (/[\r\n]/.test(name) || name.trim() === "")) {
    throw new Error("--name must be a non-empty single line");
  }
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  if (parseAuthorizedKeys(text).keys.some((entry) => entry.key === key)) return false;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const separator = text === "" || text.endsWith("\n") ? "" : "\n";
  fs.appendFileSync(file, `${separator}${key}${name ? `  ${name.trim()}` : ""}\n`, { mode: 0o600 });
  return true;
}
