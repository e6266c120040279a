//! The allocator alone, in process (no gRPC): what allocate, release and the probe bind cost,
//! with and without the network gate. Shows how much of a round trip is the domain and how much
//! is the transport.
//!
//! Run: `cargo bench --bench allocator`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portwarden::network::{firewall, NetworkConfig, NetworkGate};
use portwarden::ports::{
    AllocateRequest, Allocator, AllocatorConfig, Caller, Quotas, RangeSet, Share,
};

const N: usize = 5000;

fn open(state: &Path) -> Allocator {
    let cfg = AllocatorConfig {
        ranges: RangeSet::new(vec!["10000-14999".parse().expect("range")]).expect("ranges"),
        test_pool: None,
        quarantine: Duration::ZERO,
        state_path: state.to_path_buf(),
        // One caller takes the whole range here: no per-uid quota.
        quotas: Quotas {
            per_uid: Share::Percent(100.0),
            ..Default::default()
        },
        accept_state_loss: false,
    };
    Allocator::open(cfg).expect("open").0
}

/// N allocations, then N releases: the time of each half.
fn cycle(allocator: &Allocator) -> (Duration, Duration) {
    let t = Instant::now();
    let mut held = Vec::with_capacity(N);
    for i in 0..N {
        let req = AllocateRequest {
            service: format!("s{}", i % 64),
            ..Default::default()
        };
        let g = allocator.allocate(req, &Caller::REMOTE).expect("allocate");
        held.push((g.allocation.port, g.allocation.lease_token));
    }
    let alloc = t.elapsed();
    let t = Instant::now();
    for (port, token) in &held {
        allocator
            .release(u32::from(*port), Some(token), &Caller::REMOTE)
            .expect("release");
    }
    (alloc, t.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (alloc, release) = cycle(&open(&dir.path().join("plain.db")));
    let gate = Arc::new(NetworkGate::new(NetworkConfig::default()));
    let (gated, _) = cycle(&open(&dir.path().join("gated.db")).with_gate(gate));
    let t = Instant::now();
    for _ in 0..N {
        firewall::probe(10001);
    }
    let probe = t.elapsed();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / N as f64;
    println!("| step (in process, {N} each) | mean µs |");
    println!("|---|---|");
    println!(
        "| allocate (validate, probe v4+v6, SQLite commit) | {:.1} |",
        us(alloc)
    );
    println!(
        "| allocate with the network gate (per-port checks on a cached snapshot) | {:.1} |",
        us(gated)
    );
    println!("| release (SQLite commit) | {:.1} |", us(release));
    println!("| probe bind v4+v6 alone | {:.1} |", us(probe));
}
