//! Messages in the journal: releasing into the outbox (serial allocation,
//! sealing and storing in one transaction), storing what arrives, and the
//! queries the queues need. Content is stored only as age ciphertext.

use jiff::Timestamp;

use crate::domain::stamp;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Journal, Pending, StoreError, audit};
use crate::domain::{Message, MessageId, Precedence, StationName};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Out,
    In,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

/// One message's queue-visible facts; no content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageRow {
    pub id: MessageId,
    pub direction: Direction,
    pub peer: String,
    pub serial: u64,
    pub precedence: Precedence,
    pub exercise: bool,
    #[serde(rename = "template")]
    pub template_id: String,
    pub template_version: u32,
    pub released_at: String,
    pub stored_at: String,
    pub operator: String,
    pub state: String,
    pub receipt_at: Option<String>,
    pub ack_by: Option<String>,
    pub ack_at: Option<String>,
    pub refusal: Option<String>,
    /// How many attachments the message has, and how many are stored and
    /// verified at the receiver.
    #[serde(default)]
    pub attachments: u32,
    #[serde(default)]
    pub attachments_done: u32,
}

/// A message just released into the outbox.
#[derive(Clone, Debug)]
pub struct Released {
    pub id: MessageId,
    pub serial: u64,
    /// The sealed message as stored, ready for the send queue.
    pub sealed: Vec<u8>,
}

pub(super) const ROW_COLUMNS: &str = "id, direction, peer, serial, precedence, exercise, template_id, template_version, \
     released_at, stored_at, operator, state, receipt_at, ack_by, ack_at, refusal, \
     (SELECT COUNT(*) FROM attachments a WHERE a.message_id = messages.id AND a.direction = messages.direction), \
     (SELECT COUNT(*) FROM attachments a WHERE a.message_id = messages.id AND a.direction = messages.direction \
      AND a.state = 'receipted')";

pub(super) fn row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    let id: String = r.get(0)?;
    let direction: String = r.get(1)?;
    let precedence: u8 = r.get(4)?;
    let bad = |what: &str| {
        rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
    };
    Ok(MessageRow {
        id: id.parse().map_err(|_| bad("id"))?,
        direction: if direction == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        peer: r.get(2)?,
        serial: r.get::<_, i64>(3)? as u64,
        precedence: Precedence::from_rank(precedence).ok_or_else(|| bad("precedence"))?,
        exercise: r.get(5)?,
        template_id: r.get(6)?,
        template_version: r.get(7)?,
        released_at: r.get(8)?,
        stored_at: r.get(9)?,
        operator: r.get(10)?,
        state: r.get(11)?,
        receipt_at: r.get(12)?,
        ack_by: r.get(13)?,
        ack_at: r.get(14)?,
        refusal: r.get(15)?,
        attachments: r.get(16)?,
        attachments_done: r.get(17)?,
    })
}

pub(super) fn insert(
    tx: &Transaction<'_>,
    dir: Direction,
    m: &Message,
    state: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let peer = match dir {
        Direction::Out => m.to.as_str(),
        Direction::In => m.from.as_str(),
    };
    tx.execute(
        "INSERT INTO messages (id, direction, peer, serial, precedence, exercise, template_id, template_version, \
         released_at, stored_at, operator, state, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            m.id.to_string(),
            dir.as_str(),
            peer,
            m.serial as i64,
            m.precedence.rank(),
            m.exercise,
            m.template.id,
            m.template.version,
            stamp(m.released_at),
            stamp(Timestamp::now()),
            m.operator.as_str(),
            state,
            sealed,
        ],
    )?;
    Ok(())
}

impl Journal {
    /// Releases a message to `peer`: allocates the next serial, lets `seal`
    /// build and seal the message with it, and stores the sealed message in
    /// the outbox with an audit entry, all in one transaction. When the
    /// returned write completes, the message is durably released.
    pub fn release<F>(&self, peer: StationName, seal: F) -> Pending<(Released, Message)>
    where
        F: FnOnce(u64) -> Result<(Message, Vec<u8>), String> + Send + 'static,
    {
        self.release_with(peer, Vec::new(), seal)
    }

    /// [`Journal::release`] for a message with attachments already sealed
    /// to their files: their rows are written in the same transaction.
    pub fn release_with<F>(
        &self,
        peer: StationName,
        staged: Vec<super::StagedAttachment>,
        seal: F,
    ) -> Pending<(Released, Message)>
    where
        F: FnOnce(u64) -> Result<(Message, Vec<u8>), String> + Send + 'static,
    {
        self.write(move |tx| {
            let last: Option<i64> = tx
                .query_row(
                    "SELECT last_released FROM serials WHERE peer = ?1",
                    [peer.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let serial = last.unwrap_or(0) as u64 + 1;
            let (message, sealed) = seal(serial).map_err(StoreError::Rejected)?;
            if message.serial != serial || message.to != peer {
                return Err(StoreError::Rejected(
                    "the sealed message does not carry its allocated serial and peer".into(),
                ));
            }
            tx.execute(
                "INSERT INTO serials (peer, last_released) VALUES (?1, ?2) \
                 ON CONFLICT (peer) DO UPDATE SET last_released = excluded.last_released",
                params![peer.as_str(), serial as i64],
            )?;
            insert(tx, Direction::Out, &message, "queued", &sealed)?;
            super::attachments::insert_all(tx, Direction::Out, &message, &staged)?;
            audit::append(
                tx,
                message.operator.as_str(),
                "release",
                &format!(
                    "id={} to={} serial={} precedence={} template={}@{} exercise={}",
                    message.id,
                    peer,
                    serial,
                    message.precedence,
                    message.template.id,
                    message.template.version,
                    message.exercise
                ),
            )?;
            Ok((
                Released {
                    id: message.id,
                    serial,
                    sealed,
                },
                message,
            ))
        })
    }

    /// Appends an audit entry on its own (log-ins, refusals, config changes).
    pub fn audit(&self, actor: &str, action: &str, detail: &str) -> Pending<audit::Head> {
        let (actor, action, detail) = (actor.to_string(), action.to_string(), detail.to_string());
        self.write(move |tx| audit::append(tx, &actor, &action, &detail))
    }

    /// Every message in one direction, oldest first.
    pub fn list(&self, dir: Direction) -> Result<Vec<MessageRow>, StoreError> {
        self.read(|c| {
            // Inbound in queue order (unacknowledged, precedence, receipt), so
            // the console's sort finds one sorted run.
            let order = match dir {
                Direction::In => "state <> 'received', precedence, stored_at",
                Direction::Out => "stored_at, serial",
            };
            let mut stmt = c.prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 ORDER BY {order}"
            ))?;
            let rows = stmt
                .query_map([dir.as_str()], row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// The messages of one direction in one state (served by the queue
    /// index, so the timers never read the whole journal).
    pub fn in_state(&self, dir: Direction, state: &str) -> Result<Vec<MessageRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 AND state = ?2 ORDER BY precedence, stored_at"
            ))?;
            let rows = stmt.query_map(rusqlite::params![dir.as_str(), state], row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// One message's row, by full id or a unique prefix of at least 8 characters.
    pub fn find(&self, id_or_prefix: &str) -> Result<MessageRow, StoreError> {
        let wanted = id_or_prefix.trim().to_ascii_lowercase();
        if wanted.len() < 8 {
            return Err(StoreError::Rejected(
                "give at least the first 8 characters of the message id".into(),
            ));
        }
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE id LIKE ?1 || '%' LIMIT 2"
            ))?;
            let mut rows = stmt
                .query_map([&wanted], row)?
                .collect::<Result<Vec<_>, _>>()?;
            match rows.len() {
                0 => Err(StoreError::NotFound(wanted.clone())),
                1 => Ok(rows.remove(0)),
                _ => Err(StoreError::Rejected(format!(
                    "`{wanted}` matches more than one message; give more of the id"
                ))),
            }
        })
    }

    /// The sealed (age) form of a message, exactly as stored.
    pub fn sealed(&self, id: &MessageId) -> Result<Vec<u8>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT sealed FROM messages WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
        })
    }

    /// The hash of audit entry `seq`, if the log has it.
    pub fn audit_hash_at(&self, seq: u64) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT hash FROM audit WHERE seq = ?1", [seq as i64], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
    }

    /// The audit log's current head.
    pub fn audit_head(&self) -> Result<Option<audit::Head>, StoreError> {
        self.read(audit::head)
    }

    /// Verifies the audit chain and its newest checkpoint.
    pub fn verify_audit(
        &self,
        station_key: &ed25519_dalek::VerifyingKey,
    ) -> Result<Result<audit::Verified, audit::AuditFault>, StoreError> {
        self.read(|c| audit::verify(c, station_key))
    }
}
