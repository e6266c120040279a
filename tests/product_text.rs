//! What users read: every flag and argument has help text; client commands do not list the
//! daemon's options and the daemon does not list theirs; no internal words in help, the README
//! or BENCHMARKS.md; the release binary ships without debug info.

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portwarden")
}

fn help(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn repo(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// Words from the workshop, not for users.
const INTERNAL: [&str; 7] = [
    "seed",
    "issue #",
    "lands with",
    "lands later",
    "TODO",
    "FIXME",
    "not built yet",
];

#[test]
fn every_flag_and_argument_has_help() {
    let cli = portwarden::cli::Cli::command();
    let mut missing = Vec::new();
    for cmd in std::iter::once(&cli).chain(cli.get_subcommands()) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{} {id}", cmd.get_name()));
            }
        }
    }
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

#[test]
fn client_and_daemon_options_stay_apart() {
    let serve = help(&["serve"]);
    for client_only in [
        "--addr",
        "--wait",
        "--ca ",
        "--client-cert",
        "--json",
        "--token",
    ] {
        assert!(
            !serve.contains(client_only),
            "serve --help lists {client_only}:\n{serve}"
        );
    }
    for command in [
        "allocate", "release", "renew", "get", "list", "who", "status", "watch", "history",
        "health", "ports", "forget", "env", "up", "wait",
    ] {
        let text = help(&[command]);
        for daemon_only in [
            "--state",
            "--range",
            "--listen",
            "--unix-socket",
            "--quarantine",
            "--blocking-checks",
            "--netns-lock",
        ] {
            assert!(
                !text.contains(daemon_only),
                "{command} --help lists {daemon_only}:\n{text}"
            );
        }
        assert!(text.contains("--addr"), "{command} takes --addr:\n{text}");
    }
    // The connection options are still accepted before the command.
    let out = Command::new(bin())
        .args(["--addr", "http://127.0.0.1:1", "list"])
        .env_remove("PORTWARDEN_ADDR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http://127.0.0.1:1"), "{err}");
    // ... but not before the daemon's.
    let out = Command::new(bin())
        .args(["--addr", "http://127.0.0.1:1", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn no_internal_words_reach_users() {
    let cli = portwarden::cli::Cli::command();
    let mut texts = vec![
        ("README.md".to_string(), repo("README.md")),
        ("BENCHMARKS.md".to_string(), repo("BENCHMARKS.md")),
        ("CHANGELOG.md".to_string(), repo("CHANGELOG.md")),
        ("docs/cli-json.md".to_string(), repo("docs/cli-json.md")),
        ("docs/openapi.json".to_string(), repo("docs/openapi.json")),
        ("portwarden --help".to_string(), help(&[])),
    ];
    // What client users read: the clients' READMEs, docstrings and doc comments, the example.
    for file in [
        "clients/python/README.md",
        "clients/python/examples/serve.py",
        "clients/rust/src/lib.rs",
        "clients/rust/src/hardening.rs",
        "clients/pytest-portwarden/README.md",
        "clients/node/README.md",
    ] {
        texts.push((file.to_string(), repo(file)));
    }
    for (dir, ext) in [
        ("clients/python/portwarden", "py"),
        ("clients/pytest-portwarden/pytest_portwarden", "py"),
        ("clients/node/src", "ts"),
    ] {
        let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&package).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == ext) {
                let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
                texts.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    for cmd in cli.get_subcommands() {
        let name = cmd.get_name();
        if name != "help" {
            texts.push((format!("{name} --help"), help(&[name])));
        }
    }
    for (what, text) in &texts {
        for word in INTERNAL {
            let found = text
                .lines()
                .find(|l| l.to_lowercase().contains(&word.to_lowercase()));
            assert!(found.is_none(), "{what} says {word:?}: {}", found.unwrap());
        }
    }
}

#[test]
fn the_release_binary_ships_without_debug_info() {
    let manifest: toml::Table = repo("Cargo.toml").parse().unwrap();
    let release = &manifest["profile"]["release"];
    let stripped = matches!(
        release.get("strip").and_then(|v| v.as_str()),
        Some("debuginfo" | "symbols")
    ) || release.get("strip").and_then(|v| v.as_bool()) == Some(true);
    let split = release.get("split-debuginfo").and_then(|v| v.as_str()) == Some("packed");
    assert!(
        stripped || split,
        "[profile.release] must strip debug info or split it out: {release:?}"
    );
    assert!(
        repo("README.md").contains("The release binary is about"),
        "README notes the binary's size"
    );
}
