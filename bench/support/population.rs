//! Shared by the benchmarks: a population of loopback TCP sockets owned by the benchmark
//! process, and the descriptor limit it needs.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use portwarden::network::{take_census, CensusRequest};

/// Share of the sockets that are established (the rest are TIME_WAIT).
pub const ESTABLISHED_SHARE: f64 = 0.4;
pub const LISTENERS: usize = 16;

/// Loopback sockets owned by the benchmark.
pub struct Population {
    pub listeners: Vec<TcpListener>,
    pub addresses: Vec<SocketAddr>,
    pub pairs: Vec<(TcpStream, TcpStream)>,
    next_listener: usize,
}

impl Population {
    pub fn new() -> std::io::Result<Self> {
        let listeners: Vec<TcpListener> = (0..LISTENERS)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()?;
        let addresses = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<_, _>>()?;
        Ok(Population {
            listeners,
            addresses,
            pairs: Vec::new(),
            next_listener: 0,
        })
    }

    fn connect(&mut self) -> std::io::Result<(TcpStream, TcpStream)> {
        let index = self.next_listener % LISTENERS;
        self.next_listener += 1;
        let client = TcpStream::connect(self.addresses[index])?;
        let (server, _) = self.listeners[index].accept()?;
        Ok((client, server))
    }

    /// One more established pair (2 sockets).
    fn add_established(&mut self) -> std::io::Result<()> {
        let pair = self.connect()?;
        self.pairs.push(pair);
        Ok(())
    }

    /// One more TIME_WAIT socket: the client closes first, then the server.
    fn add_time_wait(&mut self) -> std::io::Result<()> {
        let (client, server) = self.connect()?;
        drop(client);
        drop(server);
        Ok(())
    }

    /// Grows until the census counts at least `target` TCP sockets in total.
    pub fn grow_to(&mut self, target: u64) -> std::io::Result<u64> {
        let established_target = (target as f64 * ESTABLISHED_SHARE) as usize;
        while self.pairs.len() * 2 < established_target {
            self.add_established()?;
        }
        for _ in 0..20 {
            let total = total_sockets();
            if total >= target {
                return Ok(total);
            }
            for _ in 0..(target - total) {
                self.add_time_wait()?;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(total_sockets())
    }
}

pub fn total_sockets() -> u64 {
    take_census(CensusRequest::FULL).map_or(0, |census| census.total())
}

/// Raises RLIMIT_NOFILE to `limit`, or at least the soft limit to the hard limit.
pub fn raise_nofile(limit: u64) {
    // SAFETY: plain getrlimit/setrlimit calls with valid structs.
    unsafe {
        let wanted = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            return;
        }
        let mut current: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) == 0 {
            current.rlim_cur = current.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &current);
            eprintln!("RLIMIT_NOFILE: using the hard limit {}", current.rlim_max);
        }
    }
}
