"""The daemon's REST API, as much of it as test ports need (status, allocate, release), as JSON
over one keep-alive HTTP/1.1 connection: the Unix socket or plain TCP. No grpc: a pytest worker
pays for ``http.client`` (already loaded by many test suites) instead of grpc and protobuf.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from portwarden.target import Target, check_socket

__all__ = ["DaemonError", "RestDaemon", "Unreachable", "connect_first"]

#: Seconds one request (connect included) may take.
TIMEOUT = 10.0


class DaemonError(Exception):
    """The daemon answered with an error, or stopped answering: ``status`` (HTTP, 0 when there
    was no answer), ``code`` (the gRPC code of its ``{"code","message","details"}`` body),
    ``message``."""

    def __init__(self, target: Target, status: int, code: int, message: str) -> None:
        self.target, self.status, self.code, self.message = target, status, code, message
        super().__init__(f"portwarden daemon at {target}: {message}" + (f" (HTTP {status})" if status else ""))


class Unreachable(Exception):
    """No address answered; ``attempts`` says what stood in the way of each, in order."""

    def __init__(self, attempts: List[str]) -> None:
        self.attempts = attempts
        super().__init__("; ".join(attempts))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class NotUsed(Exception):
    """An address that names a daemon whose ports are not this host's (``https://``)."""


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    if target.is_unix:
        return _UnixConnection(target.address, timeout)
    parts = urlsplit(target.address)
    if parts.scheme.lower() == "https":
        raise NotUsed(
            f"{target}: not used: a daemon reached over https serves another host; ask this "
            "host's daemon (unix:/PATH or http://127.0.0.1:PORT)"
        )
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ValueError(f"PORTWARDEN_ADDR: {str(target)!r} is not an address: expected unix:/PATH, http://HOST:PORT or HOST:PORT")
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


class RestDaemon:
    """One daemon, one connection, reopened when the daemon closed an idle one."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.target = target
        self._timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
        """``(HTTP status, decoded JSON)``. An idle connection the daemon closed is reopened
        once; any other failure to talk to it raises :class:`OSError` or ``http.client`` errors."""
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = _connection(self.target, self._timeout)
            try:
                self._conn.request(method, path, body=data, headers=hdrs)
                resp = self._conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 1:
                    continue  # the daemon had closed the idle connection: once more, fresh
                raise
            except BaseException:
                self.close()
                raise
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, {"code": 0, "message": raw[:200].decode("utf-8", "replace")}
        raise AssertionError("unreachable")  # the loop returns or raises

    def call(self, method: str, path: str, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Any:
        """The decoded answer of a call that must succeed; :class:`DaemonError` otherwise."""
        try:
            status, answer = self.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as e:
            raise DaemonError(self.target, 0, 14, f"stopped answering: {e}") from e
        if status >= 400:
            answer = answer if isinstance(answer, dict) else {}
            raise DaemonError(self.target, status, int(answer.get("code", 0)), str(answer.get("message", "")))
        return answer

    def status(self) -> Dict[str, Any]:
        return self.call("GET", "/api/ports/status")

    def allocate(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """``POST /api/ports/allocations``: ``{"allocation": {...}, "lease_token": ...}``."""
        return self.call("POST", "/api/ports/allocations", body)

    def release(self, port: int, token: str) -> None:
        """Gives ``port`` back; one already gone (reclaimed, released) is not an error."""
        try:
            self.call("DELETE", f"/api/ports/allocations/{port}", headers={"X-Lease-Token": token})
        except DaemonError as e:
            if e.status != 404:
                raise


def _why(target: Target, err: BaseException) -> str:
    """What stood in the way, in the CLI's words."""
    if isinstance(err, PermissionError):
        return f"permission denied on {target.address}"
    if isinstance(err, ConnectionRefusedError):
        if target.is_unix:
            return f"nothing listens at {target.address} (the socket file is left from a daemon that stopped)"
        return f"nothing listens at {target} (connection refused)"
    if isinstance(err, FileNotFoundError):
        return f"no socket at {target.address}"
    return f"{target}: {err}"


def connect_first(candidates: List[Target], explicit: bool, timeout: float = TIMEOUT) -> Tuple[RestDaemon, Dict[str, Any]]:
    """The first candidate whose daemon answers ``GET /api/ports/status``, with that status.
    A default socket that does not exist is skipped (``explicit`` False); an unsafe one too.
    Raises :class:`Unreachable` naming every attempt."""
    attempts: List[str] = []
    for target in candidates:
        if target.is_unix:
            if not explicit and not os.path.exists(target.address):
                attempts.append(f"no socket at {target.address}")
                continue
            unsafe = check_socket(target.address)
            if unsafe:
                attempts.append(f"{target}: not used: {unsafe}")
                continue
        daemon = RestDaemon(target, timeout)
        try:
            status, answer = daemon.request("GET", "/api/ports/status")
        except NotUsed as e:
            attempts.append(str(e))
            continue
        except (OSError, http.client.HTTPException) as e:
            daemon.close()
            attempts.append(_why(target, e))
            continue
        if status != 200 or not isinstance(answer, dict):
            daemon.close()
            attempts.append(f"{target}: answered HTTP {status} to GET /api/ports/status: is it a portwarden daemon?")
            continue
        return daemon, answer
    raise Unreachable(attempts)
