//! `portwarden check`: the network checks, run in this process (no daemon needed). With
//! `--port`, a port that is in use names the process listening on it.

use super::exit;
use super::render::check_report;
use super::CheckArgs;
use crate::network::{names, CheckStatus, OverallStatus, Report};

/// Runs the checks, prints them, and returns the exit code: 0 healthy, 1 warning, 2 critical.
pub fn run(args: &CheckArgs) -> u8 {
    let cfg = crate::network::NetworkConfig {
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        ..Default::default()
    };
    let mut report = crate::network::run_report(&cfg, args.port);
    if let Some(port) = args.port {
        name_holder(&mut report, port);
    }
    if args.json {
        super::commands::print_json(&report.to_seed_json());
    } else {
        out!("{}", check_report(&report, args.port));
    }
    match report.status {
        OverallStatus::Healthy => exit::OK,
        OverallStatus::Warning => exit::WARNING,
        OverallStatus::Critical => exit::CRITICAL,
    }
}

/// A port in use: the firewall check names who listens ("held by pid 812 (nginx)") and keeps
/// it in a `holder` field.
fn name_holder(report: &mut Report, port: u16) {
    let Some(fw) = report
        .checks
        .iter_mut()
        .find(|c| c.name == names::FIREWALL && c.status != CheckStatus::Critical)
    else {
        return;
    };
    if fw.field("in_use") != Some(&serde_json::Value::Bool(true)) {
        return;
    }
    let holder = match crate::network::listener_holders(port, "this user") {
        Ok(list) if !list.is_empty() => list.join(", "),
        // Bound without listening, or the listener went away since the probe.
        Ok(_) => "a socket that is bound without listening (no listener found)".to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    fw.note = format!("{}; held by {}", fw.note, crate::text::printable(&holder));
    fw.set_field("holder", holder);
}
