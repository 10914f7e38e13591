//! A UDP proxy for fault tests: loss, duplicates and partitions on a real
//! path between two stations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::task::JoinHandle;

#[derive(Default, Debug)]
pub struct ProxyStats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub partitioned: AtomicU64,
    pub largest: AtomicU64,
}

/// A UDP proxy in front of `upstream`: datagrams from anyone else go to
/// `upstream`; datagrams from `upstream` go back to the last client. Drops
/// and duplicates at the given rates (per mille, deterministic xorshift),
/// and drops everything while partitioned. Stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    pub partitioned: Arc<AtomicBool>,
    pub stats: Arc<ProxyStats>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub fn forwarded(&self) -> u64 {
        self.stats.forwarded.load(Ordering::SeqCst)
    }

    /// Datagrams dropped by the partition.
    pub fn dropped(&self) -> u64 {
        self.stats.partitioned.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn per_mille(&mut self) -> u64 {
        self.next() % 1000
    }
}

pub async fn start_proxy(
    upstream: SocketAddr,
    drop_per_mille: u64,
    dup_per_mille: u64,
    seed: u64,
) -> Proxy {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("proxy bind");
    let addr = socket.local_addr().expect("proxy addr");
    let partitioned = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(ProxyStats::default());
    let (p, s) = (partitioned.clone(), stats.clone());
    let task = tokio::spawn(async move {
        let mut rng = XorShift(seed);
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65536];
        loop {
            // Errors (e.g. an ICMP unreachable reported on the socket) are
            // just more loss.
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            s.largest.fetch_max(n as u64, Ordering::Relaxed);
            let to = if from == upstream {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                upstream
            };
            if p.load(Ordering::SeqCst) {
                s.partitioned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if rng.per_mille() < drop_per_mille {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let _ = socket.send_to(&buf[..n], to).await;
            s.forwarded.fetch_add(1, Ordering::Relaxed);
            if rng.per_mille() < dup_per_mille {
                let _ = socket.send_to(&buf[..n], to).await;
                s.duplicated.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Proxy {
        addr,
        partitioned,
        stats,
        task,
    }
}
