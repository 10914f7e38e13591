//! Console benchmark: what the duty console costs to draw and to keep
//! running.
//!
//! Run with `cargo bench --bench console`; `HOTLINE_BENCH_QUICK=1` scales
//! the frame and update counts down 10x and the idle windows to 5 s for a
//! smoke run. Prints a table, then one JSON line. Needs `tmux` on PATH.
//!
//! What is measured:
//! - frame render time: `hotline::ui::draw` through `Terminal::draw` on
//!   ratatui's `TestBackend`, for the inbound queue and the sent list, at
//!   80x24 and 120x40, with 100,000 inbound and 1,000 outbound rows, each
//!   against the same draw with 10 rows measured in the same run (and a
//!   1,000-row middle point, which fills every screen, so a ratio above 1
//!   that the 1,000 rows do not show comes from work over the whole queue);
//! - `update` for `Msg::Refreshed` (100,000 rows: it sorts, and drops the
//!   rows it replaces) and for `Msg::Tick` (the run loop sends one every
//!   500 ms; it scans the queue for overdue messages), against the same with
//!   10 rows; and whether ticks ever reorder the queue (they must not: the
//!   order does not depend on the clock);
//! - idle CPU of the real `hotline console` in a tmux pane, at the log-in
//!   screen and logged in on an empty queue, sampled from /proc/PID/stat,
//!   with a `sleep` in another pane of the same tmux server over the same
//!   window as the floor, and the tmux server's own CPU beside it;
//! - one arrival applied and drawn with 1,000 and 100,000 rows queued,
//!   against the full re-read the console once did on every event;
//! - the time from a `hotline serve` stopping (SIGTERM) or freezing
//!   (SIGSTOP) to the attached `hotline console` showing STATION NOT
//!   RUNNING, read off the tmux pane every 10 ms.
//!
//! Times are wall clock (what the operator waits) and on-CPU time of the
//! measuring thread (the work, which other load on the machine does not
//! inflate); the load average at the start is printed with the results.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Summary, round};
use hotline::config::Deadlines;
use hotline::console::keymap::Keymap;
use hotline::console::rows::{Order, Rows};
use hotline::console::{App, Msg, Screen, Setup, update};
use hotline::domain::{Language, MessageId, OperatorName, Precedence, StationName};
use hotline::link::{PathKind, PeerLinkStatus};
use hotline::station::Status;
use hotline::store::{Direction, MessageRow, MessageState};
use jiff::{SignedDuration, Timestamp};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

/// Inbound rows in the big queue.
const BIG: usize = 100_000;
/// Inbound rows in the middle point: more than any screen shows.
const MID: usize = 1_000;
/// Inbound rows in the baseline.
const SMALL: usize = 10;
/// Outbound rows alongside the big queue.
const OUTBOUND: usize = 1_000;
/// The terminal sizes drawn.
const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];
/// The console's tick (`hotline::console::TICK`), as ticks per second.
const TICKS_PER_S: f64 = 2.0;
/// The operator the idle run logs in as.
const OPERATOR: &str = "benchop";
const PASSPHRASE: &str = "bench passphrase 1";

struct Scale {
    quick: bool,
    warmup: usize,
    frames: usize,
    refreshes: usize,
    ticks: usize,
    settle: Duration,
    idle: Duration,
}

impl Scale {
    fn from_env() -> Scale {
        let quick = std::env::var("HOTLINE_BENCH_QUICK").is_ok_and(|v| v == "1");
        let div = if quick { 10 } else { 1 };
        Scale {
            quick,
            warmup: 200 / div,
            frames: 2000 / div,
            refreshes: 20 / div.min(4),
            ticks: 60 / div,
            settle: Duration::from_secs(3),
            idle: Duration::from_secs(if quick { 5 } else { 20 }),
        }
    }
}

fn main() {
    let scale = Scale::from_env();
    let started = Instant::now();
    let bin = console_binary();
    let tmux_version = tmux_version();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "console bench{}: frame render...",
        if scale.quick { " [QUICK]" } else { "" }
    );
    let (render, scans) = render_bench(&scale);
    eprintln!("console bench: update (Refreshed, Tick)...");
    let updates = update_bench(&scale);
    eprintln!("console bench: one arrival applied and drawn, against a full re-read...");
    let events = event_bench(&scale);
    eprintln!(
        "console bench: idle CPU of {} under tmux ({} s per window)...",
        bin.display(),
        scale.idle.as_secs()
    );
    let idle = idle_bench(&scale, &bin);
    eprintln!("console bench: an attached console over a station that stops or freezes...");
    let stops = stop_bench(&scale, &bin);
    let report = Report {
        stops,
        render,
        scans,
        updates,
        events,
        idle,
        loadavg: loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        tmux_version,
    };
    report.print(&scale, started.elapsed());
}

// ---------------------------------------------------------------- statistics

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Wall and on-CPU time of a series of runs. Wall time is what the operator
/// waits; CPU time is the work done, which other load on the machine does
/// not inflate (it shows when wall p99 is preemption rather than work).
#[derive(Default)]
struct Series {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Series {
    fn with_capacity(n: usize) -> Series {
        Series {
            wall: Vec::with_capacity(n),
            cpu: Vec::with_capacity(n),
        }
    }

    /// Runs `f`, keeping its times if `keep`.
    fn time<T>(&mut self, keep: bool, f: impl FnOnce() -> T) -> T {
        let (c, w) = (thread_cpu(), Instant::now());
        let out = f();
        let (wall, cpu) = (w.elapsed(), thread_cpu() - c);
        if keep {
            self.wall.push(wall);
            self.cpu.push(cpu);
        }
        out
    }

    fn summary(&self) -> Timing {
        Timing {
            wall: Summary::of(&self.wall),
            cpu: Summary::of(&self.cpu),
        }
    }
}

#[derive(Clone, Copy)]
struct Timing {
    wall: Summary,
    cpu: Summary,
}

fn timing_json(t: &Timing) -> Value {
    json!({ "wall": summary_json(&t.wall), "cpu": summary_json(&t.cpu) })
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "n": s.n,
        "p50_us": round(us(s.p50), 1),
        "p99_us": round(us(s.p99), 1),
        "mean_us": round(us(s.mean), 1),
        "max_us": round(us(s.max), 1),
    })
}

// ---------------------------------------------------------------- the queue

/// A small deterministic generator (splitmix64), so every run draws the
/// same queue.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TEMPLATES: [&str; 8] = [
    "general",
    "situation-update",
    "request-info",
    "response",
    "military-incident",
    "missile-launch",
    "nuclear-accident",
    "cyber-incident",
];

/// FLASH 1%, IMMEDIATE 9%, PRIORITY 30%, ROUTINE 60%.
fn moscow() -> StationName {
    StationName::new("MOSCOW").expect("a valid station name")
}

fn operator(name: &str) -> OperatorName {
    OperatorName::new(name).expect("a valid operator name")
}

fn precedence(rng: &mut Rng) -> Precedence {
    match rng.below(100) {
        0 => Precedence::Flash,
        1..10 => Precedence::Immediate,
        10..40 => Precedence::Priority,
        _ => Precedence::Routine,
    }
}

/// What the inbound queue looks like after some 48 hours of traffic:
/// oldest first, times as the journal reads them back; one in five still unacknowledged
/// (most of those overdue), the rest acknowledged.
fn inbound_rows(n: usize, now: Timestamp) -> Vec<MessageRow> {
    let mut rng = Rng(0x5eed_0001);
    let span = SignedDuration::from_hours(48);
    let step = span / n.max(1) as i32;
    (0..n)
        .map(|i| {
            let stored = now - span + step * i as i32 + SignedDuration::from_millis(1);
            let released = stored - SignedDuration::from_millis(150 + rng.below(500) as i64);
            let unacked = rng.below(5) == 0;
            let ack_at = stored + SignedDuration::from_secs(30 + rng.below(600) as i64);
            MessageRow {
                id: MessageId::new(),
                direction: Direction::In,
                peer: moscow(),
                serial: i as u64 + 1,
                precedence: precedence(&mut rng),
                exercise: false,
                template_id: TEMPLATES[rng.below(TEMPLATES.len() as u64) as usize].into(),
                template_version: 1,
                released_at: released,
                stored_at: stored,
                operator: operator("IVANOV"),
                second_operator: None,
                state: if unacked {
                    MessageState::Received
                } else {
                    MessageState::Acknowledged
                },
                receipt_at: None,
                ack_by: (!unacked).then(|| ["op", "smith", "jones"][i % 3].to_string()),
                ack_at: (!unacked).then_some(ack_at),
                refusal: None,
                attachments: 0,
                attachments_done: 0,
                attachments_refused: 0,
                subject: None,
            }
        })
        .collect()
}

fn outbound_rows(n: usize, now: Timestamp) -> Vec<MessageRow> {
    let mut rng = Rng(0x5eed_0002);
    let span = SignedDuration::from_hours(48);
    let step = span / n.max(1) as i32;
    let states = [
        MessageState::Acknowledged,
        MessageState::Acknowledged,
        MessageState::Acknowledged,
        MessageState::Receipted,
        MessageState::Sent,
        MessageState::Queued,
        MessageState::Refused,
        MessageState::Cancelled,
    ];
    (0..n)
        .map(|i| {
            let stored = now - span + step * i as i32;
            let state = states[rng.below(states.len() as u64) as usize];
            MessageRow {
                id: MessageId::new(),
                direction: Direction::Out,
                peer: moscow(),
                serial: i as u64 + 1,
                precedence: precedence(&mut rng),
                exercise: false,
                template_id: TEMPLATES[rng.below(TEMPLATES.len() as u64) as usize].into(),
                template_version: 1,
                released_at: stored,
                stored_at: stored,
                operator: operator("op"),
                second_operator: None,
                state,
                receipt_at: matches!(state, MessageState::Receipted | MessageState::Acknowledged)
                    .then(|| stored + SignedDuration::from_millis(80)),
                ack_by: (state == MessageState::Acknowledged).then(|| "IVANOV".to_string()),
                ack_at: (state == MessageState::Acknowledged)
                    .then(|| stored + SignedDuration::from_secs(120)),
                refusal: (state == MessageState::Refused)
                    .then(|| "signature did not verify".to_string()),
                attachments: 0,
                attachments_done: 0,
                attachments_refused: 0,
                subject: None,
            }
        })
        .collect()
}

fn status() -> Status {
    Status {
        station: "WASHINGTON".into(),
        exercise: false,
        links: vec![PeerLinkStatus {
            peer: "MOSCOW".into(),
            up: true,
            path: Some(PathKind::Primary),
            remote: None,
            rtt_ms: Some(42),
            last_traffic: None,
            probes: Vec::new(),
        }],
        health: HashMap::new(),
        unacknowledged: HashMap::new(),
        outbound_pending: 0,
        strangers_refused: 0,
        snapshots_served: 0,
    }
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// A console logged in as `op`, past the handover, on the inbound queue.
fn logged_in(now: Timestamp) -> App {
    let setup = Setup {
        station: "WASHINGTON".into(),
        language: Language::En,
        time_zone: "America/New_York".into(),
        peers: vec![("MOSCOW".into(), "Europe/Moscow".into())],
        deadlines: Deadlines::default(),
        idle_lock: Duration::from_secs(15 * 60),
        two_person_flash: false,
        exercise_mode: false,
        call_sign_login: false,
        keymap: Keymap::default(),
        no_color: false,
        attached: false,
        ring: Default::default(),
    };
    let mut app = App::new(setup, now);
    update(
        &mut app,
        Msg::LoginChecked {
            name: "op".into(),
            result: Ok(OperatorName::new("op").expect("operator name")),
        },
    );
    assert_eq!(app.screen, Screen::Handover, "log-in leads to the handover");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Queue, "Enter leaves the handover");
    app
}

fn refreshed(inbound: Vec<MessageRow>, outbound: Vec<MessageRow>) -> Msg {
    Msg::Refreshed {
        inbound,
        outbound,
        status: Box::new(status()),
        alarms: Vec::new(),
    }
}

/// A logged-in console holding `n` inbound and `n.min(OUTBOUND)` outbound rows.
fn loaded(n: usize, now: Timestamp) -> App {
    let mut app = logged_in(now);
    update(
        &mut app,
        refreshed(inbound_rows(n, now), outbound_rows(n.min(OUTBOUND), now)),
    );
    assert_eq!(app.inbound.len(), n);
    app
}

// ---------------------------------------------------------------- rendering

/// What every frame asks of the whole queue, whatever the screen: the
/// exercise banner check (`App::exercise_present`) and the status bar's and
/// the queue title's counts (`App::unacknowledged_counts`). Both are kept
/// as rows change, so this no longer grows with the queue.
fn time_scans(app: &App, times: usize) -> Timing {
    let mut series = Series::with_capacity(times);
    for _ in 0..times {
        series.time(true, || {
            std::hint::black_box(app.exercise_present());
            std::hint::black_box(app.unacknowledged_counts().iter().sum::<usize>());
        });
    }
    series.summary()
}

struct Render {
    screen: &'static str,
    size: (u16, u16),
    rows: usize,
    frames: Timing,
}

fn render_bench(scale: &Scale) -> (Vec<Render>, Timing) {
    let now = Timestamp::now();
    let mut out = Vec::new();
    let mut scans = None;
    for rows in [SMALL, MID, BIG] {
        let mut app = loaded(rows, now);
        if rows == BIG {
            scans = Some(time_scans(&app, scale.frames));
        }
        for (screen, name) in [(Screen::Queue, "queue"), (Screen::Sent, "sent")] {
            if app.screen != screen {
                update(&mut app, key(KeyCode::Tab));
                assert_eq!(app.screen, screen, "Tab switches the list");
            }
            for size in SIZES {
                let frames = time_draws(&mut app, size, scale);
                out.push(Render {
                    screen: name,
                    size,
                    rows,
                    frames,
                });
            }
        }
    }
    (out, scans.expect("the big queue was drawn"))
}

/// Times `scale.frames` draws. The clock moves a second between frames
/// (outside the timing), as it does between ticks, so each frame carries a
/// small change for the terminal to diff and flush, as in the run loop.
fn time_draws(app: &mut App, (w, h): (u16, u16), scale: &Scale) -> Timing {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    let start = app.now;
    let mut series = Series::with_capacity(scale.frames);
    for i in 0..scale.warmup + scale.frames {
        app.now = start + SignedDuration::from_secs(i as i64);
        let app = &*app;
        series.time(i >= scale.warmup, || {
            terminal
                .draw(|f| hotline::ui::draw(f, app))
                .map(|_| ())
                .expect("draw on the test backend");
        });
    }
    app.now = start;
    series.summary()
}

// ---------------------------------------------------------------- events

/// One inbound arrival, from the console taking it to a drawn frame, at
/// 1,000 and 100,000 queued: applying the row the station's event carries
/// (what the console does now), against the full re-read it replaced (a
/// `Refreshed` with every row, as the journal lists them), in the same run.
struct Events {
    /// (rows, event apply + draw, full re-read + draw)
    at: Vec<(usize, Timing, Timing)>,
}

fn event_bench(scale: &Scale) -> Events {
    let now = Timestamp::now();
    let times = scale.frames / 4;
    let at = [MID, BIG]
        .into_iter()
        .map(|n| {
            let mut app = loaded(n, now);
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
            let fresh = inbound_rows(times + scale.warmup, now + SignedDuration::from_secs(1));
            let mut event = Series::with_capacity(times);
            for (i, row) in fresh.into_iter().enumerate() {
                let msg =
                    Msg::Station(hotline::station::Event::MessageChanged { row: Box::new(row) });
                event.time(i >= scale.warmup, || {
                    drop(update(&mut app, msg));
                    terminal
                        .draw(|f| hotline::ui::draw(f, &app))
                        .map(|_| ())
                        .expect("draw");
                });
            }
            let inbound: Vec<MessageRow> = app.inbound.iter().cloned().collect();
            let outbound: Vec<MessageRow> = app.outbound.iter().cloned().collect();
            let mut full = Series::with_capacity(scale.refreshes);
            for _ in 0..scale.refreshes {
                let msg = refreshed(inbound.clone(), outbound.clone());
                full.time(true, || {
                    drop(update(&mut app, msg));
                    terminal
                        .draw(|f| hotline::ui::draw(f, &app))
                        .map(|_| ())
                        .expect("draw");
                });
            }
            (n, event.summary(), full.summary())
        })
        .collect();
    Events { at }
}

// ---------------------------------------------------------------- update

struct Updates {
    refreshed_big: Timing,
    refreshed_small: Timing,
    /// Parts of a Refreshed: `Rows::replace_all` on the rows as the
    /// journal lists them, and dropping the previous 100k rows.
    sort_big: Timing,
    drop_big: Timing,
    tick_big: Timing,
    tick_small: Timing,
    first_tick_big: Timing,
    first_tick_effects: usize,
    /// Rows whose place in the queue the ticks changed (the sort's key does
    /// not depend on the time: within one precedence, time left orders as
    /// arrival does).
    tick_moved_rows: usize,
    overdue_big: usize,
    unacked_big: usize,
}

fn update_bench(scale: &Scale) -> Updates {
    let now = Timestamp::now();
    let (refreshed_small, ..) = time_refreshes(SMALL, now, scale.refreshes * 10);
    let (refreshed_big, mut app) = time_refreshes(BIG, now, scale.refreshes);
    let (sort_big, drop_big) = time_refresh_parts(now, scale.refreshes);
    let unacked_big = app.unacknowledged().count();
    let overdue_big = app.inbound.iter().filter(|r| app.overdue(r)).count();
    let order: Vec<MessageId> = app.inbound.iter().map(|r| r.id).collect();

    // The first tick after the queue loads (overdue alarms are the
    // station's: the console only reads its board).
    let mut at = now + SignedDuration::from_millis(500);
    let mut first = Series::default();
    let effects = first.time(true, || update(&mut app, Msg::Tick(at)));
    let first_tick_big = first.summary();
    let first_tick_effects = effects.len();
    drop(effects);

    let tick_big = time_ticks(&mut app, &mut at, scale.ticks);
    // And a day later, for good measure.
    at += SignedDuration::from_hours(24);
    update(&mut app, Msg::Tick(at));
    let tick_moved_rows = order
        .iter()
        .zip(app.inbound.iter())
        .filter(|(id, r)| **id != r.id)
        .count();
    let mut small = loaded(SMALL, now);
    let mut at_small = now;
    time_ticks(&mut small, &mut at_small, 1);
    let tick_small = time_ticks(&mut small, &mut at_small, scale.ticks * 10);
    Updates {
        refreshed_big,
        refreshed_small,
        sort_big,
        drop_big,
        tick_big,
        tick_small,
        first_tick_big,
        first_tick_effects,
        tick_moved_rows,
        overdue_big,
        unacked_big,
    }
}

/// Times `update(Msg::Refreshed)` with `n` inbound rows, `times` times; the
/// rows are cloned outside the timing. Returns the app as the last left it.
fn time_refreshes(n: usize, now: Timestamp, times: usize) -> (Timing, App) {
    let inbound = inbound_rows(n, now);
    let outbound = outbound_rows(n.min(OUTBOUND), now);
    let mut app = logged_in(now);
    let mut series = Series::with_capacity(times);
    for _ in 0..times {
        let msg = refreshed(inbound.clone(), outbound.clone());
        let effects = series.time(true, || update(&mut app, msg));
        drop(effects);
    }
    (series.summary(), app)
}

/// Times the two biggest parts of a Refreshed with `BIG` rows: sorting
/// and indexing them into the queue, and dropping the old ones.
fn time_refresh_parts(now: Timestamp, times: usize) -> (Timing, Timing) {
    let rows = inbound_rows(BIG, now);
    let (mut sort, mut drop_rows) = (Series::default(), Series::default());
    for _ in 0..times {
        let mut queue = Rows::new(Order::Queue);
        let fresh = rows.clone();
        sort.time(true, || queue.replace_all(fresh));
        drop_rows.time(true, || drop(queue));
    }
    (sort.summary(), drop_rows.summary())
}

/// Times `times` ticks, 500 ms of console time apart.
fn time_ticks(app: &mut App, at: &mut Timestamp, times: usize) -> Timing {
    let mut series = Series::with_capacity(times);
    for _ in 0..times {
        *at += SignedDuration::from_millis(500);
        let msg = Msg::Tick(*at);
        let effects = series.time(true, || update(app, msg));
        drop(effects);
    }
    series.summary()
}

// ---------------------------------------------------------------- idle CPU

/// The `hotline` binary cargo built for this bench.
fn console_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hotline"));
    assert!(
        bin.is_file(),
        "console bench: the hotline binary is missing at {}; run `cargo build --release` \
         (or `cargo bench --bench console`, which builds it)",
        bin.display()
    );
    bin
}

fn tmux_version() -> String {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!(
            "console bench: `tmux` is needed for the idle-CPU part and was not found on PATH; \
             install it (e.g. `apt-get install tmux`)"
        ),
    }
}

/// CPU time a process has used (all its threads, live and exited).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime); `rest` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks()))
}

/// Clock ticks per second of /proc/PID/stat's times.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// On-CPU time of each live thread in nanoseconds (schedstat), for a finer
/// reading than stat's clock ticks; threads that exit are not counted.
fn thread_times(pid: u32) -> HashMap<u32, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let tid = t.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, text.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

fn threads(pid: u32) -> Option<usize> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 20 of stat(5).
    rest.split_whitespace().nth(17)?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A private tmux server, killed when dropped, whatever happened.
struct Tmux {
    socket: String,
    /// Processes started in its panes, killed by id if they outlive it.
    pids: Vec<u32>,
    /// The server's socket, which kill-server leaves behind.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("hotline-bench-console-{}", std::process::id()),
            pids: Vec::new(),
            socket_path: None,
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("tmux {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Starts `command` in a new detached 100x30 session and returns the
    /// pane's process id.
    fn session(&mut self, name: &str, command: &str) -> Result<u32, String> {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            command,
        ])?;
        let pid = self
            .run(&["list-panes", "-t", name, "-F", "#{pane_pid}"])?
            .trim()
            .parse::<u32>()
            .map_err(|e| format!("pane pid of {name}: {e}"))?;
        self.pids.push(pid);
        if self.socket_path.is_none() {
            let path = self.run(&["display-message", "-p", "#{socket_path}"])?;
            self.socket_path = Some(PathBuf::from(path.trim()));
        }
        Ok(pid)
    }

    fn server_pid(&self) -> Result<u32, String> {
        self.run(&["display-message", "-p", "#{pid}"])?
            .trim()
            .parse()
            .map_err(|e| format!("tmux server pid: {e}"))
    }

    fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
            .unwrap_or_default()
    }

    /// Waits until the pane shows `text`.
    fn wait_for(&self, target: &str, text: &str, limit: Duration, err: &Path) -> Duration {
        self.wait_until(target, text, true, limit, err, Duration::from_millis(50))
    }

    /// Waits until the pane shows `text` (or, with `shown` false, no longer
    /// shows it), looking every `every`.
    fn wait_until(
        &self,
        target: &str,
        text: &str,
        shown: bool,
        limit: Duration,
        err: &Path,
        every: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.screen(target).contains(text) == shown {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                panic!(
                    "console bench: the console did not show {text:?} within {limit:?}.\n\
                     screen:\n{}\nstderr ({}):\n{}",
                    self.screen(target),
                    err.display(),
                    std::fs::read_to_string(err).unwrap_or_default()
                );
            }
            std::thread::sleep(every);
        }
    }

    fn keys(&self, target: &str, literal: Option<&str>, key: Option<&str>) {
        if let Some(text) = literal {
            self.run(&["send-keys", "-t", target, "-l", text])
                .expect("tmux send-keys");
        }
        if let Some(k) = key {
            self.run(&["send-keys", "-t", target, k])
                .expect("tmux send-keys");
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        for &pid in &self.pids {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                // SAFETY: kill(2) on a process this bench started, by its id.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        if let Some(path) = self
            .socket_path
            .as_ref()
            .filter(|p| p.file_name().is_some_and(|n| *n == *self.socket))
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// CPU use of each process over one window, in % of one core.
struct Window {
    wall: Duration,
    console: f64,
    /// The same from schedstat (live threads only).
    console_ns: f64,
    floor: f64,
    server: f64,
}

fn sample(window: Duration, console: u32, floor: u32, server: u32) -> Window {
    let read =
        |pid: u32| cpu_time(pid).unwrap_or_else(|| panic!("console bench: process {pid} is gone"));
    let (c0, f0, s0) = (read(console), read(floor), read(server));
    let n0 = thread_times(console);
    let t = Instant::now();
    std::thread::sleep(window);
    let (c1, f1, s1) = (read(console), read(floor), read(server));
    let n1 = thread_times(console);
    let wall = t.elapsed();
    let pct = |a: Duration, b: Duration| 100.0 * (b - a).as_secs_f64() / wall.as_secs_f64();
    let ns: u64 = n1
        .iter()
        .map(|(tid, end)| end.saturating_sub(n0.get(tid).copied().unwrap_or(0)))
        .sum();
    Window {
        wall,
        console: pct(c0, c1),
        console_ns: 100.0 * Duration::from_nanos(ns).as_secs_f64() / wall.as_secs_f64(),
        floor: pct(f0, f1),
        server: pct(s0, s1),
    }
}

struct Idle {
    login: Window,
    queue: Window,
    login_after: Duration,
    threads: Option<usize>,
    rss_kib: Option<u64>,
}

fn hotline(bin: &Path, args: &[&str], envs: &[(&str, &Path)]) {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hotline");
    assert!(
        out.status.success(),
        "console bench: `hotline {}` failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh station with one operator, made by the real binary: its temp
/// dir, config path and the operator's passphrase file.
fn bench_station(bin: &Path) -> (tempfile::TempDir, String, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("hotline-bench-console")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().join("station");
    let config = dir.join("operator.toml");
    let dir_s = dir.to_str().expect("utf-8 temp path");
    let config_s = config.to_str().expect("utf-8 temp path").to_string();
    hotline(
        bin,
        &[
            "init",
            "--station",
            "BENCH",
            "--dir",
            dir_s,
            "--no-passphrase",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let pass = tmp.path().join("passphrase");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pass)
            .expect("passphrase file");
        writeln!(f, "{PASSPHRASE}").expect("write passphrase file");
    }
    hotline(
        bin,
        &["--config", &config_s, "operator", "add", OPERATOR],
        &[("HOTLINE_PASSPHRASE_FILE", &pass)],
    );
    (tmp, config_s, pass)
}

fn idle_bench(scale: &Scale, bin: &Path) -> Idle {
    let (tmp, config_s, _pass) = bench_station(bin);
    let err = tmp.path().join("console.stderr");
    let mut tmux = Tmux::new();
    let console = tmux
        .session(
            "console",
            &format!(
                "exec '{}' --config '{config_s}' console 2>'{}'",
                bin.display(),
                err.display()
            ),
        )
        .unwrap_or_else(|e| panic!("console bench: starting the console under tmux: {e}"));
    let floor = tmux
        .session("floor", "exec sleep 3600")
        .unwrap_or_else(|e| panic!("console bench: starting the floor pane: {e}"));
    let server = tmux
        .server_pid()
        .unwrap_or_else(|e| panic!("console bench: {e}"));
    assert_eq!(
        comm(console),
        "hotline",
        "console bench: the console pane runs {:?}, not hotline",
        comm(console)
    );

    tmux.wait_for("console", "LOG IN", Duration::from_secs(20), &err);
    std::thread::sleep(scale.settle);
    eprintln!("console bench: idle at the log-in screen...");
    let login = sample(scale.idle, console, floor, server);

    tmux.keys("console", Some(OPERATOR), Some("Enter"));
    tmux.keys("console", Some(PASSPHRASE), Some("Enter"));
    let login_after = tmux.wait_for("console", "Handover summary", Duration::from_secs(30), &err);
    tmux.keys("console", None, Some("Enter"));
    tmux.wait_for("console", "INBOUND", Duration::from_secs(10), &err);
    std::thread::sleep(scale.settle);
    eprintln!("console bench: idle logged in on the empty queue...");
    let queue = sample(scale.idle, console, floor, server);
    let screen = tmux.screen("console");
    assert!(
        screen.contains("INBOUND") && screen.contains("on duty"),
        "console bench: the console left the queue while idle:\n{screen}"
    );
    let idle = Idle {
        login,
        queue,
        login_after,
        threads: threads(console),
        rss_kib: rss_kib(console),
    };
    drop(tmux);
    idle
}

// ---------------------------------------------------------------- station stops

/// How often the screen is read while timing a stop: the resolution of
/// the figures.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Times from a station stopping (SIGTERM) or freezing (SIGSTOP: socket
/// open, no heartbeat) to its attached console showing STATION NOT
/// RUNNING, from the signal to the first screen read that shows it.
struct Stops {
    stopped: Vec<Duration>,
    frozen: Vec<Duration>,
}

/// A `hotline serve` child, killed when dropped.
struct Serve(std::process::Child);

impl Serve {
    fn start(bin: &Path, config: &str, socket: &Path, log: &Path) -> Serve {
        let out = std::fs::File::create(log).expect("serve log");
        let child = Command::new(bin)
            .args(["--config", config, "serve"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("serve log"))
            .stderr(out)
            .spawn()
            .expect("console bench: starting hotline serve");
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "console bench: hotline serve did not listen on {}:\n{}",
                socket.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve(child)
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on this bench's own child, by its id.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, signal);
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stop_bench(scale: &Scale, bin: &Path) -> Stops {
    let (tmp, config_s, _pass) = bench_station(bin);
    let config = hotline::config::Config::load(Path::new(&config_s)).expect("bench config");
    let socket = hotline::station::control::socket_path(&config.station.data_dir);
    let log = tmp.path().join("serve.log");
    let mut serve = Serve::start(bin, &config_s, &socket, &log);
    let err = tmp.path().join("attached.stderr");
    let mut tmux = Tmux::new();
    tmux.session(
        "attached",
        &format!(
            "exec '{}' --config '{config_s}' console 2>'{}'",
            bin.display(),
            err.display()
        ),
    )
    .unwrap_or_else(|e| panic!("console bench: starting the attached console: {e}"));
    let limit = Duration::from_secs(20);
    let log_in = |tmux: &Tmux| {
        tmux.wait_for("attached", "LOG IN", limit, &err);
        tmux.keys("attached", Some(OPERATOR), Some("Enter"));
        tmux.keys("attached", Some(PASSPHRASE), Some("Enter"));
        tmux.wait_for("attached", "Handover summary", limit, &err);
        tmux.keys("attached", None, Some("Enter"));
        tmux.wait_for("attached", "INBOUND", limit, &err);
    };
    log_in(&tmux);
    let lost = "STATION NOT RUNNING";
    let rounds = if scale.quick { 2 } else { 5 };
    let mut stops = Stops {
        stopped: Vec::new(),
        frozen: Vec::new(),
    };
    for _ in 0..rounds {
        tmux.wait_until("attached", lost, false, limit, &err, STOP_POLL);
        serve.signal(libc::SIGSTOP);
        stops
            .frozen
            .push(tmux.wait_until("attached", lost, true, limit, &err, STOP_POLL));
        serve.signal(libc::SIGCONT);
        tmux.wait_until("attached", lost, false, limit, &err, STOP_POLL);

        serve.signal(libc::SIGTERM);
        stops
            .stopped
            .push(tmux.wait_until("attached", lost, true, limit, &err, STOP_POLL));
        let _ = serve.0.wait();
        drop(serve);
        serve = Serve::start(bin, &config_s, &socket, &log);
        log_in(&tmux);
    }
    stops
}

fn p50_max(times: &[Duration]) -> (f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |i: usize| sorted.get(i).map_or(f64::NAN, |d| ms(*d));
    (at(sorted.len() / 2), at(sorted.len().saturating_sub(1)))
}

// ---------------------------------------------------------------- report

struct Report {
    render: Vec<Render>,
    scans: Timing,
    updates: Updates,
    events: Events,
    idle: Idle,
    stops: Stops,
    loadavg: String,
    tmux_version: String,
}

struct TableRow {
    name: String,
    value: f64,
    unit: &'static str,
    baseline: Option<f64>,
}

fn row(name: impl Into<String>, value: f64, unit: &'static str, baseline: Option<f64>) -> TableRow {
    TableRow {
        name: name.into(),
        value,
        unit,
        baseline,
    }
}

impl Report {
    fn render_of(&self, screen: &str, size: (u16, u16), rows: usize) -> &Timing {
        &self
            .render
            .iter()
            .find(|r| r.screen == screen && r.size == size && r.rows == rows)
            .expect("measured")
            .frames
    }

    /// CPU the run loop spends per second holding `rows` rows while idle:
    /// two ticks, each an `update` and a redraw of the queue at 80x24.
    /// On-CPU means, so the figure is the work, not the waiting.
    fn loop_cpu(&self, tick: &Timing, rows: usize) -> f64 {
        let draw = self.render_of("queue", (80, 24), rows);
        100.0 * TICKS_PER_S * (tick.cpu.mean + draw.cpu.mean).as_secs_f64()
    }

    fn rows(&self) -> Vec<TableRow> {
        let mut rows = Vec::new();
        let small = self.events.at.first().map(|(_, e, _)| e.wall.p99);
        for (n, event, full) in &self.events.at {
            rows.push(row(
                format!("arrival applied+drawn {n} rows p50 (vs full re-read)"),
                ms(event.wall.p50),
                "ms",
                Some(ms(full.wall.p50)),
            ));
            rows.push(row(
                format!("arrival applied+drawn {n} rows p99 (vs {MID} rows)"),
                ms(event.wall.p99),
                "ms",
                small.map(ms),
            ));
        }
        for screen in ["queue", "sent"] {
            for size in SIZES {
                let base = self.render_of(screen, size, SMALL);
                let mid = self.render_of(screen, size, MID);
                let big = self.render_of(screen, size, BIG);
                let label = format!("draw {screen} {}x{}", size.0, size.1);
                rows.push(row(
                    format!("{label} 100k rows p50"),
                    us(big.wall.p50),
                    "µs",
                    Some(us(base.wall.p50)),
                ));
                rows.push(row(
                    format!("{label} 100k rows p99"),
                    us(big.wall.p99),
                    "µs",
                    Some(us(base.wall.p99)),
                ));
                rows.push(row(
                    format!("{label} 100k rows mean"),
                    us(big.wall.mean),
                    "µs",
                    Some(us(base.wall.mean)),
                ));
                rows.push(row(
                    format!("{label} 100k rows on-CPU mean"),
                    us(big.cpu.mean),
                    "µs",
                    Some(us(base.cpu.mean)),
                ));
                rows.push(row(
                    format!("{label} 1k rows p50"),
                    us(mid.wall.p50),
                    "µs",
                    Some(us(base.wall.p50)),
                ));
            }
        }
        rows.push(row(
            "whole-queue questions in every frame, 100k, p50",
            us(self.scans.wall.p50),
            "µs",
            None,
        ));
        let u = &self.updates;
        rows.extend([
            row(
                "update Refreshed 100k rows p50",
                ms(u.refreshed_big.wall.p50),
                "ms",
                Some(ms(u.refreshed_small.wall.p50)),
            ),
            row(
                "update Refreshed 100k rows max",
                ms(u.refreshed_big.wall.max),
                "ms",
                Some(ms(u.refreshed_small.wall.max)),
            ),
            row(
                "update Refreshed 100k rows on-CPU mean",
                ms(u.refreshed_big.cpu.mean),
                "ms",
                Some(ms(u.refreshed_small.cpu.mean)),
            ),
            row(
                "  of which sorting and indexing 100k rows, on-CPU mean",
                ms(u.sort_big.cpu.mean),
                "ms",
                None,
            ),
            row(
                "  of which dropping the old 100k rows, on-CPU mean",
                ms(u.drop_big.cpu.mean),
                "ms",
                None,
            ),
            row(
                "update Tick 100k rows p50",
                ms(u.tick_big.wall.p50),
                "ms",
                Some(ms(u.tick_small.wall.p50)),
            ),
            row(
                "update Tick 100k rows p99",
                ms(u.tick_big.wall.p99),
                "ms",
                Some(ms(u.tick_small.wall.p99)),
            ),
            row(
                "update Tick 100k rows mean",
                ms(u.tick_big.wall.mean),
                "ms",
                Some(ms(u.tick_small.wall.mean)),
            ),
            row(
                "update Tick 100k rows on-CPU mean",
                ms(u.tick_big.cpu.mean),
                "ms",
                Some(ms(u.tick_small.cpu.mean)),
            ),
            row(
                format!("update first Tick 100k ({} effects)", u.first_tick_effects),
                ms(u.first_tick_big.wall.p50),
                "ms",
                Some(ms(u.tick_big.wall.p50)),
            ),
            row(
                "rows reordered by 60+ ticks and a day, 100k",
                u.tick_moved_rows as f64,
                "rows",
                None,
            ),
            row(
                "idle loop at 100k (2 x (Tick + draw) /s)",
                self.loop_cpu(&u.tick_big, BIG),
                "% core",
                Some(self.loop_cpu(&u.tick_small, SMALL)),
            ),
        ]);
        let i = &self.idle;
        rows.extend([
            row(
                "idle CPU, console at log-in screen",
                i.login.console,
                "% core",
                Some(i.login.floor),
            ),
            row(
                "idle CPU, console logged in, empty queue",
                i.queue.console,
                "% core",
                Some(i.queue.floor),
            ),
            row(
                "  same from schedstat (ns), log-in",
                i.login.console_ns,
                "% core",
                None,
            ),
            row(
                "  same from schedstat (ns), logged in",
                i.queue.console_ns,
                "% core",
                None,
            ),
            row(
                "  tmux server, console at log-in",
                i.login.server,
                "% core",
                None,
            ),
            row(
                "  tmux server, console logged in",
                i.queue.server,
                "% core",
                None,
            ),
            row(
                "console RSS, logged in",
                i.rss_kib.unwrap_or(0) as f64 / 1024.0,
                "MiB",
                None,
            ),
        ]);
        let (stopped_p50, stopped_max) = p50_max(&self.stops.stopped);
        let (frozen_p50, frozen_max) = p50_max(&self.stops.frozen);
        let silent = Some(ms(hotline::attach::STATION_SILENT));
        rows.extend([
            row(
                "station stopped -> NOT RUNNING shown, p50",
                stopped_p50,
                "ms",
                None,
            ),
            row(
                "station stopped -> NOT RUNNING shown, max",
                stopped_max,
                "ms",
                None,
            ),
            row(
                "station frozen -> NOT RUNNING shown, p50 (vs silence allowed)",
                frozen_p50,
                "ms",
                silent,
            ),
            row(
                "station frozen -> NOT RUNNING shown, max (vs silence allowed)",
                frozen_max,
                "ms",
                silent,
            ),
        ]);
        rows
    }

    fn json(&self, scale: &Scale, elapsed: Duration) -> Value {
        let u = &self.updates;
        let i = &self.idle;
        let ratio = |a: f64, b: f64| if b > 0.0 { round(a / b, 2) } else { f64::NAN };
        let events: Vec<Value> = self
            .events
            .at
            .iter()
            .map(|(n, event, full)| {
                json!({
                    "rows": n,
                    "arrival_apply_draw": timing_json(event),
                    "full_reread_draw": timing_json(full),
                })
            })
            .collect();
        let render: Vec<Value> = self
            .render
            .iter()
            .map(|r| {
                json!({
                    "screen": r.screen,
                    "size": format!("{}x{}", r.size.0, r.size.1),
                    "rows": r.rows,
                    "frame": timing_json(&r.frames),
                })
            })
            .collect();
        let mut ratios = serde_json::Map::new();
        for r in &self.render {
            if r.rows == SMALL {
                continue;
            }
            let base = self.render_of(r.screen, r.size, SMALL);
            let name = format!(
                "draw_{}_{}x{}_{}_over_{SMALL}",
                r.screen, r.size.0, r.size.1, r.rows
            );
            ratios.insert(
                format!("{name}_p50"),
                json!(ratio(us(r.frames.wall.p50), us(base.wall.p50))),
            );
            ratios.insert(
                format!("{name}_cpu_mean"),
                json!(ratio(us(r.frames.cpu.mean), us(base.cpu.mean))),
            );
        }
        ratios.insert(
            "refreshed_100k_over_10_p50".into(),
            json!(ratio(
                us(u.refreshed_big.wall.p50),
                us(u.refreshed_small.wall.p50)
            )),
        );
        ratios.insert(
            "tick_100k_over_10_p50".into(),
            json!(ratio(us(u.tick_big.wall.p50), us(u.tick_small.wall.p50))),
        );
        let window = |w: &Window| {
            json!({
                "wall_s": round(w.wall.as_secs_f64(), 2),
                "console_pct": round(w.console, 3),
                "console_schedstat_pct": round(w.console_ns, 4),
                "stat_resolution_pct": round(100.0 / clock_ticks() as f64 / w.wall.as_secs_f64(), 3),
                "floor_sleep_pct": round(w.floor, 3),
                "tmux_server_pct": round(w.server, 3),
            })
        };
        json!({
            "bench": "console",
            "quick": scale.quick,
            "elapsed_s": round(elapsed.as_secs_f64(), 1),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavg_at_start": self.loadavg,
            "frames_per_config": scale.frames,
            "inbound_rows": BIG,
            "outbound_rows": OUTBOUND,
            "render": render,
            "events": events,
            "whole_queue_scans_per_frame_100k": timing_json(&self.scans),
            "update": {
                "refreshed_100k": timing_json(&u.refreshed_big),
                "refreshed_10": timing_json(&u.refreshed_small),
                "refreshed_100k_sort_inbound": timing_json(&u.sort_big),
                "refreshed_100k_drop_old_rows": timing_json(&u.drop_big),
                "tick_100k": timing_json(&u.tick_big),
                "tick_10": timing_json(&u.tick_small),
                "first_tick_100k": timing_json(&u.first_tick_big),
                "first_tick_effects": u.first_tick_effects,
                "rows_moved_by_ticks": u.tick_moved_rows,
                "unacknowledged_100k": u.unacked_big,
                "overdue_100k": u.overdue_big,
                "idle_loop_100k_pct": round(self.loop_cpu(&u.tick_big, BIG), 2),
                "idle_loop_10_pct": round(self.loop_cpu(&u.tick_small, SMALL), 3),
            },
            "idle": {
                "tmux": self.tmux_version,
                "window_s": scale.idle.as_secs(),
                "login_screen": window(&i.login),
                "logged_in_empty_queue": window(&i.queue),
                "login_check_ms": round(ms(i.login_after), 1),
                "console_threads": i.threads,
                "console_rss_kib": i.rss_kib,
            },
            "station_lost": {
                "poll_ms": ms(STOP_POLL),
                "stopped_ms": self.stops.stopped.iter().map(|d| round(ms(*d), 1)).collect::<Vec<_>>(),
                "frozen_ms": self.stops.frozen.iter().map(|d| round(ms(*d), 1)).collect::<Vec<_>>(),
                "silence_allowed_ms": ms(hotline::attach::STATION_SILENT),
            },
            "ratios": ratios,
        })
    }

    fn print(&self, scale: &Scale, elapsed: Duration) {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        println!();
        let load: f64 = self
            .loadavg
            .split_whitespace()
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0.0);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if load > 0.5 * cores as f64 {
            println!(
                "NOTE: load average {load:.2} on {cores} cores when the run began: other work \
                 competed, so wall-time p99 and means include waiting; on-CPU rows do not"
            );
        }
        println!(
            "hotline console benchmark{} (ratio = value / baseline; baseline: the same with {SMALL} rows, \
             or for idle CPU a `sleep` in the same tmux server over the same window)",
            if scale.quick { " [QUICK]" } else { "" }
        );
        println!(
            "{:<width$}  {:>12}  {:<6}  {:>12}  {:>9}",
            "name", "value", "unit", "baseline", "ratio"
        );
        println!("{}", "-".repeat(width + 49));
        for r in &rows {
            let baseline = r.baseline.map(|b| format!("{b:.3}")).unwrap_or_default();
            // A ratio over a floor of nothing means nothing: leave it out.
            let ratio = r
                .baseline
                .filter(|b| *b > 0.0)
                .map(|b| format!("{:.2}x", r.value / b))
                .unwrap_or_else(|| {
                    if r.baseline.is_some() {
                        "-".into()
                    } else {
                        String::new()
                    }
                });
            println!(
                "{:<width$}  {:>12.3}  {:<6}  {:>12}  {:>9}",
                r.name, r.value, r.unit, baseline, ratio
            );
        }
        println!();
        println!("{}", self.json(scale, elapsed));
    }
}
