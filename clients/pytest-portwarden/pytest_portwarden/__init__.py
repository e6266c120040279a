"""pytest fixtures that hand out TCP ports from the portwarden daemon's test pool.

    def test_server(free_port):                 # one port for this test, given back after it
        serve(port=free_port)

    def test_cluster(port_factory):             # session-scoped: a fresh port per call
        a, b = port_factory(), port_factory("db")

Each port is allocated from the test pool (``pool: test``) and owned by the process that runs the
test (the pytest-xdist worker, under ``-n``): no two workers get the same port, and the daemon
takes back the ports of a worker that crashed within about a second. The daemon is found as the
``portwarden`` CLI finds it (``PORTWARDEN_ADDR``, then your own Unix socket, the system one, then
``127.0.0.1:7070``) once per session, on first use. When no daemon answers, the fixtures fall back
to ports the kernel picks (bound to port 0, then closed, as portpicker does without a server) and
say so once per session with a :class:`PortwardenWarning`.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Set

import pytest

from portwarden.dropin import bind
from portwarden.target import Target

from .rest import DaemonError, RestDaemon, Unreachable, connect_first

__all__ = ["DaemonError", "PortFactory", "PortwardenWarning", "TestPorts"]

#: What a service name may be (the daemon's rule).
SERVICE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: purpose and started_by hold at most this many bytes (the daemon's limit).
MAX_TEXT_BYTES = 256
#: Kernel picks tried before giving up, in the fallback.
FALLBACK_TRIES = 20


class PortwardenWarning(UserWarning):
    """The fixtures could not reach a daemon and use ports the kernel picks. Make it fatal with
    ``-W error::pytest_portwarden.PortwardenWarning``."""


def _text(s: str) -> str:
    return s.encode()[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


def _current_test() -> str:
    """The running test's node id (pytest sets ``PYTEST_CURRENT_TEST`` to "<id> (<phase>)")."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.rsplit(" (", 1)[0] if current else ""


def default_service(rootdir: str) -> str:
    """``pytest.<the rootdir's name>``, made a valid service name."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(os.path.abspath(rootdir))) or "tests"
    return f"pytest.{base}"[:64]


class TestPorts:
    """The session's source of ports: the daemon found on first use, else the kernel."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, service: str) -> None:
        self.service = service
        self.daemon: Optional[RestDaemon] = None
        #: The test pool's range ("15000-24999") when a daemon answers.
        self.pool: Optional[str] = None
        #: Why there is no daemon, once that is known.
        self.fallback_reason: Optional[str] = None
        self._checked = False
        self._warned = False
        self._tokens: Dict[int, str] = {}
        self._picked: Set[int] = set()

    def _check(self) -> None:
        if self._checked:
            return
        explicit = bool(os.environ.get("PORTWARDEN_ADDR"))
        try:
            self.daemon, status = connect_first(Target.candidates(), explicit)
        except Unreachable as e:
            self.fallback_reason = str(e)
        else:
            pool = status.get("test_pool") or {}
            self.pool = pool.get("port_range")
        self._checked = True

    def take(self, service: Optional[str] = None) -> int:
        """A port for ``service`` (default: the session's), owned by this process."""
        if service is not None and (not isinstance(service, str) or not SERVICE_NAME.fullmatch(service)):
            raise ValueError(f"name must match [A-Za-z0-9._-]{{1,64}} (it is the allocation's service name); got {service!r}")
        self._check()
        if self.daemon is None:
            return self._from_kernel()
        try:
            return self._allocate(service or self.service)
        except DaemonError as e:
            if e.status != 0:
                raise
        # The daemon stopped answering since it was found: look again, once.
        self.daemon.close()
        self.daemon, self._checked = None, False
        self._check()
        if self.daemon is None:
            return self._from_kernel()
        return self._allocate(service or self.service)

    def _allocate(self, service: str) -> int:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        body = {
            "service": service,
            "pool": "test",
            "pid": os.getpid(),
            "purpose": _text(_current_test() or "pytest session"),
            "started_by": _text(f"pytest{' worker ' + worker if worker else ''} (pid {os.getpid()})"),
        }
        try:
            got = self.daemon.allocate(body)
        except DaemonError as e:
            raise DaemonError(e.target, e.status, e.code, f"no test port for {service}: {e.message}") from None
        port = int(got["allocation"]["port"])
        self._tokens[port] = got["lease_token"]
        return port

    def give_back(self, port: int) -> None:
        """Releases a port this session took from the daemon (the kernel's need nothing)."""
        self._picked.discard(port)
        token = self._tokens.pop(port, None)
        if token is not None and self.daemon is not None:
            try:
                self.daemon.release(port, token)
            except DaemonError:
                pass  # owned by this process: the daemon takes it back when the process exits

    def close(self) -> None:
        for port in list(self._tokens):
            self.give_back(port)
        if self.daemon is not None:
            self.daemon.close()

    def _from_kernel(self) -> int:
        if not self._warned:
            warnings.warn(
                PortwardenWarning(
                    f"portwarden: no daemon answered ({self.fallback_reason}); free_port and "
                    "port_factory use ports the kernel picks (bound to port 0, then closed), which "
                    "are not reserved: another process may take one before the test binds it. "
                    "Start `portwarden serve` or set PORTWARDEN_ADDR"
                ),
                stacklevel=2,
            )
            self._warned = True  # only once it was not raised (-W error raises it on every call)
        for _ in range(FALLBACK_TRIES):
            port = bind(0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            if port and port not in self._picked and bind(port, socket.SOCK_DGRAM, socket.IPPROTO_UDP):
                self._picked.add(port)
                return port
        raise RuntimeError(f"no free port from the kernel after {FALLBACK_TRIES} tries")


class PortFactory:
    """``port_factory(name=None) -> int``: a fresh port per call, held until the session ends
    or :meth:`release`. ``name`` is the allocation's service name (default ``pytest.<rootdir>``)."""

    def __init__(self, ports: TestPorts) -> None:
        self._ports = ports
        self._held: List[int] = []

    def __call__(self, name: Optional[str] = None) -> int:
        port = self._ports.take(name)
        self._held.append(port)
        return port

    def release(self, port: int) -> None:
        """Gives a port back before the session ends."""
        if port in self._held:
            self._held.remove(port)
            self._ports.give_back(port)

    def release_all(self) -> None:
        for port in list(self._held):
            self.release(port)


@pytest.fixture(scope="session")
def portwarden_ports(request: pytest.FixtureRequest) -> Iterator[TestPorts]:
    """The session's source of test ports (``.pool``, ``.fallback_reason``)."""
    ports = TestPorts(default_service(str(request.config.rootpath)))
    yield ports
    ports.close()


@pytest.fixture(scope="session")
def port_factory(portwarden_ports: TestPorts) -> Iterator[Callable[..., int]]:
    """A callable that hands out a fresh port per call: ``port_factory()`` or
    ``port_factory("db")``. Session-scoped; the ports are released when the session ends."""
    factory = PortFactory(portwarden_ports)
    yield factory
    factory.release_all()


@pytest.fixture
def free_port(portwarden_ports: TestPorts) -> Iterator[int]:
    """A port for this test, released after it."""
    port = portwarden_ports.take()
    yield port
    portwarden_ports.give_back(port)
