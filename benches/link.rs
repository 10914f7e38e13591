//! Link benchmark: two real stations on 127.0.0.1 (real QUIC with pinned
//! mutual TLS, real sealing and signing, real journals in a temp dir), and a
//! bare quinn request/response over the same loopback in the same run as
//! the floor.
//!
//! Run with `cargo bench --bench link`; `HOTLINE_BENCH_QUICK=1` scales every
//! count (and the FLASH delay) down 10x for a smoke run;
//! `HOTLINE_BENCH_CONCURRENCY=N` changes the 64 in flight;
//! `HOTLINE_BENCH_SEALING=classic` makes the stations without post-quantum
//! keys, so they seal to X25519 as before. Prints a table, then one JSON
//! line.
//!
//! What is measured:
//! - latency: release → receipt at the sender, one 1 KiB message at a time;
//! - sustained rate: messages released and receipted with 64 in flight,
//!   each a release followed by waiting for its receipt (closed loop);
//! - FLASH under load: ROUTINE messages queued while the peer is down, the
//!   peer started, and FLASH messages released while the backlog drains;
//! - path floor: the bare round trip + three fdatasyncs + the crypto one
//!   message needs (seal, open, receipt signed and verified), all in-run;
//!   the stations seal post-quantum, and the crypto is measured again
//!   sealed classically (X25519) as the baseline for what that costs;
//!   the temp dir is checked for tmpfs, which would make fdatasync free;
//! - floor: the same frame sizes as one request and one answer on a bare
//!   quinn bi stream, sequentially and with the same concurrency.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{Summary, floor_configs, round};
use hotline::compose::Draft;
use hotline::domain::{MessageId, Precedence};
use hotline::station::api::Session;
use hotline::station::{Event, Station};
use hotline::store::Direction;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;

/// How long any one receipt or answer may take before the run is abandoned.
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// Characters in the `text` field of every message.
const BODY_CHARS: usize = 1024;
/// Size of the bare quinn answer when no real receipt size is measured.
const FALLBACK_ANSWER: usize = 200;

struct Scale {
    quick: bool,
    warmup: usize,
    latency: usize,
    rate: usize,
    concurrency: usize,
    backlog: usize,
    flash_probes: usize,
    /// When the first FLASH goes, after the link comes up.
    flash_delay: Duration,
    /// How long idle round trips run after the drain.
    after_drain: Duration,
    floor_latency: usize,
    floor_rate: usize,
    fsyncs: usize,
}

impl Scale {
    fn from_env() -> Scale {
        let quick = std::env::var("HOTLINE_BENCH_QUICK").is_ok_and(|v| v == "1");
        let div = if quick { 10 } else { 1 };
        Scale {
            quick,
            warmup: 20 / div,
            latency: 300 / div,
            rate: 2000 / div,
            concurrency: std::env::var("HOTLINE_BENCH_CONCURRENCY")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(64),
            backlog: 10_000 / div,
            flash_probes: 3,
            flash_delay: Duration::from_millis(500) / div as u32,
            after_drain: Duration::from_millis(3000) / div as u32,
            floor_latency: 2000 / div,
            floor_rate: 20_000 / div,
            fsyncs: 200 / div,
        }
    }
}

fn main() {
    let scale = Scale::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let report = runtime.block_on(run(&scale));
    report.print(&scale, started.elapsed());
}

// ---------------------------------------------------------------- statistics

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ----------------------------------------------------------- receipt tracking

/// Receipts (and link-ups) seen at one station, stamped when the event
/// reaches this collector.
#[derive(Default)]
struct Seen {
    receipts: Mutex<HashMap<MessageId, Instant>>,
    link_up: Mutex<Option<Instant>>,
    lagged: AtomicU64,
}

#[derive(Clone)]
struct Tracker {
    seen: Arc<Seen>,
    tick: watch::Receiver<u64>,
}

impl Tracker {
    /// Subscribes to `station` and collects its events on a task of its own,
    /// so a slow measuring loop never makes the broadcast channel lag.
    fn start(station: &Station) -> Tracker {
        let mut rx = station.subscribe();
        let seen = Arc::new(Seen::default());
        let (tx, tick) = watch::channel(0u64);
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Event::Receipt { id, .. }) => {
                        let now = Instant::now();
                        lock(&s.receipts).insert(id, now);
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::LinkUp { .. }) => {
                        *lock(&s.link_up) = Some(Instant::now());
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        s.lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Tracker { seen, tick }
    }

    fn receipt_of(&self, id: &MessageId) -> Option<Instant> {
        lock(&self.seen.receipts).get(id).copied()
    }

    /// Waits for the receipt of `id` and returns when it arrived.
    async fn receipt(&self, id: MessageId) -> Instant {
        self.wait_for(&format!("the receipt of {id}"), || self.receipt_of(&id))
            .await
    }

    async fn link_up(&self) -> Instant {
        self.wait_for("the link to come up", || *lock(&self.seen.link_up))
            .await
    }

    async fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let mut tick = self.tick.clone();
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            match tokio::time::timeout_at(deadline, tick.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("event collector stopped while waiting for {what}"),
                Err(_) => panic!("no sign of {what} within {WAIT_LIMIT:?}"),
            }
        }
    }

    /// How many of `ids` have a receipt, and the latest receipt among them.
    fn progress(&self, ids: &[MessageId]) -> (usize, Option<Instant>) {
        let seen = lock(&self.seen.receipts);
        let mut done = 0;
        let mut last = None;
        for t in ids.iter().filter_map(|id| seen.get(id)) {
            done += 1;
            last = last.max(Some(*t));
        }
        (done, last)
    }

    fn lagged(&self) -> u64 {
        self.seen.lagged.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------ stations

/// A general message with a `text` field of [`BODY_CHARS`] characters.
fn draft(n: usize, precedence: Precedence) -> Draft {
    let mut d = support::general(&format!("bench {n}"));
    let mut text = String::with_capacity(BODY_CHARS + 64);
    while text.len() < BODY_CHARS {
        text.push_str("The quick brown fox jumps over the lazy dog; message ");
        text.push_str(&n.to_string());
        text.push_str(". ");
    }
    text.truncate(BODY_CHARS);
    d.fields.insert("text".into(), text);
    d.precedence = Some(precedence);
    d
}

/// Releases one message to MOSCOW; returns its id once it is durably in the
/// outbox.
async fn release(ws: &Station, session: &Session, n: usize, precedence: Precedence) -> MessageId {
    common::release(ws, session, "MOSCOW", draft(n, precedence), Vec::new())
        .await
        .id
}

/// One release → receipt round: (release → durable in the outbox,
/// release → receipt).
async fn round_trip(
    ws: &Station,
    session: &Session,
    tracker: &Tracker,
    n: usize,
    precedence: Precedence,
) -> (Duration, Duration) {
    let t0 = Instant::now();
    let id = release(ws, session, n, precedence).await;
    let released = t0.elapsed();
    let receipt = tracker.receipt(id).await;
    (released, receipt - t0)
}

/// `count` closed-loop round trips with `concurrency` in flight.
async fn closed_loop(
    ws: &Station,
    session: &Arc<Session>,
    tracker: &Tracker,
    first: usize,
    count: usize,
    concurrency: usize,
) -> (Vec<(Duration, Duration)>, Duration, f64) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let cpu = CpuMeter::start();
    for n in first..first + count {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (ws, session, tracker) = (ws.clone(), session.clone(), tracker.clone());
        tasks.spawn(async move {
            let times = round_trip(&ws, &session, &tracker, n, Precedence::Routine).await;
            drop(permit);
            times
        });
    }
    let mut samples = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        samples.push(r.expect("round-trip task"));
    }
    let (elapsed, cores) = cpu.stop();
    (samples, elapsed, cores)
}

struct LinkFigures {
    sealed_len: usize,
    receipt_len: Option<usize>,
    release: Summary,
    latency: Summary,
    rate_release: Summary,
    rate_latency: Summary,
    rate: f64,
    rate_cpu: f64,
    lagged: u64,
}

async fn link_figures(root: &std::path::Path, scale: &Scale) -> LinkFigures {
    let (w, m) = support::pair(root, support::FAST_LINK);
    let ws = w.start().await;
    let session = Arc::new(common::login(&ws, "op", support::PASSPHRASE).await);
    let tracker = Tracker::start(&ws);
    let ms = m.start().await;
    tracker.link_up().await;

    for n in 0..scale.warmup {
        round_trip(&ws, &session, &tracker, n, Precedence::Routine).await;
    }
    let probe = release(&ws, &session, 0, Precedence::Routine).await;
    let sealed_len = ws.journal().sealed(&probe).expect("sealed").len();
    tracker.receipt(probe).await;
    let receipt_len = receipt_len(&ws.config().journal_path, &probe);

    let mut released = Vec::with_capacity(scale.latency);
    let mut latency = Vec::with_capacity(scale.latency);
    for n in 0..scale.latency {
        let (r, t) = round_trip(&ws, &session, &tracker, 1000 + n, Precedence::Routine).await;
        released.push(r);
        latency.push(t);
    }

    let (rate_samples, elapsed, rate_cpu) = closed_loop(
        &ws,
        &session,
        &tracker,
        100_000,
        scale.rate,
        scale.concurrency,
    )
    .await;
    let figures = LinkFigures {
        sealed_len,
        receipt_len,
        release: Summary::of(&released),
        latency: Summary::of(&latency),
        rate_release: Summary::of(&rate_samples.iter().map(|s| s.0).collect::<Vec<_>>()),
        rate_latency: Summary::of(&rate_samples.iter().map(|s| s.1).collect::<Vec<_>>()),
        rate: scale.rate as f64 / elapsed.as_secs_f64(),
        rate_cpu,
        lagged: tracker.lagged(),
    };
    ws.shutdown().await;
    ms.shutdown().await;
    figures
}

/// The size of the signed receipt MOSCOW returned for `id`, read from the
/// sender's journal (a read-only connection beside the running station).
fn receipt_len(journal: &std::path::Path, id: &MessageId) -> Option<usize> {
    let conn =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(
        "SELECT length(receipt) FROM messages WHERE id = ?1 AND direction = 'out'",
        [id.to_string()],
        |r| r.get::<_, Option<i64>>(0),
    )
    .ok()
    .flatten()
    .and_then(|n| usize::try_from(n).ok())
}

struct FlashProbe {
    /// Since the link came up.
    at: Duration,
    /// ROUTINE backlog not yet receipted when the FLASH was released.
    backlog_left: usize,
    release: Duration,
    latency: Duration,
}

struct FlashFigures {
    backlog: usize,
    queue_elapsed: Duration,
    queue_rate: f64,
    queue_cpu: f64,
    link_up_after: Duration,
    probes: Vec<FlashProbe>,
    /// A ROUTINE released together with the first FLASH: the control.
    control: Duration,
    drain: Duration,
    drain_rate: f64,
    drain_cpu: f64,
    /// One `Journal::list` of every outbound row at the sender, and of every
    /// inbound row at the receiver, after the drain: the station timers run
    /// these once a second on a runtime worker, holding the reader lock.
    list_out: Duration,
    list_in: Duration,
    /// One page of the newest 500 outbound rows, from the journal.
    page_out: Duration,
    list_rows: usize,
    /// Idle round trips after the drain, with the journals full.
    after: Summary,
    after_over_10ms: usize,
    lagged: u64,
}

async fn flash_figures(root: &std::path::Path, scale: &Scale) -> FlashFigures {
    let (w, m) = support::pair(root, support::FAST_LINK);
    let ws = w.start().await;
    let session = Arc::new(common::login(&ws, "op", support::PASSPHRASE).await);
    let tracker = Tracker::start(&ws);

    // MOSCOW is not running: everything queues.
    let permits = Arc::new(Semaphore::new(scale.concurrency));
    let mut tasks = JoinSet::new();
    let cpu = CpuMeter::start();
    for n in 0..scale.backlog {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (ws, session) = (ws.clone(), session.clone());
        tasks.spawn(async move {
            let id = release(&ws, &session, n, Precedence::Routine).await;
            drop(permit);
            id
        });
    }
    let mut backlog = Vec::with_capacity(scale.backlog);
    while let Some(r) = tasks.join_next().await {
        backlog.push(r.expect("release task"));
    }
    let (queue_elapsed, queue_cpu) = cpu.stop();
    assert_eq!(
        tracker.progress(&backlog).0,
        0,
        "receipts arrived while MOSCOW was down"
    );

    let moscow_started = Instant::now();
    let ms = m.start().await;
    let up = tracker.link_up().await;
    let cpu = CpuMeter::start();

    // FLASH probes while the backlog drains; each next one is spaced by the
    // drain rate seen so far, so that they spread over the drain.
    let mut probes = Vec::new();
    let mut control = None;
    tokio::time::sleep_until((up + scale.flash_delay).into()).await;
    for k in 0..scale.flash_probes {
        let left = backlog.len() - tracker.progress(&backlog).0;
        if k > 0 && left < scale.concurrency * 2 {
            break;
        }
        if k == 0 {
            let (ws, session, tracker) = (ws.clone(), session.clone(), tracker.clone());
            control = Some(tokio::spawn(async move {
                round_trip(&ws, &session, &tracker, 800_000, Precedence::Routine)
                    .await
                    .1
            }));
        }
        let t0 = Instant::now();
        let (release, latency) =
            round_trip(&ws, &session, &tracker, 900_000 + k, Precedence::Flash).await;
        probes.push(FlashProbe {
            at: t0 - up,
            backlog_left: left,
            release,
            latency,
        });
        let done = tracker.progress(&backlog).0;
        let rate = done as f64 / up.elapsed().as_secs_f64().max(1e-3);
        let remaining = Duration::from_secs_f64((backlog.len() - done) as f64 / rate.max(1.0));
        let probes_left = (scale.flash_probes - k) as u32;
        tokio::time::sleep(
            (remaining / probes_left).clamp(Duration::from_millis(20), Duration::from_secs(5)),
        )
        .await;
    }

    let deadline = Instant::now() + WAIT_LIMIT * 2;
    let last = loop {
        match tracker.progress(&backlog) {
            (done, Some(last)) if done == backlog.len() => break last,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, drain_cpu) = cpu.stop();
    let drain = last - up;
    let control = control
        .expect("a control was sent")
        .await
        .expect("control task");

    // Idle again, but with every row of the drain in both journals: one
    // message at a time for a few timer ticks.
    let mut after = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < scale.after_drain {
        after.push(
            round_trip(
                &ws,
                &session,
                &tracker,
                700_000 + after.len(),
                Precedence::Routine,
            )
            .await
            .1,
        );
    }

    let t0 = Instant::now();
    let list_rows = common::list(&ws, Direction::Out).await.len();
    let list_out = t0.elapsed();
    let t0 = Instant::now();
    common::list(&ms, Direction::In).await;
    let list_in = t0.elapsed();
    let t0 = Instant::now();
    let page = ws.journal().page(Direction::Out, 500, None).expect("page");
    let page_out = t0.elapsed();
    assert_eq!(page.len(), 500.min(list_rows));

    let figures = FlashFigures {
        backlog: backlog.len(),
        queue_elapsed,
        queue_rate: backlog.len() as f64 / queue_elapsed.as_secs_f64(),
        queue_cpu,
        link_up_after: up - moscow_started,
        probes,
        control,
        drain,
        drain_rate: backlog.len() as f64 / drain.as_secs_f64(),
        drain_cpu,
        list_out,
        list_in,
        page_out,
        list_rows,
        after: Summary::of(&after),
        after_over_10ms: after
            .iter()
            .filter(|d| **d > Duration::from_millis(10))
            .count(),
        lagged: tracker.lagged(),
    };
    ws.shutdown().await;
    ms.shutdown().await;
    figures
}

/// CPU time of this whole process (both stations and the bench) over a
/// stretch of wall time, as cores busy on average.
struct CpuMeter {
    wall: Instant,
    cpu: Duration,
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            cpu: common::process_cpu(),
        }
    }

    /// (wall time, cores busy on average).
    fn stop(self) -> (Duration, f64) {
        let wall = self.wall.elapsed();
        let cpu = common::process_cpu().saturating_sub(self.cpu);
        (wall, cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9))
    }
}

// ------------------------------------------------------------ bare quinn floor

struct FloorFigures {
    request_len: usize,
    answer_len: usize,
    latency: Summary,
    rate_latency: Summary,
    rate: f64,
    rate_cpu: f64,
}

/// Answers every bi stream with `answer` once the request is read in full.
async fn floor_server(endpoint: quinn::Endpoint, answer: Arc<Vec<u8>>) {
    while let Some(incoming) = endpoint.accept().await {
        let answer = answer.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    if recv.read_to_end(2 * 1024 * 1024).await.is_ok()
                        && send.write_all(&answer).await.is_ok()
                    {
                        let _ = send.finish();
                    }
                });
            }
        });
    }
}

async fn floor_request(conn: &quinn::Connection, request: &[u8]) -> Duration {
    let t0 = Instant::now();
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(request).await?;
        send.finish()?;
        let answer = recv.read_to_end(64 * 1024).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answer.len())
    };
    let len = tokio::time::timeout(WAIT_LIMIT, exchange)
        .await
        .expect("bare quinn answer in time")
        .expect("bare quinn exchange");
    assert!(len > 0, "empty bare quinn answer");
    t0.elapsed()
}

/// The QUIC handshake alone on loopback, `count` times in a row: the
/// floor's configs with ring's key exchanges (X25519), then with hotline's
/// provider, which offers X25519MLKEM768 first.
async fn handshake_figures(count: usize) -> (Summary, Summary) {
    let mut figures = Vec::new();
    for provider in [
        Arc::new(rustls::crypto::ring::default_provider()),
        hotline::link::tls::provider(),
    ] {
        let (server_config, client_config) = common::floor_configs_with(provider);
        let server = quinn::Endpoint::server(
            server_config,
            "127.0.0.1:0".parse::<SocketAddr>().expect("addr"),
        )
        .expect("server endpoint");
        let addr = server.local_addr().expect("server addr");
        let accepting = tokio::spawn(floor_server(server.clone(), Arc::new(Vec::new())));
        let mut client =
            quinn::Endpoint::client("127.0.0.1:0".parse::<SocketAddr>().expect("addr"))
                .expect("client endpoint");
        client.set_default_client_config(client_config);
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let t0 = Instant::now();
            let conn = client
                .connect(addr, "localhost")
                .expect("connect")
                .await
                .expect("handshake");
            samples.push(t0.elapsed());
            conn.close(0u32.into(), b"done");
        }
        accepting.abort();
        figures.push(Summary::of(&samples));
    }
    (figures[0], figures[1])
}

async fn floor_figures(scale: &Scale, request_len: usize, answer_len: usize) -> FloorFigures {
    let (server_config, client_config) = floor_configs();
    let server = quinn::Endpoint::server(
        server_config,
        "127.0.0.1:0".parse::<SocketAddr>().expect("addr"),
    )
    .expect("server endpoint");
    let addr = server.local_addr().expect("server addr");
    tokio::spawn(floor_server(
        server.clone(),
        Arc::new(vec![0x5a; answer_len]),
    ));
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse::<SocketAddr>().expect("addr"))
        .expect("client endpoint");
    client.set_default_client_config(client_config);
    let conn = client
        .connect(addr, "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    let request = Arc::new(vec![0xa5; request_len]);

    for _ in 0..scale.warmup * 10 {
        floor_request(&conn, &request).await;
    }
    let mut latency = Vec::with_capacity(scale.floor_latency);
    for _ in 0..scale.floor_latency {
        latency.push(floor_request(&conn, &request).await);
    }

    let permits = Arc::new(Semaphore::new(scale.concurrency));
    let mut tasks = JoinSet::new();
    let cpu = CpuMeter::start();
    for _ in 0..scale.floor_rate {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (conn, request) = (conn.clone(), request.clone());
        tasks.spawn(async move {
            let t = floor_request(&conn, &request).await;
            drop(permit);
            t
        });
    }
    let mut rate_samples = Vec::with_capacity(scale.floor_rate);
    while let Some(r) = tasks.join_next().await {
        rate_samples.push(r.expect("floor task"));
    }
    let (elapsed, rate_cpu) = cpu.stop();

    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    server.close(0u32.into(), b"done");
    FloorFigures {
        request_len,
        answer_len,
        latency: Summary::of(&latency),
        rate_latency: Summary::of(&rate_samples),
        rate: scale.floor_rate as f64 / elapsed.as_secs_f64(),
        rate_cpu,
    }
}

/// The cost of one durable write in the temp dir: 4 KiB appended, then
/// fdatasync. Every journal commit pays at least one of these.
fn fsync_figures(dir: &std::path::Path, count: usize) -> Summary {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).expect("probe file");
    let block = vec![0u8; 4096];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t0 = Instant::now();
        file.write_all(&block).expect("write");
        file.sync_data().expect("fdatasync");
        samples.push(t0.elapsed());
    }
    Summary::of(&samples)
}

/// How the crypto probe seals: as the stations do (post-quantum, both
/// stations having hybrid keys), or as to a peer without a post-quantum
/// recipient (classic X25519).
#[derive(Clone, Copy)]
enum Sealing {
    Hybrid,
    Classic,
}

/// The crypto one message's path pays, in this run: the sender seals
/// (sign + age encrypt to two), the receiver opens (decrypt + verify) and
/// signs a receipt of `receipt_len` bytes, the sender verifies it. Also
/// the sealed message's size.
fn crypto_figures(
    root: &std::path::Path,
    receipt_len: usize,
    count: usize,
    sealing: Sealing,
) -> (Summary, usize) {
    use hotline::crypto::signed::{self, Kind};
    let (w, m) = support::pair(root, support::FAST_LINK);
    let (mut wk, mut mk) = (w.keys(), m.keys());
    if let Sealing::Classic = sealing {
        (wk.pq, mk.pq) = (None, None);
    }
    let (wp, mp) = (wk.public(), mk.public());
    let mut sealed_len = 0;
    let mut draft = support::general("crypto floor");
    draft.fields.insert("text".into(), "x".repeat(BODY_CHARS));
    let checked = hotline::compose::check(
        &draft,
        hotline::templates::Catalog::builtin(),
        jiff::Timestamp::now(),
    )
    .expect("a valid draft");
    let origin = hotline::compose::Origin {
        station: wk.name.clone(),
        operator: support::op(),
        second_operator: None,
        language: hotline::domain::Language::EN,
    };
    let receipt = serde_json::to_vec(&json!({
        "revision": hotline::domain::REVISION,
        "pad": "r".repeat(receipt_len.saturating_sub(180)),
    }))
    .expect("json");
    let mut samples = Vec::with_capacity(count);
    for serial in 1..=count as u64 {
        let message =
            hotline::compose::build(&checked, &origin, &mk.name, serial, jiff::Timestamp::now());
        let t0 = Instant::now();
        let sealed = hotline::crypto::seal(&message, &wk, &mp).expect("seal");
        hotline::crypto::open_inbound(&sealed, &mk, |_| Some(wp.clone())).expect("open");
        sealed_len = sealed.len();
        let doc = signed::sign(Kind::Receipt, &mk.name, &receipt, &mk.signing);
        signed::parse(&doc)
            .expect("parse")
            .verify(Kind::Receipt, &mk.signing.verifying_key())
            .expect("verify");
        samples.push(t0.elapsed());
    }
    (Summary::of(&samples), sealed_len)
}

// ------------------------------------------------------------------- the run

struct Report {
    concurrency: usize,
    link: LinkFigures,
    flash: FlashFigures,
    floor: FloorFigures,
    fsync: Summary,
    /// Hybrid post-quantum sealing, as the stations above sealed.
    crypto: Summary,
    /// The same path sealed to classic X25519 recipients, and its size.
    crypto_classic: Summary,
    sealed_classic_len: usize,
    /// QUIC handshakes with X25519, and with X25519MLKEM768.
    handshake_classic: Summary,
    handshake_hybrid: Summary,
    tmpfs: bool,
}

async fn run(scale: &Scale) -> Report {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tmpfs = common::on_tmpfs(tmp.path());
    eprintln!(
        "link bench: quick={} temp dir {}{}",
        scale.quick,
        tmp.path().display(),
        if tmpfs {
            " (tmpfs: fdatasync reaches no disk, so no figure here is a durable one)"
        } else {
            ""
        }
    );

    eprintln!("link bench: latency and sustained rate...");
    let link = link_figures(&tmp.path().join("steady"), scale).await;

    eprintln!(
        "link bench: FLASH under a backlog of {} ROUTINE...",
        scale.backlog
    );
    let flash = flash_figures(&tmp.path().join("backlog"), scale).await;

    eprintln!("link bench: bare quinn floor...");
    let request_len = link.sealed_len + hotline::wire::HEADER_LEN;
    let answer_len = link.receipt_len.unwrap_or(FALLBACK_ANSWER) + hotline::wire::HEADER_LEN;
    let floor = floor_figures(scale, request_len, answer_len).await;

    eprintln!("link bench: QUIC handshakes, X25519 and X25519MLKEM768...");
    let (handshake_classic, handshake_hybrid) = handshake_figures(scale.floor_latency / 10).await;

    let fsync_dir = tmp.path().to_path_buf();
    let fsyncs = scale.fsyncs;
    let fsync = tokio::task::spawn_blocking(move || fsync_figures(&fsync_dir, fsyncs))
        .await
        .expect("fsync probe");
    let crypto_dir = tmp.path().join("crypto");
    let receipt_len = link.receipt_len.unwrap_or(FALLBACK_ANSWER);
    let samples = scale.floor_latency / 4;
    let ((crypto, _), (crypto_classic, sealed_classic_len)) =
        tokio::task::spawn_blocking(move || {
            (
                crypto_figures(
                    &crypto_dir.join("hybrid"),
                    receipt_len,
                    samples,
                    Sealing::Hybrid,
                ),
                crypto_figures(
                    &crypto_dir.join("classic"),
                    receipt_len,
                    samples,
                    Sealing::Classic,
                ),
            )
        })
        .await
        .expect("crypto probe");
    Report {
        concurrency: scale.concurrency,
        link,
        flash,
        floor,
        fsync,
        crypto,
        crypto_classic,
        sealed_classic_len,
        handshake_classic,
        handshake_hybrid,
        tmpfs,
    }
}

// ------------------------------------------------------------------ printing

struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    ratio: Option<f64>,
}

fn row(name: impl Into<String>, value: f64, unit: &'static str, floor: Option<f64>) -> Row {
    Row {
        name: name.into(),
        value,
        unit,
        ratio: floor.filter(|f| *f > 0.0).map(|f| value / f),
    }
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "n": s.n,
        "p50_ms": round(ms(s.p50), 3),
        "p99_ms": round(ms(s.p99), 3),
        "mean_ms": round(ms(s.mean), 3),
        "max_ms": round(ms(s.max), 3),
    })
}

impl Report {
    /// The issue's floor for one message: the bare round trip, the three
    /// fdatasyncs on the critical path (sender's release, receiver's store,
    /// sender's receipt) and the crypto, all measured in this run.
    fn path_floor_ms(&self) -> f64 {
        ms(self.floor.latency.p50) + 3.0 * ms(self.fsync.p50) + ms(self.crypto.p50)
    }

    /// Messages per second the cores could seal, open and receipt if they
    /// did nothing else (both stations share them).
    fn crypto_ceiling(&self) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        cores / self.crypto.mean.as_secs_f64().max(1e-9)
    }

    fn rows(&self) -> Vec<Row> {
        let (l, f, q) = (&self.link, &self.flash, &self.floor);
        let c = self.concurrency;
        let mut rows = vec![
            row(
                "sealed message frame (1 KiB text)",
                q.request_len as f64,
                "bytes",
                None,
            ),
            row("receipt frame", q.answer_len as f64, "bytes", None),
            row(
                "release -> durable in outbox p50",
                ms(l.release.p50),
                "ms",
                None,
            ),
            row(
                "release -> durable in outbox p99",
                ms(l.release.p99),
                "ms",
                None,
            ),
            row(
                "release -> receipt p50",
                ms(l.latency.p50),
                "ms",
                Some(ms(q.latency.p50)),
            ),
            row(
                "release -> receipt p99",
                ms(l.latency.p99),
                "ms",
                Some(ms(q.latency.p99)),
            ),
            row(
                "release -> receipt mean",
                ms(l.latency.mean),
                "ms",
                Some(ms(q.latency.mean)),
            ),
            row(
                format!("sustained rate ({c} in flight)"),
                l.rate,
                "msg/s",
                Some(q.rate),
            ),
            row(
                "  round trip at that rate p50",
                ms(l.rate_latency.p50),
                "ms",
                Some(ms(q.rate_latency.p50)),
            ),
            row(
                "  round trip at that rate p99",
                ms(l.rate_latency.p99),
                "ms",
                Some(ms(q.rate_latency.p99)),
            ),
            row(
                "  of which release -> durable p50",
                ms(l.rate_release.p50),
                "ms",
                None,
            ),
            row(
                "  of which release -> durable p99",
                ms(l.rate_release.p99),
                "ms",
                None,
            ),
            row(
                "  CPU busy (whole process)",
                l.rate_cpu,
                "cores",
                Some(q.rate_cpu),
            ),
            row(
                format!("queue {} ROUTINE, peer down", f.backlog),
                f.queue_elapsed.as_secs_f64(),
                "s",
                None,
            ),
            row("  release rate while queueing", f.queue_rate, "msg/s", None),
            row("  CPU busy (whole process)", f.queue_cpu, "cores", None),
            row("peer start -> link up", ms(f.link_up_after), "ms", None),
        ];
        for (k, p) in f.probes.iter().enumerate() {
            rows.push(row(
                format!(
                    "FLASH #{} at +{:.2}s ({} ROUTINE left)",
                    k + 1,
                    p.at.as_secs_f64(),
                    p.backlog_left
                ),
                ms(p.latency),
                "ms",
                Some(ms(q.latency.p50)),
            ));
            rows.push(row(
                format!("  FLASH #{} release -> durable", k + 1),
                ms(p.release),
                "ms",
                None,
            ));
        }
        if let Some(worst) = f.probes.iter().map(|p| p.latency).max() {
            rows.push(row(
                "worst FLASH / idle release -> receipt p50",
                ms(worst) / ms(l.latency.p50),
                "x",
                None,
            ));
        }
        rows.extend([
            row(
                "ROUTINE released with FLASH #1 (control)",
                ms(f.control),
                "ms",
                None,
            ),
            row(
                format!("backlog drain ({} ROUTINE)", f.backlog),
                f.drain.as_secs_f64(),
                "s",
                None,
            ),
            row("  drain rate", f.drain_rate, "msg/s", Some(q.rate)),
            row(
                "  CPU busy (whole process)",
                f.drain_cpu,
                "cores",
                Some(q.rate_cpu),
            ),
            row(
                format!("idle release -> receipt after drain p50 (n={})", f.after.n),
                ms(f.after.p50),
                "ms",
                Some(ms(q.latency.p50)),
            ),
            row(
                "idle release -> receipt after drain p99",
                ms(f.after.p99),
                "ms",
                Some(ms(q.latency.p99)),
            ),
            row(
                "idle release -> receipt after drain max",
                ms(f.after.max),
                "ms",
                None,
            ),
            row(
                "  of those over 10 ms",
                f.after_over_10ms as f64,
                "count",
                None,
            ),
            row(
                format!("journal list, {} outbound rows", f.list_rows),
                ms(f.list_out),
                "ms",
                None,
            ),
            row(
                "journal list, inbound rows at the peer",
                ms(f.list_in),
                "ms",
                None,
            ),
            row(
                "journal page, newest 500 outbound",
                ms(f.page_out),
                "ms",
                None,
            ),
            row(
                "bare quinn request/response p50",
                ms(q.latency.p50),
                "ms",
                None,
            ),
            row(
                "bare quinn request/response p99",
                ms(q.latency.p99),
                "ms",
                None,
            ),
            row(
                format!("bare quinn rate ({c} in flight)"),
                q.rate,
                "req/s",
                None,
            ),
            row(
                "  round trip at that rate p50",
                ms(q.rate_latency.p50),
                "ms",
                None,
            ),
            row(
                "fsync (4 KiB + fdatasync) p50",
                ms(self.fsync.p50),
                "ms",
                None,
            ),
            row(
                "fsync (4 KiB + fdatasync) p99",
                ms(self.fsync.p99),
                "ms",
                None,
            ),
            row(
                "crypto per message (seal, open, receipt) p50, hybrid",
                ms(self.crypto.p50),
                "ms",
                Some(ms(self.crypto_classic.p50)),
            ),
            row(
                "crypto per message p50, classic X25519 (baseline above)",
                ms(self.crypto_classic.p50),
                "ms",
                None,
            ),
            row(
                "QUIC handshake p50, X25519MLKEM768",
                ms(self.handshake_hybrid.p50),
                "ms",
                Some(ms(self.handshake_classic.p50)),
            ),
            row(
                "QUIC handshake p50, X25519 (baseline above)",
                ms(self.handshake_classic.p50),
                "ms",
                None,
            ),
            row(
                "sealed message, classic X25519 (hybrid: frame above)",
                self.sealed_classic_len as f64,
                "bytes",
                None,
            ),
            row(
                "path floor: quinn + 3 fdatasync + crypto",
                self.path_floor_ms(),
                "ms",
                None,
            ),
            row(
                "release -> receipt p50 / path floor",
                ms(l.latency.p50) / self.path_floor_ms(),
                "x",
                None,
            ),
            row(
                "rate ceiling: cores / crypto per message",
                self.crypto_ceiling(),
                "msg/s",
                None,
            ),
        ]);
        rows
    }

    fn json(&self, scale: &Scale, elapsed: Duration) -> Value {
        let (l, f, q) = (&self.link, &self.flash, &self.floor);
        let ratio = |a: f64, b: f64| if b > 0.0 { round(a / b, 2) } else { f64::NAN };
        let worst_flash = f.probes.iter().map(|p| p.latency).max();
        json!({
            "bench": "link",
            "quick": scale.quick,
            "elapsed_s": round(elapsed.as_secs_f64(), 1),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "body_chars": BODY_CHARS,
            "sealed_frame_bytes": q.request_len,
            "receipt_frame_bytes": q.answer_len,
            "receipt_size_measured": l.receipt_len.is_some(),
            "concurrency": scale.concurrency,
            "release_to_durable": summary_json(&l.release),
            "release_to_receipt": summary_json(&l.latency),
            "sustained": {
                "messages": scale.rate,
                "msgs_per_s": round(l.rate, 1),
                "cpu_cores": round(l.rate_cpu, 2),
                "round_trip": summary_json(&l.rate_latency),
                "release_to_durable": summary_json(&l.rate_release),
            },
            "flash_under_load": {
                "backlog": f.backlog,
                "queue_s": round(f.queue_elapsed.as_secs_f64(), 3),
                "queue_msgs_per_s": round(f.queue_rate, 1),
                "queue_cpu_cores": round(f.queue_cpu, 2),
                "link_up_ms": round(ms(f.link_up_after), 1),
                "flash_delay_ms": round(ms(scale.flash_delay), 1),
                "probes": f.probes.iter().map(|p| json!({
                    "at_s": round(p.at.as_secs_f64(), 3),
                    "backlog_left": p.backlog_left,
                    "release_ms": round(ms(p.release), 3),
                    "latency_ms": round(ms(p.latency), 3),
                })).collect::<Vec<_>>(),
                "latency_max_ms": worst_flash.map(|d| round(ms(d), 3)),
                "routine_control_ms": round(ms(f.control), 3),
                "drain_s": round(f.drain.as_secs_f64(), 3),
                "drain_msgs_per_s": round(f.drain_rate, 1),
                "drain_cpu_cores": round(f.drain_cpu, 2),
                "journal_list_out_ms": round(ms(f.list_out), 3),
                "journal_list_in_ms": round(ms(f.list_in), 3),
                "journal_page_500_ms": round(ms(f.page_out), 3),
                "journal_list_rows": f.list_rows,
                "idle_after_drain": summary_json(&f.after),
                "idle_after_drain_over_10ms": f.after_over_10ms,
            },
            "floor": {
                "request_bytes": q.request_len,
                "answer_bytes": q.answer_len,
                "latency": summary_json(&q.latency),
                "rate_round_trip": summary_json(&q.rate_latency),
                "req_per_s": round(q.rate, 1),
                "cpu_cores": round(q.rate_cpu, 2),
            },
            "fsync": summary_json(&self.fsync),
            "crypto_per_message": summary_json(&self.crypto),
            "crypto_per_message_classic": summary_json(&self.crypto_classic),
            "sealed_classic_bytes": self.sealed_classic_len,
            "handshake_x25519": summary_json(&self.handshake_classic),
            "handshake_x25519mlkem768": summary_json(&self.handshake_hybrid),
            "path_floor_ms": round(self.path_floor_ms(), 3),
            "crypto_ceiling_msgs_per_s": round(self.crypto_ceiling(), 1),
            "tmpfs": self.tmpfs,
            "ratios": {
                "latency_p50_x_floor": ratio(ms(l.latency.p50), ms(q.latency.p50)),
                "latency_p50_x_path_floor": ratio(ms(l.latency.p50), self.path_floor_ms()),
                "latency_p99_x_path_floor": ratio(ms(l.latency.p99), self.path_floor_ms()),
                "rate_fraction_of_crypto_ceiling": ratio(l.rate, self.crypto_ceiling()),
                "latency_p99_x_floor": ratio(ms(l.latency.p99), ms(q.latency.p99)),
                "rate_fraction_of_floor": ratio(l.rate, q.rate),
                "drain_rate_fraction_of_floor": ratio(f.drain_rate, q.rate),
                "flash_max_x_floor_p50": worst_flash.map(|d| ratio(ms(d), ms(q.latency.p50))),
                "flash_max_x_idle_p50": worst_flash.map(|d| ratio(ms(d), ms(l.latency.p50))),
            },
            "events_lagged": l.lagged + f.lagged,
        })
    }

    fn print(&self, scale: &Scale, elapsed: Duration) {
        let rows = self.rows();
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
        println!();
        println!(
            "hotline link benchmark{} (ratio = hotline / bare quinn)",
            if scale.quick { " [QUICK]" } else { "" }
        );
        println!(
            "{:<width$}  {:>12}  {:<6}  {:>9}",
            "name", "value", "unit", "ratio"
        );
        println!("{}", "-".repeat(width + 35));
        for r in &rows {
            let ratio = r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default();
            println!(
                "{:<width$}  {:>12.3}  {:<6}  {:>9}",
                r.name, r.value, r.unit, ratio
            );
        }
        println!();
        println!("{}", self.json(scale, elapsed));
    }
}
