//! What the run loop takes for one frame. Keys (and resizes) come on a
//! channel of their own and go first, so a flood of station events never
//! stands between the operator and the screen. After the first message a
//! frame takes whatever else is already waiting, within a time budget and
//! a count, and is drawn once: ten thousand arrivals cost a few hundred
//! frames, not ten thousand.
//!
//! A key that arrives after a frame has taken other messages waits for
//! that frame to be drawn: a key acts on the screen the operator saw (and
//! on the keys typed before it), never on rows not yet drawn.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::console::Msg;

/// The longest one frame gathers messages before it is drawn: beyond the
/// draw itself, the most a key waits behind a flood.
pub const FRAME_BUDGET: Duration = Duration::from_millis(8);
/// The most messages one frame takes.
pub const FRAME_MESSAGES: usize = 512;

/// The run loop's two channels: keys, and everything else.
pub struct Inbox {
    keys: mpsc::Receiver<Msg>,
    rest: mpsc::Receiver<Msg>,
    /// A key held back for the next frame.
    held: Option<Msg>,
    budget: Duration,
    most: usize,
}

/// One frame being gathered.
pub struct Frame {
    started: Instant,
    taken: usize,
    /// Whether the frame has taken anything but keys.
    others: bool,
}

impl Inbox {
    pub fn new(keys: mpsc::Receiver<Msg>, rest: mpsc::Receiver<Msg>) -> Inbox {
        Inbox::with_budget(keys, rest, FRAME_BUDGET, FRAME_MESSAGES)
    }

    /// An inbox whose frames end after `budget` or `most` messages.
    pub fn with_budget(
        keys: mpsc::Receiver<Msg>,
        rest: mpsc::Receiver<Msg>,
        budget: Duration,
        most: usize,
    ) -> Inbox {
        Inbox {
            keys,
            rest,
            held: None,
            budget,
            most: most.max(1),
        }
    }

    /// The first message of the next frame: a key held back from the last
    /// one, else the next key, else whatever comes. `None` once both
    /// channels are closed and empty.
    pub async fn first(&mut self) -> Option<(Msg, Frame)> {
        let (msg, others) = match self.held.take() {
            Some(key) => (key, false),
            None => tokio::select! {
                biased;
                Some(key) = self.keys.recv() => (key, false),
                Some(msg) = self.rest.recv() => (msg, true),
                else => return None,
            },
        };
        let frame = Frame {
            started: Instant::now(),
            taken: 1,
            others,
        };
        Some((msg, frame))
    }

    /// One more message for `frame`, if one is already waiting and the
    /// frame has time and room for it; keys first.
    pub fn more(&mut self, frame: &mut Frame) -> Option<Msg> {
        if frame.taken >= self.most || frame.started.elapsed() >= self.budget {
            return None;
        }
        let msg = match self.keys.try_recv() {
            Ok(key) if frame.others => {
                self.held = Some(key);
                return None;
            }
            Ok(key) => key,
            Err(_) => {
                let msg = self.rest.try_recv().ok()?;
                frame.others = true;
                msg
            }
        };
        frame.taken += 1;
        Some(msg)
    }
}
