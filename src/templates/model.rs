//! Templates: typed, bilingual crisis forms. Loaded from TOML (raw, spanned
//! form), then checked into [`Template`]s; every problem names file and line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::{Language, Precedence};
use crate::problem::Problem;

/// Text in each of a template's languages.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Localized(BTreeMap<Language, String>);

impl Localized {
    /// The text for a reader of `lang`: its own, that of a broader tag
    /// (`fr` for `fr-CA`), else English, else the first there is. A
    /// checked template has every one of its languages; [`Template::speaks`]
    /// says whether the reader's is one.
    pub fn get(&self, lang: Language) -> &str {
        std::iter::successors(Some(lang), Language::parent)
            .chain([Language::EN])
            .find_map(|l| self.0.get(&l))
            .or_else(|| self.0.values().next())
            .map_or("", String::as_str)
    }

    pub fn languages(&self) -> impl Iterator<Item = Language> + '_ {
        self.0.keys().copied()
    }
}

/// One option of a choice field: `{ value = "icbm", en = "…", ru = "…" }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct Choice {
    pub value: String,
    pub labels: Localized,
}

impl TryFrom<BTreeMap<String, String>> for Choice {
    type Error = String;
    fn try_from(mut map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        let value = map
            .remove("value")
            .ok_or("a choice needs value = \"…\" and its label in each language")?;
        let labels = map
            .into_iter()
            .map(|(k, v)| {
                k.parse::<Language>()
                    .map(|l| (l, v))
                    .map_err(|e| format!("choice `{value}`: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Choice {
            value,
            labels: Localized(labels),
        })
    }
}

impl Choice {
    pub fn label(&self, lang: Language) -> &str {
        self.labels.get(lang)
    }
}

/// A language a template is written in, and whether a reader of it has
/// checked the text (false for a machine translation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateLanguage {
    pub language: Language,
    pub reviewed: bool,
}

/// What a field holds, with its constraints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Text {
        multiline: bool,
        max_len: usize,
    },
    Choice(Vec<Choice>),
    DateTime,
    Integer {
        min: i64,
        max: i64,
    },
    Coordinates,
    Duration,
    /// A circle, boundary points or a body of water ([`crate::domain::Area`]).
    Area,
}

impl FieldKind {
    pub fn name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Choice(_) => "choice",
            FieldKind::DateTime => "datetime",
            FieldKind::Integer { .. } => "integer",
            FieldKind::Coordinates => "coordinates",
            FieldKind::Duration => "duration",
            FieldKind::Area => "area",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    pub label: Localized,
    pub help: Option<Localized>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    pub version: u32,
    pub precedence: Precedence,
    /// The languages it is written in (`[languages]`); every text of it
    /// is in each of them. Adding one does not change the version: the
    /// fields, and so every message, stay the same.
    pub languages: Vec<TemplateLanguage>,
    pub title: Localized,
    pub body: Localized,
    pub fields: Vec<Field>,
    /// The field that names a message in lists and notices: `summary` in
    /// the template, else a field called `subject`, else the first field.
    pub summary: String,
    /// The template a reply to this one starts from (`reply`), if any.
    pub reply: Option<String>,
    /// What a message of this template does to the one earlier message
    /// of ours it references (`amends`): corrects it, or withdraws it.
    pub amends: Option<Amends>,
    /// How far ahead of the time in one of its fields the notification is
    /// due (`notice = { field = "…", ahead = "24h" }`), as a treaty asks.
    pub notice: Option<NoticeRule>,
}

/// A notification due at least `ahead` before the time in `field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeRule {
    pub field: String,
    pub ahead: std::time::Duration,
}

impl Template {
    /// Why a notification of this template whose (canonical) `fields`
    /// say what they say comes too late if it is given at `at`, if it
    /// does. The receiver judges by when it received it: by treaty
    /// practice that is the date of the notification.
    pub fn short_notice(
        &self,
        fields: &std::collections::BTreeMap<String, String>,
        at: jiff::Timestamp,
        lang: Language,
    ) -> Option<String> {
        let rule = self.notice.as_ref()?;
        let when: jiff::Timestamp = fields.get(&rule.field)?.parse().ok()?;
        let lead = when.duration_since(at);
        let ahead = jiff::SignedDuration::try_from(rule.ahead).ok()?;
        (lead < ahead).then(|| {
            let label = self
                .field(&rule.field)
                .map_or(rule.field.as_str(), |f| f.label.get(lang));
            let hours = lead.as_secs() as f64 / 3600.0;
            crate::t!(
                lang,
                "form.short_notice",
                field = label,
                hours = format!("{hours:.1}"),
                ahead = crate::domain::format_duration(rule.ahead)
            )
        })
    }
}

/// What an amending message does to the message it references.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amends {
    /// It replaces what the earlier message said: CORRECTED.
    Correction,
    /// It withdraws the earlier message: WITHDRAWN.
    Withdrawal,
}

impl Amends {
    pub fn as_str(self) -> &'static str {
        match self {
            Amends::Correction => "correction",
            Amends::Withdrawal => "withdrawal",
        }
    }

    pub fn parse(s: &str) -> Option<Amends> {
        match s {
            "correction" => Some(Amends::Correction),
            "withdrawal" => Some(Amends::Withdrawal),
            _ => None,
        }
    }
}

impl Template {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether it is written in `lang` (or a broader tag of it).
    pub fn speaks(&self, lang: Language) -> bool {
        std::iter::successors(Some(lang), Language::parent)
            .any(|l| self.languages.iter().any(|t| t.language == l))
    }

    /// The language a reader of `lang` gets it in: `lang` or a broader
    /// tag of it if the template has one, else English, else its first.
    pub fn rendered_in(&self, lang: Language) -> Language {
        std::iter::successors(Some(lang), Language::parent)
            .chain([Language::EN])
            .find(|l| self.languages.iter().any(|t| t.language == *l))
            .or_else(|| self.languages.first().map(|t| t.language))
            .unwrap_or(Language::EN)
    }
}

/// Free text fields are capped at this many characters unless the template
/// says less.
pub const DEFAULT_TEXT_MAX: usize = 8000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: Spanned<String>,
    version: Spanned<i64>,
    precedence: Spanned<String>,
    languages: Spanned<BTreeMap<Spanned<String>, RawLanguage>>,
    title: Spanned<Localized>,
    body: BTreeMap<Language, Spanned<String>>,
    fields: Vec<RawField>,
    summary: Option<Spanned<String>>,
    reply: Option<Spanned<String>>,
    amends: Option<Spanned<String>>,
    notice: Option<RawNotice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    field: Spanned<String>,
    ahead: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    reviewed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    required: bool,
    label: Spanned<Localized>,
    help: Option<Spanned<Localized>>,
    choices: Option<Spanned<Vec<Choice>>>,
    min: Option<i64>,
    max: Option<i64>,
    multiline: Option<bool>,
    max_len: Option<Spanned<i64>>,
}

const FIELD_TYPES: &str = "text, choice, datetime, integer, coordinates, duration or area";

fn is_identifier(s: &str, extra: char) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == extra)
}

/// What is wrong with a text written in `have` when the template declares
/// `declared`, if anything.
fn coverage(declared: &[Language], have: &[Language]) -> Option<String> {
    let list = |ls: Vec<&Language>| {
        ls.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: Vec<&Language> = declared.iter().filter(|l| !have.contains(l)).collect();
    let extra: Vec<&Language> = have.iter().filter(|l| !declared.contains(l)).collect();
    if !missing.is_empty() {
        Some(format!(
            "has no text in {}; every text is written in each language of [languages] ({})",
            list(missing),
            list(declared.iter().collect())
        ))
    } else if !extra.is_empty() {
        Some(format!(
            "is written in {}, which [languages] does not declare; declare it there ({} = {{ reviewed = false }}) or remove the text",
            list(extra.clone()),
            extra[0]
        ))
    } else {
        None
    }
}

/// Parses and checks one template file. `file_name` must be `<id>.toml`.
pub fn parse_template(path: &Path, text: &str) -> Result<Template, Vec<Problem>> {
    let raw: RawTemplate =
        toml::from_str(text).map_err(|e| vec![crate::problem::from_toml_error(path, text, &e)])?;
    let mut problems = Vec::new();
    let mut err = |span: std::ops::Range<usize>, key: &str, message: String| {
        problems.push(Problem::at(path, text, Some(span.start), key, message));
    };

    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if !is_identifier(raw.id.get_ref(), '-') {
        err(
            raw.id.span(),
            "id",
            "an id uses lowercase letters, digits and '-' only".into(),
        );
    } else if raw.id.get_ref() != stem {
        err(
            raw.id.span(),
            "id",
            format!("the id must match the file name: `{stem}`"),
        );
    }
    let version = match u32::try_from(*raw.version.get_ref()) {
        Ok(v) if v >= 1 => v,
        _ => {
            err(
                raw.version.span(),
                "version",
                "a version is a whole number from 1 up".into(),
            );
            1
        }
    };
    let precedence =
        raw.precedence
            .get_ref()
            .parse()
            .unwrap_or_else(|e: crate::domain::UnknownPrecedence| {
                err(raw.precedence.span(), "precedence", e.to_string());
                Precedence::Routine
            });

    let mut languages = Vec::new();
    for (tag, l) in raw.languages.get_ref() {
        match tag.get_ref().parse::<Language>() {
            Ok(language) => languages.push(TemplateLanguage {
                language,
                reviewed: l.reviewed,
            }),
            Err(e) => err(tag.span(), "languages", e.to_string()),
        }
    }
    if languages.is_empty() {
        err(
            raw.languages.span(),
            "languages",
            "a template is written in at least one language: [languages] en = { reviewed = true }"
                .into(),
        );
    }
    let declared: Vec<Language> = languages.iter().map(|l| l.language).collect();
    let cover = |have: Vec<Language>| coverage(&declared, &have);
    if let Some(message) = cover(raw.title.get_ref().languages().collect()) {
        err(raw.title.span(), "title", message);
    }
    if let Some(message) = cover(raw.body.keys().copied().collect()) {
        err(raw.languages.span(), "body", message);
    }

    let mut fields: Vec<Field> = Vec::new();
    // Fields whose type was wrong: reported once, not again by the body.
    let mut broken: Vec<String> = Vec::new();
    for f in raw.fields {
        let name = f.name.get_ref().clone();
        let key = |k: &str| format!("fields.{name}.{k}");
        if !is_identifier(&name, '_') {
            err(
                f.name.span(),
                "fields.name",
                format!("`{name}`: a field name uses lowercase letters, digits and '_' only"),
            );
        }
        if fields.iter().any(|x| x.name == name) {
            err(
                f.name.span(),
                "fields.name",
                format!("field `{name}` is defined twice"),
            );
        }
        let kind_span = f.kind.span();
        if let Some(message) = cover(f.label.get_ref().languages().collect()) {
            err(f.label.span(), &key("label"), message);
        }
        if let Some(help) = &f.help
            && let Some(message) = cover(help.get_ref().languages().collect())
        {
            err(help.span(), &key("help"), message);
        }
        if let Some(choices) = &f.choices {
            for c in choices.get_ref() {
                if let Some(message) = cover(c.labels.languages().collect()) {
                    let at = format!("{}.{}", key("choices"), c.value);
                    err(choices.span(), &at, message);
                }
            }
        }
        let constraints_for = |wanted: &str| -> Vec<&'static str> {
            let mut extra = Vec::new();
            if f.choices.is_some() && wanted != "choice" {
                extra.push("choices");
            }
            if (f.min.is_some() || f.max.is_some()) && wanted != "integer" {
                extra.push("min/max");
            }
            if (f.multiline.is_some() || f.max_len.is_some()) && wanted != "text" {
                extra.push("multiline/max_len");
            }
            extra
        };
        let known_type = [
            "text",
            "choice",
            "datetime",
            "integer",
            "coordinates",
            "duration",
        ]
        .contains(&f.kind.get_ref().as_str());
        let misplaced = constraints_for(f.kind.get_ref());
        if known_type && !misplaced.is_empty() {
            err(
                kind_span.clone(),
                &key("type"),
                format!(
                    "{} do not apply to a {} field",
                    misplaced.join(", "),
                    f.kind.get_ref()
                ),
            );
        }
        let kind = match f.kind.get_ref().as_str() {
            "text" => {
                let max_len = match &f.max_len {
                    None => DEFAULT_TEXT_MAX,
                    Some(m) => match usize::try_from(*m.get_ref()) {
                        Ok(n) if (1..=DEFAULT_TEXT_MAX * 8).contains(&n) => n,
                        _ => {
                            err(
                                m.span(),
                                &key("max_len"),
                                format!("must be from 1 to {}", DEFAULT_TEXT_MAX * 8),
                            );
                            DEFAULT_TEXT_MAX
                        }
                    },
                };
                FieldKind::Text {
                    multiline: f.multiline.unwrap_or(false),
                    max_len,
                }
            }
            "choice" => {
                let choices = f.choices.map(Spanned::into_inner).unwrap_or_default();
                if choices.is_empty() {
                    err(
                        kind_span.clone(),
                        &key("choices"),
                        "a choice field needs at least one choice".into(),
                    );
                }
                for (i, c) in choices.iter().enumerate() {
                    if !is_identifier(&c.value, '_') {
                        err(
                            kind_span.clone(),
                            &key("choices"),
                            format!(
                                "choice value `{}` must use lowercase letters, digits and '_'",
                                c.value
                            ),
                        );
                    }
                    if choices[..i].iter().any(|x| x.value == c.value) {
                        err(
                            kind_span.clone(),
                            &key("choices"),
                            format!("choice value `{}` appears twice", c.value),
                        );
                    }
                }
                FieldKind::Choice(choices)
            }
            "datetime" => FieldKind::DateTime,
            "integer" => {
                let (min, max) = (f.min.unwrap_or(i64::MIN), f.max.unwrap_or(i64::MAX));
                if min > max {
                    err(
                        kind_span.clone(),
                        &key("min"),
                        format!("min ({min}) is greater than max ({max})"),
                    );
                }
                FieldKind::Integer { min, max }
            }
            "coordinates" => FieldKind::Coordinates,
            "duration" => FieldKind::Duration,
            "area" => FieldKind::Area,
            other => {
                err(
                    kind_span.clone(),
                    &key("type"),
                    format!("`{other}` is not a field type; use {FIELD_TYPES}"),
                );
                broken.push(name);
                continue;
            }
        };
        fields.push(Field {
            name,
            kind,
            required: f.required,
            label: f.label.into_inner(),
            help: f.help.map(Spanned::into_inner),
        });
    }
    if fields.is_empty() {
        err(0..0, "fields", "a template needs at least one field".into());
    }

    for (lang, text) in &raw.body {
        let span = text.span();
        match super::render::placeholders(text.get_ref()) {
            Err(message) => err(span.clone(), &format!("body.{lang}"), message),
            Ok(names) => {
                for n in names {
                    match fields.iter().find(|f| f.name == n) {
                        Some(f) if f.required => {}
                        Some(_) => err(
                            span.clone(),
                            &format!("body.{lang}"),
                            format!(
                                "{{{n}}} names an optional field; the body may only use required fields"
                            ),
                        ),
                        None if broken.contains(&n) => {}
                        None => err(
                            span.clone(),
                            &format!("body.{lang}"),
                            format!("{{{n}}} names no field of this template"),
                        ),
                    }
                }
            }
        }
    }
    let body = Localized(
        raw.body
            .into_iter()
            .map(|(l, t)| (l, t.into_inner()))
            .collect(),
    );

    let summary = match &raw.summary {
        Some(s) => {
            if !fields.iter().any(|f| &f.name == s.get_ref()) {
                err(
                    s.span(),
                    "summary",
                    format!(
                        "`{}` names no field of this template; name one of: {}",
                        s.get_ref(),
                        fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            s.get_ref().clone()
        }
        None => fields
            .iter()
            .find(|f| f.name == "subject")
            .or(fields.first())
            .map(|f| f.name.clone())
            .unwrap_or_default(),
    };
    let reply = match raw.reply {
        Some(r) if !is_identifier(r.get_ref(), '-') => {
            err(
                r.span(),
                "reply",
                format!(
                    "`{}` is not a template id (lowercase letters, digits and '-')",
                    r.get_ref()
                ),
            );
            None
        }
        other => other.map(Spanned::into_inner),
    };
    let amends = raw.amends.and_then(|a| {
        let kind = Amends::parse(a.get_ref());
        if kind.is_none() {
            err(
                a.span(),
                "amends",
                format!(
                    "`{}` is not what a message can do to an earlier one; write \"correction\" or \"withdrawal\"",
                    a.get_ref()
                ),
            );
        }
        kind
    });
    let notice = raw.notice.and_then(|n| {
        let ahead = match crate::domain::parse_duration(n.ahead.get_ref()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                err(
                    n.ahead.span(),
                    "notice.ahead",
                    "must be longer than zero".into(),
                );
                None
            }
            Err(e) => {
                err(n.ahead.span(), "notice.ahead", e.to_string());
                None
            }
        };
        match fields.iter().find(|f| f.name == *n.field.get_ref()) {
            Some(f) if matches!(f.kind, FieldKind::DateTime) => ahead.map(|ahead| NoticeRule {
                field: n.field.into_inner(),
                ahead,
            }),
            _ => {
                err(
                    n.field.span(),
                    "notice.field",
                    format!(
                        "`{}` is not a datetime field of this template",
                        n.field.get_ref()
                    ),
                );
                None
            }
        }
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Template {
        id: raw.id.into_inner(),
        version,
        precedence,
        languages,
        title: raw.title.into_inner(),
        body,
        fields,
        summary,
        reply,
        amends,
        notice,
    })
}
