"""Loopback ports that only the platform's own (root) processes may connect to, enforced by nftables.

Some servers the platform runs for users have no authentication of their own: MLServer answers anyone who
reaches its HTTP, gRPC and metrics ports. Through the hub's URL the platform service's gateway checks every
request, but on one machine any user's code could connect to 127.0.0.1:PORT directly. A PortGuard keeps one
nftables table per local platform (`inet odh_<id>`) holding a set of guarded TCP ports and one rule: a
connection to a guarded port on a loopback address from a socket not owned by root (or by the platform
service's own unprivileged user, when it runs as one: host.privsep) is reset. The owner of the server does
not need the port either (they go through the gateway like everyone else).

Some ports are their owner's to use (a Spark cluster's web UIs, which the owner's notebook server proxies): a
port guarded for owner uids (`guard(ports, uids=[...])`) is in a second set (`owned_ports`) and, with each
uid, in a third (`owners`, port . uid); a second rule resets a connection to it from any socket that is
neither root's nor one of those uids'. A table made by an earlier version gets them, and its rules are replaced, on the first guard.

Needs root and the `nft` command (Debian's nftables); elsewhere `available()` is False and the platform says
the ports are reachable directly (single-user mode protects nothing anyway).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from typing import Iterable

log = logging.getLogger("odh_spawner.portguard")
NFT_TIMEOUT = 10


class PortGuardError(RuntimeError):
    pass


def table_name(platform_id: str) -> str:
    """The nftables table of one local platform (`platform_id`: [a-z0-9], e.g. a hash of its state dir)."""
    return "odh_" + "".join(c for c in platform_id.lower() if c.isalnum())[:24]


ROOT_ONLY_RULE = "ip daddr 127.0.0.0/8 tcp dport @guarded meta skuid != @admitted reject with tcp reset"
OWNER_RULE = ("ip daddr 127.0.0.0/8 tcp dport @owned_ports meta skuid != @admitted "
              "tcp dport . meta skuid != @owners reject with tcp reset")


def ruleset(table: str, allow_uids: Iterable[int] = ()) -> str:
    """The nftables script creating the table, or bringing an existing one (an earlier version's) up to date:
    its sets are kept with their elements, its rules replaced (idempotent with `nft -f`). `admitted` holds who
    may connect to every guarded port: root, and `allow_uids` (the platform service's own user, when it runs
    as one: host.privsep; only added, so a guard made without it, e.g. the hub's, keeps it admitted). Pure."""
    admitted = ", ".join(str(u) for u in sorted({0, *(int(u) for u in allow_uids)}))
    return f"""table inet {table} {{
  set guarded {{ type inet_service; }}
  set owned_ports {{ type inet_service; }}
  set owners {{ type inet_service . uid; }}
  set admitted {{ type uid; }}
  chain output {{
    type filter hook output priority 0; policy accept;
  }}
}}
add element inet {table} admitted {{ {admitted} }}
flush chain inet {table} output
add rule inet {table} output {ROOT_ONLY_RULE}
add rule inet {table} output {OWNER_RULE}
"""


def _elements(listing: str) -> list:
    """The elements of the set in `nft -j list set` output (ints, or [port, uid] pairs). Pure."""
    for item in json.loads(listing or "{}").get("nftables", []):
        if "set" in item:
            return [e["concat"] if isinstance(e, dict) and "concat" in e else e
                    for e in item["set"].get("elem", [])]
    return []


class PortGuard:
    def __init__(self, platform_id: str, nft: str | None = None, allow_uids: Iterable[int] = ()):
        self.table = table_name(platform_id)
        self.nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        self.allow_uids = tuple(allow_uids)
        self._ensured = False

    def _run(self, *args: str, script: str | None = None) -> str:
        try:
            out = subprocess.run([self.nft, *args], input=script, capture_output=True, text=True,
                                 timeout=NFT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PortGuardError(f"`nft` failed: {e}") from None
        if out.returncode != 0:
            raise PortGuardError(f"`nft` {' '.join(args[:3])} failed: {out.stderr.strip()[-300:]}.")
        return out.stdout

    def available(self) -> bool:
        return os.geteuid() == 0 and os.access(self.nft, os.X_OK)

    def ensure(self) -> None:
        """Create the table, its sets and rules, or bring an existing table's rules up to date (once per
        PortGuard); keeps the ports already guarded."""
        if not self._ensured:
            self._run("-f", "-", script=ruleset(self.table, self.allow_uids))
            self._ensured = True

    def guard(self, ports: Iterable[int], uids: Iterable[int] | None = None) -> None:
        """Only root may connect to `ports`; with `uids`, those users too (the owner of what listens there)."""
        try:
            self._guard(ports, uids)
        except PortGuardError:
            if not self._ensured:
                raise
            self._ensured = False  # the table went (the platform stopped and started again): made afresh
            self._guard(ports, uids)

    def _guard(self, ports: Iterable[int], uids: Iterable[int] | None) -> None:
        ports = sorted({int(p) for p in ports})
        if not ports:
            return
        self.ensure()
        if uids is None:
            self._run("add", "element", "inet", self.table, "guarded", "{ " + ", ".join(map(str, ports)) + " }")
            return
        uids = sorted({int(u) for u in uids})
        if not uids:
            raise PortGuardError("A port guarded for its owners needs at least one owner uid.")
        stale = [(p, u) for p, us in self.owned().items() if p in ports for u in us if u not in uids]
        self._delete("owners", [f"{p} . {u}" for p, u in stale])
        self._run("add", "element", "inet", self.table, "owners",
                  "{ " + ", ".join(f"{p} . {u}" for p in ports for u in uids) + " }")
        self._run("add", "element", "inet", self.table, "owned_ports", "{ " + ", ".join(map(str, ports)) + " }")

    def _delete(self, set_name: str, elements: list[str]) -> None:
        for element in elements:
            try:
                self._run("delete", "element", "inet", self.table, set_name, f"{{ {element} }}")
            except PortGuardError:
                pass  # not there (already released, or the table is gone)

    def release(self, ports: Iterable[int]) -> None:
        """Anyone may connect to `ports` again (whether they were root's only or an owner's)."""
        ports = sorted({int(p) for p in ports})
        if not ports:
            return
        self._delete("guarded", [str(p) for p in ports])
        self._delete("owned_ports", [str(p) for p in ports])
        self._delete("owners", [f"{p} . {u}" for p, us in self.owned().items() if p in ports for u in us])

    def _set(self, name: str) -> list:
        try:
            return _elements(self._run("-j", "list", "set", "inet", self.table, name))
        except (PortGuardError, ValueError):
            return []

    def guarded(self) -> set[int]:
        """The ports only root may connect to."""
        return {int(p) for p in self._set("guarded")}

    def owned(self) -> dict[int, set[int]]:
        """The ports only root and some users may connect to: port -> those users' uids."""
        ports = {int(p) for p in self._set("owned_ports")}
        found: dict[int, set[int]] = {}
        for e in self._set("owners"):
            if isinstance(e, list) and len(e) == 2 and int(e[0]) in ports:
                found.setdefault(int(e[0]), set()).add(int(e[1]))
        return found

    def remove(self) -> None:
        """Delete the table (the platform stopped: nothing of it is left in the kernel)."""
        try:
            self._run("delete", "table", "inet", self.table)
        except PortGuardError:
            pass
