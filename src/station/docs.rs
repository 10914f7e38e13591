//! The signed documents stations exchange besides messages: hello, receipt,
//! refusal, acknowledgement and link test. Each is signed under its own
//! domain-separation tag and checked against the peer's pinned key before
//! its body is parsed. Link tests are also sealed with age, so they prove
//! the whole path: keys, crypto and journal.
//!
//! Every body carries the revision it was written at
//! ([`crate::domain::REVISION`]); [`signed::Unverified::verify`] refuses a
//! newer one before [`open`] parses it, so [`DocError::UnsupportedRevision`]
//! names both revisions instead of a field this build does not know.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::age_io;
use crate::crypto::keys::seal_recipients;
use crate::crypto::signed::{self, Kind};
use crate::crypto::{PeerKeys, StationKeys};
use crate::domain::{MessageId, OperatorName, PROTOCOL, StationName};
use crate::store::audit::Head;

/// Why a peer's document was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("{0}")]
    Signature(signed::SignedError),
    /// Genuinely signed, but at a newer revision than this build reads:
    /// the peer runs a newer hotline.
    #[error(
        "{} revision {theirs}; this station reads up to revision {ours}; upgrade hotline",
        kind.noun()
    )]
    UnsupportedRevision { kind: Kind, theirs: u32, ours: u32 },
    #[error("the document is not well formed: {0}")]
    Body(String),
    #[error("the document is from {from} to {to}, not from {peer} to us")]
    Misaddressed {
        from: String,
        to: String,
        peer: String,
    },
    #[error("could not decrypt: {0}")]
    Sealing(String),
}

impl From<signed::SignedError> for DocError {
    fn from(e: signed::SignedError) -> Self {
        match e {
            signed::SignedError::UnsupportedRevision { kind, theirs, ours } => {
                DocError::UnsupportedRevision { kind, theirs, ours }
            }
            other => DocError::Signature(other),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloBody {
    pub protocol: String,
    /// [`crate::domain::REVISION`] when written; 0 from a build before
    /// revisions.
    #[serde(default)]
    pub revision: u32,
    pub from: StationName,
    pub to: StationName,
    pub time: Timestamp,
    pub boot: u64,
    pub highest_serial: u64,
    /// Serials released and then cancelled before sending: accounted for,
    /// never a gap.
    #[serde(default)]
    pub cancelled: Vec<u64>,
    pub audit_head: Option<Head>,
    /// The newest of the receiver's own audit heads the sender recorded:
    /// the receiver checks its log still holds it.
    #[serde(default)]
    pub your_head: Option<Head>,
    /// The highest of the receiver's serials the sender holds: a station
    /// restored from a backup continues above it (see `station::restore`).
    /// Absent before revision 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_serial: Option<u64>,
    /// The sender was restored from a backup taken then: the receiver
    /// re-sends the messages it receipted above `your_serial`, and the
    /// acknowledgements it delivered since about then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<Timestamp>,
}

/// What a receipt proves was stored: a message, an acknowledgement, or one
/// attachment of a message (stored, and checked against the size and
/// SHA-256 the signed message gives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptOf {
    Message,
    Ack,
    Attachment,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    pub protocol: String,
    /// [`crate::domain::REVISION`] when written; 0 from a build before
    /// revisions.
    #[serde(default)]
    pub revision: u32,
    pub of: ReceiptOf,
    pub id: MessageId,
    /// Which attachment of message `id`, for a receipt of an attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<u32>,
    pub from: StationName,
    pub to: StationName,
    pub stored_at: Timestamp,
    /// For a message: the SHA-256 of the sealed message as it was stored
    /// (from revision 2), so that the receipt proves what arrived, not
    /// only which id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_sha256: Option<String>,
}

/// Why a receiver refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalCode {
    BadSignature,
    UnknownTemplateField,
    Oversize,
    NotForUs,
    Malformed,
    /// The message is at a newer revision than the receiver reads.
    UnsupportedRevision,
    /// A correction or withdrawal names a message that is not the
    /// sender's own.
    BadReference,
}

impl RefusalCode {
    /// Whether the refusing station could not read the message (so could
    /// not name it).
    pub fn unreadable(self) -> bool {
        match self {
            RefusalCode::BadSignature
            | RefusalCode::Oversize
            | RefusalCode::NotForUs
            | RefusalCode::Malformed
            | RefusalCode::UnsupportedRevision => true,
            RefusalCode::UnknownTemplateField | RefusalCode::BadReference => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::BadSignature => "bad-signature",
            RefusalCode::UnknownTemplateField => "unknown-template-field",
            RefusalCode::Oversize => "oversize",
            RefusalCode::NotForUs => "not-for-us",
            RefusalCode::Malformed => "malformed",
            RefusalCode::UnsupportedRevision => "unsupported-revision",
            RefusalCode::BadReference => "bad-reference",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalBody {
    pub protocol: String,
    /// [`crate::domain::REVISION`] when written; 0 from a build before
    /// revisions.
    #[serde(default)]
    pub revision: u32,
    pub id: Option<MessageId>,
    /// Which attachment of message `id`, when one attachment is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<u32>,
    pub from: StationName,
    pub to: StationName,
    pub code: RefusalCode,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    pub protocol: String,
    /// [`crate::domain::REVISION`] when written; 0 from a build before
    /// revisions.
    #[serde(default)]
    pub revision: u32,
    pub id: MessageId,
    pub from: StationName,
    pub to: StationName,
    /// Validated as operator names are, as it is parsed.
    pub operator: OperatorName,
    pub at: Timestamp,
    /// The SHA-256 of the sealed message acknowledged (from revision 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_sha256: Option<String>,
}

/// How receipts and acknowledgements name the sealed message they answer.
pub fn sealed_sha256(sealed: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(sealed))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTestBody {
    pub protocol: String,
    /// [`crate::domain::REVISION`] when written; 0 from a build before
    /// revisions.
    #[serde(default)]
    pub revision: u32,
    pub reply: bool,
    pub nonce: String,
    pub from: StationName,
    pub to: StationName,
    pub time: Timestamp,
    pub highest_serial: u64,
    /// Serials released and then cancelled before sending: accounted for,
    /// never a gap.
    #[serde(default)]
    pub cancelled: Vec<u64>,
    pub audit_head: Option<Head>,
    /// The newest of the receiver's own audit heads the sender recorded:
    /// the receiver checks its log still holds it.
    #[serde(default)]
    pub your_head: Option<Head>,
}

/// Anything with a sender and a recipient, checked on arrival.
pub trait Addressed {
    fn from(&self) -> &StationName;
    fn to(&self) -> &StationName;
}

macro_rules! addressed {
    ($($t:ty),*) => {$(
        impl Addressed for $t {
            fn from(&self) -> &StationName { &self.from }
            fn to(&self) -> &StationName { &self.to }
        }
    )*};
}
/// How a station answers a peer's key rotation notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationState {
    /// Held until an operator here confirms the new fingerprint.
    Held,
    /// Confirmed: the new keys are pinned here.
    Confirmed,
    /// Refused (see `reason`), and audited here.
    Refused,
}

/// The signed answer to a key rotation notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationAnswerBody {
    pub protocol: String,
    pub revision: u32,
    pub from: StationName,
    pub to: StationName,
    /// The new fingerprint the answer is about (empty when the notice was
    /// refused before it could be read).
    pub fingerprint: String,
    pub state: RotationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub time: Timestamp,
}

addressed!(
    HelloBody,
    ReceiptBody,
    RefusalBody,
    AckBody,
    LinkTestBody,
    RotationAnswerBody
);

pub fn protocol() -> String {
    PROTOCOL.to_string()
}

/// Signs `body` as a document of `kind`.
pub fn sign<T: Serialize>(kind: Kind, body: &T, me: &StationKeys) -> Vec<u8> {
    let json = serde_json::to_vec(body).unwrap_or_default();
    signed::sign(kind, &me.name, &json, &me.signing)
}

/// Verifies a document from `peer` against its pinned key, then parses it
/// and checks it is from `peer` to `us`.
pub fn open<T: DeserializeOwned + Addressed>(
    kind: Kind,
    doc: &[u8],
    peer: &PeerKeys,
    us: &StationName,
) -> Result<T, DocError> {
    let (body, _) = signed::parse(doc)?.verify_any(kind, &peer.accepted())?;
    let parsed: T = serde_json::from_slice(body).map_err(|e| DocError::Body(e.to_string()))?;
    if parsed.from() != &peer.name || parsed.to() != us {
        return Err(DocError::Misaddressed {
            from: parsed.from().to_string(),
            to: parsed.to().to_string(),
            peer: peer.name.to_string(),
        });
    }
    Ok(parsed)
}

/// Signs and seals a link test to the peer (and to us, for the record).
pub fn seal_link_test(
    body: &LinkTestBody,
    me: &StationKeys,
    peer: &PeerKeys,
) -> Result<Vec<u8>, DocError> {
    let doc = sign(Kind::LinkTest, body, me);
    let sealing = seal_recipients(me, peer);
    age_io::encrypt(&doc, &sealing.recipients()).map_err(|e| DocError::Sealing(e.to_string()))
}

/// Opens a sealed link test from `peer`.
pub fn open_link_test(
    sealed: &[u8],
    me: &StationKeys,
    peer: &PeerKeys,
) -> Result<LinkTestBody, DocError> {
    let doc = age_io::decrypt(sealed, &me.identities(), 64 * 1024)
        .map_err(|e| DocError::Sealing(e.to_string()))?;
    open(Kind::LinkTest, &doc, peer, &me.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::REVISION;
    use serde_json::Value;

    fn keys(name: &str) -> StationKeys {
        StationKeys::generate(StationName::new(name).expect("name")).expect("keys")
    }

    /// `body` as JSON, changed by `edit`, signed by `from`.
    fn signed_with<T: Serialize>(
        kind: Kind,
        body: &T,
        from: &StationKeys,
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> Vec<u8> {
        let mut json = serde_json::to_value(body).expect("json");
        edit(json.as_object_mut().expect("an object"));
        signed::sign(
            kind,
            &from.name,
            &serde_json::to_vec(&json).expect("json"),
            &from.signing,
        )
    }

    /// Signs `body` as this build does and opens it at the peer; then opens
    /// it as an older build wrote it (no revision) and as a newer one
    /// (revision 99 and a field this build does not know).
    fn check<T>(kind: Kind, body: &T, revision_of: impl Fn(&T) -> u32)
    where
        T: Serialize + DeserializeOwned + Addressed + std::fmt::Debug,
    {
        let (w, m) = (keys("WASHINGTON"), keys("MOSCOW"));
        let doc = sign(kind, body, &w);
        let text = String::from_utf8(doc.clone()).expect("utf8");
        assert!(
            text.contains(&format!("\"revision\":{REVISION}")),
            "{kind:?} is signed with its revision: {text}"
        );
        let opened: T = open(kind, &doc, &w.public(), &m.name).expect("opens");
        assert_eq!(revision_of(&opened), REVISION, "{kind:?}");

        let older = signed_with(kind, body, &w, |o| {
            o.remove("revision");
        });
        let opened: T = open(kind, &older, &w.public(), &m.name).expect("an older body opens");
        assert_eq!(revision_of(&opened), 0, "{kind:?} from before revisions");

        let newer = signed_with(kind, body, &w, |o| {
            o.insert("revision".into(), Value::from(99));
            o.insert("label".into(), Value::from("SECRET"));
        });
        let refused = open::<T>(kind, &newer, &w.public(), &m.name).expect_err("refused");
        assert_eq!(
            refused,
            DocError::UnsupportedRevision {
                kind,
                theirs: 99,
                ours: REVISION
            }
        );
        assert_eq!(
            refused.to_string(),
            format!(
                "{} revision 99; this station reads up to revision {REVISION}; upgrade hotline",
                kind.noun()
            )
        );
        // CONTROL: the unknown field alone, at our revision, is what the
        // full parse refuses; the revision is what is read first.
        let unknown = signed_with(kind, body, &w, |o| {
            o.insert("label".into(), Value::from("SECRET"));
        });
        assert!(matches!(
            open::<T>(kind, &unknown, &w.public(), &m.name),
            Err(DocError::Body(_))
        ));
    }

    fn name(s: &str) -> StationName {
        StationName::new(s).expect("name")
    }

    #[test]
    fn every_document_is_written_at_this_revision_and_older_ones_still_open() {
        let (from, to) = (name("WASHINGTON"), name("MOSCOW"));
        let id = MessageId::new();
        let now = Timestamp::now();
        check(
            Kind::Hello,
            &HelloBody {
                protocol: protocol(),
                revision: REVISION,
                from: from.clone(),
                to: to.clone(),
                time: now,
                boot: 1,
                highest_serial: 0,
                cancelled: Vec::new(),
                audit_head: None,
                your_head: None,
                your_serial: Some(0),
                restored_from: None,
            },
            |b| b.revision,
        );
        check(
            Kind::Receipt,
            &ReceiptBody {
                protocol: protocol(),
                revision: REVISION,
                of: ReceiptOf::Message,
                id,
                attachment: None,
                from: from.clone(),
                to: to.clone(),
                stored_at: now,
                sealed_sha256: Some(sealed_sha256(b"sealed")),
            },
            |b| b.revision,
        );
        check(
            Kind::Refusal,
            &RefusalBody {
                protocol: protocol(),
                revision: REVISION,
                id: Some(id),
                attachment: None,
                from: from.clone(),
                to: to.clone(),
                code: RefusalCode::UnsupportedRevision,
                detail: "message revision 7; this station reads up to revision 1".into(),
            },
            |b| b.revision,
        );
        check(
            Kind::Ack,
            &AckBody {
                protocol: protocol(),
                revision: REVISION,
                id,
                from: from.clone(),
                to: to.clone(),
                operator: OperatorName::new("op").expect("a valid name"),
                at: now,
                sealed_sha256: None,
            },
            |b| b.revision,
        );
        check(
            Kind::LinkTest,
            &LinkTestBody {
                protocol: protocol(),
                revision: REVISION,
                reply: false,
                nonce: "n".into(),
                from,
                to,
                time: now,
                highest_serial: 0,
                cancelled: Vec::new(),
                audit_head: None,
                your_head: None,
            },
            |b| b.revision,
        );
    }

    #[test]
    fn the_refusal_code_for_a_newer_revision_is_spelt_on_the_wire() {
        let json = serde_json::to_string(&RefusalCode::UnsupportedRevision).expect("json");
        assert_eq!(json, "\"unsupported-revision\"");
        assert_eq!(
            RefusalCode::UnsupportedRevision.as_str(),
            "unsupported-revision"
        );
    }

    #[test]
    fn a_sealed_link_test_at_a_newer_revision_is_refused_by_revision() {
        let (w, m) = (keys("WASHINGTON"), keys("MOSCOW"));
        let mut body = LinkTestBody {
            protocol: protocol(),
            revision: REVISION,
            reply: false,
            nonce: "n".into(),
            from: w.name.clone(),
            to: m.name.clone(),
            time: Timestamp::now(),
            highest_serial: 0,
            cancelled: Vec::new(),
            audit_head: None,
            your_head: None,
        };
        let sealed = seal_link_test(&body, &w, &m.public()).expect("seals");
        let opened = open_link_test(&sealed, &m, &w.public()).expect("CONTROL: opens");
        assert_eq!(opened.revision, REVISION);
        body.revision = REVISION + 1;
        let sealed = seal_link_test(&body, &w, &m.public()).expect("seals");
        assert!(matches!(
            open_link_test(&sealed, &m, &w.public()),
            Err(DocError::UnsupportedRevision { kind: Kind::LinkTest, theirs, .. }) if theirs == REVISION + 1
        ));
    }
}
