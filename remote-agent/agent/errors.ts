/**
 * Errors a request handler throws to answer with a typed `error` reply. Anything else a handler
 * throws is a bug: the dispatcher answers it as `internal` and logs the stack.
 */
import type { ErrorCode } from "../protocol/messages";

export class AgentError extends Error {
  override name = "AgentError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new AgentError("usage", message);
export const notFound = (message: string) => new AgentError("not_found", message);
