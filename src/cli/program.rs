//! The program `portwarden run` starts, found the way execvp(3) finds it: a name with a slash
//! is a path, any other is looked up in PATH (`/bin:/usr/bin` when PATH is unset). It is
//! resolved before anything is allocated, so a command that cannot start takes no port.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where execvp looks when PATH is unset (glibc's `_CS_PATH`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Exit statuses of a command that cannot start, as `env(1)` and `timeout(1)` use them.
const EXIT_CANNOT_EXEC: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("cannot start {program}: no such file")]
    NoSuchFile { program: String },
    #[error("cannot start {program}: not found in PATH ({path})")]
    NotInPath { program: String, path: String },
    #[error(
        "cannot start {program}: not executable (chmod +x it, or run it with its interpreter)"
    )]
    NotExecutable { program: String },
    #[error("cannot start {program}: a directory")]
    Directory { program: String },
    #[error("cannot start {program}: {source}")]
    Unreadable { program: String, source: io::Error },
}

impl ProgramError {
    /// 127 when there is no such program, 126 when there is one that cannot be run.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProgramError::NoSuchFile { .. } | ProgramError::NotInPath { .. } => EXIT_NOT_FOUND,
            _ => EXIT_CANNOT_EXEC,
        }
    }
}

/// The file `program` names, checked to be an executable file.
pub fn resolve(program: &OsStr) -> Result<PathBuf, ProgramError> {
    let shown = || program.to_string_lossy().into_owned();
    if program.as_bytes().contains(&b'/') {
        let path = Path::new(program);
        return match runnable(path) {
            Ok(()) => Ok(path.to_path_buf()),
            Err(Unrunnable::Missing) => Err(ProgramError::NoSuchFile { program: shown() }),
            Err(other) => Err(other.into_error(shown())),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    // As execvp: a candidate that exists but cannot be run is passed over, and reported only
    // when no later one can be run.
    let mut passed_over = None;
    if !program.is_empty() {
        for dir in std::env::split_paths(&path) {
            // An empty PATH entry is the current directory.
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            let candidate = dir.join(program);
            match runnable(&candidate) {
                Ok(()) => return Ok(candidate),
                Err(Unrunnable::Missing) => {}
                Err(other) => {
                    passed_over.get_or_insert(other);
                }
            }
        }
    }
    Err(match passed_over {
        Some(why) => why.into_error(shown()),
        None => ProgramError::NotInPath {
            program: shown(),
            path: path.to_string_lossy().into_owned(),
        },
    })
}

/// Why a path cannot be executed.
enum Unrunnable {
    Missing,
    Directory,
    NotExecutable,
    Unreadable(io::Error),
}

impl Unrunnable {
    fn into_error(self, program: String) -> ProgramError {
        match self {
            Unrunnable::Missing => ProgramError::NoSuchFile { program },
            Unrunnable::Directory => ProgramError::Directory { program },
            Unrunnable::NotExecutable => ProgramError::NotExecutable { program },
            Unrunnable::Unreadable(source) => ProgramError::Unreadable { program, source },
        }
    }
}

/// Whether exec would start `path`: an existing file (not a directory) this process may
/// execute (access(2) with X_OK: for root, one execute bit suffices).
fn runnable(path: &Path) -> Result<(), Unrunnable> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(Unrunnable::Missing)
        }
        Err(e) => return Err(Unrunnable::Unreadable(e)),
    };
    if meta.is_dir() {
        return Err(Unrunnable::Directory);
    }
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Unrunnable::Missing)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(Unrunnable::NotExecutable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_found_in_path_and_a_path_is_taken_as_it_is() {
        let sh = resolve(OsStr::new("sh")).expect("sh is in PATH");
        assert!(sh.is_absolute() || sh.starts_with("."), "{}", sh.display());
        assert_eq!(
            resolve(OsStr::new("/bin/sh")).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn what_cannot_start_says_why_with_its_exit_code() {
        let missing = resolve(OsStr::new("/nonexistent/cmd")).unwrap_err();
        assert_eq!(missing.exit_code(), 127);
        assert_eq!(
            missing.to_string(),
            "cannot start /nonexistent/cmd: no such file"
        );
        let dir = resolve(OsStr::new("/")).unwrap_err();
        assert_eq!(dir.exit_code(), 126);
        let unnamed = resolve(OsStr::new("")).unwrap_err();
        assert_eq!(unnamed.exit_code(), 127, "{unnamed}");
    }
}
