"""Address parsing and discovery rules (no daemon needed); they mirror clients/rust."""

from __future__ import annotations

import os

import pytest

import portwarden
import portwarden.client as pwc
import portwarden.target as pwt
from portwarden import Target


@pytest.mark.parametrize(
    "addr, kind, address, grpc_target",
    [
        ("unix:/run/x.sock", "unix", "/run/x.sock", "unix:/run/x.sock"),
        ("unix:///run/x.sock", "unix", "/run/x.sock", "unix:/run/x.sock"),
        ("unix:rel.sock", "unix", "rel.sock", "unix:rel.sock"),
        ("127.0.0.1:7070", "tcp", "http://127.0.0.1:7070", "127.0.0.1:7070"),
        ("http://127.0.0.1:7070", "tcp", "http://127.0.0.1:7070", "127.0.0.1:7070"),
        ("http://127.0.0.1:7070/", "tcp", "http://127.0.0.1:7070/", "127.0.0.1:7070"),
        ("http://[::1]:1", "tcp", "http://[::1]:1", "[::1]:1"),
        ("https://h:1", "tcp", "https://h:1", "h:1"),
        ("http://h", "tcp", "http://h", "h:80"),
    ],
)
def test_parse(addr, kind, address, grpc_target):
    t = Target.parse(addr)
    assert (t.kind, t.address) == (kind, address)
    assert t.grpc_target == grpc_target
    assert t.secure == address.startswith("https://")


def test_bad_scheme_is_rejected():
    with pytest.raises(ValueError):
        portwarden.Client("ftp://h:1")


def test_default_socket_path(monkeypatch):
    monkeypatch.setattr(pwt, "_euid", lambda: 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/0")
    assert portwarden.default_socket_path() == "/run/portwarden/portwarden.sock"

    monkeypatch.setattr(pwt, "_euid", lambda: 1000)
    assert portwarden.default_socket_path() == "/run/user/0/portwarden.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "")
    assert portwarden.default_socket_path() == "/tmp/portwarden-1000/portwarden.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert portwarden.default_socket_path() == "/tmp/portwarden-1000/portwarden.sock"


def test_discovery_order(monkeypatch, tmp_path):
    monkeypatch.setattr(pwt, "_euid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("PORTWARDEN_ADDR", raising=False)
    system = tmp_path / "system.sock"
    monkeypatch.setattr(pwt, "SYSTEM_SOCKET", str(system))
    assert Target.discover() == Target("tcp", "http://127.0.0.1:7070")  # nothing else
    system.touch()
    assert Target.discover() == Target("unix", str(system))  # the system daemon's socket
    (tmp_path / "portwarden.sock").touch()
    assert Target.discover() == Target("unix", str(tmp_path / "portwarden.sock"))  # socket file
    monkeypatch.setenv("PORTWARDEN_ADDR", "10.0.0.1:9")
    assert Target.discover() == Target("tcp", "http://10.0.0.1:9")  # env beats the socket
    monkeypatch.setenv("PORTWARDEN_ADDR", "")
    assert Target.discover().kind == "unix"  # empty env is ignored
    monkeypatch.setenv("PORTWARDEN_ADDR", "10.0.0.1:9")
    assert Target.discover("unix:/x.sock") == Target("unix", "/x.sock")  # explicit beats all
    assert Target.discover("") == Target("tcp", "http://10.0.0.1:9")  # empty explicit is ignored


def test_unix_client_sets_authority(monkeypatch):
    seen = {}
    real = pwc.grpc.insecure_channel

    def fake_insecure_channel(target, options=None):
        seen["target"], seen["options"] = target, list(options or [])
        return real(target, options=options)

    monkeypatch.setattr(pwc.grpc, "insecure_channel", fake_insecure_channel)
    portwarden.Client("unix:/nonexistent.sock").close()
    assert seen["target"] == "unix:/nonexistent.sock"
    assert ("grpc.default_authority", "localhost") in seen["options"]

    portwarden.Client("127.0.0.1:9").close()
    assert not any(k == "grpc.default_authority" for k, _ in seen["options"])


def test_a_fallback_socket_directory_of_another_user_is_refused(monkeypatch, tmp_path):
    """/tmp/portwarden-$UID made by someone else (here: the test's own uid, posing as another)
    must not be connected to: it could be a fake daemon collecting lease tokens."""
    import portwarden.target as target

    other = os.geteuid() + 4242
    monkeypatch.setattr(target, "_euid", lambda: other)
    directory = f"/tmp/portwarden-{other}"
    os.makedirs(directory, exist_ok=True)
    try:
        os.chmod(directory, 0o777)
        with pytest.raises(portwarden.PortwardenError) as err:
            portwarden.Client(f"unix:{directory}/portwarden.sock")
        assert "not to you" in str(err.value)
    finally:
        os.rmdir(directory)


def test_candidates_follow_the_cli_order(monkeypatch, tmp_path):
    monkeypatch.setattr(pwt, "_euid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    own = str(tmp_path / "portwarden.sock")
    assert Target.candidates() == [
        Target("unix", own),
        Target("unix", "/run/portwarden/portwarden.sock"),
        Target("tcp", "http://127.0.0.1:7070"),
    ]
    monkeypatch.setattr(pwt, "_euid", lambda: 0)  # root's own socket is the system one: once
    assert Target.candidates() == [
        Target("unix", "/run/portwarden/portwarden.sock"),
        Target("tcp", "http://127.0.0.1:7070"),
    ]
    monkeypatch.setenv("PORTWARDEN_ADDR", "unix:/x.sock")
    assert Target.candidates() == [Target("unix", "/x.sock")]  # the environment alone
    assert Target.candidates("127.0.0.1:9") == [Target("tcp", "http://127.0.0.1:9")]  # explicit alone
