#!/usr/bin/env python3
"""A serve.py start-up on portwarden: a small HTTP service that allocates its port from
the managed range (with its service name and purpose), prints the usual start-up lines, listens on a
hardened socket, serves, and gives the port back when it stops (Ctrl-C or SIGTERM). If it is
killed outright, the daemon takes the port back: it is owned by this process.

    python clients/python/examples/serve.py                       # grace_backend, first free port
    python clients/python/examples/serve.py --service web --purpose "docs preview" --port 8005

The daemon is found as by every portwarden client (``--addr``, ``PORTWARDEN_ADDR``, the default
Unix socket, 127.0.0.1:7070).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import portwarden
from portwarden import network_pb2

MARKS = {
    network_pb2.CHECK_STATUS_OK: "✓",
    network_pb2.CHECK_STATUS_INFO: "ℹ",
    network_pb2.CHECK_STATUS_WARNING: "⚠",
    network_pb2.CHECK_STATUS_CRITICAL: "✗",
}
OVERALL = {
    network_pb2.OVERALL_STATUS_HEALTHY: "healthy",
    network_pb2.OVERALL_STATUS_WARNING: "warning",
    network_pb2.OVERALL_STATUS_CRITICAL: "critical",
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A small HTTP service on a port from portwarden.")
    p.add_argument("--service", default="grace_backend")
    p.add_argument("--purpose", default="Main Grace API server")
    p.add_argument("--port", type=int, help="a specific port in the managed range")
    p.add_argument("--addr", help="the daemon: http://HOST:PORT or unix:/PATH")
    return p.parse_args()


def ranges_of(status) -> str:
    return ", ".join(str(r.start) if r.start == r.end else f"{r.start}-{r.end}" for r in status.ranges)


def watchdog_line(pw: portwarden.Client, pid: int, port: int) -> str:
    """What watches this service: the daemon's watchdog and its interval; from a daemon without
    one, what it does every second for every allocation (owner alive? listening?)."""
    try:
        st = pw.watchdog_status()
    except portwarden.Unimplemented:
        return f"Active (the daemon checks pid {pid} and port {port} every second)"
    except portwarden.PortwardenError as e:
        return f"unknown ({e.message})"
    if not st.running:
        return "Not running"
    return f"Active (monitors health every {st.interval_seconds}s)"


def print_allocation(pw: portwarden.Client, got: portwarden.AllocateResult, service: str, purpose: str) -> None:
    port = got.port
    report = got.network_report
    print(f"[NETWORK-HARDENING] Running comprehensive checks for port {port}")
    if report is not None:
        for check in report.checks:
            print(f"  {MARKS.get(check.status, '?')} {check.name}: {check.note}")
        print()
        print(
            f"[NETWORK-HARDENING] Status: {OVERALL.get(report.status, 'unknown')} "
            f"({len(report.critical_issues)} critical, {len(report.warnings)} warnings)"
        )
    print()
    print(f"[PORT-MANAGER] ✅ Allocated port {port} for {service}")
    if purpose:
        print(f"[PORT-MANAGER] Purpose: {purpose}")
    print(f"[PORT-MANAGER] Network health: {got.network_health or 'unknown'}")
    if got.warnings:
        names = list(report.warnings) if report is not None else [w.split(":")[0] for w in got.warnings]
        print(f"[PORT-MANAGER] Network warnings for port {port}: {names}")
        print()
        print("⚠️  Network warnings detected (safe to continue):")
        for w in got.warnings:
            print(f"  • {w}")
    print()
    print(f"✅ Allocated port {port}")
    print(f"   Service: {service}")
    print(f"   Watchdog: {watchdog_line(pw, os.getpid(), port)}")
    print(f"   Network Health: {got.network_health or 'unknown'}")
    print()


def handler_for(service: str, port: int):
    class Handler(BaseHTTPRequestHandler):
        # The 30 s timeout of the hardening list, on each accepted connection (socketserver applies it).
        timeout = portwarden.ACCEPTED_TIMEOUT
        server_version = "serve.py"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/health":
                body = json.dumps({"service": service, "port": port, "status": "ok"}).encode()
                ctype = "application/json"
            else:
                body = f"{service} is ready on port {port}\n".encode()
                ctype = "text/plain; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args) -> None:
            sys.stderr.write(f"[{service}] {self.address_string()} {fmt % args}\n")

    return Handler


def main() -> int:
    args = parse_args()
    with portwarden.Client(args.addr) as pw:
        print(f"Allocating port from managed range ({ranges_of(pw.status())})...")
        print()
        got = pw.allocate(
            args.service,
            purpose=args.purpose,
            started_by=os.path.basename(sys.argv[0]) or "serve.py",
            pid=os.getpid(),  # if this process dies, the daemon takes the port back
            port=args.port,
        )
        try:
            print_allocation(pw, got, args.service, args.purpose)
            sock, applied = portwarden.bind_hardened(got.port)
            done = [o.name for o in applied.options if o.applied]
            print(f"Socket hardening: {', '.join(done)}; 30s timeout on each connection")
            server = ThreadingHTTPServer(("", got.port), handler_for(args.service, got.port), bind_and_activate=False)
            server.socket.close()
            server.socket = sock
            stop = threading.Event()

            def on_signal(signum, _frame) -> None:
                stop.set()
                threading.Thread(target=server.shutdown, daemon=True).start()

            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            print(f"Serving http://127.0.0.1:{got.port}/ (Ctrl-C to stop)")
            print()
            print("GRACE IS READY" if args.service == "grace_backend" else f"{args.service.upper()} IS READY", flush=True)
            server.serve_forever()
            server.server_close()
        finally:
            pw.release(got.port, got.lease_token)
            print(f"[PORT-MANAGER] Released port {got.port}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except portwarden.PortwardenError as e:
        print(f"serve.py: {e}", file=sys.stderr)
        sys.exit(1)
