//! Delivery under faults, between two real stations on 127.0.0.1 (real
//! quinn, real keys, real journals): a receiver that is down, a sender
//! killed with SIGKILL mid-batch, a lossy and partitioned path, FLASH
//! overtaking a ROUTINE backlog, and failover to the backup address.
//!
//! Every fault test is judged by [`exactly_once`], which counts lost,
//! duplicated and unexpected messages; its own control shows it reports
//! each kind of fault.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotline::domain::{MessageId, Precedence};
use hotline::link::{DIAL_TIMEOUT, PathKind, PeerLinkStatus};
use hotline::station::api::Session;
use hotline::station::{Event, Station};
use hotline::store::{Direction, Journal, MessageState};
use support::proxy::{Proxy, start_proxy};
use support::*;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::{JoinHandle, JoinSet};

// ---------------------------------------------------------------------------
// The exactly-once checker
// ---------------------------------------------------------------------------

/// What went wrong between the ids released and the ids that arrived.
#[derive(Debug, Default, PartialEq, Eq)]
struct Delivery {
    /// Released, never arrived.
    lost: Vec<MessageId>,
    /// Arrived more than once, with how many times.
    duplicated: Vec<(MessageId, usize)>,
    /// Arrived, never released.
    unexpected: Vec<MessageId>,
}

impl Delivery {
    fn is_exactly_once(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.unexpected.is_empty()
    }

    fn summary(&self) -> String {
        format!(
            "{} lost, {} duplicated, {} unexpected: {self:?}",
            self.lost.len(),
            self.duplicated.len(),
            self.unexpected.len()
        )
    }
}

/// Compares what was released with every arrival (one entry per arrival, so
/// a message that arrived twice appears twice).
fn exactly_once(released: &[MessageId], arrived: &[MessageId]) -> Delivery {
    let released: BTreeSet<MessageId> = released.iter().copied().collect();
    let mut counts: BTreeMap<MessageId, usize> = BTreeMap::new();
    for id in arrived {
        *counts.entry(*id).or_default() += 1;
    }
    Delivery {
        lost: released
            .iter()
            .filter(|id| !counts.contains_key(id))
            .copied()
            .collect(),
        duplicated: counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (*id, *n))
            .collect(),
        unexpected: counts
            .keys()
            .filter(|id| !released.contains(id))
            .copied()
            .collect(),
    }
}

/// Asserts exactly-once delivery, judged both by the receiver's inbox and by
/// its `Received` events (each event is one message shown to an operator).
async fn assert_exactly_once(
    what: &str,
    released: &[MessageId],
    inbox: &[MessageId],
    events: &Recorder,
) {
    // The recorder takes events a moment after they are emitted; give it
    // that moment before judging (a duplicate would only add events).
    let deadline = Instant::now() + Duration::from_secs(2);
    while events.received_ids().len() < released.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let by_inbox = exactly_once(released, inbox);
    assert!(
        by_inbox.is_exactly_once(),
        "{what}, judged by the inbox: {}",
        by_inbox.summary()
    );
    assert!(
        !events.lagged(),
        "{what}: the event recorder lagged; the event check would be incomplete"
    );
    let by_events = exactly_once(released, &events.received_ids());
    assert!(
        by_events.is_exactly_once(),
        "{what}, judged by Received events: {}",
        by_events.summary()
    );
}

#[test]
fn exactly_once_checker_reports_lost_duplicated_and_unexpected() {
    let released: Vec<MessageId> = (0..5).map(|_| MessageId::new()).collect();
    assert!(
        exactly_once(&released, &released).is_exactly_once(),
        "a perfect list is clean"
    );
    let mut reversed = released.clone();
    reversed.reverse();
    assert!(
        exactly_once(&released, &reversed).is_exactly_once(),
        "order does not matter"
    );

    // CONTROL: one missing, one duplicated, one extra.
    let extra = MessageId::new();
    let mut arrived = released[1..].to_vec();
    arrived.push(released[3]);
    arrived.push(extra);
    let report = exactly_once(&released, &arrived);
    assert!(!report.is_exactly_once());
    assert_eq!(report.lost, vec![released[0]]);
    assert_eq!(report.duplicated, vec![(released[3], 2)]);
    assert_eq!(report.unexpected, vec![extra]);
    assert!(
        report
            .summary()
            .starts_with("1 lost, 1 duplicated, 1 unexpected")
    );
    // Nothing arrived: everything lost.
    assert_eq!(exactly_once(&released, &[]).lost.len(), 5);
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Records every event of a station from the moment it is created; stops
/// when dropped.
struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    lagged: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Recorder {
    fn new(station: &Station) -> Recorder {
        let mut rx = station.subscribe();
        let events = Arc::new(Mutex::new(Vec::new()));
        let lagged = Arc::new(AtomicBool::new(false));
        let (e, l) = (events.clone(), lagged.clone());
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => e.lock().expect("events").push(event),
                    Err(RecvError::Lagged(_)) => l.store(true, Ordering::SeqCst),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Recorder {
            events,
            lagged,
            task,
        }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    fn lagged(&self) -> bool {
        self.lagged.load(Ordering::SeqCst)
    }

    fn any(&self, pred: impl Fn(&Event) -> bool) -> bool {
        assert!(
            !self.lagged(),
            "the event recorder lagged; its record is incomplete"
        );
        self.events.lock().expect("events").iter().any(pred)
    }

    /// Ids of `Received` events, in arrival order, one per event.
    fn received_ids(&self) -> Vec<MessageId> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter_map(|e| match e {
                Event::Received { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn with_precedence(subject: &str, precedence: Precedence) -> hotline::compose::Draft {
    let mut d = general(subject);
    d.precedence = Some(precedence);
    d
}

/// Releases `n` messages concurrently (so the journal batches them) and
/// returns their ids in serial order.
async fn release_many(
    station: &Station,
    session: &Arc<Session>,
    n: usize,
    prefix: &str,
    precedence: Precedence,
) -> Vec<MessageId> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let s = station.clone();
        let session = session.clone();
        let draft = with_precedence(&format!("{prefix} {i}"), precedence);
        set.spawn(async move { door::release(&s, &session, "MOSCOW", draft).await });
    }
    let mut released: Vec<(u64, MessageId)> = set
        .join_all()
        .await
        .into_iter()
        .map(|r| (r.serial, r.id))
        .collect();
    released.sort();
    released.into_iter().map(|(_, id)| id).collect()
}

async fn ids(station: &Station, direction: Direction) -> Vec<MessageId> {
    door::list(station, direction)
        .await
        .iter()
        .map(|r| r.id)
        .collect()
}

async fn count_state(station: &Station, direction: Direction, state: MessageState) -> usize {
    door::list(station, direction)
        .await
        .iter()
        .filter(|r| r.state == state)
        .count()
}

/// Waits until every outbound row of `station` has its receipt.
async fn all_receipted(station: &Station, expected: usize, limit: Duration) {
    door::rows_until(
        station,
        Direction::Out,
        limit,
        &format!("{expected} outbound messages receipted"),
        |rows| rows.len() == expected && rows.iter().all(|r| r.state == MessageState::Receipted),
    )
    .await;
}

/// Two sites with chosen peer addresses: WASHINGTON dials MOSCOW at
/// `w_to_m` (primary, backup); MOSCOW dials WASHINGTON at `m_to_w`.
fn custom_pair(
    root: &Path,
    w_to_m: (Option<SocketAddr>, Option<SocketAddr>),
    m_to_w: (Option<SocketAddr>, Option<SocketAddr>),
    ma: SocketAddr,
    link: &str,
) -> (Site, Site) {
    let wa = free_addr();
    let w0 = Site::create(root, "WASHINGTON", "en", wa, &[], link);
    let m0 = Site::create(root, "MOSCOW", "ru", ma, &[], link);
    let w = Site::create(
        root,
        "WASHINGTON",
        "en",
        wa,
        &[m0.entry(w_to_m.0, w_to_m.1)],
        link,
    );
    let m = Site::create(
        root,
        "MOSCOW",
        "ru",
        ma,
        &[w0.entry(m_to_w.0, m_to_w.1)],
        link,
    );
    (w, m)
}

// ---------------------------------------------------------------------------
// 1. Receiver down
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_while_200_released_all_arrive_exactly_once() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let session = Arc::new(door::login(&ws).await);

    let released = release_many(&ws, &session, 200, "while down", Precedence::Routine).await;
    assert_eq!(released.len(), 200);
    assert_eq!(
        count_state(&ws, Direction::Out, MessageState::Receipted).await,
        0,
        "nothing can be receipted while MOSCOW is down"
    );
    // CONTROL: judged now, everything is lost, so the check has teeth.
    assert_eq!(exactly_once(&released, &[]).lost.len(), 200);

    let ms = m.start().await;
    let events = Recorder::new(&ms);
    all_receipted(&ws, 200, Duration::from_secs(40)).await;

    let inbox = door::list(&ms, Direction::In).await;
    let inbox_ids: Vec<MessageId> = inbox.iter().map(|r| r.id).collect();
    assert_exactly_once("receiver down", &released, &inbox_ids, &events).await;
    let serials: BTreeSet<u64> = inbox.iter().map(|r| r.serial).collect();
    assert_eq!(serials, (1..=200).collect(), "MOSCOW holds serials 1..=200");
    assert!(
        inbox
            .iter()
            .all(|r| r.state == MessageState::Received && r.peer.as_str() == "WASHINGTON")
    );
    let receipts = ws_receipts(&ws).await;
    assert_eq!(receipts, 200, "every outbox row ends 'receipted'");

    ws.shutdown().await;
    ms.shutdown().await;
    eprintln!("receiver_down: {:?}", started.elapsed());
}

async fn ws_receipts(ws: &Station) -> usize {
    let rows = door::list(ws, Direction::Out).await;
    assert!(
        rows.iter().all(|r| r.receipt_at.is_some()),
        "every receipted row has its receipt time"
    );
    rows.iter()
        .filter(|r| r.state == MessageState::Receipted)
        .count()
}

// ---------------------------------------------------------------------------
// 2. Sender killed mid-batch
// ---------------------------------------------------------------------------

/// Set in the child: WASHINGTON's data directory.
const CHILD_ENV: &str = "HOTLINE_TEST_SIGKILL_SENDER_DIR";
/// The child never runs longer than this (if nobody kills it).
const CHILD_MAX: Duration = Duration::from_secs(60);
/// Release tasks the child runs at once, so a batch is mid-commit at the kill.
const CHILD_WORKERS: usize = 8;

/// The child half of `sender_killed_mid_batch_…`: runs WASHINGTON from the
/// directory in `CHILD_ENV` and releases until killed, printing
/// `released <id>` after each release has returned (after the commit).
/// Without the variable it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_child_sender() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let ws = site_in(dir).start().await;
    let session = Arc::new(door::login(&ws).await);
    let deadline = Instant::now() + CHILD_MAX;
    let mut workers = JoinSet::new();
    for w in 0..CHILD_WORKERS {
        let ws = ws.clone();
        let session = session.clone();
        workers.spawn(async move {
            let mut i = 0;
            while Instant::now() < deadline {
                let draft = with_precedence(&format!("child {w}-{i}"), Precedence::Routine);
                let released = door::try_release(&ws, &session, "MOSCOW", draft, Vec::new())
                    .await
                    .expect("child release");
                let mut out = std::io::stdout().lock();
                writeln!(out, "released {}", released.id).expect("stdout");
                out.flush().expect("flush");
                i += 1;
            }
        });
    }
    workers.join_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_killed_mid_batch_and_restarted_delivers_exactly_once() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let events = Recorder::new(&ms);

    let stderr_path = tmp.path().join("child.stderr");
    let mut child = tokio::process::Command::new(own_binary())
        .args([
            "--exact",
            "sigkill_child_sender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &w.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn the sender: {e}"));
    let child_stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut reported: Vec<MessageId> = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(45), async {
        while reported.len() < 100 {
            match lines.next_line().await.expect("read child") {
                Some(line) => reported.extend(parse_released(&line)),
                None => return false,
            }
        }
        true
    })
    .await;
    assert!(
        matches!(read, Ok(true)),
        "the child did not report 100 releases ({} seen); its stderr:\n{}",
        reported.len(),
        child_stderr()
    );

    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.expect("wait");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child died of SIGKILL, mid-run: {status:?}"
    );
    // Lines already in the pipe were printed after a commit: reported too.
    while let Some(line) = lines.next_line().await.expect("drain") {
        reported.extend(parse_released(&line));
    }
    let reported_set: HashSet<MessageId> = reported.iter().copied().collect();
    assert_eq!(
        reported_set.len(),
        reported.len(),
        "the child reported an id twice"
    );

    // What the journal holds right after the kill (read-only, no station).
    let (committed, pending_at_kill, receipted_at_kill) = {
        let journal =
            Journal::open_read_only(&w.config().journal_path).expect("journal after kill");
        let rows = journal.list(Direction::Out).expect("outbox after kill");
        let pending = rows.iter().filter(|r| r.state.awaits_receipt()).count();
        let receipted: Vec<MessageId> = rows
            .iter()
            .filter(|r| !r.state.awaits_receipt())
            .map(|r| r.id)
            .collect();
        (rows.len(), pending, receipted)
    };
    let arrived_before_restart = events.received_ids();
    assert!(
        pending_at_kill > 0,
        "the kill left no message awaiting its receipt, so the restart was not tested"
    );

    let ws = w.start().await;
    let outbox = door::list(&ws, Direction::Out).await;
    let outbox_ids: Vec<MessageId> = outbox.iter().map(|r| r.id).collect();
    // CONTROL: judged by the receipts the sender held at the kill, delivery
    // was incomplete, and the same check reports it. (Judging by what the
    // receiver had is a race: the messages may all have arrived with only
    // their receipts lost in the kill.)
    let at_kill = exactly_once(&outbox_ids, &receipted_at_kill);
    assert!(
        !at_kill.lost.is_empty(),
        "every message was receipted before the kill: {}",
        at_kill.summary()
    );
    let outbox_set: HashSet<MessageId> = outbox_ids.iter().copied().collect();
    let missing: Vec<&MessageId> = reported
        .iter()
        .filter(|id| !outbox_set.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "released (reported) but not in the journal after SIGKILL: {missing:?}"
    );
    // Serials are sealed in parallel and commit in any order, so the kill
    // may leave crash holes: reserved, never stored, and voided when the
    // journal opened (declared to the peer, so its gap check stays quiet).
    // Every serial up to the highest is a message or a void, never both.
    let released: BTreeSet<u64> = outbox.iter().map(|r| r.serial).collect();
    assert_eq!(released.len(), outbox.len(), "a serial was reused");
    let void: BTreeSet<u64> = Journal::open_read_only(&w.config().journal_path)
        .expect("journal after restart")
        .cancelled_serials(m.name.as_str(), u64::from(u32::MAX))
        .expect("void serials")
        .into_iter()
        .collect();
    assert!(
        released.is_disjoint(&void),
        "a serial is both released and void: {:?}",
        released.intersection(&void).collect::<Vec<_>>()
    );
    let top = released.iter().chain(&void).max().copied().unwrap_or(0);
    assert_eq!(
        released.union(&void).copied().collect::<BTreeSet<u64>>(),
        (1..=top).collect(),
        "serials 1..={top} are each released or void"
    );

    all_receipted(&ws, outbox.len(), Duration::from_secs(40)).await;
    door::rows_until(
        &ms,
        Direction::In,
        Duration::from_secs(5),
        "every outbox id in MOSCOW's inbox",
        |inbox| inbox.len() >= outbox.len(),
    )
    .await;
    // Everything released — reported, or committed just before the kill —
    // is delivered exactly once; nothing else arrives.
    assert_exactly_once(
        "sender killed",
        &outbox_ids,
        &ids(&ms, Direction::In).await,
        &events,
    )
    .await;
    eprintln!(
        "sigkill: reported {}, committed {committed}, pending at kill {pending_at_kill}, \
         crash holes voided {}, arrived before restart {}, took {:?}",
        reported.len(),
        void.len(),
        arrived_before_restart.len(),
        started.elapsed()
    );

    ws.shutdown().await;
    ms.shutdown().await;
}

/// The site whose files are in `dir` (a child's view of its parent's site).
fn site_in(dir: PathBuf) -> Site {
    let config_path = dir.join("operator.toml");
    let config = hotline::config::Config::load(&config_path).expect("child config");
    Site {
        name: config.station.name.clone(),
        listen: config.station.listen,
        dir,
        config_path,
    }
}

// ---------------------------------------------------------------------------
// 2b. Receiver killed, again and again, while messages arrive
// ---------------------------------------------------------------------------

/// Set in the child: MOSCOW's data directory.
const RECEIVER_ENV: &str = "HOTLINE_TEST_SIGKILL_RECEIVER_DIR";
/// Set in the child of the control: receipts go out before the commit.
const RECEIPT_FIRST_ENV: &str = "HOTLINE_TEST_RECEIPT_FIRST";
/// How many times the receiver is killed.
const RECEIVER_KILLS: usize = 6;
/// Release tasks the sender runs while the receiver dies, so that several
/// messages are in flight at each kill.
const RELEASE_WORKERS: usize = 2;

/// The child half of the receiver crash tests: runs MOSCOW from the
/// directory in `RECEIVER_ENV`, prints `ready` once it listens, and waits
/// to be killed. Without the variable it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_child_receiver() {
    let Some(dir) = std::env::var_os(RECEIVER_ENV).map(PathBuf::from) else {
        return;
    };
    let options = hotline::station::Options {
        receipt_before_commit: std::env::var_os(RECEIPT_FIRST_ENV).is_some(),
        ..hotline::station::Options::default()
    };
    let _ms = site_in(dir).start_with(options).await;
    // On a line of its own: the harness's "test … " has no newline yet.
    println!("\nready");
    std::io::stdout().flush().expect("flush");
    tokio::time::sleep(CHILD_MAX).await;
}

/// What a run of the receiver crash test left.
struct ReceiverCrashes {
    /// What the sender released, and what it holds a receipt for.
    released: Vec<MessageId>,
    receipted: Vec<MessageId>,
    /// What the receiver's journal holds after its last restart.
    stored: Vec<MessageId>,
    /// Messages the last run showed as new though its journal had them.
    shown_again: Vec<MessageId>,
}

/// WASHINGTON releases a stream of messages while MOSCOW, in a
/// child process, is SIGKILLed `RECEIVER_KILLS` times, each time just after
/// WASHINGTON took a receipt from it, and restarted. Then MOSCOW runs in
/// this process until everything is receipted.
async fn receiver_killed_repeatedly(receipt_first: bool) -> ReceiverCrashes {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let session = Arc::new(door::login(&ws).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut releasing = JoinSet::new();
    for worker in 0..RELEASE_WORKERS {
        let (ws, session, stop) = (ws.clone(), session.clone(), stop.clone());
        releasing.spawn(async move {
            let mut released = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let subject = format!("arriving {worker}-{}", released.len());
                let draft = with_precedence(&subject, Precedence::Routine);
                released.push(door::release(&ws, &session, "MOSCOW", draft).await.id);
            }
            released
        });
    }
    let stderr_path = tmp.path().join("receiver.stderr");
    let mut receipts = ws.subscribe();
    for life in 0..RECEIVER_KILLS {
        let mut command = tokio::process::Command::new(own_binary());
        command
            .args([
                "--exact",
                "sigkill_child_receiver",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RECEIVER_ENV, &m.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .kill_on_drop(true);
        if receipt_first {
            command.env(RECEIPT_FIRST_ENV, "1");
        }
        let mut child = command.spawn().expect("spawn the receiver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read child") {
                if line == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "life {life}: the receiver did not start; its stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        while receipts.try_recv().is_ok() {}
        wait_event(&mut receipts, Duration::from_secs(30), |e| {
            matches!(e, Event::Receipt { .. })
        })
        .await;
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("wait");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "life {life}: {status:?}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let released: Vec<MessageId> = releasing.join_all().await.concat();

    let before: HashSet<MessageId> = {
        let journal = Journal::open_read_only(&m.config().journal_path).expect("journal");
        journal
            .list(Direction::In)
            .expect("inbox")
            .iter()
            .map(|r| r.id)
            .collect()
    };
    let ms = m.restart().await;
    let events = Recorder::new(&ms);
    all_receipted(&ws, released.len(), Duration::from_secs(60)).await;
    let receipted = ids(&ws, Direction::Out).await;
    let stored = ids(&ms, Direction::In).await;
    let shown_again = events
        .received_ids()
        .into_iter()
        .filter(|id| before.contains(id))
        .collect();
    ws.shutdown().await;
    ms.shutdown().await;
    ReceiverCrashes {
        released,
        receipted,
        stored,
        shown_again,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_killed_six_times_keeps_every_message_it_receipted() {
    let run = receiver_killed_repeatedly(false).await;
    assert_eq!(run.receipted.len(), run.released.len());
    let judged = exactly_once(&run.receipted, &run.stored);
    assert!(judged.is_exactly_once(), "{}", judged.summary());
    assert!(
        run.shown_again.is_empty(),
        "shown twice: {:?}",
        run.shown_again
    );
    eprintln!(
        "receiver crashes: {} released, {RECEIVER_KILLS} kills, every receipted one stored once",
        run.released.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_a_receiver_that_receipts_before_its_commit_loses_messages_when_killed() {
    let run = receiver_killed_repeatedly(true).await;
    let judged = exactly_once(&run.receipted, &run.stored);
    assert!(
        !judged.lost.is_empty(),
        "receipted but not stored was never seen: {}",
        judged.summary()
    );
    assert!(judged.duplicated.is_empty() && judged.unexpected.is_empty());
    eprintln!(
        "control: {} released, {} receipted but lost",
        run.released.len(),
        judged.lost.len()
    );
}

/// This test binary. `/proc/self/exe` still names it if a rebuild replaced
/// the file while the tests run.
fn own_binary() -> PathBuf {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        proc_exe
    } else {
        std::env::current_exe().expect("test binary")
    }
}

fn parse_released(line: &str) -> Option<MessageId> {
    line.strip_prefix("released ")?.parse().ok()
}

// ---------------------------------------------------------------------------
// 3. Lossy path with a partition
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_path_with_partition_delivers_exactly_once() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let ma = free_addr();
    let proxy = start_proxy(ma, 200, 50, 0x9E37_79B9_7F4A_7C15).await;
    // All traffic flows through WASHINGTON's dial via the proxy: MOSCOW has
    // no address to dial WASHINGTON at.
    let (w, m) = custom_pair(
        tmp.path(),
        (Some(proxy.addr), None),
        (None, None),
        ma,
        FAST_LINK,
    );
    let ms = m.start().await;
    let events = Recorder::new(&ms);
    let ws = w.start().await;
    let wrec = Recorder::new(&ws);
    wait_link_up(&ws, "MOSCOW", Duration::from_secs(30)).await;
    let link_up_at = started.elapsed();

    let session = Arc::new(door::login(&ws).await);
    let mut released = release_many(&ws, &session, 25, "lossy", Precedence::Routine).await;

    proxy.partitioned.store(true, Ordering::SeqCst);
    let partition_started = Instant::now();
    let during = release_many(&ws, &session, 25, "partitioned", Precedence::Routine).await;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(partition_started.elapsed())).await;
    // CONTROL: the partition is real: nothing released during it arrived.
    let arrived: HashSet<MessageId> = ids(&ms, Direction::In).await.into_iter().collect();
    let leaked: Vec<&MessageId> = during.iter().filter(|id| arrived.contains(id)).collect();
    assert!(
        leaked.is_empty(),
        "messages crossed the partition: {leaked:?}"
    );
    proxy.partitioned.store(false, Ordering::SeqCst);
    released.extend(during);

    let healed_at = started.elapsed();
    all_receipted(&ws, 50, Duration::from_secs(60)).await;
    let link_events: Vec<Event> = wrec
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::LinkUp { .. } | Event::LinkDown { .. }))
        .collect();
    eprintln!(
        "lossy phases: up {link_up_at:?}, healed {healed_at:?}, done {:?}; {link_events:?}",
        started.elapsed()
    );
    assert_exactly_once(
        "lossy path",
        &released,
        &ids(&ms, Direction::In).await,
        &events,
    )
    .await;

    // CONTROL: the faults were really injected.
    let st = &proxy.stats;
    let (fwd, dropped, dup, part) = (
        st.forwarded.load(Ordering::Relaxed),
        st.dropped.load(Ordering::Relaxed),
        st.duplicated.load(Ordering::Relaxed),
        st.partitioned.load(Ordering::Relaxed),
    );
    assert!(
        dropped > 0 && dup > 0 && part > 0,
        "the proxy injected no faults: {st:?}"
    );
    let loss = dropped as f64 / (dropped + fwd) as f64;
    assert!(
        (0.1..0.3).contains(&loss),
        "loss rate {loss:.3} is not about 20%: {st:?}"
    );
    eprintln!(
        "lossy: {st:?}, loss {loss:.3}, took {:?}",
        started.elapsed()
    );

    ws.shutdown().await;
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// 4. FLASH overtakes a ROUTINE backlog
// ---------------------------------------------------------------------------

/// Of the `routine` messages, the fraction that arrived after `id`.
fn fraction_after(order: &[MessageId], routine: &HashSet<MessageId>, id: MessageId) -> f64 {
    let pos = order.iter().position(|x| *x == id).expect("arrived");
    let before = order[..pos].iter().filter(|x| routine.contains(x)).count();
    (routine.len() - before) as f64 / routine.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_behind_2000_routine_arrives_before_most_of_them() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;

    let session = Arc::new(door::login(&ws).await);
    let routine = release_many(&ws, &session, 2000, "backlog", Precedence::Routine).await;
    let flash = door::try_release(
        &ws,
        &session,
        "MOSCOW",
        with_precedence("urgent", Precedence::Flash),
        Vec::new(),
    )
    .await
    .expect("release FLASH");
    let released_in = started.elapsed();

    let ms = m.start().await;
    let events = Recorder::new(&ms);
    all_receipted(&ws, 2001, Duration::from_secs(60)).await;

    let mut all = routine.clone();
    all.push(flash.id);
    assert_exactly_once(
        "FLASH behind ROUTINE",
        &all,
        &ids(&ms, Direction::In).await,
        &events,
    )
    .await;
    let order = events.received_ids();
    let routine_set: HashSet<MessageId> = routine.iter().copied().collect();
    let flash_ahead = fraction_after(&order, &routine_set, flash.id);
    assert!(
        flash_ahead >= 0.9,
        "FLASH arrived after {:.1}% of the ROUTINE backlog",
        (1.0 - flash_ahead) * 100.0
    );
    // CONTROL: the same measure says the last ROUTINE released did not
    // overtake the backlog, so it can tell an overtaking message from others.
    let last = *routine.last().expect("routine");
    let last_ahead = fraction_after(&order, &routine_set, last);
    assert!(
        last_ahead < 0.9,
        "the last ROUTINE released arrived before {:.1}% of the rest",
        last_ahead * 100.0
    );
    eprintln!(
        "flash: released 2001 in {released_in:?}; FLASH ahead of {:.1}%, last ROUTINE ahead of {:.1}%; took {:?}",
        flash_ahead * 100.0,
        last_ahead * 100.0,
        started.elapsed()
    );

    ws.shutdown().await;
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// 1b. Receiver restarted in-process on the same data directory
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_restarted_in_process_gets_the_rest_exactly_once() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let before = Recorder::new(&ms);
    wait_link_up(&ws, "MOSCOW", Duration::from_secs(10)).await;
    // MOSCOW stops mid-delivery: some messages are stored there whose
    // receipts never left, and will come again after the restart.
    let session = Arc::new(door::login(&ws).await);
    let mut released =
        release_many(&ws, &session, 150, "before restart", Precedence::Routine).await;
    eventually(Duration::from_secs(20), "MOSCOW stores 10 messages", || {
        before.received_ids().len() >= 10
    })
    .await;
    ms.shutdown().await;
    drop(ms);
    let receipted_before = count_state(&ws, Direction::Out, MessageState::Receipted).await;

    released.extend(release_many(&ws, &session, 20, "while restarting", Precedence::Routine).await);
    let ms = m.restart().await;
    let after = Recorder::new(&ms);
    all_receipted(&ws, 170, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while before.received_ids().len() + after.received_ids().len() < 170
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The inbox survived the restart and holds each message once; across
    // both lives of MOSCOW each message was shown once.
    let mut shown = before.received_ids();
    let shown_before = shown.len();
    shown.extend(after.received_ids());
    let by_events = exactly_once(&released, &shown);
    assert!(
        by_events.is_exactly_once(),
        "across the restart: {}",
        by_events.summary()
    );
    let by_inbox = exactly_once(&released, &ids(&ms, Direction::In).await);
    assert!(
        by_inbox.is_exactly_once(),
        "after the restart: {}",
        by_inbox.summary()
    );
    assert!(
        !before.lagged() && !after.lagged(),
        "an event recorder lagged"
    );

    ws.shutdown().await;
    ms.shutdown().await;
    eprintln!(
        "receiver restart: stored before {shown_before}, receipted before {receipted_before}, \
         took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// 5. Failover to the backup path
// ---------------------------------------------------------------------------

/// A UDP port that is bound (so nobody else gets it) and never answers.
fn black_hole() -> std::net::UdpSocket {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("bind black hole")
}

async fn deliver_one_and_report_path(
    primary: SocketAddr,
    backup: SocketAddr,
    ma: SocketAddr,
    root: &Path,
) -> (Vec<Event>, Option<PathKind>) {
    let (w, m) = custom_pair(
        root,
        (Some(primary), Some(backup)),
        (None, None),
        ma,
        FAST_LINK,
    );
    let ms = m.start().await;
    let ws = w.start().await;
    let wev = Recorder::new(&ws);
    let mut rx = ws.subscribe();

    let session = door::login(&ws).await;
    let released = door::release(&ws, &session, "MOSCOW", general("over which path")).await;
    let id = released.id;
    wait_event(
        &mut rx,
        Duration::from_secs(20),
        |e| matches!(e, Event::Receipt { id: i, .. } if *i == id),
    )
    .await;
    assert_eq!(
        ids(&ms, Direction::In).await,
        vec![id],
        "MOSCOW stored the message"
    );
    let links = ws.status().links;
    let link = links
        .iter()
        .find(|l| l.peer == "MOSCOW")
        .expect("MOSCOW link status");
    assert!(link.up, "the link to MOSCOW is up: {link:?}");
    let path = link.path;
    let events = wev.events();
    ws.shutdown().await;
    ms.shutdown().await;
    (events, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_primary_delivers_over_backup_and_says_so() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dead = black_hole();
    let ma = free_addr();
    let (events, path) =
        deliver_one_and_report_path(dead.local_addr().expect("addr"), ma, ma, tmp.path()).await;

    assert!(
        events.iter().any(
            |e| matches!(e, Event::FailedOver { peer, path: PathKind::Backup } if peer == "MOSCOW")
        ),
        "no FailedOver to the backup: {events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Event::LinkUp { peer, path: PathKind::Backup, .. } if peer == "MOSCOW")
        ),
        "no LinkUp over the backup: {events:?}"
    );
    assert_eq!(path, Some(PathKind::Backup), "status shows the backup path");
    eprintln!("failover: {:?}", started.elapsed());
}

/// CONTROL for the failover test: with the primary alive the same checks
/// see the primary path and no failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_primary_is_used_without_failover() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dead = black_hole();
    let ma = free_addr();
    let (events, path) =
        deliver_one_and_report_path(ma, dead.local_addr().expect("addr"), ma, tmp.path()).await;

    assert!(
        !events.iter().any(|e| matches!(e, Event::FailedOver { .. })),
        "FailedOver with a live primary: {events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Event::LinkUp { peer, path: PathKind::Primary, .. } if peer == "MOSCOW")
        ),
        "no LinkUp over the primary: {events:?}"
    );
    assert_eq!(
        path,
        Some(PathKind::Primary),
        "status shows the primary path"
    );
}

// ---------------------------------------------------------------------------
// 5. Return to the primary
// ---------------------------------------------------------------------------
//
// WASHINGTON dials MOSCOW with the primary a UDP proxy in front of MOSCOW
// and the backup MOSCOW's own address. With the proxy partitioned it fails
// over to the backup; there it probes the primary every `[link]
// test_interval` and, once the proxy forwards again, goes back to it. The
// control keeps the proxy partitioned as long and sees it stay.

/// `[link]` lines for these tests: the primary is probed every 2 s (the
/// probe interval is the link test interval; whole seconds are the finest
/// the config takes).
const PROBING_LINK: &str =
    "test_interval = \"2s\"\nflash_receipt_alarm = \"5s\"\nretry_window = \"5s\"\n";
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long the primary may take to be taken back once it answers: a probe
/// that started just before the partition lifted may still time out, then
/// one more probe interval and a handshake. The control waits as long.
const RETURN_LIMIT: Duration = Duration::from_secs(8);
const _: () =
    assert!(RETURN_LIMIT.as_secs() > 2 * PROBE_INTERVAL.as_secs() + DIAL_TIMEOUT.as_secs());

fn is_link_up(e: &Event, want: PathKind) -> bool {
    matches!(e, Event::LinkUp { peer, path, .. } if peer == "MOSCOW" && *path == want)
}

fn link_to(station: &Station, peer: &str) -> PeerLinkStatus {
    station
        .status()
        .links
        .into_iter()
        .find(|l| l.peer == peer)
        .unwrap_or_else(|| panic!("no link status for {peer}"))
}

fn health_state(station: &Station, peer: &str) -> String {
    station
        .status()
        .health
        .get(peer)
        .map(|h| h.state.clone())
        .unwrap_or_default()
}

/// Releases one message to MOSCOW and waits for its receipt; checks MOSCOW
/// stored it.
async fn deliver_one(
    ws: &Station,
    session: &Session,
    ms: &Station,
    wrec: &Recorder,
    subject: &str,
) -> MessageId {
    let released = door::release(ws, session, "MOSCOW", general(subject)).await;
    let id = released.id;
    eventually(
        Duration::from_secs(10),
        &format!("the receipt for {subject:?}"),
        || {
            wrec.any(
                |e| matches!(e, Event::Receipt { id: i, peer } if *i == id && peer == "MOSCOW"),
            )
        },
    )
    .await;
    let inbox: Vec<MessageId> = ids(ms, Direction::In).await;
    assert!(
        inbox.contains(&id),
        "MOSCOW did not store {subject:?}: {inbox:?}"
    );
    id
}

/// Both stations running, the proxy (WASHINGTON's primary) partitioned,
/// WASHINGTON failed over to the backup, one message delivered over it,
/// and at least one probe of the primary seen to fail.
struct OnBackup {
    proxy: Proxy,
    ma: SocketAddr,
    ws: Station,
    /// WASHINGTON's operator, logged in once.
    session: Session,
    ms: Station,
    wrec: Recorder,
    // Dropped last: the stations' files live here.
    _tmp: tempfile::TempDir,
}

async fn on_the_backup() -> OnBackup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ma = free_addr();
    let proxy = start_proxy(ma, 0, 0, 0x5EED).await;
    proxy.partitioned.store(true, Ordering::SeqCst);
    let (w, m) = custom_pair(
        tmp.path(),
        (Some(proxy.addr), Some(ma)),
        (None, None),
        ma,
        PROBING_LINK,
    );
    let ms = m.start().await;
    let ws = w.start().await;
    let wrec = Recorder::new(&ws);

    // The primary dial times out (DIAL_TIMEOUT), then the backup answers.
    eventually(
        DIAL_TIMEOUT + Duration::from_secs(10),
        "LinkUp to MOSCOW over the backup",
        || wrec.any(|e| is_link_up(e, PathKind::Backup)),
    )
    .await;
    let events = wrec.events();
    assert!(
        events.iter().any(
            |e| matches!(e, Event::FailedOver { peer, path: PathKind::Backup } if peer == "MOSCOW")
        ),
        "no FailedOver to the backup: {events:?}"
    );
    assert!(
        !events.iter().any(|e| is_link_up(e, PathKind::Primary)),
        "LinkUp over a partitioned primary: {events:?}"
    );
    let link = link_to(&ws, "MOSCOW");
    assert!(link.up, "the link to MOSCOW is up: {link:?}");
    assert_eq!(link.path, Some(PathKind::Backup), "status: {link:?}");
    assert_eq!(link.remote, Some(ma), "on the backup address: {link:?}");
    assert_eq!(
        health_state(&ws, "MOSCOW"),
        "degraded",
        "on the backup path MOSCOW's health is degraded"
    );

    let session = door::login(&ws).await;
    deliver_one(&ws, &session, &ms, &wrec, "over the backup").await;

    // WASHINGTON is probing the primary, and the partition makes it fail.
    eventually(
        PROBE_INTERVAL + DIAL_TIMEOUT + Duration::from_secs(3),
        "a failed probe of the primary",
        || {
            link_to(&ws, "MOSCOW")
                .probes
                .contains(&(PathKind::Primary, None))
        },
    )
    .await;
    assert_eq!(
        proxy.forwarded(),
        0,
        "the partitioned proxy forwarded something"
    );
    assert!(
        proxy.dropped() > 0,
        "no dial of the primary reached the proxy"
    );
    assert_eq!(
        link_to(&ws, "MOSCOW").path,
        Some(PathKind::Backup),
        "still on the backup"
    );
    OnBackup {
        proxy,
        ma,
        ws,
        session,
        ms,
        wrec,
        _tmp: tmp,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_to_the_primary_once_it_answers_again() {
    let started = Instant::now();
    let OnBackup {
        proxy,
        ma: _,
        ws,
        session,
        ms,
        wrec,
        _tmp,
    } = on_the_backup().await;
    let on_backup_at = started.elapsed();
    let events_before = wrec.events().len();

    proxy.partitioned.store(false, Ordering::SeqCst);
    let healed = Instant::now();
    eventually(RETURN_LIMIT, "LinkUp to MOSCOW over the primary", || {
        wrec.any(|e| is_link_up(e, PathKind::Primary))
    })
    .await;
    let returned_in = healed.elapsed();

    let link = link_to(&ws, "MOSCOW");
    assert!(link.up, "the link to MOSCOW is up: {link:?}");
    assert_eq!(link.path, Some(PathKind::Primary), "status: {link:?}");
    assert_eq!(
        link.remote,
        Some(proxy.addr),
        "on the primary (the proxy): {link:?}"
    );
    assert!(
        link.probes
            .iter()
            .any(|(p, rtt)| *p == PathKind::Primary && rtt.is_some()),
        "the successful probe of the primary is recorded: {link:?}"
    );
    // MOSCOW keeps one connection to WASHINGTON: the one through the proxy
    // (the backup connection was replaced).
    eventually(
        Duration::from_secs(5),
        "MOSCOW's connection to WASHINGTON coming through the proxy",
        || link_to(&ms, "WASHINGTON").remote == Some(proxy.addr),
    )
    .await;
    let wrec_since: Vec<Event> = wrec.events().split_off(events_before);
    assert!(
        !wrec_since
            .iter()
            .any(|e| matches!(e, Event::LinkDown { .. } | Event::FailedOver { .. })),
        "the return to the primary took the link down: {wrec_since:?}"
    );

    // A message released now travels through the proxy.
    let forwarded_before = proxy.forwarded();
    deliver_one(&ws, &session, &ms, &wrec, "over the primary again").await;
    let forwarded_for_message = proxy.forwarded() - forwarded_before;
    assert!(
        forwarded_for_message > 0,
        "the message did not pass the proxy"
    );
    let link = link_to(&ws, "MOSCOW");
    assert_eq!(
        (link.path, link.remote),
        (Some(PathKind::Primary), Some(proxy.addr)),
        "still on the primary after the delivery: {link:?}"
    );
    // The next link test over the primary clears the degraded state.
    eventually(
        PROBE_INTERVAL + Duration::from_secs(5),
        "MOSCOW's health 'up'",
        || health_state(&ws, "MOSCOW") == "up",
    )
    .await;

    // Losing the primary again is a new failover, announced as the first was.
    let failovers = |rec: &Recorder| {
        rec.events()
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::FailedOver {
                        path: PathKind::Backup,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(failovers(&wrec), 1);
    proxy.partitioned.store(true, Ordering::SeqCst);
    eventually(
        Duration::from_secs(40),
        "a second FailedOver once the primary is silent again",
        || failovers(&wrec) == 2,
    )
    .await;
    assert_eq!(link_to(&ws, "MOSCOW").path, Some(PathKind::Backup));

    ws.shutdown().await;
    ms.shutdown().await;
    eprintln!(
        "failback: on the backup after {on_backup_at:?}, back on the primary {returned_in:?} \
         after the partition lifted, message crossed in {forwarded_for_message} datagrams; \
         took {:?}",
        started.elapsed()
    );
}

/// CONTROL: with the primary kept partitioned for as long as the return may
/// take, WASHINGTON stays on the backup (and keeps probing the primary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stays_on_the_backup_while_the_primary_is_silent() {
    let started = Instant::now();
    let OnBackup {
        proxy,
        ma,
        ws,
        session,
        ms,
        wrec,
        _tmp,
    } = on_the_backup().await;
    let dropped_before = proxy.dropped();

    tokio::time::sleep(RETURN_LIMIT).await;

    let events = wrec.events();
    assert!(
        !events.iter().any(|e| is_link_up(e, PathKind::Primary)),
        "LinkUp over a partitioned primary: {events:?}"
    );
    let link = link_to(&ws, "MOSCOW");
    assert!(link.up, "the link to MOSCOW is up: {link:?}");
    assert_eq!(
        (link.path, link.remote),
        (Some(PathKind::Backup), Some(ma)),
        "still on the backup: {link:?}"
    );
    assert!(
        proxy.dropped() > dropped_before,
        "the primary was not probed during the wait"
    );
    assert_eq!(proxy.forwarded(), 0, "the partitioned proxy forwarded");

    deliver_one(&ws, &session, &ms, &wrec, "still over the backup").await;
    assert_eq!(
        link_to(&ws, "MOSCOW").path,
        Some(PathKind::Backup),
        "still on the backup after the delivery"
    );
    assert_eq!(
        proxy.forwarded(),
        0,
        "the message went through the partitioned proxy"
    );

    ws.shutdown().await;
    ms.shutdown().await;
    eprintln!("failback control: took {:?}", started.elapsed());
}
