"""The chart's own hub configuration, as installed, runs a real JupyterHub on this machine against a real
kube-apiserver v1.20.2 and spawns a user with a Spark cluster.

The chart is installed into a fresh namespace (its pods stay Pending: there is no kubelet). Its hub-config
ConfigMap (the fixed jupyterhub_config.py and the settings.json rendered from values), its profiles ConfigMap and
its generated Secret are read back from the API server and laid out as the hub pod's volumes would; JupyterHub runs
here with them, reaching the API server with the token of the chart's hub ServiceAccount (so the chart's Role is
what allows or refuses every call), behind a configurable-http-proxy started as the proxy Deployment would be.
What differs from the pod, and only that: in-cluster addresses become loopback ones (the hub's connect URL, the
proxy API, the database path), since no cluster network exists here.

The user's pod is made Running/Ready by the test kubelet (tests/support/kubelet.py, NOT a real kubelet), which
gives it an address on 127.0.0.0/24; the test then plays the container runtime for that one pod: it starts
`jupyterhub-singleuser` from the pod's own command and environment (Secret references resolved through the API
server) on that address, so JupyterHub sees a real server come up. Stopping the server deletes the pod (the test
kubelet completes the deletion), the server's hub-token Secret and the Spark anchor, whose Deployments, Service and
Secret the real controller-manager garbage-collects through their ownerReferences.
Object storage is a real Ceph RGW (the session's `ceph` fixture): the chart's RGW admin-credentials Secret is made
from its admin keys, and the user's own keys land in their per-user Secret, which (like their RGW user) belongs to
the user, not to one server, and so stays when the server stops.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from odh_spawner.naming import home_claim_name
from tests.support import secretscan
from tests.support.helm import CHART, helm, values_args
from tests.support.hubclient import HubUserSession
from tests.support.kube_real import provide_volume
from tests.support.kubelet import TestKubelet

RELEASE = "odh"
FULL = f"{RELEASE}-odh-hub"
VALUES = {"platform.enabled": False, "hub.db.type": "memory", "culler.timeout": 3600, "culler.every": 60}
USER_LABELS = "app.kubernetes.io/instance=odh,odh-hub/role=user-server"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_json(cp, path: str) -> dict | None:
    r = cp.api("GET", path)
    return r.body if r.ok else None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float, proc=None) -> None:
    def up():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            return requests.get(url, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    wait_for(up, timeout, url)


class PodRuntime:
    """Plays the container runtime for users' pods the test kubelet reports running: runs the pod's command with
    its environment (secretKeyRef resolved) on the pod's loopback address, and stops it when the pod is deleted."""

    def __init__(self, cp, ns: str, log_dir: Path):
        self.cp, self.ns, self.log_dir = cp, ns, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def env_of(self, container: dict) -> dict:
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                secret = api_json(self.cp, f"/api/v1/namespaces/{self.ns}/secrets/{ref['name']}")
                env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
                secretscan.register_secret(env[e["name"]], f"pod-env-{e['name']}")
        return env

    def sync(self) -> None:
        pods = api_json(self.cp, f"/api/v1/namespaces/{self.ns}/pods?labelSelector=component%3Dsingleuser-server")
        live = set()
        for pod in pods["items"]:
            name, ip = pod["metadata"]["name"], pod.get("status", {}).get("podIP")
            if pod["metadata"].get("deletionTimestamp") or not ip:
                continue
            live.add(name)
            if name in self.procs:
                continue
            container = pod["spec"]["containers"][0]
            env = self.env_of(container)
            port = container["ports"][0]["containerPort"]
            base = env["JUPYTERHUB_SERVICE_PREFIX"]
            env["JUPYTERHUB_SERVICE_URL"] = f"http://{ip}:{port}{base}"  # the pod's address, here on loopback
            home = self.log_dir / name
            home.mkdir(exist_ok=True)
            argv = [os.path.join(os.path.dirname(sys.executable), container["command"][0] if container.get("command")
                                 else container["args"][0])]
            args = [a for a in (container.get("args") or [])[0 if container.get("command") else 1:]
                    if not a.startswith("--ip")]
            argv += args + [f"--ip={ip}", f"--port={port}"]
            if os.geteuid() == 0:
                argv.append("--allow-root")  # the pod's securityContext (uid 1000) has no meaning here
            log = open(self.log_dir / f"{name}.log", "ab")
            self.procs[name] = subprocess.Popen(
                argv, env={**{k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}, **env,
                           "HOME": str(home)}, cwd=home, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        for name in list(self.procs):
            if name not in live:
                self.stop(name)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def user_objects(cp, ns: str) -> dict[str, list[str]]:
    """Every object of alice's server: pod, hub-token Secret, Spark anchor and what it owns."""
    out = {}
    for path, selector in (("/api/v1/namespaces/{ns}/pods", "component=singleuser-server"),
                           ("/api/v1/namespaces/{ns}/pods#spark", "app.kubernetes.io/name=spark"),
                           ("/api/v1/namespaces/{ns}/secrets", "app.kubernetes.io/managed-by=odh-hub"),
                           ("/api/v1/namespaces/{ns}/configmaps", "app.kubernetes.io/managed-by=odh-hub"),
                           ("/api/v1/namespaces/{ns}/services", "app.kubernetes.io/managed-by=odh-hub"),
                           ("/apis/apps/v1/namespaces/{ns}/deployments", "app.kubernetes.io/managed-by=odh-hub")):
        body = api_json(cp, path.split("#")[0].format(ns=ns) + "?labelSelector=" + requests.utils.quote(selector))
        names = [i["metadata"]["name"] for i in body["items"]]
        if names:
            out[path.rsplit("/", 1)[1]] = sorted(names)
    return out


@pytest.fixture
def installed(k8s_control_plane, k8s_namespace, ceph):
    cp, ns = k8s_control_plane, k8s_namespace
    with open(ceph.admin_keys_file) as f:
        keys = json.load(f)
    r = cp.api("POST", f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rgw-admin"},
        "stringData": {"access_key": keys["access_key"], "secret_key": keys["secret_key"]}})
    assert r.ok, r.status
    helm("install", RELEASE, CHART, "--kubeconfig", cp.kubeconfig, "-n", ns,
         *values_args(None, {**VALUES, "storage.adminEndpoint": ceph.endpoint}))
    yield cp, ns
    helm("uninstall", RELEASE, "--kubeconfig", cp.kubeconfig, "-n", ns)


async def test_chart_hub_config_spawns_and_stops_a_user_with_spark(installed, tmp_path):
    cp, ns = installed
    # the hub pod's volumes, from the objects the chart created
    config = api_json(cp, f"/api/v1/namespaces/{ns}/configmaps/{FULL}-hub-config")["data"]
    profiles = api_json(cp, f"/api/v1/namespaces/{ns}/configmaps/{FULL}-profiles")["data"]
    generated = {k: base64.b64decode(v).decode()
                 for k, v in api_json(cp, f"/api/v1/namespaces/{ns}/secrets/{FULL}-secrets")["data"].items()}
    for key, value in generated.items():  # the secret scan at the end of the run looks for them in every log
        secretscan.register_secret(value, f"chart-{key}")
    root = tmp_path / "pod"
    (root / "etc/odh-hub/rgw-admin").mkdir(parents=True)
    admin_keys = api_json(cp, f"/api/v1/namespaces/{ns}/secrets/rgw-admin")["data"]
    for key in ("access_key", "secret_key"):  # the Secret volume's items
        (root / "etc/odh-hub/rgw-admin" / key).write_bytes(base64.b64decode(admin_keys[key]))
    (root / "etc/odh-hub/config").mkdir(parents=True)
    (root / "etc/odh-hub/profiles").mkdir(parents=True)
    (root / "etc/odh-hub/config/jupyterhub_config.py").write_text(config["jupyterhub_config.py"])
    (root / "etc/odh-hub/profiles/profiles.yaml").write_text(profiles["profiles.yaml"])
    settings = json.loads(config["settings.json"])
    assert settings["namespace"] == ns and settings["spark"]["enabled"] is True and settings["storage"]["enabled"]
    hub_port, proxy_port, proxy_api = free_port(), free_port(), free_port()
    # in-cluster addresses -> loopback; mount paths -> under root; nothing else changes
    settings["hub"].update(port=hub_port, connectUrl=f"http://127.0.0.1:{hub_port}",
                           dbUrl=f"sqlite:///{tmp_path}/jupyterhub.sqlite")
    settings["proxy"]["apiUrl"] = f"http://127.0.0.1:{proxy_api}"
    settings = json.loads(json.dumps(settings).replace('"/etc/odh-hub/', f'"{root}/etc/odh-hub/')
                          .replace('"/run/odh-hub/', f'"{root}/run/odh-hub/'))
    (root / "etc/odh-hub/config/settings.json").write_text(json.dumps(settings))

    # the hub's identity: the chart's hub ServiceAccount (its Role decides every call the hub makes)
    token = cp.service_account_token(ns, f"{FULL}-hub")
    kubeconfig = cp.write_kubeconfig(tmp_path / "hub-kubeconfig", token, namespace=ns, user="odh-hub")
    proxy_token = generated["proxy-token"]
    chp = subprocess.Popen(
        [os.environ["ODH_PROXY_COMMAND"], "--ip=127.0.0.1", f"--port={proxy_port}", "--api-ip=127.0.0.1",
         f"--api-port={proxy_api}", f"--default-target=http://127.0.0.1:{hub_port}"],
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": proxy_token}, stdout=open(tmp_path / "chp.log", "ab"),
        stderr=subprocess.STDOUT, start_new_session=True)
    hub_env = {**os.environ, "ODH_HUB_SETTINGS": str(root / "etc/odh-hub/config/settings.json"),
               "KUBECONFIG": kubeconfig, "JPY_COOKIE_SECRET": generated["cookie-secret"],
               "ODH_PROXY_TOKEN": proxy_token, "ODH_INITIAL_ADMIN_PASSWORD": generated["initial-admin-password"],
               "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "--config",
                            str(root / "etc/odh-hub/config/jupyterhub_config.py")],
                           cwd=tmp_path, env=hub_env, stdout=open(tmp_path / "hub.log", "ab"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    runtime = PodRuntime(cp, ns, tmp_path)
    url = f"http://127.0.0.1:{proxy_port}"
    # the volume a provisioner would make for admin's home claim (the chart's default singleuser.storage)
    home_pv = provide_volume(cp, ns, home_claim_name("admin"))
    try:
        await asyncio.to_thread(wait_http, f"{url}/hub/health", 90, hub)
        async with TestKubelet(cp.kubeconfig, ns, pod_cidr="127.0.0.0/24"):
            admin = await asyncio.to_thread(HubUserSession, url, "admin", generated["initial-admin-password"])
            assert await asyncio.to_thread(admin.offered_profiles) == ["minimal", "datascience", "spark"]
            r = await asyncio.to_thread(admin.post_form, {"profile": "spark", "spark--spark": "on"})
            assert r.status_code == 200, r.text[:500]

            async def until_ready():
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    await asyncio.to_thread(runtime.sync)
                    server = (await asyncio.to_thread(admin.model))["servers"].get("")
                    if server and server["ready"]:
                        return server
                    if hub.poll() is not None:
                        raise AssertionError("the hub exited")
                    await asyncio.sleep(0.3)
                raise AssertionError("admin's server not ready in 180 s: " + (tmp_path / "hub.log").read_text()[-3000:])

            await until_ready()
            objects = await asyncio.to_thread(user_objects, cp, ns)
            (pod_name,) = objects["pods"]
            pod = api_json(cp, f"/api/v1/namespaces/{ns}/pods/{pod_name}")
            # the pod as the chart configured it
            assert pod["spec"]["automountServiceAccountToken"] is False
            assert all(pod["metadata"]["labels"].get(k) == v for k, v in
                       (kv.split("=") for kv in USER_LABELS.split(",")))
            assert pod["metadata"]["labels"]["odh-hub/profile"] == "spark"
            c = pod["spec"]["containers"][0]
            home_mount = [m for m in c["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
            assert [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
                    if v["name"] == home_mount[0]["name"]] == [home_claim_name("admin")]
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]} and c["securityContext"]["runAsUser"] == 1000
            env = {e["name"]: e for e in c["env"]}
            assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == f"{pod_name}-hub-token"
            assert f"{pod_name}-hub-token" in objects["secrets"]
            from odh_spawner.credentials.naming import secret_name

            s3 = secret_name("admin")
            assert s3 in objects["secrets"]
            assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == s3
            assert env["S3_ENDPOINT_URL"]["value"] == settings["storage"]["adminEndpoint"]
            assert len(objects["deployments"]) == 2 and len(objects["services"]) == 1
            (anchor,) = objects["configmaps"]
            anchor_uid = api_json(cp, f"/api/v1/namespaces/{ns}/configmaps/{anchor}")["metadata"]["uid"]
            for dep in objects["deployments"]:
                owners = api_json(cp, f"/apis/apps/v1/namespaces/{ns}/deployments/{dep}")["metadata"]["ownerReferences"]
                assert [o["uid"] for o in owners] == [anchor_uid]
            # the server answers through the proxy (a real jupyterhub-singleuser on the pod's address)
            r = await asyncio.to_thread(admin.server_api, "/api/status")
            assert r.status_code == 200, r.text[:300]

            await asyncio.to_thread(admin.stop, 120)

            async def gone():
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    await asyncio.to_thread(runtime.sync)
                    left = await asyncio.to_thread(user_objects, cp, ns)
                    if left == {"secrets": [s3]}:  # the user's own storage keys stay theirs
                        return
                    await asyncio.sleep(0.5)
                raise AssertionError(f"left after stop: {left}")

            await gone()
            # admin's home claim was mounted and outlives the server
            home = api_json(cp, f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{home_claim_name('admin')}")
            assert home["status"]["phase"] == "Bound", home["status"]
            assert home["metadata"]["annotations"]["hub.jupyter.org/username"] == "admin"
    finally:
        cp.api("DELETE", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{home_claim_name('admin')}")
        cp.api("DELETE", f"/api/v1/persistentvolumes/{home_pv}")
        runtime.stop_all()
        for proc in (hub, chp):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        artifacts = Path(__file__).resolve().parents[2] / "test-artifacts" / "helm-hub"
        artifacts.mkdir(parents=True, exist_ok=True)
        for log in tmp_path.glob("*.log"):
            (artifacts / log.name).write_bytes(log.read_bytes())
