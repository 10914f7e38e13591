//! Key rotations in the journal: which peers hold our rotation notice and
//! which confirmed it (ours), and the notices our peers sent (theirs),
//! pending until an operator here confirms the new fingerprint.

use jiff::Timestamp;
use rusqlite::{OptionalExtension as _, params};

use super::{Journal, Pending, StoreError, audit};
use crate::domain::{MessageId, stamp};

/// Where a peer stands with our newest rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// It was a peer when the keys were rotated (so it pins the old ones),
    /// and has not answered the notice yet.
    Pending,
    /// It holds the notice, and has not confirmed the new fingerprint.
    Held,
    /// An operator there confirmed the new fingerprint.
    Confirmed,
}

impl Answered {
    fn as_sql(self) -> &'static str {
        match self {
            Answered::Pending => "pending",
            Answered::Held => "held",
            Answered::Confirmed => "confirmed",
        }
    }
}

/// Where a peer's rotation stands here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    /// Held until an operator confirms the new fingerprint out of band.
    Pending,
    /// Confirmed: the new key is pinned, and the old one still accepted
    /// until the peer is seen using the new one.
    Confirmed,
    /// The peer uses its new key; the old one is no longer accepted.
    Complete,
}

impl Standing {
    fn as_sql(self) -> &'static str {
        match self {
            Standing::Pending => "pending",
            Standing::Confirmed => "confirmed",
            Standing::Complete => "complete",
        }
    }

    fn from_sql(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Standing::Pending),
            "confirmed" => Ok(Standing::Confirmed),
            "complete" => Ok(Standing::Complete),
            other => Err(StoreError::Corrupt(format!(
                "rotations_in: `{}` is not a rotation state",
                other.escape_debug()
            ))),
        }
    }
}

/// A rotation notice a peer sent, as held here.
#[derive(Clone, Debug)]
pub struct PeerRotation {
    pub peer: String,
    /// The fingerprint of the new card.
    pub fingerprint: String,
    /// The key that signed the notice (`ed25519:…`): the one pinned then.
    pub old_key: String,
    /// The new card, as TOML.
    pub card: String,
    pub notice: Vec<u8>,
    /// When this station received it (its own clock).
    pub received_at: Timestamp,
    /// From when the old key is compromised, if the peer says it is.
    pub compromised_since: Option<Timestamp>,
    pub standing: Standing,
}

impl Journal {
    /// Records a peer's answer to our rotation notice. A confirmation is
    /// never undone by a later "held".
    pub fn record_rotation_answer(
        &self,
        peer: String,
        fingerprint: String,
        answered: Answered,
        answer: Vec<u8>,
    ) -> Pending<bool> {
        self.write(move |tx| {
            let before: Option<String> = tx
                .query_row(
                    "SELECT state FROM rotations_out WHERE peer = ?1 AND fingerprint = ?2",
                    params![peer, fingerprint],
                    |r| r.get(0),
                )
                .optional()?;
            // Only forward: pending, held, confirmed.
            let news = !matches!(
                (before.as_deref(), answered),
                (Some("confirmed"), _)
                    | (Some("held"), Answered::Held | Answered::Pending)
                    | (Some("pending"), Answered::Pending)
            );
            if news {
                tx.execute(
                    "INSERT INTO rotations_out (peer, fingerprint, state, at, answer) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (peer, fingerprint) DO UPDATE SET state = excluded.state, at = excluded.at, answer = excluded.answer",
                    params![peer, fingerprint, answered.as_sql(), stamp(Timestamp::now()), answer],
                )?;
                audit::append(
                    tx,
                    "station",
                    "key-rotation-answered",
                    &format!("peer={peer} fingerprint={fingerprint} state={}", answered.as_sql()),
                )?;
            }
            Ok(news)
        })
    }

    /// How `peer` answered our rotation to `fingerprint`, if it has.
    pub fn rotation_answer(
        &self,
        peer: &str,
        fingerprint: &str,
    ) -> Result<Option<Answered>, StoreError> {
        self.read(|c| {
            let state: Option<String> = c
                .query_row(
                    "SELECT state FROM rotations_out WHERE peer = ?1 AND fingerprint = ?2",
                    params![peer, fingerprint],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(match state.as_deref() {
                Some("confirmed") => Some(Answered::Confirmed),
                Some("held") => Some(Answered::Held),
                Some(_) => Some(Answered::Pending),
                None => None,
            })
        })
    }

    /// How every peer answered our rotation to `fingerprint`.
    pub fn rotation_answers(
        &self,
        fingerprint: &str,
    ) -> Result<std::collections::HashMap<crate::domain::StationName, Answered>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT peer, state FROM rotations_out WHERE fingerprint = ?1")?;
            let rows = stmt.query_map([fingerprint], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = std::collections::HashMap::new();
            for row in rows {
                let (peer, state) = row?;
                let peer = crate::domain::StationName::new(&peer).map_err(|_| {
                    StoreError::Corrupt(format!(
                        "rotations_out: `{}` is not a station name",
                        peer.escape_debug()
                    ))
                })?;
                let answered = match state.as_str() {
                    "confirmed" => Answered::Confirmed,
                    "held" => Answered::Held,
                    _ => Answered::Pending,
                };
                out.insert(peer, answered);
            }
            Ok(out)
        })
    }

    /// Whether the rotation to the signing key `new_key` (`ed25519:…`) is
    /// recorded.
    pub fn rekey_recorded(&self, new_key: &str) -> Result<bool, StoreError> {
        self.read(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM audit WHERE action = ?1 AND instr(detail, ?2) > 0",
                params![audit::REKEY, format!("new_key={new_key}")],
                |r| r.get(0),
            )?;
            Ok(n > 0)
        })
    }

    /// Records a rotation of this station's keys, in one transaction: the
    /// audit entry (`detail` names the old and the new key; see
    /// [`audit::REKEY`]), and that `peers` pinned the old keys, so each is
    /// sent the notice until it confirms `fingerprint`.
    pub fn record_rekey(
        &self,
        detail: String,
        peers: Vec<String>,
        fingerprint: String,
    ) -> Pending<()> {
        self.write(move |tx| {
            audit::append(tx, "station", audit::REKEY, &detail)?;
            for peer in &peers {
                tx.execute(
                    "INSERT OR IGNORE INTO rotations_out (peer, fingerprint, state, at, answer)                      VALUES (?1, ?2, 'pending', ?3, x'')",
                    params![peer, fingerprint, stamp(Timestamp::now())],
                )?;
            }
            Ok(())
        })
    }

    /// Holds a peer's rotation notice, pending confirmation; audited.
    /// Returns false if it was held already.
    pub fn hold_rotation(&self, rotation: PeerRotation) -> Pending<bool> {
        self.write(move |tx| {
            let added = tx.execute(
                "INSERT OR IGNORE INTO rotations_in (peer, fingerprint, old_key, card, notice, received_at, compromised_since, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rotation.peer,
                    rotation.fingerprint,
                    rotation.old_key,
                    rotation.card,
                    rotation.notice,
                    stamp(rotation.received_at),
                    rotation.compromised_since.map(stamp),
                    Standing::Pending.as_sql()
                ],
            )? == 1;
            if added {
                audit::append(
                    tx,
                    "station",
                    "key-rotation-held",
                    &format!(
                        "peer={} fingerprint={} old_key={}{}",
                        rotation.peer,
                        rotation.fingerprint,
                        rotation.old_key,
                        rotation
                            .compromised_since
                            .map(|t| format!(" compromised_since={}", stamp(t)))
                            .unwrap_or_default()
                    ),
                )?;
            }
            Ok(added)
        })
    }

    /// Moves a held rotation on (confirmed by `operator`, or complete);
    /// audited.
    pub fn advance_rotation(
        &self,
        peer: String,
        fingerprint: String,
        to: Standing,
        operator: String,
    ) -> Pending<()> {
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE rotations_in SET state = ?3, \
                 confirmed_by = COALESCE(confirmed_by, ?4), confirmed_at = COALESCE(confirmed_at, ?5) \
                 WHERE peer = ?1 AND fingerprint = ?2",
                params![
                    peer,
                    fingerprint,
                    to.as_sql(),
                    operator,
                    stamp(Timestamp::now())
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!(
                    "rotation of {peer} to {fingerprint}"
                )));
            }
            audit::append(
                tx,
                &operator,
                match to {
                    Standing::Confirmed => "key-rotation-confirmed",
                    Standing::Complete => "key-rotation-complete",
                    Standing::Pending => "key-rotation-pending",
                },
                &format!("peer={peer} fingerprint={fingerprint}"),
            )?;
            Ok(())
        })
    }

    /// Every rotation notice `peer` sent, oldest first.
    pub fn peer_rotations(&self, peer: &str) -> Result<Vec<PeerRotation>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT peer, fingerprint, old_key, card, notice, received_at, compromised_since, state \
                 FROM rotations_in WHERE peer = ?1 ORDER BY received_at, rowid",
            )?;
            let rows = stmt.query_map([peer], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })?;
            let time = |t: &str| {
                t.parse::<Timestamp>().map_err(|e| {
                    StoreError::Corrupt(format!("rotations_in: `{}`: {e}", t.escape_debug()))
                })
            };
            let mut out = Vec::new();
            for row in rows {
                let (peer, fingerprint, old_key, card, notice, received, since, state) = row?;
                out.push(PeerRotation {
                    peer,
                    fingerprint,
                    old_key,
                    card,
                    notice,
                    received_at: time(&received)?,
                    compromised_since: since.as_deref().map(time).transpose()?,
                    standing: Standing::from_sql(&state)?,
                });
            }
            Ok(out)
        })
    }

    /// The inbound messages from `peer` this station stored after `since`
    /// (by its own clock), with their sealed bytes.
    pub fn inbound_stored_after(
        &self,
        peer: &str,
        since: Timestamp,
    ) -> Result<Vec<(MessageId, Vec<u8>)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, sealed FROM messages WHERE direction = 'in' AND peer = ?1 AND stored_at > ?2",
            )?;
            let rows = stmt.query_map(params![peer, stamp(since)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, sealed) = row?;
                let id = id.parse().map_err(|e| {
                    StoreError::Corrupt(format!("message `{}`: {e}", id.escape_debug()))
                })?;
                out.push((id, sealed));
            }
            Ok(out)
        })
    }

    /// Marks messages suspect, saying why; audited.
    pub fn mark_suspect(&self, ids: Vec<MessageId>, why: String) -> Pending<usize> {
        self.write(move |tx| {
            let mut marked = 0;
            for id in &ids {
                marked += tx.execute(
                    "UPDATE messages SET suspect = ?2 WHERE id = ?1 AND suspect IS NULL",
                    params![id.to_string(), why],
                )?;
                audit::append(tx, "station", "suspect", &format!("id={id} why={why}"))?;
            }
            Ok(marked)
        })
    }
}
