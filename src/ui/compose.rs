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
use crate::t;
use crate::templates::{Catalog, FieldKind, render};

pub fn picker(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let mut lines = vec![
        Line::from(vec![
            Span::raw(t!(lang, "compose.filter")),
            Span::styled(format!("{}▏", app.picker.filter), theme.warn()),
        ]),
        Line::raw(""),
    ];
    let matches = app.picker.matches(Catalog::builtin(), lang);
    if matches.is_empty() {
        lines.push(Line::styled(t!(lang, "compose.no_match"), theme.dim()));
    }
    for (i, t) in matches.iter().enumerate() {
        let selected = i == app.picker.selected;
        let mut text = format!(
            "{} {:<10} {}  ({} v{})",
            if selected { "▶" } else { " " },
            t.precedence.as_str(),
            t.title.get(lang),
            t.id,
            t.version
        );
        if !t.speaks(lang) {
            text.push_str(&t!(
                lang,
                "compose.fallback_mark",
                language = crate::lang::name(t.rendered_in(lang))
            ));
        }
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
            t!(
                lang,
                "compose.reply_to",
                handles = app
                    .reply_refs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            theme.dim(),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::TOP)
                .title(format!(" {} ", t!(lang, "compose.title"))),
        ),
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
        .map_or(t!(lang, "compose.no_peer"), |(p, _)| p.as_str());
    let peer = if app.composing_inject {
        t!(lang, "compose.inject_to")
    } else {
        peer
    };
    lines.push(Line::raw(t!(
        lang,
        "compose.to",
        mark = mark(&Row::Peer),
        peer = peer
    )));
    lines.push(Line::raw(t!(
        lang,
        "compose.precedence",
        mark = mark(&Row::Precedence),
        precedence = form.precedence
    )));
    if !form.template.speaks(lang) {
        lines.push(Line::styled(
            t!(
                lang,
                "compose.fallback",
                yours = crate::lang::name(lang),
                language = crate::lang::name(form.template.rendered_in(lang))
            ),
            theme.warn(),
        ));
    }
    for (i, field) in form.template.fields.iter().enumerate() {
        let row = Row::Field(i);
        let value = &form.values[i];
        let hint = match &field.kind {
            FieldKind::Choice(choices) => choices
                .iter()
                .find(|c| c.value == *value)
                .map_or(t!(lang, "compose.choose").to_string(), |c| {
                    format!("= {}", c.label(lang))
                }),
            // Examples say so in words, not by colour alone: under
            // NO_COLOR a dim example would read as a typed value.
            FieldKind::DateTime => t!(lang, "compose.example_datetime").into(),
            FieldKind::Coordinates => t!(lang, "compose.example_coordinates").into(),
            FieldKind::Duration => t!(lang, "compose.example_duration").into(),
            FieldKind::Area => t!(lang, "compose.example_area").into(),
            _ => String::new(),
        };
        let problem = form.problem(i, app.now, lang);
        let required = if field.required { "*" } else { " " };
        let mut spans = vec![
            Span::raw(t!(
                lang,
                "compose.field",
                mark = mark(&row),
                required = required,
                label = field.label.get(lang)
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
    if let Some(why) = form.short_notice(app.now, lang) {
        lines.push(Line::styled(
            t!(lang, "compose.short_notice", why = why),
            theme.alert(),
        ));
    }
    lines.push(Line::raw(t!(
        lang,
        "compose.free_text",
        mark = mark(&Row::Text),
        language = crate::lang::name(form.text_language.unwrap_or(lang)),
        text = form.text.replace('\n', "⏎"),
        cursor = if focus == Row::Text { "▏" } else { "" }
    )));
    lines.push(Line::raw(t!(
        lang,
        "compose.attach",
        mark = mark(&Row::Attach),
        path = inert(&form.attach_input),
        cursor = if focus == Row::Attach { "▏" } else { "" }
    )));
    for path in &form.attachments {
        lines.push(Line::styled(format!("    📎 {}", inert(path)), theme.dim()));
    }
    let labels = &app.setup.labels;
    lines.push(Line::raw(t!(
        lang,
        "compose.marking",
        mark = mark(&Row::Label),
        marking = form.label.as_deref().unwrap_or(&labels.default),
        note = if form.label.is_none() {
            t!(lang, "compose.marking_default")
        } else {
            ""
        }
    )));
    if !form.references.is_empty() {
        lines.push(Line::styled(
            t!(
                lang,
                "compose.references",
                handles = form
                    .references
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            theme.dim(),
        ));
    }
    let title = t!(
        lang,
        "compose.form_title",
        title = form.template.title.get(lang),
        version = form.template.version,
        exercise = if form.exercise {
            t!(lang, "compose.exercise")
        } else {
            ""
        }
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
    let own = app.setup.language;
    // The second half: a reader in English, or where the operator reads
    // English, in the first other shipped language.
    let other = if own == Language::EN {
        crate::lang::shipped_languages()
            .into_iter()
            .find(|l| *l != own)
            .unwrap_or(Language::EN)
    } else {
        Language::EN
    };
    for (half, lang) in halves.iter().zip([own, other]) {
        let text = match (&checked, &station, &to, &operator) {
            (Ok(c), Some(s), Some(t), Some(op)) => {
                let origin = Origin {
                    station: s.clone(),
                    operator: op.clone(),
                    second_operator: None,
                    language: app.setup.language,
                };
                let m = build(c, &origin, t, 0, app.now);
                render(&m, &c.template, c.template.rendered_in(lang), own)
            }
            (Err(e), ..) => t!(own, "compose.not_ready", problems = e),
            _ => t!(own, "compose.no_peer_configured").into(),
        };
        let title = t!(
            own,
            "compose.preview",
            language = crate::lang::name(lang),
            whose = if lang == own {
                t!(own, "compose.preview_original")
            } else {
                t!(own, "compose.preview_rendering")
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
