/**
 * The seam between the Jupyter protocol server and a language (xeus' xinterpreter).
 *
 * The protocol server (kernel/protocol) knows nothing of TypeScript, magics or agents; it calls
 * an Interpreter. The Interpreter used in production forwards to the executor child process
 * (kernel/executor), which routes a cell either to the magic router or to the TypeScript engine.
 *
 * Cursor positions here are Unicode code points, as in the Jupyter protocol >= 5.2.
 */

/** Output a running request publishes on iopub (msg_type and content as in the protocol). */
export type IopubOutput =
  | { msgType: "stream"; content: { name: "stdout" | "stderr"; text: string } }
  | { msgType: "display_data"; content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient?: { display_id?: string } } }
  | { msgType: "update_display_data"; content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: { display_id: string } } }
  | { msgType: "clear_output"; content: { wait: boolean } }
  | { msgType: "execute_result"; content: { data: Record<string, unknown>; metadata: Record<string, unknown> } }
  | { msgType: "error"; content: ErrorContent };

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** What the server lends to one execution: its iopub outputs and the stdin channel. */
export interface ExecutionIO {
  /** Publish on iopub with this request as parent. execute_result gets execution_count added by the server. */
  publish(output: IopubOutput): void;
  /** Ask the frontend for input (input_request); rejects with StdinNotAllowedError when allow_stdin is false. */
  input(prompt: string, password: boolean): Promise<string>;
}

export interface ExecuteParams {
  code: string;
  silent: boolean;
  storeHistory: boolean;
  allowStdin: boolean;
  executionCount: number;
  userExpressions: Record<string, string>;
}

export type ExecuteOutcome =
  | { status: "ok"; userExpressions?: Record<string, unknown> }
  | ({ status: "error" } & ErrorContent)
  | { status: "aborted" };

export interface CompleteResult {
  matches: string[];
  cursorStart: number; // code points
  cursorEnd: number; // code points
  metadata: Record<string, unknown>;
}

export interface InspectResult {
  found: boolean;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export type IsCompleteResult =
  | { status: "complete" }
  | { status: "incomplete"; indent: string }
  | { status: "invalid" }
  | { status: "unknown" };

export interface Interpreter {
  execute(params: ExecuteParams, io: ExecutionIO): Promise<ExecuteOutcome>;
  complete(code: string, cursorPos: number): Promise<CompleteResult>;
  inspect(code: string, cursorPos: number, detailLevel: number): Promise<InspectResult>;
  isComplete(code: string): Promise<IsCompleteResult>;
  /** Interrupt the running execution (if any). Must work while user code blocks its thread. */
  interrupt(): void;
  /** Stop (restart=false) or restart with fresh state (restart=true). */
  shutdown(restart: boolean): Promise<void>;
}
