//! A reader of Server-Sent Events over real HTTP/1.1 (TCP or the Unix socket), as a browser's
//! EventSource or `curl -N` reads them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::http::Addr;

/// One SSE event.
#[derive(Debug, Default, Clone)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// A reader of an SSE response (HTTP/1.1, chunked), one event at a time.
pub struct SseReader {
    lines: Box<dyn BufRead>,
    pending: Vec<u8>,
}

impl SseReader {
    pub fn open(addr: &Addr, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut head =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += "\r\n";
        let stream: Box<dyn Read> = match addr {
            Addr::Tcp(a) => {
                let mut s = TcpStream::connect(a).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(head.as_bytes()).unwrap();
                Box::new(s)
            }
            Addr::Unix(p) => {
                let mut s = UnixStream::connect(p).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(head.as_bytes()).unwrap();
                Box::new(s)
            }
        };
        let mut lines: Box<dyn BufRead> = Box::new(BufReader::new(stream));
        let mut status = String::new();
        lines.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let mut chunked = false;
        loop {
            let mut h = String::new();
            lines.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("content-type:") {
                assert!(lower.contains("text/event-stream"), "{h}");
            }
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        }
        assert!(chunked, "a streamed body");
        SseReader {
            lines,
            pending: Vec::new(),
        }
    }

    /// The next line of the de-chunked body.
    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            let mut size = String::new();
            if self.lines.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                return None;
            }
            let mut chunk = vec![0; n + 2];
            self.lines.read_exact(&mut chunk).ok()?;
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next event (comments, the keep-alives, are skipped).
    pub fn next(&mut self) -> Option<Sse> {
        let mut e = Sse::default();
        let mut any = false;
        loop {
            let line = self.line()?;
            if line.is_empty() {
                if any {
                    return Some(e);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => e.id = Some(value),
                "event" => e.event = value,
                "data" => e.data += &value,
                _ => {}
            }
        }
    }
}
