"""bench/transfer-kernel.ts's driver: `%volume put` and `%volume get` of one large file through a
real farlab kernel (Debian's jupyter_client) whose agent is reached over SSH, against `scp` of the
same file, alternating, with the executor's RSS (where %volume runs) sampled every 20 ms.

The kernel logs in with the key in $HOME/.ssh and checks the host against $HOME/.ssh/known_hosts
(bench/transfer-kernel.ts prepares both). The last stdout line is the JSON report.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from jupyter_client.manager import KernelManager

from cells import checked
from procs import status_kib, tree_by_depth


def make_file(path, mib):
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(i.to_bytes(4, "little") + block[4:])  # not one repeated block end to end


class PeakRss:
    """The highest VmRSS (MiB) of `pid` while the `with` body runs."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0

    def __enter__(self):
        self.stop = threading.Event()
        self.peak = status_kib(self.pid, "VmRSS") / 1024
        self.thread = threading.Thread(target=self.sample)
        self.thread.start()
        return self

    def sample(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS") / 1024)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    for name in ("host", "user", "key", "agent"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="farlab-bench-transfer-kernel-")
    big, back, scp_remote = (os.path.join(work, name) for name in ("big.bin", "back.bin", "scp.bin"))
    make_file(big, args.mib)
    scp = ["scp", "-q", "-P", str(args.port), "-i", args.key, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={os.path.expanduser('~/.ssh/known_hosts')}"]
    remote = lambda path: f"{args.user}@{args.host}:{path}"

    km = KernelManager(kernel_name="farlab")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    try:
        cell = lambda code: checked(kc, code, timeout=900)
        cell(f'%remote connect ssh://{args.user}@{args.host}:{args.port} name=bench command="{args.agent}" --default')
        cell("%volume create bench")
        executor = next(pid for pid, depth in tree_by_depth(km.provisioner.process.pid).items() if depth == 1)
        idle = status_kib(executor, "VmRSS") / 1024
        rounds = []
        for _ in range(args.rounds):
            with PeakRss(executor) as put_rss:
                put_s = timed(lambda: cell(f"%volume put bench {big} big.bin"))
            scp_up_s = timed(lambda: subprocess.run(scp + [big, remote(scp_remote)], check=True))
            os.remove(scp_remote)
            with PeakRss(executor) as get_rss:
                get_s = timed(lambda: cell(f"%volume get bench big.bin {back}"))
            os.remove(back)
            scp_down_s = timed(lambda: subprocess.run(scp + [remote(big), back], check=True))
            os.remove(back)
            cell("%volume rm bench big.bin")
            rounds.append({"put_s": put_s, "scp_up_s": scp_up_s, "get_s": get_s, "scp_down_s": scp_down_s,
                           "put_peak_mib": put_rss.peak, "get_peak_mib": get_rss.peak})
        cell("%volume delete bench --yes")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        subprocess.run(["rm", "-rf", work])
    print(json.dumps({"mib": args.mib, "executor_idle_mib": idle, "load": os.getloadavg()[0], "rounds": rounds}))


if __name__ == "__main__":
    sys.exit(main())
