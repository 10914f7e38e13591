//! Connections refused before the caller proved a pinned key: a failed TLS
//! handshake, a key pinned for no peer, a handshake that timed out.
//!
//! Anyone who reaches the UDP port can cause these, so each must cost a
//! bounded amount. They are counted per window (a minute by default): the
//! first refusal of a quiet spell is audited, logged and alarmed at once,
//! so a lone impostor is seen without delay; the rest of the window is
//! summed up in one audit entry at its end, holding the total and the ten
//! busiest sources. A flood therefore writes one entry per window, however
//! many sources it comes from. A handshake that merely timed out alarms
//! only when many do.
//!
//! Refusals of a pinned peer (a bad hello, a frame before the hello) are
//! not counted here: the peer is known, and each is audited on its own.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use jiff::Timestamp;

/// The window the link's refusals are summed up over, unless the station's
/// options say otherwise.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most sources counted one by one in a window; refusals from further
/// sources count in the total only, so a spoofed flood costs no more
/// memory than this.
pub const MAX_SOURCES: usize = 4096;
/// How many of the busiest sources a summary names.
pub const BUSIEST: usize = 10;
/// Timed-out handshakes in one window that raise the alarm on their own.
pub const SUSTAINED_TIMEOUTS: u64 = 30;

/// The counts of the window open now.
struct Window {
    opened: Instant,
    opened_at: Timestamp,
    total: u64,
    timeouts: u64,
    sources: HashMap<IpAddr, u64>,
    /// Refusals from sources past [`MAX_SOURCES`].
    unlisted: u64,
    /// Whether the window's first refusal is to be reported on its own
    /// (not in a window that follows a busy one).
    announce: bool,
}

/// The counter.
pub struct Strangers {
    window: Duration,
    open: Option<Window>,
    /// Every refusal counted since the start.
    refused: u64,
}

/// One window summed up, for the audit log, the log file and the alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub since: Timestamp,
    pub total: u64,
    pub timeouts: u64,
    /// Distinct sources counted, and whether there were more.
    pub sources: usize,
    pub more_sources: bool,
    /// The busiest sources, busiest first.
    pub busiest: Vec<(IpAddr, u64)>,
}

impl Summary {
    /// Whether it calls for the alarm: a refusal that did more than time
    /// out, or a sustained rate of time-outs.
    pub fn alarming(&self) -> bool {
        self.total > self.timeouts || self.timeouts >= SUSTAINED_TIMEOUTS
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plus = if self.more_sources { "+" } else { "" };
        write!(
            f,
            "total={} timed_out={} sources={}{plus} since={} busiest=",
            self.total, self.timeouts, self.sources, self.since
        )?;
        for (i, (ip, n)) in self.busiest.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{ip}x{n}")?;
        }
        Ok(())
    }
}

impl Strangers {
    /// A counter summing up over `window`; a zero window reports every
    /// refusal on its own (the test suite's control, nothing else).
    pub fn new(window: Duration) -> Strangers {
        Strangers {
            window,
            open: None,
            refused: 0,
        }
    }

    /// How many refusals were counted since the start.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Counts one refusal from `source`. Returns whether it is the first of
    /// a quiet spell, to be reported on its own now.
    pub fn note(&mut self, now: Instant, source: IpAddr, timed_out: bool) -> bool {
        self.refused += 1;
        if self.window.is_zero() {
            return true;
        }
        let window = self.open.get_or_insert_with(|| Window {
            opened: now,
            opened_at: Timestamp::now(),
            total: 0,
            timeouts: 0,
            sources: HashMap::new(),
            unlisted: 0,
            announce: true,
        });
        window.total += 1;
        window.timeouts += u64::from(timed_out);
        let sources = window.sources.len();
        match window.sources.get_mut(&source) {
            Some(n) => *n += 1,
            None if sources < MAX_SOURCES => {
                window.sources.insert(source, 1);
            }
            None => window.unlisted += 1,
        }
        window.total == 1 && window.announce
    }

    /// Closes the window if it has run its time. Returns its summary when
    /// it held more than the refusal already reported on its own. A window
    /// that held anything is followed at once by a new one, so a flood is
    /// summed up once per window without a report of its own at each start.
    pub fn due(&mut self, now: Instant) -> Option<Summary> {
        let open = self.open.as_ref()?;
        if now.duration_since(open.opened) < self.window {
            return None;
        }
        let summary = self.close();
        if summary.is_some() {
            self.open = Some(Window {
                opened: now,
                opened_at: Timestamp::now(),
                total: 0,
                timeouts: 0,
                sources: HashMap::new(),
                unlisted: 0,
                announce: false,
            });
        }
        summary
    }

    /// Closes the window now (at a stop), returning its summary as [`due`]
    /// would.
    ///
    /// [`due`]: Strangers::due
    pub fn close(&mut self) -> Option<Summary> {
        let w = self.open.take()?;
        if w.total <= u64::from(w.announce) {
            return None;
        }
        let mut busiest: Vec<(IpAddr, u64)> = w.sources.iter().map(|(ip, n)| (*ip, *n)).collect();
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        busiest.truncate(BUSIEST);
        Some(Summary {
            since: w.opened_at,
            total: w.total,
            timeouts: w.timeouts,
            sources: w.sources.len(),
            more_sources: w.unlisted > 0,
            busiest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x7f00_0000 + n))
    }

    #[test]
    fn a_lone_refusal_is_reported_at_once_and_not_summed_up_again() {
        let mut s = Strangers::new(WINDOW);
        let t = Instant::now();
        assert!(s.note(t, ip(1), false));
        assert_eq!(s.due(t + WINDOW), None);
        assert_eq!(s.due(t + 3 * WINDOW), None);
        assert!(s.note(t + 3 * WINDOW, ip(1), false), "a new quiet spell");
    }

    #[test]
    fn a_flood_from_many_sources_is_one_summary_per_window_naming_the_busiest() {
        let mut s = Strangers::new(WINDOW);
        let t = Instant::now();
        let mut reported = 0;
        for n in 0..10_000u32 {
            reported += u32::from(s.note(t, ip(n % 5_000), n % 4 == 0));
        }
        for n in 0..7 {
            s.note(t, ip(42), false);
            s.note(t, ip(7), n < 3);
        }
        assert_eq!(reported, 1);
        assert_eq!(s.due(t + WINDOW / 2), None, "not before the window ends");
        let summary = s.due(t + WINDOW).expect("a summary");
        assert_eq!(summary.total, 10_014);
        assert_eq!(summary.timeouts, 2_503);
        assert_eq!(summary.sources, MAX_SOURCES);
        assert!(summary.more_sources);
        assert_eq!(summary.busiest.len(), BUSIEST);
        assert_eq!(summary.busiest[..2], [(ip(7), 9), (ip(42), 9)]);
        assert!(summary.alarming());
        assert!(!s.note(t + WINDOW, ip(1), false), "the flood goes on");
        assert_eq!(s.due(t + 2 * WINDOW).map(|s| s.total), Some(1));
        assert_eq!(s.due(t + 3 * WINDOW), None);
    }

    #[test]
    fn time_outs_alone_alarm_only_at_a_sustained_rate() {
        let mut s = Strangers::new(WINDOW);
        let t = Instant::now();
        for _ in 0..SUSTAINED_TIMEOUTS - 1 {
            s.note(t, ip(3), true);
        }
        assert!(!s.close().expect("summary").alarming());
        for _ in 0..SUSTAINED_TIMEOUTS {
            s.note(t, ip(3), true);
        }
        assert!(s.close().expect("summary").alarming());
    }

    #[test]
    fn a_zero_window_reports_every_refusal() {
        let mut s = Strangers::new(Duration::ZERO);
        let t = Instant::now();
        assert!((0..100).all(|_| s.note(t, ip(1), false)));
        assert_eq!(s.close(), None);
        assert_eq!(s.refused(), 100);
    }
}
