//! The message: one released communication, exactly as it is signed. Every
//! field here is covered by the sender's signature.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Language, OperatorName, Precedence, StationName};

/// A message's unique id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub Uuid);

impl MessageId {
    pub fn new() -> Self {
        MessageId(Uuid::now_v7())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(MessageId)
    }
}

/// Which template (and which version of it) the fields belong to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub id: String,
    pub version: u32,
}

/// An attachment as the signed message lists it: name, size and the SHA-256
/// of its plaintext. The content travels separately.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The sender's own rendering of the message in the sender's language: the
/// authoritative original.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Original {
    pub language: String,
    pub text: String,
}

/// One message. Field values are kept in the canonical text form of their
/// type (see `templates::value`), so both ends sign and render the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub protocol: String,
    /// The revision of this body ([`super::REVISION`] when written); 0 for
    /// a message from before revisions.
    #[serde(default)]
    pub revision: u32,
    pub id: MessageId,
    pub serial: u64,
    pub dtg: String,
    pub released_at: Timestamp,
    pub from: StationName,
    pub to: StationName,
    pub precedence: Precedence,
    pub exercise: bool,
    pub template: TemplateRef,
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub text: String,
    /// The language the free text (`text`, and the template's free-text
    /// fields) is written in, as the writer chose it. Absent from a sender
    /// before revision 3, whose free text is taken to be in its station's
    /// language (`original.language`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_language: Option<Language>,
    /// The security marking, inside the signature so it cannot be changed
    /// on the way; from the sender's label policy. Absent from a sender
    /// before revision 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub references: Vec<MessageId>,
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
    pub operator: OperatorName,
    /// The second operator who confirmed a FLASH release under the
    /// two-person rule. It is inside the signed message, like the releaser
    /// in MMHS practice; absent (and not serialised) when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_operator: Option<OperatorName>,
    pub original: Original,
}
