//! Listen queue overflows are seen as they happen in the kernel counters.

use std::net::SocketAddr;
use std::time::Duration;

use portwarden::network::overflows::{read_listen_counters, ListenOverflowHistory};
use portwarden::network::{CheckStatus, Thresholds};
use socket2::{Domain, Socket, Type};

#[test]
fn overflowing_an_accept_queue_turns_the_check_into_a_warning() {
    let thresholds = Thresholds::default();
    let mut history = ListenOverflowHistory::new();
    let baseline = history.observe(read_listen_counters().expect("counters"), &thresholds);
    assert_eq!(baseline.status, CheckStatus::Ok);

    // A listener that never accepts, with the smallest backlog, and more clients than it holds.
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    listener
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    listener.listen(0).expect("listen");
    let address = listener
        .local_addr()
        .expect("address")
        .as_socket()
        .expect("inet");
    let clients: Vec<Socket> = (0..8)
        .map(|_| {
            let client = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            client.set_nonblocking(true).expect("nonblocking");
            let _ = client.connect(&address.into()); // EINPROGRESS is expected
            client
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));

    let after = history.observe(read_listen_counters().expect("counters"), &thresholds);
    assert_eq!(after.status, CheckStatus::Warning, "{after:?}");
    drop(clients);
}
