//! A station's keys — Ed25519 for signing (and TLS); age's hybrid
//! post-quantum identity (ML-KEM-768 + X25519) and its classic X25519 one
//! for decryption — and the public half that peers pin.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::classic::{self, ClassicIdentity, ClassicRecipient};
use crate::domain::StationName;

/// This station's secret keys. Each zeroises itself on drop. Not `Clone`,
/// so secret keys are not copied casually.
pub struct StationKeys {
    pub name: StationName,
    pub signing: SigningKey,
    /// Opens what peers without a post-quantum recipient seal to us, and
    /// what was sealed before this station had a post-quantum identity.
    pub age: ClassicIdentity,
    /// The hybrid post-quantum identity; `None` only for a key file made
    /// before hotline had one.
    pub pq: Option<age::pq::Identity>,
    /// The keys `hotline rekey` replaced, oldest first: kept to open and
    /// verify what the journal holds from before, and to sign the rotation
    /// notice (and, until a peer confirms the new keys, its traffic).
    pub retired: Vec<RetiredKeys>,
}

/// A station's keys from before a rotation.
pub struct RetiredKeys {
    pub signing: SigningKey,
    pub age: ClassicIdentity,
    pub pq: Option<age::pq::Identity>,
    pub retired_at: Timestamp,
    /// Set by `hotline rekey --compromised`: from when the key may have
    /// been in someone else's hands. A compromised key signs nothing but
    /// its own revocation.
    pub compromised_since: Option<Timestamp>,
}

/// A peer's public keys, as pinned from its station card.
#[derive(Clone, Debug)]
pub struct PeerKeys {
    pub name: StationName,
    pub signing: VerifyingKey,
    pub age: ClassicRecipient,
    /// The peer's hybrid post-quantum recipient, when its card has one.
    pub pq: Option<age::pq::Recipient>,
    /// Earlier signing keys of the peer still accepted while it changes
    /// over to `signing`: after its rotation was confirmed here, until it
    /// is seen using the new key. Not part of its card.
    pub handover: Vec<VerifyingKey>,
}

impl StationKeys {
    /// Fresh keys from the operating system's random source.
    pub fn generate(name: StationName) -> Result<Self, getrandom::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())?;
        Ok(StationKeys {
            name,
            signing: SigningKey::from_bytes(&seed),
            age: classic::generate(),
            pq: Some(age::pq::Identity::generate()),
            retired: Vec::new(),
        })
    }

    /// Fresh keys for the same station, these ones retired (at `now`, and
    /// compromised since `compromised_since` when given).
    pub fn rekey(
        self,
        now: Timestamp,
        compromised_since: Option<Timestamp>,
    ) -> Result<Self, getrandom::Error> {
        let mut next = StationKeys::generate(self.name.clone())?;
        next.retired = self.retired;
        next.retired.push(RetiredKeys {
            signing: self.signing,
            age: self.age,
            pq: self.pq,
            retired_at: now,
            compromised_since,
        });
        Ok(next)
    }

    /// The keys as they stood before the newest rotation, with every other
    /// key (the current ones included) kept for opening: what this station
    /// signs with towards a peer that has not confirmed the rotation yet.
    /// `None` when the keys were never rotated.
    pub fn before_rotation(&self) -> Option<StationKeys> {
        let newest = self.retired.last()?;
        let mut retired: Vec<RetiredKeys> = self.retired[..self.retired.len() - 1]
            .iter()
            .map(RetiredKeys::copy)
            .collect();
        retired.push(RetiredKeys {
            signing: self.signing.clone(),
            age: self.age.clone(),
            pq: self.pq.clone(),
            retired_at: newest.retired_at,
            compromised_since: None,
        });
        Some(StationKeys {
            name: self.name.clone(),
            signing: newest.signing.clone(),
            age: newest.age.clone(),
            pq: newest.pq.clone(),
            retired,
        })
    }

    /// Every public signing key this station has had: the current one
    /// first, then the retired ones, newest first.
    pub fn all_signing_keys(&self) -> Vec<VerifyingKey> {
        std::iter::once(self.signing.verifying_key())
            .chain(self.retired.iter().rev().map(|r| r.signing.verifying_key()))
            .collect()
    }

    pub fn public(&self) -> PeerKeys {
        PeerKeys {
            name: self.name.clone(),
            signing: self.signing.verifying_key(),
            age: self.age.to_public(),
            pq: self.pq.as_ref().map(age::pq::Identity::to_public),
            handover: Vec::new(),
        }
    }

    /// Every identity that may open what was sealed to this station,
    /// post-quantum first, the current keys before the retired ones.
    pub fn identities(&self) -> Vec<&dyn age::Identity> {
        let mut all: Vec<&dyn age::Identity> = Vec::with_capacity(2 + 2 * self.retired.len());
        if let Some(pq) = &self.pq {
            all.push(pq);
        }
        all.push(&self.age);
        for r in self.retired.iter().rev() {
            if let Some(pq) = &r.pq {
                all.push(pq);
            }
            all.push(&r.age);
        }
        all
    }
}

impl RetiredKeys {
    fn copy(&self) -> RetiredKeys {
        RetiredKeys {
            signing: self.signing.clone(),
            age: self.age.clone(),
            pq: self.pq.clone(),
            retired_at: self.retired_at,
            compromised_since: self.compromised_since,
        }
    }

    pub fn public(&self, name: &StationName) -> PeerKeys {
        PeerKeys {
            name: name.clone(),
            signing: self.signing.verifying_key(),
            age: self.age.to_public(),
            pq: self.pq.as_ref().map(age::pq::Identity::to_public),
            handover: Vec::new(),
        }
    }
}

impl PeerKeys {
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.name, &self.signing, &self.age, self.pq.as_ref())
    }

    /// Whether the peer's card has a post-quantum recipient.
    pub fn post_quantum(&self) -> bool {
        self.pq.is_some()
    }

    /// The signing keys accepted from the peer now: its pinned key, then
    /// any still accepted during a handover.
    pub fn accepted(&self) -> Vec<VerifyingKey> {
        std::iter::once(self.signing)
            .chain(self.handover.iter().copied())
            .collect()
    }
}

/// The recipients a message from `me` to `peer` is sealed to: the peer and
/// ourselves, both post-quantum when both stations have a post-quantum key,
/// otherwise both classic (age does not let one file mix the two without
/// losing the post-quantum property, and refuses to). The status asks
/// [`Sealing::is_post_quantum_between`], the same rule.
pub fn seal_recipients(me: &StationKeys, peer: &PeerKeys) -> Sealing {
    match (&me.pq, &peer.pq) {
        (Some(ours), Some(theirs)) => Sealing::PostQuantum([theirs.clone(), ours.to_public()]),
        _ => Sealing::Classic([peer.age.clone(), me.age.to_public()]),
    }
}

/// A station's own recipient, as its drafts are sealed to it: post-quantum
/// when the station has a post-quantum identity.
#[derive(Clone, Debug)]
pub enum OwnRecipient {
    PostQuantum(age::pq::Recipient),
    Classic(ClassicRecipient),
}

impl StationKeys {
    pub fn own_recipient(&self) -> OwnRecipient {
        match &self.pq {
            Some(pq) => OwnRecipient::PostQuantum(pq.to_public()),
            None => OwnRecipient::Classic(self.age.to_public()),
        }
    }
}

impl OwnRecipient {
    pub fn as_recipient(&self) -> &dyn age::Recipient {
        match self {
            OwnRecipient::PostQuantum(r) => r,
            OwnRecipient::Classic(r) => r,
        }
    }
}

impl std::fmt::Display for OwnRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OwnRecipient::PostQuantum(r) => r.fmt(f),
            OwnRecipient::Classic(r) => r.fmt(f),
        }
    }
}

impl FromStr for OwnRecipient {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().starts_with("age1pq1") {
            parse_pq_recipient(s).map(OwnRecipient::PostQuantum)
        } else {
            parse_age_recipient(s).map(OwnRecipient::Classic)
        }
    }
}

/// The two recipients of a sealed message, of one kind.
pub enum Sealing {
    PostQuantum([age::pq::Recipient; 2]),
    Classic([ClassicRecipient; 2]),
}

impl Sealing {
    /// Whether [`seal_recipients`] seals post-quantum from `me` to `peer`,
    /// without building the recipients.
    pub fn is_post_quantum_between(me: &StationKeys, peer: &PeerKeys) -> bool {
        me.pq.is_some() && peer.post_quantum()
    }

    pub fn recipients(&self) -> [&dyn age::Recipient; 2] {
        match self {
            Sealing::PostQuantum([a, b]) => [a, b],
            Sealing::Classic([a, b]) => [a, b],
        }
    }
}

/// `ed25519:BASE64` text of a public signing key, as written in cards.
pub fn signing_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}", B64.encode(key.as_bytes()))
}

/// Parses `ed25519:BASE64` back into a public signing key.
pub fn parse_signing_key(text: &str) -> Result<VerifyingKey, String> {
    let b64 = text
        .trim()
        .strip_prefix("ed25519:")
        .ok_or("a signing key starts with `ed25519:` followed by 32 bytes in base64")?;
    let bytes = B64
        .decode(b64)
        .map_err(|_| "the signing key is not valid base64")?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an Ed25519 public key is exactly 32 bytes")?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "not a valid Ed25519 public key".to_string())?;
    if key.is_weak() {
        // A small-order point: signatures under it prove nothing.
        return Err("a weak (small-order) Ed25519 key, which no station generates; refused".into());
    }
    Ok(key)
}

/// Parses a classic age recipient (`age1…`).
pub fn parse_age_recipient(text: &str) -> Result<ClassicRecipient, String> {
    ClassicRecipient::from_str(text.trim())
        .map_err(|e| format!("not an age X25519 recipient (`age1…`): {e}"))
}

/// Parses a hybrid post-quantum age recipient (`age1pq1…`).
pub fn parse_pq_recipient(text: &str) -> Result<age::pq::Recipient, String> {
    age::pq::Recipient::from_str(text.trim()).map_err(|e| {
        format!("not an age post-quantum recipient (`age1pq1…`, 1,959 characters): {e}")
    })
}

/// The fingerprint operators read aloud to each other when they exchange
/// cards: SHA-256 over the name and every public key on the card, in
/// sixteen groups of four hex digits, so swapping any key shows. A card
/// with a post-quantum recipient is hashed under its own tag (card format
/// 2), so a card stripped of it in transit, to force classic sealing,
/// reads aloud differently too; a card without one keeps the fingerprint
/// it always had.
pub fn fingerprint(
    name: &StationName,
    signing: &VerifyingKey,
    age: &ClassicRecipient,
    pq: Option<&age::pq::Recipient>,
) -> String {
    let mut h = Sha256::new();
    h.update(if pq.is_some() {
        &b"hotline/2 card\n"[..]
    } else {
        &b"hotline/1 card\n"[..]
    });
    h.update(name.as_str().as_bytes());
    h.update(b"\n");
    h.update(signing_key_text(signing).as_bytes());
    h.update(b"\n");
    h.update(age.to_string().as_bytes());
    h.update(b"\n");
    if let Some(pq) = pq {
        h.update(pq.to_string().as_bytes());
        h.update(b"\n");
    }
    let hex = hex::encode_upper(h.finalize());
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares fingerprints ignoring spacing and case, as typed by a person.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_either_key() {
        let a = StationKeys::generate(StationName::new("WASHINGTON").expect("name")).expect("keys");
        let b = StationKeys::generate(StationName::new("WASHINGTON").expect("name")).expect("keys");
        let pa = a.public();
        let pb = b.public();
        let swapped_age = fingerprint(&pa.name, &pa.signing, &pb.age, pa.pq.as_ref());
        let swapped_sig = fingerprint(&pa.name, &pb.signing, &pa.age, pa.pq.as_ref());
        let swapped_pq = fingerprint(&pa.name, &pa.signing, &pa.age, pb.pq.as_ref());
        let stripped_pq = fingerprint(&pa.name, &pa.signing, &pa.age, None);
        assert_ne!(pa.fingerprint(), swapped_age);
        assert_ne!(pa.fingerprint(), swapped_sig);
        assert_ne!(pa.fingerprint(), swapped_pq);
        assert_ne!(pa.fingerprint(), stripped_pq);
        assert_eq!(pa.fingerprint().split(' ').count(), 16);
        assert!(same_fingerprint(
            &pa.fingerprint(),
            &pa.fingerprint().to_lowercase().replace(' ', "")
        ));
    }

    #[test]
    fn signing_key_text_round_trips() {
        let a = StationKeys::generate(StationName::new("MOSCOW").expect("name")).expect("keys");
        let text = signing_key_text(&a.signing.verifying_key());
        assert_eq!(parse_signing_key(&text), Ok(a.signing.verifying_key()));
        assert!(parse_signing_key("ed25519:AAAA").is_err());
        assert!(parse_signing_key("rsa:AAAA").is_err());
        // The identity point, a small-order key, is refused by name.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = format!("ed25519:{}", B64.encode(identity));
        let err = parse_signing_key(&weak).expect_err("a weak key");
        assert!(err.contains("weak (small-order)"), "{err}");
    }
}
