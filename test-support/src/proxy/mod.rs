//! [`Proxy`]: a TCP forwarder between two real parties (a server under test and PostgreSQL, a
//! data plane and the control plane's cluster listener) that counts the bytes it carries each
//! way and injects the faults a network or a sick peer would:
//!
//! - [`Proxy::cut`]: every open connection is closed and new ones are refused, like a database
//!   restart or a pulled cable; [`Proxy::refuse`] refuses new ones only;
//! - [`Proxy::set_latency`]: every chunk waits that long before it is forwarded one way;
//! - [`Proxy::stop_reading`]: one way, nothing more is read, so once the socket buffers are
//!   full the sender's writes stall: a peer that stops reading;
//! - [`Proxy::black_hole`]: connections stay open but nothing is forwarded either way (what
//!   arrives is read and dropped), a half-open link that only timeouts and pings can detect;
//! - [`Proxy::restore`]: back to a healthy link (the latency stays as set).
//!
//! TLS passes through untouched: the peers still check each other's names and certificates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod forward;

/// One direction of the forwarded connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the clients to the target.
    Up,
    /// From the target back to the clients.
    Down,
}

/// A running forwarder; stops accepting when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: JoinHandle<()>,
}

/// What the accepting task, the forwarding tasks and the controls share.
#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    refusing: AtomicBool,
    /// Bumped by every cut: each connection ends when it changes.
    cuts: watch::Sender<u64>,
    open: AtomicUsize,
    up: Lane,
    down: Lane,
}

/// The state of one direction.
#[derive(Debug)]
struct Lane {
    bytes: AtomicU64,
    latency_micros: AtomicU64,
    reading: watch::Sender<bool>,
    black_hole: AtomicBool,
}

impl Lane {
    fn new() -> Self {
        Lane {
            bytes: AtomicU64::new(0),
            latency_micros: AtomicU64::new(0),
            reading: watch::channel(true).0,
            black_hole: AtomicBool::new(false),
        }
    }

    fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::SeqCst))
    }
}

impl Proxy {
    /// Forwards a free loopback port (bound on port 0) to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            refusing: AtomicBool::new(false),
            cuts: watch::channel(0).0,
            open: AtomicUsize::new(0),
            up: Lane::new(),
            down: Lane::new(),
        });
        let accepting = tokio::spawn(accept(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            accepting,
        })
    }

    /// Closes every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.refuse();
        self.shared.cuts.send_modify(|generation| *generation += 1);
    }

    /// Refuses new connections (accepted, then closed at once); open ones carry on.
    pub fn refuse(&self) {
        self.shared.refusing.store(true, Ordering::SeqCst);
    }

    /// A healthy link again: connections accepted, both ways read and forwarded.
    pub fn restore(&self) {
        self.shared.refusing.store(false, Ordering::SeqCst);
        for lane in [&self.shared.up, &self.shared.down] {
            lane.black_hole.store(false, Ordering::SeqCst);
            lane.reading.send_replace(true);
        }
    }

    /// Delays everything forwarded in `direction` by `latency` (zero: none).
    pub fn set_latency(&self, direction: Direction, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.lane(direction)
            .latency_micros
            .store(micros, Ordering::SeqCst);
    }

    /// Stops reading what is sent in `direction`: the sender's writes stall once the socket
    /// buffers between are full.
    pub fn stop_reading(&self, direction: Direction) {
        self.lane(direction).reading.send_replace(false);
    }

    /// Reads and forwards `direction` again.
    pub fn resume_reading(&self, direction: Direction) {
        self.lane(direction).reading.send_replace(true);
    }

    /// Keeps every connection open but forwards nothing either way: what arrives is dropped.
    pub fn black_hole(&self) {
        for lane in [&self.shared.up, &self.shared.down] {
            lane.black_hole.store(true, Ordering::SeqCst);
        }
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Bytes forwarded in `direction` since the start or the last [`Proxy::reset_counts`].
    pub fn bytes(&self, direction: Direction) -> u64 {
        self.lane(direction).bytes.load(Ordering::SeqCst)
    }

    /// Bytes sent by the target (e.g. the control plane) to the clients.
    pub fn down_bytes(&self) -> u64 {
        self.bytes(Direction::Down)
    }

    /// Bytes sent by the clients to the target.
    pub fn up_bytes(&self) -> u64 {
        self.bytes(Direction::Up)
    }

    /// Zeroes both byte counters.
    pub fn reset_counts(&self) {
        for lane in [&self.shared.up, &self.shared.down] {
            lane.bytes.store(0, Ordering::SeqCst);
        }
    }

    fn lane(&self, direction: Direction) -> &Lane {
        self.shared.lane(direction)
    }
}

impl Shared {
    fn lane(&self, direction: Direction) -> &Lane {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Accepts clients until the listener fails, each forwarded in a task of its own.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut cut = shared.cuts.subscribe();
            let Ok(server) = TcpStream::connect(shared.target).await else {
                return;
            };
            shared.open.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                () = forward::both_ways(client, server, &shared) => {}
                _ = cut.changed() => {}
            }
            shared.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
