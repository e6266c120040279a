//! A second local account made for one test (`useradd`) and removed after it (`userdel`): the
//! attacker's own uid, with no privileges, as a real user of the host would be.
#![allow(dead_code)]

use std::process::Command;

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

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}
