"""Loopback ports that only the platform's own (root) processes may connect to, enforced by nftables.

Some servers the platform runs for users have no authentication of their own: MLServer answers anyone who
reaches its HTTP, gRPC and metrics ports. Through the hub's URL the platform service's gateway checks every
request, but on one machine any user's code could connect to 127.0.0.1:PORT directly. A PortGuard keeps one
nftables table per local platform (`inet odh_<id>`) holding a set of guarded TCP ports and one rule: a
connection to a guarded port on a loopback address from a socket not owned by root (or by the platform
service's own unprivileged user, when it runs as one: host.privsep) is reset. The owner of the server does
not need the port either (they go through the gateway like everyone else).

Needs root and the `nft` command (Debian's nftables); elsewhere `available()` is False and the platform says
the ports are reachable directly (single-user mode protects nothing anyway).
"""

from __future__ import annotations

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


def ruleset(table: str, allow_uids: Iterable[int] = ()) -> str:
    """The nftables script creating the table, or bringing an existing one's rule up to date while keeping the
    ports in its set (idempotent with `nft -f`). `allow_uids`: who may connect besides root. Pure."""
    uids = ", ".join(str(u) for u in sorted({0, *(int(u) for u in allow_uids)}))
    return f"""table inet {table} {{
  set guarded {{ type inet_service; }}
  chain output {{
    type filter hook output priority 0; policy accept;
  }}
}}
flush chain inet {table} output
add rule inet {table} output ip daddr 127.0.0.0/8 tcp dport @guarded meta skuid != {{ {uids} }} reject with tcp reset
"""


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
        """Create the table, its set and rule, or bring the rule up to date (once per PortGuard: who may connect
        changes when the service starts dropping root); keeps the ports already guarded."""
        if not self._ensured:
            self._run("-f", "-", script=ruleset(self.table, self.allow_uids))
            self._ensured = True

    def guard(self, ports: Iterable[int]) -> None:
        ports = sorted({int(p) for p in ports})
        if ports:
            self.ensure()
            self._run("add", "element", "inet", self.table, "guarded", "{ " + ", ".join(map(str, ports)) + " }")

    def release(self, ports: Iterable[int]) -> None:
        for port in sorted({int(p) for p in ports}):
            try:
                self._run("delete", "element", "inet", self.table, "guarded", f"{{ {port} }}")
            except PortGuardError:
                pass  # not guarded (already released, or the table is gone)

    def guarded(self) -> set[int]:
        try:
            out = self._run("list", "set", "inet", self.table, "guarded")
        except PortGuardError:
            return set()
        if "elements = {" not in out:
            return set()
        body = out.split("elements = {", 1)[1].split("}", 1)[0]
        return {int(p) for p in body.replace("\n", " ").replace(",", " ").split() if p.isdigit()}

    def remove(self) -> None:
        """Delete the table (the platform stopped: nothing of it is left in the kernel)."""
        try:
            self._run("delete", "table", "inet", self.table)
        except PortGuardError:
            pass
