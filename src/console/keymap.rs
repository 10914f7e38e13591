//! The one keymap table. The footer, the help overlay and the input handling
//! are all generated from it, and operator.toml can rebind any action;
//! conflicts within a context are reported.

use std::collections::BTreeMap;
use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

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
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "everywhere",
            Context::Login => "log-in",
            Context::Handover => "handover summary",
            Context::Queue => "inbound queue",
            Context::Sent => "sent list",
            Context::Message => "message view",
            Context::Picker => "template choice",
            Context::Form => "compose form",
            Context::Confirm => "confirmation",
            Context::WhiteCell => "white cell (facilitator)",
            Context::Report => "after-action report",
            Context::Alarms => "alarm panel",
            Context::Find => "find",
        }
    }

    /// Contexts where printable keys are text, not commands.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            Context::Login | Context::Picker | Context::Form | Context::Find
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
}

/// One binding: action, where, key, and what the footer and help say.
#[derive(Clone, Debug)]
pub struct Binding {
    pub action: Action,
    pub context: Context,
    pub key: Key,
    pub label: &'static str,
    pub help: &'static str,
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

const fn b(
    action: Action,
    context: Context,
    key: Key,
    label: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        action,
        context,
        key,
        label,
        help,
    }
}

/// The default bindings. Order is the order of the footer and the help.
pub fn defaults() -> Vec<Binding> {
    use Action::*;
    use Context as C;
    vec![
        b(
            Help,
            C::Global,
            Key::ch('?'),
            "help",
            "every key, this screen's first (F1 where ? is typed as text)",
        ),
        b(
            Help,
            C::Global,
            Key::plain(KeyCode::F(1)),
            "help",
            "every key, this screen's first (F1 where ? is typed as text)",
        ),
        b(
            Lock,
            C::Global,
            Key::ctrl('l'),
            "lock",
            "lock the console (handover: lock, then the next operator logs in)",
        ),
        b(
            Alarms,
            C::Global,
            Key::plain(KeyCode::F(3)),
            "alarms",
            "open or close the alarm panel: every alarm up, with its age",
        ),
        b(
            Quit,
            C::Global,
            Key::ctrl('q'),
            "quit",
            "leave the console (the station stops unless it runs as `hotline serve`)",
        ),
        b(
            Submit,
            C::Login,
            Key::plain(KeyCode::Enter),
            "log in",
            "next field, then log in",
        ),
        b(
            NextField,
            C::Login,
            Key::plain(KeyCode::Tab),
            "next field",
            "move between name and passphrase",
        ),
        b(
            Open,
            C::Handover,
            Key::plain(KeyCode::Enter),
            "take over",
            "close the handover summary and take the watch",
        ),
        b(
            Up,
            C::Queue,
            Key::plain(KeyCode::Up),
            "up",
            "select the previous message",
        ),
        b(
            Down,
            C::Queue,
            Key::plain(KeyCode::Down),
            "down",
            "select the next message",
        ),
        b(
            PageUp,
            C::Queue,
            Key::plain(KeyCode::PageUp),
            "page up",
            "one page up",
        ),
        b(
            PageDown,
            C::Queue,
            Key::plain(KeyCode::PageDown),
            "page down",
            "one page down",
        ),
        b(
            Top,
            C::Queue,
            Key::plain(KeyCode::Home),
            "first",
            "the first message",
        ),
        b(
            Bottom,
            C::Queue,
            Key::plain(KeyCode::End),
            "last",
            "the last message",
        ),
        b(
            Up,
            C::Queue,
            Key::ch('k'),
            "up",
            "select the previous message",
        ),
        b(
            Down,
            C::Queue,
            Key::ch('j'),
            "down",
            "select the next message",
        ),
        b(Top, C::Queue, Key::ch('g'), "first", "the first message"),
        b(Bottom, C::Queue, Key::ch('G'), "last", "the last message"),
        b(
            Open,
            C::Queue,
            Key::plain(KeyCode::Enter),
            "read",
            "open the selected message",
        ),
        b(
            Acknowledge,
            C::Queue,
            Key::ch('a'),
            "acknowledge",
            "acknowledge the selected message as yourself (one-way; sent back to the sender)",
        ),
        b(
            Reply,
            C::Queue,
            Key::ch('r'),
            "reply",
            "compose a reply that references the selected message",
        ),
        b(
            AckAndReply,
            C::Queue,
            Key::ch('R'),
            "ack+reply",
            "acknowledge, then compose a reply",
        ),
        b(
            Compose,
            C::Queue,
            Key::ch('c'),
            "compose",
            "compose a new message",
        ),
        b(
            SwitchList,
            C::Queue,
            Key::plain(KeyCode::Tab),
            "sent list",
            "switch between the inbound queue and the sent list",
        ),
        b(
            LinkTest,
            C::Queue,
            Key::ch('t'),
            "link test",
            "run a link test with every peer now",
        ),
        b(
            Find,
            C::Queue,
            Key::ch('/'),
            "find",
            "find messages: filters this list as you type; Enter searches the whole history (subjects, fields, free text, either language)",
        ),
        b(
            NextMatch,
            C::Queue,
            Key::ch('n'),
            "next match",
            "the next message found",
        ),
        b(
            PrevMatch,
            C::Queue,
            Key::ch('N'),
            "previous match",
            "the previous message found",
        ),
        b(
            Back,
            C::Queue,
            Key::plain(KeyCode::Esc),
            "clear find",
            "show the whole list again",
        ),
        b(
            Up,
            C::Sent,
            Key::plain(KeyCode::Up),
            "up",
            "select the previous message",
        ),
        b(
            Down,
            C::Sent,
            Key::plain(KeyCode::Down),
            "down",
            "select the next message",
        ),
        b(
            PageUp,
            C::Sent,
            Key::plain(KeyCode::PageUp),
            "page up",
            "one page up",
        ),
        b(
            PageDown,
            C::Sent,
            Key::plain(KeyCode::PageDown),
            "page down",
            "one page down",
        ),
        b(
            Top,
            C::Sent,
            Key::plain(KeyCode::Home),
            "first",
            "the first message",
        ),
        b(
            Bottom,
            C::Sent,
            Key::plain(KeyCode::End),
            "last",
            "the last message",
        ),
        b(
            Up,
            C::Sent,
            Key::ch('k'),
            "up",
            "select the previous message",
        ),
        b(
            Down,
            C::Sent,
            Key::ch('j'),
            "down",
            "select the next message",
        ),
        b(Top, C::Sent, Key::ch('g'), "first", "the first message"),
        b(Bottom, C::Sent, Key::ch('G'), "last", "the last message"),
        b(
            Open,
            C::Sent,
            Key::plain(KeyCode::Enter),
            "read",
            "open the selected message",
        ),
        b(
            CancelMessage,
            C::Sent,
            Key::ch('x'),
            "cancel",
            "cancel a message still queued (audited)",
        ),
        b(
            Reply,
            C::Sent,
            Key::ch('r'),
            "correct",
            "correct or withdraw the selected message: a correction (or, chosen in the list, a cancellation) that names it",
        ),
        b(
            Compose,
            C::Sent,
            Key::ch('c'),
            "compose",
            "compose a new message",
        ),
        b(
            SwitchList,
            C::Sent,
            Key::plain(KeyCode::Tab),
            "inbound",
            "switch between the inbound queue and the sent list",
        ),
        b(
            Find,
            C::Sent,
            Key::ch('/'),
            "find",
            "find messages: filters this list as you type; Enter searches the whole history (subjects, fields, free text, either language)",
        ),
        b(
            NextMatch,
            C::Sent,
            Key::ch('n'),
            "next match",
            "the next message found",
        ),
        b(
            PrevMatch,
            C::Sent,
            Key::ch('N'),
            "previous match",
            "the previous message found",
        ),
        b(
            Back,
            C::Sent,
            Key::plain(KeyCode::Esc),
            "clear find",
            "show the whole list again",
        ),
        b(
            Submit,
            C::Find,
            Key::plain(KeyCode::Enter),
            "search all",
            "search the whole history: subjects, field values and free text, in either language",
        ),
        b(
            Back,
            C::Find,
            Key::plain(KeyCode::Esc),
            "cancel",
            "close find and show the whole list",
        ),
        b(
            Back,
            C::Message,
            Key::plain(KeyCode::Esc),
            "back",
            "back to the list",
        ),
        b(
            ToggleOriginal,
            C::Message,
            Key::ch('o'),
            "original",
            "switch between the rendering in your language and the sender's original",
        ),
        b(
            ExportAttachments,
            C::Message,
            Key::ch('e'),
            "export",
            "write this message's attachments, decrypted and checked, to DATA_DIR/exports/ID/",
        ),
        b(
            Acknowledge,
            C::Message,
            Key::ch('a'),
            "acknowledge",
            "acknowledge this message",
        ),
        b(
            Reply,
            C::Message,
            Key::ch('r'),
            "reply",
            "compose a reply that references this message",
        ),
        b(
            AckAndReply,
            C::Message,
            Key::ch('R'),
            "ack+reply",
            "acknowledge, then compose a reply",
        ),
        b(
            Up,
            C::Message,
            Key::plain(KeyCode::Up),
            "scroll",
            "scroll up a line",
        ),
        b(Up, C::Message, Key::ch('k'), "scroll", "scroll up a line"),
        b(
            Down,
            C::Message,
            Key::plain(KeyCode::Down),
            "scroll",
            "scroll down a line",
        ),
        b(
            Down,
            C::Message,
            Key::ch('j'),
            "scroll",
            "scroll down a line",
        ),
        b(
            PageUp,
            C::Message,
            Key::plain(KeyCode::PageUp),
            "page up",
            "scroll up a page",
        ),
        b(
            PageDown,
            C::Message,
            Key::plain(KeyCode::PageDown),
            "page down",
            "scroll down a page",
        ),
        b(
            PageDown,
            C::Message,
            Key::ch(' '),
            "page down",
            "scroll down a page",
        ),
        b(
            Top,
            C::Message,
            Key::plain(KeyCode::Home),
            "top",
            "the start of the message",
        ),
        b(
            Top,
            C::Message,
            Key::ch('g'),
            "top",
            "the start of the message",
        ),
        b(
            Bottom,
            C::Message,
            Key::plain(KeyCode::End),
            "end",
            "the end of the message",
        ),
        b(
            Bottom,
            C::Message,
            Key::ch('G'),
            "end",
            "the end of the message",
        ),
        b(
            Up,
            C::Picker,
            Key::plain(KeyCode::Up),
            "up",
            "previous template",
        ),
        b(
            Down,
            C::Picker,
            Key::plain(KeyCode::Down),
            "down",
            "next template",
        ),
        b(
            Submit,
            C::Picker,
            Key::plain(KeyCode::Enter),
            "choose",
            "fill in the chosen template (type to filter)",
        ),
        b(
            Back,
            C::Picker,
            Key::plain(KeyCode::Esc),
            "abandon",
            "abandon composing",
        ),
        b(
            NextField,
            C::Form,
            Key::plain(KeyCode::Tab),
            "next",
            "next field",
        ),
        b(
            PrevField,
            C::Form,
            Key::plain(KeyCode::BackTab),
            "previous",
            "previous field",
        ),
        b(
            NextField,
            C::Form,
            Key::plain(KeyCode::Down),
            "next",
            "next field",
        ),
        b(
            PrevField,
            C::Form,
            Key::plain(KeyCode::Up),
            "previous",
            "previous field",
        ),
        b(
            ChoiceNext,
            C::Form,
            Key::plain(KeyCode::Right),
            "choice →",
            "next choice, peer or precedence",
        ),
        b(
            ChoicePrev,
            C::Form,
            Key::plain(KeyCode::Left),
            "choice ←",
            "previous choice, peer or precedence",
        ),
        b(
            Release,
            C::Form,
            Key::plain(KeyCode::F(5)),
            "release",
            "release the message (asks for confirmation)",
        ),
        b(
            Preview,
            C::Form,
            Key::plain(KeyCode::F(2)),
            "preview",
            "show exactly what the peer will read, in both languages",
        ),
        b(
            Back,
            C::Form,
            Key::plain(KeyCode::Esc),
            "abandon",
            "abandon this draft",
        ),
        b(Yes, C::Confirm, Key::ch('y'), "yes", "confirm"),
        b(
            No,
            C::Confirm,
            Key::plain(KeyCode::Esc),
            "no",
            "go back without doing it",
        ),
        b(
            No,
            C::Confirm,
            Key::ch('n'),
            "no",
            "go back without doing it",
        ),
        b(
            ClearAlarm,
            C::Alarms,
            Key::ch('x'),
            "clear",
            "clear the selected alarm (audited; one whose cause lasts stays quiet until it ends)",
        ),
        b(
            Up,
            C::Alarms,
            Key::plain(KeyCode::Up),
            "up",
            "select the previous alarm",
        ),
        b(
            Down,
            C::Alarms,
            Key::plain(KeyCode::Down),
            "down",
            "select the next alarm",
        ),
        b(
            Alarms,
            C::Alarms,
            Key::plain(KeyCode::Esc),
            "close",
            "close the alarm panel",
        ),
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
    pub fn with_white_cell(mut self) -> Keymap {
        use Action::*;
        use Context as C;
        self.bindings.extend([
            b(
                WhiteCell,
                C::Global,
                Key::plain(KeyCode::F(9)),
                "white cell",
                "open or close the facilitator's panel",
            ),
            b(
                TogglePause,
                C::WhiteCell,
                Key::ch('p'),
                "pause/resume",
                "pause or resume the scenario clock",
            ),
            b(
                Faster,
                C::WhiteCell,
                Key::ch('+'),
                "faster",
                "run the scenario clock faster",
            ),
            b(
                Slower,
                C::WhiteCell,
                Key::ch('-'),
                "slower",
                "run the scenario clock slower",
            ),
            b(
                SkipInject,
                C::WhiteCell,
                Key::ch('s'),
                "skip",
                "skip the next inject (it is not scored)",
            ),
            b(
                AdHocInject,
                C::WhiteCell,
                Key::ch('i'),
                "inject",
                "compose an ad-hoc message from the counterpart",
            ),
            b(
                Up,
                C::WhiteCell,
                Key::plain(KeyCode::Up),
                "previous",
                "select the previous waiting station",
            ),
            b(
                Down,
                C::WhiteCell,
                Key::plain(KeyCode::Down),
                "next",
                "select the next waiting station",
            ),
            b(
                AdmitStation,
                C::WhiteCell,
                Key::ch('a'),
                "admit",
                "admit the selected waiting station (check its fingerprint with the trainee first)",
            ),
            b(
                RefuseStation,
                C::WhiteCell,
                Key::ch('x'),
                "refuse",
                "refuse the selected waiting station",
            ),
            b(
                ShowReport,
                C::WhiteCell,
                Key::ch('w'),
                "report",
                "show the after-action report so far and write it to the report file",
            ),
            b(
                WhiteCell,
                C::WhiteCell,
                Key::plain(KeyCode::Esc),
                "close",
                "close the panel",
            ),
            b(Up, C::Report, Key::plain(KeyCode::Up), "up", "scroll up"),
            b(
                Down,
                C::Report,
                Key::plain(KeyCode::Down),
                "down",
                "scroll down",
            ),
            b(
                PageUp,
                C::Report,
                Key::plain(KeyCode::PageUp),
                "page up",
                "scroll up a page",
            ),
            b(
                PageDown,
                C::Report,
                Key::plain(KeyCode::PageDown),
                "page down",
                "scroll down a page",
            ),
            b(
                Back,
                C::Report,
                Key::plain(KeyCode::Esc),
                "close",
                "close the report",
            ),
        ]);
        self
    }

    /// Applies rebindings (`action` → key text). Each rebinding replaces
    /// the action's first key in every context. Returns every problem:
    /// unknown actions, unreadable keys, text keys in text contexts, and two
    /// actions on one key in one context.
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
                            binding.context.name()
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
                            other.context.name()
                        } else {
                            a.context.name()
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
    pub fn footer(&self, context: Context) -> Vec<(String, &'static str)> {
        self.footer_actions(context)
            .into_iter()
            .map(|(key, _, label)| (key, label))
            .collect()
    }

    /// [`Keymap::footer`], with the action of each key.
    pub fn footer_actions(&self, context: Context) -> Vec<(String, Action, &'static str)> {
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
        for b in acts.chain(global).chain(movers) {
            if seen.contains(&(b.action, b.label)) {
                continue;
            }
            seen.push((b.action, b.label));
            out.push((b.key.to_string(), b.action, b.label));
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
    fn keys_parse_and_print() {
        assert_eq!(Key::parse("ctrl-L"), Ok(Key::ctrl('l')));
        assert_eq!(
            Key::parse("F5").map(|k| k.to_string()),
            Ok("F5".to_string())
        );
        assert!(Key::parse("hyper-x").is_err());
    }
}
