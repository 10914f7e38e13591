//! The station: the service of one station. It owns the journal, the link
//! and the timers, and is the one place where crypto, journal and network
//! meet on a message's journey. It takes typed commands (the methods below,
//! also served on a local socket by [`control`]) and emits [`Event`]s.
//!
//! Journeys: release → outbox (journal) → send queue → link stream → peer
//! stores → receipt → journal. Inbound: link → open and verify → journal →
//! receipt (only after the commit) → event. Acknowledgement: journal →
//! signed ack → send queue → peer records "acknowledged by NAME".

pub mod admission;
pub mod alarms;
mod amends;
pub mod api;
pub mod attachments;
mod auth;
pub mod backup;
pub mod client;
pub mod control;
pub mod docs;
mod events;
pub mod exercise_clock;
pub mod gaps;
mod handle;
mod inbound;
mod labels;
pub mod lock;
pub mod noisy;
mod outbox;
pub mod passing;
pub mod pool;
mod quota;
pub mod restore;
pub mod rotation;
mod standing;
pub mod strangers;
mod subjects;
mod timers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};

pub use auth::{AuthError, Authenticator};
pub use events::{AlarmKind, EVENT_BUFFER, Event};
pub use timers::TICK as TIMER_TICK;

use crate::compose::{self, Draft, Origin};
use crate::config::Config;
use crate::crypto::keys::{OwnRecipient, Sealing};
use crate::crypto::signed::Kind;
use crate::crypto::{PeerKeys, StationKeys, open_inbound, open_outbound};
use crate::domain::{Message, MessageId, OperatorName, Precedence, StationName};
use crate::link::{Link, LinkSettings, PeerLinkStatus, PeerSpec};
use crate::store::{
    AttachmentRow, CheckpointKey, Direction, Journal, MessageRow, Released, StoreError,
};
use crate::templates::Catalog;
use crate::wire::{ALPN_EXERCISE, ALPN_LIVE};

/// How long a peer has to answer a message stream before it is retried.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// The same for FLASH: an unanswered FLASH is retried on a fresh connection
/// sooner.
pub const FLASH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a station command failed. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    #[error(transparent)]
    Draft(#[from] compose::DraftError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0} is not a configured peer; add it with `hotline peer add CARD.toml`")]
    UnknownPeer(String),
    #[error("{0}")]
    Refused(String),
}

/// How a station runs: the live link, or a tabletop exercise.
#[derive(Clone, Debug)]
pub struct Options {
    pub alpn: Vec<u8>,
    /// Tabletop mode: every message is flagged EXERCISE, whatever the draft says.
    pub exercise_only: bool,
    /// Tabletop white cell: stations not yet pinned may ask to join, and
    /// are added as peers when admitted ([`Station::admit`]).
    pub admission: bool,
    /// The window refused connections from strangers are summed up over
    /// ([`strangers`]). Zero writes an audit entry for each refusal, as
    /// stations did before the window: only the test suite's control sets
    /// it, to show that its count sees every entry.
    pub refusal_window: Duration,
    /// Answers a message with its receipt first and commits it a moment
    /// later: the mistake the receiver's crash test must catch. Only that
    /// test's control sets it; nothing in the binary can.
    pub receipt_before_commit: bool,
    /// Tabletop trainee: the exercise's scenario clock, on which the
    /// acknowledgement deadlines count.
    pub exercise_clock: Option<exercise_clock::ExerciseClock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            alpn: ALPN_LIVE.to_vec(),
            exercise_only: false,
            admission: false,
            refusal_window: strangers::WINDOW,
            receipt_before_commit: false,
            exercise_clock: None,
        }
    }
}

/// What the station knows of one peer's health beyond the link itself.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct PeerHealth {
    /// `up`, `degraded` (on the backup path, a failed link test, or a clock
    /// beyond the skew bound) or `down`; set when the status is read.
    #[serde(default)]
    pub state: String,
    pub last_link_test: Option<String>,
    pub last_link_test_ok: Option<bool>,
    pub declared_highest_serial: u64,
    pub clock_skew_ms: Option<i64>,
    /// Whether what we seal to this peer is post-quantum (both stations
    /// have a post-quantum key); set when the status is read.
    #[serde(default)]
    pub post_quantum: bool,
    /// Where a key rotation with this peer stands, while one is under way
    /// (ours not yet confirmed by it, or its own not yet confirmed here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
}

/// The whole picture for `hotline status` and the status bar.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Status {
    pub station: String,
    pub exercise: bool,
    pub links: Vec<PeerLinkStatus>,
    pub health: HashMap<String, PeerHealth>,
    pub unacknowledged: HashMap<String, usize>,
    pub outbound_pending: usize,
    /// Connections refused from strangers since the station started.
    #[serde(default)]
    pub strangers_refused: u64,
    /// Full resyncs (snapshots of both lists) served to consoles since the
    /// station started: a console that keeps asking for them is falling
    /// behind its events.
    #[serde(default)]
    pub snapshots_served: u64,
}

pub(crate) struct Inner {
    config: Config,
    keys: Arc<StationKeys>,
    journal: Journal,
    catalog: &'static Catalog,
    options: Options,
    link: OnceLock<Link>,
    events: broadcast::Sender<Event>,
    /// The peers: those configured, and those admitted while running.
    peers: RwLock<HashMap<StationName, PeerState>>,
    /// Stations that asked to join (white cell only).
    candidates: Mutex<admission::Candidates>,
    receiving: Arc<attachments::Receiving>,
    health: Mutex<HashMap<StationName, PeerHealth>>,
    /// What each peer declared of its serials, for the gap check.
    gaps: Mutex<HashMap<StationName, gaps::Tracker>>,
    /// Random per start: lets a peer tell our new connection from a dead one.
    boot: u64,
    stop: watch::Sender<bool>,
    auth: Authenticator,
    alarms: Mutex<alarms::Board>,
    subjects: subjects::Subjects,
    strangers: Mutex<strangers::Strangers>,
    /// Pinned peers' misbehaviour, counted for the audit log.
    noisy: Mutex<noisy::Noisy>,
    /// What the journal keeps from each peer (and, under `None`, from
    /// all), for the quotas: read from the journal once, then counted as
    /// messages are stored.
    kept: Mutex<HashMap<Option<StationName>, u64>>,
    /// Where messages are built, sealed and opened, FLASH first.
    pool: pool::Pool,
    /// Snapshots served, for [`Status::snapshots_served`].
    snapshots: std::sync::atomic::AtomicU64,
    /// Where a restore from a backup stands, if the journal had one.
    restored: Mutex<Option<restore::Restored>>,
    /// Our newest key rotation, and where each peer stands with it.
    ours: rotation::Ours,
}

/// One peer: its keys, its send queue, and what wakes its attachment
/// uploader (a message was receipted).
struct PeerState {
    keys: PeerKeys,
    /// The signing keys the peer had before (its confirmed rotations):
    /// what the messages stored from it then verify with.
    history: Vec<ed25519_dalek::VerifyingKey>,
    /// The peer reported the key pinned for it compromised, and no new
    /// key is confirmed yet: nothing goes to it, nothing from it is taken.
    revoked: bool,
    queue: Arc<outbox::Queue>,
    uploads: Arc<Notify>,
}

impl Inner {
    /// Tells every subscriber; an event that changed a message's row is
    /// followed by that row, read back after the commit it reports.
    fn emit(&self, event: Event) {
        let changed = event.changed_message();
        let _ = self.events.send(event);
        if let Some(id) = changed {
            self.changed(&id);
        }
    }

    /// A stored message, opened in memory: ours with our key, a peer's
    /// checked against its pinned key.
    fn open_stored(&self, id: &MessageId, direction: Direction) -> Result<Message, StationError> {
        let sealed = self.journal.sealed(id)?;
        let opened = match direction {
            Direction::Out => open_outbound(&sealed, &self.keys),
            Direction::In => open_inbound(&sealed, &self.keys, |n| self.peer_as_stored(n)),
        };
        opened
            .map(|o| o.message)
            .map_err(|e| StationError::Refused(format!("stored message {id} does not open: {e}")))
    }

    /// Sends a message's row as the journal now holds it.
    fn changed(&self, id: &MessageId) {
        match self.journal.row(id) {
            Ok(row) => {
                let row = Box::new(self.subjects.dress(row));
                let _ = self.events.send(Event::MessageChanged { row });
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "changed message not readable; asking subscribers to resync");
                let _ = self.events.send(Event::Resync);
            }
        }
    }

    fn strangers(&self) -> std::sync::MutexGuard<'_, strangers::Strangers> {
        self.strangers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn alarms(&self) -> std::sync::MutexGuard<'_, alarms::Board> {
        self.alarms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Raises the alarm for a cause (`kind` about `subject`), or counts it
    /// again if it is up. Subscribers hear of a new one.
    fn raise(
        &self,
        kind: AlarmKind,
        subject: &str,
        peer: Option<&StationName>,
        id: Option<MessageId>,
        text: String,
    ) {
        let alarm = alarms::Alarm {
            kind,
            subject: subject.to_string(),
            peer: peer.map(ToString::to_string),
            id,
            text,
            raised_at: Timestamp::now(),
            count: 1,
        };
        if let alarms::Raised::New(alarm) = self.alarms().raise(alarm) {
            tracing::warn!(kind = ?alarm.kind, subject = %alarm.subject, "alarm: {}", alarm.text);
            self.emit(Event::Alarm(alarm));
        }
    }

    /// A cause ended: its alarm, if up, comes down.
    fn resolve(&self, kind: AlarmKind, subject: &str) {
        if self.alarms().resolve(kind, subject) {
            self.emit(Event::AlarmCleared {
                kind,
                subject: subject.to_string(),
                by: None,
            });
        }
    }

    fn peers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<StationName, PeerState>> {
        self.peers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_peer<T>(&self, name: &str, f: impl FnOnce(&PeerState) -> T) -> Option<T> {
        self.peers()
            .values()
            .find(|p| p.keys.name.as_str() == name)
            .map(f)
    }

    fn peer(&self, name: &str) -> Option<PeerKeys> {
        self.with_peer(name, |p| p.keys.clone())
    }

    /// A peer's keys as what is stored from it verifies with: any signing
    /// key it has had.
    fn peer_as_stored(&self, name: &str) -> Option<PeerKeys> {
        self.with_peer(name, |p| {
            let mut keys = p.keys.clone();
            keys.handover.extend(p.history.iter().copied());
            keys
        })
    }

    fn revoked(&self, name: &str) -> bool {
        self.with_peer(name, |p| p.revoked).unwrap_or(false)
    }

    /// The keys this station signs its documents to `peer` with.
    fn signer(&self, peer: &StationName) -> Arc<StationKeys> {
        self.ours.doc_signer(&self.keys, peer)
    }

    fn queue(&self, name: &str) -> Option<Arc<outbox::Queue>> {
        self.with_peer(name, |p| p.queue.clone())
    }

    fn uploads(&self, name: &str) -> Option<Arc<Notify>> {
        self.with_peer(name, |p| p.uploads.clone())
    }

    fn peer_names(&self) -> Vec<StationName> {
        self.peers().keys().cloned().collect()
    }

    fn link(&self) -> Option<&Link> {
        self.link.get()
    }

    fn restored(&self) -> std::sync::MutexGuard<'_, Option<restore::Restored>> {
        self.restored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, HashMap<StationName, PeerHealth>> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn noisy(&self) -> std::sync::MutexGuard<'_, noisy::Noisy> {
        self.noisy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn gaps(&self) -> std::sync::MutexGuard<'_, HashMap<StationName, gaps::Tracker>> {
        self.gaps.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running station. Cheap to clone.
#[derive(Clone)]
pub struct Station {
    inner: Arc<Inner>,
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

impl Station {
    /// Opens the journal, starts the link and the timers. Needs a Tokio runtime.
    pub async fn start(
        config: Config,
        keys: StationKeys,
        options: Options,
    ) -> Result<Station, StationError> {
        if options.admission && (!options.exercise_only || options.alpn != ALPN_EXERCISE) {
            return Err(StationError::Refused(
                "only a tabletop white cell admits stations that are not configured peers".into(),
            ));
        }
        let checkpoint = CheckpointKey {
            station: keys.name.clone(),
            key: keys.signing.clone(),
        };
        let journal_path = config.journal_path.clone();
        let journal =
            tokio::task::spawn_blocking(move || Journal::open(&journal_path, Some(checkpoint)))
                .await
                .map_err(|e| StationError::Refused(format!("journal open task failed: {e}")))??;
        let keys = Arc::new(keys);
        if let Some(recorded) = rotation::record_rekey(&journal, &keys, &config)? {
            recorded.done().await?;
        }
        let ours = rotation::Ours::load(&keys, &journal)?;
        let configured: Vec<StationName> =
            config.peers.iter().map(|p| p.keys.name.clone()).collect();
        let restored = restore::on_start(&journal, &config.station.data_dir, &configured).await?;
        let mut peers = HashMap::new();
        for p in &config.peers {
            peers.insert(p.keys.name.clone(), PeerState::load(&journal, &p.keys)?);
        }
        let specs: Vec<PeerSpec> = config
            .peers
            .iter()
            .map(|p| {
                let state = &peers[&p.keys.name];
                let present = ours.link_signer(&keys, &p.keys.name);
                PeerSpec {
                    name: p.keys.name.clone(),
                    key: state.keys.signing,
                    handover: state.keys.handover.clone(),
                    present: (!Arc::ptr_eq(&present, &keys)).then(|| present.signing.clone()),
                    primary: p.primary,
                    backup: p.backup,
                }
            })
            .collect();
        let revoked: Vec<StationName> = peers
            .values()
            .filter(|p| p.revoked)
            .map(|p| p.keys.name.clone())
            .collect();
        let settings = LinkSettings {
            us: keys.name.clone(),
            listen: config.station.listen,
            alpn: options.alpn.clone(),
            key: keys.signing.clone(),
            peers: specs,
            probe_interval: config.link.test_interval,
            idle_timeout: Duration::from_secs(15),
            admission: options.admission,
        };
        let inner = Arc::new(Inner {
            auth: Authenticator::new(&config),
            config,
            keys,
            ours,
            journal,
            catalog: Catalog::builtin(),
            link: OnceLock::new(),
            events: broadcast::channel(EVENT_BUFFER).0,
            peers: RwLock::new(peers),
            candidates: Mutex::default(),
            receiving: Arc::default(),
            health: Mutex::new(HashMap::new()),
            gaps: Mutex::new(HashMap::new()),
            boot: random_u64(),
            stop: watch::channel(false).0,
            alarms: Mutex::default(),
            subjects: subjects::Subjects::default(),
            strangers: Mutex::new(strangers::Strangers::new(options.refusal_window)),
            noisy: Mutex::default(),
            kept: Mutex::default(),
            pool: pool::Pool::new().map_err(|e| {
                StationError::Refused(format!("could not start the crypto pool: {e}"))
            })?,
            snapshots: std::sync::atomic::AtomicU64::new(0),
            restored: Mutex::new(restored),
            options,
        });
        restore::raise_held(&inner);
        let upcalls = Arc::new(inbound::Upcalls(Arc::downgrade(&inner)));
        let (link, link_events) = Link::start(settings, upcalls)?;
        for peer in &revoked {
            let present = inner.ours.link_signer(&inner.keys, peer);
            link.change_keys(peer, Vec::new(), &present.signing, None)?;
        }
        let _ = inner.link.set(link);
        tokio::spawn(timers::pump_link_events(inner.clone(), link_events));
        for peer in inner.peer_names() {
            tokio::spawn(outbox::dispatch(inner.clone(), peer.clone()));
            tokio::spawn(attachments::dispatch(inner.clone(), peer.clone()));
            tokio::spawn(rotation::announce(inner.clone(), peer));
        }
        tokio::spawn(timers::run(inner.clone()));
        if let Some(plan) = inner.config.backup.clone() {
            tokio::spawn(backup::schedule(
                Station {
                    inner: inner.clone(),
                },
                plan,
            ));
        }
        tokio::spawn(subjects::fill(inner.clone()));
        tracing::info!(station = %inner.keys.name, addr = ?inner.link().and_then(Link::local_addr), "station started");
        Ok(Station { inner })
    }

    pub fn name(&self) -> &StationName {
        &self.inner.keys.name
    }

    /// This station's own age recipient (what its drafts are sealed to).
    pub fn recipient(&self) -> OwnRecipient {
        self.inner.keys.own_recipient()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.config.station.data_dir
    }

    /// Whether the link to `peer` is up.
    pub fn link_up(&self, peer: &StationName) -> bool {
        self.inner.link().is_some_and(|l| l.is_up(peer))
    }

    /// This station's fingerprint, as its card gives it.
    pub fn fingerprint(&self) -> String {
        self.inner.keys.public().fingerprint()
    }

    /// A tabletop trainee's scenario clock, which its deadlines count on.
    pub fn exercise_clock(&self) -> Option<exercise_clock::ExerciseClock> {
        self.inner.options.exercise_clock.clone()
    }

    /// The names of the peers: configured, and admitted while running.
    pub fn peers(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .peer_names()
            .iter()
            .map(ToString::to_string)
            .collect();
        names.sort();
        names
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.link().and_then(Link::local_addr)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Releases a draft to `to`, attributed to `operator` (already
    /// authenticated). Returns once the message is durably in the outbox.
    /// For the station's own in-process parts (the tabletop counterpart);
    /// everyone else comes through [`Station::handle`].
    pub(crate) async fn release(
        &self,
        operator: &OperatorName,
        to: &str,
        draft: Draft,
    ) -> Result<(Released, Message), StationError> {
        self.release_with_attachments(operator, to, draft, Vec::new(), None)
            .await
    }

    /// [`Station::release`] with files attached. The station reads each
    /// file from the descriptor its caller opened, seals it for the peer, and lists its name, size and SHA-256 in the signed
    /// message; the files are sent once the peer has receipted the message.
    /// `second` is the second operator of a FLASH (two-person rule),
    /// already verified; it goes into the signed message.
    async fn release_with_attachments(
        &self,
        operator: &OperatorName,
        to: &str,
        mut draft: Draft,
        files: Vec<attachments::Outgoing>,
        second: Option<OperatorName>,
    ) -> Result<(Released, Message), StationError> {
        let peer = self
            .inner
            .peer(to)
            .ok_or_else(|| StationError::UnknownPeer(to.to_string()))?;
        if self.inner.revoked(to) {
            return Err(StationError::Refused(format!(
                "{to} reported the key pinned for it compromised, and its new keys are not confirmed yet; \
                 check its new fingerprint out of band and confirm it (hotline peer confirm) before sending"
            )));
        }
        if let Some(why) = self.inner.journal.trouble() {
            return Err(StationError::Refused(format!(
                "the journal cannot be written ({why}); nothing new is released until it can, and what is stored is kept"
            )));
        }
        if restore::held(&self.inner, to) {
            return Err(StationError::Refused(format!(
                "this station was restored from a backup: nothing is released to {to} until its hello says which of our serials it holds (the link must come up first)"
            )));
        }
        if self.inner.options.exercise_only {
            draft.exercise = true;
        }
        let mut checked = compose::check(&draft, self.inner.catalog, Timestamp::now())?;
        amends::check(&self.inner, &checked, to)?;
        checked.label = Some(labels::marking(&self.inner, &checked, to)?);
        let (refs, staged) = {
            let inner = self.inner.clone();
            let peer = peer.clone();
            tokio::task::spawn_blocking(move || {
                attachments::stage(
                    &inner.config.station.data_dir,
                    &inner.keys,
                    &peer,
                    files,
                    inner.config.attachments,
                )
            })
            .await
            .map_err(|e| StationError::Refused(format!("sealing task failed: {e}")))??
        };
        checked.attachments = refs;
        let origin = Origin {
            station: self.inner.keys.name.clone(),
            operator: operator.clone(),
            second_operator: second,
            language: self.inner.config.station.language,
        };
        let inner = self.inner.clone();
        let urgency = pool::Urgency::Known(checked.precedence);
        let (released, message) = self
            .inner
            .pool
            .run(urgency, move || {
                compose::release_with(
                    &inner.journal,
                    inner.signer(&peer.name),
                    peer,
                    checked,
                    origin,
                    staged,
                )
            })
            .await
            .map_err(|e| StationError::Refused(e.to_string()))?
            .done()
            .await?;
        self.inner.subjects.note(&self.inner, &message);
        if let Some(q) = self.inner.queue(message.to.as_str()) {
            q.push_message(message.id, message.precedence, released.sealed.clone());
        }
        self.inner.emit(Event::Released {
            id: message.id,
            to: message.to.to_string(),
            serial: message.serial,
            precedence: message.precedence,
        });
        if let Some(earlier) = amends::target(&self.inner, &message) {
            self.inner.changed(&earlier);
        }
        Ok((released, message))
    }

    /// Records that `operator` acknowledged inbound message `id` and sends
    /// the signed acknowledgement back to its sender.
    async fn acknowledge(
        &self,
        operator: &OperatorName,
        id: MessageId,
    ) -> Result<(), StationError> {
        let row = self.inner.journal.row(&id)?;
        if row.direction != Direction::In {
            return Err(StationError::Refused(format!(
                "message {id} was sent by this station; only received messages are acknowledged"
            )));
        }
        let peer = self
            .inner
            .peer(row.peer.as_str())
            .ok_or_else(|| StationError::UnknownPeer(row.peer.to_string()))?;
        let at = Timestamp::now();
        let sealed = self.inner.journal.sealed(&id)?;
        let body = docs::AckBody {
            protocol: docs::protocol(),
            revision: crate::domain::REVISION,
            id,
            from: self.inner.keys.name.clone(),
            to: peer.name.clone(),
            operator: operator.clone(),
            at,
            sealed_sha256: Some(docs::sealed_sha256(&sealed)),
        };
        let doc = docs::sign(Kind::Ack, &body, &self.inner.signer(&row.peer));
        self.inner
            .journal
            .acknowledge(id, operator.to_string(), at, doc.clone())
            .done()
            .await?;
        if let Some(q) = self.inner.queue(peer.name.as_str()) {
            q.push_ack(id, row.precedence, doc);
        }
        self.inner.changed(&id);
        Ok(())
    }

    /// Cancels a queued message (audited). A sent one can only be followed
    /// by a correction or cancellation message.
    async fn cancel(&self, operator: &OperatorName, id: MessageId) -> Result<(), StationError> {
        let row = self.inner.journal.row(&id)?;
        let queue = self.inner.queue(row.peer.as_str());
        let withdrawn = match queue.as_ref().map(|q| q.withdraw(&id)) {
            Some(outbox::Withdrawn::InFlight) => {
                return Err(StationError::Refused(format!(
                    "message {id} is already on its way; send a cancellation message that references it"
                )));
            }
            Some(outbox::Withdrawn::Removed) => true,
            Some(outbox::Withdrawn::NotQueued) | None => false,
        };
        if let Err(e) = self
            .inner
            .journal
            .cancel(id, operator.to_string())
            .done()
            .await
        {
            // Put back only what this call took out of the queue.
            if let (true, Some(q), Ok(sealed)) = (withdrawn, queue, self.inner.journal.sealed(&id))
            {
                q.push_message(id, row.precedence, sealed);
            }
            return Err(e.into());
        }
        self.inner.emit(Event::Cancelled { id });
        Ok(())
    }

    /// Runs a link test with `peer` now and reports its round trip.
    async fn link_test(&self, peer: &str) -> Result<Duration, StationError> {
        let name = self
            .inner
            .peer(peer)
            .ok_or_else(|| StationError::UnknownPeer(peer.to_string()))?
            .name;
        timers::link_test(&self.inner, &name)
            .await
            .map_err(StationError::Refused)
    }

    /// Opens a stored message (either direction) for reading.
    pub(crate) fn open(&self, id: &MessageId) -> Result<Message, StationError> {
        let row = self.inner.journal.row(id)?;
        self.inner.open_stored(id, row.direction)
    }

    /// A message's attachments as the journal records them.
    pub fn attachments(
        &self,
        id: &MessageId,
        direction: Direction,
    ) -> Result<Vec<AttachmentRow>, StationError> {
        Ok(self.inner.journal.attachments(id, direction)?)
    }

    /// Writes a stored message's attachments, decrypted and checked, into
    /// the files its caller opened (see [`attachments::export_into`]).
    async fn export_attachments(
        &self,
        id: &MessageId,
        into: Vec<std::fs::File>,
    ) -> Result<(Vec<usize>, Vec<String>), StationError> {
        let row = self.inner.journal.row(id)?;
        let rows = self.inner.journal.attachments(id, row.direction)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            attachments::export_into(
                &inner.config.station.data_dir,
                &inner.keys.identities(),
                &rows,
                into,
            )
        })
        .await
        .map_err(|e| StationError::Refused(format!("export task failed: {e}")))?
        .map_err(|e| StationError::Refused(e.to_string()))
    }

    /// The ids of one direction's messages that hold `query` (see
    /// [`subjects::holds`]), in list order. Each is opened in memory only.
    pub(crate) fn find(
        &self,
        direction: Direction,
        query: &str,
    ) -> Result<Vec<MessageId>, StationError> {
        let query = query.trim().to_lowercase();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for row in self.inner.journal.list(direction)? {
            match self.inner.open_stored(&row.id, direction) {
                Ok(m) if subjects::holds(&self.inner, &m, &query) => found.push(row.id),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a search skipped a stored message"),
            }
        }
        Ok(found)
    }

    /// A page of the newest rows of one direction (see [`Journal::page`]).
    pub(crate) fn page(
        &self,
        direction: Direction,
        limit: usize,
        before: Option<&MessageId>,
    ) -> Result<Vec<MessageRow>, StationError> {
        Ok(self
            .inner
            .subjects
            .dress_all(self.inner.journal.page(direction, limit, before)?))
    }

    pub(crate) fn list(&self, direction: Direction) -> Result<Vec<MessageRow>, StationError> {
        Ok(self
            .inner
            .subjects
            .dress_all(self.inner.journal.list(direction)?))
    }

    pub fn status(&self) -> Status {
        let mut unacknowledged: HashMap<String, usize> =
            Precedence::ALL.iter().map(|p| (p.to_string(), 0)).collect();
        let mut outbound_pending = 0;
        if let Ok(counts) = self
            .inner
            .journal
            .count_in_state(Direction::In, crate::store::MessageState::Received)
        {
            for (p, n) in Precedence::ALL.iter().zip(counts) {
                unacknowledged.insert(p.to_string(), n);
            }
        }
        for p in self.inner.peers().values() {
            outbound_pending += p.queue.len();
        }
        let links = self.inner.link().map(Link::status).unwrap_or_default();
        let skew_bound = self.inner.config.link.max_clock_skew.as_millis() as u64;
        let mut health: HashMap<String, PeerHealth> = self
            .inner
            .health()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (name, p) in self.inner.peers().iter() {
            let h = health.entry(name.to_string()).or_default();
            h.post_quantum = Sealing::is_post_quantum_between(&self.inner.keys, &p.keys);
            h.keys = if p.revoked {
                Some("their key COMPROMISED: confirm their new fingerprint".into())
            } else if !p.keys.handover.is_empty() {
                Some("their new keys confirmed; changing over".into())
            } else {
                self.inner.ours.standing(name)
            };
        }
        for l in &links {
            let h = health.entry(l.peer.clone()).or_default();
            let degraded = l.path == Some(crate::link::PathKind::Backup)
                || h.last_link_test_ok == Some(false)
                || h.clock_skew_ms
                    .is_some_and(|s| s.unsigned_abs() > skew_bound);
            h.state = match (l.up, degraded) {
                (false, _) => "down",
                (true, true) => "degraded",
                (true, false) => "up",
            }
            .to_string();
        }
        Status {
            station: self.inner.keys.name.to_string(),
            exercise: self.inner.options.exercise_only,
            links,
            health,
            unacknowledged,
            outbound_pending,
            strangers_refused: self.inner.strangers().refused(),
            snapshots_served: self
                .inner
                .snapshots
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Every alarm up now, oldest first.
    pub fn alarms(&self) -> Vec<alarms::Alarm> {
        self.inner.alarms().list()
    }

    /// An operator clears an alarm: audited, and told to every console. A
    /// cause that lasts stays silent until it ends.
    async fn clear_alarm(
        &self,
        op: &OperatorName,
        kind: AlarmKind,
        subject: &str,
    ) -> Result<alarms::Alarm, StationError> {
        let alarm = self.inner.alarms().clear(kind, subject).ok_or_else(|| {
            StationError::Refused(format!(
                "no {} alarm about {} is up",
                kind.as_str(),
                crate::sanitize::inert(subject)
            ))
        })?;
        self.inner
            .journal
            .audit(
                op.as_str(),
                "alarm-cleared",
                &format!(
                    "kind={} subject={}",
                    kind.as_str(),
                    crate::sanitize::inert(subject)
                ),
            )
            .done()
            .await?;
        self.inner.emit(Event::AlarmCleared {
            kind,
            subject: subject.to_string(),
            by: Some(op.to_string()),
        });
        Ok(alarm)
    }

    /// Tells every subscriber something worth reading.
    pub fn notice(&self, text: String) {
        self.inner.emit(Event::Notice { text });
    }

    /// Stops the link and the timers; the journal closes when the last
    /// clone is dropped. Subscribers (attached consoles) are told first.
    pub async fn shutdown(&self) {
        self.inner.emit(Event::Stopping {
            reason: "the station was stopped".into(),
        });
        // `send` would fail, and leave the value unchanged, when no task
        // happens to be listening right now; a task that starts listening
        // later must still see the stop.
        self.inner.stop.send_replace(true);
        if let Some(link) = self.inner.link() {
            link.shutdown().await;
        }
        if let Some(written) = timers::sum_up_strangers(&self.inner, true)
            && let Err(e) = written.done().await
        {
            tracing::warn!(error = %e, "the summary of refused connections was not written");
        }
        for written in timers::sum_up_misbehaviour(&self.inner, true) {
            if let Err(e) = written.done().await {
                tracing::warn!(error = %e, "the summary of a peer's misbehaviour was not written");
            }
        }
    }
}

impl PeerState {
    /// A peer's state, its send queue loaded from the journal.
    /// With the rotations the journal holds for the peer applied to the
    /// keys `configured` for it.
    fn load(journal: &Journal, configured: &PeerKeys) -> Result<PeerState, StationError> {
        let queue = outbox::Queue::default();
        queue.load(journal, configured.name.as_str())?;
        let pinned = rotation::pinned(journal, configured)?;
        Ok(PeerState {
            keys: pinned.keys,
            history: pinned.history,
            revoked: pinned.revoked,
            queue: Arc::new(queue),
            uploads: Arc::new(Notify::new()),
        })
    }
}
