//! What a station tells its subscribers. Delivered over a bounded broadcast
//! channel: a subscriber that falls behind is told to resync from state and
//! never slows the station.

use serde::{Deserialize, Serialize};

use crate::domain::{MessageId, Precedence};
use crate::link::PathKind;

/// Room for events not yet taken by the slowest subscriber.
pub const EVENT_BUFFER: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    Alarm {
        kind: AlarmKind,
        peer: Option<String>,
        id: Option<MessageId>,
        text: String,
    },
    /// Something for the operators to read (exercise progress, for one).
    Notice {
        text: String,
    },
    /// Sent to a subscriber that fell behind: re-read state.
    Resync,
}
