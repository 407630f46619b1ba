"""The local platform's Ceph settings, ceph.conf and restart budget: pure, nothing started."""

import pytest

from odh_spawner.localplatform.ceph import ADMIN_UID, CephError, ClusterRecord, ObjectStore, ceph_conf
from odh_spawner.localplatform.settings import SettingsError, load_settings, parse_settings
from odh_spawner.host.supervise import RestartBudget, exit_text, restart_delay
from odh_spawner.naming import rgw_uid
from tests.unit.test_config_files import DEMO_DIR

REC = ClusterRecord(fsid="f-1", objectstore="bluestore", mon_v2=41000, mon_v1=41001, rgw_port=41002)


def test_demo_platform_keeps_objects_on_disk():
    s = load_settings(DEMO_DIR)
    assert s.ceph_store == ObjectStore("bluestore", 4 * 2**30, 896 * 2**20)


def test_objectstore_defaults_and_choices():
    assert parse_settings({}, "/x").ceph_store.kind == "bluestore"
    assert parse_settings({"ceph": {"objectstore": "memstore"}}, "/x").ceph_store.kind == "memstore"
    assert ObjectStore().kind == "memstore"  # CephCluster(dir) alone: the fast, throw-away store tests use


@pytest.mark.parametrize("ceph,field,words", [
    ({"objectstore": "filestore"}, "ceph.objectstore", "bluestore, memstore"),
    ({"bluestore_size": "1Gi"}, "ceph.bluestore_size", "at least 2Gi"),
    ({"bluestore_size": "lots"}, "ceph.bluestore_size", "Invalid memory quantity"),
    ({"osd_memory_target": "512Mi"}, "ceph.osd_memory_target", "at least 896Mi"),
])
def test_bad_ceph_settings_name_the_field(ceph, field, words):
    with pytest.raises(SettingsError, match=words) as e:
        parse_settings({"ceph": ceph}, "/x", "platform.yaml")
    assert e.value.field == field


def test_object_store_validates_itself():
    with pytest.raises(CephError, match="Unknown Ceph object store"):
        ObjectStore("filestore")
    with pytest.raises(CephError, match="at least 2 GiB, got 1 GiB"):
        ObjectStore("bluestore", bluestore_size=2**30)


def test_bluestore_conf_puts_a_sparse_file_beside_the_osd_data():
    conf = ceph_conf("/s/ceph", REC, ObjectStore("bluestore", 3 * 2**30))
    assert "osd objectstore = bluestore\n" in conf
    # not named `block` (ceph-osd --mkfs fails with ELOOP), created by mkfs, 3 GiB
    assert "bluestore block path = /s/ceph/osd/$id.block.img\n" in conf
    assert "bluestore block create = true\n" in conf and f"bluestore block size = {3 * 2**30}\n" in conf
    assert f"osd memory target = {896 * 2**20}\n" in conf
    assert "memstore" not in conf
    assert "fsid = f-1\n" in conf and "mon host = [v2:127.0.0.1:41000,v1:127.0.0.1:41001]\n" in conf
    assert "rgw frontends = beast endpoint=127.0.0.1:41002\n" in conf
    assert "public addr = 127.0.0.1\n" in conf and "ms bind ipv6 = false\n" in conf


def test_memstore_conf():
    conf = ceph_conf("/s/ceph", REC, ObjectStore("memstore"))
    assert "osd objectstore = memstore\n" in conf and "bluestore" not in conf


def test_platform_admin_uid_is_no_users_uid():
    assert ADMIN_UID == "odh_platform_admin"
    for name in ("admin", "platform-admin", "odh_platform_admin", "platform_admin", "Admin"):
        assert rgw_uid(name) != ADMIN_UID


def test_restart_budget():
    now = [0.0]
    budget = RestartBudget(limit=2, window=10, clock=lambda: now[0])
    assert budget.spend() and budget.spend() and not budget.spend()
    now[0] = 20.0  # the window has passed
    assert budget.spend()


def test_exit_text():
    assert exit_text(-9) == "signal 9 (SIGKILL)" and exit_text(1) == "status 1"


def test_restart_delay_doubles_up_to_its_cap():
    assert [restart_delay(n, 60) for n in (1, 2, 5, 6, 9)] == [2, 4, 32, 60, 60]
    assert restart_delay(3, 5) == 5
