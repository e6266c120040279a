//! Fallback census source: /proc/net/tcp and /proc/net/tcp6 (slower than netlink, but readable
//! wherever /proc is mounted). Filters that netlink applies in the kernel are applied here.

use super::{matches, CensusRequest, SocketEntry};
use crate::network::procfs::{self, ProcError};

const TCP4: &str = "/proc/net/tcp";
const TCP6: &str = "/proc/net/tcp6";

/// Visits every socket of /proc/net/tcp and /proc/net/tcp6 that matches `request`.
/// A missing tcp6 table (no IPv6) is not an error.
pub(super) fn scan_tcp(
    request: &CensusRequest,
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<(), ProcError> {
    scan_table(TCP4, false, request, visit)?;
    match scan_table(TCP6, true, request, visit) {
        Err(error) if error.is_not_found() => Ok(()),
        other => other,
    }
}

fn scan_table(
    path: &str,
    ipv6: bool,
    request: &CensusRequest,
    visit: &mut dyn FnMut(SocketEntry),
) -> Result<(), ProcError> {
    let text = procfs::read_text(path)?;
    for line in text.lines().skip(1) {
        let entry = parse_line(line, ipv6)
            .ok_or_else(|| ProcError::format(path, format!("unparsable line '{line}'")))?;
        if matches(request, &entry) {
            visit(entry);
        }
    }
    Ok(())
}

/// Parses `  sl  local_address rem_address   st ...` (addresses as `HEXADDR:HEXPORT`).
fn parse_line(line: &str, ipv6: bool) -> Option<SocketEntry> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let local = fields.next()?;
    let remote = fields.next()?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, then the inode.
    let uid = fields.nth(3).and_then(|f| f.parse().ok()).unwrap_or(0);
    let inode = fields.nth(1).and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(SocketEntry {
        ipv6,
        state,
        local_port: hex_port(local)?,
        remote_port: hex_port(remote)?,
        inode,
        uid,
    })
}

fn hex_port(address: &str) -> Option<u16> {
    let (_, port) = address.rsplit_once(':')?;
    u16::from_str_radix(port, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_proc_net_tcp_line() {
        let line = "   0: 0100007F:1F90 0100007F:D431 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000";
        let entry = parse_line(line, false).expect("parses");
        assert_eq!(entry.local_port, 8080);
        assert_eq!(entry.remote_port, 0xD431);
        assert_eq!(entry.state, 6);
    }

    #[test]
    fn the_proc_fallback_reads_the_live_tables() {
        let mut count = 0;
        scan_tcp(&CensusRequest::FULL, &mut |_| count += 1).expect("proc tables readable");
        // A listener guarantees at least one socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut on_port = 0;
        scan_tcp(&CensusRequest::on_port(port), &mut |_| on_port += 1).expect("proc tables");
        assert_eq!(on_port, 1);
        let _ = count;
    }
}
