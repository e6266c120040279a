//! TLS readiness of the configured certificate and key files: present and readable, the
//! certificate chain parses, days to expiry of the leaf and of every certificate in the chain,
//! the key belongs to the leaf, and the key file is not readable by others.

mod der;
mod private_key;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use x509_parser::pem::Pem;

use super::check::{names, CheckResult, CheckStatus};
use super::thresholds::Thresholds;
use super::NetworkConfig;

pub use private_key::{inspect_private_key, public_key_from_spki, KeyInspection, PublicKey};

const SECONDS_PER_DAY: i64 = 86_400;

/// TLS readiness of `cfg.tls_cert` / `cfg.tls_key`, judged now.
pub fn tls_readiness(cfg: &NetworkConfig) -> CheckResult {
    ssl_readiness(
        cfg.tls_cert.as_deref(),
        cfg.tls_key.as_deref(),
        &cfg.thresholds,
        SystemTime::now(),
    )
}

/// Reads a regular file (refusing FIFOs and devices, which could block the report).
fn read_regular_file(path: &Path) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|error| error.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    std::fs::read(path).map_err(|error| error.to_string())
}

/// PEM blocks of a file, or the whole file as one unlabelled DER block.
fn blocks(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let pems: Vec<(String, Vec<u8>)> = Pem::iter_from_buffer(data)
        .map_while(Result::ok)
        .map(|pem| (pem.label, pem.contents))
        .collect();
    if pems.is_empty() && data.first() == Some(&0x30) {
        vec![(String::new(), data.to_vec())]
    } else {
        pems
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-27T22:21:40Z`).
pub fn format_utc(timestamp: i64) -> String {
    let days = timestamp.div_euclid(SECONDS_PER_DAY);
    let seconds = timestamp.rem_euclid(SECONDS_PER_DAY);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// One certificate of the chain, as measured.
struct CertificateFacts {
    subject: String,
    not_before: i64,
    not_after: i64,
    public_key: Option<PublicKey>,
}

fn parse_chain(data: &[u8]) -> Result<Vec<CertificateFacts>, String> {
    let mut chain = Vec::new();
    for (index, (label, der_bytes)) in blocks(data).iter().enumerate() {
        if !(label.is_empty() || label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE") {
            continue;
        }
        let (_, certificate) = x509_parser::parse_x509_certificate(der_bytes)
            .map_err(|error| format!("certificate #{} does not parse: {error}", index + 1))?;
        let validity = certificate.validity();
        chain.push(CertificateFacts {
            subject: certificate.subject().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            public_key: public_key_from_spki(certificate.public_key().raw),
        });
    }
    if chain.is_empty() {
        return Err("no certificate found in the file".into());
    }
    Ok(chain)
}

fn inspect_key_file(data: &[u8]) -> KeyInspection {
    blocks(data)
        .iter()
        .find(|(label, _)| label.is_empty() || label.ends_with("PRIVATE KEY"))
        .map_or_else(
            || KeyInspection::Unrecognised("no private key found in the file".into()),
            |(label, der_bytes)| inspect_private_key(label, der_bytes),
        )
}

#[cfg(unix)]
fn key_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| metadata.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn key_mode(_path: &Path) -> Option<u32> {
    None
}

/// TLS readiness of a certificate (chain) file and key file at time `now`.
pub fn ssl_readiness(
    cert: Option<&Path>,
    key: Option<&Path>,
    thresholds: &Thresholds,
    now: SystemTime,
) -> CheckResult {
    let (cert_path, key_path) = match (cert, key) {
        (None, None) => {
            return CheckResult::new(
                names::SSL_READINESS,
                CheckStatus::Info,
                "SSL certificates not configured (HTTPS not needed)",
            )
            .with_field("configured", false)
        }
        (Some(cert), Some(key)) => (cert, key),
        (cert, _) => {
            let missing = if cert.is_some() { "key" } else { "certificate" };
            return CheckResult::new(
                names::SSL_READINESS,
                CheckStatus::Critical,
                format!("TLS half configured: no {missing} file"),
            )
            .with_field("configured", true)
            .with_recommendation("Configure both the certificate and the key file");
        }
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let mut result = CheckResult::new(
        names::SSL_READINESS,
        CheckStatus::Ok,
        "TLS certificate and key ready",
    )
    .with_field("configured", true)
    .with_field("cert_path", cert_path.display().to_string())
    .with_field("key_path", key_path.display().to_string());

    let chain = match read_regular_file(cert_path).and_then(|data| parse_chain(&data)) {
        Ok(chain) => chain,
        Err(error) => {
            result.escalate(
                CheckStatus::Critical,
                format!("certificate {}: {error}", cert_path.display()),
            );
            result.set_field("cert_error", error);
            result.recommendation =
                Some("Point tls_cert at a readable PEM certificate chain".into());
            return result;
        }
    };
    judge_expiry(&mut result, &chain, now, thresholds);
    judge_key(&mut result, key_path, chain[0].public_key.as_ref());
    if result.status > CheckStatus::Ok {
        tracing::warn!(status = ?result.status, note = %result.note, "TLS readiness problem");
    }
    result
}

fn judge_expiry(
    result: &mut CheckResult,
    chain: &[CertificateFacts],
    now: i64,
    thresholds: &Thresholds,
) {
    let days_left = |facts: &CertificateFacts| (facts.not_after - now).div_euclid(SECONDS_PER_DAY);
    let leaf = &chain[0];
    result.set_field("leaf_subject", leaf.subject.clone());
    result.set_field("leaf_not_after", format_utc(leaf.not_after));
    result.set_field("leaf_days_to_expiry", days_left(leaf));
    result.set_field("chain_length", chain.len());
    let chain_json: Vec<serde_json::Value> = chain
        .iter()
        .map(|facts| {
            json!({
                "subject": facts.subject,
                "not_before": format_utc(facts.not_before),
                "not_after": format_utc(facts.not_after),
                "days_to_expiry": days_left(facts),
            })
        })
        .collect();
    result.set_field("chain", chain_json);
    let Some(soonest) = chain.iter().min_by_key(|facts| facts.not_after) else {
        return;
    };
    result.set_field("chain_min_days_to_expiry", days_left(soonest));
    let seconds_left = soonest.not_after - now;
    let which = if std::ptr::eq(soonest, leaf) {
        "certificate"
    } else {
        "chain certificate"
    };
    if seconds_left <= 0 {
        result.escalate(
            CheckStatus::Critical,
            format!(
                "{which} '{}' expired on {}",
                soonest.subject,
                format_utc(soonest.not_after)
            ),
        );
    } else if seconds_left < thresholds.tls_expiry_critical_days * SECONDS_PER_DAY {
        result.escalate(
            CheckStatus::Critical,
            format!(
                "{which} '{}' expires in {} days",
                soonest.subject,
                days_left(soonest)
            ),
        );
    } else if seconds_left < thresholds.tls_expiry_warning_days * SECONDS_PER_DAY {
        result.escalate(
            CheckStatus::Warning,
            format!(
                "{which} '{}' expires in {} days",
                soonest.subject,
                days_left(soonest)
            ),
        );
    }
    if let Some(early) = chain.iter().find(|facts| facts.not_before > now) {
        result.escalate(
            CheckStatus::Critical,
            format!(
                "certificate '{}' is not valid before {}",
                early.subject,
                format_utc(early.not_before)
            ),
        );
    }
    if result.status > CheckStatus::Ok {
        result.recommendation = Some("Renew the certificate (and chain) before it expires".into());
    }
}

fn judge_key(result: &mut CheckResult, key_path: &Path, leaf_key: Option<&PublicKey>) {
    let data = match read_regular_file(key_path) {
        Ok(data) => data,
        Err(error) => {
            result.escalate(
                CheckStatus::Critical,
                format!("key {}: {error}", key_path.display()),
            );
            result.set_field("key_error", error);
            result.recommendation = Some("Make the key file readable by the service user".into());
            return;
        }
    };
    if let Some(mode) = key_mode(key_path) {
        result.set_field("key_mode", format!("{mode:04o}"));
        if mode & 0o026 != 0 {
            result.escalate(
                CheckStatus::Warning,
                format!(
                    "key file {} is accessible by others (mode {mode:04o})",
                    key_path.display()
                ),
            );
            result.recommendation = Some(format!("chmod 600 {}", key_path.display()));
        }
    }
    match (inspect_key_file(&data), leaf_key) {
        (KeyInspection::Public(key), Some(leaf)) if &key == leaf => {
            result.set_field("key_matches_cert", true);
        }
        (KeyInspection::Public(_), Some(_)) => {
            result.set_field("key_matches_cert", false);
            result.escalate(
                CheckStatus::Critical,
                "private key does not match the certificate",
            );
            result.recommendation =
                Some("Configure the key that was used to issue the certificate".into());
        }
        (KeyInspection::Unrecognised(reason), _) => {
            result.set_field("key_error", reason.clone());
            result.escalate(
                CheckStatus::Critical,
                format!("key {}: {reason}", key_path.display()),
            );
        }
        (KeyInspection::Encrypted, _) => {
            result.set_field("key_matches_cert", serde_json::Value::Null);
            result.escalate(
                CheckStatus::Warning,
                "private key is encrypted; cannot verify it matches",
            );
        }
        (KeyInspection::NoPublicKey(kind), _) => {
            result.set_field("key_matches_cert", serde_json::Value::Null);
            result.escalate(
                CheckStatus::Warning,
                format!(
                    "{kind} key carries no public key; cannot verify it matches the certificate"
                ),
            );
        }
        (KeyInspection::Public(_), None) => {
            result.set_field("key_matches_cert", serde_json::Value::Null);
            result.escalate(
                CheckStatus::Warning,
                "certificate key type not understood; cannot verify the key matches",
            );
        }
    }
}
