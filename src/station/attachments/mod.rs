//! Attachments' journeys. Sending: at release each file is read once,
//! streaming — hashed (SHA-256 of the plaintext), counted, and sealed with
//! age to the peer and to us into its own file — and the signed message
//! lists name, size and hash. Once the peer has receipted the message, each
//! attachment is uploaded on its own lowest-priority stream, outside the
//! message queue's in-flight limit, resuming where the peer stopped.
//! Receiving: an offer is checked against the signed message and the limits
//! before any content is read; the bytes are appended to a partial sealed
//! file and, as they arrive, decrypted and hashed on a thread of their own
//! (`verify.rs`); when complete, synced and checked against the signed size
//! and hash, it is receipted. Memory stays bounded by a few chunks whatever
//! the file size. Nothing here reads a whole file.

mod receive;
mod upload;
mod verify;

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use age::{Identity, Recipient};
use sha2::{Digest, Sha256};

use super::{Event, Inner, StationError};
use crate::config::AttachmentLimits;
use crate::crypto::keys::seal_recipients;
use crate::crypto::{PeerKeys, StationKeys};
use crate::domain::{AttachmentRef, MessageId, format_size};
use crate::fsutil;
use crate::store::{AttachmentRow, AttachmentState, Direction, StagedAttachment};

pub(crate) use receive::{Receiving, offered};
pub(crate) use upload::dispatch;

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

/// A file to attach, opened by the caller, under the name the peer sees.
pub struct Outgoing {
    pub name: String,
    pub file: std::fs::File,
}

/// Checks files against the limits before anything is read.
fn check_limits(files: &[Outgoing], limits: AttachmentLimits) -> Result<(), StationError> {
    let mut total = 0u64;
    for f in files {
        let shown = crate::sanitize::inert(&f.name);
        // What a file may be called here; the receiver makes it safe for
        // its own disk and screen.
        if f.name.is_empty() || f.name.len() > 255 || f.name.contains(['/', '\0']) {
            return Err(StationError::Refused(format!(
                "attachment name {shown:?} is not a file name: it needs 1 to 255 bytes, and no '/' or NUL"
            )));
        }
        let meta = f
            .file
            .metadata()
            .map_err(|e| StationError::Refused(format!("attachment {shown}: {e}")))?;
        if !meta.is_file() {
            return Err(StationError::Refused(format!(
                "attachment {shown} is not a regular file"
            )));
        }
        if meta.len() > limits.max_size {
            return Err(StationError::Refused(format!(
                "attachment {shown} is {}, over the limit of {} (attachments.max_size in operator.toml)",
                format_size(meta.len()),
                format_size(limits.max_size)
            )));
        }
        total = total.saturating_add(meta.len());
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
/// reading it once from where the caller's descriptor stands. Runs on a
/// blocking thread.
pub(super) fn stage(
    data_dir: &Path,
    keys: &StationKeys,
    peer: &PeerKeys,
    files: Vec<Outgoing>,
    limits: AttachmentLimits,
) -> Result<(Vec<AttachmentRef>, Vec<StagedAttachment>), StationError> {
    check_limits(&files, limits)?;
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
    files: Vec<Outgoing>,
    limits: AttachmentLimits,
) -> Result<(Vec<AttachmentRef>, Vec<StagedAttachment>), StationError> {
    let sealing = seal_recipients(keys, peer);
    let mut refs = Vec::new();
    let mut staged = Vec::new();
    for (i, Outgoing { name, file }) in files.into_iter().enumerate() {
        let rel = batch.join(format!("{i}.age"));
        let out = data_dir.join(&rel);
        let fail = |e: String| {
            StationError::Refused(format!("attachment {}: {e}", crate::sanitize::inert(&name)))
        };
        let (size, sha256) = seal_file(file, &out, &sealing.recipients(), limits.max_size)
            .map_err(|e| fail(e.to_string()))?;
        let sealed_len = std::fs::metadata(&out)
            .map_err(|e| fail(e.to_string()))?
            .len();
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

/// Why a sealed attachment does not check out. The text goes into the
/// refusal the sender is shown, and into the export error.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{}: {cause}", path.display())]
    Open { path: PathBuf, cause: io::Error },
    #[error("{0}")]
    Read(io::Error),
    #[error(transparent)]
    Header(#[from] crate::crypto::age_io::AgeError),
    #[error(transparent)]
    Decrypt(#[from] age::DecryptError),
    #[error("damaged or tampered with: {0}")]
    Damaged(io::Error),
    #[error("longer than the {size} bytes the signed message gives")]
    TooLong { size: u64 },
    #[error("{count} bytes, not the {size} the signed message gives")]
    Length { count: u64, size: u64 },
    #[error("SHA-256 {got} differs from the {want} the signed message gives")]
    Hash { got: String, want: String },
    #[error("{0}")]
    Write(io::Error),
}

/// Decrypts a sealed attachment into `out` streaming, checking it against
/// the signed size and SHA-256. Nothing past `size` bytes is read.
pub fn decrypt_into(
    sealed: &Path,
    identities: &[&dyn Identity],
    size: u64,
    sha256: &str,
    out: &mut dyn Write,
) -> Result<(), CheckError> {
    let file = std::fs::File::open(sealed).map_err(|cause| CheckError::Open {
        path: sealed.to_path_buf(),
        cause,
    })?;
    check_sealed(BufReader::new(file), identities, size, sha256, out)
}

/// The sealed bytes of an attachment, read once as they come: the header
/// is checked before any key is tried, then the content is decrypted into
/// `out` and checked against the signed size and SHA-256.
pub(super) fn check_sealed(
    mut sealed: impl Read,
    identities: &[&dyn Identity],
    size: u64,
    sha256: &str,
    out: &mut dyn Write,
) -> Result<(), CheckError> {
    const HEAD: usize = crate::crypto::age_io::MAX_HEADER + 64;
    let mut head = Vec::with_capacity(HEAD);
    (&mut sealed)
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(CheckError::Read)?;
    crate::crypto::age_io::check_header(&head)?;
    let decryptor = age::Decryptor::new(io::Cursor::new(head).chain(sealed))?;
    let mut reader = decryptor.decrypt(identities.iter().copied())?;
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf).map_err(CheckError::Damaged)?;
        if n == 0 {
            break;
        }
        count += n as u64;
        if count > size {
            return Err(CheckError::TooLong { size });
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(CheckError::Write)?;
    }
    if count != size {
        return Err(CheckError::Length { count, size });
    }
    let got = hex::encode(hasher.finalize());
    if !got.eq_ignore_ascii_case(sha256) {
        return Err(CheckError::Hash {
            got,
            want: sha256.to_string(),
        });
    }
    Ok(())
}

/// Writes a stored message's attachments, decrypted and checked, into
/// `into`: files the caller opened for writing, one per attachment in the
/// message's order. Returns the places of those written and why the others
/// were not (still on their way, refused); their files are left empty. A
/// check that fails mid-way is an error naming the attachment: its file
/// holds unchecked bytes, which the caller discards
/// ([`crate::exports::Pending`] does).
pub fn export_into(
    data_dir: &Path,
    identities: &[&dyn Identity],
    rows: &[AttachmentRow],
    into: Vec<std::fs::File>,
) -> Result<(Vec<usize>, Vec<String>), ExportError> {
    if into.len() != rows.len() {
        return Err(ExportError::Files {
            attachments: rows.len(),
            files: into.len(),
        });
    }
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for (place, (row, file)) in rows.iter().zip(into).enumerate() {
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
        let mut w = BufWriter::new(&file);
        decrypt_into(
            &data_dir.join(&row.sealed_path),
            identities,
            row.size,
            &row.sha256,
            &mut w,
        )
        .and_then(|()| w.flush().map_err(CheckError::Write))
        .and_then(|()| file.sync_all().map_err(CheckError::Write))
        .map_err(|cause| ExportError::Check {
            index: row.index,
            name: shown,
            cause,
        })?;
        written.push(place);
    }
    Ok((written, skipped))
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the message has {attachments} attachments, and {files} files were handed over to write them into"
    )]
    Files { attachments: usize, files: usize },
    #[error("attachment {index} ({name}): {cause}")]
    Check {
        index: u32,
        name: String,
        cause: CheckError,
    },
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
