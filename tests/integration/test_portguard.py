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
