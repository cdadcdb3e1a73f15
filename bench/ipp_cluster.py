"""A throwaway local ipyparallel cluster for the benchmarks' baselines: one ipcontroller on
127.0.0.1 and N ipengines, in a temporary profile, each in its own process group so that the
whole tree goes at the end, even from an exception.

    with ipp_cluster(engines=2) as cluster:
        rc = ipp.Client(cluster.client_file, profile_dir=cluster.profile_dir)
        rc.wait_for_engines(2, timeout=90)

Readiness of the engines is the caller's wait (from its own client: ipyparallel's
wait_for_engines, in this process or in a kernel); this module waits, bounded, for the controller.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Cluster:
    profile_dir: str
    #: the connection file a Client (ipp.Client(client_file, profile_dir=...)) reads
    client_file: str


def wait_for_file(path, proc, seconds, what):
    """Until `path` exists; raises if `proc` exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError("%s exited (status %s) before writing %s" % (what, proc.returncode, path))
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not write %s within %d s" % (what, path, seconds))
        time.sleep(0.1)  # bounded wait for a file another process writes; nothing to subscribe to


@contextlib.contextmanager
def ipp_cluster(engines, prefix="farlab-bench-ipp-", controller_timeout=90):
    """Starts the controller, waits (at most `controller_timeout` s) for its engine connection
    file, starts `engines` engines; yields a Cluster; stops them all and removes the profile."""
    profile_dir = tempfile.mkdtemp(prefix=prefix)
    procs = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        procs.append(subprocess.Popen(["ipcontroller", "--profile-dir=" + profile_dir, "--ip=127.0.0.1", "--log-level=WARN"], **quiet))
        security = os.path.join(profile_dir, "security")
        wait_for_file(os.path.join(security, "ipcontroller-engine.json"), procs[0], controller_timeout, "ipcontroller")
        for _ in range(engines):
            procs.append(subprocess.Popen(["ipengine", "--profile-dir=" + profile_dir, "--log-level=WARN"], **quiet))
        yield Cluster(profile_dir=profile_dir, client_file=os.path.join(security, "ipcontroller-client.json"))
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(profile_dir, ignore_errors=True)
