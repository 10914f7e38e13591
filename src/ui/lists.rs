//! The inbound queue and the sent list. Only the visible rows are built, so
//! a queue of 100,000 messages draws as fast as one of ten.

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::{Theme, fit, width_of};
use crate::console::App;
use crate::domain::{Dtg, Language, MessageId, Precedence};
use crate::sanitize::inert;
use crate::store::{MessageRow, MessageState};
use crate::t;
use crate::templates::Catalog;

/// What names a message in a list: its subject where the template's
/// summary field is a subject, else the form's title with the summary
/// (`Ballistic missile launch notification: 261500Z NOV 26`), else the
/// form's title alone (a station that has not opened it yet).
fn title(row: &MessageRow, lang: Language) -> String {
    let template = Catalog::builtin().latest(&row.template_id);
    let form = template.map_or_else(
        || inert(&row.template_id),
        |t| t.title.get(lang).to_string(),
    );
    match (&row.subject, template) {
        (Some(s), Some(t)) if t.summary == "subject" => inert(s),
        (Some(s), _) => t!(lang, "lists.form_subject", form = form, subject = inert(s)),
        (None, _) => form,
    }
}

/// `text` headed by the row's security marking (flagged when this
/// station's policy does not list it).
fn marked(
    row: &MessageRow,
    labels: &crate::config::LabelPolicy,
    text: String,
    lang: Language,
) -> String {
    match &row.label {
        Some(l) if labels.rank(l).is_some() => format!("‹{}› {text}", inert(l)),
        Some(l) => t!(
            lang,
            "lists.unknown_marking",
            marking = inert(l),
            text = text
        ),
        None => text,
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
    let lang = app.setup.language;
    let hm = |secs: u64| {
        if secs < 3600 {
            t!(lang, "lists.minutes", minutes = secs / 60)
        } else {
            t!(
                lang,
                "lists.hours_minutes",
                hours = secs / 3600,
                minutes = format!("{:02}", (secs % 3600) / 60)
            )
        }
    };
    match app.time_left(row) {
        Some(d) if d.is_negative() => {
            t!(lang, "lists.overdue", time = hm(d.as_secs().unsigned_abs()))
        }
        Some(d) => hm(d.as_secs().unsigned_abs()),
        None => "?".into(),
    }
}

/// A status with its attachments' progress while they are in transfer, or
/// how many are still to come ("attachments pending").
fn with_transfer(app: &App, row: &MessageRow, status: String) -> String {
    let lang = app.setup.language;
    match app.transfer_percent(&row.id) {
        Some(p) => t!(lang, "lists.transfer_percent", status = status, percent = p),
        None if row.attachments_done < row.attachments && !row.state.is_abandoned() => t!(
            lang,
            "lists.transfer_count",
            status = status,
            done = row.attachments_done,
            total = row.attachments
        ),
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

/// How a list's own column takes its width.
#[derive(Clone, Copy)]
enum Fit {
    /// Always its natural width (the widest of its header and cells).
    Whole,
    /// Shares what is left with the form column, which gives way first;
    /// cut with a visible "…" only when even that is not enough.
    Rest,
}

/// What one list adds to the columns both lists share.
struct Columns<'a> {
    title: Line<'a>,
    peer: &'static str,
    headers: Vec<&'static str>,
    fits: &'static [Fit],
    empty: &'static str,
}

/// The widest a peer's name is shown in a list before it ends in "…".
const PEER_MAX: usize = 16;
/// The form column is dropped rather than shown narrower than this.
const FORM_MIN: usize = 6;

/// Column widths for `natural` widths: precedence, serial, DTG and each
/// `Whole` column at their natural width (never cut); the peer up to
/// [`PEER_MAX`]; what is left to the `Rest` column (at most its natural
/// width) and the form, which gives way first and goes below [`FORM_MIN`].
fn widths(natural: &[usize], fits: &[Fit], total: usize, form: usize) -> Vec<usize> {
    let mut w: Vec<usize> = natural.to_vec();
    let peer = form - 1;
    w[peer] = w[peer].min(PEER_MAX);
    let shown = |w: &[usize]| w.iter().filter(|&&x| x > 0).count();
    let fixed = |w: &[usize], skip: &[usize]| {
        let cols: usize = w
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .map(|(_, x)| *x)
            .sum();
        cols + shown(w).saturating_sub(1)
    };
    let rest: Vec<usize> = fits
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f, Fit::Rest))
        .map(|(i, _)| form + 1 + i)
        .collect();
    let mut skip = vec![form];
    skip.extend(&rest);
    let left = total.saturating_sub(fixed(&w, &skip));
    let wanted: usize = rest.iter().map(|&i| natural[i]).sum();
    if left >= wanted + FORM_MIN {
        w[form] = left - wanted;
    } else {
        w[form] = 0;
        // Without the form column there is one gap less.
        let left = left + 1;
        let mut room = left.saturating_sub(rest.len().saturating_sub(1));
        for &i in &rest {
            w[i] = natural[i].min(room);
            room -= w[i];
        }
    }
    w
}

/// Draws the visible window of `rows`: the shared columns (mark, EX,
/// precedence, serial, DTG, peer, form), then each list's own, given with
/// its style by `own`. Nothing that carries meaning is cut: columns take
/// their natural widths, and the form gives way first (see [`widths`]).
fn table(
    frame: &mut Frame<'_>,
    area: Rect,
    theme: &Theme,
    app: &App,
    (rows, selected): (&crate::console::rows::Rows, usize),
    columns: Columns<'_>,
    own: impl Fn(&MessageRow) -> (Vec<String>, ratatui::style::Style),
) {
    let height = usize::from(area.height.saturating_sub(2));
    // Under a find only the matches are listed, the selection among them;
    // only the visible window of them is looked up.
    let matches: Option<&[MessageId]> =
        crate::console::find::active(app).and_then(|f| f.matches.as_deref());
    let selected_id = rows.get(selected).map(|r| r.id);
    let (len, selected) = match matches {
        Some(m) => (
            m.len(),
            m.iter()
                .position(|id| Some(*id) == selected_id)
                .unwrap_or(usize::MAX),
        ),
        None => (rows.len(), selected),
    };
    let range = window(selected.min(len.saturating_sub(1)), len, height);
    let visible: Vec<&MessageRow> = match matches {
        Some(m) => m[range.clone()]
            .iter()
            .filter_map(|id| rows.find(id))
            .collect(),
        None => rows.iter_from(range.start).take(range.len()).collect(),
    };
    let lang = app.setup.language;
    let exercise = rows.any_exercise();
    let ex = t!(lang, "lists.exercise");
    let mut headers = vec![
        "",
        if exercise { ex } else { "" },
        t!(lang, "lists.precedence"),
        t!(lang, "lists.serial"),
        t!(lang, "lists.dtg"),
    ];
    headers.push(columns.peer);
    headers.push(t!(lang, "lists.subject"));
    headers.extend(columns.headers);
    let form = 6;
    let built: Vec<(Vec<String>, ratatui::style::Style)> = visible
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let is_selected = range.start + i == selected;
            let (extra, mut style) = own(r);
            if is_selected {
                style = style.patch(theme.selected());
            }
            let mut cells = vec![
                (if is_selected { "▶" } else { " " }).to_string(),
                (if r.exercise { ex } else { "" }).to_string(),
                r.precedence.as_str().to_string(),
                r.serial.to_string(),
                dtg(r.released_at),
                inert(r.peer.as_str()),
                marked(r, &app.setup.labels, title(r, lang), lang),
            ];
            cells.extend(extra);
            (cells, style)
        })
        .collect();
    let mut natural: Vec<usize> = headers.iter().map(|h| width_of(h)).collect();
    natural[0] = 1;
    for (cells, _) in &built {
        for (n, c) in natural.iter_mut().zip(cells) {
            *n = (*n).max(width_of(c));
        }
    }
    if !exercise {
        natural[1] = 0;
    }
    let widths = widths(&natural, columns.fits, usize::from(area.width), form);
    let keep = |w: &usize| *w > 0;
    let cut = |cells: Vec<String>| -> Vec<Cell<'static>> {
        cells
            .iter()
            .zip(&widths)
            .filter(|(_, w)| keep(w))
            .map(|(c, w)| Cell::from(fit(c, *w)))
            .collect()
    };
    let shown: Vec<Row> = built
        .into_iter()
        .map(|(cells, style)| Row::new(cut(cells)).style(style))
        .collect();
    let header = cut(headers.iter().map(ToString::to_string).collect());
    let constraints: Vec<Constraint> = widths
        .iter()
        .filter(|w| keep(w))
        .map(|w| Constraint::Length(u16::try_from(*w).unwrap_or(u16::MAX)))
        .collect();
    let table = Table::new(shown, constraints)
        .header(Row::new(header).style(theme.dim()))
        .block(Block::default().borders(Borders::TOP).title(columns.title));
    frame.render_widget(table, area);
    if len == 0 {
        let empty = if matches.is_some() {
            t!(lang, "lists.nothing_found")
        } else {
            columns.empty
        };
        let empty = ratatui::widgets::Paragraph::new(format!("  {empty}")).style(theme.dim());
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

/// What a list's title says of a find on it.
fn find_title(app: &App, theme: &Theme) -> Vec<Span<'static>> {
    let Some(f) = crate::console::find::active(app) else {
        return Vec::new();
    };
    let lang = app.setup.language;
    let what = match (&f.matches, f.searched) {
        (None, _) => t!(lang, "lists.find_searching").to_string(),
        (Some(m), true) => t!(lang, "lists.find_history", count = m.len()),
        (Some(m), false) if f.typing => t!(lang, "lists.find_typing", count = m.len()),
        (Some(m), false) => t!(lang, "lists.find_here", count = m.len()),
    };
    vec![Span::styled(
        format!(
            "· {} ",
            t!(
                lang,
                "lists.find",
                query = inert(&f.query),
                cursor = if f.typing { "▏" } else { "" },
                what = what
            )
        ),
        theme.warn(),
    )]
}

pub fn inbound(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let unacknowledged: usize = app.unacknowledged_counts().iter().sum();
    let columns = Columns {
        title: Line::from(
            [
                Span::raw(format!(" {} ", t!(lang, "lists.inbound_title"))),
                Span::styled(
                    format!(
                        "{} ",
                        t!(
                            lang,
                            "lists.inbound_count",
                            count = app.inbound.len(),
                            unacknowledged = unacknowledged
                        )
                    ),
                    theme.dim(),
                ),
            ]
            .into_iter()
            .chain(find_title(app, theme))
            .collect::<Vec<_>>(),
        ),
        peer: t!(lang, "lists.from"),
        headers: vec![t!(lang, "lists.status"), t!(lang, "lists.left")],
        fits: &[Fit::Whole, Fit::Whole],
        empty: t!(lang, "lists.inbound_empty"),
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
            let mut status = if unacked {
                t!(lang, "lists.unacknowledged").to_string()
            } else {
                t!(
                    lang,
                    "lists.acknowledged",
                    by = inert(r.ack_by.as_deref().unwrap_or(""))
                )
            };
            // Stored after its sender's key was reported compromised.
            if r.suspect.is_some() {
                status = t!(lang, "lists.suspect", status = status);
            }
            if let Some(amended) = crate::console::amended(r, lang) {
                status = format!("{amended} · {status}");
            }
            let style = match (app.overdue(r) || r.suspect.is_some(), unacked, r.precedence) {
                (true, _, _) => theme.alert(),
                (_, true, Precedence::Flash) if app.flash_on => theme.banner(),
                (_, true, Precedence::Flash | Precedence::Immediate) => theme.warn(),
                (_, false, _) => theme.dim(),
                _ => Default::default(),
            };
            (
                vec![with_transfer(app, r, status), left_text(app, r)],
                style,
            )
        },
    );
}

/// The sent list's state column: the state with what the operator needs
/// beside it (who acknowledged, why refused). Until the receipt comes, a
/// sent message says so: it must not look delivered.
fn out_state(app: &App, r: &MessageRow) -> String {
    let lang = app.setup.language;
    if let Some(amended) = crate::console::amended(r, lang) {
        return amended;
    }
    match r.state {
        MessageState::Sent => t!(lang, "lists.sent_no_receipt").into(),
        MessageState::Receipted if app.ack_overdue(r) => t!(lang, "lists.ack_overdue").into(),
        MessageState::Acknowledged => t!(
            lang,
            "lists.acknowledged_by",
            by = inert(r.ack_by.as_deref().unwrap_or("?"))
        ),
        MessageState::Refused => t!(
            lang,
            "lists.refused",
            reason = inert(r.refusal.as_deref().unwrap_or(""))
        ),
        state => state.label(lang).into(),
    }
}

pub fn outbound(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let mut title = vec![
        Span::raw(format!(" {} ", t!(lang, "lists.sent_title"))),
        Span::styled(
            format!(
                "{} ",
                t!(lang, "lists.sent_count", count = app.outbound.len())
            ),
            theme.dim(),
        ),
    ];
    title.extend(find_title(app, theme));
    // What the row has no room for, about the selected message, whole and
    // wrapped below the list: the two-person rule's two names, and a
    // refusal's reason (the row ends it with "…" where it is narrow).
    let mut details = Vec::new();
    if let Some(r) = app.outbound.get(app.selected_out) {
        if let Some(second) = &r.second_operator {
            details.push(Line::styled(
                format!(
                    " {}",
                    t!(
                        lang,
                        "lists.two_person",
                        handle = crate::console::handle(r),
                        first = inert(r.operator.as_str()),
                        second = inert(second.as_str())
                    )
                ),
                theme.dim(),
            ));
        }
        if r.state == MessageState::Refused {
            details.push(Line::styled(
                format!(
                    " {}",
                    t!(
                        lang,
                        "lists.refused_by_peer",
                        handle = crate::console::handle(r),
                        reason = inert(r.refusal.as_deref().unwrap_or(""))
                    )
                ),
                theme.alert(),
            ));
        }
    }
    let details =
        ratatui::widgets::Paragraph::new(details).wrap(ratatui::widgets::Wrap { trim: false });
    let needed = u16::try_from(details.line_count(area.width))
        .unwrap_or(u16::MAX)
        .min(area.height / 3);
    let [area, below] =
        ratatui::layout::Layout::vertical([Constraint::Min(3), Constraint::Length(needed)])
            .areas(area);
    frame.render_widget(details, below);
    let columns = Columns {
        title: Line::from(title),
        peer: t!(lang, "lists.to"),
        headers: vec![t!(lang, "lists.state")],
        fits: &[Fit::Rest],
        empty: t!(lang, "lists.sent_empty"),
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
            (vec![with_transfer(app, r, out_state(app, r))], style)
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
