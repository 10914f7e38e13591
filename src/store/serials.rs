//! Releasing into the outbox, with serials reserved outside the writer.
//!
//! A release reserves the next serial towards its peer in memory, builds
//! and seals the message on the caller's thread (the station's crypto pool),
//! and only then queues the SQL for the writer. Seals run in parallel, so
//! serials commit in any order. What keeps them right:
//!
//! - **Unique.** The counter starts from the highest serial released or
//!   voided, and only rises; the table's unique key refuses a repeat.
//! - **Accounted for.** A serial whose release fails (sealing failed, or
//!   the store refused it) is recorded as *void*, in the same transaction
//!   as the failure where there is one. Hellos and link tests declare void
//!   serials with the cancelled ones, so the peer's gap check counts them
//!   as arrived and reports no false gap.
//! - **Crash holes.** A process killed after serial N+1 committed but
//!   before N did leaves a hole that no message will fill. Each commit also
//!   records how far every serial is *settled* (committed or void): below
//!   the lowest serial still in flight. On opening, a hole above the
//!   settled mark is a crash hole and is voided (audited); a hole at or
//!   below it was committed once and then lost (say, a restore from an old
//!   backup), so it is left for the peer to report as a gap.
//! - **Bounded.** At most [`MAX_UNSETTLED`] serials may lie between the
//!   lowest in flight and the newest, so the span searched for holes on
//!   opening is bounded too; a journal claiming a wider one was edited or
//!   damaged, and its holes are left as gaps rather than voided.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use rusqlite::{OptionalExtension as _, Transaction, params};

use super::Cached as _;
use super::messages::{Direction, Released, insert};
use super::{Journal, MessageState, Pending, StoreError, audit};
use crate::domain::{Message, Precedence, StationName, stamp};

/// The widest span of serials towards one peer that may be unsettled: a
/// release that would widen it further is refused until the oldest in
/// flight settles. Seals take well under a millisecond, so only a stuck
/// seal behind thousands of others could reach it.
pub const MAX_UNSETTLED: u64 = 4096;

/// The serials reserved towards one peer this run.
#[derive(Default)]
struct Reserved {
    last: u64,
    in_flight: BTreeSet<u64>,
}

/// Every peer's reservations; shared with the writer's jobs, which read the
/// settled mark and clear a serial once its commit is done.
#[derive(Clone, Default)]
pub(super) struct Book(Arc<Mutex<HashMap<StationName, Reserved>>>);

impl Book {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StationName, Reserved>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything at or below this is committed or void, or is `own`,
    /// which commits in the same transaction as the mark.
    fn settled(&self, peer: &StationName, own: u64) -> u64 {
        let book = self.lock();
        let Some(r) = book.get(peer) else {
            return own;
        };
        r.in_flight
            .iter()
            .find(|s| **s != own)
            .map_or(r.last.max(own), |lowest| lowest - 1)
    }

    fn finish(&self, peer: &StationName, serial: u64) {
        if let Some(r) = self.lock().get_mut(peer) {
            r.in_flight.remove(&serial);
        }
    }
}

impl Journal {
    /// Releases a message to `peer`: reserves the next serial, lets `seal`
    /// build and seal the message with it here, on the caller's thread, and
    /// queues only the SQL (the outbox row, the serial, the audit entry) for
    /// the writer. When the returned write completes, the message is
    /// durably released. A serial given up by a failed release is void.
    pub fn release<F>(&self, peer: StationName, seal: F) -> Pending<(Released, Message)>
    where
        F: FnOnce(u64) -> Result<(Message, Vec<u8>), String>,
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
        F: FnOnce(u64) -> Result<(Message, Vec<u8>), String>,
    {
        let serial = match self.reserve(&peer) {
            Ok(s) => s,
            Err(e) => return Pending::failed(e),
        };
        let sealed = seal(serial).and_then(|(message, sealed)| {
            if message.serial != serial || message.to != peer {
                Err("the sealed message does not carry its reserved serial and peer".into())
            } else {
                Ok((message, sealed))
            }
        });
        let book = self.serials.clone();
        let done = {
            let (book, peer) = (book.clone(), peer.clone());
            move |committed: bool| {
                if committed {
                    book.finish(&peer, serial);
                }
            }
        };
        let (message, sealed) = match sealed {
            Ok(v) => v,
            Err(reason) => {
                return self.write_mapped(
                    false,
                    move |tx| {
                        void(tx, &book, &peer, serial, &reason)?;
                        Ok(reason)
                    },
                    move |r, committed| {
                        done(committed);
                        r.and_then(|reason| Err(StoreError::Rejected(reason)))
                    },
                );
            }
        };
        let flash = message.precedence == Precedence::Flash;
        self.write_mapped(
            flash,
            move |tx| {
                tx.execute_cached("SAVEPOINT release", [])?;
                match store(tx, &book, &message, &sealed, &staged) {
                    Ok(()) => {
                        tx.execute_cached("RELEASE release", [])?;
                        Ok(Ok((
                            Released {
                                id: message.id,
                                serial,
                                sealed,
                            },
                            message,
                        )))
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO release; RELEASE release")?;
                        void(tx, &book, &peer, serial, &format!("not stored: {e}"))?;
                        Ok(Err(e))
                    }
                }
            },
            move |r, committed| {
                done(committed);
                r.and_then(|stored| stored)
            },
        )
    }

    /// The next serial towards `peer`, never given out before by this
    /// journal: the counter starts from the highest serial released or
    /// voided (crash holes were voided when the journal opened).
    fn reserve(&self, peer: &StationName) -> Result<u64, StoreError> {
        let known = self.serials.lock().contains_key(peer);
        let from_journal = if known {
            0
        } else {
            self.highest_released(peer.as_str())?
        };
        let mut book = self.serials.lock();
        let r = book.entry(peer.clone()).or_insert_with(|| Reserved {
            last: from_journal,
            in_flight: BTreeSet::new(),
        });
        if let Some(oldest) = r.in_flight.first()
            && r.last + 1 - oldest >= MAX_UNSETTLED
        {
            return Err(StoreError::Rejected(format!(
                "serial {oldest} towards {peer} is still being sealed, {MAX_UNSETTLED} serials back; release again in a moment"
            )));
        }
        r.last += 1;
        r.in_flight.insert(r.last);
        Ok(r.last)
    }
}

impl Journal {
    /// Raises the serials released towards `peer` to `held` if they are
    /// below it (audited as `restore-resume`, with `detail`), so that the
    /// next release continues above what the peer holds: after a restore,
    /// serials the lost journal gave out are never given out again.
    /// Returns the highest released before.
    pub fn resume_serials(&self, peer: StationName, held: u64, detail: String) -> Pending<u64> {
        let book = self.serials.clone();
        self.write_mapped(
            true,
            move |tx| {
                let before: Option<i64> = tx
                    .query_row(
                        "SELECT last_released FROM serials WHERE peer = ?1",
                        [peer.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?;
                let before = before.unwrap_or(0).max(0) as u64;
                if held > before {
                    tx.execute(
                        "INSERT INTO serials (peer, last_released, settled) VALUES (?1, ?2, ?2) \
                         ON CONFLICT (peer) DO UPDATE SET last_released = excluded.last_released, \
                         settled = excluded.settled",
                        params![peer.as_str(), held as i64],
                    )?;
                }
                let skipped = if held > before {
                    format!("{}..={held}", before + 1)
                } else {
                    "none".into()
                };
                audit::append(
                    tx,
                    "station",
                    "restore-resume",
                    &format!("peer={peer} released-here={before} held-there={held} skipped={skipped} {detail}"),
                )?;
                Ok((peer, before))
            },
            move |r, committed| {
                let (peer, before) = r?;
                if committed {
                    // The next reservation reads the raised mark.
                    book.lock().remove(&peer);
                }
                Ok(before)
            },
        )
    }
}

/// The SQL of a release: the serial, the outbox row, the attachments'
/// rows, the audit entry.
fn store(
    tx: &Transaction<'_>,
    book: &Book,
    message: &Message,
    sealed: &[u8],
    staged: &[super::StagedAttachment],
) -> Result<(), StoreError> {
    mark(tx, book, &message.to, message.serial)?;
    insert(tx, Direction::Out, message, MessageState::Queued, sealed)?;
    super::attachments::insert_all(tx, Direction::Out, message, staged)?;
    audit::append(
        tx,
        message.operator.as_str(),
        "release",
        &format!(
            "id={} to={} serial={} precedence={} template={}@{} exercise={}{}",
            message.id,
            message.to,
            message.serial,
            message.precedence,
            message.template.id,
            message.template.version,
            message.exercise,
            message
                .second_operator
                .as_ref()
                .map(|second| format!(" second_operator={second}"))
                .unwrap_or_default()
        ),
    )?;
    Ok(())
}

/// Raises the highest serial released towards `peer` to `serial` (serials
/// commit out of order, so it only ever rises), and the settled mark.
fn mark(
    tx: &Transaction<'_>,
    book: &Book,
    peer: &StationName,
    serial: u64,
) -> Result<(), StoreError> {
    let settled = book.settled(peer, serial);
    tx.execute_cached(
        "INSERT INTO serials (peer, last_released, settled) VALUES (?1, ?2, ?3) \
         ON CONFLICT (peer) DO UPDATE SET last_released = MAX(last_released, excluded.last_released), \
         settled = MAX(settled, excluded.settled)",
        params![peer.as_str(), serial as i64, settled as i64],
    )?;
    Ok(())
}

/// Records `serial` towards `peer` as void, with an audit entry saying why.
fn void(
    tx: &Transaction<'_>,
    book: &Book,
    peer: &StationName,
    serial: u64,
    reason: &str,
) -> Result<(), StoreError> {
    mark(tx, book, peer, serial)?;
    tx.execute_cached(
        "INSERT OR IGNORE INTO void_serials (peer, serial, at, reason) VALUES (?1, ?2, ?3, ?4)",
        params![
            peer.as_str(),
            serial as i64,
            stamp(Timestamp::now()),
            reason
        ],
    )?;
    audit::append(
        tx,
        "station",
        "void-serial",
        &format!("to={peer} serial={serial} reason={reason}"),
    )?;
    Ok(())
}

/// Voids the crash holes towards every peer: serials above the settled
/// mark and at or below the highest released that neither a message nor a
/// void carries. Runs once, when the journal opens, before any release.
/// Counting first keeps the usual case (no hole) to one indexed count per
/// peer over the unsettled span only.
pub(super) fn void_holes(tx: &Transaction<'_>) -> Result<Vec<(StationName, u64)>, StoreError> {
    let peers: Vec<(String, i64, i64)> = {
        let mut stmt = tx.prepare("SELECT peer, settled, last_released FROM serials")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let book = Book::default();
    let mut voided = Vec::new();
    for (peer, settled, last) in peers {
        let span = params![peer, settled, last];
        let accounted: i64 = tx.query_row_cached(
            "SELECT (SELECT COUNT(*) FROM messages WHERE direction = 'out' AND peer = ?1 AND serial > ?2 AND serial <= ?3) \
                  + (SELECT COUNT(*) FROM void_serials WHERE peer = ?1 AND serial > ?2 AND serial <= ?3)",
            span,
            |r| r.get(0),
        )?;
        if accounted >= last - settled {
            continue;
        }
        let name = StationName::new(&peer)
            .map_err(|_| StoreError::Corrupt(format!("serials: `{peer}` is not a station name")))?;
        if last - settled > MAX_UNSETTLED as i64 {
            tracing::warn!(
                %peer, settled, last,
                "the journal says more serials are unsettled than a station ever leaves; its holes are left as gaps"
            );
            continue;
        }
        let taken: BTreeSet<i64> = {
            let mut stmt = tx.prepare(
                "SELECT serial FROM messages WHERE direction = 'out' AND peer = ?1 AND serial > ?2 AND serial <= ?3 \
                 UNION SELECT serial FROM void_serials WHERE peer = ?1 AND serial > ?2 AND serial <= ?3",
            )?;
            let rows = stmt.query_map(span, |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for serial in (settled + 1..=last).filter(|s| !taken.contains(s)) {
            let serial = serial as u64;
            void(
                tx,
                &book,
                &name,
                serial,
                "reserved, and never stored before the station stopped",
            )?;
            voided.push((name.clone(), serial));
        }
    }
    // Nothing is in flight yet: every serial given out is settled.
    tx.execute("UPDATE serials SET settled = last_released", [])?;
    Ok(voided)
}
