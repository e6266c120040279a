//! The arguments of each client command (and `check`), with their help texts.

use super::CommandClientArgs;

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
    #[command(flatten)]
    pub conn: CommandClientArgs,
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
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// A gRPC service name (e.g. portwarden.v1.PortsService) [default: the whole daemon]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub service: String,
    /// Give up (exit 3) after this long, connecting included
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    pub timeout: String,
    /// Print {"status": "SERVING"} instead of the bare status
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also run the per-port checks (firewall probe, TIME_WAIT on the port) and name the
    /// process that listens on it
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
    /// Exactly this port (inside the managed range); refused when it is taken
    #[arg(long, conflicts_with = "prefer")]
    pub port: Option<u32>,
    /// This port when it is free, else any free port (a port outside the managed range is never
    /// free: you get another, and a warning on stderr says so)
    #[arg(long, value_name = "PORT")]
    pub prefer: Option<u32>,
    /// Lease length with a unit (30s, 5m, 1h); the port is reclaimed unless renewed in time
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Owning process (e.g. $$): the port is reclaimed when it exits
    #[arg(long)]
    pub pid: Option<i32>,
    /// Give back your existing allocation of this service (same user, same --pid) instead of a
    /// new port; needs the Unix socket, where the daemon knows who you are
    #[arg(long)]
    pub reuse: bool,
    /// key=value label, repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Where the port comes from: service (the managed ranges) or test (the test pool, for
    /// test suites)
    #[arg(long, value_enum, default_value_t = PoolArg::Service)]
    pub pool: PoolArg,
    /// A project port: SERVICE names the port in the project of DIR (its git worktree, else DIR
    /// itself; DIR defaults to the current directory), and the project gets the same port back
    /// on every run while nothing else holds it; kept until `portwarden forget --project`
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub project: Option<std::path::PathBuf>,
    /// Print only the port number (for PORT=$(portwarden allocate web --reuse --quiet))
    #[arg(long, short)]
    pub quiet: bool,
    /// Print JSON (with the lease token)
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The allocated port
    pub port: u32,
    #[command(flatten)]
    pub token: super::token::TokenArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// The allocated port
    pub port: u32,
    #[command(flatten)]
    pub token: super::token::TokenArgs,
    /// New lease length with a unit (30s, 5m, 1h)
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Let --ttl turn an allocation without a TTL into a lease that is reclaimed unless renewed
    #[arg(long, requires = "ttl")]
    pub convert_to_lease: bool,
    /// Requests served since the last renew
    #[arg(long, default_value_t = 0)]
    pub requests: u64,
    /// Errors since the last renew
    #[arg(long, default_value_t = 0)]
    pub errors: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The allocated port
    pub port: u32,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this service
    #[arg(long)]
    pub service: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct WhoArgs {
    /// Ports to look at (any port, in the managed ranges or not)
    #[arg(required = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The full report: one block per allocation, every network check
    #[arg(long, short)]
    pub verbose: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: CommandClientArgs,
}

/// `--pool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoolArg {
    Service,
    Test,
}
