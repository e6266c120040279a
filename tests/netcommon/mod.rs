//! Helpers shared by the integration tests: reading `ss -tan` as the reference, and running a
//! test body in a child process whose privileges or limits were changed before exec.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

#[path = "../support/nobody.rs"]
mod nobody;
#[allow(unused_imports)]
pub use nobody::{drop_to_nobody, executable_by_nobody};

/// Environment variable telling a re-executed test binary that it is the child.
pub const CHILD_ENV: &str = "PORTWARDEN_TEST_CHILD";
const CHILD_MARKER: &str = "PORTWARDEN_CHILD_RESULT ";

/// `ss -tanH [filter]`: number of sockets per ss state name (`ESTAB`, `TIME-WAIT`, ...).
pub fn ss_counts(filter: Option<&str>) -> BTreeMap<String, u64> {
    let mut command = Command::new("ss");
    command.arg("-tanH");
    if let Some(filter) = filter {
        command.arg(filter);
    }
    let output = command.output().expect("ss runs");
    assert!(output.status.success(), "ss failed: {output:?}");
    let mut counts = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some(state) = line.split_whitespace().next() {
            *counts.entry(state.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// Sockets with `port` at either end, per ss state name.
pub fn ss_counts_on_port(port: u16) -> BTreeMap<String, u64> {
    ss_counts(Some(&format!("( sport = :{port} or dport = :{port} )")))
}

pub fn ss_total() -> u64 {
    ss_counts(None).values().sum()
}

/// True when this process is the re-executed child.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Prints a value for the parent to collect (child side).
pub fn report_to_parent(value: &serde_json::Value) {
    println!("{CHILD_MARKER}{value}");
}

/// Re-runs test `test_name` of the current test binary in a child process, calling `before_exec`
/// in the child after fork (e.g. setuid, setrlimit), and returns what the child reported.
pub fn run_test_in_child<F>(test_name: &str, before_exec: F) -> serde_json::Value
where
    F: FnMut() -> io::Result<()> + Send + Sync + 'static,
{
    let (_guard, executable) =
        executable_by_nobody(&std::env::current_exe().expect("test binary path"));
    let mut command = Command::new(executable);
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1");
    // SAFETY: the closures passed by the tests only make async-signal-safe syscalls.
    unsafe {
        command.pre_exec(before_exec);
    }
    let output = command.output().expect("child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| {
            line.find(CHILD_MARKER)
                .map(|at| &line[at + CHILD_MARKER.len()..])
        })
        .unwrap_or_else(|| {
            panic!(
                "child reported nothing; status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    serde_json::from_str(line).expect("child result is JSON")
}

/// Sets RLIMIT_NOFILE's soft limit. For `run_test_in_child`.
pub fn lower_nofile_soft_limit(soft: u64) -> io::Result<()> {
    // SAFETY: plain syscalls in the forked child before exec.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        limit.rlim_cur = soft as libc::rlim_t;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
