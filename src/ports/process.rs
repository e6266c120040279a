//! Process identity from /proc: a PID plus its start time names one process even when the kernel
//! reuses the PID later.

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or None when the
/// process does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); starttime is field 22, i.e. index 19 here.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None; // a zombie has exited; only its exit status remains
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process identified by (pid, start time) is still the one running.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    process_start_time(pid) == Some(start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_bogus_pid_is_not() {
        let me = std::process::id() as i32;
        let start = process_start_time(me).expect("own start time");
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert_eq!(process_start_time(i32::MAX), None);
        assert_eq!(process_start_time(-1), None);
    }
}
