"""The chart rendered the GitOps way (Argo CD runs `helm template`, where `lookup` finds nothing), with the real
helm binary, offline.

With every generated secret taken from the admin's own Secrets (`existingSecret` values, ci/gitops-values.yaml),
two renders are byte-identical, no Secret with generated data is rendered and every secretKeyRef names one of the
admin's Secrets. The Prometheus and Grafana objects (metrics.*) appear only when enabled; the PrometheusRule
carries exactly the alert file's groups; the dashboard queries only documented metrics. The example Argo CD
Application points at this chart and renders. Applying all of it to a real API server (CRD validation, a second
server-side apply that changes nothing): tests/integration/test_chart_gitops_apply.py.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

from tests.support.helm import CHART, ROOT, HelmError, by_kind_name, helm, template, values_args

pytestmark = pytest.mark.unit

GITOPS = "gitops-values.yaml"
ALL_METRICS = {"metrics.serviceMonitor.enabled": True, "metrics.prometheusRule.enabled": True,
               "metrics.dashboard.enabled": True}
# the admin's Secrets named in ci/gitops-values.yaml: (Secret, key) each generated secret is read from
ADMIN_REFS = {("odh-hub-tokens", "cookie-secret"), ("odh-hub-tokens", "proxy-token"),
              ("odh-hub-tokens", "platform-api-token"), ("odh-hub-admin", "password"),
              ("odh-hub-prometheus", "token")}
GENERATED_KEYS = {"cookie-secret", "proxy-token", "platform-api-token", "initial-admin-password"}
CHART_SECRET = "t-odh-hub-secrets"
APPLICATION = ROOT / "docs" / "gitops" / "argocd-application.yaml"
ALERTS = CHART / "files" / "prometheus" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboards" / "odh-hub.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"


def render_text(values: str | None = GITOPS, sets: dict | None = None, extra_files=()) -> str:
    return helm("template", "t", CHART, "--namespace", "odh", *values_args(values, sets, extra_files))


def kinds(docs) -> list[str]:
    return sorted(d["kind"] for d in docs)


def containers(docs):
    for d in docs:
        if d["kind"] == "Deployment":
            spec = d["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                yield d["metadata"]["name"], c


def secret_key_refs(docs) -> set[tuple[str, str]]:
    """Every (Secret, key) a rendered object reads: env secretKeyRefs and the ServiceMonitors' credentials."""
    refs = set()
    for _, c in containers(docs):
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
        for src in c.get("envFrom", []):
            assert "secretRef" not in src, "a whole Secret as environment"
    for d in docs:
        if d["kind"] == "ServiceMonitor":
            for ep in d["spec"]["endpoints"]:
                cred = ep["authorization"]["credentials"]
                refs.add((cred["name"], cred["key"]))
    return refs


# -- GitOps: the same bytes on every render, no generated secret -------------------------------------------------
def test_two_renders_of_the_gitops_values_are_byte_identical():
    a = render_text(sets=ALL_METRICS)
    b = render_text(sets=ALL_METRICS)
    assert a.encode() == b.encode()
    docs = [d for d in yaml.safe_load_all(a) if d]
    assert {"ServiceMonitor", "PrometheusRule", "Deployment", "ConfigMap"} <= set(kinds(docs))
    # the comparison can see a difference: the default values generate fresh secrets on every render
    assert render_text(values=None).encode() != render_text(values=None).encode()


def test_no_template_calls_anything_random_or_time_dependent_but_the_secret_generator():
    """Checksums derive from rendered content (sha256sum of included templates); the only random or
    cluster-dependent calls are in odh-hub.secretValue, which only secret.yaml includes (for keys without an
    existingSecret)."""
    volatile = re.compile(r"\b(rand[A-Za-z]*|uuidv4|now|date[A-Za-z]*|unixEpoch|genCA|genPrivateKey|genSelfSignedCert"
                          r"|genSignedCert|htpasswd|shuffle|lookup|ago)\b")
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    block = re.search(r'\{\{- define "odh-hub\.secretValue" -\}\}.*?\{\{- end -\}\}\n\n', helpers, re.S).group(0)
    assert volatile.search(block), "the generator moved: update this test"
    for path in sorted((CHART / "templates").glob("*")):
        text = path.read_text()
        if path.name == "_helpers.tpl":
            text = text.replace(block, "")
        code = " ".join(re.findall(r"\{\{(.*?)\}\}", text, re.S))
        code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
        assert not volatile.search(code), f"{path.name}: {volatile.search(code).group(0)}"
        if path.name != "secret.yaml":
            assert "odh-hub.secretValue" not in code, path.name
    for d in template(GITOPS, sets=ALL_METRICS):
        for key, value in ((d.get("spec") or {}).get("template", {}).get("metadata", {}).get("annotations")
                           or {}).items():
            if key.startswith("checksum/"):
                assert re.fullmatch(r"[0-9a-f]{64}", value), (key, value)


def test_with_existing_secrets_nothing_is_generated_and_every_ref_names_the_admins_secrets():
    docs = template(GITOPS, sets=ALL_METRICS)
    assert "Secret" not in kinds(docs)
    for d in docs:  # no object anywhere carries a generated key
        assert not (d["kind"] == "Secret" or set((d.get("data") or {})) & GENERATED_KEYS), d["metadata"]["name"]
    assert secret_key_refs(docs) == ADMIN_REFS
    assert CHART_SECRET not in json.dumps(docs)
    # secret volumes name only the admin's own Secrets too (the RGW admin keys)
    volumes = {v["secret"]["secretName"] for d in docs if d["kind"] == "Deployment"
               for v in d["spec"]["template"]["spec"].get("volumes", []) if "secret" in v}
    assert volumes == {"rgw-admin"}
    # who reads what: the hub all of them, the proxy and the platform only their own
    env = {(name, e["name"]): (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
           for name, c in containers(docs) for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    assert env == {
        ("t-odh-hub-hub", "JPY_COOKIE_SECRET"): ("odh-hub-tokens", "cookie-secret"),
        ("t-odh-hub-hub", "ODH_PROXY_TOKEN"): ("odh-hub-tokens", "proxy-token"),
        ("t-odh-hub-hub", "ODH_PLATFORM_API_TOKEN"): ("odh-hub-tokens", "platform-api-token"),
        ("t-odh-hub-hub", "ODH_INITIAL_ADMIN_PASSWORD"): ("odh-hub-admin", "password"),
        ("t-odh-hub-hub", "ODH_METRICS_API_TOKEN"): ("odh-hub-prometheus", "token"),
        ("t-odh-hub-platform", "JUPYTERHUB_API_TOKEN"): ("odh-hub-tokens", "platform-api-token"),
        ("t-odh-hub-platform", "CONFIGPROXY_AUTH_TOKEN"): ("odh-hub-tokens", "proxy-token"),
        ("t-odh-hub-proxy", "CONFIGPROXY_AUTH_TOKEN"): ("odh-hub-tokens", "proxy-token"),
    }


def test_each_existing_secret_replaces_only_its_own_generated_key():
    docs = by_kind_name(template(sets={"hub.cookieSecret.existingSecret": "my-cookie"}))
    secret = docs[("Secret", CHART_SECRET)]
    assert set(secret["data"]) == GENERATED_KEYS - {"cookie-secret"}
    hub_env = {e["name"]: e for e in docs[("Deployment", "t-odh-hub-hub")]["spec"]["template"]["spec"]
               ["containers"][0]["env"]}
    # key defaults to the chart's own key name
    assert hub_env["JPY_COOKIE_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "my-cookie", "key": "cookie-secret"}
    assert hub_env["ODH_PROXY_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": CHART_SECRET, "key": "proxy-token"}
    assert "ODH_METRICS_API_TOKEN" not in hub_env


def test_the_defaults_still_generate_all_four_into_the_charts_secret():
    docs = template()
    secret = by_kind_name(docs)[("Secret", CHART_SECRET)]
    assert set(secret["data"]) == GENERATED_KEYS
    assert {name for name, _ in secret_key_refs(docs)} == {CHART_SECRET}


def test_a_users_secret_and_three_existing_secrets_render_no_secret():
    docs = template(sets={"authenticator.file.usersSecret": "my-users",
                          "hub.cookieSecret.existingSecret": "mine", "proxy.authToken.existingSecret": "mine",
                          "platform.apiToken.existingSecret": "mine"})
    assert "Secret" not in kinds(docs)
    assert secret_key_refs(docs) == {("mine", "cookie-secret"), ("mine", "proxy-token"),
                                     ("mine", "platform-api-token")}


@pytest.mark.parametrize("sets, message", [
    ({"hub.cookieSecret.existingSecret": "Not_A_Name"}, "at '/hub/cookieSecret/existingSecret'"),
    ({"proxy.authToken.bogus": "x"}, "at '/proxy/authToken': additional properties 'bogus' not allowed"),
    ({"metrics.serviceMonitor.interval": "half a minute"}, "at '/metrics/serviceMonitor/interval'"),
    ({"metrics.dashboard.enabled": "yes"}, "at '/metrics/dashboard/enabled': got string, want boolean"),
])
def test_schema_checks_the_new_values(sets, message):
    with pytest.raises(HelmError) as e:
        template(sets=sets)
    assert message in e.value.stderr


# -- metrics objects -------------------------------------------------------------------------------------------
METRIC_OBJECTS = {"metrics.serviceMonitor.enabled": {("ServiceMonitor", "t-odh-hub-hub"),
                                                     ("ServiceMonitor", "t-odh-hub-platform")},
                  "metrics.prometheusRule.enabled": {("PrometheusRule", "t-odh-hub-alerts")},
                  "metrics.dashboard.enabled": {("ConfigMap", "t-odh-hub-dashboard")}}


def metric_objects(docs) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs
            if d["kind"] in ("ServiceMonitor", "PrometheusRule")
            or (d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"])}


def test_metrics_objects_are_off_by_default():
    assert metric_objects(template()) == set()
    assert metric_objects(template("full-values.yaml")) == set()


@pytest.mark.parametrize("flag", sorted(METRIC_OBJECTS))
def test_each_metrics_object_is_rendered_only_when_enabled(flag):
    off = {k: False for k in METRIC_OBJECTS}
    assert metric_objects(template(GITOPS, sets=off)) == set()
    assert metric_objects(template(GITOPS, sets={**off, flag: True})) == METRIC_OBJECTS[flag]


def test_service_monitors_scrape_both_endpoints_with_the_token_and_the_alerts_job_names():
    docs = template(GITOPS, sets=ALL_METRICS)
    services = [d for d in docs if d["kind"] == "Service"]
    monitors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceMonitor"}
    expected = {"t-odh-hub-hub": ("/hub/metrics", "odh-hub"),
                "t-odh-hub-platform": ("/services/odh-platform/metrics", "odh-platform")}
    assert set(monitors) == set(expected)
    for name, (path, job) in expected.items():
        spec = monitors[name]["spec"]
        assert spec["namespaceSelector"] == {"matchNames": ["odh"]}
        # the selector picks exactly the component's Service, and the endpoint's port is one of its ports
        selected = [s for s in services if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert [s["metadata"]["name"] for s in selected] == [name]
        [ep] = spec["endpoints"]
        assert ep["port"] in [p["name"] for p in selected[0]["spec"]["ports"]]
        assert ep["path"] == path and ep["scheme"] == "http"
        assert ep["authorization"] == {"type": "Bearer", "credentials": {"name": "odh-hub-prometheus", "key": "token"}}
        assert ep["relabelings"] == [{"action": "replace", "targetLabel": "job", "replacement": job}]
    # the alert rules ask for exactly these jobs
    jobs = set(re.findall(r'job="([^"]+)"', ALERTS.read_text()))
    assert jobs and jobs <= {"odh-hub", "odh-platform"}


def test_service_monitor_paths_follow_the_base_url_and_the_platform_switch():
    docs = template(GITOPS, sets={**ALL_METRICS, "hub.baseUrl": "/jh/"})
    paths = {d["metadata"]["name"]: d["spec"]["endpoints"][0]["path"] for d in docs if d["kind"] == "ServiceMonitor"}
    assert paths == {"t-odh-hub-hub": "/jh/hub/metrics", "t-odh-hub-platform": "/jh/services/odh-platform/metrics"}
    docs = template(GITOPS, sets={**ALL_METRICS, "platform.enabled": False})
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceMonitor"] == ["t-odh-hub-hub"]


def test_service_monitors_without_a_scrape_token_fail_with_a_message():
    with pytest.raises(HelmError) as e:
        template(sets={"metrics.serviceMonitor.enabled": True})
    assert ("Set metrics.scrapeToken.existingSecret: metrics.serviceMonitor.enabled needs a Secret with a hub API "
            "token for Prometheus." in e.value.stderr)


def test_network_policies_let_prometheus_reach_the_hub_and_the_platform_only_with_service_monitors():
    def prometheus_rules(docs):
        peers = yaml.safe_load(open(CHART / "values.yaml"))["metrics"]["serviceMonitor"]["networkPeers"]
        out = {}
        for d in docs:
            if d["kind"] == "NetworkPolicy":
                for rule in d["spec"].get("ingress", []):
                    if rule.get("from") == peers:
                        out[d["metadata"]["name"]] = [p["port"] for p in rule["ports"]]
        return out

    assert prometheus_rules(template(GITOPS)) == {}
    assert prometheus_rules(template(GITOPS, sets=ALL_METRICS)) == {"t-odh-hub-hub": [8081],
                                                                     "t-odh-hub-platform": [10101]}


def test_the_prometheus_rule_carries_exactly_the_alert_files_groups():
    rule = by_kind_name(template(GITOPS, sets=ALL_METRICS))[("PrometheusRule", "t-odh-hub-alerts")]
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert groups and rule["spec"] == {"groups": groups}
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"


def test_the_hub_registers_the_scrape_token_as_a_read_metrics_service(tmp_path):
    """The rendered hub ConfigMap's jupyterhub_config.py, loaded by traitlets with the pod's environment."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.scopes import _check_scopes_exist

    def load(sets):
        docs = by_kind_name(template(GITOPS, sets={"authenticator.file.usersSecret": "my-users", **sets}))
        config_dir = tmp_path / str(len(list(tmp_path.iterdir())))
        config_dir.mkdir()
        for key, text in docs[("ConfigMap", "t-odh-hub-hub-config")]["data"].items():
            (config_dir / key).write_text(text)
        pod = docs[("Deployment", "t-odh-hub-hub")]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: "s3cr3t-" + e["valueFrom"]["secretKeyRef"]["key"] for e in pod["env"]
               if "secretKeyRef" in e.get("valueFrom", {})}
        env["ODH_HUB_SETTINGS"] = str(config_dir / "settings.json")
        old = dict(os.environ)
        os.environ.update(env)
        try:
            return PyFileConfigLoader("jupyterhub_config.py", path=str(config_dir)).load_config()
        finally:
            os.environ.clear()
            os.environ.update(old)

    c = load({})
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["odh-prometheus"]["api_token"] == "s3cr3t-token"
    assert "url" not in services["odh-prometheus"] and "command" not in services["odh-prometheus"]
    [role] = [r for r in c.JupyterHub.load_roles if r["name"] == "odh-prometheus"]
    assert role == {"name": "odh-prometheus", "scopes": ["read:metrics"], "services": ["odh-prometheus"]}
    _check_scopes_exist(role["scopes"])  # a scope JupyterHub knows
    assert JupyterHub(config=c).services == c.JupyterHub.services  # its traits accept the services
    # no scrape token, no such service
    c = load({"metrics.scrapeToken.existingSecret": ""})
    assert "odh-prometheus" not in {s["name"] for s in c.JupyterHub.services}
    assert "odh-prometheus" not in {r["name"] for r in c.JupyterHub.load_roles}


# -- the Grafana dashboard -------------------------------------------------------------------------------------
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "le", "inf", "nan"}


def documented_metrics() -> set[str]:
    return set(re.findall(r"^\| `([a-z_:][a-z0-9_:]*)` \|", METRICS_DOC.read_text(), re.M))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, label names or values)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        if m.group(2) or m.group(1).lower() in PROMQL_WORDS:
            continue  # a function call or a keyword
        names.add(m.group(1))
    return names


def test_metric_name_extraction():
    assert metric_names('sum by (le, stage) (rate(odh_x_bucket{code=~"5.."}[5m])) / on (a) up') == {
        "odh_x_bucket", "up"}
    assert metric_names("histogram_quantile(0.95, sum(rate(a_b[$__rate_interval])))") == {"a_b"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def expressions(d: dict) -> list[str]:
    return [t["expr"] for p in d["panels"] for t in p.get("targets", [])]


def test_the_dashboard_queries_only_documented_metrics():
    d = dashboard()
    documented = documented_metrics()
    assert len(documented) >= 25 and "odh_spawns_total" in documented
    histograms = set(re.findall(r"^\| `([a-z_:][a-z0-9_:]*)` \| histogram \|", METRICS_DOC.read_text(), re.M))
    used = set()
    for expr in expressions(d):
        names = metric_names(expr)
        assert names, expr
        for name in names:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            ok = (name in documented or (base in histograms and base != name) or name.startswith("jupyterhub_")
                  or name == "up")
            assert ok, f"{name} (in {expr}) is not in docs/metrics.md"
            used.add(base)
    # the panels the dashboard promises
    for metric in ("odh_spawns_total", "odh_spawn_stage_duration_seconds", "odh_component_up", "odh_deployments",
                   "odh_gateway_requests_total", "odh_gateway_request_duration_seconds", "odh_ingestion_lag_records",
                   "odh_ingestion_records_total", "odh_spark_clusters", "odh_user_cpu_seconds_total",
                   "odh_user_memory_bytes", "odh_user_bucket_bytes", "up"):
        assert metric in used, metric
    # every panel but rows has a query, a unique id and a place; the data source is the dashboard's variable
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["targets"] and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource"] and d["uid"] == "odh-hub"


def test_the_dashboard_configmap_ships_the_file_for_grafanas_sidecar():
    cm = by_kind_name(template(GITOPS, sets={"metrics.dashboard.labels": {"team": "ml"},
                                             "metrics.dashboard.annotations": {"grafana_folder": "odh"}}))[
        ("ConfigMap", "t-odh-hub-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["labels"]["team"] == "ml"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "odh"}
    assert list(cm["data"]) == ["odh-hub.json"]
    assert json.loads(cm["data"]["odh-hub.json"]) == dashboard()


# -- the example Argo CD Application ---------------------------------------------------------------------------
def test_the_argocd_application_points_at_the_chart_and_renders_the_same_bytes_twice(tmp_path):
    [app] = [d for d in yaml.safe_load_all(APPLICATION.read_text()) if d]
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    source = app["spec"]["source"]
    assert source["path"] == "helm/odh-hub" and (ROOT / source["path"]) == CHART
    assert (CHART / "Chart.yaml").is_file()
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    h = source["helm"]
    value_files = [CHART / f for f in h["valueFiles"]]
    assert value_files and all(f.is_file() for f in value_files), h["valueFiles"]
    assert CHART / "ci" / GITOPS in value_files
    inline = h["valuesObject"]
    for path in ("hub.cookieSecret", "proxy.authToken", "platform.apiToken",
                 "authenticator.file.initialAdmin.password", "metrics.scrapeToken"):
        node = inline
        for part in path.split("."):
            node = node[part]
        assert node["existingSecret"], path
    # what Argo CD would run: helm template with its value files, then its inline values
    (tmp_path / "inline.yaml").write_text(yaml.safe_dump(inline))
    files = [*value_files, tmp_path / "inline.yaml"]
    args = ["template", source["helm"]["releaseName"], CHART, "--namespace", app["spec"]["destination"]["namespace"]]
    for f in files:
        args += ["-f", str(f)]
    a, b = helm(*args), helm(*args)
    assert a.encode() == b.encode()
    docs = [d for d in yaml.safe_load_all(a) if d]
    assert "Secret" not in kinds(docs)
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds(docs))
    assert {n for n, _ in secret_key_refs(docs)} == {"odh-hub-tokens", "odh-hub-admin", "odh-hub-prometheus"}
