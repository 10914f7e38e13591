//! A pinned peer's misbehaviour, audited at a bounded rate.
//!
//! Each rejected document or unexpected frame from a peer is worth an
//! audit entry, but a peer sending them without pause must not grow the
//! journal (an entry and a signed checkpoint each) without bound. Per peer,
//! the first [`BURST`] of each [`WINDOW`] are written as they come; the
//! rest are counted, by action, and written as one summary when the window
//! ends.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use jiff::Timestamp;

/// How long one count runs.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How many entries a peer's misbehaviour writes per window before the
/// rest are only counted.
pub const BURST: u32 = 20;

struct Window {
    start: Instant,
    since: Timestamp,
    written: u32,
    counted: BTreeMap<String, u64>,
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            start: now,
            since: Timestamp::now(),
            written: 0,
            counted: BTreeMap::new(),
        }
    }

    /// The summary of what was only counted, if anything was.
    fn summary(&self, peer: &str) -> Option<String> {
        let total: u64 = self.counted.values().sum();
        (total > 0).then(|| {
            let actions = self
                .counted
                .iter()
                .map(|(action, n)| format!("{action}:{n}"))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                "peer={peer} not-written={total} since={} actions={actions}",
                self.since
            )
        })
    }
}

/// Every peer's count.
#[derive(Default)]
pub struct Noisy {
    windows: HashMap<String, Window>,
}

impl Noisy {
    /// Counts one entry of `action` by `peer`: whether to write it, and the
    /// summary of a window that ended, to write first.
    pub fn note(&mut self, peer: &str, action: &str, now: Instant) -> (bool, Option<String>) {
        let window = self
            .windows
            .entry(peer.to_string())
            .or_insert_with(|| Window::new(now));
        let mut ended = None;
        if now.saturating_duration_since(window.start) >= WINDOW {
            ended = window.summary(peer);
            *window = Window::new(now);
        }
        if window.written < BURST {
            window.written += 1;
            return (true, ended);
        }
        *window.counted.entry(action.to_string()).or_default() += 1;
        (false, ended)
    }

    /// The summaries of windows that have ended (or all, at a stop), each
    /// written once; quiet peers are forgotten.
    pub fn due(&mut self, now: Instant, stopping: bool) -> Vec<String> {
        let mut due = Vec::new();
        self.windows.retain(|peer, window| {
            if !stopping && now.saturating_duration_since(window.start) < WINDOW {
                return true;
            }
            due.extend(window.summary(peer));
            false
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_written_and_the_rest_summed_up_once() {
        let t = Instant::now();
        let mut noisy = Noisy::default();
        let written = (0..10_000)
            .filter(|i| {
                let action = if i % 2 == 0 { "refuse" } else { "malformed" };
                noisy.note("MOSCOW", action, t).0
            })
            .count();
        assert_eq!(written, BURST as usize);
        assert!(noisy.note("LONDON", "refuse", t).0, "each peer has its own");
        assert!(noisy.due(t, false).is_empty(), "the window is still open");
        let due = noisy.due(t + WINDOW, false);
        assert_eq!(due.len(), 1, "{due:?}");
        assert!(
            due[0].starts_with("peer=MOSCOW not-written=9980 ")
                && due[0].ends_with("actions=malformed:4990,refuse:4990"),
            "{}",
            due[0]
        );
        assert!(noisy.due(t + WINDOW * 2, false).is_empty(), "written once");
        assert!(
            noisy.note("MOSCOW", "refuse", t + WINDOW * 2).0,
            "a new window"
        );
    }

    #[test]
    fn a_window_ended_by_the_next_entry_hands_its_summary_over() {
        let t = Instant::now();
        let mut noisy = Noisy::default();
        for _ in 0..=BURST {
            noisy.note("MOSCOW", "refuse", t);
        }
        let (write, ended) = noisy.note("MOSCOW", "refuse", t + WINDOW);
        assert!(write);
        assert!(
            ended.is_some_and(|s| s.contains("not-written=1 ")),
            "the one over the burst"
        );
        assert!(
            noisy.due(t + WINDOW, true).is_empty(),
            "nothing counted since"
        );
    }
}
