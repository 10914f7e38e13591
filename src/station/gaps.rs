//! Gap detection with bounded work, whatever a peer declares.
//!
//! A peer's hellos and link tests declare the highest serial it released
//! to us and the serials it cancelled before sending. A serial at or below
//! that declaration which has not arrived within the retry window is a
//! gap. Serials are judged as a set, since precedence reorders arrivals on
//! purpose.
//!
//! What one peer's data can cost is bounded by design: only
//! [`TRACKED_AHEAD`] serials past the contiguous run (everything up to it
//! has arrived or was cancelled) are looked at, so a declaration of serial
//! 2^40 costs no more than one of serial 4096; the times at which the
//! declaration rose are kept as at most [`MAX_STEPS`] steps; cancelled
//! serials are kept only inside the tracked span; and gaps are kept and
//! reported as ranges.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

/// How many serials past the contiguous run are tracked.
pub const TRACKED_AHEAD: u64 = 4096;
/// How many rises of the declared highest serial are remembered with their
/// time; more are merged into the newest, which can only delay a gap's
/// report, never raise a false one.
pub const MAX_STEPS: usize = 64;

/// Serials `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub last: u64,
}

impl Range {
    fn contains(&self, serial: u64) -> bool {
        (self.first..=self.last).contains(&serial)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}–{}", self.first, self.last)
        }
    }
}

/// Ranges as the alarm shows them: `3–7, 9`.
pub fn describe(ranges: &[Range]) -> String {
    ranges
        .iter()
        .map(Range::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one peer declared, and what the gap check made of it.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    /// Everything up to here has arrived or was cancelled.
    contiguous: u64,
    /// The highest serial declared, as declared.
    declared: u64,
    /// Serials up to `.0` have been expected since `.1`; ascending in both.
    steps: Vec<(u64, Instant)>,
    /// Declared cancelled, above the contiguous run and inside the span.
    cancelled: BTreeSet<u64>,
    /// The gaps reported at the last check.
    reported: Vec<Range>,
}

/// The outcome of one check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// Every gap now, oldest first.
    pub missing: Vec<Range>,
    /// Gap serials not reported before.
    pub newly: Vec<u64>,
    /// The declared highest, when it lies beyond what is tracked.
    pub beyond: Option<u64>,
}

impl Tracker {
    /// The highest serial the peer declared.
    pub fn declared(&self) -> u64 {
        self.declared
    }

    /// The last serial looked at: the declared highest, or the end of the
    /// tracked span if that comes first.
    pub fn limit(&self) -> u64 {
        self.declared
            .min(self.contiguous.saturating_add(TRACKED_AHEAD))
    }

    /// The serials whose arrival the next check needs to know:
    /// `(above, up_to]`, or nothing when all declared have arrived.
    pub fn span(&self) -> Option<(u64, u64)> {
        (self.limit() > self.contiguous).then(|| (self.contiguous, self.limit()))
    }

    /// Takes in a declaration seen at `now`.
    pub fn declare(&mut self, highest: u64, cancelled: &[u64], now: Instant) {
        if highest > self.declared {
            self.declared = highest;
            if self.steps.len() >= MAX_STEPS {
                // Merged into the newest step, taking its later time.
                self.steps.pop();
            }
            self.steps.push((highest, now));
        }
        let (above, up_to) = (
            self.contiguous,
            self.contiguous.saturating_add(TRACKED_AHEAD),
        );
        self.cancelled.extend(
            cancelled
                .iter()
                .copied()
                .filter(|s| *s > above && *s <= up_to),
        );
        // The filter bounds one declaration; this bounds many.
        while self.cancelled.len() as u64 > TRACKED_AHEAD {
            self.cancelled.pop_last();
        }
    }

    /// Judges the span given the serials in it that have arrived (`have`,
    /// as read from the journal for [`Tracker::span`]).
    pub fn check(&mut self, have: &[u64], now: Instant, window: Duration) -> Check {
        let have: BTreeSet<u64> = have.iter().copied().collect();
        let limit = self.limit();
        let accounted = |s: u64| have.contains(&s) || self.cancelled.contains(&s);
        let mut next = self.contiguous;
        while next < limit && accounted(next + 1) {
            next += 1;
        }
        // Serials up to `due` were declared longer ago than the window.
        let due = self
            .steps
            .iter()
            .take_while(|(_, since)| now.saturating_duration_since(*since) >= window)
            .map(|(high, _)| *high)
            .last()
            .unwrap_or(0)
            .min(limit);
        let mut missing: Vec<Range> = Vec::new();
        for serial in next + 1..=due {
            if accounted(serial) {
                continue;
            }
            match missing.last_mut() {
                Some(r) if r.last + 1 == serial => r.last = serial,
                _ => missing.push(Range {
                    first: serial,
                    last: serial,
                }),
            }
        }
        let newly = missing
            .iter()
            .flat_map(|r| r.first..=r.last)
            .filter(|s| !self.reported.iter().any(|r| r.contains(*s)))
            .collect();

        self.contiguous = next;
        self.cancelled.retain(|s| *s > next);
        // Steps wholly inside the contiguous run, and all but the newest of
        // those already due, say nothing more.
        let due_steps = self
            .steps
            .iter()
            .take_while(|(high, since)| {
                *high <= next || now.saturating_duration_since(*since) >= window
            })
            .count();
        if due_steps > 1 {
            self.steps.drain(..due_steps - 1);
        }
        self.reported = missing.clone();
        Check {
            missing,
            newly,
            beyond: (self.declared > limit && due >= limit).then_some(self.declared),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(5);

    fn later(t: Instant, secs: u64) -> Instant {
        t + Duration::from_secs(secs)
    }

    #[test]
    fn a_serial_missing_past_the_window_is_a_gap_once() {
        let t = Instant::now();
        let mut g = Tracker::default();
        g.declare(3, &[], t);
        assert_eq!(g.span(), Some((0, 3)));
        let early = g.check(&[1, 3], later(t, 1), WINDOW);
        assert!(early.missing.is_empty(), "{early:?}");
        let first = g.check(&[1, 3], later(t, 5), WINDOW);
        assert_eq!(first.missing, vec![Range { first: 2, last: 2 }]);
        assert_eq!(first.newly, vec![2]);
        let again = g.check(&[1, 3], later(t, 6), WINDOW);
        assert_eq!(again.missing, first.missing);
        assert!(again.newly.is_empty(), "reported once: {again:?}");
        let filled = g.check(&[2, 3], later(t, 7), WINDOW);
        assert_eq!(filled, Check::default());
        assert_eq!(g.span(), None, "everything up to 3 has arrived");
    }

    #[test]
    fn cancelled_serials_are_accounted_for() {
        let t = Instant::now();
        let mut g = Tracker::default();
        g.declare(4, &[2, 3], t);
        let c = g.check(&[1, 4], later(t, 9), WINDOW);
        assert_eq!(c, Check::default());
        assert_eq!(g.span(), None);
    }

    #[test]
    fn a_serial_is_judged_from_when_it_was_first_declared() {
        let t = Instant::now();
        let mut g = Tracker::default();
        g.declare(2, &[], t);
        g.declare(4, &[], later(t, 4));
        let c = g.check(&[1], later(t, 6), WINDOW);
        assert_eq!(c.missing, vec![Range { first: 2, last: 2 }], "{c:?}");
        let c = g.check(&[1], later(t, 9), WINDOW);
        assert_eq!(c.missing, vec![Range { first: 2, last: 4 }], "{c:?}");
        assert_eq!(c.newly, vec![3, 4]);
    }

    #[test]
    fn a_huge_declaration_is_tracked_only_as_far_as_the_span() {
        let t = Instant::now();
        let mut g = Tracker::default();
        let huge = 1 << 40;
        g.declare(huge, &(1..100_000).collect::<Vec<_>>(), t);
        assert_eq!(g.span(), Some((0, TRACKED_AHEAD)));
        assert!(g.cancelled.len() as u64 <= TRACKED_AHEAD);
        g.cancelled.clear();
        let c = g.check(&[], later(t, 9), WINDOW);
        assert_eq!(
            c.missing,
            vec![Range {
                first: 1,
                last: TRACKED_AHEAD
            }]
        );
        assert_eq!(c.beyond, Some(huge));
        assert_eq!(c.newly.len() as u64, TRACKED_AHEAD);
        assert_eq!(describe(&c.missing), format!("1–{TRACKED_AHEAD}"));
    }

    #[test]
    fn steps_stay_bounded_and_merging_only_delays() {
        let t = Instant::now();
        let mut g = Tracker::default();
        for i in 1..=10_000 {
            g.declare(i, &[], later(t, i));
        }
        assert!(g.steps.len() <= MAX_STEPS);
        // Serial 1 was declared at t+1; merged steps may report it later,
        // never before its own window has passed.
        let c = g.check(&[], later(t, 5), WINDOW);
        assert!(c.missing.is_empty(), "{c:?}");
        let c = g.check(&[], later(t, 20_000), WINDOW);
        assert_eq!(
            c.missing,
            vec![Range {
                first: 1,
                last: TRACKED_AHEAD
            }]
        );
        assert!(
            g.steps.len() <= 1,
            "due steps collapse: {:?}",
            g.steps.len()
        );
    }
}
