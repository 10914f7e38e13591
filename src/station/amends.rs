//! Corrections and withdrawals: a message whose template `amends` names
//! exactly one earlier message of ours, sent to the same peer. The journal
//! marks the earlier one CORRECTED or WITHDRAWN by it, on both sides.

use super::{Inner, StationError};
use crate::compose::Checked;
use crate::domain::{Message, MessageId};
use crate::store::Direction;

/// The message `m` corrects or withdraws, if it amends one.
pub(super) fn target(inner: &Inner, m: &Message) -> Option<MessageId> {
    let template = inner.catalog.get(&m.template.id, m.template.version)?;
    template.amends?;
    match m.references.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Why a peer's amending message `m` is refused: it names one of our
/// messages, which only we may correct or withdraw.
pub(super) fn foreign(inner: &Inner, m: &Message) -> Option<String> {
    let id = target(inner, m)?;
    let row = inner.journal.row(&id).ok()?;
    (row.direction == Direction::Out).then(|| {
        format!(
            "it amends {id}, a message of ours: a station corrects or withdraws only its own messages"
        )
    })
}

/// Refuses an amending message that does not name one of our own
/// messages to `peer`.
pub(super) fn check(inner: &Inner, checked: &Checked, peer: &str) -> Result<(), StationError> {
    let Some(kind) = checked.template.amends else {
        return Ok(());
    };
    let refused = |why: String| Err(StationError::Refused(why));
    let Some(id) = checked.references.first() else {
        return refused(format!("a {} names the message it amends", kind.as_str()));
    };
    match inner.journal.row(id) {
        Ok(row) if row.direction == Direction::In => refused(format!(
            "{} is a message {} sent us; a {} amends a message of ours only",
            crate::console::handle(&row),
            row.peer,
            kind.as_str()
        )),
        Ok(row) if row.peer.as_str() != peer => refused(format!(
            "{} went to {}; its {} goes to {} too",
            crate::console::handle(&row),
            row.peer,
            kind.as_str(),
            row.peer
        )),
        Ok(_) => Ok(()),
        Err(e) => refused(format!("the message it amends: {e}")),
    }
}
