/**
 * %map end to end: the real kernel (farlab install --prefix), driven by Debian's jupyter_client
 * (test/python/test_map.py), mapping Python and TypeScript functions on worker replicas of
 * sessions of the real embedded agent.
 *
 * The Python driver runs once (one kernel start for every check); each of its tests becomes one
 * subtest here, so a failure names the behaviour that broke.
 */
import { kernelDriverSuite } from "./helpers/python-driver";

const BEHAVIOURS: Record<string, string> = {
  test_monte_carlo_pi: "Monte Carlo pi over 40 seeds on 4 workers (same counts as in the session, one progress bar)",
  test_ten_thousand_inputs_in_order: "10,000 inputs come back complete and in order",
  test_result_without_output_is_the_cell_value: "without -o the result array is the cell's value",
  test_function_output_is_shown_per_worker: "what the function prints is shown, each line prefixed with its worker",
  test_unordered_results_are_all_there: "ordered=false gives every result (in completion order)",
  test_failing_input_names_index_and_error: "a failing input makes a MapError naming its index and error; the others finish",
  test_return_exceptions_puts_errors_in_place: "--return-exceptions puts Error values in place",
  test_result_over_the_size_limit_is_named: "a result over the size limit is a ResultTooLarge error",
  test_retries_recover_inputs_that_fail_once: "retries=1 recovers inputs that fail once",
  test_worker_that_exits_is_replaced_and_its_inputs_redone: "a worker that exits mid-input is replaced and its inputs redone",
  test_typescript_function: "a TypeScript function (sync and async) maps",
  test_undefined_function_is_a_clear_error: "an undefined function name is a clear error naming it and the session",
  test_zz_interrupt_stops_the_map_and_keeps_what_finished: "interrupt stops the map, says how many completed, -o keeps them",
};

kernelDriverSuite({ name: "map", script: "test_map.py", behaviours: BEHAVIOURS });
