"""The socket hardening list for a server's listening socket, and a hardened bind.

    sock, applied = portwarden.bind_hardened(8000)     # [::]:8000 for IPv6 and IPv4
    print(applied)                                     # what took, option by option
    conn, _ = sock.accept()
    portwarden.harden_accepted(conn)                   # the 30 s timeout, on the connection

Applied: ``SO_REUSEADDR`` (restart without waiting out TIME_WAIT), ``SO_KEEPALIVE`` (find dead
peers), ``TCP_NODELAY`` (no Nagle delay) and 64 KiB send and receive buffers. On Linux accepted
connections inherit all four from the listener.

The list's 30 s timeout belongs to accepted connections, not to the listener: on a listener it
would make ``accept()`` raise after 30 idle seconds. Use :func:`harden_accepted` (or
``conn.settimeout(30)``; ``socketserver`` handlers: ``timeout = 30``).

``SO_REUSEPORT`` is reported, never set: it would let another socket of the same uid bind the same
port and take a share of its connections. Some platforms lack it; the report says so.

No grpc here: this module is cheap to import.
"""

from __future__ import annotations

import errno
import socket
from collections import namedtuple

TYPE_CHECKING = False  # not typing's: importing typing costs a one-shot script ~2 ms
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

__all__ = [
    "ACCEPTED_TIMEOUT",
    "BACKLOG",
    "BUFFER_BYTES",
    "Hardening",
    "SocketOption",
    "bind_hardened",
    "harden",
    "harden_accepted",
]

#: Send and receive buffer size requested (64 KiB).
BUFFER_BYTES = 64 * 1024
#: The timeout, in seconds, for accepted connections.
ACCEPTED_TIMEOUT = 30.0
#: Pending connections the kernel queues for ``accept()`` (capped by net.core.somaxconn).
BACKLOG = 1024

#: The hardening list; SO_REUSEPORT is reported but not on it.
HARDENING_OPTIONS = ("SO_REUSEADDR", "SO_KEEPALIVE", "TCP_NODELAY", "SO_SNDBUF", "SO_RCVBUF")


class SocketOption(namedtuple("SocketOption", "name applied detail")):
    """One option and what became of it: ``name`` (``SO_REUSEADDR``, ...), ``applied`` (bool) and
    ``detail``: the value read back, the error, or why it was left alone."""

    __slots__ = ()
    name: str
    applied: bool
    detail: str


class Hardening:
    """What :func:`harden` could apply, option by option (a plain class, not a dataclass:
    importing dataclasses would double this package's import time)."""

    def __init__(self, options: Optional[List[SocketOption]] = None) -> None:
        self.options: List[SocketOption] = list(options or [])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hardening) and other.options == self.options

    def __repr__(self) -> str:
        return f"Hardening({self.options!r})"

    def applied(self, name: str) -> bool:
        return any(o.name == name and o.applied for o in self.options)

    @property
    def complete(self) -> bool:
        """Every option of the hardening list was applied."""
        return all(self.applied(n) for n in HARDENING_OPTIONS)

    def as_dict(self) -> Dict[str, bool]:
        """``{"SO_REUSEADDR": True, ..., "SO_REUSEPORT": False}``."""
        return {o.name: o.applied for o in self.options}

    def __str__(self) -> str:
        return "\n".join(f"{'✓' if o.applied else '-'} {o.name}: {o.detail}" for o in self.options)


def _buffer_detail(actual: int) -> str:
    if actual >= 2 * BUFFER_BYTES:
        # Linux doubles the request to leave room for its own bookkeeping.
        return f"{BUFFER_BYTES} bytes requested, kernel reports {actual}"
    return f"{actual} bytes"


def harden(sock: socket.socket) -> Hardening:
    """Applies the hardening to ``sock`` (before ``bind`` for SO_REUSEADDR to matter) and says
    what took. Never raises for an option the platform refuses: it is reported as not applied."""
    h = Hardening()

    def apply(name: str, level: int, opt: int, value: int, detail) -> None:
        try:
            sock.setsockopt(level, opt, value)
            h.options.append(SocketOption(name, True, detail(sock.getsockopt(level, opt))))
        except OSError as e:
            h.options.append(SocketOption(name, False, e.strerror or str(e)))

    on = lambda v: "on" if v else "off"  # noqa: E731
    apply("SO_REUSEADDR", socket.SOL_SOCKET, socket.SO_REUSEADDR, 1, on)
    apply("SO_KEEPALIVE", socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1, on)
    apply("TCP_NODELAY", socket.IPPROTO_TCP, socket.TCP_NODELAY, 1, on)
    apply("SO_SNDBUF", socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES, _buffer_detail)
    apply("SO_RCVBUF", socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER_BYTES, _buffer_detail)
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    available = False
    if reuse_port is not None:
        try:
            sock.getsockopt(socket.SOL_SOCKET, reuse_port)
            available = True
        except OSError:
            pass
    h.options.append(
        SocketOption(
            "SO_REUSEPORT",
            False,
            "available, not set (another socket of this uid could share the port)"
            if available
            else "not available on this platform",
        )
    )
    return h


def _bind(family: int, host: str, port: int, backlog: int) -> Tuple[socket.socket, Hardening]:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        applied = harden(sock)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock, applied


def bind_hardened(
    port: int, host: Optional[str] = None, backlog: int = BACKLOG
) -> Tuple[socket.socket, Hardening]:
    """A hardened listening socket on ``port`` and what was applied to it.

    Without ``host`` it listens on every address: IPv6 and IPv4 on one socket (``::`` with
    IPV6_V6ONLY off), or IPv4 alone (``0.0.0.0``) where the host has no IPv6. A port in use
    raises ``OSError(EADDRINUSE)``: the socket is never shared.
    """
    if host is not None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return _bind(family, host, port, backlog)
    if socket.has_ipv6:
        try:
            return _bind(socket.AF_INET6, "::", port, backlog)
        except OSError as e:
            if e.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
                raise
    return _bind(socket.AF_INET, "0.0.0.0", port, backlog)


def harden_accepted(conn: socket.socket, timeout: float = ACCEPTED_TIMEOUT) -> None:
    """The 30 s timeout on an accepted connection: a read or write stalled longer raises
    ``socket.timeout`` instead of hanging the server."""
    conn.settimeout(timeout)
