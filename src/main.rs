//! `portwarden`: `serve` runs the daemon; the other subcommands are clients of it.

use std::process::ExitCode;

use clap::Parser;

use portwarden::cli::{run_client, Cli, Command};
use portwarden::config::Config;
use portwarden::{logging, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon serves many clients at once; a client makes one call at a time, which a
    // single-threaded runtime does with less latency (no cross-thread wake-ups).
    let mut builder = match cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
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
                        return if e.is_config() {
                            ExitCode::from(2)
                        } else {
                            ExitCode::FAILURE
                        };
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
        Command::Check(ref args) => {
            logging::init(portwarden::config::LogFormat::Text);
            let cfg = portwarden::network::NetworkConfig {
                tls_cert: args.tls_cert.clone(),
                tls_key: args.tls_key.clone(),
                ..Default::default()
            };
            let report = portwarden::network::run_report(&cfg, args.port);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_seed_json()).unwrap_or_default()
                );
            } else {
                print!("{}", portwarden::cli::check_report(&report, args.port));
            }
            if report.status == portwarden::network::OverallStatus::Critical {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Run(args) => runtime.block_on(portwarden::cli::run(args, cli.addr.as_deref())),
        _ => match runtime.block_on(run_client(cli)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
