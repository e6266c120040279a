//! Name resolution: getaddrinfo of `localhost` and of this host's name, on a helper thread so a
//! hanging resolver cannot hold the report past its budget. localhost not resolving to loopback
//! is critical; a failure (or timeout) is a warning; a slow lookup is info.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::check::{names, round1, CheckResult, CheckStatus};
use super::thresholds::Thresholds;

/// Lookups still running (possibly hung) on helper threads; capped so a dead resolver cannot
/// make us pile up threads report after report.
static LOOKUPS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
const MAX_LOOKUPS_IN_FLIGHT: usize = 4;

/// One name's resolution.
#[derive(Debug, Clone)]
struct Resolution {
    name: String,
    addresses: Result<Vec<IpAddr>, String>,
    elapsed: Duration,
}

fn resolve(name: &str) -> Resolution {
    let started = Instant::now();
    let addresses = (name, 0u16)
        .to_socket_addrs()
        .map(|addresses| {
            let mut ips: Vec<IpAddr> = addresses.map(|address| address.ip()).collect();
            ips.dedup();
            ips
        })
        .map_err(|error| error.to_string());
    Resolution {
        name: name.to_string(),
        addresses,
        elapsed: started.elapsed(),
    }
}

/// This host's name (gethostname).
pub fn host_name() -> Option<String> {
    #[cfg(unix)]
    {
        let mut buffer = [0u8; 256];
        // SAFETY: the buffer is writable for its full length; gethostname NUL-terminates within it
        // (we also force a final NUL).
        let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len() - 1) };
        if rc != 0 {
            return None;
        }
        let end = buffer
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(buffer.len());
        let name = String::from_utf8_lossy(&buffer[..end]).into_owned();
        (!name.is_empty()).then_some(name)
    }
    // Windows keeps the computer's name in the environment of every process.
    #[cfg(windows)]
    {
        std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty())
    }
    #[cfg(not(any(unix, windows)))]
    {
        None
    }
}

/// Releases the in-flight slot when the helper thread ends.
struct InFlightSlot;

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A DNS check running in the background; started early so it overlaps the other checks.
pub struct DnsProbe {
    receiver: Option<mpsc::Receiver<(Resolution, Option<Resolution>)>>,
    hostname: Option<String>,
    refused: Option<String>,
}

impl DnsProbe {
    /// Starts resolving `localhost` and the host name on a helper thread.
    pub fn start() -> DnsProbe {
        DnsProbe::start_with(resolve)
    }

    fn start_with(resolver: fn(&str) -> Resolution) -> DnsProbe {
        let hostname = host_name();
        if LOOKUPS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= MAX_LOOKUPS_IN_FLIGHT {
            LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return DnsProbe {
                receiver: None,
                hostname,
                refused: Some(format!(
                    "{MAX_LOOKUPS_IN_FLIGHT} earlier lookups are still hanging"
                )),
            };
        }
        let (sender, receiver) = mpsc::sync_channel(1);
        let name = hostname.clone();
        let spawned = std::thread::Builder::new()
            .name("portwarden-dns".into())
            .spawn(move || {
                let _slot = InFlightSlot;
                let localhost = resolver("localhost");
                let host = name.as_deref().map(resolver);
                // The receiver may have given up waiting; that is fine.
                let _ = sender.send((localhost, host));
            });
        match spawned {
            Ok(_) => DnsProbe {
                receiver: Some(receiver),
                hostname,
                refused: None,
            },
            Err(error) => {
                LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
                DnsProbe {
                    receiver: None,
                    hostname,
                    refused: Some(format!("cannot start a resolver thread: {error}")),
                }
            }
        }
    }

    /// Waits for the lookups until `deadline`, then judges them.
    pub fn finish(self, deadline: Instant, thresholds: &Thresholds) -> CheckResult {
        let base = CheckResult::new(
            names::DNS_RESOLUTION,
            CheckStatus::Ok,
            "DNS resolving correctly",
        )
        .with_field("hostname", self.hostname.clone().unwrap_or_default());
        if let Some(reason) = self.refused {
            let mut result = base;
            result.escalate(CheckStatus::Warning, format!("DNS not checked: {reason}"));
            return result;
        }
        let Some(receiver) = self.receiver else {
            return base;
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok((localhost, host)) => judge(base, &localhost, host.as_ref(), thresholds),
            Err(_) => {
                let mut result = base.with_field("timed_out", true);
                result.escalate(
                    CheckStatus::Warning,
                    format!("DNS lookups did not answer within {} ms", wait.as_millis()),
                );
                result.recommendation = Some(
                    "Check /etc/resolv.conf and /etc/hosts; make sure 'localhost' and the host \
                     name resolve locally"
                        .into(),
                );
                tracing::warn!(
                    timeout_ms = wait.as_millis() as u64,
                    "DNS lookups timed out"
                );
                result
            }
        }
    }
}

fn addresses_json(resolution: &Resolution) -> serde_json::Value {
    match &resolution.addresses {
        Ok(addresses) => addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .into(),
        Err(_) => serde_json::Value::Array(Vec::new()),
    }
}

fn judge(
    mut result: CheckResult,
    localhost: &Resolution,
    host: Option<&Resolution>,
    thresholds: &Thresholds,
) -> CheckResult {
    let mut elapsed = localhost.elapsed;
    result.set_field(
        "localhost_ms",
        round1(localhost.elapsed.as_secs_f64() * 1000.0),
    );
    result.set_field("localhost_addresses", addresses_json(localhost));
    match &localhost.addresses {
        Ok(addresses) => {
            let first = addresses
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            result.set_field("localhost", first);
            let all_loopback =
                !addresses.is_empty() && addresses.iter().all(|a| super::is_loopback(*a));
            result.set_field("localhost_is_loopback", all_loopback);
            if !all_loopback {
                result.escalate(
                    CheckStatus::Critical,
                    format!("'localhost' resolves to non-loopback addresses {addresses:?}"),
                );
                result.recommendation =
                    Some("Fix /etc/hosts: localhost must map to 127.0.0.1 and ::1 only".into());
            }
        }
        Err(error) => {
            result.set_field("localhost_error", error.as_str());
            result.escalate(
                CheckStatus::Warning,
                format!("cannot resolve 'localhost': {error}"),
            );
            result.recommendation = Some("Add '127.0.0.1 localhost' to /etc/hosts".into());
        }
    }
    if let Some(host) = host {
        elapsed += host.elapsed;
        result.set_field("hostname_ms", round1(host.elapsed.as_secs_f64() * 1000.0));
        result.set_field("hostname_addresses", addresses_json(host));
        if let Err(error) = &host.addresses {
            result.set_field("hostname_error", error.as_str());
            result.escalate(
                CheckStatus::Warning,
                format!("cannot resolve host name '{}': {error}", host.name),
            );
            if result.recommendation.is_none() {
                result.recommendation = Some(format!(
                    "Add '{}' to /etc/hosts or fix the resolver; services fall back to IP addresses",
                    host.name
                ));
            }
        }
    }
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    result.set_field("latency_ms", round1(elapsed_ms));
    if elapsed_ms > thresholds.dns_slow_ms as f64 {
        result.escalate(
            CheckStatus::Info,
            format!(
                "DNS resolution slow: {elapsed_ms:.0} ms (> {} ms)",
                thresholds.dns_slow_ms
            ),
        );
    }
    result
}

/// Runs the DNS check on its own, waiting at most `timeout`.
pub fn dns_resolution(timeout: Duration, thresholds: &Thresholds) -> CheckResult {
    DnsProbe::start().finish(Instant::now() + timeout, thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hanging_resolver(name: &str) -> Resolution {
        std::thread::sleep(Duration::from_secs(3));
        resolve(name)
    }

    fn remote_localhost(name: &str) -> Resolution {
        Resolution {
            name: name.to_string(),
            addresses: Ok(vec![IpAddr::from([192, 0, 2, 7])]),
            elapsed: Duration::from_millis(1),
        }
    }

    #[test]
    fn a_hanging_resolver_is_cut_off_at_the_deadline_with_a_warning() {
        let started = Instant::now();
        let probe = DnsProbe::start_with(hanging_resolver);
        let result = probe.finish(started + Duration::from_millis(200), &Thresholds::default());
        assert!(started.elapsed() < Duration::from_millis(1000));
        assert_eq!(result.status, CheckStatus::Warning);
        assert_eq!(result.field("timed_out"), Some(&true.into()));
    }

    #[test]
    fn localhost_resolving_elsewhere_is_critical() {
        let probe = DnsProbe::start_with(remote_localhost);
        let result = probe.finish(
            Instant::now() + Duration::from_secs(2),
            &Thresholds::default(),
        );
        assert_eq!(result.status, CheckStatus::Critical);
    }

    #[test]
    fn the_real_resolver_maps_localhost_to_loopback() {
        let result = dns_resolution(Duration::from_secs(2), &Thresholds::default());
        assert_eq!(
            result.field("localhost_is_loopback"),
            Some(&true.into()),
            "{result:?}"
        );
    }
}
