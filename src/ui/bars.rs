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
use crate::sanitize::inert;

fn clock(now: Timestamp, tz: &str) -> String {
    match TimeZone::get(tz) {
        Ok(zone) => now.to_zoned_datetime(zone).strftime("%H:%M %Z").to_string(),
        Err(_) => "--:--".into(),
    }
}

pub fn status(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let who = match &app.operator {
        Some(op) => format!("on duty: {op}"),
        None => "LOCKED".to_string(),
    };
    let mut first = vec![
        Span::styled(format!(" {} ", app.setup.station), theme.banner()),
        Span::raw(format!(" {who} ")),
        Span::raw(format!("│ UTC {} ", app.now.strftime("%H:%M:%S"))),
        Span::raw(format!("│ local {} ", clock(app.now, &app.setup.time_zone))),
    ];
    for (peer, tz) in &app.setup.peers {
        first.push(Span::raw(format!("│ {peer} {} ", clock(app.now, tz))));
    }
    let counts = app.unacknowledged_counts();
    // The counts and the FLASH alert come first: on a narrow terminal the
    // peers' details are what gets cut off, never an unacknowledged FLASH.
    let unack_style = if counts[0] > 0 && app.flash_on {
        theme.banner()
    } else if counts[0] > 0 {
        theme.alert()
    } else {
        theme.dim()
    };
    let mut second = vec![Span::styled(
        format!(
            " UNACK Z:{} O:{} P:{} R:{}",
            counts[0], counts[1], counts[2], counts[3]
        ),
        unack_style,
    )];
    if counts[0] > 0 {
        second.push(Span::styled(" FLASH UNACKNOWLEDGED", unack_style));
    }
    // A station that is not running has no link: nothing it last said
    // about its peers is shown, least of all UP.
    if let Some(reason) = &app.station_lost {
        second.push(Span::raw(" │ "));
        second.push(Span::styled(
            " STATION NOT RUNNING · no link · retrying ",
            theme.banner(),
        ));
        second.push(Span::styled(format!(" {}", inert(reason)), theme.alert()));
        frame.render_widget(
            Paragraph::new(vec![Line::from(first), Line::from(second)]),
            area,
        );
        return;
    }
    let links = app
        .status
        .as_ref()
        .map(|s| s.links.clone())
        .unwrap_or_default();
    for (peer, _) in &app.setup.peers {
        let link = links.iter().find(|l| &l.peer == peer);
        let health = app.status.as_ref().and_then(|s| s.health.get(peer));
        let degraded = health.is_some_and(|h| h.state == "degraded");
        let (mark, style) = match link {
            Some(l) if l.up && degraded => ("◐ DEGRADED", theme.warn()),
            Some(l) if l.up => ("● UP", theme.ok()),
            _ => ("○ DOWN", theme.alert()),
        };
        second.push(Span::raw(" │ "));
        second.push(Span::styled(format!("{peer} {mark}"), style));
        if let Some(l) = link.filter(|l| l.up) {
            let path = l
                .path
                .map(|p| format!("{p:?}").to_lowercase())
                .unwrap_or_default();
            second.push(Span::raw(format!(" {path} {}ms", l.rtt_ms.unwrap_or(0))));
        }
        let test = match (
            health.and_then(|h| h.last_link_test.as_deref()),
            health.and_then(|h| h.last_link_test_ok),
        ) {
            (Some(at), Some(ok)) => format!(
                " test {} {}",
                at.get(11..16).unwrap_or(at),
                if ok { "ok" } else { "FAILED" }
            ),
            _ => " test -".to_string(),
        };
        second.push(Span::raw(test));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

pub fn exercise_banner(frame: &mut Frame<'_>, area: Rect, theme: &Theme) {
    let text = " EXERCISE ".repeat(usize::from(area.width) / 10 + 1);
    frame.render_widget(Paragraph::new(Span::styled(text, theme.banner())), area);
}

pub fn notice(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let line = if let Some(n) = &app.notice {
        Span::styled(
            format!(" {}", inert(n)),
            if n.contains("FAILED") || n.contains("REFUSED") {
                theme.alert()
            } else {
                theme.warn()
            },
        )
    } else if let Some(a) = app.alarms.last() {
        Span::styled(
            format!(" ALARM {}Z {}", a.at.strftime("%H:%M"), inert(&a.text)),
            theme.alert(),
        )
    } else {
        Span::raw("")
    };
    frame.render_widget(Paragraph::new(line), area);
}

pub fn footer(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let mut spans = Vec::new();
    for (key, label) in app.setup.keymap.footer(app.context()) {
        spans.push(Span::styled(format!(" {key}"), theme.banner()));
        spans.push(Span::raw(format!(" {label} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
