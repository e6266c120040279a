//! `portwarden wait PORT|NAME`: until something accepts connections on the port, on 127.0.0.1
//! or ::1 (`localhost` is one or the other depending on the machine, so both are tried), or,
//! with `--http PATH`, until a GET of PATH answers 2xx or 3xx; then names the process that
//! listens. Exit 0 when ready, 2 when the port answered HTTP but never with 2xx/3xx, 3 when
//! nothing accepted in time. `portwarden up` waits the same way.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::commands::{print_json, CliError};
use super::exit;
use super::project::ProjectArg;
use super::units::parse_duration;

/// Pause between rounds of attempts.
const ROUND: Duration = Duration::from_millis(100);
/// One connection attempt on loopback: refused or accepted at once, unless the backlog is full.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a server may take to send its status line.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// A status line longer than this is not HTTP.
const MAX_STATUS_LINE: usize = 1024;

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// A port number, or the name of one of the project's ports (web)
    pub target: String,
    /// Ready when a GET of this path answers 2xx or 3xx (e.g. /health) [default: when a
    /// connection is accepted]
    #[arg(long, value_name = "PATH")]
    pub http: Option<String>,
    /// Give up after this long (30s, 2m)
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: String,
    #[command(flatten)]
    pub project: ProjectArg,
    /// Print nothing (the exit status says it)
    #[arg(long, short, conflicts_with = "json")]
    pub quiet: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: super::CommandClientArgs,
}

/// A path to GET: starts with '/', visible ASCII only (no space or line break that would end
/// the request line), at most 1024 bytes.
pub fn valid_http_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.len() > MAX_STATUS_LINE {
        return Err(format!(
            "'{}' must be a path starting with '/' (at most {MAX_STATUS_LINE} bytes)",
            crate::text::printable(path)
        ));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "'{}' has {}, which a request path cannot hold (percent-encode it)",
            crate::text::printable(path),
            c.escape_default()
        ));
    }
    Ok(())
}

/// Something accepted (and answered the GET, when asked).
#[derive(Debug, Clone)]
pub struct Ready {
    pub addr: SocketAddr,
    pub elapsed: Duration,
    pub status: Option<u16>,
}

/// The time ran out; the last HTTP answer that was not 2xx/3xx, if any.
#[derive(Debug, Clone)]
pub struct NotReady {
    pub answered: Option<(SocketAddr, u16)>,
}

/// Tries 127.0.0.1 and ::1 every [`ROUND`] until one is ready or `limit` passes.
pub async fn until_ready(
    port: u16,
    http: Option<&str>,
    limit: Duration,
) -> Result<Ready, NotReady> {
    let start = Instant::now();
    let deadline = start + limit;
    let addrs = [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ];
    let mut answered = None;
    loop {
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Ok(Ok(stream)) = timeout(left.min(CONNECT_TIMEOUT), TcpStream::connect(addr)).await
            else {
                continue;
            };
            let Some(path) = http else {
                return Ok(Ready {
                    addr,
                    elapsed: start.elapsed(),
                    status: None,
                });
            };
            match timeout(left.min(ANSWER_TIMEOUT), get(stream, port, path)).await {
                Ok(Ok(code)) if (200..400).contains(&code) => {
                    return Ok(Ready {
                        addr,
                        elapsed: start.elapsed(),
                        status: Some(code),
                    })
                }
                Ok(Ok(code)) => answered = Some((addr, code)),
                // Closed, slow or not HTTP: not ready yet.
                _ => {}
            }
        }
        if Instant::now() + ROUND >= deadline {
            return Err(NotReady { answered });
        }
        tokio::time::sleep(ROUND).await;
    }
}

/// One `GET path HTTP/1.1`; the status code of the answer.
async fn get(mut stream: TcpStream, port: u16, path: &str) -> std::io::Result<u16> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: portwarden-wait\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    while !line.windows(2).any(|w| w == b"\r\n") && line.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
    }
    let not_http = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let text = String::from_utf8_lossy(&line);
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code.parse().map_err(|_| not_http()),
        _ => Err(not_http()),
    }
}

/// Who listens on `port` ("pid 4242 (python3)"), as far as this user may see.
pub async fn listener_of(port: u16) -> Option<String> {
    let found =
        tokio::task::spawn_blocking(move || crate::network::listener_holders(port, "this user"))
            .await
            .ok()?
            .ok()?;
    (!found.is_empty()).then(|| found.join(", "))
}

/// Seconds with one decimal, as people read a wait.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

pub async fn run(args: WaitArgs) -> Result<u8, CliError> {
    let limit = parse_duration("--timeout", &args.timeout)?;
    if let Some(path) = &args.http {
        valid_http_path(path).map_err(|rule| CliError::Usage {
            field: "--http",
            rule,
        })?;
    }
    let (port, name) = match args.target.parse::<u16>() {
        Ok(0) => {
            return Err(CliError::Usage {
                field: "PORT",
                rule: "0 is not a port number (1-65535)".into(),
            })
        }
        Ok(port) => (port, None),
        Err(_) => (project_port(&args).await?, Some(args.target.clone())),
    };
    match until_ready(port, args.http.as_deref(), limit).await {
        Ok(ready) => {
            let listener = listener_of(port).await;
            if args.json {
                print_json(&json!({
                    "port": port,
                    "name": name,
                    "ready": true,
                    "address": ready.addr.to_string(),
                    "http_status": ready.status,
                    "listener": listener,
                    "elapsed_ms": ready.elapsed.as_millis() as u64,
                }));
            } else if !args.quiet {
                let what = match ready.status {
                    Some(code) => format!(
                        "GET {} answered {code}",
                        args.http.as_deref().unwrap_or("/")
                    ),
                    None => "accepts connections".to_string(),
                };
                let by = listener.map(|l| format!(" ({l})")).unwrap_or_default();
                outln!(
                    "port {port} ready: {} {what}{by} after {}",
                    ready.addr,
                    seconds(ready.elapsed)
                );
            }
            Ok(exit::OK)
        }
        Err(not) => Err(CliError::NotReady {
            message: match not.answered {
                Some((addr, code)) => format!(
                    "port {port} is not ready: GET {} on {addr} answered {code} (not 2xx or 3xx) \
                     until the time ran out ({})",
                    args.http.as_deref().unwrap_or("/"),
                    seconds(limit)
                ),
                None => format!(
                    "nothing accepted connections on port {port} (127.0.0.1 or ::1) within {}",
                    seconds(limit)
                ),
            },
            answered: not.answered.is_some(),
        }),
    }
}

/// The port the project remembers for the name `args.target`.
async fn project_port(args: &WaitArgs) -> Result<u16, CliError> {
    crate::ports::valid_service(&args.target).map_err(|rule| CliError::Usage {
        field: "PORT|NAME",
        rule: format!(
            "'{}' is neither a port number nor a name: {rule}",
            crate::text::printable(&args.target)
        ),
    })?;
    let project = args.project.resolve()?;
    let (_, channel) = super::connect::connect(&args.conn).await?;
    let mut client =
        portwarden_client::proto::ports_service_client::PortsServiceClient::new(channel);
    let ports = super::project::list(&mut client, &project).await?;
    ports
        .iter()
        .find(|p| p.name == args.target)
        .and_then(|p| u16::try_from(p.port).ok())
        .ok_or_else(|| {
            CliError::Rpc(tonic::Status::not_found(format!(
                "the project {project} has no port named '{}' (portwarden ports lists its ports)",
                args.target
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_cannot_end_the_request_line() {
        assert!(valid_http_path("/health?full=1").is_ok());
        assert!(valid_http_path("health").is_err());
        assert!(valid_http_path("/a b")
            .unwrap_err()
            .contains("percent-encode"));
        assert!(valid_http_path("/a\r\nHost: x").is_err());
    }

    #[tokio::test]
    async fn a_listener_on_either_loopback_is_ready_and_a_closed_port_is_not() {
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let port = v6.local_addr().unwrap().port();
        let ready = until_ready(port, None, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(ready.addr, SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
        drop(v6);
        let start = std::time::Instant::now();
        let not = until_ready(port, None, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(not.answered.is_none());
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
