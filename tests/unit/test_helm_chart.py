"""The Helm chart (helm/odh-hub), offline, with the real helm binary (v4, from `make install`).

Over every values file (the defaults and each of helm/odh-hub/ci/*-values.yaml): `helm lint --strict`, `helm
template`, and every rendered object validated strictly against the Kubernetes schema (kubernetes-validate; its
oldest schema is 1.25, the real 1.20 API server accepts them in tests/integration/test_helm_install.py). The chart
renders no custom resources (the platform service creates those at run time; they are validated against the
upstream CRDs in test_deploy_manifests / test_kube_emulated), which the kind check below pins.

Then what the chart promises: least-privilege RBAC, user pods without a service-account token, NetworkPolicies
that keep users' pods from the Kubernetes API and the metadata address, secure container defaults, generated
secrets, checksums that restart the hub on a config change but not on a profiles change, a schema that rejects
unknown keys and bad enums with the key's path, and the hub configuration the chart ships, as rendered, loaded by
traitlets and building a valid user pod with OdhKubeSpawner. Secrets kept on upgrade need `lookup` against a real
API server: tests/integration/test_helm_install.py.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time

import kubernetes_validate
import pytest
import yaml
from jupyterhub.objects import Hub
from traitlets.config.loader import PyFileConfigLoader

from odh_spawner.kubeplatform.hubconfig import HubSettingsError, configure
from odh_spawner.profiles.format import load_profiles
from tests.support.helm import CHART, VALUES_FILES, HelmError, by_kind_name, helm, template
from tests.support.kube import Group, HubUser, serialize, write_kubeconfig

K8S_VERSIONS = (kubernetes_validate.utils.all_versions()[0], kubernetes_validate.utils.latest_version())
CORE_KINDS = {"ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "Role", "RoleBinding",
              "Secret", "Service", "ServiceAccount"}
METADATA = ipaddress.ip_network("169.254.169.254/32")
ids = [v or "defaults" for v in VALUES_FILES]
_rendered: dict = {}


def rendered(values):
    if values not in _rendered:
        _rendered[values] = template(values)
    return _rendered[values]


def pod_templates(docs):
    return {d["metadata"]["name"]: d["spec"]["template"] for d in docs if d["kind"] == "Deployment"}


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_lint_strict(values):
    args = ["-f", str(CHART / "ci" / values)] if values else []
    out = helm("lint", "--strict", CHART, *args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_every_object_is_valid_kubernetes(values):
    docs = rendered(values)
    kinds = {d["kind"] for d in docs}
    assert kinds <= CORE_KINDS, f"unexpected kinds (custom resources need CRD validation): {kinds - CORE_KINDS}"
    # ci/gitops-values.yaml takes every secret from the admin's own Secrets: the chart renders none (see
    # tests/unit/test_chart_gitops.py)
    secret = set() if values == "gitops-values.yaml" else {"Secret"}
    assert {"Deployment", "Service", "ConfigMap", "Role", "RoleBinding", "ServiceAccount"} | secret <= kinds
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"]["namespace"] in ("odh", "odh-serving", "seldon-mesh", "kafka"), doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "t"
    names = [(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "two objects with one name"


def test_full_chart_template_seconds():
    """`helm template` of the full chart (ci/full-values.yaml): measured, reported in the admin guide."""
    t0 = time.perf_counter()
    docs = template("full-values.yaml")
    seconds = time.perf_counter() - t0
    print(f"helm template (full values, {len(docs)} objects): {seconds:.2f} s")
    assert seconds < 30 and len(docs) >= 20


# -- security defaults -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_every_pod_runs_non_root_with_no_capabilities(values):
    for name, tpl in pod_templates(rendered(values)).items():
        spec = tpl["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, name
            assert sc["runAsNonRoot"] is True and sc["seccompProfile"]["type"] == "RuntimeDefault", name
            assert c["resources"]["limits"]["memory"], name
            # secrets reach containers only by reference, never as literal env values
            for e in c.get("env", []):
                assert "value" not in e or not re.fullmatch(r"[0-9a-f]{64}", e["value"]), (name, e["name"])
        # the proxy needs no API token; the hub and the platform do (their own ServiceAccounts)
        if name.endswith("-proxy"):
            assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
        else:
            assert spec["serviceAccountName"] == name


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_rbac_is_least_privilege(values):
    docs = rendered(values)
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"]
            assert not {"roles", "rolebindings", "clusterroles"} & set(rule["resources"])
            if "secrets" in rule["resources"]:
                assert "list" not in rule["verbs"] and "watch" not in rule["verbs"], "Secrets are read by name only"
    prefix = "odh" if values == "full-values.yaml" else "t-odh-hub"
    hub = {r for rule in roles[f"{prefix}-hub"]["rules"] for r in rule["resources"]}
    values_doc = yaml.safe_load((CHART / "ci" / values).read_text()) if values else {}
    spark = (values_doc.get("spark") or {}).get("enabled", True)
    connect = (values_doc.get("spark") or {}).get("clusterType") == "spark-connect"
    expected = {"pods", "events", "secrets"}
    if ((values_doc.get("singleuser") or {}).get("storage") or {}).get("type", "dynamic") == "dynamic":
        expected |= {"persistentvolumeclaims"}  # users' home claims
    if spark:
        expected |= {"configmaps", "sparkconnects"} if connect else {"configmaps", "services", "deployments"}
        if (values_doc.get("networkPolicy") or {}).get("enabled", True):
            expected |= {"networkpolicies"}  # each Spark cluster's own
    assert hub == expected
    platform = (values_doc.get("platform") or {}).get("enabled", True)
    serving = [r for r in roles.values() if r["metadata"]["name"].endswith("-platform-serving")]
    assert len(serving) == (1 if platform else 0)
    if platform:
        backend = (values_doc.get("serving") or {}).get("backend", "kserve")
        kind = {"kserve": "inferenceservices", "seldon-v1": "seldondeployments", "seldon-v2": "models",
                "mlserver": "deployments"}[backend]
        resources = {r for rule in serving[0]["rules"] for r in rule["resources"]}
        kinds = {"inferenceservices", "seldondeployments", "models", "deployments"}
        assert kind in resources and not (kinds - {kind}) & resources
        assert ("serviceaccounts" in resources) == (backend == "kserve")
        # plain MLServer (no operator): its Deployments, their Services (create/delete) and pods (list) only
        assert ({"services", "pods"} <= resources) == (backend == "mlserver")
        if backend == "mlserver":
            verbs = {r: rule["verbs"] for rule in serving[0]["rules"] for r in rule["resources"]}
            assert [rule["apiGroups"] for rule in serving[0]["rules"] if "deployments" in rule["resources"]] == [["apps"]]
            assert verbs["deployments"] == ["get", "list", "create", "patch", "delete"]
            assert verbs["services"] == ["create", "delete"] and verbs["pods"] == ["list"]
        ns = (values_doc.get("serving") or {}).get("namespace") or "odh"
        assert serving[0]["metadata"]["namespace"] == ns
        binding = by_kind_name(docs)[("RoleBinding", serving[0]["metadata"]["name"])]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{prefix}-platform", "namespace": "odh"}]
    # Kafka ingestions: only the kinds the platform creates for them, in the namespace they run in
    ingest = [r for r in roles.values() if r["metadata"]["name"].endswith("-platform-ingest")]
    kafka = values_doc.get("kafka") or {}
    assert len(ingest) == (1 if platform and kafka.get("bootstrap") else 0)
    if ingest:
        strimzi = (kafka.get("ingest") or {}).get("backend") == "strimzi"
        resources = {r for rule in ingest[0]["rules"] for r in rule["resources"]}
        assert resources == ({"kafkaconnectors", "secrets"} if strimzi else {"deployments", "pods", "secrets"})
        assert ingest[0]["metadata"]["namespace"] == (kafka["ingest"]["connectNamespace"] if strimzi else "odh")
        connect = roles.get(f"{prefix}-connect-secrets")
        assert (connect is not None) == strimzi
        if strimzi:  # the Connect pods' provider reads Secrets by name, in the Connect namespace only
            assert connect["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
            assert connect["metadata"]["namespace"] != "odh"
            binding = by_kind_name(docs)[("RoleBinding", f"{prefix}-connect-secrets")]
            assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": kafka["ingest"]["connectNamespace"],
                                            "name": kafka["ingest"]["connectCluster"] + "-connect"}]


def _peers_reach(peers: list[dict], address) -> bool:
    for p in peers:
        block = p.get("ipBlock")
        if block and address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(e) for e in block.get("except", [])):
            return True
    return False


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_network_policies_fence_users_pods(values):
    docs = rendered(values)
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    users = next(p for n, p in policies.items() if n.endswith("-users"))
    assert users["spec"]["policyTypes"] == ["Ingress", "Egress"]
    selector = users["spec"]["podSelector"]["matchLabels"]
    for rule in users["spec"]["egress"]:
        peers = rule.get("to", [])
        # every egress rule names its peers or only DNS ports: nothing open to "anywhere"
        assert peers or {p["port"] for p in rule["ports"]} == {53}, rule
        for address in (METADATA.network_address, ipaddress.ip_address("10.96.0.1"),
                        ipaddress.ip_address("172.20.0.1")):  # metadata; typical API-server Service addresses
            assert not _peers_reach(peers, address), (address, rule)
    # the hub and the platform reach anything but the metadata address
    for name, policy in policies.items():
        for rule in policy["spec"].get("egress", []):
            assert not _peers_reach(rule.get("to", []), METADATA.network_address), name
    # the user pods the policy selects are the pods the hub config labels (see test_rendered_hub_config_...)
    assert selector == {"app.kubernetes.io/instance": "t", "odh-hub/role": "user-server"} or values == "full-values.yaml"


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_ingestion_workers_are_fenced(values):
    docs = rendered(values)
    values_doc = yaml.safe_load((CHART / "ci" / values).read_text()) if values else {}
    kafka = values_doc.get("kafka") or {}
    on = ((values_doc.get("platform") or {}).get("enabled", True) and kafka.get("bootstrap")
          and (kafka.get("ingest") or {}).get("backend", "deployment") == "deployment"
          and (values_doc.get("networkPolicy") or {}).get("enabled", True))
    policies = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-ingest-workers")]
    assert len(policies) == (1 if on else 0)
    if policies:
        spec = policies[0]["spec"]
        # the labels every worker pod has (odh_spawner.ingest.kube_manifests.labels)
        from odh_spawner.ingest.kube_manifests import labels

        assert spec["podSelector"]["matchLabels"].items() <= labels("alice", "x").items()
        assert spec["ingress"] == [] and spec["policyTypes"] == ["Ingress", "Egress"]
        peers = [p for rule in spec["egress"] for p in rule.get("to", [])]
        allowed = kafka.get("networkPeers", []) + ((values_doc.get("storage") or {}).get("networkPeers") or [])
        assert peers and all(p in allowed for p in peers), peers


def test_full_values_open_users_pods_to_s3_and_kafka_only():
    docs = template("full-values.yaml")
    users = by_kind_name(docs)[("NetworkPolicy", "odh-users")]
    ports = {p["port"] for rule in users["spec"]["egress"] for p in rule.get("ports", [])}
    assert ports == {53, 8081, 8000, 10101, 8080, 9092, 9093, 443}
    peers = [p for rule in users["spec"]["egress"] for p in rule.get("to", [])]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}} in peers


# -- generated secrets, checksums ---------------------------------------------------------------------------------
def test_secrets_are_generated_and_never_in_configmaps():
    a, b = (by_kind_name(template())[("Secret", "t-odh-hub-secrets")] for _ in range(2))
    keys = {"cookie-secret", "proxy-token", "platform-api-token", "initial-admin-password"}
    assert set(a["data"]) == keys
    import base64

    for key in keys:
        va, vb = (base64.b64decode(x["data"][key]).decode() for x in (a, b))
        assert va != vb, f"{key} is not random"
        assert re.fullmatch(r"[0-9a-f]{24}" if key == "initial-admin-password" else r"[0-9a-f]{64}", va)
        for doc in template():
            if doc["kind"] == "ConfigMap":
                assert va not in json.dumps(doc)
    # the chart keeps them on upgrade by reading the release's Secret back (lookup); helm template cannot
    # show that offline: tests/integration/test_helm_install.py does, against the API server
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert 'lookup "v1" "Secret" $root.Release.Namespace (include "odh-hub.secret" $root)' in helpers


def test_hub_config_change_rolls_the_hub_but_a_profiles_change_does_not():
    base = by_kind_name(template())
    changed = by_kind_name(template(sets={"culler.timeout": 7200}))
    profiles = yaml.safe_load((CHART / "values.yaml").read_text())["profiles"]
    profiles[0]["description"] = "Edited"
    new_profiles = by_kind_name(template(sets={"profiles": profiles}))

    def checksum(objs):
        return objs[("Deployment", "t-odh-hub-hub")]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(base) != checksum(changed)
    assert checksum(base) == checksum(new_profiles)
    assert (base[("ConfigMap", "t-odh-hub-profiles")]["data"] != new_profiles[("ConfigMap", "t-odh-hub-profiles")]["data"])
    # the profiles ConfigMap is mounted as a directory (a subPath mount would never see the change)
    hub = base[("Deployment", "t-odh-hub-hub")]["spec"]["template"]["spec"]
    mount = next(m for m in hub["containers"][0]["volumeMounts"] if m["name"] == "profiles")
    assert "subPath" not in mount and mount["mountPath"] == "/etc/odh-hub/profiles"


# -- the schema -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sets, message", [
    ({"hub.bogus": 1}, "at '/hub': additional properties 'bogus' not allowed"),
    ({"bogus": True}, "additional properties 'bogus' not allowed"),
    ({"serving.backend": "torchserve"}, "at '/serving/backend': value must be one of 'kserve', 'seldon-v1', 'seldon-v2', 'mlserver'"),
    ({"spark.clusterType": "yarn"}, "at '/spark/clusterType': value must be one of 'standalone', 'spark-connect'"),
    ({"kafka.ingest.backend": "camel"}, "at '/kafka/ingest/backend': value must be one of 'deployment', 'strimzi'"),
    ({"culler.timeout": "an hour"}, "at '/culler/timeout': got string, want integer"),
    ({"storage.adminCredentials.secret": ""}, "at '/storage/adminCredentials/secret'"),
    ({"profiles": [{"slug": "x", "display_name": "X", "image": "i", "sizes": [{}], "colour": "red"}]},
     "additional properties 'colour' not allowed"),
])
def test_schema_rejects_with_the_key_path(sets, message):
    with pytest.raises(HelmError) as e:
        template(sets=sets)
    assert "values don't meet the specifications of the schema" in e.value.stderr
    assert message in e.value.stderr


def test_every_documented_key_is_in_the_schema_and_documented():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    text = (CHART / "values.yaml").read_text()

    def walk(v, s, path):
        assert s.get("description") or path == "", f"{path}: no description in the schema"
        if isinstance(v, dict) and s.get("additionalProperties") is False:
            for k, sub in v.items():
                assert k in s["properties"], f"{path}.{k} is not in the schema"
                walk(sub, s["properties"][k], f"{path}.{k}".lstrip("."))

    walk(values, schema, "")
    for key in values:
        assert re.search(rf"^# -- {key}\b|^  # -- {key}\.|^# .*\n{key}:", text, re.M) or key in ("profiles",), key


def test_spark_off_refuses_a_profile_with_spark():
    with pytest.raises(HelmError) as e:
        template(sets={"spark.enabled": False})  # the default profiles include one with a spark block
    assert 'profiles: "spark" has a spark block but spark.enabled is false' in e.value.stderr


# -- the hub configuration the chart ships, as rendered ---------------------------------------------------------
def _mounted(tmp_path, docs, secret_data: dict):
    """The rendered hub pod's ConfigMaps and Secrets as files, where its volumeMounts put them (under tmp_path)."""
    objs = by_kind_name(docs)
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-hub"))
    pod = hub["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    root = tmp_path / "root"
    for m in pod["containers"][0]["volumeMounts"]:
        target = root / m["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        v = volumes[m["name"]]
        if "configMap" in v:
            for key, text in objs[("ConfigMap", v["configMap"]["name"])]["data"].items():
                (target / key).write_text(text)
        elif "secret" in v:
            for item in v["secret"].get("items", []):
                (target / item["path"]).write_text(secret_data[item["key"]])
    env = {}
    for e in pod["containers"][0]["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e["valueFrom"]:
            env[e["name"]] = "s3cr3t-" + e["valueFrom"]["secretKeyRef"]["key"]
    return root, env, pod


def _reroot(root, settings: dict) -> dict:
    """The settings with the pod's absolute mount paths under `root` (the files _mounted wrote)."""
    text = json.dumps(settings)
    for prefix in ("/etc/odh-hub/", "/run/odh-hub/"):
        text = text.replace(f'"{prefix}', f'"{root}{prefix}')
    return json.loads(text)


@pytest.fixture
def offline_kube(tmp_path, monkeypatch):
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", write_kubeconfig(tmp_path))


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
async def test_rendered_hub_config_loads_and_builds_valid_user_pods(values, tmp_path, offline_kube):
    from odh_spawner.spawners.kube import OdhKubeSpawner

    docs = rendered(values)
    root, env, pod = _mounted(tmp_path, docs, {"access_key": "AK", "secret_key": "SK", "AWS_ACCESS_KEY_ID": "AK",
                                              "AWS_SECRET_ACCESS_KEY": "SK"})
    config_dir = root / "etc/odh-hub/config"
    settings = json.loads((config_dir / "settings.json").read_text())
    (config_dir / "settings.json").write_text(json.dumps(_reroot(root, settings)))
    assert pod["containers"][0]["command"] == ["jupyterhub", "--config", "/etc/odh-hub/config/jupyterhub_config.py"]
    env["ODH_HUB_SETTINGS"] = str(config_dir / "settings.json")
    if settings["authenticator"].get("initialAdmin"):
        assert env["ODH_INITIAL_ADMIN_PASSWORD"].startswith("s3cr3t-")
    old = dict(os.environ)
    os.environ.update(env)
    try:
        c = PyFileConfigLoader("jupyterhub_config.py", path=str(config_dir)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert c.JupyterHub.spawner_class == "odh-kube"
    assert c.KubeSpawner.namespace == "odh" and c.KubeSpawner.automount_service_account_token is False
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.auth_token == "s3cr3t-proxy-token"
    service_names = [s["name"] for s in c.JupyterHub.services]
    platform_on = any(d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-platform") for d in docs)
    assert ("odh-platform" in service_names) == platform_on
    if platform_on:
        platform = next(s for s in c.JupyterHub.services if s["name"] == "odh-platform")
        assert platform["api_token"] == "s3cr3t-platform-api-token" and platform["url"].endswith(":10101")
        # the admin view: the service lists users and their servers and stops one; its page logs in unprompted
        roles = {r["name"]: r for r in c.JupyterHub.load_roles}
        assert roles["odh-platform"] == {"name": "odh-platform", "services": ["odh-platform"], "scopes": [
            "list:users", "read:users", "read:servers", "delete:servers"]}
        assert platform["oauth_no_confirm"] is True
    if settings["authenticator"].get("initialAdmin"):  # the initial admin's users file, hashed, 0600
        users_file = settings["authenticator"]["usersFile"]
        written = root / users_file.lstrip("/")
        assert oct(written.stat().st_mode & 0o777) == "0o600"
        assert "s3cr3t" not in written.read_text() and "pbkdf2_sha256$" in written.read_text()

    # the JupyterHub application accepts the config (services, roles, URLs are validated by its traits)
    from jupyterhub.app import JupyterHub

    app = JupyterHub(config=c)
    assert app.hub_connect_url.startswith("http://") and app.services == c.JupyterHub.services

    # the profiles ConfigMap passes the hub's own validator, and each profile builds a valid user pod
    profiles = load_profiles(str(root / "etc/odh-hub/profiles/profiles.yaml"))
    if settings["storage"]["enabled"]:
        # the RGW admin keys are read from the mounted Secret (one file per key); no RGW runs in the unit layer,
        # so the pods below are built with storage off (the per-user keys branch runs in the integration layer)
        from odh_spawner.credentials.config import OdhStorage

        store = OdhStorage(config=c).store()
        assert store is not None and c.OdhStorage.admin_endpoint.startswith("http")
        c.OdhStorage.admin_endpoint = ""
    netpol = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-users"))
    for p in profiles:
        user = HubUser("alice", [Group(g) for g in (p.groups or ())])
        sp = OdhKubeSpawner(config=c, user=user, hub=Hub(), orm_spawner=None)
        if p.spark is not None:
            continue  # a Spark profile needs the API (its cluster); its pod is the same otherwise
        await sp._apply_odh_options(sp, {"profile": p.slug})
        manifest = serialize(await sp.get_pod_manifest())
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        spec = manifest["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert sp.namespace == "odh"
        container = spec["containers"][0]
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["runAsUser"] == settings["singleuser"]["uid"]
        assert spec["securityContext"]["fsGroup"] == settings["singleuser"]["fsGid"]
        # the users' NetworkPolicy selects this pod
        labels = manifest["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in netpol["spec"]["podSelector"]["matchLabels"].items())
        env_names = {e["name"]: e for e in container["env"]}
        assert ("ODH_PLATFORM_URL" in env_names) == platform_on


@pytest.mark.parametrize("values", VALUES_FILES, ids=ids)
def test_rendered_platform_args_configure_the_platform_service(values):
    from odh_spawner.deploy.kube import KubeServingBackend
    from odh_spawner.platform.app import PlatformService

    docs = rendered(values)
    dep = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-platform")]
    if not dep:
        return
    container = dep[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "odh_spawner.platform"]
    app = PlatformService()
    app.parse_command_line(container["args"])
    assert app.serving_backend_class is KubeServingBackend
    backend = KubeServingBackend(parent=app)
    values_doc = yaml.safe_load((CHART / "ci" / values).read_text()) if values else {}
    backend_value = (values_doc.get("serving") or {}).get("backend", "kserve")
    assert backend.serving_resource == {"seldon-v1": "seldon"}.get(backend_value, backend_value)
    assert backend.namespace == (values_doc.get("serving") or {}).get("namespace", "odh") or "odh"
    assert app.gateway_url.endswith("-platform.odh.svc:10101")
    serving = values_doc.get("serving") or {}
    assert backend.resources == serving.get("resources", {})
    if backend_value == "mlserver":  # the hub image serves the models (it carries MLServer and the fetch step)
        hub = container["image"]
        assert backend.mlserver_image == hub and hub.startswith("quay.io/odh-hub/hub")
        assert backend.mlserver_image_pull_policy == "IfNotPresent"
    else:
        assert backend.mlserver_image == ""
    if serving.get("servingPodSelector"):
        assert backend.serving_pod_selector == serving["servingPodSelector"]
    # the model-serving pods reach only the object store and DNS when NetworkPolicies are on
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    storage = {**chart_values["storage"], **(values_doc.get("storage") or {})}
    policies = {**chart_values["networkPolicy"], **(values_doc.get("networkPolicy") or {})}
    if policies["enabled"] and storage["enabled"] and storage["networkPeers"]:
        assert backend.network_policy_egress_to == storage["networkPeers"]
        assert backend.network_policy_egress_ports == storage["ports"]
        assert backend.network_policy_dns_ports == policies["dnsPorts"]
        policy = backend.network_policy_manifest("kserve")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert [r.get("to") for r in policy["spec"]["egress"]] == [None, storage["networkPeers"]]
    else:
        assert backend.network_policy_egress_to == []
    # the platform's pods carry the labels the serving NetworkPolicy lets through
    labels = dep[0]["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in backend.platform_pod_labels.items())
    kafka = values_doc.get("kafka") or {}
    if kafka.get("bootstrap"):
        from odh_spawner.ingest.kube import KubeIngestBackend

        assert app.kafka_bootstrap_servers == kafka["bootstrap"] and app.ingest_backend_class is KubeIngestBackend
        ingest, want = KubeIngestBackend(parent=app), kafka.get("ingest") or {}
        assert ingest.ingest_mode == want.get("backend", "deployment")
        if ingest.ingest_mode == "strimzi":
            assert (ingest.connect_cluster, ingest.connect_namespace, ingest.namespace) == (
                want["connectCluster"], want["connectNamespace"], want["connectNamespace"])
            assert ingest.strimzi_api_version == want.get("strimziApiVersion", "v1")
            assert ingest.connector_class == want.get("connectorClass", "io.confluent.connect.s3.S3SinkConnector")
            assert ingest.connect_service_account == want["connectCluster"] + "-connect"
        else:
            image = dep[0]["spec"]["template"]["spec"]["containers"][0]["image"]
            assert ingest.worker_image == image and ingest.namespace == "odh"
    else:
        assert not app.kafka_bootstrap_servers
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["JUPYTERHUB_API_TOKEN"]["valueFrom"]
    # the admin page's OAuth client: the one JupyterHub makes for a service with a URL (service-<name>)
    assert env["JUPYTERHUB_CLIENT_ID"]["value"] == "service-odh-platform"
    assert env["JUPYTERHUB_BASE_URL"]["value"].endswith("/")
    assert not [a for a in container["args"] if re.search(r"token|secret_key|password", a, re.I)]


def test_configure_rejects_incomplete_settings():
    from traitlets.config import Config

    with pytest.raises(HubSettingsError, match="missing proxy"):
        configure(Config(), {"namespace": "odh", "hub": {"connectUrl": "http://hub:8081"}}, {})
    with pytest.raises(HubSettingsError, match="authenticator.type 'ldap'"):
        configure(Config(), {"namespace": "odh", "hub": {"connectUrl": "http://h:8081"}, "proxy": {"apiUrl": "http://p"},
                             "authenticator": {"type": "ldap"}}, {})
