"""The client over TLS and mutual TLS against the real daemon, with certificates made by trustme."""

from __future__ import annotations

import os

import pytest
import trustme

import portwarden
from conftest import _start, _stop


@pytest.fixture
def pki(short_tmp):
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", "portwarden.portwarden.svc")
    client = ca.issue_cert("client@portwarden")
    paths = {}
    for name, blob in {
        "ca": ca.cert_pem,
        "server_cert": server.cert_chain_pems[0],
        "server_key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
    }.items():
        path = os.path.join(short_tmp, f"{name}.pem")
        blob.write_to_path(path)
        os.chmod(path, 0o600)
        paths[name] = path
    return paths


@pytest.fixture
def mtls_daemon(short_tmp, pki):
    d = _start(
        short_tmp,
        ["--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"], "--tls-client-ca", pki["ca"]],
    )
    try:
        yield d
    finally:
        _stop(d.proc)


def test_a_client_with_the_ca_and_a_certificate_is_served(mtls_daemon, pki):
    with portwarden.Client(
        f"https://127.0.0.1:{mtls_daemon.port}", ca=pki["ca"], cert=pki["client_cert"], key=pki["client_key"]
    ) as pw:
        got = pw.allocate("tls-web")
        assert got.port
        assert [a.service for a in pw.list()] == ["tls-web"]


def test_the_tls_files_come_from_the_environment(mtls_daemon, pki, monkeypatch):
    monkeypatch.setenv("PORTWARDEN_ADDR", f"https://127.0.0.1:{mtls_daemon.port}")
    monkeypatch.setenv("PORTWARDEN_CA", pki["ca"])
    monkeypatch.setenv("PORTWARDEN_CLIENT_CERT", pki["client_cert"])
    monkeypatch.setenv("PORTWARDEN_CLIENT_KEY", pki["client_key"])
    # The certificate also names the cluster service: checked instead of the address's host.
    monkeypatch.setenv("PORTWARDEN_TLS_SERVER_NAME", "portwarden.portwarden.svc")
    with portwarden.Client(timeout=5) as pw:
        assert pw.list() == []


def test_without_a_client_certificate_the_daemon_refuses(mtls_daemon, pki):
    with portwarden.Client(f"https://127.0.0.1:{mtls_daemon.port}", ca=pki["ca"], timeout=5) as pw:
        with pytest.raises(portwarden.PortwardenError):
            pw.list()


def test_a_daemon_whose_ca_is_not_trusted_is_refused(mtls_daemon, pki):
    with portwarden.Client(
        f"https://127.0.0.1:{mtls_daemon.port}", cert=pki["client_cert"], key=pki["client_key"], timeout=5
    ) as pw:
        with pytest.raises(portwarden.PortwardenError):
            pw.list()


def test_a_certificate_without_its_key_is_a_usage_error(pki):
    with pytest.raises(ValueError, match="needs its key"):
        portwarden.Client("https://127.0.0.1:1", ca=pki["ca"], cert=pki["client_cert"])
