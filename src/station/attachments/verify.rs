//! Checking an attachment while it arrives: the bytes the link hands the
//! partial file are handed to a blocking thread too, which decrypts and
//! hashes them as they come, so the verdict is ready when the last byte
//! is, instead of after a second pass over the whole file.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{CheckError, check_sealed};
use crate::station::Inner;

/// Chunks waiting for the verifier: with the link's 64 KiB reads, 2 MiB.
/// A full queue holds the stream back, so memory stays bounded.
const QUEUED: usize = 32;

/// How much nicer than the station the verifier's thread runs: its work
/// is the bulk of a transfer's CPU, and a FLASH sealed or opened on the
/// same two cores must not wait behind it.
const NICER: libc::c_int = 10;

pub(super) struct Verifier {
    feed: mpsc::Sender<Vec<u8>>,
    verdict: oneshot::Receiver<Result<(), CheckError>>,
}

impl Verifier {
    /// Starts the check of one attachment: first the `kept` bytes already
    /// in `partial` from an earlier transfer, read from the file, then
    /// what is fed.
    pub(super) fn start(
        inner: Arc<Inner>,
        partial: PathBuf,
        kept: u64,
        size: u64,
        sha256: String,
    ) -> Verifier {
        let (feed, rx) = mpsc::channel(QUEUED);
        let (tell, verdict) = oneshot::channel();
        let check = move || {
            lower_priority();
            let file = std::fs::File::open(&partial).map_err(|cause| CheckError::Open {
                path: partial.clone(),
                cause,
            })?;
            let fed = Fed {
                rx,
                chunk: Vec::new(),
                at: 0,
            };
            let sealed = BufReader::new(file.take(kept)).chain(fed);
            check_sealed(
                sealed,
                &inner.keys.identities(),
                size,
                &sha256,
                &mut io::sink(),
            )
        };
        let spawned = std::thread::Builder::new()
            .name("attachment-check".into())
            .spawn(move || {
                let _ = tell.send(check());
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start an attachment check");
        }
        Verifier { feed, verdict }
    }

    /// Hands over the next bytes, waiting while the queue is full. A
    /// verifier that has already given its verdict (damage early in the
    /// file) takes no more, and its verdict says why.
    pub(super) async fn feed(&self, chunk: &[u8]) {
        let _ = self.feed.send(chunk.to_vec()).await;
    }

    /// Every byte has been handed over: the verdict.
    /// `None` if the check never ran or ended without one.
    pub(super) async fn verdict(self) -> Option<Result<(), CheckError>> {
        drop(self.feed);
        self.verdict.await.ok()
    }
}

/// Makes the calling thread (and only it) nicer; where the system does
/// not allow it, the check runs at the station's priority.
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no
    // memory; on Linux PRIO_PROCESS with a thread id changes that thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICER);
    }
}

/// What the link hands over, read on the verifier's thread; the end of
/// the feed is the end of the file.
struct Fed {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Fed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
