/**
 * Errors a notebook user sees. Convention for the whole project: the class name IS the Jupyter
 * `ename` (error.name is set from the constructor, so subclasses need no boilerplate), and the
 * message is the `evalue`: what was wrong and what is accepted. A FarlabError is an expected,
 * user-facing failure, so the executor shows its message without an internal stack trace.
 */
export class FarlabError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    // new.target is the most derived class, so `class TimeoutError extends FarlabError {}`
    // gets name "TimeoutError" for free, and the name survives minification-free CommonJS builds.
    this.name = new.target.name;
  }

  /** The Jupyter error name (`ename`). */
  get ename(): string {
    return this.name;
  }
}

/** A magic line the parser, validator or router rejects before anything runs. */
export class MagicUsageError extends FarlabError {}

/** Whether an error is one of ours (message meant for the user) rather than a bug. */
export function isFarlabError(error: unknown): error is FarlabError {
  return error instanceof FarlabError;
}
