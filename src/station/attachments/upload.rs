//! Sending attachments: once the peer has receipted a message, each of its
//! attachments is offered and uploaded on its own lowest-priority stream,
//! a few at a time and outside the message queue, and settled on the
//! peer's signed receipt or refusal. A transport failure leaves it pending;
//! the next offer resumes where the peer stopped.

use std::collections::HashSet;
use std::io::{self};
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::io::AsyncSeekExt;
use tokio::task::JoinSet;

use crate::crypto::PeerKeys;
use crate::crypto::signed::Kind;
use crate::domain::{MessageId, StationName};
use crate::link::UploadSource;
use crate::station::docs::{self, ReceiptBody, ReceiptOf, RefusalBody};
use crate::station::{AlarmKind, Event, Inner};
use crate::store::{AttachmentRow, AttachmentState, Direction};
use crate::wire::{AttachmentOffer, Frame, FrameKind};

use crate::station::outbox::until_up;

use super::{ATTACHMENT_PRIORITY, MAX_UPLOADS, Progress, UPLOAD_RETRY_PAUSE, WRITE_BUFFER};

/// Uploads `peer`'s due attachments whenever the link is up, a few at a
/// time. Woken when a message with attachments is receipted.
pub(crate) async fn dispatch(inner: Arc<Inner>, peer: StationName) {
    let (Some(link), Some(wake)) = (inner.link(), inner.uploads(peer.as_str())) else {
        return;
    };
    let Some(mut up) = link.watch_up(&peer) else {
        return;
    };
    let mut stop = inner.stop.subscribe();
    let mut in_flight: JoinSet<(MessageId, u32)> = JoinSet::new();
    let mut busy: HashSet<(MessageId, u32)> = HashSet::new();
    while until_up(&mut up, &mut stop).await {
        let due = match inner.journal.uploads_due(peer.as_str()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "could not read due attachments");
                Vec::new()
            }
        };
        for row in due {
            if in_flight.len() >= MAX_UPLOADS {
                break;
            }
            if busy.insert((row.message_id, row.index)) {
                in_flight.spawn(upload(inner.clone(), peer.clone(), row));
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(key) = done {
                    busy.remove(&key);
                }
            }
            _ = up.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// One attachment's upload: offer, stream, settle on the peer's answer. A
/// transport failure leaves it pending, to resume on the next offer.
async fn upload(inner: Arc<Inner>, peer: StationName, row: AttachmentRow) -> (MessageId, u32) {
    let key = (row.message_id, row.index);
    let (Some(link), Some(peer_keys)) = (inner.link(), inner.peer(peer.as_str())) else {
        return key;
    };
    let sealed_len = row.sealed_len.unwrap_or(0);
    let offer = AttachmentOffer {
        message: row.message_id.0,
        index: row.index,
        sealed_len,
    }
    .frame();
    let path = inner.config.station.data_dir.join(&row.sealed_path);
    let source: UploadSource = Box::new(move |offset| {
        async move {
            let mut f = tokio::fs::File::open(&path).await?;
            f.seek(io::SeekFrom::Start(offset)).await?;
            let reader = tokio::io::BufReader::with_capacity(WRITE_BUFFER, f);
            Ok(Box::new(reader) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)
        }
        .boxed()
    });
    let progress = Progress::new(
        inner.clone(),
        row.message_id,
        row.index,
        Direction::Out,
        sealed_len,
    );
    let answer = link
        .upload(&peer, &offer, ATTACHMENT_PRIORITY, source, &|done| {
            progress.report(done)
        })
        .await;
    let outcome = match answer {
        Ok(frame) => settle_upload(&inner, &peer, &peer_keys, &row, frame).await,
        Err(e) => Err(e.to_string()),
    };
    if let Err(reason) = outcome {
        tracing::info!(%peer, id = %row.message_id, index = row.index, %reason, "attachment upload failed; will resume");
        tokio::time::sleep(UPLOAD_RETRY_PAUSE).await;
    }
    key
}

async fn settle_upload(
    inner: &Inner,
    peer: &StationName,
    peer_keys: &PeerKeys,
    row: &AttachmentRow,
    answer: Frame,
) -> Result<(), String> {
    let us = &inner.keys.name;
    match answer.kind {
        FrameKind::Receipt => {
            let r: ReceiptBody = docs::open(Kind::Receipt, &answer.payload, peer_keys, us)
                .map_err(|e| e.to_string())?;
            if r.of != ReceiptOf::Attachment
                || r.id != row.message_id
                || r.attachment != Some(row.index)
            {
                return Err(format!(
                    "receipt names {} {:?} {:?}, not attachment {} of {}",
                    r.id, r.of, r.attachment, row.index, row.message_id
                ));
            }
            let news = inner
                .journal
                .settle_attachment(
                    row.message_id,
                    Direction::Out,
                    row.index,
                    AttachmentState::Receipted,
                    None,
                    Some(answer.payload),
                )
                .done()
                .await
                .map_err(|e| e.to_string())?;
            if news {
                inner.emit(Event::AttachmentStored {
                    id: row.message_id,
                    index: row.index,
                    direction: Direction::Out,
                    peer: peer.to_string(),
                });
            }
            Ok(())
        }
        FrameKind::Refusal => {
            let r: RefusalBody = docs::open(Kind::Refusal, &answer.payload, peer_keys, us)
                .map_err(|e| e.to_string())?;
            if r.id != Some(row.message_id) || r.attachment != Some(row.index) {
                return Err("the refusal names another attachment".into());
            }
            let reason = format!("{}: {}", r.code.as_str(), r.detail);
            let news = inner
                .journal
                .settle_attachment(
                    row.message_id,
                    Direction::Out,
                    row.index,
                    AttachmentState::Refused,
                    Some(reason.clone()),
                    Some(answer.payload),
                )
                .done()
                .await
                .map_err(|e| e.to_string())?;
            if news {
                inner.emit(Event::AttachmentRefused {
                    id: row.message_id,
                    index: row.index,
                    direction: Direction::Out,
                    peer: peer.to_string(),
                    reason: reason.clone(),
                });
                inner.raise(
                    AlarmKind::Refused,
                    &format!("{}#{}", row.message_id, row.index),
                    Some(peer),
                    Some(row.message_id),
                    crate::t!(
                        inner.config.station.language,
                        "alarm.refused_attachment",
                        peer = peer,
                        index = row.index,
                        id = row.message_id,
                        code = r.code.as_str()
                    ),
                );
            }
            Ok(())
        }
        other => Err(format!("answered with a {other:?} frame")),
    }
}
