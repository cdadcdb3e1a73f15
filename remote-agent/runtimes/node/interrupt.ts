/**
 * Where a TypeScript cell learns of SIGINT while it awaits.
 *
 * vm's breakOnSigint stops synchronous code through Node's SIGINT watchdog, but around each such
 * run Node swaps the signal disposition (it removes the process.on("SIGINT") listeners, starts
 * the watchdog, stops it, re-adds them); a SIGINT in those gaps is lost or, with no handler
 * installed for a moment, kills the process. So the runner holds Node's watchdog open for its
 * whole life (the same internal switch the REPL uses): every SIGINT then goes to it, a running
 * breakOnSigint script is stopped, and a SIGINT outside one is left pending, which an armed
 * InterruptSource polls for while a cell awaits. Without that binding, process.on("SIGINT").
 */
type Contextify = {
  startSigintWatchdog(): void;
  stopSigintWatchdog(): boolean;
  watchdogHasPendingSigint(): boolean;
};

const POLL_MS = 20;

function contextifyBinding(): Contextify | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<Contextify> }).binding("contextify");
    const ok = ["startSigintWatchdog", "stopSigintWatchdog", "watchdogHasPendingSigint"].every(
      (name) => typeof binding[name as keyof Contextify] === "function",
    );
    return ok ? (binding as Contextify) : undefined;
  } catch {
    return undefined;
  }
}

export interface InterruptSource {
  /** Call onInterrupt on the next SIGINT (a SIGINT from before arm() does not count). */
  arm(onInterrupt: () => void): void;
  disarm(): void;
}

export function createInterruptSource(): InterruptSource {
  const binding = contextifyBinding();
  if (!binding) {
    let handler: (() => void) | undefined;
    process.on("SIGINT", () => handler?.());
    return {
      arm: (onInterrupt) => (handler = onInterrupt),
      disarm: () => (handler = undefined),
    };
  }
  binding.startSigintWatchdog();
  // A nested start/stop returns (and clears) the pending flag without releasing the watchdog.
  const takePending = () => {
    binding.startSigintWatchdog();
    return binding.stopSigintWatchdog();
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    arm(onInterrupt) {
      takePending();
      timer = setInterval(() => {
        if (binding.watchdogHasPendingSigint() && takePending()) onInterrupt();
      }, POLL_MS);
    },
    disarm() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
