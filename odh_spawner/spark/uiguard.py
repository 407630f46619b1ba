"""The web UI ports of a local Spark cluster: only its owner and root may connect to them (host.portguard).

Master, workers and the notebook's driver serve web UIs on 127.0.0.1 (executor logs, environment, stages). Any
local user could open them. A guarded UI port resets every connection but root's (the hub and the platform
service read the master's JSON) and the owner's: their notebook server proxies the UIs, and their master
proxies the workers' and the driver's UIs in reverse-proxy mode; all of them run as the owner's system user.
Through the privileged helper (the platform service dropped root) the helper guards, and also admits the
service's own user.

The driver's UI port cannot be picked when the driver starts (the notebook starts it), so the platform picks a
block of consecutive ports once per cluster, guards it, and the notebook's spark-defaults.conf pins
`spark.ui.port` to its first port, with `spark.port.maxRetries` letting later drivers of the same server (one per
kernel) take the next ones.

The rules live in the kernel, not in a process: they survive a restart of the hub or the platform service, and
go when the cluster stops (`release`), when its server is deleted, or when the platform stops (the table).
Without a guard id, or for a cluster run as the platform's own user (single-user mode), nothing is guarded.
"""

from __future__ import annotations

import logging
import socket
from typing import Iterable

from odh_spawner.host import owned
from odh_spawner.host.portguard import PortGuard, PortGuardError
from odh_spawner.host.privsep import PrivsepError
from odh_spawner.host.users import SystemUser

log = logging.getLogger("odh_spawner.spark")
MAX_TRIES = 100


def driver_conf(first_port: int, count: int) -> dict[str, str]:
    """spark-defaults.conf entries pinning the driver's UI to the block [first_port, first_port + count). Pure."""
    if count < 1 or not 1024 <= first_port <= 65536 - count:
        raise ValueError(f"The driver UI port block {first_port}+{count} is out of range.")
    # spark.port.maxRetries applies to every fixed port of the driver: its others are random (0) by default
    return {"spark.ui.port": str(first_port), "spark.port.maxRetries": str(count - 1)}


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int) -> list[int]:
    """`count` consecutive ports free on 127.0.0.1 now (from a random free port on)."""
    for _ in range(MAX_TRIES):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        block = list(range(first, first + count))
        if block[-1] <= 65535 and all(_bindable(p) for p in block[1:]):
            return block
    raise OSError(f"No {count} consecutive free ports were found on 127.0.0.1.")


class UiGuard:
    """Guards and releases one cluster's UI ports for its owner (`owner` None: nothing is guarded)."""

    def __init__(self, guard_id: str, owner: SystemUser | None):
        self.guard_id = guard_id
        self.owner = owner

    @property
    def active(self) -> bool:
        return bool(self.guard_id) and self.owner is not None

    def guard(self, ports: Iterable[int]) -> bool:
        """Only the owner and root may connect to `ports` from now on. False (and an error in the log) when
        the ports could not be guarded; the cluster still runs, as on a platform without nftables."""
        ports = sorted({int(p) for p in ports if p})
        if not ports or not self.active:
            return False
        helper = owned.helper()
        try:
            if helper is not None:
                return bool(helper.call("guard", ports=ports, user=self.owner.name))
            guard = PortGuard(self.guard_id)
            if not guard.available():
                log.warning("Spark UI ports %s are not guarded (needs root and nft): local users can open them.",
                            ports)
                return False
            guard.guard(ports, uids=[self.owner.uid])
            return True
        except (PortGuardError, PrivsepError) as e:
            log.error("Could not guard Spark UI ports %s: %s", ports, e)
            return False


def release(guard_id: str, ports: Iterable[int]) -> None:
    """Anyone may connect to `ports` again (the cluster, or the process that held them, stopped)."""
    ports = sorted({int(p) for p in ports if p})
    if not ports or not guard_id:
        return
    helper = owned.helper()
    try:
        if helper is not None:
            for start in range(0, len(ports), 64):  # the helper takes at most 64 ports a call
                helper.call("release", ports=ports[start:start + 64])
            return
        guard = PortGuard(guard_id)
        if guard.available():
            guard.release(ports)
    except (PortGuardError, PrivsepError) as e:
        log.warning("Could not release Spark UI ports %s: %s", ports, e)
