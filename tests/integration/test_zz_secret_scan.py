"""The secret scan at the end of the integration layer: no S3 secret, hub token, proxy token, cookie secret, Spark
secret, RGW admin key or endpoint key appears in any log (hub, platform service, notebook servers, model servers,
Spark, Ceph), progress event or API answer the tests saw (every HTTP client of the tests feeds the scan:
tests.support.hubclient, the Schemathesis runs, tests.support.secretscan.record_requests_response). How it
harvests and what it scans: tests/support/secretscan.py. Marked `scan_last`: tests/conftest.py runs it after every
other integration test."""

import pytest

from tests.conftest import ARTIFACTS
from tests.support import secretscan


@pytest.mark.scan_last
def test_no_secret_in_logs_events_or_answers(tmp_path_factory):
    report = secretscan.scan_layer("integration", ARTIFACTS, str(tmp_path_factory.getbasetemp()))
    if set(report.secrets_by_kind) == {"canary"}:
        pytest.skip("no secret was handed out in this run (no hub or Ceph ran): nothing else to look for")
