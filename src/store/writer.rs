//! The journal's single writer thread. Jobs queue on a channel; the thread
//! takes every job waiting (up to a batch limit), runs each in its own
//! savepoint inside one transaction, commits once, and only then answers
//! each caller. So a caller told "stored" is told so after the commit, and a
//! failing job rolls back alone without spoiling its batch.

use std::sync::mpsc::{Receiver, TryRecvError};

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, Transaction};

use super::StoreError;
use super::audit;
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

pub fn run(mut conn: Connection, jobs: Receiver<Job>, checkpoint: Option<CheckpointKey>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let completions = run_batch(&mut conn, batch, checkpoint.as_ref());
        let (outcome, completions) = completions;
        for done in completions {
            done(outcome.as_ref().map(|_| ()));
        }
    }
}

fn run_batch(
    conn: &mut Connection,
    batch: Vec<Job>,
    checkpoint: Option<&CheckpointKey>,
) -> (Result<(), StoreError>, Vec<Completion>) {
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
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
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
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = tx.execute_batch(end) {
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
    (tx.commit().map_err(StoreError::from), completions)
}
