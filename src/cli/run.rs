//! `portwarden run -- CMD ARGS...`: allocates a port, binds and listens on it here (hardened), and
//! starts CMD with the listening socket as fd 3 by systemd's socket-activation protocol
//! (`LISTEN_FDS=1`, `LISTEN_PID`, `LISTEN_FDNAMES`) plus `PORT` for programs that bind
//! themselves. The socket exists before CMD does, so no other process can take the port in
//! between. The port is owned by this supervisor's PID (and a TTL lease with `--ttl`, renewed
//! while CMD runs): released when CMD ends, reclaimed by the daemon if the supervisor is killed.
//! SIGINT, SIGTERM and SIGHUP are passed on to CMD; the exit status is CMD's (128+N when a signal
//! N killed it), or 125/126/127 when portwarden or the exec failed, as `env` and `timeout` do.
//!
//! Unix only: a Windows process inherits no listening socket by number, so there `run` says so
//! and exits 125.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
#[cfg(unix)]
use std::os::fd::AsRawFd;
#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::Code;

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{AllocateRequest, ReleaseRequest, RenewRequest};
use portwarden_client::{bind_hardened, bind_hardened_on, Hardening};

#[cfg(unix)]
use super::child::{ChildEnv, Signals};
use super::commands::CliError;
use crate::config::parse_duration;
use crate::ports::{MAX_SERVICE_LEN, MAX_TEXT_BYTES};

/// Ports tried when outside processes keep winning the race to bind them.
const MAX_BIND_ATTEMPTS: usize = 5;
/// Exit statuses of the supervisor's own failures, as `env(1)` and `timeout(1)` use them.
const EXIT_FAILED: u8 = 125;
const EXIT_CANNOT_EXEC: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;
/// Variables the child gets from us; inherited ones with these names are dropped.
const OWN_VARS: [&str; 4] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "PORT"];

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Service name [default: the command's file name, characters outside [A-Za-z0-9._-] as '_']
    #[arg(long)]
    pub service: Option<String>,
    /// Why the service needs the port
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// Who starts the service [default: the command line]
    #[arg(long)]
    pub started_by: Option<String>,
    /// A specific port inside the managed range
    #[arg(long)]
    pub port: Option<u32>,
    /// Also hold the port as a lease of this length (30s, 5m), renewed while the command runs
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Listen on this address only [default: every address, IPv6 and IPv4]
    #[arg(long, value_name = "IP")]
    pub bind: Option<IpAddr>,
    /// Print nothing of our own (errors aside)
    #[arg(long, short)]
    pub quiet: bool,
    /// The command to start, and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
    #[command(flatten)]
    pub conn: super::CommandClientArgs,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Cli(#[from] CliError),
    #[error("port {port} was taken by another process before it could be bound: {source}")]
    Raced { port: u16, source: io::Error },
    #[error("cannot listen on port {port}: {source}")]
    Bind { port: u16, source: io::Error },
    #[error(
        "outside processes took {MAX_BIND_ATTEMPTS} ports in a row before they could be bound"
    )]
    KeptLosing,
    #[cfg(unix)]
    #[error(transparent)]
    Program(#[from] super::program::ProgramError),
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("cannot watch signals: {0}")]
    Signals(io::Error),
}

impl RunError {
    fn exit_code(&self) -> u8 {
        match self {
            #[cfg(unix)]
            RunError::Program(e) => e.exit_code(),
            RunError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                EXIT_NOT_FOUND
            }
            RunError::Spawn { .. } => EXIT_CANNOT_EXEC,
            _ => EXIT_FAILED,
        }
    }
}

/// One allocation held by this supervisor.
#[derive(Debug, Clone)]
struct Lease {
    port: u16,
    token: String,
    warnings: Vec<String>,
}

/// Where ports come from and go back to (the daemon; a fixed list in tests).
trait PortSource {
    async fn take(&mut self) -> Result<Lease, RunError>;
    async fn give_back(&mut self, lease: &Lease);
}

struct Daemon {
    ports: PortsServiceClient<Channel>,
    request: AllocateRequest,
}

impl PortSource for Daemon {
    async fn take(&mut self) -> Result<Lease, RunError> {
        let reply = self
            .ports
            .allocate(self.request.clone())
            .await
            .map_err(CliError::from)?
            .into_inner();
        let port = reply.allocation.map(|a| a.port).unwrap_or_default();
        Ok(Lease {
            port: u16::try_from(port).unwrap_or_default(),
            token: reply.lease_token,
            warnings: reply.warnings,
        })
    }

    async fn give_back(&mut self, lease: &Lease) {
        let released = self
            .ports
            .release(ReleaseRequest {
                port: lease.port.into(),
                lease_token: lease.token.clone(),
            })
            .await;
        match released {
            Ok(_) => {}
            // Already reclaimed (an expired lease): nothing left to give back.
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => eprintln!(
                "portwarden run: could not release port {}: {}",
                lease.port,
                s.message()
            ),
        }
    }
}

/// Takes ports until one can be bound here. A port an outside process bound between the
/// daemon's free check and this bind goes back and another is taken: the command never gets a
/// port it cannot use. A port asked for by number is not replaced.
async fn bind_first(
    source: &mut impl PortSource,
    bind: impl Fn(u16) -> io::Result<(TcpListener, Hardening)>,
    fixed_port: bool,
) -> Result<(Lease, TcpListener, Hardening), RunError> {
    for _ in 0..MAX_BIND_ATTEMPTS {
        let lease = source.take().await?;
        match bind(lease.port) {
            Ok((listener, hardening)) => return Ok((lease, listener, hardening)),
            Err(e) => {
                source.give_back(&lease).await;
                if e.kind() != io::ErrorKind::AddrInUse {
                    return Err(RunError::Bind {
                        port: lease.port,
                        source: e,
                    });
                }
                if fixed_port {
                    return Err(RunError::Raced {
                        port: lease.port,
                        source: e,
                    });
                }
                eprintln!(
                    "portwarden run: port {} was taken by another process before it could be bound; taking another",
                    lease.port
                );
            }
        }
    }
    Err(RunError::KeptLosing)
}

/// The command's file name as a service name.
fn default_service(program: &OsStr) -> String {
    let base = std::path::Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy();
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_SERVICE_LEN)
        .collect();
    if name.is_empty() {
        "run".into()
    } else {
        name
    }
}

/// The command line as `started_by`: control and formatting characters (which the free-text
/// rule refuses) become spaces.
fn command_line(command: &[OsString]) -> String {
    let line = command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    crate::text::single_line(&line, MAX_TEXT_BYTES)
}

/// Runs the command under a port; the exit code is the command's.
#[cfg(unix)]
pub async fn run(args: RunArgs) -> ExitCode {
    match supervise(args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("portwarden run: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Windows has no descriptor a command inherits by number: say so, as a failure of our own.
#[cfg(not(unix))]
pub async fn run(_args: RunArgs) -> ExitCode {
    eprintln!(
        "portwarden run: not available on Windows: it hands the listening socket to the command \
         as descriptor 3, which Windows programs do not inherit. Take a port with \
         `portwarden allocate SERVICE --quiet` and pass it to the command instead."
    );
    ExitCode::from(EXIT_FAILED)
}

#[cfg(unix)]
async fn supervise(args: RunArgs) -> Result<u8, RunError> {
    // Watched from the start: a signal before the command exists must not kill the supervisor
    // with its lease unreleased; it is passed on once the command runs.
    let mut signals = Signals::new().map_err(RunError::Signals)?;
    let ttl_seconds = args
        .ttl
        .as_deref()
        .map(|t| {
            parse_duration(t)
                .map(|d| d.as_secs().max(1))
                .map_err(|rule| CliError::Usage {
                    field: "--ttl",
                    rule,
                })
        })
        .transpose()?;
    let program = args.command[0].clone();
    // Before anything is allocated: a command that cannot start takes no port.
    let executable = super::program::resolve(&program)?;
    let service = args.service.unwrap_or_else(|| default_service(&program));
    let (_, channel) = super::connect::connect(&args.conn).await?;
    let mut daemon = Daemon {
        ports: PortsServiceClient::new(channel),
        request: AllocateRequest {
            service: service.clone(),
            purpose: args.purpose,
            started_by: args
                .started_by
                .unwrap_or_else(|| command_line(&args.command)),
            // Owned by this supervisor: if it is killed, the daemon reclaims the port.
            pid: Some(std::process::id() as i32),
            port: args.port,
            ttl_seconds,
            ..Default::default()
        },
    };
    let bind = |port| match args.bind {
        Some(ip) => bind_hardened_on(SocketAddr::new(ip, port)),
        None => bind_hardened(port),
    };
    let (lease, listener, hardening) = bind_first(&mut daemon, bind, args.port.is_some()).await?;
    if !args.quiet {
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        eprintln!(
            "portwarden run: {service} on port {} (listening on {local}, passed as fd 3, PORT={})",
            lease.port, lease.port
        );
        for w in &lease.warnings {
            eprintln!("portwarden run: ⚠️  {w}");
        }
        if !hardening.complete() {
            eprintln!("portwarden run: socket hardening incomplete:\n{hardening}");
        }
    }
    let launch = Launch {
        file: &executable,
        argv: &args.command,
        service: &service,
    };
    let result = run_child(
        &launch,
        &lease,
        &listener,
        &mut signals,
        &mut daemon,
        ttl_seconds,
    )
    .await;
    drop(listener);
    daemon.give_back(&lease).await;
    result
}

#[cfg(unix)]
/// What `run` starts: the file the command names, its command line as typed (argv), and the
/// service the listening socket is named after.
struct Launch<'a> {
    file: &'a std::path::Path,
    argv: &'a [OsString],
    service: &'a str,
}

#[cfg(unix)]
async fn run_child(
    launch: &Launch<'_>,
    lease: &Lease,
    listener: &TcpListener,
    signals: &mut Signals,
    daemon: &mut Daemon,
    ttl_seconds: Option<u64>,
) -> Result<u8, RunError> {
    let command = launch.argv;
    let vars = std::env::vars_os()
        .filter(|(k, _)| !OWN_VARS.iter().any(|own| *k == **own))
        .chain([("PORT".into(), lease.port.to_string().into())]);
    let env = ChildEnv::new(vars, Some(launch.service));
    let listen_fd = listener.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    // The file found before allocating, with argv[0] as typed.
    let mut cmd = tokio::process::Command::new(launch.file);
    cmd.arg0(&command[0]).args(&command[1..]);
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe calls (see ChildEnv::install_in_child).
    unsafe {
        cmd.pre_exec(move || env.install_in_child(Some(listen_fd), parent, false));
    }
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: command[0].to_string_lossy().into_owned(),
        source,
    })?;
    let pid = child.id().map(|p| p as libc::pid_t);
    let mut renew = ttl_seconds.map(|ttl| {
        let mut t = tokio::time::interval(Duration::from_millis(ttl * 1000 / 3));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t.reset(); // the first tick would fire at once
        t
    });
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|source| RunError::Spawn {
                    program: command[0].to_string_lossy().into_owned(),
                    source,
                })?;
                return Ok(match (status.code(), status.signal()) {
                    (Some(code), _) => code as u8,
                    (None, Some(sig)) => 128u8.saturating_add(sig as u8),
                    (None, None) => EXIT_FAILED,
                });
            }
            sig = signals.next() => {
                if let Some(pid) = pid {
                    // SAFETY: kill has no memory-safety preconditions; pid is our child.
                    unsafe { libc::kill(pid, sig) };
                }
            }
            () = tick(&mut renew) => {
                let renewed = daemon.ports.renew(RenewRequest {
                    port: lease.port.into(),
                    lease_token: lease.token.clone(),
                    ..Default::default()
                }).await;
                if let Err(s) = renewed {
                    eprintln!("portwarden run: could not renew the lease of port {}: {}", lease.port, s.message());
                    if matches!(s.code(), Code::NotFound | Code::PermissionDenied) {
                        renew = None;
                    }
                }
            }
        }
    }
}

#[cfg(unix)]
/// The next tick, or never without a lease to renew.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn started_by_is_the_command_line_without_control_characters() {
        let cmd = [
            OsString::from("sh"),
            OsString::from("-c"),
            OsString::from("echo a\nb\u{202e}"),
        ];
        assert_eq!(command_line(&cmd), "sh -c echo a b ");
    }

    #[test]
    fn the_default_service_is_the_command_file_name() {
        assert_eq!(default_service(OsStr::new("/usr/bin/python3")), "python3");
        assert_eq!(default_service(OsStr::new("./my app")), "my_app");
        assert_eq!(default_service(OsStr::new("")), "run");
    }

    /// Hands out the given ports; records what comes back.
    struct Fixed {
        ports: Vec<u16>,
        returned: Vec<u16>,
    }

    impl PortSource for Fixed {
        async fn take(&mut self) -> Result<Lease, RunError> {
            Ok(Lease {
                port: self.ports.remove(0),
                token: String::new(),
                warnings: vec![],
            })
        }
        async fn give_back(&mut self, lease: &Lease) {
            self.returned.push(lease.port);
        }
    }

    #[tokio::test]
    async fn a_port_taken_before_the_bind_goes_back_and_the_next_one_is_bound() {
        let (outsider, _) = bind_hardened(0).unwrap();
        let taken = outsider.local_addr().unwrap().port();
        let free = {
            let (l, _) = bind_hardened(0).unwrap();
            l.local_addr().unwrap().port()
        };
        let mut source = Fixed {
            ports: vec![taken, free],
            returned: vec![],
        };
        let (lease, listener, _) = bind_first(&mut source, bind_hardened, false).await.unwrap();
        assert_eq!(lease.port, free);
        assert_eq!(listener.local_addr().unwrap().port(), free);
        assert_eq!(source.returned, vec![taken]);

        let mut fixed = Fixed {
            ports: vec![taken],
            returned: vec![],
        };
        let err = bind_first(&mut fixed, bind_hardened, true)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RunError::Raced { port, .. } if port == taken),
            "{err}"
        );
        assert_eq!(fixed.returned, vec![taken]);
    }
}
