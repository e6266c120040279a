//! Who is on the other end of a connection, in words for a log line: "uid 1000 pid 4242" over
//! the Unix socket (SO_PEERCRED), "127.0.0.1:53422 (uid 1000)" over loopback TCP (the socket
//! table names the uid), the address alone for a remote caller.

use crate::listener::Peer;
use crate::ports::Caller;

pub fn describe(peer: Option<&Peer>) -> String {
    let caller = peer.map_or(Caller::REMOTE, |p| Caller {
        uid: p.uid,
        pid: p.pid,
    });
    let addr = peer.and_then(|p| p.addr);
    let who = crate::ports::describe_caller(&caller);
    match (addr, caller.uid.is_some() || caller.pid.is_some()) {
        (Some(addr), true) => format!("{addr} ({who})"),
        (Some(addr), false) => addr.to_string(),
        (None, true) => who,
        (None, false) => "unknown".into(),
    }
}
