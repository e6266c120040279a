//! `portwarden up`: runs the processes of a Procfile (or of portwarden.toml's `[processes]`), each
//! on a project port of its own, as foreman and honcho do, with ports that stay the same from one
//! run to the next and differ between worktrees.
//!
//! Each process gets `PORT` (its own) and `PORT_<NAME>` of every process, plus the `.env` file's
//! variables; one marked `listen_fds` gets its socket already listening, as `portwarden run`
//! passes it. Its output is prefixed with its name (coloured on a terminal, unless NO_COLOR).
//! Nothing is restarted: when one process exits, or on Ctrl-C (SIGINT, SIGTERM, SIGHUP), every
//! other one is sent SIGTERM (its whole process group), SIGKILL after the grace period (or at a
//! second Ctrl-C), and the ports are released. The ports are owned by this supervisor, so the
//! daemon reclaims them if it is killed; the project's records keep them for the next run.
//! Exit status: the code of the process whose exit stopped the others (128+N for signal N), 0
//! when stopped by a signal, the CLI's codes when it could not start.
#![cfg(unix)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::ReleaseRequest;

use super::child::{ChildEnv, Signals};
use super::commands::CliError;
use super::groups::{describe, stop_all, Running};
use super::prefixed::{print_lines, use_colour, Printer};
use super::procfile::{self, Process};
use super::project::{env_var, env_vars, Granted, PortRequest, ProjectArg};
use super::units::parse_duration;
use super::wait::{seconds, until_ready};

/// Exit status of our own failures (not the CLI's), as `portwarden run` uses it.
const EXIT_FAILED: u8 = 125;
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Start only these processes (web,api); the others' PORT_<NAME> are still set when the
    /// project remembers their ports
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub only: Vec<String>,
    /// The Procfile, or a portwarden.toml, to run [default: portwarden.toml's [processes],
    /// else Procfile, in the current directory, else at the project's root]
    #[arg(long, short = 'f', value_name = "FILE")]
    pub procfile: Option<PathBuf>,
    /// Variables for every process, KEY=VALUE lines [default: .env beside the Procfile, when
    /// there is one]
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    #[command(flatten)]
    pub project: ProjectArg,
    /// How long the processes have after SIGTERM before they are killed
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub grace: String,
    /// How long to wait for each process to accept connections before saying it has not
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub ready_timeout: String,
    #[command(flatten)]
    pub conn: super::CommandClientArgs,
}

#[derive(Debug, thiserror::Error)]
enum UpError {
    #[error(transparent)]
    Cli(#[from] CliError),
    #[error("{name}: cannot listen on port {port}: {source}")]
    Bind {
        name: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("{name}: cannot start `sh -c {command}`: {source}")]
    Spawn {
        name: String,
        command: String,
        source: std::io::Error,
    },
    #[error("cannot watch signals: {0}")]
    Signals(std::io::Error),
}

/// Why the processes are being stopped.
enum Stop {
    Exited(usize, ExitStatus),
    Signal(libc::c_int),
}

fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.saturating_add(sig as u8),
        _ => EXIT_FAILED,
    }
}

pub async fn up(args: UpArgs) -> ExitCode {
    match supervise(args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match &e {
                UpError::Cli(c) => {
                    eprintln!(
                        "portwarden up: {}",
                        c.to_text().trim_start_matches("error: ")
                    );
                    c.exit_code()
                }
                other => {
                    eprintln!("portwarden up: {other}");
                    EXIT_FAILED
                }
            };
            ExitCode::from(code)
        }
    }
}

fn usage(field: &'static str, rule: String) -> UpError {
    UpError::Cli(CliError::Usage { field, rule })
}

async fn supervise(args: UpArgs) -> Result<u8, UpError> {
    // Watched from the start: Ctrl-C while starting stops what was started and releases.
    let mut signals = Signals::new().map_err(UpError::Signals)?;
    let grace = parse_duration("--grace", &args.grace)?;
    let ready_timeout = parse_duration("--ready-timeout", &args.ready_timeout)?;
    let here = std::env::current_dir().unwrap_or_default();
    let cwd_project = args.project.resolve()?;
    let found = procfile::load(args.procfile.as_deref(), &[&here, Path::new(&cwd_project)])?;
    let dir = found
        .file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| here.clone(), Path::to_path_buf);
    let project = match (&args.project.project, &args.procfile) {
        (None, Some(_)) => super::project::resolve(&dir)?,
        _ => cwd_project,
    };
    for name in &args.only {
        if !found.list.iter().any(|p| &p.name == name) {
            return Err(usage(
                "--only",
                format!("{} has no process '{name}'", found.file.display()),
            ));
        }
    }
    let started: Vec<Process> = found
        .list
        .iter()
        .filter(|p| args.only.is_empty() || args.only.contains(&p.name))
        .cloned()
        .collect();
    env_vars(found.list.iter().map(|p| p.name.as_str()))?;
    let env_file = env_file_vars(args.env_file.as_deref(), &dir)?;

    let (_, channel) = super::connect::connect(&args.conn).await?;
    let mut client = PortsServiceClient::new(channel);
    let printer = Arc::new(Printer {
        width: found
            .list
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(0)
            .max("portwarden".len()),
        colour: use_colour(),
    });
    // Every port first, so each process knows every other one's.
    let mut leases: Vec<Granted> = Vec::new();
    let me = std::process::id() as i32;
    for p in &started {
        let req = PortRequest {
            project: &project,
            name: &p.name,
            pid: Some(me),
            purpose: "portwarden up".into(),
        };
        match super::project::allocate(&mut client, req).await {
            Ok(g) => leases.push(g),
            Err(e) => {
                release(&mut client, &leases, &printer).await;
                return Err(e.into());
            }
        }
    }
    let mut ports: HashMap<String, u16> = started
        .iter()
        .zip(&leases)
        .map(|(p, g)| (p.name.clone(), g.port))
        .collect();
    if started.len() < found.list.len() {
        for r in super::project::list(&mut client, &project).await? {
            if found.list.iter().any(|p| p.name == r.name) && !ports.contains_key(&r.name) {
                ports.insert(r.name.clone(), u16::try_from(r.port).unwrap_or_default());
            }
        }
    }
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<(usize, ExitStatus)>();
    let mut running: Vec<Running> = Vec::new();
    let mut output = Vec::new();
    let mut readiness = Vec::new();
    let mut failed = None;
    for (i, (p, lease)) in started.iter().zip(&leases).enumerate() {
        let vars = child_vars(&env_file, &ports, lease.port);
        match spawn(p, lease.port, vars, &dir, &printer, i) {
            Ok((child, listener, pipes)) => {
                let pid = child.id().map_or(0, |p| p as i32);
                let how = if listener.is_some() {
                    "its socket passed as fd 3"
                } else {
                    "PORT set"
                };
                printer.say(&format!(
                    "{}: port {} ({how}), pid {pid}: {}",
                    p.name, lease.port, p.command
                ));
                // The child holds the socket now; ours would keep the port after it exits.
                drop(listener);
                output.extend(pipes);
                let tx = exit_tx.clone();
                let mut child = child;
                tokio::spawn(async move {
                    if let Ok(status) = child.wait().await {
                        let _ = tx.send((i, status));
                    }
                });
                running.push(Running {
                    name: p.name.clone(),
                    pid,
                    alive: true,
                });
                readiness.push(tokio::spawn(announce_ready(
                    printer.clone(),
                    p.clone(),
                    lease.port,
                    ready_timeout,
                )));
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let stop = match &failed {
        Some(e) => {
            printer.say(&format!("{e}; stopping the others"));
            None
        }
        None => Some(tokio::select! {
            Some((i, status)) = exit_rx.recv() => Stop::Exited(i, status),
            sig = signals.next() => Stop::Signal(sig),
        }),
    };
    readiness.iter().for_each(|r| r.abort());
    let code = match stop {
        Some(Stop::Exited(i, status)) => {
            running[i].alive = false;
            printer.say(&format!(
                "{} {}; stopping the others",
                running[i].name,
                describe(status)
            ));
            exit_code(status)
        }
        Some(Stop::Signal(sig)) => {
            let name = match sig {
                libc::SIGINT => "interrupted (SIGINT)".to_string(),
                libc::SIGTERM => "SIGTERM".to_string(),
                libc::SIGHUP => "SIGHUP".to_string(),
                other => format!("signal {other}"),
            };
            printer.say(&format!("{name}: stopping every process"));
            0
        }
        None => EXIT_FAILED,
    };
    stop_all(&mut running, &mut exit_rx, &mut signals, grace, &printer).await;
    release(&mut client, &leases, &printer).await;
    // The pipes close once every process holding them is gone; what they held is printed.
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        for task in output {
            let _ = task.await;
        }
    });
    let _ = drained.await;
    match failed {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// The env file's variables: `--env-file`, else `.env` beside the Procfile when there is one.
fn env_file_vars(file: Option<&Path>, dir: &Path) -> Result<Vec<(String, String)>, UpError> {
    let (path, required) = match file {
        Some(f) => (f.to_path_buf(), true),
        None => (dir.join(".env"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(usage("--env-file", format!("{}: {e}", path.display()))),
    };
    procfile::parse_env_file(&text)
        .map_err(|rule| usage("--env-file", format!("{}: {rule}", path.display())))
}

/// Ours, then the env file's over it, then the ports over both.
fn child_vars(
    env_file: &[(String, String)],
    ports: &HashMap<String, u16>,
    own: u16,
) -> Vec<(OsString, OsString)> {
    let mut vars: HashMap<OsString, OsString> = std::env::vars_os().collect();
    for (k, v) in env_file {
        vars.insert(k.into(), v.into());
    }
    for (name, port) in ports {
        vars.insert(env_var(name).into(), port.to_string().into());
    }
    vars.insert("PORT".into(), own.to_string().into());
    vars.into_iter().collect()
}

type Started = (
    tokio::process::Child,
    Option<TcpListener>,
    Vec<tokio::task::JoinHandle<()>>,
);

/// Starts `p` in a process group of its own, with its output going to `printer`.
fn spawn(
    p: &Process,
    port: u16,
    vars: Vec<(OsString, OsString)>,
    dir: &Path,
    printer: &Arc<Printer>,
    colour: usize,
) -> Result<Started, UpError> {
    let listener = if p.listen_fds {
        let (l, _) = portwarden_client::bind_hardened(port).map_err(|source| UpError::Bind {
            name: p.name.clone(),
            port,
            source,
        })?;
        Some(l)
    } else {
        None
    };
    let env = ChildEnv::new(vars, listener.as_ref().map(|_| p.name.as_str()));
    let listen_fd = listener.as_ref().map(|l| l.as_raw_fd());
    let parent = std::process::id() as libc::pid_t;
    // With a socket, the program must be the process the shell started: LISTEN_PID names it.
    let script = if p.listen_fds {
        format!("exec {}", p.command)
    } else {
        p.command.clone()
    };
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe calls (see ChildEnv::install_in_child).
    unsafe {
        cmd.pre_exec(move || env.install_in_child(listen_fd, parent, true));
    }
    let mut child = cmd.spawn().map_err(|source| UpError::Spawn {
        name: p.name.clone(),
        command: p.command.clone(),
        source,
    })?;
    let mut pipes = Vec::new();
    if let Some(out) = child.stdout.take() {
        pipes.push(tokio::spawn(print_lines(
            out,
            printer.clone(),
            p.name.clone(),
            colour,
        )));
    }
    if let Some(err) = child.stderr.take() {
        pipes.push(tokio::spawn(print_lines(
            err,
            printer.clone(),
            p.name.clone(),
            colour,
        )));
    }
    Ok((child, listener, pipes))
}

/// "web ready on http://localhost:8003 (1.2 s)" once it accepts (or answers `ready`).
async fn announce_ready(printer: Arc<Printer>, p: Process, port: u16, limit: Duration) {
    // A passed socket accepts from the start: only an HTTP answer says the program serves.
    let path = p
        .ready
        .clone()
        .or_else(|| p.listen_fds.then(|| "/".to_string()));
    match until_ready(port, path.as_deref(), limit).await {
        Ok(ready) => printer.say(&format!(
            "{} ready on http://localhost:{port} ({})",
            p.name,
            seconds(ready.elapsed)
        )),
        Err(_) => printer.say(&format!(
            "{} has not answered on port {port} within {} (fine if it serves nothing)",
            p.name,
            seconds(limit)
        )),
    }
}

/// Gives back the ports this run allocated (not those it was handed: they were the project's
/// already).
async fn release(
    client: &mut PortsServiceClient<tonic::transport::Channel>,
    leases: &[Granted],
    printer: &Printer,
) {
    let mut released = Vec::new();
    for g in leases.iter().filter(|g| !g.reused) {
        let r = client
            .release(ReleaseRequest {
                port: g.port.into(),
                lease_token: g.token.clone(),
            })
            .await;
        match r {
            Ok(_) => released.push(g.port.to_string()),
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => printer.say(&format!(
                "could not release port {}: {}",
                g.port,
                s.message()
            )),
        }
    }
    if !released.is_empty() {
        printer.say(&format!("released ports {}", released.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_win_over_the_env_file_and_the_env_file_over_ours() {
        let ports = HashMap::from([("web".to_string(), 8003), ("api".to_string(), 8004)]);
        let file = vec![
            ("PORT".to_string(), "1".to_string()),
            ("GREETING".to_string(), "hi".to_string()),
        ];
        let vars: HashMap<OsString, OsString> =
            child_vars(&file, &ports, 8003).into_iter().collect();
        assert_eq!(vars[&OsString::from("PORT")], "8003");
        assert_eq!(vars[&OsString::from("PORT_API")], "8004");
        assert_eq!(vars[&OsString::from("PORT_WEB")], "8003");
        assert_eq!(vars[&OsString::from("GREETING")], "hi");
    }
}
