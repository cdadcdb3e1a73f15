/**
 * Errors of connecting to a remote agent. Each class name is the Jupyter `ename` a cell shows
 * (they are CellErrors, see ../remote/errors.ts), and each message says what to do about it.
 */
import { CellError } from "../remote/errors";

/** The agent's ZAP handler refused this client's CURVE key. */
export class AgentAuthError extends CellError {
  constructor(message: string) {
    super("AgentAuthError", message);
  }
}

/** The SSH host key is unknown, changed or revoked: the connection was refused before login. */
export class HostKeyError extends CellError {
  constructor(message: string) {
    super("HostKeyError", message);
  }
}

/** SSH login, the remote command, or the link itself failed. */
export class SshError extends CellError {
  constructor(message: string) {
    super("SshError", message);
  }
}

/** A transport could not be set up: no answer, wrong server key, bad URL. */
export class TransportError extends CellError {
  constructor(message: string) {
    super("TransportError", message);
  }
}
