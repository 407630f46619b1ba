"""A real JupyterHub with its real proxy and OdhLocalSpawner: log in, see your profiles, spawn, stop."""

import os
import re
import threading
import time

import pytest
import yaml

from odh_spawner.host.limits import CgroupLimits
from odh_spawner.localplatform.hubconfig import cgroup_parent
from tests.support.fixtures import pid_alive, process_env, server_pid


def test_each_user_sees_only_their_profiles(login):
    assert login("alice").offered_profiles() == ["minimal", "datascience"]
    assert login("bob").offered_profiles() == ["minimal", "datascience", "pytorch-gpu"]


def test_wrong_password_is_refused(hub):
    from tests.support.hubclient import HubUserSession

    with pytest.raises(AssertionError, match="login as alice failed"):
        HubUserSession(hub.url, "alice", "wrong")


def test_spawn_from_form_reach_status_and_stop(hub, login):
    alice = login("alice")
    r = alice.post_form({"profile": "datascience", "size--datascience": "medium", "size--minimal": "small"})
    assert r.status_code == 200 and "/spawn-pending/alice" in r.url
    server = alice.wait_ready()
    assert server["user_options"] == {"profile": "datascience", "size": "medium", "gpu": 0}
    status = alice.server_api("/api/status")
    assert status.status_code == 200 and "last_activity" in status.json()

    pid = server_pid(login("admin"), "alice")
    env = process_env(pid)
    assert env["ODH_PROFILE"] == "datascience" and env["ODH_SIZE"] == "medium"
    assert env["S3_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "WHEN_REQUIRED"
    assert env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"  # the profile's env
    with open(f"/proc/{pid}/cgroup") as f:
        cgroups = f.read()
    limits = CgroupLimits(parent=cgroup_parent(hub.runtime["state_dir"]))  # this hub's own parent group
    if limits.available():  # root on a writable cgroupfs, as on CI: limits must be enforced
        assert f"{limits.parent}/alice-default" in cgroups, cgroups
        got = limits.read_limits("alice-default")
        assert got["memory"] == str(4 * 2**30)  # size medium: 4Gi limit
        assert got["cpu"] == "200000 100000"  # 2 CPUs
    else:
        assert "odh-hub" not in cgroups

    alice.stop()
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), "the server process outlived its stop"
    assert not limits.pids("alice-default"), "processes left in the server's cgroup"


def test_choice_is_remembered_for_next_start(login):
    bob = login("bob")
    bob.post_form({"profile": "pytorch-gpu", "size--pytorch-gpu": "large", "gpu--pytorch-gpu": "2"})
    server = bob.wait_ready()
    assert server["user_options"] == {"profile": "pytorch-gpu", "size": "large", "gpu": 2}
    bob.stop()
    form = bob.spawn_form()
    assert re.search(r'value="pytorch-gpu" id="odh-profile-pytorch-gpu" checked', form)
    assert re.search(r'<option value="large" selected>', form)
    assert 'name="gpu--pytorch-gpu" id="odh-gpu-pytorch-gpu" min="0" max="2" value="2"' in form


def test_progress_reports_profile_and_limits(login):
    alice = login("alice")
    posted = {}
    thread = threading.Thread(target=lambda: posted.update(r=alice.api("POST", "/users/alice/server",
                                                                        json={"profile": "minimal"})))
    thread.start()
    deadline = time.monotonic() + 10
    while alice.model()["servers"].get("", {}).get("pending") != "spawn":  # watch while it is starting
        assert time.monotonic() < deadline, "spawn never became pending"
        time.sleep(0.02)
    events = alice.progress_messages()
    thread.join()
    assert posted["r"].status_code in (201, 202), posted["r"].text
    messages = [e.get("message", "") for e in events]
    assert any("Profile Minimal Python, size small" in m for m in messages), messages
    assert any("Limits" in m for m in messages), messages
    assert any("local 'minimal' environment" in m for m in messages), messages  # its lock's, not the hub's
    assert events[-1].get("ready"), events[-1]
    alice.stop()


@pytest.mark.parametrize("options,status,fragment", [
    ({"profile": "pytorch-gpu"}, 403, "not available to you"),
    ({"profile": "no-such-profile"}, 403, "not available to you"),  # unknown answers as hidden does
    ({"profile": "minimal", "gpu": 1}, 403, "does not offer GPUs"),
    ({"profile": "datascience", "spark": {"workers": 99}}, 403, "limit of 3"),
    ({"profile": "minimal", "size": "xxl"}, 403, "not offered"),
    ({"image": "evil/miner:latest"}, 400, "Unknown option(s): 'image'"),
    ({"profile": ["minimal"]}, 400, "`profile` must be a string"),
])
def test_forged_user_options_are_refused(login, options, status, fragment):
    alice = login("alice")
    r = alice.api("POST", "/users/alice/server", json=options)
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]
    assert alice.model()["servers"] == {}, "a refused spawn leaves no server behind"


def test_forged_form_field_is_refused(login):
    alice = login("alice")
    r = alice.post_form({"profile": "pytorch-gpu", "gpu--pytorch-gpu": "1"})
    assert r.status_code == 403
    assert "not available to you" in r.text
    assert alice.model()["servers"] == {}


def test_profile_edit_is_hot_reloaded_and_broken_edit_keeps_last_good(login, config_dir):
    path = os.path.join(config_dir, "profiles.yaml")
    with open(path) as f:
        original = f.read()
    doc = yaml.safe_load(original)
    extra = dict(doc["profiles"][0], slug="r-studio", display_name="R", default=False, groups=["data-science"])
    doc["profiles"].append(extra)
    try:
        _write(path, yaml.safe_dump(doc))
        assert login("alice").offered_profiles() == ["minimal", "datascience", "r-studio"]
        assert "r-studio" not in login("bob").offered_profiles()
        _write(path, original.replace("@sha256:", ":latest-not-pinned-", 1))  # broken: unpinned image
        assert login("alice").offered_profiles() == ["minimal", "datascience", "r-studio"]
        r = login("alice").api("POST", "/users/alice/server", json={"profile": "r-studio"})
        assert r.status_code in (201, 202), r.text
        login("alice").wait_ready()
        login("alice").stop()
    finally:
        _write(path, original)
    assert login("alice").offered_profiles() == ["minimal", "datascience"]


def test_idle_culler_runs_as_hub_service(login):
    r = login("admin").api("GET", "/services")
    assert r.status_code == 200
    culler = r.json()["idle-culler"]
    assert "--timeout=3600" in culler["command"]
    assert culler["pid"] and pid_alive(culler["pid"])


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
