"""`helm install`, `helm upgrade` and `helm uninstall` of the chart against a real kube-apiserver v1.20.2 (with the
real controller-manager and scheduler: tests/support/k8s_control_plane.py).

There is no kubelet: the chart's pods are created by the real Deployment and ReplicaSet controllers and stay
Pending (no container ever runs, no probe, no image pull), so `helm install` is run without `--wait`. What this
shows is what the API server decides: every object of the chart is accepted (schema, admission, RBAC objects —
checked further by asking the API server's authorizer what the chart's ServiceAccounts may do), an upgrade that
changes the hub's configuration rolls the hub's pod template (a new ReplicaSet) and keeps the generated secrets
(`lookup`), an upgrade that only changes profiles does not, and an uninstall leaves nothing of the release.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import yaml

from tests.support.helm import CHART, helm, values_args

RELEASE = "odh"
KINDS = ["deployments.apps", "replicasets.apps", "pods", "services", "endpoints", "configmaps", "secrets",
         "serviceaccounts", "roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io",
         "networkpolicies.networking.k8s.io", "persistentvolumeclaims"]


def kube_get(cp, namespace: str, kind: str, name: str | None = None) -> dict:
    args = ["get", kind, "-n", namespace, "-o", "json"] + ([name] if name else [])
    return json.loads(cp.kubectl(*args).stdout)


def ours(cp, namespace: str) -> list[str]:
    """Every object of the release left in the namespace: labelled with its instance, named after it, or helm's
    own release records."""
    out = []
    for kind in KINDS:
        for item in kube_get(cp, namespace, kind)["items"]:
            meta = item["metadata"]
            labels = meta.get("labels") or {}
            if (labels.get("app.kubernetes.io/instance") == RELEASE or meta["name"].startswith(f"{RELEASE}-")
                    or labels.get("owner") == "helm"):
                if kind == "pods" and meta.get("deletionTimestamp"):
                    continue  # see test_install_upgrade_uninstall: finished by hand (no kubelet)
                out.append(f"{kind}/{meta['name']}")
    return out


def run_helm(cp, *args, values=None, sets=None, namespace):
    return helm(*args, "--kubeconfig", cp.kubeconfig, "--namespace", namespace, *values_args(values, sets))


def hub_template(cp, ns):
    dep = kube_get(cp, ns, "deployment", f"{RELEASE}-odh-hub-hub")
    return dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"], dep["metadata"]["generation"]


def secret_data(cp, ns):
    return kube_get(cp, ns, "secret", f"{RELEASE}-odh-hub-secrets")["data"]


def can_i(cp, ns: str, sa: str, verb: str, resource: str, namespace: str | None = None) -> bool:
    """The API server's authorizer (a SubjectAccessReview) on what ServiceAccount `sa` of `ns` may do;
    `resource` as plural.group (custom resources need no CRD for this)."""
    plural, _, group = resource.partition(".")
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": f"system:serviceaccount:{ns}:{sa}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        "resourceAttributes": {"namespace": namespace or ns, "verb": verb, "group": group, "resource": plural}}}
    r = cp.api("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    assert r.ok, r.body
    return r.body["status"].get("allowed", False)


@pytest.fixture
def rgw_admin_secret(k8s_control_plane, k8s_namespace):
    """The RGW admin-credentials Secret the chart's default values name (the admin makes it before installing)."""
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rgw-admin", "namespace": k8s_namespace},
            "stringData": {"access_key": "ADMINACCESS", "secret_key": "admin-secret"}}
    r = k8s_control_plane.api("POST", f"/api/v1/namespaces/{k8s_namespace}/secrets", body)
    assert r.ok, r.body
    return "rgw-admin"


def test_install_upgrade_uninstall(k8s_control_plane, k8s_namespace, rgw_admin_secret):
    cp, ns = k8s_control_plane, k8s_namespace

    t0 = time.perf_counter()
    run_helm(cp, "install", RELEASE, CHART, namespace=ns, values="full-values.yaml",
             sets={"fullnameOverride": "", "serving.namespace": "", "storage.adminCredentials.secret": "rgw-admin",
                   "storage.adminCredentials.accessKeyKey": "access_key",
                   "storage.adminCredentials.secretKeyKey": "secret_key"})
    install_seconds = time.perf_counter() - t0
    manifest = [d for d in helm("get", "manifest", RELEASE, "--kubeconfig", cp.kubeconfig, "-n", ns)
                .split("\n---") if "kind:" in d]
    objects = [yaml.safe_load(d) for d in manifest]
    for o in objects:  # every object of the chart exists
        kind = o["kind"].lower() + ("" if o["kind"] != "NetworkPolicy" else ".networking.k8s.io")
        got = kube_get(cp, o["metadata"]["namespace"], kind, o["metadata"]["name"])
        assert got["metadata"]["uid"]
    seconds = time.perf_counter() - t0
    print(f"helm install returned after {install_seconds:.2f} s; all {len(objects)} objects of the manifest read "
          f"back from the API server after {seconds:.2f} s")
    assert len(objects) >= 20

    # the controllers made the pods (Pending: no kubelet); the proxy's pod has no ServiceAccount token, the hub's has
    pods = kube_get(cp, ns, "pods")["items"]
    by_component = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in pods}
    assert set(by_component) == {"hub", "proxy", "platform"}
    token_volume = lambda p: [v for v in p["spec"].get("volumes", []) if v.get("secret", {}).get("secretName", "").startswith(  # noqa: E731
        ("default-token", f"{RELEASE}-odh-hub-hub-token", f"{RELEASE}-odh-hub-platform-token"))]
    assert not token_volume(by_component["proxy"])
    assert token_volume(by_component["hub"]) and token_volume(by_component["platform"])

    # RBAC, as the API server's authorizer decides it for the chart's ServiceAccounts
    hub, platform = f"{RELEASE}-odh-hub-hub", f"{RELEASE}-odh-hub-platform"
    assert can_i(cp, ns, hub, "create", "pods") and can_i(cp, ns, hub, "watch", "pods")
    assert can_i(cp, ns, hub, "create", "secrets") and can_i(cp, ns, hub, "create", "deployments.apps")
    assert not can_i(cp, ns, hub, "list", "secrets")
    assert not can_i(cp, ns, hub, "get", "secrets", namespace="kube-system")
    assert not can_i(cp, ns, hub, "create", "clusterroles.rbac.authorization.k8s.io")
    assert not can_i(cp, ns, hub, "create", "inferenceservices.serving.kserve.io")
    assert can_i(cp, ns, platform, "create", "inferenceservices.serving.kserve.io")
    assert can_i(cp, ns, platform, "patch", "deployments.apps")
    assert not can_i(cp, ns, platform, "create", "pods")
    # full-values.yaml gives a Kafka bootstrap: the platform runs each ingestion as a worker Deployment
    # (kafka.ingest.backend: deployment), so it may create Deployments (its Spark role only patches them)
    assert can_i(cp, ns, platform, "create", "deployments.apps")
    assert not can_i(cp, ns, platform, "create", "seldondeployments.machinelearning.seldon.io")
    assert not can_i(cp, ns, "default", "list", "pods")

    secrets_before = secret_data(cp, ns)
    checksum0, generation0 = hub_template(cp, ns)

    # an upgrade that changes only profiles: the profiles ConfigMap changes, the hub is not restarted
    profiles = yaml.safe_load((CHART / "values.yaml").read_text())["profiles"]
    profiles[0]["description"] = "Edited by the upgrade test"
    common = {"fullnameOverride": "", "serving.namespace": "", "storage.adminCredentials.secret": "rgw-admin",
              "storage.adminCredentials.accessKeyKey": "access_key",
              "storage.adminCredentials.secretKeyKey": "secret_key"}
    run_helm(cp, "upgrade", RELEASE, CHART, namespace=ns, values="full-values.yaml",
             sets={**common, "profiles": profiles})
    assert hub_template(cp, ns) == (checksum0, generation0)
    cm = kube_get(cp, ns, "configmap", f"{RELEASE}-odh-hub-profiles")
    assert "Edited by the upgrade test" in cm["data"]["profiles.yaml"]

    # an upgrade that changes the hub's configuration rolls the hub: new pod template, new ReplicaSet
    run_helm(cp, "upgrade", RELEASE, CHART, namespace=ns, values="full-values.yaml",
             sets={**common, "profiles": profiles, "culler.timeout": 9000})
    checksum1, generation1 = hub_template(cp, ns)
    assert checksum1 != checksum0 and generation1 == generation0 + 1
    deadline = time.monotonic() + 30
    while True:
        sets = [rs for rs in kube_get(cp, ns, "replicasets")["items"]
                if rs["metadata"]["labels"].get("app.kubernetes.io/component") == "hub"]
        if len(sets) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(sets) == 2, "the Deployment controller made no new ReplicaSet for the hub"
    settings = json.loads(kube_get(cp, ns, "configmap", f"{RELEASE}-odh-hub-hub-config")["data"]["settings.json"])
    assert settings["culler"]["timeout"] == 9000
    # the generated secrets were read back (lookup) and kept
    assert secret_data(cp, ns) == secrets_before
    assert len(base64.b64decode(secrets_before["cookie-secret"])) == 64

    # uninstall: nothing of the release is left
    run_helm(cp, "uninstall", RELEASE, "--wait", namespace=ns)
    deadline = time.monotonic() + 60
    while (left := ours(cp, ns)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left
    # pods the scheduler bound to another test's Node stay Terminating until a kubelet confirms (there is none for
    # them): they are the only thing allowed to linger, and are finished here as a kubelet would
    for p in kube_get(cp, ns, "pods")["items"]:
        assert p["metadata"].get("deletionTimestamp"), p["metadata"]["name"]
        cp.kubectl("delete", "pod", "-n", ns, p["metadata"]["name"], "--grace-period=0", "--force", check=False)
