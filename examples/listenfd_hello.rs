//! A tiny HTTP server that takes its listening socket from its environment with the `listenfd`
//! crate (systemd's socket-activation protocol), as a program started by `portwarden run` would:
//!
//! ```sh
//! cargo build --example listenfd_hello
//! portwarden run -- target/debug/examples/listenfd_hello
//! curl http://127.0.0.1:$PORT/          # the port portwarden run printed
//! ```
//!
//! It refuses to bind a port itself: without a passed socket it exits with status 2. `GET /exit/N`
//! answers, then exits with status N.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

fn main() {
    let mut fds = listenfd::ListenFd::from_env();
    let listener = match fds.take_tcp_listener(0) {
        Ok(Some(l)) => l,
        Ok(None) => {
            eprintln!("listenfd_hello: no listening socket passed (LISTEN_FDS/LISTEN_PID)");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("listenfd_hello: fd 3 is not a TCP listener: {e}");
            std::process::exit(2);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Some(code) = serve(stream, port) {
            std::process::exit(code);
        }
    }
}

/// Answers one request; `Some(code)` when it asked the server to exit.
fn serve(mut stream: TcpStream, port: u16) -> Option<i32> {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).ok()? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let body = format!(
        "hello from listenfd_hello on port {port} (pid {})\n",
        std::process::id()
    );
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    path.strip_prefix("/exit/").and_then(|n| n.parse().ok())
}
