//! state_storage: can the daemon record changes? Free space on the filesystem of the state
//! database (statvfs), and whether the last write failed (a full disk, a failing one). Critical
//! when writes fail or space is nearly gone: every allocation would be refused anyway, so the
//! refusal says why up front.

use std::path::Path;

use super::check::{names, CheckResult, CheckStatus};
use super::thresholds::Thresholds;

const MIB: u64 = 1024 * 1024;

/// Free and total bytes of the filesystem holding `dir`.
#[cfg(unix)]
fn space(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs is plain old data; c is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let unit = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

#[cfg(not(unix))]
fn space(_dir: &Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("not measured on this platform"))
}

pub fn state_storage(state: &Path, write_error: Option<&str>, t: &Thresholds) -> CheckResult {
    let dir = state
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let measured = space(dir);
    let mut check = match (&measured, write_error) {
        (_, Some(e)) => CheckResult::new(
            names::STATE_STORAGE,
            CheckStatus::Critical,
            format!("writes to the state database fail: {e}"),
        )
        .with_recommendation("free space on that filesystem (or fix the disk); the daemon notices by itself once writes work"),
        (Ok((free, _)), None) if *free < t.state_free_critical_mib * MIB => CheckResult::new(
            names::STATE_STORAGE,
            CheckStatus::Critical,
            format!("only {} KiB free where the state lives", free / 1024),
        )
        .with_recommendation("free space on that filesystem: the next changes may not be recorded"),
        (Ok((free, _)), None) if *free < t.state_free_warning_mib * MIB => CheckResult::new(
            names::STATE_STORAGE,
            CheckStatus::Warning,
            format!("{} MiB free where the state lives", free / MIB),
        ),
        (Ok((free, _)), None) => CheckResult::new(
            names::STATE_STORAGE,
            CheckStatus::Ok,
            format!("{} MiB free; writes work", free / MIB),
        ),
        (Err(e), None) => CheckResult::new(
            names::STATE_STORAGE,
            CheckStatus::Info,
            format!("free space not measured ({e}); writes work"),
        ),
    };
    check.set_field("path", state.display().to_string());
    if let Ok((free, total)) = measured {
        check.set_field("free_bytes", free);
        check.set_field("total_bytes", total);
    }
    check.set_field("writes_fail", write_error.is_some());
    check
}
