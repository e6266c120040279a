//! portpicker's portserver protocol, so every `portpicker` user switches by setting
//! `PORTSERVER_ADDRESS`: a client connects to a Unix socket (a path, or `@name` in Linux's
//! abstract namespace), writes its PID in ASCII and a newline, and reads a port and a newline;
//! `0` means no port. The port comes from the same allocator as every other (free check,
//! quarantine, durable state), owned by that PID with its start time, so the sweeper takes it
//! back when the process exits.
//!
//! The request names a process; the kernel names the caller (SO_PEERCRED). A caller may claim
//! its own process, one of its uid, or (root) any: [`crate::ports::check_claim`]. A connection
//! whose line has already arrived when it is accepted (the usual case) is answered at once; any
//! other gets its own task, at most [`MAX_CONNECTIONS`] at once, and [`REQUEST_TIMEOUT`] to send
//! its line: a client that sends nothing, garbage or an endless line gets `0` (or a closed
//! socket) and a log line, and never holds up anyone else.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::config::PortserverSocket;
use crate::metrics::{Metrics, Refusal, Transport};
use crate::ports::{self, Allocator, Caller, MAX_TEXT_BYTES};

mod socket;

use socket::bind;

/// Connections served at once. A client past this is answered `0` at once, not queued.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client has to send its request line; then it gets `0` and the socket closes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writing the answer may take (it is a few bytes into an empty socket buffer).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest request line read: portserver accepts up to 20 characters; a PID has at most 10
/// digits. One more byte for the newline.
const MAX_REQUEST: usize = 21;
/// What the allocation's purpose says about where it came from.
const PURPOSE: &str = "portpicker client (portserver protocol)";
/// Command lines kept (by pid and start time) for processes that ask again; emptied when full.
const MAX_CACHED_COMMAND_LINES: usize = 1024;

/// What every connection task shares.
struct Endpoint {
    allocator: Arc<Allocator>,
    /// Every request is counted as gRPC's and REST's are (transport `portserver`).
    metrics: Arc<Metrics>,
    /// A test process that picks a port per test is read once, not once per port; the start
    /// time in the key keeps a reused PID from inheriting another process's line.
    command_lines: Mutex<HashMap<(i32, u64), Arc<str>>>,
}

impl Endpoint {
    fn command_line(&self, pid: i32, start_time: u64) -> Arc<str> {
        let mut cache = self.command_lines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = cache.get(&(pid, start_time)) {
            return line.clone();
        }
        if cache.len() >= MAX_CACHED_COMMAND_LINES {
            cache.clear();
        }
        let line: Arc<str> = ports::command_line(pid, MAX_TEXT_BYTES).into();
        cache.insert((pid, start_time), line.clone());
        line
    }
}

/// The running protocol endpoint. It stops with the daemon's stop signal.
pub struct Portserver {
    addr: PortserverSocket,
    task: JoinHandle<()>,
}

impl Portserver {
    /// Binds `addr` and starts accepting.
    pub fn start(
        addr: &PortserverSocket,
        allocator: Arc<Allocator>,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> io::Result<Self> {
        let listener = bind(addr)?;
        tracing::info!(%addr, "portserver protocol on {addr} (PORTSERVER_ADDRESS={addr})");
        Ok(Self {
            addr: addr.clone(),
            task: tokio::spawn(accept_loop(listener, allocator, metrics, stop)),
        })
    }

    /// Waits for the accept loop and the connections in flight (at most the request timeout
    /// after the stop signal), then removes the socket file.
    pub async fn stopped(self) {
        let _ = self.task.await;
        if let PortserverSocket::Path(path) = &self.addr {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn accept_loop(
    listener: UnixListener,
    allocator: Arc<Allocator>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let endpoint = Arc::new(Endpoint {
        allocator,
        metrics,
        command_lines: Mutex::default(),
    });
    let mut conns = JoinSet::new();
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the same error.
                tracing::warn!(error = %e, "portserver: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_CONNECTIONS {
            if refused == 0 {
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    "portserver: {MAX_CONNECTIONS} connections in progress; new ones get 0 until some finish"
                );
            }
            refused += 1;
            endpoint.observe(Some(tonic::Code::ResourceExhausted));
            let _ = stream.try_write(b"0\n");
            continue;
        }
        if refused > 0 {
            tracing::info!(
                refused,
                "portserver: below the connection limit again ({refused} connections got 0)"
            );
            refused = 0;
        }
        // Fast path: the client writes its line right after connecting, so it is usually here
        // by the time the connection is accepted. Then it is answered here, without a task or a
        // wait for readiness; anything else (a partial line, silence) gets its own task.
        let mut request = Request::default();
        match request.read_ready(&stream) {
            // Answered here only when the allocation will not wait for a fresh network
            // snapshot (census, DNS): a slow answer must not stop the accepting.
            Some(parsed) if endpoint.allocator.is_fast() => {
                let port = answer(&endpoint, parsed, &caller_of(&stream)).await;
                if !send_now(&stream, port) {
                    conns.spawn(write_answer(stream, port));
                }
            }
            Some(parsed) => {
                let (endpoint, caller) = (endpoint.clone(), caller_of(&stream));
                conns.spawn(async move {
                    let port = answer(&endpoint, parsed, &caller).await;
                    write_answer(stream, port).await
                });
            }
            None => {
                conns.spawn(serve_one(stream, request, endpoint.clone()));
            }
        }
    }
    // In-flight requests end within the request timeout.
    while conns.join_next().await.is_some() {}
}

/// Why a request got no port before reaching the allocator.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("no request line within {REQUEST_TIMEOUT:?}")]
    Timeout,
    #[error("no newline within {MAX_REQUEST} bytes")]
    TooLong,
    #[error("request {0:?} is not a PID (ASCII digits and a newline)")]
    NotAPid(String),
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

fn caller_of(stream: &UnixStream) -> Caller {
    let cred = stream.peer_cred().ok();
    Caller {
        uid: cred.map(|c| c.uid()),
        pid: cred.and_then(|c| c.pid()),
    }
}

/// The port for a parsed request, or 0 (logged with the reason, counted with its code).
async fn answer(endpoint: &Arc<Endpoint>, parsed: Result<i32, BadRequest>, caller: &Caller) -> u16 {
    match parsed {
        Ok(pid) => match allocate_for(endpoint, pid, caller).await {
            Ok(port) => {
                endpoint.observe(None);
                tracing::debug!(port, pid, "portserver: port {port} for pid {pid}");
                port
            }
            Err(NoPort { code, reason }) => {
                endpoint.observe(Some(code));
                tracing::warn!(pid, peer_pid = ?caller.pid, peer_uid = ?caller.uid, "portserver: no port for pid {pid}: {reason}");
                0
            }
        },
        Err(bad) => {
            endpoint.observe(Some(match bad {
                BadRequest::Timeout => tonic::Code::DeadlineExceeded,
                BadRequest::Io(_) => tonic::Code::Unavailable,
                BadRequest::TooLong | BadRequest::NotAPid(_) => tonic::Code::InvalidArgument,
            }));
            tracing::warn!(peer_pid = ?caller.pid, peer_uid = ?caller.uid, "portserver: bad request: {bad}; answered 0");
            0
        }
    }
}

/// Why a request for a PID got no port: the code gRPC would answer, and why in words.
struct NoPort {
    code: tonic::Code,
    reason: String,
}

impl Endpoint {
    /// Counts one request in `portwarden_requests_total{transport="portserver"}` (and, when
    /// refused, the errors and refusals by code).
    fn observe(&self, refused: Option<tonic::Code>) {
        self.metrics.observe_request(
            Transport::Portserver,
            "allocate",
            refused.map(Refusal::Code),
        );
    }
}

/// A connection whose line was not complete at accept: read the rest within the timeout.
async fn serve_one(mut stream: UnixStream, mut request: Request, endpoint: Arc<Endpoint>) {
    let caller = caller_of(&stream);
    let parsed = request.read_rest(&mut stream).await;
    let port = answer(&endpoint, parsed, &caller).await;
    write_answer(stream, port).await;
}

async fn write_answer(mut stream: UnixStream, port: u16) {
    let answer = format!("{port}\n");
    // Closing the socket (on drop) ends the answer; no shutdown call needed.
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(answer.as_bytes())).await;
}

/// The answer in one non-blocking send (a few bytes into an empty socket buffer): false when
/// the socket would not take it now.
fn send_now(stream: &UnixStream, port: u16) -> bool {
    let answer = format!("{port}\n");
    // SAFETY: the buffer is valid for its length; the descriptor is the stream's, open.
    let sent = unsafe {
        libc::send(
            stream.as_raw_fd(),
            answer.as_ptr().cast(),
            answer.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    // A peer that went away (EPIPE) needs no answer either.
    sent == answer.len() as isize
        || (sent < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE))
}

/// The request line as read so far.
#[derive(Default)]
struct Request {
    buf: [u8; MAX_REQUEST],
    len: usize,
}

impl Request {
    /// The parsed line once it is complete: a newline, the end of the stream, or too long.
    fn complete(&self, eof: bool) -> Option<Result<i32, BadRequest>> {
        if let Some(end) = self.buf[..self.len].iter().position(|b| *b == b'\n') {
            return Some(parse_pid(&self.buf[..end]));
        }
        if eof {
            return Some(parse_pid(&self.buf[..self.len]));
        }
        (self.len == self.buf.len()).then_some(Err(BadRequest::TooLong))
    }

    /// What is already in the socket, without waiting (a direct non-blocking recv: tokio would
    /// not try before the reactor reports the socket readable). None: not complete yet.
    fn read_ready(&mut self, stream: &UnixStream) -> Option<Result<i32, BadRequest>> {
        loop {
            let room = &mut self.buf[self.len..];
            // SAFETY: `room` is valid for writes of its length; the descriptor is open.
            let n = unsafe {
                libc::recv(
                    stream.as_raw_fd(),
                    room.as_mut_ptr().cast(),
                    room.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => None,
                    io::ErrorKind::Interrupted => continue,
                    _ => Some(Err(BadRequest::Io(e))),
                };
            }
            self.len += n as usize;
            if let Some(done) = self.complete(n == 0) {
                return Some(done);
            }
        }
    }

    /// Reads until the line is complete, within the request timeout.
    async fn read_rest(&mut self, stream: &mut UnixStream) -> Result<i32, BadRequest> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let n = tokio::time::timeout_at(deadline, stream.read(&mut self.buf[self.len..]))
                .await
                .map_err(|_| BadRequest::Timeout)??;
            self.len += n;
            if let Some(done) = self.complete(n == 0) {
                return done;
            }
        }
    }
}

fn parse_pid(line: &[u8]) -> Result<i32, BadRequest> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let bad = || BadRequest::NotAPid(String::from_utf8_lossy(line).into_owned());
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .ok_or_else(bad)
}

/// `portpicker.<comm>`: service names allow [A-Za-z0-9._-], so the command name is kept with
/// anything else replaced by '_'.
fn derived_service(comm: &str) -> String {
    let comm = ports::service_chars(comm);
    format!(
        "portpicker.{}",
        if comm.is_empty() { "unknown" } else { &comm }
    )
}

/// Checks the claim, then allocates through the allocator like any other request.
async fn allocate_for(endpoint: &Arc<Endpoint>, pid: i32, caller: &Caller) -> Result<u16, NoPort> {
    let (owner, details) = ports::claimed_process(caller, pid).map_err(|e| NoPort {
        code: tonic::Code::InvalidArgument,
        reason: e.to_string(),
    })?;
    ports::check_claim(caller, pid, &details).map_err(|reason| NoPort {
        code: tonic::Code::PermissionDenied,
        reason,
    })?;
    let req = ports::AllocateRequest {
        service: derived_service(&details.comm),
        purpose: PURPOSE.into(),
        started_by: endpoint.command_line(pid, owner.start_time).to_string(),
        pid: Some(pid),
        // The process whose claim was checked is the one recorded (no second /proc read that
        // a reused PID could answer).
        owner_identity: Some(owner),
        derived_service: true,
        // Test suites draw from their own pool, so they never run the services' ranges dry.
        pool: endpoint.allocator.pools().for_tests(),
        ..Default::default()
    };
    let granted = super::allocate_off_runtime(&endpoint.allocator, req, *caller)
        .await
        .map_err(|e| NoPort {
            code: tonic::Code::Internal,
            reason: format!("allocation task failed: {e}"),
        })?
        .map_err(|e| {
            let reason = e.to_string();
            NoPort {
                code: super::error::status_from(e).code(),
                reason,
            }
        })?;
    Ok(granted.allocation.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_line_is_digits_only() {
        assert_eq!(parse_pid(b"1234").unwrap(), 1234);
        assert_eq!(parse_pid(b"1234\r").unwrap(), 1234);
        for bad in [
            &b""[..],
            b"-5",
            b"0",
            b"12a",
            b" 12",
            b"99999999999",
            b"\xff\xfe",
        ] {
            assert!(parse_pid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_names_pass_the_service_rule() {
        for comm in ["python3", "my prog", "a:b/c", "", "pytest-xdist_w0"] {
            let name = derived_service(comm);
            assert!(ports::valid_service(&name).is_ok(), "{name}");
        }
        assert_eq!(derived_service("a:b c"), "portpicker.a_b_c");
    }
}
