//! Composing: the template picker and the form, with live validation and a
//! preview of exactly what the peer will read, in both languages.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::Theme;
use crate::compose::{Origin, build, check};
use crate::console::App;
use crate::console::form::Row;
use crate::domain::{Language, OperatorName, StationName};
use crate::sanitize::inert;
use crate::templates::{Catalog, FieldKind, render};

pub fn picker(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Template (type to filter): "),
            Span::styled(format!("{}▏", app.picker.filter), theme.warn()),
        ]),
        Line::raw(""),
    ];
    let matches = app.picker.matches(Catalog::builtin(), lang);
    if matches.is_empty() {
        lines.push(Line::styled("  no template matches", theme.dim()));
    }
    for (i, t) in matches.iter().enumerate() {
        let selected = i == app.picker.selected;
        let text = format!(
            "{} {:<10} {}  ({} v{})",
            if selected { "▶" } else { " " },
            t.precedence.as_str(),
            t.title.get(lang),
            t.id,
            t.version
        );
        lines.push(Line::styled(
            text,
            if selected {
                theme.selected()
            } else {
                Default::default()
            },
        ));
    }
    if !app.reply_refs.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!(
                "reply to {}",
                app.reply_refs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            theme.dim(),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(" COMPOSE ")),
        area,
    );
}

pub fn form(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(form) = &app.form else { return };
    let lang = app.setup.language;
    let focus = form.focused();
    let mut lines = Vec::new();
    let mark = |row: &Row| if *row == focus { "▶" } else { " " };
    let peer = app
        .setup
        .peers
        .get(form.peer)
        .map_or("(no peer configured)", |(p, _)| p.as_str());
    let peer = if app.composing_inject {
        "the trainee, from the white cell (ad-hoc inject)"
    } else {
        peer
    };
    lines.push(Line::raw(format!(
        "{} To:          ◀ {peer} ▶",
        mark(&Row::Peer)
    )));
    lines.push(Line::raw(format!(
        "{} Precedence:  ◀ {} ▶",
        mark(&Row::Precedence),
        form.precedence
    )));
    for (i, field) in form.template.fields.iter().enumerate() {
        let row = Row::Field(i);
        let value = &form.values[i];
        let hint = match &field.kind {
            FieldKind::Choice(choices) => choices
                .iter()
                .find(|c| c.value == *value)
                .map_or("◀ ▶ to choose".to_string(), |c| {
                    format!("= {}", c.label(lang))
                }),
            // Examples say so in words, not by colour alone: under
            // NO_COLOR a dim example would read as a typed value.
            FieldKind::DateTime => "(e.g. now, +30m, 261415Z NOV 26)".into(),
            FieldKind::Coordinates => "(e.g. 45.92N 63.34E)".into(),
            FieldKind::Duration => "(e.g. 2h 30m)".into(),
            FieldKind::Area => {
                "(e.g. circle 45.92N 63.34E radius 50 km; points …; water NAME)".into()
            }
            _ => String::new(),
        };
        let problem = form.problem(i, app.now);
        let required = if field.required { "*" } else { " " };
        let mut spans = vec![
            Span::raw(format!(
                "{} {required}{}: ",
                mark(&row),
                field.label.get(lang)
            )),
            Span::styled(
                format!(
                    "{}{}",
                    value.replace('\n', "⏎"),
                    if row == focus { "▏" } else { "" }
                ),
                if row == focus {
                    theme.warn()
                } else {
                    Default::default()
                },
            ),
            Span::styled(format!("  {hint}"), theme.dim()),
        ];
        match problem {
            Some(p) if !value.is_empty() || row != focus => {
                spans.push(Span::styled(format!("  ✗ {p}"), theme.alert()))
            }
            Some(_) => {}
            None if !value.is_empty() => spans.push(Span::styled("  ✓", theme.ok())),
            None => {}
        }
        lines.push(Line::from(spans));
    }
    if let Some(why) = form.short_notice(app.now) {
        lines.push(Line::styled(
            format!("  ⚠ SHORT NOTICE: {why}"),
            theme.alert(),
        ));
    }
    lines.push(Line::raw(format!(
        "{} Free text, in ◀ {} ▶ (sent as written; Enter for a new line): {}{}",
        mark(&Row::Text),
        form.text_language.unwrap_or(lang).native_name(),
        form.text.replace('\n', "⏎"),
        if focus == Row::Text { "▏" } else { "" }
    )));
    lines.push(Line::raw(format!(
        "{} Attach a file (type a path, → completes, Enter adds): {}{}",
        mark(&Row::Attach),
        inert(&form.attach_input),
        if focus == Row::Attach { "▏" } else { "" }
    )));
    for path in &form.attachments {
        lines.push(Line::styled(format!("    📎 {}", inert(path)), theme.dim()));
    }
    let labels = &app.setup.labels;
    lines.push(Line::raw(format!(
        "{} Marking:     ◀ {} ▶{}",
        mark(&Row::Label),
        form.label.as_deref().unwrap_or(&labels.default),
        if form.label.is_none() {
            " (the default; never lower than what it answers)"
        } else {
            ""
        }
    )));
    if !form.references.is_empty() {
        lines.push(Line::styled(
            format!(
                "  References: {}",
                form.references
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            theme.dim(),
        ));
    }
    let title = format!(
        " COMPOSE: {} (v{}){} ",
        form.template.title.get(lang),
        form.template.version,
        if form.exercise { " — EXERCISE" } else { "" }
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP).title(title)),
        area,
    );
    if app.preview {
        preview(frame, area, app, theme);
    }
}

/// Both renderings, built exactly as the release will build them.
fn preview(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(form) = &app.form else { return };
    frame.render_widget(Clear, area);
    let halves =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(area);
    let checked = check(&form.draft(), Catalog::builtin(), app.now);
    let (station, to) = (
        StationName::new(&app.setup.station).ok(),
        app.setup
            .peers
            .get(form.peer)
            .and_then(|(p, _)| StationName::new(p).ok()),
    );
    let operator = app
        .operator
        .clone()
        .or_else(|| OperatorName::new("operator").ok());
    for (half, lang) in halves.iter().zip(Language::ALL) {
        let text = match (&checked, &station, &to, &operator) {
            (Ok(c), Some(s), Some(t), Some(op)) => {
                let origin = Origin {
                    station: s.clone(),
                    operator: op.clone(),
                    second_operator: None,
                    language: app.setup.language,
                };
                let m = build(c, &origin, t, 0, app.now);
                render(&m, &c.template, lang, app.setup.language)
            }
            (Err(e), ..) => format!("Not ready to release:\n{e}"),
            _ => "No peer configured.".into(),
        };
        let title = format!(
            " PREVIEW {} {} ",
            lang.native_name(),
            if lang == app.setup.language {
                "(your original)"
            } else {
                "(the peer's rendering)"
            }
        );
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .border_style(theme.warn()),
            ),
            *half,
        );
    }
}
