//! Daemon configuration: embedded defaults < TOML file < `PORTWARDEN_*` environment < flags.
//! Every key is named the same in all three places (`range` is `--range` and
//! `PORTWARDEN_RANGE`); a bad value is an error that names the key and the rule.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::network::{NetworkConfig, Thresholds};
use crate::ports::{PortRange, RangeSet};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
pub const DEFAULT_RANGE: &str = "8000-8100";
/// The Linux TIME_WAIT length: a released port rests this long before another service gets it.
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(60);
/// The seed's watchdog period.
pub const DEFAULT_WATCHDOG_INTERVAL: Duration = Duration::from_secs(30);
/// Largest request the gRPC services decode; anything bigger is refused (RESOURCE_EXHAUSTED).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Flags of `portwarden serve`; each also reads its `PORTWARDEN_*` variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (keys as the flags, with underscores: unix_socket, watchdog_interval, ...)
    #[arg(long, env = "PORTWARDEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TCP address for gRPC and the REST gateway (HTTP/1.1: /api/ports/..., /metrics) [default: 127.0.0.1:7070]
    #[arg(long, env = "PORTWARDEN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Unix socket path, or `none` [default: /run/portwarden/portwarden.sock as root, else $XDG_RUNTIME_DIR/portwarden.sock]
    #[arg(long, env = "PORTWARDEN_UNIX_SOCKET", value_name = "PATH")]
    pub unix_socket: Option<String>,
    /// SQLite state file [default: /var/lib/portwarden/state.db as root, else $XDG_STATE_HOME/portwarden/state.db]
    #[arg(long, env = "PORTWARDEN_STATE", value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Managed port range, repeatable (`PORTWARDEN_RANGE` is comma-separated) [default: 8000-8100]
    #[arg(
        long = "range",
        env = "PORTWARDEN_RANGE",
        value_delimiter = ',',
        value_name = "START-END"
    )]
    pub range: Vec<String>,
    /// The test pool, repeatable: where the portserver endpoint and test clients (`--pool test`)
    /// draw from, apart from the services' ranges; `none` turns it off [default: 15000-24999]
    #[arg(
        long = "test-range",
        env = "PORTWARDEN_TEST_RANGE",
        value_delimiter = ',',
        value_name = "START-END"
    )]
    pub test_range: Vec<String>,
    /// How long a released port rests before another service gets it; `0s` disables [default: 60s]
    #[arg(long, env = "PORTWARDEN_QUARANTINE", value_name = "DURATION")]
    pub quarantine: Option<String>,
    /// Period of the watchdog's pass over every allocation (health, squatters, connections, network) [default: 30s]
    #[arg(long, env = "PORTWARDEN_WATCHDOG_INTERVAL", value_name = "DURATION")]
    pub watchdog_interval: Option<String>,
    /// Ports one uid may hold (root excepted): a number, or a share of the ranges [default: 50%]
    #[arg(long, env = "PORTWARDEN_MAX_PORTS_PER_UID", value_name = "N|PERCENT")]
    pub max_ports_per_uid: Option<String>,
    /// Ports one service name may hold: a number, or a share of the ranges [default: 100%, no limit]
    #[arg(
        long,
        env = "PORTWARDEN_MAX_PORTS_PER_SERVICE",
        value_name = "N|PERCENT"
    )]
    pub max_ports_per_service: Option<String>,
    /// Start even when the state database has lost committed changes (behind its marker file):
    /// continue with what is left
    #[arg(long, env = "PORTWARDEN_ACCEPT_STATE_LOSS")]
    pub accept_state_loss: bool,
    /// Connections open at once, over both listeners [default: 1024]
    #[arg(long, env = "PORTWARDEN_MAX_CONNECTIONS", value_name = "COUNT")]
    pub max_connections: Option<usize>,
    /// Connections one caller may hold at once (a local uid, or a remote address) [default: 64]
    #[arg(
        long,
        env = "PORTWARDEN_MAX_CONNECTIONS_PER_PEER",
        value_name = "COUNT"
    )]
    pub max_connections_per_peer: Option<usize>,
    /// Event streams (Watch and the REST event stream) open at once, over every transport [default: 4096]
    #[arg(long, env = "PORTWARDEN_MAX_WATCHERS", value_name = "COUNT")]
    pub max_watchers: Option<usize>,
    /// Event streams one uid may hold at once (root and the daemon's own uid excepted) [default: 256]
    #[arg(long, env = "PORTWARDEN_MAX_WATCHERS_PER_UID", value_name = "COUNT")]
    pub max_watchers_per_uid: Option<usize>,
    /// Of max_watchers, how many only root and the daemon's own uid may take [default: 256]
    #[arg(long, env = "PORTWARDEN_RESERVED_WATCHERS", value_name = "COUNT")]
    pub reserved_watchers: Option<usize>,
    /// A connection that sends no request within this long is closed [default: 10s]
    #[arg(
        long,
        env = "PORTWARDEN_FIRST_REQUEST_TIMEOUT",
        value_name = "DURATION"
    )]
    pub first_request_timeout: Option<String>,
    /// A connection with no request in flight for this long is closed [default: 5m]
    #[arg(long, env = "PORTWARDEN_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Events kept in the event log, at most [default: 100000]
    #[arg(long, env = "PORTWARDEN_EVENTS_KEEP", value_name = "COUNT")]
    pub events_keep: Option<u64>,
    /// Events older than this are dropped from the event log [default: 7d]
    #[arg(long, env = "PORTWARDEN_EVENTS_MAX_AGE", value_name = "DURATION")]
    pub events_max_age: Option<String>,
    /// Log format [default: text]
    #[arg(long, env = "PORTWARDEN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// PEM certificate chain: the TCP listener serves TLS with it, and ssl_readiness checks it [default: none, plaintext]
    #[arg(long, env = "PORTWARDEN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching --tls-cert
    #[arg(long, env = "PORTWARDEN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate: TCP clients must present a certificate it signed (mutual TLS)
    #[arg(long, env = "PORTWARDEN_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve plaintext on a TCP address other hosts can reach (refused without this flag)
    #[arg(long, env = "PORTWARDEN_INSECURE_LISTEN")]
    pub insecure_listen: bool,
    /// Serve portpicker's portserver protocol on this Unix socket: a path, or @NAME in the
    /// abstract namespace (what PORTSERVER_ADDRESS names); `none` disables it [default:
    /// @portwarden-portserver, i.e. the --netns-lock name followed by -portserver; off with
    /// --netns-lock none]
    #[arg(long, env = "PORTWARDEN_PORTSERVER_SOCKET", value_name = "PATH|@NAME")]
    pub portserver_socket: Option<String>,
    /// Checks whose critical finding refuses every allocation (comma-separated; `none`: never
    /// refuse); other critical findings are returned and logged [default: ipv4_available,firewall,network_interfaces]
    #[arg(
        long,
        env = "PORTWARDEN_BLOCKING_CHECKS",
        value_delimiter = ',',
        value_name = "CHECK,..."
    )]
    pub blocking_checks: Vec<String>,
    /// Abstract Unix socket claimed at start-up so that one daemon serves a network namespace;
    /// a second one is refused, naming the first. Two daemons sharing a namespace on purpose
    /// (ranges that do not overlap) each need a name of their own; `none` claims nothing (and
    /// warns) [default: @portwarden]
    #[arg(long, env = "PORTWARDEN_NETNS_LOCK", value_name = "@NAME")]
    pub netns_lock: Option<String>,
}

/// The config file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    unix_socket: Option<String>,
    state: Option<PathBuf>,
    range: Option<OneOrMany>,
    test_range: Option<OneOrMany>,
    quarantine: Option<String>,
    watchdog_interval: Option<String>,
    events_keep: Option<u64>,
    events_max_age: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_peer: Option<usize>,
    first_request_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_watchers: Option<usize>,
    max_watchers_per_uid: Option<usize>,
    reserved_watchers: Option<usize>,
    max_ports_per_uid: Option<ShareValue>,
    max_ports_per_service: Option<ShareValue>,
    log_format: Option<LogFormat>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    insecure_listen: Option<bool>,
    portserver_socket: Option<String>,
    blocking_checks: Option<OneOrMany>,
    netns_lock: Option<String>,
    network: Option<FileNetwork>,
}

/// `[network]`: the diagnostics, with every threshold under `[network.thresholds]`. Its
/// `tls_cert` / `tls_key` are the older spelling of the top-level keys (same pair).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNetwork {
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    budget: Option<String>,
    dns_timeout: Option<String>,
    thresholds: Option<Thresholds>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A quota in the file: `"50%"` or `20`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ShareValue {
    Text(String),
    Number(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("config key '{key}': {rule}")]
    Invalid { key: &'static str, rule: String },
}

/// The resolved configuration of the daemon.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub unix_socket: Option<PathBuf>,
    pub state: PathBuf,
    pub ranges: RangeSet,
    /// The test pool (None: off).
    pub test_range: Option<RangeSet>,
    pub quarantine: Duration,
    pub watchdog_interval: Duration,
    pub events_keep: u64,
    pub events_max_age: Duration,
    /// Connection limits and timeouts.
    pub limits: crate::listener::Limits,
    /// Who may hold how many event streams.
    pub watchers: crate::events::WatcherLimits,
    /// What one uid and one service may hold.
    pub quotas: crate::ports::Quotas,
    /// Start even when the database is behind its marker.
    pub accept_state_loss: bool,
    pub log_format: LogFormat,
    /// The TLS pair is `network.tls_cert` / `network.tls_key`: served on the TCP listener and
    /// checked by ssl_readiness. With a client CA, TCP clients need a certificate it signed.
    pub tls_client_ca: Option<PathBuf>,
    /// Plaintext on a non-loopback TCP address, explicitly allowed.
    pub insecure_listen: bool,
    /// The abstract socket that makes this the one daemon of its network namespace (None: no
    /// claim).
    pub netns_lock: Option<String>,
    pub network: NetworkConfig,
    /// Where portpicker's portserver protocol is served (off when None).
    pub portserver_socket: Option<PortserverSocket>,
}

/// A Unix socket address as portpicker writes it: `@name` is Linux's abstract namespace (no file;
/// gone with the process), anything else a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortserverSocket {
    Path(PathBuf),
    Abstract(String),
}

/// The longest `sun_path` (108 bytes with its terminating NUL, or with the abstract namespace's
/// leading NUL).
const MAX_SUN_PATH: usize = 107;

/// The portserver endpoint's default name: the namespace claim's, followed by this.
pub const PORTSERVER_SUFFIX: &str = "-portserver";

impl PortserverSocket {
    /// The default endpoint beside the namespace claim `lock` (`@portwarden` ->
    /// `@portwarden-portserver`), so that it is as unique as the claim and never the claim
    /// itself. None without a claim: such a daemon may be one of several in its namespace, and
    /// a fixed name would refuse the second.
    pub fn beside(lock: Option<&str>) -> Option<Self> {
        let name = lock?.strip_prefix('@')?;
        let name = format!("{name}{PORTSERVER_SUFFIX}");
        // The claim's name may already use all 107 bytes: then there is no default.
        (name.len() < MAX_SUN_PATH).then_some(Self::Abstract(name))
    }

    /// `none` or empty: off; `@name`: abstract; else a path.
    pub fn parse(v: &str) -> Result<Option<Self>, String> {
        let parsed = match v {
            "" | "none" => return Ok(None),
            _ if cfg!(not(unix)) => {
                return Err(
                    "the portserver protocol is served on a Unix socket, which this platform does not have".into(),
                )
            }
            "@" => return Err("'@' needs a name after it (e.g. @portserver)".into()),
            _ => match v.strip_prefix('@') {
                Some(name) => Self::Abstract(name.to_string()),
                None => Self::Path(PathBuf::from(v)),
            },
        };
        if v.len() > MAX_SUN_PATH {
            return Err(format!(
                "'{v}' is {} bytes; a Unix socket address holds at most {MAX_SUN_PATH}",
                v.len()
            ));
        }
        Ok(Some(parsed))
    }
}

impl std::fmt::Display for PortserverSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => write!(f, "{}", p.display()),
            Self::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

impl Config {
    /// Embedded defaults for this user (root gets the system paths).
    pub fn defaults() -> Self {
        let ranges = RangeSet::new(vec![PortRange {
            start: 8000,
            end: 8100,
        }])
        .unwrap_or_else(|_| unreachable!("the default range is valid"));
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            unix_socket: default_unix_socket(),
            state: default_state_path(),
            ranges,
            test_range: Some(
                RangeSet::new(vec![DEFAULT_TEST_RANGE])
                    .unwrap_or_else(|_| unreachable!("the default test pool is valid")),
            ),
            quarantine: DEFAULT_QUARANTINE,
            watchdog_interval: DEFAULT_WATCHDOG_INTERVAL,
            events_keep: crate::watchdog::DEFAULT_EVENTS_KEEP,
            events_max_age: crate::watchdog::DEFAULT_EVENTS_MAX_AGE,
            limits: crate::listener::Limits::default(),
            watchers: crate::events::WatcherLimits::default(),
            quotas: crate::ports::Quotas::default(),
            accept_state_loss: false,
            log_format: LogFormat::Text,
            tls_client_ca: None,
            insecure_listen: false,
            netns_lock: crate::netns::default_name(),
            network: NetworkConfig::default(),
            portserver_socket: PortserverSocket::beside(crate::netns::default_name().as_deref()),
        }
    }

    /// Defaults, then the file (if any), then env/flags (clap already put flags over env).
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut cfg = Self::defaults();
        if let Some(v) = args.listen.as_ref().or(file.listen.as_ref()) {
            cfg.listen = v.parse().map_err(|_| ConfigError::Invalid {
                key: "listen",
                rule: format!("'{v}' is not an IP:port address (e.g. 127.0.0.1:7070)"),
            })?;
        }
        if let Some(v) = args.unix_socket.as_ref().or(file.unix_socket.as_ref()) {
            cfg.unix_socket = match v.as_str() {
                "none" | "" => None,
                _ if cfg!(not(unix)) => {
                    return Err(ConfigError::Invalid {
                        key: "unix_socket",
                        rule: "Unix sockets are not available on this platform: use 'none' (the daemon serves TCP)".into(),
                    })
                }
                path => Some(PathBuf::from(path)),
            };
        }
        if let Some(v) = args.state.as_ref().or(file.state.as_ref()) {
            cfg.state = v.clone();
        }
        if let Some(ranges) = range_values(&args.range, file.range) {
            cfg.ranges = parse_ranges(&ranges)
                .map_err(|rule| ConfigError::Invalid { key: "range", rule })?;
        }
        match range_values(&args.test_range, file.test_range) {
            Some(ranges) => {
                cfg.test_range = match ranges.as_slice() {
                    [none] if none == "none" => None,
                    _ => Some(parse_ranges(&ranges).map_err(|rule| ConfigError::Invalid {
                        key: "test_range",
                        rule,
                    })?),
                }
            }
            // The default pool gives way to service ranges inside it.
            None => cfg.test_range = cfg.test_range.as_ref().and_then(|t| t.without(&cfg.ranges)),
        }
        if let Some(test) = &cfg.test_range {
            crate::ports::Pools::new(cfg.ranges.clone(), Some(test.clone())).map_err(|rule| {
                ConfigError::Invalid {
                    key: "test_range",
                    rule: format!("{rule}; the two pools must not share ports"),
                }
            })?;
        }
        if let Some(v) = args.quarantine.as_ref().or(file.quarantine.as_ref()) {
            cfg.quarantine = parse_duration(v).map_err(|rule| ConfigError::Invalid {
                key: "quarantine",
                rule,
            })?;
        }
        if let Some(v) = args
            .watchdog_interval
            .as_ref()
            .or(file.watchdog_interval.as_ref())
        {
            cfg.watchdog_interval = positive(v).map_err(|rule| ConfigError::Invalid {
                key: "watchdog_interval",
                rule,
            })?;
        }
        if let Some(v) = args.events_keep.or(file.events_keep) {
            if v == 0 {
                return Err(ConfigError::Invalid {
                    key: "events_keep",
                    rule: "must be at least 1".into(),
                });
            }
            cfg.events_keep = v;
        }
        if let Some(v) = args
            .events_max_age
            .as_ref()
            .or(file.events_max_age.as_ref())
        {
            cfg.events_max_age = positive(v).map_err(|rule| ConfigError::Invalid {
                key: "events_max_age",
                rule,
            })?;
        }
        for (key, arg, from_file, slot) in [
            (
                "max_connections",
                args.max_connections,
                file.max_connections,
                &mut cfg.limits.max_connections,
            ),
            (
                "max_connections_per_peer",
                args.max_connections_per_peer,
                file.max_connections_per_peer,
                &mut cfg.limits.max_connections_per_peer,
            ),
        ] {
            if let Some(v) = arg.or(from_file) {
                if v == 0 {
                    return Err(ConfigError::Invalid {
                        key,
                        rule: "must be at least 1".into(),
                    });
                }
                *slot = v;
            }
        }
        for (arg, from_file, slot) in [
            (args.max_watchers, file.max_watchers, &mut cfg.watchers.max),
            (
                args.max_watchers_per_uid,
                file.max_watchers_per_uid,
                &mut cfg.watchers.per_uid,
            ),
            (
                args.reserved_watchers,
                file.reserved_watchers,
                &mut cfg.watchers.reserved,
            ),
        ] {
            if let Some(v) = arg.or(from_file) {
                *slot = v;
            }
        }
        cfg.watchers
            .check()
            .map_err(|(key, rule)| ConfigError::Invalid { key, rule })?;
        for (key, arg, from_file, slot) in [
            (
                "first_request_timeout",
                args.first_request_timeout.as_ref(),
                file.first_request_timeout.as_ref(),
                &mut cfg.limits.first_request_timeout,
            ),
            (
                "idle_timeout",
                args.idle_timeout.as_ref(),
                file.idle_timeout.as_ref(),
                &mut cfg.limits.idle_timeout,
            ),
        ] {
            if let Some(v) = arg.or(from_file) {
                *slot = positive(v).map_err(|rule| ConfigError::Invalid { key, rule })?;
            }
        }
        for (key, arg, from_file, slot) in [
            (
                "max_ports_per_uid",
                args.max_ports_per_uid.clone(),
                file.max_ports_per_uid,
                &mut cfg.quotas.per_uid,
            ),
            (
                "max_ports_per_service",
                args.max_ports_per_service.clone(),
                file.max_ports_per_service,
                &mut cfg.quotas.per_service,
            ),
        ] {
            let value = arg.or(from_file.map(|v| match v {
                ShareValue::Text(s) => s,
                ShareValue::Number(n) => n.to_string(),
            }));
            if let Some(v) = value {
                *slot = v
                    .parse()
                    .map_err(|rule| ConfigError::Invalid { key, rule })?;
            }
        }
        cfg.accept_state_loss = args.accept_state_loss;
        if let Some(v) = args.log_format.or(file.log_format) {
            cfg.log_format = v;
        }
        let portserver_socket = args
            .portserver_socket
            .as_ref()
            .or(file.portserver_socket.as_ref())
            .map(|v| PortserverSocket::parse(v))
            .transpose()
            .map_err(|rule| ConfigError::Invalid {
                key: "portserver_socket",
                rule,
            })?;
        let net = file.network.unwrap_or_default();
        let tls_cert = one_key("tls_cert", file.tls_cert, net.tls_cert)?;
        let tls_key = one_key("tls_key", file.tls_key, net.tls_key)?;
        cfg.network.tls_cert = args.tls_cert.clone().or(tls_cert);
        cfg.network.tls_key = args.tls_key.clone().or(tls_key);
        if cfg.network.tls_cert.is_some() != cfg.network.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls_cert",
                rule: "tls_cert and tls_key go together: set both or neither".into(),
            });
        }
        cfg.tls_client_ca = args.tls_client_ca.clone().or(file.tls_client_ca);
        if cfg.tls_client_ca.is_some() && cfg.network.tls_cert.is_none() {
            return Err(ConfigError::Invalid {
                key: "tls_client_ca",
                rule: "client certificates are checked only over TLS: set tls_cert and tls_key too"
                    .into(),
            });
        }
        cfg.insecure_listen = args.insecure_listen || file.insecure_listen.unwrap_or(false);
        crate::tls::check_exposure(
            cfg.listen,
            cfg.network.tls_cert.is_some(),
            cfg.insecure_listen,
        )
        .map_err(|rule| ConfigError::Invalid {
            key: "listen",
            rule,
        })?;
        if let Some(v) = &net.budget {
            cfg.network.budget = positive(v).map_err(|rule| ConfigError::Invalid {
                key: "network.budget",
                rule,
            })?;
        }
        if let Some(v) = &net.dns_timeout {
            cfg.network.dns_timeout = positive(v).map_err(|rule| ConfigError::Invalid {
                key: "network.dns_timeout",
                rule,
            })?;
        }
        if let Some(t) = net.thresholds {
            cfg.network.thresholds = t;
        }
        let blocking: Vec<String> = if !args.blocking_checks.is_empty() {
            args.blocking_checks.clone()
        } else {
            match file.blocking_checks {
                Some(OneOrMany::One(s)) => s.split(',').map(str::to_string).collect(),
                Some(OneOrMany::Many(v)) if v.is_empty() => vec!["none".into()],
                Some(OneOrMany::Many(v)) => v,
                None => Vec::new(),
            }
        };
        if !blocking.is_empty() {
            cfg.network.blocking =
                crate::network::BlockingChecks::parse(&blocking).map_err(|rule| {
                    ConfigError::Invalid {
                        key: "blocking_checks",
                        rule,
                    }
                })?;
        }
        if let Some(v) = args.netns_lock.as_ref().or(file.netns_lock.as_ref()) {
            cfg.netns_lock = match v.as_str() {
                "none" => None,
                name => {
                    crate::netns::valid_name(name).map_err(|rule| ConfigError::Invalid {
                        key: "netns_lock",
                        rule,
                    })?;
                    Some(name.to_string())
                }
            };
        }
        cfg.portserver_socket = match portserver_socket {
            Some(explicit) => explicit,
            None => PortserverSocket::beside(cfg.netns_lock.as_deref()),
        };
        if let (Some(PortserverSocket::Abstract(name)), Some(lock)) =
            (&cfg.portserver_socket, &cfg.netns_lock)
        {
            if lock.strip_prefix('@') == Some(name.as_str()) {
                return Err(ConfigError::Invalid {
                    key: "portserver_socket",
                    rule: format!(
                        "{lock} is the namespace claim (netns_lock), which answers no portserver \
                         request: give the portserver endpoint a name of its own, e.g. \
                         {lock}{PORTSERVER_SUFFIX}"
                    ),
                });
            }
        }
        Ok(cfg)
    }
}

/// The default test pool: as large as portpicker's own portserver pool.
const DEFAULT_TEST_RANGE: PortRange = PortRange {
    start: 15000,
    end: 24999,
};

/// A range key's values: the flags (or environment) over the file; None when neither sets it.
fn range_values(args: &[String], file: Option<OneOrMany>) -> Option<Vec<String>> {
    if !args.is_empty() {
        return Some(args.to_vec());
    }
    match file? {
        OneOrMany::One(s) => Some(s.split(',').map(str::to_string).collect()),
        OneOrMany::Many(v) => Some(v),
    }
    .filter(|v| !v.is_empty())
}

fn parse_ranges(ranges: &[String]) -> Result<RangeSet, String> {
    ranges
        .iter()
        .map(|r| r.parse::<PortRange>().map_err(|e| format!("'{r}': {e}")))
        .collect::<Result<Vec<_>, _>>()
        .and_then(RangeSet::new)
}

/// A key the file may hold at the top level or (older spelling) under `[network]`.
fn one_key(
    key: &'static str,
    top: Option<PathBuf>,
    network: Option<PathBuf>,
) -> Result<Option<PathBuf>, ConfigError> {
    match (top, network) {
        (Some(a), Some(b)) if a != b => Err(ConfigError::Invalid {
            key,
            rule: format!(
                "set at the top level ({}) and under [network] ({}): keep one",
                a.display(),
                b.display()
            ),
        }),
        (a, b) => Ok(a.or(b)),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.into(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.into(),
        reason: e.to_string(),
    })
}

#[cfg(unix)]
fn default_unix_socket() -> Option<PathBuf> {
    Some(portwarden_client::default_socket_path())
}

#[cfg(not(unix))]
fn default_unix_socket() -> Option<PathBuf> {
    None
}

/// `%LOCALAPPDATA%\portwarden\state.db` (the user's own application data, as XDG_STATE_HOME).
#[cfg(windows)]
fn default_state_path() -> PathBuf {
    std::env::var_os("LOCALAPPDATA")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("portwarden")
        .join("state.db")
}

#[cfg(unix)]
fn default_state_path() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/portwarden/state.db");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("portwarden/state.db")
}

fn positive(v: &str) -> Result<Duration, String> {
    parse_duration(v).and_then(|d| {
        if d.is_zero() {
            Err("must be greater than 0".to_string())
        } else {
            Ok(d)
        }
    })
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `7d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (use 500ms, 30s, 5m or 1h)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => {
            return Err(format!(
                "'{s}' has an unknown unit '{unit}' (use ms, s, m, h or d)"
            ))
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("'{s}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags_beat_the_file_and_bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "range = [\"9000-9010\"]\nquarantine = \"5s\"\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            listen: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let cfg = Config::resolve(&args).unwrap();
        assert_eq!(cfg.listen.port(), 2);
        assert_eq!(cfg.ranges.to_string(), "9000-9010");
        assert_eq!(cfg.quarantine, Duration::from_secs(5));

        let bad = ServeArgs {
            range: vec!["9010-9000".into()],
            ..Default::default()
        };
        let err = Config::resolve(&bad).unwrap_err().to_string();
        assert!(err.contains("'range'") && err.contains("greater"), "{err}");

        std::fs::write(&file, "ranges = \"1-2\"\n").unwrap();
        let err = Config::resolve(&ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `ranges`"), "{err}");
    }

    #[test]
    fn the_example_config_parses_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/portwarden.toml");
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let cfg = Config::resolve(&args).expect("deploy/portwarden.toml is valid");
        let d = Config::defaults();
        assert_eq!(cfg.listen, d.listen);
        assert_eq!(cfg.ranges, d.ranges);
        assert_eq!(cfg.quarantine, d.quarantine);
        assert_eq!(cfg.watchdog_interval, d.watchdog_interval);
        assert_eq!(cfg.events_keep, d.events_keep);
        assert_eq!(cfg.events_max_age, d.events_max_age);
        assert_eq!(cfg.limits, d.limits);
        assert_eq!(cfg.watchers, d.watchers);
        assert_eq!(cfg.quotas, d.quotas);
        assert_eq!(cfg.log_format, d.log_format);
        assert_eq!(cfg.netns_lock, d.netns_lock);
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/portwarden.toml"),
        )
        .unwrap();
        for key in [
            "blocking_checks =",
            "netns_lock =",
            "max_watchers =",
            "max_watchers_per_uid =",
            "reserved_watchers =",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(key)),
                "deploy/portwarden.toml states {key}"
            );
        }
        assert_eq!(
            cfg.network, d.network,
            "the [network] section states the defaults"
        );
    }

    #[test]
    fn portserver_socket_is_a_path_an_abstract_name_or_off() {
        let parse = |v: &str| {
            Config::resolve(&ServeArgs {
                portserver_socket: Some(v.into()),
                ..Default::default()
            })
            .map(|c| c.portserver_socket)
        };
        let on_linux = cfg!(target_os = "linux")
            .then(|| PortserverSocket::Abstract("portwarden-portserver".into()));
        assert_eq!(Config::defaults().portserver_socket, on_linux);
        assert_eq!(
            parse("@pw").unwrap(),
            Some(PortserverSocket::Abstract("pw".into()))
        );
        assert_eq!(
            parse("/run/ps.sock").unwrap(),
            Some(PortserverSocket::Path("/run/ps.sock".into()))
        );
        assert_eq!(parse("none").unwrap(), None);
        for bad in ["@", &format!("/{}", "a".repeat(120))] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("'portserver_socket'"), "{err}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_portserver_endpoint_sits_beside_the_namespace_claim_and_is_never_the_claim() {
        let resolve = |lock: Option<&str>, portserver: Option<&str>| {
            Config::resolve(&ServeArgs {
                netns_lock: lock.map(Into::into),
                portserver_socket: portserver.map(Into::into),
                ..Default::default()
            })
        };
        let abs = |n: &str| Some(PortserverSocket::Abstract(n.into()));
        let of = |c: Config| c.portserver_socket;
        assert_eq!(
            of(resolve(None, None).unwrap()),
            abs("portwarden-portserver")
        );
        assert_eq!(
            of(resolve(Some("@mine"), None).unwrap()),
            abs("mine-portserver")
        );
        assert_eq!(of(resolve(Some("none"), None).unwrap()), None);
        assert_eq!(of(resolve(Some("none"), Some("@ps")).unwrap()), abs("ps"));
        assert_eq!(of(resolve(None, Some("none")).unwrap()), None);
        for (lock, portserver) in [(None, "@portwarden"), (Some("@mine"), "@mine")] {
            let err = resolve(lock, Some(portserver)).unwrap_err().to_string();
            assert!(
                err.contains("'portserver_socket'") && err.contains("namespace claim"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_default_test_pool_gives_way_to_service_ranges_and_an_explicit_one_must_not_overlap() {
        let resolve = |range: &[&str], test: &[&str]| {
            Config::resolve(&ServeArgs {
                range: range.iter().map(|r| r.to_string()).collect(),
                test_range: test.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            })
        };
        let pool = |c: Config| c.test_range.map(|t| t.to_string());
        assert_eq!(
            pool(resolve(&[], &[]).unwrap()).as_deref(),
            Some("15000-24999")
        );
        assert_eq!(
            pool(resolve(&["20000-20100"], &[]).unwrap()).as_deref(),
            Some("15000-19999,20101-24999")
        );
        assert_eq!(pool(resolve(&[], &["none"]).unwrap()), None);
        assert_eq!(
            pool(resolve(&[], &["30000-30099"]).unwrap()).as_deref(),
            Some("30000-30099")
        );
        let err = resolve(&["20000-20100"], &["20100-20200"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'test_range'") && err.contains("must not share"),
            "{err}"
        );
    }

    #[test]
    fn the_tls_pair_reads_from_the_top_level_or_the_older_network_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let resolve = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::resolve(&ServeArgs {
                config: Some(file.clone()),
                ..Default::default()
            })
        };
        let top = resolve("tls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n").unwrap();
        let old = resolve("[network]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n").unwrap();
        assert_eq!(top.network.tls_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(top.network, old.network);
        let err = resolve(
            "tls_cert = \"/a.pem\"\ntls_key = \"/k.pem\"\n[network]\ntls_cert = \"/b.pem\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("'tls_cert'") && err.contains("keep one"),
            "{err}"
        );
        let err = resolve("tls_client_ca = \"/ca.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'tls_client_ca'"), "{err}");
        let err = resolve("listen = \"0.0.0.0:7070\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'listen'") && err.contains("--insecure-listen"),
            "{err}"
        );
        let open = resolve("listen = \"0.0.0.0:7070\"\ninsecure_listen = true\n").unwrap();
        assert!(open.insecure_listen);
    }

    #[test]
    fn blocking_checks_and_the_namespace_lock_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let resolve = |text: &str, args: ServeArgs| {
            std::fs::write(&file, text).unwrap();
            Config::resolve(&ServeArgs {
                config: Some(file.clone()),
                ..args
            })
        };
        let cfg = resolve(
            "blocking_checks = [\"port_exhaustion\"]\n",
            ServeArgs::default(),
        )
        .unwrap();
        assert!(cfg.network.blocking.contains("port_exhaustion"));
        assert!(!cfg.network.blocking.contains("firewall"));
        let none = resolve(
            "blocking_checks = []\nnetns_lock = \"none\"\n",
            ServeArgs::default(),
        )
        .unwrap();
        assert!(none.network.blocking.names().is_empty());
        assert_eq!(none.netns_lock, None);
        let flag = resolve(
            "blocking_checks = []\n",
            ServeArgs {
                blocking_checks: vec!["ipv4_available".into()],
                netns_lock: Some("@mine".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(flag.network.blocking.names(), ["ipv4_available"]);
        assert_eq!(flag.netns_lock.as_deref(), Some("@mine"));
        let err = resolve("blocking_checks = [\"ipv4\"]\n", ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'blocking_checks'") && err.contains("'ipv4'"),
            "{err}"
        );
        let err = resolve("netns_lock = \"portwarden\"\n", ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'netns_lock'") && err.contains("@"), "{err}");
    }

    #[test]
    fn an_unknown_threshold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[network.thresholds]\ntime_wait_per_port = 5\n").unwrap();
        let err = Config::resolve(&ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("time_wait_per_port"), "{err}");
    }

    mod properties {
        //! The config loader and the duration parser answer any input with a value or an error
        //! naming the key, never a panic.
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_duration_text_parses_or_is_refused(s in ".{0,40}") {
                let _ = parse_duration(&s);
            }

            #[test]
            fn any_config_file_loads_or_is_refused(text in ".{0,400}", key in "[a-z_]{1,24}", value in ".{0,40}") {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("c.toml");
                for body in [text.clone(), format!("{key} = {value:?}\n"), format!("[network]\n{key} = {value}\n")] {
                    std::fs::write(&file, &body).unwrap();
                    let _ = Config::resolve(&ServeArgs {
                        config: Some(file.clone()),
                        ..Default::default()
                    });
                }
            }

            #[test]
            fn any_flag_values_resolve_or_are_refused(
                listen in ".{0,30}",
                range in ".{0,30}",
                quarantine in ".{0,12}",
                per_uid in ".{0,8}",
            ) {
                let _ = Config::resolve(&ServeArgs {
                    listen: Some(listen),
                    range: vec![range],
                    quarantine: Some(quarantine),
                    max_ports_per_uid: Some(per_uid),
                    ..Default::default()
                });
            }
        }
    }
}
