//! hotline: the duty-officer console of a government-to-government crisis link.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::print_stdout,
        clippy::print_stderr
    )
)]
//!
//! The crate is layered; each layer only calls down (see DESIGN.md):
//!
//! - [`domain`]: plain data — names, precedence, date-time groups, the message.
//! - [`lang`]: the console's words, one catalogue per language, compiled in
//!   from `assets/lang`; [`t!`] fetches one.
//! - [`templates`]: the multilingual crisis forms compiled in from
//!   `assets/templates`, field validation, and rendering per language.
//! - [`crypto`]: station keys, key files, station cards, signing and sealing.
//! - [`store`]: the SQLite journal — outbox, inbox, receipts, audit chain.
//! - [`config`]: `operator.toml`, parsed into a validated [`config::Config`].
//! - [`wire`]: frames on the link (no I/O); [`link`]: quinn, pinned TLS,
//!   dialing, failover, streams. The link knows nothing of crypto or storage.
//! - [`station`]: the service of one station — the one place where crypto,
//!   journal and network meet — with its command/event API and control socket.
//! - [`console`]: the duty console's state and `update` (no I/O); [`ui`]: its
//!   views; [`term`]: the terminal and the run loop.
//! - [`tabletop`]: exercise scenarios, the scoring engine, the white cell.
//! - [`cli`]: the `hotline` command line.
//!
//! Where to add a feature: a new kind of field goes in `templates::value`; a
//! new signed object gets its own tag in `crypto::signed::Kind` and a body in
//! `station::docs`; a new frame kind goes in `wire`; a new journal table gets
//! a migration in `store::schema`; a new console key gets a line in
//! `console::keymap::defaults` (footer and help follow); every text the
//! console shows is a key in `assets/lang/en.toml` and each other
//! catalogue, fetched with [`t!`]; a new screen gets a
//! `console::Screen` variant and a file under `ui/`; a new command gets a
//! variant in `cli::Command` and a file under `cli/`.

pub mod attach;
pub mod backup;
pub mod cli;
pub mod compose;
pub mod config;
pub mod console;
pub mod crypto;
pub mod domain;
pub mod drafts;
pub mod exports;
pub mod fsutil;
pub mod lang;
pub mod link;
pub mod logging;
pub mod passphrase;
pub mod problem;
pub mod sanitize;
pub mod station;
pub mod store;
pub mod tabletop;
pub mod templates;
pub mod term;
pub mod ui;
pub mod wire;
