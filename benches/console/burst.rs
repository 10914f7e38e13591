//! A console under a flood: a backlog of ROUTINE messages reaches
//! WASHINGTON in one burst while its duty console is on screen, logged in.
//! Run twice: with the station inside the console (`hotline console`
//! alone) and with the console attached to `hotline serve`. MOSCOW runs in
//! this process; it queues the backlog while WASHINGTON is down, stops,
//! and starts again once the console is up, so the whole backlog drains
//! at once.
//!
//! While the burst drains, `?` is pressed again and again: key-to-frame is
//! the time from `tmux send-keys` to the first pane capture that shows the
//! help overlay open (or closed again), read every `KEY_POLL`. The same is
//! measured on the idle console before the burst, as the baseline: it
//! holds tmux's own cost of sending a key and reading the pane. Full
//! resyncs are the snapshots the station served during the burst
//! (`hotline status --json`, `snapshots_served`). The queue count is read
//! off the console's INBOUND title and the station's status at the end,
//! and the console's idle CPU is sampled with the backlog queued.

use super::*;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How often the pane is read while a key is timed: the resolution of the
/// key-to-frame figures, and the load the reading itself puts on the
/// machine (each read is a tmux client process).
pub(crate) const KEY_POLL: Duration = Duration::from_millis(5);
/// Key rounds on the idle console before the burst.
const IDLE_ROUNDS: usize = 20;
/// Releases in flight while MOSCOW queues the backlog.
const QUEUE_CONCURRENCY: usize = 64;
/// What the help overlay shows, and only it.
const HELP_SHOWN: &str = "Keys can be rebound";
/// The operator of the test sites (`tests/support`).
const SITE_OPERATOR: &str = "op";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// `hotline console` alone: the station runs inside it.
    InProcess,
    /// `hotline console` attached to `hotline serve`.
    Attached,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::InProcess => "in-process",
            Mode::Attached => "attached",
        }
    }
}

pub(crate) struct Burst {
    pub(crate) mode: Mode,
    pub(crate) messages: usize,
    /// Key-to-frame on the idle console (open and close, each a sample).
    pub(crate) idle_keys: Vec<Duration>,
    /// Key-to-frame while the burst drains.
    pub(crate) keys: Vec<Duration>,
    /// MOSCOW started → the console's title counts every message.
    pub(crate) drain: Duration,
    /// Snapshots the station served from MOSCOW's start to the end.
    pub(crate) resyncs: u64,
    /// The console's own count at the end, and the station's.
    pub(crate) console_count: bool,
    pub(crate) station_unacknowledged: u64,
    /// CPU of the console process with the backlog queued.
    pub(crate) queued_idle: Window,
}

pub(crate) fn burst_bench(scale: &Scale, bin: &Path, mode: Mode) -> Burst {
    let messages = scale.burst;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tmp = tempfile::Builder::new()
        .prefix("hotline-bench-burst")
        .tempdir()
        .expect("temp dir");
    let (w, m) = support::pair(tmp.path(), support::FAST_LINK);
    runtime.block_on(queue_backlog(&m, messages));

    let config_s = w.config_path.to_str().expect("utf-8 temp path").to_string();
    let socket = w.config().control.socket;
    let _serve = (mode == Mode::Attached)
        .then(|| Serve::start(bin, &config_s, &socket, &tmp.path().join("serve.log")));
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
    let limit = Duration::from_secs(60);
    tmux.wait_for("console", "LOG IN", limit, &err);
    tmux.keys("console", Some(SITE_OPERATOR), Some("Enter"));
    tmux.keys("console", Some(support::PASSPHRASE), Some("Enter"));
    tmux.wait_for("console", "Handover summary", limit, &err);
    tmux.keys("console", None, Some("Enter"));
    tmux.wait_for("console", " 0 messages", limit, &err);

    let mut idle_keys = Vec::with_capacity(2 * IDLE_ROUNDS);
    for _ in 0..IDLE_ROUNDS {
        idle_keys.extend(key_round(&tmux, &err));
    }

    let before = station_status(bin, &config_s);
    let all = format!(" {messages} messages, ");
    let start = Instant::now();
    let moscow = runtime.block_on(m.restart());
    let mut keys = Vec::new();
    let drain = loop {
        keys.extend(key_round(&tmux, &err));
        if tmux.screen("console").contains(&all) {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "console bench: the burst did not drain within 600 s:\n{}",
            tmux.screen("console")
        );
    };
    let after = station_status(bin, &config_s);
    let resyncs = snapshots(&after) - snapshots(&before);
    let screen = tmux.screen("console");
    let console_count =
        screen.contains(&format!(" {messages} messages, {messages} unacknowledged"));
    let station_unacknowledged = after["unacknowledged"]
        .as_object()
        .map_or(0, |u| u.values().filter_map(Value::as_u64).sum());

    std::thread::sleep(scale.settle);
    eprintln!(
        "console bench: idle CPU with the backlog of {messages} queued ({}) ...",
        mode.name()
    );
    let queued_idle = sample(scale.idle, console, floor, server);
    assert!(
        tmux.screen("console").contains(&all),
        "console bench: the console lost its count while idle:\n{}",
        tmux.screen("console")
    );
    runtime.block_on(moscow.shutdown());
    drop(tmux);
    Burst {
        mode,
        messages,
        idle_keys,
        keys,
        drain,
        resyncs,
        console_count,
        station_unacknowledged,
        queued_idle,
    }
}

/// MOSCOW releases `messages` ROUTINE messages to WASHINGTON, which is not
/// running, and stops with them in its outbox.
async fn queue_backlog(m: &support::Site, messages: usize) {
    let station = m.start().await;
    let session = Arc::new(common::login(&station, SITE_OPERATOR, support::PASSPHRASE).await);
    let permits = Arc::new(Semaphore::new(QUEUE_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for n in 0..messages {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (station, session) = (station.clone(), session.clone());
        tasks.spawn(async move {
            let mut draft = support::general(&format!("burst {n}"));
            draft.precedence = Some(Precedence::Routine);
            common::release(&station, &session, "WASHINGTON", draft, Vec::new()).await;
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("release task");
    }
    station.shutdown().await;
}

/// Opens the help overlay and closes it again: the time from each key
/// sent to the pane showing its effect.
fn key_round(tmux: &Tmux, err: &Path) -> [Duration; 2] {
    let limit = Duration::from_secs(30);
    let mut round = [Duration::ZERO; 2];
    for (shown, took) in [true, false].into_iter().zip(round.iter_mut()) {
        let sent = Instant::now();
        tmux.keys("console", Some("?"), None);
        tmux.wait_until("console", HELP_SHOWN, shown, limit, err, KEY_POLL);
        *took = sent.elapsed();
    }
    round
}

/// `hotline status --json` of the station at `config`.
fn station_status(bin: &Path, config: &str) -> Value {
    let out = Command::new(bin)
        .args(["--config", config, "status", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run hotline status");
    assert!(
        out.status.success(),
        "console bench: `hotline status --json` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn snapshots(status: &Value) -> u64 {
    status["snapshots_served"]
        .as_u64()
        .expect("status carries snapshots_served")
}
