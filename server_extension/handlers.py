"""REST handlers for /odh/api/buckets...: the user's own buckets, one page at a time, streamed transfers.

Every input is validated at the boundary; every failure is a 4xx JSON answer with a message (5xx only when
object storage itself fails or is unreachable). No credential is ever returned.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import tempfile
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.iostream import StreamClosedError

from odh_spawner.quantities import format_bytes

from . import validate as v
from .features import LEFT_OUT_STATUS, refusal
from .s3 import client_error, http_error, s3_code, s3_errors

CHUNK = 1024 * 1024


def s3_path(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def api(method):
    """Validated, authenticated API method: typed errors become JSON 4xx answers."""

    @web.authenticated
    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        try:
            self.check_feature()
            return await method(self, *args, **kwargs)
        except v.BadRequest as e:
            self.reply_error(e.status_code, str(e))
        except s3_errors() as e:
            err = http_error(e)
            self.log.info("odh: S3 %s -> %s %s", type(e).__name__, err.status_code, err)
            message = str(err)
            if s3_code(e) == "QuotaExceeded":  # name the quota and the group it comes from
                message = await self.quota_message() or message
            self.reply_error(err.status_code, message)

    return wrapper


class OdhHandler(ExtensionHandlerMixin, APIHandler):
    feature = ""  # the odh feature (server_extension.features) whose endpoint this is: refused when left out

    def check_feature(self) -> None:
        """409 with the left-out message when this server's profile leaves this endpoint's feature out."""
        message = refusal(self.feature) if self.feature else None
        if message:
            raise v.BadRequest(message, LEFT_OUT_STATUS)

    @property
    def s3(self):
        return self.extensionapp.s3

    @property
    def uploads(self) -> dict:
        return self.extensionapp.uploads

    async def call(self, fn, /, **kwargs):
        """Run one blocking boto3 call in a thread."""
        return await asyncio.get_running_loop().run_in_executor(self.extensionapp.executor,
                                                                 functools.partial(fn, **kwargs))

    async def quota_message(self) -> str:
        """The storage quota's refusal with its size and where it comes from (the platform's usage API), or ''
        when the platform does not say."""
        app = self.extensionapp
        if not getattr(app, "platform_url", ""):
            return ""
        url = app.platform_url.rstrip("/") + "/api/usage"
        try:
            r = await AsyncHTTPClient().fetch(url, headers={"Authorization": f"token {app.platform.token}"},
                                              request_timeout=5, raise_error=False)
            data = json.loads(r.body) if r.code == 200 else {}
        except (OSError, ValueError):
            return ""
        quota = data.get("storage_quota_bytes")
        if not isinstance(quota, int) or isinstance(quota, bool):
            return ""
        source = data.get("storage_quota_source") or "the platform default"
        return f"Your storage quota of {format_bytes(quota)} ({source}) is full; delete objects first."

    def reply_error(self, status: int, message: str) -> None:
        self.clear()
        self.set_status(status)
        self.finish(json.dumps({"message": message, "reason": self._reason}))

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def body(self, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
        try:
            data = json.loads(self.request.body or b"null")
        except ValueError:
            raise v.BadRequest("The request body is not valid JSON.") from None
        return v.body_object(data, required, optional)

    def arg(self, name: str):
        return self.get_query_argument(name, None)


class BucketsHandler(OdhHandler):
    @api
    async def get(self):
        out = await self.call(self.s3.list_buckets)
        buckets = [{"name": b["Name"], "created": _iso(b.get("CreationDate")), "path": s3_path(b["Name"])}
                   for b in out.get("Buckets", [])]
        self.reply({"buckets": buckets})

    @api
    async def post(self):
        name = v.bucket(self.body(("name",))["name"])
        try:  # RGW answers 200 to re-creating your own bucket; say so instead
            await self.call(self.s3.head_bucket, Bucket=name)
        except client_error() as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
                raise v.BadRequest("That bucket name is taken; choose another.", 409) from None
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                raise
        else:
            raise v.BadRequest("You already have a bucket with that name.", 409)
        await self.call(self.s3.create_bucket, Bucket=name)
        self.reply({"name": name, "created": None, "path": s3_path(name)}, 201)


class ObjectsHandler(OdhHandler):
    @api
    async def get(self, bucket):
        bucket = v.bucket(bucket)
        prefix = v.prefix(self.arg("prefix"))
        delimiter = v.delimiter(self.arg("delimiter"))
        size = v.integer(self.arg("page_size"), "page_size", 1, 1000, self.extensionapp.default_page_size)
        params = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": size}
        if delimiter:
            params["Delimiter"] = delimiter
        token = v.token(self.arg("continuation_token"))
        if token:
            params["ContinuationToken"] = token
        out = await self.call(self.s3.list_objects_v2, **params)
        folders = [{"prefix": p["Prefix"], "name": p["Prefix"][len(prefix):].rstrip("/"), "path": s3_path(bucket, p["Prefix"])}
                   for p in out.get("CommonPrefixes", [])]
        objects = [{"key": o["Key"], "name": o["Key"][len(prefix):], "size": o["Size"],
                    "last_modified": _iso(o.get("LastModified")), "etag": o.get("ETag", "").strip('"'),
                    "path": s3_path(bucket, o["Key"])}
                   for o in out.get("Contents", []) if o["Key"] != prefix]
        self.reply({"bucket": bucket, "prefix": prefix, "folders": folders, "objects": objects,
                    "next_token": out.get("NextContinuationToken") if out.get("IsTruncated") else None})

    @api
    async def delete(self, bucket):
        bucket = v.bucket(bucket)
        key, prefix = self.arg("key"), self.arg("prefix")
        if (key is None) == (prefix is None):
            raise v.BadRequest("Give exactly one of key or prefix.")
        if key is not None:
            key = v.key(key)
            await self.call(self.s3.head_object, Bucket=bucket, Key=key)  # 404 / 403 before we claim success
            await self.call(self.s3.delete_object, Bucket=bucket, Key=key)
            return self.reply({"deleted": 1})
        prefix = v.prefix(prefix)
        if not prefix:
            raise v.BadRequest("Prefix must not be empty.")
        if self.arg("confirm") != "true":
            raise v.BadRequest("Deleting a prefix needs confirm=true.")
        self.reply({"deleted": await self._delete_prefix(bucket, prefix)})

    async def _delete_prefix(self, bucket: str, prefix: str) -> int:
        deleted, token = 0, None
        while True:
            params = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
            if token:
                params["ContinuationToken"] = token
            page = await self.call(self.s3.list_objects_v2, **params)
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                out = await self.call(self.s3.delete_objects, Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                errors = out.get("Errors", [])
                if errors:
                    raise v.BadRequest(f"{len(errors)} object(s) could not be deleted: {errors[0].get('Code')}.", 403)
                deleted += len(keys)
            if not page.get("IsTruncated"):
                return deleted
            token = page.get("NextContinuationToken")


class ObjectHandler(OdhHandler):
    @api
    async def get(self, bucket):
        bucket, key = v.bucket(bucket), v.key(self.arg("key"))
        head = await self.call(self.s3.head_object, Bucket=bucket, Key=key)
        self.reply({"key": key, "name": key.rsplit("/", 1)[-1], "size": head.get("ContentLength", 0),
                    "last_modified": _iso(head.get("LastModified")), "etag": head.get("ETag", "").strip('"'),
                    "content_type": head.get("ContentType", ""), "metadata": head.get("Metadata", {}),
                    "path": s3_path(bucket, key)})

    @api
    async def put(self, bucket):
        bucket, key = v.bucket(bucket), v.key(self.arg("key"))
        body = self.request.body or b""
        if len(body) > self.extensionapp.single_put_max:
            raise v.BadRequest(f"{format_bytes(len(body))} is more than one request takes "
                               f"({format_bytes(self.extensionapp.single_put_max)}); use /uploads.", 413)
        md5 = hashlib.md5(body).digest()
        out = await self.call(self.s3.put_object, Bucket=bucket, Key=key, Body=body,
                              ContentMD5=base64.b64encode(md5).decode())
        self.reply({"key": key, "name": key.rsplit("/", 1)[-1], "size": len(body),
                    "etag": out.get("ETag", "").strip('"'), "path": s3_path(bucket, key)}, 201)


class DownloadHandler(OdhHandler):
    @api
    async def get(self, bucket):
        bucket, key = v.bucket(bucket), v.key(self.arg("key"))
        obj = await self.call(self.s3.get_object, Bucket=bucket, Key=key)
        body = obj["Body"]
        name = key.rstrip("/").rsplit("/", 1)[-1] or "download"
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(obj["ContentLength"]))
        self.set_header("Content-Disposition",
                        f"attachment; filename=\"{_ascii(name)}\"; filename*=UTF-8''{quote(name, safe='')}")
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await loop.run_in_executor(self.extensionapp.executor, body.read, CHUNK)
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()  # back-pressure: one chunk in flight, memory stays bounded
        except StreamClosedError:
            self.log.info("odh: download of s3://%s/%s cancelled by the client", bucket, key)
        finally:
            body.close()
        if not self._finished:
            self.finish(set_content_type="application/octet-stream")


class FoldersHandler(OdhHandler):
    @api
    async def post(self, bucket):
        bucket = v.bucket(bucket)
        path = v.folder(self.body(("path",))["path"])
        await self.call(self.s3.put_object, Bucket=bucket, Key=path, Body=b"")
        self.reply({"prefix": path, "name": path.rstrip("/").rsplit("/", 1)[-1], "path": s3_path(bucket, path)}, 201)


class PresignHandler(OdhHandler):
    @api
    async def get(self, bucket):
        bucket, key = v.bucket(bucket), v.key(self.arg("key"))
        expires = v.integer(self.arg("expires"), "expires", 1, self.extensionapp.presign_max_seconds, 3600)
        await self.call(self.s3.head_object, Bucket=bucket, Key=key)  # only for objects you can read
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)
        self.reply({"url": url, "expires_in": expires})


class UploadsHandler(OdhHandler):
    @api
    async def post(self, bucket):
        bucket = v.bucket(bucket)
        data = self.body(("key", "size"), ("content_type",))
        key = v.key(data["key"])
        size = v.integer(data["size"], "size", 0, self.extensionapp.max_upload_size)
        extra = {}
        if data.get("content_type") is not None:
            if not isinstance(data["content_type"], str) or len(data["content_type"]) > 255:
                raise v.BadRequest("`content_type` must be a short string.")
            extra["ContentType"] = data["content_type"]
        part_size = v.part_size_for(size, self.extensionapp.part_size)
        out = await self.call(self.s3.create_multipart_upload, Bucket=bucket, Key=key, **extra)
        upload_id = out["UploadId"]
        parts = max(1, -(-size // part_size))
        self.uploads[upload_id] = {"bucket": bucket, "key": key, "size": size, "part_size": part_size}
        self.reply({"upload_id": upload_id, "key": key, "part_size": part_size, "parts": parts}, 201)


class UploadBase(OdhHandler):
    def target(self, bucket: str, upload_id: str) -> tuple[str, str, str]:
        bucket, key = v.bucket(bucket), v.key(self.arg("key"))
        upload_id = v.upload_id(upload_id)
        known = self.uploads.get(upload_id)
        if known is not None and (known["bucket"], known["key"]) != (bucket, key):
            raise v.BadRequest("This upload belongs to another object.", 409)
        return bucket, key, upload_id

    async def received_parts(self, bucket: str, key: str, upload_id: str) -> list[dict]:
        parts, marker = [], 0
        while True:
            out = await self.call(self.s3.list_parts, Bucket=bucket, Key=key, UploadId=upload_id,
                                  PartNumberMarker=marker)
            parts += [{"part_number": p["PartNumber"], "etag": p["ETag"].strip('"'), "size": p["Size"]}
                      for p in out.get("Parts", [])]
            if not out.get("IsTruncated"):
                return parts
            marker = out["NextPartNumberMarker"]


class UploadHandler(UploadBase):
    @api
    async def get(self, bucket, upload_id):
        bucket, key, upload_id = self.target(bucket, upload_id)
        self.reply({"parts": await self.received_parts(bucket, key, upload_id)})

    @api
    async def delete(self, bucket, upload_id):
        bucket, key, upload_id = self.target(bucket, upload_id)
        await self.call(self.s3.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id)
        self.uploads.pop(upload_id, None)
        self.set_status(204)
        self.finish()


@web.stream_request_body
class PartHandler(UploadBase):
    """One part, streamed to a spool file as it arrives: the server never holds a whole part in memory."""

    async def prepare(self):
        await super().prepare()
        if not self.current_user:  # refuse before reading any body
            raise web.HTTPError(403)
        self._spool = tempfile.TemporaryFile(prefix="odh-part-")
        # with a Content-MD5 from the client, object storage verifies the bytes; else we hash them here
        self._md5 = None if self.request.headers.get("Content-MD5") else hashlib.md5()
        self._received = 0
        self._limit = self.extensionapp.max_part_size
        self.request.connection.set_max_body_size(self._limit + 1)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= self._limit:
            if self._md5 is not None:
                self._md5.update(chunk)
            self._spool.write(chunk)

    def on_finish(self):
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()

    @api
    async def put(self, bucket, upload_id, part_number):
        bucket, key, upload_id = self.target(bucket, upload_id)
        number = v.integer(part_number, "part_number", 1, v.MAX_PARTS)
        known = self.uploads.get(upload_id)
        limit = known["part_size"] if known else self._limit
        if self._received > limit:
            raise v.BadRequest(f"A part of {format_bytes(self._received)} is larger than the part size, "
                               f"{format_bytes(limit)}.", 413)
        md5 = self.request.headers.get("Content-MD5") or base64.b64encode(self._md5.digest()).decode()
        self._spool.seek(0)
        out = await self.call(self.s3.upload_part, Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=self._spool, ContentLength=self._received, ContentMD5=md5)
        etag = out.get("ETag", "").strip('"')
        self.reply({"part_number": number, "etag": etag, "size": self._received})


class CompleteHandler(UploadBase):
    @api
    async def post(self, bucket, upload_id):
        bucket, key, upload_id = self.target(bucket, upload_id)
        raw = self.body(("parts",))["parts"]
        if not isinstance(raw, list) or not raw or len(raw) > v.MAX_PARTS:
            raise v.BadRequest("Parts must be a non-empty list.")
        parts = []
        for p in raw:
            p = v.body_object(p, ("part_number", "etag"), ("size",))
            number = v.integer(p["part_number"], "part_number", 1, v.MAX_PARTS)
            if not isinstance(p["etag"], str) or not p["etag"] or len(p["etag"]) > 128:
                raise v.BadRequest("Each part needs its etag.")
            parts.append({"PartNumber": number, "ETag": p["etag"]})
        parts.sort(key=lambda p: p["PartNumber"])
        known = self.uploads.get(upload_id)
        if known is not None:  # integrity: what S3 holds must add up to what was announced
            received = {p["part_number"]: p["size"] for p in await self.received_parts(bucket, key, upload_id)}
            total = sum(received.get(p["PartNumber"], 0) for p in parts)
            if total != known["size"]:
                raise v.BadRequest(f"Received {total} of {known['size']} bytes; send the missing parts and retry.")
        out = await self.call(self.s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id,
                              MultipartUpload={"Parts": parts})
        self.uploads.pop(upload_id, None)
        head = await self.call(self.s3.head_object, Bucket=bucket, Key=key)
        self.reply({"key": key, "name": key.rsplit("/", 1)[-1], "size": head.get("ContentLength", 0),
                    "etag": (out.get("ETag") or head.get("ETag") or "").strip('"'), "path": s3_path(bucket, key)})


def _iso(dt) -> str | None:
    return dt.isoformat() if dt is not None else None


def _ascii(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


class NotFoundHandler(OdhHandler):
    """Any other path under /odh/api (e.g. an unknown ingestion action): a JSON 404 like every answer of the
    API, not the server's HTML page. Routed last (app.py)."""

    async def _missing(self, *args, **kwargs):
        raise v.BadRequest("There is no such odh API endpoint; check the path against the OpenAPI documents that "
                           "ship with server_extension.", 404)

    get = post = put = patch = delete = api(_missing)


NOT_FOUND = (r"/odh/api(/.*)?", NotFoundHandler)

B = r"(?P<bucket>[^/]+)"
U = r"(?P<upload_id>[^/]+)"
HANDLERS = [
    (r"/odh/api/buckets", BucketsHandler),
    (rf"/odh/api/buckets/{B}/objects", ObjectsHandler),
    (rf"/odh/api/buckets/{B}/object", ObjectHandler),
    (rf"/odh/api/buckets/{B}/download", DownloadHandler),
    (rf"/odh/api/buckets/{B}/folders", FoldersHandler),
    (rf"/odh/api/buckets/{B}/presign", PresignHandler),
    (rf"/odh/api/buckets/{B}/uploads", UploadsHandler),
    (rf"/odh/api/buckets/{B}/uploads/{U}", UploadHandler),
    (rf"/odh/api/buckets/{B}/uploads/{U}/parts/(?P<part_number>[^/]+)", PartHandler),
    (rf"/odh/api/buckets/{B}/uploads/{U}/complete", CompleteHandler),
]
for _, _handler in HANDLERS:
    _handler.feature = "buckets"
