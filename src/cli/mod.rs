//! The command line: `portwarden serve` runs the daemon; every other subcommand is a gRPC client
//! of it (found through --addr, PORTWARDEN_ADDR, the Unix sockets, then 127.0.0.1:7070).

/// `print!` for client output, but a reader that went away (`portwarden watch | head -1`) ends
/// the command quietly instead of panicking: the process keeps ignoring SIGPIPE (its sockets must
/// not kill it), so a closed stdout is an error handled in [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` as [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod args;
mod check;
#[cfg(unix)]
mod child;
mod commands;
mod connect;
mod decode;
mod env;
mod events;
pub mod exit;
#[cfg(unix)]
mod groups;
mod health;
mod prefixed;
mod procfile;
#[cfg(unix)]
mod program;
mod project;
mod projects;
mod render;
mod run;
mod status;
mod token;
mod units;
#[cfg(unix)]
mod up;
mod wait;
mod who;

use clap::parser::ValueSource;
use clap::{ArgMatches, Parser, Subcommand};

use crate::config::ServeArgs;

pub use args::*;
pub use check::run as run_check;
pub use commands::{run_client, CliError};
pub use env::{EnvArgs, EnvFormat};
pub use projects::{ForgetArgs, PortsArgs};
pub use render::check_report;
pub use run::{run, RunArgs};
#[cfg(unix)]
pub use up::{up, UpArgs};
pub use wait::WaitArgs;

const AFTER_HELP: &str = "\
Exit status:
  0   ok
  1   warning (check, status), or a refusal not listed below (the port is held or resting)
  2   critical (check, status, health; an allocation refused by a critical network finding;
      wait: the port answered HTTP, never with 2xx or 3xx)
  3   the daemon cannot be reached (nothing listens, permission denied, --wait ran out);
      wait: nothing accepted connections on the port in time
  4   not found (the port is not allocated, the project has no port of that name)
  5   exhausted (no free port in the managed ranges)
  6   denied (no or a wrong lease token, or another user's allocation)
  64  usage (a bad flag or value, or a request the daemon found invalid)

With --json, errors are printed on stdout as {\"code\", \"message\", \"details\"}: the gRPC
code, the message and the google.rpc details (docs/cli-json.md).";

#[derive(Debug, Parser)]
#[command(
    name = "portwarden",
    version,
    about = "Owns a range of TCP ports, hands them out safely and watches them",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How a client command reaches the daemon.
#[derive(Debug, Default, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct ClientArgs {
    /// Daemon address: unix:/PATH, http://HOST:PORT or https://HOST:PORT [default: your Unix
    /// socket, the system daemon's socket, then http://127.0.0.1:7070]
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Wait up to this long for a daemon that is starting (e.g. 5s) instead of failing at once
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<String>,
    /// CA certificate (PEM) that signed the daemon's certificate [default: the system's roots]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a daemon that requires one
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<std::path::PathBuf>,
    /// Key (PEM) of --client-cert
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<std::path::PathBuf>,
    /// Name the daemon's certificate must carry, when it is not the address's host
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

/// [`ClientArgs`] after a command, where they also read their environment variables.
#[derive(Debug, Default, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct CommandClientArgs {
    /// Daemon address: unix:/PATH, http://HOST:PORT or https://HOST:PORT [default: your Unix
    /// socket, the system daemon's socket, then http://127.0.0.1:7070]
    #[arg(long, env = "PORTWARDEN_ADDR", value_name = "ADDR")]
    pub addr: Option<String>,
    /// Wait up to this long for a daemon that is starting (e.g. 5s) instead of failing at once
    #[arg(long, env = "PORTWARDEN_WAIT", value_name = "DURATION")]
    pub wait: Option<String>,
    /// CA certificate (PEM) that signed the daemon's certificate [default: the system's roots]
    #[arg(long, env = "PORTWARDEN_CA", value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a daemon that requires one
    #[arg(long, env = "PORTWARDEN_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<std::path::PathBuf>,
    /// Key (PEM) of --client-cert
    #[arg(long, env = "PORTWARDEN_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<std::path::PathBuf>,
    /// Name the daemon's certificate must carry, when it is not the address's host
    #[arg(long, env = "PORTWARDEN_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

/// Writes client output; a closed stdout (the reader went away) ends the process with 0.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

impl ClientArgs {
    fn any(&self) -> bool {
        self.addr.is_some()
            || self.wait.is_some()
            || self.ca.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
            || self.tls_server_name.is_some()
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
    /// Who has these ports: free, allocated to a service, used outside portwarden, or blocked
    Who(WhoArgs),
    /// The operator's summary: the daemon, the ranges, one line per allocation, the watchdog and
    /// the network; exit 1 on a network warning, 2 when critical
    Status(StatusArgs),
    /// Run the network checks here, in this process (no daemon needed); exit 1 on a warning,
    /// 2 when critical
    Check(CheckArgs),
    /// Run a command on a port of its own, already listening (fd 3 and PORT)
    ///
    /// Allocates a port (owned by this process), binds and listens on it (hardened: address reuse,
    /// keepalive, no Nagle delay), and starts CMD with the listening socket as fd 3 by systemd's socket-activation
    /// protocol (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES) and PORT=<port> for programs that bind
    /// themselves. SIGINT, SIGTERM and SIGHUP are passed on to CMD; the port is released when it
    /// exits. Exit status: CMD's; 128+N when signal N killed it; 125 when portwarden failed; 126
    /// when CMD could not be run; 127 when it was not found.
    Run(RunArgs),
    /// Follow the daemon's events as they happen (until interrupted; survives daemon restarts)
    Watch(WatchArgs),
    /// Past events of a port or a service, newest first
    History(HistoryArgs),
    /// Ask the daemon's health service: exit 0 when it is SERVING, 2 when it answers otherwise,
    /// 3 when it cannot be reached (for probes)
    Health(HealthArgs),
    /// The ports a project remembers, and what holds each now
    Ports(PortsArgs),
    /// Release a project's ports and forget them
    Forget(ForgetArgs),
    /// The project's ports as PORT_<NAME> variables: eval "$(portwarden env web api)"
    ///
    /// Each NAME gets the project's port for it (allocated the first time, the same one on every
    /// run after, kept until `portwarden forget`). Names are upper-cased, characters outside
    /// [A-Z0-9] become '_'; two names that give the same variable are an error.
    Env(EnvArgs),
    /// Run the processes of a Procfile, each on a project port of its own
    ///
    /// Reads portwarden.toml's [processes] table, else a Procfile (`name: command` lines), and
    /// starts each command with `sh -c`, PORT set to its own port and PORT_<NAME> to every
    /// process's, plus the variables of .env (--env-file). A process marked `listen_fds = true`
    /// in portwarden.toml gets its socket already listening as fd 3 (LISTEN_FDS=1), as `run`
    /// passes it; Procfile lines bind PORT themselves. Output lines are prefixed with the
    /// process name. Nothing is restarted: when one process exits, or on Ctrl-C, the others get
    /// SIGTERM (their whole process group), SIGKILL after --grace, and the ports are released
    /// (kept for the project's next run). Exit status: that process's code (128+N for signal N),
    /// 0 when stopped by Ctrl-C or SIGTERM.
    #[cfg(unix)]
    Up(UpArgs),
    /// Wait until something accepts connections on a port (127.0.0.1 or ::1), or answers HTTP
    ///
    /// PORT is a number, or NAME one of the project's ports. With --http PATH, ready means a GET
    /// of PATH answered 2xx or 3xx. Prints who listens. Exit status: 0 ready, 2 the port answered
    /// HTTP but not 2xx/3xx, 3 nothing accepted within --timeout, 4 no such name.
    Wait(WaitArgs),
}

impl Command {
    /// The client options given after the command, if it is a client command.
    fn client_args_mut(&mut self) -> Option<&mut CommandClientArgs> {
        Some(match self {
            Command::Serve(_) | Command::Check(_) => return None,
            Command::Allocate(a) => &mut a.conn,
            Command::Release(a) => &mut a.conn,
            Command::Renew(a) => &mut a.conn,
            Command::Get(a) => &mut a.conn,
            Command::List(a) => &mut a.conn,
            Command::Who(a) => &mut a.conn,
            Command::Status(a) => &mut a.conn,
            Command::Watch(a) => &mut a.conn,
            Command::History(a) => &mut a.conn,
            Command::Health(a) => &mut a.conn,
            Command::Run(a) => &mut a.conn,
            Command::Ports(a) => &mut a.conn,
            Command::Forget(a) => &mut a.conn,
            Command::Env(a) => &mut a.conn,
            #[cfg(unix)]
            Command::Up(a) => &mut a.conn,
            Command::Wait(a) => &mut a.conn,
        })
    }

    /// Whether the command prints JSON (its errors then are JSON too).
    pub fn json(&self) -> bool {
        match self {
            Command::Serve(_) => false,
            Command::Allocate(a) => a.json,
            Command::Release(a) => a.json,
            Command::Renew(a) => a.json,
            Command::Get(a) => a.json,
            Command::List(a) => a.json,
            Command::Who(a) => a.json,
            Command::Status(a) => a.json,
            Command::Check(a) => a.json,
            Command::Watch(a) => a.json,
            Command::History(a) => a.json,
            Command::Health(a) => a.json,
            Command::Run(_) => false,
            Command::Ports(a) => a.json,
            Command::Forget(a) => a.json,
            Command::Env(a) => a.format == EnvFormat::Json,
            #[cfg(unix)]
            Command::Up(_) => false,
            Command::Wait(a) => a.json,
        }
    }
}

impl Cli {
    /// Parses the command line; the connection options of the command win over the ones given
    /// before it, and a flag given on the command line wins over an environment variable.
    pub fn parse_args() -> Result<Self, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().try_get_matches()?;
        let mut cli = Self::from_arg_matches(&matches)?;
        cli.merge_client_args(&matches)?;
        token::warn_if_on_command_line(matches.subcommand().map(|(_, m)| m));
        Ok(cli)
    }

    fn merge_client_args(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        let top = self.client.clone();
        let sub = matches.subcommand().map(|(_, m)| m);
        let Some(after) = self.command.client_args_mut() else {
            if top.any() {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--addr, --wait and the TLS options are for client commands, not this one\n",
                ));
            }
            return Ok(());
        };
        let typed =
            |id: &str| sub.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine);
        macro_rules! merge {
            ($field:ident) => {
                if !typed(stringify!($field)) && top.$field.is_some() {
                    after.$field = top.$field.clone();
                }
            };
        }
        merge!(addr);
        merge!(wait);
        merge!(ca);
        merge!(client_cert);
        merge!(client_key);
        merge!(tls_server_name);
        Ok(())
    }
}

impl CommandClientArgs {
    pub fn tls(&self) -> portwarden_client::TlsOptions {
        portwarden_client::TlsOptions {
            ca: self.ca.clone(),
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
            server_name: self.tls_server_name.clone(),
        }
    }
}
