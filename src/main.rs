//! `portwarden`: `serve` runs the daemon; the other subcommands are clients of it.

use std::process::ExitCode;

use clap::Parser;

use portwarden::cli::{run_client, Cli, Command};
use portwarden::config::Config;
use portwarden::{logging, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(ref args) => {
            let cfg = match Config::resolve(args) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            logging::init(cfg.log_format);
            runtime.block_on(async {
                let daemon = match server::start(cfg).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!("cannot start: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                server::termination_signal().await;
                match daemon.shutdown().await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("shutdown: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        _ => match runtime.block_on(run_client(cli)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
