//! TLS readiness on real certificates generated with rcgen.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use portwarden::network::tls::{ssl_readiness, tls_readiness};
use portwarden::network::{CheckResult, CheckStatus, NetworkConfig, Thresholds};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use time::{Duration, OffsetDateTime};

/// Certificate + key files in a temporary directory.
struct TlsFiles {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn leaf_params(valid_for: Duration) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "portwarden test");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(400);
    params.not_after = now + valid_for;
    params
}

/// A self-signed certificate valid for `valid_for` from now (negative: already expired).
fn self_signed(valid_for: Duration) -> TlsFiles {
    let key = KeyPair::generate().expect("key");
    let cert = leaf_params(valid_for).self_signed(&key).expect("cert");
    files(&cert.pem(), &key.serialize_pem())
}

fn files(cert_pem: &str, key_pem: &str) -> TlsFiles {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    write_private(&cert, cert_pem);
    write_private(&key, key_pem);
    TlsFiles {
        _dir: dir,
        cert,
        key,
    }
}

/// Days left as reported; a certificate valid for `days` from "now" reports `days` or `days - 1`
/// depending on where the second boundaries fall.
fn assert_days(result: &CheckResult, field: &str, days: i64) {
    let reported = result.field(field).and_then(|value| value.as_i64());
    assert!(
        reported == Some(days) || reported == Some(days - 1),
        "{field}: {reported:?}, expected {days}"
    );
}

fn check(files: &TlsFiles) -> CheckResult {
    ssl_readiness(
        Some(&files.cert),
        Some(&files.key),
        &Thresholds::default(),
        SystemTime::now(),
    )
}

#[test]
fn a_valid_certificate_with_its_key_is_ok() {
    let result = check(&self_signed(Duration::days(365)));
    assert_eq!(result.status, CheckStatus::Ok, "{result:?}");
    assert_eq!(result.field("key_matches_cert"), Some(&true.into()));
    assert_days(&result, "leaf_days_to_expiry", 365);
    assert_eq!(result.field("key_mode"), Some(&"0600".into()));
}

#[test]
fn a_certificate_expiring_in_5_days_is_critical() {
    let result = check(&self_signed(Duration::days(5)));
    assert_eq!(result.status, CheckStatus::Critical, "{result:?}");
    assert_days(&result, "leaf_days_to_expiry", 5);
}

#[test]
fn an_expired_certificate_is_critical() {
    let result = check(&self_signed(Duration::days(-2)));
    assert_eq!(result.status, CheckStatus::Critical, "{result:?}");
    assert!(result.note.contains("expired"), "{}", result.note);
}

#[test]
fn a_certificate_expiring_in_20_days_is_a_warning() {
    let result = check(&self_signed(Duration::days(20)));
    assert_eq!(result.status, CheckStatus::Warning, "{result:?}");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_critical() {
    let key = KeyPair::generate().expect("key");
    let other_key = KeyPair::generate().expect("other key");
    let cert = leaf_params(Duration::days(365))
        .self_signed(&key)
        .expect("cert");
    let result = check(&files(&cert.pem(), &other_key.serialize_pem()));
    assert_eq!(result.status, CheckStatus::Critical, "{result:?}");
    assert_eq!(result.field("key_matches_cert"), Some(&false.into()));
}

#[test]
fn tls_not_configured_is_info() {
    let result = tls_readiness(&NetworkConfig::default());
    assert_eq!(result.status, CheckStatus::Info);
    assert_eq!(result.field("configured"), Some(&false.into()));
}

#[test]
fn an_unreadable_certificate_is_critical() {
    let result = ssl_readiness(
        Some(Path::new("/nonexistent/cert.pem")),
        Some(Path::new("/nonexistent/key.pem")),
        &Thresholds::default(),
        SystemTime::now(),
    );
    assert_eq!(result.status, CheckStatus::Critical, "{result:?}");
}

#[test]
fn an_expiring_intermediate_in_the_chain_is_reported() {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = leaf_params(Duration::days(10));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = leaf_params(Duration::days(90))
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let chain = format!("{}{}", leaf.pem(), ca_cert.pem());
    let result = check(&files(&chain, &leaf_key.serialize_pem()));
    assert_eq!(result.field("chain_length"), Some(&2.into()));
    assert_days(&result, "leaf_days_to_expiry", 90);
    assert_days(&result, "chain_min_days_to_expiry", 10);
    assert_eq!(result.status, CheckStatus::Warning, "{result:?}");
    assert_eq!(result.field("key_matches_cert"), Some(&true.into()));
}

#[test]
fn a_world_readable_key_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let tls = self_signed(Duration::days(365));
    std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let result = check(&tls);
    assert_eq!(result.status, CheckStatus::Warning, "{result:?}");
}
