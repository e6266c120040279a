"""``import portwarden as portpicker``: portpicker's calls answered by portwarden, without
importing grpc on the portserver path; and the seed's socket hardening."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import pytest

import portwarden
import portwarden.dropin as dropin

PS_RANGE = (26410, 26419)


@pytest.fixture
def portserver(start_daemon, monkeypatch):
    """A daemon with the portserver endpoint; PORTSERVER_ADDRESS points at it."""
    address = f"@pw-test-{os.getpid()}-dropin"
    d = start_daemon(port_range=PS_RANGE, extra=["--portserver-socket", address])
    monkeypatch.setenv("PORTSERVER_ADDRESS", address)
    for pool in (dropin._free_ports, dropin._owned_ports, dropin._random_ports):
        pool.clear()
    d.portserver_address = address
    return d


def _held(d):
    with portwarden.Client(d.unix_addr) as pw:
        return {a.port: a for a in pw.list()}


def test_pick_unused_port_is_a_managed_port_owned_by_this_process(portserver):
    import portwarden as portpicker

    port = portpicker.pick_unused_port()
    assert isinstance(port, int) and PS_RANGE[0] <= port <= PS_RANGE[1]
    assert _held(portserver)[port].pid == os.getpid()
    assert portpicker.is_port_free(port), "allocated, not bound: free at the kernel level"

    # portpicker's return_port: handed out again by this process without asking the daemon.
    portpicker.return_port(port)
    assert portpicker.pick_unused_port() == port
    assert len(_held(portserver)) == 1


def test_an_explicit_portserver_address_and_a_pid_are_honoured(portserver, monkeypatch):
    monkeypatch.delenv("PORTSERVER_ADDRESS")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        port = portwarden.pick_unused_port(pid=sleeper.pid, portserver_address=portserver.portserver_address)
        assert _held(portserver)[port].pid == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_busy_port_is_not_free():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert not portwarden.is_port_free(s.getsockname()[1])


def test_a_one_shot_pick_does_not_import_grpc(portserver):
    code = (
        "import sys, portwarden\n"
        "port = portwarden.pick_unused_port()\n"
        "assert 'grpc' not in sys.modules, 'grpc was imported'\n"
        "print(port)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert PS_RANGE[0] <= int(out.stdout) <= PS_RANGE[1]
    # The gRPC names still resolve (on first use).
    out = subprocess.run(
        [sys.executable, "-c", "import portwarden; print(portwarden.Client.__name__, portwarden.ports_pb2.__name__)"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.split() == ["Client", "portwarden.v1.ports_pb2"], out.stderr


def test_a_service_name_goes_through_the_daemon(daemon, monkeypatch):
    monkeypatch.setenv("PORTWARDEN_ADDR", daemon.unix_addr)
    port = portwarden.pick_unused_port(service="pytest-web")
    with portwarden.Client(daemon.unix_addr) as pw:
        a = pw.get(port)
    assert a.service == "pytest-web" and a.pid == os.getpid()


def test_without_a_portserver_or_daemon_the_kernel_picks(monkeypatch, capsys):
    monkeypatch.setattr(dropin, "_daemon_configured", lambda: False)
    port = portwarden.pick_unused_port()
    assert 0 < port < 65536
    assert "not reserved" in capsys.readouterr().err


def test_a_portserver_that_answers_zero_is_not_a_port(short_tmp):
    path = os.path.join(short_tmp, "zero.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        import threading

        def answer():
            conn, _ = server.accept()
            conn.recv(64)
            conn.sendall(b"0\n")
            conn.close()

        t = threading.Thread(target=answer)
        t.start()
        assert portwarden.get_port_from_port_server(path) is None
        t.join()


def test_bind_hardened_applies_the_seed_list_and_reports_it():
    sock, applied = portwarden.bind_hardened(0)
    with sock:
        assert applied.complete, str(applied)
        assert applied.as_dict()["SO_REUSEPORT"] is False  # reported, never set
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= portwarden.BUFFER_BYTES
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = sock.accept()
            with conn:
                portwarden.harden_accepted(conn)
                assert conn.gettimeout() == portwarden.ACCEPTED_TIMEOUT
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), "inherited from the listener"
        with pytest.raises(OSError) as taken:
            portwarden.bind_hardened(port)
        assert taken.value.errno == errno.EADDRINUSE


def test_harden_reports_what_a_socket_refuses():
    with socket.socket(socket.AF_UNIX) as s:  # no TCP_NODELAY on a Unix socket
        applied = portwarden.harden(s)
    assert not applied.applied("TCP_NODELAY")
    assert not applied.complete
    assert "TCP_NODELAY" in str(applied)
