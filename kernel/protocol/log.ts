/**
 * Kernel-process logging. A Jupyter kernel's stdout/stderr go to the frontend's server log, never
 * to a notebook, so logs are plain lines on stderr. FARLAB_LOG=debug turns on debug lines.
 */
const debugEnabled = /^(debug|1|true)$/i.test(process.env.FARLAB_LOG ?? "");

// When whoever reads our stderr is gone (EPIPE), logging must not turn into an error of its own.
let stderrBroken = false;
process.stderr.on("error", () => {
  stderrBroken = true;
});

function write(level: string, scope: string, message: string): void {
  if (!stderrBroken) process.stderr.write(`[farlab ${level} ${scope}] ${message}\n`);
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(scope: string): Logger {
  return {
    debug: (message) => debugEnabled && write("D", scope, message),
    info: (message) => write("I", scope, message),
    warn: (message) => write("W", scope, message),
    error: (message) => write("E", scope, message),
  };
}
