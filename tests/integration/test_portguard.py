"""PortGuard against the real kernel (nftables): a guarded loopback port refuses a non-root user's
connection and accepts root's; released, it accepts everyone again; removed, nothing is left."""

import os
import socket
import subprocess
import sys

import pytest

from odh_spawner.host.portguard import PortGuard

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="nftables rules need root (CI runs as root)")


def connect_as(port: int, uid: int | None) -> str:
    code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       preexec_fn=(lambda: os.setuid(uid)) if uid is not None else None)
    return r.stdout.strip() or r.stderr.strip().splitlines()[-1]


def test_guarded_port_refuses_other_users():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    guard = PortGuard("test" + os.urandom(4).hex())
    try:
        assert guard.available()
        assert connect_as(port, 65534) == "connected"
        guard.guard([port])
        assert guard.guarded() == {port}
        assert connect_as(port, None) == "connected", "root (the platform's gateway) still connects"
        assert "ConnectionRefusedError" in connect_as(port, 65534), "another user is refused"
        guard.release([port])
        assert connect_as(port, 65534) == "connected"
    finally:
        guard.remove()
        listener.close()
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert guard.table not in out


def test_the_platform_services_own_user_is_admitted_and_an_older_table_is_brought_up_to_date():
    """The service dropped root (host.privsep): its gateway connects as its own uid. A table created by a root
    run (no such exception) is updated in place, keeping the ports it guards."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    gid = "test" + os.urandom(4).hex()
    PortGuard(gid).guard([port])  # as a root run left it
    guard = PortGuard(gid, allow_uids=(65533,))
    try:
        assert "ConnectionRefusedError" in connect_as(port, 65533), "before: only root"
        guard.ensure()
        assert guard.guarded() == {port}, "the guarded ports stay"
        assert connect_as(port, 65533) == "connected", "the service's user connects"
        assert "ConnectionRefusedError" in connect_as(port, 65534), "anyone else is still refused"
        assert connect_as(port, None) == "connected"
    finally:
        guard.remove()
        listener.close()
