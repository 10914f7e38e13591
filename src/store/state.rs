//! Where a message stands, as one type: the journal's `state` column is
//! read and written only through [`MessageState::as_sql`] and
//! [`MessageState::from_sql`], so no state travels as a string outside the
//! store and the compiler finds every place that decides on one.
//!
//! "Received" means one thing: an inbound message stored here. An outbound
//! message whose peer has sent its receipt is [`MessageState::Receipted`].

use std::fmt;

use super::StoreError;

/// The state of one message in the journal. Outbound messages go
/// `Queued → Sent → Receipted → Acknowledged` (or end `Refused` or
/// `Cancelled`); inbound ones go `Received → Acknowledged`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageState {
    /// Outbound: released and durably in the outbox, not yet handed to the link.
    Queued,
    /// Outbound: handed to the link; no receipt yet, so nothing is proven.
    Sent,
    /// Outbound: the peer's signed receipt came back; the peer's journal
    /// holds the message. No person there has read it yet.
    Receipted,
    /// Inbound: stored here (and receipted to the sender), awaiting an
    /// operator's acknowledgement.
    Received,
    /// Either direction: a named operator at the receiving station has read
    /// it (inbound: one of ours; outbound: the peer's).
    Acknowledged,
    /// Outbound: the peer answered with a signed refusal; never retried.
    Refused,
    /// Outbound: cancelled by an operator before it was handed to the link.
    Cancelled,
}

impl MessageState {
    /// Every state, in the order of a message's journey.
    pub const ALL: [MessageState; 7] = [
        MessageState::Queued,
        MessageState::Sent,
        MessageState::Receipted,
        MessageState::Received,
        MessageState::Acknowledged,
        MessageState::Refused,
        MessageState::Cancelled,
    ];

    /// The journal's spelling (also the wire and JSON spelling).
    pub fn as_sql(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sent => "sent",
            MessageState::Receipted => "receipted",
            MessageState::Received => "received",
            MessageState::Acknowledged => "acknowledged",
            MessageState::Refused => "refused",
            MessageState::Cancelled => "cancelled",
        }
    }

    /// Reads the journal's spelling; anything else is damage, named.
    pub fn from_sql(s: &str) -> Result<MessageState, StoreError> {
        MessageState::ALL
            .into_iter()
            .find(|state| state.as_sql() == s)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("unknown message state `{}`", s.escape_debug()))
            })
    }

    /// The state as the screens show it to a reader of `lang`, in upper
    /// case words.
    pub fn label(self, lang: crate::domain::Language) -> &'static str {
        match self {
            MessageState::Queued => crate::t!(lang, "state.queued"),
            MessageState::Sent => crate::t!(lang, "state.sent"),
            MessageState::Receipted => crate::t!(lang, "state.receipted"),
            MessageState::Received => crate::t!(lang, "state.received"),
            MessageState::Acknowledged => crate::t!(lang, "state.acknowledged"),
            MessageState::Refused => crate::t!(lang, "state.refused"),
            MessageState::Cancelled => crate::t!(lang, "state.cancelled"),
        }
    }

    /// Inbound and waiting for one of our operators to acknowledge it.
    pub fn is_unacknowledged(self) -> bool {
        self == MessageState::Received
    }

    /// Outbound and still without the peer's receipt (queued or sent): the
    /// screen must not let it look delivered.
    pub fn awaits_receipt(self) -> bool {
        matches!(self, MessageState::Queued | MessageState::Sent)
    }

    /// Outbound, receipted, and still waiting for the peer's operator.
    pub fn awaits_peer_ack(self) -> bool {
        self == MessageState::Receipted
    }

    /// Finished without delivery: refused by the peer or cancelled here.
    pub fn is_abandoned(self) -> bool {
        matches!(self, MessageState::Refused | MessageState::Cancelled)
    }
}

/// Lower case words for running text and logs (`message … is sent`).
impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_its_own_spelling() {
        for state in MessageState::ALL {
            assert_eq!(MessageState::from_sql(state.as_sql()).ok(), Some(state));
            let json = serde_json::to_string(&state).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", state.as_sql()));
        }
    }

    #[test]
    fn an_unknown_state_is_corrupt_not_a_panic() {
        match MessageState::from_sql("delivered") {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("`delivered`"), "{why}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
