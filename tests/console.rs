//! The duty console without a terminal: `update` driven message by message,
//! and every main screen drawn on ratatui's `TestBackend` and compared with
//! insta snapshots at 80x24 and 120x40. Time is fixed and ids are fixed, so
//! the snapshots are deterministic; ids and clocks are redacted anyway.
//!
//! Wire text is hostile here: escape sequences, bidirectional overrides and
//! zero-width characters must reach the screen only as inert placeholders.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hotline::compose::{Draft, Origin, build, check};
use hotline::config::Deadlines;
use hotline::console::Alarm;
use hotline::console::keymap::{Context, Keymap};
use hotline::console::{App, BELL_REPEAT, Confirm, Effect, Msg, PAGE, Screen, Setup, update};
use hotline::domain::{Language, Message, MessageId, OperatorName, Precedence, StationName, stamp};
use hotline::link::{PathKind, PeerLinkStatus};
use hotline::station::{AlarmKind, Event, PeerHealth, Status};
use hotline::store::{Direction, MessageRow, MessageState};
use hotline::templates::Catalog;
use jiff::{SignedDuration, Timestamp};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

// ---------------------------------------------------------------------------
// Fixtures

/// The console's fixed "now": 14:00Z on 26 November 2026.
fn now() -> Timestamp {
    "2026-11-26T14:00:00Z".parse().expect("fixed time")
}

fn mins_ago(m: i64) -> Timestamp {
    now() - SignedDuration::from_mins(m)
}

fn id(n: u128) -> MessageId {
    MessageId(uuid::Uuid::from_u128(
        0x019a_c0de_0000_7000_8000_0000_0000_0000 | n,
    ))
}

fn op(name: &str) -> OperatorName {
    OperatorName::new(name).expect("valid operator name")
}

fn station(name: &str) -> StationName {
    StationName::new(name).expect("valid station name")
}

fn setup() -> Setup {
    Setup {
        station: "WASHINGTON".into(),
        language: Language::EN,
        time_zone: "America/New_York".into(),
        peers: vec![
            ("MOSCOW".into(), "Europe/Moscow".into()),
            ("BEIJING".into(), "Asia/Shanghai".into()),
        ],
        deadlines: Deadlines::default(),
        idle_lock: Duration::from_secs(15 * 60),
        two_person_flash: false,
        exercise_mode: false,
        call_sign_login: false,
        keymap: Keymap::default(),
        no_color: false,
        attached: false,
        ring: Default::default(),
        labels: Default::default(),
    }
}

/// An unacknowledged inbound ROUTINE row from MOSCOW, stored `ago` minutes
/// before now; change what a test needs with struct update syntax.
fn inbound(n: u128, precedence: Precedence, ago: i64) -> MessageRow {
    MessageRow {
        id: id(n),
        direction: Direction::In,
        peer: station("MOSCOW"),
        serial: n as u64,
        precedence,
        exercise: false,
        template_id: "general".into(),
        template_version: 1,
        released_at: mins_ago(ago) - SignedDuration::from_secs(2),
        stored_at: mins_ago(ago),
        operator: op("i.petrov"),
        second_operator: None,
        state: MessageState::Received,
        receipt_at: None,
        ack_by: None,
        ack_at: None,
        refusal: None,
        attachments: 0,
        attachments_done: 0,
        attachments_refused: 0,
        subject: None,
        suspect: None,
        label: None,
        amended: None,
    }
}

fn acknowledged(row: MessageRow, by: &str) -> MessageRow {
    MessageRow {
        state: MessageState::Acknowledged,
        ack_by: Some(by.into()),
        ack_at: Some(now() - SignedDuration::from_mins(1)),
        ..row
    }
}

/// An outbound row to MOSCOW in `state`.
fn outbound(n: u128, precedence: Precedence, ago: i64, state: MessageState) -> MessageRow {
    MessageRow {
        direction: Direction::Out,
        operator: op("j.smith"),
        state,
        ..inbound(n, precedence, ago)
    }
}

fn status() -> Box<Status> {
    let link = |peer: &str, up: bool| PeerLinkStatus {
        peer: peer.into(),
        up,
        path: up.then_some(PathKind::Primary),
        remote: None,
        rtt_ms: up.then_some(42),
        last_traffic: None,
        probes: Vec::new(),
    };
    let mut health = HashMap::new();
    health.insert(
        "MOSCOW".to_string(),
        PeerHealth {
            last_link_test: Some(stamp(mins_ago(5))),
            last_link_test_ok: Some(true),
            post_quantum: true,
            ..PeerHealth::default()
        },
    );
    Box::new(Status {
        station: "WASHINGTON".into(),
        exercise: false,
        links: vec![link("MOSCOW", true), link("BEIJING", false)],
        health,
        unacknowledged: HashMap::new(),
        outbound_pending: 0,
        strangers_refused: 0,
        snapshots_served: 0,
    })
}

fn refreshed(inbound: Vec<MessageRow>, outbound: Vec<MessageRow>) -> Msg {
    Msg::Refreshed {
        inbound,
        outbound,
        status: status(),
        alarms: Vec::new(),
    }
}

/// The inbound queue of the snapshots: FLASH, IMMEDIATE, ROUTINE, an
/// acknowledged PRIORITY and an overdue IMMEDIATE.
fn queue_rows() -> Vec<MessageRow> {
    vec![
        MessageRow {
            template_id: "missile-launch".into(),
            ..inbound(11, Precedence::Flash, 2)
        },
        MessageRow {
            template_id: "military-incident".into(),
            ..inbound(12, Precedence::Immediate, 5)
        },
        MessageRow {
            template_id: "situation-update".into(),
            ..inbound(13, Precedence::Routine, 60)
        },
        acknowledged(
            MessageRow {
                template_id: "request-info".into(),
                ..inbound(14, Precedence::Priority, 90)
            },
            "j.smith",
        ),
        MessageRow {
            template_id: "nuclear-accident".into(),
            peer: station("BEIJING"),
            ..inbound(15, Precedence::Immediate, 40)
        },
    ]
}

/// The sent list of the snapshots: one message in every state.
fn sent_rows() -> Vec<MessageRow> {
    vec![
        outbound(21, Precedence::Routine, 1, MessageState::Queued),
        outbound(22, Precedence::Immediate, 3, MessageState::Sent),
        MessageRow {
            receipt_at: Some(mins_ago(4)),
            template_id: "situation-update".into(),
            ..outbound(23, Precedence::Priority, 5, MessageState::Receipted)
        },
        MessageRow {
            receipt_at: Some(mins_ago(9)),
            ack_by: Some("i.petrov".into()),
            ack_at: Some(mins_ago(8)),
            template_id: "missile-launch".into(),
            ..outbound(24, Precedence::Flash, 10, MessageState::Acknowledged)
        },
        MessageRow {
            refusal: Some("unknown template version".into()),
            template_id: "response".into(),
            ..outbound(25, Precedence::Routine, 20, MessageState::Refused)
        },
        outbound(26, Precedence::Routine, 30, MessageState::Cancelled),
    ]
}

// ---------------------------------------------------------------------------
// Driving the console

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    update(
        app,
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)),
    )
}

fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| press(app, KeyCode::Char(c)))
        .collect()
}

/// A console with j.smith on duty, past the handover, showing the queue.
fn on_duty(setup: Setup, inbound: Vec<MessageRow>, outbound: Vec<MessageRow>) -> App {
    let mut app = App::new(setup, now());
    update(&mut app, refreshed(inbound, outbound));
    update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Ok(op("j.smith")),
        },
    );
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Queue);
    app
}

fn select(app: &mut App, n: u128) {
    app.selected_in = app
        .inbound
        .iter()
        .position(|r| r.id == id(n))
        .expect("row is in the queue");
}

fn audits<'e>(effects: &'e [Effect], action: &str) -> Vec<&'e str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit {
                action: a, detail, ..
            } if a == action => Some(detail.as_str()),
            _ => None,
        })
        .collect()
}

fn bells(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::RingBell))
        .count()
}

/// Picks the template whose id contains `filter` and opens its form.
fn compose(app: &mut App, filter: &str) {
    assert!(press(app, KeyCode::Char('c')).is_empty());
    assert_eq!(app.screen, Screen::Picker);
    type_text(app, filter);
    press(app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Form);
}

/// Fills the missile-launch form, row by row: To, Precedence, launch time,
/// window, launch area, impact area, missile type, count.
fn fill_launch(app: &mut App, launch_time: &str, count: &str) {
    let form = app.form.as_ref().expect("form open");
    assert_eq!(form.template.id, "missile-launch");
    assert_eq!(form.focus, 0, "the form opens on To");
    press(app, KeyCode::Tab);
    press(app, KeyCode::Tab);
    for value in [
        launch_time,
        "2h 30m",
        "62.93N 40.58E",
        "57.77N 161.77E",
        "icbm",
        count,
    ] {
        type_text(app, value);
        press(app, KeyCode::Tab);
    }
}

// ---------------------------------------------------------------------------
// Drawing

fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| hotline::ui::draw(frame, app))
        .expect("draws");
    terminal.backend().buffer().clone()
}

/// The buffer as text: one line per row, trailing spaces trimmed.
fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        // A wide character (Chinese) fills two cells: the second is not text.
        let mut line = String::new();
        let mut x = 0;
        while x < area.width {
            let symbol = buffer[(x, y)].symbol();
            line.push_str(symbol);
            x += u16::try_from(hotline::ui::width_of(symbol).max(1)).unwrap_or(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn screen(app: &App, width: u16, height: u16) -> String {
    text(&draw(app, width, height))
}

/// Snapshots the console at 80x24 and 120x40, ids and clocks redacted.
fn snapshot(name: &str, app: &App) {
    for (width, height) in [(80, 24), (120, 40)] {
        let shown = screen(app, width, height);
        let mut settings = insta::Settings::clone_current();
        settings.set_omit_expression(true);
        // Same widths as what they replace, so borders stay where they were.
        settings.add_filter(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[id -------------------------------]",
        );
        settings.add_filter(r"\b\d{2}:\d{2}:\d{2}\b", "hh:mm:ss");
        settings.bind(|| insta::assert_snapshot!(format!("{name}_{width}x{height}"), shown));
    }
}

/// Characters that must never reach a terminal as themselves.
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{061C}' | '\u{2028}' | '\u{2029}')
}

fn assert_inert(buffer: &Buffer) {
    for (i, cell) in buffer.content.iter().enumerate() {
        let symbol = cell.symbol();
        assert!(
            !symbol.chars().any(hostile),
            "cell {i} (x {}, y {}) holds {symbol:?}:\n{}",
            i % usize::from(buffer.area.width),
            i / usize::from(buffer.area.width),
            text(buffer)
        );
    }
}

// ---------------------------------------------------------------------------
// Messages

/// A missile-launch notification released by i.petrov at MOSCOW in Russian.
fn launch_message() -> Message {
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("launch_time", "261500Z NOV 26"),
        ("launch_window", "2h 30m"),
        ("launch_area", "62.93N 40.58E"),
        ("impact_area", "57.77N 161.77E"),
        ("missile_type", "icbm"),
        ("count", "1"),
        ("remarks", "Пуск в рамках плановых испытаний."),
    ] {
        fields.insert(k.to_string(), v.to_string());
    }
    let draft = Draft {
        template_id: "missile-launch".into(),
        fields,
        precedence: None,
        text: "Время указано по UTC.".into(),
        text_language: None,
        label: None,
        references: Vec::new(),
        exercise: false,
    };
    let checked = check(&draft, Catalog::builtin(), now()).expect("valid draft");
    let origin = Origin {
        station: StationName::new("MOSCOW").expect("station"),
        operator: op("i.petrov"),
        second_operator: None,
        language: Language::RU,
    };
    let to = StationName::new("WASHINGTON").expect("station");
    let mut message = build(&checked, &origin, &to, 11, mins_ago(2));
    message.id = id(11);
    message
}

fn open_message(app: &mut App, n: u128, message: Message) {
    select(app, n);
    let effects = press(app, KeyCode::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::OpenMessage(m)] if *m == id(n)),
        "{effects:?}"
    );
    update(
        app,
        Msg::MessageOpened {
            id: id(n),
            result: Ok(Box::new(message)),
        },
    );
    assert_eq!(app.screen, Screen::Message);
}

const EVIL: &str = "clear\u{1b}[2J title\u{1b}]0;pwned\u{07} clip\u{1b}]52;c;SGVsbG8=\u{07} rlo\u{202E}dlrow zw\u{200B}sp lri\u{2066}x";

// ===========================================================================
// A. update() without a terminal

#[test]
fn starts_locked_and_logs_in_through_the_handover() {
    let mut app = App::new(setup(), now());
    assert!(app.locked());
    assert_eq!(app.screen, Screen::Login);

    assert!(type_text(&mut app, "j.smith").is_empty());
    assert!(press(&mut app, KeyCode::Tab).is_empty());
    assert!(type_text(&mut app, "correct horse").is_empty());
    assert_eq!(app.login.passphrase.as_str(), "correct horse");
    let effects = press(&mut app, KeyCode::Enter);
    match effects.as_slice() {
        [Effect::CheckLogin { name, passphrase }] => {
            use age::secrecy::ExposeSecret;
            assert_eq!(name, "j.smith");
            assert_eq!(passphrase.expose_secret(), "correct horse");
        }
        other => panic!("expected one CheckLogin, got {other:?}"),
    }
    assert!(
        app.login.passphrase.is_empty(),
        "the passphrase left the state with the effect"
    );
    assert!(app.login.checking);
    assert!(
        press(&mut app, KeyCode::Enter).is_empty(),
        "no second check while one is running"
    );

    let effects = update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Err(hotline::station::api::ApiError::Denied),
        },
    );
    assert!(effects.is_empty(), "{effects:?}");
    assert!(app.locked());
    assert_eq!(app.screen, Screen::Login);
    let error = app.login.error.as_deref().expect("an error is shown");
    assert!(
        error.contains("unknown operator or wrong passphrase"),
        "{error}"
    );
    assert!(screen(&app, 80, 24).contains("unknown operator or wrong passphrase"));

    let effects = update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Ok(op("j.smith")),
        },
    );
    assert!(
        matches!(effects.as_slice(), [Effect::Refresh, Effect::OpenDraft(o)] if o.as_str() == "j.smith"),
        "a log-in resyncs and asks for the operator's kept draft: {effects:?}"
    );
    assert_eq!(app.operator, Some(op("j.smith")));
    assert_eq!(app.screen, Screen::Handover);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Queue);
}

fn tick(app: &mut App, after_secs: i64) -> Vec<Effect> {
    let at = app.now + SignedDuration::from_secs(after_secs);
    update(app, Msg::Tick(at))
}

fn saves(effects: &[Effect]) -> Vec<&hotline::drafts::SavedDraft> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveDraft(d) => Some(d.as_ref()),
            _ => None,
        })
        .collect()
}

fn discards(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::DiscardDraft(o) if o.as_str() == "j.smith"))
        .count()
}

/// A typed draft is sealed to disk on the next tick (within TICK of the
/// keystroke), not again until it changes, removed when it is released or
/// thrown away, and offered back at the next log-in of its operator.
#[test]
fn drafts_are_kept_on_disk_and_offered_back_at_log_in() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    compose(&mut app, "gen");
    assert!(
        saves(&tick(&mut app, 1)).is_empty(),
        "a blank form is not kept"
    );
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert!(
        saves(&type_text(&mut app, "Dnieper")).is_empty(),
        "keys never write"
    );
    let effects = tick(&mut app, 1);
    let saved = match saves(&effects).as_slice() {
        [one] => (*one).clone(),
        other => panic!("one save on the tick after typing, got {other:?}"),
    };
    assert_eq!(saved.operator, op("j.smith"));
    assert_eq!(saved.to, "MOSCOW");
    assert!(
        saved.draft.fields.values().any(|v| v == "Dnieper"),
        "{saved:?}"
    );
    assert!(
        saves(&tick(&mut app, 1)).is_empty(),
        "unchanged: not written again"
    );
    update(
        &mut app,
        Msg::DraftSaved {
            at: saved.saved_at,
            result: Ok(()),
        },
    );
    // A failed write says so, and the draft stays on screen.
    type_text(&mut app, "!");
    assert_eq!(saves(&tick(&mut app, 1)).len(), 1);
    update(
        &mut app,
        Msg::DraftSaved {
            at: saved.saved_at,
            result: Err(hotline::drafts::KeepError::Io {
                path: "/data/drafts/j.smith.age".into(),
                source: std::io::Error::other("disk full"),
            }),
        },
    );
    assert!(
        screen(&app, 120, 40)
            .contains("FAILED: keeping the draft on disk: /data/drafts/j.smith.age: disk full")
    );
    assert!(app.form.is_some());

    // Typed back to blank: the kept copy goes.
    for _ in 0.."Dnieper!".len() {
        press(&mut app, KeyCode::Backspace);
    }
    let effects = tick(&mut app, 1);
    assert!(saves(&effects).is_empty(), "{effects:?}");
    assert_eq!(discards(&effects), 1, "{effects:?}");

    // Thrown away on purpose: removed.
    type_text(&mut app, "Dnieper");
    press(&mut app, KeyCode::Esc);
    let effects = press(&mut app, KeyCode::Char('y'));
    assert_eq!(discards(&effects), 1, "{effects:?}");

    // A new console: the log-in asks the station, which found the draft.
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(Vec::new(), Vec::new()));
    update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Ok(op("j.smith")),
        },
    );
    update(
        &mut app,
        Msg::DraftOpened {
            operator: op("j.smith"),
            result: Ok(Some(Box::new(saved.clone()))),
        },
    );
    assert!(matches!(app.confirm, Some(Confirm::ResumeDraft(_))));
    snapshot("kept_draft_offer", &app);
    let effects = press(&mut app, KeyCode::Char('y'));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(app.screen, Screen::Handover, "the summary is read first");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Form);
    let form = app.form.as_ref().expect("the draft is back");
    assert!(
        form.values.iter().any(|v| v == "Dnieper"),
        "{:?}",
        form.values
    );
    assert!(screen(&app, 120, 40).contains("Dnieper"));

    // Released: the kept copy goes once the station has it.
    let effects = update(
        &mut app,
        Msg::ReleaseFinished {
            result: Ok(Box::new(outbound(
                9,
                Precedence::Routine,
                0,
                MessageState::Queued,
            ))),
        },
    );
    assert_eq!(discards(&effects), 1, "{effects:?}");

    // `n` to the offer throws it away; another operator's answer is ignored.
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    update(
        &mut app,
        Msg::DraftOpened {
            operator: op("a.ivanova"),
            result: Ok(Some(Box::new(saved.clone()))),
        },
    );
    assert!(app.confirm.is_none(), "not this operator's draft");
    update(
        &mut app,
        Msg::DraftOpened {
            operator: op("j.smith"),
            result: Ok(Some(Box::new(saved))),
        },
    );
    let effects = press(&mut app, KeyCode::Char('n'));
    assert_eq!(discards(&effects), 1, "{effects:?}");
    assert!(app.form.is_none());
}

#[test]
fn login_without_a_name_asks_for_one() {
    let mut app = App::new(setup(), now());
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "secret");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.login.error.is_some());
    assert!(!app.login.on_passphrase, "focus goes back to the name");
}

#[test]
fn inbound_sort_order_uses_every_tie_breaker() {
    // Given in the wrong order on purpose.
    let rows = vec![
        // acknowledged FLASH: after every unacknowledged message
        acknowledged(inbound(1, Precedence::Flash, 1), "j.smith"),
        // arrival: two PRIORITY stored within the same second
        MessageRow {
            stored_at: "2026-11-26T13:59:00.900000000Z".parse().expect("time"),
            ..inbound(2, Precedence::Priority, 1)
        },
        MessageRow {
            stored_at: "2026-11-26T13:59:00.100000000Z".parse().expect("time"),
            ..inbound(3, Precedence::Priority, 1)
        },
        // time left: the IMMEDIATE with less time left first
        inbound(4, Precedence::Immediate, 5),
        inbound(5, Precedence::Immediate, 20),
        // precedence beats time left: an overdue ROUTINE after a fresh FLASH
        inbound(6, Precedence::Routine, 7 * 60),
        inbound(7, Precedence::Flash, 1),
        // acknowledged ones are ordered among themselves too
        acknowledged(inbound(8, Precedence::Routine, 1), "j.smith"),
    ];
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(rows, Vec::new()));
    let order: Vec<MessageId> = app.inbound.iter().map(|r| r.id).collect();
    let want: Vec<MessageId> = [7, 5, 4, 3, 2, 6, 1, 8].into_iter().map(id).collect();
    assert_eq!(order, want);
}

#[test]
fn sorting_keeps_the_selected_message_selected() {
    let mut app = on_duty(
        setup(),
        vec![
            inbound(1, Precedence::Routine, 10),
            inbound(2, Precedence::Routine, 5),
        ],
        Vec::new(),
    );
    select(&mut app, 2);
    update(
        &mut app,
        refreshed(
            vec![
                inbound(1, Precedence::Routine, 10),
                inbound(2, Precedence::Routine, 5),
                inbound(3, Precedence::Immediate, 1),
            ],
            Vec::new(),
        ),
    );
    assert_eq!(app.inbound.get(app.selected_in).expect("a row").id, id(2));
}

#[test]
fn acknowledging_routine_is_immediate() {
    let mut app = on_duty(
        setup(),
        vec![inbound(1, Precedence::Routine, 3)],
        Vec::new(),
    );
    let effects = press(&mut app, KeyCode::Char('a'));
    match effects.as_slice() {
        [
            Effect::Acknowledge {
                operator,
                id: ack,
                what,
            },
        ] => {
            assert_eq!(*operator, op("j.smith"));
            assert_eq!(*ack, id(1));
            assert_eq!(what, "ROUTINE MOSCOW/1 (general)", "named by its handle");
        }
        other => panic!("expected one Acknowledge, got {other:?}"),
    }
    assert_eq!(app.confirm, None);
}

#[test]
fn acknowledging_flash_or_immediate_asks_first() {
    for precedence in [Precedence::Flash, Precedence::Immediate] {
        let mut app = on_duty(setup(), vec![inbound(1, precedence, 3)], Vec::new());
        assert!(press(&mut app, KeyCode::Char('a')).is_empty());
        assert_eq!(
            app.confirm,
            Some(Confirm::Acknowledge {
                id: id(1),
                precedence,
                reply_after: false
            })
        );
        assert!(press(&mut app, KeyCode::Char('n')).is_empty());
        assert_eq!(app.confirm, None);

        press(&mut app, KeyCode::Char('a'));
        assert!(
            press(&mut app, KeyCode::Char('x')).is_empty(),
            "only y answers yes"
        );
        assert!(app.confirm.is_some());
        let effects = press(&mut app, KeyCode::Char('y'));
        assert!(
            matches!(effects.as_slice(), [Effect::Acknowledge { id: a, .. }] if *a == id(1)),
            "{precedence}: {effects:?}"
        );
        assert_eq!(app.confirm, None);
    }
}

#[test]
fn acknowledging_is_one_way() {
    let mut app = on_duty(
        setup(),
        vec![acknowledged(inbound(1, Precedence::Routine, 3), "a.jones")],
        Vec::new(),
    );
    let effects = press(&mut app, KeyCode::Char('a'));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(app.confirm, None);
    let notice = app.notice.as_deref().expect("says why");
    assert!(
        notice.contains("a.jones") && notice.contains("one-way"),
        "{notice}"
    );
}

#[test]
fn ack_and_reply_carries_the_reference_and_the_sender() {
    // From BEIJING, the second peer, so the form's peer must change.
    let row = MessageRow {
        peer: station("BEIJING"),
        ..inbound(1, Precedence::Routine, 3)
    };
    let mut app = on_duty(setup(), vec![row], Vec::new());
    let effects = press(&mut app, KeyCode::Char('R'));
    assert!(
        matches!(effects.as_slice(), [Effect::Acknowledge { id: a, .. }] if *a == id(1)),
        "{effects:?}"
    );
    assert_eq!(app.screen, Screen::Picker);
    assert_eq!(app.reply_refs, vec![id(1)]);
    type_text(&mut app, "response");
    press(&mut app, KeyCode::Enter);
    let form = app.form.as_ref().expect("form open");
    assert_eq!(form.template.id, "response");
    assert_eq!(form.references, vec![id(1)]);
    assert_eq!(app.setup.peers[form.peer].0, "BEIJING");
}

#[test]
fn ack_and_reply_on_flash_asks_then_replies() {
    let mut app = on_duty(setup(), vec![inbound(1, Precedence::Flash, 3)], Vec::new());
    assert!(press(&mut app, KeyCode::Char('R')).is_empty());
    assert!(matches!(
        app.confirm,
        Some(Confirm::Acknowledge {
            reply_after: true,
            ..
        })
    ));
    let effects = press(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Acknowledge { .. }]),
        "{effects:?}"
    );
    assert_eq!(app.screen, Screen::Picker);
    assert_eq!(app.reply_refs, vec![id(1)]);
}

#[test]
fn compose_validates_then_confirms_then_releases() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.screen, Screen::Picker);
    type_text(&mut app, "miss");
    let matches = app.picker.matches(Catalog::builtin(), Language::EN);
    let ids: Vec<&str> = matches.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["missile-launch"]);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Form);

    // Nothing filled in: a notice, no question.
    assert!(press(&mut app, KeyCode::F(5)).is_empty());
    assert_eq!(app.confirm, None);
    let notice = app.notice.clone().expect("a notice");
    assert!(notice.contains("cannot release yet"), "{notice}");
    assert!(notice.contains("required"), "{notice}");

    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::Tab); // past Remarks to Free text
    type_text(&mut app, "Planned test.");
    assert!(press(&mut app, KeyCode::F(5)).is_empty());
    assert_eq!(app.confirm, Some(Confirm::Release));
    let effects = press(&mut app, KeyCode::Char('y'));
    match effects.as_slice() {
        [
            Effect::Release {
                operator,
                to,
                draft,
                attachments,
                second,
            },
        ] => {
            assert!(attachments.is_empty(), "nothing was attached");
            assert_eq!(*operator, op("j.smith"));
            assert_eq!(to, "MOSCOW");
            assert_eq!(
                *second, None,
                "no second operator without the two-person rule"
            );
            assert_eq!(draft.template_id, "missile-launch");
            assert_eq!(draft.precedence, Some(Precedence::Flash));
            assert_eq!(draft.text, "Planned test.");
            let get = |k: &str| draft.fields.get(k).map(String::as_str);
            assert_eq!(get("launch_time"), Some("261500Z NOV 26"));
            assert_eq!(get("launch_window"), Some("2h 30m"));
            assert_eq!(get("launch_area"), Some("62.93N 40.58E"));
            assert_eq!(get("impact_area"), Some("57.77N 161.77E"));
            assert_eq!(get("missile_type"), Some("icbm"));
            assert_eq!(get("count"), Some("1"));
            assert_eq!(get("remarks"), None, "empty fields are left out");
            check(draft, Catalog::builtin(), now()).expect("the station will accept it");
        }
        other => panic!("expected one Release, got {other:?}"),
    }
    assert_eq!(app.screen, Screen::Sent);
    assert!(app.form.is_none());
}

#[test]
fn compose_precedence_and_peer_follow_the_arrows() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    compose(&mut app, "miss");
    press(&mut app, KeyCode::Right); // To: MOSCOW -> BEIJING
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right); // FLASH -> IMMEDIATE
    press(&mut app, KeyCode::BackTab);
    fill_launch(&mut app, "+1h", "2");
    press(&mut app, KeyCode::F(5));
    let effects = press(&mut app, KeyCode::Char('y'));
    match effects.as_slice() {
        [Effect::Release { to, draft, .. }] => {
            assert_eq!(to, "BEIJING");
            assert_eq!(draft.precedence, Some(Precedence::Immediate));
        }
        other => panic!("expected one Release, got {other:?}"),
    }
}

#[test]
fn flash_needs_a_second_operator_who_is_someone_else() {
    let mut app = on_duty(
        Setup {
            two_person_flash: true,
            ..setup()
        },
        Vec::new(),
        Vec::new(),
    );
    compose(&mut app, "miss");
    fill_launch(&mut app, "261500Z NOV 26", "1");
    assert!(press(&mut app, KeyCode::F(5)).is_empty());
    assert_eq!(app.confirm, Some(Confirm::SecondOperator));
    assert!(
        press(&mut app, KeyCode::Char('y')).is_empty(),
        "y is typed as the second operator's name, it does not release"
    );
    assert_eq!(app.second.name, "y");
    press(&mut app, KeyCode::Backspace);

    // The same operator again is refused.
    type_text(&mut app, "j.smith");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "pass");
    let effects = press(&mut app, KeyCode::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::CheckSecond { name, .. }] if name == "j.smith"),
        "{effects:?}"
    );
    update(
        &mut app,
        Msg::SecondChecked {
            result: Ok(op("j.smith")),
        },
    );
    assert_eq!(app.confirm, Some(Confirm::SecondOperator));
    assert!(app.second_operator.is_none());
    assert!(
        app.second
            .error
            .as_deref()
            .is_some_and(|e| e.contains("different")),
        "{:?}",
        app.second.error
    );

    // Someone else is accepted and the release question follows.
    type_text(&mut app, "a.jones");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "pass");
    let effects = press(&mut app, KeyCode::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::CheckSecond { name, .. }] if name == "a.jones"),
        "{effects:?}"
    );
    update(
        &mut app,
        Msg::SecondChecked {
            result: Ok(op("a.jones")),
        },
    );
    assert_eq!(app.confirm, Some(Confirm::Release));
    assert_eq!(app.second_operator, Some(op("a.jones")));
    assert!(screen(&app, 120, 40).contains("Second operator: a.jones"));
    let effects = press(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Release { operator, second: Some(second), .. }]
                if *operator == op("j.smith") && *second == op("a.jones")
        ),
        "{effects:?}"
    );
}

#[test]
fn two_person_rule_leaves_other_precedences_alone() {
    let mut app = on_duty(
        Setup {
            two_person_flash: true,
            ..setup()
        },
        Vec::new(),
        Vec::new(),
    );
    compose(&mut app, "miss");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Left); // FLASH -> ROUTINE
    press(&mut app, KeyCode::BackTab);
    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::F(5));
    assert_eq!(app.confirm, Some(Confirm::Release));
}

#[test]
fn ctrl_l_locks_and_audits() {
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    let effects = ctrl(&mut app, 'l');
    let locks: Vec<&Effect> = effects
        .iter()
        .filter(|e| matches!(e, Effect::Audit { .. }))
        .collect();
    match locks.as_slice() {
        [Effect::Audit { actor, action, .. }] => {
            assert_eq!(actor, "j.smith");
            assert_eq!(action, "lock");
        }
        other => panic!("expected one lock audit, got {other:?}"),
    }
    assert!(
        effects
            .iter()
            .all(|e| matches!(e, Effect::Audit { .. } | Effect::LoggedOut)),
        "{effects:?}"
    );
    assert!(app.operator.is_none());
    assert_eq!(app.screen, Screen::Login);
    assert!(ctrl(&mut app, 'l').is_empty(), "locking twice does nothing");
}

#[test]
fn ctrl_l_locks_from_inside_a_draft() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    compose(&mut app, "miss");
    type_text(&mut app, "x");
    let effects = ctrl(&mut app, 'l');
    assert_eq!(audits(&effects, "lock").len(), 1, "{effects:?}");
    assert!(app.form.is_none(), "no draft is left on a locked screen");
    assert_eq!(app.screen, Screen::Login);
}

/// Ctrl-Q asks before it stops anything, says what stops, and names what
/// is still unacknowledged; `n` keeps the console, and only `y` (or a
/// second Ctrl-Q) quits. Attached, the question says the station stays.
#[test]
fn quitting_asks_and_says_what_stops() {
    let flash = inbound(1, Precedence::Flash, 2);
    let immediate = inbound(2, Precedence::Immediate, 3);
    let mut app = on_duty(setup(), vec![flash, immediate], Vec::new());
    assert!(
        ctrl(&mut app, 'q').is_empty(),
        "nothing stops on the first key"
    );
    assert!(!app.quit);
    assert_eq!(app.confirm, Some(Confirm::Quit));
    let shown = screen(&app, 80, 24);
    assert!(
        shown.contains("Quit, and stop station WASHINGTON?"),
        "{shown}"
    );
    assert!(shown.contains("links to MOSCOW and BEIJING"), "{shown}");
    assert!(
        shown.contains("Messages are unacknowledged: 1 FLASH and 1 IMMEDIATE."),
        "{shown}"
    );
    assert!(press(&mut app, KeyCode::Char('n')).is_empty());
    assert!(!app.quit && app.confirm.is_none(), "n keeps the console");
    ctrl(&mut app, 'q');
    assert!(matches!(
        press(&mut app, KeyCode::Char('y'))[..],
        [Effect::Quit]
    ));
    assert!(app.quit);

    let mut attached = on_duty(
        Setup {
            attached: true,
            ..setup()
        },
        Vec::new(),
        Vec::new(),
    );
    ctrl(&mut attached, 'q');
    let shown = screen(&attached, 80, 24);
    assert!(shown.contains("Quit this console?"), "{shown}");
    assert!(shown.contains("keeps running"), "{shown}");
    assert!(
        !shown.contains("unacknowledged:"),
        "nothing is waiting: {shown}"
    );
    assert!(matches!(ctrl(&mut attached, 'q')[..], [Effect::Quit]));
}

/// Esc on a draft with something typed in it asks; on an empty one it
/// simply goes back.
#[test]
fn esc_on_a_typed_draft_asks_before_throwing_it_away() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    compose(&mut app, "gen");
    press(&mut app, KeyCode::Esc);
    assert!(app.form.is_none(), "an empty draft goes without a question");
    assert_eq!(app.screen, Screen::Queue);

    compose(&mut app, "gen");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "typed work");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.confirm, Some(Confirm::Abandon));
    assert!(screen(&app, 80, 24).contains("Abandon this draft?"));
    press(&mut app, KeyCode::Esc);
    assert!(app.confirm.is_none());
    let form = app.form.as_ref().expect("the draft is still there");
    assert!(
        form.values.iter().any(|v| v == "typed work"),
        "{:?}",
        form.values
    );
    assert_eq!(app.screen, Screen::Form);
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('y'));
    assert!(app.form.is_none());
    assert_eq!(app.screen, Screen::Queue);
}

#[test]
fn idle_console_locks_itself() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    let idle = SignedDuration::try_from(app.setup.idle_lock).expect("fits");
    let effects = update(
        &mut app,
        Msg::Tick(now() + idle - SignedDuration::from_secs(1)),
    );
    assert!(audits(&effects, "lock").is_empty(), "{effects:?}");
    assert!(!app.locked());

    // A key press restarts the idle clock.
    press(&mut app, KeyCode::Down);
    let restarted = app.now;
    let effects = update(&mut app, Msg::Tick(now() + idle));
    assert!(audits(&effects, "lock").is_empty(), "{effects:?}");

    let effects = update(&mut app, Msg::Tick(restarted + idle));
    assert_eq!(audits(&effects, "lock"), ["reason=idle"], "{effects:?}");
    assert!(app.locked());
    assert_eq!(app.screen, Screen::Login);
}

#[test]
fn a_flash_arriving_rings_even_while_locked() {
    let mut app = App::new(setup(), now());
    let effects = update(
        &mut app,
        refreshed(vec![inbound(1, Precedence::Routine, 1)], Vec::new()),
    );
    assert_eq!(bells(&effects), 0);
    let effects = update(
        &mut app,
        refreshed(
            vec![
                inbound(1, Precedence::Routine, 1),
                inbound(2, Precedence::Flash, 0),
            ],
            Vec::new(),
        ),
    );
    assert!(app.locked());
    assert_eq!(bells(&effects), 1, "{effects:?}");
    // The same FLASH again is not news.
    let effects = update(
        &mut app,
        refreshed(vec![inbound(2, Precedence::Flash, 0)], Vec::new()),
    );
    assert_eq!(bells(&effects), 0, "{effects:?}");
}

/// Regression: the bell compared the number of unacknowledged FLASH
/// messages before and after a refresh, so a new FLASH arriving in the same
/// refresh as another one's acknowledgement did not ring at once.
#[test]
fn a_new_flash_rings_when_another_was_acknowledged_in_the_same_refresh() {
    let mut app = on_duty(setup(), vec![inbound(1, Precedence::Flash, 1)], Vec::new());
    let effects = update(
        &mut app,
        refreshed(
            vec![
                acknowledged(inbound(1, Precedence::Flash, 1), "j.smith"),
                inbound(2, Precedence::Flash, 0),
            ],
            Vec::new(),
        ),
    );
    assert_eq!(bells(&effects), 1, "{effects:?}");
}

#[test]
fn the_bell_repeats_at_most_every_bell_repeat() {
    let mut app = App::new(setup(), now());
    let effects = update(
        &mut app,
        refreshed(vec![inbound(1, Precedence::Flash, 0)], Vec::new()),
    );
    assert_eq!(bells(&effects), 1);
    let repeat = SignedDuration::try_from(BELL_REPEAT).expect("fits");
    let half_tick = SignedDuration::from_millis(500);
    let mut rung = Vec::new();
    let mut t = now();
    while t < now() + repeat * 3 {
        t += half_tick;
        if bells(&update(&mut app, Msg::Tick(t))) > 0 {
            rung.push(t.duration_since(now()));
        }
    }
    assert_eq!(rung, [repeat, repeat * 2, repeat * 3]);
}

#[test]
fn the_bell_stops_once_the_flash_is_acknowledged() {
    let mut app = on_duty(setup(), vec![inbound(1, Precedence::Flash, 0)], Vec::new());
    update(
        &mut app,
        refreshed(
            vec![acknowledged(inbound(1, Precedence::Flash, 0), "j.smith")],
            Vec::new(),
        ),
    );
    let repeat = SignedDuration::try_from(BELL_REPEAT).expect("fits");
    let effects = update(&mut app, Msg::Tick(now() + repeat * 2));
    assert_eq!(bells(&effects), 0, "{effects:?}");
}

/// An alarm as the station raises it.
fn alarm(kind: AlarmKind, subject: &str, text: &str, ago: i64) -> Alarm {
    Alarm {
        kind,
        subject: subject.into(),
        peer: Some("MOSCOW".into()),
        id: None,
        text: text.into(),
        raised_at: mins_ago(ago),
        count: 1,
    }
}

#[test]
fn the_console_raises_no_overdue_alarm_of_its_own() {
    // IMMEDIATE: 30 minutes to acknowledge; this one arrived 40 minutes
    // ago. Overdue is the station's judgement: the console's ticks raise
    // nothing, audit nothing and ring nothing for it.
    let mut app = on_duty(
        setup(),
        vec![inbound(1, Precedence::Immediate, 40)],
        Vec::new(),
    );
    let mut t = now();
    for _ in 0..20 {
        let effects = update(&mut app, Msg::Tick(t));
        assert!(audits(&effects, "escalate").is_empty(), "{effects:?}");
        assert_eq!(bells(&effects), 0, "{effects:?}");
        t += SignedDuration::from_secs(30);
    }
    assert!(app.alarms.is_empty(), "{:?}", app.alarms);
    // Control: the same ticks ring once the station's overdue alarm is up.
    update(
        &mut app,
        Msg::Station(Event::Alarm(alarm(
            AlarmKind::Overdue,
            &id(1).to_string(),
            "IMMEDIATE MOSCOW/1 is OVERDUE for acknowledgement",
            1,
        ))),
    );
    let effects = update(&mut app, Msg::Tick(t));
    assert_eq!(bells(&effects), 1, "{effects:?}");
}

#[test]
fn one_alarm_per_cause_and_it_goes_when_the_station_says() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    let down = alarm(
        AlarmKind::LinkDown,
        "MOSCOW",
        "the link to MOSCOW is DOWN",
        3,
    );
    update(&mut app, Msg::Station(Event::Alarm(down.clone())));
    update(
        &mut app,
        Msg::Station(Event::Alarm(Alarm {
            count: 2,
            ..down.clone()
        })),
    );
    assert_eq!(app.alarms.len(), 1, "{:?}", app.alarms);
    assert_eq!(app.alarms[0].count, 2);
    // A failover is a link event: the station's board says whether it is an
    // alarm, not the console.
    update(
        &mut app,
        Msg::Station(Event::FailedOver {
            peer: "MOSCOW".into(),
            path: PathKind::Backup,
        }),
    );
    assert_eq!(app.alarms.len(), 1, "{:?}", app.alarms);
    update(
        &mut app,
        Msg::Station(Event::AlarmCleared {
            kind: AlarmKind::LinkDown,
            subject: "MOSCOW".into(),
            by: None,
        }),
    );
    assert!(app.alarms.is_empty(), "{:?}", app.alarms);
}

#[test]
fn a_newer_notice_never_hides_an_alarm() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    update(
        &mut app,
        Msg::Station(Event::Alarm(alarm(
            AlarmKind::FlashNoReceipt,
            "m1",
            "FLASH to:MOSCOW/6 has no receipt after 30 s",
            0,
        ))),
    );
    app.notice = Some("released FLASH serial 7 to MOSCOW".into());
    for (w, h) in [(60, 20), (80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert!(
            shown.contains("FLASH to:MOSCOW/6 has no receipt"),
            "{w}x{h}:\n{shown}"
        );
        assert!(
            shown.contains("released FLASH serial 7"),
            "{w}x{h}:\n{shown}"
        );
        assert!(shown.contains("ALARMS 1"), "{w}x{h}:\n{shown}");
    }
    // Locked, the count still shows.
    ctrl(&mut app, 'l');
    assert!(app.locked());
    assert!(screen(&app, 80, 24).contains("ALARMS 1"));
}

#[test]
fn the_alarm_panel_lists_every_alarm_and_clears_the_selected_one() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    update(
        &mut app,
        Msg::Station(Event::Alarm(alarm(
            AlarmKind::LinkDown,
            "MOSCOW",
            "the link to MOSCOW is DOWN",
            65,
        ))),
    );
    update(
        &mut app,
        Msg::Station(Event::Alarm(alarm(
            AlarmKind::Gap,
            "MOSCOW",
            "serial(s) 4 from MOSCOW have not arrived",
            2,
        ))),
    );
    press(&mut app, KeyCode::F(3));
    assert!(app.alarms_open);
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("ALARMS — 2 up"), "{shown}");
    assert!(shown.contains("1h05m"), "{shown}");
    assert!(shown.contains("LINK-DOWN"), "{shown}");
    assert!(shown.contains("GAP"), "{shown}");
    press(&mut app, KeyCode::Down);
    let effects = press(&mut app, KeyCode::Char('x'));
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::ClearAlarm { kind: AlarmKind::Gap, subject }] if subject == "MOSCOW"
        ),
        "{effects:?}"
    );
    press(&mut app, KeyCode::Esc);
    assert!(!app.alarms_open);
}

#[test]
fn rebound_keys_drive_input_footer_and_help() {
    let mut overrides = BTreeMap::new();
    overrides.insert("acknowledge".to_string(), "z".to_string());
    let keymap = Keymap::with_overrides(&overrides).expect("valid rebinding");
    let mut app = on_duty(
        Setup { keymap, ..setup() },
        vec![inbound(1, Precedence::Routine, 3)],
        Vec::new(),
    );
    assert!(press(&mut app, KeyCode::Char('a')).is_empty());
    let effects = press(&mut app, KeyCode::Char('z'));
    assert!(
        matches!(effects.as_slice(), [Effect::Acknowledge { id: a, .. }] if *a == id(1)),
        "{effects:?}"
    );

    let footer = app.setup.keymap.footer(Context::Queue, app.setup.language);
    assert!(
        footer.iter().any(|(k, l)| k == "z" && *l == "acknowledge"),
        "{footer:?}"
    );
    assert!(!footer.iter().any(|(k, _)| k == "a"), "{footer:?}");
    let shown = screen(&app, 120, 40);
    let footer_line = shown.lines().last().expect("a footer line");
    assert!(footer_line.contains(" z acknowledge"), "{footer_line}");

    press(&mut app, KeyCode::F(1));
    assert!(app.help.is_some());
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("  z          acknowledge the selected message"),
        "{shown}"
    );
    assert!(
        !shown.contains("  a          acknowledge"),
        "the old key is gone from help:\n{shown}"
    );
}

/// The status bar's second line lists every peer's link first; with two
/// peers the unacknowledged counts and the FLASH alert fell off the end of
/// an 80-column terminal. Where the full flag would leave a peer unnamed,
/// it shortens to "FLASH!", but it is always there.
#[test]
fn flash_unacknowledged_is_visible_at_80_columns() {
    let app = on_duty(setup(), queue_rows(), Vec::new());
    for (w, h, flag) in [
        (60, 20, "FLASH!"),
        (80, 24, "FLASH!"),
        (120, 40, "FLASH UNACKNOWLEDGED"),
    ] {
        let shown = screen(&app, w, h);
        assert!(
            shown.contains(&format!("UNACK Z:1 O:2 P:0 R:1 {flag} │")),
            "{shown}"
        );
    }
}

/// The help overlay listed every context in table order without scrolling,
/// so the keys of the compose form (F5 release, F2 preview) and of the
/// confirmations could not be seen at 80x24 or even 120x40.
#[test]
fn help_shows_the_keys_of_the_screen_it_was_opened_from() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = on_duty(setup(), Vec::new(), Vec::new());
        compose(&mut app, "miss");
        press(&mut app, KeyCode::F(1));
        assert!(app.help.is_some());
        let shown = screen(&app, w, h);
        assert!(
            shown.contains("release the message") && shown.contains("F5"),
            "{w}x{h}:\n{shown}"
        );
        assert!(shown.contains("F2"), "{w}x{h}:\n{shown}");
    }
}

#[test]
fn the_confirmation_has_its_own_footer() {
    let mut app = on_duty(setup(), vec![inbound(1, Precedence::Flash, 3)], Vec::new());
    press(&mut app, KeyCode::Char('a'));
    let shown = screen(&app, 120, 40);
    let footer = shown.lines().last().expect("a footer line");
    assert!(
        footer.contains(" y yes") && footer.contains(" Esc no"),
        "{footer}"
    );
}

// ===========================================================================
// B. Snapshots of the main screens

#[test]
fn snapshot_login() {
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(queue_rows(), sent_rows()));
    type_text(&mut app, "j.smith");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "secret");
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("LOCKED"), "{shown}");
    assert!(
        shown.contains("FLASH 1  IMMEDIATE 2  PRIORITY 0  ROUTINE 1"),
        "{shown}"
    );
    assert!(shown.contains("••••••"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(
        !shown.contains("Ballistic"),
        "a locked console shows counts, never content:\n{shown}"
    );
    snapshot("login", &app);
}

#[test]
fn snapshot_handover() {
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(queue_rows(), sent_rows()));
    update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Ok(op("j.smith")),
        },
    );
    assert_eq!(app.screen, Screen::Handover);
    snapshot("handover", &app);
}

#[test]
fn snapshot_the_console_in_every_shipped_language() {
    for lang in hotline::lang::shipped_languages() {
        if lang == Language::EN {
            continue;
        }
        let mut setup = setup();
        setup.language = lang;
        let mut app = on_duty(setup, queue_rows(), sent_rows());
        let shown = screen(&app, 120, 40);
        // Control: the English words are gone, the language's are there.
        assert!(!shown.contains("INBOUND"), "{lang}:\n{shown}");
        let title = hotline::lang::text(lang, "lists.inbound_title");
        assert!(
            shown.replace(' ', "").contains(&title.replace(' ', "")),
            "{lang}:\n{shown}"
        );
        snapshot(&format!("queue_{lang}"), &app);
        compose(&mut app, "miss");
        fill_launch(&mut app, "261500Z NOV 26", "1");
        snapshot(&format!("compose_{lang}"), &app);
    }
}

#[test]
fn snapshot_inbound_queue() {
    let app = on_duty(setup(), queue_rows(), sent_rows());
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("5 messages, 4 unacknowledged"), "{shown}");
    assert!(shown.contains("OVERDUE 10m"), "{shown}");
    assert!(shown.contains("ACK j.smith"), "{shown}");
    snapshot("queue", &app);
}

/// A message stored after its sender's key was reported compromised says
/// so on its row; the rest do not (control).
#[test]
fn a_suspect_message_is_marked_on_its_row() {
    let mut rows = queue_rows();
    rows[0].suspect = Some("stored after the key was reported compromised".into());
    let app = on_duty(setup(), rows, sent_rows());
    let shown = screen(&app, 120, 40);
    assert_eq!(shown.matches("SUSPECT").count(), 1, "{shown}");
    let app = on_duty(setup(), queue_rows(), sent_rows());
    assert!(!screen(&app, 120, 40).contains("SUSPECT"));
}

/// A message's marking heads its subject in the list, at 80x24 too; one
/// this station's policy does not list is flagged. Control: a row without
/// a marking shows none.
#[test]
fn the_marking_is_shown_on_the_row_and_an_unknown_one_flagged() {
    let mut rows = queue_rows();
    rows[0].label = Some("CONFIDENTIAL".into());
    rows[1].label = Some("COSMIC".into());
    let app = on_duty(setup(), rows, sent_rows());
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert!(shown.contains("‹CONFIDENTIAL›"), "{w}x{h}:\n{shown}");
        assert!(shown.contains("‹COSMIC ?UNKNOWN"), "{w}x{h}:\n{shown}");
    }
    let plain = on_duty(setup(), queue_rows(), sent_rows());
    assert!(!screen(&plain, 120, 40).contains('‹'));
}

/// ←/→ on the marking row choose among the station's markings, from its
/// default; the draft carries the choice (none until one is made).
#[test]
fn the_marking_is_chosen_on_its_row() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    let draft = |app: &App| app.form.as_ref().expect("form").draft();
    assert_eq!(draft(&app).label, None);
    press(&mut app, KeyCode::BackTab); // from To, back to the last row
    assert!(screen(&app, 120, 40).contains("Marking:     ◀ CONFIDENTIAL ▶ (the default"));
    press(&mut app, KeyCode::Left);
    assert_eq!(draft(&app).label.as_deref(), Some("UNCLASSIFIED"));
    press(&mut app, KeyCode::Left);
    assert_eq!(draft(&app).label.as_deref(), Some("CONFIDENTIAL"));
}

/// A message a later one amends says so on its row, by the newer one's
/// handle, at 80x24 too. Control: the other rows say nothing of it.
#[test]
fn a_corrected_message_says_so_on_its_row() {
    let mut rows = queue_rows();
    rows[0].amended = Some(hotline::store::Amended {
        kind: hotline::templates::Amends::Correction,
        by: hotline::domain::MessageId::new(),
        serial: 77,
    });
    let app = on_duty(setup(), rows, sent_rows());
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert_eq!(
            shown.matches("CORRECTED by MOSCOW/77").count(),
            1,
            "{w}x{h}:\n{shown}"
        );
    }
    assert!(!screen(&on_duty(setup(), queue_rows(), sent_rows()), 120, 40).contains("CORRECTED"));
}

/// `r` on a sent message starts its correction: the picker on the
/// correction form (the cancellation beside it), the message referenced,
/// its peer chosen.
#[test]
fn r_on_a_sent_message_starts_its_correction() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Sent);
    let selected = app
        .outbound
        .get(app.selected_out)
        .expect("a sent row")
        .clone();
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.screen, Screen::Picker);
    let picked = app.picker.matches(Catalog::builtin(), Language::EN)[app.picker.selected]
        .id
        .clone();
    assert_eq!(picked, "correction");
    press(&mut app, KeyCode::Enter);
    let form = app.form.as_ref().expect("the form");
    assert_eq!(form.template.id, "correction");
    assert_eq!(form.references, vec![selected.id]);
    assert_eq!(app.setup.peers[form.peer].0, selected.peer.as_str());
}

/// A launch notification typed for less than 24 hours ahead warns in the
/// form. Control: 48 hours ahead does not.
#[test]
fn the_form_warns_of_short_notice() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "blm");
    assert_eq!(
        app.form.as_ref().expect("form").template.id,
        "blm-notification"
    );
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "+48h");
    assert!(!screen(&app, 120, 40).contains("SHORT NOTICE"));
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "+2h");
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("SHORT NOTICE"), "{shown}");
}

#[test]
fn snapshot_sent_list() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Sent);
    let shown = screen(&app, 120, 40);
    for state in [
        "QUEUED",
        "SENT, NO RECEIPT",
        "RECEIVED BY PEER",
        "ACK BY i.petrov",
        "REFUSED: unknown",
        "CANCELLED",
    ] {
        assert!(shown.contains(state), "{state}:\n{shown}");
    }
    snapshot("sent", &app);
}

#[test]
fn snapshot_message_rendered_and_original() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    open_message(&mut app, 11, launch_message());
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("RENDERED in your language"), "{shown}");
    assert!(
        shown.contains("Ballistic missile launch notification"),
        "{shown}"
    );
    assert!(shown.contains("NOT ACKNOWLEDGED"), "{shown}");
    snapshot("message_rendered", &app);

    assert!(press(&mut app, KeyCode::Char('o')).is_empty());
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("THE SENDER'S ORIGINAL (ru)"), "{shown}");
    assert!(
        shown.contains("Уведомление о пуске баллистической ракеты"),
        "{shown}"
    );
    snapshot("message_original", &app);

    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::Queue);
    assert!(app.reading.is_none());
}

#[test]
fn snapshot_compose_with_an_invalid_field() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "yesterday", "1000");
    let form = app.form.as_ref().expect("form");
    assert!(
        form.problem(0, app.now, Language::EN).is_some(),
        "launch time is invalid"
    );
    assert!(
        form.problem(5, app.now, Language::EN).is_some(),
        "count is out of range"
    );
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("✗"), "{shown}");
    snapshot("compose_invalid", &app);
}

/// The form words its refusals in the operator's language: a French
/// operator reads why the launch time and the count are refused in French,
/// beside each field and in the list Release answers with. Control: an
/// English operator reads them as before, each error's English `Display`.
#[test]
fn field_problems_are_shown_in_the_operators_language() {
    let fr: Language = "fr".parse().expect("fr");
    let datetime = |lang| hotline::lang::format(lang, "field.datetime", &[("input", &"yesterday")]);
    let count = |lang| {
        hotline::lang::format(
            lang,
            "field.out_of_range",
            &[("n", &1000), ("min", &1), ("max", &100)],
        )
    };
    assert_ne!(
        datetime(fr),
        datetime(Language::EN),
        "control: French words"
    );

    let mut french = setup();
    french.language = fr;
    let mut app = on_duty(french, queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "yesterday", "1000");
    let form = app.form.as_ref().expect("form");
    assert_eq!(form.problem(0, app.now, fr), Some(datetime(fr)));
    assert_eq!(form.problem(5, app.now, fr), Some(count(fr)));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains(&format!("✗ {}", count(fr))), "{shown}");
    assert!(!shown.contains("is outside"), "{shown}");
    press(&mut app, KeyCode::F(5));
    let release = app.notice.clone().unwrap_or_default();
    assert!(release.contains(&count(fr)), "{release}");
    assert!(release.contains(&datetime(fr)), "{release}");

    // Control: the English operator's form, as it always read.
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "yesterday", "1000");
    let form = app.form.as_ref().expect("form");
    let english = |i: usize, input: &str| match form.template.fields[i].canonicalize(input, app.now)
    {
        Err(hotline::templates::ValueError::Invalid { problem, .. }) => problem.to_string(),
        other => panic!("{input}: expected a refusal, got {other:?}"),
    };
    assert_eq!(
        form.problem(0, app.now, Language::EN),
        Some(datetime(Language::EN))
    );
    assert_eq!(
        form.problem(0, app.now, Language::EN),
        Some(english(0, "yesterday"))
    );
    assert_eq!(
        form.problem(5, app.now, Language::EN).as_deref(),
        Some("1000 is outside 1..=100")
    );
    assert_eq!(
        form.problem(5, app.now, Language::EN),
        Some(english(5, "1000"))
    );
}

/// ←/→ on the free-text row choose the language the text is written in,
/// from the operator's; the draft carries it.
#[test]
fn the_free_text_language_is_chosen_on_its_row() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::Tab); // past Remarks to Free text
    assert!(screen(&app, 120, 40).contains("Free text, in ◀ English ▶"));
    let draft = |app: &App| app.form.as_ref().expect("form").draft();
    assert_eq!(draft(&app).text_language, None, "the operator's by default");
    // Every shipped language in turn, each named in itself, then round.
    for (tag, name) in [
        ("fr", "français"),
        ("ru", "русский"),
        ("zh", "中文"),
        ("en", "English"),
    ] {
        press(&mut app, KeyCode::Right);
        assert_eq!(
            draft(&app).text_language.map(|l| l.to_string()).as_deref(),
            Some(tag)
        );
        assert!(screen(&app, 120, 40).contains(&format!("Free text, in ◀ {name} ▶")));
    }
    press(&mut app, KeyCode::Left);
    assert_eq!(
        draft(&app).text_language.map(|l| l.to_string()).as_deref(),
        Some("zh")
    );
}

#[test]
fn snapshot_picker() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::Char('c'));
    snapshot("picker", &app);
}

#[test]
fn snapshot_preview() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::Tab); // past Remarks to Free text
    type_text(&mut app, "Planned test.");
    press(&mut app, KeyCode::F(2));
    assert!(app.preview);
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("PREVIEW English"), "{shown}");
    assert!(shown.contains("PREVIEW français"), "{shown}");
    snapshot("preview", &app);
    press(&mut app, KeyCode::Esc);
    assert!(!app.preview, "Esc closes the preview, not the draft");
    assert!(app.form.is_some());
}

#[test]
fn snapshot_release_confirmation() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::F(5));
    assert_eq!(app.confirm, Some(Confirm::Release));
    snapshot("release_confirm", &app);
}

#[test]
fn snapshot_acknowledge_confirmation() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    select(&mut app, 11);
    press(&mut app, KeyCode::Char('a'));
    assert!(matches!(app.confirm, Some(Confirm::Acknowledge { .. })));
    snapshot("ack_confirm", &app);
}

#[test]
fn snapshot_help() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::F(1));
    assert!(app.help.is_some());
    snapshot("help", &app);
    assert!(
        press(&mut app, KeyCode::Char('a')).is_empty(),
        "a key that is not help's is not taken as a command"
    );
    assert!(app.help.is_some(), "and it does not close help");
    press(&mut app, KeyCode::Esc);
    assert!(app.help.is_none());
}

#[test]
fn no_color_uses_no_colour_and_states_read_as_words() {
    let mut app = on_duty(
        Setup {
            no_color: true,
            attached: false,
            ..setup()
        },
        queue_rows(),
        sent_rows(),
    );
    // FLASH flashing on, an alarm raised: the loudest the console gets.
    update(&mut app, Msg::Tick(now() + SignedDuration::from_secs(1)));
    let mut words = String::new();
    let mut check_screen = |app: &App, what: &str| {
        for (w, h) in [(80, 24), (120, 40)] {
            let buffer = draw(app, w, h);
            for (i, cell) in buffer.content.iter().enumerate() {
                assert!(
                    cell.fg == Color::Reset && cell.bg == Color::Reset,
                    "{what} {w}x{h}: cell {i} {:?} has colour {:?} on {:?}",
                    cell.symbol(),
                    cell.fg,
                    cell.bg
                );
            }
            words.push_str(&text(&buffer));
        }
    };
    check_screen(&app, "queue");
    press(&mut app, KeyCode::Tab);
    check_screen(&app, "sent");
    press(&mut app, KeyCode::Tab);
    select(&mut app, 11);
    open_message(&mut app, 11, launch_message());
    check_screen(&app, "message");
    press(&mut app, KeyCode::Esc);
    compose(&mut app, "miss");
    fill_launch(&mut app, "yesterday", "1");
    check_screen(&app, "compose");
    press(&mut app, KeyCode::F(1));
    check_screen(&app, "help");
    press(&mut app, KeyCode::Esc);
    ctrl(&mut app, 'l');
    check_screen(&app, "login");
    for word in [
        "UNACK",
        "OVERDUE",
        "REFUSED",
        "FLASH UNACKNOWLEDGED",
        "○ DOWN",
        "● UP",
        "✗",
        "LOCKED",
    ] {
        assert!(words.contains(word), "`{word}` is not shown");
    }
}

/// The two-person rule on screen: a FLASH released by two operators says
/// so in the sent list (for the selected message) and in the message view.
#[test]
fn a_second_operator_is_shown_as_released_by_both() {
    let mut sent = sent_rows();
    let flash = sent
        .iter()
        .position(|r| r.id == id(24))
        .expect("the FLASH row");
    sent[flash].second_operator = Some(op("a.jones"));
    let mut app = on_duty(setup(), queue_rows(), sent);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Sent);
    // CONTROL: another message selected, no such line.
    app.selected_out = app
        .outbound
        .iter()
        .position(|r| r.id == id(21))
        .expect("row 21");
    assert!(!screen(&app, 120, 40).contains("released by"));
    app.selected_out = app
        .outbound
        .iter()
        .position(|r| r.id == id(24))
        .expect("row 24");
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert!(
            shown.contains("to:MOSCOW/24 released by j.smith and a.jones"),
            "{w}x{h}:\n{shown}"
        );
    }

    // The message view reads it from the signed message.
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    open_message(&mut app, 11, launch_message());
    assert!(!screen(&app, 120, 40).contains("released by"), "CONTROL");
    let mut two = launch_message();
    two.second_operator = Some(op("a.ivanova"));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    open_message(&mut app, 11, two);
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("released by i.petrov and a.ivanova (two-person rule)"),
        "{shown}"
    );
}

// ===========================================================================
// C. Hostile text from the wire

fn hostile_message() -> Message {
    let mut m = launch_message();
    m.text = format!("free {EVIL}\nsecond line\u{1b}[0m");
    m.fields.insert("remarks".into(), format!("remarks {EVIL}"));
    m.original.text = format!("{}\noriginal {EVIL}", m.original.text);
    m
}

fn assert_placeholders(shown: &str) {
    for placeholder in [
        "␛[2J",
        "␛]0;pwned␇",
        "␛]52;c;SGVsbG8=␇",
        "⟨U+202E⟩",
        "⟨U+200B⟩",
        "⟨U+2066⟩",
    ] {
        assert!(
            shown.contains(placeholder),
            "{placeholder} missing:\n{shown}"
        );
    }
}

#[test]
fn hostile_text_in_a_message_is_shown_inert() {
    let row = acknowledged(inbound(11, Precedence::Flash, 2), &format!("ack {EVIL}"));
    let mut app = on_duty(setup(), vec![row], Vec::new());
    open_message(&mut app, 11, hostile_message());
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        assert_inert(&draw(&app, w, h));
    }
    // Wide enough that no placeholder is cut by wrapping.
    let shown = screen(&app, 200, 60);
    assert!(shown.contains("free clear␛[2J"), "{shown}");
    assert!(shown.contains("remarks clear␛[2J"), "{shown}");
    assert!(shown.contains("acknowledged by ack clear␛[2J"), "{shown}");
    assert_placeholders(&shown);

    press(&mut app, KeyCode::Char('o'));
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        assert_inert(&draw(&app, w, h));
    }
    let shown = screen(&app, 200, 60);
    assert!(shown.contains("original clear␛[2J"), "{shown}");
    assert_placeholders(&shown);
}

#[test]
fn hostile_text_in_queue_rows_is_shown_inert() {
    let rows = vec![
        // ack_by is text from the wire: the peer's signed acknowledgement
        // names its operator unchecked.
        acknowledged(inbound(1, Precedence::Routine, 2), "\u{202E}\u{1b}]0;x"),
        // An unknown template's id is shown as it came.
        MessageRow {
            template_id: format!("\u{200B}{EVIL}"),
            ..inbound(2, Precedence::Flash, 1)
        },
    ];
    // The releasing operator and the peer are typed names: hostile text
    // cannot reach a row at all, neither built here nor read from a
    // station's JSON (how an attached console gets its rows).
    let hostile_peer = format!("P\u{2066}{EVIL}");
    assert!(OperatorName::new(EVIL).is_err());
    assert!(StationName::new(&hostile_peer).is_err());
    let json = serde_json::to_value(&rows[1]).expect("a row as JSON");
    assert!(serde_json::from_value::<MessageRow>(json.clone()).is_ok());
    for (field, text) in [("peer", hostile_peer.as_str()), ("operator", EVIL)] {
        let mut bad = json.clone();
        bad[field] = text.into();
        assert!(
            serde_json::from_value::<MessageRow>(bad).is_err(),
            "a hostile {field} was accepted"
        );
    }
    let sent = vec![MessageRow {
        refusal: Some(format!("\u{1b}[2J{EVIL}")),
        ..outbound(3, Precedence::Routine, 1, MessageState::Refused)
    }];
    let mut app = on_duty(setup(), rows.clone(), sent.clone());
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let buffer = draw(&app, w, h);
        assert_inert(&buffer);
    }
    let shown = screen(&app, 200, 60);
    assert!(shown.contains("ACK ⟨U+202E⟩"), "{shown}");
    assert!(shown.contains("⟨U+200B⟩clear␛[2J"), "{shown}");

    press(&mut app, KeyCode::Tab);
    for (w, h) in [(80, 24), (200, 60)] {
        assert_inert(&draw(&app, w, h));
    }
    assert!(screen(&app, 200, 60).contains("REFUSED: ␛[2Jclear␛[2J"));

    // The handover summary and the log-in screen show the same rows.
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(rows, sent));
    assert_inert(&draw(&app, 120, 40));
    update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Ok(op("j.smith")),
        },
    );
    for (w, h) in [(80, 24), (200, 60)] {
        assert_inert(&draw(&app, w, h));
    }
    let shown = screen(&app, 200, 60);
    assert!(shown.contains("⟨U+200B⟩clear␛[2J"), "{shown}");
}

/// Regression: the message view printed the sender's language and the
/// template id as they came from the wire in its heading ("THE SENDER'S
/// ORIGINAL (…)" and "not rendered here because …"), outside the sanitizer.
/// ratatui happens to drop the control and zero-width characters itself, so
/// nothing reached the terminal, but the operator was not shown that
/// something odd was sent: the placeholders must be visible.
#[test]
fn sender_language_and_template_id_from_the_wire_are_inert() {
    let mut unknown_language = launch_message();
    unknown_language.original.language = "ru\u{202E}\u{1b}]0;pwned\u{07}".into();
    let mut unknown_template = launch_message();
    unknown_template.template.id = "launch\u{202E}\u{200B}\u{1b}[2J".into();
    let cases = [
        (unknown_language, "ru⟨U+202E⟩␛]0;pwned␇"),
        (unknown_template, "launch⟨U+202E⟩⟨U+200B⟩␛[2J"),
    ];
    for (message, placeholder) in cases {
        let mut app = on_duty(setup(), vec![inbound(11, Precedence::Flash, 2)], Vec::new());
        open_message(&mut app, 11, message);
        for (w, h) in [(80, 24), (200, 60)] {
            assert_inert(&draw(&app, w, h));
        }
        let shown = screen(&app, 200, 60);
        assert!(shown.contains("not rendered here"), "{shown}");
        assert!(
            shown.contains(placeholder),
            "{placeholder} missing:\n{shown}"
        );
        press(&mut app, KeyCode::Char('o'));
        for (w, h) in [(80, 24), (200, 60)] {
            assert_inert(&draw(&app, w, h));
        }
    }
    let mut app = on_duty(setup(), vec![inbound(11, Precedence::Flash, 2)], Vec::new());
    let mut message = launch_message();
    message.original.language = "ru\u{202E}".into();
    open_message(&mut app, 11, message);
    press(&mut app, KeyCode::Char('o'));
    let shown = screen(&app, 200, 60);
    assert!(
        shown.contains("THE SENDER'S ORIGINAL (ru⟨U+202E⟩)"),
        "{shown}"
    );
}

// ===========================================================================
// D. A queue of 100,000 messages

#[test]
fn a_hundred_thousand_rows_draw_only_what_is_visible() {
    const ROWS: u64 = 100_000;
    // Already in queue order (oldest first, all ROUTINE), as the journal
    // lists them. Each row's sender is unique, so a drawn row names itself.
    let rows: Vec<MessageRow> = (1..=ROWS)
        .map(|n| {
            let stored = now() - SignedDuration::from_secs((ROWS + 1 - n) as i64);
            MessageRow {
                peer: station(&format!("PEER{n}")),
                stored_at: stored,
                released_at: stored,
                ..inbound(u128::from(n), Precedence::Routine, 0)
            }
        })
        .collect();
    let mut app = on_duty(setup(), rows, Vec::new());
    assert_eq!(app.inbound.len(), 100_000);

    // The one selected row drawn, and the rows of the table in order.
    let drawn = |app: &App| -> (String, Vec<String>) {
        let shown = screen(app, 80, 24);
        assert!(
            shown.contains("100000 messages, 100000 unacknowledged"),
            "{shown}"
        );
        // The rows: after the column header, up to the first blank line.
        let table: Vec<String> = shown
            .lines()
            .skip_while(|l| !l.contains("PREC"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert!(table.len() > 10, "a screenful of rows:\n{shown}");
        let selected: Vec<&String> = table.iter().filter(|l| l.starts_with('▶')).collect();
        assert_eq!(selected.len(), 1, "one selected row on screen:\n{shown}");
        (selected[0].clone(), table)
    };
    let peer = |app: &App| {
        format!(
            " {} ",
            app.inbound.get(app.selected_in).expect("a row").peer
        )
    };

    assert_eq!(app.selected_in, 0);
    let (line, table) = drawn(&app);
    assert!(line.contains(" PEER1 "), "{line}");
    assert!(table[0].starts_with('▶'), "the first row is at the top");

    for _ in 0..3 {
        press(&mut app, KeyCode::PageDown);
    }
    assert_eq!(app.selected_in, 3 * PAGE);
    let (line, _) = drawn(&app);
    assert!(line.contains(&peer(&app)), "{line}");
    assert!(line.contains(" PEER31 "), "{line}");

    // To the end (the lists have no End key; this is where paging ends).
    app.selected_in = app.inbound.len() - 1;
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.selected_in, 99_999, "PageDown stops at the last row");
    let (line, table) = drawn(&app);
    assert!(line.contains(" PEER100000 "), "{line}");
    assert!(
        table.last().is_some_and(|l| l.starts_with('▶')),
        "the last message is the last row drawn: {table:#?}"
    );
    assert!(table[table.len() - 2].contains(" PEER99999 "), "{table:#?}");

    press(&mut app, KeyCode::PageUp);
    press(&mut app, KeyCode::Up);
    assert_eq!(app.selected_in, 99_999 - PAGE - 1);
    let (line, _) = drawn(&app);
    assert!(line.contains(" PEER99989 "), "{line}");

    press(&mut app, KeyCode::Down);
    assert!(drawn(&app).0.contains(" PEER99990 "));
}

/// Regression: the SER column was four characters wide, so serial 12345 was
/// drawn as "1234" and 100000 as "1000": a wrong serial, not a cut one.
#[test]
fn serials_above_9999_are_shown_whole() {
    let mut app = on_duty(
        setup(),
        vec![MessageRow {
            serial: 12_345,
            ..inbound(1, Precedence::Routine, 1)
        }],
        vec![MessageRow {
            serial: 100_000,
            ..outbound(2, Precedence::Routine, 1, MessageState::Sent)
        }],
    );
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert!(shown.contains(" 12345 "), "{w}x{h}:\n{shown}");
    }
    press(&mut app, KeyCode::Tab);
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert!(shown.contains(" 100000 "), "{w}x{h}:\n{shown}");
    }
}

/// Regression: the LEFT column was eleven characters wide, so a message
/// 1305 minutes overdue read "OVERDUE 130", ten times less than it was.
#[test]
fn long_overdue_times_are_shown_whole() {
    // ROUTINE: six hours to acknowledge; this one arrived 6 h + 21 h 45 m ago.
    let app = on_duty(
        setup(),
        vec![inbound(1, Precedence::Routine, 6 * 60 + 1305)],
        Vec::new(),
    );
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        let row = shown
            .lines()
            .find(|l| l.starts_with('▶'))
            .expect("the selected row");
        let left = row
            .split("OVERDUE ")
            .nth(1)
            .expect("the row says OVERDUE")
            .trim();
        assert!(
            ["1305m", "21h45m", "21h 45m", "21:45"].contains(&left),
            "{w}x{h}: `OVERDUE {left}`:\n{shown}"
        );
    }
}

/// The sent list says when the peer's acknowledgement is overdue by this
/// station's deadline, counted from the receipt.
#[test]
fn sent_messages_show_an_overdue_acknowledgement() {
    let mut late = outbound(21, Precedence::Flash, 30, MessageState::Receipted);
    late.receipt_at = Some(now() - SignedDuration::from_mins(25));
    let mut fresh = outbound(22, Precedence::Flash, 1, MessageState::Receipted);
    fresh.receipt_at = Some(now() - SignedDuration::from_mins(1));
    let mut app = on_duty(setup(), Vec::new(), vec![late, fresh]);
    press(&mut app, KeyCode::Tab);
    let shown = screen(&app, 120, 40);
    assert_eq!(shown.matches("RECEIVED, ACK OVERDUE").count(), 1, "{shown}");
    assert_eq!(shown.matches("RECEIVED BY PEER").count(), 1, "{shown}");
}

/// `e` in the message view exports the attachments of a message that has
/// some; one without gets a notice and no effect.
#[test]
fn e_exports_the_attachments_of_the_message_being_read() {
    let mut with = launch_message();
    with.attachments.push(hotline::domain::AttachmentRef {
        name: "map.png".into(),
        size: 3,
        sha256: "00".repeat(32),
    });
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    open_message(&mut app, 11, with);
    let effects = press(&mut app, KeyCode::Char('e'));
    assert!(
        matches!(effects.as_slice(), [Effect::ExportAttachments(m)] if *m == id(11)),
        "{effects:?}"
    );

    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    open_message(&mut app, 11, launch_message());
    let effects = press(&mut app, KeyCode::Char('e'));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(
        app.notice.as_deref(),
        Some("this message has no attachments")
    );
}

/// The compose form's attach row: a typed path is added with Enter, taken
/// back with Backspace on an empty path, completed with → (as an effect,
/// since completion reads the disk), and released with the message.
#[test]
fn the_composer_attaches_files() {
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    press(&mut app, KeyCode::Char('c'));
    type_text(&mut app, "general");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "subject");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "text");
    press(&mut app, KeyCode::Tab); // free text
    press(&mut app, KeyCode::Tab); // attach row
    type_text(&mut app, "/tmp/ma");
    let effects = press(&mut app, KeyCode::Right);
    assert!(
        matches!(effects.as_slice(), [Effect::CompletePath(p)] if p == "/tmp/ma"),
        "{effects:?}"
    );
    update(
        &mut app,
        Msg::PathCompleted {
            typed: "/tmp/ma".into(),
            completed: "/tmp/map.png".into(),
        },
    );
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "/tmp/wrong");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Backspace); // empty path: takes back /tmp/wrong
    let form = app.form.as_ref().expect("form");
    assert_eq!(form.attachments, vec!["/tmp/map.png".to_string()]);
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("/tmp/map.png"), "{shown}");
    press(&mut app, KeyCode::F(5));
    let effects = press(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Release { attachments, .. }] if *attachments == vec![std::path::PathBuf::from("/tmp/map.png")]),
        "{effects:?}"
    );
}

#[test]
fn path_completion_completes_as_far_as_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("report-2026.pdf"), b"x").expect("write");
    std::fs::write(dir.path().join("report-2025.pdf"), b"x").expect("write");
    std::fs::create_dir(dir.path().join("images")).expect("dir");
    let base = dir.path().display().to_string();
    assert_eq!(
        hotline::term::complete_path(&format!("{base}/rep")),
        format!("{base}/report-202")
    );
    assert_eq!(
        hotline::term::complete_path(&format!("{base}/report-2026")),
        format!("{base}/report-2026.pdf")
    );
    assert_eq!(
        hotline::term::complete_path(&format!("{base}/im")),
        format!("{base}/images/")
    );
    assert_eq!(
        hotline::term::complete_path(&format!("{base}/nothing")),
        format!("{base}/nothing")
    );
}

/// A message whose attachments have not all arrived says so in the lists,
/// before any bytes move; one with all of them stored does not.
#[test]
fn lists_show_attachments_pending() {
    let mut waiting = inbound(31, Precedence::Routine, 1);
    waiting.attachments = 2;
    waiting.attachments_done = 1;
    let mut complete = inbound(32, Precedence::Routine, 2);
    complete.attachments = 1;
    complete.attachments_done = 1;
    let app = on_duty(setup(), vec![waiting, complete], Vec::new());
    let shown = screen(&app, 120, 40);
    assert_eq!(shown.matches("UNACK ATT 1/2").count(), 1, "{shown}");
    assert!(!shown.contains("ATT 1/1"), "{shown}");
}

// ---------------------------------------------------------------------------
// The networked white cell

fn candidate(station: &str, fingerprint: &str) -> hotline::station::admission::Candidate {
    hotline::station::admission::Candidate {
        station: station.into(),
        fingerprint: fingerprint.into(),
        remote: "192.0.2.7:50123".into(),
        asked: "13:59:30Z".into(),
        state: hotline::station::admission::JoinState::Pending,
    }
}

/// A tabletop console with the facilitator's keys, on duty.
fn facilitator(mut s: Setup) -> App {
    s.exercise_mode = true;
    s.keymap = Keymap::default().with_white_cell();
    on_duty(s, Vec::new(), Vec::new())
}

fn white_cell_view() -> hotline::console::WhiteCellView {
    hotline::console::WhiteCellView {
        scenario: "intro".into(),
        scenario_time: Duration::ZERO,
        speed: 1.0,
        paused: true,
        injects: Vec::new(),
        join: Some(
            "hotline tabletop --join 192.0.2.1:7471 --pin 0A1B:2C3D:4E5F:6071:8293:A4B5:C6D7:E8F9:0A1B:2C3D:4E5F:6071:8293:A4B5:C6D7:E8F9".into(),
        ),
        trainees: vec![hotline::console::TraineeRow {
            station: "BRAVO".into(),
            link_up: true,
            scenario_time: Duration::ZERO,
            delivered: 0,
            injects: 2,
            met: 0,
            late: 0,
            missed: 0,
        }],
        waiting: vec![
            candidate("ALPHA", "1111 2222 3333 4444 5555 6666 7777 8888 9999 AAAA BBBB CCCC DDDD EEEE FFFF 0000"),
            candidate("CHARLIE\u{1b}]0;pwned\u{7}", "AAAA 2222 3333 4444 5555 6666 7777 8888 9999 AAAA BBBB CCCC DDDD EEEE FFFF 0000"),
        ],
        report: None,
        ..Default::default()
    }
}

#[test]
fn the_facilitator_admits_the_selected_waiting_station_by_fingerprint() {
    let mut app = facilitator(setup());
    update(&mut app, Msg::WhiteCell(white_cell_view()));
    press(&mut app, KeyCode::F(9));
    assert!(app.white_cell_open);

    // Fingerprints are what the facilitator compares: whole, even at 80 columns.
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        assert!(
            shown.contains("--join 192.0.2.1:7471 --pin FINGERPRINT"),
            "{shown}"
        );
        assert!(
            shown.contains("fingerprint 0A1B 2C3D 4E5F 6071 8293 A4B5 C6D7 E8F9"),
            "{shown}"
        );
        assert!(shown.contains("▶ ALPHA"), "{shown}");
        assert!(
            shown.contains("1111 2222 3333 4444 5555 6666 7777 8888"),
            "{shown}"
        );
        assert!(
            shown.contains("9999 AAAA BBBB CCCC DDDD EEEE FFFF 0000"),
            "{shown}"
        );
    }
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("BRAVO"), "{shown}");
    assert_inert(&draw(&app, 120, 40));
    snapshot("white_cell_waiting", &app);

    press(&mut app, KeyCode::Down);
    let effects = press(&mut app, KeyCode::Char('a'));
    let admitted: Vec<&str> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::WhiteCell(hotline::console::WhiteCellCommand::Admit(f)) => Some(f.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        admitted,
        vec!["AAAA 2222 3333 4444 5555 6666 7777 8888 9999 AAAA BBBB CCCC DDDD EEEE FFFF 0000"],
        "a admits the selected (second) station, by its fingerprint"
    );
    // The selection cannot run past the last waiting station.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let effects = press(&mut app, KeyCode::Char('x'));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::WhiteCell(hotline::console::WhiteCellCommand::Refuse(f)) if f.starts_with("AAAA")
        )),
        "{effects:?}"
    );

    // With nobody waiting, a admits nothing and says so.
    let mut empty = white_cell_view();
    empty.waiting.clear();
    update(&mut app, Msg::WhiteCell(empty));
    let effects = press(&mut app, KeyCode::Char('a'));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(
        app.notice.as_deref(),
        Some("no station is waiting to be admitted")
    );
}

#[test]
fn a_join_request_rings_and_an_admitted_trainee_becomes_a_peer() {
    let mut s = setup();
    s.peers.clear();
    let mut app = facilitator(s);
    let effects = update(
        &mut app,
        Msg::Station(hotline::station::Event::JoinRequested {
            station: "ALPHA".into(),
            fingerprint: "1111 2222".into(),
            remote: "192.0.2.7:50123".into(),
        }),
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::RingBell)),
        "{effects:?}"
    );
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("ALPHA asks to join")),
        "{:?}",
        app.notice
    );
    assert!(app.setup.peers.is_empty());
    update(
        &mut app,
        Msg::Station(hotline::station::Event::PeerAdded {
            peer: "ALPHA".into(),
        }),
    );
    assert_eq!(
        app.setup
            .peers
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>(),
        vec!["ALPHA"],
        "the admitted trainee can be written to"
    );
    snapshot("white_cell_admitted_peer", &app);
}

#[test]
fn the_report_opens_once_per_request_scrolls_and_closes() {
    let mut app = facilitator(setup());
    update(&mut app, Msg::WhiteCell(white_cell_view()));
    press(&mut app, KeyCode::F(9));
    let effects = press(&mut app, KeyCode::Char('w'));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::WhiteCell(hotline::console::WhiteCellCommand::Report)
        )),
        "w asks the white cell for the report: {effects:?}"
    );
    assert!(
        app.report.is_none(),
        "nothing is shown until the report comes"
    );

    let text: String = std::iter::once("# After-action report: Test\n".to_string())
        .chain((1..=60).map(|i| format!("- T+00:{i:02} line {i} by op\u{1b}[31m\n")))
        .collect();
    let mut view = white_cell_view();
    view.report = Some(hotline::console::ShownReport {
        seq: 1,
        text,
        written: "after-action report written to aar.md".into(),
    });
    update(&mut app, Msg::WhiteCell(view.clone()));
    assert_eq!(app.context(), Context::Report);
    assert_eq!(
        app.notice.as_deref(),
        Some("after-action report written to aar.md")
    );
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("After-action report: Test"), "{shown}");
    assert_inert(&draw(&app, 80, 24));
    snapshot("after_action_report", &app);

    press(&mut app, KeyCode::PageDown);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.report.as_ref().map(|(_, s)| *s), Some(PAGE + 1));
    let shown = screen(&app, 80, 24);
    assert!(
        !shown.contains("After-action report: Test"),
        "scrolled:\n{shown}"
    );
    assert!(shown.contains(&format!("line {}", PAGE + 1)), "{shown}");
    for _ in 0..20 {
        press(&mut app, KeyCode::PageDown);
    }
    assert_eq!(
        app.report.as_ref().map(|(_, s)| *s),
        Some(60),
        "scrolling stops at the last line"
    );
    press(&mut app, KeyCode::Esc);
    assert!(app.report.is_none());
    assert_eq!(app.context(), Context::WhiteCell, "back to the panel");

    // The same report again does not reopen; the next one does.
    update(&mut app, Msg::WhiteCell(view.clone()));
    assert!(app.report.is_none());
    view.report = view
        .report
        .map(|r| hotline::console::ShownReport { seq: 2, ..r });
    update(&mut app, Msg::WhiteCell(view));
    assert!(app.report.is_some());
    // Locking hides it.
    ctrl(&mut app, 'l');
    assert!(app.report.is_none() && !app.white_cell_open);
}

#[test]
fn a_long_waiting_list_shows_the_selection_and_says_how_many_wait() {
    let mut app = facilitator(setup());
    let mut view = white_cell_view();
    view.waiting = (1..=5)
        .map(|i| {
            candidate(
                &format!("TRAINEE-{i}"),
                &format!("{i}{i}{i}{i} 2222 3333 4444 5555 6666 7777 8888 9999 AAAA BBBB CCCC DDDD EEEE FFFF 0000"),
            )
        })
        .collect();
    view.injects = vec![("ping".into(), Duration::from_secs(3), "pending".into())];
    update(&mut app, Msg::WhiteCell(view.clone()));
    press(&mut app, KeyCode::F(9));
    for _ in 0..3 {
        press(&mut app, KeyCode::Down);
    }
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("▶ TRAINEE-4"), "{shown}");
    assert!(shown.contains("TRAINEE-3"), "{shown}");
    assert!(!shown.contains("TRAINEE-1"), "{shown}");
    assert!(shown.contains("5 waiting in all"), "{shown}");
    assert!(
        shown.contains("4444 2222 3333 4444 5555 6666 7777 8888"),
        "the selected station's fingerprint is whole on screen:\n{shown}"
    );
    // One trainee: its injects are listed; two: they are not (whose would they be?).
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("ping"), "{shown}");
    view.trainees.push(hotline::console::TraineeRow {
        station: "DELTA".into(),
        ..view.trainees[0].clone()
    });
    update(&mut app, Msg::WhiteCell(view));
    let shown = screen(&app, 120, 40);
    assert!(!shown.contains("ping"), "{shown}");
    assert!(shown.contains("DELTA"), "{shown}");
}

/// Twelve peers, some with long and some with double-width names, half of
/// them down: at every size each peer's link state is on the status bar,
/// by name or in a count, down ones first, and no name is cut.
#[test]
fn every_link_state_shows_at_every_size_and_no_name_is_cut() {
    let names = [
        "MOSCOW",
        "BEIJING",
        "NEW-DELHI-NATIONAL-RISK-CENTRE",
        "北京中心",
        "PARIS",
        "LONDON",
        "東京センター",
        "ISLAMABAD",
        "BRASILIA-OPERATIONS",
        "OTTAWA",
        "CANBERRA",
        "PRETORIA",
    ];
    let down = [
        "BEIJING",
        "東京センター",
        "OTTAWA",
        "PRETORIA",
        "LONDON",
        "MOSCOW",
    ];
    let mut status = status();
    status.links = names
        .iter()
        .map(|name| PeerLinkStatus {
            peer: name.to_string(),
            up: !down.contains(name),
            path: (!down.contains(name)).then_some(PathKind::Primary),
            remote: None,
            rtt_ms: Some(42),
            last_traffic: None,
            probes: Vec::new(),
        })
        .collect();
    let setup = Setup {
        peers: names
            .iter()
            .map(|n| (n.to_string(), "UTC".to_string()))
            .collect(),
        ..setup()
    };
    let mut app = on_duty(setup, vec![inbound(1, Precedence::Flash, 1)], Vec::new());
    app.status = Some(*status);
    for (w, h) in [(60, 20), (80, 24), (120, 40), (320, 40)] {
        let buffer = draw(&app, w, h);
        // A double-width character takes two cells; the second is skipped,
        // as a terminal shows it.
        let mut line = String::new();
        let mut x = 0;
        while x < w {
            let symbol = buffer[(x, 1)].symbol();
            line.push_str(symbol);
            x += ratatui::text::Span::raw(symbol).width().max(1) as u16;
        }
        let line = line.trim_end();
        let mut named = Vec::new();
        let mut counted = 0;
        for segment in line.split(" │ ").skip(1) {
            let segment = segment.trim();
            if let Some(counts) = segment.strip_prefix('+') {
                for part in format!("+{counts}")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .chunks(2)
                {
                    counted += part[0]
                        .trim_start_matches('+')
                        .parse::<usize>()
                        .expect("a count");
                    assert!(matches!(part[1], "DOWN" | "DEGRADED" | "UP"), "{w}: {line}");
                }
                continue;
            }
            if segment.contains("alarms") || segment.starts_with("ALARMS") {
                continue;
            }
            let name = segment.split(' ').next().expect("a name");
            assert!(names.contains(&name), "{w}x{h}: `{name}` is cut in: {line}");
            assert!(
                segment.contains("DOWN") || segment.contains("UP"),
                "{w}x{h}: {line}"
            );
            named.push(name);
        }
        assert_eq!(named.len() + counted, names.len(), "{w}x{h}: {line}");
        assert!(line.contains("FLASH"), "{w}x{h}: {line}");
        // Down peers come before any up one.
        let first_up = named.iter().position(|n| !down.contains(n));
        let last_down = named.iter().rposition(|n| down.contains(n));
        if let (Some(up), Some(dn)) = (first_up, last_down) {
            assert!(dn < up, "{w}x{h}: {line}");
        }
        if w >= 80 {
            assert!(!named.is_empty(), "{w}x{h}: a down peer by name: {line}");
        }
        if w >= 320 {
            assert_eq!(named.len(), names.len(), "{w}x{h}: {line}");
        }
    }
}

/// The message view scrolled only with ↑/↓, ran on past the end into a
/// blank screen, and showed no "more below". Now every reading key moves
/// it, its position is in the title, and it stops at the last line.
#[test]
fn the_message_view_pages_shows_where_it_is_and_stops_at_the_end() {
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    let mut message = launch_message();
    message.text = (1..=50)
        .map(|i| format!("строка {i:02}"))
        .collect::<Vec<_>>()
        .join("\n");
    // The sender's original is rendered from the same fields and text.
    let template = Catalog::builtin()
        .get(&message.template.id, message.template.version)
        .expect("template");
    message.original.text =
        hotline::templates::render(&message, template, Language::RU, Language::RU);
    open_message(&mut app, 11, message);
    let first = screen(&app, 80, 24);
    assert!(first.contains("lines 1–") && first.contains("▼"), "{first}");
    assert!(!first.contains("▲"), "{first}");
    assert!(!first.contains("строка 50"), "{first}");

    press(&mut app, KeyCode::End);
    let end = screen(&app, 80, 24);
    assert!(end.contains("строка 50"), "{end}");
    assert!(end.contains("▲ lines ") && !end.contains("▼"), "{end}");
    let total = end
        .split(" of ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("a total in the title")
        .to_string();
    assert!(end.contains(&format!("–{total} of {total}")), "{end}");
    // Past the end: nothing moves.
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(screen(&app, 80, 24), end, "scrolling stops at the end");
    // And back: one line up is one line up, from the end.
    press(&mut app, KeyCode::Char('k'));
    let up = screen(&app, 80, 24);
    assert!(up.contains("▼") && up != end, "{up}");

    press(&mut app, KeyCode::Char('g'));
    assert_eq!(screen(&app, 80, 24), first);
    press(&mut app, KeyCode::Char(' '));
    let paged = screen(&app, 80, 24);
    assert!(paged.contains("▲ lines ") && paged.contains("▼"), "{paged}");
    press(&mut app, KeyCode::PageUp);
    assert_eq!(screen(&app, 80, 24), first);
    press(&mut app, KeyCode::PageDown);
    press(&mut app, KeyCode::Home);
    assert_eq!(screen(&app, 80, 24), first);
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(screen(&app, 80, 24), end);
}

/// Lists move with j/k/g/G as well as the arrows, Home and End.
#[test]
fn lists_move_with_vi_keys_too() {
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    let n = app.inbound.len();
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected_in, 1);
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.selected_in, 0);
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected_in, n - 1);
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected_in, 0);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected_out, app.outbound.len() - 1);
}

/// Help opened only on F1, could not scroll (Ctrl-L, Ctrl-Q and F9 were
/// cut at 80x24), and any key closed it.
#[test]
fn help_opens_on_question_mark_scrolls_and_closes_on_esc_q_or_question_mark() {
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    press(&mut app, KeyCode::Char('?'));
    let top = screen(&app, 80, 24);
    assert!(top.contains("inbound queue (this screen):"), "{top}");
    assert!(top.contains("▼"), "more below is marked:\n{top}");
    press(&mut app, KeyCode::End);
    let end = screen(&app, 80, 24);
    assert!(!end.contains("▼") && end.contains("▲ lines"), "{end}");
    // The last line of help is the last binding of the last screen listed.
    let mut order = Vec::new();
    for b in &app.setup.keymap.bindings {
        if !order.contains(&b.context) {
            order.push(b.context);
        }
    }
    let last_context = order.last().expect("a context");
    let last = app
        .setup
        .keymap
        .bindings
        .iter()
        .rfind(|b| b.context == *last_context)
        .expect("a binding");
    assert!(
        end.contains(last.help(app.setup.language)),
        "the last binding is reachable:\n{end}"
    );
    for key in [KeyCode::Up, KeyCode::PageUp, KeyCode::Char('g')] {
        press(&mut app, key);
    }
    assert_eq!(screen(&app, 80, 24), top);
    // Every key of every screen can be read by scrolling.
    let mut seen = String::new();
    for _ in 0..40 {
        seen.push_str(&screen(&app, 80, 24));
        press(&mut app, KeyCode::PageDown);
    }
    for key in ["Ctrl-l", "Ctrl-q", "F5", "F3", "F2"] {
        assert!(seen.contains(key), "{key} is in help:\n{seen}");
    }
    press(&mut app, KeyCode::F(1));
    assert!(app.help.is_none(), "the help key closes help too");
    for close in [KeyCode::Esc, KeyCode::Char('q'), KeyCode::Char('?')] {
        press(&mut app, KeyCode::F(1));
        assert!(app.help.is_some());
        assert!(press(&mut app, KeyCode::Char('x')).is_empty());
        assert!(app.help.is_some(), "an unbound key leaves help open");
        press(&mut app, close);
        assert!(app.help.is_none(), "{close:?} closes help");
    }
    // In the compose form `?` is text; F1 opens help there.
    compose(&mut app, "gen");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('?'));
    assert!(app.help.is_none());
    assert!(
        app.form
            .as_ref()
            .is_some_and(|f| f.values.iter().any(|v| v == "?"))
    );
    press(&mut app, KeyCode::F(1));
    assert!(screen(&app, 80, 24).contains("compose form (this screen):"));
}

/// Every screen the console has, in the states a duty officer meets.
fn every_screen() -> Vec<(&'static str, App)> {
    let mut out = Vec::new();
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(queue_rows(), sent_rows()));
    out.push(("login", app));
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(queue_rows(), sent_rows()));
    update(
        &mut app,
        Msg::LoginChecked {
            name: "j.smith".into(),
            result: Ok(op("j.smith")),
        },
    );
    out.push(("handover", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    out.push(("queue", on_duty(setup(), queue_rows(), sent_rows())));
    press(&mut app, KeyCode::Tab);
    out.push(("sent", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::Tab);
    app.selected_out = app
        .outbound
        .iter()
        .position(|r| r.state == MessageState::Refused)
        .expect("a refused row");
    out.push(("sent, refused selected", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    open_message(&mut app, 11, launch_message());
    let mut original = on_duty(setup(), queue_rows(), sent_rows());
    open_message(&mut original, 11, launch_message());
    press(&mut original, KeyCode::Char('o'));
    out.push(("message, original", original));
    out.push(("message, rendered", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::Char('c'));
    out.push(("picker", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "yesterday", "1000");
    out.push(("form", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::F(2));
    out.push(("preview", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    compose(&mut app, "miss");
    fill_launch(&mut app, "261500Z NOV 26", "1");
    press(&mut app, KeyCode::F(5));
    out.push(("release question", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    select(&mut app, 11);
    press(&mut app, KeyCode::Char('a'));
    out.push(("acknowledge question", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    ctrl(&mut app, 'q');
    out.push(("quit question", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    press(&mut app, KeyCode::Char('?'));
    out.push(("help", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    for (i, kind) in [AlarmKind::Gap, AlarmKind::Overdue, AlarmKind::LinkDown]
        .into_iter()
        .enumerate()
    {
        app.apply_alarm(alarm(
            kind,
            "MOSCOW",
            "an alarm whose text is long enough to need more than one narrow line",
            i as i64,
        ));
    }
    press(&mut app, KeyCode::F(3));
    out.push(("alarm panel", app));
    let mut app = on_duty(setup(), queue_rows(), sent_rows());
    let saved = hotline::drafts::SavedDraft {
        operator: op("j.smith"),
        to: "BEIJING".into(),
        draft: hotline::compose::Draft {
            template_id: "missile-launch".into(),
            fields: BTreeMap::new(),
            precedence: Some(Precedence::Immediate),
            text: String::new(),
            text_language: None,
            label: None,
            references: Vec::new(),
            exercise: false,
        },
        attachments: Vec::new(),
        saved_at: mins_ago(3),
    };
    update(
        &mut app,
        Msg::DraftOpened {
            operator: op("j.smith"),
            result: Ok(Some(Box::new(saved))),
        },
    );
    out.push(("kept draft offer", app));
    out
}

/// The words whose cut-off prefix would misinform: a list that showed
/// "IMMEDIA" and "PRIORIT", a status bar "13:5", footers "t li" and "Ct".
fn cut_short(shown: &str, whole: &[String]) -> Vec<String> {
    let tokens = shown
        .split(|c: char| c.is_whitespace() || "│┌┐└┘─()[],.:;·▶".contains(c))
        .filter(|t| !t.is_empty() && !t.ends_with('…'));
    let mut cut = Vec::new();
    for t in tokens {
        let partial = whole
            .iter()
            .any(|w| w.len() > t.len() && t.chars().count() >= 3 && w.starts_with(t));
        if partial && !whole.iter().any(|w| w == t) {
            cut.push(t.to_string());
        }
    }
    cut
}

/// Renders every screen at 60x20, 80x24 and 120x40 and fails on any value
/// that carries meaning cut short: precedence, serial, DTG, state, peer,
/// and every footer item whole (or left to help as "? more").
#[test]
fn nothing_that_carries_meaning_is_cut_at_any_size() {
    let mut whole: Vec<String> = ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
        .iter()
        .map(ToString::to_string)
        .collect();
    whole.extend(
        [
            "MOSCOW",
            "BEIJING",
            "WASHINGTON",
            "UNACKNOWLEDGED",
            "UNACK",
            "RECEIPT",
            "RECEIVED",
            "CANCELLED",
            "QUEUED",
            "REFUSED",
            "OVERDUE",
        ]
        .map(String::from),
    );
    // Controls: the checks see what the issue saw.
    assert_eq!(
        cut_short("▶ IMMEDIA 22 PRIORIT MOSCOW/6 ROUTINE Notific…", &whole),
        ["IMMEDIA", "PRIORIT"]
    );
    let mut seen = Vec::new();
    for (name, app) in every_screen() {
        seen.push(name);
        let mut values = whole.clone();
        for r in app.inbound.iter().chain(app.outbound.iter()) {
            values.push(r.serial.to_string());
        }
        for (w, h) in [(60, 20), (80, 24), (120, 40)] {
            let shown = screen(&app, w, h);
            let cut = cut_short(&shown, &values);
            assert!(cut.is_empty(), "{name} at {w}x{h}: cut {cut:?}\n{shown}");

            // The footer: whole items only, in order, then perhaps "more".
            let footer = shown.lines().last().unwrap_or_default().to_string();
            let mut rest = footer.trim().to_string();
            for (key, label) in hotline::ui::footer_items(&app) {
                let item = format!("{key} {label}");
                if let Some(at) = rest.find(&item) {
                    rest.replace_range(at..at + item.len(), "");
                }
            }
            let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                rest.is_empty() || rest == "? more" || rest == "F1 more",
                "{name} at {w}x{h}: footer `{footer}` leaves `{rest}`"
            );

            // The list rows: precedence, serial, DTG and state whole.
            if matches!(app.screen, Screen::Queue | Screen::Sent)
                && app.confirm.is_none()
                && app.help.is_none()
                && !app.alarms_open
            {
                let rows: Vec<&MessageRow> = if app.screen == Screen::Queue {
                    app.inbound.iter().collect()
                } else {
                    app.outbound.iter().collect()
                };
                for r in rows {
                    let dtg = hotline::domain::Dtg(r.released_at).to_string();
                    let day = dtg.split(' ').next().unwrap_or_default();
                    let line = shown
                        .lines()
                        .find(|l| l.contains(day) && l.contains(r.precedence.as_str()))
                        .unwrap_or_else(|| {
                            panic!(
                                "{name} at {w}x{h}: no whole row for serial {}:\n{shown}",
                                r.serial
                            )
                        });
                    assert!(
                        line.split_whitespace().any(|t| t == r.serial.to_string()),
                        "{name} at {w}x{h}: serial {} in `{line}`",
                        r.serial
                    );
                    let state = match r.state {
                        MessageState::Sent => "SENT, NO RECEIPT",
                        MessageState::Refused => "REFUSED:",
                        MessageState::Acknowledged
                            if r.direction == hotline::store::Direction::Out =>
                        {
                            "ACK BY"
                        }
                        MessageState::Acknowledged => "ACK",
                        MessageState::Received => "UNACK",
                        _ => r.state.label(hotline::domain::Language::EN),
                    };
                    assert!(
                        line.contains(state),
                        "{name} at {w}x{h}: state `{state}` in `{line}`"
                    );
                }
            }
        }
    }
    assert_eq!(seen.len(), 16, "{seen:?}");
}

fn changed(row: MessageRow) -> Msg {
    Msg::Station(Event::MessageChanged { row: Box::new(row) })
}

/// An IMMEDIATE arrival while on the sent list showed only as `O:1`, and an
/// acknowledgement of ours changed one row and nothing else. Arrivals are
/// said with precedence, peer and subject and ring as `[console] ring`
/// says (FLASH and IMMEDIATE by default); a locked console names no
/// subject; the peer's acknowledgement says who acknowledged what.
#[test]
fn arrivals_and_acknowledgements_are_noticed_and_ring_as_configured() {
    let mut app = on_duty(
        setup(),
        Vec::new(),
        vec![outbound(
            30,
            Precedence::Priority,
            5,
            MessageState::Receipted,
        )],
    );
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Sent);
    let subject = |n, p| MessageRow {
        subject: Some(format!("Dnieper dam {n}")),
        ..inbound(n, p, 0)
    };
    let effects = update(&mut app, changed(subject(40, Precedence::Immediate)));
    assert_eq!(bells(&effects), 1, "IMMEDIATE rings by default");
    let shown = screen(&app, 80, 24);
    assert!(
        shown.contains(r#"IMMEDIATE arrived from MOSCOW: IMMEDIATE MOSCOW/40 "Dnieper dam 40""#),
        "{shown}"
    );
    assert_eq!(
        app.screen,
        Screen::Sent,
        "an arrival never moves the screen"
    );
    // CONTROL: the same arrival again is a change, not an arrival.
    app.notice = None;
    let effects = update(&mut app, changed(subject(40, Precedence::Immediate)));
    assert_eq!(bells(&effects), 0);
    assert!(app.notice.is_none(), "{:?}", app.notice);
    let effects = update(&mut app, changed(subject(41, Precedence::Routine)));
    assert_eq!(bells(&effects), 0, "ROUTINE does not ring by default");
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("ROUTINE arrived from MOSCOW"))
    );

    // The peer acknowledges ours.
    let acked = acknowledged(
        MessageRow {
            subject: Some("Water levels".into()),
            ..outbound(30, Precedence::Priority, 5, MessageState::Receipted)
        },
        "i.petrov",
    );
    let effects = update(&mut app, changed(acked.clone()));
    assert_eq!(
        bells(&effects),
        0,
        "acknowledgements do not ring by default"
    );
    assert_eq!(
        app.notice.as_deref(),
        Some(r#"MOSCOW acknowledged PRIORITY to:MOSCOW/30 "Water levels": by i.petrov"#)
    );

    // Configured: ROUTINE and acknowledgements ring; IMMEDIATE does not.
    let ring = hotline::config::Ring {
        arrivals: [true, false, false, true],
        acknowledgements: true,
    };
    let mut app = on_duty(
        Setup { ring, ..setup() },
        Vec::new(),
        vec![outbound(
            30,
            Precedence::Priority,
            5,
            MessageState::Receipted,
        )],
    );
    assert_eq!(
        bells(&update(
            &mut app,
            changed(subject(42, Precedence::Immediate))
        )),
        0
    );
    assert_eq!(
        bells(&update(&mut app, changed(subject(43, Precedence::Routine)))),
        1
    );
    assert_eq!(bells(&update(&mut app, changed(acked))), 1);
    let flash = update(&mut app, changed(subject(44, Precedence::Flash)));
    assert_eq!(bells(&flash), 1, "a FLASH always rings");

    // Locked: the arrival is said, its content is not.
    let mut app = App::new(setup(), now());
    update(&mut app, refreshed(Vec::new(), Vec::new()));
    let effects = update(&mut app, changed(subject(45, Precedence::Flash)));
    assert_eq!(bells(&effects), 1);
    let shown = screen(&app, 80, 24);
    assert!(
        shown.contains("FLASH arrived from MOSCOW (MOSCOW/45): log in to read it"),
        "{shown}"
    );
    assert!(!shown.contains("Dnieper"), "{shown}");
}

/// Lists named the form ("General me"); they show the subject the station
/// opened in memory, or the form with its key field.
#[test]
fn lists_show_the_subject_and_questions_name_it() {
    let mut launch = inbound(50, Precedence::Flash, 1);
    launch.template_id = "missile-launch".into();
    launch.subject = Some("261500Z NOV 26".into());
    let general = MessageRow {
        subject: Some("Река Днепр".into()),
        ..inbound(51, Precedence::Immediate, 2)
    };
    let mut app = on_duty(
        setup(),
        vec![launch, general, inbound(52, Precedence::Routine, 3)],
        Vec::new(),
    );
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("Ballistic missile launch notification: 261500Z NOV 26"),
        "{shown}"
    );
    assert!(shown.contains("Река Днепр"), "{shown}");
    assert!(
        shown.contains("General message"),
        "no subject known: the form\n{shown}"
    );
    select(&mut app, 51);
    press(&mut app, KeyCode::Char('a'));
    assert!(
        screen(&app, 80, 24).contains(r#"Acknowledge IMMEDIATE MOSCOW/51 "Река Днепр"?"#),
        "{}",
        screen(&app, 80, 24)
    );
}

/// Reply preselects the template the original's template names for
/// replies, and keeps the original's precedence.
#[test]
fn reply_preselects_the_response_form_and_keeps_the_precedence() {
    let mut request = inbound(60, Precedence::Immediate, 1);
    request.template_id = "request-info".into();
    let mut app = on_duty(setup(), vec![request], Vec::new());
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.screen, Screen::Picker);
    assert!(
        screen(&app, 120, 40)
            .lines()
            .any(|l| l.contains('▶') && l.contains("Response to a request")),
        "{}",
        screen(&app, 120, 40)
    );
    press(&mut app, KeyCode::Enter);
    let form = app.form.as_ref().expect("the form");
    assert_eq!(form.template.id, "response");
    assert_eq!(
        form.precedence,
        Precedence::Immediate,
        "not the form's PRIORITY"
    );
    assert_eq!(form.references, vec![id(60)]);

    // CONTROL: a new message (not a reply) takes the form's own precedence.
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    compose(&mut app, "response");
    assert_eq!(
        app.form.as_ref().map(|f| f.precedence),
        Some(Precedence::Priority)
    );
}

/// Under NO_COLOR an example hint read as a typed value; it says it is one.
#[test]
fn example_hints_say_they_are_examples() {
    let mut app = on_duty(
        Setup {
            no_color: true,
            ..setup()
        },
        Vec::new(),
        Vec::new(),
    );
    compose(&mut app, "miss");
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("(e.g. 45.92N 63.34E)"), "{shown}");
    assert!(
        shown.contains("(e.g. now, +30m, 261415Z NOV 26)"),
        "{shown}"
    );
}

/// `/` filters the list as it is typed, Enter asks the station for the
/// whole history, n/N step through the matches, and no action falls on a
/// message the find hides.
#[test]
fn find_filters_as_typed_searches_the_history_and_steps_with_n() {
    let rows = vec![
        MessageRow {
            subject: Some("Dnieper dam".into()),
            ..inbound(1, Precedence::Immediate, 1)
        },
        MessageRow {
            subject: Some("Weather".into()),
            ..inbound(2, Precedence::Routine, 2)
        },
        MessageRow {
            subject: Some("Dnieper levels".into()),
            ..inbound(3, Precedence::Routine, 3)
        },
    ];
    let mut app = on_duty(setup(), rows, Vec::new());
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "dnie");
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("find: dnie▏ (2 here; Enter searches the whole history)"),
        "{shown}"
    );
    assert!(
        shown.contains("Dnieper dam") && shown.contains("Dnieper levels"),
        "{shown}"
    );
    assert!(!shown.contains("Weather"), "filtered out:\n{shown}");
    assert_eq!(app.inbound.get(app.selected_in).map(|r| r.id), Some(id(1)));
    // While typing, `n` and `a` are text, not commands.
    assert!(type_text(&mut app, "n").is_empty());
    press(&mut app, KeyCode::Backspace);
    let effects = press(&mut app, KeyCode::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::Find { direction: Direction::In, query }] if query == "dnie"),
        "{effects:?}"
    );
    assert!(screen(&app, 120, 40).contains("searching the whole history…"));
    // The station found 3 (a field value) and 1, not 2.
    update(
        &mut app,
        Msg::Found {
            direction: Direction::In,
            query: "dnie".into(),
            result: Ok(vec![id(3), id(1)]),
        },
    );
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("2 in the whole history; n/N step, Esc clears"),
        "{shown}"
    );
    let at = |app: &App| app.inbound.get(app.selected_in).map(|r| r.serial);
    assert_eq!(at(&app), Some(1));
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(at(&app), Some(3));
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(at(&app), Some(1), "n wraps");
    press(&mut app, KeyCode::Char('N'));
    assert_eq!(at(&app), Some(3));
    press(&mut app, KeyCode::Down);
    assert_eq!(at(&app), Some(1), "the arrows move among the matches");
    // The highlighted match is the one acted on.
    let effects = press(&mut app, KeyCode::Char('a'));
    assert!(
        matches!(app.confirm, Some(Confirm::Acknowledge { id: a, .. }) if a == id(1)),
        "{effects:?}"
    );
    press(&mut app, KeyCode::Esc);
    assert!(
        app.find.is_some(),
        "Esc answered the question, not the find"
    );
    press(&mut app, KeyCode::Esc);
    assert!(app.find.is_none());
    assert!(screen(&app, 120, 40).contains("Weather"));

    // Nothing found: no action can fall on the hidden selection.
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "zzz");
    assert!(screen(&app, 120, 40).contains("Nothing found."));
    press(&mut app, KeyCode::Enter);
    update(
        &mut app,
        Msg::Found {
            direction: Direction::In,
            query: "zzz".into(),
            result: Ok(Vec::new()),
        },
    );
    let effects = press(&mut app, KeyCode::Char('a'));
    assert!(effects.is_empty() && app.confirm.is_none(), "{effects:?}");
    let effects = press(&mut app, KeyCode::Enter);
    assert!(effects.is_empty(), "{effects:?}");
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("no message found is selected"))
    );
}

/// The alarm line showed the newest alarm, so a failed link test hid the
/// FLASH that has no receipt; it shows the gravest, and counts the rest.
#[test]
fn the_alarm_line_shows_the_gravest_alarm_not_the_newest() {
    let mut app = on_duty(setup(), Vec::new(), Vec::new());
    app.apply_alarm(alarm(
        AlarmKind::FlashNoReceipt,
        "x",
        "FLASH to:MOSCOW/1 has no receipt after 30 s",
        2,
    ));
    app.apply_alarm(alarm(
        AlarmKind::MissedLinkTest,
        "MOSCOW",
        "link test with MOSCOW failed",
        0,
    ));
    app.notice = Some("a newer notice".into());
    let shown = screen(&app, 80, 24);
    assert!(
        shown.contains("has no receipt after 30 s (+1 more)"),
        "{shown}"
    );
    assert!(shown.contains("a newer notice"), "{shown}");
    // CONTROL: the lesser one alone is shown when it is the only one.
    app.remove_alarm(AlarmKind::FlashNoReceipt, "x");
    assert!(screen(&app, 80, 24).contains("link test with MOSCOW failed"));
}

/// A watching connection carries rows without subjects: the console keeps
/// the subject it knows, and asks for one it does not know (not while
/// locked), filling the row in when the answer comes.
#[test]
fn rows_without_subjects_keep_the_known_one_and_ask_for_the_rest() {
    let known = MessageRow {
        subject: Some("Dnieper dam".into()),
        ..inbound(1, Precedence::Routine, 3)
    };
    let mut app = on_duty(setup(), vec![known], Vec::new());
    let effects = update(
        &mut app,
        changed(acknowledged(inbound(1, Precedence::Routine, 3), "j.smith")),
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::FetchSubjects(_))),
        "{effects:?}"
    );
    assert_eq!(
        app.inbound.find(&id(1)).and_then(|r| r.subject.as_deref()),
        Some("Dnieper dam")
    );
    let effects = update(&mut app, changed(inbound(2, Precedence::Routine, 0)));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::FetchSubjects(ids) if *ids == vec![id(2)])),
        "{effects:?}"
    );
    update(
        &mut app,
        Msg::SubjectsFetched {
            subjects: vec![(id(2), "Water levels".into())],
        },
    );
    assert!(screen(&app, 120, 40).contains("Water levels"));
    // Locked: nothing is asked for.
    let mut locked = App::new(setup(), now());
    let effects = update(&mut locked, changed(inbound(3, Precedence::Routine, 0)));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::FetchSubjects(_))),
        "{effects:?}"
    );
}

/// The alarm count is on the status bar at every size, locked or not.
#[test]
fn the_alarm_count_is_always_on_the_status_bar() {
    let mut locked = App::new(setup(), now());
    update(&mut locked, refreshed(queue_rows(), Vec::new()));
    let mut on_duty = on_duty(setup(), queue_rows(), Vec::new());
    for app in [&mut locked, &mut on_duty] {
        app.apply_alarm(alarm(
            AlarmKind::Gap,
            "MOSCOW",
            "serial 4 from MOSCOW is missing",
            1,
        ));
        app.apply_alarm(alarm(
            AlarmKind::LinkDown,
            "BEIJING",
            "the link to BEIJING is down",
            0,
        ));
        app.notice = Some(
            "a long notice that fills the notice line entirely and then some more words".into(),
        );
        for (w, h) in [(60, 20), (80, 24), (120, 40)] {
            let shown = screen(app, w, h);
            let bar = shown.lines().nth(1).unwrap_or_default();
            assert!(bar.contains("ALARMS 2"), "{w}x{h}:\n{shown}");
        }
    }
}

/// A message whose original differs from its fields is shown with both,
/// marked; one whose texts agree is shown as before (the control).
#[test]
fn a_message_whose_original_differs_shows_both_texts_marked() {
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    open_message(&mut app, 11, launch_message());
    let shown = screen(&app, 120, 40);
    assert!(!shown.contains("ORIGINAL DIFFERS"), "control:\n{shown}");
    let mut forged = launch_message();
    forged.original.text = "Пуск отменён.".into();
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    open_message(&mut app, 11, forged);
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("ORIGINAL DIFFERS FROM FIELDS"), "{shown}");
    assert!(shown.contains("FROM THE SIGNED FIELDS:"), "{shown}");
    assert!(shown.contains("THE SENDER'S ORIGINAL:"), "{shown}");
    assert!(shown.contains("Пуск отменён."), "{shown}");

    // A template version this station does not have: nothing is claimed
    // either way, and the view says why.
    let mut unknown = launch_message();
    unknown.template.version = 99;
    unknown.original.text = "Пуск отменён.".into();
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    open_message(&mut app, 11, unknown);
    let shown = screen(&app, 120, 40);
    assert!(!shown.contains("ORIGINAL DIFFERS"), "{shown}");
    assert!(
        shown.contains("original not checked against the fields"),
        "{shown}"
    );
    assert!(shown.contains("version 99"), "{shown}");
}

/// The run loop's inbox under a flood: a key goes before everything
/// already waiting, a frame gathers what waits up to its count, and a key
/// that comes after other messages waits for that frame to be drawn.
#[tokio::test]
async fn the_inbox_puts_keys_first_and_gathers_a_frame() {
    use hotline::term::inbox::Inbox;
    use tokio::sync::mpsc;

    let is_key = |m: &Msg| matches!(m, Msg::Key(_));
    let (keys_tx, keys) = mpsc::channel(8);
    let (rest_tx, rest) = mpsc::channel(1024);
    for _ in 0..100 {
        rest_tx.try_send(Msg::Tick(Timestamp::now())).expect("room");
    }
    keys_tx
        .try_send(Msg::Key(KeyEvent::from(KeyCode::Char('?'))))
        .expect("room");
    let mut inbox = Inbox::with_budget(keys, rest, Duration::from_secs(3600), 10);

    let (first, mut frame) = inbox.first().await.expect("a message");
    assert!(is_key(&first), "the key sent after 100 others comes first");
    let mut taken = 1;
    while let Some(msg) = inbox.more(&mut frame) {
        assert!(!is_key(&msg));
        taken += 1;
    }
    assert_eq!(taken, 10, "the frame takes what waits, up to its count");

    let (first, mut frame) = inbox.first().await.expect("a message");
    assert!(!is_key(&first));
    // CONTROL: with no key waiting the frame goes on taking the others...
    assert!(inbox.more(&mut frame).is_some_and(|m| !is_key(&m)));
    keys_tx
        .try_send(Msg::Key(KeyEvent::from(KeyCode::Char('q'))))
        .expect("room");
    // ... and a key ends it, to be the first of the next.
    assert!(inbox.more(&mut frame).is_none());
    let (first, _) = inbox.first().await.expect("a message");
    assert!(
        matches!(first, Msg::Key(k) if k.code == KeyCode::Char('q')),
        "the held key opens the next frame"
    );

    // Keys typed together are taken together (they act on one screen).
    for c in ['a', 'b'] {
        keys_tx
            .try_send(Msg::Key(KeyEvent::from(KeyCode::Char(c))))
            .expect("room");
    }
    let (first, mut frame) = inbox.first().await.expect("a message");
    assert!(matches!(first, Msg::Key(k) if k.code == KeyCode::Char('a')));
    assert!(matches!(inbox.more(&mut frame), Some(Msg::Key(k)) if k.code == KeyCode::Char('b')));
}

/// A peer that seals classically (its card has no post-quantum recipient)
/// is marked on the status bar at every size; a post-quantum one is not
/// (the control, from the same fixture).
#[test]
fn a_link_that_is_not_post_quantum_says_so_on_the_status_bar() {
    let mut app = on_duty(setup(), queue_rows(), Vec::new());
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        let bar = shown.lines().nth(1).unwrap_or_default();
        assert!(bar.contains("MOSCOW ● UP"), "{w}x{h}:\n{shown}");
        assert!(
            !bar.contains("PQ") && !bar.contains("post-quantum"),
            "control {w}x{h}:\n{shown}"
        );
    }
    let mut status = status();
    if let Some(h) = status.health.get_mut("MOSCOW") {
        h.post_quantum = false;
    }
    update(
        &mut app,
        Msg::Refreshed {
            inbound: queue_rows(),
            outbound: Vec::new(),
            status,
            alarms: Vec::new(),
        },
    );
    let wide = screen(&app, 200, 40);
    let bar = wide.lines().nth(1).unwrap_or_default();
    assert!(bar.contains("MOSCOW ● UP primary 42ms"), "{wide}");
    assert!(bar.contains("link not post-quantum"), "{wide}");
    for (w, h) in [(80, 24), (120, 40)] {
        let shown = screen(&app, w, h);
        let bar = shown.lines().nth(1).unwrap_or_default();
        assert!(
            bar.contains("MOSCOW ● UP not PQ") || bar.contains("link not post-quantum"),
            "{w}x{h}:\n{shown}"
        );
    }
}

/// The trainee's objectives panel (F8 in an exercise): each objective
/// and, under it, each expectation with its live state in scenario time.
/// At 80x24 it opens over the queue; Esc closes it.
#[test]
fn snapshot_objectives_panel() {
    use hotline::tabletop::Expect;
    use hotline::tabletop::engine::{ExpectationProgress, ObjectiveProgress, Progress};
    let mut app = facilitator(setup());
    let expect = |inject: &str, e: Expect, progress: Progress| ExpectationProgress {
        inject: inject.into(),
        expectation: e,
        progress,
    };
    let ack = |s: u64| Expect::Acknowledge {
        within: Duration::from_secs(s),
    };
    let view = hotline::console::WhiteCellView {
        scenario: "intro".into(),
        scenario_time: Duration::from_secs(75),
        objectives: vec![
            ObjectiveProgress {
                id: Some("acknowledge".into()),
                text: "Acknowledge each message within 2 minutes".into(),
                expectations: vec![
                    expect(
                        "link-check",
                        ack(120),
                        Progress::Met {
                            after: Duration::from_secs(42),
                        },
                    ),
                    expect(
                        "duty-officer",
                        ack(120),
                        Progress::Pending {
                            left: Duration::from_secs(95),
                        },
                    ),
                ],
            },
            ObjectiveProgress {
                id: Some("reply".into()),
                text: "Answer the request for information".into(),
                expectations: vec![expect(
                    "duty-officer",
                    Expect::Reply {
                        template: "response".into(),
                        within: Duration::from_secs(180),
                        field: None,
                    },
                    Progress::Upcoming {
                        at: Duration::from_secs(60),
                    },
                )],
            },
            ObjectiveProgress {
                id: None,
                text: String::new(),
                expectations: vec![
                    expect(
                        "late-one",
                        ack(30),
                        Progress::Late {
                            after: Duration::from_secs(50),
                        },
                    ),
                    expect("missed-one", ack(30), Progress::Missed),
                    expect("skipped-one", ack(30), Progress::Skipped),
                ],
            },
        ],
        ..Default::default()
    };
    update(&mut app, Msg::WhiteCell(view));
    let queue = screen(&app, 80, 24);
    assert!(
        queue.contains("F8 objectives"),
        "the footer offers it:\n{queue}"
    );
    press(&mut app, KeyCode::F(8));
    assert!(app.objectives.is_some());
    let shown = screen(&app, 120, 40);
    for expected in [
        "OBJECTIVES  T+01:15",
        "■ Acknowledge each message within 2 minutes",
        "link-check: acknowledge within 2m 00s — met in 42s",
        "duty-officer: acknowledge within 2m 00s — PENDING, 1m 35s left",
        "duty-officer: reply with response within 3m 00s — expected from T+01:00",
        "■ Other expectations",
        "late-one: acknowledge within 30s — LATE (50s)",
        "missed-one: acknowledge within 30s — MISSED",
        "skipped-one: acknowledge within 30s — skipped by the facilitator",
    ] {
        assert!(shown.contains(expected), "{expected:?}:\n{shown}");
    }
    snapshot("objectives", &app);
    press(&mut app, KeyCode::Esc);
    assert!(app.objectives.is_none(), "Esc closes it");
    // Control: without an exercise there is no panel to open.
    let mut plain = on_duty(setup(), Vec::new(), Vec::new());
    press(&mut plain, KeyCode::F(8));
    assert!(plain.objectives.is_none());
}

/// The facilitator rates the selected objective (none, P, S, M, U, none)
/// and types notes, tagged strength or area for improvement, from the F9
/// panel; the panel shows the proposed and the evaluator's rating.
#[test]
fn the_facilitator_rates_objectives_and_takes_notes_in_the_panel() {
    use hotline::console::{NoteEntry, ObjectiveRating, WhiteCellCommand};
    use hotline::tabletop::engine::{NoteKind, Rating};
    let mut app = facilitator(setup());
    let mut view = white_cell_view();
    view.waiting.clear();
    view.join = None;
    let objective = |id: &str, text: &str, proposed, rating| ObjectiveRating {
        id: id.into(),
        text: text.into(),
        capability: Some("Operational Communications".into()),
        proposed,
        rating,
    };
    view.evaluation = vec![
        objective(
            "acknowledge",
            "Acknowledge the FLASH within 2 minutes",
            Some(Rating::S),
            None,
        ),
        objective(
            "reply",
            "Reply with a `response` within 5 minutes\u{1b}[31m",
            None,
            Some(Rating::M),
        ),
    ];
    update(&mut app, Msg::WhiteCell(view.clone()));
    press(&mut app, KeyCode::F(9));
    let shown = screen(&app, 100, 40);
    assert!(
        shown.contains("▶ acknowledge  Acknowledge the FLASH within 2"),
        "{shown}"
    );
    assert!(shown.contains("proposed S · evaluator — │"), "{shown}");
    assert!(shown.contains("proposed — · evaluator M │"), "{shown}");
    assert!(shown.contains("facilitator's notes: 0"), "{shown}");
    assert!(
        shown.contains("← previous objective · → next objective · r rate · n note"),
        "the keys, from the keymap:\n{shown}"
    );
    let footer = hotline::ui::footer_items(&app);
    for (key, label) in [("r", "rate"), ("n", "note"), ("→", "next objective")] {
        assert!(
            footer.iter().any(|(k, l)| k == key && l == label),
            "{footer:?}"
        );
    }
    assert_inert(&draw(&app, 100, 40));

    // r cycles the selected objective's rating, shown at once.
    let rate = |effects: Vec<Effect>| -> Vec<(String, Option<Rating>)> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::WhiteCell(WhiteCellCommand::Rate { objective, rating }) => {
                    Some((objective, rating))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        rate(press(&mut app, KeyCode::Char('r'))),
        vec![("acknowledge".to_string(), Some(Rating::P))]
    );
    assert_eq!(
        rate(press(&mut app, KeyCode::Char('r'))),
        vec![("acknowledge".to_string(), Some(Rating::S))]
    );
    assert!(screen(&app, 100, 40).contains("proposed S · evaluator S"));
    // → selects the next objective; U then none follow M.
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    assert_eq!(
        app.white_cell_objective, 1,
        "the selection stops at the last"
    );
    assert_eq!(
        rate(press(&mut app, KeyCode::Char('r'))),
        vec![("reply".to_string(), Some(Rating::U))]
    );
    assert_eq!(
        rate(press(&mut app, KeyCode::Char('r'))),
        vec![("reply".to_string(), None)]
    );
    let shown = screen(&app, 100, 40);
    assert!(
        shown.contains("▶ reply        Reply with a `response`"),
        "{shown}"
    );
    assert!(shown.contains("proposed — · evaluator —"), "{shown}");

    // n starts a note: keys are text (r, ? and all), Tab changes its kind.
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.context(), Context::Note);
    type_text(&mut app, "Read-back <b>not</b> done? r");
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Backspace);
    assert_eq!(
        app.white_cell_note,
        Some(NoteEntry {
            text: "Read-back <b>not</b> done?".into(),
            kind: NoteKind::Strength,
        })
    );
    press(&mut app, KeyCode::Tab);
    let shown = screen(&app, 100, 40);
    assert!(
        shown.contains("note (area for improvement): Read-back <b>not</b> done?▏"),
        "{shown}"
    );
    assert!(shown.contains("Enter save note"), "{shown}");
    snapshot("white_cell_evaluation", &app);
    let effects = press(&mut app, KeyCode::Enter);
    let notes: Vec<(String, NoteKind)> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::WhiteCell(WhiteCellCommand::Note { text, kind }) => Some((text, kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        vec![(
            "Read-back <b>not</b> done?".to_string(),
            NoteKind::Improvement
        )]
    );
    assert!(app.white_cell_note.is_none());
    assert_eq!(app.context(), Context::WhiteCell);
    view.notes = 1;
    update(&mut app, Msg::WhiteCell(view.clone()));
    assert!(screen(&app, 100, 40).contains("facilitator's notes: 1"));

    // Esc drops a note; an empty one is not sent.
    press(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "never mind");
    press(&mut app, KeyCode::Esc);
    assert!(app.white_cell_note.is_none() && app.white_cell_open);
    press(&mut app, KeyCode::Char('n'));
    assert!(press(&mut app, KeyCode::Enter).is_empty());

    // Control: with no objectives there is nothing to rate.
    view.evaluation.clear();
    update(&mut app, Msg::WhiteCell(view));
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    let shown = screen(&app, 100, 40);
    assert!(!shown.contains("evaluator"), "{shown}");
    let footer = hotline::ui::footer_items(&app);
    assert!(!footer.iter().any(|(k, _)| k == "r"), "{footer:?}");
    assert!(footer.iter().any(|(k, _)| k == "n"), "{footer:?}");
}

/// The facilitator's ad-hoc inject goes from the simulated counterpart to
/// the trainee, and its question says so (it used to ask to release it
/// "to MOSCOW", the wrong way round).
#[test]
fn the_ad_hoc_inject_question_names_its_direction() {
    let mut app = facilitator(setup());
    update(&mut app, Msg::WhiteCell(white_cell_view()));
    press(&mut app, KeyCode::F(9));
    press(&mut app, KeyCode::Char('i'));
    type_text(&mut app, "gen");
    press(&mut app, KeyCode::Enter);
    assert!(app.composing_inject && app.form.is_some());
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "Reminder");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "Please acknowledge.");
    press(&mut app, KeyCode::F(5));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("Send ROUTINE General message to the trainee, from the simulated"),
        "{shown}"
    );
    assert!(!shown.contains("to MOSCOW?"), "{shown}");
}

/// A networked white cell opens on its panel once the facilitator is on
/// duty, with the join line the trainees need (it was printed before the
/// full screen came up, and so hidden); an in-process one does not.
#[test]
fn a_white_cell_waiting_for_trainees_opens_on_its_panel() {
    for (join, opens) in [(true, true), (false, false)] {
        let mut s = setup();
        s.exercise_mode = true;
        s.keymap = Keymap::default().with_white_cell();
        let mut app = App::new(s, now());
        let mut view = white_cell_view();
        view.trainees.clear();
        if !join {
            view.join = None;
        }
        update(&mut app, Msg::WhiteCell(view));
        update(
            &mut app,
            Msg::LoginChecked {
                name: "white".into(),
                result: Ok(op("white")),
            },
        );
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.white_cell_open, opens, "join line: {join}");
        if opens {
            let shown = screen(&app, 80, 24);
            assert!(shown.contains("--join 192.0.2.1:7471"), "{shown}");
        }
    }
}

/// In an exercise an acknowledgement deadline runs on the scenario clock:
/// a pause stops it, a faster speed runs it faster. Control: outside an
/// exercise it runs on the wall clock.
#[test]
fn exercise_deadlines_run_on_the_scenario_clock() {
    let at = |scenario: u64| hotline::console::WhiteCellView {
        scenario: "intro".into(),
        scenario_time: Duration::from_secs(scenario),
        ..Default::default()
    };
    let mut app = facilitator(setup());
    update(&mut app, Msg::WhiteCell(at(60)));
    update(
        &mut app,
        refreshed(vec![inbound(1, Precedence::Flash, 0)], Vec::new()),
    );
    let left = |app: &App| {
        let row = app.inbound.iter().next().expect("row").clone();
        app.time_left(&row).expect("a deadline").as_secs()
    };
    assert_eq!(left(&app), 600, "a FLASH has 10 minutes from when it came");
    update(&mut app, Msg::WhiteCell(at(60 + 240)));
    assert_eq!(left(&app), 360, "four scenario minutes later");
    // Paused: an hour of wall clock passes, the scenario clock does not.
    update(&mut app, Msg::Tick(now() + SignedDuration::from_hours(1)));
    assert_eq!(left(&app), 360, "paused");
    update(&mut app, Msg::WhiteCell(at(60 + 660)));
    assert_eq!(left(&app), -60, "overdue by a scenario minute");

    // Control: no exercise, the wall clock.
    let mut live = on_duty(setup(), vec![inbound(1, Precedence::Flash, 0)], Vec::new());
    assert_eq!(left(&live), 600);
    update(&mut live, Msg::Tick(now() + SignedDuration::from_mins(4)));
    assert_eq!(left(&live), 360);
}
