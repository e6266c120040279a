//! Who is calling, as far as the connection can tell: the one place both gRPC and REST ask.
//! Over the Unix socket the kernel vouches for the peer's uid and pid (SO_PEERCRED, which tonic
//! puts in the request's extensions as `UdsConnectInfo`); over TCP nothing is known yet.

use axum::http::Extensions;
#[cfg(unix)]
use tonic::transport::server::UdsConnectInfo;

use crate::ports::Caller;

/// The caller of a request, from the connection information in its extensions.
#[cfg(unix)]
pub fn caller_of(extensions: &Extensions) -> Caller {
    extensions
        .get::<UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
        .map(|cred| Caller {
            uid: Some(cred.uid()),
            pid: cred.pid(),
        })
        .unwrap_or(Caller::REMOTE)
}

/// Without Unix sockets no connection carries the caller's credentials: every caller is remote
/// (a lease token is required to release or renew).
#[cfg(not(unix))]
pub fn caller_of(_extensions: &Extensions) -> Caller {
    Caller::REMOTE
}
