"""The chart as Argo CD deploys it, against a real kube-apiserver v1.20.2 (tests/support/k8s_control_plane.py):
`helm template` with ci/gitops-values.yaml and every metrics object on, the admin's Secrets created first, then
`kubectl apply --server-side` (kubectl 1.20, Argo CD's ServerSideApply=true) into a fresh namespace, twice.

prometheus-operator's upstream CRDs (tests/fixtures/crds/prometheus-operator) are installed first, so the API
server validates the ServiceMonitors and the PrometheusRule against their schemas; a wrong field is refused with
the server's validation message, and what was accepted reads back unpruned (a field unknown to the schema would
be dropped silently). The second apply changes nothing: `kubectl diff --server-side` finds no difference, every
object reads back the same (managedFields and generation included) and keeps its resourceVersion, except that
kube-apiserver 1.20 writes each PersistentVolumeClaim once more on its first update whatever the update (shown
below without the chart); the third apply leaves every resourceVersion as it was.

A real JupyterHub then runs on this machine from the hub-config ConfigMap as applied, with its environment from the
admin's Secrets: the ServiceMonitor's bearer token reads /hub/metrics (the hub service odh-prometheus, scope
read:metrics), no token and the platform's token do not.

The only cluster-scoped objects are those two CRDs (installed once per control plane; `install_crds` leaves
existing ones alone, and no other test installs monitoring.coreos.com): the chart renders none.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tests.support import secretscan

from tests.support.helm import CHART, ROOT, helm, values_args
from tests.support.k8s_control_plane import install_crds

pytestmark = pytest.mark.integration

CRDS = [ROOT / "tests" / "fixtures" / "crds" / "prometheus-operator" / f"monitoring.coreos.com_{n}.yaml"
        for n in ("servicemonitors", "prometheusrules")]
METRICS = {"metrics.serviceMonitor.enabled": True, "metrics.prometheusRule.enabled": True,
           "metrics.dashboard.enabled": True}
RELEASE = "odh"
MANAGER = "odh-gitops-test"
# the admin's Secrets ci/gitops-values.yaml names, and the RGW admin keys the defaults name
ADMIN_SECRETS = {"odh-hub-tokens": {"cookie-secret": secrets.token_hex(32), "proxy-token": secrets.token_hex(32),
                                    "platform-api-token": secrets.token_hex(32)},
                 "odh-hub-admin": {"password": secrets.token_hex(12)},
                 "odh-hub-prometheus": {"token": secrets.token_hex(32)},
                 "rgw-admin": {"access_key": "ADMINACCESS", "secret_key": secrets.token_hex(20)}}
for _name, _data in ADMIN_SECRETS.items():  # the secret scan at the end of the run looks for them in every log
    for _key, _value in _data.items():
        if _key != "access_key":
            secretscan.register_secret(_value, f"gitops-{_name}-{_key}")


@pytest.fixture(scope="module")
def monitoring_crds(k8s_control_plane):
    names = install_crds(k8s_control_plane, CRDS)
    assert names == ["servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"]
    return names


def render(namespace: str) -> tuple[str, list[dict]]:
    text = helm("template", RELEASE, CHART, "--namespace", namespace, *values_args("gitops-values.yaml", METRICS))
    return text, [d for d in yaml.safe_load_all(text) if d]


def create_admin_secrets(cp, namespace: str) -> None:
    for name, data in ADMIN_SECRETS.items():
        r = cp.api("POST", f"/api/v1/namespaces/{namespace}/secrets",
                   {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data})
        assert r.ok, r.body


def apply(cp, manifest: str, check: bool = True):
    return cp.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "-f", "-", input=manifest, check=check)


def live(cp, manifest: str) -> dict[tuple[str, str], dict]:
    """The live objects of a manifest, read back from the API server."""
    out = json.loads(cp.kubectl("get", "-f", "-", "-o", "json", input=manifest).stdout)
    return {(o["kind"], o["metadata"]["name"]): o for o in out["items"]}


def settle(cp, namespace: str, manifest: str, timeout: float = 60) -> dict[tuple[str, str], dict]:
    """Wait until the controllers are done with the applied objects (the Deployments' status observed, the
    ServiceAccounts' token Secrets linked) and their resourceVersions hold still; returns them."""
    deadline = time.monotonic() + timeout
    before = None
    while True:
        objs = live(cp, manifest)
        ready = all(o["status"].get("observedGeneration") == o["metadata"]["generation"]
                    for o in objs.values() if o["kind"] == "Deployment")
        ready = ready and all(o.get("secrets") for o in objs.values() if o["kind"] == "ServiceAccount")
        versions = {k: o["metadata"]["resourceVersion"] for k, o in objs.items()}
        if ready and versions == before:
            return objs
        before = versions if ready else None
        assert time.monotonic() < deadline, "the controllers did not settle"
        time.sleep(1.0)


def test_gitops_render_applies_server_side_twice_and_the_second_apply_changes_nothing(
        k8s_control_plane, k8s_namespace, monitoring_crds):
    cp, ns = k8s_control_plane, k8s_namespace
    manifest, docs = render(ns)
    assert "Secret" not in {d["kind"] for d in docs}
    create_admin_secrets(cp, ns)

    first = apply(cp, manifest)
    applied = [line for line in first.stdout.splitlines() if line.strip()]
    assert len(applied) == len(docs) and all(line.endswith(" serverside-applied") for line in applied), first.stdout
    objs = settle(cp, ns, manifest)
    assert set(objs) == {(d["kind"], d["metadata"]["name"]) for d in docs}

    # the CRD-validated objects were accepted whole: nothing pruned (a field unknown to the schema would be)
    for d in docs:
        if d["kind"] in ("ServiceMonitor", "PrometheusRule"):
            assert objs[(d["kind"], d["metadata"]["name"])]["spec"] == d["spec"], d["metadata"]["name"]
    monitors = {name: o for (kind, name), o in objs.items() if kind == "ServiceMonitor"}
    assert {m["spec"]["endpoints"][0]["relabelings"][0]["replacement"] for m in monitors.values()} == {
        "odh-hub", "odh-platform"}
    # the ServiceMonitors select the chart's live Services (as prometheus-operator would list them)
    for name, m in monitors.items():
        selector = ",".join(f"{k}={v}" for k, v in m["spec"]["selector"]["matchLabels"].items())
        found = json.loads(cp.kubectl("get", "services", "-n", ns, "-l", selector, "-o", "json").stdout)["items"]
        assert [s["metadata"]["name"] for s in found] == [name]
    # the Deployments read the admin's Secrets, which exist (no generated Secret in the namespace)
    secrets = {s["metadata"]["name"] for s in json.loads(cp.kubectl("get", "secrets", "-n", ns, "-o", "json").stdout)
               ["items"] if s["type"] == "Opaque"}
    assert secrets == set(ADMIN_SECRETS)

    # Argo CD's next sync: the same bytes (a fresh render), applied again
    again, _ = render(ns)
    assert again == manifest
    diff = cp.kubectl("diff", "--server-side", f"--field-manager={MANAGER}", "-f", "-", input=again, check=False)
    assert diff.returncode == 0 and diff.stdout == "", diff.stdout + diff.stderr
    second = apply(cp, again)
    assert [line for line in second.stdout.splitlines() if line.strip()] == applied
    after = live(cp, manifest)
    # no object's content changed (managedFields included): only resourceVersions may differ, see below
    assert {k: strip_version(o) for k, o in after.items()} == {k: strip_version(o) for k, o in objs.items()}
    assert {k: o["metadata"].get("generation") for k, o in after.items()} == {
        k: o["metadata"].get("generation") for k, o in objs.items()}
    # kube-apiserver 1.20 rewrites a PersistentVolumeClaim once on its first update even when nothing changed
    # (test_a_first_unchanged_update_rewrites_a_claim_on_this_api_server shows it without the chart or kubectl)
    assert changed_versions(objs, after) <= {k for k in objs if k[0] == "PersistentVolumeClaim"}
    # from then on every sync is a no-op for every object
    third = apply(cp, render(ns)[0])
    assert [line for line in third.stdout.splitlines() if line.strip()] == applied
    assert changed_versions(after, live(cp, manifest)) == set()


def strip_version(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    del obj["metadata"]["resourceVersion"]
    return obj


def changed_versions(before: dict, after: dict) -> set:
    return {k for k in before if before[k]["metadata"]["resourceVersion"] != after[k]["metadata"]["resourceVersion"]}


def test_a_first_unchanged_update_rewrites_a_claim_on_this_api_server(k8s_control_plane, k8s_namespace):
    """The API server's own behaviour the test above allows for: a PersistentVolumeClaim's first update writes it
    again though nothing changed (a plain PUT of what a GET returned), the second does not; a ConfigMap's never."""
    cp, base = k8s_control_plane, f"/api/v1/namespaces/{k8s_namespace}"
    claim = {"metadata": {"name": "claim"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "1Gi"}}}}
    for kind, body, rewritten in (("persistentvolumeclaims", claim, True),
                                  ("configmaps", {"metadata": {"name": "claim"}, "data": {"a": "b"}}, False)):
        assert cp.api("POST", f"{base}/{kind}", body).ok
        got = cp.api("GET", f"{base}/{kind}/claim").body
        first = cp.api("PUT", f"{base}/{kind}/claim", got)
        second = cp.api("PUT", f"{base}/{kind}/claim", first.body)
        assert first.ok and second.ok
        versions = [o["metadata"]["resourceVersion"] for o in (got, first.body, second.body)]
        assert (versions[0] != versions[1]) is rewritten, (kind, versions)
        assert versions[1] == versions[2], (kind, versions)
        assert strip_version(first.body) == strip_version(second.body)


@pytest.mark.parametrize("kind, break_it, message", [
    ("ServiceMonitor", lambda s: s["endpoints"][0]["relabelings"][0].update(action="Rename"),
     'spec.endpoints.relabelings.action: Unsupported value: "Rename"'),
    ("ServiceMonitor", lambda s: s["endpoints"][0].update(scheme="gopher"),
     'spec.endpoints.scheme: Unsupported value: "gopher"'),
    ("PrometheusRule", lambda s: s["groups"][0]["rules"][0].update({"for": "ten seconds"}),
     "spec.groups.rules.for: Invalid value: \"ten seconds\""),
])
def test_the_crds_refuse_a_wrong_field_with_a_validation_message(k8s_control_plane, k8s_namespace, monitoring_crds,
                                                                  kind, break_it, message):
    cp, ns = k8s_control_plane, k8s_namespace
    _, docs = render(ns)
    obj = copy.deepcopy(next(d for d in docs if d["kind"] == kind))
    # the right one is accepted (server-side dry run), the broken one refused by the CRD's schema
    ok = cp.kubectl("apply", "--server-side", "--dry-run=server", f"--field-manager={MANAGER}", "-f", "-",
                    input=yaml.safe_dump(obj), check=False)
    assert ok.returncode == 0, ok.stderr
    break_it(obj["spec"])
    r = apply(cp, yaml.safe_dump(obj), check=False)
    assert r.returncode != 0
    assert "is invalid" in r.stderr and message in r.stderr, r.stderr
    gone = cp.kubectl("get", kind.lower(), obj["metadata"]["name"], "-n", ns, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_the_applied_hub_config_lets_the_scrape_token_and_only_it_read_hub_metrics(
        k8s_control_plane, k8s_namespace, monitoring_crds, tmp_path):
    """A real JupyterHub runs here from the hub-config ConfigMap as applied (the fixed jupyterhub_config.py and the
    rendered settings.json), with the hub container's environment resolved from the admin's Secrets, behind a
    configurable-http-proxy: the ServiceMonitor's bearer token (the hub service odh-prometheus) reads /hub/metrics
    at the ServiceMonitor's path on the hub's own port (the Service's target); no token, and the platform service's token (no read:metrics), are refused.
    In-cluster addresses become loopback ones and mount paths move under tmp_path; nothing else changes."""
    cp, ns = k8s_control_plane, k8s_namespace
    manifest, docs = render(ns)
    create_admin_secrets(cp, ns)
    apply(cp, manifest)
    objs = live(cp, manifest)
    config = objs[("ConfigMap", f"{RELEASE}-odh-hub-hub-config")]["data"]
    hub_container = objs[("Deployment", f"{RELEASE}-odh-hub-hub")]["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for e in hub_container["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:  # as the kubelet would: from the named Secret, as it is in the API server
            secret = cp.api("GET", f"/api/v1/namespaces/{ns}/secrets/{ref['name']}").body
            env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    assert env["ODH_METRICS_API_TOKEN"] == ADMIN_SECRETS["odh-hub-prometheus"]["token"]
    root = tmp_path / "pod"
    (root / "etc/odh-hub/config").mkdir(parents=True)
    (root / "etc/odh-hub/rgw-admin").mkdir(parents=True)
    for key in ("access_key", "secret_key"):
        (root / "etc/odh-hub/rgw-admin" / key).write_text(ADMIN_SECRETS["rgw-admin"][key])
    (root / "etc/odh-hub/config/jupyterhub_config.py").write_text(config["jupyterhub_config.py"])
    settings = json.loads(config["settings.json"])
    hub_port, proxy_port, proxy_api = free_port(), free_port(), free_port()
    settings["hub"].update(port=hub_port, connectUrl=f"http://127.0.0.1:{hub_port}",
                           dbUrl=f"sqlite:///{tmp_path}/jupyterhub.sqlite")
    settings["proxy"]["apiUrl"] = f"http://127.0.0.1:{proxy_api}"
    settings = json.loads(json.dumps(settings).replace('"/etc/odh-hub/', f'"{root}/etc/odh-hub/')
                          .replace('"/run/odh-hub/', f'"{root}/run/odh-hub/'))
    (root / "etc/odh-hub/config/settings.json").write_text(json.dumps(settings))
    kubeconfig = cp.write_kubeconfig(tmp_path / "hub-kubeconfig", cp.service_account_token(ns, f"{RELEASE}-odh-hub-hub"),
                                     namespace=ns, user="odh-hub")
    chp = subprocess.Popen(
        [os.environ["ODH_PROXY_COMMAND"], "--ip=127.0.0.1", f"--port={proxy_port}", "--api-ip=127.0.0.1",
         f"--api-port={proxy_api}", f"--default-target=http://127.0.0.1:{hub_port}"],
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": env["ODH_PROXY_TOKEN"]}, stdout=open(tmp_path / "chp.log", "ab"),
        stderr=subprocess.STDOUT, start_new_session=True)
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "--config", str(root / "etc/odh-hub/config/jupyterhub_config.py")],
        cwd=tmp_path, env={**os.environ, **env, "ODH_HUB_SETTINGS": str(root / "etc/odh-hub/config/settings.json"),
                           "KUBECONFIG": kubeconfig},
        stdout=open(tmp_path / "hub.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        monitor = objs[("ServiceMonitor", f"{RELEASE}-odh-hub-hub")]["spec"]["endpoints"][0]
        # the hub Service's port `http` is the hub container's 8081: here the hub's own (loopback) port
        service_port = next(p for p in objs[("Service", f"{RELEASE}-odh-hub-hub")]["spec"]["ports"]
                            if p["name"] == monitor["port"])
        assert service_port["targetPort"] == "http" and hub_container["ports"][0] == {
            "name": "http", "containerPort": 8081, "protocol": "TCP"}
        url = f"http://127.0.0.1:{hub_port}{monitor['path']}"
        deadline = time.monotonic() + 90
        while True:
            assert hub.poll() is None, "the hub exited: " + (tmp_path / "hub.log").read_text()[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{proxy_port}/hub/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the hub did not start: " + (tmp_path / "hub.log").read_text()[-3000:]
            time.sleep(0.3)

        scraped = requests.get(url, headers={"Authorization": f"Bearer {env['ODH_METRICS_API_TOKEN']}"}, timeout=10)
        assert scraped.status_code == 200, scraped.text[:300]
        assert "# TYPE jupyterhub_" in scraped.text and scraped.headers["Content-Type"].startswith("text/plain")
        anonymous = requests.get(url, timeout=10)
        assert anonymous.status_code == 403 and "read:metrics" in anonymous.text
        platform = requests.get(url, headers={"Authorization": f"Bearer {env['ODH_PLATFORM_API_TOKEN']}"},
                                timeout=10)
        assert platform.status_code == 403 and "read:metrics" in platform.text
        # the token's identity in the hub: the service odh-prometheus with exactly the read:metrics scope
        me = requests.get(f"http://127.0.0.1:{proxy_port}/hub/api/user",
                          headers={"Authorization": f"Bearer {env['ODH_METRICS_API_TOKEN']}"}, timeout=10).json()
        assert me["kind"] == "service" and me["name"] == "odh-prometheus" and me["scopes"] == ["read:metrics"], me
    finally:
        for proc in (hub, chp):
            stop(proc)
