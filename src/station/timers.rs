//! The station's clockwork: link events turned into station events, link
//! tests at the configured interval, the FLASH-without-receipt alarm, gap
//! detection and acknowledgement deadlines. Alarms are derived from state
//! each tick, so none is lost if a subscriber missed an event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::docs;
use super::{AlarmKind, Event, Inner};
use crate::domain::{MessageId, Precedence, StationName};
use crate::link::{LinkEvent, PathKind};
use crate::store::{Direction, MessageRow, MessageState};
use crate::wire::{Frame, FrameKind};

/// How often the timers look at the state.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a link test may take before it counts as missed.
pub const LINK_TEST_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn pump_link_events(inner: Arc<Inner>, mut events: mpsc::Receiver<LinkEvent>) {
    let mut stop = inner.stop.subscribe();
    loop {
        // Stop on the station's stop signal too: the link's sender lives as
        // long as the station, so waiting for it alone would keep the
        // station (and its journal) alive forever.
        let event = tokio::select! {
            e = events.recv() => match e {
                Some(e) => e,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let station_event = match event {
            LinkEvent::Up { peer, path, remote } => {
                inner.resolve(AlarmKind::LinkDown, peer.as_str());
                if path != PathKind::Backup {
                    inner.resolve(AlarmKind::LinkDegraded, peer.as_str());
                }
                Event::LinkUp {
                    peer: peer.to_string(),
                    path,
                    remote: remote.to_string(),
                }
            }
            LinkEvent::Down { peer, reason } => Event::LinkDown {
                peer: peer.to_string(),
                reason,
            },
            LinkEvent::FailedOver { peer, path } => {
                if path == PathKind::Backup {
                    inner.raise(
                        AlarmKind::LinkDegraded,
                        peer.as_str(),
                        Some(&peer),
                        None,
                        crate::t!(
                            inner.config.station.language,
                            "alarm.link_degraded",
                            peer = peer
                        ),
                    );
                } else {
                    inner.resolve(AlarmKind::LinkDegraded, peer.as_str());
                }
                Event::FailedOver {
                    peer: peer.to_string(),
                    path,
                }
            }
            LinkEvent::Probe { .. } => continue,
            LinkEvent::Refused {
                remote,
                reason,
                peer,
                timed_out,
            } => {
                refused(&inner, remote, &reason, peer.as_ref(), timed_out);
                continue;
            }
            LinkEvent::Malformed { peer, reason } => {
                super::inbound::audit(
                    &inner,
                    peer.as_str(),
                    "malformed",
                    &format!("peer={peer} reason={reason}"),
                )
                .await;
                continue;
            }
        };
        inner.emit(station_event);
    }
}

/// Audits, logs and alarms a refused connection: a pinned peer's at the
/// rate of its other misbehaviour (see [`super::noisy`]), a stranger's
/// through the window count (see [`super::strangers`]).
fn refused(
    inner: &Inner,
    remote: std::net::SocketAddr,
    reason: &str,
    peer: Option<&StationName>,
    timed_out: bool,
) {
    let now = Instant::now();
    let written = match peer {
        None => inner.strangers().note(now, remote.ip(), timed_out),
        // A pinned peer's refusals count as its misbehaviour.
        Some(peer) => {
            let (write, ended) = inner.noisy().note(peer.as_str(), "connection-refused", now);
            if let Some(summary) = ended {
                let _ = inner
                    .journal
                    .audit("station", "peer-misbehaviour-counted", &summary);
            }
            write
        }
    };
    if !written {
        return;
    }
    tracing::warn!(%remote, %reason, "refused a connection");
    let _ = inner.journal.audit(
        "station",
        "connection-refused",
        &format!("remote={remote} reason={reason}"),
    );
    if timed_out {
        return;
    }
    // One alarm per address, however often it tries.
    inner.raise(
        AlarmKind::ConnectionRefused,
        &remote.ip().to_string(),
        None,
        None,
        crate::t!(
            inner.config.station.language,
            "alarm.connection_refused",
            remote = remote,
            reason = reason
        ),
    );
}

/// Writes the summaries of pinned peers' misbehaviour whose window ended
/// (see [`super::noisy`]), or, at a stop, of every window open. Returns the
/// audit writes, for a stop to wait on.
pub fn sum_up_misbehaviour(
    inner: &Inner,
    stopping: bool,
) -> Vec<crate::store::Pending<crate::store::audit::Head>> {
    let due = inner.noisy().due(Instant::now(), stopping);
    due.into_iter()
        .map(|summary| {
            tracing::warn!(%summary, "a peer's misbehaviour, counted");
            inner
                .journal
                .audit("station", "peer-misbehaviour-counted", &summary)
        })
        .collect()
}

/// Writes the summary of the strangers' window if it has ended, or, at a
/// stop, of the window open now. Returns the audit write, for a stop to
/// wait on.
pub fn sum_up_strangers(
    inner: &Inner,
    stopping: bool,
) -> Option<crate::store::Pending<crate::store::audit::Head>> {
    let summary = {
        let mut strangers = inner.strangers();
        if stopping {
            strangers.close()
        } else {
            strangers.due(Instant::now())
        }
    };
    let summary = summary?;
    tracing::warn!(%summary, "refused connections from strangers");
    let written = inner
        .journal
        .audit("station", "connections-refused", &summary.to_string());
    if summary.alarming() {
        let lang = inner.config.station.language;
        let sources = format!(
            "{}{}",
            summary.sources,
            if summary.more_sources { "+" } else { "" }
        );
        let since = summary.since.strftime("%H:%M:%S UTC");
        let text = match summary.busiest.first() {
            Some((ip, n)) => crate::t!(
                lang,
                "alarm.strangers_busiest",
                total = summary.total,
                sources = sources,
                since = since,
                address = ip,
                count = n
            ),
            None => crate::t!(
                lang,
                "alarm.strangers",
                total = summary.total,
                sources = sources,
                since = since
            ),
        };
        inner.raise(AlarmKind::ConnectionRefused, "strangers", None, None, text);
    }
    Some(written)
}

/// Sends one link test to `peer` and waits for its answer. Records the
/// outcome in the journal and as an event.
pub async fn link_test(inner: &Inner, peer: &StationName) -> Result<Duration, String> {
    let keys = inner.peer(peer.as_str()).ok_or("not a configured peer")?;
    let link = inner.link().ok_or("link not started")?;
    if !inner.ours.may_send(peer) {
        return Err(format!(
            "{peer} has not confirmed our new keys (the old ones were compromised)"
        ));
    }
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let nonce = hex::encode(nonce);
    let body = super::standing::link_test_body(inner, peer, nonce.clone(), false);
    let sealed =
        docs::seal_link_test(&body, &inner.signer(peer), &keys).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let result = async {
        let answer = link
            .request(
                peer,
                &Frame::new(FrameKind::LinkTest, sealed.clone()),
                i32::MAX - 1,
                LINK_TEST_TIMEOUT,
            )
            .await
            .map_err(|e| e.to_string())?;
        if answer.kind != FrameKind::LinkTestReply {
            return Err(format!("answered with {:?}", answer.kind));
        }
        let reply =
            docs::open_link_test(&answer.payload, &inner.keys, &keys).map_err(|e| e.to_string())?;
        if !reply.reply || reply.nonce != nonce {
            return Err("the answer does not carry our nonce".to_string());
        }
        Ok(reply)
    }
    .await;
    let rtt = started.elapsed();
    let now = Timestamp::now().to_string();
    let (ok, head) = match &result {
        Ok(reply) => {
            super::standing::declared(
                inner,
                peer,
                reply.highest_serial,
                &reply.cancelled,
                reply.your_head.as_ref(),
            );
            (true, reply.audit_head.clone())
        }
        Err(_) => (false, None),
    };
    {
        let mut health = inner.health();
        let h = health.entry(peer.clone()).or_default();
        h.last_link_test = Some(now);
        h.last_link_test_ok = Some(ok);
    }
    let rtt_ms = rtt.as_millis() as u64;
    let _ = inner
        .journal
        .record_link_test(
            peer.to_string(),
            true,
            nonce,
            Some((ok, ok.then_some(rtt_ms))),
            sealed,
            head,
        )
        .done()
        .await;
    inner.emit(Event::LinkTest {
        peer: peer.to_string(),
        ok,
        rtt_ms: ok.then_some(rtt_ms),
    });
    match result {
        Ok(_) => {
            inner.resolve(AlarmKind::MissedLinkTest, peer.as_str());
            Ok(rtt)
        }
        Err(e) => {
            inner.raise(
                AlarmKind::MissedLinkTest,
                peer.as_str(),
                Some(peer),
                None,
                crate::t!(
                    inner.config.station.language,
                    "alarm.link_test_failed",
                    peer = peer,
                    error = e
                ),
            );
            Err(e)
        }
    }
}

#[derive(Default)]
struct Memory {
    flash_alarmed: HashSet<MessageId>,
    overdue_alarmed: HashSet<MessageId>,
    next_link_test: HashMap<StationName, Instant>,
    /// Since when each peer's link has been down, as the ticks saw it, and
    /// whether that raised its alarm.
    down_since: HashMap<StationName, (Instant, bool)>,
}

pub async fn run(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut memory = Memory::default();
    loop {
        // A peer admitted while running gets its first test one interval on.
        for peer in inner.peer_names() {
            memory
                .next_link_test
                .entry(peer)
                .or_insert_with(|| Instant::now() + inner.config.link.test_interval);
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        journal_writable(&inner);
        drop(sum_up_strangers(&inner, false));
        for written in sum_up_misbehaviour(&inner, false) {
            drop(written);
        }
        // The checks read the journal: off the async workers.
        let checks = {
            let inner = inner.clone();
            tokio::task::spawn_blocking(move || {
                flash_alarms(&inner, &mut memory);
                overdue(&inner, &mut memory);
                gaps(&inner);
                links_down(&inner, &mut memory);
                memory
            })
        };
        memory = match checks.await {
            Ok(m) => m,
            Err(_) => return,
        };
        let due: Vec<StationName> = memory
            .next_link_test
            .iter()
            .filter(|(_, at)| **at <= Instant::now())
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            memory.next_link_test.insert(
                peer.clone(),
                Instant::now() + inner.config.link.test_interval,
            );
            let inner = inner.clone();
            tokio::spawn(async move {
                let _ = link_test(&inner, &peer).await;
            });
        }
    }
}

/// Raises the alarm while the journal cannot be written, and tries one
/// small write each tick: an audit entry saying it can be written again,
/// whose commit clears the trouble. When the trouble has ended (by that
/// write or any other), the alarm ends, with that entry in the log.
fn journal_writable(inner: &Arc<Inner>) {
    let up = || {
        inner
            .alarms()
            .list()
            .iter()
            .any(|a| a.kind == AlarmKind::WriteFailed)
    };
    match inner.journal.trouble() {
        Some(why) => {
            static LOG: crate::logging::Limit = crate::logging::Limit::new();
            if let Some(held_back) = LOG.allow() {
                tracing::error!(held_back, %why, "the journal cannot be written");
            }
            inner.raise(
                AlarmKind::WriteFailed,
                "journal",
                None,
                None,
                crate::t!(
                    inner.config.station.language,
                    "alarm.write_failed",
                    why = why
                ),
            );
            let probe =
                inner
                    .journal
                    .audit("station", "journal-writable", &format!("after: {why}"));
            let inner = inner.clone();
            tokio::spawn(async move {
                if probe.done().await.is_ok() {
                    inner.resolve(AlarmKind::WriteFailed, "journal");
                }
            });
        }
        None if up() => {
            drop(
                inner
                    .journal
                    .audit("station", "journal-writable", "after a write that failed"),
            );
            inner.resolve(AlarmKind::WriteFailed, "journal");
        }
        None => {}
    }
}

/// The rows of one direction and state stored at least `age` ago, for
/// the given precedences. A journal that cannot be read is logged, not
/// taken for an empty queue without a word.
fn aged(
    inner: &Inner,
    direction: Direction,
    state: MessageState,
    precedences: impl IntoIterator<Item = (Precedence, Duration)>,
) -> Vec<MessageRow> {
    let now = Timestamp::now();
    let mut found = Vec::new();
    for (precedence, age) in precedences {
        let Ok(cutoff) = jiff::SignedDuration::try_from(age).and_then(|a| now.checked_sub(a))
        else {
            continue;
        };
        match inner
            .journal
            .waiting_since(direction, state, precedence, cutoff)
        {
            Ok(rows) => found.extend(rows),
            Err(e) => tracing::error!(error = %e, %state, "timers could not read the journal"),
        }
    }
    found
}

/// A FLASH without a receipt after `link.flash_receipt_alarm` raises an
/// alarm. Only the rows past the limit are read: once past it a row stays
/// past it, so those are also the ones whose alarms still stand.
fn flash_alarms(inner: &Inner, memory: &mut Memory) {
    let limit = inner.config.link.flash_receipt_alarm;
    let waiting: Vec<MessageRow> = [MessageState::Queued, MessageState::Sent]
        .into_iter()
        .flat_map(|state| aged(inner, Direction::Out, state, [(Precedence::Flash, limit)]))
        .collect();
    let still: HashSet<MessageId> = waiting.iter().map(|r| r.id).collect();
    memory.flash_alarmed.retain(|id| {
        let waits = still.contains(id);
        if !waits {
            inner.resolve(AlarmKind::FlashNoReceipt, &id.to_string());
        }
        waits
    });
    for r in waiting {
        if memory.flash_alarmed.insert(r.id) {
            inner.raise(
                AlarmKind::FlashNoReceipt,
                &r.id.to_string(),
                Some(&r.peer),
                Some(r.id),
                crate::t!(
                    inner.config.station.language,
                    "alarm.flash_no_receipt",
                    peer = r.peer,
                    serial = r.serial,
                    seconds = limit.as_secs()
                ),
            );
        }
    }
}

/// An inbound message unacknowledged past its precedence's deadline is
/// overdue; as with FLASH, only the rows past their deadline are read.
fn overdue(inner: &Inner, memory: &mut Memory) {
    let deadlines = &inner.config.deadlines;
    let rows = match &inner.options.exercise_clock {
        // An exercise counts on its scenario clock; it holds few messages.
        Some(clock) => {
            let now = jiff::Timestamp::now();
            inner
                .journal
                .list(Direction::In)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| {
                    r.state == MessageState::Received
                        && clock.between(r.stored_at, now) > deadlines.for_precedence(r.precedence)
                })
                .collect()
        }
        None => aged(
            inner,
            Direction::In,
            MessageState::Received,
            Precedence::ALL.map(|p| (p, deadlines.for_precedence(p))),
        ),
    };
    let still: HashSet<MessageId> = rows.iter().map(|r| r.id).collect();
    memory.overdue_alarmed.retain(|id| {
        let waits = still.contains(id);
        if !waits {
            inner.resolve(AlarmKind::Overdue, &id.to_string());
        }
        waits
    });
    for r in &rows {
        if memory.overdue_alarmed.insert(r.id) {
            let _ = inner.journal.audit(
                "station",
                "overdue",
                &format!("id={} from={} precedence={}", r.id, r.peer, r.precedence),
            );
            inner.raise(
                AlarmKind::Overdue,
                &r.id.to_string(),
                Some(&r.peer),
                Some(r.id),
                crate::t!(
                    inner.config.station.language,
                    "alarm.overdue",
                    precedence = r.precedence,
                    peer = r.peer,
                    serial = r.serial
                ),
            );
        }
    }
}

/// A link down longer than `link.down_alarm` raises an alarm; it comes
/// down when the link is up again (the link event resolves it at once).
fn links_down(inner: &Inner, memory: &mut Memory) {
    let Some(link) = inner.link() else { return };
    let grace = inner.config.link.down_alarm;
    for l in link.status() {
        let Ok(peer) = StationName::new(&l.peer) else {
            continue;
        };
        if l.up {
            memory.down_since.remove(&peer);
            continue;
        }
        let (since, raised) = memory
            .down_since
            .entry(peer.clone())
            .or_insert_with(|| (Instant::now(), false));
        if !*raised && since.elapsed() >= grace {
            *raised = true;
            inner.raise(
                AlarmKind::LinkDown,
                peer.as_str(),
                Some(&peer),
                None,
                crate::t!(
                    inner.config.station.language,
                    "alarm.link_down",
                    peer = peer
                ),
            );
        }
    }
}

/// Judges each peer's declared serials (see [`super::gaps`]): the journal
/// is read outside the lock, for the tracked span only.
fn gaps(inner: &Inner) {
    let spans: Vec<(StationName, (u64, u64))> = inner
        .gaps()
        .iter()
        .filter_map(|(p, t)| t.span().map(|span| (p.clone(), span)))
        .collect();
    let window = inner.config.link.retry_window;
    for (peer, (above, up_to)) in spans {
        let have = match inner.journal.received_serials(peer.as_str(), above, up_to) {
            Ok(have) => have,
            Err(e) => {
                tracing::error!(error = %e, "could not read the journal for the gap check");
                continue;
            }
        };
        let check = match inner.gaps().get_mut(&peer) {
            Some(tracker) => tracker.check(&have, Instant::now(), window),
            None => continue,
        };
        if check.missing.is_empty() {
            inner.resolve(AlarmKind::Gap, peer.as_str());
        } else if !check.newly.is_empty() {
            let lang = inner.config.station.language;
            let serials = super::gaps::describe(&check.missing);
            let text = match check.beyond {
                Some(declared) => crate::t!(
                    lang,
                    "alarm.gap_beyond",
                    serials = serials,
                    peer = peer,
                    declared = declared,
                    tracked = super::gaps::TRACKED_AHEAD
                ),
                None => crate::t!(lang, "alarm.gap", serials = serials, peer = peer),
            };
            inner.emit(Event::Gap {
                peer: peer.to_string(),
                serials: check.newly,
            });
            inner.raise(AlarmKind::Gap, peer.as_str(), Some(&peer), None, text);
        }
    }
}
