"""Secret scan: no secret the platform hands out may appear in a log, a progress event or an API answer.

A pytest plugin (listed in tests/conftest.py `pytest_plugins`). It keeps a session registry of secrets and a
bounded record of the HTTP answers the tests receive; `tests/<layer>/test_zz_secret_scan.py`, the last test of each
layer (unit, integration, browser; `scan_layer`), scans everything at the end of that layer.

Where secrets come from
- `register_secret(value, kind)`: any fixture or test that learns a secret.
- `register_env(env, source)`: every environment a test reads (`tests.support.fixtures.process_env`); the
  values of secret-named variables (see `is_secret_name`).
- At scan time (`harvest`):
  * every RGW user's secret keys, through the Admin Ops API with the admin keys of each Ceph cluster of the
    session (its `admin-keys.json`) whose gateway still answers;
  * the environment of every process below each live hub of the session (proxy, platform service, idle
    culler, notebook servers, kernels, Spark daemons, model servers): found by the `jupyterhub.pid` the hub
    writes into its state directory;
  * state files, by the glob table `SECRET_FILES` (relative to each scan root, `**` allowed): the hub's
    `hub-settings.json` (proxy auth token), `jupyterhub_cookie_secret`, Ceph's admin keys and keyring, Spark
    clusters' `auth-secret`, state and configuration, deployment records (`api_key`), the notebook servers'
    cookie secrets, kernel connection files and server info files in the users' homes, and any file named
    `*secret*`, `*.key`, `*-keys.json` or `*token*`. JSON files give the values of secret-named keys at any depth; `key = value`, `key: value`
    and `key value` lines likewise; a one-line file named like a secret gives its whole content.
    Add a row with `register_secret_file(glob, kind)`;
  * `register_harvester(fn)`: `fn(roots) -> iterable of (value, kind)`, called at scan time, for secrets that
    live anywhere else (per-cluster Spark auth secrets, per-deployment endpoint keys, ...).

What is scanned
- every text file under test-artifacts/ (images, archives, databases and any file with a NUL byte skipped);
- every log file under the scan roots (the session's pytest base temp directory, which holds every hub,
  Ceph, Spark and model-server state directory the fixtures create, plus `register_scan_root(path)`):
  names matching `LOG_FILES` (`*.log`, rotated logs, `*.out`, `*.err`, `stdout`, `stderr`);
- the recorded HTTP answers (`record_response`): every answer a test receives through `requests`
  (`observe_requests`, set up when the plugin loads: hubclient, raw requests calls, the server_extension clients,
  Schemathesis), progress events, and every answer a browser context of the browser layer receives
  (`record_browser_answers`): API bodies, the spawn form, progress events. Answers meant to show a secret to its owner are not recorded: `ALLOWED_RESPONSES`
  (method, path regex, why); add one with `allow_response`.

Logs and state files that are removed before the end (a deleted deployment's mlserver.log, a stopped Spark
cluster's directory, a test's private hub) are caught by `Watcher`, a thread that looks at the scan roots
every second while integration tests run, harvesting secret files and keeping copies of changed logs.

Each secret is looked for as is, URL-encoded and base64-encoded (at any alignment). A finding names the file
(or answer), line, kind and a snippet with every known secret replaced by `[kind]`: the secret itself is
never printed.
"""

from __future__ import annotations

import base64
import collections
import fnmatch
import glob
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pytest

# ---------------------------------------------------------------------------------------------- pure part

MIN_SECRET_LEN = 8
MIN_ENCODED_LEN = 12  # an encoded fragment shorter than this could match by chance

_SECRET_WORDS = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|KEY", re.I)
# names of places, names and properties of a secret, never the secret itself
_ABOUT_A_SECRET = re.compile(r"(_|^)(FILE|PATH|DIR|URL|URI|NAME|REF|TYPE|SCOPES?|EXPIRES?(_AT|_IN)?|COUNT|ENV|ID)S?$|"
                             r"_(FILE|PATH|DIR)_", re.I)
# KEY names that are no secret: key ids (the public half of a key pair), public keys, object and sort keys
_NOT_A_SECRET_KEY = re.compile(r"ACCESS[_.]?KEY|KEY[_.]?ID|PUBLIC|GPG_KEY|KEYRING|KEYBOARD|OBJECT_?KEY|KEY_?PREFIX|"
                               r"SORT_?KEY|PRIMARY_?KEY", re.I)  # (also Hadoop's dotted fs.s3a.access.key)


def is_secret_name(name: str) -> bool:
    """A variable or field whose value is a secret: its name has SECRET, TOKEN, PASSWORD, PASSWD or
    CREDENTIAL in it (AWS_SECRET_ACCESS_KEY, JUPYTERHUB_API_TOKEN, JPY_API_TOKEN, proxy_auth_token), or KEY
    (secret_key, endpoint_key), except names of a place, name or property of a secret (..._FILE, _PATH, _DIR,
    _URL, _NAME, _ID, _TYPE, _SCOPES, _EXPIRES_AT, ...: ODH_RGW_ADMIN_KEYS_FILE, secret_name) and KEY names
    that are public by design (AWS_ACCESS_KEY_ID and RGW's access_key, public keys, GPG_KEY, object keys)."""
    if not _SECRET_WORDS.search(name) or _ABOUT_A_SECRET.search(name):
        return False
    if re.search(r"SECRET|TOKEN|PASSW|CREDENTIAL", name, re.I):
        return True
    return not _NOT_A_SECRET_KEY.search(name)


def is_secret_value(value) -> bool:
    """Worth looking for: a string of at least MIN_SECRET_LEN characters, one word, not a path, URL or number,
    and not a plain lowercase word: that is a field or key name standing where a value goes (a Secret's key
    `credentials` under a secret-named field), which every log says in plain words; generated secrets and
    passwords carry digits, capitals or punctuation."""
    return (isinstance(value, str) and len(value) >= MIN_SECRET_LEN and not re.search(r"\s", value)
            and not value.startswith(("/", "./", "~")) and "://" not in value and not value.isdigit()
            and value.lower() not in ("true", "false", "none", "null") and not re.fullmatch(r"[a-z]+", value))


def needles(secret: str) -> list[tuple[bytes, str]]:
    """The byte strings that betray `secret`: as is, URL-encoded, and base64 (standard and URL-safe alphabet)
    at each of the three alignments it can have inside a longer encoded text."""
    raw = secret.encode()
    out = [(raw, "plain")]
    quoted = urllib.parse.quote(secret, safe="").encode()
    if quoted != raw:
        out.append((quoted, "url-encoded"))
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw)
        start, end = -(-8 * k // 6), 8 * (k + len(raw)) // 6  # characters that depend on the secret alone
        fragment = enc[start:end]
        if len(fragment) >= MIN_ENCODED_LEN:
            out.append((fragment, "base64"))
            safe = fragment.replace(b"+", b"-").replace(b"/", b"_")
            if safe != fragment:
                out.append((safe, "base64url"))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Leak:
    source: str  # a file path or "answer: METHOD URL"
    line: int
    kind: str
    form: str  # plain, url-encoded, base64, base64url
    count: int
    snippet: str  # redacted

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind} ({self.form}, {self.count}x): {self.snippet}"


def redact(text: bytes, secrets: dict[str, str]) -> str:
    """`text` with every form of every known secret replaced by `[kind]`."""
    for secret, kind in sorted(secrets.items(), key=lambda kv: -len(kv[0])):
        for needle, _ in needles(secret):
            text = text.replace(needle, f"[{kind}]".encode())
    return text.decode("utf-8", "replace").replace("\n", "\\n").replace("\r", "\\r")


def find_leaks(texts: Iterable[tuple[str, bytes | str]], secrets: dict[str, str], context: int = 40) -> list[Leak]:
    """Every (source, secret, form) where a secret of `secrets` ({value: kind}) occurs in a text of `texts`
    ((source, text) pairs), with the first occurrence's line and a redacted snippet around it."""
    forms = [(needle, form, secret, kind) for secret, kind in secrets.items() if len(secret) >= MIN_SECRET_LEN
             for needle, form in needles(secret)]
    leaks = []
    for source, text in texts:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        for needle, form, secret, kind in forms:
            at = data.find(needle)
            if at < 0:
                continue
            snippet = redact(data[max(0, at - context):at + len(needle) + context], secrets)
            leaks.append(Leak(source, data.count(b"\n", 0, at) + 1, kind, form, data.count(needle), snippet))
    return leaks


def secrets_in_mapping(data, kind: str, name: str = "") -> list[tuple[str, str]]:
    """(value, kind) for every secret-named key's string value in a JSON-like structure, at any depth."""
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, (dict, list)):
                found += secrets_in_mapping(v, kind, str(k))
            elif is_secret_name(str(k)) and is_secret_value(v):
                found.append((v, kind))
    elif isinstance(data, list):
        for v in data:
            if isinstance(v, (dict, list)):
                found += secrets_in_mapping(v, kind, name)
            elif name and is_secret_name(name) and is_secret_value(v):
                found.append((v, kind))
    return found


_LINE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:=|:|\s)\s*[\"']?(\S+?)[\"']?\s*$")


def secrets_in_text_file(text: str, filename: str, kind: str) -> list[tuple[str, str]]:
    """Secrets of a state file's text: JSON (secret-named keys), a one-line file named like a secret (its whole
    content), or `key = value` / `key: value` / `key value` lines (secret-named keys)."""
    try:
        return secrets_in_mapping(json.loads(text), kind)
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";", "["))]
    if len(lines) == 1 and is_secret_name(filename) and is_secret_value(lines[0].strip()):
        return [(lines[0].strip(), kind)]
    found = []
    for line in lines:
        m = _LINE.match(line)
        if m and is_secret_name(m.group(1)) and is_secret_value(m.group(2)):
            found.append((m.group(2), kind))
    return found


# ------------------------------------------------------------------------------------------ the registry

# (glob relative to a scan root, kind): state files whose secrets are harvested at scan time
SECRET_FILES: list[tuple[str, str]] = [
    ("**/hub-settings.json", "proxy-auth-token"),
    ("**/jupyterhub_cookie_secret", "cookie-secret"),
    ("**/admin-keys.json", "rgw-admin-secret"),
    ("**/keyring", "ceph-key"),
    ("**/spark-clusters/*/auth-secret", "spark-secret"),  # a cluster's spark.authenticate secret
    ("**/spark-clusters/**/spark-defaults.conf", "spark-secret"),  # the notebook driver's copy
    ("**/spark-clusters/*/spark-cluster.json", "spark-secret"),
    ("**/spark-clusters/*/conf/*", "spark-secret"),
    ("**/platform/deployments/**/*.json", "endpoint-key"),  # a deployment record's api_key
    ("**/jupyter/runtime/jupyter_cookie_secret", "notebook-cookie-secret"),  # under the users' homes
    ("**/jupyter/runtime/kernel-*.json", "kernel-key"),  # a kernel's message-signing key
    ("**/jupyter/runtime/jpserver-*.json", "notebook-token"),
    ("**/*secret*", "secret-file"),
    ("**/*.key", "secret-file"),
    ("**/*-keys.json", "secret-file"),
    ("**/*token*", "secret-file"),
]
# names of log files under the scan roots
LOG_FILES = ("*.log", "*.log.[0-9]*", "*.out", "*.err", "stdout", "stderr", "*.stdout", "*.stderr")
# artefacts that are not text
BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webm", ".mp4", ".zip", ".gz", ".tgz", ".whl", ".sqlite",
                   ".db", ".bin", ".pdf", ".joblib", ".pkl", ".parquet", ".jar")
# (method or "*", path regex, why): answers that show a secret to its owner on purpose, so are not recorded
ALLOWED_RESPONSES: list[tuple[str, str, str]] = [
    ("POST", r"/hub/api/users/[^/]+/tokens/?$", "a new API token is shown once to the user who asked for it"),
    # a deployment's endpoint key is in the answers about that one deployment, to its owner (platform service,
    # and the notebook server forwarding it): detail, create, new version, rollback, key rotation
    ("POST", r"/(odh/api|api)/deployments/?$", "a new deployment's answer holds its endpoint key"),
    ("*", r"/(odh/api|api)/deployments/[^/]+(/key|/rollback|/versions)?/?$", "one deployment, to its owner"),
    # RGW's Admin Ops API exists to hand out keys: to the platform, to tests that check credentials, and to the
    # scan's own harvest (every `requests` answer is recorded)
    ("*", r"^/admin/(user|metadata/user)/?$", "RGW Admin Ops: a user's keys, to the admin"),
]
MAX_RECORDED_BYTES = 32 * 2**20
MAX_ANSWER_BYTES = 256 * 2**10
MAX_FILE_BYTES = 512 * 2**20


@dataclass
class Registry:
    secrets: dict[str, str] = field(default_factory=dict)  # value -> kind
    answers: collections.deque = field(default_factory=collections.deque)  # (source, bytes)
    answer_bytes: int = 0
    answers_dropped: int = 0
    answers_spilled: int = 0  # moved from memory to the spill file (scanned there)
    roots: list[str] = field(default_factory=list)
    harvesters: list[Callable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be harvested, for the report
    browser_answers: int = 0  # answers recorded from browser contexts
    browser_missed: int = 0  # browser answers whose body could not be read


REGISTRY = Registry()


def register_secret(value, kind: str) -> None:
    """A secret the platform handed out (a value too short or path-like to search for is ignored)."""
    if is_secret_value(value):
        REGISTRY.secrets.setdefault(value, kind)


def register_env(env: dict[str, str], source: str = "") -> None:
    """The secrets of a process environment: the values of secret-named variables (`is_secret_name`)."""
    for name, value in env.items():
        if is_secret_name(name):
            register_secret(value, _env_kind(name))


def _env_kind(name: str) -> str:
    n = name.upper()
    if n in ("AWS_SECRET_ACCESS_KEY",) or "S3" in n:
        return "s3-secret"
    if n in ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"):
        return "hub-token"
    if n == "CONFIGPROXY_AUTH_TOKEN":
        return "proxy-auth-token"
    if "SPARK" in n:
        return "spark-secret"
    return f"env:{name}"


def register_scan_root(path: str) -> None:
    """A directory (outside the pytest base temp) whose logs and state files the scan covers too."""
    if path not in REGISTRY.roots:
        REGISTRY.roots.append(path)


def register_secret_file(pattern: str, kind: str) -> None:
    """A glob (relative to each scan root) of state files holding secrets (parsed as `secrets_in_text_file`)."""
    SECRET_FILES.append((pattern, kind))


def register_harvester(fn: Callable[[list[str]], Iterable[tuple[str, str]]]) -> None:
    """`fn(roots)` returns (value, kind) pairs; called at scan time."""
    REGISTRY.harvesters.append(fn)


def allow_response(method: str, path_regex: str, why: str) -> None:
    """An answer that shows a secret to its owner on purpose (e.g. a deployment's endpoint key): not recorded."""
    ALLOWED_RESPONSES.append((method.upper(), path_regex, why))


def response_allowed(method: str, url: str) -> bool:
    path = urllib.parse.urlsplit(url).path
    return any(m in ("*", method.upper()) and re.search(rx, path) for m, rx, _ in ALLOWED_RESPONSES)


def record_response(method: str, url: str, body: bytes | str, status: int | None = None) -> None:
    """Keep an answer's body (bounded: the oldest go first) to scan at the end, unless allow-listed."""
    if response_allowed(method, url):
        return
    data = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body or b"")
    data = data[:MAX_ANSWER_BYTES]
    REGISTRY.answers.append((f"answer: {method.upper()} {url} -> {status}", data))
    REGISTRY.answer_bytes += len(data)
    while REGISTRY.answer_bytes > MAX_RECORDED_BYTES and REGISTRY.answers:
        source, old = REGISTRY.answers.popleft()
        REGISTRY.answer_bytes -= len(old)
        if _spill(source, old):
            REGISTRY.answers_spilled += 1
        else:
            REGISTRY.answers_dropped += 1


SPILL_NAME = "spilled-answers.txt"  # not named like a log: the watcher does not copy it, the scan reads it once
_CONFIG = None  # the pytest config of the session (for its base temp directory)


def spill_path() -> str | None:
    """Where answers that do not fit in memory go (under the session's base temp), or None outside pytest."""
    if _CONFIG is None:
        return None
    return os.path.join(str(_CONFIG._tmp_path_factory.getbasetemp()), "secretscan-answers", SPILL_NAME)


def _spill(source: str, data: bytes) -> bool:
    """Append an answer that leaves the in-memory record to the spill file, which the scan reads: a long
    session's early answers are scanned too (a leak found there names the line of its `answer:` header + 1)."""
    path = spill_path()
    if path is None:
        return False
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab") as f:
            f.write(source.encode("utf-8", "replace") + b"\n" + data.replace(b"\n", b"\\n") + b"\n")
    except OSError:
        return False
    return True


def record_requests_response(r, *args, **kwargs) -> None:
    """A `requests` response hook (`session.hooks["response"].append(...)` or `hooks={"response": ...}`): keep
    the body for the scan, once per response. Event streams are endless (their reader records each event); a
    body longer than MAX_ANSWER_BYTES is a download, not an answer."""
    if getattr(r, "_secretscan_recorded", False):
        return
    r._secretscan_recorded = True
    if r.headers.get("Content-Type", "").startswith("text/event-stream"):
        return
    if int(r.headers.get("Content-Length") or 0) > MAX_ANSWER_BYTES:
        return
    record_response(r.request.method, r.url, r.content, r.status_code)


def observe_requests() -> None:
    """Every answer any test receives through `requests` (requests.get/post..., sessions, the clients of
    server_extension, Schemathesis's calls) joins the scan: `requests.Session.send` is wrapped once per
    session to record each answer (redirect hops included). A streamed answer (stream=True) is recorded only
    when its Content-Length says it is short, so an event stream or a download is never read here (reading
    a short one caches it: the caller's iter_content still gets every byte)."""
    import requests.sessions

    original = requests.sessions.Session.send
    if getattr(original, "_secretscan", False):
        return

    def send(self, request, **kwargs):
        r = original(self, request, **kwargs)
        length = r.headers.get("Content-Length", "")
        if not kwargs.get("stream") or (length.isdigit() and int(length) <= MAX_ANSWER_BYTES):
            record_requests_response(r)
        return r

    send._secretscan = True
    requests.sessions.Session.send = send


# the answers a browser receives: JSON anywhere, and anything from an API path (pages, scripts, styles and
# images are not answers; a page that shows a secret to its owner would be allow-listed like an API answer)
BROWSER_API_PATHS = re.compile(r"/api/|/odh/api/|/v2/models/")


def record_browser_answers(context) -> None:
    """Feed every answer a Playwright (sync) browser context receives to the scan: call it on each context a
    test opens (tests/browser/conftest.py does for its `page` fixture)."""

    def on_finished(request) -> None:
        try:
            response = request.response()
            if response is None or 300 <= response.status < 400 or response.status == 204 or request.method == "HEAD":
                return  # a redirect, a 204 or a HEAD answer has no body to read
            headers = response.headers
            kind = headers.get("content-type", "")
            if kind.startswith("text/event-stream") or int(headers.get("content-length") or 0) > MAX_ANSWER_BYTES:
                return
            if "json" not in kind and not BROWSER_API_PATHS.search(urllib.parse.urlsplit(response.url).path):
                return
            body = response.body()
        except Exception as e:  # the page went away before the body could be read: say so in the report
            REGISTRY.browser_missed += 1
            if REGISTRY.browser_missed <= 10:
                first = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
                REGISTRY.notes.append(f"browser: the body of {request.method} "
                                      f"{urllib.parse.urlsplit(request.url).path[:120]} was not readable "
                                      f"({type(e).__name__}: {first})")
            return
        REGISTRY.browser_answers += 1
        record_response(request.method, response.url, body, response.status)

    context.on("requestfinished", on_finished)


# -------------------------------------------------------------------------------------- harvest at the end

def _files(root: str, pattern: str) -> list[str]:
    """Files matching `pattern` under `root`, each once (pytest's `<name>current` links point at directories
    already seen)."""
    found = (os.path.realpath(p) for p in glob.glob(os.path.join(root, pattern), recursive=True))
    return sorted({p for p in found if os.path.isfile(p)})


def harvest_file(path: str, kind: str) -> None:
    try:
        if os.path.getsize(path) > 2**20 or path.endswith(BINARY_SUFFIXES):
            return
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return
    for value, k in secrets_in_text_file(text, os.path.basename(path), kind):
        register_secret(value, k)


def harvest_files(roots: list[str]) -> None:
    for root in roots:
        for pattern, kind in SECRET_FILES:
            for path in _files(root, pattern):
                harvest_file(path, kind)


def harvest_rgw(roots: list[str]) -> None:
    """Every RGW user's secret keys, with each cluster's admin keys (Admin Ops API: list users, get user)."""
    from rgwadmin import RGWAdmin

    for root in roots:
        for path in _files(root, "**/admin-keys.json"):
            try:
                with open(path) as f:
                    admin = json.load(f)
                api = RGWAdmin(admin["access_key"], admin["secret_key"],
                               urllib.parse.urlsplit(admin["endpoint"]).netloc, secure=False, timeout=10)
                uids = api.get_users()
                for uid in uids:
                    for key in api.get_user(uid=uid).get("keys", []):
                        register_secret(key.get("secret_key"), "s3-secret")
            except Exception as e:  # a cluster stopped earlier in the session (module fixture): report, go on
                REGISTRY.notes.append(f"RGW users of {os.path.dirname(path)} not harvested: {type(e).__name__}")
                continue
            REGISTRY.notes.append(f"RGW: {len(uids)} user(s) of {admin['endpoint']} harvested")


def process_children() -> dict[int, list[int]]:
    """Every process's children, from /proc (pid -> child pids)."""
    tree: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree[ppid].append(int(entry))
    return tree


def harvest_process_trees(roots: list[str]) -> None:
    """The environments of every process below each live hub of the session (its `jupyterhub.pid`)."""
    tree = process_children()
    for root in roots:
        for pidfile in _files(root, "**/jupyterhub.pid"):
            try:
                pid = int(open(pidfile).read().strip())
                if b"jupyterhub" not in open(f"/proc/{pid}/cmdline", "rb").read():
                    continue
            except (OSError, ValueError):
                continue
            todo, seen = [pid], 0
            while todo:
                p = todo.pop()
                seen += 1
                todo += tree.get(p, [])
                try:
                    with open(f"/proc/{p}/environ", "rb") as f:
                        items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
                except OSError:
                    continue
                register_env({k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in items})
            REGISTRY.notes.append(f"environments of {seen} process(es) under hub pid {pid} harvested")


def harvest(roots: list[str]) -> None:
    harvest_files(roots)
    harvest_rgw(roots)
    harvest_process_trees(roots)
    for fn in REGISTRY.harvesters:
        for value, kind in fn(roots):
            register_secret(value, kind)


# ------------------------------------------------------------------------------------- the watcher
# Deployments, Spark clusters and hubs of one test are often gone (with their directories) before the end of
# the run. While integration tests run, a thread looks at the scan roots every WATCH_INTERVAL seconds: it
# harvests secret files (SECRET_FILES) and keeps a copy of each log (LOG_FILES) that changed, so a log whose
# file was removed is still scanned (bounded by MAX_SNAPSHOT_BYTES; the latest copy of a path wins). Anything
# created and removed between two looks is missed.
WATCH_INTERVAL = 1.0
MAX_SNAPSHOT_BYTES = 64 * 2**20


class Watcher:
    def __init__(self, roots: list[str], interval: float = WATCH_INTERVAL):
        self.roots, self.interval = roots, interval
        self.seen: dict[str, tuple[float, int]] = {}
        self.snapshots: dict[str, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="secretscan-watcher", daemon=True)

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.look()
            except Exception as e:  # never let the watcher break the run; say so in the report
                REGISTRY.notes.append(f"watcher: {type(e).__name__}: {e}")

    def look(self) -> None:
        secret_globs = [("*/" + g[3:] if g.startswith("**/") else g, kind) for g, kind in SECRET_FILES]
        for root in self.roots:
            for dirpath, _, names in os.walk(root):
                for name in names:
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    if self.seen.get(path) == (st.st_mtime, st.st_size):
                        continue
                    self.seen[path] = (st.st_mtime, st.st_size)
                    rel = "/" + os.path.relpath(path, root)
                    for pattern, kind in secret_globs:
                        if fnmatch.fnmatch(rel, pattern):
                            harvest_file(path, kind)
                    if any(fnmatch.fnmatch(name, p) for p in LOG_FILES) and st.st_size <= MAX_SNAPSHOT_BYTES:
                        self._snapshot(path)

    def _snapshot(self, path: str) -> None:
        if not _is_text(path):
            return
        try:
            data = _read(path)
        except OSError:
            return
        old = self.snapshots.pop(path, b"")
        if sum(map(len, self.snapshots.values())) + len(data) <= MAX_SNAPSHOT_BYTES:
            self.snapshots[path] = data
        elif old:
            REGISTRY.notes.append(f"watcher: snapshot budget full, {path} not kept")

    def vanished(self) -> list[tuple[str, bytes]]:
        """Copies of logs whose file is gone now."""
        return [(f"{p} (removed during the run; copy taken at {WATCH_INTERVAL:g} s intervals)", d)
                for p, d in self.snapshots.items() if not os.path.exists(p)]


_WATCHER: Watcher | None = None


def pytest_runtest_setup(item) -> None:
    """Start the watcher with the first integration or browser test (the layers' folders say which): those
    layers run real components whose logs and state files come and go."""
    global _WATCHER
    if _WATCHER is None and any(f"{os.sep}{layer}{os.sep}" in str(item.fspath) for layer in ("integration", "browser")):
        basetemp = item.config._tmp_path_factory.getbasetemp()  # what the tmp_path_factory fixture returns
        _WATCHER = Watcher([str(basetemp), *REGISTRY.roots]).start()


def pytest_configure(config) -> None:
    global _CONFIG
    _CONFIG = config
    observe_requests()


def pytest_unconfigure(config) -> None:
    if _WATCHER is not None:
        _WATCHER.stop()


# ----------------------------------------------------------------------------------------------- the scan

def _is_text(path: str) -> bool:
    if path.lower().endswith(BINARY_SUFFIXES):
        return False
    try:
        with open(path, "rb") as f:
            return b"\0" not in f.read(8192)
    except OSError:
        return False


def scanned_files(artifacts: str, roots: list[str]) -> list[str]:
    files = []
    for dirpath, _, names in os.walk(artifacts):
        files += [os.path.realpath(os.path.join(dirpath, n)) for n in names]
    for root in roots:
        for pattern in LOG_FILES:
            files += _files(root, os.path.join("**", pattern))
    return sorted(p for p in set(files) if _is_text(p))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES)


@dataclass
class ScanReport:
    leaks: list[Leak]
    secrets_by_kind: dict[str, int]
    files: int
    file_bytes: int
    answers: int

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.secrets_by_kind.items()))
        notes = "".join(f"\n  {n}" for n in REGISTRY.notes)
        return (f"secret scan: {sum(self.secrets_by_kind.values())} secret(s) ({kinds}); {self.files} file(s), "
                f"{self.file_bytes / 2**20:.1f} MiB; {self.answers} answer(s) "
                f"({REGISTRY.answers_spilled} older ones scanned from {SPILL_NAME}, {REGISTRY.answers_dropped} dropped){notes}")


def run(artifacts: str, roots: list[str]) -> ScanReport:
    """Harvest, then scan test-artifacts, the logs under `roots` and the recorded answers."""
    roots = [r for r in dict.fromkeys([*roots, *REGISTRY.roots]) if os.path.isdir(r)]
    if _WATCHER is not None:
        _WATCHER.look()  # one last look, so what is there now is also in its copies
    harvest(roots)
    paths = scanned_files(artifacts, roots)
    spilled = spill_path()
    if spilled and os.path.exists(spilled) and os.path.realpath(spilled) not in paths:
        paths.append(os.path.realpath(spilled))
    vanished = _WATCHER.vanished() if _WATCHER is not None else []
    sizes = 0

    def texts():
        nonlocal sizes
        for p in paths:
            try:
                data = _read(p)
            except OSError:
                continue
            sizes += len(data)
            yield p, data
        yield from vanished
        yield from list(REGISTRY.answers)

    leaks = find_leaks(texts(), dict(REGISTRY.secrets))
    by_kind = collections.Counter(REGISTRY.secrets.values())
    return ScanReport(leaks, dict(by_kind), len(paths) + len(vanished), sizes + sum(len(d) for _, d in vanished),
                      len(REGISTRY.answers))


def scan_layer(layer: str, artifacts: str, basetemp: str) -> ScanReport:
    """The scan at the end of a test layer (tests/<layer>/test_zz_secret_scan.py, marked `scan_last`), with
    a canary planted in a log under `basetemp` and in a recorded answer first, so the report proves the scan
    reached both. Raises AssertionError (secrets shown redacted) for any leak but the canary's."""
    import secrets as _secrets

    canary = f"canary-{layer}-" + _secrets.token_hex(16)
    register_secret(canary, "canary")
    log = os.path.join(basetemp, f"secretscan-canary-{layer}", "canary.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write(f"a line\nleaked: {canary}\n")
    url = f"http://127.0.0.1/canary/{layer}"
    record_response("GET", url, f'{{"x": "{canary}"}}', 200)

    report = run(artifacts, [basetemp])
    print(f"[{layer}] {report.summary()}; browser answers {REGISTRY.browser_answers} "
          f"({REGISTRY.browser_missed} not readable)")
    canaries = {(leak.source, leak.line) for leak in report.leaks if leak.kind == "canary"}
    assert {(os.path.realpath(log), 2), (f"answer: GET {url} -> 200", 1)} <= canaries, canaries
    leaks = [leak for leak in report.leaks if leak.kind != "canary"]
    assert not leaks, f"[{layer}] secrets leaked (shown redacted):\n" + "\n".join(str(leak) for leak in leaks)
    return report


@pytest.fixture(scope="session")
def secret_registry() -> Registry:
    """The session's secret registry (for fixtures that learn a secret: `register_secret` does the same)."""
    return REGISTRY
