"""The Python client against a real portwarden daemon (see conftest.py)."""

from __future__ import annotations

import time

import grpc
import pytest

import portwarden
from portwarden import ports_pb2
from portwarden.v1 import ports_pb2_grpc

from conftest import RANGE


def _grpcio_version():
    return tuple(int(x) for x in grpc.__version__.split(".")[:2])


def _roundtrip(client: portwarden.Client) -> None:
    """allocate -> list -> get -> release -> gone, through the friendly API."""
    got = client.allocate(
        "web",
        purpose="python client test",
        started_by="pytest",
        ttl_seconds=60,
        labels={"team": "infra", "env": "test"},
    )
    assert RANGE[0] <= got.port <= RANGE[1]
    assert got.lease_token
    assert isinstance(got.allocation, portwarden.Allocation)
    assert got.allocation.port == got.port
    assert got.allocation.service == "web"
    assert got.allocation.purpose == "python client test"
    assert got.allocation.started_by == "pytest"
    assert dict(got.allocation.labels) == {"team": "infra", "env": "test"}
    assert got.allocation.ttl_seconds == 60
    assert got.allocation.owner_kind is portwarden.OwnerKind.LEASE
    assert got.allocation.pid is None and got.allocation.renewed_at is None
    assert got.allocation.expires_at.tzinfo is not None
    assert isinstance(got.warnings, list)
    assert got.network_health is None or isinstance(got.network_health, portwarden.OverallStatus)

    other = client.allocate("db")
    assert other.port != got.port

    listed = client.list()
    assert sorted(a.port for a in listed) == sorted([got.port, other.port])
    assert [a.port for a in client.list("web")] == [got.port]
    assert client.list("nobody") == []

    fetched = client.get(got.port)
    assert fetched.service == "web"
    assert fetched.port == got.port

    status = client.status()
    assert status.allocated == 2
    assert status.total == RANGE[1] - RANGE[0] + 1
    assert [(r.start, r.end) for r in status.ranges] == [RANGE]

    released = client.release(got.port, got.lease_token)
    assert released.allocation.port == got.port
    assert released.allocation.service == "web"
    with pytest.raises(portwarden.NotFound):
        client.get(got.port)
    assert [a.port for a in client.list()] == [other.port]
    client.release(other.port, other.lease_token)
    assert client.list() == []


def test_roundtrip_over_tcp(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        assert client.target.kind == "tcp"
        _roundtrip(client)


def test_roundtrip_over_unix_socket(daemon):
    with portwarden.Client(daemon.unix_addr) as client:
        assert client.target == portwarden.Target("unix", daemon.socket)
        _roundtrip(client)


def test_unix_socket_needs_the_authority_override(daemon):
    """Why the client sets grpc.default_authority: grpcio >= 1.57 sends the socket path as
    :authority and the daemon's h2 resets the stream (hyperium/h2#487)."""
    if _grpcio_version() < (1, 57):
        pytest.skip("grpcio < 1.57 sends 'localhost' as the authority on its own")
    target = f"unix:{daemon.socket}"

    with grpc.insecure_channel(target) as bare:
        with pytest.raises(grpc.RpcError) as err:
            ports_pb2_grpc.PortsServiceStub(bare).Status(ports_pb2.StatusRequest(), timeout=5)
    # h2 answers RST_STREAM(PROTOCOL_ERROR), which grpcio reports as INTERNAL.
    assert err.value.code() == grpc.StatusCode.INTERNAL, err.value

    with grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")]) as fixed:
        resp = ports_pb2_grpc.PortsServiceStub(fixed).Status(ports_pb2.StatusRequest(), timeout=5)
    assert resp.total == RANGE[1] - RANGE[0] + 1


def test_unix_socket_owner_is_caller(daemon):
    import os

    with portwarden.Client(daemon.unix_addr) as client:
        got = client.allocate("proc-owned", owner_is_caller=True)
        assert got.allocation.pid == os.getpid()
        assert got.allocation.owner_kind is portwarden.OwnerKind.PROCESS
        assert got.allocation.owner_uid == os.geteuid()
        client.release(got.port, got.lease_token)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"service": "bad name!"}, "service"),
        ({"service": "web", "ttl_seconds": 0}, "ttl_seconds"),
        ({"service": "web", "port": RANGE[1] + 1}, "port"),
        ({"service": "web", "port": 80}, "port"),
        ({"service": "web", "purpose": "x" * 300}, "purpose"),
    ],
)
def test_bad_input_raises_invalid_argument_naming_the_field(daemon, kwargs, field):
    with portwarden.Client(daemon.tcp_addr) as client:
        with pytest.raises(portwarden.InvalidArgument) as err:
            client.allocate(**kwargs)
        e = err.value
        assert isinstance(e, portwarden.PortwardenError)
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert list(e.fields) == [field], e.fields
        assert e.fields[field]
        assert e.message
        assert field in str(e)
        assert isinstance(e.__cause__, grpc.RpcError)
        assert client.status().allocated == 0
        assert client.list() == []


def test_bad_input_reports_every_field(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        with pytest.raises(portwarden.InvalidArgument) as err:
            client.allocate("bad name!", ttl_seconds=0, port=1)
    assert set(err.value.fields) == {"service", "ttl_seconds", "port"}
    assert "must match" in err.value.fields["service"]


def test_wrong_token_is_denied_and_changes_nothing(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        got = client.allocate("web", ttl_seconds=60)
        before = client.get(got.port)

        with pytest.raises(portwarden.PermissionDenied) as err:
            client.release(got.port, "not-the-token")
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert isinstance(err.value, PermissionError)
        with pytest.raises(portwarden.PermissionDenied):
            client.renew(got.port, "not-the-token", ttl_seconds=3600, requests_delta=5)

        after = client.get(got.port)
        assert after == before
        assert [a.port for a in client.list()] == [got.port]
        assert client.status().allocated == 1

        client.release(got.port, got.lease_token)
        assert client.list() == []


def test_renew_extends_lease_and_counts(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        got = client.allocate("web", ttl_seconds=60)
        renewed = client.renew(got.port, got.lease_token, ttl_seconds=120, requests_delta=3, errors_delta=1)
        assert renewed.ttl_seconds == 120
        assert renewed.request_count == 3
        assert renewed.error_count == 1
        assert renewed.renewed_at is not None
        assert renewed.expires_at > got.allocation.expires_at
        assert client.get(got.port).request_count == 3


def test_not_found_and_already_exists(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        with pytest.raises(portwarden.NotFound) as err:
            client.get(RANGE[0])
        assert isinstance(err.value, LookupError)
        with pytest.raises(portwarden.NotFound):
            client.release(RANGE[0], "whatever")

        got = client.allocate("web", port=RANGE[0] + 3)
        assert got.port == RANGE[0] + 3
        with pytest.raises(portwarden.AlreadyExists):
            client.allocate("other", port=RANGE[0] + 3)


def test_project_ports_come_back_and_are_forgotten(daemon, tmp_path):
    project = str(tmp_path.resolve())
    with portwarden.Client(daemon.unix_addr) as client:
        web = client.allocate("web", project=project)
        assert web.allocation.service == "web." + tmp_path.name
        again = client.allocate("web", project=project)
        assert (again.port, again.reused) == (web.port, True)
        ports = client.project_ports(project)
        assert [(p.name, p.port, p.state) for p in ports] == [
            ("web", web.port, ports_pb2.PROJECT_PORT_STATE_HELD)
        ]
        gone = client.forget_project(project)
        assert [a.port for a in gone.released] == [web.port]
        assert client.project_ports(project) == []
        with pytest.raises(portwarden.InvalidArgument) as err:
            client.allocate("web", project="relative/dir")
        assert "project" in err.value.fields


def test_check_ports(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        got = client.allocate("web")
        free = RANGE[1] if got.port != RANGE[1] else RANGE[0]
        results = {r.port: r for r in client.check_ports([got.port, free, RANGE[1] + 100])}
        assert results[got.port].state == portwarden.PortState.ALLOCATED
        assert results[free].state == portwarden.PortState.FREE
        assert results[free].in_managed_range
        assert results[RANGE[1] + 100].state is portwarden.PortState.OUTSIDE_RANGE
        assert not results[RANGE[1] + 100].in_managed_range
        with pytest.raises(portwarden.InvalidArgument) as err:
            client.check_ports([])
        assert "ports" in err.value.fields


def test_lease_context_manager(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        with client.lease("worker", ttl_seconds=30, purpose="ctx") as lease:
            assert isinstance(lease, portwarden.AllocateResult)
            assert client.get(lease.port).service == "worker"
            assert client.get(lease.port).purpose == "ctx"
        with pytest.raises(portwarden.NotFound):
            client.get(lease.port)

        # Released even when the block fails, and the block's error propagates.
        with pytest.raises(RuntimeError, match="boom"):
            with client.lease("worker") as lease:
                port = lease.port
                raise RuntimeError("boom")
        with pytest.raises(portwarden.NotFound):
            client.get(port)

        # Releasing inside the block is fine.
        with client.lease("worker") as lease:
            client.release(lease.port, lease.lease_token)
        assert client.list() == []

        # A failed allocation raises and leaves nothing behind.
        with pytest.raises(portwarden.InvalidArgument):
            with client.lease("bad name!"):
                pytest.fail("not reached")


def test_lease_keepalive_renews(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        with client.lease("worker", ttl_seconds=1) as lease:
            first_expiry = lease.allocation.expires_at
            time.sleep(1.5)
            assert lease.renew_error is None
            assert lease.renewals >= 2
            current = client.get(lease.port)
            assert current.renewed_at is not None
            assert current.expires_at > first_expiry
        assert client.list() == []


def test_discovery_from_environment(daemon, monkeypatch):
    for value in (f"http://{daemon.tcp_addr}", daemon.tcp_addr, daemon.unix_addr, f"unix://{daemon.socket}"):
        monkeypatch.setenv("PORTWARDEN_ADDR", value)
        with portwarden.Client() as client:
            assert client.status().total == RANGE[1] - RANGE[0] + 1, value
            assert client.target.kind == ("unix" if value.startswith("unix:") else "tcp")

    # An explicit address beats the environment.
    monkeypatch.setenv("PORTWARDEN_ADDR", "unix:/nonexistent/portwarden.sock")
    with portwarden.Client(daemon.tcp_addr) as client:
        assert client.status().total == RANGE[1] - RANGE[0] + 1
    with portwarden.Client(timeout=2) as client:
        assert client.target == portwarden.Target("unix", "/nonexistent/portwarden.sock")
        with pytest.raises(portwarden.Unavailable):
            client.status()


def test_discovery_default_socket_then_tcp(daemon, monkeypatch, short_tmp):
    import os

    import portwarden.target as pwt

    runtime_dir = os.path.join(short_tmp, "xdg")
    os.mkdir(runtime_dir)
    monkeypatch.setattr(pwt, "_euid", lambda: 4242)
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime_dir)
    default = os.path.join(runtime_dir, "portwarden.sock")
    assert portwarden.default_socket_path() == default

    # No socket file: fall back to TCP 127.0.0.1:7070.
    assert portwarden.Target.discover() == portwarden.Target("tcp", "http://127.0.0.1:7070")

    # The socket exists: it is used (here a symlink to the test daemon's socket).
    os.symlink(daemon.socket, default)
    with portwarden.Client() as client:
        assert client.target == portwarden.Target("unix", default)
        assert client.status().total == RANGE[1] - RANGE[0] + 1

    # PORTWARDEN_ADDR still wins over the socket.
    monkeypatch.setenv("PORTWARDEN_ADDR", "127.0.0.1:1")
    assert portwarden.Target.discover() == portwarden.Target("tcp", "http://127.0.0.1:1")


def test_unreachable_daemon_raises_unavailable():
    with portwarden.Client("127.0.0.1:1", timeout=3) as client:
        with pytest.raises(portwarden.Unavailable) as err:
            client.status()
    assert isinstance(err.value, ConnectionError)
    assert "127.0.0.1:1" in str(err.value)


def test_network_diagnostics(daemon):
    import socket

    from portwarden.v1 import network_pb2

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with portwarden.Client(daemon.tcp_addr) as client:
            report = client.network_health(port)
            names = {c.name for c in report.checks}
            assert {"ipv4_available", "firewall", "time_wait_sockets", "dns_resolution",
                    "port_exhaustion", "ssl_readiness", "listen_overflows"} <= names
            firewall = next(c for c in report.checks if c.name == "firewall")
            assert firewall.fields["in_use"] is True
            assert report.status in (network_pb2.OVERALL_STATUS_HEALTHY,
                                     network_pb2.OVERALL_STATUS_WARNING,
                                     network_pb2.OVERALL_STATUS_CRITICAL)
            stats = client.network_stats()
            assert stats.connections.by_status["LISTEN"] >= 2  # ours and the daemon's
            assert any(i.name == "lo" for i in stats.interfaces)
            assert "ephemeral_ports_total" in client.port_exhaustion().fields
            assert client.tls_readiness().name == "ssl_readiness"
            with pytest.raises(portwarden.InvalidArgument) as err:
                client.network_health(70000)
            assert "port" in err.value.fields


def test_the_dataclasses_read_as_the_rest_json(daemon):
    """One vocabulary: the Python Allocation and PortCheck have the REST objects' keys, and the
    same values (enums by their JSON spelling, times at the same millisecond)."""
    import dataclasses
    import enum
    import json
    import urllib.request

    def rest(path):
        with urllib.request.urlopen(f"http://{daemon.tcp_addr}{path}", timeout=5) as resp:
            return json.load(resp)

    def as_json(value):
        if isinstance(value, enum.Enum):
            return value.value
        if hasattr(value, "isoformat"):
            return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if dataclasses.is_dataclass(value):
            return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return value

    with portwarden.Client(daemon.unix_addr) as client:
        got = client.allocate("same", ttl_seconds=60, owner_is_caller=True, labels={"k": "v"})
        client.renew(got.port, got.lease_token)
        mine = client.get(got.port)
        theirs = rest(f"/api/ports/allocations/{got.port}")
        assert [f.name for f in dataclasses.fields(mine)] == list(theirs), "same keys, same order"
        assert as_json(mine) == theirs
        assert mine.owner_kind is portwarden.OwnerKind.PROCESS_AND_LEASE

        [check] = client.check_ports([got.port])
        schemas = rest("/api/openapi.json")["components"]["schemas"]
        assert {f.name for f in dataclasses.fields(check)} == set(schemas["PortCheck"]["properties"])
        assert {s.value for s in portwarden.PortState} == set(schemas["PortState"]["enum"])
        assert {k.value for k in portwarden.OwnerKind} == set(schemas["OwnerKind"]["enum"])
        assert check.state is portwarden.PortState.ALLOCATED and check.holder
        client.release(got.port, got.lease_token)
