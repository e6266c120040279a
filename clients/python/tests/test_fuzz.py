"""A bounded fuzz run against the live daemon: hypothesis sends arbitrary field values and
arbitrary bytes to Allocate, Renew and Release, over TCP and the Unix socket. The daemon must
answer every request with a considered error (never INTERNAL or UNKNOWN, never a crash), and
its state must stay consistent (what List says matches Status, every allocation in range)."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portwarden
from portwarden import ports_pb2

from conftest import RANGE

# Refusals are expected; these codes would mean the daemon broke or blamed itself for input.
BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = st.one_of(st.text(max_size=300), st.text(alphabet="abcxyz._-09", max_size=70))
ints32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
uints32 = st.integers(min_value=0, max_value=2**32 - 1)
uints64 = st.integers(min_value=0, max_value=2**64 - 1)


def _raw(channel: grpc.Channel, method: str):
    return channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def _consistent(client: portwarden.Client) -> None:
    listed = client.list()
    status = client.status()
    in_range = [a for a in listed if RANGE[0] <= a.port <= RANGE[1]]
    assert status.allocated == len(in_range), (status, listed)
    assert len({a.port for a in listed}) == len(listed), "no port twice"


def _call_ok_or_refused(fn) -> None:
    try:
        fn()
    except portwarden.PortwardenError as err:
        assert err.code not in BROKEN, f"{err.code}: {err}"
    except grpc.RpcError as err:
        assert err.code() not in BROKEN, f"{err.code()}: {err.details()}"


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_arbitrary_fields_get_answers_not_failures(daemon, transport):
    addr = daemon.tcp_addr if transport == "tcp" else daemon.unix_addr
    with portwarden.Client(addr) as client:

        @FUZZ
        @given(
            service=texts,
            purpose=texts,
            started_by=texts,
            pid=st.one_of(st.none(), ints32),
            port=st.one_of(st.none(), uints32, st.integers(RANGE[0], RANGE[1])),
            ttl=st.one_of(st.none(), uints64),
            labels=st.dictionaries(texts, texts, max_size=20),
        )
        def allocate(service, purpose, started_by, pid, port, ttl, labels):
            req = ports_pb2.AllocateRequest(
                service=service, purpose=purpose, started_by=started_by, labels=labels
            )
            if pid is not None:
                req.pid = pid
            if port is not None:
                req.port = port
            if ttl is not None:
                req.ttl_seconds = ttl
            try:
                got = client.ports.Allocate(req, timeout=10)
                client.release(got.allocation.port, got.lease_token)
            except grpc.RpcError as err:
                assert err.code() not in BROKEN, f"{err.code()}: {err.details()}"

        allocate()

        @FUZZ
        @given(port=uints32, token=texts, ttl=st.one_of(st.none(), uints64), req=uints64, errs=uints64)
        def renew_and_release(port, token, ttl, req, errs):
            _call_ok_or_refused(lambda: client.renew(port, token, ttl_seconds=ttl, requests_delta=req, errors_delta=errs))
            _call_ok_or_refused(lambda: client.release(port, token))

        renew_and_release()
        _consistent(client)


def test_arbitrary_bytes_are_refused_as_the_clients_error(daemon):
    with portwarden.Client(daemon.tcp_addr) as client:
        methods = [
            "/portwarden.v1.PortsService/Allocate",
            "/portwarden.v1.PortsService/Renew",
            "/portwarden.v1.PortsService/Release",
            "/portwarden.v1.PortsService/CheckPorts",
        ]

        @FUZZ
        @given(method=st.sampled_from(methods), body=st.binary(max_size=2048))
        def send(method, body):
            try:
                _raw(client.channel, method)(body, timeout=10)
            except grpc.RpcError as err:
                assert err.code() not in BROKEN, f"{method}: {err.code()}: {err.details()}"

        send()
        _consistent(client)
