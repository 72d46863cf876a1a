//! A TCP forwarder that counts the bytes it carries each way: put between a data plane and the
//! control plane's cluster listener, it measures what a sync really costs on the wire (TLS
//! records, websocket framing, compressed protocol messages), independently of what either side
//! logs. TLS passes through untouched; the data plane still checks the control plane's name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running forwarder.
#[derive(Debug)]
pub struct CountingProxy {
    pub addr: SocketAddr,
    /// Bytes from the target to the clients (control plane → data plane).
    down: Arc<AtomicU64>,
    /// Bytes from the clients to the target.
    up: Arc<AtomicU64>,
    accepting: JoinHandle<()>,
}

impl CountingProxy {
    /// Forwards a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicU64::new(0));
        let up = Arc::new(AtomicU64::new(0));
        let (down_total, up_total) = (down.clone(), up.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (down, up) = (down_total.clone(), up_total.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    client.set_nodelay(true).ok();
                    server.set_nodelay(true).ok();
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, up),
                        pump(server_read, client_write, down),
                    );
                });
            }
        });
        Ok(CountingProxy {
            addr,
            down,
            up,
            accepting,
        })
    }

    /// Zeroes both counters.
    pub fn reset(&self) {
        self.down.store(0, Ordering::SeqCst);
        self.up.store(0, Ordering::SeqCst);
    }

    /// Bytes sent by the target (the control plane) since the last reset.
    pub fn down_bytes(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }

    /// Bytes sent to the target since the last reset.
    pub fn up_bytes(&self) -> u64 {
        self.up.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Copies until end of stream or an error, counting, then closes the writing side.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
        counter.fetch_add(read as u64, Ordering::SeqCst);
    }
    to.shutdown().await.ok();
}
