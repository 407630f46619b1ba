"""Test layers: tests/unit (pure, nothing running), tests/integration (real hub, proxy, Ceph RGW),
tests/browser (real Chromium). Each test is marked by its folder so one layer runs alone (`-m unit`)."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
# the proxy that `make install` puts under .tools/ (the Makefile exports the same path)
os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(ROOT, ".tools", "chp", "node_modules", ".bin",
                                                        "configurable-http-proxy"))

_LAYERS = ("unit", "integration", "browser")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = os.path.relpath(str(item.fspath), os.path.join(ROOT, "tests")).split(os.sep)
        if parts[0] in _LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
