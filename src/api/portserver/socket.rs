//! The endpoint's socket: an abstract name (Linux) or a path, which replaces a stale socket file
//! but never a live one, and which every local user may connect to whatever the umask says.

use std::io;
use std::path::Path;

use tokio::net::UnixListener;

use crate::config::PortserverSocket;
#[cfg(target_os = "linux")]
use crate::ports;

pub(super) fn bind(addr: &PortserverSocket) -> io::Result<UnixListener> {
    let listener = match addr {
        PortserverSocket::Path(path) => bind_path(path)?,
        PortserverSocket::Abstract(name) => bind_abstract(name)?,
    };
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

#[cfg(target_os = "linux")]
fn bind_abstract(name: &str) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => io::Error::new(
            e.kind(),
            format!("@{name} is already served by {}", holder_of(&addr)),
        ),
        _ => e,
    })
}

/// Who holds an abstract name, as the kernel tells a client that connects to it.
#[cfg(target_os = "linux")]
fn holder_of(addr: &std::os::unix::net::SocketAddr) -> String {
    let pid = std::os::unix::net::UnixStream::connect_addr(addr)
        .ok()
        .and_then(|s| crate::netns::peer_pid(&s));
    match pid {
        Some(pid) => format!(
            "another process (pid {pid}, {})",
            crate::text::printable(&ports::command_line(pid, 120))
        ),
        None => "another process".into(),
    }
}

#[cfg(not(target_os = "linux"))]
fn bind_abstract(name: &str) -> io::Result<std::os::unix::net::UnixListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("@{name}: the abstract socket namespace exists only on Linux; use a path"),
    ))
}

/// Replaces a stale socket file, never a live one or anything that is not a socket. The socket
/// listens under a temporary name first and is renamed into place, so a client that sees the
/// path can connect.
fn bind_path(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is already served by another process", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
    // Every local user may ask, as on the abstract socket (the claim rules are written for
    // every uid), whatever the umask says.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666))?;
    std::fs::rename(&tmp, path)?;
    Ok(listener)
}
