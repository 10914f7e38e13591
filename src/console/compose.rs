//! Keys of composing: the template choice, the form, and what releasing
//! or abandoning a draft does.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::drafts;
use super::form::Form;
use super::keymap::Action;
use super::update::{move_selection, typed};
use super::{App, Confirm, Effect, LoginForm, Screen};
use crate::domain::{Precedence, StationName};
use crate::t;
use crate::templates::Catalog;

pub(super) fn start_compose(
    app: &mut App,
    references: Vec<crate::domain::MessageId>,
) -> Vec<Effect> {
    app.composing_inject = false;
    app.picker = Default::default();
    app.reply_refs = references;
    app.reply_peer = None;
    app.reply_precedence = None;
    app.screen = Screen::Picker;
    Vec::new()
}

pub(super) fn picker_key(app: &mut App, action: Option<Action>, ev: KeyEvent) -> Vec<Effect> {
    let lang = app.setup.language;
    let count = app.picker.matches(Catalog::builtin(), lang).len();
    match action {
        Some(Action::Back) => {
            app.screen = Screen::Queue;
        }
        Some(Action::Up | Action::Down) => move_selection(&mut app.picker.selected, count, action),
        Some(Action::Submit) => {
            let chosen = app
                .picker
                .matches(Catalog::builtin(), lang)
                .get(app.picker.selected)
                .map(|t| (*t).clone());
            if let Some(t) = chosen {
                open_form(app, t);
            }
        }
        _ => match (ev.code, typed(&ev)) {
            (KeyCode::Backspace, _) => {
                app.picker.filter.pop();
                app.picker.selected = 0;
            }
            (_, Some(c)) => {
                app.picker.filter.push(c);
                app.picker.selected = 0;
            }
            _ => {}
        },
    }
    Vec::new()
}

/// The compose form on `template`, carrying a reply's references, peer
/// and precedence.
pub(super) fn open_form(app: &mut App, template: crate::templates::Template) {
    let mut form = Form::new(
        template,
        std::mem::take(&mut app.reply_refs),
        app.setup.exercise_mode,
    );
    if let Some(i) = app.reply_peer.take() {
        form.peer = i;
    }
    if let Some(p) = app.reply_precedence.take() {
        form.precedence = p;
    }
    app.form = Some(form);
    app.draft_dirty = false;
    app.draft_saved = None;
    app.preview = false;
    app.screen = Screen::Form;
}

pub(super) fn form_key(app: &mut App, action: Option<Action>, ev: KeyEvent) -> Vec<Effect> {
    let peers = app.setup.peers.len();
    let now = app.now;
    let lang = app.setup.language;
    let Some(form) = app.form.as_mut() else {
        app.screen = Screen::Queue;
        return Vec::new();
    };
    match action {
        Some(Action::Back) if app.preview => app.preview = false,
        Some(Action::Back) if !form.is_blank() => app.confirm = Some(Confirm::Abandon),
        Some(Action::Back) => return abandon(app),
        Some(Action::NextField) => form.move_focus(true),
        Some(Action::PrevField) => form.move_focus(false),
        Some(Action::ChoiceNext) if form.focused() == super::form::Row::Attach => {
            return vec![Effect::CompletePath(form.attach_input.clone())];
        }
        Some(Action::ChoiceNext | Action::ChoicePrev)
            if form.focused() == super::form::Row::Label =>
        {
            let forward = action == Some(Action::ChoiceNext);
            form.cycle_label(forward, &app.setup.labels);
        }
        Some(Action::ChoiceNext | Action::ChoicePrev)
            if form.focused() == super::form::Row::Text =>
        {
            let forward = action == Some(Action::ChoiceNext);
            form.cycle_text_language(forward, lang);
        }
        Some(Action::ChoiceNext) => form.cycle(true, peers),
        Some(Action::ChoicePrev) => form.cycle(false, peers),
        Some(Action::Preview) => app.preview = !app.preview,
        Some(Action::Release) => {
            let problems: Vec<String> = (0..form.template.fields.len())
                .filter_map(|i| {
                    form.problem(i, now, lang).map(|p| {
                        t!(
                            lang,
                            "console.field_problem",
                            field = form.template.fields[i].label.get(lang),
                            problem = p
                        )
                    })
                })
                .collect();
            if peers == 0 {
                app.notice = Some(t!(lang, "notice.no_peer").into());
            } else if !problems.is_empty() {
                app.notice = Some(t!(
                    lang,
                    "notice.cannot_release",
                    problems = problems.join(t!(lang, "console.list_separator"))
                ));
            } else if form.precedence == Precedence::Flash
                && !app.composing_inject
                && app.setup.two_person_flash
                && app.second_operator.is_none()
            {
                app.second = LoginForm::default();
                app.confirm = Some(Confirm::SecondOperator);
            } else {
                app.confirm = Some(Confirm::Release);
            }
        }
        _ => match (ev.code, typed(&ev)) {
            (KeyCode::Backspace, _) => form.backspace(),
            (KeyCode::Enter, _) => {
                if matches!(form.focused(), super::form::Row::Attach) {
                    form.add_attachment();
                } else if matches!(form.focused(), super::form::Row::Text) {
                    form.type_char('\n');
                } else {
                    form.move_focus(true);
                }
            }
            (_, Some(c)) => form.type_char(c),
            _ => {}
        },
    }
    app.draft_dirty = true;
    Vec::new()
}

/// Throws the draft away, back to the queue.
pub(super) fn abandon(app: &mut App) -> Vec<Effect> {
    app.form = None;
    app.preview = false;
    app.composing_inject = false;
    app.screen = Screen::Queue;
    app.notice = Some(t!(app.setup.language, "notice.draft_abandoned").into());
    drafts::forget(app).into_iter().collect()
}

pub(super) fn release(app: &mut App) -> Vec<Effect> {
    let (Some(operator), Some(form)) = (app.operator.clone(), app.form.take()) else {
        return Vec::new();
    };
    let lang = app.setup.language;
    if std::mem::take(&mut app.composing_inject) {
        app.screen = Screen::Queue;
        app.preview = false;
        app.notice = Some(t!(
            lang,
            "notice.inject_sent",
            precedence = form.precedence,
            template = form.template.id
        ));
        return vec![Effect::WhiteCell(super::WhiteCellCommand::Inject(
            Box::new(form.draft()),
        ))];
    }
    let Some((to, _)) = app.setup.peers.get(form.peer).cloned() else {
        return Vec::new();
    };
    if StationName::new(&to).is_err() {
        return Vec::new();
    }
    let second = app.second_operator.take();
    let draft = form.draft();
    app.releasing = Some(form.clone());
    app.screen = Screen::Sent;
    app.preview = false;
    app.notice = Some(t!(
        lang,
        "notice.releasing",
        precedence = form.precedence,
        template = form.template.id,
        peer = to
    ));
    vec![Effect::Release {
        operator,
        to,
        draft: Box::new(draft),
        attachments: form
            .attachments
            .iter()
            .map(std::path::PathBuf::from)
            .collect(),
        second,
    }]
}
