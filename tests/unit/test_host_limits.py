"""The parent cgroup of a hub's servers weighs as much as its servers: on a busy machine N users' servers get the
CPU share of N processes (as unlimited servers would), not of one."""

import os
import uuid

import pytest

from odh_spawner.host.limits import CgroupLimits, parent_cpu_weight


def test_parent_weight_is_one_process_per_server_within_the_kernels_bounds():
    assert [parent_cpu_weight(n, 1) for n in (0, 1, 2, 50)] == ["1024", "1024", "2048", str(50 * 1024)]
    assert [parent_cpu_weight(n, 2) for n in (0, 1, 2, 50)] == ["100", "100", "200", "5000"]
    assert parent_cpu_weight(10_000, 1) == "262144"  # cgroup v1's largest cpu.shares
    assert parent_cpu_weight(10_000, 2) == "10000"  # cgroup v2's largest cpu.weight


@pytest.fixture
def limits():
    limits = CgroupLimits(parent=f"odh-test-{uuid.uuid4().hex[:8]}")
    if os.geteuid() != 0 or not limits.available():
        pytest.skip("needs root on a writable cgroupfs (CI has both)")
    yield limits
    for d in {os.path.dirname(x) for x in limits._dirs("x")}:
        for name in os.listdir(d):
            if os.path.isdir(os.path.join(d, name)):
                os.rmdir(os.path.join(d, name))
        os.rmdir(d)


def test_the_parent_weighs_as_many_processes_as_it_holds_servers(limits):
    one = 100 if limits.version == 2 else 1024
    names = [f"user{i}-default" for i in range(3)]
    for i, name in enumerate(names, start=1):
        limits.create(name, 1.0, 2**30)
        assert limits.parent_weight() == i * one
    assert limits.read_limits(names[0])["cpu"] == "100000 100000"  # each server is still capped at its limit
    limits.remove(names[0])
    assert limits.parent_weight() == 2 * one
    for name in names[1:]:
        limits.remove(name)
    assert limits.parent_weight() == one  # an empty parent weighs as one process, the kernel's default
