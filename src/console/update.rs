//! `update`: the console's behaviour. It never waits and does no I/O: it
//! changes the state and returns the effects to carry out.

use age::secrecy::SecretString;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::compose::{abandon, form_key, picker_key, release, start_compose};
use super::drafts;
use super::keymap::{Action, Context};
use super::panels::{alarm_key, clamp_pick, help_key, note_key, report_key, white_cell_key};
use super::{App, BELL_REPEAT, Confirm, Effect, LoginForm, Msg, PAGE, Reading, Screen};
use crate::domain::Language;
use crate::domain::{OperatorName, Precedence};
use crate::sanitize::inert;
use crate::station::Event;
use crate::store::{Direction, MessageRow, MessageState};
use crate::t;
use crate::templates::Catalog;

/// Applies one message to the state and says what to do about it.
pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    let effects = apply(app, msg);
    app.note_scenario_times();
    effects
}

fn apply(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(ev) if ev.kind != KeyEventKind::Release => {
            app.last_input = app.now;
            key(app, ev)
        }
        Msg::Key(_) | Msg::Resized => Vec::new(),
        Msg::Tick(now) => tick(app, now),
        Msg::PathCompleted { typed, completed } => {
            if let Some(form) = app.form.as_mut().filter(|f| f.attach_input == typed) {
                form.attach_input = completed;
                app.draft_dirty = true;
            }
            Vec::new()
        }
        Msg::WhiteCell(view) => {
            let seen = app.report_seen;
            if let Some(report) = view.report.as_ref().filter(|r| r.seq > seen) {
                app.report_seen = report.seq;
                app.notice = Some(report.written.clone());
                app.report = Some((report.clone(), 0));
            }
            app.white_cell = Some(view);
            clamp_pick(app);
            Vec::new()
        }
        Msg::Station(event) => station_event(app, event),
        Msg::MissedEvents => vec![Effect::Refresh],
        Msg::StatusFetched(status) => {
            app.status = Some(*status);
            Vec::new()
        }
        Msg::StationLost { reason } => {
            let first = app.station_lost.is_none();
            app.notice = Some(t!(
                app.setup.language,
                "notice.station_lost",
                reason = reason
            ));
            app.station_lost = Some(reason);
            if first {
                app.last_bell = Some(app.now);
                return vec![Effect::RingBell];
            }
            Vec::new()
        }
        Msg::StationReached { restarted } => {
            app.station_lost = None;
            if restarted {
                // The log-in ended with the old run, so the lock's own
                // audit and log-out have no session to go to.
                drop(lock(app, LockReason::Restarted));
                app.notice = Some(t!(app.setup.language, "notice.station_restarted").into());
                return vec![Effect::ForgetSession];
            }
            app.notice = Some(t!(app.setup.language, "notice.station_back").into());
            vec![Effect::Refresh]
        }
        Msg::ReleaseFinished { result } => {
            let form = app.releasing.take();
            match result {
                Ok(row) => {
                    app.notice = Some(t!(
                        app.setup.language,
                        "notice.released",
                        precedence = row.precedence,
                        serial = row.serial,
                        peer = row.peer
                    ));
                    app.apply_row(*row);
                    return drafts::forget(app).into_iter().collect();
                }
                Err(e) => {
                    app.notice = Some(t!(app.setup.language, "notice.release_failed", error = e));
                    if let Some(form) = form {
                        app.form = Some(form);
                        app.screen = Screen::Form;
                    }
                }
            }
            Vec::new()
        }
        Msg::Refreshed {
            inbound,
            outbound,
            status,
            alarms,
        } => {
            let had_flash = flash_ids(&app.inbound);
            app.alarms = alarms;
            app.alarm_pick = app.alarm_pick.min(app.alarms.len().saturating_sub(1));
            app.replace_rows(inbound, outbound);
            app.status = Some(*status);
            // A FLASH arriving rings at once, locked or not.
            if !flash_ids(&app.inbound).is_subset(&had_flash) {
                app.last_bell = Some(app.now);
                return vec![Effect::RingBell];
            }
            Vec::new()
        }
        Msg::LoginChecked { name, result } => {
            app.login.checking = false;
            match result {
                Ok(op) => {
                    app.login = LoginForm::default();
                    app.screen = Screen::Handover;
                    app.notice = None;
                    let mut effects = vec![Effect::Refresh];
                    match app.kept_draft.take() {
                        Some((by, form)) if by == op => {
                            app.form = Some(form);
                            app.notice = Some(t!(app.setup.language, "notice.draft_kept").into());
                        }
                        kept => {
                            app.kept_draft = kept;
                            // One kept on disk by an earlier console, perhaps.
                            effects.push(Effect::OpenDraft(op.clone()));
                        }
                    }
                    app.operator = Some(op);
                    effects
                }
                Err(e) => {
                    app.login.passphrase = Default::default();
                    app.login.error = Some(t!(
                        app.setup.language,
                        "dialog.login_refused",
                        name = name,
                        error = e
                    ));
                    Vec::new()
                }
            }
        }
        Msg::SecondChecked { result } => {
            app.second.checking = false;
            match result {
                Ok(second) if Some(&second) == app.operator.as_ref() => {
                    app.second = LoginForm::default();
                    app.second.error = Some(t!(app.setup.language, "dialog.second_same").into());
                    Vec::new()
                }
                Ok(second) => {
                    app.second_operator = Some(second);
                    app.second = LoginForm::default();
                    app.confirm = Some(Confirm::Release);
                    Vec::new()
                }
                Err(e) => {
                    app.second.passphrase = Default::default();
                    app.second.error = Some(e.to_string());
                    Vec::new()
                }
            }
        }
        Msg::MessageOpened { id, result } => {
            if let Some(r) = app.reading.as_mut().filter(|r| r.id == id) {
                match result {
                    Ok(m) => r.message = Some(*m),
                    Err(e) => r.error = Some(e.to_string()),
                }
            }
            Vec::new()
        }
        Msg::SubjectsFetched { subjects } => {
            for (id, subject) in subjects {
                let row = app.inbound.find(&id).or_else(|| app.outbound.find(&id));
                if let Some(mut row) = row.cloned() {
                    row.subject = Some(subject);
                    app.apply_row(row);
                }
            }
            Vec::new()
        }
        Msg::Found {
            direction,
            query,
            result,
        } => {
            super::find::found(app, direction, &query, result);
            Vec::new()
        }
        Msg::DraftOpened { operator, result } => {
            drafts::opened(app, operator, result);
            Vec::new()
        }
        Msg::DraftSaved { at, result } => {
            drafts::saved(app, at, result);
            Vec::new()
        }
        Msg::Done { what, result } => {
            // What changed comes as events; a failure is said here.
            app.notice = Some(match result {
                Ok(()) => what,
                Err(e) => t!(app.setup.language, "notice.failed", what = what, error = e),
            });
            Vec::new()
        }
    }
}

/// The unacknowledged FLASH messages: a new one among them rings.
fn flash_ids(rows: &super::rows::Rows) -> std::collections::HashSet<crate::domain::MessageId> {
    rows.iter()
        .filter(|r| r.state.is_unacknowledged() && r.precedence == Precedence::Flash)
        .map(|r| r.id)
        .collect()
}

fn tick(app: &mut App, now: jiff::Timestamp) -> Vec<Effect> {
    app.now = now;
    let mut effects = Vec::new();
    let idle = now.duration_since(app.last_input).as_secs();
    if !app.locked() && idle >= 0 && idle as u64 >= app.setup.idle_lock.as_secs() {
        effects.extend(lock(app, LockReason::Idle));
    }
    let flash_waiting = app.unacknowledged_counts()[0] > 0;
    app.flash_on = flash_waiting && !app.flash_on;
    // Overdue is the station's judgement, on its board: the console
    // raises no alarm of its own.
    let any_overdue = app
        .alarms
        .iter()
        .any(|a| a.kind == crate::station::AlarmKind::Overdue);
    let due = app
        .last_bell
        .is_none_or(|b| now.duration_since(b).as_secs() >= BELL_REPEAT.as_secs() as i64);
    if (flash_waiting || any_overdue) && due {
        app.last_bell = Some(now);
        effects.push(Effect::RingBell);
    }
    effects.extend(drafts::on_tick(app));
    effects
}

fn station_event(app: &mut App, event: Event) -> Vec<Effect> {
    let lang = app.setup.language;
    match &event {
        Event::Alarm(alarm) => {
            app.apply_alarm(alarm.clone());
            // Alarms change no row and no link state the console shows.
            return Vec::new();
        }
        Event::AlarmCleared { kind, subject, .. } => {
            app.remove_alarm(*kind, subject);
            return Vec::new();
        }
        Event::Refused { id, peer, code, .. } => {
            app.notice = Some(t!(
                lang,
                "notice.refused",
                peer = peer,
                id = id,
                code = code
            ));
        }
        Event::Notice { text } => app.notice = Some(text.clone()),
        Event::JoinRequested {
            station,
            fingerprint,
            ..
        } => {
            app.notice = Some(t!(
                lang,
                "notice.join_requested",
                station = inert(station),
                fingerprint = inert(fingerprint)
            ));
            return vec![Effect::RingBell, Effect::Refresh];
        }
        Event::PeerAdded { peer } => {
            if !app.setup.peers.iter().any(|(p, _)| p == peer) {
                app.setup.peers.push((peer.clone(), "UTC".into()));
            }
            app.notice = Some(t!(lang, "notice.admitted", peer = inert(peer)));
        }
        Event::AttachmentProgress {
            id,
            index,
            done,
            total,
            ..
        } => {
            // Progress changes no stored row: the lists draw it from here,
            // so a transfer does not re-read the journal at every step.
            app.transfers.insert((*id, *index), (*done, *total));
            return Vec::new();
        }
        Event::AttachmentStored { id, index, .. } => {
            app.transfers.remove(&(*id, *index));
        }
        Event::AttachmentRefused {
            id,
            index,
            peer,
            reason,
            ..
        } => {
            app.transfers.remove(&(*id, *index));
            app.notice = Some(t!(
                lang,
                "notice.attachment_refused",
                peer = inert(peer),
                number = index + 1,
                id = id,
                reason = inert(reason)
            ));
        }
        Event::MessageChanged { row } => {
            let mut row = (**row).clone();
            let old = match row.direction {
                Direction::In => app.inbound.find(&row.id),
                Direction::Out => app.outbound.find(&row.id),
            }
            .cloned();
            // A watching connection carries no subjects: keep the one
            // known, or ask for it on the logged-in connection.
            if row.subject.is_none() {
                row.subject = old.as_ref().and_then(|o| o.subject.clone());
            }
            let fetch = (row.subject.is_none() && !app.locked()).then_some(row.id);
            let flash = app.apply_row(row.clone());
            let mut effects = noticed(app, old.as_ref(), &row, flash);
            effects.extend(fetch.map(|id| Effect::FetchSubjects(vec![id])));
            return effects;
        }
        Event::Resync => return vec![Effect::Refresh],
        _ => {}
    }
    // A message's own row follows its event; what else changed is the
    // links' state.
    if event.changed_message().is_some() {
        Vec::new()
    } else {
        vec![Effect::FetchStatus]
    }
}

/// An arrival, or the peer's acknowledgement of our message, is said on
/// the notice line, and rings where `[console] ring` says so (a FLASH
/// arriving always rings, locked or not). A locked console names no
/// subject: it shows counts, never content.
fn noticed(app: &mut App, old: Option<&MessageRow>, row: &MessageRow, flash: bool) -> Vec<Effect> {
    let lang = app.setup.language;
    let ring = match (row.direction, old) {
        (Direction::In, None) if row.state.is_unacknowledged() => {
            app.notice = Some(if app.locked() {
                t!(
                    lang,
                    "notice.arrived_locked",
                    precedence = row.precedence,
                    peer = inert(row.peer.as_str()),
                    handle = super::handle(row)
                )
            } else {
                t!(
                    lang,
                    "notice.arrived",
                    precedence = row.precedence,
                    peer = inert(row.peer.as_str()),
                    message = super::describe(row)
                )
            });
            flash || app.setup.ring.arrival(row.precedence)
        }
        (Direction::Out, Some(was))
            if row.state == MessageState::Acknowledged
                && was.state != MessageState::Acknowledged =>
        {
            let what = if app.locked() {
                super::handle(row)
            } else {
                super::describe(row)
            };
            app.notice = Some(t!(
                lang,
                "notice.peer_acknowledged",
                peer = inert(row.peer.as_str()),
                message = what,
                by = inert(row.ack_by.as_deref().unwrap_or("?"))
            ));
            app.setup.ring.acknowledgements
        }
        _ => flash,
    };
    if ring {
        app.last_bell = Some(app.now);
        vec![Effect::RingBell]
    } else {
        Vec::new()
    }
}

/// Why the operator's session ends.
#[derive(Clone, Copy)]
enum LockReason {
    /// The operator locked the console.
    Operator,
    /// No key was pressed for `[console] idle_lock`.
    Idle,
    /// The station was restarted, and the log-in ended with its old run.
    Restarted,
}

fn lock(app: &mut App, why: LockReason) -> Vec<Effect> {
    let kept = drafts::on_tick(app);
    let Some(op) = app.operator.take() else {
        return Vec::new();
    };
    let lang = app.setup.language;
    // The audit log records the reason in its own words.
    let (notice, audited) = match why {
        LockReason::Operator => (
            t!(lang, "notice.locked_operator", operator = op),
            "operator",
        ),
        LockReason::Idle => (t!(lang, "notice.locked_idle", operator = op), "idle"),
        LockReason::Restarted => (
            t!(lang, "notice.locked_restarted", operator = op),
            "the station was restarted",
        ),
    };
    app.screen = Screen::Login;
    app.reading = None;
    // A draft is kept for the operator who typed it, never shown locked.
    if let Some(form) = app.form.take() {
        app.kept_draft = Some((op.clone(), form));
    }
    app.confirm = None;
    app.help = None;
    app.preview = false;
    app.report = None;
    app.white_cell_open = false;
    app.white_cell_note = None;
    app.notice = Some(notice);
    kept.into_iter()
        .chain([
            Effect::Audit {
                actor: op.to_string(),
                action: "lock".into(),
                detail: format!("reason={audited}"),
            },
            Effect::LoggedOut,
        ])
        .collect()
}

fn key(app: &mut App, ev: KeyEvent) -> Vec<Effect> {
    let context = app.context();
    let action = app.setup.keymap.action(context, &ev);
    if app.help.is_some() && !matches!(action, Some(Action::Lock | Action::Quit)) {
        help_key(app, action, ev);
        return Vec::new();
    }
    match action {
        Some(Action::Quit) if app.confirm == Some(Confirm::Quit) => {
            app.confirm = None;
            return quit(app);
        }
        Some(Action::Quit) => {
            app.confirm = Some(Confirm::Quit);
            return Vec::new();
        }
        Some(Action::Help) => {
            app.help = Some(super::Scroll::default());
            return Vec::new();
        }
        Some(Action::Lock) => return lock(app, LockReason::Operator),
        Some(Action::WhiteCell) if app.white_cell.is_some() => {
            app.white_cell_open = !app.white_cell_open;
            return Vec::new();
        }
        Some(Action::Objectives) if app.white_cell.is_some() => {
            app.objectives = match app.objectives {
                Some(_) => None,
                None => Some(super::Scroll::default()),
            };
            return Vec::new();
        }
        Some(Action::Alarms) => {
            app.alarms_open = !app.alarms_open;
            app.alarm_pick = app.alarm_pick.min(app.alarms.len().saturating_sub(1));
            return Vec::new();
        }
        _ => {}
    }
    if app.confirm.is_some() {
        return confirm_key(app, action, ev);
    }
    if app.report.is_some() {
        return report_key(app, action);
    }
    if app.white_cell_open && app.white_cell_note.is_some() {
        return note_key(app, action, ev);
    }
    if app.white_cell_open {
        return white_cell_key(app, action);
    }
    if let Some(scroll) = app.objectives.as_mut() {
        if let Some(a) = action {
            scroll.apply(a);
        }
        return Vec::new();
    }
    if app.alarms_open {
        return alarm_key(app, action);
    }
    if app.context() == super::keymap::Context::Find {
        return super::find::typing_key(app, action, ev);
    }
    match app.screen {
        Screen::Login => login_key(app, action, ev),
        Screen::Handover => {
            if action == Some(Action::Open) {
                // A draft kept through the lock comes back first.
                app.screen = if app.form.is_some() {
                    Screen::Form
                } else {
                    Screen::Queue
                };
                // A white cell waiting for its trainees opens on its
                // panel: the join line they need is there.
                if app
                    .white_cell
                    .as_ref()
                    .is_some_and(|v| v.join.is_some() && v.trainees.is_empty())
                {
                    app.white_cell_open = true;
                }
            }
            Vec::new()
        }
        Screen::Queue | Screen::Sent => list_key(app, action),
        Screen::Message => message_key(app, action),
        Screen::Picker => picker_key(app, action, ev),
        Screen::Form => form_key(app, action, ev),
    }
}

/// The character a key types, if it types one.
pub(super) fn typed(ev: &KeyEvent) -> Option<char> {
    match ev.code {
        KeyCode::Char(c)
            if !ev
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// The longest passphrase typed, in characters.
const MAX_PASSPHRASE: usize = 1024;

/// Types `c` into a passphrase without leaving a copy behind: where the
/// buffer must grow, the text moves to a larger one and the old is wiped
/// (a plain `push` would leave it in freed memory).
pub fn type_secret(secret: &mut zeroize::Zeroizing<String>, c: char) {
    if secret.chars().count() >= MAX_PASSPHRASE {
        return;
    }
    if secret.len() + c.len_utf8() > secret.capacity() {
        let mut larger =
            zeroize::Zeroizing::new(String::with_capacity((secret.capacity() * 2).max(64)));
        larger.push_str(secret);
        *secret = larger;
    }
    secret.push(c);
}

/// Name and passphrase entry, shared by the log-in screen and the second
/// operator of the two-person rule. Returns the completed pair on submit;
/// says what is missing to a reader of `lang`.
fn credentials(
    form: &mut LoginForm,
    action: Option<Action>,
    ev: &KeyEvent,
    lang: Language,
) -> Option<(String, SecretString)> {
    if form.checking {
        return None;
    }
    match action {
        Some(Action::NextField) => form.on_passphrase = !form.on_passphrase,
        Some(Action::Submit) if !form.on_passphrase => form.on_passphrase = true,
        Some(Action::Submit) => {
            if form.name.trim().is_empty() {
                form.on_passphrase = false;
                form.error = Some(t!(lang, "dialog.name_needed").into());
                return None;
            }
            form.checking = true;
            form.error = None;
            let taken = std::mem::take(&mut form.passphrase);
            let pass = SecretString::from(taken.as_str().to_string());
            return Some((form.name.trim().to_string(), pass));
        }
        _ => match (ev.code, typed(ev)) {
            (KeyCode::Backspace, _) => {
                if form.on_passphrase {
                    form.passphrase.pop();
                } else {
                    form.name.pop();
                }
            }
            (_, Some(c)) => {
                if form.on_passphrase {
                    type_secret(&mut form.passphrase, c);
                } else if form.name.chars().count() < 32 {
                    form.name.push(c);
                }
            }
            _ => {}
        },
    }
    None
}

fn login_key(app: &mut App, action: Option<Action>, ev: KeyEvent) -> Vec<Effect> {
    if app.setup.call_sign_login {
        return call_sign(app, action, ev);
    }
    match credentials(&mut app.login, action, &ev, app.setup.language) {
        Some((name, passphrase)) => vec![Effect::CheckLogin { name, passphrase }],
        None => Vec::new(),
    }
}

/// Tabletop log-in: the call sign is recorded as the operator.
fn call_sign(app: &mut App, action: Option<Action>, ev: KeyEvent) -> Vec<Effect> {
    match action {
        // The station signs the call sign in (exercise stations only) and
        // audits it; the answer comes back as a checked log-in.
        Some(Action::Submit) if app.login.checking => Vec::new(),
        Some(Action::Submit) => match OperatorName::new(app.login.name.trim()) {
            Ok(op) => {
                app.login.checking = true;
                vec![Effect::SignIn(op.to_string())]
            }
            Err(e) => {
                app.login.error = Some(e.to_string());
                Vec::new()
            }
        },
        _ => {
            match (ev.code, typed(&ev)) {
                (KeyCode::Backspace, _) => {
                    app.login.name.pop();
                }
                (_, Some(c)) if app.login.name.chars().count() < 32 => app.login.name.push(c),
                _ => {}
            }
            Vec::new()
        }
    }
}

pub(super) fn move_selection(selected: &mut usize, len: usize, action: Option<Action>) {
    let last = len.saturating_sub(1);
    *selected = match action {
        Some(Action::Up) => selected.saturating_sub(1),
        Some(Action::Down) => (*selected + 1).min(last),
        Some(Action::PageUp) => selected.saturating_sub(PAGE),
        Some(Action::PageDown) => (*selected + PAGE).min(last),
        Some(Action::Top) => 0,
        Some(Action::Bottom) => last,
        _ => *selected,
    };
}

fn open(app: &mut App, id: crate::domain::MessageId) -> Vec<Effect> {
    app.reading = Some(Reading {
        id,
        message: None,
        error: None,
        show_original: false,
        scroll: super::Scroll::default(),
    });
    app.screen = Screen::Message;
    vec![Effect::OpenMessage(id)]
}

fn list_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    let inbound = app.screen == Screen::Queue;
    if let Some(effects) = super::find::list_key(app, action) {
        return effects;
    }
    if super::find::hides_selection(app)
        && matches!(
            action,
            Some(
                Action::Open
                    | Action::Acknowledge
                    | Action::AckAndReply
                    | Action::Reply
                    | Action::CancelMessage
            )
        )
    {
        app.notice = Some(t!(app.setup.language, "notice.find_hides_selection").into());
        return Vec::new();
    }
    match action {
        Some(Action::Find) => {
            super::find::start(app);
            Vec::new()
        }
        Some(
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom,
        ) => {
            if inbound {
                move_selection(&mut app.selected_in, app.inbound.len(), action);
            } else {
                move_selection(&mut app.selected_out, app.outbound.len(), action);
            }
            Vec::new()
        }
        Some(Action::SwitchList) => {
            app.screen = if inbound { Screen::Sent } else { Screen::Queue };
            Vec::new()
        }
        Some(Action::Open) => match app.selected_row().map(|r| r.id) {
            Some(id) => open(app, id),
            None => Vec::new(),
        },
        Some(Action::Compose) => start_compose(app, Vec::new()),
        Some(Action::LinkTest) => vec![Effect::LinkTest],
        Some(Action::Acknowledge) if inbound => ask_ack(app, false),
        Some(Action::AckAndReply) if inbound => ask_ack(app, true),
        Some(Action::Reply) if inbound => reply(app),
        Some(Action::Reply) => amend(app),
        Some(Action::CancelMessage) if !inbound => match app.outbound.get(app.selected_out) {
            Some(r) if r.state == MessageState::Queued => {
                app.confirm = Some(Confirm::Cancel { id: r.id });
                Vec::new()
            }
            Some(r) => {
                let lang = app.setup.language;
                app.notice = Some(t!(
                    lang,
                    "notice.cannot_cancel",
                    message = super::describe(r),
                    state = state_word(r.state, lang)
                ));
                Vec::new()
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The inbound message the operator is pointing at: the one being read,
/// or the selected row.
fn current_inbound(app: &App) -> Option<&crate::store::MessageRow> {
    match (&app.screen, &app.reading) {
        (Screen::Message, Some(r)) => app.inbound.find(&r.id),
        (Screen::Queue, _) => app.inbound.get(app.selected_in),
        _ => None,
    }
}

/// A message's state as a word in a sentence ("MOSCOW/6 is sent").
fn state_word(state: MessageState, lang: Language) -> &'static str {
    match state {
        MessageState::Queued => t!(lang, "console.state_queued"),
        MessageState::Sent => t!(lang, "console.state_sent"),
        MessageState::Receipted => t!(lang, "console.state_receipted"),
        MessageState::Received => t!(lang, "console.state_received"),
        MessageState::Acknowledged => t!(lang, "console.state_acknowledged"),
        MessageState::Refused => t!(lang, "console.state_refused"),
        MessageState::Cancelled => t!(lang, "console.state_cancelled"),
    }
}

fn ask_ack(app: &mut App, reply_after: bool) -> Vec<Effect> {
    let lang = app.setup.language;
    let Some(row) = current_inbound(app) else {
        app.notice = Some(t!(lang, "notice.select_to_acknowledge").into());
        return Vec::new();
    };
    if !row.state.is_unacknowledged() {
        app.notice = Some(t!(
            lang,
            "notice.already_acknowledged",
            message = super::describe(row),
            by = row.ack_by.as_deref().unwrap_or("?")
        ));
        return if reply_after { reply(app) } else { Vec::new() };
    }
    let (id, precedence) = (row.id, row.precedence);
    if matches!(precedence, Precedence::Flash | Precedence::Immediate) {
        app.confirm = Some(Confirm::Acknowledge {
            id,
            precedence,
            reply_after,
        });
        return Vec::new();
    }
    acknowledge(app, id, reply_after)
}

fn acknowledge(app: &mut App, id: crate::domain::MessageId, reply_after: bool) -> Vec<Effect> {
    let Some(operator) = app.operator.clone() else {
        return Vec::new();
    };
    let what = app
        .inbound
        .find(&id)
        .map_or_else(|| id.to_string(), super::describe);
    let mut effects = vec![Effect::Acknowledge { operator, id, what }];
    if reply_after {
        effects.extend(reply(app));
    }
    effects
}

/// A reply: to the sender, referencing the message, at its precedence.
/// Where the original's template names a reply form (`reply` in the
/// template), the template choice opens with it selected.
fn reply(app: &mut App) -> Vec<Effect> {
    let Some(row) = current_inbound(app) else {
        return Vec::new();
    };
    let (id, peer, precedence) = (row.id, row.peer.clone(), row.precedence);
    let reply_form = Catalog::builtin()
        .latest(&row.template_id)
        .and_then(|t| t.reply.clone());
    let effects = start_compose(app, vec![id]);
    preselect(app, peer.as_str(), reply_form.as_deref());
    app.reply_precedence = Some(precedence);
    effects
}

/// A composition that answers or amends a message goes to its peer, on
/// the form `form` when there is one.
fn preselect(app: &mut App, peer: &str, form: Option<&str>) {
    if let Some(i) = app.setup.peers.iter().position(|(p, _)| p.as_str() == peer) {
        app.pending_peer(i);
    }
    if let Some(form) = form
        && let Some(i) = app
            .picker
            .matches(Catalog::builtin(), app.setup.language)
            .iter()
            .position(|t| t.id == form)
    {
        app.picker.selected = i;
    }
}

/// Starts a correction of the selected sent message, to its peer; the
/// picker offers the cancellation beside it.
fn amend(app: &mut App) -> Vec<Effect> {
    let Some(row) = app.outbound.get(app.selected_out) else {
        return Vec::new();
    };
    let (id, peer) = (row.id, row.peer.clone());
    let effects = start_compose(app, vec![id]);
    preselect(app, peer.as_str(), Some("correction"));
    effects
}

impl App {
    /// The peer a reply goes to, applied when the form opens.
    fn pending_peer(&mut self, i: usize) {
        self.picker.selected = 0;
        self.reply_peer = Some(i);
    }
}

fn message_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    match action {
        Some(Action::Back) => {
            app.screen = if app
                .inbound
                .iter()
                .any(|r| Some(r.id) == app.reading.as_ref().map(|x| x.id))
            {
                Screen::Queue
            } else {
                Screen::Sent
            };
            app.reading = None;
            Vec::new()
        }
        Some(Action::ExportAttachments) => match &app.reading {
            Some(r)
                if r.message
                    .as_ref()
                    .is_some_and(|m| !m.attachments.is_empty()) =>
            {
                vec![Effect::ExportAttachments(r.id)]
            }
            Some(_) => {
                app.notice = Some(t!(app.setup.language, "notice.no_attachments").into());
                Vec::new()
            }
            None => Vec::new(),
        },
        Some(Action::ToggleOriginal) => {
            if let Some(r) = app.reading.as_mut() {
                r.show_original = !r.show_original;
            }
            Vec::new()
        }
        Some(
            action @ (Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom),
        ) => {
            if let Some(r) = app.reading.as_mut() {
                r.scroll.apply(action);
            }
            Vec::new()
        }
        Some(Action::Acknowledge) => ask_ack(app, false),
        Some(Action::AckAndReply) => ask_ack(app, true),
        Some(Action::Reply) => reply(app),
        _ => Vec::new(),
    }
}

fn confirm_key(app: &mut App, action: Option<Action>, ev: KeyEvent) -> Vec<Effect> {
    let Some(question) = app.confirm.clone() else {
        return Vec::new();
    };
    if question == Confirm::SecondOperator {
        if matches!(ev.code, KeyCode::Esc) {
            app.confirm = None;
            app.second = LoginForm::default();
            return Vec::new();
        }
        let action = action.or_else(|| login_action(app, &ev));
        return match credentials(&mut app.second, action, &ev, app.setup.language) {
            Some((name, passphrase)) => vec![Effect::CheckSecond { name, passphrase }],
            None => Vec::new(),
        };
    }
    match action {
        Some(Action::Yes) => {
            app.confirm = None;
            match question {
                Confirm::Acknowledge {
                    id, reply_after, ..
                } => acknowledge(app, id, reply_after),
                Confirm::Cancel { id } => match app.operator.clone() {
                    Some(operator) => vec![Effect::Cancel { operator, id }],
                    None => Vec::new(),
                },
                Confirm::Release => release(app),
                Confirm::SecondOperator => Vec::new(),
                Confirm::Quit => quit(app),
                Confirm::Abandon => abandon(app),
                Confirm::ResumeDraft(saved) => {
                    drafts::resume(app, &saved);
                    Vec::new()
                }
            }
        }
        Some(Action::No) => {
            app.confirm = None;
            app.second_operator = None;
            if matches!(question, Confirm::ResumeDraft(_)) {
                app.notice = Some(t!(app.setup.language, "notice.draft_thrown_away").into());
                return drafts::forget(app).into_iter().collect();
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Quits, with the draft (if it changed) sealed to disk first.
fn quit(app: &mut App) -> Vec<Effect> {
    app.quit = true;
    drafts::on_tick(app)
        .into_iter()
        .chain([Effect::Quit])
        .collect()
}

/// Log-in keys while the two-person question is open.
fn login_action(app: &App, ev: &KeyEvent) -> Option<Action> {
    app.setup.keymap.action(Context::Login, ev)
}
