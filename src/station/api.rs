//! The one door into a station: typed [`Command`]s in, typed [`Reply`]s and
//! [`ApiError`]s out, and [`Event`](super::Event)s to subscribers. The
//! in-process console calls [`Station::handle`](super::Station::handle)
//! directly; the control socket ([`super::control`]) is a thin serde shell
//! over these same types, and its client ([`super::client`]) serves the
//! attached console and every CLI command. Nothing here does any work: the
//! work is in `station::handle`.
//!
//! A [`Session`] is who is logged in on one door (a console, one socket
//! connection): commands that act for an operator act for the session's
//! operator, proven by [`Command::Login`]. A FLASH release under the
//! two-person rule also needs a second operator proven on the same session
//! by [`Command::VerifySecond`] shortly before.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::alarms::Alarm;
use super::{AlarmKind, Status};
use crate::compose::Draft;
use crate::domain::{Message, MessageId, OperatorName};
use crate::store::{Direction, MessageRow};

/// The control socket's protocol version. Both ends state it in their
/// hello; a mismatch is an [`ApiError::Version`] naming both.
pub const API_VERSION: u32 = 2;

/// How long a verified second operator stays valid for a FLASH release.
pub const SECOND_OPERATOR_VALID: Duration = Duration::from_secs(300);

/// A passphrase on its way to the station: never printed, wiped on drop.
pub struct Passphrase(pub SecretString);

impl Passphrase {
    pub fn new(text: &str) -> Passphrase {
        Passphrase(SecretString::from(text.to_string()))
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

impl Serialize for Passphrase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        Ok(Passphrase::new(&text))
    }
}

/// A file the caller opened and hands to the station, to read (an
/// attachment) or to write (an export, a backup). The station never opens
/// a caller's path: a station that runs as its own user could not, and
/// should not, reach the operator's files. Over the control socket the
/// descriptor travels beside its request line (`SCM_RIGHTS`) and the JSON
/// carries its place among them; in-process it is the file itself.
#[derive(Debug)]
pub enum Passed {
    Slot(u32),
    File(std::fs::File),
}

impl Passed {
    /// The file, once the descriptors of its request are bound to it. It
    /// must be a regular file: a pipe or socket whose other end stalls
    /// would hold the station's work (and a backup's read of the journal)
    /// for as long as it liked.
    pub fn into_file(self) -> Result<std::fs::File, ApiError> {
        let file = match self {
            Passed::File(f) => f,
            Passed::Slot(i) => {
                return Err(ApiError::BadRequest {
                    detail: format!("file {i} of the request came without its descriptor"),
                });
            }
        };
        match file.metadata() {
            Ok(meta) if meta.is_file() => Ok(file),
            Ok(_) => Err(ApiError::BadRequest {
                detail: "a file handed to the station must be a regular file (not a pipe, socket or device)".into(),
            }),
            Err(e) => Err(ApiError::BadRequest {
                detail: format!("a file handed to the station cannot be examined: {e}"),
            }),
        }
    }
}

impl Serialize for Passed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Passed::Slot(i) => s.serialize_u32(*i),
            Passed::File(_) => Err(serde::ser::Error::custom(
                "a file travels as a descriptor: send the command with Client::send",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Passed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Passed::Slot)
    }
}

/// A file attached to a release, under the name the peer sees.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub name: String,
    pub file: Passed,
}

impl Attachment {
    /// Opens `path` for attaching, named after its last component.
    pub fn open(path: &std::path::Path) -> std::io::Result<Attachment> {
        let file = std::fs::File::open(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        Ok(Attachment {
            name,
            file: Passed::File(file),
        })
    }
}

/// A release: what the operator drafted, where it goes, and who confirmed
/// it under the two-person rule.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub to: String,
    pub draft: Draft,
    /// Files the caller opened, which the station reads, seals and sends
    /// after the message.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The second operator of a FLASH, verified on this session.
    #[serde(default)]
    pub second_operator: Option<String>,
    /// Earlier messages this one refers to, by handle (MOSCOW/6 received,
    /// to:MOSCOW/6 sent) or id: the station adds their ids to the draft's
    /// references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refer_to: Vec<String>,
}

/// Everything a caller can ask of a station.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    /// Proves an operator by passphrase; the session then acts for them.
    Login {
        operator: String,
        passphrase: Passphrase,
    },
    /// Tabletop stations only: a trainee signs in by call sign.
    SignIn {
        call_sign: String,
    },
    /// Ends the session's log-in (lock, handover, idle).
    Logout,
    /// Proves a second operator for the next FLASH release.
    VerifySecond {
        operator: String,
        passphrase: Passphrase,
    },
    /// Releases a message, attributed to the session's operator.
    Release(Box<Release>),
    /// Acknowledges a received message (a full id, or its first 8 or more
    /// characters) as the session's operator.
    Acknowledge {
        id: String,
    },
    /// Cancels a message still queued here.
    Cancel {
        id: String,
    },
    /// One stored message, opened (needs a log-in): by id, its first 8 or
    /// more characters, or handle (MOSCOW/6, to:MOSCOW/6).
    Open {
        id: String,
    },
    /// Writes a message's attachments, decrypted and checked, into files
    /// the caller opened for writing, one per attachment in the message's
    /// order (needs a log-in). An attachment not here in full is skipped,
    /// its file left empty.
    ExportAttachments {
        id: String,
        into: Vec<Passed>,
    },
    /// Writes a stored message as it is sealed, a standard age file, into
    /// a file the caller opened for writing (needs a log-in).
    ExportSealed {
        id: String,
        into: Passed,
    },
    /// An audit entry by the session's operator (lock, escalation).
    Audit {
        action: String,
        detail: String,
    },
    /// One direction's message rows: all of them in list order, or with
    /// `limit` a page of the newest, newest first, continuing below
    /// `before` when given.
    List {
        direction: Direction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<MessageId>,
    },
    /// Both lists, the status and the alarms at once: what a console
    /// resyncs from.
    Snapshot,
    /// Every alarm up now.
    Alarms,
    /// Clears an alarm as the session's operator (audited). One whose
    /// cause lasts stays silent until the cause ends.
    ClearAlarm {
        kind: AlarmKind,
        subject: String,
    },
    Status,
    /// The session operator's kept draft (see [`crate::drafts`]), sealed
    /// in the file the console handed over, opened.
    OpenDraft {
        draft: Passed,
    },
    /// The subjects of these messages (needs a log-in): what a watching
    /// connection, which carries no operator, leaves out of its rows.
    Subjects {
        ids: Vec<MessageId>,
    },
    /// The messages of one direction whose subject, field values or free
    /// text, in either language, contain `query` (needs a log-in). The
    /// station opens them in memory; nothing is written in clear.
    Find {
        direction: Direction,
        query: String,
    },
    /// A signed, sealed, journalled link test now.
    LinkTest {
        peer: String,
    },
    /// Confirms a peer's new keys by the fingerprint it read aloud, as
    /// the session's operator (audited).
    ConfirmRotation {
        peer: String,
        fingerprint: String,
    },
    /// Writes a backup into `into`, a file the caller opened for writing,
    /// sealed to the age recipients `to`, or to the station's own when
    /// empty; with the key file and card if `with_keys` (needs a log-in;
    /// audited). `name` is what the caller calls the file, for the audit.
    Backup {
        into: Passed,
        name: String,
        #[serde(default)]
        to: Vec<String>,
        #[serde(default)]
        with_keys: bool,
    },
}

impl Command {
    /// The files the command hands over, in the order their descriptors
    /// travel.
    pub fn passed_mut(&mut self) -> Vec<&mut Passed> {
        match self {
            Command::Release(r) => r.attachments.iter_mut().map(|a| &mut a.file).collect(),
            Command::ExportAttachments { into, .. } => into.iter_mut().collect(),
            Command::Backup { into, .. }
            | Command::ExportSealed { into, .. }
            | Command::OpenDraft { draft: into } => vec![into],
            _ => Vec::new(),
        }
    }

    /// A short name for logs and audit entries; never carries content.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Login { .. } => "login",
            Command::SignIn { .. } => "sign-in",
            Command::Logout => "logout",
            Command::VerifySecond { .. } => "verify-second",
            Command::Release(_) => "release",
            Command::Acknowledge { .. } => "acknowledge",
            Command::Cancel { .. } => "cancel",
            Command::Open { .. } => "open",
            Command::ExportAttachments { .. } => "export-attachments",
            Command::ExportSealed { .. } => "export-sealed",
            Command::Audit { .. } => "audit",
            Command::List { .. } => "list",
            Command::Snapshot => "snapshot",
            Command::Alarms => "alarms",
            Command::ClearAlarm { .. } => "clear-alarm",
            Command::Status => "status",
            Command::OpenDraft { .. } => "open-draft",
            Command::Find { .. } => "find",
            Command::Subjects { .. } => "subjects",
            Command::LinkTest { .. } => "link-test",
            Command::ConfirmRotation { .. } => "confirm-rotation",
            Command::Backup { .. } => "backup",
        }
    }
}

/// Everything a station answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Reply {
    LoggedIn {
        operator: OperatorName,
    },
    LoggedOut,
    Verified {
        operator: OperatorName,
    },
    /// The message is durably in the outbox.
    Released {
        row: Box<MessageRow>,
    },
    Acknowledged {
        row: Box<MessageRow>,
    },
    Cancelled {
        row: Box<MessageRow>,
    },
    Opened {
        message: Box<Message>,
    },
    /// Which of the files were written (by the attachment's place in the
    /// message), and why the others were not.
    Exported {
        written: Vec<usize>,
        skipped: Vec<String>,
    },
    Audited,
    /// The sealed message was written: its row, and how many bytes.
    ExportedSealed {
        row: Box<MessageRow>,
        bytes: u64,
    },
    BackedUp {
        backup: Box<super::backup::BackedUp>,
    },
    Rows {
        rows: Vec<MessageRow>,
    },
    Snapshot {
        inbound: Vec<MessageRow>,
        outbound: Vec<MessageRow>,
        status: Box<Status>,
        alarms: Vec<Alarm>,
    },
    Alarms {
        alarms: Vec<Alarm>,
    },
    AlarmCleared {
        alarm: Box<Alarm>,
    },
    Status {
        status: Box<Status>,
    },
    LinkTested {
        peer: String,
        rtt_ms: u64,
    },
    /// The subjects known of the messages asked for.
    Subjects {
        subjects: Vec<(MessageId, String)>,
    },
    /// The ids of the messages found, in list order.
    Found {
        ids: Vec<MessageId>,
    },
    /// A peer's new keys are pinned.
    RotationConfirmed {
        peer: String,
        fingerprint: String,
    },
    /// The operator's kept draft, opened.
    Draft {
        saved: Box<crate::drafts::SavedDraft>,
    },
}

/// Why a command failed, typed so that a console can keep the reason and
/// the advice apart. The same enum carries the client's own troubles
/// (station not running, gone, unreadable), so a caller has one type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ApiError {
    #[error("unknown operator or wrong passphrase")]
    Denied,
    #[error("operator {name} is locked out after repeated failures; try again in {seconds}s")]
    LockedOut { name: String, seconds: u64 },
    #[error("no operator is logged in here; log in first")]
    NotLoggedIn,
    #[error("call-sign sign-in is for tabletop exercises only; log in with a passphrase")]
    NotAnExercise,
    #[error("two-person rule: {reason}")]
    TwoPersonRule { reason: String },
    #[error("{peer} is not a configured peer; add it with `hotline peer add CARD.toml`")]
    UnknownPeer { peer: String },
    #[error("{detail}")]
    NotFound { detail: String },
    #[error("the draft cannot be released: {detail}")]
    Draft { detail: String },
    #[error("{detail}")]
    Refused { detail: String },
    #[error("journal: {detail}")]
    Journal { detail: String },
    #[error("link: {detail}")]
    Link { detail: String },
    #[error("not a request: {detail}")]
    BadRequest { detail: String },
    #[error(
        "the station speaks control protocol version {theirs}, this hotline speaks {ours}; run the same hotline build on both sides"
    )]
    Version { ours: u32, theirs: u32 },
    #[error(
        "no station is running for this config ({socket} has no live socket); start one with `hotline serve`"
    )]
    NotRunning { socket: PathBuf },
    #[error("the station went away ({detail}); nothing more was heard from it")]
    Gone { detail: String },
    #[error("the station answered something this hotline cannot read: {detail}")]
    Unreadable { detail: String },
}

impl From<super::StationError> for ApiError {
    fn from(e: super::StationError) -> Self {
        use super::StationError as S;
        use crate::store::StoreError;
        match e {
            S::Store(StoreError::NotFound(id)) => ApiError::NotFound {
                detail: format!("no message with id {id} in the journal"),
            },
            S::Store(StoreError::Rejected(detail)) => ApiError::NotFound { detail },
            S::Store(e) => ApiError::Journal {
                detail: e.to_string(),
            },
            S::Link(e) => ApiError::Link {
                detail: e.to_string(),
            },
            S::Draft(e) => ApiError::Draft {
                detail: e.to_string(),
            },
            S::Auth(e) => e.into(),
            S::UnknownPeer(peer) => ApiError::UnknownPeer { peer },
            S::Refused(detail) => ApiError::Refused { detail },
        }
    }
}

impl From<super::AuthError> for ApiError {
    fn from(e: super::AuthError) -> Self {
        match e {
            super::AuthError::Denied => ApiError::Denied,
            super::AuthError::LockedOut { name, remaining } => ApiError::LockedOut {
                name,
                seconds: remaining.as_secs().max(1),
            },
        }
    }
}

/// Which door a session came through, for the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    Console,
    ControlSocket,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Console => "console",
            Door::ControlSocket => "control-socket",
        }
    }
}

#[derive(Default)]
struct Who {
    operator: Option<OperatorName>,
    second: Option<(OperatorName, Instant)>,
}

/// Who is logged in on one door. Shared by the tasks of one console.
pub struct Session {
    door: Door,
    /// The caller runs as the station's own user (the in-process console,
    /// or a socket client of that uid), not as another member of its
    /// operators' group.
    station_user: bool,
    who: Mutex<Who>,
}

impl Session {
    /// A session of the station's own user.
    pub fn new(door: Door) -> Session {
        Session {
            door,
            station_user: true,
            who: Mutex::default(),
        }
    }

    /// A control-socket session; `station_user` if the client runs as
    /// the station's user.
    pub fn socket(station_user: bool) -> Session {
        Session {
            station_user,
            ..Session::new(Door::ControlSocket)
        }
    }

    pub fn station_user(&self) -> bool {
        self.station_user
    }

    pub fn door(&self) -> Door {
        self.door
    }

    fn who(&self) -> std::sync::MutexGuard<'_, Who> {
        self.who.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The operator logged in here.
    pub fn operator(&self) -> Option<OperatorName> {
        self.who().operator.clone()
    }

    pub(super) fn log_in(&self, operator: OperatorName) {
        let mut who = self.who();
        who.operator = Some(operator);
        who.second = None;
    }

    /// Ends the log-in; returns who was logged in.
    pub(super) fn log_out(&self) -> Option<OperatorName> {
        let mut who = self.who();
        who.second = None;
        who.operator.take()
    }

    pub(super) fn verified_second(&self, operator: OperatorName) {
        self.who().second = Some((operator, Instant::now()));
    }

    /// Takes the verified second operator, if it is `name` and still valid.
    pub(super) fn take_second(&self, name: &str) -> Option<OperatorName> {
        let mut who = self.who();
        match who.second.take() {
            Some((op, at)) if op.as_str() == name && at.elapsed() < SECOND_OPERATOR_VALID => {
                Some(op)
            }
            _ => None,
        }
    }
}
