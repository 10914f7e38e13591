//! The message view: the rendering in the reader's language, marked as a
//! rendering, with the sender's original one key away.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::Theme;
use crate::console::App;
use crate::sanitize::{inert, inert_lines};
use crate::templates::{Catalog, OriginalCheck, ReaderView, check_original, for_reader};

pub fn message(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let Some(reading) = &app.reading else { return };
    let mut lines: Vec<Line> = Vec::new();
    match (&reading.message, &reading.error) {
        (_, Some(e)) => lines.push(Line::styled(
            format!("This message cannot be opened: {e}"),
            theme.alert(),
        )),
        (None, None) => lines.push(Line::raw("opening…")),
        (Some(m), None) => {
            let view = for_reader(m, Catalog::builtin(), app.setup.language);
            let (mark, text) = if reading.show_original {
                (
                    format!(
                        "THE SENDER'S ORIGINAL ({}) — press o for the rendering",
                        inert(&m.original.language)
                    ),
                    m.original.text.clone(),
                )
            } else {
                match &view {
                    ReaderView::Rendered { text, .. } => (
                        "RENDERED in your language from the template fields (free text stays in the original language) — press o for the sender's original".into(),
                        text.clone(),
                    ),
                    ReaderView::Original { text } => ("THE SENDER'S ORIGINAL (in your language)".into(), text.clone()),
                    ReaderView::OriginalOnly { text, reason } => (format!("THE SENDER'S ORIGINAL: not rendered here because {}", inert(reason)), text.clone()),
                }
            };
            lines.push(Line::styled(mark, theme.warn()));
            if m.exercise {
                lines.push(Line::styled(
                    "EXERCISE — NOT A REAL-WORLD MESSAGE",
                    theme.banner(),
                ));
            }
            lines.push(Line::raw(""));
            match check_original(m, Catalog::builtin()) {
                // Two texts for one message: both are shown, marked, and
                // neither is taken for the other.
                OriginalCheck::Differs { rendered } => {
                    lines.push(Line::styled(
                        "ORIGINAL DIFFERS FROM FIELDS: the sender's original says something its signed fields do not. Both follow.",
                        theme.alert(),
                    ));
                    lines.push(Line::raw(""));
                    lines.push(Line::styled("FROM THE SIGNED FIELDS:", theme.warn()));
                    lines.extend(inert_lines(&rendered).into_iter().map(Line::raw));
                    lines.push(Line::raw(""));
                    lines.push(Line::styled("THE SENDER'S ORIGINAL:", theme.warn()));
                    lines.extend(inert_lines(&m.original.text).into_iter().map(Line::raw));
                }
                check => {
                    lines.extend(inert_lines(&text).into_iter().map(Line::raw));
                    if let OriginalCheck::NotChecked { reason } = check {
                        lines.push(Line::styled(
                            format!(
                                "(original not checked against the fields: {})",
                                inert(&reason)
                            ),
                            theme.dim(),
                        ));
                    }
                }
            }
            if !m.attachments.is_empty() {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    format!(
                        "ATTACHMENTS ({}), as the signed message lists them — export with `hotline export ID --attachments DIR`",
                        m.attachments.len()
                    ),
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
                    format!(
                        "released by {} and {} (two-person rule)",
                        inert(m.operator.as_str()),
                        inert(second.as_str())
                    ),
                    theme.dim(),
                ));
            }
            if let Some(row) = app.inbound.find(&m.id).or_else(|| app.outbound.find(&m.id)) {
                lines.push(Line::raw(""));
                let ack = match (&row.ack_by, &row.ack_at) {
                    (Some(by), Some(at)) => format!(
                        "acknowledged by {} at {}",
                        inert_lines(by).join(" "),
                        at.strftime("%Y-%m-%dT%H:%M")
                    ),
                    _ => "NOT ACKNOWLEDGED".into(),
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("state: {}  ", row.state.label()), theme.dim()),
                    Span::styled(ack, theme.dim()),
                ]));
                lines.push(Line::styled(format!("id {}", row.id), theme.dim()));
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
                .title(" MESSAGE ")
                .title_top(
                    Line::raw(super::overlays::position(top, visible, total)).right_aligned(),
                ),
        );
    frame.render_widget(para, area);
}
