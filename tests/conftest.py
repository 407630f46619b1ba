"""Test layers: tests/unit (pure, nothing running), tests/integration (real hub, proxy, Ceph RGW),
tests/docs (every Python block of the README and user guide, run in its profile on the real platform),
tests/browser (real Chromium). Each test is marked by its folder so one layer runs alone (`-m unit`)."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
# the proxy that `make install` puts under .tools/ (the Makefile exports the same path)
os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(ROOT, ".tools", "chp", "node_modules", ".bin",
                                                        "configurable-http-proxy"))

pytest_plugins = ["tests.support.secretscan", "tests.support.fixtures", "tests.support.kafka"]
# the real Kubernetes control plane (k8s_control_plane, k8s_namespace): tests/support/k8s_control_plane.py
pytest_plugins.append("tests.support.k8s_control_plane")

_LAYERS = ("unit", "integration", "docs", "browser")


def _layer(item) -> str:
    return os.path.relpath(str(item.fspath), os.path.join(ROOT, "tests")).split(os.sep)[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _layer(item) in _LAYERS:
            item.add_marker(getattr(pytest.mark, _layer(item)))
    # fast layers first; the browser layer last (Playwright's sync API owns the main thread's loop while open);
    # within a layer, tests marked `scan_last` (the secret scan) after all the others
    items.sort(key=lambda item: (_LAYERS.index(_layer(item)) if _layer(item) in _LAYERS else 0,
                                 item.get_closest_marker("scan_last") is not None))


def pytest_configure(config):
    config.addinivalue_line("markers", "scan_last: runs after every other test of its layer (the secret scan)")
