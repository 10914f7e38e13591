//! The log-in screen (which shows counts, never content), the handover
//! summary, confirmations and the help overlay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{Theme, centred};
use crate::console::keymap::{Action, Context};
use crate::console::{App, Confirm, LoginForm};
use crate::sanitize::inert;
use crate::templates::Catalog;

fn credentials(lines: &mut Vec<Line<'static>>, form: &LoginForm, theme: &Theme) {
    let cursor = |on: bool| if on { "▏" } else { "" };
    lines.push(Line::raw(format!(
        "  Operator:   {}{}",
        form.name,
        cursor(!form.on_passphrase)
    )));
    lines.push(Line::raw(format!(
        "  Passphrase: {}{}",
        "•".repeat(form.passphrase.chars().count()),
        cursor(form.on_passphrase)
    )));
    if form.checking {
        lines.push(Line::styled("  checking…", theme.dim()));
    }
    if let Some(e) = &form.error {
        lines.push(Line::styled(format!("  {}", inert(e)), theme.alert()));
    }
}

pub fn login(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let counts = app.unacknowledged_counts();
    let mut lines = vec![
        Line::styled(
            format!("  Station {} — console locked", app.setup.station),
            theme.warn(),
        ),
        Line::raw(""),
        Line::raw(format!(
            "  Unacknowledged: FLASH {}  IMMEDIATE {}  PRIORITY {}  ROUTINE {}",
            counts[0], counts[1], counts[2], counts[3]
        )),
        Line::raw(""),
    ];
    if app.setup.call_sign_login {
        lines.push(Line::styled(
            "  EXERCISE: type your call sign (it is recorded as the operator) and press Enter.",
            theme.warn(),
        ));
        lines.push(Line::raw(format!("  Call sign:  {}▏", app.login.name)));
        if let Some(e) = &app.login.error {
            lines.push(Line::styled(format!("  {}", inert(e)), theme.alert()));
        }
    } else {
        credentials(&mut lines, &app.login, theme);
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
        para.block(Block::default().borders(Borders::ALL).title(" LOG IN ")),
        box_area,
    );
}

pub fn handover(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let mut lines = vec![
        Line::styled(
            "Handover summary — read before taking the watch",
            theme.warn(),
        ),
        Line::raw(""),
    ];
    let unacked: Vec<_> = app.unacknowledged().collect();
    lines.push(Line::raw(format!(
        "Inbound awaiting YOUR acknowledgement: {}",
        unacked.len()
    )));
    for r in unacked.iter().take(5) {
        let overdue = if app.overdue(r) { "  OVERDUE" } else { "" };
        lines.push(Line::raw(format!(
            "  {} serial {} from {} ({}){overdue}",
            r.precedence,
            r.serial,
            inert(r.peer.as_str()),
            inert(&r.template_id)
        )));
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
    lines.push(Line::raw(format!(
        "Outbound awaiting a receipt: {}",
        no_receipt.len()
    )));
    for r in no_receipt.iter().take(3) {
        lines.push(Line::raw(format!(
            "  {} serial {} to {} ({})",
            r.precedence,
            r.serial,
            inert(r.peer.as_str()),
            r.state
        )));
    }
    lines.push(Line::raw(format!(
        "Outbound received but not yet acknowledged by the peer: {}",
        no_ack.len()
    )));
    for r in no_ack.iter().take(3) {
        lines.push(Line::raw(format!(
            "  {} serial {} to {}",
            r.precedence,
            r.serial,
            inert(r.peer.as_str())
        )));
    }
    lines.push(Line::raw(format!("Alarms up: {}", app.alarms.len())));
    for a in app.alarms.iter().rev().take(3) {
        lines.push(Line::styled(
            format!(
                "  {} ago  {}",
                super::bars::age(app.now, a.raised_at),
                inert(&a.text)
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
        lines.push(Line::raw(format!(
            "Link to {}: {}",
            l.peer,
            if l.up { "UP" } else { "DOWN" }
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Press Enter to take over.", theme.dim()));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP).title(" HANDOVER ")),
        area,
    );
}

pub fn confirm(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(question) = &app.confirm else { return };
    let mut lines: Vec<Line<'static>> = Vec::new();
    let title = match question {
        Confirm::Acknowledge { id, precedence, .. } => {
            let what = app.inbound.find(id).map_or_else(
                || format!("{precedence} message {id}"),
                crate::console::describe,
            );
            lines.push(Line::styled(format!("Acknowledge {what}?"), theme.warn()));
            lines.push(Line::raw(format!(
                "You, {}, confirm you have read it. This is sent to the sender",
                app.operator
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )));
            lines.push(Line::raw("and cannot be undone."));
            " ACKNOWLEDGE "
        }
        Confirm::Release => {
            if let Some(f) = &app.form {
                let peer = app
                    .setup
                    .peers
                    .get(f.peer)
                    .map(|(p, _)| p.clone())
                    .unwrap_or_default();
                lines.push(Line::styled(
                    format!(
                        "Release {} {} to {peer}?",
                        f.precedence,
                        f.template.title.get(app.setup.language)
                    ),
                    theme.warn(),
                ));
                lines.push(Line::raw(format!(
                    "Precedence: {}   Recipient: {peer}{}",
                    f.precedence,
                    if f.exercise { "   EXERCISE" } else { "" }
                )));
                lines.push(Line::raw(format!(
                    "Marking: {}",
                    f.label.as_deref().unwrap_or(&app.setup.labels.default)
                )));
                if let Some(second) = &app.second_operator {
                    lines.push(Line::raw(format!("Second operator: {second}")));
                }
            }
            " RELEASE "
        }
        Confirm::Cancel { id } => {
            let what = app
                .outbound
                .find(id)
                .map_or_else(|| id.to_string(), crate::console::describe);
            lines.push(Line::styled(
                format!("Cancel queued message {what}?"),
                theme.warn(),
            ));
            lines.push(Line::raw("The cancellation is audited."));
            " CANCEL "
        }
        Confirm::Quit => {
            quit_question(&mut lines, app, theme);
            " QUIT "
        }
        Confirm::Abandon => {
            lines.push(Line::styled("Abandon this draft?", theme.warn()));
            lines.push(Line::raw(
                "What you typed is thrown away. n or Esc goes back to it.",
            ));
            " ABANDON DRAFT "
        }
        Confirm::ResumeDraft(saved) => {
            let title = Catalog::builtin()
                .latest(&saved.draft.template_id)
                .map_or_else(
                    || inert(&saved.draft.template_id),
                    |t| t.title.get(app.setup.language).to_string(),
                );
            let precedence = saved
                .draft
                .precedence
                .map(|p| format!("{p} "))
                .unwrap_or_default();
            lines.push(Line::styled(
                format!(
                    "Resume your draft: {precedence}{title} to {}?",
                    inert(&saved.to)
                ),
                theme.warn(),
            ));
            lines.push(Line::raw(format!(
                "It was kept, sealed, at {} UTC ({} ago).",
                saved.saved_at.strftime("%H:%M:%S"),
                super::bars::age(app.now, saved.saved_at)
            )));
            lines.push(Line::raw("y puts it back on the form; n throws it away."));
            " KEPT DRAFT "
        }
        Confirm::SecondOperator => {
            lines.push(Line::styled(
                "FLASH needs a second operator (two-person rule).",
                theme.warn(),
            ));
            lines.push(Line::raw(
                "The second operator types their name and passphrase. Esc to go back.",
            ));
            credentials(&mut lines, &app.second, theme);
            " SECOND OPERATOR "
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
            Span::raw(" yes   "),
            Span::styled(format!(" {} ", keys(Action::No)), theme.banner()),
            Span::raw(" no"),
        ]));
    }
    let area = centred(area, 72, 9);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// What quitting stops, and what it leaves waiting.
fn quit_question(lines: &mut Vec<Line<'static>>, app: &App, theme: &Theme) {
    let station = &app.setup.station;
    if app.setup.attached {
        lines.push(Line::styled("Quit this console?", theme.warn()));
        lines.push(Line::raw(format!(
            "Station {station} keeps running (hotline serve); only this console closes."
        )));
    } else {
        lines.push(Line::styled(
            format!("Quit, and stop station {station}?"),
            theme.warn(),
        ));
        let names: Vec<&str> = app.setup.peers.iter().map(|(p, _)| p.as_str()).collect();
        let links = match names.as_slice() {
            [] => String::new(),
            [one] => format!(" and its link to {one}"),
            [init @ .., last] if names.len() <= 3 => {
                format!(" and its links to {} and {last}", init.join(", "))
            }
            _ => format!(" and its links to {} peers", names.len()),
        };
        lines.push(Line::raw(format!(
            "The station{links} stop with this console: nothing is received or sent until it runs again."
        )));
    }
    let [flash, immediate, ..] = app.unacknowledged_counts();
    let waiting: Vec<String> = [(flash, "FLASH"), (immediate, "IMMEDIATE")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, p)| format!("{n} {p}"))
        .collect();
    if !waiting.is_empty() {
        lines.push(Line::styled(
            format!(
                "{} unacknowledged: {}.",
                if flash + immediate == 1 {
                    "A message is"
                } else {
                    "Messages are"
                },
                waiting.join(" and ")
            ),
            theme.alert(),
        ));
    }
    if !app.composing_inject && app.form.as_ref().is_some_and(|f| !f.is_blank()) {
        lines.push(Line::raw(
            "Your draft is kept, sealed, and offered at your next log-in.",
        ));
    }
}

pub fn help(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(scroll) = &app.help else { return };
    // The keys of the screen help was opened from first, then the global
    // ones, then every other screen's: what the operator needs now is on top.
    let here = app.context();
    let mut contexts = vec![here, Context::Global];
    for b in &app.setup.keymap.bindings {
        if !contexts.contains(&b.context) {
            contexts.push(b.context);
        }
    }
    let mut lines = vec![Line::styled(
        "Keys can be rebound in operator.toml, [console.keys]. ↑↓ PgUp PgDn scroll; Esc, q or ? closes.",
        theme.dim(),
    )];
    for context in contexts {
        let title = if context == here {
            format!("{} (this screen):", context.name())
        } else {
            format!("{}:", context.name())
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
            match shown.iter_mut().find(|(_, help)| *help == b.help) {
                Some((keys, _)) => keys.push(b.key.to_string()),
                None => shown.push((vec![b.key.to_string()], b.help)),
            }
        }
        for (keys, help) in shown {
            lines.push(Line::raw(format!("  {:<10} {help}", keys.join(" "))));
        }
    }
    scrolled(frame, area, lines, scroll, " KEYS ");
}

/// Lines in a bordered box, wrapped, scrolled by `scroll`, with the
/// position in the title: `lines 1–18 of 40 ▼`.
pub fn scrolled(
    frame: &mut Frame<'_>,
    area: Rect,
    lines: Vec<Line<'_>>,
    scroll: &crate::console::Scroll,
    title: &str,
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
                    .title_top(Line::raw(position(top, visible, total)).right_aligned()),
            ),
        area,
    );
}

/// Where a scrolled view is: `lines 1–18 of 40 ▼`, with ▲ when there is
/// more above and ▼ when there is more below.
pub fn position(top: usize, visible: usize, total: usize) -> String {
    if total <= visible {
        return String::new();
    }
    let last = (top + visible).min(total);
    format!(
        " {}lines {}–{last} of {total}{} ",
        if top > 0 { "▲ " } else { "" },
        top + 1,
        if last < total { " ▼" } else { "" }
    )
}

/// The alarm panel: every alarm on the station's board, oldest first, with
/// its age and how often its cause was seen.
pub fn alarms(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let mut lines = Vec::new();
    if app.alarms.is_empty() {
        lines.push(Line::styled("No alarm is up.", theme.ok()));
    }
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let first = app.alarm_pick.saturating_sub(visible - 1);
    for (i, a) in app.alarms.iter().enumerate().skip(first).take(visible) {
        let seen = if a.count > 1 {
            format!(" (×{})", a.count)
        } else {
            String::new()
        };
        let text = format!(
            " {:>6}  {:<18} {}{seen}",
            super::bars::age(app.now, a.raised_at),
            a.kind.as_str().to_uppercase(),
            inert(&a.text)
        );
        let style = if i == app.alarm_pick {
            theme.selected()
        } else {
            theme.alert()
        };
        lines.push(Line::styled(text, style));
    }
    let title = format!(" ALARMS — {} up — x clear, Esc close ", app.alarms.len());
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
        " AFTER-ACTION REPORT — line {}/{total} — ↑↓ PgUp PgDn scroll, Esc close ",
        (*scroll + 1).min(total)
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
    let pad = " ".repeat(lead.chars().count());
    [
        Line::raw(format!("{lead}{}", groups[..half].join(" "))),
        Line::raw(format!("{pad}{}", groups[half..].join(" "))),
    ]
}

/// The facilitator's panel: the scenario clock and every inject's state.
pub fn white_cell(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(view) = &app.white_cell else { return };
    let clock = view.scenario_time.as_secs();
    let mut lines = vec![
        Line::styled(
            format!("Scenario `{}` — facilitator controls", view.scenario),
            theme.warn(),
        ),
        Line::raw(format!(
            "Scenario time T+{:02}:{:02}   speed {}x   {}",
            clock / 60,
            clock % 60,
            view.speed,
            if view.paused { "PAUSED" } else { "running" }
        )),
        Line::raw(""),
    ];
    if let Some(join) = &view.join {
        let (command, pin) = join.split_once(" --pin ").unwrap_or((join, ""));
        lines.push(Line::styled("Trainees join with:", theme.dim()));
        lines.push(Line::raw(format!("  {} --pin FINGERPRINT", inert(command))));
        lines.extend(fingerprint_lines("  fingerprint ", pin));
        lines.push(Line::raw(""));
    }
    let waiting: Vec<_> = crate::console::waiting(view).collect();
    if !waiting.is_empty() {
        lines.push(Line::styled(
            "Waiting to join — admit only a fingerprint the trainee reads to you:",
            theme.warn(),
        ));
        // A few at a time, around the selection: each takes three rows.
        let first = app
            .white_cell_pick
            .saturating_sub(WAITING_SHOWN - 1)
            .min(waiting.len().saturating_sub(WAITING_SHOWN));
        for (i, c) in waiting.iter().enumerate().skip(first).take(WAITING_SHOWN) {
            let mark = if i == app.white_cell_pick { "▶" } else { " " };
            lines.push(Line::raw(format!(
                "{mark} {:<16} from {}, asked {}",
                inert(&c.station),
                inert(&c.remote),
                inert(&c.asked)
            )));
            lines.extend(fingerprint_lines("    ", &c.fingerprint));
        }
        if waiting.len() > WAITING_SHOWN {
            lines.push(Line::styled(
                format!("  {} waiting in all; ↑↓ to see the others", waiting.len()),
                theme.dim(),
            ));
        }
        lines.push(Line::raw(""));
    }
    if view.join.is_some() || view.trainees.len() > 1 {
        if view.trainees.is_empty() {
            lines.push(Line::styled("No trainee admitted yet.", theme.dim()));
        }
        for t in &view.trainees {
            let clock = t.scenario_time.as_secs();
            lines.push(Line::raw(format!(
                "  {:<16} {:<4} T+{:02}:{:02}  delivered {}/{}  met {} late {} missed {}",
                inert(&t.station),
                if t.link_up { "up" } else { "DOWN" },
                clock / 60,
                clock % 60,
                t.delivered,
                t.injects,
                t.met,
                t.late,
                t.missed
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
        lines.push(Line::raw(format!(
            "  T+{:02}:{:02}  {:<24} {}",
            at.as_secs() / 60,
            at.as_secs() % 60,
            inert(id),
            state.to_uppercase()
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "p pause/resume · + faster · - slower · s skip next",
        theme.dim(),
    ));
    lines.push(Line::styled(
        "i ad-hoc inject · w report so far · Esc close",
        theme.dim(),
    ));
    if view.join.is_some() {
        lines.push(Line::styled(
            "↑↓ select a waiting station · a admit · x refuse",
            theme.dim(),
        ));
    }
    let width = 76;
    let area = centred(area, width, (lines.len() as u16).saturating_add(2));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" WHITE CELL ")),
        area,
    );
}
