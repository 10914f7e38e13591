//! Field values: what an operator types is checked and turned into one
//! canonical text form per type, which is what gets signed; rendering turns
//! the canonical form into the reader's language.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::model::{Field, FieldKind, Template};
use crate::domain::{Coordinates, Dtg, Language, format_duration, parse_datetime, parse_duration};

/// Why a value does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{field}: required, but empty")]
    Missing { field: String },
    #[error("{field}: this template ({template}) has no such field")]
    Unknown { field: String, template: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn is_allowed_text_char(c: char, multiline: bool) -> bool {
    !c.is_control() || (multiline && (c == '\n' || c == '\t'))
}

impl Field {
    /// Checks what an operator typed and returns its canonical form.
    pub fn canonicalize(&self, input: &str, now: Timestamp) -> Result<String, ValueError> {
        let invalid = |message: String| ValueError::Invalid {
            field: self.name.clone(),
            message,
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
                    return Err(invalid(format!("{len} characters; at most {max_len}")));
                }
                if let Some(c) = text.chars().find(|&c| !is_allowed_text_char(c, *multiline)) {
                    return Err(invalid(format!(
                        "control character U+{:04X} is not allowed",
                        u32::from(c)
                    )));
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
                    let valid: Vec<&str> = choices.iter().map(|c| c.value.as_str()).collect();
                    invalid(format!("`{trimmed}` is not one of: {}", valid.join(", ")))
                }),
            FieldKind::DateTime => parse_datetime(trimmed, now)
                .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
                .map_err(|e| invalid(e.to_string())),
            FieldKind::Integer { min, max } => {
                let n: i64 = trimmed
                    .parse()
                    .map_err(|_| invalid(format!("`{trimmed}` is not a whole number")))?;
                if n < *min || n > *max {
                    return Err(invalid(format!("{n} is outside {min}..={max}")));
                }
                Ok(n.to_string())
            }
            FieldKind::Coordinates => trimmed
                .parse::<Coordinates>()
                .map(|c| c.to_string())
                .map_err(|e| invalid(e.to_string())),
            FieldKind::Duration => parse_duration(trimmed)
                .map(format_duration)
                .map_err(|e| invalid(e.to_string())),
            FieldKind::Area => trimmed
                .parse::<crate::domain::Area>()
                .map(|a| a.to_string())
                .map_err(|e| invalid(e.to_string())),
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
                message: "not in canonical form".into(),
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
