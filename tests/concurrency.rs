//! The allocator never hands one port to two live owners: 64 concurrent clients, each doing 200
//! allocate/release rounds over real gRPC connections against one daemon, each listening on the
//! port it was given while it holds it.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestDaemon;
use portwarden_client::proto::*;

const CLIENTS: usize = 64;
const ROUNDS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_port_is_ever_held_by_two_live_leases() {
    let d = TestDaemon::start("23000-23100", Duration::ZERO).await;
    // Which client holds which port, as the clients were told by the daemon.
    let holders: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        // Half the clients share service names so sticky ports are contended too.
        let service = if id % 2 == 0 {
            format!("shared-{}", id % 8)
        } else {
            format!("own-{id}")
        };
        let mut c = if id % 4 == 0 {
            d.unix().await
        } else {
            d.tcp().await
        };
        let holders = holders.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            for _ in 0..ROUNDS {
                let r = c
                    .allocate(AllocateRequest {
                        service: service.clone(),
                        ..Default::default()
                    })
                    .await
                    .expect("64 holders fit in 101 ports")
                    .into_inner();
                let port = r.allocation.expect("allocation").port;
                if let Some(other) = holders.lock().unwrap().insert(port, id) {
                    panic!("port {port} handed to client {id} while client {other} holds it");
                }
                // The kernel agrees: the port is really ours to listen on while we hold it (a
                // double hand-out would make one of these binds fail with EADDRINUSE).
                let server =
                    std::net::TcpListener::bind(("0.0.0.0", port as u16)).unwrap_or_else(|e| {
                        panic!("client {id} cannot listen on its port {port}: {e}")
                    });
                tokio::task::yield_now().await;
                drop(server);
                holders.lock().unwrap().remove(&port);
                c.release(ReleaseRequest {
                    port,
                    lease_token: r.lease_token,
                })
                .await
                .expect("release");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("bounded")
            .expect("no double allocation");
    }
    assert_eq!(total, CLIENTS * ROUNDS);
    let mut c = d.tcp().await;
    assert!(common::list(&mut c).await.is_empty());
    d.stop().await;
}
