"""%%remote round trips, cold session starts and a 100 MB output flood, measured through Debian's
jupyter_client in one run, against ipykernel + ipyparallel's `%%px` on one local engine. The warm
round trips of both kernels are interleaved cell by cell (the machine is shared; load falls on
both alike). Prints one JSON object on stdout (the last line); bench/remote-cell.ts makes the table.

    /usr/bin/python3 bench/remote_cell_driver.py --runs 50 --cold 3

Environment: JUPYTER_PATH must hold the farlab kernelspec (`farlab install --prefix DIR`);
FARLAB_EMBEDDED_AGENT_DIR should be a temporary folder (the agent's journal lands there).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import threading

from jupyter_client.manager import start_new_kernel

from cells import TIMEOUT, checked, run_cell
from ipp_cluster import ipp_cluster
from procs import percentile, status_kib, tree_by_depth

# ipykernel's debugger otherwise warns on stderr about frozen modules at every start.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def log(text):
    print(text, file=sys.stderr, flush=True)


def summary(values):
    return {"p50_ms": statistics.median(values) * 1000, "p95_ms": percentile(values, 95) * 1000, "n": len(values)}


# ---- processes and memory ------------------------------------------------------------------------


def reset_peak(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0, our own processes); False if refused."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# ---- the warm round trips, interleaved ---------------------------------------------------------------

# (name, code, expected text): one cell of each in turn, so background load (this machine is shared)
# falls on all of them alike and the ratios hold even when the absolute numbers move.
WARM_CELLS = [
    ("px", "%%px --block\n1+1", "2"),
    ("remote_ts", "%%remote lang=ts\n1+1", "2"),
    ("remote_python", "%%remote lang=python\n1+1", "2"),
    # The kernel's own TypeScript cell: what a round trip costs before any agent is involved.
    ("local_ts", "1+1", "2"),
]


def bench_warm(px_kc, farlab_kc, args):
    kernels = {"px": px_kc, "remote_ts": farlab_kc, "remote_python": farlab_kc, "local_ts": farlab_kc}
    for name, code, expect in WARM_CELLS:
        for _ in range(args.warmup + 1):  # +1: the first remote cell of a kind starts its session
            checked(kernels[name], code, expect)
    times = {name: [] for name, _, _ in WARM_CELLS}
    for i in range(args.runs):
        # The order rotates too, so no cell always follows the same one.
        for k in range(len(WARM_CELLS)):
            name, code, expect = WARM_CELLS[(i + k) % len(WARM_CELLS)]
            times[name].append(checked(kernels[name], code, expect).elapsed)
    report = {name: summary(values) for name, values in times.items()}
    log("warm: %s" % json.dumps(report))
    return report


# ---- farlab alone: cold sessions and the output flood ------------------------------------------------


def start_farlab():
    return start_new_kernel(kernel_name="farlab", startup_timeout=TIMEOUT)


def bench_cold(kc, args):
    """A new named session per sample (the agent is up): execute_request -> first stream message."""
    report = {}
    for lang, body in (("python", "print('ready')"), ("ts", "console.log('ready')")):
        firsts, wholes = [], []
        for n in range(args.cold):
            name = "cold-%s-%d" % (lang, n)
            run = checked(kc, "%%%%remote lang=%s session=%s\n%s" % (lang, name, body), "ready")
            firsts.append(run.first_stream_s)
            wholes.append(run.elapsed)
            checked(kc, "%%remote stop %s" % name)
        report[lang] = {"first_output": summary(firsts), "cell": summary(wholes)}
        run = checked(kc, "%%%%remote lang=%s --fresh\n%s" % (lang, body), "ready")
        report[lang]["fresh_first_output_ms"] = run.first_stream_s * 1000
        log("farlab cold %s: %s" % (lang, report[lang]))
    return report


def flood(km, kc, megabytes):
    """A Python cell printing `megabytes` MB in 100-byte lines; memory of the kernel side."""
    code = (
        "%%%%remote lang=python session=flood\n"
        "import sys\n"
        "line = 'x' * 99 + '\\n'\n"
        "block = line * 10000\n"
        "for _ in range(%d):\n"
        "    sys.stdout.write(block)\n"
        "print('flood done')" % (megabytes * 1_000_000 // len("x" * 99 + "\n") // 10000)
    )
    checked(kc, "%%remote lang=python session=flood\n0")  # the session exists before we measure
    depth = tree_by_depth(km.provisioner.process.pid)
    kernel_side = [pid for pid, d in depth.items() if d <= 1]  # kernel + executor child
    agent_side = [pid for pid, d in depth.items() if d == 2]  # the embedded agent
    runtime_side = [pid for pid, d in depth.items() if d >= 3]  # session runtimes
    before = {pid: status_kib(pid, "VmRSS") for pid in depth}
    peak_reset = all(reset_peak(pid) for pid in depth)
    # Sampled as well: VmHWM needs clear_refs, which a hardened kernel may refuse.
    sampled = {pid: before[pid] for pid in depth}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in depth:
                sampled[pid] = max(sampled[pid], status_kib(pid, "VmRSS"))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run = run_cell(kc, code, timeout=900)
    finally:
        stop.set()
        sampler.join()
    if run.error:
        raise RuntimeError("flood cell failed: %s" % run.error)
    peak = {pid: max(sampled[pid], status_kib(pid, "VmHWM") if peak_reset else 0) for pid in depth}
    after = {pid: status_kib(pid, "VmRSS") for pid in depth}

    def growth(pids, values):
        return sum(values[pid] - before[pid] for pid in pids) / 1024

    return {
        "megabytes": megabytes,
        "printed_bytes": megabytes * 1_000_000,
        "cell_s": run.elapsed,
        "iopub_messages": run.messages,
        "stream_messages": run.stream_messages,
        "stream_chars_delivered": run.stream_chars,
        "messages_per_s": run.messages / run.elapsed,
        "kernel_rss_before_mib": sum(before[pid] for pid in kernel_side) / 1024,
        "kernel_peak_growth_mib": growth(kernel_side, peak),
        "kernel_growth_after_mib": growth(kernel_side, after),
        "kernel_process_peak_growth_mib": growth([pid for pid in kernel_side if depth[pid] == 0], peak),
        "executor_peak_growth_mib": growth([pid for pid in kernel_side if depth[pid] == 1], peak),
        "agent_peak_growth_mib": growth(agent_side, peak),
        "agent_growth_after_mib": growth(agent_side, after),
        "runtime_peak_growth_mib": growth(runtime_side, peak),
        "peak_from": "VmHWM after clear_refs + 20 ms sampling" if peak_reset else "20 ms sampling",
        "processes": {str(pid): "%s depth %d" % (cmdline(pid)[:80], depth[pid]) for pid in depth},
        "last_output": run.outputs[-1][:200] if run.outputs else "",
    }


# ---- ipykernel + ipyparallel %%px on one local engine ------------------------------------------------


@contextlib.contextmanager
def px_kernel():
    """An ipykernel whose `%%px` runs on one engine of a local ipcontroller (profile in a temp dir)."""
    with ipp_cluster(engines=1, prefix="farlab-bench-px-", controller_timeout=90) as cluster:
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=TIMEOUT)
        try:
            checked(
                kc,
                "import ipyparallel as ipp\n"
                "rc = ipp.Client(%r, profile_dir=%r)\n"
                "rc.wait_for_engines(1, timeout=120, widget=False)\n"  # no progress widget: ipywidgets 6 breaks tqdm's
                "rc[:].activate()\n"
                "len(rc.ids)" % (cluster.client_file, cluster.profile_dir),
                "1",
                timeout=180,
            )
            yield kc
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--flood-mb", type=int, default=100)
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    report = {"runs": args.runs, "warmup": args.warmup, "cold_samples": args.cold, "load_before": load_before, "cpus": os.cpu_count()}
    km, kc = start_farlab()
    try:
        checked(kc, "1+1", "2")
        with px_kernel() as px_kc:
            report["warm"] = bench_warm(px_kc, kc, args)
        report["cold"] = bench_cold(kc, args)
        report["flood"] = flood(km, kc, args.flood_mb)
        # The same cell again: growth that repeats is per cell (a leak); growth that does not is
        # the heap settling at a new size.
        report["flood_again"] = flood(km, kc, args.flood_mb)
        log("farlab flood: %s" % {k: v for k, v in report["flood"].items() if k != "processes"})
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    with open("/proc/loadavg") as f:
        report["load_after"] = f.read().split()[:3]
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
