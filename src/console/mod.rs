//! The duty console's state and behaviour, without a terminal: one [`App`]
//! state, one [`Msg`] for everything that can happen, one [`Effect`] for
//! everything the console asks of the world, and [`update`], which never
//! waits and does no I/O. Views (`ui`) are pure functions of the state.

mod compose;
mod drafts;
pub mod find;
pub mod form;
pub mod keymap;
mod panels;
pub mod rows;
mod update;

use std::collections::HashMap;
use std::time::Duration;

use age::secrecy::SecretString;
use jiff::Timestamp;

pub use panels::waiting;
pub use update::update;

use crate::compose::Draft;
use crate::config::Deadlines;
use crate::domain::{Language, Message, MessageId, OperatorName, Precedence};
use crate::drafts::SavedDraft;
pub use crate::station::alarms::Alarm;
use crate::station::api::ApiError;
use crate::station::{AlarmKind, Event, Status};
use crate::store::{Direction, MessageRow};
use crate::t;
use crate::tabletop::engine::{NoteKind, Rating};
use crate::templates::Amends;
use form::{Form, Picker};
use keymap::{Context, Keymap};

/// How often the console's clock ticks (it also paces the FLASH flashing).
pub const TICK: Duration = Duration::from_millis(500);
/// How often the bell repeats while a FLASH is unacknowledged or a message
/// is overdue.
pub const BELL_REPEAT: Duration = Duration::from_secs(15);
/// Rows a page-up or page-down moves.
pub const PAGE: usize = 10;

/// What the facilitator (white cell) sees of a tabletop exercise.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct WhiteCellView {
    pub scenario: String,
    pub scenario_time: Duration,
    pub speed: f64,
    pub paused: bool,
    /// Each inject: id, scenario time, state (of the first trainee).
    pub injects: Vec<(String, Duration, String)>,
    /// What trainees run to join, when the white cell admits them over
    /// the network.
    pub join: Option<String>,
    /// Each trainee station in the exercise.
    pub trainees: Vec<TraineeRow>,
    /// Stations waiting to be admitted (or refused).
    pub waiting: Vec<crate::station::admission::Candidate>,
    /// The after-action report last asked for (or written at the end).
    pub report: Option<ShownReport>,
    /// The objectives and where each expectation stands, for the
    /// trainee's panel (of the first trainee).
    pub objectives: Vec<crate::tabletop::engine::ObjectiveProgress>,
    /// Each objective's ratings, for the facilitator to confirm or change.
    pub evaluation: Vec<ObjectiveRating>,
    /// How many notes the facilitator has taken.
    pub notes: usize,
}

/// An objective as the facilitator rates it: the rating proposed from the
/// expectations met (of the first trainee, when there is one trainee), and
/// the evaluator's, once given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectiveRating {
    pub id: String,
    pub text: String,
    pub capability: Option<String>,
    pub proposed: Option<Rating>,
    pub rating: Option<Rating>,
}

/// A note the facilitator is typing in the white cell's panel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoteEntry {
    pub text: String,
    pub kind: NoteKind,
}

/// An after-action report for the console to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownReport {
    /// Counts up with each report, so the console opens each once.
    pub seq: u64,
    /// The Markdown.
    pub text: String,
    /// Where it was written, or why it was not.
    pub written: String,
}

/// One trainee station, as the facilitator's panel shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraineeRow {
    pub station: String,
    pub link_up: bool,
    pub scenario_time: Duration,
    pub delivered: usize,
    pub injects: usize,
    pub met: usize,
    pub late: usize,
    pub missed: usize,
}

/// What the facilitator asks of the white cell.
#[derive(Debug)]
pub enum WhiteCellCommand {
    TogglePause,
    Faster,
    Slower,
    SkipNext,
    /// An ad-hoc message from the counterpart, outside the timeline.
    Inject(Box<Draft>),
    /// Admits the waiting station with this fingerprint.
    Admit(String),
    /// Refuses the waiting station with this fingerprint.
    Refuse(String),
    /// Shows the after-action report so far, and writes it.
    Report,
    /// The evaluator's rating of an objective (None: only the proposal).
    Rate {
        objective: String,
        rating: Option<Rating>,
    },
    /// A note for the report, stamped with the scenario time.
    Note {
        text: String,
        kind: NoteKind,
    },
}

/// Everything that can happen to the console.
#[derive(Debug)]
pub enum Msg {
    /// A path typed on the attach row, completed as far as it is unique.
    PathCompleted {
        typed: String,
        completed: String,
    },
    /// The white cell's state changed (tabletop only).
    WhiteCell(WhiteCellView),
    Key(ratatui::crossterm::event::KeyEvent),
    Resized,
    Tick(Timestamp),
    Station(Event),
    /// The station's subscriber fell behind: re-read everything.
    MissedEvents,
    Refreshed {
        inbound: Vec<MessageRow>,
        outbound: Vec<MessageRow>,
        status: Box<Status>,
        alarms: Vec<Alarm>,
    },
    /// The station's current status, fetched after a link event.
    StatusFetched(Box<Status>),
    /// An attached console lost its station: it stopped, or froze.
    StationLost {
        reason: String,
    },
    /// An attached console reached its station again; `restarted` when it
    /// is a new run of it (the log-in did not survive).
    StationReached {
        restarted: bool,
    },
    /// The station answered a release: the stored row, or why not.
    ReleaseFinished {
        result: Result<Box<MessageRow>, ApiError>,
    },
    LoginChecked {
        name: String,
        result: Result<OperatorName, ApiError>,
    },
    SecondChecked {
        result: Result<OperatorName, ApiError>,
    },
    MessageOpened {
        id: MessageId,
        result: Result<Box<Message>, ApiError>,
    },
    Done {
        what: String,
        result: Result<(), ApiError>,
    },
    /// The station opened the operator's kept draft (or found none).
    DraftOpened {
        operator: OperatorName,
        result: Result<Option<Box<SavedDraft>>, ApiError>,
    },
    /// Subjects the station gave for rows that came without them.
    SubjectsFetched {
        subjects: Vec<(MessageId, String)>,
    },
    /// The station's search of the whole history.
    Found {
        direction: Direction,
        query: String,
        result: Result<Vec<MessageId>, ApiError>,
    },
    /// The console sealed the draft to disk, or could not.
    DraftSaved {
        at: Timestamp,
        /// Why it could not, for the operator.
        result: Result<(), crate::drafts::KeepError>,
    },
}

/// Everything the console asks the world to do.
#[derive(Debug)]
pub enum Effect {
    CheckLogin {
        name: String,
        passphrase: SecretString,
    },
    CheckSecond {
        name: String,
        passphrase: SecretString,
    },
    /// A full resync: both lists and the status.
    Refresh,
    /// Only the status (links, health), after a link event.
    FetchStatus,
    /// Tabletop: sign in by call sign.
    SignIn(String),
    /// The station was restarted: forget the connection and its log-in,
    /// then resync.
    ForgetSession,
    OpenMessage(MessageId),
    Release {
        operator: OperatorName,
        to: String,
        draft: Box<Draft>,
        /// Files the station reads, seals and sends after the message.
        attachments: Vec<std::path::PathBuf>,
        /// The second operator who confirmed a FLASH (two-person rule).
        second: Option<OperatorName>,
    },
    Acknowledge {
        operator: OperatorName,
        id: MessageId,
        /// How the operator knows the message (see [`describe`]).
        what: String,
    },
    Cancel {
        operator: OperatorName,
        id: MessageId,
    },
    /// Write a message's attachments out, decrypted and checked.
    ExportAttachments(MessageId),
    /// Complete a file path typed on the compose form's attach row.
    CompletePath(String),
    LinkTest,
    /// Clear an alarm on the station's board, as the operator on duty.
    ClearAlarm {
        kind: AlarmKind,
        subject: String,
    },
    Audit {
        actor: String,
        action: String,
        detail: String,
    },
    /// The operator's session ended (lock or idle): an attached console
    /// logs out of the station too.
    LoggedOut,
    /// Tabletop: a facilitator's command for the white cell.
    WhiteCell(WhiteCellCommand),
    RingBell,
    /// Seal the draft to the station's recipient and keep it on disk.
    SaveDraft(Box<SavedDraft>),
    /// The operator's kept draft is released or thrown away.
    DiscardDraft(OperatorName),
    /// Ask the station to open the logged-in operator's kept draft.
    OpenDraft(OperatorName),
    /// Ask the station (on the logged-in connection) for these messages'
    /// subjects, which a watching connection leaves out.
    FetchSubjects(Vec<MessageId>),
    /// Search one direction's whole history.
    Find {
        direction: Direction,
        query: String,
    },
    Quit,
}

/// Which screen is showing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    Login,
    Handover,
    Queue,
    Sent,
    Message,
    Picker,
    Form,
}

/// A question that must be answered before anything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    Acknowledge {
        id: MessageId,
        precedence: Precedence,
        reply_after: bool,
    },
    Release,
    Cancel {
        id: MessageId,
    },
    /// Two-person rule: the second operator types name and passphrase.
    SecondOperator,
    /// Quitting the console (and, unless attached, the station with it).
    Quit,
    /// Throwing away a draft with something typed in it.
    Abandon,
    /// A draft kept from an earlier session of this operator.
    ResumeDraft(Box<SavedDraft>),
}

#[derive(Clone, Default)]
pub struct LoginForm {
    pub name: String,
    /// Wiped when taken, when cleared and when it grows (see
    /// [`update::type_secret`]).
    pub passphrase: zeroize::Zeroizing<String>,
    pub on_passphrase: bool,
    pub error: Option<String>,
    pub checking: bool,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("name", &self.name)
            .field("passphrase", &"…")
            .field("on_passphrase", &self.on_passphrase)
            .field("error", &self.error)
            .field("checking", &self.checking)
            .finish()
    }
}

/// A message open for reading.
#[derive(Clone, Debug)]
pub struct Reading {
    pub id: MessageId,
    pub message: Option<Message>,
    pub error: Option<String>,
    pub show_original: bool,
    pub scroll: Scroll,
}

/// A view that scrolls: the first line shown, and what the view found at
/// its last draw (how many lines there are, how many fit), so that
/// scrolling stops at the end and a page is a screenful. Before the first
/// draw nothing is known and nothing is clamped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scroll {
    pub top: usize,
    extent: std::cell::Cell<Option<(usize, usize)>>,
}

impl Scroll {
    /// Called by the view as it draws: `total` lines, `visible` of them fit.
    /// Returns the first line to show (clamped to the end).
    pub fn measured(&self, total: usize, visible: usize) -> usize {
        self.extent.set(Some((total, visible)));
        self.top.min(total.saturating_sub(visible))
    }

    fn last_top(&self) -> usize {
        self.extent
            .get()
            .map_or(usize::MAX, |(t, v)| t.saturating_sub(v))
    }

    /// A screenful, less one line kept for context.
    fn page(&self) -> usize {
        self.extent
            .get()
            .map_or(PAGE, |(_, v)| v.saturating_sub(1).max(1))
    }

    /// Moves for a scrolling action; false for any other action.
    pub fn apply(&mut self, action: keymap::Action) -> bool {
        use keymap::Action as A;
        let last = self.last_top();
        let top = self.top.min(last);
        self.top = match action {
            A::Up => top.saturating_sub(1),
            A::Down => top.saturating_add(1).min(last),
            A::PageUp => top.saturating_sub(self.page()),
            A::PageDown => top.saturating_add(self.page()).min(last),
            A::Top => 0,
            A::Bottom => last,
            _ => return false,
        };
        true
    }
}

/// What the console was started with.
#[derive(Clone, Debug)]
pub struct Setup {
    pub station: String,
    pub language: Language,
    pub time_zone: String,
    /// Peers and their IANA time zones.
    pub peers: Vec<(String, String)>,
    pub deadlines: Deadlines,
    pub idle_lock: Duration,
    pub two_person_flash: bool,
    pub exercise_mode: bool,
    /// Tabletop: the trainee gives a call sign, no passphrase.
    pub call_sign_login: bool,
    pub keymap: Keymap,
    pub no_color: bool,
    /// Attached to a station that `hotline serve` runs: quitting the
    /// console leaves the station running.
    pub attached: bool,
    /// What rings as it arrives (`[console] ring`).
    pub ring: crate::config::Ring,
    /// The security markings this station knows (`[labels]`).
    pub labels: crate::config::LabelPolicy,
}

/// The whole console state.
#[derive(Debug)]
pub struct App {
    pub setup: Setup,
    pub now: Timestamp,
    pub screen: Screen,
    pub operator: Option<OperatorName>,
    pub login: LoginForm,
    /// The inbound queue, in its order (see [`rows::Order::Queue`]).
    pub inbound: rows::Rows,
    /// The sent list, newest first.
    pub outbound: rows::Rows,
    pub status: Option<Status>,
    pub selected_in: usize,
    pub selected_out: usize,
    pub reading: Option<Reading>,
    pub picker: Picker,
    pub form: Option<Form>,
    pub preview: bool,
    pub confirm: Option<Confirm>,
    pub second: LoginForm,
    pub second_operator: Option<OperatorName>,
    /// The key help is open, and how far it is scrolled.
    pub help: Option<Scroll>,
    pub notice: Option<String>,
    /// The station's alarm board, oldest first: the console raises none of
    /// its own.
    pub alarms: Vec<Alarm>,
    /// The alarm panel is open, and which alarm it has selected.
    pub alarms_open: bool,
    /// Tabletop: the objectives panel is open, and how far it is scrolled.
    pub objectives: Option<Scroll>,
    /// Tabletop: the scenario time each inbound message was first seen at.
    pub scenario_seen: std::collections::HashMap<MessageId, std::time::Duration>,
    pub alarm_pick: usize,
    pub last_input: Timestamp,
    pub last_bell: Option<Timestamp>,
    pub flash_on: bool,
    /// Tabletop: the white cell's state, and whether its panel is open.
    pub white_cell: Option<WhiteCellView>,
    pub white_cell_open: bool,
    /// Which waiting station the facilitator's panel has selected.
    pub white_cell_pick: usize,
    /// Which objective the facilitator's panel has selected for rating.
    pub white_cell_objective: usize,
    /// A note being typed in the facilitator's panel.
    pub white_cell_note: Option<NoteEntry>,
    /// The after-action report on screen, and how far it is scrolled.
    pub report: Option<(ShownReport, usize)>,
    /// The newest report shown, so each is opened once.
    pub report_seen: u64,
    /// The draft being composed is an ad-hoc inject from the white cell.
    pub composing_inject: bool,
    /// A reply's references and peer, carried from the list to the form.
    pub reply_refs: Vec<MessageId>,
    pub reply_peer: Option<usize>,
    /// A reply keeps the original's precedence unless the operator changes it.
    pub reply_precedence: Option<Precedence>,
    /// Attachments in transfer: (message, index) → (sealed bytes done, total).
    pub transfers: HashMap<(MessageId, u32), (u64, u64)>,
    /// An attached console's station is not running (why), so no link
    /// state of it is shown.
    pub station_lost: Option<String>,
    /// The form of a release the station has not answered yet: given back
    /// if the release fails.
    pub releasing: Option<Form>,
    /// A draft kept through a lock, for the operator who typed it.
    pub kept_draft: Option<(OperatorName, Form)>,
    /// The draft changed since it was last sealed to disk.
    pub draft_dirty: bool,
    /// When the draft on screen was last sealed to disk.
    pub draft_saved: Option<Timestamp>,
    /// A find in one of the lists (`/`).
    pub find: Option<find::Find>,
    pub quit: bool,
}

impl App {
    /// How far a message's attachments in transfer have come, in percent.
    pub fn transfer_percent(&self, id: &MessageId) -> Option<u64> {
        let (done, total) = self
            .transfers
            .iter()
            .filter(|((m, _), _)| m == id)
            .fold((0u64, 0u64), |(d, t), (_, (dd, tt))| (d + dd, t + tt));
        (total > 0).then(|| done.saturating_mul(100) / total)
    }

    pub fn new(setup: Setup, now: Timestamp) -> App {
        App {
            setup,
            now,
            screen: Screen::Login,
            operator: None,
            login: LoginForm::default(),
            inbound: rows::Rows::new(rows::Order::Queue),
            outbound: rows::Rows::new(rows::Order::Newest),
            status: None,
            selected_in: 0,
            selected_out: 0,
            reading: None,
            picker: Picker::default(),
            form: None,
            preview: false,
            confirm: None,
            second: LoginForm::default(),
            second_operator: None,
            help: None,
            notice: None,
            alarms: Vec::new(),
            alarms_open: false,
            objectives: None,
            scenario_seen: Default::default(),
            alarm_pick: 0,
            last_input: now,
            last_bell: None,
            flash_on: false,
            white_cell: None,
            white_cell_open: false,
            white_cell_pick: 0,
            white_cell_objective: 0,
            white_cell_note: None,
            report: None,
            report_seen: 0,
            composing_inject: false,
            reply_refs: Vec::new(),
            reply_peer: None,
            reply_precedence: None,
            transfers: HashMap::new(),
            station_lost: None,
            releasing: None,
            kept_draft: None,
            draft_dirty: false,
            draft_saved: None,
            find: None,
            quit: false,
        }
    }

    /// Which keymap context the current screen or question is in.
    pub fn context(&self) -> Context {
        // A question is on top of every panel, and takes the keys first.
        if self.confirm.is_some() {
            return match self.confirm {
                Some(Confirm::SecondOperator) => Context::Login,
                _ => Context::Confirm,
            };
        }
        if self.report.is_some() {
            return Context::Report;
        }
        if self.white_cell_open && self.white_cell_note.is_some() {
            return Context::Note;
        }
        if self.white_cell_open {
            return Context::WhiteCell;
        }
        if self.objectives.is_some() {
            return Context::Objectives;
        }
        if self.alarms_open {
            return Context::Alarms;
        }
        if self.find.as_ref().is_some_and(|f| f.typing)
            && matches!(self.screen, Screen::Queue | Screen::Sent)
        {
            return Context::Find;
        }
        match self.screen {
            Screen::Login => Context::Login,
            Screen::Handover => Context::Handover,
            Screen::Queue => Context::Queue,
            Screen::Sent => Context::Sent,
            Screen::Message => Context::Message,
            Screen::Picker => Context::Picker,
            Screen::Form => Context::Form,
        }
    }

    pub fn locked(&self) -> bool {
        self.operator.is_none()
    }

    /// Whether anything of this message's exercise kind is present.
    pub fn exercise_present(&self) -> bool {
        self.setup.exercise_mode || self.inbound.any_exercise() || self.outbound.any_exercise()
    }

    /// Time left to acknowledge an inbound message (negative: overdue),
    /// counted from its receipt time here. In an exercise it is counted on
    /// the scenario clock from when the message appeared, so a pause stops
    /// it and a faster speed runs it faster; the tabletop's deadlines are
    /// the defaults, in scenario time.
    pub fn time_left(&self, row: &MessageRow) -> Option<jiff::SignedDuration> {
        if let (Some(view), Some(seen)) = (&self.white_cell, self.scenario_seen.get(&row.id)) {
            let deadline = crate::config::Deadlines::default().for_precedence(row.precedence);
            let passed = view.scenario_time.saturating_sub(*seen);
            return jiff::SignedDuration::try_from(deadline)
                .ok()?
                .checked_sub(jiff::SignedDuration::try_from(passed).ok()?);
        }
        let deadline =
            jiff::SignedDuration::try_from(self.setup.deadlines.for_precedence(row.precedence))
                .ok()?;
        Some(deadline - self.now.duration_since(row.stored_at))
    }

    /// In an exercise, the scenario time at which each inbound message was
    /// first seen, for [`App::time_left`].
    pub fn note_scenario_times(&mut self) {
        let Some(view) = &self.white_cell else {
            return;
        };
        if view.scenario.is_empty() {
            return;
        }
        for row in self.inbound.iter() {
            self.scenario_seen
                .entry(row.id)
                .or_insert(view.scenario_time);
        }
    }

    /// Whether a message we sent has waited longer for the peer's
    /// acknowledgement than this station's deadline allows (counted from
    /// the receipt, as the receiver counts it).
    pub fn ack_overdue(&self, row: &MessageRow) -> bool {
        let Some(receipt) = row.receipt_at else {
            return false;
        };
        let deadline = self.setup.deadlines.for_precedence(row.precedence);
        row.state.awaits_peer_ack()
            && self.now.duration_since(receipt).as_secs() > deadline.as_secs() as i64
    }

    pub fn unacknowledged(&self) -> impl Iterator<Item = &MessageRow> {
        self.inbound.iter().filter(|r| r.state.is_unacknowledged())
    }

    /// Unacknowledged counts by precedence, FLASH first.
    pub fn unacknowledged_counts(&self) -> [usize; 4] {
        self.inbound.unacknowledged()
    }

    pub fn overdue(&self, row: &MessageRow) -> bool {
        row.state.is_unacknowledged() && self.time_left(row).is_some_and(|t| t.is_negative())
    }

    /// Replaces both lists (a resync), keeping each selection on the
    /// message it was on where that message is still there.
    pub fn replace_rows(&mut self, inbound: Vec<MessageRow>, outbound: Vec<MessageRow>) {
        let (in_id, out_id) = (
            self.selected_id(Direction::In),
            self.selected_id(Direction::Out),
        );
        self.inbound.replace_all(inbound);
        self.outbound.replace_all(outbound);
        self.reselect(Direction::In, in_id);
        self.reselect(Direction::Out, out_id);
    }

    /// Applies a changed row from the station: replaces the row with its
    /// id, or adds it, and keeps the selection on the message it was on.
    /// Returns whether it is a FLASH that newly awaits acknowledgement.
    pub fn apply_row(&mut self, row: MessageRow) -> bool {
        let awaited =
            |r: &MessageRow| r.precedence == Precedence::Flash && r.state.is_unacknowledged();
        let direction = row.direction;
        let selected = self.selected_id(direction);
        let now_awaited = awaited(&row);
        let old = match direction {
            Direction::In => self.inbound.upsert(row),
            Direction::Out => self.outbound.upsert(row),
        };
        self.reselect(direction, selected);
        direction == Direction::In && now_awaited && !old.as_ref().is_some_and(awaited)
    }

    fn selected_id(&self, direction: Direction) -> Option<MessageId> {
        match direction {
            Direction::In => self.inbound.get(self.selected_in).map(|r| r.id),
            Direction::Out => self.outbound.get(self.selected_out).map(|r| r.id),
        }
    }

    /// Puts the selection back on `id`, or keeps it in range.
    fn reselect(&mut self, direction: Direction, id: Option<MessageId>) {
        let (rows, selected) = match direction {
            Direction::In => (&self.inbound, &mut self.selected_in),
            Direction::Out => (&self.outbound, &mut self.selected_out),
        };
        *selected = id
            .and_then(|id| rows.position(&id))
            .unwrap_or(*selected)
            .min(rows.len().saturating_sub(1));
    }

    /// Applies an alarm raised (or changed) at the station.
    pub fn apply_alarm(&mut self, alarm: Alarm) {
        match self
            .alarms
            .iter_mut()
            .find(|a| a.kind == alarm.kind && a.subject == alarm.subject)
        {
            Some(up) => *up = alarm,
            None => self.alarms.push(alarm),
        }
    }

    /// Removes an alarm the station took down.
    pub fn remove_alarm(&mut self, kind: AlarmKind, subject: &str) {
        self.alarms
            .retain(|a| !(a.kind == kind && a.subject == subject));
        self.alarm_pick = self.alarm_pick.min(self.alarms.len().saturating_sub(1));
    }

    /// Whether `action` would do anything on the screen on show now: the
    /// footer offers only what applies.
    pub fn applies(&self, action: keymap::Action) -> bool {
        use keymap::Action as A;
        let reading = || {
            self.reading.as_ref().and_then(|r| {
                self.inbound
                    .find(&r.id)
                    .or_else(|| self.outbound.find(&r.id))
            })
        };
        let opened = || self.reading.as_ref().and_then(|r| r.message.as_ref());
        match (self.context(), action) {
            (_, A::Lock) => !self.locked(),
            (Context::Queue, A::Acknowledge | A::AckAndReply) => self
                .inbound
                .get(self.selected_in)
                .is_some_and(|r| r.state.is_unacknowledged()),
            (Context::Queue, A::Open | A::Reply) => !self.inbound.is_empty(),
            (Context::Sent, A::Open) => !self.outbound.is_empty(),
            (Context::Sent, A::CancelMessage) => self
                .outbound
                .get(self.selected_out)
                .is_some_and(|r| r.state == crate::store::MessageState::Queued),
            (Context::Message, A::Acknowledge | A::AckAndReply) => reading()
                .is_some_and(|r| r.direction == Direction::In && r.state.is_unacknowledged()),
            (Context::Message, A::Reply) => reading().is_some_and(|r| r.direction == Direction::In),
            (Context::Message, A::ExportAttachments) => {
                opened().is_some_and(|m| !m.attachments.is_empty())
            }
            (Context::Message, A::ToggleOriginal) => opened().is_some(),
            (Context::Alarms, A::ClearAlarm) => !self.alarms.is_empty() && !self.locked(),
            (Context::WhiteCell, A::RateObjective | A::ChoiceNext | A::ChoicePrev) => self
                .white_cell
                .as_ref()
                .is_some_and(|v| !v.evaluation.is_empty()),
            (Context::Queue | Context::Sent, A::NextMatch | A::PrevMatch | A::Back) => {
                find::active(self).is_some()
            }
            _ => true,
        }
    }

    pub fn selected_row(&self) -> Option<&MessageRow> {
        match self.screen {
            Screen::Sent => self.outbound.get(self.selected_out),
            _ => self.inbound.get(self.selected_in),
        }
    }
}

/// The handle operators speak of a message by: its peer and its serial in
/// that direction (`MOSCOW/6` is MOSCOW's 6th message to us, `to:MOSCOW/6`
/// our 6th to MOSCOW).
pub fn handle(row: &MessageRow) -> String {
    match row.direction {
        Direction::In => format!("{}/{}", row.peer, row.serial),
        Direction::Out => format!("to:{}/{}", row.peer, row.serial),
    }
}

/// What became of a message a later one amends: `CORRECTED by MOSCOW/7`,
/// `WITHDRAWN by to:MOSCOW/7` (the amending message's handle), for a
/// reader of `lang`.
pub fn amended(row: &MessageRow, lang: Language) -> Option<String> {
    let a = row.amended.as_ref()?;
    let by = match row.direction {
        Direction::In => format!("{}/{}", row.peer, a.serial),
        Direction::Out => format!("to:{}/{}", row.peer, a.serial),
    };
    Some(match a.kind {
        Amends::Correction => t!(lang, "console.corrected_by", handle = by),
        Amends::Withdrawal => t!(lang, "console.withdrawn_by", handle = by),
    })
}

/// A message named for a question or a notice: precedence, handle and
/// subject (`IMMEDIATE MOSCOW/6 "Dnieper dam"`), or the form where the
/// subject is not known (`ROUTINE MOSCOW/1 (general)`).
pub fn describe(row: &MessageRow) -> String {
    match &row.subject {
        Some(s) => format!(
            "{} {} \"{}\"",
            row.precedence,
            handle(row),
            crate::sanitize::inert(s)
        ),
        None => format!(
            "{} {} ({})",
            row.precedence,
            handle(row),
            crate::sanitize::inert(&row.template_id)
        ),
    }
}
