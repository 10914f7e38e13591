//! A station restored from a backup, and its peers' part in it.
//!
//! `hotline restore` leaves a note in the data directory. At its next start
//! the station writes a signed `restore` entry from it into the audit log,
//! so that the log itself says where its history was cut, and removes the
//! note. Then, for each peer:
//!
//! - **Held.** Nothing is released to the peer until its hello says the
//!   highest serial of ours it holds (`your_serial`): the lost journal may
//!   have given out serials above the backup's, and the peer holds them.
//!   On that hello the station continues above them, and audits the range
//!   it skipped (`restore-resume`).
//! - **Re-sent.** Every hello says the highest serial of the peer's that we
//!   hold, and a restored station's hello says it was restored. Its peer
//!   then re-sends from its own journal what it receipted above that
//!   serial ([`resend`]): what the restored station had receipted after
//!   the backup comes back, and a duplicate gets the same receipt, so
//!   nothing is shown twice. The peer also re-sends the acknowledgements it
//!   delivered since about the backup's time; one for a message the
//!   restored station no longer holds (released after the backup) is
//!   answered and audited, not refused. Only a restored station asks: a
//!   station that lost what it had receipted for any other reason has a
//!   fault that must show, not be papered over.
//! - **Audit heads.** A peer may have recorded an audit head of ours from
//!   the lost history, past the backup's; the restored log cannot match
//!   it. Until the peer records a head of ours from after the restore, such
//!   a record is audited, not raised as an audit mismatch.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{AlarmKind, Inner, StationError};
use crate::backup::Manifest;
use crate::domain::StationName;
use crate::fsutil;
use crate::store::Journal;
use crate::store::audit::{Head, Verified};

/// The note `hotline restore` leaves in the data directory.
pub const NOTE: &str = "restored.json";
/// The audit action of a restore.
pub const ACTION: &str = "restore";
/// The audit action of a peer's serials taken in after a restore.
pub const RESUME: &str = "restore-resume";

/// What a restore put back, as the note tells the station.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub station: StationName,
    pub taken_at: Timestamp,
    pub backup_head: Option<Head>,
    pub messages: u64,
    pub restored_at: Timestamp,
}

/// Leaves the note for the station's next start (owner-only).
pub fn leave_note(
    data_dir: &Path,
    manifest: &Manifest,
    verified: &Verified,
) -> std::io::Result<()> {
    let note = Note {
        station: manifest.station.clone(),
        taken_at: manifest.taken_at,
        backup_head: verified.head.clone(),
        messages: manifest.messages,
        restored_at: Timestamp::now(),
    };
    let text = serde_json::to_vec_pretty(&note).map_err(std::io::Error::other)?;
    fsutil::create_private(&data_dir.join(NOTE), &text)
}

/// Where a restore stands.
#[derive(Debug)]
pub(crate) struct Restored {
    /// The newest `restore` entry in the audit log.
    entry: u64,
    /// The audit head the backup held.
    backup_seq: u64,
    /// When the backup was taken, as the entry says.
    taken: Option<Timestamp>,
    /// Peers that have not yet said which of our serials they hold.
    held: HashSet<StationName>,
    /// Peers that recorded a head of ours from after the restore.
    reconciled: HashSet<StationName>,
}

/// At start: turns a note into a signed audit entry, then reads where the
/// newest restore stands from the log (`None` if there never was one).
pub(super) async fn on_start(
    journal: &Journal,
    data_dir: &Path,
    peers: &[StationName],
) -> Result<Option<Restored>, StationError> {
    let path = data_dir.join(NOTE);
    if path.exists() {
        let bytes = fsutil::read_private(&path, 1 << 16)
            .map_err(|e| StationError::Refused(e.to_string()))?;
        let note: Note = serde_json::from_slice(&bytes).map_err(|e| {
            StationError::Refused(format!(
                "{}: not a restore note ({e}); it is written by `hotline restore`",
                path.display()
            ))
        })?;
        let head = note.backup_head.as_ref();
        let detail = format!(
            "backup-taken={} backup-seq={} backup-hash={} messages={} restored-at={}",
            note.taken_at,
            head.map_or(0, |h| h.seq),
            head.map_or("none", |h| h.hash.as_str()),
            note.messages,
            note.restored_at
        );
        journal.audit("station", ACTION, &detail).done().await?;
        std::fs::remove_file(&path).map_err(|e| {
            StationError::Refused(format!("{}: could not remove it: {e}", path.display()))
        })?;
        tracing::warn!(%detail, "the journal was restored from a backup");
    }
    let Some((entry, detail)) = journal.audit_entries(ACTION, 0)?.pop() else {
        return Ok(None);
    };
    let field = |name: &str| {
        detail
            .split(' ')
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_default()
            .to_string()
    };
    let resumed: HashSet<String> = journal
        .audit_entries(RESUME, entry)?
        .into_iter()
        .filter_map(|(_, d)| {
            d.split(' ')
                .find_map(|w| w.strip_prefix("peer="))
                .map(str::to_string)
        })
        .collect();
    Ok(Some(Restored {
        entry,
        backup_seq: field("backup-seq=").parse().unwrap_or(0),
        taken: field("backup-taken=").parse().ok(),
        held: peers
            .iter()
            .filter(|p| !resumed.contains(p.as_str()))
            .cloned()
            .collect(),
        reconciled: HashSet::new(),
    }))
}

/// Raises the alarm for every peer still held (at start).
pub(super) fn raise_held(inner: &Inner) {
    let held: Vec<(StationName, String)> = {
        let restored = inner.restored();
        let Some(r) = restored.as_ref() else { return };
        let taken = r.taken.map_or_else(|| "?".to_string(), |t| t.to_string());
        r.held.iter().map(|p| (p.clone(), taken.clone())).collect()
    };
    for (peer, taken) in held {
        inner.raise(
            AlarmKind::Restored,
            peer.as_str(),
            Some(&peer),
            None,
            crate::t!(
                inner.config.station.language,
                "alarm.restored",
                taken = taken,
                peer = peer
            ),
        );
    }
}

/// Whether releases to `peer` wait for its hello.
pub(super) fn held(inner: &Inner, peer: &str) -> bool {
    inner
        .restored()
        .as_ref()
        .is_some_and(|r| r.held.iter().any(|p| p.as_str() == peer))
}

/// When the backup this station's journal was restored from was taken, if
/// it ever was: its hellos then ask peers to re-send what it lost.
pub(super) fn restored_from(inner: &Inner) -> Option<Timestamp> {
    inner.restored().as_ref().and_then(|r| r.taken)
}

/// Whether this station's journal was ever restored from a backup.
pub(super) fn active(inner: &Inner) -> bool {
    inner.restored().is_some()
}

/// Takes in what a peer's hello says of our serials (`your_serial`), and,
/// if the peer was restored, re-sends what it receipted and no longer holds.
pub(super) fn hello(
    inner: &Arc<Inner>,
    peer: &StationName,
    your_serial: Option<u64>,
    peer_restored_from: Option<Timestamp>,
) {
    let Some(held_there) = your_serial else {
        return;
    };
    if held(inner, peer.as_str()) {
        let (inner, peer) = (inner.clone(), peer.clone());
        tokio::spawn(async move {
            let resumed = inner
                .journal
                .resume_serials(peer.clone(), held_there, String::new())
                .done()
                .await;
            match resumed {
                Ok(before) => {
                    if let Some(r) = inner.restored().as_mut() {
                        r.held.remove(&peer);
                    }
                    inner.resolve(AlarmKind::Restored, peer.as_str());
                    tracing::warn!(%peer, released_here = before, held_there, "releases to the peer resume after the restore");
                }
                Err(e) => {
                    tracing::error!(%peer, error = %e, "could not take in the peer's serials after a restore")
                }
            }
        });
    }
    if let Some(taken) = peer_restored_from {
        resend(inner, peer, held_there);
        resend_acks(inner, peer, taken);
    }
}

/// How far before a peer's backup time acknowledgements are re-sent: the
/// two clocks differ, and an acknowledgement sent twice is only answered
/// twice.
const ACK_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// Queues again the acknowledgements of `peer`'s messages delivered since
/// shortly before its backup was `taken`: it lost them with its journal.
/// Once per restore: a restored peer says so in every hello it sends.
fn resend_acks(inner: &Arc<Inner>, peer: &StationName, taken: Timestamp) {
    let since = taken.checked_sub(ACK_MARGIN).unwrap_or(taken);
    let answered = inner.journal.answer_restore(peer.to_string(), taken, since);
    let (inner, peer) = (inner.clone(), peer.clone());
    tokio::spawn(async move {
        match answered.done().await {
            Ok(Some(lost)) => {
                tracing::warn!(%peer, %taken, acks = lost.len(), "re-sending acknowledgements to a peer restored from a backup");
                if let Some(queue) = inner.queue(peer.as_str()) {
                    for a in lost {
                        queue.push_ack(a.message_id, a.precedence, a.doc);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(%peer, error = %e, "could not answer the peer's restore");
            }
        }
    });
}

/// Queues again every message `peer` receipted above `held_there`, the
/// highest serial of ours it says it holds: it lost them with the journal
/// it was restored over, and our journal still has them, sealed.
fn resend(inner: &Arc<Inner>, peer: &StationName, held_there: u64) {
    let lost = match inner.journal.receipted_above(peer.as_str(), held_there) {
        Ok(lost) => lost,
        Err(e) => {
            tracing::error!(%peer, error = %e, "could not read what the peer receipted");
            return;
        }
    };
    if lost.is_empty() {
        return;
    }
    let Some(queue) = inner.queue(peer.as_str()) else {
        return;
    };
    let detail = format!(
        "peer={peer} holds-ours-up-to={held_there} resent={} serials={}..={}",
        lost.len(),
        lost.iter().map(|m| m.serial).min().unwrap_or(0),
        lost.iter().map(|m| m.serial).max().unwrap_or(0)
    );
    for m in lost {
        queue.push_message(m.id, m.precedence, m.sealed);
    }
    audit_resend(inner, detail);
}

/// Logs and audits what was queued again for a restored peer.
fn audit_resend(inner: &Arc<Inner>, detail: String) {
    tracing::warn!(%detail, "re-sending to a peer restored from a backup");
    let inner = inner.clone();
    tokio::spawn(async move {
        if let Err(e) = inner
            .journal
            .audit("station", "resend", &detail)
            .done()
            .await
        {
            tracing::error!(error = %e, "could not audit a re-send");
        }
    });
}

/// Whether a head of ours that `peer` recorded, and that our log does not
/// hold, may come from the history lost with a restore: it is past the
/// backup's head, and the peer has not yet recorded one from after the
/// restore.
pub(super) fn from_lost_history(inner: &Inner, peer: &StationName, head: &Head) -> bool {
    inner
        .restored()
        .as_ref()
        .is_some_and(|r| head.seq > r.backup_seq && !r.reconciled.contains(peer))
}

/// Notes that `peer` recorded a head of ours that our log holds: from one
/// after the restore on, every record it shows is checked in full.
pub(super) fn matched(inner: &Inner, peer: &StationName, head: &Head) {
    if let Some(r) = inner.restored().as_mut()
        && head.seq >= r.entry
    {
        r.reconciled.insert(peer.clone());
    }
}
