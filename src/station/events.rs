//! What a station tells its subscribers. Delivered over a bounded broadcast
//! channel: a subscriber that falls behind is told to resync from state and
//! never slows the station.

use serde::{Deserialize, Serialize};

use super::alarms::Alarm;
use crate::domain::{MessageId, Precedence};
use crate::link::PathKind;
use crate::store::{Direction, MessageRow};

/// Room for events not yet taken by the slowest subscriber.
pub const EVENT_BUFFER: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmKind {
    /// A FLASH message has had no receipt within the configured time.
    FlashNoReceipt,
    /// The peer refused a message.
    Refused,
    /// A link test was not answered (or the link was down when one was due).
    MissedLinkTest,
    /// The peer's clock differs from ours beyond the configured bound.
    ClockSkew,
    /// A serial number from the peer is missing.
    Gap,
    /// An inbound message is past its acknowledgement deadline.
    Overdue,
    /// A connection was refused (unknown key, bad hello, wrong ALPN).
    ConnectionRefused,
    /// A peer recorded an audit head of ours that our log no longer holds.
    AuditMismatch,
    /// The link to a peer has been down longer than `link.down_alarm`.
    LinkDown,
    /// The link to a peer runs on its backup path.
    LinkDegraded,
    /// A received message's original text differs from its signed fields.
    OriginalDiffers,
    /// A peer sent a different message under the id of one already
    /// received (or of one of ours): refused, not stored.
    ConflictingId,
    /// What this station keeps from a peer, or in all, is near its quota.
    Storage,
    /// A peer announced new keys: held until an operator confirms the new
    /// fingerprint out of band (`hotline peer confirm`).
    KeyRotation,
    /// A peer says the key pinned for it was compromised: refused at once,
    /// and what was stored since is flagged, until its new fingerprint is
    /// confirmed.
    KeyCompromised,
    /// A notification arrived later than its treaty asks (judged by when
    /// it was received, the notification's date by treaty practice).
    ShortNotice,
    /// The journal was restored from a backup, and a peer has not yet
    /// said which of our serials it holds: nothing is released to it.
    Restored,
    /// A scheduled backup failed.
    BackupFailed,
    /// The journal cannot be written (a full disk, an I/O error): new
    /// releases and receipts are refused until it can.
    WriteFailed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Released {
        id: MessageId,
        to: String,
        serial: u64,
        precedence: Precedence,
    },
    Received {
        id: MessageId,
        from: String,
        serial: u64,
        precedence: Precedence,
        exercise: bool,
        template: String,
    },
    Receipt {
        id: MessageId,
        peer: String,
    },
    Acknowledged {
        id: MessageId,
        peer: String,
        by: String,
        at: String,
    },
    AckDelivered {
        id: MessageId,
        peer: String,
    },
    Refused {
        id: MessageId,
        peer: String,
        code: String,
        detail: String,
    },
    Cancelled {
        id: MessageId,
    },
    LinkUp {
        peer: String,
        path: PathKind,
        remote: String,
    },
    LinkDown {
        peer: String,
        reason: String,
    },
    FailedOver {
        peer: String,
        path: PathKind,
    },
    LinkTest {
        peer: String,
        ok: bool,
        rtt_ms: Option<u64>,
    },
    Gap {
        peer: String,
        serials: Vec<u64>,
    },
    /// An alarm went up (one per cause: see [`super::alarms`]).
    Alarm(Alarm),
    /// An alarm came down: its cause ended, or operator `by` cleared it.
    AlarmCleared {
        kind: AlarmKind,
        subject: String,
        by: Option<String>,
    },
    /// An attachment's transfer moved on: `done` of `total` sealed bytes
    /// are at the receiver. Sent at most every few percent.
    AttachmentProgress {
        id: MessageId,
        index: u32,
        direction: Direction,
        done: u64,
        total: u64,
    },
    /// An attachment is stored and verified at the receiver (on the
    /// sending side: its receipt came).
    AttachmentStored {
        id: MessageId,
        index: u32,
        direction: Direction,
        peer: String,
    },
    /// An attachment was refused (oversize, damaged, not what the signed
    /// message lists).
    AttachmentRefused {
        id: MessageId,
        index: u32,
        direction: Direction,
        peer: String,
        reason: String,
    },
    /// A station asks to join this tabletop white cell.
    JoinRequested {
        station: String,
        fingerprint: String,
        remote: String,
    },
    /// A peer was added while running (a trainee admitted to a white cell).
    PeerAdded {
        peer: String,
    },
    /// A key rotation moved on: the peer's (held, confirmed, complete) or
    /// ours (the peer holds or confirmed our notice).
    KeysChanged {
        peer: String,
        what: String,
    },
    /// Something for the operators to read (exercise progress, for one).
    Notice {
        text: String,
    },
    /// A message's row changed (released, stored, receipted,
    /// acknowledged, refused, cancelled, an attachment settled): the row as
    /// the journal now holds it, so a console applies it instead of
    /// re-reading the lists. Follows the event that says why.
    MessageChanged {
        row: Box<MessageRow>,
    },
    /// The station is stopping: attached consoles show it at once.
    Stopping {
        reason: String,
    },
    /// Sent to a subscriber that fell behind: re-read state.
    Resync,
}

impl Event {
    /// The message whose row this event changed, if any.
    pub fn changed_message(&self) -> Option<MessageId> {
        match self {
            Event::Released { id, .. }
            | Event::Received { id, .. }
            | Event::Receipt { id, .. }
            | Event::Acknowledged { id, .. }
            | Event::AckDelivered { id, .. }
            | Event::Refused { id, .. }
            | Event::Cancelled { id }
            | Event::AttachmentStored { id, .. }
            | Event::AttachmentRefused { id, .. } => Some(*id),
            _ => None,
        }
    }
}
