"""Memory and CPU of a running process tree, read from /proc (Linux).

``ovpnkx load`` samples the server it loads: a ``serve`` supervisor with its
workers, or one openvpn process. Memory is the anonymous and shared-memory part
of PSS (proportional set size) where the kernel has it: pages that forked workers
share count once, and file-backed pages (the executable, shared libraries) not at
all, since a process's share of those falls whenever any other process maps the
same library (on a busy machine openvpn's PSS fell while its sessions grew).
"""

import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def descendants(pid: int) -> list:
    """``pid`` and every process below it that is alive now."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if not os.path.exists("/proc/%d" % p):
            continue
        out.append(p)
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def memory_kb(pid: int) -> int:
    """The memory ``pid`` allocated itself, in KiB: Pss_Anon + Pss_Shmem (kernel 5.9+),
    else PSS, else RSS (where smaps_rollup is missing); 0 if gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            fields = {}
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("Pss", "Pss_Anon", "Pss_Shmem"):
                    fields[name] = int(rest.split()[0])
        if "Pss_Anon" in fields:
            return fields["Pss_Anon"] + fields.get("Pss_Shmem", 0)
        if "Pss" in fields:
            return fields["Pss"]
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used itself (not its children)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ")": state is field 3, utime 14, stime 15
    return (int(fields[11]) + int(fields[12])) / _TICK


class TreeSampler:
    """Memory and CPU of the process trees under ``pids``."""

    def __init__(self, pids: list) -> None:
        self.pids = list(pids)
        self._cpu_seen: dict = {}  # pid -> last CPU seen (a worker that exits keeps its share)

    def sample(self) -> tuple:
        """(memory KiB, CPU seconds so far) summed over every process of the trees."""
        mem = 0
        for root in self.pids:
            for pid in descendants(root):
                mem += memory_kb(pid)
                c = cpu_s(pid)
                if c >= self._cpu_seen.get(pid, 0.0):
                    self._cpu_seen[pid] = c
        return mem, sum(self._cpu_seen.values())
