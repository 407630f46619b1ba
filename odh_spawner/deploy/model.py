"""Deployments of models, as data: names, versions, states, the JSON the API answers with. Pure.

A deployment belongs to a hub user (its owner), not to a notebook server. It has numbered versions; one
of them is served at a time. Redeploying adds a version and switches to it once it is ready; rolling back
switches to the previous good version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

from odh_spawner.errors import OdhError

NAME_MAX = 40
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
FRAMEWORKS = ("sklearn", "mlflow")

# API states (Seldon's status.state vocabulary) and the stages a user watches
CREATING, AVAILABLE, FAILED, DELETING, RETIRED = "Creating", "Available", "Failed", "Deleting", "Retired"
STAGES = ("uploading", "creating", "starting", "ready")
KEY_PREFIX = "odhk_"  # tells a deployment API key from a hub token in an Authorization header


def new_api_key() -> str:
    """A fresh per-deployment API key: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_matches(presented: str, digest: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored key's digest."""
    return bool(digest) and hmac.compare_digest(key_digest(presented), digest)


class DeployError(OdhError):
    """A deployment request cannot be done. The message is safe to show the user."""

    status_code = 400

    def __init__(self, message: str, *, log_tail: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail or []


class DeploymentNotFound(DeployError):
    status_code = 404


class DeploymentExists(DeployError):
    status_code = 409


class ModelTooLarge(DeployError):
    status_code = 413


class DeployForbidden(DeployError):
    status_code = 403


class BackendFailed(DeployError):
    """The serving backend could not serve the model (it failed to load, exited, or timed out)."""

    status_code = 502


def validate_name(name) -> str:
    """A deployment name: a DNS-1123 label of at most NAME_MAX characters (it names Kubernetes objects)."""
    if not isinstance(name, str) or not name:
        raise DeployError("A deployment needs a name, e.g. \"churn\".")
    if len(name) > NAME_MAX:
        raise DeployError(f"Deployment name {name[:60]!r} is too long: at most {NAME_MAX} characters.")
    if not _NAME.fullmatch(name):
        raise DeployError(f"Deployment name {name[:60]!r} is not DNS-safe: use lowercase letters, digits and "
                          "'-', starting with a letter and not ending with '-' (e.g. \"churn-v2\").")
    return name


def validate_framework(framework) -> str:
    if framework not in FRAMEWORKS:
        raise DeployError(f"Unsupported model framework {str(framework)[:40]!r}: odh-hub deploys "
                          f"{' and '.join(FRAMEWORKS)} models.")
    return framework


def parse_model_uri(uri) -> tuple[str, str]:
    """s3://bucket/prefix/ -> (bucket, prefix without leading '/', ending in '/')."""
    if not isinstance(uri, str):
        raise DeployError("`model_uri` must be a string like s3://bucket/path/.")
    u = urlparse(uri)
    if u.scheme != "s3" or not u.netloc:
        raise DeployError(f"`model_uri` {uri[:200]!r} must be an s3:// URI of the folder holding the model, "
                          "in one of your buckets.")
    prefix = u.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return u.netloc, prefix


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def validate_digests(digests) -> dict | None:
    """The model files' SHA-256 digests as uploaded: {file under model_uri: 64 lowercase hex digits}, or None."""
    if digests is None:
        return None
    if not isinstance(digests, dict) or not digests or len(digests) > 10_000:
        raise DeployError("The model_sha256 field must map each uploaded file (its key under model_uri) to its SHA-256, "
                          "e.g. {\"model.joblib\": \"<64 hex digits>\"}.")
    for rel, digest in digests.items():
        if (not isinstance(rel, str) or not rel or len(rel) > 1024 or rel.startswith("/") or "\0" in rel
                or ".." in rel.split("/")):
            raise DeployError(f"The model_sha256 field names an invalid file {str(rel)[:80]!r}.")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise DeployError(f"The SHA-256 of {rel[:80]!r} must be 64 lowercase hex digits.")
    return dict(digests)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Version:
    version: int
    model_uri: str
    framework: str
    created: str = field(default_factory=now)
    state: str = CREATING
    example_input: list | None = None
    error: str | None = None
    sha256: dict | None = None  # {file under model_uri: hex SHA-256} recorded at upload; None in older records


@dataclass
class Deployment:
    owner: str
    name: str
    versions: list[Version] = field(default_factory=list)
    serving: int = 0  # version number served; 0 while none is ready
    target: int = 0  # version being brought up (== serving when settled)
    state: str = CREATING
    stage: str = "creating"
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    last_error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    restarts: int = 0
    url: str | None = None  # the stable endpoint base the user calls
    upstream: str | None = None  # where the model server answers (the model gateway forwards there)
    model_name: str = ""  # the name the inference server knows the model by
    test_prediction: dict | None = None
    backend: str = "local"
    runtime: dict = field(default_factory=dict)  # backend bookkeeping (pids, ports, object names)
    api_key: str = ""  # the endpoint's key (the owner may see, rotate and share it); never logged
    public: bool = False  # the owner made the endpoint answer without credentials

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.name)

    def version_of(self, number: int) -> Version:
        for v in self.versions:
            if v.version == number:
                return v
        raise DeploymentNotFound(f"Deployment {self.name!r} has no version {number}.")

    def add_version(self, model_uri: str, framework: str, example_input: list | None = None,
                    sha256: dict | None = None) -> Version:
        v = Version(max((x.version for x in self.versions), default=0) + 1, model_uri, framework,
                    example_input=example_input, sha256=sha256)
        self.versions.append(v)
        self.target = v.version
        self.touch(CREATING, "creating")
        return v

    def rollback_target(self) -> Version:
        """The newest good version before the one served."""
        older = [v for v in self.versions if v.version < self.serving and v.state in (AVAILABLE, RETIRED)]
        if not self.serving or not older:
            raise DeployError(f"Deployment {self.name!r} has no earlier working version to roll back to.")
        return max(older, key=lambda v: v.version)

    def touch(self, state: str | None = None, stage: str | None = None) -> None:
        if state:
            self.state = state
        if stage:
            self.stage = stage
        self.updated = now()

    @property
    def infer_url(self) -> str | None:
        return f"{self.url}/v2/models/{self.model_name}/infer" if self.url else None

    def auth_headers(self) -> dict:
        """The header that authorises a call of the endpoint with the deployment's key (none when public)."""
        return {} if self.public or not self.api_key else {"Authorization": f"Bearer {self.api_key}"}

    def example_request(self, with_key: bool = True) -> dict | None:
        """A V2 (Open Inference Protocol) request body, its headers and a curl line for the served version.
        With `with_key` the headers carry the deployment's key; otherwise a placeholder ($ODH_MODEL_KEY)."""
        if not self.url or not self.serving:
            return None
        example = self.version_of(self.serving).example_input
        if not example:
            return None
        body = v2_request(example)
        headers = {"Content-Type": "application/json"}
        if not self.public:
            headers["Authorization"] = f"Bearer {self.api_key if with_key else '$ODH_MODEL_KEY'}"
        quoted = " ".join(f"-H '{k}: {v}'" if "$" not in v else f'-H "{k}: {v}"' for k, v in headers.items())
        curl = f"curl -s -X POST {self.infer_url} {quoted} -d '{json.dumps(body, separators=(',', ':'))}'"
        return {"url": self.infer_url, "headers": headers, "body": body, "curl": curl}

    def to_api(self, with_key: bool = False) -> dict:
        """What the REST API answers (no backend bookkeeping). The API key (and the example request carrying
        it) only `with_key`: the owner's detail, rotate and create answers; listings show a placeholder."""
        current = self.version_of(self.serving) if self.serving else (self.versions[-1] if self.versions else None)
        return {
            "name": self.name, "owner": self.owner, "state": self.state, "stage": self.stage,
            "url": self.url, "infer_url": self.infer_url,
            "model_uri": current.model_uri if current else None,
            "framework": current.framework if current else None,
            "version": self.serving, "target_version": self.target,
            "versions": [{k: v for k, v in asdict(x).items() if k != "example_input"} for x in self.versions],
            "created": self.created, "updated": self.updated, "last_error": self.last_error,
            "log_tail": list(self.log_tail), "restarts": self.restarts, "backend": self.backend,
            "example_request": self.example_request(with_key), "test_prediction": self.test_prediction,
            "public": self.public, "auth": "none (public)" if self.public else "owner's hub token or API key",
            **({"api_key": self.api_key} if with_key else {}),
        }

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Deployment":
        data = dict(data)
        data["versions"] = [Version(**v) for v in data.get("versions", [])]
        return cls(**data)


def v2_request(rows: list) -> dict:
    """An Open Inference Protocol request for a batch of numeric rows."""
    rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in rows]
    width = len(rows[0]) if rows else 0
    flat = [x for r in rows for x in r]
    dtype = "FP64" if any(isinstance(x, float) for x in flat) else "INT64"
    return {"inputs": [{"name": "input-0", "shape": [len(rows), width], "datatype": dtype, "data": flat}]}


def validate_rows(rows) -> list:
    """Inputs for a prediction: a non-empty list of equally long rows of numbers."""
    if not isinstance(rows, list) or not rows or len(rows) > 10_000:
        raise DeployError("Inputs must be a non-empty list of rows (lists of numbers), at most 10,000 rows.")
    width = None
    for r in rows:
        r = r if isinstance(r, list) else [r]
        if not r or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in r):
            raise DeployError("Inputs must contain only numbers, e.g. [[5.1, 3.5, 1.4, 0.2]].")
        if width is not None and len(r) != width:
            raise DeployError("All input rows must have the same length.")
        width = len(r)
    return rows
