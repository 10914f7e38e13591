//! The console's views: pure functions from [`App`] to a frame. One file per
//! screen or popup; nothing here changes state or does I/O. Every piece of
//! text that came from the wire passes through [`crate::sanitize`].

mod bars;
pub use bars::footer_items;
mod compose;
mod lists;
mod objectives;
mod overlays;
mod reading;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};

use crate::console::{App, Screen};

/// Styles that never carry meaning by colour alone: every state also has a
/// word or a mark, and with `NO_COLOR` only modifiers remain.
pub struct Theme {
    pub no_color: bool,
}

impl Theme {
    fn colour(&self, c: Color) -> Style {
        if self.no_color {
            Style::default()
        } else {
            Style::default().fg(c)
        }
    }
    pub fn alert(&self) -> Style {
        self.colour(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(&self) -> Style {
        self.colour(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.colour(Color::Green)
    }
    pub fn dim(&self) -> Style {
        if self.no_color {
            Style::default()
        } else {
            Style::default().fg(Color::DarkGray)
        }
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn banner(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        if self.no_color {
            s
        } else {
            s.fg(Color::Yellow)
        }
    }
}

/// Draws the whole console.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let theme = Theme {
        no_color: app.setup.no_color,
    };
    let exercise = app.exercise_present();
    let alarmed = !app.alarms.is_empty();
    let [status, banner, body, alarm, notice, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(u16::from(exercise)),
        Constraint::Min(3),
        Constraint::Length(u16::from(alarmed)),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    bars::status(frame, status, app, &theme);
    if exercise {
        bars::exercise_banner(frame, banner, app, &theme);
    }
    match app.screen {
        Screen::Login => overlays::login(frame, body, app, &theme),
        Screen::Handover => overlays::handover(frame, body, app, &theme),
        Screen::Queue => lists::inbound(frame, body, app, &theme),
        Screen::Sent => lists::outbound(frame, body, app, &theme),
        Screen::Message => reading::message(frame, body, app, &theme),
        Screen::Picker => compose::picker(frame, body, app, &theme),
        Screen::Form => compose::form(frame, body, app, &theme),
    }
    if app.white_cell_open {
        overlays::white_cell(frame, body, app, &theme);
    }
    if app.report.is_some() {
        overlays::report(frame, body, app, &theme);
    }
    if app.alarms_open {
        overlays::alarms(frame, body, app, &theme);
    }
    if app.objectives.is_some() {
        objectives::panel(frame, body, app, &theme);
    }
    // A question is on top of every panel: it takes the keys first.
    if app.confirm.is_some() {
        overlays::confirm(frame, body, app, &theme);
    }
    if app.help.is_some() {
        overlays::help(frame, body, app, &theme);
    }
    bars::alarm_line(frame, alarm, app, &theme);
    bars::notice(frame, notice, app, &theme);
    bars::footer(frame, footer, app, &theme);
}

pub fn width_of(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` in at most `width` columns, ending in "…" where it was cut.
pub fn fit(text: &str, width: usize) -> String {
    if width_of(text) <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// A centred rectangle of at most `w` x `h` inside `area`.
pub fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
