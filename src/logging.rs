//! Log set-up: tracing to stderr, text or JSON, level from `RUST_LOG` (default info). Text logs
//! keep the seed's lines as they are; JSON logs are one object per line, with list fields as
//! JSON arrays and without the text lines' emoji (`json.rs`).

mod json;

pub use portwarden_core::throttle::OncePerSecond;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .event_format(json::JsonLines)
            .try_init(),
    };
}
