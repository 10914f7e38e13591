//! Find (`/` in a list): as the operator types, the list is filtered to the
//! rows whose subject, peer, handle or form match; Enter asks the station
//! to search the whole history (field values and free text too, in either
//! language), which it does by opening messages in memory. `n`/`N` (and
//! the arrows) step through the matches; Esc shows the whole list again.

use super::keymap::Action;
use super::{App, Effect, Screen};
use crate::domain::MessageId;
use crate::station::api::ApiError;
use crate::store::{Direction, MessageRow};
use crate::t;
use crate::templates::Catalog;

/// A find in one list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Find {
    pub direction: Direction,
    pub query: String,
    /// The query is being typed (the keys are text).
    pub typing: bool,
    /// The matches in list order; `None` while the station searches.
    pub matches: Option<Vec<MessageId>>,
    /// The station has searched the whole history for this query.
    pub searched: bool,
}

fn direction(app: &App) -> Direction {
    if app.screen == Screen::Sent {
        Direction::Out
    } else {
        Direction::In
    }
}

fn rows(app: &App, direction: Direction) -> &super::rows::Rows {
    match direction {
        Direction::In => &app.inbound,
        Direction::Out => &app.outbound,
    }
}

/// Whether a row matches what is on screen for it.
fn shown_match(row: &MessageRow, query: &str, app: &App) -> bool {
    let form = Catalog::builtin()
        .latest(&row.template_id)
        .map(|t| t.title.get(app.setup.language).to_string())
        .unwrap_or_default();
    [
        row.subject.clone().unwrap_or_default(),
        row.peer.to_string(),
        super::handle(row),
        row.template_id.clone(),
        form,
    ]
    .iter()
    .any(|t| t.to_lowercase().contains(query))
}

/// The find of the list on screen, if any.
pub fn active(app: &App) -> Option<&Find> {
    app.find.as_ref().filter(|f| f.direction == direction(app))
}

/// Whether the list's selected row is hidden by a find (it is not among
/// the matches): no action may then fall on it unseen.
pub fn hides_selection(app: &App) -> bool {
    let Some(f) = active(app) else {
        return false;
    };
    let selected = match f.direction {
        Direction::In => app.inbound.get(app.selected_in),
        Direction::Out => app.outbound.get(app.selected_out),
    };
    match (&f.matches, selected) {
        (Some(m), Some(r)) => !m.contains(&r.id),
        _ => true,
    }
}

/// `/` in a list: start typing (again) what to find.
pub(super) fn start(app: &mut App) {
    let direction = direction(app);
    match app.find.as_mut().filter(|f| f.direction == direction) {
        Some(f) => f.typing = true,
        None => {
            app.find = Some(Find {
                direction,
                query: String::new(),
                typing: true,
                matches: None,
                searched: false,
            });
        }
    }
    refilter(app);
}

/// The local filter, recomputed as the query changes.
fn refilter(app: &mut App) {
    let Some(find) = app.find.as_ref() else {
        return;
    };
    let (direction, query) = (find.direction, find.query.to_lowercase());
    let matches: Vec<MessageId> = rows(app, direction)
        .iter()
        .filter(|r| query.is_empty() || shown_match(r, &query, app))
        .map(|r| r.id)
        .collect();
    if let Some(f) = app.find.as_mut() {
        f.matches = Some(matches);
        f.searched = false;
    }
    step(app, 0);
}

/// Keys while the query is typed.
pub(super) fn typing_key(
    app: &mut App,
    action: Option<Action>,
    ev: ratatui::crossterm::event::KeyEvent,
) -> Vec<Effect> {
    use ratatui::crossterm::event::KeyCode;
    let Some(find) = app.find.as_mut() else {
        return Vec::new();
    };
    match action {
        Some(Action::Back) => {
            app.find = None;
            return Vec::new();
        }
        Some(Action::Submit) => {
            find.typing = false;
            if find.query.trim().is_empty() {
                app.find = None;
                return Vec::new();
            }
            find.matches = None;
            return vec![Effect::Find {
                direction: find.direction,
                query: find.query.clone(),
            }];
        }
        _ => match (ev.code, super::update::typed(&ev)) {
            (KeyCode::Backspace, _) => {
                find.query.pop();
            }
            (_, Some(c)) if find.query.chars().count() < 200 => find.query.push(c),
            _ => return Vec::new(),
        },
    }
    refilter(app);
    Vec::new()
}

/// The station's answer for the whole history.
pub(super) fn found(
    app: &mut App,
    direction: Direction,
    query: &str,
    result: Result<Vec<MessageId>, ApiError>,
) {
    let lang = app.setup.language;
    let Some(find) = app
        .find
        .as_mut()
        .filter(|f| f.direction == direction && f.query == query)
    else {
        return;
    };
    match result {
        Ok(mut ids) => {
            let list = match direction {
                Direction::In => &app.inbound,
                Direction::Out => &app.outbound,
            };
            ids.retain(|id| list.position(id).is_some());
            ids.sort_by_key(|id| list.position(id));
            let query = crate::sanitize::inert(query);
            app.notice = Some(match ids.len() {
                0 => t!(lang, "panel.found_nothing", query = query),
                1 => t!(lang, "panel.found_one", query = query),
                n => t!(lang, "panel.found", query = query, count = n),
            });
            find.matches = Some(ids);
            find.searched = true;
        }
        Err(e) => {
            find.matches = Some(Vec::new());
            app.notice = Some(t!(lang, "panel.find_failed", error = e));
        }
    }
    step(app, 0);
}

/// Moves the selection `by` matches (0: onto the nearest one), wrapping.
pub(super) fn step(app: &mut App, by: isize) {
    let Some(find) = app.find.as_ref() else {
        return;
    };
    let Some(matches) = find.matches.as_ref().filter(|m| !m.is_empty()) else {
        return;
    };
    let direction = find.direction;
    let selected = match direction {
        Direction::In => app.inbound.get(app.selected_in).map(|r| r.id),
        Direction::Out => app.outbound.get(app.selected_out).map(|r| r.id),
    };
    let here = selected.and_then(|id| matches.iter().position(|m| *m == id));
    let n = matches.len() as isize;
    let next = match here {
        Some(i) => (i as isize + by).rem_euclid(n),
        None => 0,
    } as usize;
    let id = matches[next];
    let list = rows(app, direction);
    if let Some(p) = list.position(&id) {
        match direction {
            Direction::In => app.selected_in = p,
            Direction::Out => app.selected_out = p,
        }
    }
}

/// A moving key in a list under a find: it moves among the matches.
pub(super) fn list_key(app: &mut App, action: Option<Action>) -> Option<Vec<Effect>> {
    active(app)?;
    let by = match action {
        Some(Action::NextMatch | Action::Down) => 1,
        Some(Action::PrevMatch | Action::Up) => -1,
        Some(Action::PageDown) => super::PAGE as isize,
        Some(Action::PageUp) => -(super::PAGE as isize),
        Some(Action::Back) => {
            app.find = None;
            return Some(Vec::new());
        }
        _ => return None,
    };
    step(app, by);
    Some(Vec::new())
}
