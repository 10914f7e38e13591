//! hotline: the duty-officer console of a government-to-government crisis link.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
//!
//! The crate is layered; each layer only calls down (see DESIGN.md):
//!
//! - [`domain`]: plain data — names, precedence, date-time groups, the message.
//! - [`templates`]: the bilingual crisis forms compiled in from
//!   `assets/templates`, field validation, and rendering per language.
//! - [`crypto`]: station keys, key files, station cards, signing and sealing.
//! - [`store`]: the SQLite journal — outbox, inbox, receipts, audit chain.
//! - [`config`]: `operator.toml`, parsed into a validated [`config::Config`].
//! - [`cli`]: the `hotline` command line.
//!
//! Where to add a feature: a new kind of field goes in `templates::value`; a
//! new signed object gets its own tag in `crypto::signed::Kind`; a new journal
//! table gets a migration in `store::schema`; a new command gets a variant in
//! `cli::Command` and a file under `cli/`.

pub mod cli;
pub mod compose;
pub mod config;
pub mod console;
pub mod crypto;
pub mod domain;
pub mod fsutil;
pub mod link;
pub mod logging;
pub mod passphrase;
pub mod problem;
pub mod sanitize;
pub mod station;
pub mod tabletop;
pub mod store;
pub mod templates;
pub mod term;
pub mod ui;
pub mod wire;
