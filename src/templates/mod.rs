//! Crisis templates: typed, bilingual forms compiled into the binary from
//! `assets/templates`. This module loads and checks them, validates field
//! values, and renders messages per language.

mod model;
pub mod render;
mod value;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

pub use model::{
    Amends, Choice, DEFAULT_TEXT_MAX, Field, FieldKind, Localized, Template, parse_template,
};
pub use render::{OriginalCheck, ReaderView, check_original, for_reader, render};
pub use value::{ValueError, ValueProblem};

use crate::problem::Problem;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use embedded::SCENARIO_SOURCES;

/// A set of templates, by id and version.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    templates: Vec<Template>,
}

static BUILTIN: LazyLock<(Catalog, Vec<Problem>)> = LazyLock::new(|| {
    Catalog::from_sources(
        embedded::TEMPLATE_SOURCES
            .iter()
            .map(|(name, text)| (Path::new("assets/templates").join(name), *text)),
    )
});

/// The longest summary kept for a message (see [`Catalog::summary`]).
pub const SUMMARY_MAX: usize = 80;

impl Catalog {
    /// The templates compiled into this binary.
    pub fn builtin() -> &'static Catalog {
        &BUILTIN.0
    }

    /// Problems found in the compiled-in templates (none in a tested build).
    pub fn builtin_problems() -> &'static [Problem] {
        &BUILTIN.1
    }

    /// Loads templates from (path, text) pairs, keeping the good ones and
    /// listing every problem of the bad ones.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (PathBuf, &'a str)>,
    ) -> (Catalog, Vec<Problem>) {
        let mut catalog = Catalog::default();
        let mut problems = Vec::new();
        for (path, text) in sources {
            match parse_template(&path, text) {
                Ok(t) => {
                    if catalog.get(&t.id, t.version).is_some() {
                        problems.push(Problem {
                            path,
                            line: None,
                            key: "id".into(),
                            message: format!(
                                "template `{}` version {} is defined twice",
                                t.id, t.version
                            ),
                        });
                    } else {
                        catalog.templates.push(t);
                    }
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        catalog
            .templates
            .sort_by(|a, b| a.id.cmp(&b.id).then(a.version.cmp(&b.version)));
        for t in &catalog.templates {
            if let Some(reply) = t.reply.as_deref()
                && catalog.latest(reply).is_none()
            {
                problems.push(Problem {
                    path: PathBuf::from(format!("{}.toml", t.id)),
                    line: None,
                    key: "reply".into(),
                    message: format!("`{reply}` names no template of this catalog"),
                });
            }
        }
        (catalog, problems)
    }

    /// What names a message in lists and notices: the value of its
    /// template's summary field, on one line and at most [`SUMMARY_MAX`]
    /// characters. It is the sender's text: sanitise it before showing.
    pub fn summary(&self, message: &crate::domain::Message) -> Option<String> {
        let template = self
            .get(&message.template.id, message.template.version)
            .or_else(|| self.latest(&message.template.id))?;
        let value = message.fields.get(&template.summary)?;
        let line: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut out: String = line.chars().take(SUMMARY_MAX).collect();
        if line.chars().count() > SUMMARY_MAX {
            out.push('…');
        }
        (!out.is_empty()).then_some(out)
    }

    pub fn get(&self, id: &str, version: u32) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.id == id && t.version == version)
    }

    /// The newest version of a template: what the composer offers.
    pub fn latest(&self, id: &str) -> Option<&Template> {
        self.templates
            .iter()
            .filter(|t| t.id == id)
            .max_by_key(|t| t.version)
    }

    /// The newest version of each template, sorted by id.
    pub fn current(&self) -> Vec<&Template> {
        let mut out: Vec<&Template> = Vec::new();
        for t in &self.templates {
            match out.last_mut() {
                Some(last) if last.id == t.id => *last = t,
                _ => out.push(t),
            }
        }
        out
    }
}
