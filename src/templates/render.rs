//! Rendering a message as text in one language, from its template and field
//! values. The sender's rendering is the authoritative original; a reader in
//! another language gets a rendering built from the same fields, marked as
//! such. Free text is never translated: it is shown marked with its language.

use super::Catalog;
use super::model::Template;
use crate::domain::{Dtg, Language, Message};

use crate::lang::fill;
pub use crate::lang::placeholders;

/// Renders `message` in `lang` from `template`. `sender_lang` is the
/// sender's language, which its free text is in unless the message says
/// otherwise (`text_language`).
pub fn render(
    message: &Message,
    template: &Template,
    lang: Language,
    sender_lang: Language,
) -> String {
    let mut out = String::new();
    // The marking heads the message, as classification practice has it.
    if let Some(label) = &message.label {
        out.push_str(label);
        out.push('\n');
    }
    if message.exercise {
        out.push_str(crate::t!(lang, "render.exercise"));
        out.push('\n');
    }
    out.push_str(&format!(
        "{} — {}\n",
        message.precedence,
        template.title.get(lang)
    ));
    out.push_str(&crate::t!(
        lang,
        "render.heading",
        from = message.from,
        to = message.to,
        dtg = Dtg(message.released_at),
        serial = message.serial
    ));
    out.push('\n');
    out.push_str(&crate::t!(lang, "render.operator", name = message.operator));
    out.push('\n');
    if !message.references.is_empty() {
        let refs: Vec<String> = message.references.iter().map(ToString::to_string).collect();
        out.push_str(&crate::t!(
            lang,
            "render.references",
            list = refs.join(", ")
        ));
        out.push('\n');
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
    let free_mark = crate::t!(
        lang,
        "render.free_text",
        language = crate::lang::name(message.text_language.unwrap_or(sender_lang))
    );
    for field in &template.fields {
        let Some(v) = message.fields.get(&field.name) else {
            continue;
        };
        let label = field.label.get(lang);
        if matches!(field.kind, super::model::FieldKind::Text { .. }) {
            out.push_str(&crate::t!(
                lang,
                "render.free_field",
                label = label,
                mark = free_mark
            ));
            out.push_str(&format!("\n{}\n", indent(v)));
        } else {
            out.push_str(&crate::t!(
                lang,
                "render.field",
                label = label,
                value = field.render(v, lang)
            ));
            out.push('\n');
        }
    }
    if !message.text.is_empty() {
        out.push_str(&crate::t!(
            lang,
            "render.free_field",
            label = crate::t!(lang, "render.text"),
            mark = free_mark
        ));
        out.push_str(&format!("\n{}\n", indent(&message.text)));
    }
    if !message.attachments.is_empty() {
        out.push_str(crate::t!(lang, "render.attachments"));
        out.push('\n');
        for a in &message.attachments {
            out.push_str(&crate::t!(
                lang,
                "render.attachment",
                name = a.name,
                size = a.size,
                sha256 = a.sha256
            ));
            out.push('\n');
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
    /// Rendered from the template fields in the reader's language, or in
    /// the one the template falls back to where it lacks the reader's.
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
/// A reason it gives is in `reader`'s language.
pub fn check_original(message: &Message, catalog: &Catalog, reader: Language) -> OriginalCheck {
    let Ok(lang) = message.original.language.parse::<Language>() else {
        return OriginalCheck::NotChecked {
            reason: unknown_language(message, reader),
        };
    };
    if message.revision != crate::domain::REVISION {
        return OriginalCheck::NotChecked {
            reason: crate::t!(
                reader,
                "render.other_revision",
                theirs = message.revision,
                ours = crate::domain::REVISION
            ),
        };
    }
    let Some(template) = catalog.get(&message.template.id, message.template.version) else {
        return OriginalCheck::NotChecked {
            reason: no_template(message, catalog, reader),
        };
    };
    // Words this station has not got for the sender's language would make
    // a different text of the same fields: nothing to compare.
    if !template.speaks(lang) || crate::lang::find(lang).is_none() {
        return OriginalCheck::NotChecked {
            reason: unknown_language(message, reader),
        };
    }
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
            reason: unknown_language(message, lang),
        };
    };
    match catalog.get(&message.template.id, message.template.version) {
        // A template without the reader's language: the sender's own text
        // if it is the one the template falls back to, else a rendering in
        // that one; the view says which it is.
        Some(t) if t.rendered_in(lang) == sender_lang => ReaderView::Original { text: original },
        Some(t) => {
            let language = t.rendered_in(lang);
            ReaderView::Rendered {
                text: render(message, t, language, sender_lang),
                language,
            }
        }
        None => ReaderView::OriginalOnly {
            text: original,
            reason: no_template(message, catalog, lang),
        },
    }
}

fn unknown_language(message: &Message, reader: Language) -> String {
    crate::t!(
        reader,
        "render.unknown_language",
        tag = message.original.language
    )
}

fn no_template(message: &Message, catalog: &Catalog, reader: Language) -> String {
    match catalog.latest(&message.template.id) {
        Some(t) => crate::t!(
            reader,
            "render.other_version",
            id = t.id,
            ours = t.version,
            theirs = message.template.version
        ),
        None => crate::t!(reader, "render.no_template", id = message.template.id),
    }
}
