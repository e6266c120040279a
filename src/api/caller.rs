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

/// How a request reached the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The Unix socket: a local program, never a web page.
    Unix,
    /// TCP with TLS: the browser's certificate check ties the connection to its name.
    Tls,
    /// Plaintext TCP, to this local address (None when it is not known).
    Tcp(Option<std::net::IpAddr>),
}

/// The transport of a request, from the connection information in its extensions (a request
/// without any is treated as plaintext TCP to an unknown address, the strictest case).
pub fn transport_of(extensions: &Extensions) -> Transport {
    if extensions.get::<TlsConnectInfo<Peer>>().is_some() {
        return Transport::Tls;
    }
    match extensions.get::<Peer>() {
        Some(p) if p.addr.is_none() => Transport::Unix,
        Some(p) => Transport::Tcp(p.local.map(|a| a.ip())),
        None => Transport::Tcp(None),
    }
}
