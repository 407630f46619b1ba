"""A small keep-alive HTTP/1.1 client for the model gateway: pooled connections to model servers.

Tornado's simple client opens a connection per request, which costs more than the whole budget of the
gateway; this keeps up to `max_idle` idle connections per upstream and reuses them. A reused connection the
server closed while idle (uvicorn closes them after a few seconds) is retried once on a fresh connection,
only when no byte of the answer came back. Bodies are read whole (Content-Length, chunked, or until close).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "content-length", "host"})
MAX_HEAD = 64 * 1024


class UpstreamError(Exception):
    """The model server could not be reached or answered with something that is not HTTP."""


class _Stale(Exception):
    """A pooled connection was closed by the server before it answered: try a fresh one."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


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
                raise UpstreamError(f"not an http(s) URL: {base!r}")
            port = u.port or (443 if u.scheme == "https" else 80)
            host_header = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
            addr = self._bases[base] = (u.hostname, port, u.scheme == "https", host_header,
                                        u.path.rstrip("/"))
            if len(self._bases) > 4096:  # bounded: forget the oldest
                self._bases.pop(next(iter(self._bases)))
        return addr

    async def request(self, base: str, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes = b"") -> Response:
        """`target` is the path (and query) appended to `base`'s path. Hop-by-hop headers are not sent."""
        host, port, tls, host_header, prefix = self._address(base)
        lines = [f"{method} {prefix}{target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        key = (host, port, tls)
        try:
            async with asyncio.timeout(self.timeout):
                idle = self._idle.get(key)
                if idle:
                    conn = idle.pop()
                    try:
                        return await self._exchange(key, conn, raw, method)
                    except _Stale:
                        pass
                conn = await self._connect(host, port, tls)
                try:
                    return await self._exchange(key, conn, raw, method)
                except _Stale:
                    raise UpstreamError("the model server closed the connection without answering") from None
        except TimeoutError:
            raise UpstreamError(f"the model server did not answer within {self.timeout:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise UpstreamError(f"the model server could not be reached ({type(e).__name__})") from None

    async def _connect(self, host: str, port: int, tls: bool):
        ctx = _ssl.create_default_context() if tls else None
        async with asyncio.timeout(self.connect_timeout):
            return await asyncio.open_connection(host, port, ssl=ctx, limit=MAX_HEAD)

    async def _exchange(self, key: tuple, conn, raw: bytes, method: str) -> Response:
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
                body = await self._read_chunked(reader)
            elif length is not None:
                body = await reader.readexactly(length)
            else:
                body = await reader.read()
                close = True
            ok = not close
            return Response(status, reason, headers, body)
        finally:
            if ok:
                idle = self._idle.setdefault(key, [])
                if len(idle) < self.max_idle:
                    idle.append(conn)
                    conn = None
            if conn is not None:
                writer.close()

    @staticmethod
    async def _read_chunked(reader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
