//! The message view: the rendering in the reader's language, marked as a
//! rendering, with the sender's original one key away.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::Theme;
use crate::console::App;
use crate::sanitize::{inert, inert_lines};
use crate::t;
use crate::templates::{Catalog, OriginalCheck, ReaderView, check_original, for_reader};

pub fn message(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(reading) = &app.reading else { return };
    let lang = app.setup.language;
    let mut lines: Vec<Line> = Vec::new();
    match (&reading.message, &reading.error) {
        (_, Some(e)) => lines.push(Line::styled(
            t!(lang, "reading.cannot_open", error = e),
            theme.alert(),
        )),
        (None, None) => lines.push(Line::raw(t!(lang, "reading.opening"))),
        (Some(m), None) => {
            let view = for_reader(m, Catalog::builtin(), lang);
            let sender: Option<crate::domain::Language> = m.original.language.parse().ok();
            let original_name =
                || sender.map_or_else(|| inert(&m.original.language), crate::lang::name);
            let (mark, text) = if reading.show_original {
                (
                    t!(
                        lang,
                        "reading.original",
                        language = inert(&m.original.language)
                    ),
                    m.original.text.clone(),
                )
            } else {
                match &view {
                    ReaderView::Rendered { text, language } if *language == lang => {
                        (t!(lang, "reading.rendered").to_string(), text.clone())
                    }
                    ReaderView::Rendered { text, language } => (
                        t!(
                            lang,
                            "reading.rendered_fallback",
                            yours = crate::lang::name(lang),
                            language = crate::lang::name(*language)
                        ),
                        text.clone(),
                    ),
                    ReaderView::Original { text } if sender == Some(lang) => {
                        (t!(lang, "reading.original_yours").to_string(), text.clone())
                    }
                    ReaderView::Original { text } => (
                        t!(
                            lang,
                            "reading.original_fallback",
                            yours = crate::lang::name(lang),
                            language = original_name()
                        ),
                        text.clone(),
                    ),
                    ReaderView::OriginalOnly { text, reason } => (
                        t!(lang, "reading.original_only", reason = inert(reason)),
                        text.clone(),
                    ),
                }
            };
            lines.push(Line::styled(mark, theme.warn()));
            if m.exercise {
                lines.push(Line::styled(t!(lang, "reading.exercise"), theme.banner()));
            }
            lines.push(Line::raw(""));
            match check_original(m, Catalog::builtin(), lang) {
                // Two texts for one message: both are shown, marked, and
                // neither is taken for the other.
                OriginalCheck::Differs { rendered } => {
                    lines.push(Line::styled(t!(lang, "reading.differs"), theme.alert()));
                    lines.push(Line::raw(""));
                    lines.push(Line::styled(t!(lang, "reading.from_fields"), theme.warn()));
                    lines.extend(inert_lines(&rendered).into_iter().map(Line::raw));
                    lines.push(Line::raw(""));
                    lines.push(Line::styled(
                        t!(lang, "reading.senders_original"),
                        theme.warn(),
                    ));
                    lines.extend(inert_lines(&m.original.text).into_iter().map(Line::raw));
                }
                check => {
                    lines.extend(inert_lines(&text).into_iter().map(Line::raw));
                    if let OriginalCheck::NotChecked { reason } = check {
                        lines.push(Line::styled(
                            t!(lang, "reading.not_checked", reason = inert(&reason)),
                            theme.dim(),
                        ));
                    }
                }
            }
            if !m.attachments.is_empty() {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    t!(lang, "reading.attachments", count = m.attachments.len()),
                    theme.warn(),
                ));
                for (i, a) in m.attachments.iter().enumerate() {
                    lines.push(Line::raw(format!(
                        "{}. {}  {}  sha256 {}",
                        i + 1,
                        inert(&a.name),
                        crate::domain::format_size(a.size),
                        inert(&a.sha256)
                    )));
                }
            }
            // The two-person rule, as signed in the message.
            if let Some(second) = &m.second_operator {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    t!(
                        lang,
                        "reading.two_person",
                        first = inert(m.operator.as_str()),
                        second = inert(second.as_str())
                    ),
                    theme.dim(),
                ));
            }
            if let Some(row) = app.inbound.find(&m.id).or_else(|| app.outbound.find(&m.id)) {
                lines.push(Line::raw(""));
                let ack = match (&row.ack_by, &row.ack_at) {
                    (Some(by), Some(at)) => t!(
                        lang,
                        "reading.acknowledged",
                        by = inert_lines(by).join(" "),
                        at = at.strftime("%Y-%m-%dT%H:%M")
                    ),
                    _ => t!(lang, "reading.not_acknowledged").to_string(),
                };
                lines.push(Line::from(vec![
                    Span::styled(
                        t!(lang, "reading.state", state = row.state.label(lang)),
                        theme.dim(),
                    ),
                    Span::styled(ack, theme.dim()),
                ]));
                lines.push(Line::styled(
                    t!(lang, "reading.id", id = row.id),
                    theme.dim(),
                ));
            }
        }
    }
    let inner = Block::default().borders(Borders::TOP).inner(area);
    let para = Paragraph::new(lines).wrap(Wrap { trim: false });
    let total = para.line_count(inner.width);
    let visible = usize::from(inner.height);
    let top = reading.scroll.measured(total, visible);
    let para = para
        .scroll((u16::try_from(top).unwrap_or(u16::MAX), 0))
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title(format!(" {} ", t!(lang, "reading.title")))
                .title_top(
                    Line::raw(super::overlays::position(lang, top, visible, total)).right_aligned(),
                ),
        );
    frame.render_widget(para, area);
}
