//! The command line: `portwarden serve` runs the daemon; every other subcommand is a gRPC client
//! of it (found through --addr, PORTWARDEN_ADDR, the Unix socket, then 127.0.0.1:7070).

mod commands;
mod events;
mod health;
mod render;
mod run;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

pub use commands::run_client;
pub use render::check_report;
pub use run::{run, RunArgs};

#[derive(Debug, Parser)]
#[command(
    name = "portwarden",
    version,
    about = "Owns a range of TCP ports, hands them out safely and watches them"
)]
pub struct Cli {
    /// Daemon address for client commands: http://HOST:PORT, https://HOST:PORT or unix:/PATH
    #[arg(long, global = true, env = "PORTWARDEN_ADDR", value_name = "ADDR")]
    pub addr: Option<String>,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// TLS for client commands on an https:// address.
#[derive(Debug, Default, clap::Args)]
pub struct ClientTlsArgs {
    /// CA certificate (PEM) that signed the daemon's certificate [default: the system's roots]
    #[arg(long, global = true, env = "PORTWARDEN_CA", value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a daemon that requires one
    #[arg(
        long,
        global = true,
        env = "PORTWARDEN_CLIENT_CERT",
        value_name = "FILE"
    )]
    pub client_cert: Option<std::path::PathBuf>,
    /// Key (PEM) of --client-cert
    #[arg(
        long,
        global = true,
        env = "PORTWARDEN_CLIENT_KEY",
        value_name = "FILE"
    )]
    pub client_key: Option<std::path::PathBuf>,
    /// Name the daemon's certificate must carry, when it is not the address's host
    #[arg(
        long,
        global = true,
        env = "PORTWARDEN_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    pub tls_server_name: Option<String>,
}

impl ClientTlsArgs {
    pub fn options(&self) -> portwarden_client::TlsOptions {
        portwarden_client::TlsOptions {
            ca: self.ca.clone(),
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
            server_name: self.tls_server_name.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon
    Serve(Box<ServeArgs>),
    /// Allocate a port for a service and print it
    Allocate(AllocateArgs),
    /// Release an allocated port
    Release(ReleaseArgs),
    /// Renew a TTL lease (and optionally bump counters)
    Renew(RenewArgs),
    /// Show one allocation
    Get(GetArgs),
    /// List allocations
    List(ListArgs),
    /// The operator's report: ranges, allocations, watchdog and network
    Status(StatusArgs),
    /// Run the network checks here, in this process (no daemon needed); exit 1 when critical
    Check(CheckArgs),
    /// Run a command on a port of its own, already listening (fd 3 and PORT)
    ///
    /// Allocates a port (owned by this process), binds and listens on it with the seed's socket
    /// hardening, and starts CMD with the listening socket as fd 3 by systemd's socket-activation
    /// protocol (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES) and PORT=<port> for programs that bind
    /// themselves. SIGINT, SIGTERM and SIGHUP are passed on to CMD; the port is released when it
    /// exits. Exit status: CMD's; 128+N when signal N killed it; 125 when portwarden failed; 126
    /// when CMD could not be run; 127 when it was not found.
    Run(RunArgs),
    /// Follow the daemon's events as they happen (until interrupted; survives daemon restarts)
    Watch(WatchArgs),
    /// Past events of a port or a service, newest first
    History(HistoryArgs),
    /// Ask the daemon's health service: exit 0 when it is SERVING, 1 otherwise (for probes)
    Health(HealthArgs),
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Only events of this service
    #[arg(long)]
    pub service: Option<String>,
    /// Only events of this port
    #[arg(long)]
    pub port: Option<u32>,
    /// Only events of this kind (allocated, released, renewed, reclaimed, health_changed,
    /// squatter_seen, squatter_gone, outside_listener_seen, outside_listener_gone,
    /// connections_leaking, network_status_changed, pass_completed); repeatable
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Start with every logged event after this sequence number (0: the oldest kept)
    #[arg(long, value_name = "SEQ", conflicts_with = "snapshot")]
    pub since: Option<u64>,
    /// Start with the current allocations, then follow what changes
    #[arg(long)]
    pub snapshot: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The port whose events to show
    pub port: Option<u32>,
    /// The service whose events to show
    #[arg(long)]
    pub service: Option<String>,
    /// Only events of this kind; repeatable
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Show at most this many events
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// A gRPC service name (e.g. portwarden.v1.PortsService) [default: the whole daemon]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub service: String,
    /// Give up (exit 1) after this long, connecting included
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    pub timeout: String,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also run the per-port checks (firewall probe, TIME_WAIT on the port)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Print the report as JSON (the shape of GET /api/ports/network/health)
    #[arg(long)]
    pub json: bool,
    /// PEM certificate chain for the ssl_readiness check
    #[arg(long, env = "PORTWARDEN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for the ssl_readiness check
    #[arg(long, env = "PORTWARDEN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct AllocateArgs {
    /// Service name, [A-Za-z0-9._-]{1,64}
    pub service: String,
    /// Why the service needs the port
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// Who starts the service [default: $USER]
    #[arg(long)]
    pub started_by: Option<String>,
    /// A specific port inside the managed range
    #[arg(long)]
    pub port: Option<u32>,
    /// Lease length (30s, 5m, 1h); the lease must be renewed before it runs out
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Owning process: the port is reclaimed when it exits
    #[arg(long)]
    pub pid: Option<i32>,
    /// key=value label, repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print only the port number (for PORT=$(portwarden allocate web --quiet))
    #[arg(long, short)]
    pub quiet: bool,
    /// Print JSON
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    pub port: u32,
    /// Lease token from allocate (not needed for your own allocations over the Unix socket)
    #[arg(long, env = "PORTWARDEN_LEASE_TOKEN")]
    pub token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    pub port: u32,
    #[arg(long, env = "PORTWARDEN_LEASE_TOKEN")]
    pub token: Option<String>,
    /// New lease length (30s, 5m, 1h)
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Requests served since the last renew
    #[arg(long, default_value_t = 0)]
    pub requests: u64,
    /// Errors since the last renew
    #[arg(long, default_value_t = 0)]
    pub errors: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    pub port: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this service
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}
