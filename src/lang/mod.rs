//! The console's own words, one catalogue per language, compiled into the
//! binary from `assets/lang/<tag>.toml`.
//!
//! A catalogue has a `[language]` header (`tag`, `name` in the language
//! itself, `reviewed`) and sections of texts: `[footer] quit = "quit"` is
//! the text `footer.quit`. Texts may hold `{name}` placeholders (`{{` and
//! `}}` are literal braces). English is the reference: every shipped
//! catalogue holds exactly its keys, with the same placeholders, and the
//! build's tests and `hotline check` say so when one does not.
//!
//! Code asks for a text with [`t!`](crate::t): `t!(lang, "footer.quit")`,
//! or `t!(lang, "notice.sent", handle = h)` to fill placeholders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::domain::Language;
use crate::problem::Problem;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/languages.rs"));
}

/// One language's catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub language: Language,
    /// The language's name in itself: "English", "русский", "中文".
    pub name: String,
    /// Whether a person who reads the language has checked the texts;
    /// machine translations are not reviewed.
    pub reviewed: bool,
    pub path: PathBuf,
    texts: HashMap<String, String>,
}

impl Catalogue {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.texts.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> BTreeSet<&str> {
        self.texts.keys().map(String::as_str).collect()
    }

    /// Reads one catalogue file; every problem names the file, line and key.
    pub fn parse(path: &Path, text: &str) -> Result<Catalogue, Vec<Problem>> {
        type Sections = BTreeMap<String, BTreeMap<String, toml::Spanned<toml::Value>>>;
        let raw: Sections = toml::from_str(text)
            .map_err(|e| vec![crate::problem::from_toml_error(path, text, &e)])?;
        let mut problems = Vec::new();
        let mut err = |at: Option<usize>, key: &str, message: String| {
            problems.push(Problem::at(path, text, at, key, message));
        };
        let header = raw.get("language");
        let field = |name: &str| header.and_then(|h| h.get(name));
        let language = match field("tag").map(|v| (v.get_ref().as_str(), v.span().start)) {
            Some((Some(tag), at)) => match tag.parse::<Language>() {
                Ok(l) => Some(l),
                Err(e) => {
                    err(Some(at), "language.tag", e.to_string());
                    None
                }
            },
            _ => {
                err(
                    None,
                    "language.tag",
                    "the [language] table needs tag = \"<BCP 47 tag>\"".into(),
                );
                None
            }
        };
        if let Some(l) = language {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if stem != l.code() {
                err(
                    field("tag").map(|v| v.span().start),
                    "language.tag",
                    format!("the file of language `{l}` must be named `{l}.toml`"),
                );
            }
        }
        let name = match field("name").and_then(|v| v.get_ref().as_str()) {
            Some(n) if !n.trim().is_empty() => n.to_string(),
            _ => {
                err(
                    None,
                    "language.name",
                    "the [language] table needs name = \"<the language's name in itself>\"".into(),
                );
                String::new()
            }
        };
        let reviewed = match field("reviewed").map(|v| (v.get_ref().as_bool(), v.span().start)) {
            Some((Some(b), _)) => b,
            Some((None, at)) => {
                err(Some(at), "language.reviewed", "write true or false".into());
                false
            }
            None => {
                err(
                    None,
                    "language.reviewed",
                    "the [language] table needs reviewed = true or false (false for a machine translation)".into(),
                );
                false
            }
        };
        let mut texts = HashMap::new();
        for (section, entries) in &raw {
            if section == "language" {
                continue;
            }
            for (key, value) in entries {
                let full = format!("{section}.{key}");
                match value.get_ref().as_str() {
                    Some(s) => match placeholders(s) {
                        Ok(_) => {
                            texts.insert(full, s.to_string());
                        }
                        Err(m) => err(Some(value.span().start), &full, m),
                    },
                    None => err(
                        Some(value.span().start),
                        &full,
                        "a text is a string; sections hold only texts".into(),
                    ),
                }
            }
        }
        match (problems.is_empty(), language) {
            (true, Some(language)) => Ok(Catalogue {
                language,
                name,
                reviewed,
                path: path.to_path_buf(),
                texts,
            }),
            _ => Err(problems),
        }
    }

    /// What this catalogue lacks or has too much of, against `reference`:
    /// every key of the reference, no other, the same placeholders in each.
    pub fn completeness(&self, reference: &Catalogue) -> Vec<Problem> {
        let problem = |key: &str, message: String| Problem {
            path: self.path.clone(),
            line: None,
            key: key.to_string(),
            message,
        };
        let mut out = Vec::new();
        for (key, wanted) in &reference.texts {
            match self.texts.get(key) {
                None => out.push(problem(
                    key,
                    format!(
                        "missing: {} has \"{wanted}\" here",
                        reference.path.display()
                    ),
                )),
                Some(text) => {
                    let want: BTreeSet<String> = placeholders(wanted)
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    let have: BTreeSet<String> =
                        placeholders(text).unwrap_or_default().into_iter().collect();
                    if want != have {
                        out.push(problem(
                            key,
                            format!(
                                "the placeholders must be {{{}}} as in {}; this text has {{{}}}",
                                want.into_iter().collect::<Vec<_>>().join("}, {"),
                                reference.path.display(),
                                have.into_iter().collect::<Vec<_>>().join("}, {"),
                            ),
                        ));
                    }
                }
            }
        }
        let mut extra: Vec<&String> = self
            .texts
            .keys()
            .filter(|k| !reference.texts.contains_key(*k))
            .collect();
        extra.sort();
        for key in extra {
            out.push(problem(
                key,
                format!("not a text of {}: remove it", reference.path.display()),
            ));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

struct Shipped {
    catalogues: Vec<Catalogue>,
    problems: Vec<Problem>,
}

static SHIPPED: LazyLock<Shipped> = LazyLock::new(|| {
    let mut catalogues = Vec::new();
    let mut problems = Vec::new();
    for (name, text) in embedded::LANGUAGE_SOURCES {
        match Catalogue::parse(&Path::new("assets/lang").join(name), text) {
            Ok(c) => catalogues.push(c),
            Err(mut p) => problems.append(&mut p),
        }
    }
    // English first: the reference and the last resort.
    catalogues.sort_by_key(|c| (c.language != Language::EN, c.language));
    match catalogues.first() {
        Some(en) if en.language == Language::EN => {
            for c in &catalogues[1..] {
                problems.extend(c.completeness(en));
            }
        }
        _ => problems.push(Problem {
            path: "assets/lang/en.toml".into(),
            line: None,
            key: String::new(),
            message: "the English catalogue, the reference of every other, is missing".into(),
        }),
    }
    Shipped {
        catalogues,
        problems,
    }
});

/// The catalogues compiled into this binary, English first.
pub fn shipped() -> &'static [Catalogue] {
    &SHIPPED.catalogues
}

/// The languages of [`shipped`], in its order.
pub fn shipped_languages() -> Vec<Language> {
    shipped().iter().map(|c| c.language).collect()
}

/// Problems of the compiled-in catalogues (none in a tested build).
pub fn shipped_problems() -> &'static [Problem] {
    &SHIPPED.problems
}

/// The catalogue a reader of `lang` gets: its own, or by RFC 4647 lookup
/// that of a broader tag (`fr` for `fr-CA`). None if there is none.
pub fn find(lang: Language) -> Option<&'static Catalogue> {
    std::iter::successors(Some(lang), Language::parent)
        .find_map(|l| shipped().iter().find(|c| c.language == l))
}

/// The language's name in itself, or its tag where no catalogue names it.
pub fn name(lang: Language) -> String {
    match shipped().iter().find(|c| c.language == lang) {
        Some(c) => c.name.clone(),
        None => lang.to_string(),
    }
}

/// The text `key` for a reader of `lang`: from its catalogue, else the
/// English one, else the key itself (a shipped build has every key).
pub fn text(lang: Language, key: &str) -> &'static str {
    find(lang)
        .and_then(|c| c.texts.get(key))
        .or_else(|| shipped().first().and_then(|en| en.texts.get(key)))
        .map_or_else(
            || {
                // Leaked once per missing key at most: the index keeps it.
                static MISSING: LazyLock<std::sync::Mutex<HashMap<String, &'static str>>> =
                    LazyLock::new(Default::default);
                let mut missing = MISSING.lock().unwrap_or_else(|p| p.into_inner());
                *missing
                    .entry(key.to_string())
                    .or_insert_with(|| Box::leak(key.to_string().into_boxed_str()))
            },
            String::as_str,
        )
}

/// [`text`] with its placeholders filled from `args`.
pub fn format(lang: Language, key: &str, args: &[(&str, &dyn Display)]) -> String {
    fill(text(lang, key), |name| {
        args.iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| format!("{{{name}}}"), |(_, v)| v.to_string())
    })
}

/// A text of the console in the reader's language; see the module doc.
#[macro_export]
macro_rules! t {
    ($lang:expr, $key:literal) => {
        $crate::lang::text($lang, $key)
    };
    ($lang:expr, $key:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::lang::format(
            $lang,
            $key,
            &[$((stringify!($name), &$value as &dyn ::std::fmt::Display)),+],
        )
    };
}

/// The `{name}` placeholders of a text, in order. `{{` and `}}` are
/// literal braces.
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(
                                "a `{` is never closed; write `{{` for a literal brace".into()
                            );
                        }
                    }
                }
                names.push(name);
            }
            '}' => return Err("a `}` without its `{`; write `}}` for a literal brace".into()),
            _ => {}
        }
    }
    Ok(names)
}

/// `text` with each placeholder replaced by `value(name)`. A value that
/// ends in a full stop absorbs the stop that follows it in the text
/// ("… в. д." ends a sentence once).
pub fn fill(text: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let v = value(&name);
                if v.ends_with('.') && chars.peek() == Some(&'.') {
                    chars.next();
                }
                out.push_str(&v);
            }
            c => out.push(c),
        }
    }
    out
}
