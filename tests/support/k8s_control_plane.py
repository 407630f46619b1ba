"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
v1.20.2 as local processes on free loopback ports (built once by scripts/k8s-controlplane.sh from Debian's own
`kubernetes` source package; cached under ~/.cache/odh-hub).

It is a real API server (validation, admission, RBAC, watches with real resourceVersions, CRDs with structural
schemas, ownerReference garbage collection by the real controller-manager, Deployments -> ReplicaSets -> Pods,
ServiceAccount tokens), but NOT a cluster that runs pods: there is no kubelet and no container runtime. Pods are
scheduled (the scheduler binds them to a Node a test kubelet registers) and then stay Pending unless the test
kubelet of tests/support/kubelet.py reports them Running/Ready by patching `pods/status`.

Pytest plugin (listed in tests/conftest.py's pytest_plugins):
- `k8s_control_plane` (session): a started `ControlPlane`; `.server` (https URL), `.kubeconfig` (admin
  kubeconfig path), `.admin_token`, `.ca_file`, `.bin_dir`, `.kubectl(*args)`, `.api(method, path, body)`.
- `k8s_namespace` (function): a fresh namespace (its `default` ServiceAccount ready), deleted afterwards.
- `install_crds(cp, files)`: install upstream CRDs (from ../shared/crds by default) and wait until served.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "k8s-controlplane.sh"
# the upstream CRDs are reference data beside the repository (not copied into it); README.md there says whence
CRDS_DIR = Path(os.environ.get("ODH_SHARED_CRDS", str(ROOT.parent / "shared" / "crds")))
K8S_VERSION = "v1.20.2"
# every controller but those that need a cloud or a pod network; -nodelifecycle: the test kubelet's Node sends no
# heartbeats, and the node lifecycle controller would mark it unreachable and evict its pods after 40 s
CONTROLLERS = "*,-nodeipam,-service,-route,-cloud-node-lifecycle,-nodelifecycle"


class ControlPlaneError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bin_dir(build: bool = True) -> Path:
    """The cached binaries ($ODH_K8S_BIN, else what scripts/k8s-controlplane.sh built; built now if missing)."""
    if os.environ.get("ODH_K8S_BIN"):
        return Path(os.environ["ODH_K8S_BIN"])
    r = subprocess.run([str(BUILD_SCRIPT), "bindir"], capture_output=True, text=True)
    if r.returncode == 0:
        return Path(r.stdout.strip())
    if not build:
        raise ControlPlaneError("the Kubernetes control plane is not built: run scripts/k8s-controlplane.sh build")
    print("building the Kubernetes control plane once (~12 min cold): scripts/k8s-controlplane.sh build")
    r = subprocess.run([str(BUILD_SCRIPT), "build"], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise ControlPlaneError("scripts/k8s-controlplane.sh build failed (see its output above)")
    return Path(r.stdout.strip().splitlines()[-1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, the API server's serving certificate for 127.0.0.1/localhost, and the ServiceAccount signing key."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj", "/CN=odh-hub-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver", "-keyout", "apiserver.key",
             "-out", "apiserver.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
                               "DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "3", "-extfile", "san.ext", "-out", "apiserver.crt", cwd=d)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    for key in ("ca.key", "apiserver.key", "sa.key"):
        os.chmod(d / key, 0o600)


def kubeconfig_text(server: str, ca_file: str, token: str, user: str = "admin", namespace: str = "default") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user, "namespace": namespace}}],
    })


@dataclass
class ApiResponse:
    status: int
    body: dict | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler, started by start(), stopped by PID."""

    bin_dir: Path
    run_dir: Path
    report: object = print
    server: str = ""
    admin_token: str = ""
    procs: dict = field(default_factory=dict)  # name -> Popen
    ready_seconds: float = 0.0

    @property
    def kubeconfig(self) -> str:
        return str(self.run_dir / "kubeconfig")

    @property
    def ca_file(self) -> str:
        return str(self.run_dir / "pki" / "ca.crt")

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> "ControlPlane":
        d, b = self.run_dir, self.bin_dir
        for exe in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            if not os.access(b / exe, os.X_OK):
                raise ControlPlaneError(f"{b / exe} missing: run scripts/k8s-controlplane.sh build")
        (d / "pki").mkdir(parents=True, exist_ok=True)
        make_pki(d / "pki")
        pki = d / "pki"
        self.admin_token = secrets.token_hex(24)
        tokens = d / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin,"system:masters"\n')
        os.chmod(tokens, 0o600)
        etcd_client, etcd_peer, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        Path(self.kubeconfig).write_text(kubeconfig_text(self.server, self.ca_file, self.admin_token))
        os.chmod(self.kubeconfig, 0o600)
        t0 = time.monotonic()
        self._spawn("etcd", [
            str(b / "etcd"), "--name", "test", "--data-dir", str(d / "etcd-data"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"test=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(2**30),
            "--max-request-bytes", str(16 * 2**20),  # the upstream CRDs are up to ~2.5 MB
        ])
        self._spawn("kube-apiserver", [
            str(b / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1", f"--secure-port={api_port}", "--advertise-address=127.0.0.1",
            "--insecure-port=0", f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={tokens}", "--authorization-mode=RBAC", "--anonymous-auth=false",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc", "--api-audiences=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none", "--allow-privileged=true",
            "--profiling=false", f"--cert-dir={d / 'certs'}",
        ])
        self._wait_http("/readyz", t0 + timeout)
        self.ready_seconds = time.monotonic() - t0
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--port=0", "--secure-port=0",
                  "--profiling=false"]
        self._spawn("kube-controller-manager", [
            str(b / "kube-controller-manager"), *common,
            f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false", f"--controllers={CONTROLLERS}",
            "--pvclaimbinder-sync-period=1s",  # pre-bound claims bind in ~1 s, not up to 15 s (tests wait for it)
        ])
        self._spawn("kube-scheduler", [str(b / "kube-scheduler"), *common])
        # the controller-manager works once it gave the default namespace its ServiceAccount and token
        self.wait_service_account("default", "default", t0 + timeout)
        self.report(f"Kubernetes {K8S_VERSION} API server ready after {self.ready_seconds:.1f}s, controllers "
                    f"after {time.monotonic() - t0:.1f}s at {self.server} (pids {self.pids})")
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.run_dir / f"{name}.log", "ab")
        try:
            self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                cwd=self.run_dir, start_new_session=True)
        finally:
            log.close()

    def _check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise ControlPlaneError(f"{name} exited with {p.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.run_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _wait_http(self, path: str, deadline: float) -> None:
        while True:
            self._check_alive()
            try:
                if self.api("GET", path, raw=True).status == 200:
                    return
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{path} not ready in time:\n{self.log_tail('kube-apiserver')}")
            time.sleep(0.2)

    def wait_service_account(self, namespace: str, name: str, deadline: float) -> dict:
        """A ServiceAccount once the token controller gave it its token Secret (pods need both to be admitted)."""
        while True:
            self._check_alive()
            r = self.api("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
            if r.ok and r.body.get("secrets"):
                return r.body
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"ServiceAccount {namespace}/{name} got no token:\n"
                                        f"{self.log_tail('kube-controller-manager')}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM by PID (scheduler, controller-manager, API server, etcd), SIGKILL after `timeout`."""
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def rss(self) -> dict[str, int]:
        """Resident memory per process, bytes (from /proc)."""
        out = {}
        for name, p in self.procs.items():
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[name] = int(line.split()[1]) * 1024
            except OSError:
                pass
        return out

    # -- clients -----------------------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def api(self, method: str, path: str, body=None, token: str | None = None, raw: bool = False,
            content_type: str | None = None, timeout: float = 30) -> ApiResponse:
        """One synchronous request to the API server (admin token unless `token`); never raises on 4xx/5xx."""
        data = None
        headers = {"Authorization": f"Bearer {token or self.admin_token}", "Accept": "application/json"}
        if body is not None:
            data = (body if isinstance(body, bytes) else json.dumps(body).encode())
            headers["Content-Type"] = content_type or ("application/merge-patch+json" if method == "PATCH"
                                                       else "application/json")
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if raw:
            return ApiResponse(status, None)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = {"text": text.decode(errors="replace")}
        return ApiResponse(status, parsed)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, token: str | None = None):
        """Debian's kubectl 1.20 (built beside the server) with the admin kubeconfig (or a ServiceAccount token)."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}"]
        if token:
            argv.append(f"--token={token}")
        return subprocess.run([*argv, *args], input=input, capture_output=True, text=True, check=check,
                              timeout=120)

    def write_kubeconfig(self, path, token: str, namespace: str = "default", user: str = "test") -> str:
        """A kubeconfig for another identity (e.g. a ServiceAccount's token)."""
        Path(path).write_text(kubeconfig_text(self.server, self.ca_file, token, user, namespace))
        os.chmod(path, 0o600)
        return str(path)

    def service_account_token(self, namespace: str, name: str, timeout: float = 30) -> str:
        """The token the token controller minted for a ServiceAccount (from its token Secret)."""
        import base64

        sa = self.wait_service_account(namespace, name, time.monotonic() + timeout)
        for ref in sa["secrets"]:
            s = self.api("GET", f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
            if s.ok and s.body.get("type") == "kubernetes.io/service-account-token" and s.body.get("data", {}).get(
                    "token"):
                return base64.b64decode(s.body["data"]["token"]).decode()
        raise ControlPlaneError(f"no token Secret for ServiceAccount {namespace}/{name}")

    def create_namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        r = self.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": name}})
        if not r.ok:
            raise ControlPlaneError(f"creating namespace {name}: {r.status} {r.body}")
        self.wait_service_account(name, "default", time.monotonic() + 30)
        return name

    def delete_namespace(self, name: str) -> None:
        self.api("DELETE", f"/api/v1/namespaces/{name}")


# -- CRDs ----------------------------------------------------------------------------------------------------------
def crd_path(file) -> Path:
    p = Path(file)
    return p if p.is_absolute() else CRDS_DIR / p


def crds_available(*files) -> bool:
    return all(crd_path(f).is_file() for f in files)


def untyped_nodes(schema, path: str = "") -> list[str]:
    """Schema nodes (below the root) with neither a type nor x-kubernetes-preserve-unknown-fields/int-or-string:
    not a structural schema, which every API server since 1.15 refuses for apiextensions.k8s.io/v1 ("type:
    Required value: must not be empty for specified array items")."""
    out = []
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            out += untyped_nodes(sub, f"{path}.{key}")
        if isinstance(schema.get("items"), dict):
            out += untyped_nodes(schema["items"], f"{path}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            out += untyped_nodes(schema["additionalProperties"], f"{path}{{}}")
        if path and not schema.get("type") and not schema.get("x-kubernetes-preserve-unknown-fields") \
                and not schema.get("x-kubernetes-int-or-string") and not schema.get("properties"):
            out.append(path)
    return out


def make_structural(crd: dict) -> list[str]:
    """Mark the untyped nodes of every version's schema `x-kubernetes-preserve-unknown-fields: true` (in place).
    Needed for the upstream SeldonDeployment CRD of ../shared/crds: controller-gen writes its recursive
    `graph.children` as `items: {}`; the API server keeps whatever is stored there, unvalidated. Returns what
    was marked (version:path)."""
    marked = []
    for v in crd["spec"].get("versions") or []:
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        for path in untyped_nodes(schema):
            node = schema
            for part in path.strip(".").replace("[]", ".[]").replace("{}", ".{}").split("."):
                node = node["items"] if part == "[]" else node["additionalProperties"] if part == "{}" else \
                    node["properties"][part]
            node["x-kubernetes-preserve-unknown-fields"] = True
            marked.append(f"{v['name']}:{path}")
    return marked


def drop_empty_string_defaults(schema, path: str = "", map_keys: tuple = ()) -> list[str]:
    """Remove `default: ""` from string fields (in place): kube-apiserver 1.20 reads an empty-string default as
    null and refuses the CRD ("default: Invalid value: \"null\": must be of type string"); newer servers take
    it. controller-gen writes it for the `name` of every LocalObjectReference since Kubernetes 1.29's API
    types. Only defaulting of fields a client leaves out changes, except that a list-map key (e.g. the `name` of
    imagePullSecrets entries) becomes required, as 1.20 wants a default or `required` for it. Returns the paths."""
    out = []
    if not isinstance(schema, dict):
        return out
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict) and sub.get("type") == "string" and sub.get("default") == "":
            del sub["default"]
            out.append(f"{path}.{key}")
            if key in map_keys and key not in schema.setdefault("required", []):
                schema["required"].append(key)
        out += drop_empty_string_defaults(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        out += drop_empty_string_defaults(schema["items"], f"{path}[]",
                                          tuple(schema.get("x-kubernetes-list-map-keys") or ()))
    if isinstance(schema.get("additionalProperties"), dict):
        out += drop_empty_string_defaults(schema["additionalProperties"], f"{path}{{}}")
    return out


def adapt_crd(crd: dict) -> dict[str, list[str]]:
    """The two mechanical changes an upstream CRD of ../shared/crds may need to install into kube-apiserver 1.20
    (in place): untyped nodes marked preserve-unknown (make_structural; no server accepts them as they are) and
    empty-string defaults dropped (drop_empty_string_defaults; 1.20 only). Returns what changed, by kind."""
    dropped = []
    for v in crd["spec"].get("versions") or []:
        dropped += [f"{v['name']}:{p}" for p in
                    drop_empty_string_defaults((v.get("schema") or {}).get("openAPIV3Schema"))]
    return {"preserve_unknown": make_structural(crd), "empty_default_dropped": dropped}


def install_crds(cp: ControlPlane, files, timeout: float = 120, adapt: bool = True) -> list[str]:
    """Install upstream CRDs (file names in ../shared/crds, or paths); wait until each is Established and its
    resources are served. Already installed ones are left as they are. Returns the CRD names. They go in as
    upstream wrote them except, with `adapt`, for what adapt_crd changes (and nothing else)."""
    names = []
    for f in files:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser: the largest CRDs are ~2.5 MB
        docs = [d for d in yaml.load_all(crd_path(f).read_text(), Loader=loader) if d]
        for crd in docs:
            if adapt:
                adapt_crd(crd)
            name = crd["metadata"]["name"]
            r = cp.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            if r.status not in (201, 409):
                raise ControlPlaneError(f"CRD {name} refused: {r.status} {(r.body or {}).get('message')}")
            names.append(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            r = cp.api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = {c["type"]: c["status"] for c in ((r.body or {}).get("status") or {}).get("conditions") or []}
            if conds.get("Established") == "True":
                group = r.body["spec"]["group"]
                versions = [v["name"] for v in r.body["spec"]["versions"] if v.get("served")]
                if all(cp.api("GET", f"/apis/{group}/{v}", raw=True).status == 200 for v in versions):
                    break
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRD {name} not established: {conds}")
            time.sleep(0.1)
    return names


# -- pytest fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def k8s_control_plane(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("k8s")
    cp = ControlPlane(bin_dir(), run_dir)
    try:
        cp.start()
        yield cp
    finally:
        pids = list(cp.pids.values())
        cp.stop()
        artifacts = ROOT / "test-artifacts" / "k8s"
        artifacts.mkdir(parents=True, exist_ok=True)
        for log in run_dir.glob("*.log"):
            shutil.copy(log, artifacts / log.name)
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and _running(p)], "control plane left running"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def k8s_namespace(k8s_control_plane):
    name = k8s_control_plane.create_namespace()
    yield name
    k8s_control_plane.delete_namespace(name)
