"""Every HTTP API's route table against its OpenAPI document (shipped beside the handlers): every route and
method is documented, every documented path and method is routed to a handler that implements it, and every
documented operation answers 4xx with the JSON error schema (a `message`). Pure: the route tables are built,
nothing is served."""

from __future__ import annotations

import os
import re

import pytest
import yaml
from tornado import web

import server_extension
from odh_spawner import platform as platform_pkg
from odh_spawner.platform.gateway import gateway_routes
from odh_spawner.platform.routes import routes
from server_extension import deployments, features_api, handlers, ingestions, spark, usage

pytestmark = pytest.mark.unit

METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
NB = os.path.dirname(server_extension.__file__)
PF = os.path.dirname(platform_pkg.__file__)
# routes that are not part of an API: the Spark master UI the notebook server proxies (HTML pages)
NOT_API = {r"/odh/spark-ui", r"/odh/spark-ui/(.*)"}


def _prefixed(table, prefix: str) -> list[tuple[str, type]]:
    return [(pattern[len(prefix):], handler) for pattern, handler, *_ in table
            if pattern not in NOT_API and pattern.startswith(prefix)]


# (document, route table with the document's server prefix removed, why the prefix)
APIS = {
    "notebook buckets": (os.path.join(NB, "openapi.yaml"), _prefixed(handlers.HANDLERS, "/odh/api")),
    "notebook deployments": (os.path.join(NB, "deployments.openapi.yaml"),
                             _prefixed(deployments.HANDLERS, "/odh/api")),
    "notebook ingestions and Kafka topics": (os.path.join(NB, "ingestions.openapi.yaml"),
                                             _prefixed(ingestions.HANDLERS, "/odh/api")),
    "notebook Spark": (os.path.join(NB, "spark.openapi.yaml"), _prefixed(spark.HANDLERS, "/odh/api")),
    "notebook usage": (os.path.join(NB, "usage.openapi.yaml"), _prefixed(usage.HANDLERS, "/odh/api")),
    "notebook features": (os.path.join(NB, "features.openapi.yaml"), _prefixed(features_api.HANDLERS, "/odh/api")),
    "platform service": (os.path.join(PF, "openapi.yaml"),
                         _prefixed(routes("/services/odh-platform", None), "/services/odh-platform/api")),
    "model gateway": (os.path.join(PF, "gateway.openapi.yaml"), _prefixed(gateway_routes(None), "")),
}

_GROUP = re.compile(r"\((?:\?P<(\w+)>)?((?:[^()]|\([^()]*\))*)\)")


def template_of(pattern: str) -> tuple[str, bool]:
    """A route regex as a path template with anonymous parameters ('/a/{}/b'), and whether it takes any tail
    (a trailing optional group such as '(/.*)?')."""
    tail = pattern.endswith(")?")
    if tail:
        pattern = pattern[:pattern.rindex("(")]
    return _GROUP.sub("{}", pattern), tail


def anonymous(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def implemented(handler: type) -> set[str]:
    """The HTTP methods a handler class answers itself (not tornado's 405 defaults)."""
    return {m for m in METHODS if getattr(handler, m, None) is not getattr(web.RequestHandler, m)}


def documented(doc: dict) -> dict[str, set[str]]:
    return {path: {m for m in item if m in METHODS} for path, item in doc["paths"].items()}


def example_path(path: str, item: dict, op: dict) -> str:
    """The documented path with each parameter filled in by a value its schema allows (an enum's first)."""
    params = {p["name"]: p for p in [*item.get("parameters", []), *op.get("parameters", [])] if "name" in p}

    def value(m):
        schema = params.get(m.group(1), {}).get("schema", {})
        return str(schema["enum"][0]) if "enum" in schema else "a1"
    return re.sub(r"\{([^}]+)\}", value, path)


def load(name: str) -> dict:
    with open(APIS[name][0]) as f:
        return yaml.safe_load(f)


def resolve(doc: dict, obj: dict) -> dict:
    while "$ref" in obj:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


@pytest.mark.parametrize("name", sorted(APIS))
def test_every_route_and_method_is_documented(name):
    doc, table = load(name), APIS[name][1]
    assert table, f"no routes found for {name}"
    paths = documented(doc)
    by_template = {}
    for path, methods in paths.items():
        by_template.setdefault(anonymous(path), set()).update(methods)
    missing = []
    for pattern, handler in table:
        template, tail = template_of(pattern)
        if tail:  # a route that takes any tail: the documented paths under it together
            methods = set().union(*[m for t, m in by_template.items() if t == template or t.startswith(template + "/")])
        else:
            methods = by_template.get(template)
        if not methods:
            missing.append(f"{pattern} (as {template})")
            continue
        undocumented = implemented(handler) - methods - {"options"}
        if tail:
            undocumented -= {"head"} if "get" in methods else set()
        assert not undocumented, f"{name}: {pattern} answers {sorted(undocumented)}, not in {APIS[name][0]}"
    assert not missing, f"{name}: routes not in {APIS[name][0]}: {missing}"


@pytest.mark.parametrize("name", sorted(APIS))
def test_every_documented_path_and_method_is_routed(name):
    doc, table = load(name), APIS[name][1]
    unrouted = []
    for path, item in doc["paths"].items():
        for method in documented(doc)[path]:
            concrete = example_path(path, item, item[method])
            handlers_ = [h for pattern, h in table if re.fullmatch(pattern, concrete)]
            if not handlers_:
                unrouted.append(f"{method.upper()} {path} ({concrete})")
            elif method not in implemented(handlers_[0]):
                unrouted.append(f"{method.upper()} {path}: {handlers_[0].__name__} does not answer it")
    assert not unrouted, f"{name}: documented but not served: {unrouted}"


@pytest.mark.parametrize("name", sorted(APIS))
def test_every_operation_documents_json_errors_with_a_message_and_a_success(name):
    doc = load(name)
    assert doc["openapi"].startswith("3.0")
    for path, item in doc["paths"].items():
        for method in documented(doc)[path]:
            responses = item[method]["responses"]
            assert any(code.startswith("2") for code in responses), f"{method} {path}: no 2xx answer"
            assert "4XX" in responses, f"{method} {path}: no 4XX answer"
            if method == "head":
                continue  # no body
            error = resolve(doc, responses["4XX"])
            schema = resolve(doc, error["content"]["application/json"]["schema"])
            assert "message" in schema["required"], f"{method} {path}: the 4XX schema has no required message"
            for code, answer in responses.items():
                answer = resolve(doc, answer)
                if code.startswith("2") and "content" in answer:
                    assert answer["content"], f"{method} {path} {code}: empty content"


def test_route_templates():
    assert template_of(r"/buckets/(?P<bucket>[^/]+)/uploads/(?P<upload_id>[^/]+)") == ("/buckets/{}/uploads/{}", False)
    assert template_of(r"/ingestions/([a-z0-9][a-z0-9-]*)/(pause|resume|stop)") == ("/ingestions/{}/{}", False)
    assert template_of(r"/v2/models/([^/]+)(/.*)?") == ("/v2/models/{}", True)
    assert anonymous("/ingestions/{name}/{action}") == "/ingestions/{}/{}"
