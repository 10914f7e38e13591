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

use super::docs::{self, AckBody, ReceiptBody, ReceiptOf, RefusalBody, RefusalCode};
use super::{AlarmKind, Event, Inner, quota, standing};
use crate::crypto::signed::Kind;
use crate::crypto::{OpenError, PeerKeys, open_inbound};
use crate::domain::{MessageId, REVISION, StationName};
use crate::link::{HelloInfo, OfferAnswer};
use crate::store::Stored;
use crate::wire::{Frame, FrameKind};

/// The station's side of [`crate::link::Upcalls`]. Holds the station weakly
/// so a stopped station can be dropped while the link winds down.
pub struct Upcalls(pub Weak<Inner>);

impl crate::link::Upcalls for Upcalls {
    fn hello(&self, peer: &StationName) -> Vec<u8> {
        self.0
            .upgrade()
            .map(|inner| standing::hello(&inner, peer))
            .unwrap_or_default()
    }

    fn hello_received(&self, peer: &StationName, payload: &[u8]) -> Result<HelloInfo, String> {
        let inner = self.0.upgrade().ok_or("station stopped")?;
        standing::hello_received(&inner, peer, payload)
    }

    fn frame(&self, peer: StationName, frame: Frame) -> BoxFuture<'static, Option<Frame>> {
        let Some(inner) = self.0.upgrade() else {
            return async { None }.boxed();
        };
        async move {
            if inner.revoked(peer.as_str()) && frame.kind != FrameKind::Rotation {
                audit(
                    &inner,
                    peer.as_str(),
                    "refuse",
                    &format!(
                        "peer={peer} {:?} frame under a key reported compromised",
                        frame.kind
                    ),
                )
                .await;
                return None;
            }
            match frame.kind {
                FrameKind::Rotation => {
                    super::rotation::received(&inner, &peer, frame.payload).await
                }
                FrameKind::Message => message(&inner, &peer, frame.payload).await,
                FrameKind::Ack => ack(&inner, &peer, frame.payload).await,
                FrameKind::LinkTest => standing::link_test(&inner, &peer, frame.payload).await,
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

/// The audit entries that what `peer` did wrong comes to, at the bounded
/// rate of [`super::noisy`]: the summary of a window that ended, and the
/// entry itself unless it is only counted.
pub(super) fn misbehaviour<'a>(
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

/// Audits what `peer` did wrong, at the bounded rate of [`super::noisy`].
pub(super) async fn audit(inner: &Inner, peer: &str, action: &str, detail: &str) {
    for (action, detail) in misbehaviour(inner, peer, action, detail) {
        if let Err(e) = inner.journal.audit("station", action, &detail).done().await {
            tracing::error!(error = %e, "could not write an audit entry");
        }
    }
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
        crate::t!(
            inner.config.station.language,
            "alarm.original_differs",
            peer = peer,
            serial = serial
        ),
    );
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
        docs::sign(Kind::Refusal, &body, &inner.signer(&peer.name)),
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
    docs::sign(Kind::Receipt, &body, &inner.signer(peer))
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
    if let Some(detail) = quota::over_quota(inner, peer, declared) {
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
    if let Some(detail) = super::amends::foreign(inner, &m) {
        let noted = format!("peer={peer} id={} code=bad-reference", m.id);
        return Some(
            refuse(
                inner,
                &peer_keys,
                m.id,
                RefusalCode::BadReference,
                detail,
                &noted,
            )
            .await,
        );
    }
    let amended = super::amends::target(inner, &m);
    let short = inner
        .catalog
        .get(&m.template.id, m.template.version)
        .and_then(|t| t.short_notice(&m.fields, Timestamp::now(), inner.config.station.language))
        .map(|why| (m.id, m.serial, why));
    let id = m.id;
    let doc = receipt(inner, peer, ReceiptOf::Message, m.id, None, Some(&sealed));
    inner.subjects.note(inner, &m);
    // One message, one text: an original that says something its signed
    // fields do not is stored and receipted as usual, but flagged.
    let differs = matches!(
        crate::templates::check_original(&m, inner.catalog, inner.config.station.language),
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
            quota::count_kept(inner, peer, declared);
            inner.emit(event);
            if let Some(earlier) = amended {
                inner.changed(&earlier);
            }
            if let Some((id, serial, why)) = short {
                inner.raise(
                    AlarmKind::ShortNotice,
                    &id.to_string(),
                    Some(peer),
                    Some(id),
                    crate::t!(
                        inner.config.station.language,
                        "alarm.short_notice",
                        peer = peer,
                        serial = serial,
                        why = why
                    ),
                );
            }
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
            let text = crate::t!(
                inner.config.station.language,
                "alarm.conflicting_id",
                peer = peer,
                id = id,
                reason = reason
            );
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
        Err(crate::store::StoreError::NotFound(_)) if super::restore::active(inner) => {
            // A message released after the backup this station was
            // restored from: the peer holds it, and we no longer do.
            audit(
                inner,
                peer.as_str(),
                "restore-lost-ack",
                &format!(
                    "peer={peer} acknowledged {}, a message lost with the restore",
                    body.id
                ),
            )
            .await;
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
