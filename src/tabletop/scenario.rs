//! Exercise scenarios: a title, objectives, time compression and a timeline
//! of injects, in the manner of a Master Scenario Events List. Loaded from
//! TOML with every problem located by file, line and key.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::{Precedence, parse_duration};
use crate::problem::Problem;
use crate::templates::Catalog;

/// What the trainee is expected to do about an inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Acknowledge the inject within this long.
    Acknowledge { within: Duration },
    /// Reply (a message referencing the inject) with this template within
    /// this long, optionally with a field set to a value.
    Reply {
        template: String,
        within: Duration,
        field: Option<(String, String)>,
    },
}

/// A conditional follow-up: if the trainee has not acknowledged the inject
/// after `after`, the counterpart sends another message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUp {
    pub after: Duration,
    pub template: String,
    pub precedence: Precedence,
    pub fields: BTreeMap<String, String>,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inject {
    pub id: String,
    /// Scenario time (before compression).
    pub at: Duration,
    pub template: String,
    pub precedence: Precedence,
    pub fields: BTreeMap<String, String>,
    pub text: String,
    /// The language its free text is written in (default English).
    pub language: Option<crate::domain::Language>,
    pub expect: Vec<Expect>,
    /// Beside each of `expect`, the objective (by id) that expectation
    /// names itself (`objective` in the expectation), overriding the
    /// inject's; None where it names none. As long as `expect`; read it
    /// through [`Inject::objective_of`].
    pub expect_objectives: Vec<Option<String>>,
    pub follow_up: Option<FollowUp>,
    /// The objective (by id) its expectations serve, if any, unless one
    /// names its own.
    pub objective: Option<String>,
    /// What the inject says when the trainee plays another side
    /// (`[injects.for.MOSCOW]`): the same template and expectations,
    /// written from the other side.
    pub sides: BTreeMap<String, Wording>,
}

impl Inject {
    /// The objective (by id) that expectation `n` serves: its own if it
    /// names one, else the inject's.
    pub fn objective_of(&self, n: usize) -> Option<&str> {
        self.expect_objectives
            .get(n)
            .and_then(Option::as_deref)
            .or(self.objective.as_deref())
    }
}

/// An inject as written for one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wording {
    pub fields: BTreeMap<String, String>,
    pub text: String,
    pub language: Option<crate::domain::Language>,
    pub follow_up: Option<FollowUp>,
}

/// What the exercise sets out to test, as HSEEP writes objectives, with
/// the capability it exercises and how a rating is proposed for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// `1`, `2`, … for objectives written as plain text.
    pub id: String,
    pub text: String,
    pub capability: Option<String>,
    pub rating: RatingRule,
}

/// How the report proposes an HSEEP rating from the share of an
/// objective's expectations met in time: all of them, "performed without
/// challenges"; at least `some`, "with some challenges"; at least `major`,
/// "with major challenges"; else "unable to be performed". Evaluators
/// confirm or change it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatingRule {
    pub some: f64,
    pub major: f64,
}

impl Default for RatingRule {
    fn default() -> Self {
        RatingRule {
            some: 0.75,
            major: 0.25,
        }
    }
}

/// Why a scenario cannot be played from a side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CastError {
    #[error("scenario `{scenario}` cannot be played as {side}; its sides are {sides}")]
    NotASide {
        scenario: String,
        side: String,
        sides: String,
    },
    #[error("inject `{inject}` is not written for {side}")]
    NotWritten { inject: String, side: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub description: String,
    pub objectives: Vec<Objective>,
    /// Scenario minutes per real minute: 2.0 runs twice as fast.
    pub time_compression: f64,
    pub counterpart: String,
    pub trainee: String,
    /// The sides a trainee may play (`sides`): the trainee's, and the
    /// counterpart's where every inject is written for it too.
    pub sides: Vec<String>,
    pub injects: Vec<Inject>,
}

impl Scenario {
    /// The scenario with the trainee playing `side`: the counterpart is
    /// the other side, and each inject says what it says for `side`.
    pub fn cast(&self, side: &str) -> Result<Scenario, CastError> {
        if side == self.trainee {
            return Ok(self.clone());
        }
        if !self.sides.iter().any(|s| s == side) {
            return Err(CastError::NotASide {
                scenario: self.id.clone(),
                side: side.to_string(),
                sides: self.sides.join(", "),
            });
        }
        let mut cast = self.clone();
        cast.counterpart = std::mem::replace(&mut cast.trainee, side.to_string());
        for inject in &mut cast.injects {
            let w = inject
                .sides
                .get(side)
                .cloned()
                .ok_or_else(|| CastError::NotWritten {
                    inject: inject.id.clone(),
                    side: side.to_string(),
                })?;
            inject.fields = w.fields;
            inject.text = w.text;
            inject.language = w.language;
            inject.follow_up = w.follow_up;
        }
        Ok(cast)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    objectives: Vec<Spanned<RawObjective>>,
    #[serde(default)]
    sides: Vec<Spanned<String>>,
    #[serde(default = "one")]
    time_compression: Spanned<f64>,
    #[serde(default = "moscow")]
    counterpart: Spanned<String>,
    #[serde(default = "washington")]
    trainee: Spanned<String>,
    injects: Vec<RawInject>,
}

fn one() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}
fn moscow() -> Spanned<String> {
    Spanned::new(0..0, "MOSCOW".into())
}
fn washington() -> Spanned<String> {
    Spanned::new(0..0, "WASHINGTON".into())
}

/// An objective: plain text, or a table with an id, a capability and a
/// rating rule. (No spans inside: toml cannot give them through an
/// untagged enum; the objective's own span locates its problems.)
#[derive(Deserialize)]
#[serde(untagged)]
enum RawObjective {
    Text(String),
    Table(RawObjectiveTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjectiveTable {
    id: String,
    text: String,
    capability: Option<String>,
    rating: Option<RawRating>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawRating {
    some: f64,
    major: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    id: Spanned<String>,
    at: Spanned<String>,
    template: Spanned<String>,
    precedence: Option<Spanned<String>>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    text: String,
    language: Option<Spanned<String>>,
    #[serde(default)]
    expect: Vec<RawExpect>,
    follow_up: Option<RawFollowUp>,
    objective: Option<Spanned<String>>,
    #[serde(default, rename = "for")]
    sides: BTreeMap<String, RawWording>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWording {
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    text: String,
    language: Option<Spanned<String>>,
    follow_up: Option<RawFollowUp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    kind: Spanned<String>,
    within: Spanned<String>,
    template: Option<Spanned<String>>,
    field: Option<String>,
    value: Option<String>,
    objective: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFollowUp {
    after: Spanned<String>,
    template: Spanned<String>,
    precedence: Option<Spanned<String>>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    text: String,
}

/// The latest a scenario's injects and follow-ups may come, in scenario
/// time: a week, far beyond any exercise, and a bound that keeps every sum
/// of times in range.
pub const MAX_SCENARIO_TIME: Duration = Duration::from_secs(7 * 86_400);

/// `mm:ss` (or `h:mm:ss`) after the start, within [`MAX_SCENARIO_TIME`].
pub(crate) fn parse_offset(text: &str) -> Option<Duration> {
    let parts: Vec<&str> = text.trim().trim_start_matches("T+").split(':').collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    let secs = match nums?.as_slice() {
        [m, s] if *s < 60 => m.checked_mul(60)?.checked_add(*s)?,
        [h, m, s] if *m < 60 && *s < 60 => h.checked_mul(3600)?.checked_add(m * 60 + s)?,
        _ => return None,
    };
    let at = Duration::from_secs(secs);
    (at <= MAX_SCENARIO_TIME).then_some(at)
}

pub(crate) type ErrFn<'a> = dyn FnMut(std::ops::Range<usize>, &str, String) + 'a;

fn parse_language(
    l: &Spanned<String>,
    key: &str,
    err: &mut ErrFn<'_>,
) -> Option<crate::domain::Language> {
    match l.get_ref().parse() {
        Ok(lang) => Some(lang),
        Err(e) => {
            err(l.span(), key, format!("{e}"));
            None
        }
    }
}

fn parse_follow_up(f: RawFollowUp, catalog: &Catalog, key: &str, err: &mut ErrFn<'_>) -> FollowUp {
    check_template(
        catalog,
        &f.template,
        &f.fields,
        &format!("{key}.template"),
        err,
    );
    FollowUp {
        after: match parse_duration(f.after.get_ref()) {
            Ok(after) if after <= MAX_SCENARIO_TIME => after,
            Ok(_) => {
                err(
                    f.after.span(),
                    &format!("{key}.after"),
                    "must be at most 7d".into(),
                );
                Duration::ZERO
            }
            Err(x) => {
                err(f.after.span(), &format!("{key}.after"), x.to_string());
                Duration::ZERO
            }
        },
        precedence: match &f.precedence {
            Some(p) => p
                .get_ref()
                .parse()
                .unwrap_or_else(|e: crate::domain::UnknownPrecedence| {
                    err(p.span(), &format!("{key}.precedence"), e.to_string());
                    Precedence::Routine
                }),
            None => catalog
                .latest(f.template.get_ref())
                .map_or(Precedence::Routine, |t| t.precedence),
        },
        template: f.template.into_inner(),
        fields: f.fields,
        text: f.text,
    }
}

/// Checks that `objective` names one of `ids`, the declared objectives.
fn check_objective(objective: &Spanned<String>, ids: &[String], key: &str, err: &mut ErrFn<'_>) {
    if !ids.contains(objective.get_ref()) {
        err(
            objective.span(),
            key,
            if ids.is_empty() {
                format!(
                    "`{}` names no objective; declare it in `objectives`",
                    objective.get_ref()
                )
            } else {
                format!(
                    "`{}` names no objective; the objectives are {}",
                    objective.get_ref(),
                    ids.join(", ")
                )
            },
        );
    }
}

/// Checks that `template` exists and that `fields` fit it.
pub(crate) fn check_template(
    catalog: &Catalog,
    template: &Spanned<String>,
    fields: &BTreeMap<String, String>,
    key: &str,
    err: &mut ErrFn<'_>,
) {
    match catalog.latest(template.get_ref()) {
        None => err(
            template.span(),
            key,
            format!("there is no template `{}`", template.get_ref()),
        ),
        Some(t) => {
            let draft = crate::compose::Draft {
                template_id: t.id.clone(),
                fields: fields.clone(),
                ..Default::default()
            };
            if let Err(e) = crate::compose::check(&draft, catalog, jiff::Timestamp::UNIX_EPOCH) {
                err(
                    template.span(),
                    key,
                    format!("fields do not fit template `{}`: {e}", t.id),
                );
            }
        }
    }
}

/// A scenario time as it is written and shown: `T+mm:ss`, or `T+h:mm:ss`
/// from an hour on (what [`parse_offset`] reads back).
pub fn format_offset(at: Duration) -> String {
    let s = at.as_secs();
    if s < 3600 {
        format!("T+{:02}:{:02}", s / 60, s % 60)
    } else {
        format!("T+{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// Parses and checks a scenario against the templates it uses.
pub fn parse(path: &Path, text: &str, catalog: &Catalog) -> Result<Scenario, Vec<Problem>> {
    let raw: RawScenario =
        toml::from_str(text).map_err(|e| vec![crate::problem::from_toml_error(path, text, &e)])?;
    let mut problems = Vec::new();
    let mut err = |span: std::ops::Range<usize>, key: &str, message: String| {
        problems.push(Problem::at(path, text, Some(span.start), key, message));
    };
    let compression = *raw.time_compression.get_ref();
    if !(0.1..=60.0).contains(&compression) {
        err(
            raw.time_compression.span(),
            "time_compression",
            "must be from 0.1 to 60 (scenario minutes per real minute)".into(),
        );
    }
    for (key, name) in [("counterpart", &raw.counterpart), ("trainee", &raw.trainee)] {
        if crate::domain::StationName::new(name.get_ref()).is_err() {
            err(
                name.span(),
                key,
                "a station name uses capital letters, digits, '-' and '_'".into(),
            );
        }
    }
    let mut objectives = Vec::new();
    for (i, o) in raw.objectives.into_iter().enumerate() {
        let span = o.span();
        match o.into_inner() {
            RawObjective::Text(text) => objectives.push(Objective {
                id: (i + 1).to_string(),
                text,
                capability: None,
                rating: RatingRule::default(),
            }),
            RawObjective::Table(t) => {
                let rating = match t.rating {
                    None => RatingRule::default(),
                    Some(RawRating { some, major }) => {
                        if !(0.0 <= major && major <= some && some <= 1.0) {
                            err(
                                span.clone(),
                                "objectives.rating",
                                format!(
                                    "`some` and `major` are shares of the expectations met in time, with 0 ≤ major ≤ some ≤ 1; got some = {some}, major = {major}"
                                ),
                            );
                        }
                        RatingRule { some, major }
                    }
                };
                if objectives.iter().any(|x: &Objective| x.id == t.id) {
                    err(
                        span,
                        "objectives.id",
                        format!("objective `{}` is defined twice", t.id),
                    );
                }
                objectives.push(Objective {
                    id: t.id,
                    text: t.text,
                    capability: t.capability,
                    rating,
                });
            }
        }
    }
    let objective_ids: Vec<String> = objectives.iter().map(|o| o.id.clone()).collect();
    let mut side_names: Vec<String> = vec![raw.trainee.get_ref().clone()];
    for side in &raw.sides {
        let name = side.get_ref();
        if name != raw.trainee.get_ref() && name != raw.counterpart.get_ref() {
            err(
                side.span(),
                "sides",
                format!(
                    "`{name}` is neither the trainee ({}) nor the counterpart ({})",
                    raw.trainee.get_ref(),
                    raw.counterpart.get_ref()
                ),
            );
        } else if !side_names.contains(name) {
            side_names.push(name.clone());
        }
    }
    let mut injects = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for ri in raw.injects {
        let id = ri.id.get_ref().clone();
        if ids.contains(&id) {
            err(
                ri.id.span(),
                "injects.id",
                format!("inject `{id}` is defined twice"),
            );
        }
        ids.push(id.clone());
        let at = parse_offset(ri.at.get_ref()).unwrap_or_else(|| {
            err(
                ri.at.span(),
                "injects.at",
                format!(
                    "`{}` is not a time after the start within 7 days; write mm:ss such as \"02:30\"",
                    ri.at.get_ref()
                ),
            );
            Duration::ZERO
        });
        check_template(
            catalog,
            &ri.template,
            &ri.fields,
            "injects.template",
            &mut err,
        );
        let precedence = match &ri.precedence {
            Some(p) => p
                .get_ref()
                .parse()
                .unwrap_or_else(|e: crate::domain::UnknownPrecedence| {
                    err(p.span(), "injects.precedence", e.to_string());
                    Precedence::Routine
                }),
            None => catalog
                .latest(ri.template.get_ref())
                .map_or(Precedence::Routine, |t| t.precedence),
        };
        let mut expect = Vec::new();
        let mut expect_objectives = Vec::new();
        for e in ri.expect {
            let within = parse_duration(e.within.get_ref()).unwrap_or_else(|x| {
                err(e.within.span(), "injects.expect.within", x.to_string());
                Duration::ZERO
            });
            let parsed = match e.kind.get_ref().as_str() {
                "acknowledge" => Some(Expect::Acknowledge { within }),
                "reply" => match &e.template {
                    Some(t) if catalog.latest(t.get_ref()).is_some() => Some(Expect::Reply {
                        template: t.get_ref().clone(),
                        within,
                        field: e.field.clone().zip(e.value.clone()),
                    }),
                    Some(t) => {
                        err(
                            t.span(),
                            "injects.expect.template",
                            format!("there is no template `{}`", t.get_ref()),
                        );
                        None
                    }
                    None => {
                        err(
                            e.kind.span(),
                            "injects.expect.template",
                            "a reply expectation names the template of the reply".into(),
                        );
                        None
                    }
                },
                other => {
                    err(
                        e.kind.span(),
                        "injects.expect.kind",
                        format!(
                            "`{other}` is not an expectation; use \"acknowledge\" or \"reply\""
                        ),
                    );
                    None
                }
            };
            if let Some(o) = &e.objective {
                check_objective(o, &objective_ids, "injects.expect.objective", &mut err);
            }
            if let Some(parsed) = parsed {
                expect.push(parsed);
                expect_objectives.push(e.objective.map(Spanned::into_inner));
            }
        }
        let follow_up = ri
            .follow_up
            .map(|f| parse_follow_up(f, catalog, "injects.follow_up", &mut err));
        let language = ri
            .language
            .as_ref()
            .and_then(|l| parse_language(l, "injects.language", &mut err));
        let objective = ri.objective.map(|o| {
            check_objective(&o, &objective_ids, "injects.objective", &mut err);
            o.into_inner()
        });
        let mut sides = BTreeMap::new();
        for (side, w) in ri.sides {
            if !side_names.contains(&side) || side == *raw.trainee.get_ref() {
                err(
                    ri.id.span(),
                    &format!("injects.for.{side}"),
                    format!(
                        "`{side}` is not a side the trainee may play besides {}; declare it in `sides`",
                        raw.trainee.get_ref()
                    ),
                );
            }
            check_template(
                catalog,
                &ri.template,
                &w.fields,
                &format!("injects.for.{side}.fields"),
                &mut err,
            );
            let wording = Wording {
                language: w.language.as_ref().and_then(|l| {
                    parse_language(l, &format!("injects.for.{side}.language"), &mut err)
                }),
                follow_up: w.follow_up.map(|f| {
                    parse_follow_up(
                        f,
                        catalog,
                        &format!("injects.for.{side}.follow_up"),
                        &mut err,
                    )
                }),
                fields: w.fields,
                text: w.text,
            };
            sides.insert(side, wording);
        }
        for side in &side_names {
            if side != raw.trainee.get_ref() && !sides.contains_key(side) {
                err(
                    ri.id.span(),
                    &format!("injects.for.{side}"),
                    format!(
                        "inject `{id}` is not written for {side}, a side of `sides`; add [injects.for.{side}] with its fields"
                    ),
                );
            }
        }
        injects.push(Inject {
            id,
            at,
            template: ri.template.into_inner(),
            precedence,
            fields: ri.fields,
            text: ri.text,
            language,
            expect,
            expect_objectives,
            follow_up,
            objective,
            sides,
        });
    }
    if injects.is_empty() {
        err(
            raw.id.span(),
            "injects",
            "a scenario needs at least one inject".into(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    injects.sort_by_key(|i| i.at);
    Ok(Scenario {
        id: raw.id.into_inner(),
        title: raw.title,
        description: raw.description,
        objectives,
        time_compression: compression,
        counterpart: raw.counterpart.into_inner(),
        trainee: raw.trainee.into_inner(),
        sides: side_names,
        injects,
    })
}

/// The scenarios compiled into the binary, with any problems.
pub fn builtin() -> (Vec<Scenario>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (name, text) in crate::templates::SCENARIO_SOURCES {
        match parse(
            &Path::new("assets/scenarios").join(name),
            text,
            Catalog::builtin(),
        ) {
            Ok(s) => out.push(s),
            Err(mut p) => problems.append(&mut p),
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("02:30"), Some(Duration::from_secs(150)));
        assert_eq!(parse_offset("T+00:05"), Some(Duration::from_secs(5)));
        assert_eq!(parse_offset("1:00:00"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_offset("2:75"), None);
        assert_eq!(parse_offset("soon"), None);
        assert_eq!(parse_offset("99999999999999999:00"), None, "no overflow");
        assert_eq!(parse_offset("168:00:01"), None, "past a week");
        assert_eq!(parse_offset("168:00:00"), Some(MAX_SCENARIO_TIME));
    }

    #[test]
    fn builtin_scenarios_are_valid() {
        let (scenarios, problems) = builtin();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(scenarios.len() >= 4);
        assert!(scenarios.iter().any(|s| s.id == "intro"));
    }
}
