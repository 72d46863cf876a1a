//! The sending half of a data plane's connection: one task owns the socket's sink, takes
//! encoded frames from a bounded queue, pings on its own clock, and gives every frame a send
//! timeout. Nothing else ever waits on a socket write, so the reader's silence check and the
//! pings go on while a data plane that stopped reading fills its TCP window; after the send
//! timeout the connection is dropped.

use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::{SessionError, Socket};

/// Frames waiting for the socket: enough to keep a snapshot streaming, few enough to bound
/// the memory one slow data plane can hold (chunks are about 150 kB compressed).
pub(super) const QUEUE: usize = 32;

/// What the other tasks of a session hand to the writer.
#[derive(Debug)]
pub(super) enum Outgoing {
    Frame(Vec<u8>),
    /// Close the websocket with this reason, then stop.
    Close(Option<CloseFrame>),
}

/// Runs until the queue's senders are gone or a close is asked for; Err when a write failed
/// or did not finish within `send_timeout`.
pub(super) async fn run(
    mut sink: SplitSink<Socket, Message>,
    mut queue: mpsc::Receiver<Outgoing>,
    ping_interval: Duration,
    send_timeout: Duration,
) -> Result<(), SessionError> {
    let mut pinger = tokio::time::interval(ping_interval);
    loop {
        let message = tokio::select! {
            outgoing = queue.recv() => match outgoing {
                Some(Outgoing::Frame(frame)) => Message::Binary(frame.into()),
                Some(Outgoing::Close(frame)) => {
                    tokio::time::timeout(send_timeout, sink.send(Message::Close(frame)))
                        .await
                        .ok();
                    return Ok(());
                }
                None => return Ok(()),
            },
            _ = pinger.tick() => Message::Ping(Vec::new().into()),
        };
        tokio::time::timeout(send_timeout, sink.send(message))
            .await
            .map_err(|_| SessionError::SendTimeout(send_timeout))??;
    }
}
