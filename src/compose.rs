//! From an operator's draft to a released message: check the field values
//! against the template, build the message with its serial and the sender's
//! own rendering, seal it on the caller's thread, and store it in the
//! outbox in one journal write.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::crypto::{PeerKeys, StationKeys, seal};
use crate::domain::{
    AttachmentRef, Dtg, Language, Message, MessageId, OperatorName, Original, PROTOCOL, Precedence,
    REVISION, StationName, TemplateRef,
};
use crate::store::{Journal, Pending, Released, StagedAttachment};
use crate::templates::{Catalog, Template, ValueError, render};

/// What an operator filled in: raw text per field, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub template_id: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// `None` takes the template's default precedence.
    #[serde(default)]
    pub precedence: Option<Precedence>,
    #[serde(default)]
    pub text: String,
    /// The language the free text is written in; `None` takes the
    /// operator's (the station's) language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_language: Option<Language>,
    /// The security marking; `None` takes the station's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub references: Vec<MessageId>,
    #[serde(default)]
    pub exercise: bool,
}

/// Why a draft cannot be released yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    #[error("there is no template `{0}`")]
    UnknownTemplate(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Fields(Vec<ValueError>),
    #[error("free text: control character U+{0:04X} is not allowed")]
    BadText(u32),
    #[error(
        "a {0} names exactly one earlier message of ours (its handle, such as to:MOSCOW/6); this one names {1}"
    )]
    Amends(&'static str, usize),
}

/// A draft whose values have been checked and made canonical.
#[derive(Clone, Debug)]
pub struct Checked {
    pub template: Template,
    pub fields: BTreeMap<String, String>,
    pub precedence: Precedence,
    pub text: String,
    pub text_language: Option<Language>,
    /// As the writer chose it; the station checks it against its policy
    /// and fills in its default.
    pub label: Option<String>,
    pub references: Vec<MessageId>,
    pub exercise: bool,
    /// Filled in by the station once the files are sealed.
    pub attachments: Vec<AttachmentRef>,
}

/// Checks every field of `draft` (all problems at once) against the newest
/// version of its template.
pub fn check(draft: &Draft, catalog: &Catalog, now: Timestamp) -> Result<Checked, DraftError> {
    let template = catalog
        .latest(&draft.template_id)
        .ok_or_else(|| DraftError::UnknownTemplate(draft.template_id.clone()))?;
    let mut errors = Vec::new();
    let mut fields = BTreeMap::new();
    for (name, raw) in &draft.fields {
        match template.field(name) {
            None => errors.push(ValueError::Unknown {
                field: name.clone(),
                template: template.id.clone(),
            }),
            Some(_) if raw.trim().is_empty() => {}
            Some(f) => match f.canonicalize(raw, now) {
                Ok(v) => {
                    fields.insert(name.clone(), v);
                }
                Err(e) => errors.push(e),
            },
        }
    }
    for f in &template.fields {
        if f.required
            && !fields.contains_key(&f.name)
            && !errors
                .iter()
                .any(|e| matches!(e, ValueError::Invalid { field, .. } if *field == f.name))
        {
            errors.push(ValueError::Missing {
                field: f.name.clone(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(DraftError::Fields(errors));
    }
    if let Some(kind) = template.amends
        && draft.references.len() != 1
    {
        return Err(DraftError::Amends(kind.as_str(), draft.references.len()));
    }
    let text = draft.text.trim_end().to_string();
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DraftError::BadText(u32::from(c)));
    }
    Ok(Checked {
        template: template.clone(),
        fields,
        precedence: draft.precedence.unwrap_or(template.precedence),
        text,
        text_language: draft.text_language,
        label: draft.label.as_ref().map(|l| l.trim().to_string()),
        references: draft.references.clone(),
        exercise: draft.exercise,
        attachments: Vec::new(),
    })
}

/// Who releases, from where, in which language.
#[derive(Clone, Debug)]
pub struct Origin {
    pub station: StationName,
    pub operator: OperatorName,
    /// The second operator who confirmed a FLASH release (two-person rule);
    /// it is signed into the message.
    pub second_operator: Option<OperatorName>,
    pub language: Language,
}

/// The complete message for `serial`, with the sender's own rendering.
pub fn build(
    checked: &Checked,
    origin: &Origin,
    to: &StationName,
    serial: u64,
    now: Timestamp,
) -> Message {
    // Truncated, not rounded: a release time must never lie after the moment
    // the message was stored (or, at :59.5, show the next minute).
    // The original is in the operator's language, or in the template's
    // nearest to it where the template lacks that one.
    let lang = checked.template.rendered_in(origin.language);
    let now = now
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(now);
    let mut message = Message {
        protocol: PROTOCOL.to_string(),
        revision: REVISION,
        id: MessageId::new(),
        serial,
        dtg: Dtg(now).to_string(),
        released_at: now,
        from: origin.station.clone(),
        to: to.clone(),
        precedence: checked.precedence,
        exercise: checked.exercise,
        template: TemplateRef {
            id: checked.template.id.clone(),
            version: checked.template.version,
        },
        fields: checked.fields.clone(),
        text: checked.text.clone(),
        text_language: Some(checked.text_language.unwrap_or(origin.language)),
        label: checked.label.clone(),
        references: checked.references.clone(),
        attachments: checked.attachments.clone(),
        operator: origin.operator.clone(),
        second_operator: origin.second_operator.clone(),
        original: Original {
            language: lang.code().to_string(),
            text: String::new(),
        },
    };
    message.original.text = render(&message, &checked.template, lang, origin.language);
    message
}

/// Releases a checked draft to `peer`: a serial is reserved, the message
/// built and sealed on this thread, then stored in one journal write. It is
/// released when the returned write completes.
pub fn release(
    journal: &Journal,
    keys: Arc<StationKeys>,
    peer: PeerKeys,
    checked: Checked,
    origin: Origin,
) -> Pending<(Released, Message)> {
    release_with(journal, keys, peer, checked, origin, Vec::new())
}

/// [`release`] for a draft whose attachments are sealed already: `staged`
/// holds their files, in the order of `checked.attachments`.
pub fn release_with(
    journal: &Journal,
    keys: Arc<StationKeys>,
    peer: PeerKeys,
    checked: Checked,
    origin: Origin,
    staged: Vec<StagedAttachment>,
) -> Pending<(Released, Message)> {
    let to = peer.name.clone();
    journal.release_with(to.clone(), staged, move |serial| {
        let message = build(&checked, &origin, &to, serial, Timestamp::now());
        let sealed = seal(&message, &keys, &peer).map_err(|e| e.to_string())?;
        Ok((message, sealed))
    })
}
