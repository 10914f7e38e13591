//! Key rotation, on both sides of the link.
//!
//! **Ours.** After `hotline rekey`, the station holds new keys and the old
//! ones. To each peer that pinned the old keys it sends a notice signed by
//! both ([`crate::crypto::rotation`]), again every [`ROTATION_POLL`] while
//! the link is up, until the peer answers that an operator there confirmed
//! the new fingerprint. Until then it keeps signing with the old key
//! towards that peer, and presents it in TLS: the old key keeps working. A
//! *compromised* old key signs nothing but the link's handshake, hello and
//! the notice itself (the only thing a peer that pins it can verify), and
//! only until the peer holds the notice; messages to that peer are signed
//! with the new key and wait for the confirmation.
//!
//! **Theirs.** A peer's notice is verified against the key pinned for it,
//! held in the journal (audited), and shown as an alarm with the new
//! fingerprint until an operator confirms it (`hotline peer confirm`). Only
//! then is the new key pinned; the old one is still accepted until the peer
//! is seen using the new one. A notice that says the old key was
//! compromised revokes it at once (the link refuses it), and every message
//! from that peer this station stored after the time it names (by this
//! station's own clock) and signed with that key is marked suspect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;

use super::docs::{self, RotationAnswerBody, RotationState};
use super::{AlarmKind, Event, Inner, StationError};
use crate::crypto::card::StationCard;
use crate::crypto::keys::{same_fingerprint, signing_key_text};
use crate::crypto::rotation::{notice, open_notice};
use crate::crypto::signed::{self, Kind};
use crate::crypto::{PeerKeys, StationKeys};
use crate::domain::{OperatorName, REVISION, StationName, stamp};
use crate::store::{Answered, Journal, PeerRotation, Standing, StoreError};
use crate::wire::{Frame, FrameKind};

/// How often a rotation notice is sent again to a peer that has not
/// confirmed it, while the link is up.
pub const ROTATION_POLL: Duration = Duration::from_secs(2);

/// How long a connection made with a key just reported compromised stays
/// open, for the answer to the notice to reach the peer.
const REVOKED_GRACE: Duration = Duration::from_secs(1);

/// This station's newest rotation, and where each peer stands with it.
pub(crate) struct Ours {
    notice: Option<Vec<u8>>,
    fingerprint: String,
    /// The keys as they stood before the newest rotation.
    before: Option<Arc<StationKeys>>,
    compromised: bool,
    answers: Mutex<HashMap<StationName, Answered>>,
}

impl Ours {
    pub(crate) fn load(keys: &StationKeys, journal: &Journal) -> Result<Ours, StoreError> {
        let fingerprint = keys.public().fingerprint();
        let answers = if keys.retired.is_empty() {
            HashMap::new()
        } else {
            journal.rotation_answers(&fingerprint)?
        };
        Ok(Ours {
            notice: notice(keys),
            fingerprint,
            before: keys.before_rotation().map(Arc::new),
            compromised: keys
                .retired
                .last()
                .is_some_and(|r| r.compromised_since.is_some()),
            answers: Mutex::new(answers),
        })
    }

    fn answer(&self, peer: &StationName) -> Option<Answered> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .copied()
    }

    /// The keys this station signs its documents to `peer` with: the old
    /// ones until the peer confirms, unless they are compromised.
    pub(crate) fn doc_signer(
        &self,
        current: &Arc<StationKeys>,
        peer: &StationName,
    ) -> Arc<StationKeys> {
        match (&self.before, self.answer(peer)) {
            (Some(before), Some(Answered::Pending | Answered::Held)) if !self.compromised => {
                before.clone()
            }
            _ => current.clone(),
        }
    }

    /// The keys this station presents to `peer` on the link (TLS and
    /// hello): the old ones until the peer confirms, or, when they are
    /// compromised, until it holds the notice.
    pub(crate) fn link_signer(
        &self,
        current: &Arc<StationKeys>,
        peer: &StationName,
    ) -> Arc<StationKeys> {
        match (&self.before, self.answer(peer)) {
            (Some(before), Some(Answered::Pending)) => before.clone(),
            (Some(before), Some(Answered::Held)) if !self.compromised => before.clone(),
            _ => current.clone(),
        }
    }

    /// Whether traffic may go to `peer`: not while it pins a compromised
    /// key of ours (it could not verify the new one yet).
    pub(crate) fn may_send(&self, peer: &StationName) -> bool {
        !(self.before.is_some()
            && self.compromised
            && matches!(self.answer(peer), Some(Answered::Pending | Answered::Held)))
    }

    fn announcing(&self, peer: &StationName) -> bool {
        self.notice.is_some()
            && matches!(self.answer(peer), Some(Answered::Pending | Answered::Held))
    }

    /// Where `peer` stands with our newest rotation, for the status.
    pub(crate) fn standing(&self, peer: &StationName) -> Option<String> {
        self.before.as_ref()?;
        Some(
            match self.answer(peer)? {
                Answered::Pending => "our new keys: notice not yet delivered",
                Answered::Held => "our new keys: awaiting their confirmation",
                Answered::Confirmed => return None,
            }
            .to_string(),
        )
    }
}

/// Sends our rotation notice to `peer` whenever the link is up, until the
/// peer confirms it.
pub(crate) async fn announce(inner: Arc<Inner>, peer: StationName) {
    let (Some(link), Some(notice)) = (inner.link(), inner.ours.notice.clone()) else {
        return;
    };
    let Some(mut up) = link.watch_up(&peer) else {
        return;
    };
    let mut stop = inner.stop.subscribe();
    while inner.ours.announcing(&peer) {
        if !super::outbox::until_up(&mut up, &mut stop).await {
            return;
        }
        let frame = Frame::new(FrameKind::Rotation, notice.clone());
        match link
            .request(&peer, &frame, i32::MAX - 1, super::MESSAGE_TIMEOUT)
            .await
        {
            Ok(answer) => {
                if let Err(e) = answered(&inner, &peer, answer).await {
                    tracing::warn!(%peer, error = %e, "a rotation notice was not answered as expected");
                }
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "rotation notice not delivered; will retry")
            }
        }
        if !inner.ours.announcing(&peer) {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(ROTATION_POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A peer's answer to our notice: recorded; once it holds or confirms
/// it, the link changes to the keys that apply.
async fn answered(inner: &Inner, peer: &StationName, answer: Frame) -> Result<(), String> {
    if answer.kind != FrameKind::RotationAnswer {
        return Err(format!("answered with a {:?} frame", answer.kind));
    }
    let keys = inner.peer(peer.as_str()).ok_or("not a peer")?;
    let body: RotationAnswerBody = docs::open(
        Kind::RotationAnswer,
        &answer.payload,
        &keys,
        &inner.keys.name,
    )
    .map_err(|e| e.to_string())?;
    let answered = match body.state {
        RotationState::Held => Answered::Held,
        RotationState::Confirmed => Answered::Confirmed,
        RotationState::Refused => {
            let reason = crate::sanitize::inert(body.reason.as_deref().unwrap_or(""));
            inner.raise(
                AlarmKind::KeyRotation,
                &format!("ours:{peer}"),
                Some(peer),
                None,
                format!("{peer} REFUSED our key rotation notice: {reason}"),
            );
            return Err(format!("refused: {reason}"));
        }
    };
    if !same_fingerprint(&body.fingerprint, &inner.ours.fingerprint) {
        return Err("the answer is about another fingerprint".into());
    }
    let news = inner
        .journal
        .record_rotation_answer(
            peer.to_string(),
            inner.ours.fingerprint.clone(),
            answered,
            answer.payload,
        )
        .done()
        .await
        .map_err(|e| e.to_string())?;
    if !news {
        return Ok(());
    }
    inner
        .ours
        .answers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(peer.clone(), answered);
    tracing::info!(%peer, ?answered, "our key rotation was answered");
    inner.emit(Event::KeysChanged {
        peer: peer.to_string(),
        what: match answered {
            Answered::Confirmed => "confirmed our new keys",
            _ => "holds our key rotation notice",
        }
        .into(),
    });
    let present = inner.ours.link_signer(&inner.keys, peer);
    if let Some(link) = inner.link() {
        link.change_keys(
            peer,
            keys.accepted(),
            &present.signing,
            Some("our key rotation moved on"),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Records the newest rotation of `keys` in the journal, unless it is:
/// the audit entry that lets `audit verify` accept checkpoints signed with
/// the old key, and the peers configured now as the ones that pin the old
/// keys. `hotline rekey` does it; a station started on keys whose rotation
/// was not recorded (the command stopped half-way) does it then. The
/// write, if one is needed, is durable when the returned one completes.
pub fn record_rekey(
    journal: &Journal,
    keys: &StationKeys,
    config: &crate::config::Config,
) -> Result<Option<crate::store::Pending<()>>, StationError> {
    let Some(old) = keys.retired.last() else {
        return Ok(None);
    };
    let new_key = signing_key_text(&keys.signing.verifying_key());
    if journal.rekey_recorded(&new_key)? {
        return Ok(None);
    }
    let fingerprint = keys.public().fingerprint();
    let detail = format!(
        "old_key={} new_key={new_key} fingerprint={} retired_at={}{}",
        signing_key_text(&old.signing.verifying_key()),
        fingerprint.replace(' ', ""),
        stamp(old.retired_at),
        old.compromised_since
            .map(|t| format!(" compromised_since={}", stamp(t)))
            .unwrap_or_default()
    );
    let peers = config
        .peers
        .iter()
        .map(|p| p.keys.name.to_string())
        .collect();
    Ok(Some(journal.record_rekey(detail, peers, fingerprint)))
}

/// What is pinned for a configured peer once the rotations its journal
/// holds are applied: its keys, every key it had before, and whether the
/// pinned key was reported compromised (and nothing confirmed since).
pub(crate) struct Pinned {
    pub keys: PeerKeys,
    pub history: Vec<VerifyingKey>,
    pub revoked: bool,
}

pub(crate) fn pinned(journal: &Journal, configured: &PeerKeys) -> Result<Pinned, StationError> {
    let mut keys = configured.clone();
    let mut history = Vec::new();
    let mut revoked = false;
    for r in journal.peer_rotations(configured.name.as_str())? {
        if r.old_key != signing_key_text(&keys.signing) {
            continue;
        }
        match r.standing {
            Standing::Pending => revoked |= r.compromised_since.is_some(),
            Standing::Confirmed | Standing::Complete => {
                let (_, mut next) = StationCard::parse(&r.card, "a held rotation notice")
                    .map_err(|e| StationError::Refused(e.to_string()))?;
                if r.standing == Standing::Confirmed && r.compromised_since.is_none() {
                    next.handover = vec![keys.signing];
                }
                history.push(keys.signing);
                keys = next;
                revoked = false;
            }
        }
    }
    Ok(Pinned {
        keys,
        history,
        revoked,
    })
}

/// Our answer to a peer's notice, signed.
fn answer(
    inner: &Inner,
    peer: &StationName,
    fingerprint: String,
    state: RotationState,
    reason: Option<String>,
) -> Frame {
    let body = RotationAnswerBody {
        protocol: docs::protocol(),
        revision: REVISION,
        from: inner.keys.name.clone(),
        to: peer.clone(),
        fingerprint,
        state,
        reason,
        time: Timestamp::now(),
    };
    let signer = inner.ours.doc_signer(&inner.keys, peer);
    Frame::new(
        FrameKind::RotationAnswer,
        docs::sign(Kind::RotationAnswer, &body, &signer),
    )
}

/// A rotation notice from `peer`: verified, held, and answered.
///
/// A notice for the keys pinned now, or held pending, is answered with
/// where it stands (the peer asks until it hears "confirmed"); one for keys
/// since replaced is a replay and refused. A new one must be signed with
/// the key pinned now.
pub(super) async fn received(inner: &Inner, peer: &StationName, payload: Vec<u8>) -> Option<Frame> {
    let pinned = inner.peer(peer.as_str())?;
    let any_key = inner.peer_as_stored(peer.as_str())?;
    let refuse = |reason: String| async move {
        let shown = crate::sanitize::inert(&reason);
        tracing::warn!(%peer, reason = %shown, "refused a key rotation notice");
        super::inbound::audit(
            inner,
            peer.as_str(),
            "key-rotation-refused",
            &format!("peer={peer} reason={shown}"),
        )
        .await;
        Some(answer(
            inner,
            peer,
            String::new(),
            RotationState::Refused,
            Some(reason),
        ))
    };
    let opened = match open_notice(&payload, &any_key) {
        Ok(n) => n,
        Err(e) => return refuse(e.to_string()).await,
    };
    let fingerprint = opened.fingerprint();
    let held = match inner.journal.peer_rotations(peer.as_str()) {
        Ok(held) => held,
        Err(e) => {
            tracing::error!(error = %e, "could not read the held rotations");
            return None;
        }
    };
    if let Some(r) = held.iter().find(|r| r.fingerprint == fingerprint) {
        let state = match r.standing {
            Standing::Pending => RotationState::Held,
            _ if fingerprint == pinned.fingerprint() => RotationState::Confirmed,
            _ => {
                return refuse(format!(
                    "the notice announces keys {fingerprint}, which {peer} has since replaced: a replayed notice"
                ))
                .await;
            }
        };
        return Some(answer(inner, peer, fingerprint, state, None));
    }
    if opened.keys.signing == pinned.signing {
        // Pinned already (from its new card, say): nothing to hold.
        return Some(answer(
            inner,
            peer,
            fingerprint,
            RotationState::Confirmed,
            None,
        ));
    }
    if opened.old_key != pinned.signing {
        return refuse(format!(
            "the notice is signed with {}, not the key pinned for {peer} now: a stale or replayed notice",
            signing_key_text(&opened.old_key)
        ))
        .await;
    }
    let rotation = PeerRotation {
        peer: peer.to_string(),
        fingerprint: fingerprint.clone(),
        old_key: signing_key_text(&opened.old_key),
        card: opened.card.to_toml(),
        notice: payload,
        received_at: Timestamp::now(),
        compromised_since: opened.compromised_since,
        standing: Standing::Pending,
    };
    if let Err(e) = inner.journal.hold_rotation(rotation).done().await {
        tracing::error!(error = %e, "could not hold a rotation notice; the peer sends it again");
        return None;
    }
    match opened.compromised_since {
        Some(since) => revoke(inner, peer, &opened.old_key, since, &fingerprint).await,
        None => inner.raise(
            AlarmKind::KeyRotation,
            peer.as_str(),
            Some(peer),
            None,
            format!(
                "{peer} announced new keys, fingerprint {fingerprint}. Check it with {peer} out of band, \
                 then confirm: hotline peer confirm {peer} \"{fingerprint}\". Until then its old key stays in use"
            ),
        ),
    }
    inner.emit(Event::KeysChanged {
        peer: peer.to_string(),
        what: format!("announced new keys, fingerprint {fingerprint}"),
    });
    Some(answer(inner, peer, fingerprint, RotationState::Held, None))
}

/// `peer` says `key` was compromised since `since`: the link refuses it
/// from now on, and what this station stored from the peer after `since`
/// and signed with it is marked suspect.
async fn revoke(
    inner: &Inner,
    peer: &StationName,
    key: &VerifyingKey,
    since: Timestamp,
    fingerprint: &str,
) {
    if let Some(state) = inner
        .peers
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .get_mut(peer)
    {
        state.revoked = true;
    }
    if let Some(link) = inner.link() {
        let present = inner.ours.link_signer(&inner.keys, peer);
        // No new connection is accepted with this key. The one the notice
        // came on carries our answer first; the peer then changes over to
        // its new key and closes it, and in case the holder of the old key
        // keeps it open instead, it is closed here a moment later.
        if let Err(e) = link.change_keys(peer, Vec::new(), &present.signing, None) {
            tracing::error!(%peer, error = %e, "could not revoke the peer's key on the link");
        }
        let (link, peer) = (link.clone(), peer.clone());
        tokio::spawn(async move {
            tokio::time::sleep(REVOKED_GRACE).await;
            link.reset(&peer, Duration::ZERO, "its key was reported compromised");
        });
    }
    let suspect = suspect_since(inner, peer, key, since);
    let count = suspect.len();
    if count > 0 {
        let why = format!(
            "stored after {} (this station's clock), signed with {peer}'s key reported compromised since then",
            stamp(since)
        );
        if let Err(e) = inner
            .journal
            .mark_suspect(suspect.clone(), why)
            .done()
            .await
        {
            tracing::error!(error = %e, "could not mark messages suspect");
        }
        for id in suspect {
            inner.changed(&id);
        }
    }
    inner.raise(
        AlarmKind::KeyCompromised,
        peer.as_str(),
        Some(peer),
        None,
        format!(
            "{peer} reports its key COMPROMISED since {}: the link refuses it; {count} message(s) stored since are marked suspect. \
             Check its new fingerprint {fingerprint} out of band, then confirm: hotline peer confirm {peer} \"{fingerprint}\"",
            stamp(since)
        ),
    );
}

/// The messages from `peer` stored after `since` that `key` signed.
fn suspect_since(
    inner: &Inner,
    peer: &StationName,
    key: &VerifyingKey,
    since: Timestamp,
) -> Vec<crate::domain::MessageId> {
    let stored = match inner.journal.inbound_stored_after(peer.as_str(), since) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "could not read what was stored since the compromise");
            return Vec::new();
        }
    };
    stored
        .into_iter()
        .filter(|(_, sealed)| {
            crate::crypto::age_io::decrypt(
                &sealed[..],
                &inner.keys.identities(),
                crate::crypto::seal::MAX_MESSAGE_PLAINTEXT,
            )
            .ok()
            .and_then(|doc| {
                signed::parse(&doc)
                    .ok()
                    .map(|d| d.verify(Kind::Message, key).is_ok())
            })
            .unwrap_or(false)
        })
        .map(|(id, _)| id)
        .collect()
}

impl super::Station {
    /// Confirms `peer`'s held rotation to `fingerprint`, as read aloud by
    /// the peer and checked by `operator`: the new key is pinned from now
    /// on (the old one accepted until the peer is seen using the new).
    pub async fn confirm_rotation(
        &self,
        operator: &OperatorName,
        peer: &str,
        fingerprint: &str,
    ) -> Result<String, StationError> {
        let inner = &self.inner;
        let current = inner
            .peer(peer)
            .ok_or_else(|| StationError::UnknownPeer(peer.to_string()))?;
        let name = current.name.clone();
        let held = inner.journal.peer_rotations(peer)?;
        let pending: Vec<&PeerRotation> = held
            .iter()
            .filter(|r| r.standing == Standing::Pending)
            .collect();
        let Some(rotation) = pending
            .iter()
            .find(|r| same_fingerprint(&r.fingerprint, fingerprint))
        else {
            return Err(StationError::Refused(if pending.is_empty() {
                format!("{peer} has announced no new keys that wait for confirmation")
            } else {
                format!(
                    "that is not the fingerprint {peer} announced; it announced {}. Read it again with {peer}",
                    pending
                        .iter()
                        .map(|r| r.fingerprint.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            }));
        };
        let (_, mut next) = StationCard::parse(&rotation.card, "the held rotation notice")
            .map_err(|e| StationError::Refused(e.to_string()))?;
        if rotation.compromised_since.is_none() {
            next.handover = vec![current.signing];
        }
        inner
            .journal
            .advance_rotation(
                peer.to_string(),
                rotation.fingerprint.clone(),
                Standing::Confirmed,
                operator.to_string(),
            )
            .done()
            .await?;
        {
            let mut peers = inner.peers.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(state) = peers.get_mut(&name) {
                state.history.push(current.signing);
                state.keys = next.clone();
                state.revoked = false;
            }
        }
        if let Some(link) = inner.link() {
            let present = inner.ours.link_signer(&inner.keys, &name);
            link.change_keys(
                &name,
                next.accepted(),
                &present.signing,
                Some("the peer's new keys were confirmed"),
            )
            .map_err(|e| StationError::Refused(e.to_string()))?;
        }
        inner.resolve(AlarmKind::KeyRotation, peer);
        inner.resolve(AlarmKind::KeyCompromised, peer);
        inner.emit(Event::KeysChanged {
            peer: peer.to_string(),
            what: format!("new keys confirmed by {operator}"),
        });
        tracing::info!(%peer, fingerprint = %rotation.fingerprint, %operator, "confirmed a peer's new keys");
        Ok(rotation.fingerprint.clone())
    }
}

/// A hello from `peer` verified: if it was signed with the peer's new key
/// while its old one is still accepted, the change-over is complete and
/// the old key is accepted no more.
pub(super) fn seen(inner: &Inner, peer: &StationName, hello: &[u8]) {
    let Some(keys) = inner.peer(peer.as_str()) else {
        return;
    };
    if keys.handover.is_empty()
        || signed::parse(hello)
            .and_then(|d| d.verify(Kind::Hello, &keys.signing))
            .is_err()
    {
        return;
    }
    let fingerprint = keys.fingerprint();
    {
        let mut peers = inner.peers.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = peers.get_mut(peer) {
            state.keys.handover.clear();
        }
    }
    if let Some(link) = inner.link() {
        let present = inner.ours.link_signer(&inner.keys, peer);
        if let Err(e) = link.change_keys(peer, vec![keys.signing], &present.signing, None) {
            tracing::warn!(%peer, error = %e, "could not stop accepting a peer's old key");
        }
    }
    tracing::info!(%peer, "the peer uses its new key; its old one is no longer accepted");
    drop(inner.journal.advance_rotation(
        peer.to_string(),
        fingerprint,
        Standing::Complete,
        "station".into(),
    ));
    inner.emit(Event::KeysChanged {
        peer: peer.to_string(),
        what: "uses its new key; the old one is no longer accepted".into(),
    });
}
