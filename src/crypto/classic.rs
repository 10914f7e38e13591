//! Classic X25519 age keys. age 0.13 deprecates them for new use, because
//! they are not safe against a future quantum computer; hotline keeps them
//! only to serve peers that have not upgraded to post-quantum sealing, and
//! to open what was sealed before. This module is the one place allowed to
//! name them, so any other new use is a compiler warning.
#![allow(deprecated)]

/// A classic age identity (`AGE-SECRET-KEY-1…`).
pub type ClassicIdentity = age::x25519::Identity;
/// A classic age recipient (`age1…`).
pub type ClassicRecipient = age::x25519::Recipient;

/// A fresh classic identity, kept beside the post-quantum one for peers
/// whose cards have no post-quantum recipient.
pub fn generate() -> ClassicIdentity {
    age::x25519::Identity::generate()
}
