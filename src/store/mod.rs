//! The journal: one SQLite file (WAL, `synchronous=FULL`) holding the
//! outbox, inbox, receipts, acknowledgements and the audit log.
//!
//! All writes go through one writer thread that commits in batches
//! ([`writer`]); a caller learns that its write is durable only after the
//! commit. Reads use their own connection. Message content stays sealed as
//! age ciphertext; only what a queue must show is stored in clear.

mod attachments;
pub mod audit;
mod delivery;
mod messages;
mod rotations;
mod schema;
mod serials;
mod state;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, Transaction};
use tokio::sync::oneshot;

pub use attachments::{AttachmentRow, AttachmentState, StagedAttachment, inbound_path};
pub use delivery::{KEPT_PER_PEER, PendingAck, PendingMessage, Stored};
pub use messages::{Amended, Direction, MessageRow, Released};
pub use rotations::{Answered, PeerRotation, Standing};
pub use schema::current_version as schema_version;
pub use state::MessageState;
pub use writer::CheckpointKey;

use crate::fsutil;

/// How many writes may wait for the writer before callers are slowed.
const WRITE_QUEUE: usize = 4096;

/// Why the journal could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("journal: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Permission(#[from] fsutil::PermissionError),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "the journal was written by a newer hotline (schema {found}; this build knows up to {supported}); upgrade hotline"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("the journal is open read-only; writes need a running station")]
    ReadOnly,
    #[error("the journal's writer stopped before answering; the write may not be stored")]
    WriterGone,
    #[error("journal content is damaged: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Rejected(String),
    #[error("no message with id {0} in the journal")]
    NotFound(String),
}

impl StoreError {
    /// Whether this is the storage failing (the disk full, an I/O error, a
    /// file that cannot be opened or written) rather than the request.
    pub fn is_storage(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                C::DiskFull | C::SystemIoFailure | C::CannotOpen | C::ReadOnly
            ),
            StoreError::Io { .. } => true,
            _ => false,
        }
    }
}

/// The journal of one station.
pub struct Journal {
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: Option<Arc<writer::Queue>>,
    thread: Option<JoinHandle<()>>,
    /// The serials reserved towards each peer this run (see [`serials`]).
    serials: serials::Book,
}

/// A write in flight: wait for it (from synchronous code) or await it.
pub struct Pending<T>(oneshot::Receiver<Result<T, StoreError>>);

impl<T> Pending<T> {
    /// Blocks until the write is committed (or failed). Not for async code.
    pub fn wait(self) -> Result<T, StoreError> {
        self.0
            .blocking_recv()
            .unwrap_or(Err(StoreError::WriterGone))
    }

    /// Waits for the write from async code.
    pub async fn done(self) -> Result<T, StoreError> {
        self.0.await.unwrap_or(Err(StoreError::WriterGone))
    }

    /// A write that failed before it was queued.
    fn failed(e: StoreError) -> Pending<T> {
        let (reply, rx) = oneshot::channel();
        let _ = reply.send(Err(e));
        Pending(rx)
    }
}

/// Room for every statement the journal runs, so none is parsed twice.
const STATEMENT_CACHE: usize = 256;

/// Statements run on every message, prepared once per connection and kept
/// in its cache: parsing them each time cost more than running them.
pub(crate) trait Cached {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn query_row_cached<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

impl Journal {
    /// Opens (creating if needed, owner-only) a journal for reading and
    /// writing, and starts its writer thread. `checkpoint` signs the audit
    /// head after each batch.
    pub fn open(path: &Path, checkpoint: Option<CheckpointKey>) -> Result<Journal, StoreError> {
        let io = |cause| StoreError::Io {
            path: path.to_path_buf(),
            cause,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            fsutil::create_private_dir(dir).map_err(io)?;
        }
        if !path.exists() {
            fsutil::create_private(path, b"").map_err(|cause| StoreError::Io {
                path: path.to_path_buf(),
                cause,
            })?;
        }
        fsutil::check_private(path)?;
        let mut conn = Connection::open(path)?;
        // Refuse a newer journal before changing anything in it.
        schema::refuse_newer(&conn)?;
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure_reader(&reader)?;
        let voided = {
            let tx = conn.transaction()?;
            let voided = serials::void_holes(&tx)?;
            // Each void is audited: signed in the same commit, so a crash
            // or an `audit verify` right after the start finds no entry
            // outside a checkpoint.
            if !voided.is_empty()
                && let Some(key) = &checkpoint
            {
                audit::write_checkpoint(&tx, key)?;
            }
            tx.commit()?;
            voided
        };
        for (peer, serial) in voided {
            tracing::warn!(%peer, serial, "a serial reserved before a restart was never stored; declared void");
        }
        let queue = Arc::new(writer::Queue::default());
        let jobs = queue.clone();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::run(conn, &jobs, checkpoint))
            .map_err(io)?;
        Ok(Journal {
            path: path.to_path_buf(),
            reader: Mutex::new(reader),
            writer: Some(queue),
            thread: Some(thread),
            serials: serials::Book::default(),
        })
    }

    /// Opens an existing journal read-only (for commands run while no
    /// station is running). Writes return [`StoreError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> Result<Journal, StoreError> {
        if !path.exists() {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                cause: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no journal here yet; start the station once to create it",
                ),
            });
        }
        fsutil::check_private(path)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure_reader(&reader)?;
        schema::refuse_newer(&reader)?;
        Ok(Journal {
            path: path.to_path_buf(),
            reader: Mutex::new(reader),
            writer: None,
            thread: None,
            serials: serials::Book::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `f` to run in the writer's transaction. The result arrives
    /// after the batch holding it has been committed.
    pub fn write<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_mapped(false, f, |r, _| r)
    }

    /// [`Journal::write`] in the writer's urgent lane if `urgent` (FLASH).
    pub(crate) fn write_at<T, F>(&self, urgent: bool, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_mapped(urgent, f, |r, _| r)
    }

    /// Queues `f`, and answers with `map` of its outcome and whether its
    /// batch committed. A job that returns `Ok` is kept (whatever `map`
    /// makes of it), so a job can store a record of its own failure and
    /// still fail to its caller.
    fn write_mapped<T, U, F, M>(&self, urgent: bool, f: F, map: M) -> Pending<U>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        M: FnOnce(Result<T, StoreError>, bool) -> Result<U, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let Some(queue) = &self.writer else {
            let _ = reply.send(Err(StoreError::ReadOnly));
            return Pending(rx);
        };
        let watch = queue.clone();
        let job: writer::Job = Box::new(move |tx| {
            let result = f(tx);
            if let Err(e) = &result {
                watch.failed(e);
            }
            let ok = result.is_ok();
            let done: writer::Completion = Box::new(move |commit| {
                let committed = ok && commit.is_ok();
                let outcome = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
                };
                let _ = reply.send(map(outcome, committed));
            });
            (ok, done)
        });
        // Never block an async worker on a full queue: hand the wait to a
        // blocking thread instead (the queue being full is backpressure).
        if let Err(job) = queue.try_push(job, urgent, WRITE_QUEUE) {
            let queue = queue.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || queue.push_waiting(job, WRITE_QUEUE));
                }
                Err(_) => queue.push_waiting(job, WRITE_QUEUE),
            }
        }
        Pending(rx)
    }

    /// Writes a consistent copy of the journal to `dest` (which must not
    /// exist), owner-only. It is read on a connection of its own inside one
    /// read transaction: a snapshot of the journal as of one commit. Live
    /// traffic neither spoils it nor restarts it (as it would SQLite's
    /// backup API from another connection), and the writer never waits for
    /// it. Blocking: call it off the async workers.
    pub fn snapshot(&self, dest: &Path) -> Result<(), StoreError> {
        let io = |cause| StoreError::Io {
            path: dest.to_path_buf(),
            cause,
        };
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure_reader(&conn)?;
        // Created owner-only first: VACUUM INTO writes into an empty file.
        fsutil::create_private(dest, b"").map_err(io)?;
        let name = dest.to_str().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path is not UTF-8",
            ))
        })?;
        conn.execute("VACUUM INTO ?1", [name])?;
        Ok(())
    }

    /// Why the journal cannot be written now (its path and the error), if
    /// the last write that touched the storage failed; `None` once a write
    /// commits again.
    pub fn trouble(&self) -> Option<String> {
        let why = self.writer.as_ref()?.trouble()?;
        Some(format!("{}: {why}", self.path.display()))
    }

    /// Runs a read on the reader connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn)
    }
}

fn configure_reader(conn: &Connection) -> Result<(), StoreError> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

impl Drop for Journal {
    /// Closing the channel lets the writer finish every queued job, commit,
    /// and stop; we wait for it so nothing acknowledged is left unwritten.
    fn drop(&mut self) {
        if let Some(queue) = self.writer.take() {
            queue.close();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
