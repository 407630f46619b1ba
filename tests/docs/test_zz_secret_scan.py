"""The secret scan at the end of the docs layer: the logs and state files of the hub, notebook servers, model
servers, ingestion workers, Spark and Ceph that running the documented blocks produced, and test-artifacts/, hold no
secret the platform handed out (tests/support/secretscan.py). Marked `scan_last`: runs after the layer's blocks."""

import pytest

from tests.conftest import ARTIFACTS
from tests.support import secretscan


@pytest.mark.scan_last
def test_no_secret_in_logs_after_the_documented_blocks(tmp_path_factory):
    report = secretscan.scan_layer("docs", ARTIFACTS, str(tmp_path_factory.getbasetemp()))
    if set(report.secrets_by_kind) == {"canary"}:
        pytest.skip("no secret was handed out in this run (no hub or Ceph ran): nothing else to look for")
