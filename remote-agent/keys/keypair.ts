/**
 * A CURVE keypair kept in a folder, made on first use: NAME.pub (the public key, Z85) and
 * NAME.key (the secret key, Z85, mode 0600). Used by the agent (DATA_DIR/keys/agent.*) and the
 * client (~/.config/farlab/client.*). zeromq.js cannot derive a public key from a secret one, so
 * both are stored.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { curveKeyPair } from "zeromq";
import { curveKeyProblem } from "./z85";

export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

export interface KeyFiles {
  publicFile: string;
  secretFile: string;
}

export function keyFiles(dir: string, name: string): KeyFiles {
  return { publicFile: path.join(dir, `${name}.pub`), secretFile: path.join(dir, `${name}.key`) };
}

/** Reads the keypair NAME in `dir`, making it (and `dir`, 0700) if it does not exist yet. */
export function loadOrCreateKeyPair(dir: string, name: string): CurveKeyPair {
  const files = keyFiles(dir, name);
  const existing = readKeyPair(files);
  if (existing) return existing;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = curveKeyPair();
  // The secret is written 0600 from the first byte (never briefly world-readable), under a
  // temporary name, then renamed: a crash leaves no half-written key; a second process that
  // raced us simply overwrites with a pair that is equally valid, and both files are renamed
  // secret first, so a reader never sees a public key without its secret.
  writeAtomically(files.secretFile, pair.secretKey + "\n", 0o600);
  writeAtomically(files.publicFile, pair.publicKey + "\n", 0o644);
  return readKeyPair(files) ?? pair;
}

function readKeyPair(files: KeyFiles): CurveKeyPair | null {
  let publicKey: string;
  let secretKey: string;
  try {
    publicKey = fs.readFileSync(files.publicFile, "utf8").trim();
    secretKey = fs.readFileSync(files.secretFile, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  for (const [file, key] of [
    [files.publicFile, publicKey],
    [files.secretFile, secretKey],
  ]) {
    const problem = curveKeyProblem(key);
    if (problem) throw new Error(`${file} does not hold a CURVE key: ${problem}. Remove it (and its pair) to make a new keypair.`);
  }
  // A secret key others can read is no secret: tighten it, as ssh refuses such keys.
  const mode = fs.statSync(files.secretFile).mode & 0o777;
  if (mode & 0o077) fs.chmodSync(files.secretFile, 0o600);
  return { publicKey, secretKey };
}

function writeAtomically(file: string, text: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, text, { mode });
  fs.chmodSync(temporary, mode); // the umask may have narrowed or the file pre-existed
  fs.renameSync(temporary, file);
}
