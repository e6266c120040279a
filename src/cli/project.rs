//! Projects on the command line: which directory `--project` names (the git worktree it lies
//! in, else the directory itself), the `PORT_<NAME>` variable of each name, and the calls every
//! project command makes.
// Windows has no `up`, which reads Procfiles and keeps the lease tokens.
#![cfg_attr(not(unix), allow(dead_code))]

use std::path::{Path, PathBuf};

use tonic::transport::Channel;

use portwarden_client::proto::ports_service_client::PortsServiceClient;
use portwarden_client::proto::{AllocateRequest, ListProjectPortsRequest, ProjectPort};

use super::commands::CliError;

/// `--project [DIR]`, shared by the project commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProjectArg {
    /// The project: the git worktree DIR lies in, else DIR itself [default: the current
    /// directory's]
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        default_missing_value = ".",
    )]
    pub project: Option<PathBuf>,
}

impl ProjectArg {
    /// The project's directory as the daemon records it.
    pub fn resolve(&self) -> Result<String, CliError> {
        resolve(self.project.as_deref().unwrap_or(Path::new(".")))
    }
}

/// The project `dir` belongs to: the nearest directory at or above it that holds `.git` (a
/// repository or a worktree of one), else `dir`; absolute, symbolic links resolved.
pub fn resolve(dir: &Path) -> Result<String, CliError> {
    let usage = |rule: String| CliError::Usage {
        field: "--project",
        rule,
    };
    let canonical =
        std::fs::canonicalize(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    if !canonical.is_dir() {
        return Err(usage(format!("{} is not a directory", dir.display())));
    }
    let root = canonical
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&canonical);
    root.to_str().map(str::to_string).ok_or_else(|| {
        usage(format!(
            "{} is not valid UTF-8, which a project's path must be",
            root.display()
        ))
    })
}

/// `PORT_<NAME>`: the name upper-cased, every character outside [A-Z0-9] as '_'.
pub fn env_var(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("PORT_{tail}")
}

/// The variable of each name, refusing two names that would set the same one.
pub fn env_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, CliError> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for name in names {
        let var = env_var(name);
        if let Some((_, first)) = seen.iter().find(|(v, _)| *v == var) {
            return Err(CliError::Usage {
                field: "NAME",
                rule: format!("'{first}' and '{name}' would both set {var}; rename one of them"),
            });
        }
        seen.push((var, name));
    }
    Ok(seen.into_iter().map(|(v, _)| v).collect())
}

/// What a project port allocation asks for.
pub struct PortRequest<'a> {
    pub project: &'a str,
    pub name: &'a str,
    /// The owning process (`portwarden up` names itself); None: kept until forgotten.
    pub pid: Option<i32>,
    pub purpose: String,
}

/// One project port, as the daemon granted it.
#[derive(Debug, Clone)]
pub struct Granted {
    pub port: u16,
    pub token: String,
    /// An allocation the project held already (not ours to release).
    pub reused: bool,
}

pub async fn allocate(
    client: &mut PortsServiceClient<Channel>,
    req: PortRequest<'_>,
) -> Result<Granted, CliError> {
    let started_by = std::env::var("USER").unwrap_or_else(|_| "portwarden-cli".into());
    let reply = client
        .allocate(AllocateRequest {
            service: req.name.to_string(),
            purpose: req.purpose,
            started_by,
            pid: req.pid,
            project: req.project.to_string(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let a = reply.allocation.unwrap_or_default();
    Ok(Granted {
        port: u16::try_from(a.port).unwrap_or_default(),
        token: reply.lease_token,
        reused: reply.reused,
    })
}

pub async fn list(
    client: &mut PortsServiceClient<Channel>,
    project: &str,
) -> Result<Vec<ProjectPort>, CliError> {
    Ok(client
        .list_project_ports(ListProjectPortsRequest {
            project: project.to_string(),
        })
        .await?
        .into_inner()
        .ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_variables_and_collisions_are_refused() {
        assert_eq!(env_var("web"), "PORT_WEB");
        assert_eq!(env_var("api-v2.internal"), "PORT_API_V2_INTERNAL");
        assert_eq!(env_vars(["web", "api"]).unwrap(), ["PORT_WEB", "PORT_API"]);
        let err = env_vars(["web-1", "web.1"]).unwrap_err().to_string();
        assert!(
            err.contains("'web-1' and 'web.1' would both set PORT_WEB_1"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_in_a_worktree_is_that_worktree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        // A worktree's .git is a file.
        std::fs::write(root.join(".git"), "gitdir: /elsewhere\n").unwrap();
        let canonical = std::fs::canonicalize(&root).unwrap();
        assert_eq!(
            resolve(&root.join("src/deep")).unwrap(),
            canonical.to_str().unwrap()
        );
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(
            resolve(&plain).unwrap(),
            std::fs::canonicalize(&plain).unwrap().to_str().unwrap()
        );
        assert!(resolve(&dir.path().join("missing")).is_err());
    }
}
