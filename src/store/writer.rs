//! The journal's single writer thread. Jobs queue in two lanes, urgent
//! (FLASH) and normal; the thread takes every urgent job waiting, then
//! normal ones, up to a batch limit, runs each in its own savepoint inside
//! one transaction, commits once, and only then answers each caller. So a
//! caller told "stored" is told so after the commit, a failing job rolls
//! back alone without spoiling its batch, and a FLASH waits for no job
//! queued before it — only for the batch already running.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, Transaction};

use super::audit;
use super::{Cached as _, StoreError};
use crate::domain::StationName;

/// How many jobs one transaction may carry.
pub const MAX_BATCH: usize = 512;

/// What the writer reports to a job after the batch's commit.
pub type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// A unit of work: runs inside the transaction, returns what to do after it.
pub type Job = Box<dyn FnOnce(&Transaction<'_>) -> (bool, Completion) + Send>;

/// The key that signs audit checkpoints, and whose station it is.
#[derive(Clone)]
pub struct CheckpointKey {
    pub station: StationName,
    pub key: SigningKey,
}

#[derive(Default)]
struct Lanes {
    urgent: VecDeque<Job>,
    normal: VecDeque<Job>,
    closed: bool,
}

/// The writer's queue: two lanes, a bound on the normal one; and whether
/// the journal can be written (see [`Queue::trouble`]).
#[derive(Default)]
pub struct Queue {
    lanes: Mutex<Lanes>,
    ready: Condvar,
    space: Condvar,
    trouble: Mutex<Option<String>>,
}

impl Queue {
    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`, or hands it back if the normal lane holds `bound`
    /// jobs already. The urgent lane is never refused: FLASH is rare, and
    /// must not wait for room behind a flood.
    pub fn try_push(&self, job: Job, urgent: bool, bound: usize) -> Result<(), Job> {
        let mut lanes = self.lanes();
        if lanes.closed {
            return Ok(());
        }
        if urgent {
            lanes.urgent.push_back(job);
        } else if lanes.normal.len() >= bound {
            return Err(job);
        } else {
            lanes.normal.push_back(job);
        }
        drop(lanes);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a normal `job`, waiting for room (from a blocking thread).
    pub fn push_waiting(&self, job: Job, bound: usize) {
        let mut lanes = self.lanes();
        while lanes.normal.len() >= bound && !lanes.closed {
            lanes = self
                .space
                .wait(lanes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !lanes.closed {
            lanes.normal.push_back(job);
            drop(lanes);
            self.ready.notify_one();
        }
    }

    /// Why the journal could not be written (a full disk, an I/O error),
    /// from the last write that failed so, until a write commits again.
    pub fn trouble(&self) -> Option<String> {
        self.trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Notes a write that failed for want of storage.
    pub fn failed(&self, e: &StoreError) {
        if e.is_storage() {
            *self.trouble.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
        }
    }

    fn committed(&self) {
        *self.trouble.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Lets the writer finish what is queued and stop.
    pub fn close(&self) {
        self.lanes().closed = true;
        self.ready.notify_all();
        self.space.notify_all();
    }

    /// The next batch, urgent jobs first; `None` once closed and drained.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut lanes = self.lanes();
        while lanes.urgent.is_empty() && lanes.normal.is_empty() {
            if lanes.closed {
                return None;
            }
            lanes = self
                .ready
                .wait(lanes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let from_urgent = lanes.urgent.len().min(MAX_BATCH);
        let mut batch: Vec<Job> = lanes.urgent.drain(..from_urgent).collect();
        let from_normal = lanes.normal.len().min(MAX_BATCH - batch.len());
        batch.extend(lanes.normal.drain(..from_normal));
        drop(lanes);
        self.space.notify_all();
        Some(batch)
    }
}

pub fn run(mut conn: Connection, jobs: &Queue, checkpoint: Option<CheckpointKey>) {
    while let Some(batch) = jobs.next_batch() {
        let (outcome, completions) = run_batch(&mut conn, batch, checkpoint.as_ref());
        match &outcome {
            Ok(true) => jobs.committed(),
            Ok(false) => {}
            Err(e) => jobs.failed(e),
        }
        let outcome = outcome.map(|_| ());
        for done in completions {
            done(outcome.as_ref().map(|_| ()));
        }
    }
}

fn run_batch(
    conn: &mut Connection,
    batch: Vec<Job>,
    checkpoint: Option<&CheckpointKey>,
) -> (Result<bool, StoreError>, Vec<Completion>) {
    let mut completions = Vec::with_capacity(batch.len());
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let err = StoreError::from(e);
            return (
                Err(err),
                batch
                    .into_iter()
                    .map(|_| -> Completion { Box::new(|_| {}) })
                    .collect(),
            );
        }
    };
    let mut audited = false;
    for job in batch {
        if let Err(e) = tx.execute_cached("SAVEPOINT job", []) {
            let err = StoreError::from(e);
            return (Err(err), completions);
        }
        // A job that panics (a bug, never outside data) must not take the
        // writer down with it: it is rolled back alone and answered with an
        // error, and the batch goes on.
        let (ok, done) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&tx))) {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::error!("a journal job panicked; it was rolled back");
                (
                    false,
                    Box::new(|_: Result<(), &StoreError>| {}) as Completion,
                )
            }
        };
        let end = if ok {
            tx.execute_cached("RELEASE job", []).map(|_| ())
        } else {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Err(e) = end {
            completions.push(done);
            return (Err(StoreError::from(e)), completions);
        }
        audited |= ok;
        completions.push(done);
    }
    if audited
        && let Some(key) = checkpoint
        && let Err(e) = audit::write_checkpoint(&tx, key)
    {
        return (Err(e), completions);
    }
    let kept = audited;
    (
        tx.commit().map(|()| kept).map_err(StoreError::from),
        completions,
    )
}
