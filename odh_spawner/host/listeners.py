"""Who is on the other end of a local TCP connection: the system uid of the socket that accepted it, and which
process holds a listening socket, read from /proc/net/tcp{,6} and /proc/<pid>/fd (Linux).

The model gateway forwards to model servers on 127.0.0.1 ports. A port outlives nothing: when a model server
dies, anyone on the machine may bind its port and would then receive the requests meant for it. So after
connecting, the gateway asks whose socket accepted the connection (`accepting_uid`): the kernel lists each
connection's server side with the uid of the socket that listened (an accepted socket inherits it), so the
answer is about this very connection, not about a port checked a moment before.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

LISTEN, ESTABLISHED, SYN_RECV = 0x0A, 0x01, 0x03
TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


@dataclass(frozen=True)
class TcpSocket:
    local: tuple[str, int]
    remote: tuple[str, int]
    state: int
    uid: int
    inode: int


def _address(hex_addr: str) -> tuple[str, int]:
    """'0100007F:1F90' (IPv4) or a 32-hex-digit IPv6 address and port, as /proc/net/tcp{,6} print them (the
    address in host byte order per 32-bit word). An IPv4-mapped IPv6 address comes back as plain IPv4."""
    addr, port = hex_addr.split(":")
    raw = bytes.fromhex(addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word was little-endian
    if len(words) == 4:
        ip = socket.inet_ntop(socket.AF_INET, words)
    else:
        ip = socket.inet_ntop(socket.AF_INET6, words)
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[len("::ffff:"):]
    return ip, int(port, 16)


def parse_table(text: str, port: int | None = None) -> list[TcpSocket]:
    """The sockets of one /proc/net/tcp or tcp6 listing (only those with `port` at either end, if given). Pure."""
    out = []
    mark = f":{port:04X} " if port is not None else ""
    for line in text.splitlines()[1:]:
        if mark not in line:
            continue  # cheap: most lines of a busy machine are about other ports
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            out.append(TcpSocket(_address(fields[1]), _address(fields[2]), int(fields[3], 16), int(fields[7]),
                                 int(fields[9])))
        except (ValueError, OSError):
            continue
    return out


def sockets(port: int | None = None) -> list[TcpSocket]:
    """This network namespace's TCP sockets (with `port` at either end, if given)."""
    found = []
    for table in TABLES:
        try:
            with open(table) as f:
                found += parse_table(f.read(), port)
        except OSError:
            pass
    return found


def _same(a: tuple[str, int], b: tuple[str, int]) -> bool:
    return a[1] == b[1] and a[0] == b[0]


def accepting_socket(table: list[TcpSocket], ours: tuple[str, int], peer: tuple[str, int]) -> TcpSocket | None:
    """The server side of our connection from `ours` to `peer`: the socket whose local address is `peer` and
    remote address is `ours` (established, or still in the handshake). Pure."""
    for s in table:
        if s.state in (ESTABLISHED, SYN_RECV) and _same(s.local, peer) and _same(s.remote, ours):
            return s
    return None


def accepting_uid(ours: tuple, peer: tuple) -> int | None:
    """The uid owning the socket that accepted our connection `ours` -> `peer` (both (host, port, ...) as
    socket.getsockname()/getpeername() give them), or None when it cannot be found."""
    ours, peer = (ours[0], ours[1]), (peer[0], peer[1])
    for _ in range(3):  # the server side may be between two states for an instant
        s = accepting_socket(sockets(peer[1]), ours, peer)
        if s is not None:
            return s.uid
    return None


def listening_inodes(table: list[TcpSocket], port: int) -> set[int]:
    """Inodes of the sockets listening on TCP `port` (any address). Pure."""
    return {s.inode for s in table if s.state == LISTEN and s.local[1] == port}


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process `pid` holds (empty when it is gone or not ours to read)."""
    found = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def holds_listener(pid: int, port: int) -> bool:
    """True when process `pid` holds a socket listening on TCP `port`."""
    inodes = listening_inodes(sockets(port), port)
    return bool(inodes) and bool(inodes & socket_inodes(pid))
