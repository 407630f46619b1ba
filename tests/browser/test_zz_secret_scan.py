"""The secret scan at the end of the browser layer: every answer the browser received (each browser context of
the tests feeds the scan: tests.support.secretscan.record_browser_answers, set up by tests/browser/conftest.py),
every log and state file of the hub, notebook servers, model servers, Spark and Ceph the layer ran, and
test-artifacts/ hold no secret the platform handed out. Marked `scan_last`: runs after every other browser test."""

import pytest

from tests.conftest import ARTIFACTS
from tests.support import secretscan


@pytest.mark.scan_last
def test_no_secret_in_what_the_browser_received_or_in_logs(tmp_path_factory):
    report = secretscan.scan_layer("browser", ARTIFACTS, str(tmp_path_factory.getbasetemp()))
    if set(report.secrets_by_kind) == {"canary"}:
        pytest.skip("no secret was handed out in this run (no hub or Ceph ran): nothing else to look for")
