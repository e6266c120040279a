//! The owners' processes as sysinfo sees them: name, command line, resident memory and CPU use
//! since the previous pass. One `System` lives across passes (CPU use is a difference).

use std::collections::HashMap;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use crate::ports::ProcessStats;

/// Longest command line kept, in bytes.
const MAX_CMDLINE: usize = 256;

pub struct ProcessMonitor {
    system: Option<System>,
}

impl Default for ProcessMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessMonitor {
    pub fn new() -> Self {
        let system = System::new()
            .map_err(|e| tracing::warn!(error = %e, "process statistics unavailable"))
            .ok();
        Self { system }
    }

    /// Statistics of each of `pids` still running.
    pub fn sample(&mut self, pids: &[i32]) -> HashMap<i32, ProcessStats> {
        let Some(system) = self.system.as_mut() else {
            return HashMap::new();
        };
        let wanted: Vec<Pid> = pids
            .iter()
            .filter(|p| **p > 0)
            .map(|p| Pid::from_u32(*p as u32))
            .collect();
        if wanted.is_empty() {
            return HashMap::new();
        }
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&wanted),
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                // Always: an owner that execs after allocating (a script that becomes the
                // server) must not keep its old command line.
                .with_cmd(UpdateKind::Always),
        );
        wanted
            .iter()
            .filter_map(|pid| {
                let p = system.process(*pid)?;
                let cmdline = crate::text::truncate_on_char(
                    p.cmd()
                        .iter()
                        .map(|a| a.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(" "),
                    MAX_CMDLINE,
                );
                // Names and command lines are the process's own choice: escape what could
                // forge a log line or drive a terminal.
                Some((
                    pid.as_u32() as i32,
                    ProcessStats {
                        name: crate::text::printable(&p.name().to_string_lossy()).into_owned(),
                        cmdline: crate::text::printable(&cmdline).into_owned(),
                        rss_bytes: p.memory(),
                        cpu_percent: p.cpu_usage(),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_described() {
        let me = std::process::id() as i32;
        let stats = ProcessMonitor::new().sample(&[me, i32::MAX]);
        let mine = stats.get(&me).expect("our process");
        assert!(mine.rss_bytes > 0);
        assert!(!mine.name.is_empty());
        assert!(!stats.contains_key(&i32::MAX));
    }
}
