//! The table and the JSON line.

use super::*;

pub(crate) struct Report {
    pub(crate) bursts: Vec<Burst>,
    pub(crate) render: Vec<Render>,
    pub(crate) scans: Timing,
    pub(crate) updates: Updates,
    pub(crate) events: Events,
    pub(crate) idle: Idle,
    pub(crate) stops: Stops,
    pub(crate) loadavg: String,
    pub(crate) tmux_version: String,
}

pub(crate) struct TableRow {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    pub(crate) baseline: Option<f64>,
}

pub(crate) fn row(
    name: impl Into<String>,
    value: f64,
    unit: &'static str,
    baseline: Option<f64>,
) -> TableRow {
    TableRow {
        name: name.into(),
        value,
        unit,
        baseline,
    }
}

impl Report {
    pub(crate) fn render_of(&self, screen: &str, size: (u16, u16), rows: usize) -> &Timing {
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
    pub(crate) fn loop_cpu(&self, tick: &Timing, rows: usize) -> f64 {
        let draw = self.render_of("queue", (80, 24), rows);
        100.0 * TICKS_PER_S * (tick.cpu.mean + draw.cpu.mean).as_secs_f64()
    }

    pub(crate) fn rows(&self) -> Vec<TableRow> {
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
        for b in &self.bursts {
            rows.extend(burst_rows(b));
        }
        rows
    }

    pub(crate) fn json(&self, scale: &Scale, elapsed: Duration) -> Value {
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
            "bursts": self.bursts.iter().map(burst_json).collect::<Vec<_>>(),
            "ratios": ratios,
        })
    }

    pub(crate) fn print(&self, scale: &Scale, elapsed: Duration) {
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

fn burst_rows(b: &Burst) -> Vec<TableRow> {
    let (idle, keys) = (Summary::of(&b.idle_keys), Summary::of(&b.keys));
    let name = |what: &str| format!("burst {} {}: {what}", b.messages, b.mode.name());
    vec![
        row(
            name("key-to-frame p50 (vs idle)"),
            ms(keys.p50),
            "ms",
            Some(ms(idle.p50)),
        ),
        row(
            name("key-to-frame p99 (vs idle)"),
            ms(keys.p99),
            "ms",
            Some(ms(idle.p99)),
        ),
        row(name("key-to-frame max"), ms(keys.max), "ms", None),
        row(name("key rounds timed"), keys.n as f64, "keys", None),
        row(
            name("drain, as the console counts it"),
            ms(b.drain),
            "ms",
            None,
        ),
        row(name("full resyncs served"), b.resyncs as f64, "", None),
        row(
            name("console's count right at the end"),
            f64::from(u8::from(b.console_count)),
            "yes=1",
            None,
        ),
        row(
            name("station's unacknowledged at the end"),
            b.station_unacknowledged as f64,
            "msgs",
            Some(b.messages as f64),
        ),
        row(
            name("idle CPU with the backlog queued"),
            b.queued_idle.console,
            "% core",
            Some(b.queued_idle.floor),
        ),
    ]
}

fn burst_json(b: &Burst) -> Value {
    let (idle, keys) = (Summary::of(&b.idle_keys), Summary::of(&b.keys));
    json!({
        "mode": b.mode.name(),
        "messages": b.messages,
        "key_poll_ms": ms(KEY_POLL),
        "key_to_frame": summary_json(&keys),
        "key_to_frame_idle": summary_json(&idle),
        "key_p99_over_idle": round(ms(keys.p99) / ms(idle.p99), 2),
        "drain_ms": round(ms(b.drain), 1),
        "full_resyncs": b.resyncs,
        "console_count_right": b.console_count,
        "station_unacknowledged": b.station_unacknowledged,
        "queued_idle_console_pct": round(b.queued_idle.console, 3),
        "queued_idle_console_schedstat_pct": round(b.queued_idle.console_ns, 4),
        "queued_idle_floor_pct": round(b.queued_idle.floor, 3),
    })
}
