//! The security marking of a message being released: the writer's choice
//! or the station's default, known to the station's policy, within what
//! the peer may receive, and never lower than a message it answers.

use super::{Inner, StationError};
use crate::compose::Checked;
use crate::sanitize::inert;

/// The marking `checked` is released under to `peer`, or why it cannot be.
/// With no marking chosen it is the station's default, raised to the
/// highest marking among the messages it references.
pub(super) fn marking(
    inner: &Inner,
    checked: &Checked,
    peer: &str,
) -> Result<String, StationError> {
    let policy = &inner.config.labels;
    let refused = |why: String| Err(StationError::Refused(why));
    let mut referenced: Vec<(String, String)> = Vec::new();
    for id in &checked.references {
        if let Ok(row) = inner.journal.row(id)
            && let Some(label) = row.label.clone()
        {
            referenced.push((crate::console::handle(&row), label));
        }
    }
    let label = match &checked.label {
        Some(chosen) => chosen.clone(),
        None => referenced
            .iter()
            .filter_map(|(_, l)| policy.rank(l).map(|r| (r, l)))
            .max()
            .filter(|(r, _)| policy.rank(&policy.default).is_none_or(|d| *r > d))
            .map_or(policy.default.clone(), |(_, l)| l.clone()),
    };
    let Some(rank) = policy.rank(&label) else {
        return refused(format!(
            "`{}` is not a marking of this station; use one of {}",
            inert(&label),
            policy.listed()
        ));
    };
    if let Some(max) = inner.config.peer(peer).and_then(|p| p.max_label.as_deref())
        && policy.rank(max).is_some_and(|m| rank > m)
    {
        return refused(format!(
            "{peer} may receive messages marked up to {max}; this one is marked {label}. Mark it {max} or lower, or do not send it to {peer}"
        ));
    }
    for (handle, theirs) in &referenced {
        match policy.rank(theirs) {
            Some(r) if r > rank => {
                return refused(format!(
                    "{handle} is marked {theirs}; a message that answers or corrects it cannot carry a lower marking than that (this one: {label})"
                ));
            }
            None if *theirs != label => {
                return refused(format!(
                    "{handle} is marked `{}`, which this station's [labels] markings do not list; add it there, in its place, to answer it under that marking",
                    inert(theirs)
                ));
            }
            _ => {}
        }
    }
    Ok(label)
}
