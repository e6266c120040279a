"""portpicker's API, answered by portwarden, so ``import portwarden as portpicker`` works.

    import portwarden as portpicker
    port = portpicker.pick_unused_port()      # an int, like portpicker's

Where the port comes from, in order:

1. a port given back earlier with :func:`return_port` (or :func:`add_reserved_port`), as
   portpicker does;
2. the portserver protocol at ``portserver_address``, else ``PORTSERVER_ADDRESS``, else
   ``PORTWARDEN_PORTSERVER_SOCKET`` (the daemon's own setting), else the daemon's default
   endpoint ``@portwarden-portserver`` (Linux): a Unix socket path, or ``@name`` in the abstract
   namespace. One connection, one line each way; no grpc import, so a one-shot script costs no
   more than with portpicker;
3. the daemon over gRPC when one is configured (``PORTWARDEN_ADDR`` set, or its default Unix
   socket exists), or when ``service`` is given: the port is then allocated for that service
   (the portserver protocol carries no name);
4. a port the kernel picks (bind to port 0), as portpicker does without a portserver, with a note
   on stderr.

Ports from portwarden are owned by ``pid`` (default: this process) and taken back by the daemon
when that process exits.
"""

from __future__ import annotations

import os
import socket
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs a one-shot script ~2 ms
if TYPE_CHECKING:
    from typing import Optional, Set

__all__ = [
    "NoFreePortFoundError",
    "add_reserved_port",
    "bind",
    "get_port_from_port_server",
    "is_port_free",
    "pick_unused_port",
    "return_port",
]

#: Ports given back with return_port/add_reserved_port, handed out again first.
_free_ports: Set[int] = set()
#: Ports from portwarden (or reserved) that may be returned.
_owned_ports: Set[int] = set()
#: Ports the kernel picked.
_random_ports: Set[int] = set()

#: Seconds a portserver exchange may take.
PORTSERVER_TIMEOUT = 10.0
#: Where the daemon serves the portserver protocol unless configured otherwise.
DEFAULT_PORTSERVER = "@portwarden-portserver"
#: started_by holds at most this many bytes (the daemon's limit).
MAX_TEXT_BYTES = 256

_PROTOS = ((socket.SOCK_STREAM, socket.IPPROTO_TCP), (socket.SOCK_DGRAM, socket.IPPROTO_UDP))


class NoFreePortFoundError(Exception):
    """No free port could be found."""


def add_reserved_port(port: int) -> None:
    """Adds a port acquired by other means to the ports handed out first."""
    _free_ports.add(port)


def return_port(port: int) -> None:
    """Gives a port back for this process to reuse (the daemon still counts it as this
    process's until the process exits, as portpicker's portserver does)."""
    if port in _random_ports:
        _random_ports.discard(port)
    elif port in _owned_ports:
        _owned_ports.discard(port)
        _free_ports.add(port)


def bind(port: int, socket_type: int, socket_proto: int) -> Optional[int]:
    """Tries to bind ``port`` (0: any) on every address family the host has; the port on
    success, else None. A stream socket also listens, as a server would."""
    got_socket = False
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            sock = socket.socket(family, socket_type, socket_proto)
        except OSError:
            continue
        got_socket = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", port))
            if socket_type == socket.SOCK_STREAM:
                sock.listen(1)
            port = sock.getsockname()[1]
        except OSError:
            return None
        finally:
            sock.close()
    return port if got_socket else None


def is_port_free(port: int) -> bool:
    """Whether ``port`` can be bound now, for both TCP and UDP."""
    return bool(bind(port, *_PROTOS[0]) and bind(port, *_PROTOS[1]))


def get_port_from_port_server(
    portserver_address: str, pid: Optional[int] = None, *, quiet_if_absent: bool = False
) -> Optional[int]:
    """Asks a portserver (portwarden's, or portpicker's own) for a port owned by ``pid``
    (default: this process): the port, or None when it has none or cannot be reached. With
    ``quiet_if_absent``, nothing listening there is not worth a note."""
    if not portserver_address:
        return None
    if pid is None:
        pid = os.getpid()
    address = "\0" + portserver_address[1:] if portserver_address[0] == "@" else portserver_address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(PORTSERVER_TIMEOUT)
            sock.connect(address)
            sock.sendall(b"%d\n" % pid)
            answer = b""
            while b"\n" not in answer:
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
    except (ConnectionRefusedError, FileNotFoundError) as e:
        if not quiet_if_absent:
            print(f"portwarden: cannot reach the portserver at {portserver_address}: {e}", file=sys.stderr)
        return None
    except OSError as e:
        print(f"portwarden: cannot reach the portserver at {portserver_address}: {e}", file=sys.stderr)
        return None
    try:
        port = int(answer.split(b"\n")[0])
    except ValueError:
        port = 0
    if not port:
        print(f"portwarden: the portserver at {portserver_address} had no port", file=sys.stderr)
        return None
    _owned_ports.add(port)
    return port


def pick_unused_port(
    pid: Optional[int] = None,
    portserver_address: Optional[str] = None,
    *,
    service: Optional[str] = None,
) -> int:
    """A free port, reserved for ``pid`` (default: this process) until it exits.

    portpicker's signature and return value; ``service`` (portwarden only) allocates it for that
    service name through the daemon. Raises :class:`NoFreePortFoundError` when no port is found.
    """
    try:
        port = _free_ports.pop()
    except KeyError:
        pass
    else:
        _owned_ports.add(port)
        return port
    if service is None:
        configured = [
            a
            for a in (
                portserver_address,
                os.environ.get("PORTSERVER_ADDRESS"),
                os.environ.get("PORTWARDEN_PORTSERVER_SOCKET"),
            )
            if a
        ]
        # Nothing configured: the daemon's default endpoint, if a daemon serves it.
        fallback = [DEFAULT_PORTSERVER] if not configured and sys.platform == "linux" else []
        for address in configured or fallback:
            if address != "none":
                port = get_port_from_port_server(address, pid, quiet_if_absent=not configured)
                if port:
                    return port
    port = _from_daemon(pid, service)
    if port:
        return port
    return _pick_without_server()


def _daemon_configured() -> bool:
    from .target import default_socket_path

    return bool(os.environ.get("PORTWARDEN_ADDR")) or os.path.exists(default_socket_path())


def _proc_text(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            raw = f.read(4 * MAX_TEXT_BYTES)
    except OSError:
        return ""
    text = raw.rstrip(b"\0\n").replace(b"\0", b" ").decode("utf-8", "replace")
    text = "".join(" " if ord(c) < 32 else c for c in text)
    return text.encode()[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


def _derived_service(pid: int) -> str:
    """``portpicker.<comm>``, as the daemon names portserver requests."""
    comm = _proc_text(pid, "comm") or os.path.basename(sys.argv[0] or "python")
    clean = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in comm)
    return f"portpicker.{clean or 'unknown'}"[:64]


def _from_daemon(pid: Optional[int], service: Optional[str]) -> Optional[int]:
    """A port from the daemon over gRPC (imports grpc): only when one is configured or a service
    was named."""
    if service is None and not _daemon_configured():
        return None
    from .client import Client
    from .errors import PortwardenError

    owner = os.getpid() if pid is None else pid
    try:
        with Client(timeout=PORTSERVER_TIMEOUT) as pw:
            got = pw.allocate(
                service or _derived_service(owner),
                purpose="portpicker.pick_unused_port()",
                started_by=_proc_text(owner, "cmdline"),
                pid=owner,
            )
    except PortwardenError as e:
        print(f"portwarden: no port from the daemon at {e.target or 'its default address'}: {e.message}", file=sys.stderr)
        return None
    _owned_ports.add(got.port)
    return got.port


def _pick_without_server() -> int:
    """A port the kernel picks, free for TCP and UDP (what portpicker does without a server)."""
    for _ in range(10):
        port = bind(0, *_PROTOS[0])
        if port and port not in _random_ports and bind(port, *_PROTOS[1]):
            _random_ports.add(port)
            print(
                f"portwarden: no portserver or daemon configured; port {port} was picked by the "
                "kernel and is not reserved (set PORTSERVER_ADDRESS)",
                file=sys.stderr,
            )
            return port
    raise NoFreePortFoundError()
