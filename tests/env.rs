//! `portwarden env`: the project's ports as variables, read back by the programs they are for
//! (sh's eval, fish's syntax checked by its shape, a .env file read by `up`), the names from a
//! Procfile when none are given, and names that would clash refused.

mod common;

use std::process::Command;

use common::{bin, cli, ChildDaemon};

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_format_gives_the_same_ports_and_sh_can_eval_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let dir = dir.to_str().unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35200-35209", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let json: serde_json::Value = serde_json::from_str(&stdout(&cli(
        &addr,
        &["env", "web", "api-v2", "--project", dir, "--format", "json"],
    )))
    .unwrap();
    let (web, api) = (
        json["PORT_WEB"].as_u64().unwrap(),
        json["PORT_API_V2"].as_u64().unwrap(),
    );
    assert_ne!(web, api);
    let shell = stdout(&cli(&addr, &["env", "web", "api-v2", "--project", dir]));
    assert_eq!(
        shell,
        format!("export PORT_WEB={web}\nexport PORT_API_V2={api}\n")
    );
    let dotenv = stdout(&cli(
        &addr,
        &["env", "web", "--project", dir, "--format", "dotenv"],
    ));
    assert_eq!(dotenv, format!("PORT_WEB={web}\n"));
    let fish = stdout(&cli(
        &addr,
        &["env", "web", "--project", dir, "--format", "fish"],
    ));
    assert_eq!(fish, format!("set -gx PORT_WEB {web}\n"));
    // eval "$(portwarden env web)" exports to what the shell starts.
    let script = format!(
        "eval \"$(\"$0\" env web api-v2 --project '{dir}')\" && sh -c 'echo $PORT_WEB $PORT_API_V2'"
    );
    let out = Command::new("sh")
        .args(["-c", &script, bin()])
        .env("PORTWARDEN_ADDR", &addr)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), format!("{web} {api}\n"));
    // Held until forgotten: the same ports in the list.
    let listed = stdout(&cli(&addr, &["ports", "--project", dir]));
    assert!(listed.contains(&format!("web     {web}")), "{listed}");
}

#[test]
fn without_names_the_procfile_says_which_and_clashing_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    std::fs::write(dir.join("Procfile"), "web: x\nworker: y\n").unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = ChildDaemon::spawn(state.path(), "35210-35215", &[]);
    let addr = format!("unix:{}", d.socket.display());
    let run = |args: &[&str]| {
        Command::new(bin())
            .arg("env")
            .args(args)
            .current_dir(&dir)
            .env("PORTWARDEN_ADDR", &addr)
            .output()
            .unwrap()
    };
    let out = stdout(&run(&["--format", "dotenv"]));
    let names: Vec<&str> = out.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(names, ["PORT_WEB", "PORT_WORKER"]);
    let out = run(&["web-1", "web.1"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("'web-1' and 'web.1' would both set PORT_WEB_1"));
    let out = run(&["bad name"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("service: must match"));
    // Nothing was allocated for the refused requests.
    assert_eq!(
        stdout(&cli(&addr, &["list", "--json"]))
            .matches("\"port\"")
            .count(),
        2
    );
}
