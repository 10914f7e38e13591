//! The journal's side of delivery: what is pending for a peer, and the state
//! changes a message goes through — sent, receipted (by the peer's
//! software), acknowledged (by a person), refused, cancelled — each with its
//! audit entry in the same transaction. Receipts and acknowledgements are
//! kept as the signed documents that proved them.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};

use super::Cached as _;
use super::audit::{self, Head};
use super::{Journal, MessageState, Pending, StoreError};
use crate::domain::{Message, MessageId, Precedence, stamp};

/// An outbound message waiting for its receipt.
#[derive(Clone, Debug)]
pub struct PendingMessage {
    pub id: MessageId,
    pub precedence: Precedence,
    pub serial: u64,
    pub sealed: Vec<u8>,
}

/// An acknowledgement waiting for the peer's receipt.
#[derive(Clone, Debug)]
pub struct PendingAck {
    pub message_id: MessageId,
    pub precedence: Precedence,
    pub doc: Vec<u8>,
}

/// What storing an inbound message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    /// Stored before: here is the receipt that was sent then.
    Duplicate {
        receipt: Vec<u8>,
    },
    /// Its id is taken by a different message (another peer's, one of
    /// ours, or this peer's with other content): not stored (the caller
    /// audits it, at the peer's rate).
    Conflict {
        reason: String,
    },
}

/// How many link tests (each way) and recorded audit heads are kept per
/// peer: eight days of hourly tests, and a bound on what
/// a peer testing the link without pause can make the journal hold.
pub const KEPT_PER_PEER: i64 = 200;

/// What two copies of one message share whatever their sealing: the
/// SHA-256 of its fields as signed.
fn content_hash(message: &Message) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(hex::encode(Sha256::digest(json)))
}

fn precedence_of(rank: u8) -> Result<Precedence, StoreError> {
    Precedence::from_rank(rank)
        .ok_or_else(|| StoreError::Corrupt(format!("precedence rank {rank}")))
}

fn parse_id(s: &str) -> Result<MessageId, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("message id `{s}`")))
}

/// A message's state and peer, if the journal has it in `direction`.
fn state_of(
    tx: &Transaction<'_>,
    id: &MessageId,
    direction: &str,
) -> Result<Option<(MessageState, String)>, StoreError> {
    let found: Option<(String, String)> = tx
        .query_row_cached(
            "SELECT state, peer FROM messages WHERE id = ?1 AND direction = ?2",
            params![id.to_string(), direction],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    found
        .map(|(state, peer)| Ok((state_in(id, &state)?, peer)))
        .transpose()
}

/// A state read from the journal; anything unknown is damage, named with
/// the message it was found on.
fn state_in(id: &MessageId, state: &str) -> Result<MessageState, StoreError> {
    MessageState::from_sql(state).map_err(|_| {
        StoreError::Corrupt(format!(
            "message {id}: unknown message state `{}`",
            state.escape_debug()
        ))
    })
}

impl Journal {
    /// Outbound messages to `peer` with no receipt yet, most urgent first.
    pub fn pending_messages(&self, peer: &str) -> Result<Vec<PendingMessage>, StoreError> {
        let waiting = [MessageState::Queued, MessageState::Sent];
        self.outbound_in(peer, &waiting, 0)
    }

    /// Outbound messages to `peer` above `serial` that it receipted: what
    /// it no longer holds if it says it holds no serial of ours above
    /// `serial` (it was restored from a backup), most urgent first.
    pub fn receipted_above(
        &self,
        peer: &str,
        serial: u64,
    ) -> Result<Vec<PendingMessage>, StoreError> {
        let receipted = [MessageState::Receipted, MessageState::Acknowledged];
        self.outbound_in(peer, &receipted, serial)
    }

    fn outbound_in(
        &self,
        peer: &str,
        states: &[MessageState; 2],
        above: u64,
    ) -> Result<Vec<PendingMessage>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, precedence, serial, sealed FROM messages \
                 WHERE direction = 'out' AND peer = ?1 AND state IN (?2, ?3) AND serial > ?4 \
                 ORDER BY precedence, stored_at, serial",
            )?;
            let filter = params![peer, states[0].as_sql(), states[1].as_sql(), above as i64];
            let rows = stmt.query_map(filter, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, rank, serial, sealed) = row?;
                out.push(PendingMessage {
                    id: parse_id(&id)?,
                    precedence: precedence_of(rank)?,
                    serial: serial as u64,
                    sealed,
                });
            }
            Ok(out)
        })
    }

    /// The highest serial received from `peer` (0 if none).
    pub fn highest_received(&self, peer: &str) -> Result<u64, StoreError> {
        self.read(|c| {
            let v: Option<i64> = c.query_row_cached(
                "SELECT MAX(serial) FROM messages WHERE direction = 'in' AND peer = ?1",
                [peer],
                |r| r.get(0),
            )?;
            Ok(v.unwrap_or(0).max(0) as u64)
        })
    }

    /// Acknowledgements to `peer` not yet receipted.
    pub fn pending_acks(&self, peer: &str) -> Result<Vec<PendingAck>, StoreError> {
        self.acks_out(peer, "delivered_at IS NULL", None)
    }

    /// Answers `peer`'s restore from a backup `taken` at that time, once:
    /// our acknowledgements of its messages that it receipted at or after
    /// `since` are made pending again (so that they are sent until it
    /// receipts them once more, across our restarts too), the answer is
    /// recorded and audited, and they are returned, most urgent first.
    /// `None` if this restore was answered before.
    pub fn answer_restore(
        &self,
        peer: String,
        taken: Timestamp,
        since: Timestamp,
    ) -> Pending<Option<Vec<PendingAck>>> {
        self.write(move |tx| {
            let done: Option<String> = tx
                .query_row_cached(
                    "SELECT at FROM restores_answered WHERE peer = ?1 AND taken = ?2",
                    params![peer, stamp(taken)],
                    |r| r.get(0),
                )
                .optional()?;
            if done.is_some() {
                return Ok(None);
            }
            let mut acks = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT message_id, precedence, doc FROM acks_out \
                     WHERE peer = ?1 AND delivered_at >= ?2 ORDER BY precedence, created_at",
                )?;
                let rows = stmt.query_map(params![peer, stamp(since)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })?;
                for row in rows {
                    let (id, rank, doc) = row?;
                    acks.push(PendingAck {
                        message_id: parse_id(&id)?,
                        precedence: precedence_of(rank)?,
                        doc,
                    });
                }
            }
            tx.execute_cached(
                "UPDATE acks_out SET delivered_at = NULL WHERE peer = ?1 AND delivered_at >= ?2",
                params![peer, stamp(since)],
            )?;
            tx.execute_cached(
                "INSERT INTO restores_answered (peer, taken, at, acks) VALUES (?1, ?2, ?3, ?4)",
                params![
                    peer,
                    stamp(taken),
                    stamp(Timestamp::now()),
                    acks.len() as i64
                ],
            )?;
            audit::append(
                tx,
                "station",
                "restore-resend",
                &format!(
                    "peer={peer} restored-from={taken} acks-resent={}",
                    acks.len()
                ),
            )?;
            Ok(Some(acks))
        })
    }

    /// Our acknowledgements to `peer` that meet `filter` (which may name
    /// `?2`, bound to `since`), most urgent first.
    fn acks_out(
        &self,
        peer: &str,
        filter: &str,
        since: Option<String>,
    ) -> Result<Vec<PendingAck>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT message_id, precedence, doc FROM acks_out WHERE peer = ?1 AND {filter} \
                 ORDER BY precedence, created_at"
            ))?;
            let bind = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            };
            let rows: Vec<(String, u8, Vec<u8>)> = match &since {
                Some(since) => stmt
                    .query_map(params![peer, since], bind)?
                    .collect::<Result<_, _>>()?,
                None => stmt.query_map([peer], bind)?.collect::<Result<_, _>>()?,
            };
            rows.into_iter()
                .map(|(id, rank, doc)| {
                    Ok(PendingAck {
                        message_id: parse_id(&id)?,
                        precedence: precedence_of(rank)?,
                        doc,
                    })
                })
                .collect()
        })
    }

    /// The highest serial released to `peer` (0 if none).
    pub fn highest_released(&self, peer: &str) -> Result<u64, StoreError> {
        self.read(|c| {
            let v: Option<i64> = c
                .query_row_cached(
                    "SELECT last_released FROM serials WHERE peer = ?1",
                    [peer],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.unwrap_or(0) as u64)
        })
    }

    /// The bytes kept from `peer` (or from every peer): the sealed messages
    /// received and their attachments' sizes.
    pub fn inbound_bytes(&self, peer: Option<&str>) -> Result<u64, StoreError> {
        self.read(|c| {
            // TOTAL never overflows; a declared size past i64 is stored
            // negative and counts as the most there is.
            let bytes: f64 = c.query_row_cached(
                "SELECT (SELECT TOTAL(length(sealed)) FROM messages \
                   WHERE direction = 'in' AND (?1 IS NULL OR peer = ?1)) \
                 + (SELECT TOTAL(CASE WHEN size < 0 THEN 9.2e18 ELSE size END) FROM attachments \
                   WHERE direction = 'in' AND (?1 IS NULL OR peer = ?1))",
                [peer],
                |r| r.get(0),
            )?;
            Ok(bytes as u64)
        })
    }

    /// The newest `limit` serials towards `peer` that no message will
    /// arrive under: released and cancelled before they were sent, or
    /// reserved and void (see [`Journal::void_serial`]). Ascending.
    pub fn cancelled_serials(&self, peer: &str, limit: u64) -> Result<Vec<u64>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT serial FROM messages WHERE direction = 'out' AND peer = ?1 AND state = ?2 \
                 UNION ALL SELECT serial FROM void_serials WHERE peer = ?1 \
                 ORDER BY serial DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![peer, MessageState::Cancelled.as_sql(), limit as i64],
                |r| r.get::<_, i64>(0),
            )?;
            let mut serials: Vec<u64> = rows
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|s| s as u64)
                .collect();
            serials.reverse();
            Ok(serials)
        })
    }

    /// The serials received from `peer` in `above+1 ..= up_to` (served by
    /// the unique index on direction, peer and serial).
    pub fn received_serials(
        &self,
        peer: &str,
        above: u64,
        up_to: u64,
    ) -> Result<Vec<u64>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT serial FROM messages WHERE direction = 'in' AND peer = ?1 AND serial > ?2 AND serial <= ?3 ORDER BY serial",
            )?;
            let rows = stmt.query_map(params![peer, above as i64, up_to as i64], |r| r.get::<_, i64>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?.into_iter().map(|s| s as u64).collect())
        })
    }

    /// Marks a queued message as handed to the link (no proof of anything).
    pub fn mark_sent(&self, id: MessageId) -> Pending<()> {
        self.write(move |tx| {
            tx.execute_cached(
                "UPDATE messages SET state = ?2 WHERE id = ?1 AND direction = 'out' AND state = ?3",
                params![
                    id.to_string(),
                    MessageState::Sent.as_sql(),
                    MessageState::Queued.as_sql()
                ],
            )?;
            Ok(())
        })
    }

    /// Records the peer's signed receipt for an outbound message. Returns
    /// whether this was news (false for a repeated receipt).
    /// A FLASH goes in the writer's urgent lane.
    pub fn mark_receipted(
        &self,
        id: MessageId,
        precedence: Precedence,
        receipt: Vec<u8>,
        at: Timestamp,
    ) -> Pending<bool> {
        self.write_at(precedence == Precedence::Flash, move |tx| {
            let Some((state, peer)) = state_of(tx, &id, "out")? else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            if !state.awaits_receipt() {
                return Ok(false);
            }
            tx.execute_cached(
                "UPDATE messages SET state = ?4, receipt = ?2, receipt_at = ?3 WHERE id = ?1 AND direction = 'out'",
                params![id.to_string(), receipt, stamp(at), MessageState::Receipted.as_sql()],
            )?;
            audit::append(tx, "station", "receipt", &format!("id={id} peer={peer}"))?;
            Ok(true)
        })
    }

    /// Records the peer's signed refusal. A refused message is never retried.
    pub fn mark_refused(&self, id: MessageId, reason: String, doc: Vec<u8>) -> Pending<bool> {
        self.write(move |tx| {
            let Some((state, peer)) = state_of(tx, &id, "out")? else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            if !state.awaits_receipt() {
                return Ok(false);
            }
            tx.execute_cached(
                "UPDATE messages SET state = ?4, refusal = ?2, receipt = ?3 WHERE id = ?1 AND direction = 'out'",
                params![id.to_string(), reason, doc, MessageState::Refused.as_sql()],
            )?;
            audit::append(tx, "station", "refused", &format!("id={id} peer={peer} reason={reason}"))?;
            Ok(true)
        })
    }

    /// Cancels a message that has not been handed to the link yet.
    pub fn cancel(&self, id: MessageId, operator: String) -> Pending<()> {
        self.write(move |tx| {
            let Some((state, peer)) = state_of(tx, &id, "out")? else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            if state != MessageState::Queued {
                return Err(StoreError::Rejected(format!(
                    "message {id} is {state}; only a queued message can be cancelled. Send a cancellation message that references it instead"
                )));
            }
            tx.execute_cached(
                "UPDATE messages SET state = ?2 WHERE id = ?1 AND direction = 'out'",
                params![id.to_string(), MessageState::Cancelled.as_sql()],
            )?;
            audit::append(tx, &operator, "cancel", &format!("id={id} peer={peer}"))?;
            Ok(())
        })
    }

    /// Stores an inbound message that opened and verified, with the receipt
    /// that will answer it. A known id is a duplicate: nothing changes and
    /// the receipt sent the first time is returned.
    pub fn store_inbound(
        &self,
        message: Message,
        sealed: Vec<u8>,
        receipt: Vec<u8>,
    ) -> Pending<Stored> {
        self.write_at(message.precedence == Precedence::Flash, move |tx| {
            let content = content_hash(&message)?;
            type Seen = (String, String, Option<String>, Option<Vec<u8>>);
            let seen: Option<Seen> = tx
                .query_row_cached(
                    "SELECT direction, peer, content_hash, receipt FROM messages WHERE id = ?1",
                    [message.id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if let Some((direction, peer, stored, previous)) = seen {
                let from = message.from.as_str();
                let reason = if direction != "in" {
                    "it is the id of a message this station sent".to_string()
                } else if peer != from {
                    format!("it is the id of a message received from {peer}")
                } else if stored.is_some_and(|h| h != content) {
                    "a message with other content was received under it".to_string()
                } else {
                    return Ok(Stored::Duplicate {
                        receipt: previous.unwrap_or_default(),
                    });
                };
                return Ok(Stored::Conflict { reason });
            }
            super::messages::insert(
                tx,
                super::Direction::In,
                &message,
                MessageState::Received,
                &sealed,
            )?;
            super::attachments::insert_all(tx, super::Direction::In, &message, &[])?;
            tx.execute_cached(
                "UPDATE messages SET receipt = ?2, receipt_at = stored_at, content_hash = ?3 WHERE id = ?1 AND direction = 'in'",
                params![message.id.to_string(), receipt, content],
            )?;
            audit::append(
                tx,
                "station",
                "receive",
                &format!(
                    "id={} from={} serial={} precedence={} template={}@{} exercise={}",
                    message.id, message.from, message.serial, message.precedence, message.template.id, message.template.version, message.exercise
                ),
            )?;
            Ok(Stored::New)
        })
    }

    /// Records that `operator` acknowledged an inbound message and queues
    /// the signed acknowledgement for the sender. One-way: a second
    /// acknowledgement is refused.
    pub fn acknowledge(
        &self,
        id: MessageId,
        operator: String,
        at: Timestamp,
        doc: Vec<u8>,
    ) -> Pending<()> {
        self.write(move |tx| {
            let row: Option<(String, String, u8)> = tx
                .query_row_cached(
                    "SELECT state, peer, precedence FROM messages WHERE id = ?1 AND direction = 'in'",
                    [id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((state, peer, rank)) = row else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            if state_in(&id, &state)? == MessageState::Acknowledged {
                return Err(StoreError::Rejected(format!("message {id} is already acknowledged")));
            }
            tx.execute_cached(
                "UPDATE messages SET state = ?5, ack_by = ?2, ack_at = ?3, ack = ?4 WHERE id = ?1 AND direction = 'in'",
                params![id.to_string(), operator, stamp(at), doc, MessageState::Acknowledged.as_sql()],
            )?;
            tx.execute_cached(
                "INSERT INTO acks_out (message_id, peer, precedence, doc, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.to_string(), peer, rank, doc, stamp(at)],
            )?;
            audit::append(tx, &operator, "acknowledge", &format!("id={id} peer={peer}"))?;
            Ok(())
        })
    }

    /// The peer has receipted our acknowledgement.
    pub fn mark_ack_delivered(&self, message_id: MessageId) -> Pending<()> {
        self.write(move |tx| {
            tx.execute_cached(
                "UPDATE acks_out SET delivered_at = ?2 WHERE message_id = ?1 AND delivered_at IS NULL",
                params![message_id.to_string(), stamp(Timestamp::now())],
            )?;
            Ok(())
        })
    }

    /// The peer refused our acknowledgement of its message `message_id`:
    /// it is not sent again, and the audit says why. The message itself is
    /// left as it is.
    pub fn settle_refused_ack(&self, message_id: MessageId, reason: String) -> Pending<bool> {
        self.write(move |tx| {
            let changed = tx.execute_cached(
                "UPDATE acks_out SET delivered_at = ?2 WHERE message_id = ?1 AND delivered_at IS NULL",
                params![message_id.to_string(), stamp(Timestamp::now())],
            )?;
            if changed > 0 {
                audit::append(
                    tx,
                    "station",
                    "ack-refused",
                    &format!("id={message_id} reason={reason}"),
                )?;
            }
            Ok(changed > 0)
        })
    }

    /// Records the peer operator's acknowledgement of our message. Returns
    /// whether it was news.
    pub fn record_peer_ack(
        &self,
        id: MessageId,
        peer: String,
        by: String,
        at: Timestamp,
        doc: Vec<u8>,
    ) -> Pending<bool> {
        self.write(move |tx| {
            let Some((state, owner)) = state_of(tx, &id, "out")? else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            if owner != peer {
                return Err(StoreError::Rejected(format!(
                    "message {id} was not sent to {peer}"
                )));
            }
            match state {
                MessageState::Acknowledged => return Ok(false),
                MessageState::Queued | MessageState::Sent | MessageState::Receipted => {}
                other => {
                    return Err(StoreError::Rejected(format!(
                        "message {id} is {other}; only a message delivered or on its way can be acknowledged"
                    )));
                }
            }
            tx.execute_cached(
                "UPDATE messages SET state = ?5, ack_by = ?2, ack_at = ?3, ack = ?4, \
                 receipt_at = COALESCE(receipt_at, ?3) WHERE id = ?1 AND direction = 'out'",
                params![
                    id.to_string(),
                    by,
                    stamp(at),
                    doc,
                    MessageState::Acknowledged.as_sql()
                ],
            )?;
            audit::append(
                tx,
                "station",
                "peer-acknowledged",
                &format!("id={id} peer={peer} by={by}"),
            )?;
            Ok(true)
        })
    }

    /// Records one link test, sent or answered, and the audit head the peer
    /// declared in it.
    pub fn record_link_test(
        &self,
        peer: String,
        outbound: bool,
        nonce: String,
        result: Option<(bool, Option<u64>)>,
        sealed: Vec<u8>,
        peer_head: Option<Head>,
    ) -> Pending<()> {
        self.write(move |tx| {
            let (ok, rtt) = result.map_or((None, None), |(ok, rtt)| (Some(ok), rtt.map(|r| r as i64)));
            tx.execute_cached(
                "INSERT INTO link_tests (peer, direction, nonce, at, ok, rtt_ms, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![peer, if outbound { "out" } else { "in" }, nonce, stamp(Timestamp::now()), ok, rtt, sealed],
            )?;
            if let Some(h) = peer_head {
                tx.execute_cached(
                    "INSERT OR IGNORE INTO peer_heads (peer, seq, hash, at) VALUES (?1, ?2, ?3, ?4)",
                    params![peer, h.seq as i64, h.hash, stamp(Timestamp::now())],
                )?;
                tx.execute_cached(
                    "DELETE FROM peer_heads WHERE peer = ?1 AND seq NOT IN \
                     (SELECT seq FROM peer_heads WHERE peer = ?1 ORDER BY seq DESC LIMIT ?2)",
                    params![peer, KEPT_PER_PEER],
                )?;
            }
            // However often a peer tests the link, only the newest are kept.
            tx.execute_cached(
                "DELETE FROM link_tests WHERE peer = ?1 AND direction = ?2 AND id NOT IN \
                 (SELECT id FROM link_tests WHERE peer = ?1 AND direction = ?2 ORDER BY id DESC LIMIT ?3)",
                params![peer, if outbound { "out" } else { "in" }, KEPT_PER_PEER],
            )?;
            Ok(())
        })
    }

    /// The newest audit head `peer` declared to us.
    pub fn peer_head(&self, peer: &str) -> Result<Option<Head>, StoreError> {
        self.read(|c| {
            Ok(c.query_row_cached(
                "SELECT seq, hash FROM peer_heads WHERE peer = ?1 ORDER BY seq DESC LIMIT 1",
                [peer],
                |r| {
                    Ok(Head {
                        seq: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }
}
