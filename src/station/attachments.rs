//! Attachments' journeys. Sending: at release each file is read once,
//! streaming — hashed (SHA-256 of the plaintext), counted, and sealed with
//! age to the peer and to us into its own file — and the signed message
//! lists name, size and hash. Once the peer has receipted the message, each
//! attachment is uploaded on its own lowest-priority stream, outside the
//! message queue's in-flight limit, resuming where the peer stopped.
//! Receiving: an offer is checked against the signed message and the limits
//! before any content is read; the bytes are appended to a partial sealed
//! file; when complete it is decrypted streaming and checked against the
//! signed size and hash, and only then receipted. Memory stays bounded by a
//! few chunks whatever the file size. Nothing here reads a whole file.

use std::collections::HashSet;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use age::{Identity, Recipient};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::docs::{self, ReceiptBody, ReceiptOf, RefusalBody, RefusalCode};
use super::inbound::audit;
use super::{AlarmKind, Event, Inner, StationError};
use crate::config::AttachmentLimits;
use crate::crypto::signed::Kind;
use crate::crypto::{PeerKeys, StationKeys};
use crate::domain::{AttachmentRef, MessageId, StationName, format_size};
use crate::fsutil;
use crate::link::{AttachmentSink, OfferAnswer, UploadSource};
use crate::store::{AttachmentRow, AttachmentState, Direction, StagedAttachment};
use crate::wire::{AttachmentOffer, Frame, FrameKind};

/// Attachment uploads in flight per peer, outside the message queue's
/// limit: FLASH never waits for a stream an attachment holds.
pub const MAX_UPLOADS: usize = 2;
/// Stream priority of attachments: below every message (0..=3).
pub const ATTACHMENT_PRIORITY: i32 = -1;
/// Pause before a failed upload is offered again while the link stays up.
const UPLOAD_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Progress events go out at most once per this share of a file (percent).
const PROGRESS_STEP_PERCENT: u64 = 2;
/// Bytes read from a file at a time.
const CHUNK: usize = 64 * 1024;
/// Bytes read from or written to an attachment's sealed file at once, so
/// the file is not touched (one blocking-pool hop each) per network chunk.
const WRITE_BUFFER: usize = 1 << 20;

/// What has arrived so far is a partial file with this suffix.
const PARTIAL_SUFFIX: &str = "part";

/// Sealed length an attachment of `size` plaintext bytes may have: the age
/// header (two X25519 stanzas, well under 4 KiB), the 16-byte nonce, and a
/// 16-byte tag per 64 KiB chunk.
pub fn sealed_bound(size: u64) -> u64 {
    size.saturating_add((size / (64 * 1024) + 1) * 16)
        .saturating_add(16 + 4096)
}

/// Checks files against the limits before anything is read.
fn check_limits(files: &[PathBuf], limits: AttachmentLimits) -> Result<(), StationError> {
    let mut total = 0u64;
    for f in files {
        let meta = std::fs::metadata(f)
            .map_err(|e| StationError::Refused(format!("attachment {}: {e}", f.display())))?;
        if !meta.is_file() {
            return Err(StationError::Refused(format!(
                "attachment {} is not a regular file",
                f.display()
            )));
        }
        if meta.len() > limits.max_size {
            return Err(StationError::Refused(format!(
                "attachment {} is {}, over the limit of {} (attachments.max_size in operator.toml)",
                f.display(),
                format_size(meta.len()),
                format_size(limits.max_size)
            )));
        }
        total += meta.len();
    }
    if total > limits.max_message {
        return Err(StationError::Refused(format!(
            "the attachments come to {}, over the limit of {} per message (attachments.max_message in operator.toml)",
            format_size(total),
            format_size(limits.max_message)
        )));
    }
    Ok(())
}

/// Seals each file for `peer` into DATA_DIR/attachments/out/<batch>/<i>.age,
/// reading it once. Runs on a blocking thread.
pub(super) fn stage(
    data_dir: &Path,
    keys: &StationKeys,
    peer: &PeerKeys,
    files: &[PathBuf],
    limits: AttachmentLimits,
) -> Result<(Vec<AttachmentRef>, Vec<StagedAttachment>), StationError> {
    check_limits(files, limits)?;
    if files.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let batch = PathBuf::from("attachments")
        .join("out")
        .join(uuid::Uuid::now_v7().to_string());
    let dir = data_dir.join(&batch);
    fsutil::create_private_dir(&dir)
        .map_err(|e| StationError::Refused(format!("creating {}: {e}", dir.display())))?;
    let sealed = seal_all(data_dir, &batch, keys, peer, files, limits);
    if sealed.is_err() {
        // Nothing half-sealed is left behind.
        let _ = std::fs::remove_dir_all(&dir);
    }
    sealed
}

fn seal_all(
    data_dir: &Path,
    batch: &Path,
    keys: &StationKeys,
    peer: &PeerKeys,
    files: &[PathBuf],
    limits: AttachmentLimits,
) -> Result<(Vec<AttachmentRef>, Vec<StagedAttachment>), StationError> {
    let own = keys.age.to_public();
    let mut refs = Vec::new();
    let mut staged = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let rel = batch.join(format!("{i}.age"));
        let out = data_dir.join(&rel);
        let fail = |e: String| StationError::Refused(format!("attachment {}: {e}", file.display()));
        let input = std::fs::File::open(file).map_err(|e| fail(e.to_string()))?;
        let recipients: [&dyn Recipient; 2] = [&peer.age, &own];
        let (size, sha256) = seal_file(input, &out, &recipients, limits.max_size)
            .map_err(|e| fail(e.to_string()))?;
        let sealed_len = std::fs::metadata(&out)
            .map_err(|e| fail(e.to_string()))?
            .len();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        refs.push(AttachmentRef { name, size, sha256 });
        staged.push(StagedAttachment {
            sealed_path: rel,
            sealed_len,
        });
    }
    Ok((refs, staged))
}

/// Streams `input` through SHA-256 and age into a new owner-only file.
/// Returns the plaintext's size and hash. Refuses more than `limit` bytes
/// (a file that grew after it was checked).
fn seal_file(
    mut input: impl Read,
    out: &Path,
    recipients: &[&dyn Recipient],
    limit: u64,
) -> io::Result<(u64, String)> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)?;
    let encryptor = age::Encryptor::with_recipients(recipients.iter().copied())
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut writer = encryptor.wrap_output(BufWriter::new(file))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(io::Error::other("the file grew past the size limit"));
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
    }
    // Without finish() the age stream is silently truncated (STACK.md trap 7).
    let file = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Decrypts a sealed attachment into `out` streaming, checking it against
/// the signed size and SHA-256. Nothing past `size` bytes is read.
pub fn decrypt_into(
    sealed: &Path,
    identity: &dyn Identity,
    size: u64,
    sha256: &str,
    out: &mut dyn Write,
) -> Result<(), String> {
    let file = std::fs::File::open(sealed).map_err(|e| format!("{}: {e}", sealed.display()))?;
    let decryptor = age::Decryptor::new(BufReader::new(file)).map_err(|e| e.to_string())?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity))
        .map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("damaged or tampered with: {e}"))?;
        if n == 0 {
            break;
        }
        count += n as u64;
        if count > size {
            return Err(format!(
                "longer than the {size} bytes the signed message gives"
            ));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
    }
    if count != size {
        return Err(format!(
            "{count} bytes, not the {size} the signed message gives"
        ));
    }
    let got = hex::encode(hasher.finalize());
    if !got.eq_ignore_ascii_case(sha256) {
        return Err(format!(
            "SHA-256 {got} differs from the {sha256} the signed message gives"
        ));
    }
    Ok(())
}

/// Writes a message's attachments, decrypted and checked, into `dir` under
/// sanitised names, never replacing a file. Returns what was written and
/// what was skipped (not yet arrived, refused).
pub fn export(
    data_dir: &Path,
    identity: &dyn Identity,
    rows: &[AttachmentRow],
    dir: &Path,
) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    fsutil::create_private_dir(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for row in rows {
        let shown = crate::sanitize::inert(&row.name);
        if row.direction == Direction::In && row.state != AttachmentState::Receipted {
            skipped.push(format!(
                "attachment {} ({shown}) is {}",
                row.index,
                match row.state {
                    AttachmentState::Refused => "refused",
                    _ => "still on its way",
                }
            ));
            continue;
        }
        let (path, mut file) = create_unique(dir, &crate::sanitize::file_name(&row.name))
            .map_err(|e| format!("writing into {}: {e}", dir.display()))?;
        let result = {
            let mut w = BufWriter::new(&mut file);
            decrypt_into(
                &data_dir.join(&row.sealed_path),
                identity,
                row.size,
                &row.sha256,
                &mut w,
            )
            .and_then(|()| w.flush().map_err(|e| e.to_string()))
        };
        if let Err(e) = result.and_then(|()| file.sync_all().map_err(|e| e.to_string())) {
            let _ = std::fs::remove_file(&path);
            return Err(format!("attachment {} ({shown}): {e}", row.index));
        }
        written.push(path);
    }
    Ok((written, skipped))
}

/// Creates `dir/name`, or `name (1)`, `name (2)` … if taken: never replaces.
fn create_unique(dir: &Path, name: &str) -> io::Result<(PathBuf, std::fs::File)> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            name.to_string()
        } else {
            format!("{stem} ({n}){ext}")
        };
        let path = dir.join(candidate);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{name}: too many files of that name"
    )))
}

// ---------------------------------------------------------------- sending

/// Uploads `peer`'s due attachments whenever the link is up, a few at a
/// time. Woken when a message with attachments is receipted.
pub(super) async fn dispatch(inner: Arc<Inner>, peer: StationName) {
    let (Some(link), Some(wake)) = (inner.link(), inner.uploads.get(&peer)) else {
        return;
    };
    let Some(mut up) = link.watch_up(&peer) else {
        return;
    };
    let wake = wake.clone();
    let mut stop = inner.stop.subscribe();
    let mut in_flight: JoinSet<(MessageId, u32)> = JoinSet::new();
    let mut busy: HashSet<(MessageId, u32)> = HashSet::new();
    loop {
        if *stop.borrow() {
            return;
        }
        if !*up.borrow_and_update() {
            tokio::select! {
                _ = up.changed() => continue,
                _ = stop.changed() => return,
            }
        }
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
        Ok(frame) => settle_upload(&inner, &peer, peer_keys, &row, frame).await,
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
                inner.emit(Event::Alarm {
                    kind: AlarmKind::Refused,
                    peer: Some(peer.to_string()),
                    id: Some(row.message_id),
                    text: format!(
                        "{peer} REFUSED attachment {} of message {}: {}",
                        row.index,
                        row.message_id,
                        r.code.as_str()
                    ),
                });
            }
            Ok(())
        }
        other => Err(format!("answered with a {other:?} frame")),
    }
}

/// Progress events for one transfer, a few percent apart.
struct Progress {
    inner: Arc<Inner>,
    id: MessageId,
    index: u32,
    direction: Direction,
    total: u64,
    last_step: AtomicU64,
}

impl Progress {
    fn new(inner: Arc<Inner>, id: MessageId, index: u32, direction: Direction, total: u64) -> Self {
        Progress {
            inner,
            id,
            index,
            direction,
            total,
            last_step: AtomicU64::new(u64::MAX),
        }
    }

    fn report(&self, done: u64) {
        let step = done.saturating_mul(100) / self.total.max(1) / PROGRESS_STEP_PERCENT;
        if self.last_step.swap(step, Ordering::Relaxed) != step {
            self.inner.emit(Event::AttachmentProgress {
                id: self.id,
                index: self.index,
                direction: self.direction,
                done,
                total: self.total,
            });
        }
    }
}

// -------------------------------------------------------------- receiving

/// Attachments being received right now, so a second offer of the same one
/// (a retry racing a stream not yet torn down) never appends to its file.
#[derive(Default)]
pub(super) struct Receiving(Mutex<HashSet<(MessageId, u32)>>);

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

fn attachment_refusal(
    inner: &Inner,
    peer: &PeerKeys,
    id: MessageId,
    index: u32,
    code: RefusalCode,
    detail: String,
) -> Frame {
    let body = RefusalBody {
        protocol: docs::protocol(),
        id: Some(id),
        attachment: Some(index),
        from: inner.keys.name.clone(),
        to: peer.name.clone(),
        code,
        detail,
    };
    Frame::new(
        FrameKind::Refusal,
        docs::sign(Kind::Refusal, &body, &inner.keys),
    )
}

fn attachment_receipt(inner: &Inner, peer: &StationName, id: MessageId, index: u32) -> Vec<u8> {
    let body = ReceiptBody {
        protocol: docs::protocol(),
        of: ReceiptOf::Attachment,
        id,
        attachment: Some(index),
        from: inner.keys.name.clone(),
        to: peer.clone(),
        stored_at: Timestamp::now(),
    };
    docs::sign(Kind::Receipt, &body, &inner.keys)
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
    let frame = attachment_refusal(inner, peer, id, index, code, detail.clone());
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
pub(super) async fn offered(inner: &Arc<Inner>, peer: &StationName, offer: &Frame) -> OfferAnswer {
    let Some(peer_keys) = inner.peer(peer.as_str()).cloned() else {
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
                "refuse",
                &format!("peer={peer} id={id} attachment={index} unknown"),
            )
            .await;
            return OfferAnswer::Answer(attachment_refusal(
                inner,
                &peer_keys,
                id,
                index,
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
            return OfferAnswer::Answer(attachment_refusal(
                inner, &peer_keys, id, index, code, detail,
            ));
        }
        AttachmentState::Pending => {}
    }
    let limits = inner.config.attachments;
    let message_total: u64 = match inner.journal.attachments(&id, Direction::In) {
        Ok(rows) => rows.iter().map(|r| r.size).sum(),
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
            done: have,
            progress,
            _claim: claim,
        }),
    }
}

/// An attachment arriving: appended to its partial file, verified at the end.
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
    done: u64,
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
            self.done += chunk.len() as u64;
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
            let checked = {
                let inner = inner.clone();
                let partial = partial.clone();
                tokio::task::spawn_blocking(move || {
                    decrypt_into(
                        &partial,
                        &inner.keys.age,
                        row.size,
                        &row.sha256,
                        &mut io::sink(),
                    )
                })
                .await
            };
            match checked {
                Ok(Ok(())) => {}
                Ok(Err(detail)) => {
                    // A damaged file is dropped whole: the next offer starts
                    // from nothing rather than resuming into bad bytes.
                    let _ = tokio::fs::remove_file(&partial).await;
                    audit(
                        &inner,
                        "refuse",
                        &format!(
                            "peer={} id={id} attachment={index} code=malformed",
                            peer.name
                        ),
                    )
                    .await;
                    return Some(
                        refuse(&inner, &peer, id, index, RefusalCode::Malformed, detail).await,
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "attachment check task failed");
                    return None;
                }
            }
            if let Err(e) = tokio::fs::rename(&partial, &final_path).await {
                tracing::error!(error = %e, "could not keep a verified attachment");
                return None;
            }
            let doc = attachment_receipt(&inner, &peer.name, id, index);
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
