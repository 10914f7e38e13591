//! What arrives from a peer: hellos, messages, acknowledgements and link
//! tests. A message is opened and verified, checked against its template,
//! stored durably, and only then answered with a signed receipt — the
//! receipt promises that our journal has it. Anything refused is answered
//! with a signed refusal and audited.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use jiff::Timestamp;

use super::docs::{
    self, AckBody, HelloBody, LinkTestBody, ReceiptBody, ReceiptOf, RefusalBody, RefusalCode,
};
use super::{AlarmKind, Event, Inner};
use crate::crypto::signed::Kind;
use crate::crypto::{OpenError, PeerKeys, open_inbound};
use crate::domain::{MessageId, REVISION, StationName};
use crate::link::{HelloInfo, OfferAnswer};
use crate::store::Stored;
use crate::store::audit::Head;
use crate::wire::{Frame, FrameKind};

/// The station's side of [`crate::link::Upcalls`]. Holds the station weakly
/// so a stopped station can be dropped while the link winds down.
pub struct Upcalls(pub Weak<Inner>);

impl crate::link::Upcalls for Upcalls {
    fn hello(&self, peer: &StationName) -> Vec<u8> {
        self.0
            .upgrade()
            .map(|inner| hello(&inner, peer))
            .unwrap_or_default()
    }

    fn hello_received(&self, peer: &StationName, payload: &[u8]) -> Result<HelloInfo, String> {
        let inner = self.0.upgrade().ok_or("station stopped")?;
        hello_received(&inner, peer, payload)
    }

    fn frame(&self, peer: StationName, frame: Frame) -> BoxFuture<'static, Option<Frame>> {
        let Some(inner) = self.0.upgrade() else {
            return async { None }.boxed();
        };
        async move {
            match frame.kind {
                FrameKind::Message => message(&inner, &peer, frame.payload).await,
                FrameKind::Ack => ack(&inner, &peer, frame.payload).await,
                FrameKind::LinkTest => link_test(&inner, &peer, frame.payload).await,
                other => {
                    audit(
                        &inner,
                        peer.as_str(),
                        "malformed",
                        &format!("peer={peer} unexpected {other:?} frame"),
                    )
                    .await;
                    None
                }
            }
        }
        .boxed()
    }

    fn attachment(&self, peer: StationName, offer: Frame) -> BoxFuture<'static, OfferAnswer> {
        let Some(inner) = self.0.upgrade() else {
            return async { OfferAnswer::Ignore }.boxed();
        };
        async move { super::attachments::offered(&inner, &peer, &offer).await }.boxed()
    }

    fn join(&self, key: VerifyingKey, remote: SocketAddr, request: Frame) -> Frame {
        match self.0.upgrade() {
            Some(inner) => super::admission::answer(&inner, key, remote, &request),
            None => Frame::new(FrameKind::Refusal, Vec::new()),
        }
    }
}

/// Whether keeping `adding` more bytes from `peer` would pass its quota or
/// the station's (see `attachments.peer_quota` and `total_quota`): why, if
/// so. The storage alarm goes up at 90% of either and comes down below it.
pub(super) fn over_quota(inner: &Inner, peer: &StationName, adding: u64) -> Option<String> {
    let limits = inner.config.attachments;
    let (from_peer, in_all) = {
        let mut kept = inner
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut of = |whose: Option<&StationName>| {
            *kept.entry(whose.cloned()).or_insert_with(|| {
                inner
                    .journal
                    .inbound_bytes(whose.map(StationName::as_str))
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "could not read what the journal keeps");
                        0
                    })
            })
        };
        (of(Some(peer)), of(None))
    };
    let size = crate::domain::format_size;
    let over = if from_peer.saturating_add(adding) > limits.peer_quota {
        Some(format!(
            "this station keeps {} from {peer}, and its quota for one peer is {}",
            size(from_peer),
            size(limits.peer_quota)
        ))
    } else if in_all.saturating_add(adding) > limits.total_quota {
        Some(format!(
            "this station keeps {} in all, and its quota is {}",
            size(in_all),
            size(limits.total_quota)
        ))
    } else {
        None
    };
    let near = |kept: u64, quota: u64| kept.saturating_add(adding) >= quota / 10 * 9;
    if over.is_some() || near(from_peer, limits.peer_quota) || near(in_all, limits.total_quota) {
        inner.raise(
            AlarmKind::Storage,
            "quota",
            Some(peer),
            None,
            format!(
                "storage near its quota: {} kept from {peer} (quota {}), {} in all (quota {})",
                size(from_peer),
                size(limits.peer_quota),
                size(in_all),
                size(limits.total_quota)
            ),
        );
    } else {
        inner.resolve(AlarmKind::Storage, "quota");
    }
    over
}

/// The audit entries that what `peer` did wrong comes to, at the bounded
/// rate of [`super::noisy`]: the summary of a window that ended, and the
/// entry itself unless it is only counted.
fn misbehaviour<'a>(
    inner: &Inner,
    peer: &str,
    action: &'a str,
    detail: &str,
) -> Vec<(&'a str, String)> {
    let (write, ended) = inner.noisy().note(peer, action, std::time::Instant::now());
    ended
        .map(|summary| ("peer-misbehaviour-counted", summary))
        .into_iter()
        .chain(write.then(|| (action, detail.to_string())))
        .collect()
}

/// Counts `bytes` more kept from `peer`, where the quota check has read
/// the journal's count already.
fn count_kept(inner: &Inner, peer: &StationName, bytes: u64) {
    let mut kept = inner
        .kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for whose in [Some(peer.clone()), None] {
        if let Some(n) = kept.get_mut(&whose) {
            *n = n.saturating_add(bytes);
        }
    }
}

/// Audits what `peer` did wrong, at the bounded rate of [`super::noisy`].
pub(super) async fn audit(inner: &Inner, peer: &str, action: &str, detail: &str) {
    for (action, detail) in misbehaviour(inner, peer, action, detail) {
        if let Err(e) = inner.journal.audit("station", action, &detail).done().await {
            tracing::error!(error = %e, "could not write an audit entry");
        }
    }
}

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
    let problem = match inner.journal.audit_hash_at(head.seq) {
        Ok(Some(hash)) if hash == head.hash => return,
        Ok(Some(hash)) => format!("our entry {} is {hash}", head.seq),
        Ok(None) => format!("our log has no entry {}", head.seq),
        Err(e) => {
            tracing::error!(error = %e, "could not read the audit log to check a peer's record");
            return;
        }
    };
    let hash = crate::sanitize::inert(&head.hash.chars().take(64).collect::<String>());
    let text = format!(
        "{peer} recorded our audit entry {} as {hash}, but {problem}: this station's audit \
         log was altered or cut short; check with `hotline audit verify --head {}:{hash}`",
        head.seq, head.seq
    );
    static LOG: crate::logging::Limit = crate::logging::Limit::new();
    if let Some(held_back) = LOG.allow() {
        tracing::error!(%peer, held_back, "{text}");
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
        text,
    );
}

/// A stored message whose original differs from its fields: audited, and
/// an alarm until an operator, having read both, clears it.
async fn original_differs(inner: &Inner, peer: &StationName, id: MessageId, serial: u64) {
    static LOG: crate::logging::Limit = crate::logging::Limit::new();
    if let Some(held_back) = LOG.allow() {
        tracing::warn!(held_back, %peer, %id, "the original of a received message differs from its fields");
    }
    // Audited before the receipt leaves.
    if let Err(e) = inner
        .journal
        .audit(
            "station",
            "original-differs",
            &format!("peer={peer} id={id}"),
        )
        .done()
        .await
    {
        tracing::error!(error = %e, "the original-differs audit entry was not written");
    }
    inner.raise(
        AlarmKind::OriginalDiffers,
        &id.to_string(),
        Some(peer),
        Some(id),
        format!(
            "{peer}/{serial}: the sender's original differs from its signed fields; read both in the message view"
        ),
    );
}

pub fn hello(inner: &Inner, peer: &StationName) -> Vec<u8> {
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
    };
    docs::sign(Kind::Hello, &body, &inner.keys)
}

fn hello_received(inner: &Inner, peer: &StationName, payload: &[u8]) -> Result<HelloInfo, String> {
    let keys = inner.peer(peer.as_str()).ok_or("not a configured peer")?;
    let body: HelloBody =
        docs::open(Kind::Hello, payload, &keys, &inner.keys.name).map_err(|e| e.to_string())?;
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
            format!(
                "{peer}'s clock differs from ours by {:.1} s (bound {} s)",
                skew_ms as f64 / 1000.0,
                bound.as_secs()
            ),
        );
    } else {
        inner.resolve(AlarmKind::ClockSkew, peer.as_str());
    }
    Ok(HelloInfo { boot: body.boot })
}

/// Refuses message `id`: audited (`noted` never carries message text), then
/// answered with a signed refusal.
async fn refuse(
    inner: &Inner,
    peer: &PeerKeys,
    id: MessageId,
    code: RefusalCode,
    detail: String,
    noted: &str,
) -> Frame {
    audit(inner, peer.name.as_str(), "refuse", noted).await;
    refusal(inner, peer, Some(id), None, code, detail)
}

/// A signed refusal of message `id` (or of one of its attachments).
pub(super) fn refusal(
    inner: &Inner,
    peer: &PeerKeys,
    id: Option<MessageId>,
    attachment: Option<u32>,
    code: RefusalCode,
    detail: String,
) -> Frame {
    let body = RefusalBody {
        protocol: docs::protocol(),
        revision: REVISION,
        id,
        attachment,
        from: inner.keys.name.clone(),
        to: peer.name.clone(),
        code,
        detail,
    };
    Frame::new(
        FrameKind::Refusal,
        docs::sign(Kind::Refusal, &body, &inner.keys),
    )
}

/// How late the commit comes under [`super::Options::receipt_before_commit`]:
/// long enough that a crash after the receipt loses the message.
const UNSAFE_COMMIT_DELAY: Duration = Duration::from_millis(500);

/// A signed receipt for message `id` (or its acknowledgement, or one of its
/// attachments).
pub(super) fn receipt(
    inner: &Inner,
    peer: &StationName,
    of: ReceiptOf,
    id: MessageId,
    attachment: Option<u32>,
    sealed: Option<&[u8]>,
) -> Vec<u8> {
    let body = ReceiptBody {
        sealed_sha256: sealed.map(docs::sealed_sha256),
        protocol: docs::protocol(),
        revision: REVISION,
        of,
        id,
        attachment,
        from: inner.keys.name.clone(),
        to: peer.clone(),
        stored_at: Timestamp::now(),
    };
    docs::sign(Kind::Receipt, &body, &inner.keys)
}

fn code_for(e: &OpenError) -> RefusalCode {
    match e {
        OpenError::NotForUs | OpenError::WrongRecipient { .. } => RefusalCode::NotForUs,
        OpenError::BadSignature(_)
        | OpenError::UnknownSender(_)
        | OpenError::WrongSender { .. } => RefusalCode::BadSignature,
        OpenError::TooLarge { .. } => RefusalCode::Oversize,
        OpenError::Tampered(_) | OpenError::Malformed(_) => RefusalCode::Malformed,
        OpenError::UnsupportedRevision { .. } => RefusalCode::UnsupportedRevision,
    }
}

async fn message(inner: &Arc<Inner>, peer: &StationName, sealed: Vec<u8>) -> Option<Frame> {
    let peer_keys = inner.peer(peer.as_str())?;
    let opened = {
        let (me, sealed) = (inner.clone(), sealed.clone());
        let work = move || open_inbound(&sealed, &me.keys, |n| me.peer(n));
        inner.pool.run(super::pool::Urgency::Unknown, work).await
    };
    let opened = match opened {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            let code = code_for(&e);
            audit(
                inner,
                peer.as_str(),
                "refuse",
                &format!("peer={peer} code={} reason={e}", code.as_str()),
            )
            .await;
            return Some(refusal(inner, &peer_keys, None, None, code, e.to_string()));
        }
        Err(e) => {
            static LOG: crate::logging::Limit = crate::logging::Limit::new();
            if let Some(held_back) = LOG.allow() {
                tracing::error!(held_back, error = %e, "could not open a message");
            }
            return None;
        }
    };
    let m = opened.message;
    let declared = m
        .attachments
        .iter()
        .fold(sealed.len() as u64, |sum, a| sum.saturating_add(a.size));
    if let Some(detail) = over_quota(inner, peer, declared) {
        let noted = format!("peer={peer} id={} code=oversize reason=quota", m.id);
        return Some(
            refuse(
                inner,
                &peer_keys,
                m.id,
                RefusalCode::Oversize,
                detail,
                &noted,
            )
            .await,
        );
    }
    // The connection authenticated `peer`; the signature must be theirs too.
    if m.from != *peer {
        let detail = format!("signed by {} but the connection is {peer}'s", m.from);
        let noted = format!("peer={peer} id={} code=bad-signature reason={detail}", m.id);
        return Some(
            refuse(
                inner,
                &peer_keys,
                m.id,
                RefusalCode::BadSignature,
                detail,
                &noted,
            )
            .await,
        );
    }
    if let Some(template) = inner.catalog.get(&m.template.id, m.template.version)
        && let Err(errors) = template.check_values(&m.fields)
    {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let noted = format!("peer={peer} id={} code=unknown-template-field", m.id);
        return Some(
            refuse(
                inner,
                &peer_keys,
                m.id,
                RefusalCode::UnknownTemplateField,
                detail,
                &noted,
            )
            .await,
        );
    }
    let id = m.id;
    let doc = receipt(inner, peer, ReceiptOf::Message, m.id, None, Some(&sealed));
    inner.subjects.note(inner, &m);
    // One message, one text: an original that says something its signed
    // fields do not is stored and receipted as usual, but flagged.
    let differs = matches!(
        crate::templates::check_original(&m, inner.catalog),
        crate::templates::OriginalCheck::Differs { .. }
    )
    .then_some((m.id, m.serial));
    let event = Event::Received {
        id: m.id,
        from: peer.to_string(),
        serial: m.serial,
        precedence: m.precedence,
        exercise: m.exercise,
        template: m.template.id.clone(),
    };
    if inner.options.receipt_before_commit {
        let (inner, receipt) = (inner.clone(), doc.clone());
        tokio::spawn(async move {
            tokio::time::sleep(UNSAFE_COMMIT_DELAY).await;
            let stored = inner.journal.store_inbound(m, sealed, receipt).done();
            if let Ok(Stored::New) = stored.await {
                inner.emit(event);
            }
        });
        return Some(Frame::new(FrameKind::Receipt, doc));
    }
    match inner
        .journal
        .store_inbound(m, sealed, doc.clone())
        .done()
        .await
    {
        Ok(Stored::New) => {
            count_kept(inner, peer, declared);
            inner.emit(event);
            if let Some((id, serial)) = differs {
                original_differs(inner, peer, id, serial).await;
            }
            Some(Frame::new(FrameKind::Receipt, doc))
        }
        Ok(Stored::Duplicate { receipt }) => Some(Frame::new(FrameKind::Receipt, receipt)),
        Ok(Stored::Conflict { reason }) => {
            // The sender holds no receipt for what it sent: it is refused,
            // so that nothing claims a delivery that did not happen.
            audit(
                inner,
                peer.as_str(),
                "conflicting-id",
                &format!("peer={peer} id={id} reason={reason}"),
            )
            .await;
            let text = format!("{peer} sent message {id} under an id already taken: {reason}");
            inner.raise(
                AlarmKind::ConflictingId,
                &id.to_string(),
                Some(peer),
                None,
                text,
            );
            Some(refusal(
                inner,
                &peer_keys,
                Some(id),
                None,
                RefusalCode::Malformed,
                format!("message id {id} is taken here: {reason}"),
            ))
        }
        Err(e) => {
            // Not stored, so no receipt: the stream closes unanswered and
            // the sender retries.
            tracing::error!(error = %e, "could not store an inbound message");
            None
        }
    }
}

async fn ack(inner: &Arc<Inner>, peer: &StationName, doc: Vec<u8>) -> Option<Frame> {
    let peer_keys = inner.peer(peer.as_str())?;
    let body: AckBody = match docs::open(Kind::Ack, &doc, &peer_keys, &inner.keys.name) {
        Ok(b) => b,
        Err(e) => {
            audit(
                inner,
                peer.as_str(),
                "refuse",
                &format!("peer={peer} ack rejected: {e}"),
            )
            .await;
            return None;
        }
    };
    if let Some(named) = &body.sealed_sha256 {
        let ours = inner
            .journal
            .sealed(&body.id)
            .map(|s| docs::sealed_sha256(&s));
        if ours.as_ref().is_ok_and(|ours| ours != named) {
            let detail = format!("the acknowledgement of {} names other content", body.id);
            audit(
                inner,
                peer.as_str(),
                "refuse",
                &format!("peer={peer} {detail}"),
            )
            .await;
            return Some(refusal(
                inner,
                &peer_keys,
                Some(body.id),
                None,
                RefusalCode::Malformed,
                detail,
            ));
        }
    }
    match inner
        .journal
        .record_peer_ack(
            body.id,
            peer.to_string(),
            body.operator.to_string(),
            body.at,
            doc,
        )
        .done()
        .await
    {
        Ok(news) => {
            if news {
                inner.emit(Event::Acknowledged {
                    id: body.id,
                    peer: peer.to_string(),
                    by: body.operator.to_string(),
                    at: body.at.to_string(),
                });
            }
            Some(Frame::new(
                FrameKind::Receipt,
                receipt(inner, peer, ReceiptOf::Ack, body.id, None, None),
            ))
        }
        Err(e) => {
            audit(
                inner,
                peer.as_str(),
                "refuse",
                &format!("peer={peer} ack for {}: {e}", body.id),
            )
            .await;
            // An acknowledgement that can never apply (no such message, or
            // one refused or cancelled) is refused, so that the peer stops
            // sending it; a failure of our own journal is left for a retry.
            matches!(
                e,
                crate::store::StoreError::Rejected(_) | crate::store::StoreError::NotFound(_)
            )
            .then(|| {
                refusal(
                    inner,
                    &peer_keys,
                    Some(body.id),
                    None,
                    RefusalCode::Malformed,
                    e.to_string(),
                )
            })
        }
    }
}

async fn link_test(inner: &Arc<Inner>, peer: &StationName, sealed: Vec<u8>) -> Option<Frame> {
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
    let sealed = docs::seal_link_test(&reply, &inner.keys, &peer_keys).ok()?;
    Some(Frame::new(FrameKind::LinkTestReply, sealed))
}
