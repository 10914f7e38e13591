//! Signed documents: readable text with a short header and a body.
//!
//! ```text
//! hotline/1 message
//! signer: WASHINGTON
//! signature: <base64 Ed25519 signature>
//!
//! <body: JSON>
//! ```
//!
//! The signature covers the document without its signature line: the tag
//! (domain separation between kinds — the station key also serves TLS), the
//! signer and the exact body bytes. Verification checks those bytes before
//! anything parses the body; nothing is ever re-serialised to be verified.
//!
//! Every body is a JSON object stating the revision it was written at
//! ([`REVISION`]). Verifying also reads that revision from the verified
//! bytes, so a body newer than this build is refused here, once for every
//! kind, before any caller's full parse (which refuses unknown fields)
//! could turn it into a vague "not well formed".

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Deserialize;

use crate::domain::{REVISION, StationName};

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
    /// A station's notice that it has new keys, signed with the key its
    /// peers pin; it wraps a [`Kind::RotationKey`] document.
    Rotation,
    /// The inner part of a rotation notice, signed with the new key.
    RotationKey,
    /// A peer's answer to a rotation notice: held, or confirmed.
    RotationAnswer,
    /// The manifest of a backup: what it holds, signed by the station.
    Backup,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Message,
        Kind::Receipt,
        Kind::Refusal,
        Kind::Ack,
        Kind::LinkTest,
        Kind::Hello,
        Kind::Checkpoint,
        Kind::Join,
        Kind::JoinAnswer,
        Kind::Rotation,
        Kind::RotationKey,
        Kind::RotationAnswer,
        Kind::Backup,
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
            Kind::Rotation => "hotline/2 key-rotation",
            Kind::RotationKey => "hotline/2 key-rotation new-key",
            Kind::RotationAnswer => "hotline/2 key-rotation answer",
            Kind::Backup => "hotline/3 backup manifest",
        }
    }

    /// What a person calls a document of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Receipt => "receipt",
            Kind::Refusal => "refusal",
            Kind::Ack => "acknowledgement",
            Kind::LinkTest => "link test",
            Kind::Hello => "hello",
            Kind::Checkpoint => "audit checkpoint",
            Kind::Join => "request to join",
            Kind::JoinAnswer => "answer to a request to join",
            Kind::Rotation => "key rotation notice",
            Kind::RotationKey => "key rotation notice (new key's part)",
            Kind::RotationAnswer => "answer to a key rotation notice",
            Kind::Backup => "backup manifest",
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
    /// Genuinely signed, but written at a newer revision than this build
    /// reads: it may say things this build would not understand.
    #[error(
        "{} revision {theirs}; this station reads up to revision {ours}; upgrade hotline",
        kind.noun()
    )]
    UnsupportedRevision { kind: Kind, theirs: u32, ours: u32 },
}

/// The one field read from a body before it is parsed in full. It does not
/// refuse unknown fields: a newer body may carry fields this build does not
/// know, and must still be recognised as newer.
#[derive(Deserialize)]
struct Rev {
    #[serde(default)]
    revision: u32,
}

/// Refuses a verified `body` written at a revision newer than [`REVISION`].
/// A body that is not a JSON object with a numeric revision passes: the
/// caller's full parse refuses it with its own, precise reason.
fn check_revision(kind: Kind, body: &[u8]) -> Result<(), SignedError> {
    match serde_json::from_slice::<Rev>(body) {
        Ok(Rev { revision }) if revision > REVISION => Err(SignedError::UnsupportedRevision {
            kind,
            theirs: revision,
            ours: REVISION,
        }),
        _ => Ok(()),
    }
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

    /// Verifies the exact signed bytes against `key`, checks that their
    /// revision is one this build reads, and returns the body.
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
        // Only now, from the bytes just verified: a body that is not
        // genuinely signed is a bad signature, whatever revision it claims.
        check_revision(self.kind, self.body)?;
        Ok(self.body)
    }

    /// [`Unverified::verify`] against the first of `keys` that signed it,
    /// returned beside the body.
    pub fn verify_any(
        self,
        expected: Kind,
        keys: &[VerifyingKey],
    ) -> Result<(&'a [u8], VerifyingKey), SignedError> {
        let signed = signed_bytes(self.head, self.body);
        let Some(key) = keys
            .iter()
            .find(|k| k.verify_strict(&signed, &self.signature).is_ok())
        else {
            if self.kind != expected {
                return Err(SignedError::WrongKind {
                    expected,
                    found: self.kind,
                });
            }
            return Err(SignedError::BadSignature {
                signer: self.signer.to_string(),
            });
        };
        let key = *key;
        self.verify(expected, &key).map(|body| (body, key))
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
    fn a_newer_revision_is_refused_after_the_signature_and_older_ones_pass() {
        let signer = StationName::new("WASHINGTON").expect("name");
        let verify = |body: &[u8]| {
            let doc = sign(Kind::Ack, &signer, body, &key(1));
            parse(&doc)
                .expect("parses")
                .verify(Kind::Ack, &key(1).verifying_key())
                .map(<[u8]>::to_vec)
        };
        let newer = format!("{{\"revision\":{},\"unknown\":true}}", REVISION + 98);
        assert_eq!(
            verify(newer.as_bytes()),
            Err(SignedError::UnsupportedRevision {
                kind: Kind::Ack,
                theirs: REVISION + 98,
                ours: REVISION,
            })
        );
        let words = verify(newer.as_bytes()).expect_err("refused").to_string();
        assert_eq!(
            words,
            format!(
                "acknowledgement revision {}; this station reads up to revision {REVISION}; \
                 upgrade hotline",
                REVISION + 98
            )
        );
        // CONTROL: our own revision, none at all (revision 0), and a body
        // that is not JSON (left to the caller's parse) all pass.
        let ours = format!("{{\"revision\":{REVISION}}}");
        for body in [ours.as_bytes(), b"{\"a\":1}", b"not json"] {
            assert_eq!(verify(body).as_deref(), Ok(body));
        }
        // A forged newer body is a bad signature, not a revision question.
        let doc = sign(Kind::Ack, &signer, newer.as_bytes(), &key(1));
        let r = parse(&doc)
            .expect("parses")
            .verify(Kind::Ack, &key(2).verifying_key());
        assert!(matches!(r, Err(SignedError::BadSignature { .. })), "{r:?}");
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
