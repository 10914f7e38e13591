//! The inbound queue and the sent list. Only the visible rows are built, so
//! a queue of 100,000 messages draws as fast as one of ten.

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::Theme;
use crate::console::App;
use crate::domain::{Dtg, Language, Precedence};
use crate::sanitize::inert;
use crate::store::{MessageRow, MessageState};
use crate::templates::Catalog;

fn title(template_id: &str, lang: Language) -> String {
    match Catalog::builtin().latest(template_id) {
        Some(t) => t.title.get(lang).to_string(),
        None => inert(template_id),
    }
}

/// The day-time part of the DTG (`261415Z`); the message view has it whole.
fn dtg(at: Timestamp) -> String {
    let full = Dtg(at).to_string();
    full.split(' ').next().unwrap_or_default().to_string()
}

fn left_text(app: &App, row: &MessageRow) -> String {
    if !row.state.is_unacknowledged() {
        return String::new();
    }
    let hm = |secs: u64| {
        if secs < 3600 {
            format!("{}m", secs / 60)
        } else {
            format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
        }
    };
    match app.time_left(row) {
        Some(d) if d.is_negative() => format!("OVERDUE {}", hm(d.as_secs().unsigned_abs())),
        Some(d) => hm(d.as_secs().unsigned_abs()),
        None => "?".into(),
    }
}

/// A status with its attachments' progress while they are in transfer, or
/// how many are still to come ("attachments pending").
fn with_transfer(app: &App, row: &MessageRow, status: String) -> String {
    match app.transfer_percent(&row.id) {
        Some(p) => format!("{status} ATT {p}%"),
        None if row.attachments_done < row.attachments && !row.state.is_abandoned() => {
            format!("{status} ATT {}/{}", row.attachments_done, row.attachments)
        }
        None => status,
    }
}

/// The first row to show so that `selected` is visible in `height` rows.
fn window(selected: usize, len: usize, height: usize) -> std::ops::Range<usize> {
    if height == 0 || len == 0 {
        return 0..0;
    }
    let start = selected
        .saturating_sub(height - 1)
        .min(len.saturating_sub(height));
    start..(start + height).min(len)
}

/// What one list adds to the columns both lists share.
struct Columns<'a> {
    title: Line<'a>,
    peer: &'static str,
    headers: &'static [&'static str],
    widths: &'static [Constraint],
    empty: &'static str,
}

/// Draws the visible window of `rows`: the shared columns (mark, EX,
/// precedence, serial, DTG, peer, form), then each list's own, given with
/// its style by `own`.
fn table(
    frame: &mut Frame<'_>,
    area: Rect,
    theme: &Theme,
    app: &App,
    (rows, selected): (&crate::console::rows::Rows, usize),
    columns: Columns<'_>,
    own: impl Fn(&MessageRow) -> (Vec<Cell<'static>>, ratatui::style::Style),
) {
    let height = usize::from(area.height.saturating_sub(2));
    let range = window(selected, rows.len(), height);
    let lang = app.setup.language;
    let shown: Vec<Row> = rows
        .iter_from(range.start)
        .take(range.len())
        .enumerate()
        .map(|(i, r)| {
            let is_selected = range.start + i == selected;
            let (extra, mut style) = own(r);
            if is_selected {
                style = style.patch(theme.selected());
            }
            let mut cells = vec![
                Cell::from(if is_selected { "▶" } else { " " }),
                Cell::from(if r.exercise { "EX" } else { "" }),
                Cell::from(r.precedence.as_str()),
                Cell::from(r.serial.to_string()),
                Cell::from(dtg(r.released_at)),
                Cell::from(inert(r.peer.as_str())),
                Cell::from(title(&r.template_id, lang)),
            ];
            cells.extend(extra);
            Row::new(cells).style(style)
        })
        .collect();
    let mut headers = vec!["", "", "PREC", "SER", "DTG", columns.peer, "FORM"];
    headers.extend_from_slice(columns.headers);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Min(10),
    ];
    widths.extend_from_slice(columns.widths);
    let table = Table::new(shown, widths)
        .header(Row::new(headers).style(theme.dim()))
        .block(Block::default().borders(Borders::TOP).title(columns.title));
    frame.render_widget(table, area);
    if rows.is_empty() {
        let empty = ratatui::widgets::Paragraph::new(columns.empty).style(theme.dim());
        frame.render_widget(
            empty,
            Rect {
                y: area.y + 2,
                height: 1,
                ..area
            },
        );
    }
}

pub fn inbound(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let unacknowledged: usize = app.unacknowledged_counts().iter().sum();
    let columns = Columns {
        title: Line::from(vec![
            Span::raw(" INBOUND "),
            Span::styled(
                format!(
                    "{} messages, {unacknowledged} unacknowledged ",
                    app.inbound.len()
                ),
                theme.dim(),
            ),
        ]),
        peer: "FROM",
        headers: &["STATUS", "LEFT"],
        widths: &[Constraint::Length(13), Constraint::Length(14)],
        empty: "  No messages received.",
    };
    table(
        frame,
        area,
        theme,
        app,
        (&app.inbound, app.selected_in),
        columns,
        |r| {
            let unacked = r.state.is_unacknowledged();
            let status = if unacked {
                "UNACK".to_string()
            } else {
                format!("ACK {}", inert(r.ack_by.as_deref().unwrap_or("")))
            };
            let style = match (app.overdue(r), unacked, r.precedence) {
                (true, _, _) => theme.alert(),
                (_, true, Precedence::Flash) if app.flash_on => theme.banner(),
                (_, true, Precedence::Flash | Precedence::Immediate) => theme.warn(),
                (_, false, _) => theme.dim(),
                _ => Default::default(),
            };
            (
                vec![
                    Cell::from(with_transfer(app, r, status)),
                    Cell::from(left_text(app, r)),
                ],
                style,
            )
        },
    );
}

/// The sent list's state column: the state with what the operator needs
/// beside it (who acknowledged, why refused). Until the receipt comes, a
/// sent message says so: it must not look delivered.
fn out_state(app: &App, r: &MessageRow) -> String {
    match r.state {
        MessageState::Sent => "SENT, NO RECEIPT".into(),
        MessageState::Receipted if app.ack_overdue(r) => "RECEIVED, ACK OVERDUE".into(),
        MessageState::Acknowledged => {
            format!("ACK BY {}", inert(r.ack_by.as_deref().unwrap_or("?")))
        }
        MessageState::Refused => {
            format!("REFUSED: {}", inert(r.refusal.as_deref().unwrap_or("")))
        }
        state => state.label().into(),
    }
}

pub fn outbound(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let mut title = vec![
        Span::raw(" SENT "),
        Span::styled(format!("{} messages ", app.outbound.len()), theme.dim()),
    ];
    // The two-person rule, for the selected message: the row has no room
    // for two names, the title line has.
    if let Some(r) = app.outbound.get(app.selected_out)
        && let Some(second) = &r.second_operator
    {
        title.push(Span::styled(
            format!(
                "· serial {} released by {} and {} ",
                r.serial,
                inert(r.operator.as_str()),
                inert(second.as_str())
            ),
            theme.dim(),
        ));
    }
    let columns = Columns {
        title: Line::from(title),
        peer: "TO",
        headers: &["STATE"],
        widths: &[Constraint::Length(30)],
        empty: "  Nothing sent yet.",
    };
    table(
        frame,
        area,
        theme,
        app,
        (&app.outbound, app.selected_out),
        columns,
        |r| {
            let style = match r.state {
                MessageState::Refused => theme.alert(),
                MessageState::Receipted if app.ack_overdue(r) => theme.alert(),
                MessageState::Queued | MessageState::Sent => theme.warn(),
                MessageState::Cancelled => theme.dim(),
                _ => Default::default(),
            };
            (
                vec![Cell::from(with_transfer(app, r, out_state(app, r)))],
                style,
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn window_keeps_the_selection_visible() {
        assert_eq!(window(0, 100_000, 10), 0..10);
        assert_eq!(window(15, 100_000, 10), 6..16);
        assert_eq!(window(99_999, 100_000, 10), 99_990..100_000);
        assert_eq!(window(3, 5, 10), 0..5);
        assert_eq!(window(0, 0, 10), 0..0);
    }
}
