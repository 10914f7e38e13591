//! Joining a tabletop white cell over the network.
//!
//! The white cell prints its address and fingerprint. A trainee station,
//! with fresh keys, asks to join: it sends its card, signed, on a
//! connection whose TLS handshake proved the card's signing key. The white
//! cell answers with its own card, signed, and the state of the request:
//! pending until the facilitator admits (or refuses) the trainee by the
//! fingerprint the trainee's screen shows. The trainee checks the white
//! cell's card against the fingerprint it was given, so neither side trusts
//! a key it has not compared out of band. Once admitted, the trainee is an
//! ordinary pinned peer of the white cell's station, for this run only.
//!
//! Only a station started with [`super::Options::admission`] (exercise
//! only) answers requests to join.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Event, Inner, PeerState, Station, StationError};
use crate::crypto::keys::same_fingerprint;
use crate::crypto::signed::{self, Kind, SignedError};
use crate::crypto::{PeerKeys, StationCard, StationKeys};
use crate::domain::{REVISION, StationName};
use crate::link::PeerSpec;
use crate::wire::{ALPN_EXERCISE, Frame, FrameKind};

/// Requests to join that may wait for the facilitator at once.
pub const MAX_CANDIDATES: usize = 64;
/// How often a waiting trainee asks again.
pub const JOIN_POLL: Duration = Duration::from_secs(1);
/// A waiting station that has not asked again for this long gave up.
pub const JOIN_STALE: Duration = Duration::from_secs(5);

/// Where a request to join stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum JoinState {
    Pending,
    Admitted,
    Refused { reason: String },
}

/// A trainee's request, signed with the key its card names.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    protocol: String,
    /// [`REVISION`] when written; 0 from a build before revisions.
    #[serde(default)]
    revision: u32,
    /// The trainee's card, as TOML.
    card: String,
    /// The white cell's fingerprint as the trainee was given it.
    pin: String,
    time: Timestamp,
}

/// The white cell's answer, signed with its station key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinAnswer {
    protocol: String,
    /// [`REVISION`] when written; 0 from a build before revisions.
    #[serde(default)]
    revision: u32,
    /// The white cell's card, as TOML.
    white_cell: String,
    /// Whose request this answers: the trainee's fingerprint.
    to_fingerprint: String,
    state: JoinState,
    time: Timestamp,
}

/// A station that asked to join, as the facilitator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub station: String,
    pub fingerprint: String,
    pub remote: String,
    pub asked: String,
    pub state: JoinState,
}

/// The requests to join this station has seen, by fingerprint, with when
/// each last asked.
#[derive(Default)]
pub(crate) struct Candidates(HashMap<String, (Candidate, PeerKeys, Instant)>);

impl Candidates {
    /// Forgets the waiting stations that stopped asking (the trainee gave
    /// up): admitting one would add a peer nobody runs.
    fn prune(&mut self) {
        self.0
            .retain(|_, (c, _, last)| c.state != JoinState::Pending || last.elapsed() < JOIN_STALE);
    }
}

fn card_of(keys: &StationKeys) -> String {
    StationCard::from_keys(&keys.public(), Vec::new(), None).to_toml()
}

/// The white cell's answer to one request to join from the holder of `key`.
pub(crate) fn answer(inner: &Inner, key: VerifyingKey, remote: SocketAddr, frame: &Frame) -> Frame {
    let (to_fingerprint, state) = match consider(inner, key, remote, frame) {
        Ok(pair) => pair,
        Err((fingerprint, reason)) => {
            let shown = crate::sanitize::inert(&reason);
            tracing::warn!(%remote, reason = %shown, "refused a request to join");
            (fingerprint, JoinState::Refused { reason })
        }
    };
    let body = JoinAnswer {
        protocol: super::docs::protocol(),
        revision: REVISION,
        white_cell: card_of(&inner.keys),
        to_fingerprint,
        state,
        time: Timestamp::now(),
    };
    Frame::new(
        FrameKind::JoinAnswer,
        super::docs::sign(Kind::JoinAnswer, &body, &inner.keys),
    )
}

/// Checks a request and records it; the error carries the requester's
/// fingerprint (if known) and the reason it was refused.
fn consider(
    inner: &Inner,
    key: VerifyingKey,
    remote: SocketAddr,
    frame: &Frame,
) -> Result<(String, JoinState), (String, String)> {
    let refuse = |fingerprint: &str, reason: String| (fingerprint.to_string(), reason);
    if frame.kind != FrameKind::Join {
        return Err(refuse(
            "",
            format!("expected a request to join, not {:?}", frame.kind),
        ));
    }
    let body = signed::parse(&frame.payload)
        .and_then(|doc| doc.verify(Kind::Join, &key))
        .map_err(|e| match e {
            SignedError::UnsupportedRevision { .. } => refuse("", e.to_string()),
            e => refuse(
                "",
                format!("the request is not signed by the key of its connection: {e}"),
            ),
        })?;
    let request: JoinRequest = serde_json::from_slice(body)
        .map_err(|e| refuse("", format!("the request is not well formed: {e}")))?;
    let (card, keys) = StationCard::parse(&request.card, "the card in the request")
        .map_err(|e| refuse("", e.to_string()))?;
    let fingerprint = card.fingerprint.clone();
    if keys.signing != key {
        return Err(refuse(
            &fingerprint,
            "the card's signing key is not the key of its connection".into(),
        ));
    }
    let ours = inner.keys.public().fingerprint();
    if !same_fingerprint(&request.pin, &ours) {
        return Err(refuse(
            &fingerprint,
            format!(
                "you pinned {}, but this white cell's fingerprint is {ours}",
                crate::sanitize::inert(&request.pin)
            ),
        ));
    }
    if keys.name == inner.keys.name {
        return Err(refuse(
            &fingerprint,
            format!(
                "{} is the white cell's own name; join with another --station",
                keys.name
            ),
        ));
    }
    if let Some(peer) = inner.peer(keys.name.as_str()) {
        if peer.signing == keys.signing {
            return Ok((fingerprint, JoinState::Admitted));
        }
        return Err(refuse(
            &fingerprint,
            format!(
                "{} is taken by another trainee; join with another --station",
                keys.name
            ),
        ));
    }
    let mut candidates = inner.candidates();
    candidates.prune();
    if let Some((known, _, last)) = candidates.0.get_mut(&fingerprint) {
        *last = Instant::now();
        return Ok((fingerprint, known.state.clone()));
    }
    let waiting = candidates
        .0
        .values()
        .filter(|(c, _, _)| c.state == JoinState::Pending)
        .count();
    if waiting >= MAX_CANDIDATES {
        return Err(refuse(
            &fingerprint,
            "too many requests are waiting for the facilitator; try again shortly".into(),
        ));
    }
    let candidate = Candidate {
        station: keys.name.to_string(),
        fingerprint: fingerprint.clone(),
        remote: remote.to_string(),
        asked: Timestamp::now().strftime("%H:%M:%SZ").to_string(),
        state: JoinState::Pending,
    };
    candidates.0.insert(
        fingerprint.clone(),
        (candidate.clone(), keys, Instant::now()),
    );
    drop(candidates);
    tracing::info!(station = %candidate.station, %fingerprint, %remote, "a station asks to join");
    inner.emit(Event::JoinRequested {
        station: candidate.station,
        fingerprint: fingerprint.clone(),
        remote: candidate.remote,
    });
    Ok((fingerprint, JoinState::Pending))
}

impl Inner {
    fn candidates(&self) -> std::sync::MutexGuard<'_, Candidates> {
        self.candidates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Station {
    /// The stations that asked to join, oldest first.
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut candidates = self.inner.candidates();
        candidates.prune();
        let mut all: Vec<Candidate> = candidates.0.values().map(|(c, _, _)| c.clone()).collect();
        all.sort_by(|a, b| a.asked.cmp(&b.asked).then(a.station.cmp(&b.station)));
        all
    }

    /// Admits the waiting station with `fingerprint` as a peer, for this
    /// run: its key is pinned from now on, and it gets a send queue.
    pub async fn admit(&self, fingerprint: &str) -> Result<StationName, StationError> {
        let keys = self.pending(fingerprint)?;
        let link = self
            .inner
            .link()
            .ok_or_else(|| StationError::Refused("the link has not started".into()))?;
        let state = PeerState::load(&self.inner.journal, &keys)?;
        {
            let mut peers = self
                .inner
                .peers
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if peers.contains_key(&keys.name) {
                return Err(StationError::Refused(format!(
                    "{} is already a peer",
                    keys.name
                )));
            }
            peers.insert(keys.name.clone(), state);
        }
        link.add_peer(PeerSpec {
            name: keys.name.clone(),
            key: keys.signing,
            handover: Vec::new(),
            present: None,
            primary: None,
            backup: None,
        })?;
        tokio::spawn(super::outbox::dispatch(
            self.inner.clone(),
            keys.name.clone(),
        ));
        tokio::spawn(super::attachments::dispatch(
            self.inner.clone(),
            keys.name.clone(),
        ));
        self.settle(fingerprint, &keys.name, JoinState::Admitted)
            .await;
        self.inner.emit(Event::PeerAdded {
            peer: keys.name.to_string(),
        });
        Ok(keys.name)
    }

    /// Refuses the waiting station with `fingerprint`; its next request is
    /// told so.
    pub async fn refuse_join(&self, fingerprint: &str) -> Result<StationName, StationError> {
        let keys = self.pending(fingerprint)?;
        let refused = JoinState::Refused {
            reason: "the facilitator refused this station".into(),
        };
        self.settle(fingerprint, &keys.name, refused).await;
        Ok(keys.name)
    }

    fn pending(&self, fingerprint: &str) -> Result<PeerKeys, StationError> {
        let mut candidates = self.inner.candidates();
        candidates.prune();
        match candidates
            .0
            .iter()
            .find(|(f, _)| same_fingerprint(f, fingerprint))
        {
            Some((_, (c, keys, _))) if c.state == JoinState::Pending => Ok(keys.clone()),
            Some((_, (c, _, _))) => Err(StationError::Refused(format!(
                "{} is no longer waiting ({:?})",
                c.station, c.state
            ))),
            None => Err(StationError::Refused(format!(
                "no station with fingerprint {fingerprint} is asking to join (one that stops \
                 asking for {} s is forgotten)",
                JOIN_STALE.as_secs()
            ))),
        }
    }

    /// Records the facilitator's decision, and audits it.
    async fn settle(&self, fingerprint: &str, station: &StationName, state: JoinState) {
        let action = match state {
            JoinState::Admitted => "admit",
            _ => "refuse-join",
        };
        {
            let mut candidates = self.inner.candidates();
            if let Some((c, _, _)) = candidates
                .0
                .iter_mut()
                .find(|(f, _)| same_fingerprint(f, fingerprint))
                .map(|(_, v)| v)
            {
                c.state = state;
            }
        }
        let _ = self
            .inner
            .journal
            .audit(
                "station",
                action,
                &format!("station={station} fingerprint={fingerprint}"),
            )
            .done()
            .await;
    }
}

/// Why joining a white cell failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    #[error("the white cell at {addr}: {reason}")]
    Answer { addr: SocketAddr, reason: String },
    #[error(
        "the station at {addr} is not the white cell you were given: its fingerprint is \
         {found}, not {pinned}; ask the facilitator to read the join line again"
    )]
    WrongWhiteCell {
        addr: SocketAddr,
        found: String,
        pinned: String,
    },
    #[error("the facilitator refused this station: {0}")]
    Refused(String),
}

/// What a trainee waiting to be admitted is told, each time it asks.
pub enum Waiting<'a> {
    /// The white cell, its card checked against the pin, has the request.
    Pending(&'a PeerKeys),
    /// The white cell, once reached, stopped answering; asking goes on for
    /// up to [`JOIN_LOST_LIMIT`].
    Lost(&'a crate::link::LinkError),
}

/// How long a white cell, once reached, may stay silent before joining
/// gives up.
pub const JOIN_LOST_LIMIT: Duration = Duration::from_secs(60);

/// Asks the white cell at `addr`, whose fingerprint is `pin`, to admit the
/// station `keys`, asking again every [`JOIN_POLL`] while the request is
/// pending (`waiting` is told each time). Returns the white cell's keys,
/// checked against `pin`, once admitted. A white cell that does not answer
/// the first request is an error at once; one that answered and then falls
/// silent (a network blip) is asked again for a while.
pub async fn join(
    keys: &StationKeys,
    addr: SocketAddr,
    pin: &str,
    mut waiting: impl FnMut(Waiting<'_>),
) -> Result<PeerKeys, JoinError> {
    let ours = keys.public().fingerprint();
    let mut reached = false;
    let mut silent_since: Option<Instant> = None;
    loop {
        let request = JoinRequest {
            protocol: super::docs::protocol(),
            revision: REVISION,
            card: card_of(keys),
            pin: pin.to_string(),
            time: Timestamp::now(),
        };
        let frame = Frame::new(
            FrameKind::Join,
            super::docs::sign(Kind::Join, &request, keys),
        );
        let (key, reply) =
            match crate::link::join::ask(&keys.signing, addr, ALPN_EXERCISE, &frame).await {
                Ok(answer) => {
                    silent_since = None;
                    answer
                }
                Err(e) if reached => {
                    let since = *silent_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= JOIN_LOST_LIMIT {
                        return Err(e.into());
                    }
                    waiting(Waiting::Lost(&e));
                    tokio::time::sleep(JOIN_POLL).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
        // Everything the white cell says is shown on a terminal: inert.
        let (white_cell, state) = read_answer(key, &reply, pin, &ours).map_err(|e| match e {
            Checked::Wrong(found) => JoinError::WrongWhiteCell {
                addr,
                found,
                pinned: crate::sanitize::inert(pin),
            },
            Checked::Bad(reason) => JoinError::Answer {
                addr,
                reason: crate::sanitize::inert(&reason),
            },
        })?;
        match state {
            JoinState::Admitted => return Ok(white_cell),
            JoinState::Refused { reason } => {
                return Err(JoinError::Refused(crate::sanitize::inert(&reason)));
            }
            JoinState::Pending => {
                reached = true;
                waiting(Waiting::Pending(&white_cell));
            }
        }
        tokio::time::sleep(JOIN_POLL).await;
    }
}

enum Checked {
    /// A well-formed answer from a white cell with another fingerprint.
    Wrong(String),
    Bad(String),
}

/// Checks the white cell's answer: signed by the key of the connection, its
/// card naming that key and matching `pin`, and addressed to `ours`.
fn read_answer(
    key: VerifyingKey,
    frame: &Frame,
    pin: &str,
    ours: &str,
) -> Result<(PeerKeys, JoinState), Checked> {
    let body = signed::parse(&frame.payload)
        .and_then(|doc| doc.verify(Kind::JoinAnswer, &key))
        .map_err(|e| match e {
            SignedError::UnsupportedRevision { .. } => Checked::Bad(e.to_string()),
            e => Checked::Bad(format!(
                "the answer is not signed by its connection's key: {e}"
            )),
        })?;
    let answer: JoinAnswer = serde_json::from_slice(body)
        .map_err(|e| Checked::Bad(format!("the answer is not well formed: {e}")))?;
    let (card, white_cell) = StationCard::parse(&answer.white_cell, "the white cell's card")
        .map_err(|e| Checked::Bad(e.to_string()))?;
    if white_cell.signing != key {
        return Err(Checked::Bad(
            "its card's signing key is not the key of its connection".into(),
        ));
    }
    if !same_fingerprint(&card.fingerprint, pin) {
        return Err(Checked::Wrong(card.fingerprint));
    }
    if let JoinState::Refused { reason } = &answer.state
        && answer.to_fingerprint.is_empty()
    {
        return Ok((
            white_cell,
            JoinState::Refused {
                reason: reason.clone(),
            },
        ));
    }
    if !same_fingerprint(&answer.to_fingerprint, ours) {
        return Err(Checked::Bad(format!(
            "the answer is for {}, not for this station ({ours})",
            answer.to_fingerprint
        )));
    }
    Ok((white_cell, answer.state))
}
