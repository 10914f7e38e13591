//! Field values: what an operator types is checked and turned into one
//! canonical text form per type, which is what gets signed; rendering turns
//! the canonical form into the reader's language.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::model::{Field, FieldKind, Template};
use crate::domain::{
    BadArea, BadCoordinates, BadDateTime, BadDuration, Coordinates, Dtg, Language, format_duration,
    parse_datetime, parse_duration,
};

/// Why a value does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{field}: required, but empty")]
    Missing { field: String },
    #[error("{field}: this template ({template}) has no such field")]
    Unknown { field: String, template: String },
    #[error("{field}: {problem}")]
    Invalid {
        field: String,
        problem: ValueProblem,
    },
}

/// What is wrong with a value that is there but does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("{len} characters; at most {max}")]
    TooLong { len: usize, max: usize },
    /// The character's code point.
    #[error("control character U+{0:04X} is not allowed")]
    ControlCharacter(u32),
    #[error("`{input}` is not one of: {}", .choices.join(", "))]
    NotAChoice { input: String, choices: Vec<String> },
    #[error("`{0}` is not a whole number")]
    NotAWholeNumber(String),
    #[error("{n} is outside {min}..={max}")]
    OutOfRange { n: i64, min: i64, max: i64 },
    #[error("{0}")]
    DateTime(BadDateTime),
    #[error("{0}")]
    Coordinates(BadCoordinates),
    #[error("{0}")]
    Duration(BadDuration),
    #[error("{0}")]
    Area(BadArea),
    /// A value from the wire that is not as its sender's form writes it.
    #[error("not in canonical form")]
    NotCanonical,
}

impl ValueProblem {
    /// The problem as a reader of `lang` reads it; in English, its `Display`.
    pub fn message(&self, lang: Language) -> String {
        match self {
            ValueProblem::TooLong { len, max } => {
                crate::t!(lang, "field.too_long", len = len, max = max)
            }
            ValueProblem::ControlCharacter(code) => crate::t!(
                lang,
                "field.control_character",
                code = format!("{code:04X}")
            ),
            ValueProblem::NotAChoice { input, choices } => crate::t!(
                lang,
                "field.not_a_choice",
                input = input,
                choices = choices.join(crate::t!(lang, "field.choice_separator"))
            ),
            ValueProblem::NotAWholeNumber(input) => {
                crate::t!(lang, "field.not_a_whole_number", input = input)
            }
            ValueProblem::OutOfRange { n, min, max } => {
                crate::t!(lang, "field.out_of_range", n = n, min = min, max = max)
            }
            ValueProblem::DateTime(e) => e.message(lang),
            ValueProblem::Coordinates(e) => e.message(lang),
            ValueProblem::Duration(e) => e.message(lang),
            ValueProblem::Area(e) => e.message(lang),
            ValueProblem::NotCanonical => crate::t!(lang, "field.not_canonical").to_string(),
        }
    }
}

impl ValueError {
    /// The name of the field the error is about.
    pub fn field(&self) -> &str {
        match self {
            ValueError::Missing { field }
            | ValueError::Unknown { field, .. }
            | ValueError::Invalid { field, .. } => field,
        }
    }

    /// What is wrong, without the field's name, as a reader of `lang`
    /// reads it.
    pub fn problem(&self, lang: Language) -> String {
        match self {
            ValueError::Missing { .. } => crate::t!(lang, "field.missing").to_string(),
            ValueError::Unknown { template, .. } => {
                crate::t!(lang, "field.unknown", template = template)
            }
            ValueError::Invalid { problem, .. } => problem.message(lang),
        }
    }

    /// The whole error, the field's name first, as a reader of `lang` reads
    /// it; in English, exactly its `Display`.
    pub fn message(&self, lang: Language) -> String {
        crate::t!(
            lang,
            "console.field_problem",
            field = self.field(),
            problem = self.problem(lang)
        )
    }
}

fn is_allowed_text_char(c: char, multiline: bool) -> bool {
    !c.is_control() || (multiline && (c == '\n' || c == '\t'))
}

impl Field {
    /// Checks what an operator typed and returns its canonical form.
    pub fn canonicalize(&self, input: &str, now: Timestamp) -> Result<String, ValueError> {
        let invalid = |problem: ValueProblem| ValueError::Invalid {
            field: self.name.clone(),
            problem,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Missing {
                field: self.name.clone(),
            });
        }
        match &self.kind {
            FieldKind::Text { multiline, max_len } => {
                let text = if *multiline {
                    input.trim_end().to_string()
                } else {
                    trimmed.to_string()
                };
                let len = text.chars().count();
                if len > *max_len {
                    return Err(invalid(ValueProblem::TooLong { len, max: *max_len }));
                }
                if let Some(c) = text.chars().find(|&c| !is_allowed_text_char(c, *multiline)) {
                    return Err(invalid(ValueProblem::ControlCharacter(u32::from(c))));
                }
                Ok(text)
            }
            FieldKind::Choice(choices) => choices
                .iter()
                .find(|c| {
                    c.value.eq_ignore_ascii_case(trimmed)
                        || c.labels
                            .languages()
                            .any(|l| c.labels.get(l).to_lowercase() == trimmed.to_lowercase())
                })
                .map(|c| c.value.clone())
                .ok_or_else(|| {
                    invalid(ValueProblem::NotAChoice {
                        input: trimmed.to_string(),
                        choices: choices.iter().map(|c| c.value.clone()).collect(),
                    })
                }),
            FieldKind::DateTime => parse_datetime(trimmed, now)
                .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
                .map_err(|e| invalid(ValueProblem::DateTime(e))),
            FieldKind::Integer { min, max } => {
                let n: i64 = trimmed
                    .parse()
                    .map_err(|_| invalid(ValueProblem::NotAWholeNumber(trimmed.to_string())))?;
                if n < *min || n > *max {
                    return Err(invalid(ValueProblem::OutOfRange {
                        n,
                        min: *min,
                        max: *max,
                    }));
                }
                Ok(n.to_string())
            }
            FieldKind::Coordinates => trimmed
                .parse::<Coordinates>()
                .map(|c| c.to_string())
                .map_err(|e| invalid(ValueProblem::Coordinates(e))),
            FieldKind::Duration => parse_duration(trimmed)
                .map(format_duration)
                .map_err(|e| invalid(ValueProblem::Duration(e))),
            FieldKind::Area => trimmed
                .parse::<crate::domain::Area>()
                .map(|a| a.to_string())
                .map_err(|e| invalid(ValueProblem::Area(e))),
        }
    }

    /// Checks a value that arrived in a signed message: it must already be
    /// in canonical form, so both ends render exactly the same thing.
    pub fn check_canonical(&self, value: &str) -> Result<(), ValueError> {
        let epoch = Timestamp::UNIX_EPOCH;
        let again = self.canonicalize(value, epoch)?;
        let relative = matches!(self.kind, FieldKind::DateTime) && !value.contains('T');
        if again != value || relative {
            return Err(ValueError::Invalid {
                field: self.name.clone(),
                problem: ValueProblem::NotCanonical,
            });
        }
        Ok(())
    }

    /// The canonical value as the reader of `lang` should see it.
    pub fn render(&self, value: &str, lang: Language) -> String {
        match &self.kind {
            FieldKind::Text { .. } | FieldKind::Integer { .. } => value.to_string(),
            FieldKind::Choice(choices) => choices
                .iter()
                .find(|c| c.value == value)
                .map_or_else(|| value.to_string(), |c| c.label(lang).to_string()),
            FieldKind::DateTime => value
                .parse::<Timestamp>()
                .map_or_else(|_| value.to_string(), |t| Dtg(t).to_string()),
            FieldKind::Coordinates => match value.parse::<Coordinates>() {
                Ok(c) => position(&c, lang),
                Err(_) => value.to_string(),
            },
            FieldKind::Area => match value.parse::<crate::domain::Area>() {
                Ok(a) => a.render(lang, |c| position(c, lang)),
                Err(_) => value.to_string(),
            },
            FieldKind::Duration => value
                .split(' ')
                .map(|part| {
                    let (n, unit) = part.split_at(part.len().saturating_sub(1));
                    let unit = match unit {
                        "d" => crate::t!(lang, "value.unit_d"),
                        "h" => crate::t!(lang, "value.unit_h"),
                        "m" => crate::t!(lang, "value.unit_m"),
                        "s" => crate::t!(lang, "value.unit_s"),
                        other => other,
                    };
                    crate::t!(lang, "value.duration_part", n = n, unit = unit)
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl Template {
    /// Checks a complete set of canonical field values against this template:
    /// every required field present, no unknown field, every value canonical.
    pub fn check_values(&self, values: &BTreeMap<String, String>) -> Result<(), Vec<ValueError>> {
        let mut errors = Vec::new();
        for name in values.keys() {
            if self.field(name).is_none() {
                errors.push(ValueError::Unknown {
                    field: name.clone(),
                    template: self.id.clone(),
                });
            }
        }
        for field in &self.fields {
            match values.get(&field.name) {
                None if field.required => errors.push(ValueError::Missing {
                    field: field.name.clone(),
                }),
                None => {}
                Some(v) => {
                    if let Err(e) = field.check_canonical(v) {
                        errors.push(e);
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A position as a reader of `lang` reads it, from its canonical text
/// (`045.9200N 063.3400E`).
fn position(c: &Coordinates, lang: Language) -> String {
    let canonical = c.to_string();
    let (lat, lon) = canonical.split_once(' ').unwrap_or((&canonical, ""));
    let hemisphere = |part: &str| match part.chars().last() {
        Some('N') => crate::t!(lang, "value.north"),
        Some('S') => crate::t!(lang, "value.south"),
        Some('E') => crate::t!(lang, "value.east"),
        _ => crate::t!(lang, "value.west"),
    };
    let digits = |part: &str| part[..part.len().saturating_sub(1)].to_string();
    crate::t!(
        lang,
        "value.position",
        lat = digits(lat),
        ns = hemisphere(lat),
        lon = digits(lon),
        ew = hemisphere(lon)
    )
}
