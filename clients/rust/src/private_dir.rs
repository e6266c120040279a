//! The directory of a user's own Unix socket when there is no `$XDG_RUNTIME_DIR`:
//! `/tmp/portwarden-$UID`. /tmp is shared, so another user could create that directory first
//! and put a fake daemon in it to collect lease tokens. Both sides check it before use: it must
//! be a real directory (not a symlink) owned by the user, with no access for anyone else, and
//! the socket in it must be the user's too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `/tmp/portwarden-$UID`.
pub fn fallback_dir(euid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/portwarden-{euid}"))
}

/// Whether `dir` is a private directory of `euid`; the reason it is not.
pub fn check_private_dir(dir: &Path, euid: u32) -> Result<(), String> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !m.file_type().is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if m.uid() != euid {
        return Err(format!(
            "{} belongs to uid {}, not to you (uid {euid}); another user may have made it to pose as your daemon",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to other users (mode {:o}); it must be 0700",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// For a socket path inside `euid`'s fallback directory: the directory is private and the
/// socket is `euid`'s. Other paths are the caller's own choice and are not checked.
pub fn check_socket(path: &Path, euid: u32) -> Result<(), String> {
    let dir = fallback_dir(euid);
    if path.parent() != Some(dir.as_path()) {
        return Ok(());
    }
    check_private_dir(&dir, euid)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.uid() != euid => Err(format!(
            "{} belongs to uid {}, not to you (uid {euid})",
            path.display(),
            m.uid()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_a_private_directory_of_ones_own_passes() {
        let me = unsafe { libc::geteuid() };
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_private_dir(&dir, me).is_ok());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private_dir(&dir, me).unwrap_err().contains("0700"));
        assert!(check_private_dir(&dir, me + 1)
            .unwrap_err()
            .contains("not to you"));
        let link = t.path().join("l");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check_private_dir(&link, me)
            .unwrap_err()
            .contains("not a directory"));
    }
}
