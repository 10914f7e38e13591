//! The one keymap table. The footer, the help overlay and the input handling
//! are all generated from it, and operator.toml can rebind any action;
//! conflicts within a context are reported.

use std::collections::BTreeMap;
use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::domain::Language;
use crate::t;

/// Where a key applies. Text-entry contexts only bind keys that cannot be
/// typed as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    Login,
    Handover,
    Queue,
    Sent,
    Message,
    Picker,
    Form,
    Confirm,
    WhiteCell,
    Report,
    Alarms,
    /// Typing what to find in a list.
    Find,
    /// The exercise's objectives panel.
    Objectives,
    /// Typing a facilitator's note in the white cell's panel.
    Note,
}

impl Context {
    /// The context as the help overlay titles it.
    pub fn name(self, lang: Language) -> &'static str {
        match self {
            Context::Global => t!(lang, "context.global"),
            Context::Login => t!(lang, "context.login"),
            Context::Handover => t!(lang, "context.handover"),
            Context::Queue => t!(lang, "context.queue"),
            Context::Sent => t!(lang, "context.sent"),
            Context::Message => t!(lang, "context.message"),
            Context::Picker => t!(lang, "context.picker"),
            Context::Form => t!(lang, "context.form"),
            Context::Confirm => t!(lang, "context.confirm"),
            Context::WhiteCell => t!(lang, "context.white_cell"),
            Context::Report => t!(lang, "context.report"),
            Context::Alarms => t!(lang, "context.alarms"),
            Context::Find => t!(lang, "context.find"),
            Context::Objectives => t!(lang, "context.objectives"),
            Context::Note => t!(lang, "evaluation.context_note"),
        }
    }

    /// Contexts where printable keys are text, not commands.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            Context::Login | Context::Picker | Context::Form | Context::Find | Context::Note
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Lock,
    SwitchList,
    Compose,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Acknowledge,
    Reply,
    AckAndReply,
    ToggleOriginal,
    ExportAttachments,
    CancelMessage,
    LinkTest,
    Submit,
    NextField,
    PrevField,
    ChoiceNext,
    ChoicePrev,
    Preview,
    Release,
    Yes,
    No,
    WhiteCell,
    TogglePause,
    Faster,
    Slower,
    SkipInject,
    AdHocInject,
    AdmitStation,
    RefuseStation,
    ShowReport,
    Alarms,
    ClearAlarm,
    Find,
    NextMatch,
    PrevMatch,
    Objectives,
    /// The white cell: the selected objective's evaluator rating, cycled.
    RateObjective,
    /// The white cell: type a note for the report.
    AddNote,
    /// The note entry: strength or area for improvement.
    NoteKind,
}

/// One binding: action, where, and key; [`Binding::label`] and
/// [`Binding::help`] say what the footer and help show for it.
#[derive(Clone, Debug)]
pub struct Binding {
    pub action: Action,
    pub context: Context,
    pub key: Key,
}

impl Binding {
    /// The footer's word for the action here (short).
    pub fn label(&self, lang: Language) -> &'static str {
        use Action::*;
        use Context as C;
        match (self.action, self.context) {
            (Quit, _) => t!(lang, "keys.quit"),
            (Help, _) => t!(lang, "keys.help"),
            (Lock, _) => t!(lang, "keys.lock"),
            (SwitchList, C::Sent) => t!(lang, "keys.inbound"),
            (SwitchList, _) => t!(lang, "keys.sent_list"),
            (Compose, _) => t!(lang, "keys.compose"),
            (Up | Down, C::Message) => t!(lang, "keys.scroll"),
            (Up, C::WhiteCell) => t!(lang, "keys.station_previous"),
            (Up, _) => t!(lang, "keys.up"),
            (Down, C::WhiteCell) => t!(lang, "keys.station_next"),
            (Down, _) => t!(lang, "keys.down"),
            (PageUp, _) => t!(lang, "keys.page_up"),
            (PageDown, _) => t!(lang, "keys.page_down"),
            (Top, C::Message) => t!(lang, "keys.top"),
            (Top, _) => t!(lang, "keys.first"),
            (Bottom, C::Message) => t!(lang, "keys.end"),
            (Bottom, _) => t!(lang, "keys.last"),
            (Open, C::Handover) => t!(lang, "keys.take_over"),
            (Open, _) => t!(lang, "keys.read"),
            (Back, C::Queue | C::Sent) => t!(lang, "keys.clear_find"),
            (Back, C::Find) => t!(lang, "keys.cancel_find"),
            (Back, C::Message) => t!(lang, "keys.back"),
            (Back, C::Picker | C::Form) => t!(lang, "keys.abandon"),
            (Back, C::Note) => t!(lang, "evaluation.cancel_note_label"),
            (Back, _) => t!(lang, "keys.close"),
            (Acknowledge, _) => t!(lang, "keys.acknowledge"),
            (Reply, C::Sent) => t!(lang, "keys.correct"),
            (Reply, _) => t!(lang, "keys.reply"),
            (AckAndReply, _) => t!(lang, "keys.ack_reply"),
            (ToggleOriginal, _) => t!(lang, "keys.original"),
            (ExportAttachments, _) => t!(lang, "keys.export"),
            (CancelMessage, _) => t!(lang, "keys.cancel_message"),
            (LinkTest, _) => t!(lang, "keys.link_test"),
            (Submit, C::Login) => t!(lang, "keys.log_in"),
            (Submit, C::Find) => t!(lang, "keys.search_all"),
            (Submit, C::Note) => t!(lang, "evaluation.save_note_label"),
            (Submit, _) => t!(lang, "keys.choose"),
            (NextField, C::Login) => t!(lang, "keys.next_field"),
            (NextField, _) => t!(lang, "keys.form_next"),
            (PrevField, _) => t!(lang, "keys.form_previous"),
            (ChoiceNext, C::WhiteCell) => t!(lang, "evaluation.objective_next_label"),
            (ChoiceNext, _) => t!(lang, "keys.choice_next"),
            (ChoicePrev, C::WhiteCell) => t!(lang, "evaluation.objective_previous_label"),
            (ChoicePrev, _) => t!(lang, "keys.choice_previous"),
            (Preview, _) => t!(lang, "keys.preview"),
            (Release, _) => t!(lang, "keys.release"),
            (Yes, _) => t!(lang, "keys.yes"),
            (No, _) => t!(lang, "keys.no"),
            (WhiteCell, C::WhiteCell) => t!(lang, "keys.close"),
            (WhiteCell, _) => t!(lang, "keys.white_cell"),
            (TogglePause, _) => t!(lang, "keys.pause"),
            (Faster, _) => t!(lang, "keys.faster"),
            (Slower, _) => t!(lang, "keys.slower"),
            (SkipInject, _) => t!(lang, "keys.skip"),
            (AdHocInject, _) => t!(lang, "keys.inject"),
            (AdmitStation, _) => t!(lang, "keys.admit"),
            (RefuseStation, _) => t!(lang, "keys.refuse"),
            (ShowReport, _) => t!(lang, "keys.report"),
            (RateObjective, _) => t!(lang, "evaluation.rate_label"),
            (AddNote, _) => t!(lang, "evaluation.note_label"),
            (NoteKind, _) => t!(lang, "evaluation.note_kind_label"),
            (Alarms, C::Alarms) => t!(lang, "keys.close"),
            (Alarms, _) => t!(lang, "keys.alarms"),
            (Objectives, C::Objectives) => t!(lang, "keys.close"),
            (Objectives, _) => t!(lang, "keys.objectives"),
            (ClearAlarm, _) => t!(lang, "keys.clear_alarm"),
            (Find, _) => t!(lang, "keys.find"),
            (NextMatch, _) => t!(lang, "keys.next_match"),
            (PrevMatch, _) => t!(lang, "keys.previous_match"),
        }
    }

    /// What the action does here, as the help overlay says it.
    pub fn help(&self, lang: Language) -> &'static str {
        use Action::*;
        use Context as C;
        match (self.action, self.context) {
            (Quit, _) => t!(lang, "keys.quit_help"),
            (Help, _) => t!(lang, "keys.help_help"),
            (Lock, _) => t!(lang, "keys.lock_help"),
            (SwitchList, _) => t!(lang, "keys.switch_list_help"),
            (Compose, _) => t!(lang, "keys.compose_help"),
            (Up, C::Message) => t!(lang, "keys.scroll_up_help"),
            (Up, C::Picker) => t!(lang, "keys.up_template_help"),
            (Up, C::Alarms) => t!(lang, "keys.up_alarm_help"),
            (Up, C::WhiteCell) => t!(lang, "keys.station_previous_help"),
            (Up, C::Report | C::Objectives) => t!(lang, "keys.up_report_help"),
            (Up, _) => t!(lang, "keys.up_message_help"),
            (Down, C::Message) => t!(lang, "keys.scroll_down_help"),
            (Down, C::Picker) => t!(lang, "keys.down_template_help"),
            (Down, C::Alarms) => t!(lang, "keys.down_alarm_help"),
            (Down, C::WhiteCell) => t!(lang, "keys.station_next_help"),
            (Down, C::Report | C::Objectives) => t!(lang, "keys.down_report_help"),
            (Down, _) => t!(lang, "keys.down_message_help"),
            (PageUp, C::Message | C::Report) => t!(lang, "keys.page_up_text_help"),
            (PageUp, _) => t!(lang, "keys.page_up_list_help"),
            (PageDown, C::Message | C::Report) => t!(lang, "keys.page_down_text_help"),
            (PageDown, _) => t!(lang, "keys.page_down_list_help"),
            (Top, C::Message) => t!(lang, "keys.top_help"),
            (Top, _) => t!(lang, "keys.first_help"),
            (Bottom, C::Message) => t!(lang, "keys.end_help"),
            (Bottom, _) => t!(lang, "keys.last_help"),
            (Open, C::Handover) => t!(lang, "keys.take_over_help"),
            (Open, _) => t!(lang, "keys.read_help"),
            (Back, C::Queue | C::Sent) => t!(lang, "keys.clear_find_help"),
            (Back, C::Find) => t!(lang, "keys.cancel_find_help"),
            (Back, C::Message) => t!(lang, "keys.back_help"),
            (Back, C::Picker) => t!(lang, "keys.abandon_compose_help"),
            (Back, C::Form) => t!(lang, "keys.abandon_draft_help"),
            (Back, C::Note) => t!(lang, "evaluation.cancel_note_help"),
            (Back, _) => t!(lang, "keys.close_report_help"),
            (Acknowledge, C::Message) => t!(lang, "keys.acknowledge_this_help"),
            (Acknowledge, _) => t!(lang, "keys.acknowledge_selected_help"),
            (Reply, C::Sent) => t!(lang, "keys.correct_help"),
            (Reply, C::Message) => t!(lang, "keys.reply_this_help"),
            (Reply, _) => t!(lang, "keys.reply_selected_help"),
            (AckAndReply, _) => t!(lang, "keys.ack_reply_help"),
            (ToggleOriginal, _) => t!(lang, "keys.original_help"),
            (ExportAttachments, _) => t!(lang, "keys.export_help"),
            (CancelMessage, _) => t!(lang, "keys.cancel_message_help"),
            (LinkTest, _) => t!(lang, "keys.link_test_help"),
            (Submit, C::Login) => t!(lang, "keys.log_in_help"),
            (Submit, C::Find) => t!(lang, "keys.search_all_help"),
            (Submit, C::Note) => t!(lang, "evaluation.save_note_help"),
            (Submit, _) => t!(lang, "keys.choose_help"),
            (NextField, C::Login) => t!(lang, "keys.next_field_help"),
            (NextField, _) => t!(lang, "keys.form_next_help"),
            (PrevField, _) => t!(lang, "keys.form_previous_help"),
            (ChoiceNext, C::WhiteCell) => t!(lang, "evaluation.objective_next_help"),
            (ChoiceNext, _) => t!(lang, "keys.choice_next_help"),
            (ChoicePrev, C::WhiteCell) => t!(lang, "evaluation.objective_previous_help"),
            (ChoicePrev, _) => t!(lang, "keys.choice_previous_help"),
            (Preview, _) => t!(lang, "keys.preview_help"),
            (Release, _) => t!(lang, "keys.release_help"),
            (Yes, _) => t!(lang, "keys.yes_help"),
            (No, _) => t!(lang, "keys.no_help"),
            (WhiteCell, C::WhiteCell) => t!(lang, "keys.close_white_cell_help"),
            (WhiteCell, _) => t!(lang, "keys.white_cell_help"),
            (TogglePause, _) => t!(lang, "keys.pause_help"),
            (Faster, _) => t!(lang, "keys.faster_help"),
            (Slower, _) => t!(lang, "keys.slower_help"),
            (SkipInject, _) => t!(lang, "keys.skip_help"),
            (AdHocInject, _) => t!(lang, "keys.inject_help"),
            (AdmitStation, _) => t!(lang, "keys.admit_help"),
            (RefuseStation, _) => t!(lang, "keys.refuse_help"),
            (ShowReport, _) => t!(lang, "keys.report_help"),
            (RateObjective, _) => t!(lang, "evaluation.rate_help"),
            (AddNote, _) => t!(lang, "evaluation.note_help"),
            (NoteKind, _) => t!(lang, "evaluation.note_kind_help"),
            (Alarms, C::Alarms) => t!(lang, "keys.close_alarms_help"),
            (Objectives, C::Objectives) => t!(lang, "keys.close_objectives_help"),
            (Objectives, _) => t!(lang, "keys.objectives_help"),
            (Alarms, _) => t!(lang, "keys.alarms_help"),
            (ClearAlarm, _) => t!(lang, "keys.clear_alarm_help"),
            (Find, _) => t!(lang, "keys.find_help"),
            (NextMatch, _) => t!(lang, "keys.next_match_help"),
            (PrevMatch, _) => t!(lang, "keys.previous_match_help"),
        }
    }
}

/// A key as written in operator.toml: `a`, `R`, `enter`, `esc`, `tab`,
/// `backtab`, `up`, `down`, `left`, `right`, `pageup`, `pagedown`, `f1`…`f12`,
/// `ctrl-l`, `?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    const fn plain(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }

    const fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: true,
        }
    }

    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let code = match ev.code {
            KeyCode::Char(c) if ctrl => KeyCode::Char(c.to_ascii_lowercase()),
            other => other,
        };
        code == self.code && ctrl == self.ctrl
    }

    /// Whether this key would be typed as text in a text field.
    pub fn is_text(&self) -> bool {
        matches!(self.code, KeyCode::Char(_)) && !self.ctrl
    }

    pub fn parse(text: &str) -> Result<Key, String> {
        let t = text.trim();
        let (ctrl, rest) = match t.to_ascii_lowercase().strip_prefix("ctrl-") {
            Some(_) => (true, &t[5..]),
            None => (false, t),
        };
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            f if f.starts_with('f')
                && f.len() > 1
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_control() => {
                        KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
                    }
                    _ => {
                        return Err(format!(
                            "`{text}` is not a key; write a single character (`a`, `?`), a name (enter, esc, tab, backtab, up, down, \
                             left, right, pageup, pagedown, home, end, space, f1…f12), or ctrl- before one"
                        ));
                    }
                }
            }
        };
        Ok(Key { code, ctrl })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::F(n) => write!(f, "F{n}"),
            _ => f.write_str("?"),
        }
    }
}

fn action_name(a: Action) -> String {
    let debug = format!("{a:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

const fn b(action: Action, context: Context, key: Key) -> Binding {
    Binding {
        action,
        context,
        key,
    }
}

/// The default bindings. Order is the order of the footer and the help;
/// [`Binding::label`] and [`Binding::help`] hold their texts.
pub fn defaults() -> Vec<Binding> {
    use Action::*;
    use Context as C;
    vec![
        b(Help, C::Global, Key::ch('?')),
        b(Help, C::Global, Key::plain(KeyCode::F(1))),
        b(Lock, C::Global, Key::ctrl('l')),
        b(Alarms, C::Global, Key::plain(KeyCode::F(3))),
        b(Quit, C::Global, Key::ctrl('q')),
        b(Submit, C::Login, Key::plain(KeyCode::Enter)),
        b(NextField, C::Login, Key::plain(KeyCode::Tab)),
        b(Open, C::Handover, Key::plain(KeyCode::Enter)),
        b(Up, C::Queue, Key::plain(KeyCode::Up)),
        b(Down, C::Queue, Key::plain(KeyCode::Down)),
        b(PageUp, C::Queue, Key::plain(KeyCode::PageUp)),
        b(PageDown, C::Queue, Key::plain(KeyCode::PageDown)),
        b(Top, C::Queue, Key::plain(KeyCode::Home)),
        b(Bottom, C::Queue, Key::plain(KeyCode::End)),
        b(Up, C::Queue, Key::ch('k')),
        b(Down, C::Queue, Key::ch('j')),
        b(Top, C::Queue, Key::ch('g')),
        b(Bottom, C::Queue, Key::ch('G')),
        b(Open, C::Queue, Key::plain(KeyCode::Enter)),
        b(Acknowledge, C::Queue, Key::ch('a')),
        b(Reply, C::Queue, Key::ch('r')),
        b(AckAndReply, C::Queue, Key::ch('R')),
        b(Compose, C::Queue, Key::ch('c')),
        b(SwitchList, C::Queue, Key::plain(KeyCode::Tab)),
        b(LinkTest, C::Queue, Key::ch('t')),
        b(Find, C::Queue, Key::ch('/')),
        b(NextMatch, C::Queue, Key::ch('n')),
        b(PrevMatch, C::Queue, Key::ch('N')),
        b(Back, C::Queue, Key::plain(KeyCode::Esc)),
        b(Up, C::Sent, Key::plain(KeyCode::Up)),
        b(Down, C::Sent, Key::plain(KeyCode::Down)),
        b(PageUp, C::Sent, Key::plain(KeyCode::PageUp)),
        b(PageDown, C::Sent, Key::plain(KeyCode::PageDown)),
        b(Top, C::Sent, Key::plain(KeyCode::Home)),
        b(Bottom, C::Sent, Key::plain(KeyCode::End)),
        b(Up, C::Sent, Key::ch('k')),
        b(Down, C::Sent, Key::ch('j')),
        b(Top, C::Sent, Key::ch('g')),
        b(Bottom, C::Sent, Key::ch('G')),
        b(Open, C::Sent, Key::plain(KeyCode::Enter)),
        b(CancelMessage, C::Sent, Key::ch('x')),
        b(Reply, C::Sent, Key::ch('r')),
        b(Compose, C::Sent, Key::ch('c')),
        b(SwitchList, C::Sent, Key::plain(KeyCode::Tab)),
        b(Find, C::Sent, Key::ch('/')),
        b(NextMatch, C::Sent, Key::ch('n')),
        b(PrevMatch, C::Sent, Key::ch('N')),
        b(Back, C::Sent, Key::plain(KeyCode::Esc)),
        b(Submit, C::Find, Key::plain(KeyCode::Enter)),
        b(Back, C::Find, Key::plain(KeyCode::Esc)),
        b(Back, C::Message, Key::plain(KeyCode::Esc)),
        b(ToggleOriginal, C::Message, Key::ch('o')),
        b(ExportAttachments, C::Message, Key::ch('e')),
        b(Acknowledge, C::Message, Key::ch('a')),
        b(Reply, C::Message, Key::ch('r')),
        b(AckAndReply, C::Message, Key::ch('R')),
        b(Up, C::Message, Key::plain(KeyCode::Up)),
        b(Up, C::Message, Key::ch('k')),
        b(Down, C::Message, Key::plain(KeyCode::Down)),
        b(Down, C::Message, Key::ch('j')),
        b(PageUp, C::Message, Key::plain(KeyCode::PageUp)),
        b(PageDown, C::Message, Key::plain(KeyCode::PageDown)),
        b(PageDown, C::Message, Key::ch(' ')),
        b(Top, C::Message, Key::plain(KeyCode::Home)),
        b(Top, C::Message, Key::ch('g')),
        b(Bottom, C::Message, Key::plain(KeyCode::End)),
        b(Bottom, C::Message, Key::ch('G')),
        b(Up, C::Picker, Key::plain(KeyCode::Up)),
        b(Down, C::Picker, Key::plain(KeyCode::Down)),
        b(Submit, C::Picker, Key::plain(KeyCode::Enter)),
        b(Back, C::Picker, Key::plain(KeyCode::Esc)),
        b(NextField, C::Form, Key::plain(KeyCode::Tab)),
        b(PrevField, C::Form, Key::plain(KeyCode::BackTab)),
        b(NextField, C::Form, Key::plain(KeyCode::Down)),
        b(PrevField, C::Form, Key::plain(KeyCode::Up)),
        b(ChoiceNext, C::Form, Key::plain(KeyCode::Right)),
        b(ChoicePrev, C::Form, Key::plain(KeyCode::Left)),
        b(Release, C::Form, Key::plain(KeyCode::F(5))),
        b(Preview, C::Form, Key::plain(KeyCode::F(2))),
        b(Back, C::Form, Key::plain(KeyCode::Esc)),
        b(Yes, C::Confirm, Key::ch('y')),
        b(No, C::Confirm, Key::plain(KeyCode::Esc)),
        b(No, C::Confirm, Key::ch('n')),
        b(ClearAlarm, C::Alarms, Key::ch('x')),
        b(Up, C::Alarms, Key::plain(KeyCode::Up)),
        b(Down, C::Alarms, Key::plain(KeyCode::Down)),
        b(Alarms, C::Alarms, Key::plain(KeyCode::Esc)),
    ]
}

/// The keymap in force: the defaults with operator.toml's rebindings.
#[derive(Clone, Debug)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: defaults(),
        }
    }
}

impl Keymap {
    /// Adds the facilitator's keys for a tabletop exercise.
    /// The keys of a trainee in an exercise: the objectives panel.
    pub fn with_objectives(mut self) -> Keymap {
        use Action::*;
        use Context as C;
        self.bindings.extend([
            b(Objectives, C::Global, Key::plain(KeyCode::F(8))),
            b(Objectives, C::Objectives, Key::plain(KeyCode::Esc)),
            b(Up, C::Objectives, Key::plain(KeyCode::Up)),
            b(Down, C::Objectives, Key::plain(KeyCode::Down)),
        ]);
        self
    }

    pub fn with_white_cell(mut self) -> Keymap {
        use Action::*;
        use Context as C;
        self = self.with_objectives();
        self.bindings.extend([
            b(WhiteCell, C::Global, Key::plain(KeyCode::F(9))),
            b(TogglePause, C::WhiteCell, Key::ch('p')),
            b(Faster, C::WhiteCell, Key::ch('+')),
            b(Slower, C::WhiteCell, Key::ch('-')),
            b(SkipInject, C::WhiteCell, Key::ch('s')),
            b(AdHocInject, C::WhiteCell, Key::ch('i')),
            b(Up, C::WhiteCell, Key::plain(KeyCode::Up)),
            b(Down, C::WhiteCell, Key::plain(KeyCode::Down)),
            b(AdmitStation, C::WhiteCell, Key::ch('a')),
            b(RefuseStation, C::WhiteCell, Key::ch('x')),
            b(ShowReport, C::WhiteCell, Key::ch('w')),
            b(WhiteCell, C::WhiteCell, Key::plain(KeyCode::Esc)),
            b(RateObjective, C::WhiteCell, Key::ch('r')),
            b(AddNote, C::WhiteCell, Key::ch('n')),
            b(ChoicePrev, C::WhiteCell, Key::plain(KeyCode::Left)),
            b(ChoiceNext, C::WhiteCell, Key::plain(KeyCode::Right)),
            b(Submit, C::Note, Key::plain(KeyCode::Enter)),
            b(NoteKind, C::Note, Key::plain(KeyCode::Tab)),
            b(Back, C::Note, Key::plain(KeyCode::Esc)),
            b(Up, C::Report, Key::plain(KeyCode::Up)),
            b(Down, C::Report, Key::plain(KeyCode::Down)),
            b(PageUp, C::Report, Key::plain(KeyCode::PageUp)),
            b(PageDown, C::Report, Key::plain(KeyCode::PageDown)),
            b(Back, C::Report, Key::plain(KeyCode::Esc)),
        ]);
        self
    }

    /// Applies rebindings (`action` → key text). Each rebinding replaces
    /// the action's first key in every context. Returns every problem:
    /// unknown actions, unreadable keys, text keys in text contexts, and two
    /// actions on one key in one context. They are for `hotline check` and
    /// the log, so in English.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Keymap, Vec<String>> {
        let mut map = Keymap::default();
        let mut problems = Vec::new();
        let names: Vec<(String, Action)> = map
            .bindings
            .iter()
            .map(|b| (action_name(b.action), b.action))
            .collect();
        for (name, key_text) in overrides {
            let Some(action) = names.iter().find(|(n, _)| n == name).map(|(_, a)| *a) else {
                let mut valid: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
                valid.sort_unstable();
                valid.dedup();
                problems.push(format!(
                    "`{name}` is not an action; valid actions: {}",
                    valid.join(", ")
                ));
                continue;
            };
            let key = match Key::parse(key_text) {
                Ok(k) => k,
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let mut seen = std::collections::HashSet::new();
            for binding in map.bindings.iter_mut().filter(|b| b.action == action) {
                if seen.insert(binding.context) {
                    if key.is_text() && binding.context.takes_text() {
                        problems.push(format!(
                            "{name}: `{key_text}` would be typed as text in the {}",
                            binding.context.name(Language::EN)
                        ));
                        continue;
                    }
                    binding.key = key;
                }
            }
        }
        for (i, a) in map.bindings.iter().enumerate() {
            for other in &map.bindings[i + 1..] {
                let overlap = a.context == other.context
                    || a.context == Context::Global
                    || other.context == Context::Global;
                if overlap && a.key == other.key && a.action != other.action {
                    problems.push(format!(
                        "key {} is bound to both {} and {} in the {}",
                        a.key,
                        action_name(a.action),
                        action_name(other.action),
                        if a.context == Context::Global {
                            other.context.name(Language::EN)
                        } else {
                            a.context.name(Language::EN)
                        }
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(problems)
        }
    }

    /// The action a key press means in `context` (global bindings last).
    pub fn action(&self, context: Context, ev: &KeyEvent) -> Option<Action> {
        self.bindings
            .iter()
            .find(|b| b.context == context && b.key.matches(ev))
            .or_else(|| {
                // A global key that is a character is text where text is
                // typed (`?` in a form is a question mark).
                self.bindings.iter().find(|b| {
                    b.context == Context::Global
                        && b.key.matches(ev)
                        && !(context.takes_text() && b.key.is_text())
                })
            })
            .map(|b| b.action)
    }

    /// The footer for `context`: each action once, with its key: what can
    /// be done here first, then the global keys, then moving (obvious, so
    /// the first to give way on a narrow terminal; help lists them all).
    pub fn footer(&self, context: Context, lang: Language) -> Vec<(String, &'static str)> {
        self.footer_actions(context, lang)
            .into_iter()
            .map(|(key, _, label)| (key, label))
            .collect()
    }

    /// [`Keymap::footer`], with the action of each key.
    pub fn footer_actions(
        &self,
        context: Context,
        lang: Language,
    ) -> Vec<(String, Action, &'static str)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        // Moving the selection is obvious and comes last; what can be done
        // to the message comes first.
        let moves = |a: Action| {
            matches!(
                a,
                Action::Up
                    | Action::Down
                    | Action::PageUp
                    | Action::PageDown
                    | Action::Top
                    | Action::Bottom
                    | Action::NextField
                    | Action::PrevField
                    | Action::ChoiceNext
                    | Action::ChoicePrev
            )
        };
        // In an exercise the objectives come first, whatever the screen:
        // a trainee must see from the start what is expected of them.
        let objectives = self.bindings.iter().filter(|b| {
            b.action == Action::Objectives
                && b.context == Context::Global
                && !matches!(
                    context,
                    Context::Objectives | Context::WhiteCell | Context::Note
                )
        });
        let acts = self
            .bindings
            .iter()
            .filter(|b| b.context == context && !moves(b.action));
        let global = self.bindings.iter().filter(|b| {
            b.context == Context::Global
                && context != Context::Global
                && !(context.takes_text() && b.key.is_text())
        });
        let movers = self
            .bindings
            .iter()
            .filter(|b| b.context == context && moves(b.action));
        // An action has one label in a context: the first of its keys
        // stands for them all.
        for b in objectives.chain(acts).chain(global).chain(movers) {
            if seen.contains(&(b.action, b.context)) {
                continue;
            }
            seen.push((b.action, b.context));
            out.push((b.key.to_string(), b.action, b.label(lang)));
        }
        out
    }
}

/// The keymap a config asks for, with every problem named by file and line.
pub fn from_config(
    console: &crate::config::ConsoleConfig,
    path: &std::path::Path,
) -> Result<Keymap, Vec<String>> {
    let overrides: BTreeMap<String, String> = console
        .keys
        .iter()
        .map(|(a, (k, _))| (a.clone(), k.clone()))
        .collect();
    Keymap::with_overrides(&overrides).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| {
                let line = console
                    .keys
                    .iter()
                    .find(|(action, _)| {
                        p.starts_with(action.as_str())
                            || p.contains(&format!("`{action}`"))
                            || p.contains(&format!(" {action} "))
                    })
                    .map(|(_, (_, line))| format!(":{line}"))
                    .unwrap_or_default();
                format!("{}{line}: [console.keys]: {p}", path.display())
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_no_conflicts() {
        assert!(Keymap::with_overrides(&BTreeMap::new()).is_ok());
    }

    #[test]
    fn rebinding_and_conflicts() {
        let mut o = BTreeMap::new();
        o.insert("acknowledge".to_string(), "z".to_string());
        let map = Keymap::with_overrides(&o).expect("valid");
        let ev = KeyEvent::new(KeyCode::Char('z'), KeyModifiers::NONE);
        assert_eq!(map.action(Context::Queue, &ev), Some(Action::Acknowledge));
        o.insert("reply".to_string(), "z".to_string());
        let err = Keymap::with_overrides(&o).expect_err("conflict");
        assert!(err.iter().any(|e| e.contains("both")), "{err:?}");
        let mut bad = BTreeMap::new();
        bad.insert("fly".to_string(), "z".to_string());
        bad.insert("release".to_string(), "r".to_string());
        bad.insert("help".to_string(), "ctrl-".to_string());
        let err = Keymap::with_overrides(&bad).expect_err("bad");
        assert_eq!(err.len(), 3, "{err:?}");
    }

    #[test]
    fn every_binding_has_its_texts_in_english() {
        let en = &crate::lang::shipped()[0];
        assert_eq!(en.language, Language::EN);
        // A missing key reads as the key itself, which is no text.
        let texts: std::collections::HashSet<&str> =
            en.keys().into_iter().filter_map(|k| en.get(k)).collect();
        for b in Keymap::default().with_white_cell().bindings {
            for text in [
                b.label(Language::EN),
                b.help(Language::EN),
                b.context.name(Language::EN),
            ] {
                assert!(
                    texts.contains(text),
                    "{:?} in {:?}: `{text}` is not in {}",
                    b.action,
                    b.context,
                    en.path.display()
                );
            }
        }
    }

    #[test]
    fn keys_parse_and_print() {
        assert_eq!(Key::parse("ctrl-L"), Ok(Key::ctrl('l')));
        assert_eq!(
            Key::parse("F5").map(|k| k.to_string()),
            Ok("F5".to_string())
        );
        assert!(Key::parse("hyper-x").is_err());
    }
}
