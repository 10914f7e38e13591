//! Signed documents: readable text with a short header and a body.
//!
//! ```text
//! hotline/1 message
//! signer: WASHINGTON
//! signature: <base64 Ed25519 signature>
//!
//! <body: pretty-printed JSON>
//! ```
//!
//! The signature covers the document without its signature line: the tag
//! (domain separation between kinds — the station key also serves TLS), the
//! signer and the exact body bytes. Verification checks those bytes before
//! anything parses the body; nothing is ever re-serialised to be verified.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::domain::StationName;

/// The kinds of signed object. Each has its own domain-separation tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message,
    Receipt,
    Refusal,
    Ack,
    LinkTest,
    Hello,
    Checkpoint,
    /// A trainee station's request to join a tabletop white cell.
    Join,
    /// The white cell's answer to it.
    JoinAnswer,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Message,
        Kind::Receipt,
        Kind::Refusal,
        Kind::Ack,
        Kind::LinkTest,
        Kind::Hello,
        Kind::Checkpoint,
        Kind::Join,
        Kind::JoinAnswer,
    ];

    pub fn tag(self) -> &'static str {
        match self {
            Kind::Message => "hotline/1 message",
            Kind::Receipt => "hotline/1 receipt",
            Kind::Refusal => "hotline/1 refusal",
            Kind::Ack => "hotline/1 ack",
            Kind::LinkTest => "hotline/1 link-test",
            Kind::Hello => "hotline/1 hello",
            Kind::Checkpoint => "hotline/1 audit-checkpoint",
            Kind::Join => "hotline-exercise/1 join",
            Kind::JoinAnswer => "hotline-exercise/1 join-answer",
        }
    }

    fn from_tag(tag: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

/// Why a signed document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    #[error("not a hotline signed document: {0}")]
    Malformed(&'static str),
    #[error("expected a {expected:?} but this is a {found:?}")]
    WrongKind { expected: Kind, found: Kind },
    #[error("the signature does not verify against the key pinned for {signer}")]
    BadSignature { signer: String },
}

/// Signs `body` as a document of `kind` from `signer`.
pub fn sign(kind: Kind, signer: &StationName, body: &[u8], key: &SigningKey) -> Vec<u8> {
    let head = format!("{}\nsigner: {}\n", kind.tag(), signer);
    let signature = key.sign(&signed_bytes(&head, body));
    let mut doc = Vec::with_capacity(head.len() + body.len() + 110);
    doc.extend_from_slice(head.as_bytes());
    doc.extend_from_slice(b"signature: ");
    doc.extend_from_slice(B64.encode(signature.to_bytes()).as_bytes());
    doc.extend_from_slice(b"\n\n");
    doc.extend_from_slice(body);
    doc
}

fn signed_bytes(head: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(head.len() + 1 + body.len());
    v.extend_from_slice(head.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

/// A parsed but not yet verified document. Only `signer` may be looked at
/// before verifying, to choose the pinned key to verify with.
#[derive(Debug)]
pub struct Unverified<'a> {
    kind: Kind,
    head: &'a str,
    signer: &'a str,
    signature: Signature,
    body: &'a [u8],
}

fn take_line<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&rest[..end]).ok()?;
    *rest = &rest[end + 1..];
    Some(line)
}

/// Splits a document into header and body without trusting either.
pub fn parse(doc: &[u8]) -> Result<Unverified<'_>, SignedError> {
    let mut rest = doc;
    let tag = take_line(&mut rest).ok_or(SignedError::Malformed("no tag line"))?;
    let kind = Kind::from_tag(tag).ok_or(SignedError::Malformed("unknown tag"))?;
    let signer_line = take_line(&mut rest).ok_or(SignedError::Malformed("no signer line"))?;
    let signer = signer_line
        .strip_prefix("signer: ")
        .ok_or(SignedError::Malformed("no signer line"))?;
    let head_len = tag.len() + 1 + signer_line.len() + 1;
    let head = std::str::from_utf8(&doc[..head_len])
        .map_err(|_| SignedError::Malformed("header is not UTF-8"))?;
    let sig_line = take_line(&mut rest).ok_or(SignedError::Malformed("no signature line"))?;
    let sig_b64 = sig_line
        .strip_prefix("signature: ")
        .ok_or(SignedError::Malformed("no signature line"))?;
    let sig_bytes = B64
        .decode(sig_b64)
        .map_err(|_| SignedError::Malformed("signature is not base64"))?;
    let sig_bytes: [u8; 64] = sig_bytes
        .try_into()
        .map_err(|_| SignedError::Malformed("signature is not 64 bytes"))?;
    let blank = take_line(&mut rest).ok_or(SignedError::Malformed("no blank line after header"))?;
    if !blank.is_empty() {
        return Err(SignedError::Malformed("no blank line after header"));
    }
    Ok(Unverified {
        kind,
        head,
        signer,
        signature: Signature::from_bytes(&sig_bytes),
        body: rest,
    })
}

impl<'a> Unverified<'a> {
    /// The station that claims to have signed this. Not yet proven.
    pub fn claimed_signer(&self) -> &'a str {
        self.signer
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Verifies the exact signed bytes against `key` and returns the body.
    pub fn verify(self, expected: Kind, key: &VerifyingKey) -> Result<&'a [u8], SignedError> {
        if self.kind != expected {
            return Err(SignedError::WrongKind {
                expected,
                found: self.kind,
            });
        }
        key.verify_strict(&signed_bytes(self.head, self.body), &self.signature)
            .map_err(|_| SignedError::BadSignature {
                signer: self.signer.to_string(),
            })?;
        Ok(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn round_trip_and_tamper() {
        let signer = StationName::new("WASHINGTON").expect("name");
        let doc = sign(Kind::Receipt, &signer, b"{\"a\":1}", &key(1));
        let parsed = parse(&doc).expect("parses");
        assert_eq!(parsed.claimed_signer(), "WASHINGTON");
        assert_eq!(
            parsed.verify(Kind::Receipt, &key(1).verifying_key()),
            Ok(&b"{\"a\":1}"[..])
        );

        let wrong_kind = parse(&doc)
            .expect("parses")
            .verify(Kind::Ack, &key(1).verifying_key());
        assert!(matches!(wrong_kind, Err(SignedError::WrongKind { .. })));
        let wrong_key = parse(&doc)
            .expect("parses")
            .verify(Kind::Receipt, &key(2).verifying_key());
        assert!(matches!(wrong_key, Err(SignedError::BadSignature { .. })));

        let mut body_flip = doc.clone();
        let last = body_flip.len() - 2;
        body_flip[last] = b'2';
        let r = parse(&body_flip)
            .expect("parses")
            .verify(Kind::Receipt, &key(1).verifying_key());
        assert!(matches!(r, Err(SignedError::BadSignature { .. })));

        let renamed = String::from_utf8(doc.clone())
            .expect("utf8")
            .replace("signer: WASHINGTON", "signer: MOSCOW");
        let r = parse(renamed.as_bytes())
            .expect("parses")
            .verify(Kind::Receipt, &key(1).verifying_key());
        assert!(matches!(r, Err(SignedError::BadSignature { .. })));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for doc in [
            &b""[..],
            b"hello",
            b"hotline/1 message\n",
            b"hotline/1 message\nsigner: X\nsignature: !!\n\n{}",
            b"\xff\xfe\n",
        ] {
            assert!(matches!(parse(doc), Err(SignedError::Malformed(_))));
        }
    }
}
