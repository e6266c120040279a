"""The watchdog through the Python client: live events, resume, history, status, close()."""

from __future__ import annotations

import threading
import time

import pytest

import portwarden


def _collect(watch, n, timeout=10.0):
    """The first ``n`` events of ``watch`` (a background thread; the watch is closed after)."""
    got = []
    done = threading.Event()

    def run():
        for e in watch.events():
            got.append(e)
            if len(got) >= n:
                break
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    done.wait(timeout)
    watch.close()
    t.join(5)
    return got


def test_watch_sees_allocations_and_releases_in_order(daemon):
    with portwarden.Client(daemon.tcp_addr) as pw:
        watch = pw.watch(kinds=["allocated", "released"])
        time.sleep(0.2)  # the stream is open before the changes
        got = pw.allocate("pyweb")
        pw.release(got.port, got.lease_token)
        events = _collect(watch, 2)
    assert [e.kind for e in events] == [portwarden.EventKind.ALLOCATED, portwarden.EventKind.RELEASED]
    assert events[0].sequence < events[1].sequence
    assert events[0].allocation.service == "pyweb"


def test_a_resumed_watch_gets_what_it_missed(daemon):
    with portwarden.Client(daemon.tcp_addr) as pw:
        first = pw.allocate("resume-a")
        seen = pw.history(service="resume-a")[0].sequence
        second = pw.allocate("resume-b")
        missed = _collect(pw.watch(kinds=["allocated"], since_sequence=seen), 1)
        assert [e.service for e in missed] == ["resume-b"]
        for g in (first, second):
            pw.release(g.port, g.lease_token)


def test_close_ends_iteration_cleanly(daemon):
    with portwarden.Client(daemon.tcp_addr) as pw:
        watch = pw.watch(kinds=["released"])
        ended = threading.Event()

        def run():
            for _ in watch:
                pass
            ended.set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        time.sleep(0.2)
        watch.close()
        assert ended.wait(5), "iteration stops after close()"


def test_history_and_status(daemon):
    with portwarden.Client(daemon.unix_addr) as pw:
        got = pw.allocate("hist")
        pw.release(got.port, got.lease_token)
        events = pw.history(port=got.port, kinds=["allocated", "released"])
        assert [e.kind for e in events][:2] == [portwarden.EventKind.RELEASED, portwarden.EventKind.ALLOCATED]
        status = pw.watchdog_status()
        assert status.running
        assert status.last_sequence >= events[0].sequence


def test_bad_kind_and_compacted_positions_are_errors(daemon):
    with portwarden.Client(daemon.tcp_addr) as pw:
        with pytest.raises(ValueError):
            pw.watch(kinds=["nope"])
        ahead = pw.watchdog_status().last_sequence + 1000
        with pytest.raises(portwarden.OutOfRange):
            next(iter(pw.watch(since_sequence=ahead)))
