"""The real portpicker package (PyPI) against portwarden's portserver endpoint, switched by
PORTSERVER_ADDRESS alone: ports from the managed range, distinct across concurrent processes,
reclaimed when each process exits, over abstract and path sockets alike."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

import portwarden
from conftest import daemon_binary

pytest.importorskip("portpicker")

#: A process that picks one port with portpicker, prints "port pid", and holds it until its stdin
#: closes.
HOLDER = textwrap.dedent(
    """
    import os, sys, portpicker
    print(portpicker.pick_unused_port(), os.getpid(), flush=True)
    sys.stdin.read()
    """
)

#: Forks N children that wait for a shared start signal, then each picks a port with portpicker
#: at the same moment, reports "port pid" and holds it until the parent's stdin closes.
PICKERS = textwrap.dedent(
    """
    import os, sys, portpicker
    n = int(sys.argv[1])
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    hold_r, hold_w = os.pipe()
    children = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os.close(go_w); os.close(out_r); os.close(hold_w)
            os.read(go_r, 1)
            port = portpicker.pick_unused_port()
            os.write(out_w, b"%d %d\\n" % (port, os.getpid()))
            os.read(hold_r, 1)          # until the parent closes its end
            os._exit(0)
        children.append(pid)
    os.close(go_r); os.close(out_w); os.close(hold_r)
    os.write(go_w, b"x" * n)
    with os.fdopen(out_r) as results:
        for _ in range(n):
            sys.stdout.write(results.readline())
    sys.stdout.flush()
    sys.stdin.read()                    # the test says when to let go
    os.close(hold_w)
    for pid in children:
        os.waitpid(pid, 0)
    """
)


def _env(address: str) -> dict:
    env = dict(os.environ, PORTSERVER_ADDRESS=address)
    env.pop("PORTWARDEN_ADDR", None)
    return env


def _allocated(d) -> dict:
    with portwarden.Client(d.unix_addr) as pw:
        return {a.port: a for a in pw.list()}


def _wait_until(cond, timeout=6.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_portpicker_gets_a_managed_port_owned_by_its_process_and_reclaimed_at_exit(start_daemon, short_tmp, kind):
    address = f"@pw-test-{os.getpid()}-{kind}" if kind == "abstract" else os.path.join(short_tmp, "ps.sock")
    d = start_daemon(port_range=(26400, 26409), extra=["--portserver-socket", address])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=_env(address), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    port, pid = map(int, holder.stdout.readline().split())
    assert 26400 <= port <= 26409
    a = _allocated(d)[port]
    assert a.pid == pid
    assert a.service.startswith("portpicker.")
    assert "portpicker" in a.started_by
    holder.communicate("", timeout=10)
    assert _wait_until(lambda: port not in _allocated(d)), "not reclaimed after the process exited"


def test_200_concurrent_pickers_get_distinct_ports_each_reclaimed_when_it_exits(start_daemon):
    address = f"@pw-test-{os.getpid()}-200"
    d = start_daemon(port_range=(26100, 26399), extra=["--portserver-socket", address])
    started = time.monotonic()
    parent = subprocess.Popen(
        [sys.executable, "-c", PICKERS, "200"],
        env=_env(address),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [parent.stdout.readline() for _ in range(200)]
        picked = time.monotonic() - started
        results = [tuple(map(int, line.split())) for line in lines]
        ports = [port for port, _ in results]
        assert all(26100 <= p <= 26399 for p in ports), sorted(ports)
        assert len(set(ports)) == 200, "a port was handed to two live processes"
        assert len({pid for _, pid in results}) == 200
        assert picked < 30, f"200 picks took {picked:.1f} s"
        held = _allocated(d)
        assert {p: held[p].pid for p in ports} == dict(results), "each port owned by the process that asked"
    finally:
        parent.communicate("", timeout=30)
    assert _wait_until(lambda: not _allocated(d)), "ports still allocated after every picker exited"



def test_the_endpoint_is_on_by_default_beside_the_namespace_claim(start_daemon):
    """No --portserver-socket: the daemon serves portpicker at its claim's name followed by
    -portserver (@portwarden-portserver for the default claim), and says where in its log."""
    d = start_daemon(port_range=(26410, 26414))
    lock = next(a for a in d.proc.args if a.startswith("@portwarden-pytest-"))
    address = f"{lock}-portserver"
    assert f"portserver protocol on {address}" in d.log_text(), d.log_text()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=_env(address), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    port, pid = map(int, holder.stdout.readline().split())
    assert 26410 <= port <= 26414, "portpicker fell back to a port portwarden does not manage"
    assert _allocated(d)[port].pid == pid
    holder.communicate("", timeout=10)


def test_the_namespace_claim_is_refused_as_a_portserver_address(start_daemon, tmp_path):
    """The claim's own name answers no portserver request: the daemon refuses it at start-up
    (exit 2, naming the key) instead of leaving portpicker to fall back silently."""
    lock = f"@portwarden-pytest-{os.getpid()}-claim"
    proc = subprocess.run(
        [
            str(daemon_binary()), "serve", "--listen", "127.0.0.1:0",
            "--unix-socket", str(tmp_path / "pw.sock"), "--state", str(tmp_path / "s.db"),
            "--range", "26415-26416", "--netns-lock", lock, "--portserver-socket", lock,
        ],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2, proc.stderr
    assert "'portserver_socket'" in proc.stderr and "namespace claim" in proc.stderr, proc.stderr


def test_a_taken_portserver_address_stops_the_start_with_exit_2_naming_the_holder(start_daemon, tmp_path):
    import socket

    address = f"@pw-test-{os.getpid()}-taken"
    squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    squatter.bind("\0" + address[1:])
    squatter.listen(1)
    try:
        proc = subprocess.run(
            [
                str(daemon_binary()), "serve", "--listen", "127.0.0.1:0",
                "--unix-socket", str(tmp_path / "pw.sock"), "--state", str(tmp_path / "s.db"),
                "--range", "26417-26418", "--netns-lock", f"@portwarden-pytest-{os.getpid()}-taken",
                "--portserver-socket", address,
            ],
            capture_output=True, text=True, timeout=30,
        )
    finally:
        squatter.close()
    assert proc.returncode == 2, proc.stderr
    assert f"{address} is already served by another process (pid {os.getpid()}" in proc.stderr, proc.stderr
    assert "--portserver-socket" in proc.stderr, proc.stderr
    # Nothing was left listening: the Unix socket was never created.
    assert not (tmp_path / "pw.sock").exists()


def test_the_drop_in_asks_the_default_endpoint_when_nothing_is_configured(start_daemon, monkeypatch):
    """``import portwarden as portpicker`` with no PORTSERVER_ADDRESS: the daemon's default
    endpoint is asked (here the test daemon's, standing in for @portwarden-portserver)."""
    from portwarden import dropin

    d = start_daemon(port_range=(26419, 26420))
    lock = next(a for a in d.proc.args if a.startswith("@portwarden-pytest-"))
    for var in ("PORTSERVER_ADDRESS", "PORTWARDEN_PORTSERVER_SOCKET", "PORTWARDEN_ADDR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dropin, "DEFAULT_PORTSERVER", f"{lock}-portserver")
    port = dropin.pick_unused_port()
    assert 26419 <= port <= 26420
    assert _allocated(d)[port].pid == os.getpid()


def test_the_client_draws_from_the_test_pool_on_request(start_daemon):
    d = start_daemon(port_range=(26421, 26422), extra=["--test-range", "26423-26424"])
    with portwarden.Client(d.unix_addr) as pw:
        got = pw.allocate("suite", pid=os.getpid(), pool="test")
        assert 26423 <= got.port <= 26424
        assert 26421 <= pw.allocate("svc").port <= 26422
        with pytest.raises(ValueError):
            pw.allocate("x", pool="tests")
