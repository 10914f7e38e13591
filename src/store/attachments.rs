//! Attachments in the journal: one row per attachment and direction, with
//! its signed name, size and SHA-256, where its sealed file lives (relative
//! to the data directory), and how far it has come: pending, receipted (the
//! peer stored and verified it) or refused. The content itself never enters
//! the journal.

use std::collections::HashMap;
use std::path::PathBuf;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::Cached as _;
use super::{Direction, Journal, MessageState, Pending, StoreError, audit};
use crate::domain::{Message, MessageId, stamp};

/// Where an attachment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentState {
    Pending,
    Receipted,
    Refused,
}

impl AttachmentState {
    fn as_str(self) -> &'static str {
        match self {
            AttachmentState::Pending => "pending",
            AttachmentState::Receipted => "receipted",
            AttachmentState::Refused => "refused",
        }
    }
}

/// One attachment as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttachmentRow {
    pub message_id: MessageId,
    pub direction: Direction,
    pub index: u32,
    pub peer: String,
    /// As the sender named it: untrusted text, sanitise before showing.
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// The sealed file, relative to the data directory.
    pub sealed_path: PathBuf,
    pub sealed_len: Option<u64>,
    pub state: AttachmentState,
    pub detail: Option<String>,
}

/// An outbound attachment already sealed to its file, not yet in the journal.
#[derive(Clone, Debug)]
pub struct StagedAttachment {
    pub sealed_path: PathBuf,
    pub sealed_len: u64,
}

/// The sealed file of inbound attachment `index` of `id`, relative to the
/// data directory.
pub fn inbound_path(id: &MessageId, index: u32) -> PathBuf {
    PathBuf::from("attachments")
        .join("in")
        .join(id.to_string())
        .join(format!("{index}.age"))
}

const COLUMNS: &str =
    "message_id, direction, idx, peer, name, size, sha256, sealed_path, sealed_len, state, detail";

fn row(r: &Row<'_>) -> rusqlite::Result<AttachmentRow> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::InvalidColumnType(i, what.to_string(), rusqlite::types::Type::Text)
    };
    let id: String = r.get(0)?;
    let direction: String = r.get(1)?;
    let state: String = r.get(9)?;
    Ok(AttachmentRow {
        message_id: id.parse().map_err(|_| bad(0, "message_id"))?,
        direction: if direction == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        index: r.get(2)?,
        peer: r.get(3)?,
        name: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        sha256: r.get(6)?,
        sealed_path: PathBuf::from(r.get::<_, String>(7)?),
        sealed_len: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
        state: match state.as_str() {
            "pending" => AttachmentState::Pending,
            "receipted" => AttachmentState::Receipted,
            "refused" => AttachmentState::Refused,
            _ => return Err(bad(9, "state")),
        },
        detail: r.get(10)?,
    })
}

fn dir_str(d: Direction) -> &'static str {
    match d {
        Direction::Out => "out",
        Direction::In => "in",
    }
}

/// Records `message`'s attachments in the same transaction as the message.
/// Outbound ones come with their sealed files; inbound ones get the path
/// their content will be written to.
pub(super) fn insert_all(
    tx: &Transaction<'_>,
    direction: Direction,
    message: &Message,
    staged: &[StagedAttachment],
) -> Result<(), StoreError> {
    let peer = match direction {
        Direction::Out => message.to.as_str(),
        Direction::In => message.from.as_str(),
    };
    for (i, a) in message.attachments.iter().enumerate() {
        let index = u32::try_from(i)
            .map_err(|_| StoreError::Rejected("too many attachments on one message".into()))?;
        let (path, len) = match (direction, staged.get(i)) {
            (Direction::Out, Some(s)) => (s.sealed_path.clone(), Some(s.sealed_len as i64)),
            (Direction::Out, None) => {
                return Err(StoreError::Rejected(format!(
                    "attachment {index} of message {} has no sealed file",
                    message.id
                )));
            }
            (Direction::In, _) => (inbound_path(&message.id, index), None),
        };
        tx.execute_cached(
            &format!(
                "INSERT INTO attachments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', NULL)"
            ),
            params![
                message.id.to_string(),
                dir_str(direction),
                index,
                peer,
                a.name,
                a.size as i64,
                a.sha256,
                path.to_string_lossy(),
                len,
            ],
        )?;
    }
    Ok(())
}

impl Journal {
    /// The attachments of one message in one direction, in order.
    pub fn attachments(
        &self,
        id: &MessageId,
        direction: Direction,
    ) -> Result<Vec<AttachmentRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM attachments WHERE message_id = ?1 AND direction = ?2 ORDER BY idx"
            ))?;
            let rows = stmt
                .query_map(params![id.to_string(), dir_str(direction)], row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// One attachment, if the journal has it.
    pub fn attachment(
        &self,
        id: &MessageId,
        direction: Direction,
        index: u32,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        self.read(|c| {
            Ok(c.query_row_cached(
                &format!(
                    "SELECT {COLUMNS} FROM attachments WHERE message_id = ?1 AND direction = ?2 AND idx = ?3"
                ),
                params![id.to_string(), dir_str(direction), index],
                row,
            )
            .optional()?)
        })
    }

    /// Outbound attachments to `peer` still pending whose message the peer
    /// has receipted: what the upload queue must send.
    /// Every attachment's sealed file, relative to the data directory (a
    /// file may not be there yet: an inbound one still arriving).
    pub fn attachment_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT sealed_path FROM attachments ORDER BY rowid")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(PathBuf::from)
                .collect())
        })
    }

    pub fn uploads_due(&self, peer: &str) -> Result<Vec<AttachmentRow>, StoreError> {
        self.read(|c| {
            let cols = COLUMNS
                .split(", ")
                .map(|col| format!("a.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare(&format!(
                "SELECT {cols} FROM attachments a JOIN messages m ON m.id = a.message_id AND m.direction = 'out' \
                 WHERE a.direction = 'out' AND a.state = 'pending' AND a.peer = ?1 \
                 AND m.state IN (?2, ?3) \
                 ORDER BY m.precedence, m.stored_at, a.idx"
            ))?;
            // Only once the peer holds the message (receipted, perhaps
            // acknowledged already) can it take the message's attachments.
            let receipted = [MessageState::Receipted, MessageState::Acknowledged];
            let rows = stmt
                .query_map(
                    params![peer, receipted[0].as_sql(), receipted[1].as_sql()],
                    row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// How many of each message's attachments are settled, and how many it
    /// has: `(receipted, refused, total)` by message id, for one direction.
    pub fn attachment_counts(
        &self,
        direction: Direction,
    ) -> Result<HashMap<MessageId, (u32, u32, u32)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT message_id, SUM(state = 'receipted'), SUM(state = 'refused'), COUNT(*) \
                 FROM attachments WHERE direction = ?1 GROUP BY message_id",
            )?;
            let mut out = HashMap::new();
            let rows = stmt.query_map([dir_str(direction)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })?;
            for r in rows {
                let (id, done, refused, total) = r?;
                if let Ok(id) = id.parse() {
                    out.insert(id, (done, refused, total));
                }
            }
            Ok(out)
        })
    }

    /// Settles an attachment: receipted (with the signed receipt) or
    /// refused (with the reason). Returns whether this was news.
    pub fn settle_attachment(
        &self,
        id: MessageId,
        direction: Direction,
        index: u32,
        state: AttachmentState,
        detail: Option<String>,
        doc: Option<Vec<u8>>,
    ) -> Pending<bool> {
        self.write(move |tx| {
            let changed = tx.execute_cached(
                "UPDATE attachments SET state = ?4, detail = ?5, receipt = ?6, done_at = ?7 \
                 WHERE message_id = ?1 AND direction = ?2 AND idx = ?3 AND state = 'pending'",
                params![
                    id.to_string(),
                    dir_str(direction),
                    index,
                    state.as_str(),
                    detail,
                    doc,
                    stamp(Timestamp::now())
                ],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            audit::append(
                tx,
                "station",
                &format!("attachment-{}", state.as_str()),
                &format!(
                    "id={id} direction={} index={index}{}",
                    dir_str(direction),
                    detail.map(|d| format!(" reason={d}")).unwrap_or_default()
                ),
            )?;
            Ok(true)
        })
    }

    /// The signed receipt kept for a receipted inbound attachment.
    pub fn attachment_receipt(
        &self,
        id: &MessageId,
        index: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| {
            Ok(c.query_row_cached(
                "SELECT receipt FROM attachments WHERE message_id = ?1 AND direction = 'in' AND idx = ?2",
                params![id.to_string(), index],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
        })
    }
}
