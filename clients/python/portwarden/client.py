"""A friendly synchronous client for the portwarden daemon.

    import portwarden

    with portwarden.Client() as pw:                  # finds the daemon like every portwarden client
        got = pw.allocate("web", purpose="dev server", ttl_seconds=300)
        print(got.port, got.lease_token)
        pw.release(got.port, got.lease_token)

        with pw.lease("worker", ttl_seconds=30) as lease:   # renewed in the background,
            serve_on(lease.port)                            # released on exit

Address discovery (same order as the Rust client and the CLI): the explicit ``addr`` argument,
else ``PORTWARDEN_ADDR`` (``http://host:port``, ``host:port`` or ``unix:/path``), else the default
Unix socket when the file exists, else ``127.0.0.1:7070``.

An ``https://`` address speaks TLS. The daemon's certificate is checked against ``ca`` (else
``PORTWARDEN_CA``, else the system's roots); a daemon that requires client certificates gets
``cert``/``key`` (else ``PORTWARDEN_CLIENT_CERT``/``PORTWARDEN_CLIENT_KEY``)::

    portwarden.Client("https://10.0.0.7:7070", ca="ca.pem", cert="client.pem", key="client-key.pem")
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import grpc

from .errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PortwardenError,
    from_rpc_error,
)
from .model import Allocation, Event, OverallStatus, PortCheck, Released, WatchItem, _overall, watch_item
from .target import DEFAULT_TCP_ADDR, Target, check_socket, default_socket_path
from .v1 import network_pb2, network_pb2_grpc, ports_pb2, ports_pb2_grpc, watchdog_pb2, watchdog_pb2_grpc

__all__ = [
    "Client",
    "Target",
    "AllocateResult",
    "Lease",
    "Watch",
    "DEFAULT_TCP_ADDR",
    "default_socket_path",
    "tls_credentials",
]

#: Sent as the HTTP/2 ``:authority`` over the Unix socket. grpcio >= 1.57 would otherwise send the
#: socket path, which the daemon's HTTP/2 layer (h2) rejects with RST_STREAM PROTOCOL_ERROR
#: (hyperium/h2#487, grpc/grpc#38142) -- every call would fail with INTERNAL.
UNIX_AUTHORITY = "localhost"

DEFAULT_TIMEOUT = 10.0


def tls_credentials(
    ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None
) -> grpc.ChannelCredentials:
    """Channel credentials from PEM files; each argument falls back to its environment variable
    (``PORTWARDEN_CA``, ``PORTWARDEN_CLIENT_CERT``, ``PORTWARDEN_CLIENT_KEY``)."""
    ca = ca or os.environ.get("PORTWARDEN_CA") or None
    cert = cert or os.environ.get("PORTWARDEN_CLIENT_CERT") or None
    key = key or os.environ.get("PORTWARDEN_CLIENT_KEY") or None
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key: set both cert and key (PORTWARDEN_CLIENT_CERT and PORTWARDEN_CLIENT_KEY) or neither")

    def read(path: Optional[str]) -> Optional[bytes]:
        if path is None:
            return None
        with open(path, "rb") as f:
            return f.read()

    return grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))


@dataclass
class AllocateResult:
    """What :meth:`Client.allocate` returns."""

    port: int
    #: Needed to release or renew (unless the caller is root or the same uid over the Unix socket).
    lease_token: str
    #: The allocation as recorded by the daemon.
    allocation: Allocation
    #: Human-readable warnings: a ``prefer`` port outside the managed ranges (never free),
    #: then the findings of the pre-allocation network checks.
    warnings: List[str] = field(default_factory=list)
    #: Overall status of the pre-allocation checks; ``None`` when none ran (a reused allocation).
    network_health: Optional[OverallStatus] = None
    #: The pre-allocation checks (``NetworkReport``: the port's own checks and every system-wide
    #: finding), when the daemon ran them.
    network_report: Optional[network_pb2.NetworkReport] = None
    #: True when the daemon handed back an allocation the caller (or the project) held already.
    reused: bool = False

    @classmethod
    def _from_response(cls, resp: ports_pb2.AllocateResponse) -> "AllocateResult":
        return cls(
            port=resp.allocation.port,
            lease_token=resp.lease_token,
            allocation=Allocation.from_proto(resp.allocation),
            warnings=list(resp.warnings),
            network_health=_overall(resp.network_health),
            network_report=resp.network_report if resp.HasField("network_report") else None,
            reused=resp.reused,
        )


@dataclass
class Lease(AllocateResult):
    """What :meth:`Client.lease` yields: the allocation plus the state of its keep-alive."""

    #: Successful background renewals so far.
    renewals: int = 0
    #: The last error of a background renewal, if any (the keep-alive stops on NotFound,
    #: PermissionDenied, InvalidArgument and FailedPrecondition; it retries other errors).
    renew_error: Optional[PortwardenError] = None


class Client:
    """A connection to the portwarden daemon.

    Args:
        addr: ``http://host:port``, ``host:port`` or ``unix:/path``; ``None`` discovers it
            (``PORTWARDEN_ADDR``, then the default Unix socket if it exists, then 127.0.0.1:7070).
        timeout: deadline in seconds of every call (``None``: no deadline).
        options: extra grpcio channel options.
        credentials: channel credentials for an ``https://`` address (overrides the files below).
        ca: PEM file of the CA that signed the daemon's certificate (``PORTWARDEN_CA``; default:
            the system's roots).
        cert, key: PEM client certificate and its key, for a daemon that requires one
            (``PORTWARDEN_CLIENT_CERT``, ``PORTWARDEN_CLIENT_KEY``).
        server_name: the name the daemon's certificate must carry when it is not the address's
            host (``PORTWARDEN_TLS_SERVER_NAME``), e.g. connecting to a node's IP.

    Every method raises a :class:`portwarden.PortwardenError` subclass on failure. The raw stubs
    are available as ``client.ports``, ``client.network`` and ``client.watchdog``; wrap their
    ``grpc.RpcError`` with :func:`portwarden.errors.from_rpc_error`.
    """

    def __init__(
        self,
        addr: Optional[str] = None,
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        options: Sequence[Tuple[str, Any]] = (),
        credentials: Optional[grpc.ChannelCredentials] = None,
        ca: Optional[str] = None,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        server_name: Optional[str] = None,
    ) -> None:
        self.target = Target.discover(addr)
        if self.target.is_unix:
            unsafe = check_socket(self.target.address)
            if unsafe:
                raise PortwardenError(f"refusing the Unix socket {self.target.address}: {unsafe}", target=str(self.target))
        self.timeout = timeout
        opts = list(options)
        if self.target.is_unix and not any(k == "grpc.default_authority" for k, _ in opts):
            opts.append(("grpc.default_authority", UNIX_AUTHORITY))
        if self.target.secure:
            creds = credentials or tls_credentials(ca=ca, cert=cert, key=key)
            server_name = server_name or os.environ.get("PORTWARDEN_TLS_SERVER_NAME") or None
            if server_name and not any(k == "grpc.ssl_target_name_override" for k, _ in opts):
                opts.append(("grpc.ssl_target_name_override", server_name))
            self.channel = grpc.secure_channel(self.target.grpc_target, creds, options=opts)
        else:
            self.channel = grpc.insecure_channel(self.target.grpc_target, options=opts)
        self.ports = ports_pb2_grpc.PortsServiceStub(self.channel)
        self.network = network_pb2_grpc.NetworkServiceStub(self.channel)
        self.watchdog = watchdog_pb2_grpc.WatchdogServiceStub(self.channel)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"portwarden.Client({str(self.target)!r})"

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err, str(self.target)) from err

    # -- PortsService ------------------------------------------------------------------------

    def allocate(
        self,
        service: str,
        purpose: str = "",
        started_by: str = "",
        pid: Optional[int] = None,
        port: Optional[int] = None,
        ttl_seconds: Optional[int] = None,
        labels: Optional[Mapping[str, str]] = None,
        owner_is_caller: bool = False,
        pool: str = "service",
        project: str = "",
    ) -> AllocateResult:
        """Allocates a port for ``service`` (a specific one when ``port`` is given).

        ``pid`` names an owning process (it must exist); ``ttl_seconds`` makes it a lease that
        must be renewed; ``owner_is_caller`` (Unix socket only) makes the calling process the
        owner. With none of these the allocation is kept until released. ``pool="test"`` draws
        from the daemon's test pool (for test suites) instead of the services' ranges.

        ``project`` (an absolute, canonical directory path) makes it a project port:
        ``service`` is then the port's name in the project ("web"), and the project gets the
        same port back on every allocation of that name while nothing else holds it.
        """
        pools = {"service": ports_pb2.POOL_SERVICE, "test": ports_pb2.POOL_TEST}
        if pool not in pools:
            raise ValueError(f"pool must be 'service' or 'test', not {pool!r}")
        req = ports_pb2.AllocateRequest(
            service=service,
            purpose=purpose,
            started_by=started_by,
            labels=dict(labels or {}),
            owner_is_caller=owner_is_caller,
            pool=pools[pool],
            project=project,
        )
        if pid is not None:
            req.pid = pid
        if port is not None:
            req.port = port
        if ttl_seconds is not None:
            req.ttl_seconds = ttl_seconds
        return AllocateResult._from_response(self._call(self.ports.Allocate, req))

    def release(self, port: int, lease_token: str = "") -> Released:
        """Gives ``port`` back. Returns the released allocation and when its quarantine ends."""
        resp = self._call(self.ports.Release, ports_pb2.ReleaseRequest(port=port, lease_token=lease_token))
        return Released.from_proto(resp)

    def renew(
        self,
        port: int,
        lease_token: str = "",
        ttl_seconds: Optional[int] = None,
        requests_delta: int = 0,
        errors_delta: int = 0,
    ) -> Allocation:
        """Extends a lease (``ttl_seconds`` changes its length) and adds to its counters."""
        req = ports_pb2.RenewRequest(
            port=port, lease_token=lease_token, requests_delta=requests_delta, errors_delta=errors_delta
        )
        if ttl_seconds is not None:
            req.ttl_seconds = ttl_seconds
        return Allocation.from_proto(self._call(self.ports.Renew, req).allocation)

    def get(self, port: int) -> Allocation:
        """The allocation of ``port``; raises :class:`portwarden.NotFound` when it has none."""
        return Allocation.from_proto(self._call(self.ports.Get, ports_pb2.GetRequest(port=port)).allocation)

    def list(self, service: str = "") -> List[Allocation]:
        """Every allocation, or only those of ``service``."""
        resp = self._call(self.ports.List, ports_pb2.ListRequest(service=service))
        return [Allocation.from_proto(a) for a in resp.allocations]

    def status(self) -> ports_pb2.StatusResponse:
        """Ranges, totals (allocated, available, quarantined, unavailable) and range warnings."""
        return self._call(self.ports.Status, ports_pb2.StatusRequest())

    def check_ports(self, ports: Iterable[int]) -> List[PortCheck]:
        """Whether each port could be allocated now, and if not why."""
        if isinstance(ports, int):
            ports = [ports]
        resp = self._call(self.ports.CheckPorts, ports_pb2.CheckPortsRequest(ports=list(ports)))
        return [PortCheck.from_proto(r) for r in resp.results]

    # -- network diagnostics -----------------------------------------------------------------

    def project_ports(self, project: str) -> List[ports_pb2.ProjectPort]:
        """The ports ``project`` (its directory) remembers, by name, with what holds each now."""
        req = ports_pb2.ListProjectPortsRequest(project=project)
        return list(self._call(self.ports.ListProjectPorts, req).ports)

    def forget_project(self, project: str) -> ports_pb2.ForgetProjectResponse:
        """Releases ``project``'s allocations and forgets its ports (its owner or root only)."""
        return self._call(self.ports.ForgetProject, ports_pb2.ForgetProjectRequest(project=project))

    def network_health(self, port: Optional[int] = None) -> network_pb2.NetworkReport:
        """Every network check, fresh (plus the per-port ones for ``port``): ``.status``,
        ``.critical_issues``, ``.warnings`` and ``.checks`` (name, status, note, fields)."""
        req = network_pb2.HealthRequest() if port is None else network_pb2.HealthRequest(port=port)
        return self._call(self.network.Health, req).report

    def network_stats(self) -> network_pb2.StatsResponse:
        """I/O counters (total and per interface) and TCP connections by state."""
        return self._call(self.network.Stats, network_pb2.StatsRequest())

    def port_exhaustion(self) -> network_pb2.Check:
        """Ephemeral port usage (ip_local_port_range) as a check."""
        return self._call(self.network.PortExhaustion, network_pb2.PortExhaustionRequest()).check

    def tls_readiness(self) -> network_pb2.Check:
        """The configured certificate and key, as the ssl_readiness check."""
        return self._call(self.network.TlsReadiness, network_pb2.TlsReadinessRequest()).check

    # -- watchdog ----------------------------------------------------------------------------

    def watchdog_status(self) -> watchdog_pb2.WatchdogStatusResponse:
        """The watchdog: running, passes, issues detected, reclaimed, subscribers, last pass,
        the event log's bounds, I/O rates."""
        return self._call(self.watchdog.Status, watchdog_pb2.WatchdogStatusRequest())

    def watch(
        self,
        service: str = "",
        port: Optional[int] = None,
        kinds: Iterable[str] = (),
        since_sequence: Optional[int] = None,
        snapshot: bool = False,
    ) -> "Watch":
        """Follows the daemon's events: an iterator of :class:`Event` (with ``snapshot=True``, first
        one :class:`Existing` per current allocation and a :class:`SnapshotComplete`). ``kinds`` are names (``"allocated"``,
        ``"health_changed"``, ...). ``since_sequence`` resumes after an event already seen.

        Iteration ends when the daemon stops or :meth:`Watch.close` is called (from any thread);
        errors raise :class:`portwarden.PortwardenError` (``OutOfRange`` for a compacted
        position). The watch has no deadline."""
        req = watchdog_pb2.WatchRequest(
            service=service,
            kinds=[_event_kind(k) for k in kinds],
            snapshot=snapshot,
        )
        if port is not None:
            req.port = port
        if since_sequence is not None:
            req.since_sequence = since_sequence
        return Watch(self.watchdog.Watch(req), str(self.target))

    def history(
        self,
        port: Optional[int] = None,
        service: str = "",
        kinds: Iterable[str] = (),
        limit: int = 50,
    ) -> List[Event]:
        """Logged events of ``port`` and/or ``service``, newest first, at most ``limit``."""
        events: List[Event] = []
        token = ""
        while len(events) < limit:
            req = watchdog_pb2.HistoryRequest(
                service=service,
                kinds=[_event_kind(k) for k in kinds],
                page_size=min(limit - len(events), 1000),
                page_token=token,
            )
            if port is not None:
                req.port = port
            page = self._call(self.watchdog.History, req)
            events.extend(Event.from_proto(e) for e in page.events)
            token = page.next_page_token
            if not token:
                break
        return events

    # -- conveniences ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(
        self,
        service: str,
        ttl_seconds: Optional[int] = None,
        *,
        purpose: str = "",
        started_by: str = "",
        pid: Optional[int] = None,
        port: Optional[int] = None,
        labels: Optional[Mapping[str, str]] = None,
        owner_is_caller: bool = False,
        keepalive: bool = True,
    ) -> Iterator[Lease]:
        """Allocates a port for the ``with`` block and releases it on exit.

        With ``ttl_seconds`` and ``keepalive`` (the default), a background thread renews the
        lease every ``ttl_seconds / 3`` seconds so it outlives a long block. Releasing is
        idempotent: a port already released (NotFound) is not an error.
        """
        got = self.allocate(
            service,
            purpose=purpose,
            started_by=started_by,
            pid=pid,
            port=port,
            ttl_seconds=ttl_seconds,
            labels=labels,
            owner_is_caller=owner_is_caller,
        )
        lease = Lease(**got.__dict__)
        stop = threading.Event()
        renewer: Optional[threading.Thread] = None
        if keepalive and ttl_seconds:
            renewer = threading.Thread(
                target=self._keepalive,
                args=(lease, max(ttl_seconds / 3.0, 0.2), stop),
                name=f"portwarden-keepalive-{lease.port}",
                daemon=True,
            )
            renewer.start()
        try:
            yield lease
        except BaseException:
            stop.set()
            with contextlib.suppress(PortwardenError):  # do not mask the block's own error
                self.release(lease.port, lease.lease_token)
            raise
        else:
            stop.set()
            if renewer is not None:
                renewer.join()
            with contextlib.suppress(NotFound):
                self.release(lease.port, lease.lease_token)
        finally:
            stop.set()

    def _keepalive(self, lease: Lease, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                lease.allocation = self.renew(lease.port, lease.lease_token)
                lease.renewals += 1
                lease.renew_error = None
            except PortwardenError as err:
                lease.renew_error = err
                if isinstance(err, (NotFound, PermissionDenied, InvalidArgument, FailedPrecondition)):
                    return


def _event_kind(name: str) -> int:
    """``"health_changed"`` -> ``EVENT_KIND_HEALTH_CHANGED``; unknown names raise ValueError."""
    wire = "EVENT_KIND_" + name.upper().replace("-", "_")
    try:
        value = watchdog_pb2.EventKind.Value(wire)
    except ValueError:
        value = 0
    if value in (0, watchdog_pb2.EVENT_KIND_NETWORK_ISSUE):
        raise ValueError(f"{name!r} is not an event kind")
    return value


class Watch:
    """An open event stream (see :meth:`Client.watch`): iterate it; :meth:`close` ends it
    cleanly, also from another thread. Usable as a context manager."""

    def __init__(self, call: Any, target: str) -> None:
        self._call = call
        self._target = target
        self._closed = False

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> WatchItem:
        try:
            return watch_item(next(self._call))
        except StopIteration:
            raise
        except grpc.RpcError as err:
            if self._closed and err.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(err, self._target) from err

    def events(self) -> Iterator[Event]:
        """Only the events (skips snapshot items and the marker)."""
        for item in self:
            if isinstance(item, Event):
                yield item

    def close(self) -> None:
        self._closed = True
        self._call.cancel()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
