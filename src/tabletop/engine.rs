//! The scenario engine: a state machine with no I/O and no clock of its own.
//! It is told the elapsed real time and what happened (delivered, acknowl-
//! edged, replied), says which injects are due, and scores expectations.
//! Fed the same events on the same simulated clock, it yields the same
//! report every time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;
use std::time::Duration;

use super::scenario::{Expect, Objective, RatingRule, Scenario, format_offset};
use crate::domain::{Language, MessageId, Precedence};
use crate::t;

/// Something that happened, at a real time since the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The counterpart's inject reached the trainee's journal (receipt).
    Delivered {
        inject: String,
        message: MessageId,
        at: Duration,
    },
    Acknowledged {
        message: MessageId,
        by: String,
        at: Duration,
    },
    Replied {
        references: Vec<MessageId>,
        template: String,
        fields: BTreeMap<String, String>,
        at: Duration,
    },
}

/// A message the counterpart must send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub inject: String,
    pub template: String,
    pub precedence: Precedence,
    pub fields: BTreeMap<String, String>,
    pub text: String,
    /// The language its free text is written in (None: English).
    pub language: Option<crate::domain::Language>,
    pub follow_up: bool,
}

/// How an expectation came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Met { after: Duration },
    Late { after: Duration },
    Missed,
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Score {
    pub inject: String,
    pub expectation: Expect,
    /// The objective (by id) the expectation serves, if any: its own, else
    /// its inject's ([`Inject::objective_of`](super::scenario::Inject::objective_of)).
    pub objective: Option<String>,
    pub within: Duration,
    pub outcome: Outcome,
}

/// Where one expectation stands for the trainee, in scenario time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Its inject comes at this scenario time.
    Upcoming {
        at: Duration,
    },
    /// Its inject arrived; this long is left.
    Pending {
        left: Duration,
    },
    Met {
        after: Duration,
    },
    Late {
        after: Duration,
    },
    Missed,
    /// The facilitator skipped its inject.
    Skipped,
}

/// One expectation of an inject, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectationProgress {
    pub inject: String,
    pub expectation: Expect,
    pub progress: Progress,
}

/// An objective and its expectations, as the trainee's panel shows them.
/// `id` None: the expectations that serve no declared objective.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectiveProgress {
    pub id: Option<String>,
    pub text: String,
    pub expectations: Vec<ExpectationProgress>,
}

/// Where an inject stands, for the facilitator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectState {
    Pending,
    Sent,
    Delivered,
    Skipped,
}

impl InjectState {
    pub const ALL: [InjectState; 4] = [
        InjectState::Pending,
        InjectState::Sent,
        InjectState::Delivered,
        InjectState::Skipped,
    ];

    /// The state's name in the facilitator's view (not shown as it is).
    pub fn id(self) -> &'static str {
        match self {
            InjectState::Pending => "pending",
            InjectState::Sent => "sent",
            InjectState::Delivered => "delivered",
            InjectState::Skipped => "skipped",
        }
    }

    /// The state named `id`, as [`InjectState::id`] gives it.
    pub fn from_id(id: &str) -> Option<InjectState> {
        InjectState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The state as the facilitator reads it.
    pub fn label(self, lang: Language) -> &'static str {
        match self {
            InjectState::Pending => t!(lang, "report.state_pending"),
            InjectState::Sent => t!(lang, "report.state_sent"),
            InjectState::Delivered => t!(lang, "report.state_delivered"),
            InjectState::Skipped => t!(lang, "report.state_skipped"),
        }
    }
}

/// Something in the exercise's timeline, told in the report's language.
#[derive(Clone, Debug)]
enum Happened {
    InjectSent {
        inject: String,
        precedence: Precedence,
        template: String,
    },
    FollowUpSent {
        inject: String,
        after: Duration,
    },
    Paused,
    Resumed,
    Speed(f64),
    Skipped(String),
    AdHoc(String),
    Delivered(String),
    Acknowledged {
        inject: String,
        by: String,
    },
    Replied {
        template: String,
        to: String,
    },
}

impl Happened {
    fn text(&self, lang: Language) -> String {
        match self {
            Happened::InjectSent {
                inject,
                precedence,
                template,
            } => t!(
                lang,
                "report.inject_sent",
                inject = inject,
                precedence = precedence,
                template = template
            ),
            Happened::FollowUpSent { inject, after } => t!(
                lang,
                "report.follow_up_sent",
                inject = inject,
                after = duration(lang, *after)
            ),
            Happened::Paused => t!(lang, "report.paused").to_string(),
            Happened::Resumed => t!(lang, "report.resumed").to_string(),
            Happened::Speed(speed) => t!(lang, "report.speed_set", speed = speed),
            Happened::Skipped(inject) => t!(lang, "report.inject_skipped", inject = inject),
            Happened::AdHoc(what) => t!(lang, "report.ad_hoc", what = what),
            Happened::Delivered(inject) => t!(lang, "report.delivered", inject = inject),
            Happened::Acknowledged { inject, by } => {
                t!(lang, "report.acknowledged", inject = inject, by = by)
            }
            Happened::Replied { template, to } => {
                t!(lang, "report.reply_received", template = template, to = to)
            }
        }
    }
}

/// A duration in the report's language: `1m 30s`.
fn duration(lang: Language, d: Duration) -> String {
    let mut secs = d.as_secs();
    let units = [
        (86_400, t!(lang, "value.unit_d")),
        (3600, t!(lang, "value.unit_h")),
        (60, t!(lang, "value.unit_m")),
        (1, t!(lang, "value.unit_s")),
    ];
    if secs == 0 {
        return t!(lang, "value.duration_part", n = 0, unit = units[3].1);
    }
    let mut parts = Vec::new();
    for (size, unit) in units {
        if secs >= size {
            parts.push(t!(
                lang,
                "value.duration_part",
                n = secs / size,
                unit = unit
            ));
            secs %= size;
        }
    }
    parts.join(" ")
}

/// What an expectation asks, in the report's language.
fn expectation(lang: Language, e: &Expect) -> String {
    match e {
        Expect::Acknowledge { .. } => t!(lang, "report.expect_acknowledge").to_string(),
        Expect::Reply {
            template,
            field: Some((k, v)),
            ..
        } => t!(
            lang,
            "report.expect_reply_field",
            template = template,
            field = k,
            value = v
        ),
        Expect::Reply { template, .. } => t!(lang, "report.expect_reply", template = template),
    }
}

/// A reply the trainee sent: what it references, its template, its fields
/// and when it arrived.
#[derive(Clone, Debug)]
struct Reply {
    references: Vec<MessageId>,
    template: String,
    fields: BTreeMap<String, String>,
    at: Duration,
}

/// The scenario clock: scenario time advances at `speed` times real time,
/// and not at all while paused. Changes rebase it, so earlier time counts at
/// the speed it ran at.
#[derive(Debug, Clone, Copy)]
struct Clock {
    scenario_at_change: Duration,
    real_at_change: Duration,
    speed: f64,
    paused: bool,
}

impl Clock {
    fn scenario_time(&self, now: Duration) -> Duration {
        if self.paused {
            return self.scenario_at_change;
        }
        self.scenario_at_change + now.saturating_sub(self.real_at_change).mul_f64(self.speed)
    }

    fn rebase(&mut self, now: Duration) {
        self.scenario_at_change = self.scenario_time(now);
        self.real_at_change = now;
    }
}

/// What the facilitator sees of the exercise.
#[derive(Clone, Debug, PartialEq)]
pub struct Overview {
    pub scenario_time: Duration,
    pub speed: f64,
    pub paused: bool,
    /// Each inject: id, scenario time, state (pending, sent, delivered, skipped).
    pub injects: Vec<(String, Duration, String)>,
}

/// An HSEEP rating of how an objective was performed. The report proposes
/// one from the expectations met (see [`RatingRule`]); ratings are the
/// evaluators' judgement, so the facilitator confirms or changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rating {
    /// Performed without challenges.
    P,
    /// Performed with some challenges.
    S,
    /// Performed with major challenges.
    M,
    /// Unable to be performed.
    U,
}

impl Rating {
    /// The rating's letter, the same in every language.
    pub fn letter(self) -> &'static str {
        match self {
            Rating::P => "P",
            Rating::S => "S",
            Rating::M => "M",
            Rating::U => "U",
        }
    }

    /// The rating's name and letter in `lang`:
    /// "Performed with Some Challenges (S)".
    pub fn label(self, lang: Language) -> String {
        let name = match self {
            Rating::P => t!(lang, "evaluation.rating_p"),
            Rating::S => t!(lang, "evaluation.rating_s"),
            Rating::M => t!(lang, "evaluation.rating_m"),
            Rating::U => t!(lang, "evaluation.rating_u"),
        };
        t!(
            lang,
            "evaluation.rating",
            name = name,
            letter = self.letter()
        )
    }

    /// The rating after `rating` as the facilitator cycles through them:
    /// none, P, S, M, U, none.
    pub fn cycle(rating: Option<Rating>) -> Option<Rating> {
        match rating {
            None => Some(Rating::P),
            Some(Rating::P) => Some(Rating::S),
            Some(Rating::S) => Some(Rating::M),
            Some(Rating::M) => Some(Rating::U),
            Some(Rating::U) => None,
        }
    }

    /// The rating `rule` proposes when `met` of `scored` expectations were
    /// met in time: all, P; at least `some`, S; at least `major`, M; else
    /// U. None while nothing is scored.
    pub fn propose(rule: RatingRule, met: usize, scored: usize) -> Option<Rating> {
        if scored == 0 {
            return None;
        }
        let share = met as f64 / scored as f64;
        Some(if met >= scored {
            Rating::P
        } else if share >= rule.some {
            Rating::S
        } else if share >= rule.major {
            Rating::M
        } else {
            Rating::U
        })
    }
}

/// What a facilitator's note is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NoteKind {
    #[default]
    Strength,
    Improvement,
}

impl NoteKind {
    /// The other kind (the note entry toggles between them).
    pub fn toggled(self) -> NoteKind {
        match self {
            NoteKind::Strength => NoteKind::Improvement,
            NoteKind::Improvement => NoteKind::Strength,
        }
    }

    /// The kind as the facilitator reads it: "strength".
    pub fn label(self, lang: Language) -> &'static str {
        match self {
            NoteKind::Strength => t!(lang, "evaluation.kind_strength"),
            NoteKind::Improvement => t!(lang, "evaluation.kind_improvement"),
        }
    }
}

/// A note the facilitator typed during the exercise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Scenario time.
    pub at: Duration,
    pub kind: NoteKind,
    pub text: String,
}

/// The facilitator's judgements, which the report includes: a rating per
/// objective (by id) where one was given, and notes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub ratings: BTreeMap<String, Rating>,
    pub notes: Vec<Note>,
}

/// An objective's expectations and the rating proposed from them.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveResult {
    pub objective: Objective,
    /// The outcomes of the expectations of its delivered injects.
    pub scores: Vec<Score>,
    /// Of them, met in time.
    pub met: usize,
    /// Of them, met, late or missed (not pending).
    pub scored: usize,
    /// None: no expectation of it is scored yet ("not rated").
    pub proposed: Option<Rating>,
    /// The evaluator's rating, if the facilitator gave one.
    pub rating: Option<Rating>,
}

/// What an after-action report says beyond the engine's own record.
#[derive(Clone, Copy, Debug)]
pub struct ReportFacts<'a> {
    /// The trainee's operator (or operators).
    pub trainee: &'a str,
    pub date: &'a str,
    /// Where `actions` were read.
    pub source: &'a str,
    /// The trainee operators' actions, one line each.
    pub actions: &'a [String],
    /// Whether the exercise is over: expectations still pending are missed.
    pub finished: bool,
}

#[derive(Debug)]
pub struct Engine {
    pub scenario: Scenario,
    clock: Clock,
    skipped: HashSet<String>,
    issued: HashSet<String>,
    delivered: HashMap<String, (MessageId, Duration)>,
    acknowledged: HashMap<MessageId, (String, Duration)>,
    replies: Vec<Reply>,
    /// What happened, at its scenario time.
    timeline: Vec<(Duration, Happened)>,
    /// The wall-clock time the engine started, for the report.
    started: jiff::Timestamp,
    /// The facilitator's ratings and notes, for the report (the white
    /// cell keeps them and sets them here).
    pub evaluation: Evaluation,
}

impl Engine {
    pub fn new(scenario: Scenario) -> Engine {
        Engine {
            clock: Clock {
                scenario_at_change: Duration::ZERO,
                real_at_change: Duration::ZERO,
                speed: scenario.time_compression,
                paused: false,
            },
            skipped: HashSet::new(),
            scenario,
            issued: HashSet::new(),
            delivered: HashMap::new(),
            acknowledged: HashMap::new(),
            replies: Vec::new(),
            timeline: Vec::new(),
            started: jiff::Timestamp::now(),
            evaluation: Evaluation::default(),
        }
    }

    /// What must be sent at real time `now`: injects whose time has come,
    /// and follow-ups whose condition holds. Nothing while paused.
    pub fn due(&mut self, now: Duration) -> Vec<Send> {
        let mut out = Vec::new();
        if self.clock.paused {
            return out;
        }
        let scenario_now = self.clock.scenario_time(now);
        for inject in &self.scenario.injects {
            if !self.issued.contains(&inject.id) && inject.at <= scenario_now {
                self.issued.insert(inject.id.clone());
                self.timeline.push((
                    scenario_now,
                    Happened::InjectSent {
                        inject: inject.id.clone(),
                        precedence: inject.precedence,
                        template: inject.template.clone(),
                    },
                ));
                out.push(Send {
                    inject: inject.id.clone(),
                    template: inject.template.clone(),
                    precedence: inject.precedence,
                    fields: inject.fields.clone(),
                    text: inject.text.clone(),
                    language: inject.language,
                    follow_up: false,
                });
            }
            let key = format!("{}/follow-up", inject.id);
            if let (Some(f), Some((message, at))) =
                (&inject.follow_up, self.delivered.get(&inject.id))
                && !self.issued.contains(&key)
                && !self.acknowledged.contains_key(message)
                && scenario_now >= *at + f.after
            {
                self.issued.insert(key.clone());
                self.timeline.push((
                    scenario_now,
                    Happened::FollowUpSent {
                        inject: inject.id.clone(),
                        after: f.after,
                    },
                ));
                out.push(Send {
                    inject: key,
                    template: f.template.clone(),
                    precedence: f.precedence,
                    fields: f.fields.clone(),
                    text: f.text.clone(),
                    language: inject.language,
                    follow_up: true,
                });
            }
        }
        out
    }

    /// A trainee's mirror of the white cell's engine: the scenario clock
    /// is at `scenario` at real time `now` (an inject timed `scenario`
    /// just arrived), and runs on from there.
    pub fn sync(&mut self, now: Duration, scenario: Duration) {
        self.clock.scenario_at_change = scenario;
        self.clock.real_at_change = now;
        self.clock.paused = false;
    }

    /// Facilitator: stops the scenario clock (and follow-ups) at `now`.
    pub fn pause(&mut self, now: Duration) {
        if !self.clock.paused {
            self.clock.rebase(now);
            self.clock.paused = true;
            self.timeline
                .push((self.clock.scenario_time(now), Happened::Paused));
        }
    }

    /// Facilitator: starts the scenario clock again.
    pub fn resume(&mut self, now: Duration) {
        if self.clock.paused {
            self.clock.real_at_change = now;
            self.clock.paused = false;
            self.timeline
                .push((self.clock.scenario_time(now), Happened::Resumed));
        }
    }

    /// Facilitator: runs the scenario clock `speed` times faster than real
    /// time from `now` on (0.1 to 60).
    pub fn set_speed(&mut self, now: Duration, speed: f64) {
        let speed = speed.clamp(0.1, 60.0);
        self.clock.rebase(now);
        self.clock.speed = speed;
        self.timeline
            .push((self.clock.scenario_time(now), Happened::Speed(speed)));
    }

    /// Facilitator: the next inject not yet sent will not be sent, and is
    /// not scored. Returns its id.
    pub fn skip_next(&mut self, now: Duration) -> Option<String> {
        let next = self
            .scenario
            .injects
            .iter()
            .find(|i| !self.issued.contains(&i.id))?
            .id
            .clone();
        self.issued.insert(next.clone());
        self.skipped.insert(next.clone());
        self.timeline.push((
            self.clock.scenario_time(now),
            Happened::Skipped(next.clone()),
        ));
        Some(next)
    }

    /// Facilitator: an ad-hoc message sent outside the timeline (not scored).
    pub fn note_ad_hoc(&mut self, now: Duration, what: &str) {
        self.timeline.push((
            self.clock.scenario_time(now),
            Happened::AdHoc(what.to_string()),
        ));
    }

    /// The scenario clock and each inject's state, for the facilitator.
    pub fn overview(&self, now: Duration) -> Overview {
        Overview {
            scenario_time: self.clock.scenario_time(now),
            speed: self.clock.speed,
            paused: self.clock.paused,
            injects: self
                .scenario
                .injects
                .iter()
                .map(|i| {
                    let state = if self.skipped.contains(&i.id) {
                        InjectState::Skipped
                    } else if self.delivered.contains_key(&i.id) {
                        InjectState::Delivered
                    } else if self.issued.contains(&i.id) {
                        InjectState::Sent
                    } else {
                        InjectState::Pending
                    };
                    (i.id.clone(), i.at, state.id().to_string())
                })
                .collect(),
        }
    }

    /// Records what happened at real time `at` (the exercise's elapsed
    /// time); the engine keeps it in scenario time.
    pub fn record(&mut self, input: Input) {
        let input = match input {
            Input::Delivered {
                inject,
                message,
                at,
            } => Input::Delivered {
                inject,
                message,
                at: self.clock.scenario_time(at),
            },
            Input::Acknowledged { message, by, at } => Input::Acknowledged {
                message,
                by,
                at: self.clock.scenario_time(at),
            },
            Input::Replied {
                references,
                template,
                fields,
                at,
            } => Input::Replied {
                references,
                template,
                fields,
                at: self.clock.scenario_time(at),
            },
        };
        match input {
            Input::Delivered {
                inject,
                message,
                at,
            } => {
                self.timeline
                    .push((at, Happened::Delivered(inject.clone())));
                self.delivered.entry(inject).or_insert((message, at));
            }
            Input::Acknowledged { message, by, at } => {
                if let Some((inject, _)) = self.delivered.iter().find(|(_, (m, _))| *m == message) {
                    self.timeline.push((
                        at,
                        Happened::Acknowledged {
                            inject: inject.clone(),
                            by: by.clone(),
                        },
                    ));
                }
                self.acknowledged.entry(message).or_insert((by, at));
            }
            Input::Replied {
                references,
                template,
                fields,
                at,
            } => {
                let to: Vec<&String> = self
                    .delivered
                    .iter()
                    .filter(|(_, (m, _))| references.contains(m))
                    .map(|(i, _)| i)
                    .collect();
                self.timeline.push((
                    at,
                    Happened::Replied {
                        template: template.clone(),
                        to: format!("{to:?}"),
                    },
                ));
                self.replies.push(Reply {
                    references,
                    template,
                    fields,
                    at,
                });
            }
        }
    }

    /// Every expectation of every delivered inject, judged at `now`.
    pub fn scores(&self, now: Duration, finished: bool) -> Vec<Score> {
        let now = self.clock.scenario_time(now);
        let mut out = Vec::new();
        for inject in &self.scenario.injects {
            let Some((message, delivered_at)) = self.delivered.get(&inject.id) else {
                continue;
            };
            for (n, e) in inject.expect.iter().enumerate() {
                let (within, done_at) = match e {
                    Expect::Acknowledge { within } => {
                        (*within, self.acknowledged.get(message).map(|(_, at)| *at))
                    }
                    Expect::Reply {
                        template,
                        within,
                        field,
                    } => {
                        let fits = |r: &&Reply| {
                            r.references.contains(message)
                                && r.template == *template
                                && field
                                    .as_ref()
                                    .is_none_or(|(k, v)| r.fields.get(k) == Some(v))
                        };
                        (*within, self.replies.iter().find(fits).map(|r| r.at))
                    }
                };
                let outcome = match done_at {
                    Some(at) => {
                        let after = at.saturating_sub(*delivered_at);
                        if after <= within {
                            Outcome::Met { after }
                        } else {
                            Outcome::Late { after }
                        }
                    }
                    None if finished || now > *delivered_at + within => Outcome::Missed,
                    None => Outcome::Pending,
                };
                out.push(Score {
                    inject: inject.id.clone(),
                    expectation: e.clone(),
                    objective: inject.objective_of(n).map(str::to_string),
                    within,
                    outcome,
                });
            }
        }
        out
    }

    /// Each objective with its expectations' live state at real time `now`,
    /// in scenario time; expectations of no objective come last.
    pub fn progress(&self, now: Duration) -> Vec<ObjectiveProgress> {
        let scenario_now = self.clock.scenario_time(now);
        let scores = self.scores(now, false);
        let state = |inject: &super::scenario::Inject, i: usize| -> Progress {
            if self.skipped.contains(&inject.id) {
                return Progress::Skipped;
            }
            let Some((_, delivered_at)) = self.delivered.get(&inject.id) else {
                return Progress::Upcoming { at: inject.at };
            };
            let score = scores.iter().filter(|s| s.inject == inject.id).nth(i);
            match score.map(|s| &s.outcome) {
                Some(Outcome::Met { after }) => Progress::Met { after: *after },
                Some(Outcome::Late { after }) => Progress::Late { after: *after },
                Some(Outcome::Missed) => Progress::Missed,
                _ => Progress::Pending {
                    left: (*delivered_at + score.map_or(Duration::ZERO, |s| s.within))
                        .saturating_sub(scenario_now),
                },
            }
        };
        // Each expectation under the objective it serves: its own, else
        // its inject's.
        let of = |id: Option<&str>| -> Vec<ExpectationProgress> {
            self.scenario
                .injects
                .iter()
                .flat_map(|inject| {
                    inject
                        .expect
                        .iter()
                        .enumerate()
                        .filter(move |(n, _)| inject.objective_of(*n) == id)
                        .map(move |(n, e)| ExpectationProgress {
                            inject: inject.id.clone(),
                            expectation: e.clone(),
                            progress: state(inject, n),
                        })
                })
                .collect()
        };
        let mut out: Vec<ObjectiveProgress> = self
            .scenario
            .objectives
            .iter()
            .map(|o| ObjectiveProgress {
                id: Some(o.id.clone()),
                text: o.text.clone(),
                expectations: of(Some(&o.id)),
            })
            .collect();
        let rest = of(None);
        if !rest.is_empty() {
            out.push(ObjectiveProgress {
                id: None,
                text: String::new(),
                expectations: rest,
            });
        }
        out
    }

    /// Each objective with the outcomes of its expectations at real time
    /// `now` (`finished`: pending ones are missed), the rating proposed
    /// from them, and the facilitator's rating.
    pub fn objective_results(&self, now: Duration, finished: bool) -> Vec<ObjectiveResult> {
        let scores = self.scores(now, finished);
        self.scenario
            .objectives
            .iter()
            .map(|o| {
                let scores: Vec<Score> = scores
                    .iter()
                    .filter(|s| s.objective.as_deref() == Some(o.id.as_str()))
                    .cloned()
                    .collect();
                let met = scores
                    .iter()
                    .filter(|s| matches!(s.outcome, Outcome::Met { .. }))
                    .count();
                let scored = scores
                    .iter()
                    .filter(|s| s.outcome != Outcome::Pending)
                    .count();
                ObjectiveResult {
                    proposed: Rating::propose(o.rating, met, scored),
                    rating: self.evaluation.ratings.get(&o.id).copied(),
                    objective: o.clone(),
                    scores,
                    met,
                    scored,
                }
            })
            .collect()
    }

    /// Whether the exercise is over: every inject delivered (or skipped)
    /// and every expectation met or missed.
    pub fn finished(&self, now: Duration) -> bool {
        let all_delivered = self
            .scenario
            .injects
            .iter()
            .all(|i| self.delivered.contains_key(&i.id) || self.skipped.contains(&i.id));
        all_delivered
            && self
                .scores(now, false)
                .iter()
                .all(|s| s.outcome != Outcome::Pending)
    }

    /// The after-action report, in Markdown, in `lang`.
    pub fn report(&self, lang: Language, now: Duration, facts: &ReportFacts<'_>) -> String {
        let ReportFacts {
            trainee,
            date,
            source,
            actions,
            finished,
        } = *facts;
        let mut r = String::new();
        let s = &self.scenario;
        let _ = writeln!(r, "# {}\n", t!(lang, "report.title", title = s.title));
        if !finished {
            let _ = writeln!(r, "*{}*\n", t!(lang, "report.interim"));
        }
        let _ = writeln!(r, "**{}**\n", t!(lang, "report.exercise"));
        let _ = writeln!(r, "- {}", t!(lang, "report.scenario", id = s.id));
        let _ = writeln!(r, "- {}", t!(lang, "report.date", date = date));
        let _ = writeln!(
            r,
            "- {}",
            t!(
                lang,
                "report.trainee_station",
                station = s.trainee,
                operator = trainee
            )
        );
        let _ = writeln!(
            r,
            "- {}",
            t!(lang, "report.counterpart", station = s.counterpart)
        );
        let _ = writeln!(
            r,
            "- {}",
            t!(
                lang,
                "report.compression",
                speed = s.time_compression,
                ran = duration(lang, self.clock.scenario_time(now))
            )
        );
        let _ = writeln!(
            r,
            "- {}\n",
            t!(
                lang,
                "report.wall_clock",
                start = self.started.strftime("%Y-%m-%d %H:%M:%S"),
                end = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S")
            )
        );
        if !s.objectives.is_empty() {
            let _ = writeln!(r, "## {}\n", t!(lang, "report.objectives"));
            for o in &s.objectives {
                let _ = writeln!(r, "- {}", o.text);
            }
            let _ = writeln!(r);
        }
        let _ = writeln!(r, "## {}\n", t!(lang, "report.injects"));
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} |",
            t!(lang, "report.column_inject"),
            t!(lang, "report.column_expectation"),
            t!(lang, "report.column_objective"),
            t!(lang, "report.column_result"),
            t!(lang, "report.column_time_taken")
        );
        let _ = writeln!(r, "| --- | --- | --- | --- | --- |");
        let scores = self.scores(now, finished);
        for inject in &s.injects {
            if self.skipped.contains(&inject.id) {
                let _ = writeln!(
                    r,
                    "| `{}` | — | — | {} | — |",
                    inject.id,
                    t!(lang, "report.skipped")
                );
                continue;
            }
            if !self.delivered.contains_key(&inject.id) {
                let _ = writeln!(
                    r,
                    "| `{}` | — | — | {} | — |",
                    inject.id,
                    t!(lang, "report.not_delivered")
                );
                continue;
            }
            for sc in scores.iter().filter(|sc| sc.inject == inject.id) {
                let (result, taken) = match &sc.outcome {
                    Outcome::Met { after } => (t!(lang, "report.met"), duration(lang, *after)),
                    Outcome::Late { after } => (t!(lang, "report.late"), duration(lang, *after)),
                    Outcome::Missed => (t!(lang, "report.missed"), "—".to_string()),
                    Outcome::Pending => (t!(lang, "report.pending"), "—".to_string()),
                };
                let _ = writeln!(
                    r,
                    "| `{}` | {} | {} | {result} | {taken} |",
                    sc.inject,
                    expectation(lang, &sc.expectation),
                    t!(lang, "report.within", within = duration(lang, sc.within))
                );
            }
        }
        let met = scores
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Met { .. }))
            .count();
        let _ = writeln!(
            r,
            "\n{}\n",
            t!(lang, "report.met_count", met = met, count = scores.len())
        );
        let improvements = self.evaluation_sections(&mut r, lang, now, finished);
        let _ = writeln!(r, "## {}\n", t!(lang, "report.timeline"));
        let mut timeline = self.timeline.clone();
        timeline.sort_by_key(|(t, _)| *t);
        for (t, what) in timeline {
            let _ = writeln!(r, "- {} {}", format_offset(t), what.text(lang));
        }
        let _ = writeln!(r, "\n## {}\n", t!(lang, "report.actions", source = source));
        if actions.is_empty() {
            let _ = writeln!(r, "- {}", t!(lang, "report.none"));
        }
        for a in actions {
            let _ = writeln!(r, "- {a}");
        }
        improvement_plan(&mut r, lang, &improvements);
        r
    }

    /// The report's evaluation: each objective with its proposed and
    /// evaluator's ratings, then strengths and areas for improvement (from
    /// the expectations and the facilitator's notes). Returns the areas for
    /// improvement, for the improvement plan.
    fn evaluation_sections(
        &self,
        r: &mut String,
        lang: Language,
        now: Duration,
        finished: bool,
    ) -> Vec<String> {
        let results = self.objective_results(now, finished);
        if !results.is_empty() {
            let _ = writeln!(r, "## {}\n", t!(lang, "evaluation.by_objective"));
            let _ = writeln!(r, "*{}*\n", t!(lang, "evaluation.ratings_note"));
        }
        for o in &results {
            let _ = writeln!(
                r,
                "### {}\n",
                t!(
                    lang,
                    "evaluation.objective",
                    id = o.objective.id,
                    text = o.objective.text
                )
            );
            if let Some(capability) = &o.objective.capability {
                let _ = writeln!(
                    r,
                    "- {}",
                    t!(lang, "evaluation.capability", capability = capability)
                );
            }
            let _ = writeln!(
                r,
                "- {}",
                t!(
                    lang,
                    "evaluation.met_in_time",
                    met = o.met,
                    scored = o.scored
                )
            );
            let proposed = match o.proposed {
                Some(rating) => rating.label(lang),
                None => t!(lang, "evaluation.not_rated").to_string(),
            };
            let _ = writeln!(
                r,
                "- {}",
                t!(lang, "evaluation.proposed", rating = proposed)
            );
            if let Some(rating) = o.rating {
                let _ = writeln!(
                    r,
                    "- **{}**",
                    t!(lang, "evaluation.evaluator", rating = rating.label(lang))
                );
            }
            let _ = writeln!(r);
        }
        let mut strengths = Vec::new();
        let mut improvements = Vec::new();
        for sc in self.scores(now, finished) {
            let (inject, expectation, within) = (
                sc.inject.as_str(),
                expectation(lang, &sc.expectation),
                t!(lang, "report.within", within = duration(lang, sc.within)),
            );
            match sc.outcome {
                Outcome::Met { after } => strengths.push(t!(
                    lang,
                    "evaluation.item_met",
                    inject = inject,
                    expectation = expectation,
                    within = within,
                    taken = duration(lang, after)
                )),
                Outcome::Late { after } => improvements.push(t!(
                    lang,
                    "evaluation.item_late",
                    inject = inject,
                    expectation = expectation,
                    within = within,
                    taken = duration(lang, after)
                )),
                Outcome::Missed => improvements.push(t!(
                    lang,
                    "evaluation.item_missed",
                    inject = inject,
                    expectation = expectation,
                    within = within
                )),
                Outcome::Pending => {}
            }
        }
        for note in &self.evaluation.notes {
            let item = t!(
                lang,
                "evaluation.item_note",
                at = format_offset(note.at),
                text = markdown_text(&note.text)
            );
            match note.kind {
                NoteKind::Strength => strengths.push(item),
                NoteKind::Improvement => improvements.push(item),
            }
        }
        for (heading, items) in [
            (t!(lang, "evaluation.strengths"), &strengths),
            (t!(lang, "evaluation.improvements"), &improvements),
        ] {
            let _ = writeln!(r, "## {heading}\n");
            if items.is_empty() {
                let _ = writeln!(r, "- {}", t!(lang, "report.none"));
            }
            for item in items {
                let _ = writeln!(r, "- {item}");
            }
            let _ = writeln!(r);
        }
        improvements
    }
}

/// Untrusted text (a facilitator's note) as literal Markdown on one line:
/// what Markdown would read as markup is escaped, and line breaks and
/// control characters are made harmless.
fn markdown_text(text: &str) -> String {
    let line = crate::sanitize::inert(&text.replace(['\r', '\n', '\t'], " "));
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a Markdown table cell: every `|` not already escaped is.
fn table_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escaped = false;
    for c in text.chars() {
        if c == '|' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    out
}

/// The improvement plan that ends the report: a row per area for
/// improvement, its corrective action, owner and due date left blank for
/// the organisation to fill in.
fn improvement_plan(r: &mut String, lang: Language, improvements: &[String]) {
    let _ = writeln!(r, "\n## {}\n", t!(lang, "evaluation.improvement_plan"));
    if improvements.is_empty() {
        let _ = writeln!(r, "- {}", t!(lang, "report.none"));
        return;
    }
    let _ = writeln!(
        r,
        "| {} | {} | {} | {} |",
        t!(lang, "evaluation.column_issue"),
        t!(lang, "evaluation.column_corrective_action"),
        t!(lang, "evaluation.column_owner"),
        t!(lang, "evaluation.column_due")
    );
    let _ = writeln!(r, "| --- | --- | --- | --- |");
    for issue in improvements {
        let _ = writeln!(r, "| {} |  |  |  |", table_cell(issue));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ReportFacts<'static> {
        ReportFacts {
            trainee: "op",
            date: "2026-11-26",
            source: "audit",
            actions: &[],
            finished: true,
        }
    }
    use crate::tabletop::scenario;
    use crate::templates::Catalog;
    use std::path::Path;

    const SCENARIO: &str = r#"
id = "t"
title = "Test"
time_compression = 2.0
[[injects]]
id = "first"
at = "00:20"
template = "general"
precedence = "FLASH"
fields = { subject = "s", text = "t" }
expect = [ { kind = "acknowledge", within = "30s" }, { kind = "reply", template = "response", within = "2m", field = "disposition", value = "full" } ]
follow_up = { after = "40s", template = "general", fields = { subject = "reminder", text = "please acknowledge" } }
[[injects]]
id = "second"
at = "01:00"
template = "general"
fields = { subject = "s2", text = "t2" }
expect = [ { kind = "acknowledge", within = "10s" } ]
"#;

    fn engine() -> Engine {
        Engine::new(
            scenario::parse(Path::new("t.toml"), SCENARIO, Catalog::builtin()).expect("valid"),
        )
    }

    fn id(n: u128) -> MessageId {
        MessageId(uuid::Uuid::from_u128(n))
    }

    fn run(events: &[(u64, Input)]) -> String {
        let mut e = engine();
        let mut sent = Vec::new();
        for t in 0..=200u64 {
            let now = Duration::from_secs(t);
            sent.extend(e.due(now).into_iter().map(|s| (t, s.inject)));
            for (at, input) in events.iter().filter(|(at, _)| *at == t) {
                let _ = at;
                e.record(input.clone());
            }
        }
        format!(
            "{sent:?}\n{}",
            e.report(Language::EN, Duration::from_secs(200), &facts())
        )
    }

    #[test]
    fn same_events_same_report_and_scores() {
        let events = vec![
            (
                10,
                Input::Delivered {
                    inject: "first".into(),
                    message: id(1),
                    at: Duration::from_secs(10),
                },
            ),
            (
                20,
                Input::Acknowledged {
                    message: id(1),
                    by: "op".into(),
                    at: Duration::from_secs(20),
                },
            ),
            (
                55,
                Input::Replied {
                    references: vec![id(1)],
                    template: "response".into(),
                    fields: [("disposition".to_string(), "full".to_string())].into(),
                    at: Duration::from_secs(55),
                },
            ),
            (
                31,
                Input::Delivered {
                    inject: "second".into(),
                    message: id(2),
                    at: Duration::from_secs(31),
                },
            ),
        ];
        let a = run(&events);
        assert_eq!(a, run(&events));
        assert!(
            a.contains("| `first` | acknowledge | within 30s | MET | 20s |"),
            "{a}"
        );
        assert!(
            a.contains(
                "| `first` | reply with `response`, disposition = full | within 2m | MET | 1m 30s |"
            ),
            "{a}"
        );
        assert!(
            a.contains("| `second` | acknowledge | within 10s | MISSED | — |"),
            "{a}"
        );
        assert!(
            !a.contains("follow-up"),
            "acknowledged in time: no follow-up\n{a}"
        );
        assert!(
            a.contains("(10, \"first\")") && a.contains("(30, \"second\")"),
            "compressed timeline: {a}"
        );
    }

    #[test]
    fn not_finished_until_delivered_and_settled() {
        let mut e = engine();
        let _ = e.due(Duration::from_secs(31));
        assert!(
            !e.finished(Duration::from_secs(31)),
            "issued but not delivered"
        );
        e.record(Input::Delivered {
            inject: "first".into(),
            message: id(1),
            at: Duration::from_secs(32),
        });
        e.record(Input::Delivered {
            inject: "second".into(),
            message: id(2),
            at: Duration::from_secs(32),
        });
        assert!(!e.finished(Duration::from_secs(33)), "expectations pending");
        e.record(Input::Acknowledged {
            message: id(1),
            by: "op".into(),
            at: Duration::from_secs(34),
        });
        e.record(Input::Acknowledged {
            message: id(2),
            by: "op".into(),
            at: Duration::from_secs(34),
        });
        assert!(
            !e.finished(Duration::from_secs(35)),
            "the reply is still pending"
        );
        assert!(
            e.finished(Duration::from_secs(400)),
            "the reply window has passed: missed"
        );
    }

    #[test]
    fn pause_speed_and_skip() {
        let mut e = engine();
        // Compression 2: `first` (scenario 00:20) is due at 10 s real.
        assert!(e.due(Duration::from_secs(5)).is_empty());
        e.pause(Duration::from_secs(5));
        assert!(
            e.due(Duration::from_secs(60)).is_empty(),
            "nothing while paused"
        );
        e.resume(Duration::from_secs(60));
        assert!(
            e.due(Duration::from_secs(64)).is_empty(),
            "scenario time 18 s"
        );
        assert_eq!(
            e.due(Duration::from_secs(65)).len(),
            1,
            "scenario time 20 s"
        );
        e.set_speed(Duration::from_secs(65), 10.0);
        // `second` is at scenario 60 s: 40 s of scenario time at 10x is 4 s.
        assert!(e.due(Duration::from_secs(68)).is_empty());
        assert_eq!(
            e.skip_next(Duration::from_secs(68)).as_deref(),
            Some("second")
        );
        assert!(
            e.due(Duration::from_secs(70)).is_empty(),
            "skipped: never sent"
        );
        let o = e.overview(Duration::from_secs(70));
        assert_eq!(o.injects[1].2, "skipped");
        assert!(!o.paused);
        let report = e.report(Language::EN, Duration::from_secs(70), &facts());
        assert!(
            report.contains("| `second` | — | — | skipped by the facilitator (not scored) | — |"),
            "{report}"
        );
        assert!(report.contains("paused by the facilitator"), "{report}");
    }

    #[test]
    fn speeding_up_brings_injects_forward() {
        let mut e = engine();
        e.set_speed(Duration::ZERO, 20.0);
        assert_eq!(
            e.due(Duration::from_secs(1)).len(),
            1,
            "scenario 00:20 at 20x is 1 s"
        );
        assert_eq!(
            e.due(Duration::from_secs(3)).len(),
            1,
            "scenario 01:00 at 20x is 3 s"
        );
    }

    #[test]
    fn late_and_follow_up_and_undelivered() {
        let events = vec![
            (
                10,
                Input::Delivered {
                    inject: "first".into(),
                    message: id(1),
                    at: Duration::from_secs(10),
                },
            ),
            (
                60,
                Input::Acknowledged {
                    message: id(1),
                    by: "op".into(),
                    at: Duration::from_secs(60),
                },
            ),
        ];
        let a = run(&events);
        assert!(
            a.contains("| `first` | acknowledge | within 30s | LATE | 1m 40s |"),
            "{a}"
        );
        assert!(
            a.contains("first/follow-up"),
            "not acknowledged after 40s: reminder sent\n{a}"
        );
        assert!(
            a.contains("| `second` | — | — | not delivered (not scored) | — |"),
            "{a}"
        );
    }

    /// One inject whose acknowledgement serves the inject's objective and
    /// whose reply names its own: `reply` is false for the control, the
    /// same scenario without the reply's `objective`.
    fn two_objectives(reply: bool) -> Engine {
        let own = if reply { ", objective = \"reply\"" } else { "" };
        let text = format!(
            r#"
id = "two"
title = "Two objectives"
[[objectives]]
id = "ack"
text = "Acknowledge"
[[objectives]]
id = "reply"
text = "Reply"
[[injects]]
id = "question"
at = "00:10"
template = "general"
fields = {{ subject = "s", text = "t" }}
objective = "ack"
expect = [ {{ kind = "acknowledge", within = "30s" }}, {{ kind = "reply", template = "response", within = "1m"{own} }} ]
"#
        );
        let s = scenario::parse(Path::new("two.toml"), &text, Catalog::builtin()).expect("valid");
        let mut e = Engine::new(s);
        let _ = e.due(Duration::from_secs(10));
        e.record(Input::Delivered {
            inject: "question".into(),
            message: id(1),
            at: Duration::from_secs(10),
        });
        // Acknowledged in time; the reply never comes.
        e.record(Input::Acknowledged {
            message: id(1),
            by: "op".into(),
            at: Duration::from_secs(20),
        });
        e
    }

    /// Each objective's expectations on the panel, as `inject: kind`.
    fn panel(e: &Engine, now: u64) -> Vec<(Option<String>, Vec<String>)> {
        e.progress(Duration::from_secs(now))
            .into_iter()
            .map(|o| {
                let kinds = o
                    .expectations
                    .iter()
                    .map(|x| {
                        let kind = match x.expectation {
                            Expect::Acknowledge { .. } => "acknowledge",
                            Expect::Reply { .. } => "reply",
                        };
                        format!("{}: {kind}", x.inject)
                    })
                    .collect();
                (o.id, kinds)
            })
            .collect()
    }

    #[test]
    fn an_expectation_serves_its_own_objective() {
        let e = two_objectives(true);
        let q = &e.scenario.injects[0];
        assert_eq!(
            (q.objective_of(0), q.objective_of(1), q.objective_of(2)),
            (Some("ack"), Some("reply"), Some("ack")),
            "its own, else the inject's"
        );
        assert_eq!(
            panel(&e, 30),
            [
                (
                    Some("ack".into()),
                    vec!["question: acknowledge".to_string()]
                ),
                (Some("reply".into()), vec!["question: reply".to_string()]),
            ]
        );
        let progress = e.progress(Duration::from_secs(30));
        assert_eq!(
            progress[0].expectations[0].progress,
            Progress::Met {
                after: Duration::from_secs(10)
            }
        );
        assert_eq!(
            progress[1].expectations[0].progress,
            Progress::Pending {
                left: Duration::from_secs(40)
            },
            "the reply's own state, under its own objective"
        );
        let results = e.objective_results(Duration::from_secs(200), true);
        let rated: Vec<(&str, usize, usize, Option<Rating>)> = results
            .iter()
            .map(|r| (r.objective.id.as_str(), r.met, r.scored, r.proposed))
            .collect();
        assert_eq!(
            rated,
            [
                ("ack", 1, 1, Some(Rating::P)),
                ("reply", 0, 1, Some(Rating::U))
            ]
        );
        assert!(
            matches!(results[1].scores[0].expectation, Expect::Reply { .. }),
            "{results:?}"
        );
        let report = e.report(Language::EN, Duration::from_secs(200), &facts());
        assert!(
            report
                .contains("Objective `reply`: Reply\n\n- expectations met in time: 0 of 1 scored"),
            "{report}"
        );

        // Control: without its own objective the reply serves the inject's.
        let control = two_objectives(false);
        assert_eq!(control.scenario.injects[0].objective_of(1), Some("ack"));
        assert_eq!(
            panel(&control, 30),
            [
                (
                    Some("ack".into()),
                    vec![
                        "question: acknowledge".to_string(),
                        "question: reply".to_string()
                    ]
                ),
                (Some("reply".into()), vec![]),
            ]
        );
        let results = control.objective_results(Duration::from_secs(200), true);
        let rated: Vec<(&str, usize, usize, Option<Rating>)> = results
            .iter()
            .map(|r| (r.objective.id.as_str(), r.met, r.scored, r.proposed))
            .collect();
        assert_eq!(
            rated,
            [("ack", 1, 2, Some(Rating::M)), ("reply", 0, 0, None)]
        );
    }
}
