//! The link: one QUIC endpoint per station, one live connection per peer,
//! mutual TLS with pinned station keys (see [`tls`]).
//!
//! The link knows nothing of crypto beyond TLS, nor of the journal: hellos
//! are made and checked, and inbound frames answered, by the station through
//! [`Upcalls`]. A connection counts as up only once a hello has been
//! answered, because a client refused by mutual TLS 1.3 still sees its own
//! handshake "succeed" (STACK.md trap 2). Quinn types stay inside this module.

mod attach;
pub mod join;
mod peer;
mod pqkx;
mod stream;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use futures_util::future::BoxFuture;
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

pub use attach::{AttachmentSink, OfferAnswer, UploadSource};
pub use stream::StreamError;

use crate::domain::StationName;
use crate::wire::Frame;

/// Streams one connection may have open at once. The station keeps its own
/// in-flight limit well below this, with room kept for FLASH.
pub const MAX_STREAMS_PER_CONNECTION: u16 = 256;
/// How long a dial may take before the next path is tried.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the hello exchange may take.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long answering one inbound stream may take, end to end.
pub const INBOUND_STREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// Dial backoff: from the first value, doubling, up to the second.
pub const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(200);
pub const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Handshakes in progress at once; a caller past this is refused at once
/// (cheaply, before any crypto), so a flood costs bounded memory.
pub const MAX_PENDING_HANDSHAKES: usize = 128;
/// Room for link events not yet taken by the station.
pub const EVENT_BUFFER: usize = 1024;

/// How long shutdown waits for close frames to go out.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

/// Application close codes.
const CLOSE_DUPLICATE: u32 = 1;
const CLOSE_REPLACED: u32 = 2;
const CLOSE_SHUTDOWN: u32 = 3;
const CLOSE_PROBE_DONE: u32 = 4;
const CLOSE_REFUSED: u32 = 5;
const CLOSE_RESET: u32 = 6;
/// Stream error code for a malformed frame.
const STREAM_MALFORMED: u32 = 1;

/// Why the link could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} is not a configured peer")]
    UnknownPeer(String),
    #[error("{0} is already a peer")]
    DuplicatePeer(String),
    #[error("{addr}: {reason}")]
    Join { addr: SocketAddr, reason: String },
    #[error("the link to {0} is down")]
    NotConnected(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// Which of a peer's addresses a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    Primary,
    Backup,
    /// The peer dialed us.
    Inbound,
}

/// A peer as the link needs it: its pinned key and where to dial it.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    pub name: StationName,
    pub key: VerifyingKey,
    /// Earlier keys of the peer still accepted while it changes over.
    pub handover: Vec<VerifyingKey>,
    /// The key we present to this peer, when not the link's own (the
    /// peer has not confirmed our newest rotation yet).
    pub present: Option<SigningKey>,
    pub primary: Option<SocketAddr>,
    pub backup: Option<SocketAddr>,
}

#[derive(Clone)]
pub struct LinkSettings {
    pub us: StationName,
    pub listen: SocketAddr,
    pub alpn: Vec<u8>,
    pub key: SigningKey,
    pub peers: Vec<PeerSpec>,
    /// How often the path not in use is probed.
    pub probe_interval: Duration,
    pub idle_timeout: Duration,
    /// Lets stations whose keys are pinned for no peer complete the TLS
    /// handshake, so they can ask to join ([`Upcalls::join`]); nothing else
    /// is answered for them. Only a tabletop white cell sets this.
    pub admission: bool,
}

/// What the station learns from a peer's hello.
#[derive(Clone, Copy, Debug)]
pub struct HelloInfo {
    /// Random per process start, so a restarted peer's new connection
    /// replaces the dead one at once.
    pub boot: u64,
}

/// What the link asks of the station.
pub trait Upcalls: Send + Sync + 'static {
    /// Our signed hello for `peer`.
    fn hello(&self, peer: &StationName) -> Vec<u8>;
    /// Checks `peer`'s hello (signature, clock, declared serial).
    fn hello_received(&self, peer: &StationName, payload: &[u8]) -> Result<HelloInfo, String>;
    /// Answers one inbound frame; `None` closes the stream without answer.
    fn frame(&self, peer: StationName, frame: Frame) -> BoxFuture<'static, Option<Frame>>;
    /// Answers an attachment offer: at once, or with where its bytes go.
    fn attachment(&self, peer: StationName, offer: Frame) -> BoxFuture<'static, OfferAnswer>;
    /// Answers a request to join (only asked when `admission` is set):
    /// `key` is the one the caller proved in the TLS handshake.
    fn join(&self, key: VerifyingKey, remote: SocketAddr, request: Frame) -> Frame;
}

/// What happened on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Up {
        peer: StationName,
        path: PathKind,
        remote: SocketAddr,
    },
    Down {
        peer: StationName,
        reason: String,
    },
    FailedOver {
        peer: StationName,
        path: PathKind,
    },
    Probe {
        peer: StationName,
        path: PathKind,
        rtt: Option<Duration>,
    },
    /// A connection refused before any application data (unknown key,
    /// wrong ALPN, bad hello).
    Refused {
        remote: SocketAddr,
        reason: String,
        /// The pinned peer whose key the caller proved; `None` for a
        /// stranger.
        peer: Option<StationName>,
        /// Whether the handshake merely timed out.
        timed_out: bool,
    },
    Malformed {
        peer: StationName,
        reason: String,
    },
}

/// One peer's link as the status bar shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PeerLinkStatus {
    pub peer: String,
    pub up: bool,
    pub path: Option<PathKind>,
    pub remote: Option<SocketAddr>,
    pub rtt_ms: Option<u64>,
    pub last_traffic: Option<String>,
    pub probes: Vec<(PathKind, Option<u64>)>,
}

struct Live {
    /// When this connection was installed.
    since: std::time::Instant,
    conn: quinn::Connection,
    path: PathKind,
    dialed_by_us: bool,
    peer_boot: u64,
}

#[derive(Default)]
struct Slot {
    live: Option<Live>,
    last_traffic: Option<Timestamp>,
    probes: HashMap<PathKind, Option<Duration>>,
}

struct PeerEntry {
    spec: PeerSpec,
    /// What the peer may present and what we present to it: changed by a
    /// key rotation on either side.
    keys: RwLock<EntryKeys>,
    slot: Mutex<Slot>,
    up: watch::Sender<bool>,
}

struct EntryKeys {
    accepted: Vec<VerifyingKey>,
    client: quinn::ClientConfig,
}

struct Shared {
    settings: LinkSettings,
    endpoint: quinn::Endpoint,
    peers: RwLock<HashMap<StationName, Arc<PeerEntry>>>,
    /// The keys the TLS server side accepts, shared with its verifier.
    pinned: tls::PinSet,
    /// The certificate the TLS server side presents to each caller.
    presented: Arc<tls::Presented>,
    upcalls: Arc<dyn Upcalls>,
    events: mpsc::Sender<LinkEvent>,
    stop: watch::Sender<bool>,
}

/// A running link. Cheap to clone.
#[derive(Clone)]
pub struct Link {
    shared: Arc<Shared>,
}

impl Shared {
    fn emit(&self, event: LinkEvent) {
        static LOG: crate::logging::Limit = crate::logging::Limit::new();
        if self.events.try_send(event).is_err()
            && let Some(held_back) = LOG.allow()
        {
            tracing::warn!(
                held_back,
                "link event buffer full; an event was dropped (the station resyncs from status)"
            );
        }
    }

    fn peers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<StationName, Arc<PeerEntry>>> {
        self.peers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry(&self, peer: &StationName) -> Option<Arc<PeerEntry>> {
        self.peers().get(peer).cloned()
    }

    fn entry_by_key(&self, key: &VerifyingKey) -> Option<Arc<PeerEntry>> {
        self.peers()
            .values()
            .find(|e| e.accepted().contains(key))
            .cloned()
    }

    fn entry_keys(
        &self,
        accepted: Vec<VerifyingKey>,
        present: Option<&SigningKey>,
    ) -> Result<EntryKeys, LinkError> {
        let client = tls::client_config_accepting(
            present.unwrap_or(&self.settings.key),
            accepted.clone(),
            &self.settings.alpn,
            self.settings.idle_timeout,
        )?;
        Ok(EntryKeys { accepted, client })
    }

    fn new_entry(&self, spec: PeerSpec) -> Result<Arc<PeerEntry>, LinkError> {
        let accepted = std::iter::once(spec.key)
            .chain(spec.handover.iter().copied())
            .collect();
        let keys = self.entry_keys(accepted, spec.present.as_ref())?;
        if let Some(present) = &spec.present {
            self.presented.set(&spec.name, present)?;
        }
        Ok(Arc::new(PeerEntry {
            spec,
            keys: RwLock::new(keys),
            slot: Mutex::new(Slot::default()),
            up: watch::channel(false).0,
        }))
    }
}

impl PeerEntry {
    fn accepted(&self) -> Vec<VerifyingKey> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .accepted
            .clone()
    }

    fn client(&self) -> quinn::ClientConfig {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .client
            .clone()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connection(&self) -> Option<quinn::Connection> {
        self.slot().live.as_ref().map(|l| l.conn.clone())
    }
}

impl Link {
    /// Binds the endpoint, starts accepting, and starts one dialer per peer.
    pub fn start(
        settings: LinkSettings,
        upcalls: Arc<dyn Upcalls>,
    ) -> Result<(Link, mpsc::Receiver<LinkEvent>), LinkError> {
        let pinned = tls::PinSet::new(
            settings
                .peers
                .iter()
                .flat_map(|p| std::iter::once(p.key).chain(p.handover.iter().copied()))
                .collect(),
        );
        let presented = tls::Presented::new(&settings.key)?;
        let server = tls::server_config(
            presented.clone(),
            pinned.clone(),
            settings.admission,
            &settings.alpn,
            settings.idle_timeout,
        )?;
        let endpoint =
            quinn::Endpoint::server(server, settings.listen).map_err(|source| LinkError::Bind {
                addr: settings.listen,
                source,
            })?;
        let (events, rx) = mpsc::channel(EVENT_BUFFER);
        let specs = settings.peers.clone();
        let shared = Arc::new(Shared {
            settings,
            endpoint,
            peers: RwLock::new(HashMap::new()),
            pinned,
            presented,
            upcalls,
            events,
            stop: watch::channel(false).0,
        });
        let link = Link { shared };
        for spec in specs {
            link.add_peer(spec)?;
        }
        tokio::spawn(peer::accept_loop(link.shared.clone()));
        Ok((link, rx))
    }

    /// Adds a peer to a running link: its key is accepted from now on, and
    /// it is dialed if it has addresses.
    pub fn add_peer(&self, spec: PeerSpec) -> Result<(), LinkError> {
        let shared = &self.shared;
        let name = spec.name.clone();
        let entry = shared.new_entry(spec)?;
        let keys = entry.accepted();
        {
            let mut peers = shared.peers.write().unwrap_or_else(PoisonError::into_inner);
            if peers.contains_key(&name)
                || peers
                    .values()
                    .any(|e| e.accepted().iter().any(|k| keys.contains(k)))
            {
                return Err(LinkError::DuplicatePeer(name.to_string()));
            }
            peers.insert(name.clone(), entry);
        }
        for key in keys {
            shared.pinned.add(key);
        }
        tokio::spawn(peer::maintain(shared.clone(), name));
        Ok(())
    }

    /// Changes the keys `peer` may present (its own rotation, confirmed
    /// here) and the key we present to it (ours, once it confirmed). With
    /// `reset`, drops its connection (saying why) so the next one uses them.
    pub fn change_keys(
        &self,
        peer: &StationName,
        accepted: Vec<VerifyingKey>,
        present: &SigningKey,
        reset: Option<&str>,
    ) -> Result<(), LinkError> {
        let shared = &self.shared;
        let entry = shared
            .entry(peer)
            .ok_or_else(|| LinkError::UnknownPeer(peer.to_string()))?;
        let keys = shared.entry_keys(accepted.clone(), Some(present))?;
        shared.presented.set(peer, present)?;
        let before = std::mem::replace(
            &mut *entry.keys.write().unwrap_or_else(PoisonError::into_inner),
            keys,
        );
        for key in before.accepted.iter().filter(|k| !accepted.contains(k)) {
            shared.pinned.remove(key);
        }
        for key in accepted {
            shared.pinned.add(key);
        }
        if let Some(why) = reset {
            self.reset(peer, Duration::ZERO, why);
        }
        Ok(())
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.endpoint.local_addr().ok()
    }

    /// Sends one frame to `peer` on a new stream at `priority` and waits for
    /// the answer. Fails at once if the link is down.
    pub async fn request(
        &self,
        peer: &StationName,
        frame: &Frame,
        priority: i32,
        limit: Duration,
    ) -> Result<Frame, LinkError> {
        let (entry, conn) = self.live(peer)?;
        let answer = stream::request(&conn, frame, priority, limit).await?;
        entry.slot().last_traffic = Some(Timestamp::now());
        Ok(answer)
    }

    /// `peer`'s entry and its live connection, or why there is none.
    fn live(&self, peer: &StationName) -> Result<(Arc<PeerEntry>, quinn::Connection), LinkError> {
        let entry = self
            .shared
            .entry(peer)
            .ok_or_else(|| LinkError::UnknownPeer(peer.to_string()))?;
        let conn = entry
            .connection()
            .ok_or_else(|| LinkError::NotConnected(peer.to_string()))?;
        Ok((entry, conn))
    }

    /// Drops `peer`'s connection if it is at least `age` old (so a request
    /// that timed out on it was sent on it), as it seems stuck; the dialer
    /// makes a new one.
    pub fn reset(&self, peer: &StationName, age: Duration, why: &str) {
        let Some(entry) = self.shared.entry(peer) else {
            return;
        };
        let conn = {
            let slot = entry.slot();
            slot.live
                .as_ref()
                .filter(|l| l.since.elapsed() >= age)
                .map(|l| l.conn.clone())
        };
        if let Some(conn) = conn {
            tracing::info!(%peer, %why, "resetting the connection");
            conn.close(CLOSE_RESET.into(), why.as_bytes());
        }
    }

    /// Sends one attachment to `peer` on its own stream at `priority` (see
    /// [`attach::upload`]) and returns the receiver's final answer. Fails at
    /// once if the link is down; an interrupted upload resumes from where
    /// the receiver stopped when it is offered again.
    pub async fn upload(
        &self,
        peer: &StationName,
        offer: &Frame,
        priority: i32,
        source: UploadSource,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Frame, LinkError> {
        let (entry, conn) = self.live(peer)?;
        let answer = attach::upload(&conn, offer, priority, source, progress).await?;
        entry.slot().last_traffic = Some(Timestamp::now());
        Ok(answer)
    }

    pub fn is_up(&self, peer: &StationName) -> bool {
        self.shared.entry(peer).is_some_and(|e| *e.up.borrow())
    }

    /// A receiver that changes whenever `peer`'s link goes up or down.
    pub fn watch_up(&self, peer: &StationName) -> Option<watch::Receiver<bool>> {
        self.shared.entry(peer).map(|e| e.up.subscribe())
    }

    pub fn status(&self) -> Vec<PeerLinkStatus> {
        let mut out: Vec<PeerLinkStatus> = self
            .shared
            .peers()
            .values()
            .map(|e| {
                let slot = e.slot();
                let live = slot.live.as_ref();
                PeerLinkStatus {
                    peer: e.spec.name.to_string(),
                    up: live.is_some(),
                    path: live.map(|l| l.path),
                    remote: live.map(|l| l.conn.remote_address()),
                    rtt_ms: live.map(|l| l.conn.rtt().as_millis() as u64),
                    last_traffic: slot.last_traffic.map(|t| t.to_string()),
                    probes: slot
                        .probes
                        .iter()
                        .map(|(p, r)| (*p, r.map(|d| d.as_millis() as u64)))
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }

    /// Closes every connection and stops dialing.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        self.shared
            .endpoint
            .close(CLOSE_SHUTDOWN.into(), b"shutdown");
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.shared.endpoint.wait_idle()).await;
    }
}
