//! Receiving attachments: an offer is checked against the signed message
//! and the limits before any content is read; the bytes are appended to a
//! partial sealed file and checked as they come (decrypted and hashed by a
//! [`Verifier`]); when complete and synced, a file that matches the signed
//! size and SHA-256 is kept, and only then receipted.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::crypto::PeerKeys;
use crate::domain::{MessageId, StationName, format_size};
use crate::fsutil;
use crate::link::{AttachmentSink, OfferAnswer};
use crate::station::docs::{ReceiptOf, RefusalCode};
use crate::station::inbound::{audit, receipt, refusal};
use crate::station::{Event, Inner};
use crate::store::{AttachmentRow, AttachmentState, Direction};
use crate::wire::{AttachmentOffer, Frame, FrameKind};

use super::verify::Verifier;
use super::{PARTIAL_SUFFIX, Progress, WRITE_BUFFER, sealed_bound};

/// Attachments being received right now, so a second offer of the same one
/// (a retry racing a stream not yet torn down) never appends to its file.
#[derive(Default)]
pub(crate) struct Receiving(Mutex<HashSet<(MessageId, u32)>>);

impl Receiving {
    fn claim(self: &Arc<Self>, key: (MessageId, u32)) -> Option<Claim> {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.insert(key).then(|| Claim {
            set: self.clone(),
            key,
        })
    }
}

/// Held while an attachment is being received; released on drop.
struct Claim {
    set: Arc<Receiving>,
    key: (MessageId, u32),
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Refuses attachment `index` of `id`: recorded, audited, told to operators.
async fn refuse(
    inner: &Inner,
    peer: &PeerKeys,
    id: MessageId,
    index: u32,
    code: RefusalCode,
    detail: String,
) -> Frame {
    let frame = refusal(inner, peer, Some(id), Some(index), code, detail.clone());
    let reason = format!("{}: {detail}", code.as_str());
    match inner
        .journal
        .settle_attachment(
            id,
            Direction::In,
            index,
            AttachmentState::Refused,
            Some(reason.clone()),
            None,
        )
        .done()
        .await
    {
        Ok(true) => inner.emit(Event::AttachmentRefused {
            id,
            index,
            direction: Direction::In,
            peer: peer.name.to_string(),
            reason,
        }),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "could not record a refused attachment"),
    }
    frame
}

/// Answers an attachment offer from `peer`. Everything that can refuse it
/// is checked here, from the offer and the signed message, before any
/// content is read.
pub(crate) async fn offered(inner: &Arc<Inner>, peer: &StationName, offer: &Frame) -> OfferAnswer {
    let Some(peer_keys) = inner.peer(peer.as_str()) else {
        return OfferAnswer::Ignore;
    };
    let Ok(offer) = AttachmentOffer::parse(offer) else {
        return OfferAnswer::Ignore;
    };
    let id = MessageId(offer.message);
    let index = offer.index;
    let row = match inner.journal.attachment(&id, Direction::In, index) {
        Ok(Some(row)) if row.peer == peer.as_str() => row,
        Ok(_) => {
            audit(
                inner,
                peer.as_str(),
                "refuse",
                &format!("peer={peer} id={id} attachment={index} unknown"),
            )
            .await;
            return OfferAnswer::Answer(refusal(
                inner,
                &peer_keys,
                Some(id),
                Some(index),
                RefusalCode::Malformed,
                "no such attachment: the message was not stored here or does not list it".into(),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read an attachment row");
            return OfferAnswer::Ignore;
        }
    };
    match row.state {
        AttachmentState::Receipted => {
            return match inner.journal.attachment_receipt(&id, index) {
                Ok(Some(doc)) => OfferAnswer::Answer(Frame::new(FrameKind::Receipt, doc)),
                _ => OfferAnswer::Ignore,
            };
        }
        AttachmentState::Refused => {
            let detail = row.detail.unwrap_or_default();
            let code = if detail.starts_with(RefusalCode::Oversize.as_str()) {
                RefusalCode::Oversize
            } else {
                RefusalCode::Malformed
            };
            return OfferAnswer::Answer(refusal(
                inner,
                &peer_keys,
                Some(id),
                Some(index),
                code,
                detail,
            ));
        }
        AttachmentState::Pending => {}
    }
    let limits = inner.config.attachments;
    let message_total: u64 = match inner.journal.attachments(&id, Direction::In) {
        Ok(rows) => rows.iter().fold(0u64, |sum, r| sum.saturating_add(r.size)),
        Err(e) => {
            tracing::error!(error = %e, "could not read a message's attachments");
            return OfferAnswer::Ignore;
        }
    };
    let oversize = if row.size > limits.max_size {
        Some(format!(
            "{} is over this station's limit of {} per attachment",
            format_size(row.size),
            format_size(limits.max_size)
        ))
    } else if message_total > limits.max_message {
        Some(format!(
            "the message's attachments come to {}, over this station's limit of {} per message",
            format_size(message_total),
            format_size(limits.max_message)
        ))
    } else if offer.sealed_len > sealed_bound(row.size) {
        Some(format!(
            "a sealed length of {} bytes is too long for {} bytes of content",
            offer.sealed_len, row.size
        ))
    } else {
        None
    };
    if let Some(detail) = oversize {
        audit(
            inner,
            peer.as_str(),
            "refuse",
            &format!("peer={peer} id={id} attachment={index} code=oversize"),
        )
        .await;
        return OfferAnswer::Answer(
            refuse(inner, &peer_keys, id, index, RefusalCode::Oversize, detail).await,
        );
    }
    let Some(claim) = inner.receiving.claim((id, index)) else {
        return OfferAnswer::Ignore;
    };
    let data_dir = &inner.config.station.data_dir;
    let final_path = data_dir.join(&row.sealed_path);
    let mut partial = final_path.clone().into_os_string();
    partial.push(".");
    partial.push(PARTIAL_SUFFIX);
    let partial = PathBuf::from(partial);
    let opened = async {
        if let Some(dir) = partial.parent() {
            fsutil::create_private_dir(dir)?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&partial)
            .await?;
        let mut have = file.metadata().await?.len();
        if have > offer.sealed_len {
            file.set_len(0).await?;
            have = 0;
        }
        file.seek(io::SeekFrom::Start(have)).await?;
        Ok::<_, io::Error>((file, have))
    }
    .await;
    let (file, have) = match opened {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(path = %partial.display(), error = %e, "could not open a partial attachment");
            return OfferAnswer::Ignore;
        }
    };
    let progress = Progress::new(inner.clone(), id, index, Direction::In, offer.sealed_len);
    progress.report(have);
    let verifier = Verifier::start(
        inner.clone(),
        partial.clone(),
        have,
        row.size,
        row.sha256.clone(),
    );
    OfferAnswer::Accept {
        offset: have,
        remaining: offer.sealed_len - have,
        sink: Box::new(Incoming {
            inner: inner.clone(),
            peer: peer_keys,
            row,
            file: tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file),
            partial,
            final_path,
            verifier,
            done: have,
            written_back: have,
            resumed: have > 0,
            progress,
            _claim: claim,
        }),
    }
}

/// Bytes received between two starts of write-back, so the final sync
/// has little left to do.
const WRITEBACK_STEP: u64 = 8 << 20;

/// An attachment arriving: appended to its partial file and checked as it comes.
struct Incoming {
    inner: Arc<Inner>,
    peer: PeerKeys,
    row: AttachmentRow,
    /// Bytes reach the file in large writes; what is still buffered when a
    /// transfer breaks is simply sent again (the resume offset is the
    /// file's length).
    file: tokio::io::BufWriter<tokio::fs::File>,
    partial: PathBuf,
    final_path: PathBuf,
    /// Checks the bytes as they arrive.
    verifier: Verifier,
    done: u64,
    /// Bytes whose write-back to the disk has been started.
    written_back: u64,
    /// Whether this transfer appended to bytes kept from an earlier one.
    resumed: bool,
    progress: Progress,
    _claim: Claim,
}

impl AttachmentSink for Incoming {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        async move {
            self.file
                .write_all(chunk)
                .await
                .map_err(|e| format!("{}: {e}", self.partial.display()))?;
            self.verifier.feed(chunk).await;
            self.done += chunk.len() as u64;
            if self.done - self.written_back >= WRITEBACK_STEP {
                fsutil::start_writeback(
                    self.file.get_ref(),
                    self.written_back,
                    self.done - self.written_back,
                );
                self.written_back = self.done;
            }
            self.progress.report(self.done);
            Ok(())
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Option<Frame>> {
        async move {
            let Incoming {
                inner,
                peer,
                row,
                mut file,
                partial,
                final_path,
                verifier,
                resumed,
                _claim,
                ..
            } = *self;
            let flushed = match file.flush().await {
                Ok(()) => file.get_ref().sync_all().await,
                Err(e) => Err(e),
            };
            if let Err(e) = flushed {
                tracing::error!(error = %e, "could not sync a partial attachment");
                return None;
            }
            drop(file);
            let (id, index) = (row.message_id, row.index);
            // The bytes in the file, checked as they were written.
            let checked = verifier.verdict().await;
            match checked {
                Some(Ok(())) => {}
                Some(Err(detail)) if resumed => {
                    // The damage may be ours: the tail of the kept bytes can
                    // be lost in a power cut. Drop them and give no answer,
                    // so the sender offers again and sends it whole; damage
                    // in a whole transfer is refused below.
                    let _ = tokio::fs::remove_file(&partial).await;
                    tracing::warn!(%id, index, %detail, "a resumed attachment failed its check; fetching it again whole");
                    audit(
                        &inner,
                        peer.name.as_str(),
                        "discard",
                        &format!(
                            "peer={} id={id} attachment={index} reason=resumed-check-failed",
                            peer.name
                        ),
                    )
                    .await;
                    return None;
                }
                Some(Err(detail)) => {
                    // A damaged file is dropped whole.
                    let _ = tokio::fs::remove_file(&partial).await;
                    audit(
                        &inner,
                        peer.name.as_str(),
                        "refuse",
                        &format!(
                            "peer={} id={id} attachment={index} code=malformed",
                            peer.name
                        ),
                    )
                    .await;
                    return Some(
                        refuse(&inner, &peer, id, index, RefusalCode::Malformed, detail.to_string()).await,
                    );
                }
                None => {
                    tracing::error!(%id, index, "an attachment check ended without a verdict");
                    return None;
                }
            }
            if let Err(e) = tokio::fs::rename(&partial, &final_path).await {
                tracing::error!(error = %e, "could not keep a verified attachment");
                return None;
            }
            let doc = receipt(&inner, &peer.name, ReceiptOf::Attachment, id, Some(index), None);
            // Receipted only once the journal says it is stored.
            match inner
                .journal
                .settle_attachment(
                    id,
                    Direction::In,
                    index,
                    AttachmentState::Receipted,
                    None,
                    Some(doc.clone()),
                )
                .done()
                .await
            {
                Ok(news) => {
                    if news {
                        inner.emit(Event::AttachmentStored {
                            id,
                            index,
                            direction: Direction::In,
                            peer: peer.name.to_string(),
                        });
                    }
                    Some(Frame::new(FrameKind::Receipt, doc))
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record a stored attachment");
                    None
                }
            }
        }
        .boxed()
    }
}
