//! The log-in screen (which shows counts, never content), the handover
//! summary, confirmations and the help overlay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{Theme, centred, width_of};
use crate::console::keymap::{Action, Context};
use crate::console::{App, Confirm, LoginForm, WhiteCellView};
use crate::domain::Language;
use crate::sanitize::inert;
use crate::t;
use crate::templates::Catalog;

/// The spaces that bring `text` to `width` columns (none if it is wider).
fn spaces(text: &str, width: usize) -> String {
    " ".repeat(width.saturating_sub(width_of(text)))
}

/// The log-in's labels (operator, passphrase, call sign), each padded to
/// one column, so that what is typed after them lines up.
fn login_labels(lang: Language) -> [String; 3] {
    let labels = [
        t!(lang, "overlay.operator"),
        t!(lang, "overlay.passphrase"),
        t!(lang, "overlay.call_sign"),
    ];
    let column = labels.iter().map(|l| width_of(l)).max().unwrap_or(0) + 1;
    labels.map(|l| format!("{l}{}", spaces(l, column)))
}

fn credentials(lines: &mut Vec<Line<'static>>, form: &LoginForm, theme: &Theme, lang: Language) {
    let cursor = |on: bool| if on { "▏" } else { "" };
    let [operator, passphrase, _] = login_labels(lang);
    lines.push(Line::raw(format!(
        "  {operator}{}{}",
        form.name,
        cursor(!form.on_passphrase)
    )));
    lines.push(Line::raw(format!(
        "  {passphrase}{}{}",
        "•".repeat(form.passphrase.chars().count()),
        cursor(form.on_passphrase)
    )));
    if form.checking {
        lines.push(Line::styled(
            format!("  {}", t!(lang, "overlay.checking")),
            theme.dim(),
        ));
    }
    if let Some(e) = &form.error {
        lines.push(Line::styled(format!("  {}", inert(e)), theme.alert()));
    }
}

pub fn login(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let [flash, immediate, priority, routine] = app.unacknowledged_counts();
    let mut lines = vec![
        Line::styled(
            format!(
                "  {}",
                t!(lang, "overlay.locked", station = app.setup.station)
            ),
            theme.warn(),
        ),
        Line::raw(""),
        Line::raw(format!(
            "  {}",
            t!(
                lang,
                "overlay.unacknowledged_counts",
                flash = flash,
                immediate = immediate,
                priority = priority,
                routine = routine
            )
        )),
        Line::raw(""),
    ];
    if app.setup.call_sign_login {
        lines.push(Line::styled(
            format!("  {}", t!(lang, "overlay.call_sign_exercise")),
            theme.warn(),
        ));
        let [_, _, call_sign] = login_labels(lang);
        lines.push(Line::raw(format!("  {call_sign}{}▏", app.login.name)));
        if let Some(e) = &app.login.error {
            lines.push(Line::styled(format!("  {}", inert(e)), theme.alert()));
        }
    } else {
        credentials(&mut lines, &app.login, theme, lang);
    }
    // Wrapped, in a box as tall as the wrapped text: a lockout notice or
    // the counts are never cut at the right edge.
    let para = Paragraph::new(lines).wrap(Wrap { trim: false });
    let width = area.width.min(84);
    let needed = para.line_count(width.saturating_sub(2)) + 2;
    let box_area = centred(
        area,
        width,
        u16::try_from(needed).unwrap_or(u16::MAX).max(10),
    );
    frame.render_widget(Clear, box_area);
    frame.render_widget(
        para.block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", t!(lang, "overlay.login_title"))),
        ),
        box_area,
    );
}

pub fn handover(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let mut lines = vec![
        Line::styled(t!(lang, "overlay.handover_heading"), theme.warn()),
        Line::raw(""),
    ];
    let unacked: Vec<_> = app.unacknowledged().collect();
    lines.push(Line::raw(t!(
        lang,
        "overlay.handover_inbound",
        count = unacked.len()
    )));
    for r in unacked.iter().take(5) {
        let (precedence, serial, peer, form) = (
            r.precedence,
            r.serial,
            inert(r.peer.as_str()),
            inert(&r.template_id),
        );
        let line = if app.overdue(r) {
            t!(
                lang,
                "overlay.handover_inbound_overdue",
                precedence = precedence,
                serial = serial,
                peer = peer,
                form = form
            )
        } else {
            t!(
                lang,
                "overlay.handover_inbound_row",
                precedence = precedence,
                serial = serial,
                peer = peer,
                form = form
            )
        };
        lines.push(Line::raw(format!("  {line}")));
    }
    let no_receipt: Vec<_> = app
        .outbound
        .iter()
        .filter(|r| r.state.awaits_receipt())
        .collect();
    let no_ack: Vec<_> = app
        .outbound
        .iter()
        .filter(|r| r.state.awaits_peer_ack())
        .collect();
    lines.push(Line::raw(t!(
        lang,
        "overlay.handover_no_receipt",
        count = no_receipt.len()
    )));
    for r in no_receipt.iter().take(3) {
        lines.push(Line::raw(format!(
            "  {}",
            t!(
                lang,
                "overlay.handover_no_receipt_row",
                precedence = r.precedence,
                serial = r.serial,
                peer = inert(r.peer.as_str()),
                state = r.state.label(lang).to_lowercase()
            )
        )));
    }
    lines.push(Line::raw(t!(
        lang,
        "overlay.handover_no_ack",
        count = no_ack.len()
    )));
    for r in no_ack.iter().take(3) {
        lines.push(Line::raw(format!(
            "  {}",
            t!(
                lang,
                "overlay.handover_no_ack_row",
                precedence = r.precedence,
                serial = r.serial,
                peer = inert(r.peer.as_str())
            )
        )));
    }
    lines.push(Line::raw(t!(
        lang,
        "overlay.handover_alarms",
        count = app.alarms.len()
    )));
    for a in app.alarms.iter().rev().take(3) {
        lines.push(Line::styled(
            format!(
                "  {}",
                t!(
                    lang,
                    "overlay.handover_alarm",
                    age = super::bars::age(lang, app.now, a.raised_at),
                    text = inert(&a.text)
                )
            ),
            theme.alert(),
        ));
    }
    let links = app
        .status
        .as_ref()
        .map(|s| s.links.clone())
        .unwrap_or_default();
    for l in links {
        lines.push(Line::raw(if l.up {
            t!(lang, "overlay.handover_link_up", peer = l.peer)
        } else {
            t!(lang, "overlay.handover_link_down", peer = l.peer)
        }));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        t!(lang, "overlay.handover_take_over"),
        theme.dim(),
    ));
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::TOP)
                .title(format!(" {} ", t!(lang, "overlay.handover_title"))),
        ),
        area,
    );
}

pub fn confirm(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(question) = &app.confirm else { return };
    let lang = app.setup.language;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let title = match question {
        Confirm::Acknowledge { id, precedence, .. } => {
            let what = app.inbound.find(id).map_or_else(
                || {
                    t!(
                        lang,
                        "overlay.message_by_id",
                        precedence = precedence,
                        id = id
                    )
                },
                crate::console::describe,
            );
            lines.push(Line::styled(
                t!(lang, "overlay.acknowledge_question", what = what),
                theme.warn(),
            ));
            let operator = app
                .operator
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            lines.extend(
                t!(lang, "overlay.acknowledge_body", operator = operator)
                    .lines()
                    .map(|l| Line::raw(l.to_string())),
            );
            t!(lang, "overlay.acknowledge_title")
        }
        Confirm::Release => {
            if let Some(f) = &app.form {
                let peer = app
                    .setup
                    .peers
                    .get(f.peer)
                    .map(|(p, _)| p.clone())
                    .unwrap_or_default();
                // An ad-hoc inject goes from the simulated counterpart to
                // the trainee, not from this console to its peer.
                let question = if app.composing_inject {
                    t!(
                        lang,
                        "overlay.inject_question",
                        precedence = f.precedence,
                        form = f.template.title.get(lang)
                    )
                } else {
                    t!(
                        lang,
                        "overlay.release_question",
                        precedence = f.precedence,
                        form = f.template.title.get(lang),
                        peer = peer
                    )
                };
                lines.push(Line::styled(question, theme.warn()));
                lines.push(Line::raw(if f.exercise {
                    t!(
                        lang,
                        "overlay.release_summary_exercise",
                        precedence = f.precedence,
                        peer = peer
                    )
                } else {
                    t!(
                        lang,
                        "overlay.release_summary",
                        precedence = f.precedence,
                        peer = peer
                    )
                }));
                lines.push(Line::raw(t!(
                    lang,
                    "overlay.release_marking",
                    marking = f.label.as_deref().unwrap_or(&app.setup.labels.default)
                )));
                if let Some(second) = &app.second_operator {
                    lines.push(Line::raw(t!(lang, "overlay.release_second", name = second)));
                }
            }
            t!(lang, "overlay.release_title")
        }
        Confirm::Cancel { id } => {
            let what = app
                .outbound
                .find(id)
                .map_or_else(|| id.to_string(), crate::console::describe);
            lines.push(Line::styled(
                t!(lang, "overlay.cancel_question", what = what),
                theme.warn(),
            ));
            lines.push(Line::raw(t!(lang, "overlay.cancel_audited")));
            t!(lang, "overlay.cancel_title")
        }
        Confirm::Quit => {
            quit_question(&mut lines, app, theme);
            t!(lang, "overlay.quit_title")
        }
        Confirm::Abandon => {
            lines.push(Line::styled(
                t!(lang, "overlay.abandon_question"),
                theme.warn(),
            ));
            lines.push(Line::raw(t!(lang, "overlay.abandon_body")));
            t!(lang, "overlay.abandon_title")
        }
        Confirm::ResumeDraft(saved) => {
            let title = Catalog::builtin()
                .latest(&saved.draft.template_id)
                .map_or_else(
                    || inert(&saved.draft.template_id),
                    |t| t.title.get(lang).to_string(),
                );
            let to = inert(&saved.to);
            lines.push(Line::styled(
                match saved.draft.precedence {
                    Some(p) => t!(
                        lang,
                        "overlay.resume_question_precedence",
                        precedence = p,
                        form = title,
                        to = to
                    ),
                    None => t!(lang, "overlay.resume_question", form = title, to = to),
                },
                theme.warn(),
            ));
            lines.push(Line::raw(t!(
                lang,
                "overlay.resume_kept",
                time = saved.saved_at.strftime("%H:%M:%S"),
                age = super::bars::age(lang, app.now, saved.saved_at)
            )));
            lines.push(Line::raw(t!(lang, "overlay.resume_body")));
            t!(lang, "overlay.resume_title")
        }
        Confirm::SecondOperator => {
            lines.push(Line::styled(
                t!(lang, "overlay.second_heading"),
                theme.warn(),
            ));
            lines.push(Line::raw(t!(lang, "overlay.second_body")));
            credentials(&mut lines, &app.second, theme, lang);
            t!(lang, "overlay.second_title")
        }
    };
    if *question != Confirm::SecondOperator {
        // The keys as the keymap (and so the footer) has them.
        let keys = |action| {
            app.setup
                .keymap
                .bindings
                .iter()
                .filter(|b| b.context == Context::Confirm && b.action == action)
                .map(|b| b.key.to_string())
                .collect::<Vec<_>>()
                .join("/")
        };
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(format!(" {} ", keys(Action::Yes)), theme.banner()),
            Span::raw(format!(" {}   ", t!(lang, "overlay.yes"))),
            Span::styled(format!(" {} ", keys(Action::No)), theme.banner()),
            Span::raw(format!(" {}", t!(lang, "overlay.no"))),
        ]));
    }
    let area = centred(area, 72, 9);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {title} ")),
        ),
        area,
    );
}

/// What quitting stops, and what it leaves waiting.
fn quit_question(lines: &mut Vec<Line<'static>>, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let station = &app.setup.station;
    if app.setup.attached {
        lines.push(Line::styled(t!(lang, "overlay.quit_console"), theme.warn()));
        lines.push(Line::raw(t!(
            lang,
            "overlay.quit_keeps_running",
            station = station
        )));
    } else {
        lines.push(Line::styled(
            t!(lang, "overlay.quit_station", station = station),
            theme.warn(),
        ));
        let names: Vec<&str> = app.setup.peers.iter().map(|(p, _)| p.as_str()).collect();
        let stops = match names.as_slice() {
            [] => t!(lang, "overlay.quit_stops").to_string(),
            [one] => t!(lang, "overlay.quit_stops_link", peer = one),
            [init @ .., last] if names.len() <= 3 => t!(
                lang,
                "overlay.quit_stops_links",
                peers = init.join(t!(lang, "overlay.list_separator")),
                last = last
            ),
            _ => t!(lang, "overlay.quit_stops_peers", count = names.len()),
        };
        lines.push(Line::raw(stops));
    }
    let [flash, immediate, ..] = app.unacknowledged_counts();
    let waiting = match (flash, immediate) {
        (0, 0) => None,
        (1, 0) => Some(t!(lang, "overlay.quit_one_flash").to_string()),
        (0, 1) => Some(t!(lang, "overlay.quit_one_immediate").to_string()),
        (n, 0) => Some(t!(lang, "overlay.quit_flash", count = n)),
        (0, n) => Some(t!(lang, "overlay.quit_immediate", count = n)),
        (flash, immediate) => Some(t!(
            lang,
            "overlay.quit_flash_immediate",
            flash = flash,
            immediate = immediate
        )),
    };
    if let Some(waiting) = waiting {
        lines.push(Line::styled(waiting, theme.alert()));
    }
    if !app.composing_inject && app.form.as_ref().is_some_and(|f| !f.is_blank()) {
        lines.push(Line::raw(t!(lang, "overlay.quit_draft_kept")));
    }
}

pub fn help(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(scroll) = &app.help else { return };
    let lang = app.setup.language;
    // The keys of the screen help was opened from first, then the global
    // ones, then every other screen's: what the operator needs now is on top.
    let here = app.context();
    let mut contexts = vec![here, Context::Global];
    for b in &app.setup.keymap.bindings {
        if !contexts.contains(&b.context) {
            contexts.push(b.context);
        }
    }
    let mut lines = vec![Line::styled(t!(lang, "overlay.help_rebind"), theme.dim())];
    for context in contexts {
        let title = if context == here {
            t!(
                lang,
                "overlay.help_this_screen",
                screen = context.name(lang)
            )
        } else {
            t!(lang, "overlay.help_screen", screen = context.name(lang))
        };
        lines.push(Line::styled(title, theme.warn()));
        // One line per action, with every key bound to it here.
        let mut shown: Vec<(Vec<String>, &str)> = Vec::new();
        for b in app
            .setup
            .keymap
            .bindings
            .iter()
            .filter(|b| b.context == context)
        {
            let help = b.help(lang);
            match shown.iter_mut().find(|(_, h)| *h == help) {
                Some((keys, _)) => keys.push(b.key.to_string()),
                None => shown.push((vec![b.key.to_string()], help)),
            }
        }
        for (keys, help) in shown {
            let keys = keys.join(" ");
            lines.push(Line::raw(format!("  {keys}{} {help}", spaces(&keys, 10))));
        }
    }
    let title = format!(" {} ", t!(lang, "overlay.help_title"));
    scrolled(frame, area, lines, scroll, &title, lang);
}

/// Lines in a bordered box, wrapped, scrolled by `scroll`, with the
/// position in the title: `lines 1–18 of 40 ▼`.
pub fn scrolled(
    frame: &mut Frame<'_>,
    area: Rect,
    lines: Vec<Line<'_>>,
    scroll: &crate::console::Scroll,
    title: &str,
    lang: Language,
) {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let para = Paragraph::new(lines).wrap(Wrap { trim: false });
    let total = para.line_count(inner.width);
    let visible = usize::from(inner.height);
    let top = scroll.measured(total, visible);
    frame.render_widget(Clear, area);
    frame.render_widget(
        para.scroll((u16::try_from(top).unwrap_or(u16::MAX), 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title.to_string())
                    .title_top(Line::raw(position(lang, top, visible, total)).right_aligned()),
            ),
        area,
    );
}

/// Where a scrolled view is: `lines 1–18 of 40 ▼`, with ▲ when there is
/// more above and ▼ when there is more below.
pub fn position(lang: Language, top: usize, visible: usize, total: usize) -> String {
    if total <= visible {
        return String::new();
    }
    let last = (top + visible).min(total);
    format!(
        " {}{}{} ",
        if top > 0 { "▲ " } else { "" },
        t!(
            lang,
            "overlay.position",
            first = top + 1,
            last = last,
            total = total
        ),
        if last < total { " ▼" } else { "" }
    )
}

/// The alarm panel: every alarm on the station's board, oldest first, with
/// its age and how often its cause was seen.
pub fn alarms(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let mut lines = Vec::new();
    if app.alarms.is_empty() {
        lines.push(Line::styled(t!(lang, "overlay.no_alarm"), theme.ok()));
    }
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let first = app.alarm_pick.saturating_sub(visible - 1);
    for (i, a) in app.alarms.iter().enumerate().skip(first).take(visible) {
        let seen = if a.count > 1 {
            format!(" (×{})", a.count)
        } else {
            String::new()
        };
        let age = super::bars::age(lang, app.now, a.raised_at);
        let kind = a.kind.label(lang);
        let text = format!(
            " {}{age}  {kind}{} {}{seen}",
            spaces(&age, 6),
            spaces(kind, 18),
            inert(&a.text)
        );
        let style = if i == app.alarm_pick {
            theme.selected()
        } else {
            theme.alert()
        };
        lines.push(Line::styled(text, style));
    }
    let title = format!(
        " {} ",
        t!(lang, "overlay.alarms_title", count = app.alarms.len())
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(title)
                .border_style(theme.alert()),
        ),
        area,
    );
}

/// The after-action report, scrolled; its text comes partly from the wire,
/// so it is shown inert.
pub fn report(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some((report, scroll)) = &app.report else {
        return;
    };
    let lines: Vec<Line> = report
        .text
        .lines()
        .skip(*scroll)
        .map(|l| Line::raw(inert(l)))
        .collect();
    let total = report.text.lines().count();
    let title = format!(
        " {} ",
        t!(
            app.setup.language,
            "overlay.report_title",
            line = (*scroll + 1).min(total),
            total = total
        )
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .border_style(theme.warn()),
            ),
        area,
    );
}

/// Waiting stations the facilitator's panel shows at once.
const WAITING_SHOWN: usize = 2;

/// A fingerprint as two rows of eight groups, so that it is never cut off
/// on a narrow screen: it is what the facilitator compares, group by group.
fn fingerprint_lines(lead: &str, fingerprint: &str) -> [Line<'static>; 2] {
    let groups: Vec<String> = fingerprint
        .split(|c: char| c.is_whitespace() || c == ':')
        .filter(|g| !g.is_empty())
        .map(inert)
        .collect();
    let half = groups.len().div_ceil(2);
    let pad = " ".repeat(width_of(lead));
    [
        Line::raw(format!("{lead}{}", groups[..half].join(" "))),
        Line::raw(format!("{pad}{}", groups[half..].join(" "))),
    ]
}

/// An inject's state (as the exercise engine names it) in the reader's
/// language, upper case.
fn inject_state(lang: Language, state: &str) -> String {
    match crate::tabletop::engine::InjectState::from_id(state) {
        Some(s) => s.label(lang).to_uppercase(),
        None => inert(state).to_uppercase(),
    }
}

/// Objectives the facilitator's panel shows at once.
const OBJECTIVES_SHOWN: usize = 4;

/// The columns inside the facilitator's panel.
const WHITE_CELL_INNER: usize = 74;

/// `text` in at most `width` columns, keeping its end (what is being
/// typed), with "…" where it was cut.
fn tail(text: &str, width: usize) -> String {
    if width_of(text) <= width {
        return text.to_string();
    }
    let mut kept = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// "key label · key label" for these actions in `context`, from the
/// keymap (the first key of each).
fn key_hints(app: &App, context: Context, actions: &[Action]) -> String {
    let lang = app.setup.language;
    actions
        .iter()
        .filter_map(|a| {
            app.setup
                .keymap
                .bindings
                .iter()
                .find(|b| b.context == context && b.action == *a)
        })
        .map(|b| format!("{} {}", b.key, b.label(lang)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The facilitator's evaluation in the panel: each objective with its
/// proposed and evaluator's rating, the notes taken, and a note being typed.
fn evaluation_lines(
    lines: &mut Vec<Line<'static>>,
    app: &App,
    view: &WhiteCellView,
    theme: &Theme,
) {
    let lang = app.setup.language;
    if view.evaluation.is_empty() && view.notes == 0 && app.white_cell_note.is_none() {
        return;
    }
    if lines.last().is_some_and(|l| l.width() > 0) {
        lines.push(Line::raw(""));
    }
    if !view.evaluation.is_empty() {
        lines.push(Line::styled(
            t!(lang, "evaluation.panel_objectives"),
            theme.warn(),
        ));
        let pick = app.white_cell_objective;
        let first = pick
            .saturating_sub(OBJECTIVES_SHOWN - 1)
            .min(view.evaluation.len().saturating_sub(OBJECTIVES_SHOWN));
        let letter = |r: Option<crate::tabletop::engine::Rating>| r.map_or("—", |r| r.letter());
        let shown = || {
            view.evaluation
                .iter()
                .enumerate()
                .skip(first)
                .take(OBJECTIVES_SHOWN)
        };
        let id_column = shown()
            .map(|(_, o)| width_of(&inert(&o.id)))
            .max()
            .unwrap_or(0)
            .min(16);
        for (i, o) in shown() {
            let mark = if i == pick { "▶" } else { " " };
            let ratings = t!(
                lang,
                "evaluation.panel_rating",
                proposed = letter(o.proposed),
                rating = letter(o.rating)
            );
            // The mark, a space, the objective, a space, its ratings, a margin.
            let room = WHITE_CELL_INNER.saturating_sub(width_of(&ratings) + 4);
            let id = inert(&o.id);
            let objective = super::fit(
                &format!("{id}{}  {}", spaces(&id, id_column), inert(&o.text)),
                room,
            );
            lines.push(Line::raw(format!(
                "{mark} {objective}{} {ratings}",
                spaces(&objective, room)
            )));
        }
        if view.evaluation.len() > OBJECTIVES_SHOWN {
            lines.push(Line::styled(
                format!(
                    "  {}",
                    t!(
                        lang,
                        "evaluation.panel_objectives_more",
                        count = view.evaluation.len()
                    )
                ),
                theme.dim(),
            ));
        }
    }
    lines.push(Line::raw(format!(
        "  {}",
        t!(lang, "evaluation.panel_notes", count = view.notes)
    )));
    if let Some(note) = &app.white_cell_note {
        let lead = t!(lang, "evaluation.panel_note", kind = note.kind.label(lang));
        let room = WHITE_CELL_INNER.saturating_sub(width_of(&lead) + 4);
        lines.push(Line::styled(
            format!("  {lead} {}▏", tail(&inert(&note.text), room)),
            theme.warn(),
        ));
    }
    if !view.evaluation.is_empty() {
        lines.push(Line::styled(
            format!(
                "  {}",
                key_hints(
                    app,
                    Context::WhiteCell,
                    &[
                        Action::ChoicePrev,
                        Action::ChoiceNext,
                        Action::RateObjective,
                        Action::AddNote
                    ]
                )
            ),
            theme.dim(),
        ));
    }
}

/// The facilitator's panel: the scenario clock and every inject's state.
pub fn white_cell(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(view) = &app.white_cell else { return };
    let lang = app.setup.language;
    let mut lines = vec![
        Line::styled(
            t!(lang, "overlay.scenario", name = view.scenario),
            theme.warn(),
        ),
        Line::raw(t!(
            lang,
            "overlay.scenario_time",
            clock = crate::tabletop::scenario::format_offset(view.scenario_time),
            speed = view.speed,
            state = if view.paused {
                t!(lang, "overlay.paused")
            } else {
                t!(lang, "overlay.running")
            }
        )),
        Line::raw(""),
    ];
    if let Some(join) = &view.join {
        let (command, pin) = join.split_once(" --pin ").unwrap_or((join, ""));
        lines.push(Line::styled(t!(lang, "overlay.join_with"), theme.dim()));
        lines.push(Line::raw(format!(
            "  {}",
            t!(lang, "overlay.join_command", command = inert(command))
        )));
        lines.extend(fingerprint_lines(
            &format!("  {} ", t!(lang, "overlay.fingerprint")),
            pin,
        ));
        lines.push(Line::raw(""));
    }
    let waiting: Vec<_> = crate::console::waiting(view).collect();
    if !waiting.is_empty() {
        lines.push(Line::styled(t!(lang, "overlay.waiting"), theme.warn()));
        // A few at a time, around the selection: each takes three rows.
        let first = app
            .white_cell_pick
            .saturating_sub(WAITING_SHOWN - 1)
            .min(waiting.len().saturating_sub(WAITING_SHOWN));
        for (i, c) in waiting.iter().enumerate().skip(first).take(WAITING_SHOWN) {
            let mark = if i == app.white_cell_pick { "▶" } else { " " };
            let station = inert(&c.station);
            lines.push(Line::raw(format!(
                "{mark} {}",
                t!(
                    lang,
                    "overlay.waiting_station",
                    station = format!("{station}{}", spaces(&station, 16)),
                    remote = inert(&c.remote),
                    asked = inert(&c.asked)
                )
            )));
            lines.extend(fingerprint_lines("    ", &c.fingerprint));
        }
        if waiting.len() > WAITING_SHOWN {
            lines.push(Line::styled(
                format!(
                    "  {}",
                    t!(lang, "overlay.waiting_more", count = waiting.len())
                ),
                theme.dim(),
            ));
        }
        lines.push(Line::raw(""));
    }
    if view.join.is_some() || view.trainees.len() > 1 {
        if view.trainees.is_empty() {
            lines.push(Line::styled(t!(lang, "overlay.no_trainee"), theme.dim()));
        }
        let (up, down) = (t!(lang, "overlay.link_up"), t!(lang, "overlay.link_down"));
        let link_column = width_of(up).max(width_of(down));
        for t in &view.trainees {
            let station = inert(&t.station);
            let link = if t.link_up { up } else { down };
            lines.push(Line::raw(format!(
                "  {}",
                t!(
                    lang,
                    "overlay.trainee",
                    station = format!("{station}{}", spaces(&station, 16)),
                    link = format!("{link}{}", spaces(link, link_column)),
                    clock = crate::tabletop::scenario::format_offset(t.scenario_time),
                    delivered = t.delivered,
                    injects = t.injects,
                    met = t.met,
                    late = t.late,
                    missed = t.missed
                )
            )));
        }
        lines.push(Line::raw(""));
    }
    // Each inject's state is one trainee's: shown when there is one.
    let injects = if view.trainees.len() > 1 {
        &[][..]
    } else {
        &view.injects[..]
    };
    for (id, at, state) in injects {
        let id = inert(id);
        lines.push(Line::raw(format!(
            "  {}  {id}{} {}",
            crate::tabletop::scenario::format_offset(*at),
            spaces(&id, 24),
            inject_state(lang, state)
        )));
    }
    evaluation_lines(&mut lines, app, view, theme);
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        t!(lang, "overlay.white_cell_clock_keys"),
        theme.dim(),
    ));
    lines.push(Line::styled(
        t!(lang, "overlay.white_cell_keys"),
        theme.dim(),
    ));
    if view.join.is_some() {
        lines.push(Line::styled(
            t!(lang, "overlay.white_cell_join_keys"),
            theme.dim(),
        ));
    }
    let width = 76;
    let area = centred(area, width, (lines.len() as u16).saturating_add(2));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", t!(lang, "overlay.white_cell_title"))),
        ),
        area,
    );
}
