"""What the benchmarks' Python drivers measure processes and samples with: a kernel's process tree
from /proc, a field of /proc/PID/status, and a percentile."""
import os


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def children_of():
    """{ppid: [pid, ...]} of every process, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree_by_depth(root_pid):
    """{pid: depth} for root_pid (0) and its descendants."""
    children = children_of()
    depth, todo = {}, [(root_pid, 0)]
    while todo:
        pid, d = todo.pop()
        depth[pid] = d
        todo.extend((child, d + 1) for child in children.get(pid, []))
    return depth


def status_kib(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
