//! What names each message in lists and notices: the value of its
//! template's summary field ([`crate::templates::Catalog::summary`]). The
//! journal holds messages sealed only, so the station opens each once, in
//! memory, and keeps the summaries there; nothing is written in clear. A
//! new message is noted as it is stored; the ones already in the journal
//! are opened in the background after the start, and consoles are asked
//! to resync when that is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Event, Inner};
use crate::domain::{Message, MessageId};
use crate::store::{Direction, MessageRow};

/// Each message's summary, by id (`None`: it has none, or did not open).
#[derive(Default)]
pub(super) struct Subjects(Mutex<HashMap<MessageId, Option<String>>>);

impl Subjects {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Option<String>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn note(&self, inner: &Inner, message: &Message) {
        let summary = inner.catalog.summary(message);
        self.map().insert(message.id, summary);
    }

    /// The row with its subject, where it is known.
    pub(super) fn dress(&self, row: MessageRow) -> MessageRow {
        dressed(&self.map(), row)
    }

    /// The known subjects of `ids`.
    pub(super) fn of(&self, ids: &[MessageId]) -> Vec<(MessageId, String)> {
        let map = self.map();
        ids.iter()
            .filter_map(|id| map.get(id).cloned().flatten().map(|s| (*id, s)))
            .collect()
    }

    pub(super) fn dress_all(&self, rows: Vec<MessageRow>) -> Vec<MessageRow> {
        let map = self.map();
        rows.into_iter().map(|r| dressed(&map, r)).collect()
    }
}

fn dressed(map: &HashMap<MessageId, Option<String>>, mut row: MessageRow) -> MessageRow {
    row.subject = map.get(&row.id).cloned().flatten();
    row
}

/// Whether a message holds `query` (already lowercase) in its subject,
/// field values (and the labels of its choices), free text, the sender's
/// original, or its rendering in any language: an operator may search in
/// either language.
pub(super) fn holds(inner: &Inner, message: &Message, query: &str) -> bool {
    let has = |text: &str| text.to_lowercase().contains(query);
    if message.fields.values().any(|v| has(v)) || has(&message.text) || has(&message.original.text)
    {
        return true;
    }
    let Some(template) = inner
        .catalog
        .get(&message.template.id, message.template.version)
    else {
        return false;
    };
    let choice_labels = template.fields.iter().any(|f| {
        let crate::templates::FieldKind::Choice(choices) = &f.kind else {
            return false;
        };
        let Some(value) = message.fields.get(&f.name) else {
            return false;
        };
        choices
            .iter()
            .filter(|c| &c.value == value)
            .any(|c| c.labels.languages().any(|l| has(c.label(l))))
    });
    choice_labels
        || template.languages.iter().any(|l| {
            has(&crate::templates::render(
                message, template, l.language, l.language,
            ))
        })
}

/// Opens every stored message not yet summarised (on a blocking thread),
/// then asks subscribers to resync so that lists show the subjects.
pub(super) async fn fill(inner: Arc<Inner>) {
    let worker = inner.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let mut opened = 0usize;
        for direction in [Direction::In, Direction::Out] {
            let Ok(rows) = worker.journal.list(direction) else {
                continue;
            };
            for row in rows {
                if *worker.stop.borrow() {
                    return opened;
                }
                if worker.subjects.map().contains_key(&row.id) {
                    continue;
                }
                match worker.open_stored(&row.id, direction) {
                    Ok(m) => worker.subjects.note(&worker, &m),
                    Err(e) => {
                        tracing::warn!(error = %e, "no subject for a stored message");
                        worker.subjects.map().insert(row.id, None);
                    }
                }
                opened += 1;
            }
        }
        opened
    })
    .await
    .unwrap_or_default();
    if opened > 0 {
        tracing::info!(opened, "subjects of stored messages opened in memory");
        inner.emit(Event::Resync);
    }
}
