//! Rendering a message as text in one language, from its template and field
//! values. The sender's rendering is the authoritative original; a reader in
//! another language gets a rendering built from the same fields, marked as
//! such. Free text is never translated: it is shown marked with its language.

use super::Catalog;
use super::model::Template;
use crate::domain::{Dtg, Language, Message};

/// The `{name}` placeholders of a body text, in order. `{{` and `}}` are
/// literal braces.
pub fn placeholders(body: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = body.chars().peekable();
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

fn fill(body: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
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
                // "… в. д." before the sentence's own full stop: one stop.
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

struct Words {
    exercise: &'static str,
    from: &'static str,
    to: &'static str,
    serial: &'static str,
    operator: &'static str,
    references: &'static str,
    attachments: &'static str,
    free_text: &'static str,
    original_in: &'static str,
    message_text: &'static str,
}

fn words(lang: Language) -> Words {
    match lang {
        Language::En => Words {
            exercise: "EXERCISE EXERCISE EXERCISE",
            from: "From",
            to: "to",
            serial: "serial",
            operator: "Operator",
            references: "References",
            attachments: "Attachments",
            free_text: "free text",
            original_in: "original language",
            message_text: "Text",
        },
        Language::Ru => Words {
            exercise: "УЧЕНИЯ УЧЕНИЯ УЧЕНИЯ",
            from: "От",
            to: "для",
            serial: "номер",
            operator: "Оператор",
            references: "Ссылки",
            attachments: "Вложения",
            free_text: "свободный текст",
            original_in: "язык оригинала",
            message_text: "Текст",
        },
    }
}

/// Renders `message` in `lang` from `template`. `sender_lang` is the
/// sender's language, which its free text is in unless the message says
/// otherwise (`text_language`).
pub fn render(
    message: &Message,
    template: &Template,
    lang: Language,
    sender_lang: Language,
) -> String {
    let w = words(lang);
    let mut out = String::new();
    // The marking heads the message, as classification practice has it.
    if let Some(label) = &message.label {
        out.push_str(label);
        out.push('\n');
    }
    if message.exercise {
        out.push_str(w.exercise);
        out.push('\n');
    }
    out.push_str(&format!(
        "{} — {}\n",
        message.precedence,
        template.title.get(lang)
    ));
    out.push_str(&format!(
        "{} {} {} {} · DTG {} · {} {}\n",
        w.from,
        message.from,
        w.to,
        message.to,
        Dtg(message.released_at),
        w.serial,
        message.serial
    ));
    out.push_str(&format!("{}: {}\n", w.operator, message.operator));
    if !message.references.is_empty() {
        let refs: Vec<String> = message.references.iter().map(ToString::to_string).collect();
        out.push_str(&format!("{}: {}\n", w.references, refs.join(", ")));
    }
    out.push('\n');
    let body = fill(template.body.get(lang), |name| {
        match (template.field(name), message.fields.get(name)) {
            (Some(f), Some(v)) => f.render(v, lang),
            _ => "—".to_string(),
        }
    });
    out.push_str(body.trim());
    out.push_str("\n\n");
    let free_mark = format!(
        "[{}, {}: {}]",
        w.free_text,
        w.original_in,
        message.text_language.unwrap_or(sender_lang).native_name()
    );
    for field in &template.fields {
        let Some(v) = message.fields.get(&field.name) else {
            continue;
        };
        let label = field.label.get(lang);
        if matches!(field.kind, super::model::FieldKind::Text { .. }) {
            out.push_str(&format!("{label} {free_mark}:\n{}\n", indent(v)));
        } else {
            out.push_str(&format!("{label}: {}\n", field.render(v, lang)));
        }
    }
    if !message.text.is_empty() {
        out.push_str(&format!(
            "{} {free_mark}:\n{}\n",
            w.message_text,
            indent(&message.text)
        ));
    }
    if !message.attachments.is_empty() {
        out.push_str(&format!("{}:\n", w.attachments));
        for a in &message.attachments {
            out.push_str(&format!(
                "  {} ({} bytes, sha256 {})\n",
                a.name, a.size, a.sha256
            ));
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the reader is shown, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderView {
    /// Rendered in the reader's language from the template fields.
    Rendered { text: String, language: Language },
    /// The sender's own text, because it is already in the reader's language.
    Original { text: String },
    /// The sender's own text, because this station cannot render it.
    OriginalOnly { text: String, reason: String },
}

impl ReaderView {
    pub fn text(&self) -> &str {
        match self {
            ReaderView::Rendered { text, .. }
            | ReaderView::Original { text }
            | ReaderView::OriginalOnly { text, .. } => text,
        }
    }
}

/// Whether a received message's two texts agree: its fields rendered in
/// the sender's language against the sender's own original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginalCheck {
    Agrees,
    /// They differ: the original says something the signed fields do not.
    Differs {
        rendered: String,
    },
    /// It could not be checked here (another template version or renderer
    /// revision, an unknown language), so nothing is claimed either way.
    NotChecked {
        reason: String,
    },
}

/// Renders the fields as the sender did and compares with its original.
pub fn check_original(message: &Message, catalog: &Catalog) -> OriginalCheck {
    let Ok(lang) = message.original.language.parse::<Language>() else {
        return OriginalCheck::NotChecked {
            reason: format!(
                "the sender's language `{}` is not one this station knows",
                message.original.language
            ),
        };
    };
    if message.revision != crate::domain::REVISION {
        return OriginalCheck::NotChecked {
            reason: format!(
                "it was written by renderer revision {}, this station has {}",
                message.revision,
                crate::domain::REVISION
            ),
        };
    }
    let Some(template) = catalog.get(&message.template.id, message.template.version) else {
        return OriginalCheck::NotChecked {
            reason: format!(
                "this station has no template `{}` version {}",
                message.template.id, message.template.version
            ),
        };
    };
    let rendered = render(message, template, lang, lang);
    if rendered == message.original.text {
        OriginalCheck::Agrees
    } else {
        OriginalCheck::Differs { rendered }
    }
}

/// The view a reader in `lang` gets of a received message.
pub fn for_reader(message: &Message, catalog: &Catalog, lang: Language) -> ReaderView {
    let original = message.original.text.clone();
    let sender_lang: Option<Language> = message.original.language.parse().ok();
    if sender_lang == Some(lang) {
        return ReaderView::Original { text: original };
    }
    let Some(sender_lang) = sender_lang else {
        return ReaderView::OriginalOnly {
            text: original,
            reason: format!(
                "the sender's language `{}` is not one this station knows",
                message.original.language
            ),
        };
    };
    match catalog.get(&message.template.id, message.template.version) {
        Some(t) => ReaderView::Rendered {
            text: render(message, t, lang, sender_lang),
            language: lang,
        },
        None => ReaderView::OriginalOnly {
            text: original,
            reason: match catalog.latest(&message.template.id) {
                Some(t) => format!(
                    "this station has template `{}` version {}, not version {}",
                    t.id, t.version, message.template.version
                ),
                None => format!("this station has no template `{}`", message.template.id),
            },
        },
    }
}
