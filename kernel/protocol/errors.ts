/** Errors the protocol server hands to the code it runs. The class name is the Jupyter ename. */

/**
 * The frontend did not offer stdin for this request (allow_stdin false). Named as in the
 * Interpreter contract (kernel/interpreter.ts); IPython calls the same thing StdinNotImplementedError.
 */
export class StdinNotAllowedError extends Error {
  override name = "StdinNotAllowedError";
  constructor() {
    super("input was requested, but this frontend does not support input requests (allow_stdin is false)");
  }
}
