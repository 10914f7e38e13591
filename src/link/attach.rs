//! Attachment streams on the link: an offer, the receiver's answer, then
//! the rest of a sealed file as raw bytes. The link moves bytes only: where
//! they come from and where they go (files, crypto, journal) is the
//! station's business, reached through [`UploadSource`] and
//! [`AttachmentSink`].
//!
//! Bulk bytes must never hold up a FLASH message: the stream carries the
//! lowest priority, and quinn's connection-wide send window is kept larger
//! than a stream's receive window (STACK.md trap 8, see `tls::transport`),
//! so at most a stream window of attachment data sits ahead of urgent
//! writes. No read is placed inside `select!` (trap 11): every read and
//! write has its own timeout.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;
use quinn::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::stream::{self, StreamError};
use super::{STREAM_MALFORMED, Shared};
use crate::domain::StationName;
use crate::wire::{AttachmentOffer, Frame, FrameKind, resume_frame, resume_offset};

/// Bytes read and written at a time; also what one chunk costs in memory.
pub const CHUNK: usize = 64 * 1024;
/// How long one chunk may wait for flow control or the network before the
/// transfer is given up (and retried later, from where it stopped).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the receiver may take to answer an offer.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the receiver may take to verify a complete attachment (it
/// decrypts and hashes the whole file) and answer.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(300);

/// Opens the bytes of an upload from the offset the receiver asks for.
pub type UploadSource = Box<
    dyn FnOnce(u64) -> BoxFuture<'static, io::Result<Box<dyn AsyncRead + Send + Unpin>>> + Send,
>;

/// Where an inbound attachment's bytes go, chunk by chunk.
pub trait AttachmentSink: Send {
    /// Appends one chunk.
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
    /// Every byte has arrived: verify and answer (a receipt or a refusal).
    fn finish(self: Box<Self>) -> BoxFuture<'static, Option<Frame>>;
}

/// The station's answer to an offer.
pub enum OfferAnswer {
    /// Answer at once (a receipt for something stored before, a refusal).
    Answer(Frame),
    /// Send the sealed bytes from `offset`; `remaining` more are expected.
    Accept {
        offset: u64,
        remaining: u64,
        sink: Box<dyn AttachmentSink>,
    },
    /// Close the stream unanswered; the sender retries later.
    Ignore,
}

/// Sends one attachment: offer, then the rest of the bytes from the offset
/// the receiver names, then waits for its receipt or refusal. `progress`
/// hears how many sealed bytes the receiver holds so far.
pub async fn upload(
    conn: &quinn::Connection,
    offer: &Frame,
    priority: i32,
    source: UploadSource,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Frame, StreamError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.set_priority(priority)?;
    timed(OFFER_TIMEOUT, send.write_all(&offer.encode())).await??;
    let answer = timed(OFFER_TIMEOUT, stream::read_frame(&mut recv)).await??;
    let Some(offset) = resume_offset(&answer) else {
        let _ = send.finish();
        return Ok(answer);
    };
    progress(offset);
    let mut reader = source(offset)
        .await
        .map_err(|e| StreamError::Source(e.to_string()))?;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = offset;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| StreamError::Source(e.to_string()))?;
        if n == 0 {
            break;
        }
        timed(STALL_TIMEOUT, send.write_all(&buf[..n])).await??;
        sent += n as u64;
        progress(sent);
    }
    send.finish()?;
    timed(VERIFY_TIMEOUT, stream::read_frame(&mut recv)).await?
}

async fn timed<F: Future>(limit: Duration, f: F) -> Result<F::Output, StreamError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| StreamError::Timeout(limit))
}

/// Serves one inbound attachment stream whose offer has been read.
pub(super) async fn receive(
    shared: &Shared,
    peer: StationName,
    offer: Frame,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    if let Err(e) = AttachmentOffer::parse(&offer) {
        let _ = recv.stop(STREAM_MALFORMED.into());
        let _ = send.reset(STREAM_MALFORMED.into());
        static LOG: crate::logging::Limit = crate::logging::Limit::new();
        if let Some(held_back) = LOG.allow() {
            tracing::warn!(held_back, %peer, error = %e, "malformed attachment offer");
        }
        shared.emit(super::LinkEvent::Malformed {
            peer,
            reason: format!("attachment offer: {e}"),
        });
        return;
    }
    let (offset, mut remaining, mut sink) =
        match shared.upcalls.attachment(peer.clone(), offer).await {
            OfferAnswer::Answer(frame) => {
                let _ = stream::write_frame(&mut send, &frame).await;
                return;
            }
            OfferAnswer::Ignore => {
                let _ = recv.stop(0u32.into());
                let _ = send.reset(0u32.into());
                return;
            }
            OfferAnswer::Accept {
                offset,
                remaining,
                sink,
            } => (offset, remaining, sink),
        };
    let resume = resume_frame(offset);
    if timed(OFFER_TIMEOUT, send.write_all(&resume.encode()))
        .await
        .and_then(|r| r.map_err(StreamError::from))
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; CHUNK];
    while remaining > 0 {
        let want = usize::try_from(remaining).map_or(CHUNK, |r| r.min(CHUNK));
        // The sender said how long the file is: a stream that ends early
        // was interrupted (the sink keeps what arrived, for a resume).
        let n = match timed(STALL_TIMEOUT, recv.read(&mut buf[..want])).await {
            Ok(Ok(Some(n))) => n,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return,
        };
        if let Err(reason) = sink.write(&buf[..n]).await {
            tracing::error!(%peer, %reason, "could not store attachment bytes");
            let _ = recv.stop(0u32.into());
            let _ = send.reset(0u32.into());
            return;
        }
        remaining -= n as u64;
    }
    // Anything past the announced length is a malformed stream.
    match timed(OFFER_TIMEOUT, recv.read(&mut buf[..1])).await {
        Ok(Ok(None)) => {}
        _ => {
            let _ = recv.stop(STREAM_MALFORMED.into());
            let _ = send.reset(STREAM_MALFORMED.into());
            shared.emit(super::LinkEvent::Malformed {
                peer,
                reason: "attachment stream longer than its offer".into(),
            });
            return;
        }
    }
    if let Some(answer) = sink.finish().await {
        let _ = timed(OFFER_TIMEOUT, stream::write_frame(&mut send, &answer)).await;
    }
}

/// Whether a first frame opens an attachment stream.
pub(super) fn is_offer(frame: &Frame) -> bool {
    frame.kind == FrameKind::AttachmentOffer
}
