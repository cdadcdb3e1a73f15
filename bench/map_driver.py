"""%map throughput against ipyparallel, measured in one run on the same machine.

- farlab: the real kernel (jupyter_client), a Python session on the embedded agent, `%map` of a
  trivial function over 10,000 inputs on 2 workers (no batch setting), and of a 50 ms function
  over 100 inputs on 4 workers; each timed from execute_request to the cell's idle.
- ipyparallel (Debian's python3-ipyparallel): a local ipcontroller and 2 ipengines, the same
  10,000 inputs through LoadBalancedView.map, unchunked and with chunksize=100.
Prints one JSON object on stdout; bench/map.ts makes the table.

    /usr/bin/python3 bench/map_driver.py --runs 3
"""
import argparse
import json
import sys
import time

from jupyter_client.manager import start_new_kernel

from cells import checked
from ipp_cluster import ipp_cluster

TIMEOUT = 180
N_TRIVIAL = 10_000
N_SLOW = 100


def inc(x):
    return x + 1


# ---- farlab ------------------------------------------------------------------------------------


def run_cell(kc, code):
    """Seconds from execute to idle; raises if the cell failed."""
    return checked(kc, code, timeout=TIMEOUT).elapsed


def bench_farlab(runs):
    km, kc = start_new_kernel(kernel_name="farlab", startup_timeout=TIMEOUT)
    try:
        run_cell(kc, "0")
        run_cell(kc, "%%remote lang=python session=bench\nimport time\ndef inc(x):\n    return x + 1\ndef nap(x):\n    time.sleep(0.05)\n    return x")
        run_cell(kc, "const xs = Array.from({ length: %d }, (_, i) => i); const few = xs.slice(0, %d);" % (N_TRIVIAL, N_SLOW))
        # Workers start (and replay the session's cells) on the first %map; later calls reuse them.
        run_cell(kc, "%map inc few session=bench workers=4 -o warm")
        run_cell(kc, "%map inc xs session=bench workers=2 -o warm")  # as ipyparallel's warm-up below
        # The result array is the cell's value (shown as text); -o adds one local TypeScript cell
        # (the assignment), measured apart.
        trivial = [run_cell(kc, "%map inc xs session=bench workers=2") for _ in range(runs)]
        trivial_o = [run_cell(kc, "%map inc xs session=bench workers=2 -o r") for _ in range(runs)]
        run_cell(kc, "if (r.length !== %d || r[%d] !== %d) throw new Error('wrong results')" % (N_TRIVIAL, N_TRIVIAL - 1, N_TRIVIAL))
        slow = [run_cell(kc, "%map nap few session=bench workers=4") for _ in range(runs)]
        slow_o = [run_cell(kc, "%map nap few session=bench workers=4 -o s") for _ in range(runs)]
        return {"trivial_s": trivial, "trivial_o_s": trivial_o, "slow_s": slow, "slow_o_s": slow_o}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ---- ipyparallel -------------------------------------------------------------------------------


def bench_ipyparallel(runs):
    import ipyparallel as ipp

    with ipp_cluster(engines=2, prefix="farlab-bench-ipp-", controller_timeout=60) as cluster:
        rc = ipp.Client(cluster.client_file, profile_dir=cluster.profile_dir)
        rc.wait_for_engines(2, timeout=90)
        view = rc.load_balanced_view()
        xs = list(range(N_TRIVIAL))
        view.map_sync(inc, xs[:100])  # warm: the function and modules reach the engines
        view.map(inc, xs, chunksize=100).get(timeout=TIMEOUT)

        def timed(**kwargs):
            started = time.monotonic()
            result = view.map(inc, xs, **kwargs).get(timeout=TIMEOUT)
            elapsed = time.monotonic() - started
            assert list(result) == [x + 1 for x in xs]
            return elapsed

        # One run: unchunked, 10,000 tasks take minutes on a busy 2-core machine.
        unchunked = [timed()]
        chunked = [timed(chunksize=100) for _ in range(runs)]
        rc.close()
        return {"unchunked_s": unchunked, "chunked_s": chunked}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = {"runs": args.runs, "n_trivial": N_TRIVIAL, "n_slow": N_SLOW}
    report["ipyparallel"] = bench_ipyparallel(args.runs)
    report["farlab"] = bench_farlab(args.runs)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
