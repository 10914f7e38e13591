//! A peer's rotation, here: its notice verified and held, confirmed by an
//! operator, its compromised key revoked, its change-over completed.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;

use super::REVOKED_GRACE;
use crate::crypto::PeerKeys;
use crate::crypto::card::StationCard;
use crate::crypto::keys::{same_fingerprint, signing_key_text};
use crate::crypto::rotation::open_notice;
use crate::crypto::signed::{self, Kind};
use crate::domain::{OperatorName, REVISION, StationName, stamp};
use crate::station::docs::{self, RotationAnswerBody, RotationState};
use crate::station::{AlarmKind, Event, Inner, StationError};
use crate::store::{Journal, PeerRotation, Standing};
use crate::wire::{Frame, FrameKind};

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
pub(crate) async fn received(
    inner: &Arc<Inner>,
    peer: &StationName,
    payload: Vec<u8>,
) -> Option<Frame> {
    let pinned = inner.peer(peer.as_str())?;
    let any_key = inner.peer_as_stored(peer.as_str())?;
    let refuse = |reason: String| async move {
        let shown = crate::sanitize::inert(&reason);
        tracing::warn!(%peer, reason = %shown, "refused a key rotation notice");
        crate::station::inbound::audit(
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
            crate::t!(
                inner.config.station.language,
                "alarm.key_rotation",
                peer = peer,
                fingerprint = fingerprint
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
    inner: &Arc<Inner>,
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
    // Opening every message stored since is work for a blocking thread,
    // not for the runtime's.
    let suspect = {
        let (inner, peer, key) = (inner.clone(), peer.clone(), *key);
        tokio::task::spawn_blocking(move || suspect_since(&inner, &peer, &key, since))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "the search for suspect messages failed");
                Vec::new()
            })
    };
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
        crate::t!(
            inner.config.station.language,
            "alarm.key_compromised",
            peer = peer,
            since = stamp(since),
            count = count,
            fingerprint = fingerprint
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

impl crate::station::Station {
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
pub(crate) fn seen(inner: &Inner, peer: &StationName, hello: &[u8]) {
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
