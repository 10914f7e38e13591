//! Messages in the journal: releasing into the outbox (serial allocation,
//! sealing and storing in one transaction), storing what arrives, and the
//! queries the queues need. Content is stored only as age ciphertext.

use jiff::Timestamp;

use crate::domain::stamp;
use rusqlite::{OptionalExtension, Row, Statement, Transaction, params};

use super::Cached as _;
use super::{Journal, MessageState, Pending, StoreError, audit};
use crate::domain::{Message, MessageId, OperatorName, Precedence, StationName};
use crate::templates::Amends;

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
    /// The other station: the recipient of an outbound message, the sender
    /// of an inbound one (both signed in the message, so validated).
    pub peer: StationName,
    pub serial: u64,
    pub precedence: Precedence,
    pub exercise: bool,
    #[serde(rename = "template")]
    pub template_id: String,
    pub template_version: u32,
    pub released_at: Timestamp,
    pub stored_at: Timestamp,
    /// Who released it (signed in the message).
    pub operator: OperatorName,
    /// Who confirmed a FLASH release under the two-person rule (signed in
    /// the message too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_operator: Option<OperatorName>,
    pub state: MessageState,
    pub receipt_at: Option<Timestamp>,
    /// Who acknowledged it. For an outbound message this is the name in the
    /// peer's signed acknowledgement, which the wire does not validate as an
    /// operator name: untrusted text, so it stays a string (sanitise before
    /// showing).
    pub ack_by: Option<String>,
    pub ack_at: Option<Timestamp>,
    pub refusal: Option<String>,
    /// How many attachments the message has, and how many are stored and
    /// verified at the receiver.
    #[serde(default)]
    pub attachments: u32,
    #[serde(default)]
    pub attachments_done: u32,
    /// How many of them the receiver refused.
    #[serde(default)]
    pub attachments_refused: u32,
    /// What names the message (its template's summary field), opened in
    /// memory by a running station; never stored in clear, so `None` in a
    /// listing read from the journal without one. The sender's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Why the message is suspect, when it is: it was stored after the
    /// moment from which its sender's key is known to be compromised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<String>,
    /// The security marking the message carries, as signed (untrusted
    /// text from a peer: sanitise before showing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The newest message that corrects or withdraws this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended: Option<Amended>,
}

/// What became of a message that a later one amends.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Amended {
    pub kind: Amends,
    /// The amending message, and its serial (its handle's number).
    pub by: MessageId,
    pub serial: u64,
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
     released_at, stored_at, operator, state, receipt_at, ack_by, ack_at, refusal, second_operator, \
     (SELECT COUNT(*) FROM attachments a WHERE a.message_id = messages.id AND a.direction = messages.direction), \
     (SELECT COUNT(*) FROM attachments a WHERE a.message_id = messages.id AND a.direction = messages.direction \
      AND a.state = 'receipted'), \
     (SELECT COUNT(*) FROM attachments a WHERE a.message_id = messages.id AND a.direction = messages.direction \
      AND a.state = 'refused'), suspect, label, amended_by, amended_by_serial, amended_kind";

/// Reads one row, parsing every typed column at this boundary: damage is a
/// [`StoreError::Corrupt`] naming the message, the column and the value.
pub(super) fn row(r: &Row<'_>) -> Result<MessageRow, StoreError> {
    let id: String = r.get(0)?;
    // The value is escaped: damaged text must not reach a terminal raw.
    let corrupt = |column: &str, value: &dyn std::fmt::Display, why: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!(
            "message {}: column `{column}` holds `{}`: {why}",
            id.escape_debug(),
            value.to_string().escape_debug()
        ))
    };
    let time = |i: usize, column: &str| -> Result<Option<Timestamp>, StoreError> {
        match r.get::<_, Option<String>>(i)? {
            None => Ok(None),
            Some(v) => v
                .parse::<Timestamp>()
                .map(Some)
                .map_err(|e| corrupt(column, &v, &e)),
        }
    };
    let required = |i: usize, column: &str| -> Result<Timestamp, StoreError> {
        time(i, column)?.ok_or_else(|| corrupt(column, &"NULL", &"a time is required"))
    };
    let operator = |i: usize, column: &str| -> Result<Option<OperatorName>, StoreError> {
        match r.get::<_, Option<String>>(i)? {
            None => Ok(None),
            Some(v) => OperatorName::new(&v)
                .map(Some)
                .map_err(|e| corrupt(column, &v, &e)),
        }
    };
    let direction: String = r.get(1)?;
    let peer: String = r.get(2)?;
    let precedence: u8 = r.get(4)?;
    let state: String = r.get(11)?;
    Ok(MessageRow {
        id: id.parse().map_err(|e| corrupt("id", &id, &e))?,
        direction: match direction.as_str() {
            "out" => Direction::Out,
            "in" => Direction::In,
            other => return Err(corrupt("direction", &other, &"not `out` or `in`")),
        },
        peer: StationName::new(&peer).map_err(|e| corrupt("peer", &peer, &e))?,
        serial: r.get::<_, i64>(3)? as u64,
        precedence: Precedence::from_rank(precedence)
            .ok_or_else(|| corrupt("precedence", &precedence, &"not a precedence rank"))?,
        exercise: r.get(5)?,
        template_id: r.get(6)?,
        template_version: r.get(7)?,
        released_at: required(8, "released_at")?,
        stored_at: required(9, "stored_at")?,
        operator: operator(10, "operator")?
            .ok_or_else(|| corrupt("operator", &"NULL", &"an operator is required"))?,
        second_operator: operator(16, "second_operator")?,
        state: MessageState::from_sql(&state)
            .map_err(|_| corrupt("state", &state, &"not a message state"))?,
        receipt_at: time(12, "receipt_at")?,
        ack_by: r.get(13)?,
        ack_at: time(14, "ack_at")?,
        refusal: r.get(15)?,
        attachments: r.get(17)?,
        attachments_done: r.get(18)?,
        attachments_refused: r.get(19)?,
        subject: None,
        suspect: r.get(20)?,
        label: r.get(21)?,
        amended: match (
            r.get::<_, Option<String>>(22)?,
            r.get::<_, Option<i64>>(23)?,
            r.get::<_, Option<String>>(24)?,
        ) {
            (Some(by), Some(serial), Some(kind)) => Some(Amended {
                kind: Amends::parse(&kind)
                    .ok_or_else(|| corrupt("amended_kind", &kind, &"not an amendment"))?,
                by: by.parse().map_err(|e| corrupt("amended_by", &by, &e))?,
                serial: serial as u64,
            }),
            _ => None,
        },
    })
}

/// Runs a `SELECT {ROW_COLUMNS} …` and parses every row.
pub(super) fn rows(
    stmt: &mut Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<MessageRow>, StoreError> {
    let mut found = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = found.next()? {
        out.push(row(r)?);
    }
    Ok(out)
}

pub(super) fn insert(
    tx: &Transaction<'_>,
    dir: Direction,
    m: &Message,
    state: MessageState,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let peer = match dir {
        Direction::Out => m.to.as_str(),
        Direction::In => m.from.as_str(),
    };
    tx.execute_cached(
        "INSERT INTO messages (id, direction, peer, serial, precedence, exercise, template_id, template_version, \
         released_at, stored_at, operator, second_operator, state, sealed, label) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
            m.second_operator.as_ref().map(OperatorName::as_str),
            state.as_sql(),
            sealed,
            m.label,
        ],
    )?;
    amend(tx, dir, peer, m)
}

/// Records what `m` amends, and what amends `m` if that came first (the
/// link does not keep order): only within one direction and one peer, so
/// a peer's message never marks one of ours.
fn amend(tx: &Transaction<'_>, dir: Direction, peer: &str, m: &Message) -> Result<(), StoreError> {
    let kind = crate::templates::Catalog::builtin()
        .get(&m.template.id, m.template.version)
        .and_then(|t| t.amends);
    if let (Some(kind), [target]) = (kind, m.references.as_slice()) {
        tx.execute_cached(
            "UPDATE messages SET amends = ?2, amends_kind = ?3 WHERE id = ?1",
            params![m.id.to_string(), target.to_string(), kind.as_str()],
        )?;
        tx.execute_cached(
            "UPDATE messages SET amended_by = ?1, amended_by_serial = ?2, amended_kind = ?3 \
             WHERE id = ?4 AND direction = ?5 AND peer = ?6 AND COALESCE(amended_by_serial, -1) < ?2",
            params![
                m.id.to_string(),
                m.serial as i64,
                kind.as_str(),
                target.to_string(),
                dir.as_str(),
                peer
            ],
        )?;
    }
    // Through the partial index: left to itself the planner walks the
    // (direction, peer, serial) key backwards for the ORDER BY, reading
    // every message to the peer on every insert.
    let earlier: Option<(String, i64, String)> = tx
        .query_row_cached(
            "SELECT id, serial, amends_kind FROM messages INDEXED BY messages_amends \
             WHERE amends = ?1 AND direction = ?2 AND peer = ?3 ORDER BY serial DESC LIMIT 1",
            params![m.id.to_string(), dir.as_str(), peer],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((by, serial, kind)) = earlier {
        tx.execute_cached(
            "UPDATE messages SET amended_by = ?1, amended_by_serial = ?2, amended_kind = ?3 WHERE id = ?4",
            params![by, serial, kind, m.id.to_string()],
        )?;
    }
    Ok(())
}

impl Journal {
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
                Direction::In => "state <> ?2, precedence, stored_at",
                Direction::Out => "stored_at, serial",
            };
            let mut stmt = c.prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 ORDER BY {order}"
            ))?;
            match dir {
                Direction::In => rows(
                    &mut stmt,
                    params![dir.as_str(), MessageState::Received.as_sql()],
                ),
                Direction::Out => rows(&mut stmt, [dir.as_str()]),
            }
        })
    }

    /// The newest `limit` messages of one direction, newest first, served
    /// by the `messages_newest` index: a page costs the same however many
    /// rows the journal holds. `before` continues below that message (the
    /// last row of the previous page).
    pub fn page(
        &self,
        dir: Direction,
        limit: usize,
        before: Option<&MessageId>,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| match before {
            None => {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 \
                     ORDER BY stored_at DESC, id DESC LIMIT ?2"
                ))?;
                rows(&mut stmt, params![dir.as_str(), limit])
            }
            Some(id) => {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 \
                     AND (stored_at, id) < (SELECT stored_at, id FROM messages WHERE id = ?2) \
                     ORDER BY stored_at DESC, id DESC LIMIT ?3"
                ))?;
                rows(&mut stmt, params![dir.as_str(), id.to_string(), limit])
            }
        })
    }

    /// The messages of one direction, state and precedence stored at or
    /// before `cutoff`, oldest first: what the timers ask each second. A
    /// range of the queue index, so its cost follows the rows that match,
    /// not the length of the queue.
    pub fn waiting_since(
        &self,
        dir: Direction,
        state: MessageState,
        precedence: Precedence,
        cutoff: Timestamp,
    ) -> Result<Vec<MessageRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 AND state = ?2 \
                 AND precedence = ?3 AND stored_at <= ?4 ORDER BY stored_at"
            ))?;
            rows(
                &mut stmt,
                params![
                    dir.as_str(),
                    state.as_sql(),
                    precedence.rank(),
                    stamp(cutoff)
                ],
            )
        })
    }

    /// How many messages of one direction are in one state, by precedence
    /// (FLASH first), counted on the queue index without reading a row.
    pub fn count_in_state(
        &self,
        dir: Direction,
        state: MessageState,
    ) -> Result<[usize; 4], StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT precedence, count(*) FROM messages WHERE direction = ?1 AND state = ?2 \
                 GROUP BY precedence",
            )?;
            let mut counts = [0; 4];
            let mut found = stmt.query(params![dir.as_str(), state.as_sql()])?;
            while let Some(row) = found.next()? {
                let (rank, n): (i64, i64) = (row.get(0)?, row.get(1)?);
                if let Some(slot) = usize::try_from(rank).ok().and_then(|r| counts.get_mut(r)) {
                    *slot = usize::try_from(n).unwrap_or(0);
                }
            }
            Ok(counts)
        })
    }

    /// One message's row by its handle: the peer and its serial in that
    /// direction (`MOSCOW/6` in, `to:MOSCOW/6` out). More than one row with
    /// the handle is an error naming their ids.
    pub fn find_handle(
        &self,
        dir: Direction,
        peer: &str,
        serial: u64,
    ) -> Result<MessageRow, StoreError> {
        let handle = match dir {
            Direction::In => format!("{peer}/{serial}"),
            Direction::Out => format!("to:{peer}/{serial}"),
        };
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE direction = ?1 AND peer = ?2 AND serial = ?3 LIMIT 4"
            ))?;
            let mut found = rows(&mut stmt, params![dir.as_str(), peer, serial as i64])?;
            match found.len() {
                0 => Err(StoreError::Rejected(format!("no message {handle} in the journal"))),
                1 => Ok(found.remove(0)),
                _ => Err(StoreError::Rejected(format!(
                    "{handle} names more than one message ({}); give the id instead",
                    found.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(", ")
                ))),
            }
        })
    }

    /// One message's row, by its id.
    pub fn row(&self, id: &MessageId) -> Result<MessageRow, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM messages WHERE id = ?1"))?;
            rows(&mut stmt, [id.to_string()])?
                .pop()
                .ok_or_else(|| StoreError::NotFound(id.to_string()))
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
            // A range on the primary key, not LIKE (which cannot use it and
            // would read every row): ids are lowercase hex and `-`, all
            // below `~`.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE id >= ?1 AND id < ?1 || '~' LIMIT 2"
            ))?;
            let mut found = rows(&mut stmt, [&wanted])?;
            match found.len() {
                0 => Err(StoreError::NotFound(wanted.clone())),
                1 => Ok(found.remove(0)),
                _ => Err(StoreError::Rejected(format!(
                    "`{wanted}` matches more than one message; give more of the id"
                ))),
            }
        })
    }

    /// The sealed (age) form of a message, exactly as stored.
    pub fn sealed(&self, id: &MessageId) -> Result<Vec<u8>, StoreError> {
        self.read(|c| {
            c.query_row_cached(
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
                c.query_row_cached("SELECT hash FROM audit WHERE seq = ?1", [seq as i64], |r| {
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

    /// How many messages (both directions) the journal holds.
    pub fn message_count(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            Ok(
                c.query_row_cached("SELECT COUNT(*) FROM messages", [], |r| r.get::<_, i64>(0))?
                    .max(0) as u64,
            )
        })
    }

    /// The audit entries of `action` after entry `after`, oldest first, as
    /// their sequence numbers and details.
    pub fn audit_entries(
        &self,
        action: &str,
        after: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, detail FROM audit WHERE action = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![action, after as i64], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, String>(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Checks the file's structure (SQLite's `integrity_check`).
    pub fn integrity(&self) -> Result<(), StoreError> {
        self.read(|c| {
            let verdict: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            if verdict == "ok" {
                Ok(())
            } else {
                Err(StoreError::Corrupt(format!("integrity check: {verdict}")))
            }
        })
    }

    /// Verifies the audit chain and its newest checkpoint.
    pub fn verify_audit(
        &self,
        station_key: &ed25519_dalek::VerifyingKey,
    ) -> Result<Result<audit::Verified, audit::AuditFault>, StoreError> {
        self.read(|c| audit::verify(c, station_key))
    }
}
