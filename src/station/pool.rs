//! The station's crypto pool: a fixed set of threads that build, seal and
//! open messages, most urgent first. Sealing and opening are CPU work of
//! tens to hundreds of microseconds each; done here, they run in parallel
//! and never hold the journal's writer, and a FLASH waits for no work
//! queued before it — only for the jobs already running, which are short.
//!
//! Jobs are taken by [`Urgency`] (FLASH first, then IMMEDIATE, PRIORITY,
//! ROUTINE, then work whose precedence is not known yet, such as an
//! inbound message before it is opened), and in arrival order within one.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::domain::Precedence;

/// How urgent a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// Precedence not known until the job has run (an inbound message).
    Unknown,
    Known(Precedence),
}

impl Urgency {
    /// Ranks higher for more urgent work.
    fn rank(self) -> u8 {
        match self {
            Urgency::Unknown => 0,
            Urgency::Known(Precedence::Routine) => 1,
            Urgency::Known(Precedence::Priority) => 2,
            Urgency::Known(Precedence::Immediate) => 3,
            Urgency::Known(Precedence::Flash) => 4,
        }
    }
}

type Task = Box<dyn FnOnce() + Send>;

struct Queued {
    rank: u8,
    order: u64,
    task: Task,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// The heap pops the greatest: most urgent, then oldest.
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then(other.order.cmp(&self.order))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Queued>,
    order: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pool; its threads stop when it is dropped, after the work queued.
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The pool stopped before the job ran (the station is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the station's crypto pool has stopped")]
pub struct Stopped;

impl Pool {
    /// A pool of one thread per core the process may use.
    pub fn new() -> std::io::Result<Pool> {
        let n = std::thread::available_parallelism().map_or(2, usize::from);
        Pool::with_threads(n)
    }

    pub fn with_threads(n: usize) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared::default());
        let threads = (0..n.max(1))
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("crypto-{i}"))
                    .spawn(move || work(&shared))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Pool { shared, threads })
    }

    /// Queues `f` on the pool at `urgency` now, and returns its result
    /// once it has run.
    pub fn run<T, F>(
        &self,
        urgency: Urgency,
        f: F,
    ) -> impl Future<Output = Result<T, Stopped>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let mut q = self.shared.queue();
        // A closed pool drops `reply`, which the caller sees as `Stopped`.
        if !q.closed {
            q.order += 1;
            let order = q.order;
            q.heap.push(Queued {
                rank: urgency.rank(),
                order,
                task: Box::new(move || {
                    let _ = reply.send(f());
                }),
            });
            drop(q);
            self.shared.ready.notify_one();
        }
        async move { rx.await.map_err(|_| Stopped) }
    }
}

fn work(shared: &Shared) {
    loop {
        let task = {
            let mut q = shared.queue();
            loop {
                if let Some(job) = q.heap.pop() {
                    break job.task;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A job that panics (a bug, never outside data: parsing returns
        // errors) drops its reply, which its caller sees as `Stopped`; the
        // thread goes on.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
            tracing::error!("a crypto pool job panicked");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.ready.notify_all();
        // The last owner may be a job on one of these threads: it cannot
        // wait for itself, and it ends as soon as its job returns.
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_most_urgent_job_waiting_runs_first() {
        let pool = Pool::with_threads(1).expect("pool");
        // Hold the only thread until every job is queued.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let busy = pool.run(Urgency::Unknown, move || {
            let _ = started.send(());
            let _ = held.recv();
        });
        running.recv().expect("the holding job runs");
        let order = Arc::new(Mutex::new(Vec::new()));
        let job = |name: &'static str, urgency| {
            let order = order.clone();
            pool.run(urgency, move || order.lock().expect("lock").push(name))
        };
        let jobs = futures_util::future::join_all([
            job("unknown", Urgency::Unknown),
            job("routine-1", Urgency::Known(Precedence::Routine)),
            job("flash", Urgency::Known(Precedence::Flash)),
            job("routine-2", Urgency::Known(Precedence::Routine)),
            job("immediate", Urgency::Known(Precedence::Immediate)),
        ]);
        // Nothing has run yet: the thread is held (control for the order).
        assert!(order.lock().expect("lock").is_empty());
        release.send(()).expect("send");
        let (b, all) = tokio::join!(busy, jobs);
        assert!(b.is_ok() && all.iter().all(Result::is_ok));
        assert_eq!(
            *order.lock().expect("lock"),
            ["flash", "immediate", "routine-1", "routine-2", "unknown"]
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_pool_goes_on() {
        let pool = Pool::with_threads(1).expect("pool");
        let failed = pool
            .run(Urgency::Unknown, || -> u8 { panic!("a bug in a job") })
            .await;
        assert_eq!(failed, Err(Stopped));
        assert_eq!(pool.run(Urgency::Unknown, || 7).await, Ok(7));
    }
}
