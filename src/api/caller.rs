//! Who is calling, as far as the connection can tell: the one place both gRPC and REST ask.
//! The listener identified the peer when it accepted the connection (`listener::Peer`, which
//! tonic puts in every request's extensions, inside `TlsConnectInfo` over TLS): SO_PEERCRED on
//! the Unix socket, the socket table on loopback TCP. A remote caller is nobody in particular.

use axum::http::Extensions;
use tonic::transport::server::TlsConnectInfo;

use crate::listener::Peer;
use crate::ports::Caller;

/// The connection's peer, with or without TLS around it.
pub fn peer_of(extensions: &Extensions) -> Option<&Peer> {
    extensions.get::<Peer>().or_else(|| {
        extensions
            .get::<TlsConnectInfo<Peer>>()
            .map(TlsConnectInfo::get_ref)
    })
}

/// The caller of a request, from the connection information in its extensions.
pub fn caller_of(extensions: &Extensions) -> Caller {
    peer_of(extensions)
        .map(|p| Caller {
            uid: p.uid,
            pid: p.pid,
        })
        .unwrap_or(Caller::REMOTE)
}
