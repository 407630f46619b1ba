"""A small keep-alive HTTP/1.1 client for the model gateway: pooled connections to model servers.

Tornado's simple client opens a connection per request, which costs more than the whole budget of the
gateway; this keeps up to `max_idle` idle connections per upstream and reuses them. A reused connection the
server closed while idle (uvicorn closes them after a few seconds) is retried once on a fresh connection,
only when no byte of the answer came back. Answers are read whole but bounded: an answer longer than the
request's `max_answer` is refused (AnswerTooLarge) before it is read when its Content-Length says so, else as
soon as it passes the limit, and its connection is closed. On request, a long answer of known length is
handed over as a stream (`BodyStream`) to be passed on piece by piece instead of read whole first.

Each new connection may be checked before its first request (`verify`: e.g. whose process accepted it); a
refused connection is closed unused (UpstreamRefused). Idle connections are kept per (address, `verify.key`),
so a connection checked for one expectation is never reused for another.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from odh_spawner.quantities import format_bytes

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "content-length", "host"})
MAX_HEAD = 64 * 1024


class UpstreamError(Exception):
    """The model server could not be reached or answered with something that is not HTTP."""


class UpstreamRefused(UpstreamError):
    """A new connection failed its check (`verify`): nothing was sent on it."""


class AnswerTooLarge(UpstreamError):
    """The model server's answer is longer than the caller's limit."""


class _Stale(Exception):
    """A pooled connection was closed by the server before it answered: try a fresh one."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    stream: "BodyStream | None" = None  # a long answer of known length, read as it is passed on (body is b"")


STREAM_OVER = 256 * 1024  # answers of a known length above this are streamed, not read whole first


class BodyStream:
    """The rest of an answer of known length, still on its connection: `chunks()` reads it piece by piece
    (each read within the pool's timeout); the connection goes back to the pool when all of it was read, and is
    closed otherwise (`close()`, always called by the reader when done)."""

    def __init__(self, pool: "UpstreamPool", key: tuple, conn, length: int, keep: bool):
        self.pool, self.key, self.conn, self.length, self.keep = pool, key, conn, length, keep
        self.remaining = length

    async def chunks(self, size: int = 64 * 1024):
        reader = self.conn[0]
        while self.remaining > 0:
            try:
                async with asyncio.timeout(self.pool.timeout):
                    part = await reader.readexactly(min(size, self.remaining))
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
                raise UpstreamError(f"The model server stopped answering ({type(e).__name__}).") from None
            self.remaining -= len(part)
            yield part

    def close(self) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        if self.remaining == 0 and self.keep:
            self.pool._release(self.key, conn)
        else:
            conn[1].close()


class UpstreamPool:
    def __init__(self, max_idle: int = 32, timeout: float = 60, connect_timeout: float = 5):
        self.max_idle = max_idle
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple, list] = {}
        self._bases: dict[str, tuple] = {}

    def _address(self, base: str) -> tuple:
        addr = self._bases.get(base)
        if addr is None:
            u = urlsplit(base)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise UpstreamError(f"The model server's address {base!r} is not an http(s) URL.")
            port = u.port or (443 if u.scheme == "https" else 80)
            host_header = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
            addr = self._bases[base] = (u.hostname, port, u.scheme == "https", host_header,
                                        u.path.rstrip("/"))
            if len(self._bases) > 4096:  # bounded: forget the oldest
                self._bases.pop(next(iter(self._bases)))
        return addr

    async def request(self, base: str, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes = b"", *, max_answer: int | None = None, verify=None,
                      stream: bool = False) -> Response:
        """`target` is the path (and query) appended to `base`'s path. Hop-by-hop headers are not sent; Host is
        `base`'s. `max_answer`: the longest answer body accepted (AnswerTooLarge). `verify`, for each new
        connection: `verify.before_connect()` and then `verify.connected(socket)` each return None or the reason
        to refuse it (UpstreamRefused); idle connections are pooled per `verify.key`. `stream`: an answer of
        known length over STREAM_OVER comes back as `Response.stream` (the caller reads and closes it)."""
        host, port, tls, host_header, prefix = self._address(base)
        lines = [f"{method} {prefix}{target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        key = (host, port, tls, verify.key if verify is not None else None)
        try:
            async with asyncio.timeout(self.timeout):
                idle = self._idle.get(key)
                if idle:
                    conn = idle.pop()
                    if not idle:
                        del self._idle[key]  # keys change with processes: keep none empty
                    try:
                        return await self._exchange(key, conn, raw, method, max_answer, stream)
                    except _Stale:
                        pass
                if verify is not None:
                    reason = verify.before_connect()
                    if reason:
                        raise UpstreamRefused(reason)
                conn = await self._connect(host, port, tls)
                if verify is not None:
                    try:
                        reason = verify.connected(conn[1].get_extra_info("socket"))
                    except OSError as e:
                        reason = f"cannot tell who accepted the connection ({type(e).__name__})"
                    if reason:
                        conn[1].close()
                        raise UpstreamRefused(reason)
                try:
                    return await self._exchange(key, conn, raw, method, max_answer, stream)
                except _Stale:
                    raise UpstreamError("The model server closed the connection without answering.") from None
        except TimeoutError:
            raise UpstreamError(f"The model server did not answer within {self.timeout:g} s.") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise UpstreamError(f"The model server could not be reached ({type(e).__name__}).") from None

    async def _connect(self, host: str, port: int, tls: bool):
        ctx = _ssl.create_default_context() if tls else None
        async with asyncio.timeout(self.connect_timeout):
            return await asyncio.open_connection(host, port, ssl=ctx, limit=MAX_HEAD)

    def _release(self, key: tuple, conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn[1].close()

    async def _exchange(self, key: tuple, conn, raw: bytes, method: str, max_answer: int | None,
                        stream: bool) -> Response:
        reader, writer = conn
        ok = False
        try:
            writer.write(raw)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if not e.partial:
                    raise _Stale() from None
                raise
            except (ConnectionResetError, BrokenPipeError):
                raise _Stale() from None
            status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = status_line.partition(" ")
            code, _, reason = rest.partition(" ")
            status = int(code)
            headers = []
            length = None
            chunked = False
            close = version == "HTTP/1.0"
            for line in header_lines:
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                lk = k.lower()
                if lk == "content-length":
                    length = int(v)
                elif lk == "transfer-encoding":
                    chunked = "chunked" in v.lower()
                elif lk == "connection":
                    close = close or "close" in v.lower()
                headers.append((k, v))
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                body = b""
            elif chunked:
                body = await self._read_chunked(reader, max_answer)
            elif length is not None:
                if max_answer is not None and length > max_answer:
                    raise AnswerTooLarge(f"The answer is {format_bytes(length)}, more than the "
                                          f"{format_bytes(max_answer)} allowed.")
                if stream and length > STREAM_OVER:
                    body_stream = BodyStream(self, key, conn, length, keep=not close)
                    conn = None  # the stream owns it now
                    return Response(status, reason, headers, b"", body_stream)
                body = await reader.readexactly(length)
            else:
                body = await self._read_to_close(reader, max_answer)
                close = True
            ok = not close
            return Response(status, reason, headers, body)
        finally:
            if ok and conn is not None:
                self._release(key, conn)
                conn = None
            if conn is not None:
                writer.close()

    @staticmethod
    async def _read_chunked(reader, max_answer: int | None) -> bytes:
        parts, total = [], 0
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if max_answer is not None and total > max_answer:
                raise AnswerTooLarge(f"The answer is longer than the {format_bytes(max_answer)} allowed.")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    @staticmethod
    async def _read_to_close(reader, max_answer: int | None) -> bytes:
        parts, total = [], 0
        while True:
            part = await reader.read(65536)
            if not part:
                return b"".join(parts)
            total += len(part)
            if max_answer is not None and total > max_answer:
                raise AnswerTooLarge(f"The answer is longer than the {format_bytes(max_answer)} allowed.")
            parts.append(part)

    def close(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
