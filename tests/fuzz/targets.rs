#![allow(dead_code)]

//! The fuzz targets' bodies, shared by the fuzzer (`fuzz_targets/*.rs`) and
//! by the replay of the committed corpora in `cargo test`
//! (`tests/config.rs`). Each takes any bytes and must return without a
//! panic, whatever they hold; where a parse succeeds, what it gives must
//! hold up (a frame encodes back to the same bytes, a signed document made
//! of the input opens to the same body).

use std::path::Path;
use std::sync::OnceLock;

use hotline::crypto::signed::{self, Kind, SignedError};
use hotline::crypto::{StationKeys, open_inbound};
use hotline::domain::StationName;
use hotline::station::api::Command;
use hotline::station::control::Hello;
use hotline::station::docs::{self, AckBody, HelloBody, LinkTestBody, ReceiptBody, RefusalBody};
use hotline::templates::Catalog;
use hotline::wire::{self, AttachmentOffer, Frame};

/// A target: the name of its corpus directory, and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 8] = [
    ("frame", frame),
    ("signed", signed_document),
    ("sealed", sealed_message),
    ("card", card),
    ("config", config),
    ("template", template),
    ("scenario", scenario),
    ("control", control),
];

/// A wire frame, and what is read from one: an attachment offer, a resume
/// offset. A frame that decodes encodes back to the same bytes.
pub fn frame(data: &[u8]) {
    if let Ok(f) = Frame::decode(data) {
        assert_eq!(f.encode(), data, "a decoded frame encodes back");
        let _ = AttachmentOffer::parse(&f);
        let _ = wire::resume_offset(&f);
    }
}

/// Two stations' keys, made once per process.
fn keys() -> &'static (StationKeys, StationKeys) {
    static KEYS: OnceLock<(StationKeys, StationKeys)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let name = |s| StationName::new(s).expect("name");
        (
            StationKeys::generate(name("WASHINGTON")).expect("keys"),
            StationKeys::generate(name("MOSCOW")).expect("keys"),
        )
    })
}

/// A signed document from the wire, and the input as the JSON body of each
/// kind of document, signed by the peer: the envelope parser and every
/// body's parser see it.
pub fn signed_document(data: &[u8]) {
    let (w, m) = keys();
    let peer = w.public();
    if let Ok(doc) = signed::parse(data) {
        let _ = doc.claimed_signer();
        for kind in Kind::ALL {
            if let Ok(doc) = signed::parse(data) {
                let _ = doc.verify(kind, &peer.signing);
            }
        }
    }
    let signed_as = |kind| signed::sign(kind, &w.name, data, &w.signing);
    let _ = docs::open::<HelloBody>(Kind::Hello, &signed_as(Kind::Hello), &peer, &m.name);
    let _ = docs::open::<ReceiptBody>(Kind::Receipt, &signed_as(Kind::Receipt), &peer, &m.name);
    let _ = docs::open::<RefusalBody>(Kind::Refusal, &signed_as(Kind::Refusal), &peer, &m.name);
    let _ = docs::open::<AckBody>(Kind::Ack, &signed_as(Kind::Ack), &peer, &m.name);
    let _ = docs::open::<LinkTestBody>(Kind::LinkTest, &signed_as(Kind::LinkTest), &peer, &m.name);
    // Whatever the body, a document signed here verifies to the same bytes,
    // unless the body claims a revision newer than this build (refused by
    // design, after the signature).
    let doc = signed_as(Kind::Message);
    match signed::parse(&doc).and_then(|d| d.verify(Kind::Message, &peer.signing)) {
        Ok(body) => assert_eq!(body, data),
        Err(SignedError::UnsupportedRevision { .. }) => {}
        Err(e) => panic!("a document signed here does not open: {e}"),
    }
}

/// Bytes that arrive as a sealed message: as they are (the age parser),
/// and as the body of a message really sealed to us (the message parser
/// and its checks).
pub fn sealed_message(data: &[u8]) {
    let (w, m) = keys();
    let peer = w.public();
    let _ = open_inbound(data, m, |name| (name == "WASHINGTON").then(|| peer.clone()));
    let doc = signed::sign(Kind::Message, &w.name, data, &w.signing);
    let own = w.age.to_public();
    let to = m.public();
    let recipients: [&dyn age::Recipient; 2] = [&to.age, &own];
    if let Ok(sealed) = hotline::crypto::age_io::encrypt(&doc, &recipients) {
        let _ = open_inbound(&sealed, m, |name| {
            (name == "WASHINGTON").then(|| peer.clone())
        });
    }
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A station card, as `hotline peer add` reads it.
pub fn card(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = hotline::crypto::StationCard::parse(text, "fuzz.card.toml");
    }
}

/// `operator.toml`.
pub fn config(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = hotline::config::Config::parse(text, Path::new("operator.toml"));
    }
}

/// A template file.
pub fn template(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = hotline::templates::parse_template(Path::new("fuzz.toml"), text);
    }
}

/// A scenario file, checked against the built-in templates.
pub fn scenario(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ =
            hotline::tabletop::scenario::parse(Path::new("fuzz.toml"), text, Catalog::builtin());
    }
}

/// A line on the control socket: the hello, or a command.
pub fn control(data: &[u8]) {
    let _ = serde_json::from_slice::<Hello>(data);
    if let Ok(command) = serde_json::from_slice::<Command>(data) {
        let again = serde_json::to_vec(&command).expect("a command serialises");
        let _ = serde_json::from_slice::<Command>(&again).expect("and reads back");
    }
}
