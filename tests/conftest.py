"""Test layers: tests/unit (pure, nothing running), tests/integration (real hub, proxy, Ceph RGW),
tests/docs (every Python block of the README and user guide, run in its profile on the real platform),
tests/browser (real Chromium). Each test is marked by its folder so one layer runs alone (`-m unit`)."""

import os
import random

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
    # within a layer, tests marked `scan_last` (the secret scan) after all the others, and the modules in the
    # order --module-order asks for (each module's own tests keep their order: the sort is stable)
    rank = module_ranks(config.getoption("module_order"), [str(i.fspath) for i in items])
    items.sort(key=lambda item: (_LAYERS.index(_layer(item)) if _layer(item) in _LAYERS else 0,
                                 item.get_closest_marker("scan_last") is not None, rank[str(item.fspath)]))


def module_ranks(order: str, paths: list[str]) -> dict[str, int]:
    """Each test module's place: `file` (as collected), `reverse`, or `random:SEED` (a shuffle that SEED repeats).
    Pure."""
    mods = list(dict.fromkeys(paths))
    if order == "reverse":
        mods.reverse()
    elif order.startswith("random:") and order[7:].isdigit():
        random.Random(int(order[7:])).shuffle(mods)
    elif order != "file":
        raise pytest.UsageError(f"--module-order must be file, reverse or random:SEED (digits), not {order!r}")
    return {m: n for n, m in enumerate(mods)}


def pytest_addoption(parser):
    parser.addoption("--module-order", default="file",
                     help="the order of test modules within each layer: file (default), reverse, or random:SEED. "
                          "`make test` runs the layers that start real components in reverse, so a module that "
                          "needs an earlier module's leftovers fails there (the unit layer runs with -p randomly)")


def pytest_report_header(config):
    return f"test modules in {config.getoption('module_order')} order within each layer"


def pytest_configure(config):
    config.addinivalue_line("markers", "scan_last: runs after every other test of its layer (the secret scan)")
