"""up.json: what a running `odh-hub up` started, so that the next one stops what a killed run left (by PID and
start time, never a reused PID) and refuses to start beside a live one."""

import os
import stat
import subprocess
import sys

import pytest

from odh_spawner.localplatform import runrecord
from odh_spawner.localplatform.runrecord import Entry


def test_the_record_round_trips_privately(tmp_path):
    entries = [runrecord.entry("launcher", os.getpid()), Entry("hub", 123456, 42)]
    runrecord.write(str(tmp_path), entries)
    assert stat.S_IMODE(os.stat(tmp_path / "up.json").st_mode) == 0o600
    assert runrecord.read(str(tmp_path)) == entries
    runrecord.clear(str(tmp_path))
    assert runrecord.read(str(tmp_path)) == [] and not (tmp_path / "up.json").exists()
    (tmp_path / "up.json").write_text("{not json")
    assert runrecord.read(str(tmp_path)) == []


def test_left_running_skips_the_launcher_and_the_dead_and_stops_the_hub_first():
    entries = [Entry("launcher", 1, 1), Entry("ceph-rgw", 2, 2), Entry("kafka", 3, 3), Entry("hub", 4, 4),
               Entry("ceph-mon", 5, 5)]
    alive = {2: 2, 3: 3, 4: 4, 5: 99}  # pid 5 now belongs to another process (another start time)
    left = runrecord.left_running(entries, lambda pid, started: alive.get(pid) == started)
    assert [e.what for e in left] == ["hub", "kafka", "ceph-rgw"]


def test_a_live_launcher_is_refused_and_a_dead_runs_leftovers_are_stopped(tmp_path):
    runrecord.write(str(tmp_path), [runrecord.entry("launcher", os.getppid())])
    with pytest.raises(runrecord.LauncherRunning, match=rf"Another odh-hub up \(pid {os.getppid()}\)"):
        runrecord.reap(str(tmp_path), print)

    left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        said = []
        runrecord.write(str(tmp_path), [Entry("launcher", dead.pid, 1), runrecord.entry("kafka", left.pid)])
        assert runrecord.reap(str(tmp_path), said.append, timeout=5) == 1
        assert left.wait(10) is not None
        assert f"kafka (pid {left.pid})" in said[0] and f"(pid {dead.pid})" in said[0]
        assert runrecord.read(str(tmp_path)) == []
    finally:
        left.kill()
        left.wait()
