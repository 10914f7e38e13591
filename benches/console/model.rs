//! The console model alone: frames drawn on ratatui's `TestBackend`,
//! `update` for refreshes and ticks, one arrival against a full re-read.

use super::*;

/// A small deterministic generator (splitmix64), so every run draws the
/// same queue.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(crate) const TEMPLATES: [&str; 8] = [
    "general",
    "situation-update",
    "request-info",
    "response",
    "military-incident",
    "missile-launch",
    "nuclear-accident",
    "cyber-incident",
];

/// FLASH 1%, IMMEDIATE 9%, PRIORITY 30%, ROUTINE 60%.
pub(crate) fn moscow() -> StationName {
    StationName::new("MOSCOW").expect("a valid station name")
}

pub(crate) fn operator(name: &str) -> OperatorName {
    OperatorName::new(name).expect("a valid operator name")
}

pub(crate) fn precedence(rng: &mut Rng) -> Precedence {
    match rng.below(100) {
        0 => Precedence::Flash,
        1..10 => Precedence::Immediate,
        10..40 => Precedence::Priority,
        _ => Precedence::Routine,
    }
}

/// What the inbound queue looks like after some 48 hours of traffic:
/// oldest first, times as the journal reads them back; one in five still unacknowledged
/// (most of those overdue), the rest acknowledged.
pub(crate) fn inbound_rows(n: usize, now: Timestamp) -> Vec<MessageRow> {
    let mut rng = Rng(0x5eed_0001);
    let span = SignedDuration::from_hours(48);
    let step = span / n.max(1) as i32;
    (0..n)
        .map(|i| {
            let stored = now - span + step * i as i32 + SignedDuration::from_millis(1);
            let released = stored - SignedDuration::from_millis(150 + rng.below(500) as i64);
            let unacked = rng.below(5) == 0;
            let ack_at = stored + SignedDuration::from_secs(30 + rng.below(600) as i64);
            MessageRow {
                id: MessageId::new(),
                direction: Direction::In,
                peer: moscow(),
                serial: i as u64 + 1,
                precedence: precedence(&mut rng),
                exercise: false,
                template_id: TEMPLATES[rng.below(TEMPLATES.len() as u64) as usize].into(),
                template_version: 1,
                released_at: released,
                stored_at: stored,
                operator: operator("IVANOV"),
                second_operator: None,
                state: if unacked {
                    MessageState::Received
                } else {
                    MessageState::Acknowledged
                },
                receipt_at: None,
                ack_by: (!unacked).then(|| ["op", "smith", "jones"][i % 3].to_string()),
                ack_at: (!unacked).then_some(ack_at),
                refusal: None,
                attachments: 0,
                attachments_done: 0,
                attachments_refused: 0,
                subject: None,
                suspect: None,
                label: None,
                amended: None,
            }
        })
        .collect()
}

pub(crate) fn outbound_rows(n: usize, now: Timestamp) -> Vec<MessageRow> {
    let mut rng = Rng(0x5eed_0002);
    let span = SignedDuration::from_hours(48);
    let step = span / n.max(1) as i32;
    let states = [
        MessageState::Acknowledged,
        MessageState::Acknowledged,
        MessageState::Acknowledged,
        MessageState::Receipted,
        MessageState::Sent,
        MessageState::Queued,
        MessageState::Refused,
        MessageState::Cancelled,
    ];
    (0..n)
        .map(|i| {
            let stored = now - span + step * i as i32;
            let state = states[rng.below(states.len() as u64) as usize];
            MessageRow {
                id: MessageId::new(),
                direction: Direction::Out,
                peer: moscow(),
                serial: i as u64 + 1,
                precedence: precedence(&mut rng),
                exercise: false,
                template_id: TEMPLATES[rng.below(TEMPLATES.len() as u64) as usize].into(),
                template_version: 1,
                released_at: stored,
                stored_at: stored,
                operator: operator("op"),
                second_operator: None,
                state,
                receipt_at: matches!(state, MessageState::Receipted | MessageState::Acknowledged)
                    .then(|| stored + SignedDuration::from_millis(80)),
                ack_by: (state == MessageState::Acknowledged).then(|| "IVANOV".to_string()),
                ack_at: (state == MessageState::Acknowledged)
                    .then(|| stored + SignedDuration::from_secs(120)),
                refusal: (state == MessageState::Refused)
                    .then(|| "signature did not verify".to_string()),
                attachments: 0,
                attachments_done: 0,
                attachments_refused: 0,
                subject: None,
                suspect: None,
                label: None,
                amended: None,
            }
        })
        .collect()
}

pub(crate) fn status() -> Status {
    Status {
        station: "WASHINGTON".into(),
        exercise: false,
        links: vec![PeerLinkStatus {
            peer: "MOSCOW".into(),
            up: true,
            path: Some(PathKind::Primary),
            remote: None,
            rtt_ms: Some(42),
            last_traffic: None,
            probes: Vec::new(),
        }],
        health: HashMap::new(),
        unacknowledged: HashMap::new(),
        outbound_pending: 0,
        strangers_refused: 0,
        snapshots_served: 0,
    }
}

pub(crate) fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// A console logged in as `op`, past the handover, on the inbound queue.
pub(crate) fn logged_in(now: Timestamp) -> App {
    let setup = Setup {
        station: "WASHINGTON".into(),
        language: Language::EN,
        time_zone: "America/New_York".into(),
        peers: vec![("MOSCOW".into(), "Europe/Moscow".into())],
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
    };
    let mut app = App::new(setup, now);
    update(
        &mut app,
        Msg::LoginChecked {
            name: "op".into(),
            result: Ok(OperatorName::new("op").expect("operator name")),
        },
    );
    assert_eq!(app.screen, Screen::Handover, "log-in leads to the handover");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Queue, "Enter leaves the handover");
    app
}

pub(crate) fn refreshed(inbound: Vec<MessageRow>, outbound: Vec<MessageRow>) -> Msg {
    Msg::Refreshed {
        inbound,
        outbound,
        status: Box::new(status()),
        alarms: Vec::new(),
    }
}

/// A logged-in console holding `n` inbound and `n.min(OUTBOUND)` outbound rows.
pub(crate) fn loaded(n: usize, now: Timestamp) -> App {
    let mut app = logged_in(now);
    update(
        &mut app,
        refreshed(inbound_rows(n, now), outbound_rows(n.min(OUTBOUND), now)),
    );
    assert_eq!(app.inbound.len(), n);
    app
}

// ---------------------------------------------------------------- rendering

/// What every frame asks of the whole queue, whatever the screen: the
/// exercise banner check (`App::exercise_present`) and the status bar's and
/// the queue title's counts (`App::unacknowledged_counts`). Both are kept
/// as rows change, so this no longer grows with the queue.
pub(crate) fn time_scans(app: &App, times: usize) -> Timing {
    let mut series = Series::with_capacity(times);
    for _ in 0..times {
        series.time(true, || {
            std::hint::black_box(app.exercise_present());
            std::hint::black_box(app.unacknowledged_counts().iter().sum::<usize>());
        });
    }
    series.summary()
}

pub(crate) struct Render {
    pub(crate) screen: &'static str,
    pub(crate) size: (u16, u16),
    pub(crate) rows: usize,
    pub(crate) frames: Timing,
}

pub(crate) fn render_bench(scale: &Scale) -> (Vec<Render>, Timing) {
    let now = Timestamp::now();
    let mut out = Vec::new();
    let mut scans = None;
    for rows in [SMALL, MID, BIG] {
        let mut app = loaded(rows, now);
        if rows == BIG {
            scans = Some(time_scans(&app, scale.frames));
        }
        for (screen, name) in [(Screen::Queue, "queue"), (Screen::Sent, "sent")] {
            if app.screen != screen {
                update(&mut app, key(KeyCode::Tab));
                assert_eq!(app.screen, screen, "Tab switches the list");
            }
            for size in SIZES {
                let frames = time_draws(&mut app, size, scale);
                out.push(Render {
                    screen: name,
                    size,
                    rows,
                    frames,
                });
            }
        }
    }
    (out, scans.expect("the big queue was drawn"))
}

/// Times `scale.frames` draws. The clock moves a second between frames
/// (outside the timing), as it does between ticks, so each frame carries a
/// small change for the terminal to diff and flush, as in the run loop.
pub(crate) fn time_draws(app: &mut App, (w, h): (u16, u16), scale: &Scale) -> Timing {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    let start = app.now;
    let mut series = Series::with_capacity(scale.frames);
    for i in 0..scale.warmup + scale.frames {
        app.now = start + SignedDuration::from_secs(i as i64);
        let app = &*app;
        series.time(i >= scale.warmup, || {
            terminal
                .draw(|f| hotline::ui::draw(f, app))
                .map(|_| ())
                .expect("draw on the test backend");
        });
    }
    app.now = start;
    series.summary()
}

// ---------------------------------------------------------------- events

/// One inbound arrival, from the console taking it to a drawn frame, at
/// 1,000 and 100,000 queued: applying the row the station's event carries
/// (what the console does now), against the full re-read it replaced (a
/// `Refreshed` with every row, as the journal lists them), in the same run.
pub(crate) struct Events {
    /// (rows, event apply + draw, full re-read + draw)
    pub(crate) at: Vec<(usize, Timing, Timing)>,
}

pub(crate) fn event_bench(scale: &Scale) -> Events {
    let now = Timestamp::now();
    let times = scale.frames / 4;
    let at = [MID, BIG]
        .into_iter()
        .map(|n| {
            let mut app = loaded(n, now);
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
            let fresh = inbound_rows(times + scale.warmup, now + SignedDuration::from_secs(1));
            let mut event = Series::with_capacity(times);
            for (i, row) in fresh.into_iter().enumerate() {
                let msg =
                    Msg::Station(hotline::station::Event::MessageChanged { row: Box::new(row) });
                event.time(i >= scale.warmup, || {
                    drop(update(&mut app, msg));
                    terminal
                        .draw(|f| hotline::ui::draw(f, &app))
                        .map(|_| ())
                        .expect("draw");
                });
            }
            let inbound: Vec<MessageRow> = app.inbound.iter().cloned().collect();
            let outbound: Vec<MessageRow> = app.outbound.iter().cloned().collect();
            let mut full = Series::with_capacity(scale.refreshes);
            for _ in 0..scale.refreshes {
                let msg = refreshed(inbound.clone(), outbound.clone());
                full.time(true, || {
                    drop(update(&mut app, msg));
                    terminal
                        .draw(|f| hotline::ui::draw(f, &app))
                        .map(|_| ())
                        .expect("draw");
                });
            }
            (n, event.summary(), full.summary())
        })
        .collect();
    Events { at }
}

// ---------------------------------------------------------------- update

pub(crate) struct Updates {
    pub(crate) refreshed_big: Timing,
    pub(crate) refreshed_small: Timing,
    /// Parts of a Refreshed: `Rows::replace_all` on the rows as the
    /// journal lists them, and dropping the previous 100k rows.
    pub(crate) sort_big: Timing,
    pub(crate) drop_big: Timing,
    pub(crate) tick_big: Timing,
    pub(crate) tick_small: Timing,
    pub(crate) first_tick_big: Timing,
    pub(crate) first_tick_effects: usize,
    /// Rows whose place in the queue the ticks changed (the sort's key does
    /// not depend on the time: within one precedence, time left orders as
    /// arrival does).
    pub(crate) tick_moved_rows: usize,
    pub(crate) overdue_big: usize,
    pub(crate) unacked_big: usize,
}

pub(crate) fn update_bench(scale: &Scale) -> Updates {
    let now = Timestamp::now();
    let (refreshed_small, ..) = time_refreshes(SMALL, now, scale.refreshes * 10);
    let (refreshed_big, mut app) = time_refreshes(BIG, now, scale.refreshes);
    let (sort_big, drop_big) = time_refresh_parts(now, scale.refreshes);
    let unacked_big = app.unacknowledged().count();
    let overdue_big = app.inbound.iter().filter(|r| app.overdue(r)).count();
    let order: Vec<MessageId> = app.inbound.iter().map(|r| r.id).collect();

    // The first tick after the queue loads (overdue alarms are the
    // station's: the console only reads its board).
    let mut at = now + SignedDuration::from_millis(500);
    let mut first = Series::default();
    let effects = first.time(true, || update(&mut app, Msg::Tick(at)));
    let first_tick_big = first.summary();
    let first_tick_effects = effects.len();
    drop(effects);

    let tick_big = time_ticks(&mut app, &mut at, scale.ticks);
    // And a day later, for good measure.
    at += SignedDuration::from_hours(24);
    update(&mut app, Msg::Tick(at));
    let tick_moved_rows = order
        .iter()
        .zip(app.inbound.iter())
        .filter(|(id, r)| **id != r.id)
        .count();
    let mut small = loaded(SMALL, now);
    let mut at_small = now;
    time_ticks(&mut small, &mut at_small, 1);
    let tick_small = time_ticks(&mut small, &mut at_small, scale.ticks * 10);
    Updates {
        refreshed_big,
        refreshed_small,
        sort_big,
        drop_big,
        tick_big,
        tick_small,
        first_tick_big,
        first_tick_effects,
        tick_moved_rows,
        overdue_big,
        unacked_big,
    }
}

/// Times `update(Msg::Refreshed)` with `n` inbound rows, `times` times; the
/// rows are cloned outside the timing. Returns the app as the last left it.
pub(crate) fn time_refreshes(n: usize, now: Timestamp, times: usize) -> (Timing, App) {
    let inbound = inbound_rows(n, now);
    let outbound = outbound_rows(n.min(OUTBOUND), now);
    let mut app = logged_in(now);
    let mut series = Series::with_capacity(times);
    for _ in 0..times {
        let msg = refreshed(inbound.clone(), outbound.clone());
        let effects = series.time(true, || update(&mut app, msg));
        drop(effects);
    }
    (series.summary(), app)
}

/// Times the two biggest parts of a Refreshed with `BIG` rows: sorting
/// and indexing them into the queue, and dropping the old ones.
pub(crate) fn time_refresh_parts(now: Timestamp, times: usize) -> (Timing, Timing) {
    let rows = inbound_rows(BIG, now);
    let (mut sort, mut drop_rows) = (Series::default(), Series::default());
    for _ in 0..times {
        let mut queue = Rows::new(Order::Queue);
        let fresh = rows.clone();
        sort.time(true, || queue.replace_all(fresh));
        drop_rows.time(true, || drop(queue));
    }
    (sort.summary(), drop_rows.summary())
}

/// Times `times` ticks, 500 ms of console time apart.
pub(crate) fn time_ticks(app: &mut App, at: &mut Timestamp, times: usize) -> Timing {
    let mut series = Series::with_capacity(times);
    for _ in 0..times {
        *at += SignedDuration::from_millis(500);
        let msg = Msg::Tick(*at);
        let effects = series.time(true, || update(app, msg));
        drop(effects);
    }
    series.summary()
}
