//! Who is on the other end of a connection, in words for a log line: "uid 1000 pid 4242" over
//! the Unix socket (SO_PEERCRED), "127.0.0.1:53422" over TCP (plus the uid, once the caller is
//! identified there).

use axum::http::Extensions;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

pub fn describe(extensions: &Extensions) -> String {
    let caller = super::caller::caller_of(extensions);
    let addr = extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|t| t.get_ref().remote_addr())
        });
    let who = crate::ports::describe_caller(&caller);
    match (addr, caller.uid.is_some() || caller.pid.is_some()) {
        (Some(addr), true) => format!("{addr} ({who})"),
        (Some(addr), false) => addr.to_string(),
        (None, true) => who,
        (None, false) => "unknown".into(),
    }
}
