//! Drafts that survive a crash: the form is sealed to disk (see
//! [`crate::drafts`]) on the first tick after it changed, so within
//! [`super::TICK`] of the last keystroke; it is removed when the message is
//! released or the draft thrown away, and offered back at the operator's
//! next log-in.

use super::form::Form;
use super::{App, Confirm, Effect, Screen};
use crate::domain::OperatorName;
use crate::drafts::SavedDraft;
use crate::station::api::ApiError;
use crate::t;
use crate::templates::Catalog;

/// The draft on screen as a save, or a discard when it is blank again.
/// `None` when there is nothing to keep (no draft, a white-cell inject).
pub(super) fn keep(app: &mut App) -> Option<Effect> {
    if app.composing_inject {
        return None;
    }
    let (op, form) = (app.operator.clone()?, app.form.as_ref()?);
    app.draft_dirty = false;
    if form.is_blank() {
        return app
            .draft_saved
            .take()
            .map(|_| Effect::DiscardDraft(op.clone()));
    }
    Some(Effect::SaveDraft(Box::new(form.saved(
        &op,
        &app.setup.peers,
        app.now,
    ))))
}

/// On every tick: a changed draft is sealed again.
pub(super) fn on_tick(app: &mut App) -> Option<Effect> {
    if app.draft_dirty { keep(app) } else { None }
}

/// The draft is done with (released, or thrown away on purpose).
pub(super) fn forget(app: &mut App) -> Option<Effect> {
    app.draft_dirty = false;
    app.draft_saved = None;
    app.operator.clone().map(Effect::DiscardDraft)
}

pub(super) fn saved(
    app: &mut App,
    at: jiff::Timestamp,
    result: Result<(), crate::drafts::KeepError>,
) {
    match result {
        Ok(()) => app.draft_saved = Some(at),
        Err(e) => {
            app.notice = Some(t!(app.setup.language, "panel.draft_keep_failed", error = e));
        }
    }
}

/// The station's answer to the log-in's question for a kept draft.
pub(super) fn opened(
    app: &mut App,
    operator: OperatorName,
    result: Result<Option<Box<SavedDraft>>, ApiError>,
) {
    if app.operator.as_ref() != Some(&operator) {
        return;
    }
    match result {
        Ok(None) => {}
        Ok(Some(saved)) if app.form.is_none() && app.confirm.is_none() => {
            app.confirm = Some(Confirm::ResumeDraft(saved));
        }
        Ok(Some(_)) => {
            app.notice = Some(t!(app.setup.language, "panel.draft_offered_later").into());
        }
        Err(e) => {
            app.notice = Some(t!(app.setup.language, "panel.draft_open_failed", error = e));
        }
    }
}

/// `y` to the offer: the kept draft goes back on the form.
pub(super) fn resume(app: &mut App, saved: &SavedDraft) {
    match Form::from_saved(
        saved,
        Catalog::builtin(),
        &app.setup.peers,
        app.setup.language,
    ) {
        Ok(form) => {
            app.form = Some(form);
            app.preview = false;
            app.draft_saved = Some(saved.saved_at);
            if app.screen == Screen::Handover {
                app.notice = Some(t!(app.setup.language, "panel.draft_back").into());
            } else {
                app.screen = Screen::Form;
            }
        }
        Err(e) => {
            app.notice = Some(t!(
                app.setup.language,
                "panel.draft_resume_failed",
                error = e
            ));
        }
    }
}
