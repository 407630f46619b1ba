"""The alert rules (helm/odh-hub/files/prometheus/alerts.yaml): valid for Prometheus (`promtool check rules`),
each alert firing and not firing as intended (`promtool test rules` with tests/unit/alert_rules_test.yaml), named
metrics that exist (docs/metrics.md), and a runbook per alert with every section. And the local Prometheus's
configuration, settings and hub service, built from plain data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from odh_spawner.localplatform import hub as hubmod
from odh_spawner.localplatform.hubconfig import configure
from odh_spawner.localplatform.prometheus import RULES_FILE, prometheus_config, scrape_target
from odh_spawner.localplatform.settings import SettingsError, parse_settings
from odh_spawner.localplatform.status import alert_lines
from tests.support import runbooks

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
TESTS_FILE = Path(__file__).with_name("alert_rules_test.yaml")
ALERTS = [r["alert"] for r in runbooks.alert_rules()]
METRICS_DOC = (runbooks.ROOT / "docs" / "metrics.md").read_text()


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert os.access(PROMTOOL, os.X_OK), "promtool is not installed: run `make install` (Debian's prometheus)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_the_issue_s_alerts_are_all_there():
    assert set(ALERTS) >= {
        "OdhObjectStoreDown", "OdhKafkaDown", "OdhPlatformServiceDown", "OdhHubDown", "OdhSpawnFailureRatioHigh",
        "OdhModelServerDown", "OdhModelServerCrashLooping", "OdhModelServerErrors", "OdhIngestionLagGrowing",
        "OdhIngestionWorkerRestarting", "OdhSparkClusterFailed", "OdhObjectStoreDiskFilling", "OdhUserNearQuota"}
    assert len(ALERTS) == len(set(ALERTS))
    assert Path(RULES_FILE) == runbooks.RULES  # the launcher's default is the chart's file


def test_promtool_checks_the_rules():
    r = promtool("check", "rules", str(runbooks.RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in r.stdout


def test_promtool_check_refuses_a_broken_rule(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - alert: X\n    expr: sum(\n")
    r = promtool("check", "rules", str(bad))
    assert r.returncode == 1 and "parse error" in (r.stdout + r.stderr), r.stdout + r.stderr


def test_promtool_unit_tests_pass():
    r = promtool("test", "rules", str(TESTS_FILE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    tests = yaml.safe_load(TESTS_FILE.read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    for alert in ALERTS:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c.get("exp_alerts") for c in mine), f"{alert}: no test where it fires"
        # not firing: an evaluation with no alert, or one that fires for some series of the input only
        assert any(not c.get("exp_alerts") for c in mine) or alert in _partly_firing(tests), \
            f"{alert}: no test where it does not fire"


def _partly_firing(tests) -> set[str]:
    """Alerts tested against inputs with series that must not fire (the expected alerts name fewer series)."""
    found = set()
    for t in tests:
        for c in t.get("alert_rule_test", []):
            fired = {tuple(sorted(a["exp_labels"].items())) for a in c.get("exp_alerts", [])}
            if fired and len(t["input_series"]) > 2 * len(fired):
                found.add(c["alertname"])
    return found


def test_a_failing_expectation_fails_promtool(tmp_path):
    """The promtool tests can fail: the same file with one expectation changed does."""
    text = TESTS_FILE.read_text().replace("40% of the starts", "41% of the starts")
    broken = tmp_path / "alert_rules_test.yaml"
    broken.write_text(text.replace("../../helm/", str(runbooks.ROOT / "helm") + "/"))
    r = promtool("test", "rules", str(broken))
    assert r.returncode == 1 and "OdhSpawnFailureRatioHigh" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("rule", runbooks.alert_rules(), ids=ALERTS)
def test_each_alert_has_severity_annotations_and_a_short_for(rule):
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    ann = rule["annotations"]
    assert ann["summary"].strip() and ann["description"].strip()
    assert ann["runbook_url"] == runbooks.RUNBOOK_URL.format(alert=rule["alert"])
    seconds = int(re.fullmatch(r"(\d+)s", rule["for"]).group(1))
    assert 10 <= seconds <= 30, rule["for"]


@pytest.mark.parametrize("rule", runbooks.alert_rules(), ids=ALERTS)
def test_each_alert_uses_only_documented_metrics(rule):
    metrics = set(re.findall(r"\b(odh_[a-z0-9_]+|jupyterhub_[a-z0-9_]+|up)\b", rule["expr"]))
    assert metrics, rule["expr"]
    for name in metrics - {"up"}:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f"`{name}`" in METRICS_DOC or f"`{base}`" in METRICS_DOC or name.startswith("jupyterhub_"), \
            f"{rule['alert']}: {name} is not in docs/metrics.md"


@pytest.mark.parametrize("alert", ALERTS)
def test_each_alert_has_a_runbook_with_every_section(alert):
    text = runbooks.runbook(alert)
    assert text.startswith(f"# {alert}\n")
    assert list(runbooks.sections(text)) == list(runbooks.SECTIONS), alert
    for section in ("Confirm", "Fix", "Verify"):
        blocks = runbooks.sh_blocks(text, section)
        assert blocks, f"{alert}: no ```sh block under ## {section}"
        for block in blocks:  # local commands: no cluster tools outside "On Kubernetes"
            assert "kubectl" not in block, f"{alert} ## {section}"
            r = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
            assert r.returncode == 0, f"{alert} ## {section}: {r.stderr}"
    assert "kubectl" in runbooks.sections(text)["On Kubernetes"]
    assert f"[{alert}]({alert}.md)" in (runbooks.RUNBOOKS / "README.md").read_text()


NOT_MADE = {"OdhSpawnFailureRatioHigh", "OdhObjectStoreDiskFilling"}  # promtool only (docs/runbooks/README.md says why)


def timing_row(alert: str, t: dict) -> str:
    """The row of docs/runbooks/README.md's measured table for one alert of docs/runbooks/alert-timings.json."""
    def s(v):
        return "-" if v is None else f"{v} s"
    return (f"| [{alert}]({alert}.md) | {t['fault']} | {s(t['fired_after_s'])} | {s(t['fix_commands_s'])} | "
            f"{s(t['resolved_after_fix_s'])} |")


def test_the_runbooks_readme_quotes_the_measured_timings_of_every_alert_made_for_real():
    """docs/runbooks/alert-timings.json is test-artifacts/alert-timings.json of a full run of
    tests/integration/test_alerts.py; the README's table shows it as it is, one row per alert, and names the
    alerts not made for real."""
    measured = json.loads((runbooks.RUNBOOKS / "alert-timings.json").read_text())
    readme = (runbooks.RUNBOOKS / "README.md").read_text()
    assert set(measured["alerts"]) == set(ALERTS) - NOT_MADE
    for alert, t in measured["alerts"].items():
        assert t["fired_after_s"] > 0 and t["resolved_after_fix_s"] > 0, (alert, t)
        assert timing_row(alert, t) in readme, timing_row(alert, t)
    assert f"measured {measured['when']}" in readme
    for alert in NOT_MADE:
        assert f"| [{alert}]({alert}.md) | not made for real" in readme, alert


def test_runbook_blocks_are_found_by_section():
    text = "# A\n\n## Fix\n\nprose\n\n```sh\necho one\n# not a heading\n```\n\n```python\nx = 1\n```\n\n" \
           "```sh\necho two\n```\n\n## Verify\n\n```sh\necho three\n```\n"
    assert runbooks.sh_blocks(text, "Fix") == ["echo one\n# not a heading\n", "echo two\n"]
    assert runbooks.sh_blocks(text, "Verify") == ["echo three\n"]
    assert runbooks.sh_blocks(text, "Confirm") == []


def test_the_prometheus_config_scrapes_hub_platform_and_model_servers_with_the_token():
    assert prometheus_config("http://127.0.0.1:8000", "http://127.0.0.1:9100", "/s/prometheus/scrape-token",
                             ["/repo/alerts.yaml"]) == {
        "global": {"scrape_interval": "5s", "scrape_timeout": "4s", "evaluation_interval": "5s"},
        "rule_files": ["/repo/alerts.yaml"],
        "scrape_configs": [
            {"job_name": "odh-hub", "scheme": "http", "metrics_path": "/hub/metrics",
             "authorization": {"credentials_file": "/s/prometheus/scrape-token"},
             "static_configs": [{"targets": ["127.0.0.1:8000"]}]},
            {"job_name": "odh-platform", "scheme": "http", "metrics_path": "/services/odh-platform/metrics",
             "authorization": {"credentials_file": "/s/prometheus/scrape-token"},
             "static_configs": [{"targets": ["127.0.0.1:9100"]}]},
            # users' model servers' own metrics, through the platform service (its owner checks, its screening)
            {"job_name": "odh-models", "scheme": "http", "metrics_path": "/services/odh-platform/metrics/models",
             "authorization": {"credentials_file": "/s/prometheus/scrape-token"},
             "static_configs": [{"targets": ["127.0.0.1:9100"]}]},
        ],
    }


def test_scrape_targets_of_other_hub_addresses():
    assert scrape_target("http://0.0.0.0:8000", "/hub/metrics") == {
        "scheme": "http", "target": "127.0.0.1:8000", "path": "/hub/metrics"}
    assert scrape_target("https://hub.example.org/prefix/", "/hub/metrics") == {
        "scheme": "https", "target": "hub.example.org:443", "path": "/prefix/hub/metrics"}
    assert scrape_target("http://[::1]:8000", "/x")["target"] == "[::1]:8000"
    # no platform URL: only the hub is scraped
    assert [j["job_name"] for j in prometheus_config("http://h:1", "", "/t", [])["scrape_configs"]] == ["odh-hub"]


def test_the_generated_config_passes_promtool(tmp_path):
    token = tmp_path / "scrape-token"
    token.write_text("x")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(prometheus_config("http://127.0.0.1:8000", "http://127.0.0.1:9100", str(token),
                                                    [str(runbooks.RULES)])))
    r = promtool("check", "config", str(cfg))
    assert r.returncode == 0, r.stdout + r.stderr


def test_prometheus_settings():
    s = parse_settings({}, "/cfg")
    assert (s.prometheus_enabled, s.prometheus_port, s.prometheus_rules_file, s.prometheus_retention) == \
        (True, 0, "", "7d")
    s = parse_settings({"prometheus": {"enabled": False, "port": 9091, "rules_file": "mine.yaml",
                                       "retention": "12h"}}, "/cfg")
    assert (s.prometheus_enabled, s.prometheus_port, s.prometheus_rules_file, s.prometheus_retention) == \
        (False, 9091, "/cfg/mine.yaml", "12h")
    with pytest.raises(SettingsError, match=r"prometheus.retention.*Must be a Prometheus duration"):
        parse_settings({"prometheus": {"retention": "a week"}}, "/cfg")
    with pytest.raises(SettingsError, match=r"prometheus.enabled.*Must be bool"):
        parse_settings({"prometheus": {"enabled": "yes"}}, "/cfg")
    with pytest.raises(SettingsError, match=r"prometheus.scrape.*Unknown key"):
        parse_settings({"prometheus": {"scrape": 1}}, "/cfg")
    demo = yaml.safe_load((runbooks.ROOT / "config" / "demo" / "platform.yaml").read_text())
    assert demo["prometheus"]["enabled"] is True


def _runtime(**extra) -> dict:
    return {"state_dir": "/s", "bind_url": "http://127.0.0.1:8000", "hub_bind_url": "http://127.0.0.1:8081",
            "proxy_api_url": "http://127.0.0.1:8001", "proxy_command": ["chp"], "users_file": "/c/users.yaml",
            "profiles_file": "/c/profiles.yaml", **extra}


def test_the_hub_knows_prometheus_as_a_service_that_may_only_read_metrics():
    c = Config()
    configure(c, _runtime(prometheus_token="ab" * 32))
    assert {"name": "odh-prometheus", "api_token": "ab" * 32} in c.JupyterHub.services
    assert {"name": "odh-prometheus", "scopes": ["read:metrics"], "services": ["odh-prometheus"]} in \
        c.JupyterHub.load_roles
    c = Config()
    configure(c, _runtime(prometheus_token=""))
    assert all(s["name"] != "odh-prometheus" for s in c.JupyterHub.services)


def test_runtime_settings_make_a_fresh_token_only_with_prometheus(tmp_path):
    on = parse_settings({}, str(tmp_path))
    a, b = (hubmod.runtime_settings(on, str(tmp_path))["prometheus_token"] for _ in range(2))
    assert re.fullmatch(r"[0-9a-f]{64}", a) and a != b
    off = parse_settings({"prometheus": {"enabled": False}}, str(tmp_path))
    assert hubmod.runtime_settings(off, str(tmp_path))["prometheus_token"] == ""


def test_alert_lines():
    found = [{"labels": {"alertname": "OdhKafkaDown", "severity": "critical", "component": "kafka",
                         "job": "odh-platform"},
              "annotations": {"summary": "The Kafka broker does not answer the platform service."},
              "state": "firing", "activeAt": "2026-12-07T20:43:39.659894084Z"}]
    assert alert_lines(found) == ["OdhKafkaDown firing (critical, since 2026-12-07T20:43:39Z) component=kafka "
                                  "job=odh-platform: The Kafka broker does not answer the platform service."]
    assert alert_lines([]) == []
