//! The proxy's faults, on real loopback sockets: an echo server behind it, a client in front.

use std::time::{Duration, Instant};

use test_support::proxy::{Direction, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server that echoes every connection back until it closes.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// Sends `message` and reads the same number of bytes back, within `timeout`.
async fn round_trip(socket: &mut TcpStream, message: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    socket.write_all(message).await.ok()?;
    let mut answer = vec![0; message.len()];
    tokio::time::timeout(timeout, socket.read_exact(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(answer)
}

#[tokio::test]
async fn it_forwards_and_counts_both_ways() {
    let proxy = Proxy::start(echo_server().await).await.expect("proxy");
    let mut client = TcpStream::connect(proxy.addr).await.expect("connected");
    let answer = round_trip(&mut client, b"hello", Duration::from_secs(5)).await;
    assert_eq!(answer.as_deref(), Some(&b"hello"[..]));
    assert_eq!((proxy.up_bytes(), proxy.down_bytes()), (5, 5));
    assert_eq!(proxy.open_connections(), 1);
    proxy.reset_counts();
    assert_eq!(proxy.bytes(Direction::Up), 0);
}

#[tokio::test]
async fn a_cut_closes_open_connections_and_refuses_new_ones_until_restored() {
    let proxy = Proxy::start(echo_server().await).await.expect("proxy");
    let mut client = TcpStream::connect(proxy.addr).await.expect("connected");
    assert!(
        round_trip(&mut client, b"x", Duration::from_secs(5))
            .await
            .is_some()
    );

    proxy.cut();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the open connection was closed");
    let mut refused = TcpStream::connect(proxy.addr)
        .await
        .expect("accepted, then closed");
    assert_eq!(
        round_trip(&mut refused, b"y", Duration::from_secs(1)).await,
        None
    );

    proxy.restore();
    let mut again = TcpStream::connect(proxy.addr).await.expect("connected");
    assert!(
        round_trip(&mut again, b"z", Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let proxy = Proxy::start(echo_server().await).await.expect("proxy");
    proxy.set_latency(Direction::Up, Duration::from_millis(100));
    proxy.set_latency(Direction::Down, Duration::from_millis(50));
    let mut client = TcpStream::connect(proxy.addr).await.expect("connected");
    let started = Instant::now();
    assert!(
        round_trip(&mut client, b"slow", Duration::from_secs(5))
            .await
            .is_some()
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_peer_that_stops_reading_stalls_the_writer() {
    // A server that never reads: only the proxy's reading decides whether writes flow.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let target = listener.local_addr().expect("an address");
    let held = tokio::spawn(async move { listener.accept().await.map(|(socket, _)| socket) });
    let proxy = Proxy::start(target).await.expect("proxy");
    proxy.stop_reading(Direction::Up);
    let mut client = TcpStream::connect(proxy.addr).await.expect("connected");
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let stalled = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            client.write_all(&chunk).await.expect("written");
            written += chunk.len();
        }
    })
    .await;
    assert!(stalled.is_err(), "the writes stalled");
    assert!(
        written < 64 * 1024 * 1024,
        "only socket buffers filled: {written}"
    );
    assert_eq!(proxy.up_bytes(), 0, "nothing was forwarded");
    drop(held);
}

#[tokio::test]
async fn a_black_hole_keeps_connections_open_and_forwards_nothing() {
    let proxy = Proxy::start(echo_server().await).await.expect("proxy");
    let mut client = TcpStream::connect(proxy.addr).await.expect("connected");
    assert!(
        round_trip(&mut client, b"a", Duration::from_secs(5))
            .await
            .is_some()
    );

    proxy.black_hole();
    assert_eq!(
        round_trip(&mut client, b"b", Duration::from_millis(300)).await,
        None
    );
    assert_eq!(proxy.open_connections(), 1, "still open");

    proxy.restore();
    assert!(
        round_trip(&mut client, b"c", Duration::from_secs(5))
            .await
            .is_some()
    );
}
