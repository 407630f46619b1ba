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


def listening_socket() -> tuple[socket.socket, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener, listener.getsockname()[1]


def test_guarded_port_refuses_other_users():
    listener, port = listening_socket()
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


def test_owner_guarded_port_admits_its_owner_and_root_only():
    listener, port = listening_socket()
    owner, stranger = 65534, 65533
    guard = PortGuard("test" + os.urandom(4).hex())
    try:
        guard.guard([port], uids=[owner])
        assert guard.owned() == {port: {owner}} and guard.guarded() == set()
        assert connect_as(port, owner) == "connected", "the owner (their notebook server's proxy) connects"
        assert connect_as(port, None) == "connected", "root (the hub, the platform service) connects"
        assert "ConnectionRefusedError" in connect_as(port, stranger), "another user is refused"
        guard.guard([port], uids=[stranger])  # the port changed hands: the earlier owner is out
        assert guard.owned() == {port: {stranger}}
        assert "ConnectionRefusedError" in connect_as(port, owner) and connect_as(port, stranger) == "connected"
        guard.release([port])
        assert guard.owned() == {} and connect_as(port, owner) == "connected"
    finally:
        guard.remove()
        listener.close()


OLD_RULESET = """table inet {table} {{
  set guarded {{ type inet_service; }}
  chain output {{
    type filter hook output priority 0; policy accept;
    ip daddr 127.0.0.0/8 tcp dport @guarded meta skuid != 0 reject with tcp reset
  }}
}}
"""  # what an earlier version made: a root-only rule, no owner sets


def test_a_table_of_the_earlier_version_gains_the_owner_rule_and_keeps_its_ports():
    listener, port = listening_socket()
    guard = PortGuard("test" + os.urandom(4).hex())
    try:
        subprocess.run(["nft", "-f", "-"], input=OLD_RULESET.format(table=guard.table), text=True, check=True,
                       timeout=30)
        subprocess.run(["nft", "add", "element", "inet", guard.table, "guarded", f"{{ {port + 2} }}"], check=True,
                       timeout=30)
        guard.guard([port], uids=[65534])
        PortGuard(guard.table[4:]).guard([port + 1], uids=[65534])  # brought up to date again: not doubled
        listing = subprocess.run(["nft", "list", "table", "inet", guard.table], capture_output=True, text=True,
                                 timeout=30).stdout
        assert listing.count("@owned_ports") == 1 and listing.count("@guarded") == 1, listing
        assert guard.guarded() == {port + 2}, "the ports it guarded stay guarded"
        assert "ConnectionRefusedError" in connect_as(port, 65533) and connect_as(port, 65534) == "connected"
    finally:
        guard.remove()
        listener.close()


def test_the_platform_services_own_user_is_admitted_and_stays_so():
    """The service dropped root (host.privsep): its gateway connects to model servers as its own uid. A table a
    root run made is brought up to date in place (its ports kept); a guard made later without the service's uid
    (the hub's, for a Spark cluster) leaves it admitted."""
    listener, port = listening_socket()
    gid = "test" + os.urandom(4).hex()
    PortGuard(gid).guard([port])  # as a root run left it
    guard = PortGuard(gid, allow_uids=(65533,))
    try:
        assert "ConnectionRefusedError" in connect_as(port, 65533), "before: only root"
        guard.ensure()
        assert guard.guarded() == {port}, "the guarded ports stay"
        assert connect_as(port, 65533) == "connected", "the service's user connects"
        assert "ConnectionRefusedError" in connect_as(port, 65534), "anyone else is still refused"
        PortGuard(gid).guard([port + 1], uids=[65532])  # the hub (root) guards a Spark UI port
        assert connect_as(port, 65533) == "connected", "still admitted"
        assert connect_as(port, None) == "connected"
    finally:
        guard.remove()
        listener.close()


def test_the_privileged_helper_guards_for_a_hub_user_and_the_service(tmp_path):
    from odh_spawner.host import owned, privsep
    from odh_spawner.spark import uiguard
    from odh_spawner.spark.uiguard import UiGuard
    from odh_spawner.host.users import ensure_system_user

    os.chmod(tmp_path, 0o711)
    svc = privsep.ensure_platform_user(privsep.platform_user_name("testpriv1"))  # test_privsep's service account
    alice = ensure_system_user("guard-" + os.urandom(3).hex(), str(tmp_path / "alice"))
    guard_id = "test" + os.urandom(4).hex()
    helper = privsep.start_helper(privsep.Policy((str(tmp_path),), svc.pw_uid, svc.pw_gid), guard_id)
    listener, port = listening_socket()
    try:
        assert helper.call("guard", ports=[port], user=alice.name) is True
        assert PortGuard(guard_id).owned() == {port: {alice.uid, svc.pw_uid}}
        assert connect_as(port, alice.uid) == "connected" and connect_as(port, svc.pw_uid) == "connected"
        assert "ConnectionRefusedError" in connect_as(port, 65533)
        for who in ("root", svc.pw_name):  # never on behalf of root or the service itself
            with pytest.raises(privsep.PrivsepError, match="is not a hub user's system account"):
                helper.call("guard", ports=[port], user=who)
        assert helper.call("release", ports=[port]) is True
        assert PortGuard(guard_id).owned() == {} and connect_as(port, 65533) == "connected"
        # a Spark cluster's UI guard in a service that dropped root goes through the helper the same way
        owned.delegate(helper)
        try:
            assert UiGuard(guard_id, alice).guard([port]) is True
            assert PortGuard(guard_id).owned() == {port: {alice.uid, svc.pw_uid}}
            assert "ConnectionRefusedError" in connect_as(port, 65533)
            uiguard.release(guard_id, [port])
            assert PortGuard(guard_id).owned() == {}
        finally:
            owned.delegate(None)
    finally:
        helper.close()
        PortGuard(guard_id).remove()
        listener.close()
        subprocess.run(["userdel", alice.name], capture_output=True, timeout=30)
