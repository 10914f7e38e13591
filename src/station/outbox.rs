//! The send queue: per peer, messages and acknowledgements waiting for a
//! receipt, most urgent first. A bounded number of streams is in flight,
//! with room kept for FLASH so a FLASH never waits behind ROUTINE traffic
//! for a free stream. Retries wait for the link, not for a per-message
//! timer: backoff applies to dialling.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::docs::{self, ReceiptBody, ReceiptOf, RefusalBody};
use super::{Event, FLASH_TIMEOUT, Inner, MESSAGE_TIMEOUT};
use crate::crypto::signed::Kind;
use crate::domain::{MessageId, Precedence, StationName};
use crate::store::{Journal, StoreError};
use crate::wire::{Frame, FrameKind};

/// Streams in flight per peer for non-FLASH traffic. Kept small: everything
/// below the send queue (the peer's journal writer, the CPU) is first come
/// first served, so a FLASH waits behind whatever is already in flight.
/// Measured: 16 in flight keeps nearly all the throughput of 64 at a quarter
/// of the round trip (`cargo bench --bench link`).
pub const MAX_IN_FLIGHT: usize = 16;
/// Extra streams only FLASH may use.
pub const FLASH_RESERVE: usize = 8;
/// Pause before an item whose exchange failed while the link stayed up is
/// offered again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What withdrawing a message from the queue found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withdrawn {
    /// It was waiting, and is gone from the queue.
    Removed,
    /// It is on a stream now.
    InFlight,
    /// It was not in the queue (settled, or never queued).
    NotQueued,
}

#[derive(Clone, Debug)]
enum Payload {
    Message(Arc<Vec<u8>>),
    Ack(Arc<Vec<u8>>),
}

#[derive(Clone, Debug)]
struct Item {
    id: MessageId,
    precedence: Precedence,
    order: u64,
    payload: Payload,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    /// The heap pops the greatest: most urgent precedence, then oldest.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .precedence
            .cmp(&self.precedence)
            .then(other.order.cmp(&self.order))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Item>,
    /// Items in the heap or in flight, so nothing is queued twice.
    known: HashSet<(MessageId, bool)>,
    /// Messages withdrawn by a cancel.
    withdrawn: HashSet<MessageId>,
}

/// One peer's queue.
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    order: AtomicU64,
    notify: Notify,
}

impl Queue {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, item: Item) {
        let key = (item.id, matches!(item.payload, Payload::Ack(_)));
        let mut s = self.state();
        if s.known.insert(key) {
            s.heap.push(item);
            drop(s);
            self.notify.notify_one();
        }
    }

    fn next_order(&self) -> u64 {
        self.order.fetch_add(1, AtomicOrdering::Relaxed)
    }

    pub fn push_message(&self, id: MessageId, precedence: Precedence, sealed: Vec<u8>) {
        let order = self.next_order();
        self.push(Item {
            id,
            precedence,
            order,
            payload: Payload::Message(Arc::new(sealed)),
        });
    }

    pub fn push_ack(&self, id: MessageId, precedence: Precedence, doc: Vec<u8>) {
        let order = self.next_order();
        self.push(Item {
            id,
            precedence,
            order,
            payload: Payload::Ack(Arc::new(doc)),
        });
    }

    /// Loads everything still pending for `peer` from the journal (at start).
    pub fn load(&self, journal: &Journal, peer: &str) -> Result<(), StoreError> {
        for m in journal.pending_messages(peer)? {
            self.push_message(m.id, m.precedence, m.sealed);
        }
        for a in journal.pending_acks(peer)? {
            self.push_ack(a.message_id, a.precedence, a.doc);
        }
        Ok(())
    }

    /// Removes a message that has not been handed to the link yet.
    pub fn withdraw(&self, id: &MessageId) -> Withdrawn {
        let mut s = self.state();
        let before = s.heap.len();
        s.heap
            .retain(|i| !(i.id == *id && matches!(i.payload, Payload::Message(_))));
        if s.heap.len() != before {
            s.known.remove(&(*id, false));
            s.withdrawn.insert(*id);
            Withdrawn::Removed
        } else if s.known.contains(&(*id, false)) {
            Withdrawn::InFlight
        } else {
            Withdrawn::NotQueued
        }
    }

    pub fn len(&self) -> usize {
        self.state().known.len()
    }

    /// Takes the most urgent item allowed with `in_flight` streams busy.
    fn take(&self, in_flight: usize) -> Option<Item> {
        let mut s = self.state();
        let top = s.heap.peek()?;
        let allowed = in_flight < MAX_IN_FLIGHT
            || (top.precedence == Precedence::Flash && in_flight < MAX_IN_FLIGHT + FLASH_RESERVE);
        if allowed { s.heap.pop() } else { None }
    }

    /// Puts an item back after a failed exchange.
    fn requeue(&self, item: Item) {
        let mut s = self.state();
        if s.withdrawn.contains(&item.id) {
            return;
        }
        s.heap.push(item);
        drop(s);
        self.notify.notify_one();
    }

    /// The item is settled (receipted or refused).
    fn settle(&self, item: &Item) {
        let mut s = self.state();
        s.known
            .remove(&(item.id, matches!(item.payload, Payload::Ack(_))));
    }
}

fn priority(p: Precedence) -> i32 {
    3 - i32::from(p.rank())
}

/// Waits until the link in `up` is up: true then, false once the station
/// stops. The dispatchers of messages and of attachments both start each
/// round with it.
pub(crate) async fn until_up(
    up: &mut tokio::sync::watch::Receiver<bool>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        if *up.borrow_and_update() {
            return true;
        }
        tokio::select! {
            _ = up.changed() => {}
            _ = stop.changed() => return false,
        }
    }
}

/// Sends the queue's items to `peer` whenever the link is up.
pub async fn dispatch(inner: Arc<Inner>, peer: StationName) {
    let (Some(queue), Some(link)) = (inner.queue(peer.as_str()), inner.link()) else {
        return;
    };
    let Some(mut up) = link.watch_up(&peer) else {
        return;
    };
    let mut stop = inner.stop.subscribe();
    let mut in_flight: JoinSet<()> = JoinSet::new();
    while until_up(&mut up, &mut stop).await {
        while let Some(item) = queue.take(in_flight.len()) {
            in_flight.spawn(exchange(inner.clone(), peer.clone(), item));
        }
        tokio::select! {
            () = queue.notify.notified() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = up.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// One item's exchange: send, then settle on a receipt or refusal, or put
/// it back on a transport failure.
async fn exchange(inner: Arc<Inner>, peer: StationName, item: Item) {
    let (Some(queue), Some(link), Some(peer_keys)) = (
        inner.queue(peer.as_str()),
        inner.link(),
        inner.peer(peer.as_str()),
    ) else {
        return;
    };
    if !inner.ours.may_send(&peer) {
        // The peer pins our compromised old key, and cannot verify the new
        // one until it confirms it: the item waits.
        tokio::time::sleep(RETRY_PAUSE).await;
        queue.requeue(item);
        return;
    }
    let frame = match &item.payload {
        Payload::Message(sealed) => {
            let _ = inner.journal.mark_sent(item.id);
            Frame::new(FrameKind::Message, sealed.as_ref().clone())
        }
        Payload::Ack(doc) => Frame::new(FrameKind::Ack, doc.as_ref().clone()),
    };
    let limit = if item.precedence == Precedence::Flash {
        FLASH_TIMEOUT
    } else {
        MESSAGE_TIMEOUT
    };
    let answer = link
        .request(&peer, &frame, priority(item.precedence), limit)
        .await;
    let outcome = match answer {
        Ok(a) => settle(&inner, &peer, &peer_keys, &item, a).await,
        // A connection that stays "up" but answers nothing (QUIC's own
        // retransmission backing off after a partition) is dropped and
        // dialled afresh, rather than waited on.
        Err(e @ crate::link::LinkError::Stream(crate::link::StreamError::Timeout(_))) => {
            link.reset(&peer, limit, "a request went unanswered");
            Err(e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(()) => queue.settle(&item),
        Err(reason) => {
            tracing::info!(%peer, id = %item.id, %reason, "exchange failed; will retry");
            if link.is_up(&peer) {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            queue.requeue(item);
        }
    }
}

async fn settle(
    inner: &Inner,
    peer: &StationName,
    peer_keys: &crate::crypto::PeerKeys,
    item: &Item,
    answer: Frame,
) -> Result<(), String> {
    let us = &inner.keys.name;
    match (answer.kind, &item.payload) {
        (FrameKind::Receipt, payload) => {
            let receipt: ReceiptBody = docs::open(Kind::Receipt, &answer.payload, peer_keys, us)
                .map_err(|e| e.to_string())?;
            let of = if matches!(payload, Payload::Ack(_)) {
                ReceiptOf::Ack
            } else {
                ReceiptOf::Message
            };
            if receipt.id != item.id || receipt.of != of {
                return Err(format!(
                    "receipt names {} ({:?}), not {}",
                    receipt.id, receipt.of, item.id
                ));
            }
            // From revision 2 a receipt names what arrived; one naming
            // other content proves nothing about this message.
            if let (Payload::Message(sealed), Some(named)) = (payload, &receipt.sealed_sha256)
                && *named != docs::sealed_sha256(sealed)
            {
                return Err(format!(
                    "the receipt for {} names other content ({named})",
                    item.id
                ));
            }
            match payload {
                Payload::Message(_) => {
                    let news = inner
                        .journal
                        .mark_receipted(item.id, item.precedence, answer.payload, Timestamp::now())
                        .done()
                        .await
                        .map_err(|e| e.to_string())?;
                    if news {
                        inner.emit(Event::Receipt {
                            id: item.id,
                            peer: peer.to_string(),
                        });
                        // The peer now has the message: its attachments may follow.
                        if let Some(wake) = inner.uploads(peer.as_str()) {
                            wake.notify_one();
                        }
                    }
                }
                Payload::Ack(_) => {
                    inner
                        .journal
                        .mark_ack_delivered(item.id)
                        .done()
                        .await
                        .map_err(|e| e.to_string())?;
                    inner.emit(Event::AckDelivered {
                        id: item.id,
                        peer: peer.to_string(),
                    });
                }
            }
            Ok(())
        }
        (FrameKind::Refusal, _) => {
            let refusal: RefusalBody = docs::open(Kind::Refusal, &answer.payload, peer_keys, us)
                .map_err(|e| e.to_string())?;
            if refusal.id.is_some_and(|id| id != item.id) {
                return Err(format!("refusal names another message ({:?})", refusal.id));
            }
            if let Some(index) = refusal.attachment {
                return Err(format!(
                    "a refusal of attachment {index} answered {}; only the attachment's own transfer settles on it",
                    item.id
                ));
            }
            // Only a station that could not read a message may refuse it
            // without naming it.
            if refusal.id.is_none() && !refusal.code.unreadable() {
                return Err(format!(
                    "a {} refusal that names no message",
                    refusal.code.as_str()
                ));
            }
            let reason = format!("{}: {}", refusal.code.as_str(), refusal.detail);
            if matches!(item.payload, Payload::Ack(_)) {
                // Our acknowledgement was refused: it is not sent again, and
                // no message of either direction changes.
                let news = inner
                    .journal
                    .settle_refused_ack(item.id, reason)
                    .done()
                    .await
                    .map_err(|e| e.to_string())?;
                if news {
                    inner.raise(
                        super::AlarmKind::Refused,
                        &format!("ack:{}", item.id),
                        Some(peer),
                        None,
                        crate::t!(
                            inner.config.station.language,
                            "alarm.refused_ack",
                            peer = peer,
                            id = item.id,
                            code = refusal.code.as_str()
                        ),
                    );
                }
                return Ok(());
            }
            let news = inner
                .journal
                .mark_refused(item.id, reason, answer.payload)
                .done()
                .await
                .map_err(|e| e.to_string())?;
            if news {
                inner.emit(Event::Refused {
                    id: item.id,
                    peer: peer.to_string(),
                    code: refusal.code.as_str().to_string(),
                    detail: refusal.detail.clone(),
                });
                inner.raise(
                    super::AlarmKind::Refused,
                    &item.id.to_string(),
                    Some(peer),
                    Some(item.id),
                    crate::t!(
                        inner.config.station.language,
                        "alarm.refused_message",
                        peer = peer,
                        id = item.id,
                        code = refusal.code.as_str()
                    ),
                );
            }
            Ok(())
        }
        (other, _) => Err(format!("answered with a {other:?} frame")),
    }
}
