"""The secret scan at the end of the unit layer: nothing runs here, so the secrets are the ones unit tests
register and the state files they write (under the layer's base temp); the scan covers their logs, test-artifacts/
and every answer recorded. It proves it reaches a log and an answer by finding a canary planted in each
(`scan_layer`), so `make test-unit` ends with a scan that worked, like the other layers. Marked `scan_last`."""

import pytest

from tests.conftest import ARTIFACTS
from tests.support import secretscan


@pytest.mark.scan_last
def test_no_secret_in_the_unit_layers_logs_or_answers(tmp_path_factory):
    report = secretscan.scan_layer("unit", ARTIFACTS, str(tmp_path_factory.getbasetemp()))
    assert report.files >= 1 and report.answers >= 1  # the canary's log and answer, at least
