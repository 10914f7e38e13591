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
//!   RUNNING, read off the tmux pane every 10 ms;
//! - a burst of 10,000 messages (1,000 in a quick run) reaching a
//!   logged-in console, in-process and attached (`burst.rs`): key-to-frame
//!   during the burst against the idle console, full resyncs, the queue
//!   count at the end, and idle CPU with the backlog queued.
//!
//! Times are wall clock (what the operator waits) and on-CPU time of the
//! measuring thread (the work, which other load on the machine does not
//! inflate); the load average at the start is printed with the results.

mod burst;
#[path = "../common/mod.rs"]
mod common;
mod live;
mod model;
mod procs;
mod report;
#[path = "../../tests/support/mod.rs"]
mod support;

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

use burst::*;
use live::*;
use model::*;
use procs::*;
use report::*;

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
    /// Messages in the burst.
    burst: usize,
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
            burst: if quick { 1_000 } else { 10_000 },
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
    let bursts = [Mode::InProcess, Mode::Attached]
        .map(|mode| {
            eprintln!(
                "console bench: a burst of {} messages, console {}...",
                scale.burst,
                mode.name()
            );
            burst_bench(&scale, &bin, mode)
        })
        .into();
    let report = Report {
        bursts,
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
