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
    #[error("reading what to upload: {0}")]
    Source(String),
    #[error("read: {0}")]
    ReadStream(#[from] quinn::ReadError),
}

/// Reads one frame, checking the header's kind and size before reading the
/// payload.
/// The payload is read in chunks as it arrives, so a header that merely
/// claims a large payload reserves no memory.
pub async fn read_frame(recv: &mut RecvStream) -> Result<Frame, StreamError> {
    const CHUNK: usize = 16 * 1024;
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header).await.map_err(truncated)?;
    let (kind, len) = parse_header(header)?;
    let mut payload = Vec::with_capacity(len.min(CHUNK));
    let mut chunk = [0u8; CHUNK];
    while payload.len() < len {
        let want = (len - payload.len()).min(CHUNK);
        recv.read_exact(&mut chunk[..want])
            .await
            .map_err(truncated)?;
        payload.extend_from_slice(&chunk[..want]);
    }
    Ok(Frame::new(kind, payload))
}

/// A stream that ends inside a frame sent a malformed frame.
fn truncated(e: quinn::ReadExactError) -> StreamError {
    match e {
        quinn::ReadExactError::FinishedEarly(_) => StreamError::Malformed(WireError::Truncated),
        other => StreamError::Read(other),
    }
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
