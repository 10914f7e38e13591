//! The live exercise. Stations are made for the occasion, with fresh keys
//! and journals in a private temporary directory that is removed
//! afterwards, speaking the exercise ALPN and flagging everything EXERCISE.
//!
//! In process ([`start`]), the trainee's station and the simulated
//! counterpart run side by side. Over the network, the white cell's
//! counterpart station ([`start_white_cell`]) admits trainee stations that
//! ask to join ([`start_trainee`] once admitted).
//!
//! Either way the [`white_cell`] follows the scenario engine, one engine
//! per trainee: it sends injects when due, and feeds receipts,
//! acknowledgements and replies back into the engine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::engine::{Engine, Evaluation, InjectState, Input, Note, Outcome};
use super::scenario::Scenario;
use crate::compose::Draft;
use crate::config::Config;
use crate::console::{ObjectiveRating, ShownReport, TraineeRow, WhiteCellCommand, WhiteCellView};
use crate::crypto::{PeerKeys, StationKeys};
use crate::domain::{Language, MessageId, OperatorName, StationName};
use crate::station::{Event, Options, Station};
use crate::store::Direction;
use crate::t;
use crate::wire::ALPN_EXERCISE;

/// How often the white cell looks at the scenario clock.
pub const WHITE_CELL_TICK: Duration = Duration::from_millis(250);
/// Facilitator commands waiting for the white cell.
pub const WHITE_CELL_COMMANDS: usize = 64;

/// The facilitator's side of the white cell: commands in, state out.
pub struct Facilitator {
    pub commands: tokio::sync::mpsc::Receiver<WhiteCellCommand>,
    pub view: tokio::sync::watch::Sender<WhiteCellView>,
}

/// Why an exercise could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TabletopError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Station(#[from] crate::station::StationError),
}

/// A private scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Result<Scratch, TabletopError> {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| TabletopError::Setup(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("hotline-tabletop-{}", hex::encode(r)));
        crate::fsutil::create_private_dir(&dir)
            .map_err(|e| TabletopError::Setup(format!("{}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An exercise station's configuration: `peer` (if known yet) is dialed
/// at its address, if it has one.
/// What the stations of an exercise are set to: each side's language.
#[derive(Clone, Copy, Debug)]
pub struct Casting {
    pub trainee_language: Language,
    pub counterpart_language: Language,
}

fn station_config(
    dir: &Path,
    name: &StationName,
    listen: SocketAddr,
    peer: Option<(&PeerKeys, Option<SocketAddr>)>,
    language: Language,
) -> Result<Config, TabletopError> {
    let peer = peer
        .map(|(public, addr)| {
            let primary = addr
                .map(|a| format!("primary = \"{a}\"\n"))
                .unwrap_or_default();
            format!("{}{primary}", crate::config::peer_table(public))
        })
        .unwrap_or_default();
    let text = format!(
        "[station]\nname = \"{name}\"\nlanguage = \"{language}\"\nlisten = \"{listen}\"\ndata_dir = \"data\"\n\n\
         [link]\ntest_interval = \"10m\"\nflash_receipt_alarm = \"30s\"\n\n{peer}"
    );
    Config::parse(&text, &dir.join("operator.toml"))
        .map_err(|e| TabletopError::Setup(e.to_string()))
}

/// Where the in-process exercise's stations listen.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

fn exercise_options(admission: bool) -> Options {
    Options {
        alpn: ALPN_EXERCISE.to_vec(),
        exercise_only: true,
        admission,
        ..Options::default()
    }
}

/// Starts the white cell's counterpart station, listening on `listen` and
/// admitting trainees that ask to join.
pub async fn start_white_cell(
    scenario: &Scenario,
    listen: SocketAddr,
) -> Result<(Station, Scratch), TabletopError> {
    let scratch = Scratch::new()?;
    let keys = keys(&scenario.counterpart)?;
    let dir = scratch.0.join("white-cell");
    crate::fsutil::create_private_dir(&dir).map_err(|e| TabletopError::Setup(e.to_string()))?;
    let config = station_config(&dir, &keys.name, listen, None, Language::RU)?;
    let station = Station::start(config, keys, exercise_options(true)).await?;
    Ok((station, scratch))
}

/// Starts a trainee station that was admitted by the white cell at
/// `white_cell_addr`, whose keys are `white_cell`.
pub async fn start_trainee(
    keys: StationKeys,
    white_cell: &PeerKeys,
    white_cell_addr: SocketAddr,
) -> Result<(Station, Scratch), TabletopError> {
    let scratch = Scratch::new()?;
    let dir = scratch.0.join("trainee");
    crate::fsutil::create_private_dir(&dir).map_err(|e| TabletopError::Setup(e.to_string()))?;
    let listen = SocketAddr::new(
        if white_cell_addr.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        },
        0,
    );
    let config = station_config(
        &dir,
        &keys.name,
        listen,
        Some((white_cell, Some(white_cell_addr))),
        Language::EN,
    )?;
    // Its deadlines count on the scenario clock, which its console's
    // mirror of the exercise keeps ([`mirror`]); held at zero until then.
    let options = Options {
        exercise_clock: Some(crate::station::exercise_clock::ExerciseClock::default()),
        ..exercise_options(false)
    };
    let station = Station::start(config, keys, options).await?;
    Ok((station, scratch))
}

/// Fresh keys for a station called `name`.
pub fn keys(name: &str) -> Result<StationKeys, TabletopError> {
    let name = StationName::new(name).map_err(|e| TabletopError::Setup(e.to_string()))?;
    StationKeys::generate(name).map_err(|e| TabletopError::Setup(e.to_string()))
}

fn clone_keys(k: &StationKeys) -> StationKeys {
    StationKeys {
        name: k.name.clone(),
        signing: k.signing.clone(),
        age: k.age.clone(),
        pq: k.pq.clone(),
        retired: Vec::new(),
    }
}

/// The stations and the directory that holds their keys and journals.
pub struct Exercise {
    pub trainee: Station,
    pub counterpart: Station,
    pub scratch: Scratch,
    /// The scenario clock the white cell runs and the trainee station's
    /// deadlines count on.
    pub clock: crate::station::exercise_clock::ExerciseClock,
}

/// Starts both stations: the counterpart first (it listens), then the
/// trainee, which dials it.
pub async fn start(scenario: &Scenario, casting: Casting) -> Result<Exercise, TabletopError> {
    let scratch = Scratch::new()?;
    let trainee_keys = keys(&scenario.trainee)?;
    let counterpart_keys = keys(&scenario.counterpart)?;
    let options = exercise_options(false);
    let cp_dir = scratch.0.join("counterpart");
    let tr_dir = scratch.0.join("trainee");
    for d in [&cp_dir, &tr_dir] {
        crate::fsutil::create_private_dir(d).map_err(|e| TabletopError::Setup(e.to_string()))?;
    }
    let cp_config = station_config(
        &cp_dir,
        &counterpart_keys.name,
        LOOPBACK,
        Some((&trainee_keys.public(), None)),
        casting.counterpart_language,
    )?;
    let counterpart =
        Station::start(cp_config, clone_keys(&counterpart_keys), options.clone()).await?;
    let addr = counterpart
        .local_addr()
        .ok_or_else(|| TabletopError::Setup("the counterpart did not bind".into()))?;
    let tr_config = station_config(
        &tr_dir,
        &trainee_keys.name,
        LOOPBACK,
        Some((&counterpart_keys.public(), Some(addr))),
        casting.trainee_language,
    )?;
    let clock = crate::station::exercise_clock::ExerciseClock::default();
    let trainee = Station::start(
        tr_config,
        trainee_keys,
        Options {
            exercise_clock: Some(clock.clone()),
            ..options
        },
    )
    .await?;
    Ok(Exercise {
        trainee,
        counterpart,
        scratch,
        clock,
    })
}

/// The white cell: the counterpart station that plays the scenario to
/// one or more trainee stations.
pub struct WhiteCell {
    pub counterpart: Station,
    /// The station whose console the facilitator watches (for notices).
    pub console: Station,
    pub scenario: Scenario,
    /// The trainees known from the start (the in-process exercise).
    pub trainees: Vec<StationName>,
    /// Trainees join over the network with this command line; the
    /// scenario clock is held until the facilitator starts it.
    pub join: Option<String>,
    /// The after-action report: shown and written on demand, and when
    /// every trainee has finished.
    pub report: Reporter,
    /// The facilitator's console's language: of the report and the white
    /// cell's notices.
    pub language: Language,
    /// The scenario clock to keep for a trainee station in this process.
    pub clock: Option<crate::station::exercise_clock::ExerciseClock>,
}

/// Renders the after-action report of the trainees' runs (`true`: the
/// exercise is over, so what is still pending is missed) in a language.
pub type RenderReport =
    std::sync::Arc<dyn Fn(&[TraineeRun], bool, Language) -> String + Send + Sync>;

/// How the white cell makes its report, and where it writes it.
pub struct Reporter {
    pub path: PathBuf,
    pub render: RenderReport,
}

/// Renders the report as of `elapsed`, writes it, and says where.
async fn publish(
    cell: &WhiteCell,
    runs: &mut [TraineeRun],
    elapsed: Duration,
    finished: bool,
    seq: u64,
) -> ShownReport {
    for r in runs.iter_mut() {
        r.ran = r.now(elapsed);
    }
    let lang = cell.language;
    let text = (cell.report.render)(runs, finished, lang);
    let path = cell.report.path.display();
    let html_path = super::html::path_beside(&cell.report.path);
    let html = super::html::report(&text, lang);
    let written = match tokio::fs::write(&cell.report.path, &text).await {
        Ok(()) => match tokio::fs::write(&html_path, html).await {
            Ok(()) => t!(
                lang,
                "evaluation.written_html",
                path = path,
                html = html_path.display()
            ),
            Err(e) => format!(
                "{}; {}",
                t!(lang, "report.written", path = path),
                t!(
                    lang,
                    "report.not_written",
                    path = html_path.display(),
                    error = e
                )
            ),
        },
        Err(e) => t!(lang, "report.not_written", path = path, error = e),
    };
    ShownReport { seq, text, written }
}

/// Each objective's ratings for the facilitator's panel: the proposal
/// where one trainee runs the scenario (whose would it be otherwise?), and
/// the evaluator's.
fn ratings_of(
    cell: &WhiteCell,
    runs: &[TraineeRun],
    elapsed: Duration,
    evaluation: &Evaluation,
) -> Vec<ObjectiveRating> {
    let proposed = match runs {
        [run] => run.engine.objective_results(run.now(elapsed), false),
        _ => Vec::new(),
    };
    cell.scenario
        .objectives
        .iter()
        .map(|o| ObjectiveRating {
            id: o.id.clone(),
            text: o.text.clone(),
            capability: o.capability.clone(),
            proposed: proposed
                .iter()
                .find(|p| p.objective.id == o.id)
                .and_then(|p| p.proposed),
            rating: evaluation.ratings.get(&o.id).copied(),
        })
        .collect()
}

/// One trainee's run of the scenario: its own engine, started when it was
/// admitted, on the white cell's clock.
pub struct TraineeRun {
    pub station: StationName,
    pub engine: Engine,
    /// White-cell time at which it was admitted.
    pub since: Duration,
    /// When it was admitted, for reading journals.
    pub admitted_at: Timestamp,
    /// How long it ran, once the white cell has stopped.
    pub ran: Duration,
    injects: HashMap<MessageId, String>,
    /// The record the trainee's own console sent when it quit: signed by
    /// the station's key, which the white cell admitted (the link takes
    /// messages from no other).
    pub record: Option<String>,
}

impl TraineeRun {
    fn now(&self, elapsed: Duration) -> Duration {
        elapsed.saturating_sub(self.since)
    }
}

fn draft_of(send: &super::Send) -> Draft {
    Draft {
        template_id: send.template.clone(),
        fields: send.fields.clone(),
        precedence: Some(send.precedence),
        text: send.text.clone(),
        text_language: Some(send.language.unwrap_or(crate::domain::Language::EN)),
        label: None,
        references: Vec::new(),
        exercise: true,
    }
}

fn view_of(
    cell: &WhiteCell,
    runs: &[TraineeRun],
    elapsed: Duration,
    paused: bool,
    speed: f64,
    report: Option<ShownReport>,
    evaluation: &Evaluation,
) -> WhiteCellView {
    let first = runs.first().map(|r| r.engine.overview(r.now(elapsed)));
    WhiteCellView {
        scenario: cell.scenario.id.clone(),
        scenario_time: first.as_ref().map_or(Duration::ZERO, |o| o.scenario_time),
        speed,
        paused,
        injects: first.map(|o| o.injects).unwrap_or_default(),
        join: cell.join.clone(),
        trainees: runs
            .iter()
            .map(|r| {
                let now = r.now(elapsed);
                let o = r.engine.overview(now);
                let scores = r.engine.scores(now, false);
                let count =
                    |f: fn(&Outcome) -> bool| scores.iter().filter(|s| f(&s.outcome)).count();
                TraineeRow {
                    station: r.station.to_string(),
                    link_up: cell.counterpart.link_up(&r.station),
                    scenario_time: o.scenario_time,
                    delivered: o
                        .injects
                        .iter()
                        .filter(|(_, _, s)| s == InjectState::Delivered.id())
                        .count(),
                    injects: o.injects.len(),
                    met: count(|o| matches!(o, Outcome::Met { .. })),
                    late: count(|o| matches!(o, Outcome::Late { .. })),
                    missed: count(|o| matches!(o, Outcome::Missed)),
                }
            })
            .collect(),
        waiting: cell.counterpart.candidates(),
        report,
        objectives: runs
            .first()
            .map(|r| r.engine.progress(r.now(elapsed)))
            .unwrap_or_default(),
        evaluation: ratings_of(cell, runs, elapsed, evaluation),
        notes: evaluation.notes.len(),
    }
}

fn finish(mut runs: Vec<TraineeRun>, elapsed: Duration) -> Vec<TraineeRun> {
    for r in &mut runs {
        r.ran = r.now(elapsed);
    }
    runs
}

/// Runs the white cell until `stop` fires, then returns each trainee's run
/// for the report. Facilitator commands apply to every trainee; a trainee
/// admitted later starts the scenario from T+00:00 on the same settings.
pub async fn white_cell(
    cell: WhiteCell,
    mut facilitator: Facilitator,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<TraineeRun> {
    let started = Instant::now();
    let lang = cell.language;
    let cp = &cell.counterpart;
    let white = OperatorName::new("white-cell").ok();
    let mut events = cp.subscribe();
    let mut paused = cell.join.is_some();
    let mut speed = cell.scenario.time_compression;
    let mut runs: Vec<TraineeRun> = Vec::new();
    let mut announced_end = false;
    let mut shown: Option<ShownReport> = None;
    // The facilitator's ratings and notes, for every trainee's report.
    let mut evaluation = Evaluation::default();
    // Until the facilitator first starts the clock (STARTEX), admitted
    // trainees wait at T+00:00; their runs begin at STARTEX.
    let mut startex = cell.join.is_none();
    let engine = |station: &StationName, paused: bool, speed: f64| {
        let mut scenario = cell.scenario.clone();
        scenario.trainee = station.to_string();
        let mut engine = Engine::new(scenario);
        if speed != cell.scenario.time_compression {
            engine.set_speed(Duration::ZERO, speed);
        }
        if paused {
            engine.pause(Duration::ZERO);
        }
        engine
    };
    let admit = |runs: &mut Vec<TraineeRun>,
                 station: StationName,
                 paused: bool,
                 speed: f64,
                 at: Duration| {
        if runs.iter().any(|r| r.station == station) {
            return;
        }
        runs.push(TraineeRun {
            engine: engine(&station, paused, speed),
            station,
            since: at,
            admitted_at: Timestamp::now(),
            ran: Duration::ZERO,
            injects: HashMap::new(),
            record: None,
        });
    };
    for t in &cell.trainees {
        admit(&mut runs, t.clone(), paused, speed, Duration::ZERO);
    }
    if cell.join.is_some() {
        cell.console.notice(t!(
            lang,
            "report.admit_then_start",
            scenario = cell.scenario.id
        ));
    }
    let mut tick = tokio::time::interval(WHITE_CELL_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let elapsed = started.elapsed();
                if let (Some(clock), Some(r)) = (&cell.clock, runs.first()) {
                    let o = r.engine.overview(r.now(elapsed));
                    clock.sync(Timestamp::now(), o.scenario_time, o.speed, o.paused);
                }
                for run in &mut runs {
                    let now = run.now(elapsed);
                    for send in run.engine.due(now) {
                        let Some(op) = &white else { continue };
                        match cp.release(op, run.station.as_str(), draft_of(&send)).await {
                            Ok((released, _)) => {
                                run.injects.insert(released.id, send.inject.clone());
                            }
                            Err(e) => tracing::error!(inject = %send.inject, error = %e, "the white cell could not send an inject"),
                        }
                    }
                }
                let finished = !runs.is_empty() && runs.iter().all(|r| r.engine.finished(r.now(elapsed)));
                if finished && !announced_end {
                    announced_end = true;
                    let seq = shown.as_ref().map_or(1, |r| r.seq + 1);
                    let mut last = publish(&cell, &mut runs, elapsed, true, seq).await;
                    last.written = t!(lang, "report.finished", scenario = cell.scenario.id, written = last.written);
                    shown = Some(last);
                }
            }
            event = events.recv() => {
                let elapsed = started.elapsed();
                let trainee = |runs: &mut Vec<TraineeRun>, peer: &str| runs.iter_mut().position(|r| r.station.as_str() == peer);
                match event {
                    Ok(Event::Receipt { id, peer }) => {
                        if let Some(i) = trainee(&mut runs, &peer) {
                            let run = &mut runs[i];
                            if let Some(inject) = run.injects.get(&id).cloned() {
                                let at = run.now(elapsed);
                                run.engine.record(Input::Delivered { inject, message: id, at });
                            }
                        }
                    }
                    Ok(Event::Acknowledged { id, peer, by, .. }) => {
                        if let Some(i) = trainee(&mut runs, &peer) {
                            let at = runs[i].now(elapsed);
                            runs[i].engine.record(Input::Acknowledged { message: id, by, at });
                        }
                    }
                    Ok(Event::Received { id, from, .. }) => {
                        if let (Some(i), Ok(m)) = (trainee(&mut runs, &from), cp.open(&id)) {
                            let at = runs[i].now(elapsed);
                            match super::classroom::record_of(&m) {
                                Some(record) => runs[i].record = Some(record),
                                None => runs[i].engine.record(Input::Replied { references: m.references, template: m.template.id, fields: m.fields, at }),
                            }
                        }
                    }
                    Ok(Event::PeerAdded { peer }) => {
                        if let Ok(station) = StationName::new(&peer) {
                            // A trainee on another machine learns what it
                            // will play from a briefing; not scored.
                            if let (Some(op), Some(draft)) = (&white, super::classroom::briefing_draft(&cell.scenario, &station))
                                && let Err(e) = cp.release(op, station.as_str(), draft).await
                            {
                                tracing::error!(%station, error = %e, "the white cell could not send a briefing");
                            }
                            admit(&mut runs, station, paused, speed, elapsed);
                            announced_end = false;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return finish(runs, started.elapsed()),
                }
            }
            Some(command) = facilitator.commands.recv() => {
                let elapsed = started.elapsed();
                match command {
                    WhiteCellCommand::TogglePause if !startex => {
                        startex = true;
                        paused = false;
                        for r in &mut runs {
                            r.engine = engine(&r.station, false, speed);
                            r.since = elapsed;
                            r.admitted_at = Timestamp::now();
                        }
                    }
                    WhiteCellCommand::TogglePause => {
                        paused = !paused;
                        for r in &mut runs {
                            let now = r.now(elapsed);
                            if paused { r.engine.pause(now) } else { r.engine.resume(now) }
                        }
                    }
                    WhiteCellCommand::Faster | WhiteCellCommand::Slower => {
                        let factor = if matches!(command, WhiteCellCommand::Faster) { 2.0 } else { 0.5 };
                        speed = (speed * factor).clamp(0.1, 60.0);
                        for r in &mut runs {
                            let now = r.now(elapsed);
                            r.engine.set_speed(now, speed);
                        }
                    }
                    WhiteCellCommand::SkipNext => {
                        let mut skipped = Vec::new();
                        for r in &mut runs {
                            let now = r.now(elapsed);
                            skipped.extend(r.engine.skip_next(now));
                        }
                        skipped.dedup();
                        if !skipped.is_empty() {
                            cell.console.notice(t!(lang, "report.white_cell_skipped", injects = skipped.join("`, `")));
                        }
                    }
                    WhiteCellCommand::Inject(draft) => {
                        let what = format!("{:?} {}", draft.precedence, draft.template_id);
                        let Some(op) = &white else { continue };
                        for r in &mut runs {
                            let now = r.now(elapsed);
                            match cp.release(op, r.station.as_str(), (*draft).clone()).await {
                                Ok(_) => r.engine.note_ad_hoc(now, &what),
                                Err(e) => cell.console.notice(t!(lang, "report.white_cell_not_sent", station = r.station, error = e)),
                            }
                        }
                    }
                    WhiteCellCommand::Admit(fingerprint) => {
                        if let Err(e) = cp.admit(&fingerprint).await {
                            cell.console.notice(t!(lang, "report.white_cell_not_admitted", error = e));
                        }
                    }
                    WhiteCellCommand::Report => {
                        let seq = shown.as_ref().map_or(1, |r| r.seq + 1);
                        shown = Some(publish(&cell, &mut runs, elapsed, announced_end, seq).await);
                    }
                    WhiteCellCommand::Rate { objective, rating } => {
                        if cell.scenario.objectives.iter().any(|o| o.id == objective) {
                            match rating {
                                Some(rating) => evaluation.ratings.insert(objective, rating),
                                None => evaluation.ratings.remove(&objective),
                            };
                        }
                    }
                    WhiteCellCommand::Note { text, kind } => {
                        let at = runs.first().map_or(Duration::ZERO, |r| r.engine.overview(r.now(elapsed)).scenario_time);
                        evaluation.notes.push(Note { at, kind, text });
                    }
                    WhiteCellCommand::Refuse(fingerprint) => {
                        match cp.refuse_join(&fingerprint).await {
                            Ok(station) => cell.console.notice(t!(lang, "report.white_cell_refused", station = station)),
                            Err(e) => cell.console.notice(t!(lang, "report.white_cell_error", error = e)),
                        }
                    }
                }
            }
            _ = stop.changed() => return finish(runs, started.elapsed()),
        }
        // The facilitator's judgements go into every trainee's report.
        for r in &mut runs {
            if r.engine.evaluation != evaluation {
                r.engine.evaluation.clone_from(&evaluation);
            }
        }
        let new = view_of(
            &cell,
            &runs,
            started.elapsed(),
            paused,
            speed,
            shown.clone(),
            &evaluation,
        );
        facilitator.view.send_if_modified(|v| {
            let changed = new.paused != v.paused
                || new.speed != v.speed
                || new.injects != v.injects
                || new.trainees != v.trainees
                || new.waiting != v.waiting
                || new.join != v.join
                || new.report != v.report
                || new.evaluation != v.evaluation
                || new.notes != v.notes
                || new.scenario_time.as_secs() != v.scenario_time.as_secs();
            if changed {
                *v = new;
            }
            changed
        });
    }
}

/// `at` (an RFC 3339 time from the journal) as T+mm:ss after `started`.
fn t_plus(at: Timestamp, started: Timestamp) -> String {
    super::scenario::format_offset(at.duration_since(started).unsigned_abs())
}

/// [`t_plus`] of a time as the audit log stores it (T+00:00 if unreadable).
fn t_plus_text(at: &str, started: Timestamp) -> String {
    t_plus(at.parse::<Timestamp>().unwrap_or(started), started)
}

/// The trainee's actions from its audit log, for the report.
pub fn operator_actions(station: &Station, started: Timestamp) -> Vec<String> {
    station
        .journal()
        .read(|c| {
            let mut stmt = c.prepare("SELECT at, actor, action, detail FROM audit ORDER BY seq")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at, actor, action, detail) = row?;
                if actor == "station" {
                    continue;
                }
                out.push(format!(
                    "{} {} {action} ({detail})",
                    t_plus_text(&at, started),
                    crate::sanitize::inert(&actor)
                ));
            }
            Ok(out)
        })
        .unwrap_or_default()
}

/// A trainee operator's action as it reached the white cell.
pub struct ReceivedAction {
    pub peer: String,
    pub operator: String,
    pub text: String,
}

/// What each trainee's operators did, as the white cell's journal holds
/// it: acknowledgements of its messages and messages received, by time,
/// told in `lang`.
pub fn received_actions(
    station: &Station,
    started: Timestamp,
    lang: Language,
) -> Vec<ReceivedAction> {
    let inert = crate::sanitize::inert;
    let mut out: Vec<(Timestamp, ReceivedAction)> = Vec::new();
    for row in station.list(Direction::Out).unwrap_or_default() {
        if let (Some(by), Some(at)) = (&row.ack_by, row.ack_at) {
            out.push((
                at,
                ReceivedAction {
                    peer: row.peer.to_string(),
                    operator: inert(by),
                    text: t!(
                        lang,
                        "report.action_acknowledged",
                        at = t_plus(at, started),
                        operator = inert(by),
                        precedence = row.precedence,
                        template = row.template_id,
                        id = row.id
                    ),
                },
            ));
        }
    }
    for row in station.list(Direction::In).unwrap_or_default() {
        out.push((
            row.stored_at,
            ReceivedAction {
                peer: row.peer.to_string(),
                operator: inert(row.operator.as_str()),
                text: t!(
                    lang,
                    "report.action_sent",
                    at = t_plus(row.released_at, started),
                    operator = inert(row.operator.as_str()),
                    precedence = row.precedence,
                    template = inert(&row.template_id),
                    id = row.id
                ),
            },
        ));
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, a)| a).collect()
}

/// A joined trainee's own record, written on its machine when its console
/// quits, in `lang`: the messages it exchanged and its operators' actions
/// from its audit log (the white cell holds the scored report).
pub fn trainee_record(
    station: &Station,
    white_cell: &PeerKeys,
    addr: SocketAddr,
    started: Timestamp,
    date: &str,
    lang: Language,
) -> String {
    use std::fmt::Write as _;
    let inert = crate::sanitize::inert;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# {}\n",
        t!(lang, "report.record_title", station = station.name())
    );
    let _ = writeln!(
        r,
        "**{}** {}\n",
        t!(lang, "report.exercise"),
        t!(lang, "report.record_note")
    );
    let _ = writeln!(
        r,
        "- {}",
        t!(lang, "report.record_station", station = station.name())
    );
    let _ = writeln!(
        r,
        "- {}",
        t!(
            lang,
            "report.record_white_cell",
            station = white_cell.name,
            address = addr,
            fingerprint = white_cell.fingerprint()
        )
    );
    let _ = writeln!(r, "- {}\n", t!(lang, "report.date", date = date));
    let _ = writeln!(r, "## {}\n", t!(lang, "report.messages"));
    let mut rows: Vec<(Timestamp, String)> = Vec::new();
    for direction in [Direction::In, Direction::Out] {
        for row in station.list(direction).unwrap_or_default() {
            let at = t_plus(row.stored_at, started);
            let template = inert(&row.template_id);
            let line = match (direction, &row.ack_by) {
                (Direction::In, None) => t!(
                    lang,
                    "report.record_received",
                    at = at,
                    precedence = row.precedence,
                    template = template,
                    id = row.id
                ),
                (Direction::In, Some(by)) => t!(
                    lang,
                    "report.record_received_acknowledged",
                    at = at,
                    precedence = row.precedence,
                    template = template,
                    id = row.id,
                    by = inert(by)
                ),
                (Direction::Out, None) => t!(
                    lang,
                    "report.record_sent",
                    at = at,
                    precedence = row.precedence,
                    template = template,
                    id = row.id
                ),
                (Direction::Out, Some(by)) => t!(
                    lang,
                    "report.record_sent_acknowledged",
                    at = at,
                    precedence = row.precedence,
                    template = template,
                    id = row.id,
                    by = inert(by)
                ),
            };
            rows.push((row.stored_at, line));
        }
    }
    rows.sort();
    if rows.is_empty() {
        let _ = writeln!(r, "- {}", t!(lang, "report.none"));
    }
    for (_, line) in rows {
        let _ = writeln!(r, "- {line}");
    }
    let _ = writeln!(
        r,
        "\n## {}\n",
        t!(
            lang,
            "report.actions",
            source = t!(lang, "report.record_source")
        )
    );
    let actions = operator_actions(station, started);
    if actions.is_empty() {
        let _ = writeln!(r, "- {}", t!(lang, "report.none"));
    }
    for a in actions {
        let _ = writeln!(r, "- {a}");
    }
    r
}
