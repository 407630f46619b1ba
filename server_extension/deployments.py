"""/odh/api/deployments...: the notebook's side of model deployment.

Deploy calls are forwarded to the platform service with this server's own hub token (the notebook holds no
cluster credentials). A deploy from a file of the server (the JupyterLab command) first uploads it to the
user's models bucket with the user's own S3 keys, then asks for the deployment of that s3:// folder.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from odh_spawner.quantities import format_bytes

from . import validate as v
from .features import NO_PLATFORM
from .deploy import sha256_of  # the platform checks the model it downloads against it
from .handlers import OdhHandler, api
from .s3 import delete_prefix, ensure_bucket, models_bucket_not_yours

MANAGED_PREFIX = "odh-deployments/"
MODEL_FILE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class Platform:
    """Forwarding to the platform service (ODH_PLATFORM_URL) with this server's token."""

    def __init__(self, url: str, token: str, timeout: float = 60):
        self.url = url.rstrip("/") + "/api/" if url else ""
        self.token = token
        self.timeout = timeout

    async def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        if not self.url:
            raise v.BadRequest(NO_PLATFORM["deployments"], 503)
        req = HTTPRequest(self.url + path, method=method, request_timeout=self.timeout,
                          headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
                          body=json.dumps(body) if body is not None else None, allow_nonstandard_methods=True)
        try:
            r = await AsyncHTTPClient().fetch(req, raise_error=False)
        except OSError:
            raise v.BadRequest("The platform service is not reachable right now; try again in a minute.", 503) from None
        try:
            data = json.loads(r.body) if r.body else {}
        except ValueError:
            data = {"message": f"The platform service answered {r.code}."}
        if r.code == 599:
            raise v.BadRequest("The platform service did not answer in time; try again.", 504)
        return r.code, data


def model_upload_plan(local_path: str, name: str) -> tuple[str, list[tuple[str, str]]]:
    """(framework, [(file, key relative to the version folder)]) for a model file or an MLflow model folder."""
    if os.path.isdir(local_path):
        if not os.path.exists(os.path.join(local_path, "MLmodel")):
            raise v.BadRequest(f"{os.path.basename(local_path)!r} is a folder without an MLmodel file: "
                               "deploy a .joblib/.pkl file or an MLflow model folder.")
        files = []
        for root, _, names in os.walk(local_path):
            for n in names:
                full = os.path.join(root, n)
                files.append((full, os.path.relpath(full, local_path).replace(os.sep, "/")))
        return "mlflow", files
    if not local_path.endswith(MODEL_FILE_SUFFIXES):
        raise v.BadRequest("Deploy a scikit-learn model saved with joblib (.joblib, .pkl) or an MLflow model folder.")
    return "sklearn", [(local_path, "model.joblib")]


def example_input_of(path: str):
    """One zero row as wide as a scikit-learn model's input, when the model says (n_features_in_)."""
    try:
        import joblib

        model = joblib.load(path)
        n = int(getattr(model, "n_features_in_", 0))
    except Exception:  # not loadable here: deploy anyway, without an example
        return None
    return [[0.0] * n] if 0 < n <= 10_000 else None


class DeploymentsBase(OdhHandler):
    feature = "deployments"

    @property
    def platform(self) -> Platform:
        return self.extensionapp.platform

    async def forward(self, method: str, path: str, body: dict | None = None) -> None:
        status, data = await self.platform.call(method, path, body)
        if status >= 400:
            self.reply_error(status, data.get("message") or f"the platform service answered {status}")
            return
        self.reply(data, status)

    async def forward_or_clean(self, method: str, path: str, body: dict, uploaded: bool) -> None:
        """Forward a deploy; when the platform refuses it, remove what this request uploaded."""
        status, data = await self.platform.call(method, path, body)
        if status >= 400:
            if uploaded:
                bucket, _, prefix = body["model_uri"][len("s3://"):].partition("/")
                await self.call(delete_prefix, s3=self.s3, bucket=bucket, prefix=prefix)
            self.reply_error(status, data.get("message") or f"the platform service answered {status}")
            return
        self.reply(data, status)

    def local_model(self, path) -> str:
        """A path inside this server's root directory."""
        if not isinstance(path, str) or not path or "\0" in path:
            raise v.BadRequest("Path must name a model file or folder of this server.")
        root = os.path.realpath(self.settings.get("server_root_dir") or os.getcwd())
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if not (full == root or full.startswith(root + os.sep)) or not os.path.exists(full):
            raise v.BadRequest(f"No such file or folder: {path[:200]}.", 404)
        return full

    async def upload_model(self, name: str, path) -> dict:
        """Upload a server-side model to the models bucket; returns the deploy request fields."""
        app = self.extensionapp
        local = self.local_model(path)
        framework, files = model_upload_plan(local, name)
        size = sum(os.path.getsize(f) for f, _ in files)
        if size > app.max_model_upload:
            raise v.BadRequest(f"The model is {format_bytes(size)}; deployments take at most "
                               f"{format_bytes(app.max_model_upload)}.", 413)
        bucket = app.models_bucket
        if not bucket:
            raise v.BadRequest("No models bucket is configured for this server (ODH_MODELS_BUCKET); "
                               "tell your platform admin.", 503)
        await self.call(ensure_bucket, s3=self.s3, bucket=bucket, message=models_bucket_not_yours)
        prefix = f"{MANAGED_PREFIX}{name}/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}/"
        digests = {}
        for full, rel in files:
            digests[rel] = await self.call(sha256_of, path=full)  # of the bytes uploaded next
            await self.call(self.s3.upload_file, Filename=full, Bucket=bucket, Key=prefix + rel)
        example = await self.call(example_input_of, path=files[0][0]) if framework == "sklearn" else None
        return {"model_uri": f"s3://{bucket}/{prefix}", "framework": framework, "example_input": example,
                "model_sha256": digests}

    def deploy_body(self) -> dict:
        return self.body((), ("name", "path", "model_uri", "framework", "example_input", "model_sha256"))

    async def deploy_request(self, b: dict, name: str) -> dict:
        if b.get("path") is not None:
            if b.get("model_uri"):
                raise v.BadRequest("Give either path or model_uri, not both.")
            req = await self.upload_model(name, b["path"])
            if b.get("framework") and b["framework"] != req["framework"]:
                raise v.BadRequest(f"{b['path']} holds a {req['framework']} model, not {b['framework']}.")
            if b.get("example_input") is not None:
                req["example_input"] = b["example_input"]
            return req
        if not b.get("model_uri"):
            raise v.BadRequest("Give the model: path (a file of this server) or model_uri (s3://bucket/folder/).")
        return {k: b[k] for k in ("model_uri", "framework", "example_input", "model_sha256")
                if b.get(k) is not None}


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _name_of(b: dict) -> str:
    """Checked here as well as by the platform, so a bad name costs no upload."""
    name = b.get("name")
    if not isinstance(name, str) or not name:
        raise v.BadRequest("A deployment needs a name, e.g. \"churn\".")
    if len(name) > 40 or not _DNS_LABEL.fullmatch(name):
        raise v.BadRequest(f"Deployment name {name[:60]!r} is not DNS-safe: at most 40 lowercase letters, digits "
                           "and '-', starting with a letter and not ending with '-'.")
    return name


class DeploymentsHandler(DeploymentsBase):
    @api
    async def get(self):
        await self.forward("GET", "deployments")

    @api
    async def post(self):
        b = self.deploy_body()
        name = _name_of(b)
        # the platform checks the name first, so a bad name costs no upload
        status, data = await self.platform.call("GET", f"deployments/{quote(name, safe='')}")
        if status == 200:
            raise v.BadRequest(f"You already have a deployment named {name!r}: deploy a new version of it, "
                               "or choose another name.", 409)
        req = await self.deploy_request(b, name)
        await self.forward_or_clean("POST", "deployments", {"name": name, **req}, uploaded=b.get("path") is not None)


class DeploymentHandler(DeploymentsBase):
    @api
    async def get(self, name):
        await self.forward("GET", f"deployments/{quote(name, safe='')}")

    @api
    async def delete(self, name):
        await self.forward("DELETE", f"deployments/{quote(name, safe='')}")

    @api
    async def patch(self, name):
        """Settings of the deployment: {"public": true|false} (anyone may call the endpoint, or only you)."""
        b = self.body(("public",))
        if not isinstance(b["public"], bool):
            raise v.BadRequest("`public` must be true or false.")
        await self.forward("PATCH", f"deployments/{quote(name, safe='')}", {"public": b["public"]})


class VersionsHandler(DeploymentsBase):
    @api
    async def post(self, name):
        status, data = await self.platform.call("GET", f"deployments/{quote(name, safe='')}")
        if status >= 400:
            self.reply_error(status, data.get("message", "no such deployment"))
            return
        b = self.deploy_body()
        req = await self.deploy_request(b, name)
        await self.forward_or_clean("POST", f"deployments/{quote(name, safe='')}/versions", req,
                                    uploaded=b.get("path") is not None)


class RollbackHandler(DeploymentsBase):
    @api
    async def post(self, name):
        await self.forward("POST", f"deployments/{quote(name, safe='')}/rollback", {})


class PredictHandler(DeploymentsBase):
    @api
    async def post(self, name):
        b = self.body((), ("inputs",))
        await self.forward("POST", f"deployments/{quote(name, safe='')}/predict",
                           {"inputs": b["inputs"]} if b.get("inputs") is not None else {})


class KeyHandler(DeploymentsBase):
    @api
    async def post(self, name):
        """Rotate the endpoint's API key; the answer holds the new key, the old one stops working."""
        await self.forward("POST", f"deployments/{quote(name, safe='')}/key", {})


_NAME = r"(?P<name>[^/]+)"
HANDLERS = [
    (r"/odh/api/deployments", DeploymentsHandler),
    (rf"/odh/api/deployments/{_NAME}", DeploymentHandler),
    (rf"/odh/api/deployments/{_NAME}/versions", VersionsHandler),
    (rf"/odh/api/deployments/{_NAME}/rollback", RollbackHandler),
    (rf"/odh/api/deployments/{_NAME}/predict", PredictHandler),
    (rf"/odh/api/deployments/{_NAME}/key", KeyHandler),
]
