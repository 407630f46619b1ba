"""Python client for the notebook's bucket API (/odh/api/...), for notebook cells and scripts.

Inside a notebook it needs no arguments: it talks to its own server (JUPYTERHUB_SERVICE_URL) with the
server's token (JUPYTERHUB_API_TOKEN). Transfers stream; uploads go in parts with bounded memory.

    from odh_hub import BucketClient
    c = BucketClient()
    c.create_bucket("data")
    c.upload("data", "raw/big.csv", "big.csv")
    page = c.list_page("data", prefix="raw/")
"""

from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote

import requests

CHUNK = 1024 * 1024


class OdhApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def raise_for_answer(r: requests.Response) -> requests.Response:
    """`r`, or OdhApiError with the API's own message when it answered 4xx/5xx."""
    if r.status_code >= 400:
        try:
            message = r.json().get("message", r.reason)
        except (ValueError, AttributeError):
            message = r.reason
        raise OdhApiError(r.status_code, message)
    return r


@dataclass
class Page:
    bucket: str
    prefix: str
    folders: list[dict]
    objects: list[dict]
    next_token: str | None


class ApiClient:
    """HTTP plumbing shared by the notebook's API clients: base URL, token, JSON errors as OdhApiError."""

    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 120,
                 session: requests.Session | None = None):
        base_url = base_url or os.environ.get("JUPYTERHUB_SERVICE_URL") or os.environ.get("ODH_SERVER_URL")
        if not base_url:
            raise OdhApiError(0, "No server URL: pass base_url, or run inside a JupyterHub notebook server.")
        self.api = base_url.rstrip("/") + "/odh/api"
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout
        self.http = session or requests.Session()
        if self.token:
            self.http.headers["Authorization"] = f"token {self.token}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api!r})"

    def _check(self, r: requests.Response) -> requests.Response:
        return raise_for_answer(r)

    def _json(self, method: str, url: str, **kw):
        r = self._check(self.http.request(method, url, timeout=self.timeout, **kw))
        return r.json() if r.content else None


class BucketClient(ApiClient):
    def _url(self, bucket: str | None = None, *rest: str) -> str:
        parts = [self.api, "buckets"]
        if bucket is not None:
            parts.append(quote(bucket, safe=""))
        parts += [quote(r, safe="") for r in rest]
        return "/".join(parts)

    def list_buckets(self) -> list[dict]:
        return self._json("GET", self._url())["buckets"]

    def create_bucket(self, name: str) -> dict:
        return self._json("POST", self._url(), json={"name": name})

    def list_page(self, bucket: str, prefix: str = "", delimiter: str = "/", page_size: int = 1000,
                  token: str | None = None) -> Page:
        params = {"prefix": prefix, "delimiter": delimiter, "page_size": page_size}
        if token:
            params["continuation_token"] = token
        d = self._json("GET", self._url(bucket, "objects"), params=params)
        return Page(d["bucket"], d["prefix"], d["folders"], d["objects"], d["next_token"])

    def iter_objects(self, bucket: str, prefix: str = "", page_size: int = 1000) -> Iterator[dict]:
        """Every object under prefix (flat), one page at a time."""
        token = None
        while True:
            page = self.list_page(bucket, prefix, "", page_size, token)
            yield from page.objects
            if not page.next_token:
                return
            token = page.next_token

    def metadata(self, bucket: str, key: str) -> dict:
        return self._json("GET", self._url(bucket, "object"), params={"key": key})

    def create_folder(self, bucket: str, path: str) -> dict:
        return self._json("POST", self._url(bucket, "folders"), json={"path": path})

    def presign(self, bucket: str, key: str, expires: int = 3600) -> str:
        return self._json("GET", self._url(bucket, "presign"), params={"key": key, "expires": expires})["url"]

    def delete(self, bucket: str, key: str) -> int:
        return self._json("DELETE", self._url(bucket, "objects"), params={"key": key})["deleted"]

    def delete_prefix(self, bucket: str, prefix: str, confirm: bool = False) -> int:
        if not confirm:
            raise OdhApiError(400, "Deleting a prefix needs confirm=True.")
        return self._json("DELETE", self._url(bucket, "objects"), params={"prefix": prefix, "confirm": "true"})["deleted"]

    @staticmethod
    def s3_path(bucket: str, key: str = "") -> str:
        return f"s3://{bucket}/{key}"

    # -- transfers -----------------------------------------------------------------------------
    def download(self, bucket: str, key: str, dest: str | BinaryIO,
                 progress: Callable[[int, int], None] | None = None) -> int:
        """Stream an object to a path or binary file; returns the byte count."""
        with self.http.get(self._url(bucket, "download"), params={"key": key}, stream=True, timeout=self.timeout) as r:
            self._check(r)
            total = int(r.headers.get("Content-Length", 0))
            out = open(dest, "wb") if isinstance(dest, str) else dest
            done = 0
            try:
                for chunk in r.iter_content(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            finally:
                if isinstance(dest, str):
                    out.close()
        if done != total:
            raise OdhApiError(0, f"Download ended after {done} of {total} bytes.")
        return done

    def upload(self, bucket: str, key: str, source: str | BinaryIO, size: int | None = None,
               progress: Callable[[int, int], None] | None = None, concurrency: int = 4,
               content_type: str | None = None) -> dict:
        """Upload a path or seekable binary file in parts (resumable, MD5-checked), `concurrency` at a time."""
        f = open(source, "rb") if isinstance(source, str) else source
        try:
            if size is None:
                size = os.fstat(f.fileno()).st_size if hasattr(f, "fileno") else len(f.getvalue())
            body = {"key": key, "size": size}
            if content_type:
                body["content_type"] = content_type
            up = self._json("POST", self._url(bucket, "uploads"), json=body)
            try:
                return self._send_parts(bucket, key, f, size, up, progress, concurrency)
            except BaseException:
                self.abort_upload(bucket, key, up["upload_id"])
                raise
        finally:
            if isinstance(source, str):
                f.close()

    def _send_parts(self, bucket, key, f, size, up, progress, concurrency) -> dict:
        upload_id, part_size, n = up["upload_id"], up["part_size"], up["parts"]
        done = {"bytes": 0}
        sent: dict[int, str] = {}

        def read_part(number: int) -> bytes:
            f.seek((number - 1) * part_size)
            return f.read(part_size)

        def send(number: int, data: bytes) -> tuple[int, str]:
            md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
            d = self._json("PUT", self._url(bucket, "uploads", upload_id, "parts", str(number)),
                           params={"key": key}, data=data, headers={"Content-MD5": md5})
            return number, d["etag"]

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            pending = set()
            for number in range(1, n + 1):
                data = read_part(number)  # read in this thread: at most `concurrency` parts in memory
                pending.add(pool.submit(send, number, data))
                if len(pending) >= concurrency:
                    pending = self._collect(pending, sent, done, part_size, size, progress)
            while pending:
                pending = self._collect(pending, sent, done, part_size, size, progress)
        parts = [{"part_number": k, "etag": sent[k]} for k in sorted(sent)]
        return self._json("POST", self._url(bucket, "uploads", upload_id, "complete"), params={"key": key},
                          json={"parts": parts})

    @staticmethod
    def _collect(pending, sent, done, part_size, size, progress):
        from concurrent.futures import FIRST_COMPLETED, wait

        finished, rest = wait(pending, return_when=FIRST_COMPLETED)
        for fut in finished:
            number, etag = fut.result()
            sent[number] = etag
            done["bytes"] = min(size, done["bytes"] + part_size)
            if progress:
                progress(done["bytes"], size)
        return rest

    def upload_parts(self, bucket: str, key: str, upload_id: str) -> list[dict]:
        """Parts the server already has (to resume an interrupted upload)."""
        return self._json("GET", self._url(bucket, "uploads", upload_id), params={"key": key})["parts"]

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self._check(self.http.delete(self._url(bucket, "uploads", upload_id), params={"key": key},
                                         timeout=self.timeout))
        except (OdhApiError, requests.RequestException):
            pass

    def put_small(self, bucket: str, key: str, data: bytes) -> dict:
        return self._json("PUT", self._url(bucket, "object"), params={"key": key}, data=data)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        r = self._check(self.http.get(self._url(bucket, "download"), params={"key": key}, timeout=self.timeout))
        return r.content
