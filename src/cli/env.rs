//! `portwarden env [NAME...]`: the project's port for each name as `PORT_<NAME>` variables, for
//! `eval "$(portwarden env web api)"`, a docker compose `.env` file, fish or a program. Each port
//! is a project port (allocated when the project has none for that name, kept until
//! `portwarden forget`); without names, the processes of the Procfile (or portwarden.toml), else
//! every name the project remembers.

use std::path::Path;

use portwarden_client::proto::ports_service_client::PortsServiceClient;

use super::commands::{print_json, CliError};
use super::connect::connect;
use super::exit;
use super::project::{env_vars, PortRequest, ProjectArg};

/// How the variables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    /// `export PORT_WEB=8003` (sh, bash, zsh: eval "$(portwarden env web)")
    Shell,
    /// `PORT_WEB=8003` (.env files: docker compose, foreman, honcho)
    Dotenv,
    /// `set -gx PORT_WEB 8003` (fish: portwarden env web --format fish | source)
    Fish,
    /// `{"PORT_WEB": 8003}`
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    /// The names of the ports (web api) [default: the processes of the Procfile or
    /// portwarden.toml here, else every name the project remembers]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArg,
    /// How to write the variables
    #[arg(long, value_enum, default_value_t = EnvFormat::Shell)]
    pub format: EnvFormat,
    #[command(flatten)]
    pub conn: super::CommandClientArgs,
}

pub async fn run(args: EnvArgs) -> Result<u8, CliError> {
    let project = args.project.resolve()?;
    let (_, channel) = connect(&args.conn).await?;
    let mut client = PortsServiceClient::new(channel);
    let names = match args.names.is_empty() {
        false => args.names.clone(),
        true => default_names(&mut client, &project).await?,
    };
    if names.is_empty() {
        return Err(CliError::Usage {
            field: "NAME",
            rule: format!(
                "name the ports (portwarden env web api): there is no Procfile here and {project} \
                 remembers no port yet"
            ),
        });
    }
    let vars = env_vars(names.iter().map(String::as_str))?;
    let mut ports = Vec::with_capacity(names.len());
    for name in &names {
        let granted = super::project::allocate(
            &mut client,
            PortRequest {
                project: &project,
                name,
                pid: None,
                purpose: "portwarden env".into(),
            },
        )
        .await?;
        ports.push(granted.port);
    }
    let pairs = vars.iter().zip(&ports);
    match args.format {
        EnvFormat::Json => print_json(&serde_json::Value::Object(
            pairs.map(|(v, p)| (v.clone(), (*p).into())).collect(),
        )),
        EnvFormat::Shell => pairs.for_each(|(v, p)| outln!("export {v}={p}")),
        EnvFormat::Dotenv => pairs.for_each(|(v, p)| outln!("{v}={p}")),
        EnvFormat::Fish => pairs.for_each(|(v, p)| outln!("set -gx {v} {p}")),
    }
    Ok(exit::OK)
}

/// The processes of the Procfile here (or at the project's root), else the names the project
/// remembers.
async fn default_names(
    client: &mut PortsServiceClient<tonic::transport::Channel>,
    project: &str,
) -> Result<Vec<String>, CliError> {
    let here = std::env::current_dir().unwrap_or_default();
    if let Some(found) = super::procfile::find(&[&here, Path::new(project)])? {
        return Ok(found.list.into_iter().map(|p| p.name).collect());
    }
    Ok(super::project::list(client, project)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect())
}
