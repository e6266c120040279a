//! The lease token for `release` and `renew`: from `PORTWARDEN_LEASE_TOKEN`, `--token-file`, or
//! `--token`. A token on the command line can be read by every local user (`ps`,
//! /proc/PID/cmdline) and stays in shell history, so that one works but is warned about.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::commands::CliError;

/// Longest token file read: tokens are 32 hex digits; anything much longer is not one.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

#[derive(Debug, Default, clap::Args)]
pub struct TokenArgs {
    /// Lease token from allocate; not needed for your own allocations (Unix socket or loopback
    /// TCP). Other users can read a token given here (ps): prefer PORTWARDEN_LEASE_TOKEN or
    /// --token-file
    #[arg(
        long,
        env = "PORTWARDEN_LEASE_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// Read the lease token from this file (its first line; - reads standard input)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token to send; empty when none was given (the daemon then goes by who is calling).
    pub fn resolve(&self) -> Result<String, CliError> {
        match (&self.token, &self.token_file) {
            (_, Some(path)) => read_token_file(path),
            (Some(token), None) => Ok(token.clone()),
            (None, None) => Ok(String::new()),
        }
    }
}

/// Warns when the token was typed on the command line (not when it came from the environment).
pub fn warn_if_on_command_line(sub: Option<&ArgMatches>) {
    // Other commands have no --token: asked about it, clap would panic in debug builds.
    let typed = sub.is_some_and(|m| {
        m.try_contains_id("token").unwrap_or(false)
            && m.value_source("token") == Some(ValueSource::CommandLine)
    });
    if typed {
        eprintln!(
            "warning: a token given with --token can be read by other users (ps, \
             /proc/PID/cmdline) and stays in your shell history; pass it in PORTWARDEN_LEASE_TOKEN \
             or with --token-file instead"
        );
    }
}

fn read_token_file(path: &Path) -> Result<String, CliError> {
    let usage = |rule: String| CliError::Usage {
        field: "--token-file",
        rule,
    };
    let line = if path == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(usage(
                "- reads the token from standard input, which is a terminal here".into(),
            ));
        }
        first_line(stdin.lock())
    } else {
        warn_if_others_can_read(path);
        std::fs::File::open(path).and_then(|f| first_line(std::io::BufReader::new(f)))
    }
    .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(usage(format!("{} holds no token", path.display())));
    }
    Ok(token.to_string())
}

fn first_line(reader: impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    reader
        .take(MAX_TOKEN_FILE_BYTES)
        .read_line(&mut line)
        .map(|_| line)
}

#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o044 != 0 {
            eprintln!(
                "warning: {} can be read by other users (mode {:04o}); chmod 600 it",
                path.display(),
                m.permissions().mode() & 0o7777
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_token_and_an_empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "abc123\nrest\n").unwrap();
        let args = TokenArgs {
            token: None,
            token_file: Some(f.clone()),
        };
        assert_eq!(args.resolve().unwrap(), "abc123");
        std::fs::write(&f, "\n").unwrap();
        let err = args.resolve().unwrap_err().to_string();
        assert!(
            err.contains("--token-file") && err.contains("holds no token"),
            "{err}"
        );
        let missing = TokenArgs {
            token: None,
            token_file: Some(dir.path().join("none")),
        };
        assert!(missing
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
    }
}
