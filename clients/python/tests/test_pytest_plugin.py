"""The pytest plugin (clients/pytest-portwarden) in real pytest runs: inner test suites run by a
child pytest, with pytest-xdist workers, against a real daemon's test pool, or with no daemon at
all. The inner suites check what only a running worker can see (its ports' owner, their service
and purpose); these tests check what the runs leave behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional

import pytest

TEST_POOL = (11000, 11999)
#: Seconds an inner pytest run may take (8 workers start on a 2-core machine).
RUN_TIMEOUT = 180

try:
    import pytest_portwarden  # noqa: F401
    import xdist  # noqa: F401
except ImportError as e:  # pragma: no cover - a setup problem, said plainly
    pytest.fail(
        f"{e}: install the plugin and pytest-xdist: pip install -r clients/python/requirements-dev.txt "
        "-e clients/pytest-portwarden",
        pytrace=False,
    )

from pytest_portwarden.rest import RestDaemon  # noqa: E402
from portwarden.target import Target  # noqa: E402


def run_suite(
    tmp: Path, source: str, args: List[str], addr: Optional[str], autoload: bool = False
) -> subprocess.CompletedProcess:
    """Runs ``source`` as test_inner.py in its own rootdir ``<tmp>/suite`` with a child pytest.
    With ``autoload``, the plugin is loaded by its entry point, like in a user's suite; else
    explicitly, with no other plugin (the ones installed here cost each pytest ~2 s to load)."""
    suite = tmp / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_inner.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTWARDEN_", "PYTEST_"))}
    plugins = [] if autoload else ["-p", "xdist.plugin", "-p", "pytest_portwarden"]
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["XDG_RUNTIME_DIR"] = str(tmp)  # no socket of the developer's own is found
    env["OUT"] = str(tmp / "out")
    if addr:
        env["PORTWARDEN_ADDR"] = addr
    (tmp / "out").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *plugins, *args, "test_inner.py"],
        cwd=suite,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def results(tmp: Path) -> List[Dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp / "out").glob("*.json"))]


def allocated(sock: str) -> List[Dict]:
    d = RestDaemon(Target("unix", sock))
    try:
        return d.call("GET", "/api/ports/allocations")["allocations"]
    finally:
        d.close()


def wait_until_none_allocated(sock: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while allocated(sock):
        assert time.monotonic() < deadline, f"still allocated after {seconds} s: {allocated(sock)}"
        time.sleep(0.1)


@pytest.fixture
def pool_daemon(start_daemon):
    return start_daemon(extra=["--test-range", f"{TEST_POOL[0]}-{TEST_POOL[1]}"])


#: Runs on every worker (--dist each): 50 ports from port_factory, what the daemon says of each,
#: written to $OUT/<worker>.json; then holds them until all 8 workers have written theirs.
HOLD_FIFTY = """
    import json, os, time

    def test_fifty_ports(port_factory, portwarden_ports):
        ports = [port_factory() if i % 2 else port_factory("inner.named") for i in range(50)]
        owners = {}
        for p in ports:
            a = portwarden_ports.daemon.call("GET", f"/api/ports/allocations/{p}")
            owners[p] = [a["pid"], a["service"], a["purpose"]]
        out = os.environ["OUT"]
        worker = os.environ["PYTEST_XDIST_WORKER"]
        with open(f"{out}/{worker}.tmp", "w") as f:
            json.dump({"pid": os.getpid(), "worker": worker, "ports": ports, "owners": owners,
                       "pool": portwarden_ports.pool}, f)
        os.rename(f"{out}/{worker}.tmp", f"{out}/{worker}.json")
        deadline = time.monotonic() + 120
        while len([n for n in os.listdir(out) if n.endswith(".json")]) < 8:
            assert time.monotonic() < deadline, "the other workers never took their ports"
            time.sleep(0.05)
"""


def test_eight_xdist_workers_hold_fifty_ports_each_all_distinct_and_in_the_test_pool(pool_daemon, short_tmp):
    tmp = Path(short_tmp)
    run = run_suite(tmp, HOLD_FIFTY, ["-n", "8", "--dist", "each"], pool_daemon.unix_addr)
    assert run.returncode == 0, run.stdout + run.stderr
    got = results(tmp)
    assert len(got) == 8, run.stdout
    assert len({r["pid"] for r in got}) == 8, "each worker is a process of its own"
    ports = [p for r in got for p in r["ports"]]
    assert len(ports) == 400 and len(set(ports)) == 400, "a port was handed out twice"
    assert all(TEST_POOL[0] <= p <= TEST_POOL[1] for p in ports), sorted(ports)
    for r in got:
        assert r["pool"] == f"{TEST_POOL[0]}-{TEST_POOL[1]}"
        for i, p in enumerate(r["ports"]):
            pid, service, purpose = r["owners"][str(p)]
            assert pid == r["pid"], f"port {p} is not owned by the worker that asked"
            assert service == ("pytest.suite" if i % 2 else "inner.named")
            assert purpose == "test_inner.py::test_fifty_ports"
    # The session's end gave every port back.
    wait_until_none_allocated(pool_daemon.socket, seconds=5)


#: Takes ports, checks they are its own, writes them down, and dies like a crashed worker.
DIE = """
    import json, os, signal

    def test_dies(free_port, port_factory, portwarden_ports):
        ports = [free_port] + [port_factory() for _ in range(4)]
        for p in ports:
            assert portwarden_ports.daemon.call("GET", f"/api/ports/allocations/{p}")["pid"] == os.getpid()
        with open(os.environ["OUT"] + "/dead.json", "w") as f:
            json.dump({"pid": os.getpid(), "ports": ports}, f)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_ports_of_a_killed_worker_come_back(pool_daemon, short_tmp):
    tmp = Path(short_tmp)
    run = run_suite(tmp, DIE, ["-n", "1"], pool_daemon.unix_addr)
    assert run.returncode == 1 and "crashed" in run.stdout, run.stdout + run.stderr
    (dead,) = results(tmp)
    assert len(set(dead["ports"])) == 5
    deadline = time.monotonic() + 5
    while held := {a["port"] for a in allocated(pool_daemon.socket)} & set(dead["ports"]):
        assert time.monotonic() < deadline, f"ports {sorted(held)} of killed pid {dead['pid']} not reclaimed"
        time.sleep(0.1)
    assert f"process {dead['pid']} exited" in pool_daemon.log_text()


#: Without xdist: free_port is given back after its test, a name is the service, a bad name is
#: refused before anything is asked.
LIFECYCLE = """
    import os, pytest

    seen = {}

    def test_free_port_is_mine(free_port, portwarden_ports):
        a = portwarden_ports.daemon.call("GET", f"/api/ports/allocations/{free_port}")
        assert (a["pid"], a["service"], a["purpose"]) == (os.getpid(), "pytest.suite", "test_inner.py::test_free_port_is_mine")
        seen["port"] = free_port

    def test_the_last_tests_port_was_released(portwarden_ports):
        status, _ = portwarden_ports.daemon.request("GET", f"/api/ports/allocations/{seen['port']}")
        assert status == 404

    def test_named_and_bad_names(port_factory, portwarden_ports):
        p = port_factory("db.primary")
        assert portwarden_ports.daemon.call("GET", f"/api/ports/allocations/{p}")["service"] == "db.primary"
        with pytest.raises(ValueError, match=r"name must match \\[A-Za-z0-9._-\\]\\{1,64\\}.*'bad name'"):
            port_factory("bad name")
        port_factory.release(p)
        status, _ = portwarden_ports.daemon.request("GET", f"/api/ports/allocations/{p}")
        assert status == 404
"""


def test_free_port_lives_as_long_as_its_test_and_a_name_is_the_service(pool_daemon, short_tmp):
    run = run_suite(Path(short_tmp), LIFECYCLE, [], pool_daemon.unix_addr, autoload=True)
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout + run.stderr
    assert "PortwardenWarning" not in run.stdout


#: Ports without a daemon: distinct, bindable, one warning for the whole session.
NO_DAEMON = """
    import json, os, socket

    taken = []

    def bindable(port):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        return True

    def test_a(free_port):
        taken.append(free_port)
        assert bindable(free_port)

    def test_b(free_port, port_factory):
        taken.extend([free_port, port_factory(), port_factory("named")])

    def test_c(port_factory, portwarden_ports):
        taken.append(port_factory())
        assert portwarden_ports.daemon is None and "no socket at" in portwarden_ports.fallback_reason
        with open(os.environ["OUT"] + "/ports.json", "w") as f:
            json.dump(taken, f)
"""


def test_without_a_daemon_ports_come_from_the_kernel_with_one_warning(short_tmp):
    tmp = Path(short_tmp)
    absent = tmp / "absent.sock"
    run = run_suite(tmp, NO_DAEMON, [], f"unix:{absent}")
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout + run.stderr
    (ports,) = results(tmp)
    assert len(ports) == 5 and len(set(ports)) == 5 and all(0 < p < 65536 for p in ports)
    assert run.stdout.count("PortwardenWarning") == 1, run.stdout
    assert (
        f"PortwardenWarning: portwarden: no daemon answered (no socket at {absent}); free_port and "
        "port_factory use ports the kernel picks (bound to port 0, then closed), which are not "
        "reserved: another process may take one before the test binds it. Start `portwarden serve` "
        "or set PORTWARDEN_ADDR"
    ) in run.stdout

    # Under xdist each worker's session warns once, and the summary shows it once.
    spread = "def test_a(free_port):\n    pass\n\ndef test_b(free_port):\n    pass\n\ndef test_c(free_port):\n    pass\n"
    workers = run_suite(tmp, spread, ["-n", "2"], f"unix:{absent}")
    assert workers.returncode == 0 and "3 passed" in workers.stdout, workers.stdout + workers.stderr
    assert workers.stdout.count("PortwardenWarning: portwarden: no daemon answered") == 1, workers.stdout

    # -W error makes the fallback fatal, for suites that must have the daemon.
    strict = run_suite(tmp, NO_DAEMON, ["-W", "error::pytest_portwarden.PortwardenWarning"], f"unix:{absent}")
    assert strict.returncode == 1 and "passed" not in strict.stdout, strict.stdout + strict.stderr
    # Each of the three tests is stopped by it: one traceback line each (the short summary's lines
    # are cut to the terminal's width, except under CI, so they are not counted).
    stopped = re.findall(
        r"^E\s+pytest_portwarden\.PortwardenWarning: portwarden: no daemon answered", strict.stdout, re.M
    )
    assert len(stopped) == 3, strict.stdout


def test_a_daemon_without_a_test_pool_is_an_error_that_says_so(start_daemon, short_tmp):
    no_pool = start_daemon()  # --test-range none
    run = run_suite(Path(short_tmp), "def test_a(free_port):\n    pass\n", [], no_pool.unix_addr)
    assert run.returncode == 1, run.stdout
    assert (
        f"DaemonError: portwarden daemon at {no_pool.unix_addr}: no test port for pytest.suite: "
        "invalid request: pool: the test pool is off on this daemon"
    ) in run.stdout, run.stdout


def test_the_daemon_is_found_over_loopback_tcp_too(pool_daemon, short_tmp):
    tmp = Path(short_tmp)
    source = """
        import json, os
        def test_a(free_port, portwarden_ports):
            with open(os.environ["OUT"] + "/p.json", "w") as f:
                json.dump({"port": free_port, "target": str(portwarden_ports.daemon.target)}, f)
    """
    run = run_suite(tmp, source, [], f"http://{pool_daemon.tcp_addr}")
    assert run.returncode == 0, run.stdout + run.stderr
    (got,) = results(tmp)
    assert TEST_POOL[0] <= got["port"] <= TEST_POOL[1]
    assert got["target"] == f"http://{pool_daemon.tcp_addr}"
    assert urllib.parse.urlsplit(got["target"]).hostname == "127.0.0.1"


#: Takes a port, waits for the outer test to stop the daemon, then takes another.
OUTLIVE = """
    import json, os, time

    def test_a(port_factory, portwarden_ports):
        first = port_factory()
        out = os.environ["OUT"]
        open(out + "/ready", "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(out + "/stopped"):
            assert time.monotonic() < deadline, "the daemon was never stopped"
            time.sleep(0.05)
        second = port_factory()
        with open(out + "/ports.json", "w") as f:
            json.dump({"first": first, "second": second, "gone": portwarden_ports.daemon is None,
                       "reason": portwarden_ports.fallback_reason}, f)
"""


def test_a_daemon_that_stops_mid_session_is_looked_for_again_then_fallen_back_from(pool_daemon, short_tmp):
    from conftest import _stop

    tmp = Path(short_tmp)
    (tmp / "out").mkdir()
    (tmp / "suite").mkdir()
    (tmp / "suite" / "pytest.ini").write_text("[pytest]\n")
    (tmp / "suite" / "test_inner.py").write_text(textwrap.dedent(OUTLIVE))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTWARDEN_", "PYTEST_"))}
    env.update(OUT=str(tmp / "out"), XDG_RUNTIME_DIR=str(tmp), PORTWARDEN_ADDR=pool_daemon.unix_addr,
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.Popen(  # run_suite's command, without waiting for it
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "pytest_portwarden", "test_inner.py"],
        cwd=tmp / "suite", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp / "out" / "ready").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else "no ready"
            time.sleep(0.05)
        _stop(pool_daemon.proc)
        (tmp / "out" / "stopped").touch()
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    got = json.loads((tmp / "out" / "ports.json").read_text())
    assert TEST_POOL[0] <= got["first"] <= TEST_POOL[1]
    assert got["gone"] and got["reason"] == f"no socket at {pool_daemon.socket}", got
    assert got["second"] != got["first"]
    assert output.count("PortwardenWarning: portwarden: no daemon answered") == 1, output


def test_an_https_address_is_no_daemon_of_this_host_and_a_bad_one_is_an_error(monkeypatch, recwarn):
    from pytest_portwarden import PortwardenWarning, TestPorts

    monkeypatch.setenv("PORTWARDEN_ADDR", "https://127.0.0.1:1")
    ports = TestPorts("pytest.unit")
    assert 0 < ports.take() < 65536
    assert ports.fallback_reason == (
        "https://127.0.0.1:1: not used: a daemon reached over https serves another host; ask this "
        "host's daemon (unix:/PATH or http://127.0.0.1:PORT)"
    )
    assert [w.category for w in recwarn.list] == [PortwardenWarning]

    monkeypatch.setenv("PORTWARDEN_ADDR", "ftp://x")
    with pytest.raises(ValueError, match=r"^PORTWARDEN_ADDR: 'ftp://x' is not an address: expected unix:/PATH"):
        TestPorts("pytest.unit").take()
