//! The trainee's objectives panel (tabletop): each objective of the
//! exercise and, under it, each expectation with its live state in
//! scenario time — upcoming, pending with the time left, met, late,
//! missed or skipped.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::Theme;
use crate::console::App;
use crate::domain::Language;
use crate::sanitize::inert;
use crate::t;
use crate::tabletop::Expect;
use crate::tabletop::engine::Progress;
use crate::tabletop::scenario::format_offset;

/// `1m 05s`, `45s`: a short span for the panel.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn expectation(lang: Language, e: &Expect) -> String {
    match e {
        Expect::Acknowledge { within } => {
            t!(lang, "objectives.acknowledge", within = span(*within))
        }
        Expect::Reply {
            template, within, ..
        } => t!(
            lang,
            "objectives.reply",
            template = template,
            within = span(*within)
        ),
    }
}

pub fn panel(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let (Some(view), Some(scroll)) = (&app.white_cell, &app.objectives) else {
        return;
    };
    let lang = app.setup.language;
    let mut lines: Vec<Line> = Vec::new();
    if view.scenario.is_empty() {
        lines.push(Line::styled(t!(lang, "objectives.waiting"), theme.dim()));
    } else if view.objectives.is_empty() {
        lines.push(Line::styled(t!(lang, "objectives.none"), theme.dim()));
    }
    for (n, o) in view.objectives.iter().enumerate() {
        if n > 0 {
            lines.push(Line::raw(""));
        }
        let heading = match &o.id {
            Some(_) => inert(&o.text),
            None => t!(lang, "objectives.other").to_string(),
        };
        lines.push(Line::styled(format!("■ {heading}"), theme.warn()));
        for e in &o.expectations {
            let (state, style) = match &e.progress {
                Progress::Upcoming { at } => (
                    t!(lang, "objectives.upcoming", at = format_offset(*at)),
                    theme.dim(),
                ),
                Progress::Pending { left } => (
                    t!(lang, "objectives.pending", left = span(*left)),
                    theme.alert(),
                ),
                Progress::Met { after } => {
                    (t!(lang, "objectives.met", after = span(*after)), theme.ok())
                }
                Progress::Late { after } => (
                    t!(lang, "objectives.late", after = span(*after)),
                    theme.warn(),
                ),
                Progress::Missed => (t!(lang, "objectives.missed").to_string(), theme.alert()),
                Progress::Skipped => (t!(lang, "objectives.skipped").to_string(), theme.dim()),
            };
            lines.push(Line::from(vec![
                Span::raw(format!(
                    "  {}: {} — ",
                    inert(&e.inject),
                    expectation(lang, &e.expectation)
                )),
                Span::styled(state, style),
            ]));
        }
    }
    let title = format!(
        " {} ",
        t!(
            lang,
            "objectives.title",
            time = format_offset(view.scenario_time)
        )
    );
    super::overlays::scrolled(frame, area, lines, scroll, &title, lang);
}
