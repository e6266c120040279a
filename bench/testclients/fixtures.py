"""Per-call cost of a test port in Python, one way per run: prints the total seconds, then each
call's seconds. Run by bench/testclients.rs; the daemon is $PORTWARDEN_ADDR.

    python fixtures.py MODE N

MODE: port_factory (the plugin's take: one allocation from the daemon's test pool, kept),
free_port (take, then give back: a free_port fixture's setup and teardown), grpc (the same
allocation with the gRPC client, portwarden.Client, on the same socket), fallback (the
plugin without a daemon: bind(0) for TCP, then the same port for UDP), bind0 (a bare socket
bound to port 0, then closed), portpicker (portpicker.pick_unused_port() without a portserver).
"""

import os
import socket
import sys
import time
import warnings

mode, n = sys.argv[1], int(sys.argv[2])
WARMUP = 20

if mode in ("port_factory", "free_port", "fallback"):
    from pytest_portwarden import TestPorts

    warnings.simplefilter("ignore")  # the fallback's one warning
    ports = TestPorts("bench.fixtures")
    if mode == "port_factory":
        call = ports.take
    elif mode == "free_port":
        def call():
            ports.give_back(ports.take())
    else:
        assert os.environ["PORTWARDEN_ADDR"].endswith("absent.sock")
        call = ports.take
elif mode == "grpc":
    import portwarden

    client = portwarden.Client(os.environ["PORTWARDEN_ADDR"])

    def call():
        client.allocate("bench.fixtures", pid=os.getpid(), pool="test")
elif mode == "bind0":
    def call():
        s = socket.socket()
        s.bind(("", 0))
        s.getsockname()
        s.close()
elif mode == "portpicker":
    import portpicker

    os.environ.pop("PORTSERVER_ADDRESS", None)
    call = portpicker.pick_unused_port
else:
    raise SystemExit(f"unknown mode {mode}")

for _ in range(WARMUP):
    call()
lat = []
t0 = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    call()
    lat.append(time.perf_counter() - t)
total = time.perf_counter() - t0
if mode == "port_factory":
    assert ports.daemon is not None and len(ports._tokens) == n + WARMUP, "not from the daemon"
if mode == "fallback":
    assert ports.daemon is None
print(total, *lat)
