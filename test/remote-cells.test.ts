/**
 * %%remote and %remote end to end: the real kernel (farlab install --prefix), driven by Debian's
 * jupyter_client (test/python/test_remote.py), running cells on the real embedded agent and its
 * Python (Debian's python3, with pandas, matplotlib, plotly), TypeScript and bash runtimes. A stand-in `nvidia-smi` on the kernel's PATH gives the agent
 * two GPUs to report and allocate.
 *
 * The Python driver runs once (one kernel start for many checks); each of its tests becomes one
 * subtest here, so a failure names the behaviour that broke.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { kernelDriverSuite } from "./helpers/python-driver";

const FAKE_NVIDIA_SMI = `#!/bin/sh
# Stand-in for nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits
echo "0, GPU-00000000-aaaa, NVIDIA A100-SXM4-40GB, 40960, 1024"
echo "1, GPU-11111111-bbbb, NVIDIA H100 80GB HBM3, 81559, 0"
`;

/** A folder put first on the kernel's PATH, holding the stand-in nvidia-smi. */
function fakeNvidiaSmiPath(scratch: string): NodeJS.ProcessEnv {
  const bin = path.join(scratch, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "nvidia-smi"), FAKE_NVIDIA_SMI, { mode: 0o755 });
  return { PATH: `${bin}:${process.env.PATH}` };
}

const BEHAVIOURS: Record<string, string> = {
  test_state_across_cells_typescript: "TypeScript state is kept across remote cells",
  test_state_across_cells_python: "Python state is kept across remote cells",
  test_shell_cell: "lang=bash runs a shell cell",
  test_output_streams_live: "output streams to iopub while the cell runs",
  test_native_output_is_captured: "output of native code and child processes is captured",
  test_stream_output_is_coalesced: "5000 printed lines arrive whole in far fewer stream messages",
  test_output_flood_is_capped_and_attach_replays_it: "20 MB of output: the cell shows 1 MiB and a notice naming the job; %remote attach replays it all",
  test_pandas_result_is_html: "a pandas DataFrame result is an HTML table",
  test_progress_bar_updates_in_place: "Python progress() is one display updated in place to 100%",
  test_typescript_progress_bar: "TypeScript progress() is one display updated in place",
  test_matplotlib_figure_is_png: "a matplotlib figure is shown as one PNG",
  test_plotly_figure: "a Python plotly figure carries the plotly MIME type, HTML and text",
  test_typescript_display_plotly: "display.plotly in a remote TypeScript cell",
  test_inputs_and_output: "-i sends local values, -o assigns the result locally",
  test_input_that_is_not_json_names_the_variable: "a non-JSON -i value is a SerializationError naming it",
  test_output_that_is_not_json_names_the_variable: "a non-JSON -o value is a SerializationError naming it",
  test_remote_error_has_remote_name_and_traceback: "a remote exception keeps its ename and traceback (cell line)",
  test_typescript_error: "a remote TypeScript exception keeps its ename",
  test_gpu_inventory_in_status: "%remote status shows the GPUs (text and HTML tables)",
  test_gpu_session_gets_the_matching_gpu: "gpu=H100 allocates the H100 (CUDA_VISIBLE_DEVICES)",
  test_named_session_with_other_resources_is_a_usage_error: "a named session asked with other resources is a MagicUsageError",
  test_config_sets_defaults: "%remote config sets %%remote defaults, validated",
  test_stop_and_restart_sessions: "%remote restart clears a session, %remote stop ends it",
  test_jobs_lists_cells: "%remote jobs lists recent cells",
  test_bad_options_send_nothing: "bad options and sizes are MagicUsageErrors and send nothing",
  test_unknown_agent_and_subcommand: "unknown agents, and %remote connect without a usable URL, are usage errors",
  test_interrupt_keeps_session_state: "an interrupt raises KeyboardInterrupt remotely and keeps the session",
  test_timeout_is_a_timeout_error: "timeout= ends the cell with a TimeoutError",
  test_waiting_for_a_gpu_shows_why: "a cell waiting for a GPU shows why, in one status display",
};

kernelDriverSuite({ name: "remote", script: "test_remote.py", env: fakeNvidiaSmiPath, behaviours: BEHAVIOURS });
