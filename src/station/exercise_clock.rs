//! The scenario clock of a tabletop exercise, shared by the white cell,
//! which runs it (start, pause, speed), and the trainee station it plays
//! to, whose acknowledgement deadlines count in scenario time: a pause
//! stops them and a faster speed runs them faster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

/// From `wall` on, the clock read `scenario` and ran at `speed` (or stood
/// still, `paused`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    wall: Timestamp,
    scenario: Duration,
    speed: f64,
    paused: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ExerciseClock(Arc<Mutex<Vec<Segment>>>);

impl ExerciseClock {
    /// The clock reads `scenario` at `wall` and runs at `speed` (stopped
    /// while `paused`). Kept only where the speed or the pause changes:
    /// in between, the clock is read off the last change.
    pub fn sync(&self, wall: Timestamp, scenario: Duration, speed: f64, paused: bool) {
        let mut segments = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let same = segments
            .last()
            .is_some_and(|s| s.speed == speed && s.paused == paused);
        if !same {
            segments.push(Segment {
                wall,
                scenario,
                speed,
                paused,
            });
        }
    }

    /// The scenario time at wall-clock `at`; zero before the clock started.
    pub fn scenario_at(&self, at: Timestamp) -> Duration {
        let segments = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = segments.iter().rev().find(|s| s.wall <= at) else {
            return Duration::ZERO;
        };
        if s.paused {
            return s.scenario;
        }
        let passed = at.duration_since(s.wall).unsigned_abs();
        s.scenario + passed.mul_f64(s.speed)
    }

    /// How much scenario time passed from wall-clock `from` to `to`.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> Duration {
        self.scenario_at(to).saturating_sub(self.scenario_at(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stop_it_and_speed_runs_it_faster() {
        let start: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let at = |s: i64| start + jiff::SignedDuration::from_secs(s);
        let clock = ExerciseClock::default();
        assert_eq!(clock.scenario_at(at(5)), Duration::ZERO, "not started");
        clock.sync(at(0), Duration::ZERO, 1.0, false);
        clock.sync(at(10), Duration::from_secs(10), 1.0, false);
        assert_eq!(clock.scenario_at(at(20)), Duration::from_secs(20));
        clock.sync(at(20), Duration::from_secs(20), 1.0, true);
        assert_eq!(clock.scenario_at(at(80)), Duration::from_secs(20), "paused");
        clock.sync(at(80), Duration::from_secs(20), 4.0, false);
        assert_eq!(clock.scenario_at(at(90)), Duration::from_secs(60), "4x");
        assert_eq!(clock.between(at(10), at(90)), Duration::from_secs(50));
    }
}
