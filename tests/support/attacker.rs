//! A second local account made for one test (`useradd`) and removed after it (`userdel`): the
//! attacker's own uid, with no privileges, as a real user of the host would be.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

pub struct Attacker {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Attacker {
    /// A fresh system account; None (and a note) when the test cannot make one (not root, or
    /// no useradd).
    pub fn create(tag: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("needs root (to create a second account): skipped");
            return None;
        }
        let name = format!("pwat{}{}", tag, std::process::id() % 100_000);
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/bin/false",
                &name,
            ])
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("useradd {name} failed: skipped");
            return None;
        }
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, &name]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let attacker = Self {
            name,
            uid: uid.unwrap_or(0),
            gid: gid.unwrap_or(0),
        };
        // Dropped (and removed) if either lookup failed.
        (uid.is_some() && gid.is_some()).then_some(attacker)
    }

    /// `python3 -c script` as this account: the interpreter starts as root (it may live where
    /// only root can read, as under pyenv) and drops every group, then to this gid and uid,
    /// before the script's first line.
    pub fn python(&self, script: &str) -> Command {
        let script = format!(
            "import os, socket, struct, encodings.idna\n\
             os.setgroups([]); os.setgid({}); os.setuid({})\n{script}",
            self.gid, self.uid
        );
        let mut cmd = Command::new("python3");
        cmd.args(["-c", &script]);
        cmd
    }
}

/// The variable that makes a test binary run one role as the attacker (see `run_role`).
pub const ROLE_ENV: &str = "PORTWARDEN_TEST_ATTACKER_ROLE";

/// Whether this process was started by `run_role` for `role`.
pub fn is_role(role: &str) -> bool {
    std::env::var(ROLE_ENV).is_ok_and(|r| r == role)
}

/// A process of the attacker's role, killed when dropped; the temp dir keeps a copy of the test
/// binary alive when the account could not run it where it is.
pub struct RoleProcess {
    pub child: Child,
    _copy: Option<tempfile::TempDir>,
}

/// What the role printed from `prefix` to the end of that line (the test harness prints on the
/// same stdout, "test NAME ... " before the role's own words); the rest of its output is kept
/// flowing into the void.
pub fn role_says(role: &mut RoleProcess, prefix: &str) -> String {
    use std::io::BufRead;
    let out = role.child.stdout.take().expect("the role's stdout");
    let mut lines = std::io::BufReader::new(out).lines();
    let said = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.find(prefix).map(|at| l[at..].to_string()))
        .unwrap_or_default();
    std::thread::spawn(move || lines.for_each(drop));
    said
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Attacker {
    /// This test binary again, as this account, running only the test named `role` (which
    /// acts when [`is_role`] says so and returns at once otherwise), with `env` set. Its stdout
    /// is piped (the role says what it did there) and so is its stdin (the role holds what it
    /// made until its stdin closes or it is killed).
    pub fn run_role(&self, role: &str, env: &[(&str, String)]) -> RoleProcess {
        use std::os::unix::process::CommandExt;
        let me = std::env::current_exe().expect("the test binary");
        let (copy, binary) = crate::common::nobody::executable_by_nobody(&me);
        let mut cmd = Command::new(binary);
        cmd.args([role, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // std drops the supplementary groups when it changes the uid as root.
            .gid(self.gid)
            .uid(self.uid);
        RoleProcess {
            child: cmd.spawn().expect("the attacker's process"),
            _copy: copy,
        }
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}
