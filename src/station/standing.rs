//! What a peer says of its standing, and what we say of ours: hellos and
//! link tests carry the highest serial released, the serials cancelled and
//! the audit heads each side recorded; each is checked against the journal
//! and answered.

use std::sync::Arc;

use jiff::Timestamp;

use super::docs::{self, HelloBody, LinkTestBody};
use super::inbound::{audit, misbehaviour};
use super::{AlarmKind, Inner};
use crate::crypto::signed::Kind;
use crate::domain::{Language, REVISION, StationName};
use crate::link::HelloInfo;
use crate::store::audit::Head;
use crate::wire::{Frame, FrameKind};

/// A link test (or its answer) stating what we have released to `peer`,
/// what we cancelled, and our audit head.
pub fn link_test_body(
    inner: &Inner,
    peer: &StationName,
    nonce: String,
    reply: bool,
) -> LinkTestBody {
    let standing = standing(inner, peer);
    LinkTestBody {
        protocol: docs::protocol(),
        revision: REVISION,
        reply,
        nonce,
        from: inner.keys.name.clone(),
        to: peer.clone(),
        time: Timestamp::now(),
        highest_serial: standing.highest_serial,
        cancelled: standing.cancelled,
        audit_head: standing.audit_head,
        your_head: standing.your_head,
    }
}

/// What hellos and link tests both declare to `peer`: our highest serial
/// and the newest cancelled serials towards it (no more than its gap check
/// tracks, so that decades of cancellations do not outgrow a hello), our
/// audit head, and the newest head of its that we recorded.
struct Standing {
    highest_serial: u64,
    cancelled: Vec<u64>,
    audit_head: Option<Head>,
    your_head: Option<Head>,
}

fn standing(inner: &Inner, peer: &StationName) -> Standing {
    Standing {
        highest_serial: inner.journal.highest_released(peer.as_str()).unwrap_or(0),
        cancelled: inner
            .journal
            .cancelled_serials(peer.as_str(), super::gaps::TRACKED_AHEAD)
            .unwrap_or_default(),
        audit_head: inner.journal.audit_head().ok().flatten(),
        your_head: inner.journal.peer_head(peer.as_str()).ok().flatten(),
    }
}

/// Takes in what a hello or link test from `peer` declares: the serials it
/// released and cancelled (for gap checks), and the head of ours it
/// recorded (checked against our log).
pub(crate) fn declared(
    inner: &Inner,
    peer: &StationName,
    highest_serial: u64,
    cancelled: &[u64],
    your_head: Option<&Head>,
) {
    let declared = {
        let mut gaps = inner.gaps();
        let tracker = gaps.entry(peer.clone()).or_default();
        tracker.declare(highest_serial, cancelled, std::time::Instant::now());
        tracker.declared()
    };
    inner
        .health()
        .entry(peer.clone())
        .or_default()
        .declared_highest_serial = declared;
    check_recorded_head(inner, peer, your_head);
}

/// Checks that our audit log still holds the head of ours that `peer`
/// recorded (from our hellos and link tests). A log rewritten or truncated
/// together with its checkpoints still verifies on its own; this is what
/// catches it, as soon as the peer next speaks.
fn check_recorded_head(inner: &Inner, peer: &StationName, recorded: Option<&Head>) {
    let Some(head) = recorded else { return };
    let ours = match inner.journal.audit_hash_at(head.seq) {
        Ok(Some(hash)) if hash == head.hash => {
            super::restore::matched(inner, peer, head);
            return;
        }
        Ok(_) if super::restore::from_lost_history(inner, peer, head) => {
            let detail = format!(
                "peer={peer} recorded seq={} from the history lost with the restore",
                head.seq
            );
            tracing::warn!(%detail, "an audit head of ours the restored log cannot hold");
            drop(inner.journal.audit("station", "restore-head", &detail));
            return;
        }
        Ok(ours) => ours,
        Err(e) => {
            tracing::error!(error = %e, "could not read the audit log to check a peer's record");
            return;
        }
    };
    let hash = crate::sanitize::inert(&head.hash.chars().take(64).collect::<String>());
    let text = |lang: Language| match &ours {
        Some(ours) => crate::t!(
            lang,
            "alarm.audit_mismatch",
            peer = peer,
            seq = head.seq,
            hash = hash,
            ours = ours
        ),
        None => crate::t!(
            lang,
            "alarm.audit_mismatch_missing",
            peer = peer,
            seq = head.seq,
            hash = hash
        ),
    };
    static LOG: crate::logging::Limit = crate::logging::Limit::new();
    if let Some(held_back) = LOG.allow() {
        tracing::error!(%peer, held_back, "{}", text(Language::EN));
    }
    let detail = format!("peer={peer} seq={} hash={hash}", head.seq);
    for (action, detail) in misbehaviour(inner, peer.as_str(), "audit-mismatch", &detail) {
        drop(inner.journal.audit("station", action, &detail));
    }
    inner.raise(
        AlarmKind::AuditMismatch,
        peer.as_str(),
        Some(peer),
        None,
        text(inner.config.station.language),
    );
}

pub(super) fn hello(inner: &Inner, peer: &StationName) -> Vec<u8> {
    let standing = standing(inner, peer);
    let body = HelloBody {
        protocol: docs::protocol(),
        revision: REVISION,
        from: inner.keys.name.clone(),
        to: peer.clone(),
        time: Timestamp::now(),
        boot: inner.boot,
        highest_serial: standing.highest_serial,
        cancelled: standing.cancelled,
        audit_head: standing.audit_head,
        your_head: standing.your_head,
        your_serial: Some(inner.journal.highest_received(peer.as_str()).unwrap_or(0)),
        restored_from: super::restore::restored_from(inner),
    };
    docs::sign(
        Kind::Hello,
        &body,
        &inner.ours.link_signer(&inner.keys, peer),
    )
}

pub(super) fn hello_received(
    inner: &Arc<Inner>,
    peer: &StationName,
    payload: &[u8],
) -> Result<HelloInfo, String> {
    let keys = inner.peer(peer.as_str()).ok_or("not a configured peer")?;
    let body: HelloBody =
        docs::open(Kind::Hello, payload, &keys, &inner.keys.name).map_err(|e| e.to_string())?;
    super::rotation::seen(inner, peer, payload);
    super::restore::hello(inner, peer, body.your_serial, body.restored_from);
    let skew = Timestamp::now().duration_since(body.time);
    let skew_ms = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
    let bound = inner.config.link.max_clock_skew;
    declared(
        inner,
        peer,
        body.highest_serial,
        &body.cancelled,
        body.your_head.as_ref(),
    );
    inner
        .health()
        .entry(peer.clone())
        .or_default()
        .clock_skew_ms = Some(skew_ms);
    if skew_ms.unsigned_abs() > bound.as_millis() as u64 {
        inner.raise(
            AlarmKind::ClockSkew,
            peer.as_str(),
            Some(peer),
            None,
            crate::t!(
                inner.config.station.language,
                "alarm.clock_skew",
                peer = peer,
                skew = format!("{:.1}", skew_ms as f64 / 1000.0),
                bound = bound.as_secs()
            ),
        );
    } else {
        inner.resolve(AlarmKind::ClockSkew, peer.as_str());
    }
    Ok(HelloInfo { boot: body.boot })
}

/// Answers a peer's link test: what it declares is noted, the test is
/// recorded, and our reply says where we stand.
pub(super) async fn link_test(
    inner: &Arc<Inner>,
    peer: &StationName,
    sealed: Vec<u8>,
) -> Option<Frame> {
    let peer_keys = inner.peer(peer.as_str())?;
    let body = match docs::open_link_test(&sealed, &inner.keys, &peer_keys) {
        Ok(b) if !b.reply => b,
        Ok(_) => return None,
        Err(e) => {
            audit(
                inner,
                peer.as_str(),
                "refuse",
                &format!("peer={peer} link test rejected: {e}"),
            )
            .await;
            return None;
        }
    };
    declared(
        inner,
        peer,
        body.highest_serial,
        &body.cancelled,
        body.your_head.as_ref(),
    );
    if let Err(e) = inner
        .journal
        .record_link_test(
            peer.to_string(),
            false,
            body.nonce.clone(),
            None,
            sealed,
            body.audit_head.clone(),
        )
        .done()
        .await
    {
        tracing::error!(error = %e, "could not record a link test");
        return None;
    }
    let reply = link_test_body(inner, peer, body.nonce, true);
    let sealed = docs::seal_link_test(&reply, &inner.signer(peer), &peer_keys).ok()?;
    Some(Frame::new(FrameKind::LinkTestReply, sealed))
}
