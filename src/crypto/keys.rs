//! A station's two keys — Ed25519 for signing (and TLS), age X25519 for
//! decryption — and the public half that peers pin.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::StationName;

/// This station's secret keys. Both zeroise themselves on drop.
pub struct StationKeys {
    pub name: StationName,
    pub signing: SigningKey,
    pub age: age::x25519::Identity,
}

/// A peer's public keys, as pinned from its station card.
#[derive(Clone, Debug)]
pub struct PeerKeys {
    pub name: StationName,
    pub signing: VerifyingKey,
    pub age: age::x25519::Recipient,
}

impl StationKeys {
    /// Fresh keys from the operating system's random source.
    pub fn generate(name: StationName) -> Result<Self, getrandom::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())?;
        Ok(StationKeys {
            name,
            signing: SigningKey::from_bytes(&seed),
            age: age::x25519::Identity::generate(),
        })
    }

    pub fn public(&self) -> PeerKeys {
        PeerKeys {
            name: self.name.clone(),
            signing: self.signing.verifying_key(),
            age: self.age.to_public(),
        }
    }
}

impl PeerKeys {
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.name, &self.signing, &self.age)
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

/// Parses an age recipient (`age1…`).
pub fn parse_age_recipient(text: &str) -> Result<age::x25519::Recipient, String> {
    age::x25519::Recipient::from_str(text.trim())
        .map_err(|e| format!("not an age X25519 recipient (`age1…`): {e}"))
}

/// The fingerprint operators read aloud to each other when they exchange
/// cards: SHA-256 over the name and both public keys, in sixteen groups of
/// four hex digits. Both keys are covered, so swapping either one shows.
pub fn fingerprint(
    name: &StationName,
    signing: &VerifyingKey,
    age: &age::x25519::Recipient,
) -> String {
    let mut h = Sha256::new();
    h.update(b"hotline/1 card\n");
    h.update(name.as_str().as_bytes());
    h.update(b"\n");
    h.update(signing_key_text(signing).as_bytes());
    h.update(b"\n");
    h.update(age.to_string().as_bytes());
    h.update(b"\n");
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
        let swapped_age = fingerprint(&pa.name, &pa.signing, &pb.age);
        let swapped_sig = fingerprint(&pa.name, &pb.signing, &pa.age);
        assert_ne!(pa.fingerprint(), swapped_age);
        assert_ne!(pa.fingerprint(), swapped_sig);
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
