"""Measures local-cell latency, start-up time and idle memory of Jupyter kernels through
Debian's jupyter_client (the client JupyterLab's server uses), so every kernel is timed through
the same real client. Prints one JSON object on stdout; bench/local-cell.ts makes the table.

    /usr/bin/python3 bench/local_cell_driver.py --kernels farlab,tslab --runs 200
"""
import argparse
import atexit
import json
import queue
import statistics
import sys
import time

from jupyter_client.manager import KernelManager

from procs import percentile, status_kib, tree_by_depth

TIMEOUT = 120
# A trivial cell that has not finished after this long is a stalled kernel, not a slow cell.
CELL_TIMEOUT = 30
# Batches of one kernel discarded because it stalled, before the run gives up.
MAX_STALLS = 3


def wait_for_reply(msg_id, get, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        msg = get(timeout=max(0.0, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def wait_for_idle(kc, msg_id, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            return


# Every kernel started, so that a driver ending on an exception does not leave one behind: a
# kernel holds the driver's stdout open, and bench/local-cell.ts would wait for it forever.
STARTED = []


@atexit.register
def kill_leftover_kernels():
    for km in STARTED:
        try:
            if km.is_alive():
                km.shutdown_kernel(now=True)
        except Exception as error:  # the report is what matters; say why a kernel may remain
            print(f"could not stop a {km.kernel_name} kernel: {error}", file=sys.stderr)


def start(kernel_name):
    """Start a kernel; seconds from start_kernel() until its first kernel_info_reply."""
    km = KernelManager(kernel_name=kernel_name)
    STARTED.append(km)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    # Sent at once: ZeroMQ queues it until the kernel has bound its shell socket.
    msg_id = kc.kernel_info()
    wait_for_reply(msg_id, kc.get_shell_msg)
    elapsed = time.perf_counter() - t0
    return km, kc, elapsed


def stop(km, kc):
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def run_cell(kc, code, timeout=TIMEOUT):
    """Seconds from sending execute_request until the kernel is idle again (reply + outputs)."""
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    reply = wait_for_reply(msg_id, kc.get_shell_msg, timeout)
    wait_for_idle(kc, msg_id, timeout)
    elapsed = time.perf_counter() - t0
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content']}")
    return elapsed


def in_fresh_kernel(name, work, stalls, kind, what):
    """work(km, kc, t0, kernel_info_s) in a new kernel, which is stopped after. tslab 1.0.22 stops
    answering now and then (no reply, no iopub): a stall is counted in stalls[kind] and the work
    redone in another fresh kernel, at most MAX_STALLS times."""
    while True:
        t0 = time.perf_counter()
        km, kc, kernel_info_s = start(name)
        try:
            return work(km, kc, t0, kernel_info_s)
        except queue.Empty:
            stalls[kind] += 1
            print(f"{name}: {what} stalled (no answer within {CELL_TIMEOUT} s); redone in a fresh kernel", file=sys.stderr)
            if stalls[kind] > MAX_STALLS:
                raise
        finally:
            stop(km, kc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", default="farlab,tslab")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--code", default="1+1")
    parser.add_argument("--batch", type=int, default=100, help="timed cells per kernel instance")
    args = parser.parse_args()
    kernels = args.kernels.split(",")
    stalls = {name: {"starts": 0, "batches": 0} for name in kernels}

    def first_cell(km, kc, t0, kernel_info_s):
        run_cell(kc, args.code, CELL_TIMEOUT)
        return kernel_info_s, time.perf_counter() - t0

    startup = {name: [] for name in kernels}
    first_cell_s = {name: [] for name in kernels}
    # Interleaved, so both kernels see the same background load. kernel_info alone flatters a
    # kernel that loads its compiler lazily, so the first cell's completion is timed too.
    for _ in range(args.starts):
        for name in kernels:
            kernel_info_s, first_s = in_fresh_kernel(name, first_cell, stalls[name], "starts", "a new kernel's first cell")
            startup[name].append(kernel_info_s)
            first_cell_s[name].append(first_s)

    report = {"code": args.code, "runs": args.runs, "warmup": args.warmup, "batch": args.batch, "kernels": {}}
    for name in kernels:
        times, tree_rss = [], []

        def batch(km, kc, t0, kernel_info_s):
            for _ in range(args.warmup):
                run_cell(kc, args.code, CELL_TIMEOUT)
            count = min(args.batch, args.runs - len(times))
            timed = [run_cell(kc, args.code, CELL_TIMEOUT) for _ in range(count)]
            if not tree_rss:  # idle RSS after the first batch
                tree = tree_by_depth(km.provisioner.process.pid)
                tree_rss.append((sum(status_kib(pid, "VmRSS") for pid in tree) / 1024, len(tree)))
            return timed

        # tslab 1.0.22 stops answering after about 170 cells in one kernel, so the runs are split
        # into batches, each in a fresh kernel, for both kernels.
        while len(times) < args.runs:
            times.extend(in_fresh_kernel(name, batch, stalls[name], "batches", "a batch"))
        rss, processes = tree_rss[0]
        report["kernels"][name] = {
            "cell_median_ms": statistics.median(times) * 1000,
            "cell_p95_ms": percentile(times, 95) * 1000,
            "start_median_ms": statistics.median(startup[name]) * 1000,
            "start_all_ms": [s * 1000 for s in startup[name]],
            "first_cell_median_ms": statistics.median(first_cell_s[name]) * 1000,
            "idle_rss_mib": rss,
            "processes": processes,
            "stalled_batches": stalls[name]["batches"],
            "stalled_starts": stalls[name]["starts"],
        }
        print(f"measured {name}", file=sys.stderr)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
