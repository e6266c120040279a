//! File descriptor headroom: RLIMIT_NOFILE of this process, descriptors it has open
//! (/proc/self/fd), and the system-wide table (/proc/sys/fs/file-nr). On Windows: the process's
//! handle count (GetProcessHandleCount) against the per-process handle limit.

use super::check::{names, CheckResult, CheckStatus};
use super::thresholds::Thresholds;

#[cfg(any(target_os = "linux", windows))]
use super::check::{percent, round1};
#[cfg(target_os = "linux")]
use super::procfs;

/// RLIMIT_NOFILE as `(soft, hard)`; `None` means unlimited.
#[cfg(unix)]
pub fn nofile_limits() -> std::io::Result<(Option<u64>, Option<u64>)> {
    // SAFETY: rlimit is plain old data; getrlimit fills it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // rlim_t is u64 on Linux but not on every platform.
    #[allow(clippy::unnecessary_cast)]
    let finite = |value: libc::rlim_t| (value != libc::RLIM_INFINITY).then_some(value as u64);
    Ok((finite(limit.rlim_cur), finite(limit.rlim_max)))
}

/// Descriptors open in this process. Since Linux 6.2 `stat("/proc/self/fd")` reports the count
/// as the directory size (O(1) however many descriptors are open); older kernels report 0, and
/// then the directory is listed (minus the descriptor used to list it).
#[cfg(target_os = "linux")]
pub fn open_descriptors() -> std::io::Result<u64> {
    let size = std::fs::metadata("/proc/self/fd")?.len();
    if size > 0 {
        return Ok(size);
    }
    let entries = std::fs::read_dir("/proc/self/fd")?.count() as u64;
    Ok(entries.saturating_sub(1))
}

#[cfg(any(target_os = "linux", windows))]
fn usage_status(usage_percent: f64, thresholds: &Thresholds) -> CheckStatus {
    if usage_percent > thresholds.fd_usage_critical_percent {
        CheckStatus::Critical
    } else if usage_percent > thresholds.fd_usage_warning_percent {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    }
}

/// Soft limit below `fd_soft_limit_min` or use above `fd_usage_warning_percent`: warning;
/// above `fd_usage_critical_percent`: critical. Unreadable sources are reported, not fatal.
#[cfg(target_os = "linux")]
pub fn file_descriptors(thresholds: &Thresholds) -> CheckResult {
    let mut result = CheckResult::new(
        names::FILE_DESCRIPTORS,
        CheckStatus::Ok,
        "File descriptor limits OK",
    )
    .with_field("platform", "Linux");
    let mut problems = Vec::new();

    let limits = nofile_limits();
    let open = open_descriptors();
    match &limits {
        Ok((soft, hard)) => {
            result.set_field(
                "soft_limit",
                soft.map_or("unlimited".into(), serde_json::Value::from),
            );
            result.set_field(
                "hard_limit",
                hard.map_or("unlimited".into(), serde_json::Value::from),
            );
            if let Some(soft) = *soft {
                if soft < thresholds.fd_soft_limit_min {
                    result.escalate(
                        CheckStatus::Warning,
                        format!(
                            "Low file descriptor limit: soft RLIMIT_NOFILE {soft} < {}",
                            thresholds.fd_soft_limit_min
                        ),
                    );
                    result.recommendation = Some(format!(
                        "Raise the limit (ulimit -n, LimitNOFILE= in the systemd unit) to at least {}",
                        thresholds.fd_soft_limit_min
                    ));
                }
            }
        }
        Err(error) => problems.push(format!("getrlimit(RLIMIT_NOFILE): {error}")),
    }
    match &open {
        Ok(count) => result.set_field("current_handles", *count),
        Err(error) => problems.push(format!("/proc/self/fd: {error}")),
    }
    if let (Ok((Some(soft), _)), Ok(count)) = (&limits, &open) {
        let usage = percent(*count, *soft);
        result.set_field("usage_percent", round1(usage));
        let status = usage_status(usage, thresholds);
        result.escalate(
            status,
            format!("{count} of {soft} descriptors in use ({:.1}%)", usage),
        );
        if status > CheckStatus::Ok {
            result.recommendation = Some(
                "Close leaked descriptors or raise RLIMIT_NOFILE (LimitNOFILE= in the unit)".into(),
            );
        }
    }

    match procfs::read_numbers(procfs::FILE_NR).as_deref() {
        Ok([allocated, _unused, max, ..]) => {
            result.set_field("system_allocated", *allocated);
            result.set_field("system_max", *max);
            let usage = percent(*allocated, *max);
            result.set_field("system_usage_percent", round1(usage));
            let status = usage_status(usage, thresholds);
            result.escalate(
                status,
                format!("system file table {allocated} of {max} ({usage:.1}%)"),
            );
            if status > CheckStatus::Ok {
                result.recommendation =
                    Some("Raise fs.file-max or find the process leaking descriptors".into());
            }
        }
        Ok(_) => problems.push(format!("{}: unexpected format", procfs::FILE_NR)),
        Err(error) => problems.push(error.to_string()),
    }

    if !problems.is_empty() {
        result.set_field("errors", problems.clone());
        result.escalate(
            CheckStatus::Warning,
            format!("could not measure descriptors: {}", problems.join("; ")),
        );
    }
    result
}

/// Windows has no descriptor limit to tune: a process may hold up to 2^24 handles (the kernel's
/// per-process handle table limit). Use above `fd_usage_warning_percent` of it: warning; above
/// `fd_usage_critical_percent`: critical.
#[cfg(windows)]
pub const WINDOWS_HANDLE_LIMIT: u64 = 1 << 24;

/// This process's open handles, from GetProcessHandleCount.
#[cfg(windows)]
pub fn open_handles() -> std::io::Result<u64> {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};
    let mut count = 0u32;
    // SAFETY: the pseudo-handle of the current process needs no closing; count is writable.
    if unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(u64::from(count))
}

#[cfg(windows)]
pub fn file_descriptors(thresholds: &Thresholds) -> CheckResult {
    let mut result = CheckResult::new(names::FILE_DESCRIPTORS, CheckStatus::Ok, "")
        .with_field("platform", "Windows")
        .with_field("source", "GetProcessHandleCount")
        .with_field("handle_limit", WINDOWS_HANDLE_LIMIT);
    match open_handles() {
        // A running process always holds handles: 0 means the count was not kept (Wine).
        Ok(0) => {
            result.note = "handle count not reported (GetProcessHandleCount answered 0)".into();
            result.status = CheckStatus::Info;
        }
        Ok(count) => {
            let usage = percent(count, WINDOWS_HANDLE_LIMIT);
            result.note = format!("{count} handles (Windows)");
            result.set_field("current_handles", count);
            result.set_field("usage_percent", round1(usage));
            let status = usage_status(usage, thresholds);
            if status > CheckStatus::Ok {
                result.escalate(
                    status,
                    format!("{count} of {WINDOWS_HANDLE_LIMIT} handles in use ({usage:.1}%)"),
                );
                result.recommendation = Some("Find the handles this process leaks".into());
            }
        }
        Err(error) => {
            result.set_field("errors", vec![format!("GetProcessHandleCount: {error}")]);
            result.escalate(
                CheckStatus::Warning,
                format!("could not count handles: {error}"),
            );
        }
    }
    result
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn file_descriptors(_thresholds: &Thresholds) -> CheckResult {
    CheckResult::unsupported(names::FILE_DESCRIPTORS)
}
