//! Keys of the panels over a screen: key help, the alarm panel, the
//! after-action report and the facilitator's white cell.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::compose::start_compose;
use super::keymap::Action;
use super::{App, Effect, PAGE};
use crate::t;
use crate::tabletop::engine::Rating;

/// Key help on screen: it scrolls (↑↓ j k, PgUp/PgDn, Space, Home/End,
/// g/G, whatever the screen below binds them to), and closes on Esc, `q`,
/// `?` or the help key; any other key is ignored, not taken as a command.
pub(super) fn help_key(app: &mut App, action: Option<Action>, ev: KeyEvent) {
    let Some(scroll) = app.help.as_mut() else {
        return;
    };
    let moved = match ev.code {
        KeyCode::Up | KeyCode::Char('k') => scroll.apply(Action::Up),
        KeyCode::Down | KeyCode::Char('j') => scroll.apply(Action::Down),
        KeyCode::PageUp => scroll.apply(Action::PageUp),
        KeyCode::PageDown | KeyCode::Char(' ') => scroll.apply(Action::PageDown),
        KeyCode::Home | KeyCode::Char('g') => scroll.apply(Action::Top),
        KeyCode::End | KeyCode::Char('G') => scroll.apply(Action::Bottom),
        _ => false,
    };
    let closes =
        matches!(ev.code, KeyCode::Esc | KeyCode::Char('q' | '?')) || action == Some(Action::Help);
    if !moved && closes {
        app.help = None;
    }
}

/// The facilitator's panel (tabletop only).
pub(super) fn white_cell_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    use super::WhiteCellCommand as W;
    let command = match action {
        Some(Action::TogglePause) => W::TogglePause,
        Some(Action::Faster) => W::Faster,
        Some(Action::Slower) => W::Slower,
        Some(Action::SkipInject) => W::SkipNext,
        Some(Action::ShowReport) => W::Report,
        Some(Action::Up) => {
            app.white_cell_pick = app.white_cell_pick.saturating_sub(1);
            return Vec::new();
        }
        Some(Action::Down) => {
            app.white_cell_pick = app.white_cell_pick.saturating_add(1);
            clamp_pick(app);
            return Vec::new();
        }
        Some(action @ (Action::AdmitStation | Action::RefuseStation)) => {
            let Some(waiting) = app
                .white_cell
                .as_ref()
                .and_then(|v| waiting(v).nth(app.white_cell_pick))
            else {
                app.notice = Some(t!(app.setup.language, "panel.none_waiting").into());
                return Vec::new();
            };
            let fingerprint = waiting.fingerprint.clone();
            if action == Action::AdmitStation {
                W::Admit(fingerprint)
            } else {
                W::Refuse(fingerprint)
            }
        }
        Some(Action::AdHocInject) => {
            app.white_cell_open = false;
            let effects = start_compose(app, Vec::new());
            app.composing_inject = true;
            return effects;
        }
        Some(Action::ChoicePrev) => {
            app.white_cell_objective = app.white_cell_objective.saturating_sub(1);
            return Vec::new();
        }
        Some(Action::ChoiceNext) => {
            app.white_cell_objective = app.white_cell_objective.saturating_add(1);
            clamp_pick(app);
            return Vec::new();
        }
        Some(Action::RateObjective) => {
            let pick = app.white_cell_objective;
            let Some(o) = app
                .white_cell
                .as_mut()
                .and_then(|v| v.evaluation.get_mut(pick))
            else {
                app.notice = Some(t!(app.setup.language, "evaluation.no_objective").into());
                return Vec::new();
            };
            // Shown at once, so that pressing again cycles on; the white
            // cell's next view confirms it.
            o.rating = Rating::cycle(o.rating);
            W::Rate {
                objective: o.id.clone(),
                rating: o.rating,
            }
        }
        Some(Action::AddNote) => {
            app.white_cell_note = Some(super::NoteEntry::default());
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    vec![Effect::WhiteCell(command)]
}

/// The longest note, in characters.
const MAX_NOTE: usize = 500;

/// Typing a note in the facilitator's panel: Enter gives it to the white
/// cell, Tab makes it a strength or an area for improvement, Esc drops it.
pub(super) fn note_key(app: &mut App, action: Option<Action>, ev: KeyEvent) -> Vec<Effect> {
    let lang = app.setup.language;
    let Some(note) = app.white_cell_note.as_mut() else {
        return Vec::new();
    };
    match action {
        Some(Action::Back) => app.white_cell_note = None,
        Some(Action::NoteKind) => note.kind = note.kind.toggled(),
        Some(Action::Submit) => {
            let Some(note) = app.white_cell_note.take() else {
                return Vec::new();
            };
            let text = note.text.trim().to_string();
            if text.is_empty() {
                return Vec::new();
            }
            app.notice = Some(t!(
                lang,
                "evaluation.note_taken",
                kind = note.kind.label(lang)
            ));
            return vec![Effect::WhiteCell(super::WhiteCellCommand::Note {
                text,
                kind: note.kind,
            })];
        }
        _ => match (ev.code, super::update::typed(&ev)) {
            (KeyCode::Backspace, _) => {
                note.text.pop();
            }
            (_, Some(c)) if note.text.chars().count() < MAX_NOTE => note.text.push(c),
            _ => {}
        },
    }
    Vec::new()
}

/// The alarm panel: moving, and clearing the selected alarm.
pub(super) fn alarm_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    match action {
        Some(Action::Up) => app.alarm_pick = app.alarm_pick.saturating_sub(1),
        Some(Action::Down) => {
            app.alarm_pick = (app.alarm_pick + 1).min(app.alarms.len().saturating_sub(1));
        }
        Some(Action::ClearAlarm) => {
            let Some(alarm) = app.alarms.get(app.alarm_pick) else {
                app.notice = Some(t!(app.setup.language, "panel.no_alarm").into());
                return Vec::new();
            };
            if app.locked() {
                app.notice = Some(t!(app.setup.language, "panel.log_in_to_clear").into());
                return Vec::new();
            }
            return vec![Effect::ClearAlarm {
                kind: alarm.kind,
                subject: alarm.subject.clone(),
            }];
        }
        _ => {}
    }
    Vec::new()
}

/// The after-action report on screen: scrolling, and Esc to close.
pub(super) fn report_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    let Some((report, scroll)) = app.report.as_mut() else {
        return Vec::new();
    };
    let last = report.text.lines().count().saturating_sub(1);
    *scroll = match action {
        Some(Action::Up) => scroll.saturating_sub(1),
        Some(Action::Down) => (*scroll + 1).min(last),
        Some(Action::PageUp) => scroll.saturating_sub(PAGE),
        Some(Action::PageDown) => (*scroll + PAGE).min(last),
        Some(Action::Back) => {
            app.report = None;
            return Vec::new();
        }
        _ => *scroll,
    };
    Vec::new()
}

/// The stations still waiting for the facilitator, in the panel's order.
pub fn waiting(
    view: &super::WhiteCellView,
) -> impl Iterator<Item = &crate::station::admission::Candidate> {
    view.waiting
        .iter()
        .filter(|c| c.state == crate::station::admission::JoinState::Pending)
}

pub(super) fn clamp_pick(app: &mut App) {
    let n = app.white_cell.as_ref().map_or(0, |v| waiting(v).count());
    app.white_cell_pick = app.white_cell_pick.min(n.saturating_sub(1));
    let n = app.white_cell.as_ref().map_or(0, |v| v.evaluation.len());
    app.white_cell_objective = app.white_cell_objective.min(n.saturating_sub(1));
}
