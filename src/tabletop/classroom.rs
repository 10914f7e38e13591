//! The classroom: a white cell on one machine, trainees on others. On
//! admission the white cell briefs each trainee with the scenario it plays
//! (a MSEL in an `EXERCISE BRIEFING` message), from which the trainee's
//! console mirrors its own exercise for the objectives panel and keeps its
//! station's scenario clock; as it quits, the trainee's console sends its
//! station's record back (an `EXERCISE RECORD` message, signed as every
//! message), which the white cell's report quotes.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::run::TraineeRun;
use super::{Engine, Input, Scenario};
use crate::compose::Draft;
use crate::console::{WhiteCellCommand, WhiteCellView};
use crate::domain::{Language, MessageId, StationName};
use crate::station::Station;
use crate::store::{Direction, MessageState};
use crate::t;

/// The subject of the message in which a trainee station sends its own
/// record to the white cell as it quits (a marker, not translated).
pub const RECORD_SUBJECT: &str = "EXERCISE RECORD";

/// The message that carries a trainee's record to the white cell: a
/// general message, cut to what its text field holds.
pub fn record_draft(record: &str) -> Draft {
    let max = crate::templates::DEFAULT_TEXT_MAX;
    let mut text: String = record.chars().take(max - 1).collect();
    if record.chars().count() >= max {
        text.push('…');
    }
    Draft {
        template_id: "general".into(),
        fields: [
            ("subject".to_string(), RECORD_SUBJECT.to_string()),
            ("text".to_string(), text),
        ]
        .into(),
        precedence: Some(crate::domain::Precedence::Routine),
        exercise: true,
        ..Draft::default()
    }
}

/// The subject of the message in which the white cell sends an admitted
/// trainee the scenario it will play (a marker, not translated), so the
/// trainee's console can show the objectives and what is expected.
pub const BRIEFING_SUBJECT: &str = "EXERCISE BRIEFING";

/// The briefing for `station`: the scenario as it plays it, as a MSEL
/// spreadsheet in a general message; None if it does not fit one.
pub(crate) fn briefing_draft(scenario: &Scenario, station: &StationName) -> Option<Draft> {
    let mut mine = scenario.clone();
    mine.trainee = station.to_string();
    mine.sides = vec![mine.trainee.clone()];
    for inject in &mut mine.injects {
        inject.sides.clear();
    }
    // Lines end in LF: a message's text holds no carriage return.
    let text = super::msel::to_csv(&mine).replace("\r\n", "\n");
    (text.chars().count() <= crate::templates::DEFAULT_TEXT_MAX).then(|| Draft {
        template_id: "general".into(),
        fields: [
            ("subject".to_string(), BRIEFING_SUBJECT.to_string()),
            ("text".to_string(), text),
        ]
        .into(),
        precedence: Some(crate::domain::Precedence::Routine),
        exercise: true,
        ..Draft::default()
    })
}

/// The scenario a briefing carries, if `m` is one.
fn briefing_of(m: &crate::domain::Message) -> Option<Scenario> {
    if m.template.id != "general"
        || m.fields.get("subject").map(String::as_str) != Some(BRIEFING_SUBJECT)
    {
        return None;
    }
    let text = m.fields.get("text")?;
    super::msel::parse(
        Path::new("briefing.csv"),
        text,
        crate::templates::Catalog::builtin(),
    )
    .map_err(|p| tracing::warn!(problems = ?p, "an exercise briefing could not be read"))
    .ok()
}

/// A trainee's record, if `m` is the message that carries one.
pub(crate) fn record_of(m: &crate::domain::Message) -> Option<String> {
    (m.template.id == "general"
        && m.fields.get("subject").map(String::as_str) == Some(RECORD_SUBJECT))
    .then(|| m.fields.get("text").cloned().unwrap_or_default())
}

/// The record a trainee's console sent as it quit, as a Markdown code
/// block: it is the trainee's text, so nothing in it is read as Markdown.
pub fn record_section(r: &TraineeRun, lang: Language) -> String {
    let mut out = format!(
        "## {}\n\n",
        t!(lang, "report.trainee_record", station = r.station)
    );
    match &r.record {
        Some(record) => {
            for line in crate::sanitize::inert_lines(record) {
                out.push_str("    ");
                out.push_str(&line);
                out.push('\n');
            }
        }
        None => {
            out.push_str(t!(lang, "report.no_record"));
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

/// Why a trainee's record did not reach the white cell.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Station(#[from] crate::station::api::ApiError),
    #[error("the station did not release the record")]
    NotReleased,
    #[error("{white_cell} refused it")]
    Refused { white_cell: String },
    #[error("no receipt from {white_cell} within {secs}s")]
    NoReceipt { white_cell: String, secs: u64 },
}

/// Sends the trainee station's record to the white cell, signed by the
/// station as every message is, and waits up to `limit` for the white
/// cell's receipt.
pub async fn send_record(
    trainee: &Station,
    white_cell: &str,
    record: &str,
    limit: Duration,
) -> Result<(), RecordError> {
    use crate::station::api::{Command, Door, Release, Reply, Session};
    let session = Session::new(Door::Console);
    trainee
        .handle(
            &session,
            Command::SignIn {
                call_sign: "trainee".into(),
            },
        )
        .await?;
    let release = Release {
        to: white_cell.into(),
        draft: record_draft(record),
        attachments: Vec::new(),
        second_operator: None,
        refer_to: Vec::new(),
    };
    let Reply::Released { row } = trainee
        .handle(&session, Command::Release(Box::new(release)))
        .await?
    else {
        return Err(RecordError::NotReleased);
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let state = trainee
            .list(crate::store::Direction::Out)
            .unwrap_or_default()
            .iter()
            .find(|r| r.id == row.id)
            .map(|r| r.state);
        match state {
            Some(MessageState::Receipted | MessageState::Acknowledged) => return Ok(()),
            Some(MessageState::Refused) => {
                return Err(RecordError::Refused {
                    white_cell: white_cell.to_string(),
                });
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RecordError::NoReceipt {
                white_cell: white_cell.to_string(),
                secs: limit.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How often a trainee's mirror looks at its station.
const MIRROR_TICK: Duration = Duration::from_secs(1);

/// A trainee console's view of its own exercise when it joined a white
/// cell on another machine: the briefing's scenario, mirrored by an engine
/// fed from this station's journal (the injects that arrived, matched by
/// template and fields; its operators' acknowledgements and replies), so
/// the objectives panel shows what is expected and where it stands. The
/// clock follows the injects' scenario times as they arrive; a pause or a
/// change of speed at the white cell shows only when the next inject comes.
/// The white cell's own engine scores the exercise.
pub async fn mirror(
    station: Station,
    white_cell: String,
    view: tokio::sync::watch::Sender<WhiteCellView>,
    mut commands: tokio::sync::mpsc::Receiver<WhiteCellCommand>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let started = Instant::now();
    let mut engine: Option<Engine> = None;
    let mut seen: std::collections::HashSet<MessageId> = std::collections::HashSet::new();
    let mut acked: std::collections::HashSet<MessageId> = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(MIRROR_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // A trainee has no facilitator's commands: they are dropped.
            Some(_) = commands.recv() => continue,
            _ = stop.changed() => return,
        }
        let now = started.elapsed();
        let at = |stored: Timestamp| {
            let age = Timestamp::now().duration_since(stored).unsigned_abs();
            now.saturating_sub(age)
        };
        for row in station.list(Direction::In).unwrap_or_default() {
            if row.peer.as_str() != white_cell {
                continue;
            }
            if !seen.contains(&row.id) {
                let Ok(m) = station.open(&row.id) else {
                    continue;
                };
                if let Some(scenario) = briefing_of(&m) {
                    engine = Some(Engine::new(scenario));
                    seen.insert(row.id);
                    continue;
                }
                let Some(e) = engine.as_mut() else { continue };
                seen.insert(row.id);
                let matched = e.scenario.injects.iter().find_map(|i| {
                    let same =
                        |template: &str, fields: &std::collections::BTreeMap<String, String>| {
                            template == m.template.id && *fields == m.fields
                        };
                    if same(&i.template, &i.fields) {
                        Some((i.id.clone(), i.at))
                    } else {
                        i.follow_up
                            .as_ref()
                            .filter(|f| same(&f.template, &f.fields))
                            .map(|_| (format!("{}/follow-up", i.id), i.at))
                    }
                });
                if let Some((inject, scenario_at)) = matched {
                    if !inject.ends_with("/follow-up") {
                        e.sync(at(row.stored_at), scenario_at);
                    }
                    e.record(Input::Delivered {
                        inject,
                        message: row.id,
                        at: at(row.stored_at),
                    });
                }
            }
            if let (Some(e), Some(by), Some(ack_at)) = (engine.as_mut(), &row.ack_by, row.ack_at)
                && acked.insert(row.id)
            {
                e.record(Input::Acknowledged {
                    message: row.id,
                    by: by.clone(),
                    at: at(ack_at),
                });
            }
        }
        if let Some(e) = engine.as_mut() {
            for row in station.list(Direction::Out).unwrap_or_default() {
                if row.peer.as_str() != white_cell || !seen.insert(row.id) {
                    continue;
                }
                let Ok(m) = station.open(&row.id) else {
                    continue;
                };
                if record_of(&m).is_none() {
                    e.record(Input::Replied {
                        references: m.references,
                        template: m.template.id,
                        fields: m.fields,
                        at: at(row.stored_at),
                    });
                }
            }
            if let Some(clock) = station.exercise_clock() {
                let o = e.overview(now);
                clock.sync(Timestamp::now(), o.scenario_time, o.speed, o.paused);
            }
            view.send_replace(WhiteCellView {
                scenario: e.scenario.id.clone(),
                scenario_time: e.overview(now).scenario_time,
                speed: e.scenario.time_compression,
                objectives: e.progress(now),
                ..WhiteCellView::default()
            });
        }
    }
}
