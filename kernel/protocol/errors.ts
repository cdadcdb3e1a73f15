/** Errors the protocol server hands to the code it runs. The class name is the Jupyter ename. */

/** The frontend did not offer stdin for this request (allow_stdin false), as IPython names it. */
export class StdinNotImplementedError extends Error {
  override name = "StdinNotImplementedError";
  constructor() {
    super("input was requested, but this frontend does not support input requests (allow_stdin is false)");
  }
}
