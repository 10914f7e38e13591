//! The key rotation notice: how a station tells a peer that it has new
//! keys, so the peer can hold them until an operator confirms the new
//! fingerprint out of band.
//!
//! The notice is signed twice. The inner document carries the new card
//! and is signed with the new key (proving the sender holds it); the outer
//! one names the new signing key, carries the inner document, and is
//! signed with the old key, the one the peer pins (proving the notice
//! comes from the station the peer knows). A notice signed only by the new
//! key, or by a key the peer no longer accepts, is refused.

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::card::StationCard;
use super::keys::{PeerKeys, StationKeys, parse_signing_key, signing_key_text};
use super::signed::{self, Kind};
use crate::domain::{PROTOCOL, REVISION};

/// The largest notice read: a card with a post-quantum recipient is about
/// 2.5 KB; signed twice and quoted, well under this.
pub const MAX_NOTICE: usize = 32 * 1024;

/// The outer part, signed with the old key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outer {
    protocol: String,
    revision: u32,
    new_signing_key: String,
    /// The inner document, signed with the new key.
    inner: String,
}

/// The inner part, signed with the new key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    protocol: String,
    revision: u32,
    /// The new card, as TOML.
    card: String,
    /// When the old keys were retired (the sender's clock; shown, never
    /// used to judge what the receiver stored).
    retired_at: Timestamp,
    /// From when the old key may have been in someone else's hands, if
    /// the sender says it was compromised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compromised_since: Option<Timestamp>,
}

/// A notice that verified against the pinned key and its own new key.
#[derive(Clone, Debug)]
pub struct Notice {
    pub card: StationCard,
    pub keys: PeerKeys,
    /// The pinned key that signed the outer part.
    pub old_key: VerifyingKey,
    pub retired_at: Timestamp,
    pub compromised_since: Option<Timestamp>,
}

impl Notice {
    pub fn fingerprint(&self) -> String {
        self.keys.fingerprint()
    }
}

/// Why a rotation notice was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("the notice is larger than {MAX_NOTICE} bytes")]
    TooLarge,
    #[error("the notice is not signed by a key pinned for {peer}: {detail}")]
    NotFromPinnedKey { peer: String, detail: String },
    #[error("the notice's new-key part is not signed by the new key it names: {0}")]
    NotFromNewKey(String),
    #[error("the notice is not well formed: {0}")]
    Malformed(String),
    #[error("the notice's card is for {card}, not {peer}")]
    WrongStation { card: String, peer: String },
}

/// The notice announcing `keys`' newest rotation, signed with the retired
/// key and the current one. `None` when the keys were never rotated.
/// Deterministic: the same keys give the same bytes.
pub fn notice(keys: &StationKeys) -> Option<Vec<u8>> {
    let old = keys.retired.last()?;
    let card = StationCard::from_keys(&keys.public(), Vec::new(), None);
    let inner = Inner {
        protocol: PROTOCOL.to_string(),
        revision: REVISION,
        card: card.to_toml(),
        retired_at: old.retired_at,
        compromised_since: old.compromised_since,
    };
    let inner_doc = signed::sign(
        Kind::RotationKey,
        &keys.name,
        &serde_json::to_vec(&inner).ok()?,
        &keys.signing,
    );
    let outer = Outer {
        protocol: PROTOCOL.to_string(),
        revision: REVISION,
        new_signing_key: signing_key_text(&keys.signing.verifying_key()),
        inner: String::from_utf8(inner_doc).ok()?,
    };
    Some(signed::sign(
        Kind::Rotation,
        &keys.name,
        &serde_json::to_vec(&outer).ok()?,
        &old.signing,
    ))
}

/// Verifies a notice from the station pinned as `pinned`: the outer part
/// against the keys accepted from it now, the inner part against the new
/// key, and the card against both.
pub fn open_notice(doc: &[u8], pinned: &PeerKeys) -> Result<Notice, NoticeError> {
    if doc.len() > MAX_NOTICE {
        return Err(NoticeError::TooLarge);
    }
    let not_pinned = |detail: String| NoticeError::NotFromPinnedKey {
        peer: pinned.name.to_string(),
        detail,
    };
    let outer = signed::parse(doc).map_err(|e| not_pinned(e.to_string()))?;
    if outer.claimed_signer() != pinned.name.as_str() {
        return Err(NoticeError::WrongStation {
            card: outer.claimed_signer().to_string(),
            peer: pinned.name.to_string(),
        });
    }
    let (body, old_key) = outer
        .verify_any(Kind::Rotation, &pinned.accepted())
        .map_err(|e| not_pinned(e.to_string()))?;
    let outer: Outer =
        serde_json::from_slice(body).map_err(|e| NoticeError::Malformed(e.to_string()))?;
    let new_key = parse_signing_key(&outer.new_signing_key).map_err(NoticeError::Malformed)?;
    let inner_body = signed::parse(outer.inner.as_bytes())
        .and_then(|d| d.verify(Kind::RotationKey, &new_key))
        .map_err(|e| NoticeError::NotFromNewKey(e.to_string()))?;
    let inner: Inner =
        serde_json::from_slice(inner_body).map_err(|e| NoticeError::Malformed(e.to_string()))?;
    let (card, keys) = StationCard::parse(&inner.card, "the notice's card")
        .map_err(|e| NoticeError::Malformed(e.to_string()))?;
    if card.station != pinned.name {
        return Err(NoticeError::WrongStation {
            card: card.station.to_string(),
            peer: pinned.name.to_string(),
        });
    }
    if keys.signing != new_key {
        return Err(NoticeError::Malformed(
            "the card's signing key is not the new key that signed the notice".into(),
        ));
    }
    Ok(Notice {
        card,
        keys,
        old_key,
        retired_at: inner.retired_at,
        compromised_since: inner.compromised_since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StationName;

    fn keys(name: &str) -> StationKeys {
        StationKeys::generate(StationName::new(name).expect("name")).expect("keys")
    }

    #[test]
    fn a_notice_verifies_against_the_old_pin_and_names_the_new_card() {
        let old = keys("MOSCOW");
        let pinned = old.public();
        let now = Timestamp::now();
        let new = old.rekey(now, None).expect("rekey");
        let doc = notice(&new).expect("a notice");
        assert_eq!(notice(&new), Some(doc.clone()), "deterministic");
        let opened = open_notice(&doc, &pinned).expect("verifies");
        assert_eq!(opened.fingerprint(), new.public().fingerprint());
        assert_eq!(opened.old_key, pinned.signing);
        assert_eq!(opened.compromised_since, None);

        // Control: a stranger's pin refuses it.
        let other = keys("MOSCOW").public();
        assert!(matches!(
            open_notice(&doc, &other),
            Err(NoticeError::NotFromPinnedKey { .. })
        ));
    }

    #[test]
    fn a_notice_signed_only_by_the_new_key_is_refused() {
        let old = keys("MOSCOW");
        let pinned = old.public();
        let new = old.rekey(Timestamp::now(), None).expect("rekey");
        // Forge: the outer part signed with the new key instead of the old.
        let genuine = notice(&new).expect("notice");
        let body = signed::parse(&genuine)
            .expect("parses")
            .verify(Kind::Rotation, &pinned.signing)
            .expect("genuine")
            .to_vec();
        let forged = signed::sign(Kind::Rotation, &new.name, &body, &new.signing);
        let err = open_notice(&forged, &pinned).expect_err("refused");
        assert!(matches!(err, NoticeError::NotFromPinnedKey { .. }), "{err}");
        assert!(open_notice(&genuine, &pinned).is_ok(), "control");
    }

    /// A station from before post-quantum keys gets one by rotating, and
    /// its peer learns the hybrid recipient from the notice its pinned key
    /// signed: sealing between them becomes post-quantum.
    #[test]
    fn a_classic_station_becomes_post_quantum_by_rotating() {
        let mut old = keys("MOSCOW");
        old.pq = None;
        let pinned = old.public();
        let peer = keys("WASHINGTON");
        assert!(!crate::crypto::keys::Sealing::is_post_quantum_between(
            &peer, &pinned
        ));
        let new = old.rekey(Timestamp::now(), None).expect("rekey");
        let opened = open_notice(&notice(&new).expect("notice"), &pinned).expect("verifies");
        assert!(opened.card.pq_recipient.is_some());
        assert!(crate::crypto::keys::Sealing::is_post_quantum_between(
            &peer,
            &opened.keys
        ));
    }

    #[test]
    fn keys_never_rotated_have_no_notice() {
        assert!(notice(&keys("MOSCOW")).is_none());
    }
}
