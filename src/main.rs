//! `portwarden`: `serve` runs the daemon; the other subcommands are clients of it.

use std::process::ExitCode;

use portwarden::cli::{exit, run_check, run_client, Cli, Command};
use portwarden::config::Config;
use portwarden::{logging, server};

fn main() -> ExitCode {
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage(e)),
    };
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
                let stop = portwarden::signals::StopSignals::install();
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
                stop.wait().await;
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
            ExitCode::from(run_check(args))
        }
        Command::Run(args) => runtime.block_on(portwarden::cli::run(args)),
        #[cfg(unix)]
        Command::Up(args) => runtime.block_on(portwarden::cli::up(args)),
        _ => {
            let json = cli.command.json();
            match runtime.block_on(run_client(cli)) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    if json {
                        portwarden::cli::write_stdout(format_args!(
                            "{}\n",
                            serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
                        ));
                    } else {
                        eprintln!("{}", e.to_text());
                    }
                    ExitCode::from(e.exit_code())
                }
            }
        }
    }
}

/// Help and version print and succeed; a usage error is exit 64 (a JSON error with --json).
fn usage(e: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return exit::OK;
    }
    if std::env::args().any(|a| a == "--json") {
        let message = e.render().to_string();
        let message = message.trim().trim_start_matches("error: ");
        let first = message.lines().next().unwrap_or_default();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "code": tonic::Code::InvalidArgument as i32,
                "message": first,
                "details": [],
            }))
            .unwrap_or_default()
        );
    } else {
        let _ = e.print();
    }
    exit::USAGE
}
