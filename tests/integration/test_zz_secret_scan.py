"""The secret scan at the end of the integration run: no S3 secret, hub token, proxy token, cookie secret, Spark
secret or endpoint key appears in any log (hub, platform service, notebook servers, model servers, Spark,
Ceph), progress event or API answer the tests saw. How it harvests and what it scans: tests/support/secretscan.py.
Marked `scan_last`: tests/conftest.py runs it after every other integration test."""

import os
import secrets

import pytest

from tests.conftest import ARTIFACTS
from tests.support import secretscan


@pytest.mark.scan_last
def test_no_secret_in_logs_events_or_answers(tmp_path_factory):
    basetemp = tmp_path_factory.getbasetemp()
    # a canary in a log under the fixtures' directories and in an answer: proves the scan reaches both
    canary = "canary-" + secrets.token_hex(16)
    secretscan.register_secret(canary, "canary")
    log = basetemp / "secretscan-canary" / "canary.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(f"a line\nleaked: {canary}\n")
    secretscan.record_response("GET", "http://127.0.0.1/canary", f'{{"x": "{canary}"}}', 200)

    report = secretscan.run(ARTIFACTS, [str(basetemp)])
    print(report.summary())
    canaries = [leak for leak in report.leaks if leak.kind == "canary"]
    assert {(leak.source, leak.line) for leak in canaries} == {
        (os.path.realpath(log), 2), ("answer: GET http://127.0.0.1/canary -> 200", 1)}
    leaks = [leak for leak in report.leaks if leak.kind != "canary"]
    if set(report.secrets_by_kind) == {"canary"}:
        pytest.skip("no secret was handed out in this run (no hub or Ceph ran): nothing else to look for")
    assert not leaks, "secrets leaked (shown redacted):\n" + "\n".join(str(leak) for leak in leaks)
