//! TLS on the daemon's TCP listener (rustls through tonic), and the rule that a listener other
//! hosts can reach speaks TLS unless the operator explicitly says otherwise.
//!
//! One certificate pair (`tls_cert` / `tls_key`) is both what the listener serves and what the
//! ssl_readiness check watches, so the check reports on the certificate clients actually see.
//! `tls_client_ca` turns on mutual TLS: a client must present a certificate signed by it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Longest TLS handshake: a client that connects and says nothing holds no slot longer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("config key '{key}': cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("config key '{key}': {path} holds no PEM {what}")]
    NotPem {
        key: &'static str,
        path: String,
        what: &'static str,
    },
    #[error("config key 'tls_cert': the certificate and key cannot serve TLS: {0}")]
    Unusable(String),
}

/// Refuses a plaintext listener that other hosts can reach, unless `insecure` says so.
pub fn check_exposure(addr: SocketAddr, tls: bool, insecure: bool) -> Result<(), String> {
    if tls || insecure || crate::network::is_loopback(addr.ip()) {
        return Ok(());
    }
    Err(format!(
        "{addr} is reachable from other hosts and TLS is not configured: set tls_cert and \
         tls_key (and tls_client_ca to require client certificates), listen on 127.0.0.1, or \
         pass --insecure-listen to serve plaintext to the network anyway"
    ))
}

/// The listener's TLS configuration from PEM files (certificate chain, leaf first; its key;
/// optionally the CA that signs client certificates).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, TlsError> {
    let cert_pem = read_pem("tls_cert", cert, "CERTIFICATE", "certificate")?;
    let key_pem = read_pem("tls_key", key, "PRIVATE KEY", "private key")?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert_pem, key_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = client_ca {
        let ca_pem = read_pem("tls_client_ca", ca, "CERTIFICATE", "CA certificate")?;
        config = config.client_ca_root(Certificate::from_pem(ca_pem));
    }
    Ok(config)
}

fn read_pem(
    key: &'static str,
    path: &Path,
    label: &str,
    what: &'static str,
) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(&format!("{label}-----")) {
        return Err(TlsError::NotPem {
            key,
            path: path.display().to_string(),
            what,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_listen_in_plaintext_without_the_override() {
        let any: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        let err = check_exposure(any, false, false).unwrap_err();
        assert!(
            err.contains("0.0.0.0:7070") && err.contains("--insecure-listen"),
            "{err}"
        );
        assert!(check_exposure(any, true, false).is_ok());
        assert!(check_exposure(any, false, true).is_ok());
        for ok in [
            "127.0.0.1:1",
            "127.1.2.3:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(
                check_exposure(ok.parse().unwrap(), false, false).is_ok(),
                "{ok}"
            );
        }
        assert!(check_exposure("[::]:1".parse().unwrap(), false, false).is_err());
        assert!(check_exposure("10.0.0.5:1".parse().unwrap(), false, false).is_err());
    }
}
