"""examples/serve.py against a real daemon: the seed's start-up lines, a page fetched from the
port it printed, and the port given back when it stops."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import portwarden

from conftest import CLIENT_ROOT, RANGE

SERVE = CLIENT_ROOT / "examples" / "serve.py"


def _start_serve(daemon, *args):
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), *args],
        env=dict(os.environ, PORTWARDEN_ADDR=daemon.unix_addr, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("GRACE IS READY"):
            break
    return proc, "\n".join(lines)


def test_serve_py_prints_the_seed_start_up_serves_and_releases(daemon):
    proc, out = _start_serve(daemon)
    try:
        assert f"Allocating port from managed range ({RANGE[0]}-{RANGE[1]})..." in out, out
        m = re.search(r"\[NETWORK-HARDENING\] Running comprehensive checks for port (\d+)", out)
        assert m, out
        port = int(m.group(1))
        assert RANGE[0] <= port <= RANGE[1]
        assert re.search(r"\[NETWORK-HARDENING\] Status: (healthy|warning) \(0 critical, \d+ warnings\)", out), out
        assert f"[PORT-MANAGER] ✅ Allocated port {port} for grace_backend" in out
        assert "[PORT-MANAGER] Purpose: Main Grace API server" in out
        assert f"✅ Allocated port {port}\n   Service: grace_backend\n   Watchdog: Active" in out, out
        if "warnings)" in out and "(0 critical, 0 warnings)" not in out:
            assert "⚠️  Network warnings detected (safe to continue):" in out, out

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200
            assert resp.read().decode() == f"grace_backend is ready on port {port}\n"
        with portwarden.Client(daemon.unix_addr) as pw:
            a = pw.get(port)
        assert (a.service, a.purpose, a.started_by, a.pid) == (
            "grace_backend",
            "Main Grace API server",
            "serve.py",
            proc.pid,
        )

        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"[PORT-MANAGER] Released port {port}" in rest
        with portwarden.Client(daemon.unix_addr) as pw:
            assert pw.list() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _time_wait_on(port: int, count: int) -> None:
    """Leaves `count` TIME_WAIT sockets on `port` (the server side closes first)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(count)
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            server, _ = listener.accept()
            server.close()
            assert client.recv(1) == b""  # the server's FIN arrived: no simultaneous close
            client.close()


def test_serve_py_prints_the_warnings_block_when_the_port_has_findings(start_daemon):
    port = 26430
    _time_wait_on(port, 12)  # before the daemon's first network snapshot
    d = start_daemon(port_range=(port, port + 1))
    proc, out = _start_serve(d, "--port", str(port))
    try:
        assert re.search(r"\[NETWORK-HARDENING\] Status: warning \(0 critical, [1-9]\d* warnings\)", out), out
        assert f"[PORT-MANAGER] Network warnings for port {port}: [" in out and "'time_wait_sockets'" in out, out
        assert "⚠️  Network warnings detected (safe to continue):" in out, out
        assert re.search(rf"  • time_wait_sockets: \d+ TIME_WAIT connections on port {port}", out), out
        assert "Watchdog: Active" in out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0
