"""Users' CPU seconds and memory on this machine, for the metrics: from the cgroups local servers and
ingestion workers run in (`host.limits`), else from /proc. Read-only; never follows a user's path.

A group is attributed to the system account that runs its first process (`odh-<slug>`: see
`odh_spawner.naming.system_user`), so the figure is per hub user slug and a user cannot claim another's group.
Without writable cgroups (servers run unlimited), every live process of an `odh-` account is summed from
/proc instead: then CPU seconds count live processes only, and drop when one exits (Prometheus's rate() treats
that as a counter reset).
"""

from __future__ import annotations

import os
import pwd

from odh_spawner.naming import slug_of

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def slug_of_uid(uid: int, cache: dict | None = None) -> str | None:
    """The hub user slug an `odh-<slug>` account stands for, None for any other account."""
    if cache is not None and uid in cache:
        return cache[uid]
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = ""
    slug = slug_of(name)
    if cache is not None:
        cache[uid] = slug
    return slug


def _uid_of_pid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _add(out: dict, slug: str, cpu: float, mem: int) -> None:
    u = out.setdefault(slug, {"cpu_seconds": 0.0, "memory_bytes": 0})
    u["cpu_seconds"] += cpu
    u["memory_bytes"] += mem


def cgroup_usage(root: str, parents: list[str]) -> dict[str, dict] | None:
    """Usage per slug from the groups under each parent (cgroup v2 or v1); None when no parent exists."""
    v2 = os.path.exists(os.path.join(root, "cgroup.controllers"))
    out: dict[str, dict] = {}
    uids: dict = {}
    seen = False
    for parent in filter(None, parents):
        base = os.path.join(root, parent) if v2 else os.path.join(root, "memory", parent)
        try:
            names = os.listdir(base)
        except OSError:
            continue
        seen = True
        for name in names:
            group = os.path.join(base, name)
            if not os.path.isdir(group) or os.path.islink(group):
                continue
            procs = (_read(os.path.join(group, "cgroup.procs")) or "").split()
            uid = _uid_of_pid(int(procs[0])) if procs and procs[0].isdigit() else None
            slug = slug_of_uid(uid, uids) if uid is not None else None
            if slug is None:
                continue
            if v2:
                stat = dict(line.split() for line in (_read(os.path.join(group, "cpu.stat")) or "").splitlines()
                            if len(line.split()) == 2)
                cpu = int(stat.get("usage_usec", 0)) / 1e6
                mem = int((_read(os.path.join(group, "memory.current")) or "0").strip() or 0)
            else:
                cpu_dir = os.path.join(root, "cpuacct", parent, name)
                if not os.path.isdir(cpu_dir):
                    cpu_dir = os.path.join(root, "cpu", parent, name)
                cpu = int((_read(os.path.join(cpu_dir, "cpuacct.usage")) or "0").strip() or 0) / 1e9
                mem = int((_read(os.path.join(group, "memory.usage_in_bytes")) or "0").strip() or 0)
            _add(out, slug, cpu, mem)
    return out if seen else None


def proc_usage() -> dict[str, dict]:
    """Usage per slug summed over the live processes of `odh-` accounts (/proc/<pid>/stat)."""
    out: dict[str, dict] = {}
    uids: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        uid = _uid_of_pid(int(entry))
        slug = slug_of_uid(uid, uids) if uid is not None else None
        if slug is None:
            continue
        stat = _read(f"/proc/{entry}/stat")
        if not stat or ")" not in stat:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        try:  # fields after the command: state=0 ... utime=11 stime=12 ... rss=21
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            mem = int(fields[21]) * PAGE
        except (IndexError, ValueError):
            continue
        _add(out, slug, cpu, mem)
    return out


def user_usage(root: str, parents: list[str]) -> dict[str, dict]:
    found = cgroup_usage(root, parents)
    return found if found else proc_usage()
