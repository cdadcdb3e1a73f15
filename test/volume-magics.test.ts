/**
 * %volume, %secret, volumes= and secrets= end to end: the real kernel (farlab install --prefix),
 * driven by Debian's jupyter_client (test/python/test_volumes.py), with the real embedded agent,
 * its process backend (volumes bind-mounted in a private mount namespace) and Debian's python3
 * (Pillow, numpy) as the remote runtime. The Python driver runs once; each of its tests becomes
 * one subtest here.
 */
import { randomBytes } from "node:crypto";
import { kernelDriverSuite } from "./helpers/python-driver";

const BEHAVIOURS: Record<string, string> = {
  test_put_ls_get_with_progress: "%volume put/ls/list/get/rm: a folder round trips, one byte progress bar to 100%",
  test_escapes_and_bad_arguments_are_usage_errors: "escaping paths and bad arguments are MagicUsageErrors",
  test_cell_writes_into_mounted_volume: "a cell writes into volumes=NAME:/path and %volume get returns it",
  test_image_pipeline: "image pipeline: PNGs put, Pillow+numpy over the mount, results fetched, pixels checked",
  test_secrets_end_to_end: "secrets: password prompts, --from-env, list without values, injected, masked (split too), not in the data dir",
  test_secrets_in_map_output_are_masked: "secrets: what %map workers print is masked too (split across chunks too)",
};

kernelDriverSuite({
  name: "volumes",
  script: "test_volumes.py",
  // What `%secret set --from-env` reads from the kernel's environment.
  env: () => ({ FARLAB_TEST_FROM_ENV_VALUE: `from-env-${randomBytes(8).toString("hex")}` }),
  behaviours: BEHAVIOURS,
});
