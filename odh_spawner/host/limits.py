"""CPU and memory limits for local servers through Linux cgroups (v2 or v1), where the OS lets us write them.

Each server gets its own group `<root>/odh-hub/<name>`; the server process joins it before exec, so its
kernels and children inherit the limits. Removing the group kills whatever is still inside it.

The parent group weighs as much as its servers (`parent_cpu_weight`): the CPU scheduler shares a busy machine
between the parent group as one entity and every process outside it, so with the default weight all users'
servers and kernels together would get the share of one ordinary process (bench/hub_load measured kernel starts
3x and cells 9x slower than vanilla JupyterHub's unlimited servers on a loaded machine). Weighed by its number
of servers, each server competes like one process, as a server without cgroups does; its limit still caps it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time

log = logging.getLogger("odh_spawner.limits")
CPU_PERIOD_US = 100_000
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]")
# one ordinary process's CPU weight, and the most a group may have: cgroup v1 cpu.shares, v2 cpu.weight
_WEIGHT = {1: ("cpu.shares", 1024, 262_144), 2: ("cpu.weight", 100, 10_000)}
_weigh_lock = threading.Lock()


def parent_cpu_weight(servers: int, version: int) -> str:
    """The parent group's CPU weight while `servers` servers run in it: one ordinary process's weight per server
    (at least one, at most the kernel's maximum), so that the servers together get what as many unlimited
    processes would. Pure."""
    _, one, most = _WEIGHT[version]
    return str(min(most, one * max(1, servers)))


class CgroupLimits:
    def __init__(self, root: str = "/sys/fs/cgroup", parent: str = "odh-hub"):
        self.root = root
        self.parent = parent
        self.version = 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1
        self._available: bool | None = None

    # -- paths -------------------------------------------------------------------------------
    def _dirs(self, name: str) -> list[str]:
        name = _NAME_RE.sub("_", name)
        if self.version == 2:
            return [os.path.join(self.root, self.parent, name)]
        return [os.path.join(self.root, c, self.parent, name) for c in ("memory", "cpu")]

    def available(self) -> bool:
        """True when we can create groups and write limits here (root on a writable cgroupfs)."""
        if self._available is None:
            self._available = self._probe()
        return self._available

    def _probe(self) -> bool:
        try:
            if self.version == 2:
                parent = os.path.join(self.root, self.parent)
                os.makedirs(parent, exist_ok=True)
                with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu +memory")
                return True
            for c in ("memory", "cpu"):
                os.makedirs(os.path.join(self.root, c, self.parent), exist_ok=True)
            return True
        except OSError as e:
            log.info("cgroup limits unavailable (%s): local servers run without cpu/memory limits", e)
            return False

    # -- lifecycle ---------------------------------------------------------------------------
    def create(self, name: str, cpu_limit: float, mem_limit: int) -> list[str]:
        """Create the group with limits; returns the cgroup.procs files the server must join."""
        quota = max(1000, int(cpu_limit * CPU_PERIOD_US))
        procs = []
        for d in self._dirs(name):
            os.makedirs(d, exist_ok=True)
            if self.version == 2:
                _write(d, "memory.max", str(mem_limit))
                _write(d, "cpu.max", f"{quota} {CPU_PERIOD_US}")
            elif "/memory/" in d:
                _write(d, "memory.limit_in_bytes", str(mem_limit))
            else:
                _write(d, "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(d, "cpu.cfs_quota_us", str(quota))
            procs.append(os.path.join(d, "cgroup.procs"))
        self._weigh_parent()
        return procs

    def _cpu_parent(self) -> str:
        return os.path.join(self.root, self.parent) if self.version == 2 else os.path.join(self.root, "cpu",
                                                                                          self.parent)

    def _weigh_parent(self) -> None:
        """Set the parent group's CPU weight from the number of server groups in it now (parent_cpu_weight).
        Never fails a start or a stop: a weight that cannot be written leaves the kernel's default."""
        parent = self._cpu_parent()
        fname = _WEIGHT[self.version][0]
        try:
            with _weigh_lock:  # starts (event loop) and stops (worker threads) count and write one at a time
                servers = sum(1 for e in os.scandir(parent) if e.is_dir(follow_symlinks=False))
                _write(parent, fname, parent_cpu_weight(servers, self.version))
        except OSError as e:
            log.info("cgroup %s of %s not set (%s): its servers share one process's CPU weight", fname, parent, e)

    def parent_weight(self) -> int:
        """The parent group's CPU weight now (cpu.shares on cgroup v1, cpu.weight on v2)."""
        return int(_read(self._cpu_parent(), _WEIGHT[self.version][0]))

    def read_limits(self, name: str) -> dict:
        out = {}
        for d in self._dirs(name):
            if self.version == 2:
                out["memory"] = _read(d, "memory.max")
                out["cpu"] = _read(d, "cpu.max")
            elif "/memory/" in d:
                out["memory"] = _read(d, "memory.limit_in_bytes")
            else:
                out["cpu"] = f"{_read(d, 'cpu.cfs_quota_us')} {_read(d, 'cpu.cfs_period_us')}"
        return out

    def pids(self, name: str) -> set[int]:
        found: set[int] = set()
        for d in self._dirs(name):
            try:
                found.update(int(p) for p in _read(d, "cgroup.procs").split())
            except OSError:
                pass
        return found

    def remove(self, name: str, timeout: float = 5.0) -> None:
        """Kill anything still in the group (stray kernels), then remove it."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids(name)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            removed = True
            for d in self._dirs(name):
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError:
                    removed = False
            if removed or time.monotonic() > deadline:
                if not removed:
                    log.warning("could not remove cgroup for %s; pids left: %s", name, sorted(self.pids(name)))
                self._weigh_parent()
                return
            time.sleep(0.05)


def join(procs_files: list[str]) -> None:
    """Called in the child before exec: move this process into the server's group."""
    pid = str(os.getpid())
    for path in procs_files:
        with open(path, "w") as f:
            f.write(pid)


def _write(d: str, fname: str, value: str) -> None:
    with open(os.path.join(d, fname), "w") as f:
        f.write(value)


def _read(d: str, fname: str) -> str:
    with open(os.path.join(d, fname)) as f:
        return f.read().strip()
