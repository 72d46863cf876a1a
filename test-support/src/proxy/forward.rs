//! Forwarding one connection through the [`Proxy`](super::Proxy): one reader and one writer
//! per direction with a short queue between them, so that latency delays each chunk without
//! slowing the stream down, a stopped lane stops reading (and the sender stalls), and a black
//! hole reads and drops.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::{Lane, Shared};

/// Chunks read but not yet written, per direction.
const QUEUE_CHUNKS: usize = 16;
const CHUNK_BYTES: usize = 64 * 1024;

/// Forwards `client` ↔ `server` until both directions have ended.
pub(super) async fn both_ways(client: TcpStream, server: TcpStream, shared: &Shared) {
    client.set_nodelay(true).ok();
    server.set_nodelay(true).ok();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        one_way(client_read, server_write, &shared.up),
        one_way(server_read, client_write, &shared.down),
    );
}

/// Copies `from` to `to` as `lane` says until end of stream or an error, then closes the
/// writing side.
async fn one_way(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, lane: &Lane) {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let reading = async move {
        let mut reading = lane.reading.subscribe();
        let mut buffer = vec![0u8; CHUNK_BYTES];
        loop {
            while !*reading.borrow_and_update() {
                if reading.changed().await.is_err() {
                    return;
                }
            }
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if lane.black_hole.load(Ordering::SeqCst) {
                continue;
            }
            let due = Instant::now() + lane.latency();
            if queue.send((due, buffer[..read].to_vec())).await.is_err() {
                return;
            }
        }
    };
    // Moves the queue's receiving end: when writing fails, it is dropped and reading stops.
    let writing = async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if lane.black_hole.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
            lane.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        to.shutdown().await.ok();
    };
    tokio::join!(reading, writing);
}
