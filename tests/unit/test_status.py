"""`odh-hub status`, `alerts` and `restart` without a running platform: refused, each with its reason."""

import os

import pytest

from odh_spawner.cli import main
from odh_spawner.localplatform import runrecord, status


def test_no_running_platform_is_refused(tmp_path, capsys):
    with pytest.raises(status.StatusError, match=r"No odh-hub up runs with the state directory"):
        status.components(str(tmp_path))
    for argv in (["status"], ["alerts"], ["restart", "kafka"], ["status", "--url", "prometheus"]):
        assert main([*argv, "--state-dir", str(tmp_path)]) == 1
        assert "error: No odh-hub up runs with the state directory" in capsys.readouterr().err


def test_components_come_from_up_json_and_an_unknown_one_is_refused(tmp_path):
    # this test's own process stands in for the launcher and for Prometheus
    runrecord.write(str(tmp_path), [runrecord.entry("launcher", os.getpid()),
                                    runrecord.entry("prometheus", os.getpid(), "http://127.0.0.1:9")])
    assert [(c.name, c.state, c.address) for c in status.components(str(tmp_path))] == [
        ("launcher", "running", ""), ("prometheus", "running", "http://127.0.0.1:9")]
    assert status.find(str(tmp_path), "prometheus").address == "http://127.0.0.1:9"
    with pytest.raises(status.StatusError, match=r"No component 'kafka' runs; the components are: prometheus\."):
        status.find(str(tmp_path), "kafka")
    with pytest.raises(status.StatusError, match=r"Prometheus at http://127.0.0.1:9 did not answer"):
        status.alerts(str(tmp_path), timeout=2)
