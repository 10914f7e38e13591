//! The status bar (station, operator, links, clocks, unacknowledged counts),
//! the EXERCISE banner, the notice line and the footer of keys.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::Theme;
use crate::console::App;
use crate::console::keymap::Action;
use crate::domain::Language;
use crate::link::PathKind;
use crate::sanitize::inert;
use crate::t;

fn clock(now: Timestamp, tz: &str) -> String {
    match TimeZone::get(tz) {
        Ok(zone) => now.to_zoned_datetime(zone).strftime("%H:%M %Z").to_string(),
        Err(_) => "--:--".into(),
    }
}

pub fn status(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let width = usize::from(area.width);
    let who = match &app.operator {
        Some(op) => t!(lang, "bars.on_duty", operator = op),
        None => t!(lang, "bars.locked").to_string(),
    };
    let utc = t!(lang, "bars.utc", time = app.now.strftime("%H:%M:%S"));
    let mut first = vec![
        Span::styled(format!(" {} ", app.setup.station), theme.banner()),
        Span::raw(format!(" {who} ")),
        Span::raw(format!("│ {utc} ")),
    ];
    // Clocks are shown whole or not at all, in the order configured.
    let local = t!(
        lang,
        "bars.local",
        time = clock(app.now, &app.setup.time_zone)
    );
    let clocks = std::iter::once(format!("│ {local} ")).chain(
        app.setup
            .peers
            .iter()
            .map(|(peer, tz)| format!("│ {peer} {} ", clock(app.now, tz))),
    );
    let mut used: usize = first.iter().map(Span::width).sum();
    for c in clocks {
        let span = Span::raw(c);
        if used + span.width() > width {
            break;
        }
        used += span.width();
        first.push(span);
    }
    let counts = app.unacknowledged_counts();
    // The counts, the FLASH alert and the alarm count come first and are
    // never cut; the peers fit into what is left.
    let unack_style = if counts[0] > 0 && app.flash_on {
        theme.banner()
    } else if counts[0] > 0 {
        theme.alert()
    } else {
        theme.dim()
    };
    let unack = t!(
        lang,
        "bars.unacknowledged",
        z = counts[0],
        o = counts[1],
        p = counts[2],
        r = counts[3]
    );
    let mut second = vec![Span::styled(format!(" {unack}"), unack_style)];
    if counts[0] > 0 {
        second.push(Span::styled(
            format!(" {}", t!(lang, "bars.flash_unacknowledged")),
            unack_style,
        ));
    }
    second.push(Span::raw(" │"));
    second.push(match app.alarms.len() {
        0 => Span::styled(format!(" {}", t!(lang, "bars.no_alarms")), theme.dim()),
        n => Span::styled(
            format!(" {} ", t!(lang, "bars.alarms", count = n)),
            theme.banner(),
        ),
    });
    // A station that is not running has no link: nothing it last said
    // about its peers is shown, least of all UP.
    if let Some(reason) = &app.station_lost {
        second.push(Span::raw(" │ "));
        second.push(Span::styled(
            format!(" {} ", t!(lang, "bars.station_not_running")),
            theme.banner(),
        ));
        second.push(Span::styled(format!(" {}", inert(reason)), theme.alert()));
    } else {
        let room = width.saturating_sub(second.iter().map(Span::width).sum());
        let (mut fitted, all_named) = peers(app, theme, room);
        // On a narrow terminal the FLASH flag shortens before any peer's
        // name goes unseen.
        if !all_named && counts[0] > 0 {
            let short = Span::styled(format!(" {}", t!(lang, "bars.flash_short")), unack_style);
            let gained = second[1].width() - short.width();
            second[1] = short;
            fitted = peers(app, theme, room + gained).0;
        }
        second.extend(fitted);
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

/// A peer's link state as the status bar shows it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LinkState {
    Down,
    Degraded,
    Up,
}

impl LinkState {
    fn word(self, lang: Language) -> &'static str {
        match self {
            LinkState::Down => t!(lang, "bars.down"),
            LinkState::Degraded => t!(lang, "bars.degraded"),
            LinkState::Up => t!(lang, "bars.up"),
        }
    }
}

/// The peers' link states fitted into `room` columns: down peers first,
/// then degraded, then up; each by name with its details if every peer
/// fits so, else by name and state only, and the ones that do not fit as
/// counts by state ("+3 DOWN +2 UP"). Nothing is cut mid-word. Says
/// whether every peer is there by name.
fn peers(app: &App, theme: &Theme, room: usize) -> (Vec<Span<'static>>, bool) {
    let lang = app.setup.language;
    let links = app
        .status
        .as_ref()
        .map(|s| s.links.as_slice())
        .unwrap_or_default();
    let mut shown: Vec<(LinkState, String, Option<String>, bool)> = app
        .setup
        .peers
        .iter()
        .map(|(peer, _)| {
            let link = links.iter().find(|l| &l.peer == peer);
            let health = app.status.as_ref().and_then(|s| s.health.get(peer));
            let degraded = health.is_some_and(|h| h.state == "degraded");
            let state = match link {
                Some(l) if l.up && degraded => LinkState::Degraded,
                Some(l) if l.up => LinkState::Up,
                _ => LinkState::Down,
            };
            let detail = link.filter(|l| l.up).map(|l| {
                let path = match l.path {
                    Some(PathKind::Primary) => t!(lang, "bars.path_primary"),
                    Some(PathKind::Backup) => t!(lang, "bars.path_backup"),
                    Some(PathKind::Inbound) => t!(lang, "bars.path_inbound"),
                    None => "",
                };
                let test = match (
                    health.and_then(|h| h.last_link_test.as_deref()),
                    health.and_then(|h| h.last_link_test_ok),
                ) {
                    (Some(at), Some(true)) => {
                        t!(lang, "bars.link_test_ok", at = at.get(11..16).unwrap_or(at))
                    }
                    (Some(at), Some(false)) => t!(
                        lang,
                        "bars.link_test_failed",
                        at = at.get(11..16).unwrap_or(at)
                    ),
                    _ => t!(lang, "bars.link_test_none").to_string(),
                };
                let rtt = t!(lang, "bars.rtt", ms = l.rtt_ms.unwrap_or(0));
                format!(" {path} {rtt} {test}")
            });
            let classic = health.is_some_and(|h| !h.post_quantum);
            (state, inert(peer), detail, classic)
        })
        .collect();
    shown.sort_by_key(|(state, ..)| *state);
    let style = |state: LinkState| match state {
        LinkState::Down => theme.alert(),
        LinkState::Degraded => theme.warn(),
        LinkState::Up => theme.ok(),
    };
    let mark = |state: LinkState| match state {
        LinkState::Down => "○",
        LinkState::Degraded => "◐",
        LinkState::Up => "●",
    };
    let segment = |(state, name, detail, classic): &(LinkState, String, Option<String>, bool),
                   long: bool| {
        let mut text = format!(" │ {name} {} {}", mark(*state), state.word(lang));
        if long && let Some(d) = detail {
            text.push_str(d);
        }
        if *classic {
            text.push(' ');
            text.push_str(if long {
                t!(lang, "bars.not_post_quantum")
            } else {
                t!(lang, "bars.not_pq")
            });
        }
        Span::styled(text, style(*state))
    };
    let long: Vec<Span<'static>> = shown.iter().map(|p| segment(p, true)).collect();
    if long.iter().map(Span::width).sum::<usize>() <= room {
        return (long, true);
    }
    let short: Vec<Span<'static>> = shown.iter().map(|p| segment(p, false)).collect();
    // The counts of those left out, by state; with n shown by name.
    let rest = |n: usize| {
        let mut text = String::from(" │");
        for state in [LinkState::Down, LinkState::Degraded, LinkState::Up] {
            let left = shown[n..].iter().filter(|(s, ..)| *s == state).count();
            if left > 0 {
                let more = t!(
                    lang,
                    "bars.peers_more",
                    count = left,
                    state = state.word(lang)
                );
                text.push_str(&format!(" {more}"));
            }
        }
        let worst = shown.get(n).map_or(LinkState::Up, |(s, ..)| *s);
        Span::styled(text, style(worst))
    };
    let mut n = shown.len();
    loop {
        let named: usize = short[..n].iter().map(Span::width).sum();
        let tail = if n < shown.len() { rest(n).width() } else { 0 };
        if named + tail <= room || n == 0 {
            break;
        }
        n -= 1;
    }
    let mut spans: Vec<Span<'static>> = short.into_iter().take(n).collect();
    let all_named = n == shown.len();
    if !all_named {
        spans.push(rest(n));
    }
    (spans, all_named)
}

pub fn exercise_banner(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let word = format!(" {} ", t!(app.setup.language, "bars.exercise"));
    // Repeated past the edge, which cuts it.
    let text = word.repeat(usize::from(area.width) / super::width_of(&word).max(1) + 1);
    frame.render_widget(Paragraph::new(Span::styled(text, theme.banner())), area);
}

/// The gravest alarm (the newest of those), on its own line above the
/// notices, so that neither a notice nor a lesser alarm hides it; the
/// panel (F3 by default) lists them all.
pub fn alarm_line(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let lang = app.setup.language;
    let Some(newest) = app
        .alarms
        .iter()
        .min_by_key(|a| (a.kind.gravity(), std::cmp::Reverse(a.raised_at)))
    else {
        return;
    };
    let more = match app.alarms.len() {
        1 => String::new(),
        n => format!(" {}", t!(lang, "bars.alarms_more", count = n - 1)),
    };
    let age = age(lang, app.now, newest.raised_at);
    let badge = Span::styled(
        format!(" {} ", t!(lang, "bars.alarm", age = age)),
        theme.banner(),
    );
    // Cut with a visible "…" where it is too long (the panel has it whole);
    // the count of the others is never cut.
    let room = usize::from(area.width)
        .saturating_sub(badge.width())
        .saturating_sub(super::width_of(&more));
    let text = super::fit(&format!(" {}", inert(&newest.text)), room);
    let line = Line::from(vec![
        badge,
        Span::styled(format!("{text}{more}"), theme.alert()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// How long ago `at` was, in the largest unit that says it: `40s`, `12m`,
/// `3h05m`, `2d04h`.
pub fn age(lang: Language, now: Timestamp, at: Timestamp) -> String {
    let s = now.duration_since(at).as_secs().max(0);
    match s {
        0..60 => t!(lang, "bars.age_seconds", s = s),
        60..3600 => t!(lang, "bars.age_minutes", m = s / 60),
        3600..86400 => t!(
            lang,
            "bars.age_hours",
            h = s / 3600,
            m = format!("{:02}", s % 3600 / 60)
        ),
        _ => t!(
            lang,
            "bars.age_days",
            d = s / 86400,
            h = format!("{:02}", s % 86400 / 3600)
        ),
    }
}

pub fn notice(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let line = if let Some(n) = &app.notice {
        Span::styled(
            super::fit(&format!(" {}", inert(n)), usize::from(area.width)),
            if t!(app.setup.language, "bars.alert_words")
                .split('|')
                .any(|w| !w.is_empty() && n.contains(w))
            {
                theme.alert()
            } else {
                theme.warn()
            },
        )
    } else {
        Span::raw("")
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The footer: the keys that do something on this screen now, most
/// important first, fitted to the width whole; when they do not all fit,
/// the help key ends the line as "? more", since help lists them all.
pub fn footer(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let items = footer_actions(app);
    let width = usize::from(area.width);
    let item_width =
        |(k, _, l): &(String, Action, &str)| super::width_of(k) + super::width_of(l) + 3;
    let total: usize = items.iter().map(item_width).sum();
    let help = items
        .iter()
        .find(|(_, action, _)| *action == Action::Help)
        .cloned();
    let shown: Vec<(String, Action, &str)> = if total <= width {
        items
    } else {
        let more = help.map(|(k, action, _)| (k, action, t!(app.setup.language, "bars.more")));
        let mut room = width.saturating_sub(more.as_ref().map_or(0, item_width));
        let mut fitted = Vec::new();
        for item in items
            .into_iter()
            .filter(|(_, action, _)| *action != Action::Help)
        {
            let w = item_width(&item);
            if w > room {
                // Keep the order: a later, shorter key does not jump ahead.
                break;
            }
            room -= w;
            fitted.push(item);
        }
        fitted.extend(more);
        fitted
    };
    let mut spans = Vec::new();
    for (key, _, label) in shown {
        spans.push(Span::styled(format!(" {key}"), theme.banner()));
        spans.push(Span::raw(format!(" {label} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The footer's keys for the screen on show: the keymap's, less those that
/// would do nothing here now, with labels that say what they would do.
pub fn footer_items(app: &App) -> Vec<(String, String)> {
    footer_actions(app)
        .into_iter()
        .map(|(key, _, label)| (key, label.to_string()))
        .collect()
}

/// [`footer_items`], with the action of each key.
fn footer_actions(app: &App) -> Vec<(String, Action, &'static str)> {
    let lang = app.setup.language;
    app.setup
        .keymap
        .footer_actions(app.context(), lang)
        .into_iter()
        .filter(|(_, action, _)| app.applies(*action))
        .map(|(key, action, label)| {
            let label = match action {
                Action::ToggleOriginal if app.reading.as_ref().is_some_and(|r| r.show_original) => {
                    t!(lang, "keys.rendering")
                }
                _ => label,
            };
            (key, action, label)
        })
        .collect()
}
