"""Installing the chart: `helm install` of helm/odh-hub (ci/full-values.yaml, as tests/integration/test_helm_install.py
installs it) into a REAL kube-apiserver v1.20.2 (tests/support/k8s_control_plane.py) until every object of the
release exists, vs. `kubectl apply` (Debian's kubectl 1.20, built beside the server) of the very manifests
`helm template` renders for the same values, until the same objects exist. Both into a fresh namespace each
time (holding the RGW admin-credentials Secret the values name), ROUNDS rounds alternating; medians. Issue 10
asks to report the seconds: `ours` is helm install's, `baseline` gives them a ratio (what helm adds over applying
the same objects: loading the chart, rendering, `lookup` of the generated Secrets, its release record).

"All objects created" = `helm install` (no --wait: no kubelet, the chart's pods stay Pending) or `kubectl apply`
returned, then one `kubectl get -f <rendered manifests>` finds every object (retried until it does).
Also `template_seconds`: `helm template` of the full chart (the median of ROUNDS runs), and the object count."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from tests.support.helm import CHART, helm, values_args  # noqa: E402
from tests.support.k8s_control_plane import K8S_VERSION, ControlPlane, bin_dir  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
RELEASE = "odh"
VALUES = "full-values.yaml"
SETS = {"fullnameOverride": "", "serving.namespace": "", "storage.adminCredentials.secret": "rgw-admin",
        "storage.adminCredentials.accessKeyKey": "access_key", "storage.adminCredentials.secretKeyKey": "secret_key"}


def fresh_namespace(cp) -> str:
    ns = cp.create_namespace("helm")
    r = cp.api("POST", f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rgw-admin"},
        "stringData": {"access_key": "ADMINACCESS", "secret_key": "admin-secret"}})
    assert r.ok, r.body
    return ns


def render(ns: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    out = helm("template", RELEASE, CHART, "--namespace", ns, *values_args(VALUES, SETS))
    return out, time.perf_counter() - t0


def all_exist(cp, manifest: str, ns: str, deadline: float) -> int:
    """Wait until `kubectl get -f` finds every object of the manifest; the number of objects."""
    while True:
        r = cp.kubectl("get", "-n", ns, "-f", manifest, "-o", "name", check=False)
        if r.returncode == 0:
            return len(r.stdout.split())
        if time.monotonic() > deadline:
            raise RuntimeError(f"objects missing: {r.stderr[-2000:]}")
        time.sleep(0.05)


def install_helm(cp, manifest: str) -> tuple[float, int]:
    ns = fresh_namespace(cp)
    path = render_for(ns, manifest)
    t0 = time.perf_counter()
    helm("install", RELEASE, CHART, "--kubeconfig", cp.kubeconfig, "--namespace", ns, *values_args(VALUES, SETS))
    n = all_exist(cp, path, ns, time.monotonic() + 120)
    took = time.perf_counter() - t0
    helm("uninstall", RELEASE, "--kubeconfig", cp.kubeconfig, "--namespace", ns)
    cp.delete_namespace(ns)
    return took, n


def install_kubectl(cp, manifest: str) -> tuple[float, int]:
    ns = fresh_namespace(cp)
    path = render_for(ns, manifest)
    t0 = time.perf_counter()
    r = cp.kubectl("apply", "-n", ns, "-f", path, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {r.stderr[-2000:]}")
    n = all_exist(cp, path, ns, time.monotonic() + 120)
    took = time.perf_counter() - t0
    cp.delete_namespace(ns)
    return took, n


_rendered: dict[str, str] = {}


def render_for(ns: str, directory: str) -> str:
    """The chart rendered for namespace `ns` (helm template, same values), as a file; rendered outside the timing
    for the kubectl side (it is the input), and for the helm side only to know which objects to look for."""
    if ns not in _rendered:
        out, _ = render(ns)
        path = os.path.join(directory, f"{ns}.yaml")
        Path(path).write_text(out)
        _rendered[ns] = path
    return _rendered[ns]


def main() -> None:
    t_start = time.monotonic()
    times = {"ours": [], "baseline": []}
    template = []
    with tempfile.TemporaryDirectory(prefix="odh-bench-helm-") as tmp:
        os.makedirs(os.path.join(tmp, "k8s"))
        cp = ControlPlane(bin_dir(), Path(tmp, "k8s"))
        try:
            cp.start()
            helm_version = helm("version", "--short").strip()
            kubectl_version = subprocess.run([str(cp.bin_dir / "kubectl"), "version", "--client", "--short"],
                                             capture_output=True, text=True).stdout.strip()
            load_before = [round(x, 2) for x in os.getloadavg()]
            # warm-up, not counted: helm's and kubectl's first runs (discovery caches), the API server's
            install_helm(cp, tmp)
            install_kubectl(cp, tmp)
            counts = set()
            for i in range(ROUNDS):
                template.append(render("odh")[1])
                for side in (("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")):
                    took, n = (install_helm if side == "ours" else install_kubectl)(cp, tmp)
                    times[side].append(took)
                    counts.add(n)
                print(f"round {i}: helm install {times['ours'][-1]:.2f}s, kubectl apply "
                      f"{times['baseline'][-1]:.2f}s, helm template {template[-1]:.2f}s, objects {counts}")
            load_after = [round(x, 2) for x in os.getloadavg()]
        finally:
            cp.stop()
    assert len(counts) == 1, counts
    o, b = median(times["ours"]), median(times["baseline"])
    write_result(
        "helm_install",
        figure=(f"median seconds from `helm install` of the full chart ({VALUES}) to all {counts.pop()} objects "
                f"present in a real kube-apiserver {K8S_VERSION}, vs `kubectl apply` of the same rendered "
                f"manifests, {ROUNDS} rounds alternating, a fresh namespace each"),
        ours=o, baseline=b, target=None, units="seconds (ratio helm/kubectl)", met=None,
        template_seconds=round(median(template), 3),
        samples={**{k: [round(x, 3) for x in v] for k, v in times.items()},
                 "template": [round(x, 3) for x in template]},
        helm=helm_version, kubectl=kubectl_version, load_average_before=load_before, load_average_after=load_after,
        bench_seconds=round(time.monotonic() - t_start),
        note=("No --wait (no kubelet: the chart's pods stay Pending). Objects checked with one "
              "`kubectl get -f` of the rendered manifests, the same for both. Run on a machine shared with "
              "other test sessions (load_average)."))


if __name__ == "__main__":
    main()
