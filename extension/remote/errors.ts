/**
 * Typed errors of remote cells. Each class's `name` is the Jupyter `ename` the notebook shows,
 * and `traceback: string[]` is the cell's traceback (the remote runtime's for a RemoteError),
 * so the engine shows it instead of a local stack trace.
 */

import { FarlabError } from "../magics/errors";

/** Base: an error meant for the notebook, with its own traceback lines. */
export class CellError extends FarlabError {
  readonly traceback: string[];
  constructor(ename: string, message: string, traceback?: string[]) {
    super(message);
    this.name = ename; // not the class name: a RemoteError is named by the remote exception
    this.traceback = traceback ?? [`${ename}: ${message}`];
  }
}

/** An error the remote code raised, re-thrown locally under the remote `ename`. */
export class RemoteError extends CellError {}

/** The cell ran longer than its `timeout=`; the agent stopped it. */
export class TimeoutError extends CellError {
  constructor(message: string) {
    super("TimeoutError", message);
  }
}

/** The user interrupted the kernel and the remote runtime reported no error of its own. */
export class KeyboardInterrupt extends CellError {
  constructor(message: string) {
    super("KeyboardInterrupt", message);
  }
}

/** A `-i` variable or a `-o` value that cannot travel as JSON. */
export class SerializationError extends CellError {
  constructor(message: string) {
    super("SerializationError", message);
  }
}

/** The agent could not be reached, went away, or broke the protocol. */
export class AgentConnectionError extends CellError {
  constructor(message: string) {
    super("AgentConnectionError", message);
  }
}

/** The agent refused a request (an `error` reply); `code` is the protocol's ErrorCode. */
export class AgentRequestError extends CellError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(code === "not_found" ? "NotFoundError" : "AgentRequestError", message);
  }
}

/** The remote job ended as cancelled (e.g. its session was stopped). */
export class JobCancelledError extends CellError {
  constructor(message: string) {
    super("JobCancelledError", message);
  }
}
