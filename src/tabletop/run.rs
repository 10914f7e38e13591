//! The live exercise. Two stations are made for the occasion — the trainee's
//! and the simulated counterpart's — with fresh keys and journals in a
//! private temporary directory that is removed afterwards. Both speak the
//! exercise ALPN and flag everything EXERCISE. The counterpart's "white
//! cell" follows the scenario engine: it sends injects when due, and feeds
//! receipts, acknowledgements and replies back into the engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::engine::{Engine, Input};
use super::scenario::Scenario;
use crate::compose::Draft;
use crate::config::Config;
use crate::console::{WhiteCellCommand, WhiteCellView};
use crate::crypto::StationKeys;
use crate::crypto::keys::signing_key_text;
use crate::domain::{MessageId, OperatorName, StationName};
use crate::station::{Event, Options, Station};
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

fn view_of(engine: &Engine, now: Duration) -> WhiteCellView {
    let o = engine.overview(now);
    WhiteCellView {
        scenario: engine.scenario.id.clone(),
        scenario_time: o.scenario_time,
        speed: o.speed,
        paused: o.paused,
        injects: o.injects,
    }
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

fn station_config(
    dir: &Path,
    name: &StationName,
    peer: &StationKeys,
    peer_addr: Option<std::net::SocketAddr>,
    language: &str,
) -> Result<Config, TabletopError> {
    let public = peer.public();
    let primary = peer_addr
        .map(|a| format!("primary = \"{a}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[station]\nname = \"{name}\"\nlanguage = \"{language}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n\
         [link]\ntest_interval = \"10m\"\nflash_receipt_alarm = \"30s\"\n\n\
         [[peers]]\nname = \"{}\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\n{primary}",
        public.name,
        signing_key_text(&public.signing),
        public.age
    );
    Config::parse(&text, &dir.join("operator.toml"))
        .map_err(|e| TabletopError::Setup(e.to_string()))
}

fn keys(name: &str) -> Result<StationKeys, TabletopError> {
    let name = StationName::new(name).map_err(|e| TabletopError::Setup(e.to_string()))?;
    StationKeys::generate(name).map_err(|e| TabletopError::Setup(e.to_string()))
}

fn clone_keys(k: &StationKeys) -> StationKeys {
    StationKeys {
        name: k.name.clone(),
        signing: k.signing.clone(),
        age: k.age.clone(),
    }
}

/// The two stations of an exercise, running.
pub struct Stations {
    pub trainee: Station,
    pub counterpart: Station,
}

/// The stations and the directory that holds their keys and journals.
pub struct Exercise {
    pub trainee: Station,
    pub counterpart: Station,
    pub scratch: Scratch,
}

/// Starts both stations: the counterpart first (it listens), then the
/// trainee, which dials it.
pub async fn start(scenario: &Scenario) -> Result<Exercise, TabletopError> {
    let scratch = Scratch::new()?;
    let trainee_keys = keys(&scenario.trainee)?;
    let counterpart_keys = keys(&scenario.counterpart)?;
    let options = Options {
        alpn: ALPN_EXERCISE.to_vec(),
        exercise_only: true,
    };
    let cp_dir = scratch.0.join("counterpart");
    let tr_dir = scratch.0.join("trainee");
    for d in [&cp_dir, &tr_dir] {
        crate::fsutil::create_private_dir(d).map_err(|e| TabletopError::Setup(e.to_string()))?;
    }
    let cp_config = station_config(&cp_dir, &counterpart_keys.name, &trainee_keys, None, "ru")?;
    let counterpart =
        Station::start(cp_config, clone_keys(&counterpart_keys), options.clone()).await?;
    let addr = counterpart
        .local_addr()
        .ok_or_else(|| TabletopError::Setup("the counterpart did not bind".into()))?;
    let tr_config = station_config(
        &tr_dir,
        &trainee_keys.name,
        &counterpart_keys,
        Some(addr),
        "en",
    )?;
    let trainee = Station::start(tr_config, trainee_keys, options).await?;
    Ok(Exercise {
        trainee,
        counterpart,
        scratch,
    })
}

/// Runs the white cell until the scenario is finished (or `stop` fires),
/// then returns the engine for the report.
pub async fn white_cell(
    exercise: &Stations,
    mut engine: Engine,
    mut facilitator: Facilitator,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Engine {
    let started = Instant::now();
    let cp = &exercise.counterpart;
    let to = engine.scenario.trainee.clone();
    let white = OperatorName::new("white-cell").ok();
    let mut events = cp.subscribe();
    let mut injects: HashMap<MessageId, String> = HashMap::new();
    let mut tick = tokio::time::interval(WHITE_CELL_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = started.elapsed();
                for send in engine.due(now) {
                    let draft = Draft {
                        template_id: send.template.clone(),
                        fields: send.fields.clone(),
                        precedence: Some(send.precedence),
                        text: send.text.clone(),
                        references: Vec::new(),
                        exercise: true,
                    };
                    let Some(op) = &white else { continue };
                    match cp.release(op, &to, draft).await {
                        Ok((released, _)) => {
                            injects.insert(released.id, send.inject.clone());
                        }
                        Err(e) => tracing::error!(inject = %send.inject, error = %e, "the white cell could not send an inject"),
                    }
                }
                if engine.finished(now) {
                    exercise.trainee.notice(format!("EXERCISE {} finished: the after-action report is written when you quit", engine.scenario.id));
                    return engine;
                }
            }
            event = events.recv() => {
                let at = started.elapsed();
                match event {
                    Ok(Event::Receipt { id, .. }) => {
                        if let Some(inject) = injects.get(&id) {
                            engine.record(Input::Delivered { inject: inject.clone(), message: id, at });
                        }
                    }
                    Ok(Event::Acknowledged { id, by, .. }) => engine.record(Input::Acknowledged { message: id, by, at }),
                    Ok(Event::Received { id, .. }) => {
                        if let Ok(m) = cp.open(&id) {
                            engine.record(Input::Replied { references: m.references, template: m.template.id, fields: m.fields, at });
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return engine,
                }
            }
            Some(command) = facilitator.commands.recv() => {
                let now = started.elapsed();
                match command {
                    WhiteCellCommand::TogglePause if engine.overview(now).paused => engine.resume(now),
                    WhiteCellCommand::TogglePause => engine.pause(now),
                    WhiteCellCommand::Faster => {
                        let speed = engine.overview(now).speed;
                        engine.set_speed(now, speed * 2.0);
                    }
                    WhiteCellCommand::Slower => {
                        let speed = engine.overview(now).speed;
                        engine.set_speed(now, speed / 2.0);
                    }
                    WhiteCellCommand::SkipNext => {
                        if let Some(id) = engine.skip_next(now) {
                            exercise.trainee.notice(format!("white cell: inject `{id}` skipped"));
                        }
                    }
                    WhiteCellCommand::Inject(draft) => {
                        let what = format!("{:?} {}", draft.precedence, draft.template_id);
                        if let Some(op) = &white {
                            match cp.release(op, &to, *draft).await {
                                Ok(_) => engine.note_ad_hoc(now, &what),
                                Err(e) => exercise.trainee.notice(format!("white cell: the ad-hoc inject was not sent: {e}")),
                            }
                        }
                    }
                }
            }
            _ = stop.changed() => return engine,
        }
        facilitator.view.send_if_modified(|v| {
            let new = view_of(&engine, started.elapsed());
            let changed = new.paused != v.paused
                || new.speed != v.speed
                || new.injects != v.injects
                || new.scenario_time.as_secs() != v.scenario_time.as_secs();
            if changed {
                *v = new;
            }
            changed
        });
    }
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
                let t = at
                    .parse::<Timestamp>()
                    .map(|t| t.duration_since(started).as_secs().max(0))
                    .unwrap_or(0);
                out.push(format!(
                    "T+{:02}:{:02} {} {action} ({detail})",
                    t / 60,
                    t % 60,
                    crate::sanitize::inert(&actor)
                ));
            }
            Ok(out)
        })
        .unwrap_or_default()
}
