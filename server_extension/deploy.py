"""Deploy a model from a notebook in one call, and manage its deployments.

    from odh_hub import deploy
    d = deploy(model, name="churn", sample=X_test[:1])   # uploading -> creating -> starting -> ready
    d.url, d.predict(X_test[:5])
    d.redeploy(model_v2); d.rollback(); d.delete()
    d.api_key; d.rotate_key(); d.set_public(True)   # the endpoint's key (share it), a new one, no key at all

The endpoint needs a credential unless you make it public: its API key (`d.api_key`, shown on request and
never printed) or your own hub token, as `Authorization: Bearer ...`. `d.predict` sends the key.

The model is serialised here (scikit-learn with joblib; an MLflow model folder is uploaded as it is),
uploaded to the user's own models bucket with the user's own keys (from the server's environment), and the
deployment is asked of the platform service through this notebook server (/odh/api/deployments).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import requests

from .client import ApiClient, OdhApiError
from .s3 import delete_prefix, ensure_bucket, models_bucket_not_yours
from .validate import BadRequest

MANAGED_PREFIX = "odh-deployments/"
STAGES = ("uploading", "creating", "starting", "ready")


class DeployError(OdhApiError):
    """A deployment failed; `log_tail` holds the model server's last log lines when there are any."""

    def __init__(self, status: int, message: str, log_tail: list[str] | None = None):
        super().__init__(status, message)
        self.log_tail = log_tail or []

    def __str__(self) -> str:
        tail = "\n".join(self.log_tail[-10:])
        return f"{self.message}" + (f"\nmodel server log:\n{tail}" if tail else "")


def sha256_of(path: str) -> str:
    """The hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rows(sample) -> list | None:
    """A JSON-able list of numeric rows from a numpy array, DataFrame or list."""
    if sample is None:
        return None
    if hasattr(sample, "to_numpy"):
        sample = sample.to_numpy()
    if hasattr(sample, "tolist"):
        sample = sample.tolist()
    rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in sample]
    return [[float(x) if isinstance(x, float) else x for x in r] for r in rows]


def serialize(model, folder: str) -> tuple[str, list[tuple[str, str]]]:
    """(framework, [(file, key)]): a scikit-learn estimator via joblib, or an MLflow model folder (path)."""
    if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
        if not os.path.exists(os.path.join(model, "MLmodel")):
            raise DeployError(400, f"{model} is not an MLflow model folder (no MLmodel file).")
        files = [(os.path.join(r, n), os.path.relpath(os.path.join(r, n), model).replace(os.sep, "/"))
                 for r, _, names in os.walk(model) for n in names]
        return "mlflow", files
    if not (hasattr(model, "predict") and hasattr(model, "get_params")):
        raise DeployError(400, f"Cannot deploy a {type(model).__name__}: odh-hub deploys scikit-learn "
                               "estimators/pipelines (fitted) and MLflow model folders.")
    import joblib

    path = os.path.join(folder, "model.joblib")
    try:
        joblib.dump(model, path)
    except Exception as e:  # lambdas, open files, locks...: pickling fails
        raise DeployError(400, f"The model cannot be serialised with joblib ({type(e).__name__}: {e}); "
                               "deploy a model without unpicklable parts.") from None
    return "sklearn", [(path, "model.joblib")]


@dataclass
class Deployment:
    """A deployment as the platform reports it, with the actions on it."""

    info: dict
    client: "DeployClient"

    def __getattr__(self, key):
        try:
            return self.info[key]
        except KeyError:
            raise AttributeError(key) from None

    def __repr__(self) -> str:
        return (f"<Deployment {self.info['name']} {self.info['state']} v{self.info['version']} "
                f"{self.info.get('infer_url') or ''}>")

    def _repr_html_(self) -> str:
        from html import escape

        i = self.info
        rows = [("state", i["state"]), ("version", f"v{i['version']} of {len(i['versions'])}"),
                ("URL", i.get("infer_url") or "-"), ("model", i.get("model_uri") or "-")]
        if i.get("last_error"):
            rows.append(("last error", i["last_error"]))
        cells = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                        for k, v in rows)
        return f"<b>Deployment {escape(i['name'])}</b><table>{cells}</table>"

    def refresh(self) -> "Deployment":
        self.info = self.client.get(self.info["name"]).info
        return self

    def predict(self, rows) -> list:
        """Call the live endpoint directly (V2 protocol) with the endpoint's key (or, in a listing that holds no
        key, your hub token); returns the first output's data."""
        return self.client.predict_url(self.info["infer_url"], _rows(rows), key=self.info.get("api_key"))

    def rotate_key(self) -> "Deployment":
        """A new API key for the endpoint (in `api_key`); the old one stops working at once."""
        self.info = self.client.rotate_key(self.info["name"]).info
        return self

    def set_public(self, public: bool) -> "Deployment":
        """True: anyone may call the endpoint without a credential. False (the default): only with its key or
        your hub token."""
        self.info = self.client.set_public(self.info["name"], public).info
        return self

    def redeploy(self, model, sample=None, **kw) -> "Deployment":
        return self.client.deploy(model, self.info["name"], sample=sample, new_version=True, **kw)

    def rollback(self, wait: bool = True) -> "Deployment":
        d = self.client.rollback(self.info["name"], wait=wait)
        self.info = d.info
        return self

    def delete(self) -> None:
        self.client.delete(self.info["name"])


class DeployClient(ApiClient):
    """Deployments of this notebook's user, through the notebook server's /odh/api/deployments."""

    def __init__(self, *a, bucket: str | None = None, s3=None, **kw):
        super().__init__(*a, **kw)
        self.bucket = bucket or os.environ.get("ODH_MODELS_BUCKET", "")
        self._s3 = s3

    @property
    def s3(self):
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
                                    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
        return self._s3

    def _url(self, *parts: str) -> str:
        return "/".join([self.api, "deployments", *parts])

    # -- queries -----------------------------------------------------------------------------
    def list(self) -> list[Deployment]:
        return [Deployment(d, self) for d in self._json("GET", self._url())["deployments"]]

    def get(self, name: str) -> Deployment:
        return Deployment(self._json("GET", self._url(name)), self)

    # -- the one-click path ------------------------------------------------------------------
    def deploy(self, model, name: str, *, sample=None, new_version: bool | None = None, wait: bool = True,
               timeout: float = 300, progress: Callable[[str, dict | None], None] | None = None) -> Deployment:
        """Serialise, upload, deploy and wait until ready; then run `sample` (or a zero row) against the URL.
        `new_version`: None deploys a new version when the name exists, True requires it, False refuses it."""
        report = progress or (lambda stage, info: None)
        exists = self._exists(name)
        if exists and new_version is False:
            raise DeployError(409, f"You already have a deployment named {name!r}.")
        if not exists and new_version:
            raise DeployError(404, f"You have no deployment named {name!r} to add a version to.")
        report("uploading", None)
        uri, framework, example, digests = self.upload(model, name, sample)
        body = {"model_uri": uri, "framework": framework, "example_input": example, "model_sha256": digests}
        try:
            if exists:
                info = self._json("POST", self._url(name, "versions"), json=body)
            else:
                info = self._json("POST", self._url(), json={"name": name, **body})
        except OdhApiError:
            self._remove_upload(uri)
            raise
        d = Deployment(info, self)
        if not wait:
            return d
        target = info["target_version"]
        d = self.wait(name, target, timeout=timeout, progress=report, cleanup_on_failure=not exists)
        return d

    def wait(self, name: str, version: int, timeout: float = 300,
             progress: Callable[[str, dict | None], None] | None = None,
             cleanup_on_failure: bool = False) -> Deployment:
        report = progress or (lambda stage, info: None)
        deadline, seen = time.monotonic() + timeout, None
        while True:
            info = self._json("GET", self._url(name))
            if info["stage"] != seen:
                seen = info["stage"]
                report(seen, info)
            if info["stage"] == "ready" and info["version"] == version:
                return Deployment(info, self)
            if info["stage"] == "failed":
                if cleanup_on_failure:  # a failed first deploy leaves nothing behind
                    self.delete(name)
                raise DeployError(502, info.get("last_error") or "the deployment failed", info.get("log_tail"))
            if time.monotonic() > deadline:
                raise DeployError(504, f"Deployment {name!r} was not ready within {timeout:.0f} s "
                                       f"(stage {info['stage']}).")
            time.sleep(0.25)

    def upload(self, model, name: str, sample=None) -> tuple[str, str, list | None, dict[str, str]]:
        """Serialise and upload the model to your models bucket: (model_uri, framework, example input, the
        SHA-256 of every uploaded file by its key under model_uri). The platform loads the model only if the
        files it downloads have these digests."""
        if not self.bucket:
            raise DeployError(400, "No models bucket: run inside an odh-hub notebook server, or pass bucket=.")
        with tempfile.TemporaryDirectory(prefix="odh-deploy-") as folder:
            framework, files = serialize(model, folder)
            example = _rows(sample)
            if example is None and framework == "sklearn" and getattr(model, "n_features_in_", 0):
                example = [[0.0] * int(model.n_features_in_)]
            prefix = f"{MANAGED_PREFIX}{name}/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}/"
            try:
                ensure_bucket(self.s3, self.bucket, message=models_bucket_not_yours)
            except BadRequest as e:
                raise DeployError(e.status_code, str(e)) from None
            digests = {}
            for path, key in files:
                digests[key] = sha256_of(path)
                self.s3.upload_file(path, self.bucket, prefix + key)
        return f"s3://{self.bucket}/{prefix}", framework, example, digests

    # -- other actions -----------------------------------------------------------------------
    def rollback(self, name: str, wait: bool = True, timeout: float = 300) -> Deployment:
        info = self._json("POST", self._url(name, "rollback"))
        return self.wait(name, info["target_version"], timeout) if wait else Deployment(info, self)

    def delete(self, name: str) -> None:
        self._json("DELETE", self._url(name))

    def test(self, name: str, rows=None) -> dict:
        """A prediction through the platform (with the stored example when rows is None)."""
        return self._json("POST", self._url(name, "predict"),
                          json={"inputs": _rows(rows)} if rows is not None else {})

    def rotate_key(self, name: str) -> Deployment:
        return Deployment(self._json("POST", self._url(name, "key")), self)

    def set_public(self, name: str, public: bool) -> Deployment:
        if not isinstance(public, bool):
            raise DeployError(400, "public must be True or False.")
        return Deployment(self._json("PATCH", self._url(name), json={"public": public}), self)

    def predict_url(self, url: str, rows: list, key: str | None = None) -> list:
        """POST an Open Inference Protocol request to a deployment's URL with its key (else this server's hub
        token); the first output's data."""
        credential = key or self.token
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        r = requests.post(url, json=v2_request(rows), headers=headers, timeout=self.timeout)
        if r.status_code != 200:
            raise DeployError(r.status_code, f"the model answered {r.status_code}: {r.text[:300]}")
        return r.json()["outputs"][0]["data"]

    # -- helpers -----------------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except OdhApiError as e:
            if e.status == 404:
                return False
            raise

    def _remove_upload(self, uri: str) -> None:
        bucket, _, prefix = uri[len("s3://"):].partition("/")
        delete_prefix(self.s3, bucket, prefix)


def v2_request(rows: list) -> dict:
    flat = [x for r in rows for x in r]
    dtype = "FP64" if any(isinstance(x, float) for x in flat) else "INT64"
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0]) if rows else 0],
                        "datatype": dtype, "data": flat}]}


def deploy(model, name: str, *, sample=None, **kw) -> Deployment:
    """One call: serialise, upload to your bucket, deploy (or add a version), wait until ready, then run a
    test prediction against the live URL (with `sample`, else a row of zeros). Prints the stages."""
    client = DeployClient()

    def show(stage: str, info: dict | None) -> None:
        print(f"[{stage}]", flush=True)

    d = client.deploy(model, name, sample=sample, progress=kw.pop("progress", show), **kw)
    rows = _rows(sample)
    if rows is None and getattr(model, "n_features_in_", 0):
        rows = [[0.0] * int(model.n_features_in_)]
    if rows:
        d.info["notebook_test"] = {"inputs": rows, "outputs": d.predict(rows)}
        print(f"test prediction: {rows[:3]} -> {d.info['notebook_test']['outputs'][:3]}")
    print(f"endpoint: {d.infer_url}" + (" (public)" if d.info.get("public") else ""))
    if d.info.get("example_request"):
        print(f"example request:\n{redacted_curl(d.info)}")
        if not d.info.get("public"):
            print("(the key is in d.api_key: export it as ODH_MODEL_KEY; it is not printed)")
    return d


def redacted_curl(info: dict) -> str:
    """The example request's curl line with the API key replaced by $ODH_MODEL_KEY (for printed output)."""
    curl = (info.get("example_request") or {}).get("curl", "")
    key = info.get("api_key")
    return curl.replace(f"'Authorization: Bearer {key}'", '"Authorization: Bearer $ODH_MODEL_KEY"') if key else curl
