//! What `portwarden up` runs: a `[processes]` table in `portwarden.toml`, else a `Procfile`
//! (foreman's format: `name: command` per line, `#` comments), and the variables of a `.env`
//! file.
//!
//! ```toml
//! [processes]
//! worker = "./worker.sh"                      # a command, as in a Procfile
//! web = { command = "gunicorn app:app", listen_fds = true, ready = "/health" }
//! ```
//!
//! `listen_fds = true` hands the process its socket already listening (fd 3, `LISTEN_FDS=1`):
//! only for programs that take one (gunicorn, uvicorn --fd, systemd-aware servers); the command is
//! then run with `exec`, so it must be one program with its arguments. `ready` is the HTTP path
//! that answers 2xx or 3xx once the process serves. Procfile lines have neither.
// Windows has no `up`, which reads Procfiles and keeps the lease tokens.
#![cfg_attr(not(unix), allow(dead_code))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::commands::CliError;
use crate::ports::valid_service;

/// One process to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub name: String,
    pub command: String,
    /// Hand over the listening socket (fd 3).
    pub listen_fds: bool,
    /// The HTTP path that says it is ready.
    pub ready: Option<String>,
}

/// The processes, and the file they came from.
#[derive(Debug)]
pub struct Processes {
    pub file: PathBuf,
    pub list: Vec<Process>,
}

pub const TOML_NAME: &str = "portwarden.toml";
pub const PROCFILE_NAME: &str = "Procfile";

fn bad(file: &Path, rule: impl std::fmt::Display) -> CliError {
    CliError::Usage {
        field: "--procfile",
        rule: format!("{}: {rule}", file.display()),
    }
}

/// `file` when given (a `.toml` file is read as portwarden.toml); else [`find`], which must
/// find one.
pub fn load(file: Option<&Path>, dirs: &[&Path]) -> Result<Processes, CliError> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| bad(f, e))?;
        let list = if f.extension().is_some_and(|e| e == "toml") {
            from_toml(&text).map_err(|e| bad(f, e))?.unwrap_or_default()
        } else {
            from_procfile(&text).map_err(|e| bad(f, e))?
        };
        return checked(f, list);
    }
    find(dirs)?.ok_or_else(|| CliError::Usage {
        field: "--procfile",
        rule: format!(
            "no {PROCFILE_NAME}, and no {TOML_NAME} with a [processes] table, in {}; write one \
             (web: python3 -m http.server $PORT) or name it with --procfile",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}

/// The first of portwarden.toml (with a `[processes]` table) and Procfile in each of `dirs`;
/// None when there is neither. A file that is there but wrong is an error.
pub fn find(dirs: &[&Path]) -> Result<Option<Processes>, CliError> {
    let read = |f: &Path| std::fs::read_to_string(f).map_err(|e| bad(f, e));
    for dir in dirs {
        let toml = dir.join(TOML_NAME);
        if toml.is_file() {
            if let Some(list) = from_toml(&read(&toml)?).map_err(|e| bad(&toml, e))? {
                return checked(&toml, list).map(Some);
            }
        }
        let procfile = dir.join(PROCFILE_NAME);
        if procfile.is_file() {
            let list = from_procfile(&read(&procfile)?).map_err(|e| bad(&procfile, e))?;
            return checked(&procfile, list).map(Some);
        }
    }
    Ok(None)
}

fn checked(file: &Path, list: Vec<Process>) -> Result<Processes, CliError> {
    if list.is_empty() {
        return Err(bad(file, "names no process"));
    }
    Ok(Processes {
        file: file.to_path_buf(),
        list,
    })
}

/// foreman's format: `name: command`; blank lines and `#` comments skipped.
pub fn from_procfile(text: &str) -> Result<Vec<Process>, String> {
    let mut list: Vec<Process> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |rule: String| format!("line {}: {rule}", i + 1);
        let (name, command) = line
            .split_once(':')
            .ok_or_else(|| at("expected `name: command`".into()))?;
        let (name, command) = (name.trim(), command.trim());
        valid_service(name).map_err(|rule| at(format!("process name '{name}' {rule}")))?;
        if command.is_empty() {
            return Err(at(format!("process '{name}' has no command")));
        }
        if list.iter().any(|p| p.name == name) {
            return Err(at(format!("process '{name}' is named twice")));
        }
        list.push(Process {
            name: name.to_string(),
            command: command.to_string(),
            listen_fds: false,
            ready: None,
        });
    }
    Ok(list)
}

#[derive(Debug, Deserialize)]
struct TomlFile {
    processes: Option<BTreeMap<String, TomlProcess>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TomlProcess {
    Command(String),
    Table(TomlTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTable {
    command: String,
    #[serde(default)]
    listen_fds: bool,
    ready: Option<String>,
}

/// The `[processes]` table of portwarden.toml (None: the file has none), by name.
pub fn from_toml(text: &str) -> Result<Option<Vec<Process>>, String> {
    let file: TomlFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let Some(table) = file.processes else {
        return Ok(None);
    };
    let mut list = Vec::new();
    for (name, p) in table {
        valid_service(&name).map_err(|rule| format!("processes.{name}: the name {rule}"))?;
        let (command, listen_fds, ready) = match p {
            TomlProcess::Command(c) => (c, false, None),
            TomlProcess::Table(t) => (t.command, t.listen_fds, t.ready),
        };
        if command.trim().is_empty() {
            return Err(format!("processes.{name}: the command is empty"));
        }
        if let Some(path) = &ready {
            super::wait::valid_http_path(path)
                .map_err(|rule| format!("processes.{name}.ready: {rule}"))?;
        }
        list.push(Process {
            name,
            command,
            listen_fds,
            ready,
        });
    }
    Ok(Some(list))
}

/// `KEY=VALUE` lines, as foreman and docker compose read `.env`: `export ` before a line is
/// allowed, `#` starts a comment line, a value in single quotes is taken as is, one in double
/// quotes knows `\n`, `\"` and `\\`.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", i + 1))?;
        let key = key.trim();
        let key_ok = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok {
            return Err(format!(
                "line {}: '{}' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                i + 1,
                crate::text::printable(key)
            ));
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.to_string()
        } else if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            unescape(v)
        } else {
            value.to_string()
        };
        vars.push((key.to_string(), value));
    }
    Ok(vars)
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_procfile_reads_as_foreman_reads_it() {
        let list = from_procfile(
            "# the app\nweb: python3 -m http.server $PORT\n\nworker:   ./work.sh --fast\n",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name, "web");
        assert_eq!(list[0].command, "python3 -m http.server $PORT");
        assert_eq!(list[1].command, "./work.sh --fast");
        assert!(!list[0].listen_fds);
        let err = from_procfile("web: a\nweb: b\n").unwrap_err();
        assert_eq!(err, "line 2: process 'web' is named twice");
        assert!(from_procfile("just a command\n")
            .unwrap_err()
            .starts_with("line 1: expected"));
        assert!(from_procfile("we b: x\n").unwrap_err().contains("'we b'"));
        assert!(from_procfile("web:\n").unwrap_err().contains("no command"));
    }

    #[test]
    fn portwarden_toml_says_which_processes_take_a_socket() {
        let list = from_toml(
            "[processes]\nworker = \"./w.sh\"\nweb = { command = \"gunicorn app:app\", \
             listen_fds = true, ready = \"/health\" }\n",
        )
        .unwrap()
        .unwrap();
        let web = list.iter().find(|p| p.name == "web").unwrap();
        assert!(web.listen_fds);
        assert_eq!(web.ready.as_deref(), Some("/health"));
        assert!(!list.iter().find(|p| p.name == "worker").unwrap().listen_fds);
        assert_eq!(from_toml("range = \"8000-8100\"\n").unwrap(), None);
        let err = from_toml("[processes]\nweb = { command = \"x\", listen = true }\n").unwrap_err();
        assert!(err.contains("listen"), "{err}");
        let err =
            from_toml("[processes]\nweb = { command = \"x\", ready = \"health\" }\n").unwrap_err();
        assert!(err.contains("processes.web.ready"), "{err}");
    }

    #[test]
    fn env_files_read_as_compose_reads_them() {
        let vars = parse_env_file(
            "# settings\nexport A=1\nB = two words \nC='$NOT expanded'\nD=\"line\\nnext\"\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "$NOT expanded".into()),
                ("D".into(), "line\nnext".into()),
            ]
        );
        assert!(parse_env_file("1A=x\n").unwrap_err().contains("line 1"));
        assert!(parse_env_file("novalue\n").is_err());
    }
}
