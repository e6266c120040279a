//! Running a binary as uid 65534 from a test that runs as root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `path` itself if every directory above it lets others through (uid 65534 can exec it), else a
/// copy in a fresh world-readable temp dir (kept alive by the returned guard). Checkouts under a
/// 0700 directory (`mktemp -d`) are common; a dropped-privilege child could not exec from there.
pub fn executable_by_nobody(path: &Path) -> (Option<tempfile::TempDir>, PathBuf) {
    let open_to_others = path
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if open_to_others {
        return (None, path.to_path_buf());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let copy = dir.path().join(path.file_name().expect("file name"));
    std::fs::copy(path, &copy).expect("copy the binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (Some(dir), copy)
}

/// For `pre_exec`: drop every group, then to gid and uid 65534.
pub fn drop_to_nobody() -> std::io::Result<()> {
    // SAFETY: plain syscalls in the forked child before exec.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(65534) != 0
            || libc::setuid(65534) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
