//! The audit log: append-only, hash-chained entries, with signed checkpoints
//! of its head. Editing an entry breaks the chain; rewriting the chain from
//! that point on breaks the checkpoint signature or its hash; cutting entries
//! covered by a checkpoint leaves the checkpoint pointing past the end.
//! Every checkpoint is verified, each names the one before it (so none can
//! be taken out of the middle), and the newest must cover the head: entries
//! appended by someone without the station's key are covered by no
//! checkpoint, and fail. (Cutting the log back to an older checkpoint,
//! checkpoints and all, is what the peers' recorded heads catch.)

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;

use crate::domain::stamp;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Cached as _;
use super::StoreError;
use super::writer::CheckpointKey;
use crate::crypto::signed::{self, Kind};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

/// The head of the chain: its last sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

pub fn entry_hash(
    seq: u64,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
    prev: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"hotline/1 audit\n");
    for part in [prev, &seq.to_string(), at, actor, action, detail] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The current head, if the log has any entry.
pub fn head(tx: &rusqlite::Connection) -> Result<Option<Head>, StoreError> {
    Ok(tx
        .query_row_cached(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                Ok(Head {
                    seq: r.get::<_, i64>(0)? as u64,
                    hash: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Appends one entry inside the caller's transaction. `detail` must never
/// carry message text: ids, peers, serials, precedences and reasons only.
pub fn append(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<Head, StoreError> {
    let (seq, prev) = match head(tx)? {
        Some(h) => (h.seq + 1, h.hash),
        None => (1, GENESIS.to_string()),
    };
    let at = stamp(Timestamp::now());
    let hash = entry_hash(seq, &at, actor, action, detail, &prev);
    tx.execute_cached(
        "INSERT INTO audit (seq, at, actor, action, detail, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq as i64, at, actor, action, detail, prev, hash],
    )?;
    Ok(Head { seq, hash })
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    /// [`crate::domain::REVISION`] when written; 0 from a build before
    /// revisions.
    #[serde(default)]
    revision: u32,
    station: String,
    seq: u64,
    hash: String,
    at: String,
    /// The checkpoint before this one: its entry and the SHA-256 of its
    /// signed document. Absent on the first, and on checkpoints written
    /// before checkpoints were linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<Head>,
}

/// How a checkpoint is named by the next: the SHA-256 of its document.
fn checkpoint_hash(signed: &[u8]) -> String {
    hex::encode(Sha256::digest(signed))
}

/// Signs the current head, unless it is already checkpointed.
pub fn write_checkpoint(tx: &Transaction<'_>, key: &CheckpointKey) -> Result<(), StoreError> {
    let Some(h) = head(tx)? else { return Ok(()) };
    let done: Option<i64> = tx
        .query_row_cached(
            "SELECT seq FROM checkpoints WHERE seq = ?1",
            [h.seq as i64],
            |r| r.get(0),
        )
        .optional()?;
    if done.is_some() {
        return Ok(());
    }
    let previous = tx
        .query_row_cached(
            "SELECT seq, signed FROM checkpoints ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )
        .optional()?
        .map(|(seq, signed)| Head {
            seq: seq as u64,
            hash: checkpoint_hash(&signed),
        });
    let at = stamp(Timestamp::now());
    let body = serde_json::to_vec(&CheckpointBody {
        revision: crate::domain::REVISION,
        station: key.station.to_string(),
        seq: h.seq,
        hash: h.hash.clone(),
        at: at.clone(),
        previous,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let doc = signed::sign(Kind::Checkpoint, &key.station, &body, &key.key);
    tx.execute_cached(
        "INSERT INTO checkpoints (seq, hash, signed, at) VALUES (?1, ?2, ?3, ?4)",
        params![h.seq as i64, h.hash, doc, at],
    )?;
    Ok(())
}

/// What `audit verify` found wrong: the first fault, named precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFault {
    #[error(
        "entry {seq}: expected sequence number {expected}; entries are missing or were reordered"
    )]
    Gap { seq: u64, expected: u64 },
    #[error("entry {seq}: its `prev` does not match the hash of entry {}; the chain was broken here", seq - 1)]
    BrokenLink { seq: u64 },
    #[error("entry {seq}: its content does not match its hash; it was altered")]
    Altered { seq: u64 },
    #[error(
        "checkpoint at entry {seq}: the signature does not verify with this station's key (nor with a key it had then)"
    )]
    BadCheckpointSignature { seq: u64 },
    #[error(
        "checkpoint at entry {seq}: the chain's hash there differs from the signed one; the log was rewritten"
    )]
    Rewritten { seq: u64 },
    #[error(
        "the last checkpoint covers entry {checkpoint}, but the log ends at entry {last}; entries were cut off"
    )]
    Truncated { checkpoint: u64, last: u64 },
    #[error(
        "entries {} to {last} are covered by no signed checkpoint (the last covers entry {checkpoint}); they were written without the station's key",
        checkpoint + 1
    )]
    Unsigned { checkpoint: u64, last: u64 },
    #[error(
        "checkpoint at entry {seq}: it follows the checkpoint at entry {previous}, which is missing or was replaced; checkpoints were removed"
    )]
    CheckpointMissing { seq: u64, previous: u64 },
    #[error(
        "checkpoint at entry {seq}: written at revision {theirs}, but this hotline reads up to revision {ours}; verify with the newer hotline that wrote it"
    )]
    NewerCheckpoint { seq: u64, theirs: u32, ours: u32 },
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub head: Option<Head>,
    pub checkpoint: Option<u64>,
}

/// The audit action `hotline rekey` writes, naming the key it retired as
/// `old_key=ed25519:…`.
pub const REKEY: &str = "rekey";

/// The key a `rekey` entry says was retired.
fn retired_key(detail: &str) -> Option<VerifyingKey> {
    detail
        .split_whitespace()
        .find_map(|word| word.strip_prefix("old_key="))
        .and_then(|text| crate::crypto::keys::parse_signing_key(text).ok())
}

/// Checks the whole chain, then every checkpoint against it. A checkpoint
/// is signed with the station's current key, or with a key a `rekey`
/// entry after it retired: the newest checkpoint must be the current
/// key's, and it covers those entries, so the history of keys is as
/// trustworthy as the current key.
pub fn verify(
    conn: &rusqlite::Connection,
    station_key: &VerifyingKey,
) -> Result<Result<Verified, AuditFault>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT seq, at, actor, action, detail, prev, hash FROM audit ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(Entry {
            seq: r.get::<_, i64>(0)? as u64,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            detail: r.get(4)?,
            prev: r.get(5)?,
            hash: r.get(6)?,
        })
    })?;
    let mut prev = GENESIS.to_string();
    let mut hashes: Vec<String> = Vec::new();
    let mut retired: Vec<(u64, VerifyingKey)> = Vec::new();
    for (expected, row) in (1u64..).zip(rows) {
        let e = row?;
        if e.seq != expected {
            return Ok(Err(AuditFault::Gap {
                seq: e.seq,
                expected,
            }));
        }
        if e.prev != prev {
            return Ok(Err(AuditFault::BrokenLink { seq: e.seq }));
        }
        if entry_hash(e.seq, &e.at, &e.actor, &e.action, &e.detail, &e.prev) != e.hash {
            return Ok(Err(AuditFault::Altered { seq: e.seq }));
        }
        if e.action == REKEY
            && let Some(key) = retired_key(&e.detail)
        {
            retired.push((e.seq, key));
        }
        prev = e.hash.clone();
        hashes.push(e.hash);
    }
    let last = hashes.len() as u64;
    let head = hashes.last().map(|h| Head {
        seq: last,
        hash: h.clone(),
    });
    let mut stmt = conn.prepare("SELECT seq, signed FROM checkpoints ORDER BY seq")?;
    let checkpoints = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut before: Option<Head> = None;
    for row in checkpoints {
        let (seq, doc) = row?;
        let seq = seq as u64;
        let keys: Vec<VerifyingKey> = std::iter::once(*station_key)
            .chain(
                retired
                    .iter()
                    .filter(|(at, _)| *at > seq)
                    .map(|(_, key)| *key),
            )
            .collect();
        if let Err(fault) = check_one(seq, &doc, &keys, &hashes, before.as_ref()) {
            return Ok(Err(fault));
        }
        before = Some(Head {
            seq,
            hash: checkpoint_hash(&doc),
        });
    }
    let covered = before.map_or(0, |h| h.seq);
    if covered < last {
        return Ok(Err(AuditFault::Unsigned {
            checkpoint: covered,
            last,
        }));
    }
    Ok(Ok(Verified {
        entries: last,
        head,
        checkpoint: (covered > 0).then_some(covered),
    }))
}

/// Checks one checkpoint: its signature, that the chain holds its hash at
/// its entry, and that it names the checkpoint before it.
fn check_one(
    seq: u64,
    doc: &[u8],
    keys: &[VerifyingKey],
    hashes: &[String],
    before: Option<&Head>,
) -> Result<(), AuditFault> {
    let body = match signed::parse(doc).and_then(|d| d.verify_any(Kind::Checkpoint, keys)) {
        Ok((b, _)) => b,
        Err(signed::SignedError::UnsupportedRevision { theirs, ours, .. }) => {
            return Err(AuditFault::NewerCheckpoint { seq, theirs, ours });
        }
        Err(_) => return Err(AuditFault::BadCheckpointSignature { seq }),
    };
    let Ok(signed_body) = serde_json::from_slice::<CheckpointBody>(body) else {
        return Err(AuditFault::BadCheckpointSignature { seq });
    };
    if signed_body.seq != seq {
        return Err(AuditFault::BadCheckpointSignature { seq });
    }
    let last = hashes.len() as u64;
    if seq > last {
        return Err(AuditFault::Truncated {
            checkpoint: seq,
            last,
        });
    }
    let at = usize::try_from(seq.saturating_sub(1)).unwrap_or(usize::MAX);
    if hashes.get(at) != Some(&signed_body.hash) {
        return Err(AuditFault::Rewritten { seq });
    }
    match (&signed_body.previous, before) {
        (Some(named), Some(found)) if named == found => Ok(()),
        (Some(named), _) => Err(AuditFault::CheckpointMissing {
            seq,
            previous: named.seq,
        }),
        // The first checkpoint, or one from before checkpoints were linked.
        (None, _) => Ok(()),
    }
}
