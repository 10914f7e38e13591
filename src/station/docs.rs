//! The signed documents stations exchange besides messages: hello, receipt,
//! refusal, acknowledgement and link test. Each is signed under its own
//! domain-separation tag and checked against the peer's pinned key before
//! its body is parsed. Link tests are also sealed with age, so they prove
//! the whole path: keys, crypto and journal.

use age::{Identity, Recipient};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::age_io;
use crate::crypto::signed::{self, Kind};
use crate::crypto::{PeerKeys, StationKeys};
use crate::domain::{MessageId, PROTOCOL, StationName};
use crate::store::audit::Head;

/// Why a peer's document was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("{0}")]
    Signature(#[from] signed::SignedError),
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloBody {
    pub protocol: String,
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
    pub of: ReceiptOf,
    pub id: MessageId,
    /// Which attachment of message `id`, for a receipt of an attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<u32>,
    pub from: StationName,
    pub to: StationName,
    pub stored_at: Timestamp,
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
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::BadSignature => "bad-signature",
            RefusalCode::UnknownTemplateField => "unknown-template-field",
            RefusalCode::Oversize => "oversize",
            RefusalCode::NotForUs => "not-for-us",
            RefusalCode::Malformed => "malformed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalBody {
    pub protocol: String,
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
    pub id: MessageId,
    pub from: StationName,
    pub to: StationName,
    pub operator: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTestBody {
    pub protocol: String,
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
addressed!(HelloBody, ReceiptBody, RefusalBody, AckBody, LinkTestBody);

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
    let body = signed::parse(doc)?.verify(kind, &peer.signing)?;
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
    let own = me.age.to_public();
    let recipients: [&dyn Recipient; 2] = [&peer.age, &own];
    age_io::encrypt(&doc, &recipients).map_err(|e| DocError::Sealing(e.to_string()))
}

/// Opens a sealed link test from `peer`.
pub fn open_link_test(
    sealed: &[u8],
    me: &StationKeys,
    peer: &PeerKeys,
) -> Result<LinkTestBody, DocError> {
    let ids: [&dyn Identity; 1] = [&me.age];
    let doc =
        age_io::decrypt(sealed, &ids, 64 * 1024).map_err(|e| DocError::Sealing(e.to_string()))?;
    open(Kind::LinkTest, &doc, peer, &me.name)
}
