//! `SO_EXCLUSIVEADDRUSE`, which socket2 does not wrap: the daemon's probe bind (in
//! portwarden-core) and the client's hardened listeners (in portwarden-client) both set it on
//! Windows, from this one function. Elsewhere the crate is empty.

#[cfg(windows)]
use std::io;

#[cfg(windows)]
use socket2::Socket;

/// Sets `SO_EXCLUSIVEADDRUSE` (Windows): no other socket may bind this socket's port, on any
/// address, while it is open, even one that sets `SO_REUSEADDR`. Set it before `bind`.
#[cfg(windows)]
pub fn exclusive_address_use(socket: &Socket) -> io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{
        setsockopt, WSAGetLastError, SOCKET, SOCKET_ERROR, SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
    };
    let on: i32 = 1;
    // SAFETY: the socket is open for the duration of the call and `on` is a valid 4-byte BOOL.
    let rc = unsafe {
        setsockopt(
            socket.as_raw_socket() as SOCKET,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>() as i32,
        )
    };
    if rc == SOCKET_ERROR {
        // SAFETY: no preconditions.
        return Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }));
    }
    Ok(())
}
