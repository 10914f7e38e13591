//! The link's security promises, end to end: real stations and hand-driven
//! quinn clients on 127.0.0.1, real keys, real journals in temp dirs.
//!
//! - An impostor (right name, wrong key), an unknown peer and a wrong ALPN
//!   are refused, with nothing stored, and the refusal is audited.
//! - A message the receiver cannot accept is refused with a signed reason;
//!   the sender shows REFUSED and does not retry.
//! - A replayed frame is answered with the same receipt and shown once.
//! - A message encrypted to us but signed by an unpinned key is refused and
//!   audited.
//! - Malformed frames reset their stream with an error code, are audited,
//!   and leave the connection and the station working.
//!
//! Every fault test also runs the same setup without the fault (CONTROL),
//! so that a station that refused everything would fail it.

mod support;

#[path = "security/key_rotation.rs"]
mod key_rotation;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hotline::compose::{self, Draft, Origin};
use hotline::crypto::signed::{self, Kind};
use hotline::crypto::{PeerKeys, StationKeys, age_io, seal};
use hotline::domain::{AttachmentRef, Language, Message, MessageId, REVISION, StationName};
use hotline::link::tls::client_config;
use hotline::station::docs::{self, HelloBody, ReceiptBody, ReceiptOf, RefusalBody, RefusalCode};
use hotline::station::{AlarmKind, Event, Options, Station};
use hotline::store::{CheckpointKey, Direction, Journal, MessageState};
use hotline::templates::Catalog;
use hotline::wire::{ALPN_EXERCISE, ALPN_LIVE, Frame, FrameKind, WireError};
use jiff::Timestamp;
use support::*;
use tokio::sync::broadcast;

/// The stream error code the link uses for a malformed frame.
const STREAM_MALFORMED: u64 = 1;
/// How long a raw exchange may take before it counts as unanswered.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// A hand-driven link client
// ---------------------------------------------------------------------------

/// What came back on one stream.
#[derive(Debug)]
enum Answer {
    Frame(Frame),
    /// The stream ended cleanly with no answer.
    Nothing,
    /// The peer reset the stream (or stopped our side) with this code.
    Reset(u64),
    /// Anything else: connection lost, timeout, an answer that is not a frame.
    Failed(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Frame(frame) => write!(f, "{frame:?}"),
            Answer::Nothing => f.write_str("no answer (stream finished)"),
            Answer::Reset(code) => write!(f, "stream reset with code {code}"),
            Answer::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// A real quinn client endpoint presenting a station key, speaking frames by
/// hand. Nothing of the station's own link code is used beyond the TLS
/// config, so the station under test sees exactly what a peer could send.
struct Raw {
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl Raw {
    /// Dials `addr` presenting `keys`, accepting only `peer`'s key.
    async fn connect(
        keys: &StationKeys,
        peer: &PeerKeys,
        addr: SocketAddr,
        alpn: &[u8],
    ) -> Result<Raw, String> {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr"))
            .map_err(|e| e.to_string())?;
        let config = client_config(&keys.signing, peer.signing, alpn, Duration::from_secs(15))
            .map_err(|e| e.to_string())?;
        let connecting = endpoint
            .connect_with(config, addr, "hotline")
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(ANSWER_LIMIT, connecting)
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| format!("handshake: {e}"))?;
        Ok(Raw {
            _endpoint: endpoint,
            conn,
        })
    }

    /// Dials and exchanges hellos; the peer's hello must verify under its
    /// pinned key and be addressed to us.
    async fn hello(
        keys: &StationKeys,
        peer: &PeerKeys,
        addr: SocketAddr,
        alpn: &[u8],
    ) -> Result<Raw, String> {
        let body = serde_json::to_vec(&hello_body(keys, peer)).expect("json");
        Raw::hello_with(keys, peer, addr, alpn, &body)
            .await
            .map(|(raw, _)| raw)
    }

    /// Dials and sends `body` (a hello body's JSON, signed here by `keys`)
    /// as the hello; returns the connection and the peer's answering hello.
    async fn hello_with(
        keys: &StationKeys,
        peer: &PeerKeys,
        addr: SocketAddr,
        alpn: &[u8],
        body: &[u8],
    ) -> Result<(Raw, HelloBody), String> {
        let raw = Raw::connect(keys, peer, addr, alpn).await?;
        let doc = signed::sign(Kind::Hello, &keys.name, body, &keys.signing);
        match raw.frame(FrameKind::Hello, doc).await {
            Answer::Frame(f) if f.kind == FrameKind::Hello => {
                let theirs: HelloBody = docs::open(Kind::Hello, &f.payload, peer, &keys.name)
                    .map_err(|e| format!("their hello: {e}"))?;
                assert_eq!(
                    theirs.from, peer.name,
                    "the answering hello names its station"
                );
                Ok((raw, theirs))
            }
            other => Err(format!("hello answered with {other}")),
        }
    }

    /// Sends raw bytes on a new stream, finishes it, and reads the answer.
    async fn send(&self, bytes: &[u8]) -> Answer {
        let exchange = async {
            let (mut send, mut recv) = match self.conn.open_bi().await {
                Ok(pair) => pair,
                Err(e) => return Answer::Failed(format!("open: {e}")),
            };
            if let Err(e) = send.write_all(bytes).await {
                return match e {
                    quinn::WriteError::Stopped(code) => Answer::Reset(code.into_inner()),
                    e => Answer::Failed(format!("write: {e}")),
                };
            }
            let _ = send.finish();
            match recv.read_to_end(2 << 20).await {
                Ok(b) if b.is_empty() => Answer::Nothing,
                Ok(b) => Frame::decode(&b).map_or_else(
                    |e| Answer::Failed(format!("answer is not a frame: {e}")),
                    Answer::Frame,
                ),
                Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
                    Answer::Reset(code.into_inner())
                }
                Err(e) => Answer::Failed(format!("read: {e}")),
            }
        };
        tokio::time::timeout(ANSWER_LIMIT, exchange)
            .await
            .unwrap_or_else(|_| Answer::Failed("no answer in time".into()))
    }

    async fn frame(&self, kind: FrameKind, payload: Vec<u8>) -> Answer {
        self.send(&Frame::new(kind, payload).encode()).await
    }
}

/// MOSCOW running, and WASHINGTON's keys speaking to it by hand over a
/// connection whose hellos are exchanged.
struct ByHand {
    _tmp: tempfile::TempDir,
    ms: Station,
    wk: StationKeys,
    mk: PeerKeys,
    raw: Raw,
}

async fn by_hand() -> ByHand {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let (wk, mk) = (w.keys(), m.keys().public());
    let raw = Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("hello");
    ByHand {
        _tmp: tmp,
        ms,
        wk,
        mk,
        raw,
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn name(s: &str) -> StationName {
    StationName::new(s).expect("station name")
}

/// The hello `keys` sends to `peer`, as this build writes it.
fn hello_body(keys: &StationKeys, peer: &PeerKeys) -> HelloBody {
    HelloBody {
        protocol: "hotline/1".into(),
        revision: REVISION,
        from: keys.name.clone(),
        to: peer.name.clone(),
        time: Timestamp::now(),
        boot: Timestamp::now().as_nanosecond() as u64,
        highest_serial: 0,
        cancelled: Vec::new(),
        audit_head: None,
        your_head: None,
        your_serial: Some(0),
        restored_from: None,
    }
}

/// `body` as a JSON object, changed by `edit`: how another build (older
/// or newer) would have written it.
fn rewritten<T: serde::Serialize>(body: &T, edit: impl FnOnce(&mut JsonObject)) -> Vec<u8> {
    let mut json = serde_json::to_value(body).expect("json");
    edit(json.as_object_mut().expect("a JSON object"));
    serde_json::to_vec_pretty(&json).expect("json")
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A body from a newer build: a revision above ours and a field this build
/// does not know (a security label, say).
fn newer(o: &mut JsonObject) {
    o.insert("revision".into(), 99.into());
    o.insert("label".into(), "SECRET".into());
}

/// A body from a build before revisions: no `revision` at all.
fn older(o: &mut JsonObject) {
    o.remove("revision");
}

/// The refusal's words for a message at revision 99.
fn revision_99_words() -> String {
    format!("message revision 99; this station reads up to revision {REVISION}; upgrade hotline")
}

/// Seals the message body `json` (already serialised) from `keys` to `peer`
/// exactly as [`seal`] does, without re-serialising it.
fn seal_body(json: &[u8], keys: &StationKeys, peer: &PeerKeys) -> Vec<u8> {
    let doc = signed::sign(Kind::Message, &keys.name, json, &keys.signing);
    let own = keys.age.to_public();
    let recipients: [&dyn age::Recipient; 2] = [&peer.age, &own];
    age_io::encrypt(&doc, &recipients).expect("encrypt")
}

/// The ids of the messages `journal` received, by any route.
fn received(journal: &Journal) -> Vec<MessageId> {
    journal
        .list(Direction::In)
        .expect("inbox")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// The bytes of a site's journal: the database file and its write-ahead
/// log.
fn journal_bytes(site: &Site) -> (u64, u64) {
    let db = site.config().journal_path;
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    (len(&db), len(Path::new(&wal)))
}

/// A message built the way a station builds one, for `serial`.
fn build(draft: &Draft, from: &str, to: &str, serial: u64) -> Message {
    let checked =
        compose::check(draft, Catalog::builtin(), Timestamp::now()).expect("a valid draft");
    let origin = Origin {
        station: name(from),
        operator: op(),
        second_operator: None,
        language: Language::EN,
    };
    compose::build(&checked, &origin, &name(to), serial, Timestamp::now())
}

/// A complete, valid missile-launch notification.
fn missile_launch() -> Draft {
    let mut d = Draft {
        template_id: "missile-launch".into(),
        ..Draft::default()
    };
    for (k, v) in [
        ("launch_time", "2030-01-01T10:00:00Z"),
        ("launch_window", "2h"),
        ("launch_area", "51.5N 46.0E"),
        ("impact_area", "52.0N 160.0E"),
        ("missile_type", "icbm"),
        ("count", "2"),
    ] {
        d.fields.insert(k.into(), v.into());
    }
    d
}

/// A copy of `site`'s station key in a site of its own under `root`, with
/// its own journal, pinning (and dialing) `peer`.
fn clone_site(site: &Site, root: &std::path::Path, peer: &Site) -> Site {
    let dir = root.join(site.name.as_str().to_lowercase());
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(site.dir.join("station.key"), dir.join("station.key"))
        .expect("copy key (mode 0600 kept)");
    Site::create(
        root,
        site.name.as_str(),
        "en",
        free_addr(),
        &[peer.entry(Some(peer.listen), None)],
        FAST_LINK,
    )
}

/// Audit details for `action`, oldest first.
fn audit(journal: &Journal, action: &str) -> Vec<String> {
    journal
        .read(|c| {
            let mut stmt = c.prepare("SELECT detail FROM audit WHERE action = ?1 ORDER BY seq")?;
            let rows = stmt
                .query_map([action], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .expect("audit log")
}

async fn inbox(station: &Station) -> Vec<MessageId> {
    door::list(station, Direction::In)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Seals `message` with WASHINGTON's keys to MOSCOW and sends it on `raw`;
/// the answer must be MOSCOW's receipt for it.
async fn receipted(raw: &Raw, message: &Message, wk: &StationKeys, mk: &PeerKeys) -> Vec<u8> {
    let sealed = seal(message, wk, mk).expect("seal");
    receipt_of(
        raw.frame(FrameKind::Message, sealed).await,
        mk,
        &wk.name,
        message.id,
    )
}

/// The answer must be a refusal signed by `from` and addressed to `us`.
fn refusal_of(answer: Answer, from: &PeerKeys, us: &StationName) -> RefusalBody {
    match answer {
        Answer::Frame(f) if f.kind == FrameKind::Refusal => {
            docs::open(Kind::Refusal, &f.payload, from, us)
                .expect("a refusal signed by the receiver")
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

/// The answer must be a receipt signed by `from` for message `id`; returns
/// the signed document.
fn receipt_of(answer: Answer, from: &PeerKeys, us: &StationName, id: MessageId) -> Vec<u8> {
    match answer {
        Answer::Frame(f) if f.kind == FrameKind::Receipt => {
            let body: ReceiptBody = docs::open(Kind::Receipt, &f.payload, from, us)
                .expect("a receipt signed by the receiver");
            assert_eq!(body.id, id, "the receipt names the message sent");
            assert_eq!(body.of, ReceiptOf::Message);
            f.payload
        }
        other => panic!("expected a receipt for {id}, got {other}"),
    }
}

/// Every event waiting on `rx` now.
fn drain(rx: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("lost {n} events"),
            Err(_) => return out,
        }
    }
}

/// CONTROL for the refusal tests: the real WASHINGTON, through its own
/// station, delivers to the same running MOSCOW. Returns the message id.
async fn real_washington_delivers(w: &Site, ms: &Station) -> MessageId {
    let ws = w.start().await;
    let mut wev = ws.subscribe();
    let session = door::login(&ws).await;
    let released = door::release(&ws, &session, "MOSCOW", general("the real one")).await;
    let id = released.id;
    wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Receipt { id: i, .. } if *i == id),
    )
    .await;
    assert!(
        inbox(ms).await.contains(&id),
        "MOSCOW stored the real WASHINGTON's message"
    );
    ws.shutdown().await;
    id
}

/// After a refused dial: MOSCOW raised the alarm, audited the refusal and
/// stored nothing; the dialer's message is still waiting for a receipt.
async fn assert_refused_and_nothing_stored(
    mev: &mut broadcast::Receiver<Event>,
    ms: &Station,
    dialer: &Station,
    sent: MessageId,
) {
    let alarm = wait_event(
        mev,
        Duration::from_secs(15),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::ConnectionRefused),
    )
    .await;
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.peer.is_none() && a.id.is_none()),
        "{alarm:?}"
    );
    eventually(
        Duration::from_secs(5),
        "a connection-refused audit entry",
        || !audit(ms.journal(), "connection-refused").is_empty(),
    )
    .await;
    // Let the dialer retry a few times (backoff starts at 200 ms).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        inbox(ms).await.is_empty(),
        "nothing may be stored from a refused connection"
    );
    assert!(audit(ms.journal(), "receive").is_empty());
    assert!(
        !drain(mev)
            .iter()
            .any(|e| matches!(e, Event::Received { .. } | Event::LinkUp { .. })),
        "a refused connection must never count as a link"
    );
    assert!(
        dialer.status().links.iter().all(|l| !l.up),
        "the dialer's link never came up: {:?}",
        dialer.status().links
    );
    let row = &door::list(dialer, Direction::Out).await[0];
    assert_eq!(row.id, sent);
    assert!(
        row.state == MessageState::Queued || row.state == MessageState::Sent,
        "state {}",
        row.state
    );
    assert!(
        row.receipt_at.is_none(),
        "no receipt for a refused connection"
    );
}

// ---------------------------------------------------------------------------
// Who may connect
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_with_the_right_name_but_wrong_key_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();

    // Its own key and data dir, calling itself WASHINGTON, pinning the real MOSCOW.
    let imp = Site::create(
        &tmp.path().join("impostor"),
        "WASHINGTON",
        "en",
        free_addr(),
        &[m.entry(Some(m.listen), None)],
        FAST_LINK,
    );
    assert_ne!(imp.keys().public().signing, w.keys().public().signing);
    let is = imp.start().await;
    let session = door::login(&is).await;
    let fake = door::release(&is, &session, "MOSCOW", general("from the impostor")).await;
    assert_refused_and_nothing_stored(&mut mev, &ms, &is, fake.id).await;

    // CONTROL: the real WASHINGTON reaches the same MOSCOW while the impostor keeps trying.
    let real = real_washington_delivers(&w, &ms).await;
    assert_eq!(inbox(&ms).await, vec![real]);
    assert_eq!(audit(ms.journal(), "receive").len(), 1);
    let row = &door::list(&is, Direction::Out).await[0];
    assert!(
        row.receipt_at.is_none() && row.state != MessageState::Receipted,
        "the impostor's message stays unreceipted: {row:?}"
    );
    is.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_peer_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();

    // LONDON pins MOSCOW; MOSCOW has never heard of LONDON.
    let london = Site::create(
        tmp.path(),
        "LONDON",
        "en",
        free_addr(),
        &[m.entry(Some(m.listen), None)],
        FAST_LINK,
    );
    let ls = london.start().await;
    let session = door::login(&ls).await;
    let sent = door::release(&ls, &session, "MOSCOW", general("from London")).await;
    assert_refused_and_nothing_stored(&mut mev, &ms, &ls, sent.id).await;

    // CONTROL: a configured peer gets through.
    let real = real_washington_delivers(&w, &ms).await;
    assert_eq!(inbox(&ms).await, vec![real]);
    ls.shutdown().await;
    ms.shutdown().await;
}

/// `count` strangers, each from its own loopback address, call `addr`
/// presenting one key pinned for no peer, `parallel` at a time; each call
/// ends when the station has closed on it.
async fn strangers_call(addr: SocketAddr, target: &PeerKeys, count: u32) {
    use futures_util::StreamExt;
    let stranger = StationKeys::generate(name("STRANGER")).expect("keys");
    let config = client_config(
        &stranger.signing,
        target.signing,
        ALPN_LIVE,
        Duration::from_secs(15),
    )
    .expect("config");
    futures_util::stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let config = config.clone();
            async move {
                let [_, _, b, c] = (i + 256).to_be_bytes();
                let source = std::net::Ipv4Addr::new(127, 1 + b, c, 7);
                let endpoint =
                    quinn::Endpoint::client(SocketAddr::from((source, 0))).expect("bind");
                let connecting = endpoint
                    .connect_with(config, addr, "hotline")
                    .expect("connect");
                if let Ok(Ok(conn)) = tokio::time::timeout(ANSWER_LIMIT, connecting).await {
                    let _ = tokio::time::timeout(ANSWER_LIMIT, conn.closed()).await;
                }
            }
        })
        .await;
}

/// How many entries the audit log holds.
fn audit_len(journal: &Journal) -> i64 {
    journal
        .read(|c| Ok(c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?))
        .expect("audit log")
}

/// Audit entries about refused connections: each one's, and the summaries.
fn refusal_rows(journal: &Journal) -> (Vec<String>, Vec<String>) {
    (
        audit(journal, "connection-refused"),
        audit(journal, "connections-refused"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_strangers_grow_the_audit_log_by_two_entries_and_the_link_still_works() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let before = audit_len(ms.journal());

    strangers_call(m.listen, &m.keys().public(), 1_000).await;
    eventually(
        Duration::from_secs(30),
        "MOSCOW counted 1,000 refused strangers",
        || ms.status().strangers_refused >= 1_000,
    )
    .await;
    assert_eq!(ms.status().strangers_refused, 1_000, "one refusal per call");
    // CONTROL for the count below: the flood left the link working.
    let real = real_washington_delivers(&w, &ms).await;
    assert_eq!(inbox(&ms).await, vec![real]);
    ms.shutdown().await;

    let (each, summaries) = refusal_rows(ms.journal());
    assert_eq!(
        each.len(),
        1,
        "only the first is audited on its own: {each:?} {summaries:?}"
    );
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let summary = &summaries[0];
    assert!(
        summary.starts_with("total=1000 timed_out=0 sources=1000 since="),
        "{summary}"
    );
    let busiest = summary.split("busiest=").nth(1).expect("busiest");
    assert_eq!(busiest.split(',').count(), 10, "{summary}");
    assert!(
        busiest
            .split(',')
            .all(|s| s.starts_with("127.") && s.ends_with("x1")),
        "{summary}"
    );
    let grown = audit_len(ms.journal()) - before;
    // The rest: WASHINGTON's message received, its link test, the stop.
    assert!(grown <= 8, "the audit log grew by {grown} entries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_the_window_each_stranger_is_one_audit_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, m) = pair(tmp.path(), FAST_LINK);
    let ms = m
        .start_with(Options {
            refusal_window: Duration::ZERO,
            ..Options::default()
        })
        .await;
    strangers_call(m.listen, &m.keys().public(), 200).await;
    eventually(
        Duration::from_secs(30),
        "MOSCOW counted 200 refused strangers",
        || ms.status().strangers_refused >= 200,
    )
    .await;
    ms.shutdown().await;
    let (each, summaries) = refusal_rows(ms.journal());
    assert_eq!(each.len(), 200);
    assert!(summaries.is_empty(), "{summaries:?}");
}

/// Where a relay stops passing the caller's datagrams to the station, so
/// that the handshake can never finish. A ClientHello carrying the hybrid
/// post-quantum key share spans two Initial datagrams, so a count of
/// datagrams says nothing; what the station sends back does.
#[derive(Clone, Copy, PartialEq)]
enum Stall {
    /// Once the station has answered at all (its stateless Retry): the
    /// caller never proves its address.
    BeforeAddressProof,
    /// Once the station has sent a packet of its own handshake: it took
    /// the caller on, and then hears nothing more.
    AfterTakenOn,
    /// Never: the control.
    Never,
}

/// A UDP relay to `target` that stalls the caller as `stall` says.
struct Relay {
    /// Where the caller dials.
    addr: SocketAddr,
    /// Where the station sees the caller come from.
    source: SocketAddr,
    /// Stateless Retries the station sent back.
    retries: tokio::sync::watch::Receiver<usize>,
    /// Other datagrams the station sent back: its handshake.
    handshake: tokio::sync::watch::Receiver<usize>,
}

/// A QUIC v1 Retry: a long header (0x80) of type 3 (bits 0x30).
fn is_retry(datagram: &[u8]) -> bool {
    datagram
        .first()
        .is_some_and(|b| b & 0x80 != 0 && b & 0x30 == 0x30)
}

async fn stalling_relay(target: SocketAddr, stall: Stall) -> Relay {
    let outer = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let inner = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    inner.connect(target).await.expect("connect");
    let (addr, source) = (
        outer.local_addr().expect("addr"),
        inner.local_addr().expect("addr"),
    );
    let (retried, retries) = tokio::sync::watch::channel(0);
    let (answered, handshake) = tokio::sync::watch::channel(0);
    tokio::spawn(async move {
        let mut caller = None;
        let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
        loop {
            tokio::select! {
                Ok((n, from)) = outer.recv_from(&mut a) => {
                    caller = Some(from);
                    let stalled = match stall {
                        Stall::BeforeAddressProof => *retried.borrow() + *answered.borrow() > 0,
                        Stall::AfterTakenOn => *answered.borrow() > 0,
                        Stall::Never => false,
                    };
                    if !stalled {
                        let _ = inner.send(&a[..n]).await;
                    }
                }
                Ok(n) = inner.recv(&mut b) => {
                    if is_retry(&b[..n]) {
                        retried.send_modify(|k| *k += 1);
                    } else {
                        answered.send_modify(|k| *k += 1);
                    }
                    if let Some(to) = caller {
                        let _ = outer.send_to(&b[..n], to).await;
                    }
                }
            }
        }
    });
    Relay {
        addr,
        source,
        retries,
        handshake,
    }
}

/// Starts a handshake with MOSCOW through `relay`, as WASHINGTON would.
fn dial_through(w: &Site, m: &Site, relay: &Relay) -> tokio::task::JoinHandle<()> {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let config = client_config(
        &w.keys().signing,
        m.keys().public().signing,
        ALPN_LIVE,
        Duration::from_secs(15),
    )
    .expect("config");
    let connecting = endpoint
        .connect_with(config, relay.addr, "hotline")
        .expect("connect");
    tokio::spawn(async move {
        let _ = connecting.await;
        drop(endpoint);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_costs_nothing_before_a_retry_and_a_stalled_handshake_raises_no_alarm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;

    // A caller that never proves its address: only its first Initial gets
    // through, and MOSCOW answers it with a stateless Retry alone.
    let unproven = stalling_relay(m.listen, Stall::BeforeAddressProof).await;
    let first = dial_through(&w, &m, &unproven);
    let mut retries = unproven.retries.clone();
    retries.wait_for(|n| *n >= 1).await.expect("relay");
    // A caller that proves it and then stalls.
    let stalled = stalling_relay(m.listen, Stall::AfterTakenOn).await;
    let second = dial_through(&w, &m, &stalled);
    eventually(
        Duration::from_secs(20),
        "MOSCOW audited the stalled handshake",
        || !refusal_rows(ms.journal()).0.is_empty(),
    )
    .await;
    first.abort();
    second.abort();
    // The unproven caller started first: had it cost a handshake, its
    // time-out would have come first.
    assert_eq!(ms.status().strangers_refused, 1);
    let (each, _) = refusal_rows(ms.journal());
    assert_eq!(
        each,
        vec![format!(
            "remote={} reason=handshake timed out",
            stalled.source
        )]
    );
    assert_eq!(
        *unproven.handshake.borrow(),
        0,
        "Retries ({}), nothing more",
        *unproven.retries.borrow()
    );
    assert!(
        ms.alarms()
            .iter()
            .all(|a| a.kind != AlarmKind::ConnectionRefused),
        "{:?}",
        ms.alarms()
    );
    // CONTROL: the same relay passing everything lets the real WASHINGTON
    // through, so it was the stall that kept it out.
    let open = stalling_relay(m.listen, Stall::Never).await;
    let raw = Raw::hello(&w.keys(), &m.keys().public(), open.addr, ALPN_LIVE).await;
    assert!(raw.is_ok(), "{:?}", raw.err());
    ms.shutdown().await;
}

/// Handshakes in progress are capped: MAX_PENDING_HANDSHAKES callers
/// that prove their address and then stall are each given a handshake
/// (none is refused: the control), and the next one is refused at once,
/// "too many handshakes at once", without waiting for any to time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_in_progress_are_capped() {
    use hotline::link::MAX_PENDING_HANDSHAKES;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut dials = Vec::new();
    for _ in 0..MAX_PENDING_HANDSHAKES {
        let stalled = stalling_relay(m.listen, Stall::AfterTakenOn).await;
        dials.push(dial_through(&w, &m, &stalled));
        // A Retry, then the station's own handshake packets: it took this
        // caller on.
        let mut handshake = stalled.handshake.clone();
        handshake.wait_for(|n| *n >= 1).await.expect("relay");
    }
    assert_eq!(
        ms.status().strangers_refused,
        0,
        "{MAX_PENDING_HANDSHAKES} stalled handshakes are all taken on"
    );
    let one_more = stalling_relay(m.listen, Stall::AfterTakenOn).await;
    dials.push(dial_through(&w, &m, &one_more));
    // The refusal is counted at once and audited after: wait for the row.
    eventually(
        Duration::from_secs(10),
        "MOSCOW refused a handshake and audited it",
        || !refusal_rows(ms.journal()).0.is_empty(),
    )
    .await;
    let (each, _) = refusal_rows(ms.journal());
    assert_eq!(
        each,
        vec![format!(
            "remote={} reason=too many handshakes at once",
            one_more.source
        )]
    );
    for dial in dials {
        dial.abort();
    }
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_alpn_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();

    // The real WASHINGTON key, in tabletop mode (own journal), dialing live MOSCOW.
    let ex = clone_site(&w, &tmp.path().join("exercise"), &m);
    let exercise = Options {
        alpn: ALPN_EXERCISE.to_vec(),
        exercise_only: true,
        admission: false,
        ..Options::default()
    };
    let xs = ex.start_with(exercise).await;
    let session = door::login(&xs).await;
    let sent = door::release(&xs, &session, "MOSCOW", general("tabletop")).await;
    assert!(sent.exercise, "tabletop traffic is flagged exercise");
    let message = door::open(&xs, &session, sent.id).await;
    assert!(message.exercise, "tabletop traffic is flagged exercise");
    assert_refused_and_nothing_stored(&mut mev, &ms, &xs, sent.id).await;
    xs.shutdown().await;

    // The same key by hand: the exercise ALPN gets no hello answered, the live one does.
    let (wk, mk) = (w.keys(), m.keys().public());
    let refused = Raw::hello(&wk, &mk, m.listen, ALPN_EXERCISE).await;
    assert!(refused.is_err(), "the exercise ALPN reached a live station");
    let raw = Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("CONTROL: the live ALPN is answered");
    raw.conn.close(0u8.into(), b"done");
    assert!(inbox(&ms).await.is_empty());

    // CONTROL: the real WASHINGTON with the live ALPN delivers.
    let real = real_washington_delivers(&w, &ms).await;
    assert_eq!(inbox(&ms).await, vec![real]);
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_with_invalid_fields_is_refused_with_a_signed_reason() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;

    // A field the template does not have.
    let mut unknown = build(&general("x"), "WASHINGTON", "MOSCOW", 1);
    unknown.fields.insert("colour".into(), "red".into());
    let r = refusal_of(
        raw.frame(FrameKind::Message, seal(&unknown, &wk, &mk).expect("seal"))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::UnknownTemplateField);
    assert_eq!(r.id, Some(unknown.id));
    assert!(
        r.detail.contains("colour"),
        "the reason names the field: {}",
        r.detail
    );

    // A value that is not valid for its field.
    let mut invalid = build(&missile_launch(), "WASHINGTON", "MOSCOW", 2);
    invalid.fields.insert("count".into(), "abc".into());
    let r = refusal_of(
        raw.frame(FrameKind::Message, seal(&invalid, &wk, &mk).expect("seal"))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::UnknownTemplateField);
    assert_eq!(r.id, Some(invalid.id));
    assert!(
        r.detail.contains("count"),
        "the reason names the field: {}",
        r.detail
    );

    assert!(
        inbox(&ms).await.is_empty(),
        "refused messages are not stored"
    );
    let refused = audit(ms.journal(), "refuse");
    assert_eq!(refused.len(), 2, "{refused:?}");
    for (entry, id) in refused.iter().zip([unknown.id, invalid.id]) {
        assert!(
            entry.contains(&id.to_string()) && entry.contains("code=unknown-template-field"),
            "{entry}"
        );
    }

    // CONTROL: the same kind of message with valid values is receipted.
    let good = build(&missile_launch(), "WASHINGTON", "MOSCOW", 3);
    receipted(&raw, &good, &wk, &mk).await;
    assert_eq!(inbox(&ms).await, vec![good.id]);
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_message_shows_refused_and_is_not_retried() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let wk = Arc::new(w.keys());
    let mk = m.keys().public();

    // A station cannot release invalid fields, so put one straight into
    // WASHINGTON's outbox, validly sealed, before its station starts.
    let journal = Journal::open(
        &w.config().journal_path,
        Some(CheckpointKey {
            station: wk.name.clone(),
            key: wk.signing.clone(),
        }),
    )
    .expect("journal");
    let (keys, peer) = (wk.clone(), mk.clone());
    let (bad, _) = journal
        .release(name("MOSCOW"), move |serial| {
            let mut message = build(&missile_launch(), "WASHINGTON", "MOSCOW", serial);
            message.fields.insert("count".into(), "abc".into());
            let sealed = seal(&message, &keys, &peer).map_err(|e| e.to_string())?;
            Ok((message, sealed))
        })
        .done()
        .await
        .expect("released into the outbox");
    drop(journal);

    let ws = w.start().await;
    let mut wev = ws.subscribe();
    let ms = m.start().await;

    let refused = wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Refused { id, .. } if *id == bad.id),
    )
    .await;
    let Event::Refused {
        code, detail, peer, ..
    } = refused
    else {
        unreachable!()
    };
    assert_eq!(
        (code.as_str(), peer.as_str()),
        ("unknown-template-field", "MOSCOW")
    );
    assert!(detail.contains("count"), "{detail}");
    let alarm = wait_event(
        &mut wev,
        Duration::from_secs(5),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::Refused),
    )
    .await;
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.id == Some(bad.id)),
        "{alarm:?}"
    );
    let refused_at = tokio::time::Instant::now();

    let row = door::list(&ws, Direction::Out)
        .await
        .into_iter()
        .find(|r| r.id == bad.id)
        .expect("row");
    assert_eq!(row.state, MessageState::Refused);
    assert!(
        row.refusal
            .as_deref()
            .is_some_and(|r| r.contains("unknown-template-field")),
        "{:?}",
        row.refusal
    );
    assert!(row.receipt_at.is_none());

    // CONTROL: the link is up and the same pair delivers a valid message.
    let session = door::login(&ws).await;
    let good = door::release(&ws, &session, "MOSCOW", general("valid")).await;
    wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Receipt { id, .. } if *id == good.id),
    )
    .await;

    // No retry: after a few more seconds with the link up, MOSCOW has seen the bad message once.
    tokio::time::sleep_until(refused_at + Duration::from_secs(3)).await;
    let at_moscow = audit(ms.journal(), "refuse");
    assert_eq!(
        at_moscow.len(),
        1,
        "a refused message was sent again: {at_moscow:?}"
    );
    assert!(
        at_moscow[0].contains(&bad.id.to_string())
            && at_moscow[0].contains("code=unknown-template-field")
    );
    assert_eq!(audit(ws.journal(), "refused").len(), 1);
    assert_eq!(inbox(&ms).await, vec![good.id]);
    assert_eq!(
        door::list(&ws, Direction::Out)
            .await
            .into_iter()
            .find(|r| r.id == bad.id)
            .expect("row")
            .state,
        MessageState::Refused
    );
    assert!(
        !drain(&mut wev).iter().any(
            |e| matches!(e, Event::Refused { id, .. } | Event::Receipt { id, .. } if *id == bad.id)
        ),
        "the refused message was settled again"
    );
    ws.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_signed_by_an_unpinned_key_is_refused_and_audited() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;

    // Encrypted to MOSCOW and signed as WASHINGTON, but with another key.
    let message = build(&general("forged"), "WASHINGTON", "MOSCOW", 1);
    let impostor = StationKeys::generate(name("WASHINGTON")).expect("keys");
    let forged = seal(&message, &impostor, &mk).expect("seal");
    let r = refusal_of(raw.frame(FrameKind::Message, forged).await, &mk, &wk.name);
    assert_eq!(r.code, RefusalCode::BadSignature, "{r:?}");

    // Signed by a station MOSCOW does not pin at all.
    let london = StationKeys::generate(name("LONDON")).expect("keys");
    let from_london = seal(
        &build(&general("from London"), "LONDON", "MOSCOW", 1),
        &london,
        &mk,
    )
    .expect("seal");
    let r = refusal_of(
        raw.frame(FrameKind::Message, from_london).await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::BadSignature, "{r:?}");

    assert!(
        inbox(&ms).await.is_empty(),
        "nothing is stored from an unpinned signer"
    );
    assert!(audit(ms.journal(), "receive").is_empty());
    let refused = audit(ms.journal(), "refuse");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|d| d.contains("code=bad-signature")),
        "{refused:?}"
    );
    assert!(
        refused[1].contains("LONDON"),
        "the audit names the claimed signer: {refused:?}"
    );

    // CONTROL: the very same message, signed with the pinned key, is accepted.
    let genuine = seal(&message, &wk, &mk).expect("seal");
    receipt_of(
        raw.frame(FrameKind::Message, genuine).await,
        &mk,
        &wk.name,
        message.id,
    );
    assert_eq!(inbox(&ms).await, vec![message.id]);
    let verified = ms.journal().verify_audit(&mk.signing).expect("read");
    assert!(verified.is_ok(), "the audit chain holds: {verified:?}");
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_of_one_peer_relayed_by_another_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let london = Site::create(
        tmp.path(),
        "LONDON",
        "en",
        free_addr(),
        &[m.entry(Some(m.listen), None)],
        FAST_LINK,
    );
    // MOSCOW pins both WASHINGTON and LONDON.
    let peers = [
        w.entry(Some(w.listen), None),
        london.entry(Some(london.listen), None),
    ];
    let m = Site::create(tmp.path(), "MOSCOW", "ru", m.listen, &peers, FAST_LINK);
    let ms = m.start().await;
    let (wk, lk, mk) = (w.keys(), london.keys(), m.keys().public());

    // WASHINGTON's genuine message, sent over LONDON's authenticated connection.
    let message = build(
        &general("for MOSCOW from WASHINGTON"),
        "WASHINGTON",
        "MOSCOW",
        1,
    );
    let sealed = seal(&message, &wk, &mk).expect("seal");
    let via_london = Raw::hello(&lk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("LONDON is a pinned peer");
    let r = refusal_of(
        via_london.frame(FrameKind::Message, sealed.clone()).await,
        &mk,
        &lk.name,
    );
    assert_eq!(r.code, RefusalCode::BadSignature, "{r:?}");
    assert_eq!(r.id, Some(message.id));
    assert!(
        inbox(&ms).await.is_empty(),
        "a relayed message is not stored"
    );
    let refused = audit(ms.journal(), "refuse");
    assert!(
        refused.len() == 1
            && refused[0].contains("peer=LONDON")
            && refused[0].contains("code=bad-signature"),
        "{refused:?}"
    );

    // CONTROL: the same bytes over WASHINGTON's own connection are accepted.
    let direct = Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("hello");
    receipt_of(
        direct.frame(FrameKind::Message, sealed).await,
        &mk,
        &wk.name,
        message.id,
    );
    assert_eq!(inbox(&ms).await, vec![message.id]);
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_the_size_limit_is_refused_as_oversize() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;

    // Within the frame cap, but decrypting to more than a message may be.
    let mut big = build(&general("big"), "WASHINGTON", "MOSCOW", 1);
    big.text = "a".repeat(1_060_000);
    let sealed = seal(&big, &wk, &mk).expect("seal");
    assert!(
        sealed.len() <= FrameKind::Message.max_len(),
        "{} bytes",
        sealed.len()
    );
    let r = refusal_of(raw.frame(FrameKind::Message, sealed).await, &mk, &wk.name);
    assert_eq!(r.code, RefusalCode::Oversize, "{r:?}");
    assert!(inbox(&ms).await.is_empty());
    assert!(
        audit(ms.journal(), "refuse")
            .iter()
            .any(|d| d.contains("code=oversize"))
    );

    // CONTROL: a long message within the limit is accepted.
    let mut long = build(&general("long"), "WASHINGTON", "MOSCOW", 2);
    long.text = "a".repeat(900_000);
    receipted(&raw, &long, &wk, &mk).await;
    assert_eq!(inbox(&ms).await, vec![long.id]);
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_frame_is_answered_as_a_duplicate_and_shown_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let (wk, mk) = (w.keys(), m.keys().public());
    let message = build(&general("once"), "WASHINGTON", "MOSCOW", 1);
    let frame = Frame::new(FrameKind::Message, seal(&message, &wk, &mk).expect("seal")).encode();

    let raw = Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("hello");
    // The first delivery is the CONTROL: it is stored and shown.
    let first = receipt_of(raw.send(&frame).await, &mk, &wk.name, message.id);
    let second = receipt_of(raw.send(&frame).await, &mk, &wk.name, message.id);
    raw.conn.close(0u8.into(), b"done");
    let again = Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("hello on a new connection");
    let third = receipt_of(again.send(&frame).await, &mk, &wk.name, message.id);
    assert_eq!(
        first, second,
        "a duplicate is answered with the same receipt"
    );
    assert_eq!(first, third, "also on a new connection");

    assert_eq!(inbox(&ms).await, vec![message.id]);
    assert_eq!(audit(ms.journal(), "receive").len(), 1);
    let received = drain(&mut mev)
        .into_iter()
        .filter(|e| matches!(e, Event::Received { .. }))
        .collect::<Vec<_>>();
    assert_eq!(received.len(), 1, "shown once: {received:?}");
    assert!(matches!(&received[0], Event::Received { id, .. } if *id == message.id));
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// Revisions
// ---------------------------------------------------------------------------

/// Puts a message into `journal`'s outbox to MOSCOW, its signed body written
/// by hand (`edit` makes it another build's), so the real station sends it.
async fn release_by_hand(
    journal: &Journal,
    keys: &Arc<StationKeys>,
    peer: &PeerKeys,
    subject: &str,
    edit: fn(&mut JsonObject),
) -> MessageId {
    let (keys, peer, subject) = (keys.clone(), peer.clone(), subject.to_string());
    let (released, _) = journal
        .release(name("MOSCOW"), move |serial| {
            let message = build(&general(&subject), "WASHINGTON", "MOSCOW", serial);
            let sealed = seal_body(&rewritten(&message, edit), &keys, &peer);
            Ok((message, sealed))
        })
        .done()
        .await
        .expect("released into the outbox");
    released.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_at_a_newer_revision_is_refused_by_revision_and_not_retried() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let wk = Arc::new(w.keys());
    let mk = m.keys().public();

    // A newer WASHINGTON's message (revision 99, a field this build does
    // not know), genuinely signed, and the same message at our revision as
    // the CONTROL, both in WASHINGTON's outbox before its station starts.
    let journal = Journal::open(
        &w.config().journal_path,
        Some(CheckpointKey {
            station: wk.name.clone(),
            key: wk.signing.clone(),
        }),
    )
    .expect("journal");
    let bad = release_by_hand(&journal, &wk, &mk, "from a newer build", newer).await;
    let good = release_by_hand(&journal, &wk, &mk, "from this build", |_| {}).await;
    drop(journal);

    let ws = w.start().await;
    let mut wev = ws.subscribe();
    let ms = m.start().await;

    // WASHINGTON settles the refusal only once it verified MOSCOW's
    // signature on it, so this event is a signed refusal.
    let refused = wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Refused { id, .. } if *id == bad),
    )
    .await;
    let Event::Refused {
        code, detail, peer, ..
    } = refused
    else {
        unreachable!()
    };
    assert_eq!(
        (code.as_str(), peer.as_str()),
        ("unsupported-revision", "MOSCOW")
    );
    assert_eq!(detail, revision_99_words());
    let refused_at = tokio::time::Instant::now();

    // CONTROL: the same message at our revision is receipted and stored.
    eventually(Duration::from_secs(20), "the control's receipt", || {
        ws.journal()
            .find(&good.to_string())
            .is_ok_and(|r| r.receipt_at.is_some())
    })
    .await;
    assert_eq!(received(ms.journal()), vec![good]);

    let row = ws.journal().find(&bad.to_string()).expect("row");
    assert_eq!(row.state, MessageState::Refused);
    assert_eq!(
        row.refusal.as_deref(),
        Some(format!("unsupported-revision: {}", revision_99_words()).as_str())
    );
    assert!(row.receipt_at.is_none());

    // Not retried: a few seconds on, MOSCOW has refused it once, and
    // stored nothing of it.
    tokio::time::sleep_until(refused_at + Duration::from_secs(3)).await;
    let at_moscow = audit(ms.journal(), "refuse");
    assert_eq!(at_moscow.len(), 1, "refused again: {at_moscow:?}");
    assert!(
        at_moscow[0].contains("peer=WASHINGTON")
            && at_moscow[0].contains("code=unsupported-revision")
            && at_moscow[0].contains(&revision_99_words()),
        "{at_moscow:?}"
    );
    assert_eq!(received(ms.journal()), vec![good]);
    assert_eq!(
        ws.journal().find(&bad.to_string()).expect("row").state,
        MessageState::Refused
    );
    assert!(
        !drain(&mut wev)
            .iter()
            .any(|e| matches!(e, Event::Refused { id, .. } if *id == bad)),
        "the refused message was settled again"
    );
    ws.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_from_before_revisions_is_still_accepted() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;

    // Written as a build before revisions wrote it: no `revision` at all.
    let old = build(&general("from an older build"), "WASHINGTON", "MOSCOW", 1);
    let body = rewritten(&old, older);
    assert!(!String::from_utf8_lossy(&body).contains("revision"));
    receipt_of(
        raw.frame(FrameKind::Message, seal_body(&body, &wk, &mk))
            .await,
        &mk,
        &wk.name,
        old.id,
    );
    assert_eq!(received(ms.journal()), vec![old.id]);

    // CONTROL: the revision is read, not ignored: the same shape of body
    // one revision ahead of us is refused, and not stored.
    let ahead = build(&general("one revision ahead"), "WASHINGTON", "MOSCOW", 2);
    let body = rewritten(&ahead, |o| {
        o.insert("revision".into(), (REVISION + 1).into());
    });
    let r = refusal_of(
        raw.frame(FrameKind::Message, seal_body(&body, &wk, &mk))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::UnsupportedRevision, "{r:?}");
    assert_eq!(
        r.detail,
        format!(
            "message revision {}; this station reads up to revision {REVISION}; upgrade hotline",
            REVISION + 1
        )
    );
    assert_eq!(received(ms.journal()), vec![old.id]);
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_at_a_newer_revision_keeps_the_link_down_and_is_audited() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let (wk, mk) = (w.keys(), m.keys().public());

    let hello = rewritten(&hello_body(&wk, &mk), newer);
    let refused = Raw::hello_with(&wk, &mk, m.listen, ALPN_LIVE, &hello).await;
    assert!(refused.is_err(), "a newer hello was answered");
    let words =
        format!("hello revision 99; this station reads up to revision {REVISION}; upgrade hotline");
    eventually(
        Duration::from_secs(5),
        "an audit entry naming the hello's revision",
        || {
            audit(ms.journal(), "connection-refused")
                .iter()
                .any(|d| d.contains("WASHINGTON") && d.contains(&words))
        },
    )
    .await;
    let alarm = wait_event(
        &mut mev,
        Duration::from_secs(5),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::ConnectionRefused),
    )
    .await;
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.text.contains(&words)),
        "{alarm:?}"
    );
    assert!(
        !drain(&mut mev)
            .iter()
            .any(|e| matches!(e, Event::LinkUp { .. })),
        "a refused hello must never bring the link up"
    );
    assert!(
        ms.status().links.iter().all(|l| !l.up),
        "{:?}",
        ms.status().links
    );

    // CONTROL: the same hello at our revision brings the link up.
    let hello = rewritten(&hello_body(&wk, &mk), |_| {});
    let (raw, theirs) = Raw::hello_with(&wk, &mk, m.listen, ALPN_LIVE, &hello)
        .await
        .expect("a hello at our revision is answered");
    assert_eq!(theirs.revision, REVISION);
    wait_event(
        &mut mev,
        Duration::from_secs(5),
        |e| matches!(e, Event::LinkUp { peer, .. } if peer == "WASHINGTON"),
    )
    .await;
    raw.conn.close(0u8.into(), b"done");
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_document_a_station_writes_is_at_this_revision() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let (wk, mk) = (w.keys(), m.keys().public());

    // The hello MOSCOW answers with.
    let hello = serde_json::to_vec(&hello_body(&wk, &mk)).expect("json");
    let (raw, theirs) = Raw::hello_with(&wk, &mk, m.listen, ALPN_LIVE, &hello)
        .await
        .expect("hello");
    assert_eq!(theirs.revision, REVISION, "hello");

    // A message as a station composes it, and MOSCOW's receipt for it.
    let message = build(&general("revision"), "WASHINGTON", "MOSCOW", 1);
    assert_eq!(message.revision, REVISION, "message");
    let doc = receipted(&raw, &message, &wk, &mk).await;
    let receipt: ReceiptBody = docs::open(Kind::Receipt, &doc, &mk, &wk.name).expect("receipt");
    assert_eq!(receipt.revision, REVISION, "receipt");

    // A refusal.
    let mut invalid = build(&missile_launch(), "WASHINGTON", "MOSCOW", 2);
    invalid.fields.insert("count".into(), "abc".into());
    let refusal = refusal_of(
        raw.frame(FrameKind::Message, seal(&invalid, &wk, &mk).expect("seal"))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(refusal.revision, REVISION, "refusal");

    // The answer to a link test.
    let test = docs::LinkTestBody {
        protocol: docs::protocol(),
        revision: REVISION,
        reply: false,
        nonce: "revision".into(),
        from: wk.name.clone(),
        to: mk.name.clone(),
        time: Timestamp::now(),
        highest_serial: 0,
        cancelled: Vec::new(),
        audit_head: None,
        your_head: None,
    };
    let sealed = docs::seal_link_test(&test, &wk, &mk).expect("seal");
    let answer = match raw.frame(FrameKind::LinkTest, sealed).await {
        Answer::Frame(f) if f.kind == FrameKind::LinkTestReply => f,
        other => panic!("expected a link test reply, got {other}"),
    };
    let reply = docs::open_link_test(&answer.payload, &wk, &mk).expect("reply");
    assert!(reply.reply && reply.nonce == "revision");
    assert_eq!(reply.revision, REVISION, "link test");
    raw.conn.close(0u8.into(), b"done");
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_reset_their_stream_and_are_audited() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;

    let header = |kind: u8, len: u32| {
        let mut v = vec![kind];
        v.extend_from_slice(&len.to_be_bytes());
        v
    };
    let over_cap =
        |kind: FrameKind| header(kind as u8, u32::try_from(kind.max_len()).expect("cap") + 1);
    let truncated = {
        let mut v = header(FrameKind::Message as u8, 100);
        v.extend_from_slice(&[0x55; 10]);
        v
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown kind byte",
            [header(99, 3), vec![1, 2, 3]].concat(),
            "unknown frame kind 99",
        ),
        ("kind byte 0", header(0, 0), "unknown frame kind 0"),
        (
            "attachment offer of the wrong length",
            [header(FrameKind::AttachmentOffer as u8, 3), vec![1, 2, 3]].concat(),
            "attachment offer",
        ),
        (
            "Receipt header over its cap",
            over_cap(FrameKind::Receipt),
            "exceeds the limit",
        ),
        (
            "Message header over its cap",
            over_cap(FrameKind::Message),
            "exceeds the limit",
        ),
        (
            "payload shorter than its header, then finish",
            truncated,
            "shorter than its header",
        ),
        (
            "header cut short, then finish",
            vec![FrameKind::Message as u8, 0, 0],
            "shorter than its header",
        ),
    ];
    let mut faults = Vec::new();
    for (what, bytes, reason) in &cases {
        let before = audit(ms.journal(), "malformed").len();
        match raw.send(bytes).await {
            Answer::Reset(STREAM_MALFORMED) => {}
            other => faults.push(format!(
                "{what}: expected the stream reset with code {STREAM_MALFORMED}, got {other}"
            )),
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let entries = loop {
            let entries = audit(ms.journal(), "malformed");
            if entries.len() > before || tokio::time::Instant::now() >= deadline {
                break entries;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match entries.get(before) {
            Some(d) if d.contains("WASHINGTON") && d.contains(reason) => {}
            Some(d) => faults.push(format!(
                "{what}: audit entry `{d}` does not name the peer and `{reason}`"
            )),
            None => faults.push(format!("{what}: no 'malformed' audit entry")),
        }
        assert!(
            raw.conn.close_reason().is_none(),
            "{what}: a malformed stream closed the whole connection"
        );
    }

    // A well-formed frame of a kind a peer may not send as a request: no
    // answer, and audited.
    let before = audit(ms.journal(), "malformed").len();
    let answer = raw
        .frame(FrameKind::Refusal, b"not a request".to_vec())
        .await;
    assert!(
        matches!(answer, Answer::Nothing | Answer::Reset(_)),
        "{answer:?}"
    );
    eventually(
        Duration::from_secs(5),
        "an audit entry for an unexpected frame",
        || audit(ms.journal(), "malformed").len() > before,
    )
    .await;

    // CONTROL: the same connection still carries a valid message.
    let message = build(&general("still here"), "WASHINGTON", "MOSCOW", 1);
    receipted(&raw, &message, &wk, &mk).await;
    assert_eq!(
        inbox(&ms).await,
        vec![message.id],
        "nothing but the valid message was stored"
    );
    let verified = ms.journal().verify_audit(&mk.signing).expect("read");
    assert!(verified.is_ok(), "the audit chain holds: {verified:?}");
    ms.shutdown().await;
    assert!(
        faults.is_empty(),
        "malformed frames not handled as promised:\n{}",
        faults.join("\n")
    );
}

#[test]
fn frame_decode_never_panics_on_arbitrary_bytes() {
    // xorshift64: deterministic, no dependencies.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seen = BTreeSet::new();
    for i in 0..5000u32 {
        let len = match next() % 10 {
            0 => (next() % 70_000) as usize,
            _ => (next() % 64) as usize,
        };
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half the inputs get a plausible header, so the Ok, size and
        // truncation paths run as well as the unknown-kind one.
        if i % 2 == 0 && len >= 5 {
            bytes[0] = (next() % 10) as u8;
            let payload = (len - 5) as u32;
            let claimed = match next() % 4 {
                0 => payload.saturating_add(1),
                1 => payload.saturating_sub(1),
                2 => next() as u32,
                _ => payload,
            };
            bytes[1..5].copy_from_slice(&claimed.to_be_bytes());
        }
        let result = std::panic::catch_unwind(|| Frame::decode(&bytes))
            .unwrap_or_else(|_| panic!("decode panicked on {bytes:02x?}"));
        match result {
            Ok(f) => {
                assert_eq!(f.encode(), bytes, "a decoded frame re-encodes to its input");
                assert!(f.payload.len() <= f.kind.max_len());
                seen.insert("ok");
            }
            Err(WireError::UnknownKind(k)) => {
                assert_eq!(Some(&k), bytes.first());
                seen.insert("unknown-kind");
            }
            Err(WireError::TooLarge { len, max, .. }) => {
                assert!(len > max);
                seen.insert("too-large");
            }
            Err(WireError::Truncated) => {
                seen.insert("truncated");
            }
            Err(WireError::Trailing) => {
                seen.insert("trailing");
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["ok", "too-large", "trailing", "truncated", "unknown-kind"],
        "every outcome was exercised"
    );
}

/// A peer's signed message carries its fields and the sender's own
/// rendering; one whose original did not match its fields was shown by its
/// original alone. It is stored and receipted as usual, but flagged: an
/// alarm and an audit entry. The control, a message whose two texts
/// agree, raises neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_original_differs_from_its_fields_is_flagged() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let good = build(&general("water levels"), "WASHINGTON", "MOSCOW", 1);
    receipted(&raw, &good, &wk, &mk).await;
    let flagged = |ms: &Station| {
        ms.alarms()
            .into_iter()
            .filter(|a| a.kind == hotline::station::AlarmKind::OriginalDiffers)
            .collect::<Vec<_>>()
    };
    assert!(
        flagged(&ms).is_empty(),
        "control: agreeing texts raise nothing"
    );
    assert!(audit(ms.journal(), "original-differs").is_empty());

    let mut two_texts = build(&general("water levels"), "WASHINGTON", "MOSCOW", 2);
    two_texts.original.text = "The dam has failed; evacuate.".into();
    receipted(&raw, &two_texts, &wk, &mk).await;
    assert_eq!(inbox(&ms).await.len(), 2, "stored and receipted as usual");
    let alarms = flagged(&ms);
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].id, Some(two_texts.id));
    assert!(
        alarms[0].text.contains("WASHINGTON/2"),
        "{}",
        alarms[0].text
    );
    let entries = audit(ms.journal(), "original-differs");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].contains(&two_texts.id.to_string()),
        "{entries:?}"
    );

    // A message this station cannot check (a template version it does
    // not have, and a sender's language it does not know) claims nothing
    // either way: stored and receipted, no alarm, no audit entry, though
    // its original says what its fields do not.
    for (serial, version, language) in [(3, 99, "en"), (4, 1, "tlh")] {
        let mut unchecked = build(&general("water levels"), "WASHINGTON", "MOSCOW", serial);
        unchecked.template.version = version;
        unchecked.original.language = language.into();
        unchecked.original.text = "The dam has failed; evacuate.".into();
        receipted(&raw, &unchecked, &wk, &mk).await;
    }
    assert_eq!(inbox(&ms).await.len(), 4, "both stored and receipted");
    assert_eq!(flagged(&ms).len(), 1, "still only the one that differs");
    assert_eq!(audit(ms.journal(), "original-differs").len(), 1);
    ms.shutdown().await;
}

/// Declared attachment sizes are summed without wrapping: two sizes that
/// add past 2^64 would wrap to a few bytes and pass the quota and the
/// message limit in a release build; saturated, they are refused
/// "oversize" before anything is stored. CONTROL: one small declared
/// attachment on the same connection is receipted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_attachment_sizes_that_would_wrap_are_refused() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let declare = |serial: u64, sizes: &[u64]| {
        let mut m = build(&general("annexes"), "WASHINGTON", "MOSCOW", serial);
        m.attachments = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| AttachmentRef {
                name: format!("annex-{i}.bin"),
                size,
                sha256: "ab".repeat(32),
            })
            .collect();
        m
    };
    let small = declare(1, &[1024]);
    receipted(&raw, &small, &wk, &mk).await;
    // 2^63 + 2^63 + 4096 wraps to 4096.
    let wrapping = declare(2, &[1 << 63, 1 << 63, 4096]);
    let r = refusal_of(
        raw.frame(FrameKind::Message, seal(&wrapping, &wk, &mk).expect("seal"))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::Oversize, "{r:?}");
    assert_eq!(r.id, Some(wrapping.id), "{r:?}");
    assert_eq!(inbox(&ms).await.len(), 1, "only the control was stored");
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// Promises of the link: what a pinned peer must do, and what it is told
// ---------------------------------------------------------------------------

/// A message sealed to a third station is refused "not for us"; bytes that
/// are not a sealed message at all are refused "malformed"; both signed and
/// audited, nothing stored. CONTROL: the same message sealed to MOSCOW on
/// the same connection is receipted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_not_for_us_and_malformed_come_over_the_link_signed() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let london = StationKeys::generate(name("LONDON"))
        .expect("keys")
        .public();

    let message = build(&general("for someone else"), "WASHINGTON", "MOSCOW", 1);
    // Addressed to MOSCOW but encrypted only to LONDON (and the sender).
    let json = serde_json::to_vec(&message).expect("json");
    let elsewhere = seal_body(&json, &wk, &london);
    let r = refusal_of(
        raw.frame(FrameKind::Message, elsewhere).await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::NotForUs, "{r:?}");

    let r = refusal_of(
        raw.frame(
            FrameKind::Message,
            b"age-encryption.org/v1\n-> nonsense".to_vec(),
        )
        .await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::Malformed, "{r:?}");
    assert!(
        inbox(&ms).await.is_empty(),
        "refused messages are not stored"
    );
    let refused = audit(ms.journal(), "refuse");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].contains("code=not-for-us"), "{refused:?}");
    assert!(refused[1].contains("code=malformed"), "{refused:?}");

    let ours = seal(&message, &wk, &mk).expect("seal");
    receipt_of(
        raw.frame(FrameKind::Message, ours).await,
        &mk,
        &wk.name,
        message.id,
    );
    assert_eq!(inbox(&ms).await, vec![message.id]);
    ms.shutdown().await;
}

/// A pinned peer that sends anything before its hello is refused and the
/// connection closed, audited under its name. CONTROL: the same peer and
/// frame after a hello is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_must_come_first_on_a_connection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let (wk, mk) = (w.keys(), m.keys().public());
    let message = build(&general("too early"), "WASHINGTON", "MOSCOW", 1);
    let sealed = seal(&message, &wk, &mk).expect("seal");

    let early = Raw::connect(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("TLS");
    let answer = early.frame(FrameKind::Message, sealed.clone()).await;
    assert!(!matches!(answer, Answer::Frame(_)), "answered: {answer}");
    let closed = tokio::time::timeout(ANSWER_LIMIT, early.conn.closed())
        .await
        .expect("the connection is closed");
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if &c.reason[..] == b"hello expected"),
        "{closed:?}"
    );
    eventually(Duration::from_secs(5), "the refusal audited", || {
        audit(ms.journal(), "connection-refused")
            .iter()
            .any(|d| d.contains("WASHINGTON: sent Message before its hello"))
    })
    .await;
    assert!(inbox(&ms).await.is_empty());

    let raw = Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("hello");
    receipt_of(
        raw.frame(FrameKind::Message, sealed).await,
        &mk,
        &wk.name,
        message.id,
    );
    ms.shutdown().await;
}

/// A hello whose clock is beyond the bound keeps the link but marks it
/// degraded and raises the clock-skew alarm; a hello within the bound
/// clears it again (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_beyond_the_bound_degrades_the_link_and_alarms() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let (wk, mk) = (w.keys(), m.keys().public());
    let bound = m.config().link.max_clock_skew;

    let mut skewed = hello_body(&wk, &mk);
    let sent = std::time::Instant::now();
    skewed.time = Timestamp::now() - (bound + Duration::from_secs(60));
    let body = serde_json::to_vec(&skewed).expect("json");
    let (_raw, _) = Raw::hello_with(&wk, &mk, m.listen, ALPN_LIVE, &body)
        .await
        .expect("a skewed hello is still answered");
    let alarm = wait_event(
        &mut mev,
        Duration::from_secs(5),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::ClockSkew),
    )
    .await;
    // The skew the station measures is 90 s plus however long the hello
    // took to reach it: each tenth of a second up to that is its exact text.
    let tenths = 900..=900 + sent.elapsed().as_millis().div_ceil(100) as u32;
    let texts: Vec<String> = tenths
        .map(|t| {
            let skew = format!("{}.{}", t / 10, t % 10);
            hotline::lang::format(
                hotline::domain::Language::RU,
                "alarm.clock_skew",
                &[("peer", &"WASHINGTON"), ("skew", &skew), ("bound", &30)],
            )
        })
        .collect();
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.peer.as_deref() == Some("WASHINGTON")
        && texts.contains(&a.text)),
        "{alarm:?}"
    );
    let state = |ms: &Station| {
        ms.status()
            .health
            .get("WASHINGTON")
            .map(|h| h.state.clone())
    };
    assert_eq!(state(&ms).as_deref(), Some("degraded"));

    let (_fresh, _) = Raw::hello_with(
        &wk,
        &mk,
        m.listen,
        ALPN_LIVE,
        &serde_json::to_vec(&hello_body(&wk, &mk)).expect("json"),
    )
    .await
    .expect("hello");
    wait_event(&mut mev, Duration::from_secs(5), |e| {
        matches!(
            e,
            Event::AlarmCleared {
                kind: AlarmKind::ClockSkew,
                ..
            }
        )
    })
    .await;
    assert_ne!(state(&ms).as_deref(), Some("degraded"));
    ms.shutdown().await;
}

/// A link test due while the peer is down is missed and alarms; with the
/// peer up the same interval passes without one (the control, first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_link_test_alarms() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let link = "test_interval = \"2s\"\nflash_receipt_alarm = \"5s\"\nretry_window = \"5s\"\n";
    let (w, m) = pair(tmp.path(), link);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let passed = wait_event(
        &mut mev,
        Duration::from_secs(15),
        |e| matches!(e, Event::LinkTest { peer, ok: true, .. } if peer == "WASHINGTON"),
    )
    .await;
    assert!(
        ms.alarms()
            .iter()
            .all(|a| a.kind != AlarmKind::MissedLinkTest),
        "{passed:?}: {:?}",
        ms.alarms()
    );
    ws.shutdown().await;
    let alarm = wait_event(
        &mut mev,
        Duration::from_secs(15),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::MissedLinkTest),
    )
    .await;
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.peer.as_deref() == Some("WASHINGTON")),
        "{alarm:?}"
    );
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// A hostile pinned peer
// ---------------------------------------------------------------------------

/// This process's resident memory, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// The text of the next gap alarm about WASHINGTON.
async fn next_gap_alarm(events: &mut broadcast::Receiver<Event>) -> String {
    match wait_event(
        events,
        Duration::from_secs(15),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::Gap),
    )
    .await
    {
        Event::Alarm(a) => a.text,
        other => panic!("{other:?}"),
    }
}

/// A pinned peer whose hello declares serial 2^40 costs a bounded span of
/// work: the gap is reported as one bounded range, memory stays put, the
/// tick keeps time (a FLASH with no receipt still alarms) and the station
/// stops when asked. The control, first: a declaration of three serials
/// is reported as exactly those three, through the same wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_declaring_serial_two_to_the_forty_cannot_stall_the_station() {
    use hotline::station::gaps::TRACKED_AHEAD;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let (wk, mk) = (w.keys(), m.keys().public());
    let declaring = |highest| {
        let mut body = hello_body(&wk, &mk);
        body.highest_serial = highest;
        serde_json::to_vec(&body).expect("json")
    };

    let (_three, _) = Raw::hello_with(&wk, &mk, m.listen, ALPN_LIVE, &declaring(3))
        .await
        .expect("hello");
    let control = next_gap_alarm(&mut mev).await;
    // MOSCOW works in Russian: its alarms are in Russian.
    assert_eq!(
        control,
        hotline::lang::format(
            hotline::domain::Language::RU,
            "alarm.gap",
            &[("peer", &"WASHINGTON"), ("serials", &"1–3")]
        ),
        "the control: a small declaration is judged serial by serial"
    );

    // Logged in first: a log-in's argon2 takes 128 MiB for a moment.
    let session = door::login(&ms).await;
    let before = resident();
    let huge = 1u64 << 40;
    let (raw, _) = Raw::hello_with(&wk, &mk, m.listen, ALPN_LIVE, &declaring(huge))
        .await
        .expect("a hello declaring 2^40 is answered");
    let text = next_gap_alarm(&mut mev).await;
    assert_eq!(
        text,
        hotline::lang::format(
            hotline::domain::Language::RU,
            "alarm.gap_beyond",
            &[
                ("serials", &format!("1–{TRACKED_AHEAD}")),
                ("peer", &"WASHINGTON"),
                ("declared", &huge),
                ("tracked", &TRACKED_AHEAD),
            ]
        ),
        "one bounded range"
    );

    // The ticks go on: a FLASH the hostile peer never receipts alarms.
    let mut draft = general("still on watch");
    draft.precedence = Some(hotline::domain::Precedence::Flash);
    let flash = door::release(&ms, &session, "WASHINGTON", draft).await;
    let alarm = wait_event(
        &mut mev,
        ms.config().link.flash_receipt_alarm + Duration::from_secs(10),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::FlashNoReceipt),
    )
    .await;
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.id == Some(flash.id)),
        "{alarm:?}"
    );
    // The process is shared with other tests (and their log-ins), so the
    // bound is loose; the unbounded walk grew a station by 1.1 GB in 25 s.
    let grown = resident().saturating_sub(before);
    eprintln!(
        "2^40: resident memory grew by {} MiB after the declaration",
        grown >> 20
    );
    assert!(
        grown < 512 << 20,
        "memory grew by {} MiB after the declaration",
        grown >> 20
    );
    drop(raw);
    tokio::time::timeout(Duration::from_secs(15), ms.shutdown())
        .await
        .expect("the station stops when asked");
}

/// An acknowledgement names its operator as operator names are written;
/// one carrying an escape sequence is rejected as it is parsed, and its
/// text reaches neither the audit log nor any event. The control: the same
/// acknowledgement with a valid name gets past the parse (and is refused
/// only because no such message was sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_with_an_invalid_operator_name_is_rejected() {
    use hotline::station::docs::AckBody;
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let ack_by = |operator: &str| {
        let body = AckBody {
            protocol: "hotline/1".into(),
            revision: REVISION,
            id: MessageId::new(),
            from: wk.name.clone(),
            to: mk.name.clone(),
            operator: hotline::domain::OperatorName::new("placeholder").expect("name"),
            at: Timestamp::now(),
            sealed_sha256: None,
        };
        let json = rewritten(&body, |o| {
            o.insert("operator".into(), operator.into());
        });
        signed::sign(Kind::Ack, &wk.name, &json, &wk.signing)
    };

    raw.frame(FrameKind::Ack, ack_by("j.smith")).await;
    let control = audit(ms.journal(), "refuse");
    assert!(
        control.len() == 1 && control[0].contains("ack for ") && !control[0].contains("rejected"),
        "the control is parsed and refused by id: {control:?}"
    );

    raw.frame(FrameKind::Ack, ack_by("evil\u{1b}]0;pwned\u{7}"))
        .await;
    let refused = audit(ms.journal(), "refuse");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[1].contains("ack rejected") && refused[1].contains("operator name"),
        "{refused:?}"
    );
    assert!(
        !refused[1].contains('\u{1b}') && !refused[1].contains('\u{7}'),
        "no raw escape in the audit: {:?}",
        refused[1]
    );
    ms.shutdown().await;
}

// ---------------------------------------------------------------------------
// Exact settlement
// ---------------------------------------------------------------------------

impl Raw {
    /// Takes the next request the station sends on this connection, and
    /// answers it with `answer` of it.
    async fn answer_next(&self, answer: impl FnOnce(&Frame) -> Frame) -> Frame {
        let (mut send, mut recv) = tokio::time::timeout(ANSWER_LIMIT, self.conn.accept_bi())
            .await
            .expect("a request in time")
            .expect("a stream");
        let bytes = recv.read_to_end(2 << 20).await.expect("the request");
        let request = Frame::decode(&bytes).expect("a frame");
        send.write_all(&answer(&request).encode())
            .await
            .expect("answer");
        let _ = send.finish();
        request
    }
}

/// A refusal from `keys` to `to`, as the peer signs it.
fn refusal_frame(
    keys: &StationKeys,
    to: &StationName,
    id: Option<MessageId>,
    attachment: Option<u32>,
    code: RefusalCode,
) -> Frame {
    let body = RefusalBody {
        protocol: "hotline/1".into(),
        revision: REVISION,
        id,
        attachment,
        from: keys.name.clone(),
        to: to.clone(),
        code,
        detail: "refused by the test".into(),
    };
    let json = serde_json::to_vec(&body).expect("json");
    Frame::new(
        FrameKind::Refusal,
        signed::sign(Kind::Refusal, &keys.name, &json, &keys.signing),
    )
}

/// A receipt from `keys` to `to` of message `id` (naming `sealed`), as the
/// peer signs it.
fn receipt_frame(
    keys: &StationKeys,
    to: &StationName,
    id: MessageId,
    sealed: Option<&[u8]>,
) -> Frame {
    let body = ReceiptBody {
        sealed_sha256: sealed.map(docs::sealed_sha256),
        protocol: "hotline/1".into(),
        revision: REVISION,
        of: ReceiptOf::Message,
        id,
        attachment: None,
        from: keys.name.clone(),
        to: to.clone(),
        stored_at: Timestamp::now(),
    };
    let json = serde_json::to_vec(&body).expect("json");
    Frame::new(
        FrameKind::Receipt,
        signed::sign(Kind::Receipt, &keys.name, &json, &keys.signing),
    )
}

/// An acknowledgement from `keys` of message `id`, sent to `to`, naming
/// the sealed message by `sealed_sha256`.
fn ack_doc(
    keys: &StationKeys,
    to: &StationName,
    id: MessageId,
    sealed_sha256: Option<String>,
) -> Vec<u8> {
    let body = hotline::station::docs::AckBody {
        sealed_sha256,
        protocol: "hotline/1".into(),
        revision: REVISION,
        id,
        from: keys.name.clone(),
        to: to.clone(),
        operator: hotline::domain::OperatorName::new("j.smith").expect("name"),
        at: Timestamp::now(),
    };
    signed::sign(
        Kind::Ack,
        &keys.name,
        &serde_json::to_vec(&body).expect("json"),
        &keys.signing,
    )
}

async fn state_of(station: &Station, id: MessageId) -> MessageState {
    door::list(station, Direction::Out)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| r.state)
        .expect("the row")
}

/// A refusal settles only what it names: one of an attachment, or one
/// that names no message with a code only a reader of it could give,
/// leaves the message to be sent again; one naming no message that the
/// peer could not read settles it as REFUSED. An acknowledgement of that
/// refused message is then refused in turn and changes nothing. The
/// control: a message receipted is acknowledged by the same kind of
/// acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_settle_only_what_they_name_and_a_refused_message_is_never_acknowledged() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let mut mev = ms.subscribe();
    let session = door::login(&ms).await;
    let a = door::release(&ms, &session, "WASHINGTON", general("to be refused")).await;

    let first = raw
        .answer_next(|_| {
            refusal_frame(&wk, &mk.name, None, None, RefusalCode::UnknownTemplateField)
        })
        .await;
    assert_eq!(first.kind, FrameKind::Message);
    let again = raw
        .answer_next(|_| refusal_frame(&wk, &mk.name, Some(a.id), Some(0), RefusalCode::Oversize))
        .await;
    assert_eq!(again.payload, first.payload, "the same message, sent again");
    let third = raw
        .answer_next(|_| refusal_frame(&wk, &mk.name, None, None, RefusalCode::Malformed))
        .await;
    assert_eq!(third.payload, first.payload, "and again");
    wait_event(
        &mut mev,
        Duration::from_secs(10),
        |e| matches!(e, Event::Refused { id, .. } if *id == a.id),
    )
    .await;
    assert_eq!(state_of(&ms, a.id).await, MessageState::Refused);

    let answer = raw
        .frame(FrameKind::Ack, ack_doc(&wk, &mk.name, a.id, None))
        .await;
    let refused = refusal_of(answer, &mk, &wk.name);
    assert_eq!(refused.id, Some(a.id));
    assert!(refused.detail.contains("refused"), "{refused:?}");
    assert_eq!(state_of(&ms, a.id).await, MessageState::Refused);

    // The control: receipted, then acknowledged.
    let b = door::release(&ms, &session, "WASHINGTON", general("to be read")).await;
    raw.answer_next(|r| receipt_frame(&wk, &mk.name, b.id, Some(&r.payload)))
        .await;
    wait_event(
        &mut mev,
        Duration::from_secs(10),
        |e| matches!(e, Event::Receipt { id, .. } if *id == b.id),
    )
    .await;
    match raw
        .frame(FrameKind::Ack, ack_doc(&wk, &mk.name, b.id, None))
        .await
    {
        Answer::Frame(f) if f.kind == FrameKind::Receipt => {
            let body: ReceiptBody =
                docs::open(Kind::Receipt, &f.payload, &mk, &wk.name).expect("a receipt");
            assert_eq!((body.id, body.of), (b.id, ReceiptOf::Ack));
        }
        other => panic!("the control's acknowledgement: {other}"),
    }
    assert_eq!(state_of(&ms, b.id).await, MessageState::Acknowledged);
    ms.shutdown().await;
}

/// A message sent again under an id already received, with other content,
/// is refused, alarmed and audited, and the first stays as it was; the
/// control: the same bytes sent again are a duplicate, answered with the
/// first receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_message_under_a_received_id_is_refused_and_alarmed() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let mut mev = ms.subscribe();
    let first = build(&general("the original"), "WASHINGTON", "MOSCOW", 1);
    let sealed = seal(&first, &wk, &mk).expect("seal");
    receipt_of(
        raw.frame(FrameKind::Message, sealed.clone()).await,
        &mk,
        &wk.name,
        first.id,
    );
    receipt_of(
        raw.frame(FrameKind::Message, sealed).await,
        &mk,
        &wk.name,
        first.id,
    );

    let mut other = first.clone();
    other
        .fields
        .insert("subject".into(), "something else".into());
    let refused = refusal_of(
        raw.frame(FrameKind::Message, seal(&other, &wk, &mk).expect("seal"))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(refused.id, Some(first.id));
    assert!(refused.detail.contains("other content"), "{refused:?}");
    let alarm = wait_event(
        &mut mev,
        Duration::from_secs(5),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::ConflictingId),
    )
    .await;
    assert!(
        matches!(&alarm, Event::Alarm(a) if a.peer.as_deref() == Some("WASHINGTON")),
        "{alarm:?}"
    );
    assert_eq!(inbox(&ms).await, vec![first.id], "stored once");
    assert_eq!(audit(ms.journal(), "conflicting-id").len(), 1);
    let session = door::login(&ms).await;
    let stored = door::open(&ms, &session, first.id).await;
    assert_eq!(
        stored
            .fields
            .get("subject")
            .map(ToString::to_string)
            .as_deref(),
        Some("the original")
    );
    ms.shutdown().await;
}

fn count_rows(journal: &Journal, sql: &str) -> i64 {
    journal
        .read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .expect("count")
}

/// A pinned peer flooding the station: 10,000 unexpected frames and 10,000
/// link tests, in parallel. The journal grows by at most BURST audit
/// entries (the rest counted in one summary, whose count shows every one
/// was seen) and KEPT_PER_PEER link tests, and the station still delivers
/// a FLASH at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_grows_the_journal_by_a_bounded_amount() {
    use hotline::station::docs::LinkTestBody;
    use hotline::station::noisy::BURST;
    use hotline::store::KEPT_PER_PEER;
    const FRAMES: usize = 10_000;
    const LINK_TESTS: usize = 10_000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let (wk, mk) = (Arc::new(w.keys()), m.keys().public());
    let raw = Arc::new(
        Raw::hello(&wk, &mk, m.listen, ALPN_LIVE)
            .await
            .expect("hello"),
    );
    let audit_before = audit_len(ms.journal());
    let (db_before, _) = journal_bytes(&m);

    let unexpected = Frame::new(FrameKind::Receipt, b"not a request".to_vec()).encode();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..32 {
        let (raw, unexpected) = (raw.clone(), unexpected.clone());
        let (wk, mk) = (wk.clone(), mk.clone());
        tasks.spawn(async move {
            for i in (lane..FRAMES).step_by(32) {
                raw.send(&unexpected).await;
                if i < LINK_TESTS {
                    let body = LinkTestBody {
                        protocol: "hotline/1".into(),
                        revision: REVISION,
                        reply: false,
                        nonce: format!("flood-{i}"),
                        from: wk.name.clone(),
                        to: mk.name.clone(),
                        time: Timestamp::now(),
                        highest_serial: 0,
                        cancelled: Vec::new(),
                        audit_head: None,
                        your_head: None,
                    };
                    let sealed = docs::seal_link_test(&body, &wk, &mk).expect("seal");
                    raw.frame(FrameKind::LinkTest, sealed).await;
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a flooding lane");
    }

    let link_tests = count_rows(
        ms.journal(),
        "SELECT count(*) FROM link_tests WHERE peer = 'WASHINGTON' AND direction = 'in'",
    );
    assert_eq!(
        link_tests, KEPT_PER_PEER,
        "{LINK_TESTS} tested, the newest kept"
    );
    let grown = audit_len(ms.journal()) - audit_before;
    assert!(
        grown <= i64::from(BURST),
        "{grown} audit entries for {FRAMES} unexpected frames"
    );
    // In bytes: the database keeps 200 sealed link tests of about a
    // kilobyte and BURST audit entries with their checkpoints; the
    // write-ahead log is reused after each automatic checkpoint (1,000
    // pages, 4 MiB), so it stays below that plus one transaction.
    let (db_after, wal_after) = journal_bytes(&m);
    let db_grown = db_after.saturating_sub(db_before);
    eprintln!(
        "flood: {FRAMES} unexpected frames and {LINK_TESTS} link tests grew the journal by \
         {grown} audit entries and {link_tests} link-test rows: database +{} KiB, \
         write-ahead log {} KiB",
        db_grown >> 10,
        wal_after >> 10
    );
    assert!(db_grown < 1 << 20, "the database grew by {db_grown} bytes");
    assert!(
        wal_after < 6 << 20,
        "the write-ahead log is {wal_after} bytes"
    );

    // Still at work: a FLASH goes out and is receipted.
    let session = door::login(&ms).await;
    let mut draft = general("after the flood");
    draft.precedence = Some(hotline::domain::Precedence::Flash);
    let flash = door::release(&ms, &session, "WASHINGTON", draft).await;
    raw.answer_next(|r| receipt_frame(&wk, &mk.name, flash.id, Some(&r.payload)))
        .await;
    wait_event(
        &mut mev,
        Duration::from_secs(10),
        |e| matches!(e, Event::Receipt { id, .. } if *id == flash.id),
    )
    .await;

    // At the stop, what was only counted is written, as one entry that
    // accounts for every frame.
    ms.shutdown().await;
    let counted = audit(ms.journal(), "peer-misbehaviour-counted");
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert!(
        counted[0].contains(&format!("not-written={} ", FRAMES - BURST as usize)),
        "{counted:?}"
    );
}

/// What a station keeps from one peer is bounded: messages are receipted
/// while under the quota (the control), the storage alarm goes up near it,
/// and the message that would pass it is refused as oversize, naming the
/// quota, and not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_past_its_quota_is_refused_after_an_alarm() {
    // Declared attachments count towards the quota byte for byte, so the
    // third message lands between 90% and 100% of it and the fourth past.
    const QUOTA: u64 = 1 << 20;
    const ATTACHMENT: usize = 320 << 10;
    let tmp = tempfile::tempdir().expect("tempdir");
    let link = format!("{FAST_LINK}\n[attachments]\npeer_quota = \"1 MiB\"\n");
    let (w, m) = pair(tmp.path(), &link);
    let ms = m.start().await;
    let mut mev = ms.subscribe();
    let ws = w.start().await;
    let mut wev = ws.subscribe();
    let session = door::login(&ws).await;
    let file = tmp.path().join("annex.bin");
    std::fs::write(&file, vec![7u8; ATTACHMENT]).expect("attachment");
    let mut alarmed_after = Vec::new();
    let refusal = loop {
        assert!(alarmed_after.len() < 10, "the quota never bit");
        let draft = general(&format!("m{}", alarmed_after.len()));
        let row = door::try_release(&ws, &session, "MOSCOW", draft, vec![file.clone()])
            .await
            .expect("release");
        let settled = wait_event(
            &mut wev,
            Duration::from_secs(15),
            |e| matches!(e, Event::Receipt { id, .. } | Event::Refused { id, .. } if *id == row.id),
        )
        .await;
        match settled {
            // The receipt leaves after the message is stored, and the quota
            // is judged before: an alarm it raised is already on MOSCOW's
            // events.
            Event::Receipt { .. } => alarmed_after.push(
                drain(&mut mev)
                    .iter()
                    .any(|e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::Storage)),
            ),
            Event::Refused { code, detail, .. } => break (code, detail),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        alarmed_after,
        [false, false, true],
        "no alarm below 90% of {QUOTA} bytes (the control), then one while messages were still taken"
    );
    assert_eq!(refusal.0, "oversize");
    assert!(
        refusal.1.contains("its quota for one peer is 1 MiB"),
        "{refusal:?}"
    );
    assert_eq!(inbox(&ms).await.len(), 3, "the refused one is not stored");
    ws.shutdown().await;
    ms.shutdown().await;
}

/// From revision 2 a receipt and an acknowledgement name the sealed message
/// they answer. A receipt naming other content settles nothing (the
/// message is sent again); the one naming what was sent settles it (the
/// control). An acknowledgement naming other content is refused; the one
/// naming it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_acknowledgements_must_name_what_was_sent() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let mut mev = ms.subscribe();
    let session = door::login(&ms).await;
    let a = door::release(&ms, &session, "WASHINGTON", general("named")).await;
    let first = raw
        .answer_next(|_| receipt_frame(&wk, &mk.name, a.id, Some(b"other content")))
        .await;
    let again = raw
        .answer_next(|r| receipt_frame(&wk, &mk.name, a.id, Some(&r.payload)))
        .await;
    assert_eq!(
        again.payload, first.payload,
        "sent again after the wrong receipt"
    );
    wait_event(
        &mut mev,
        Duration::from_secs(10),
        |e| matches!(e, Event::Receipt { id, .. } if *id == a.id),
    )
    .await;
    assert_eq!(state_of(&ms, a.id).await, MessageState::Receipted);

    let wrong = ack_doc(&wk, &mk.name, a.id, Some(docs::sealed_sha256(b"other")));
    let refused = refusal_of(raw.frame(FrameKind::Ack, wrong).await, &mk, &wk.name);
    assert!(
        refused.detail.contains("names other content"),
        "{refused:?}"
    );
    assert_eq!(state_of(&ms, a.id).await, MessageState::Receipted);
    let right = ack_doc(
        &wk,
        &mk.name,
        a.id,
        Some(docs::sealed_sha256(&first.payload)),
    );
    match raw.frame(FrameKind::Ack, right).await {
        Answer::Frame(f) if f.kind == FrameKind::Receipt => {}
        other => panic!("the control's acknowledgement: {other}"),
    }
    assert_eq!(state_of(&ms, a.id).await, MessageState::Acknowledged);
    ms.shutdown().await;
}

/// A peer cannot withdraw or correct one of our messages: a cancellation
/// from WASHINGTON naming MOSCOW's own message is refused (bad-reference)
/// and stored nowhere. CONTROL: the same cancellation naming a message of
/// WASHINGTON's is receipted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_withdraw_one_of_our_messages() {
    let ByHand {
        _tmp,
        ms,
        wk,
        mk,
        raw,
    } = by_hand().await;
    let session = door::login(&ms).await;
    let ours = door::release(&ms, &session, "WASHINGTON", general("MOSCOW's own")).await;
    let cancellation = |reference: MessageId, serial: u64| {
        let mut d = Draft {
            template_id: "cancellation".into(),
            references: vec![reference],
            ..Draft::default()
        };
        d.fields.insert("reason".into(), "withdrawn".into());
        build(&d, "WASHINGTON", "MOSCOW", serial)
    };
    let foreign = cancellation(ours.id, 1);
    let r = refusal_of(
        raw.frame(FrameKind::Message, seal(&foreign, &wk, &mk).expect("seal"))
            .await,
        &mk,
        &wk.name,
    );
    assert_eq!(r.code, RefusalCode::BadReference, "{r:?}");
    assert_eq!(r.id, Some(foreign.id));
    assert!(!inbox(&ms).await.contains(&foreign.id));

    let earlier = build(&general("WASHINGTON's own"), "WASHINGTON", "MOSCOW", 2);
    receipted(&raw, &earlier, &wk, &mk).await;
    let own = cancellation(earlier.id, 3);
    receipted(&raw, &own, &wk, &mk).await;
    let rows = door::list(&ms, Direction::In).await;
    let amended = rows
        .iter()
        .find(|r| r.id == earlier.id)
        .and_then(|r| hotline::console::amended(r, hotline::domain::Language::EN));
    assert_eq!(amended.as_deref(), Some("WITHDRAWN by WASHINGTON/3"));
    ms.shutdown().await;
}
