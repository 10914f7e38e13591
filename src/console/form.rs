//! The compose form: a template picker with a filter, then typed fields
//! validated as they are typed, the peer, the precedence and free text.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::compose::Draft;
use crate::domain::{Language, MessageId, OperatorName, Precedence};
use crate::drafts::SavedDraft;
use crate::t;
use crate::templates::{Catalog, FieldKind, Template};

/// Picking a template: type to filter.
#[derive(Clone, Debug, Default)]
pub struct Picker {
    pub filter: String,
    pub selected: usize,
}

impl Picker {
    /// Templates matching the filter, in the operator's language.
    pub fn matches<'c>(&self, catalog: &'c Catalog, lang: Language) -> Vec<&'c Template> {
        let f = self.filter.to_lowercase();
        catalog
            .current()
            .into_iter()
            .filter(|t| {
                f.is_empty() || t.id.contains(&f) || t.title.get(lang).to_lowercase().contains(&f)
            })
            .collect()
    }
}

/// What a form row edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    Peer,
    Precedence,
    Field(usize),
    Text,
    /// Files to attach: a path being typed, added with Enter.
    Attach,
    /// The security marking, chosen with ←/→.
    Label,
}

#[derive(Clone, Debug)]
pub struct Form {
    pub template: Template,
    pub values: Vec<String>,
    pub peer: usize,
    pub precedence: Precedence,
    pub text: String,
    /// The language the free text is written in; `None` is the operator's.
    pub text_language: Option<Language>,
    /// The security marking; `None` is the station's default.
    pub label: Option<String>,
    /// Paths of files to attach (the station reads them at release).
    pub attachments: Vec<String>,
    /// The path being typed on the attach row.
    pub attach_input: String,
    pub references: Vec<MessageId>,
    pub focus: usize,
    pub exercise: bool,
}

impl Form {
    /// Whether the operator has typed anything that would be lost.
    pub fn is_blank(&self) -> bool {
        self.values.iter().all(|v| v.trim().is_empty())
            && self.text.trim().is_empty()
            && self.attachments.is_empty()
            && self.attach_input.trim().is_empty()
    }

    pub fn new(template: Template, references: Vec<MessageId>, exercise: bool) -> Form {
        let precedence = template.precedence;
        Form {
            values: vec![String::new(); template.fields.len()],
            template,
            peer: 0,
            precedence,
            text: String::new(),
            text_language: None,
            label: None,
            attachments: Vec::new(),
            attach_input: String::new(),
            references,
            focus: 0,
            exercise,
        }
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![Row::Peer, Row::Precedence];
        rows.extend((0..self.template.fields.len()).map(Row::Field));
        rows.push(Row::Text);
        rows.push(Row::Attach);
        rows.push(Row::Label);
        rows
    }

    pub fn focused(&self) -> Row {
        self.rows().get(self.focus).cloned().unwrap_or(Row::Text)
    }

    pub fn move_focus(&mut self, forward: bool) {
        let n = self.rows().len();
        self.focus = if forward {
            (self.focus + 1) % n
        } else {
            (self.focus + n - 1) % n
        };
    }

    /// Why the notification as typed now would come too late for its
    /// treaty (the template's notice rule), if it would.
    pub fn short_notice(&self, now: Timestamp, lang: Language) -> Option<String> {
        let rule = self.template.notice.as_ref()?;
        let i = self
            .template
            .fields
            .iter()
            .position(|f| f.name == rule.field)?;
        let value = self.template.fields[i]
            .canonicalize(self.values.get(i)?, now)
            .ok()?;
        self.template
            .short_notice(&BTreeMap::from([(rule.field.clone(), value)]), now, lang)
    }

    /// The validation problem of field `i` as typed now, if any, for a
    /// reader of `lang`.
    pub fn problem(&self, i: usize, now: Timestamp, lang: Language) -> Option<String> {
        let field = self.template.fields.get(i)?;
        let value = self.values.get(i)?;
        if value.trim().is_empty() {
            return field
                .required
                .then(|| t!(lang, "console.required").to_string());
        }
        field.canonicalize(value, now).err().map(|e| match e {
            crate::templates::ValueError::Invalid { problem, .. } => problem.message(lang),
            other => other.message(lang),
        })
    }

    pub fn type_char(&mut self, c: char) {
        match self.focused() {
            Row::Field(i) => {
                if let Some(v) = self.values.get_mut(i) {
                    v.push(c);
                }
            }
            Row::Text => self.text.push(c),
            Row::Attach => self.attach_input.push(c),
            Row::Peer | Row::Precedence | Row::Label => {}
        }
    }

    /// Enter on the attach row: the typed path joins the attachments.
    pub fn add_attachment(&mut self) {
        let path = self.attach_input.trim().to_string();
        if !path.is_empty() && !self.attachments.contains(&path) {
            self.attachments.push(path);
        }
        self.attach_input.clear();
    }

    pub fn backspace(&mut self) {
        match self.focused() {
            Row::Field(i) => {
                if let Some(v) = self.values.get_mut(i) {
                    v.pop();
                }
            }
            Row::Text => {
                self.text.pop();
            }
            // On an empty path, Backspace takes back the last attachment.
            Row::Attach => {
                if self.attach_input.pop().is_none() {
                    self.attachments.pop();
                }
            }
            Row::Peer | Row::Precedence | Row::Label => {}
        }
    }

    /// ←/→ on the marking row: the next marking of `labels`, from its
    /// default.
    pub fn cycle_label(&mut self, forward: bool, labels: &crate::config::LabelPolicy) {
        let n = labels.markings.len();
        if n == 0 {
            return;
        }
        let at = labels
            .rank(self.label.as_deref().unwrap_or(&labels.default))
            .unwrap_or(0);
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        self.label = Some(labels.markings[next].clone());
    }

    /// ←/→ on a choice field, the peer or the precedence.
    pub fn cycle(&mut self, forward: bool, peers: usize) {
        let step = |i: usize, n: usize| {
            if forward {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            }
        };
        match self.focused() {
            Row::Peer if peers > 0 => self.peer = step(self.peer, peers),
            Row::Precedence => {
                let i = self.precedence.rank() as usize;
                self.precedence = Precedence::ALL[step(i, 4)];
            }
            Row::Field(i) => {
                if let Some(FieldKind::Choice(choices)) =
                    self.template.fields.get(i).map(|f| &f.kind)
                    && !choices.is_empty()
                {
                    let current = choices.iter().position(|c| c.value == self.values[i]);
                    let next = match current {
                        Some(p) => step(p, choices.len()),
                        None => 0,
                    };
                    self.values[i] = choices[next].value.clone();
                }
            }
            _ => {}
        }
    }

    /// ←/→ on the free-text row: the language the text is written in,
    /// starting from the operator's, `lang`.
    pub fn cycle_text_language(&mut self, forward: bool, lang: Language) {
        let all = crate::lang::shipped_languages();
        let at = all
            .iter()
            .position(|l| *l == self.text_language.unwrap_or(lang))
            .unwrap_or(0);
        let n = all.len();
        self.text_language = Some(
            all[if forward {
                (at + 1) % n
            } else {
                (at + n - 1) % n
            }],
        );
    }

    pub fn draft(&self) -> Draft {
        let fields: BTreeMap<String, String> = self
            .template
            .fields
            .iter()
            .zip(&self.values)
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(f, v)| (f.name.clone(), v.clone()))
            .collect();
        Draft {
            template_id: self.template.id.clone(),
            fields,
            precedence: Some(self.precedence),
            text: self.text.clone(),
            text_language: self.text_language,
            label: self.label.clone(),
            references: self.references.clone(),
            exercise: self.exercise,
        }
    }
}

impl Form {
    /// The form as it is kept on disk, for `operator`.
    pub fn saved(
        &self,
        operator: &OperatorName,
        peers: &[(String, String)],
        now: Timestamp,
    ) -> SavedDraft {
        let mut attachments = self.attachments.clone();
        if !self.attach_input.trim().is_empty() {
            attachments.push(self.attach_input.clone());
        }
        SavedDraft {
            operator: operator.clone(),
            to: peers
                .get(self.peer)
                .map(|(p, _)| p.clone())
                .unwrap_or_default(),
            draft: self.draft(),
            attachments,
            saved_at: now,
        }
    }

    /// A kept draft back on the form: its template as this build has it,
    /// every value typed, the peer where it is still configured. Why not,
    /// for a reader of `lang`.
    pub fn from_saved(
        saved: &SavedDraft,
        catalog: &Catalog,
        peers: &[(String, String)],
        lang: Language,
    ) -> Result<Form, String> {
        let template = catalog
            .latest(&saved.draft.template_id)
            .ok_or_else(|| {
                t!(
                    lang,
                    "console.draft_form_unknown",
                    form = crate::sanitize::inert(&saved.draft.template_id)
                )
            })?
            .clone();
        let mut form = Form::new(
            template,
            saved.draft.references.clone(),
            saved.draft.exercise,
        );
        for (field, value) in form.template.fields.iter().zip(form.values.iter_mut()) {
            if let Some(v) = saved.draft.fields.get(&field.name) {
                value.clone_from(v);
            }
        }
        if let Some(p) = saved.draft.precedence {
            form.precedence = p;
        }
        form.text.clone_from(&saved.draft.text);
        form.text_language = saved.draft.text_language;
        form.label.clone_from(&saved.draft.label);
        // A value whose field this build's template no longer has is not
        // dropped: it moves into the free text, where the operator sees it.
        for (name, value) in &saved.draft.fields {
            if !form.template.fields.iter().any(|f| &f.name == name) {
                form.text.push_str(&format!("\n{name}: {value}"));
            }
        }
        form.attachments.clone_from(&saved.attachments);
        form.peer = peers.iter().position(|(p, _)| *p == saved.to).unwrap_or(0);
        Ok(form)
    }
}
