//! `portwarden up`'s output: each line of a process behind its name, in that process's colour
//! on a terminal (unless NO_COLOR is set), and the supervisor's own lines behind `portwarden`.
#![cfg(unix)]

use std::io::Write;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// A longer line is printed in pieces.
const MAX_LINE: usize = 64 * 1024;
/// foreman's order: cyan, yellow, green, magenta, blue, red.
const COLOURS: [u8; 6] = [36, 33, 32, 35, 34, 31];

/// Where output goes: each line behind its process's name.
pub struct Printer {
    pub width: usize,
    pub colour: bool,
}

impl Printer {
    pub fn line(&self, name: &str, colour: usize, text: &[u8]) {
        let mut out = std::io::stdout().lock();
        let prefix = format!("{name:<w$} | ", w = self.width);
        // A closed or full stdout must not stop the supervisor: its processes still need
        // stopping and its ports releasing.
        let _ = if self.colour {
            let c = COLOURS[colour % COLOURS.len()];
            write!(out, "\x1b[{c}m{prefix}\x1b[0m")
        } else {
            out.write_all(prefix.as_bytes())
        };
        let _ = out.write_all(text);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    pub fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let prefix = format!("{:<w$} | ", "portwarden", w = self.width);
        let _ = if self.colour {
            writeln!(out, "\x1b[1m{prefix}\x1b[0m{text}")
        } else {
            writeln!(out, "{prefix}{text}")
        };
        let _ = out.flush();
    }
}

/// Colours only on a terminal, and not when NO_COLOR is set to anything (no-color.org).
pub fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub async fn print_lines(
    pipe: impl AsyncRead + Unpin,
    printer: Arc<Printer>,
    name: String,
    colour: usize,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                printer.line(&name, colour, text);
            }
        }
    }
}
