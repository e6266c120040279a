"""Fixtures: a real `portwarden serve` on 127.0.0.1:0 plus a Unix socket, with a temp state dir.

The daemon binary is $PORTWARDEN_BIN, else <repo>/target/debug/portwarden (build it with
`cargo build`; these tests never build it).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CLIENT_ROOT = Path(__file__).resolve().parents[1]
RANGE = (25000, 25010)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TCP_LINE = re.compile(r"listening on tcp 127\.0\.0\.1:(\d+)")
START_TIMEOUT = 20.0
_DAEMONS = itertools.count()


def daemon_binary() -> Path:
    env = os.environ.get("PORTWARDEN_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "portwarden"


@dataclass
class Daemon:
    proc: subprocess.Popen
    port: int
    socket: str
    state: str
    dir: str
    log: List[str] = field(default_factory=list)

    @property
    def tcp_addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def unix_addr(self) -> str:
        return f"unix:{self.socket}"

    def log_text(self) -> str:
        return "".join(self.log)


def _start(workdir: str, extra: Sequence[str] = (), port_range=RANGE) -> Daemon:
    binary = daemon_binary()
    if not binary.is_file():
        pytest.fail(f"portwarden binary not found at {binary}: run `cargo build` in {REPO_ROOT} or set PORTWARDEN_BIN")
    sock = os.path.join(workdir, "pw.sock")
    state = os.path.join(workdir, "state.db")
    cmd = [
        str(binary),
        "serve",
        "--listen", "127.0.0.1:0",
        "--unix-socket", sock,
        "--state", state,
        "--range", f"{port_range[0]}-{port_range[1]}",
        "--quarantine", "0s",
        # One daemon per network namespace: each test daemon claims a name of its own.
        "--netns-lock", f"@portwarden-pytest-{os.getpid()}-{next(_DAEMONS)}",
        # Each test daemon owns a small range of its own; tests of the test pool set one.
        *([] if "--test-range" in extra else ["--test-range", "none"]),
        *extra,
    ]
    # Keep the developer's PORTWARDEN_* settings (config file, ranges, ...) out of the daemon.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWARDEN_")}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    log: List[str] = []
    lines: "queue.Queue[str]" = queue.Queue()

    def drain() -> None:  # keep reading so the daemon never blocks on a full pipe
        for raw in iter(proc.stderr.readline, b""):
            line = _ANSI.sub("", raw.decode("utf-8", "replace"))
            log.append(line)
            lines.put(line)
        lines.put("")  # EOF

    threading.Thread(target=drain, name="portwarden-stderr", daemon=True).start()

    deadline = time.monotonic() + START_TIMEOUT
    port = None
    while port is None:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            line = None
        if line == "" or (line is None and remaining <= 0):
            _stop(proc)
            pytest.fail(f"portwarden did not report its TCP port (exit {proc.poll()}):\n{''.join(log)}")
        if line:
            m = _TCP_LINE.search(line)
            if m:
                port = int(m.group(1))
    # The Unix listener comes up right after the TCP one.
    while not os.path.exists(sock):
        if time.monotonic() > deadline or proc.poll() is not None:
            _stop(proc)
            pytest.fail(f"portwarden did not create {sock}:\n{''.join(log)}")
        time.sleep(0.01)
    return Daemon(proc=proc, port=port, socket=sock, state=state, dir=workdir, log=log)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def short_tmp():
    """A temp dir with a short path (Unix socket paths must fit in 108 bytes; tmp_path may not)."""
    d = tempfile.mkdtemp(prefix="pw-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the daemon's log to the report of a failed test that used it."""
    outcome = yield
    rep = outcome.get_result()
    d = getattr(item, "funcargs", {}).get("daemon")
    if rep.failed and isinstance(d, Daemon):
        rep.sections.append(("portwarden log", d.log_text()))


@pytest.fixture
def daemon(short_tmp):
    d = _start(short_tmp)
    try:
        yield d
    finally:
        _stop(d.proc)


@pytest.fixture
def start_daemon(short_tmp):
    """Starts daemons with other settings: ``start_daemon(port_range=(a, b), extra=[flags])``;
    each is stopped at the end of the test."""
    started: List[Daemon] = []

    def start(port_range=RANGE, extra=()) -> Daemon:
        workdir = tempfile.mkdtemp(prefix="d", dir=short_tmp)
        d = _start(workdir, port_range=port_range, extra=extra)
        started.append(d)
        return d

    yield start
    for d in started:
        _stop(d.proc)


@pytest.fixture(autouse=True)
def _no_ambient_addr(monkeypatch):
    """Tests must not depend on the developer's PORTWARDEN_ADDR or portserver settings."""
    for var in ("PORTWARDEN_ADDR", "PORTSERVER_ADDRESS", "PORTWARDEN_PORTSERVER_SOCKET"):
        monkeypatch.delenv(var, raising=False)
