//! One request and one answer on a QUIC stream, with every read size-capped.
//! Reads are never placed inside `select!` (not cancel-safe, STACK.md trap
//! 11): callers wrap the whole exchange in a timeout instead.

use std::time::Duration;

use quinn::{RecvStream, SendStream};

use crate::wire::{Frame, HEADER_LEN, WireError, parse_header};

/// Why an exchange on a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("stream closed")]
    Closed(#[from] quinn::ClosedStream),
    #[error("malformed frame: {0}")]
    Malformed(#[from] WireError),
}

/// Reads one frame, checking the header's kind and size before reading the
/// payload.
pub async fn read_frame(recv: &mut RecvStream) -> Result<Frame, StreamError> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header).await?;
    let (kind, len) = parse_header(header)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload).await?;
    Ok(Frame::new(kind, payload))
}

/// Writes one frame and finishes our side of the stream.
pub async fn write_frame(send: &mut SendStream, frame: &Frame) -> Result<(), StreamError> {
    send.write_all(&frame.encode()).await?;
    send.finish()?;
    Ok(())
}

/// Opens a stream, sends `frame` at `priority` and waits for one answer.
pub async fn request(
    conn: &quinn::Connection,
    frame: &Frame,
    priority: i32,
    limit: Duration,
) -> Result<Frame, StreamError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.set_priority(priority)?;
        write_frame(&mut send, frame).await?;
        read_frame(&mut recv).await
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| StreamError::Timeout(limit))?
}
