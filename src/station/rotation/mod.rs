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

use super::docs::{self, RotationAnswerBody, RotationState};
use super::{AlarmKind, Event, Inner, StationError};
use crate::crypto::StationKeys;
use crate::crypto::keys::{same_fingerprint, signing_key_text};
use crate::crypto::rotation::notice;
use crate::crypto::signed::Kind;
use crate::domain::{StationName, stamp};
use crate::store::{Answered, Journal, StoreError};
use crate::wire::{Frame, FrameKind};

mod theirs;

pub(crate) use theirs::{pinned, received, seen};

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
                crate::t!(
                    inner.config.station.language,
                    "alarm.key_rotation_refused",
                    peer = peer,
                    reason = reason
                ),
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
