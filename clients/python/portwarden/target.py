"""Where the daemon is: address parsing and discovery, shared by every client in this package
(and kept free of grpc, so that ``portwarden.pick_unused_port`` can look without importing it).

Order (same as the Rust client and the CLI): the explicit ``addr``, else ``PORTWARDEN_ADDR``
(``http://host:port``, ``host:port`` or ``unix:/path``), else the default Unix socket when the
file exists, else ``127.0.0.1:7070``.
"""

from __future__ import annotations

import os
import stat as _stat
from collections import namedtuple
from typing import Optional

TYPE_CHECKING = False  # not typing's: importing typing costs a one-shot script ~2 ms
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["DEFAULT_TCP_ADDR", "Target", "default_socket_path"]

#: The TCP address the daemon listens on by default.
DEFAULT_TCP_ADDR = "http://127.0.0.1:7070"
#: The system daemon's Unix socket (the one a root daemon makes).
SYSTEM_SOCKET = "/run/portwarden/portwarden.sock"


def _euid() -> int:
    return os.geteuid()


def default_socket_path() -> str:
    """The daemon's default Unix socket: ``/run/portwarden/portwarden.sock`` as root, else
    ``$XDG_RUNTIME_DIR/portwarden.sock``, else ``/tmp/portwarden-$UID/portwarden.sock``."""
    euid = _euid()
    if euid == 0:
        return SYSTEM_SOCKET
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime_dir:
        return os.path.join(runtime_dir, "portwarden.sock")
    return f"/tmp/portwarden-{euid}/portwarden.sock"


def fallback_dir(euid: Optional[int] = None) -> str:
    """``/tmp/portwarden-$UID``: the user's socket directory when there is no XDG_RUNTIME_DIR."""
    return f"/tmp/portwarden-{_euid() if euid is None else euid}"


def check_socket(path: str) -> Optional[str]:
    """Why the Unix socket ``path`` must not be used, or ``None``. Inside the shared /tmp fallback
    directory, another user could have made the directory first and put a fake daemon there to
    collect lease tokens: the directory must be a real directory of this user with no access for
    others (0700), and the socket must be this user's too. Other paths are not checked."""
    euid = _euid()
    directory = fallback_dir(euid)
    if os.path.dirname(path) != directory:
        return None
    try:
        st = os.lstat(directory)
    except OSError as err:
        return f"{directory}: {err}"
    if not _stat.S_ISDIR(st.st_mode):
        return f"{directory} is not a directory"
    if st.st_uid != euid:
        return f"{directory} belongs to uid {st.st_uid}, not to you (uid {euid})"
    if st.st_mode & 0o077:
        return f"{directory} is open to other users (mode {st.st_mode & 0o7777:o}); it must be 0700"
    try:
        sock = os.lstat(path)
    except OSError:
        return None
    if sock.st_uid != euid:
        return f"{path} belongs to uid {sock.st_uid}, not to you (uid {euid})"
    return None


class Target(namedtuple("Target", "kind address")):
    """Where a daemon can be reached: ``kind`` is ``"tcp"`` (``address`` is ``http://host:port``)
    or ``"unix"`` (``address`` is the socket path). Immutable, comparable, hashable."""

    __slots__ = ()
    kind: str
    address: str

    @classmethod
    def parse(cls, addr: str) -> "Target":
        """Parses ``http://host:port``, ``https://host:port``, ``host:port`` or ``unix:/path``."""
        if addr.startswith("unix:"):
            path = addr[len("unix:") :]
            while path.startswith("//"):  # unix:///abs/path
                path = path[2:]
            return cls("unix", path)
        if "://" in addr:
            return cls("tcp", addr)
        return cls("tcp", f"http://{addr}")

    @classmethod
    def discover(cls, addr: Optional[str] = None) -> "Target":
        """The explicit address, else ``PORTWARDEN_ADDR``, else the first of this user's own
        socket and the system daemon's socket that exists, else ``http://127.0.0.1:7070``: the
        first of :meth:`candidates` that is there."""
        found = cls.candidates(addr)
        if len(found) == 1:  # given explicitly: used as given, there or not
            return found[0]
        return next((t for t in found if not t.is_unix or os.path.exists(t.address)), found[-1])

    @classmethod
    def candidates(cls, addr: Optional[str] = None) -> "list[Target]":
        """Every address to try, in the CLI's order: the explicit address or ``PORTWARDEN_ADDR``
        alone when set; else this user's own socket, the system daemon's socket, then
        ``http://127.0.0.1:7070``. Whether a default socket file exists is for the caller to
        check (a missing one was not tried)."""
        if addr:
            return [cls.parse(addr)]
        env = os.environ.get("PORTWARDEN_ADDR", "")
        if env:
            return [cls.parse(env)]
        out = [cls("unix", default_socket_path())]
        if out[0].address != SYSTEM_SOCKET:
            out.append(cls("unix", SYSTEM_SOCKET))
        out.append(cls("tcp", DEFAULT_TCP_ADDR))
        return out

    @property
    def is_unix(self) -> bool:
        return self.kind == "unix"

    @property
    def secure(self) -> bool:
        return self.kind == "tcp" and self.address.lower().startswith("https://")

    @property
    def grpc_target(self) -> str:
        """The target string grpcio's channel constructors take."""
        if self.is_unix:
            return f"unix:{self.address}"
        from urllib.parse import urlsplit  # only when a channel is built: keeps the import cheap

        parts = urlsplit(self.address)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError(f"bad daemon address {self.address!r}: expected http://HOST:PORT, HOST:PORT or unix:/PATH")
        netloc = parts.netloc
        if parts.port is None:
            netloc += ":443" if parts.scheme.lower() == "https" else ":80"
        return netloc

    def __str__(self) -> str:
        return f"unix:{self.address}" if self.is_unix else self.address
