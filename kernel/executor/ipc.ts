/**
 * Messages between the protocol server (parent) and the executor child process, over Node's
 * IPC channel (child_process.fork). Interrupts are NOT messages: the parent sends SIGINT to the
 * child, because the child's thread may be blocked in user code (see docs/architecture.md).
 */
import type {
  CompleteResult,
  ExecuteOutcome,
  ExecuteParams,
  InspectResult,
  IopubOutput,
  IsCompleteResult,
} from "../interpreter";

/** parent -> child */
export type ToExecutor =
  | { type: "execute"; id: number; params: ExecuteParams }
  | { type: "complete"; id: number; code: string; cursorPos: number }
  | { type: "inspect"; id: number; code: string; cursorPos: number; detailLevel: number }
  | { type: "is_complete"; id: number; code: string }
  | { type: "input_reply"; id: number; inputId: number; value: string }
  /** name: the error class the cell should see (e.g. "StdinNotAllowedError" when allow_stdin is false). */
  | { type: "input_refused"; id: number; inputId: number; message: string; name?: string };

/** child -> parent */
export type FromExecutor =
  | { type: "ready" }
  | { type: "output"; id: number; output: IopubOutput }
  | { type: "input_request"; id: number; inputId: number; prompt: string; password: boolean }
  | { type: "execute_done"; id: number; outcome: ExecuteOutcome }
  | { type: "complete_done"; id: number; result: CompleteResult }
  | { type: "inspect_done"; id: number; result: InspectResult }
  | { type: "is_complete_done"; id: number; result: IsCompleteResult }
  /** The child's SIGINT handler ran while a cell was running: its event loop is alive and the
   * cell is unwinding, so the kernel must not kill it for being unresponsive. */
  | { type: "interrupt_received" }
  /** The child caught SIGINT and has unwound the running cell (or nothing was running). */
  | { type: "interrupted" };
