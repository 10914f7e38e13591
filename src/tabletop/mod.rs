//! Tabletop exercises: scenarios (`scenario`), the scoring state machine
//! (`engine`, no I/O), and the live exercise (`run`): ephemeral keys, a
//! temporary journal, and a simulated counterpart station in this process
//! talking to the trainee's console over the real link on loopback, with
//! the exercise ALPN so it can never reach a live station.

pub mod classroom;
pub mod engine;
pub mod html;
pub mod msel;
pub mod run;
pub mod scenario;

pub use engine::{Engine, Input, Outcome, ReportFacts, Score, Send};
pub use scenario::{Expect, Scenario};
