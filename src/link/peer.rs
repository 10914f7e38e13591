//! Connections to peers: accepting, dialing with backoff and failover,
//! probing the path not in use, the tie-break when both sides dial at once,
//! and serving the streams a peer opens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::attach;
use super::stream::{self, StreamError};
use super::{
    CLOSE_DUPLICATE, CLOSE_PROBE_DONE, CLOSE_REFUSED, CLOSE_REPLACED, DIAL_BACKOFF_MAX,
    DIAL_BACKOFF_MIN, DIAL_TIMEOUT, HELLO_TIMEOUT, INBOUND_STREAM_TIMEOUT, LinkEvent, Live,
    MAX_PENDING_HANDSHAKES, PathKind, PeerEntry, STREAM_MALFORMED, Shared, tls,
};
use crate::domain::StationName;
use crate::wire::{Frame, FrameKind};

pub async fn accept_loop(shared: Arc<Shared>) {
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    while let Some(incoming) = shared.endpoint.accept().await {
        // A stranger costs nothing until it proves it can receive at its
        // address: an unvalidated first packet gets a stateless Retry.
        if !incoming.remote_address_validated() && incoming.may_retry() {
            if let Err(e) = incoming.retry() {
                e.into_incoming().ignore();
            }
            continue;
        }
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            let remote = incoming.remote_address();
            incoming.refuse();
            shared.emit(LinkEvent::Refused {
                remote,
                reason: "too many handshakes at once".into(),
                peer: None,
                timed_out: false,
            });
            continue;
        };
        tokio::spawn(accept_one(shared.clone(), incoming, permit));
    }
}

async fn accept_one(
    shared: Arc<Shared>,
    incoming: quinn::Incoming,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let remote = incoming.remote_address();
    let stranger = |reason: String, timed_out: bool| {
        shared.emit(LinkEvent::Refused {
            remote,
            reason,
            peer: None,
            timed_out,
        });
    };
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => return stranger(format!("handshake: {e}"), false),
    };
    let conn = match tokio::time::timeout(HELLO_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        // The peer gave up on its own dial (both sides dialled at once and
        // it kept the other connection): not a refusal.
        Ok(Err(
            quinn::ConnectionError::ApplicationClosed(_) | quinn::ConnectionError::LocallyClosed,
        )) => return,
        Ok(Err(quinn::ConnectionError::TimedOut)) => {
            return stranger("handshake timed out".into(), true);
        }
        Ok(Err(e)) => return stranger(format!("TLS: {e}"), false),
        Err(_) => return stranger("handshake timed out".into(), true),
    };
    let Some(key) = tls::peer_key(&conn) else {
        conn.close(CLOSE_REFUSED.into(), b"no station key");
        return stranger("presented no Ed25519 station key".into(), false);
    };
    let entry = shared.entry_by_key(&key);
    if entry.is_none() && !shared.settings.admission {
        conn.close(CLOSE_REFUSED.into(), b"unknown key");
        return stranger("presented a key pinned for no peer".into(), false);
    }
    let known = entry.as_ref().map(|e| e.spec.name.clone());
    let refused = |reason: String| {
        shared.emit(LinkEvent::Refused {
            remote,
            reason,
            peer: known.clone(),
            timed_out: false,
        });
    };
    let who = entry
        .as_ref()
        .map_or_else(|| remote.to_string(), |e| e.spec.name.to_string());
    let first = tokio::time::timeout(HELLO_TIMEOUT, async {
        let (send, mut recv) = conn.accept_bi().await?;
        let frame = stream::read_frame(&mut recv).await?;
        Ok::<_, StreamError>((send, frame))
    })
    .await;
    let (mut send, frame) = match first {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            conn.close(CLOSE_REFUSED.into(), b"no hello");
            return refused(format!("{who}: no hello: {e}"));
        }
        Err(_) => {
            conn.close(CLOSE_REFUSED.into(), b"no hello");
            return refused(format!("{who}: no hello in time"));
        }
    };
    if frame.kind == FrameKind::Join && shared.settings.admission {
        drop(permit);
        let answer = shared.upcalls.join(key, remote, frame);
        if stream::write_frame(&mut send, &answer).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(HELLO_TIMEOUT, conn.closed()).await;
        }
        return;
    }
    let Some(entry) = entry else {
        conn.close(CLOSE_REFUSED.into(), b"unknown key");
        return refused(format!(
            "{who}: presented a key pinned for no peer and did not ask to join"
        ));
    };
    let peer = entry.spec.name.clone();
    if !matches!(frame.kind, FrameKind::Hello | FrameKind::Probe) {
        conn.close(CLOSE_REFUSED.into(), b"hello expected");
        return refused(format!("{peer}: sent {:?} before its hello", frame.kind));
    }
    let info = match shared.upcalls.hello_received(&peer, &frame.payload) {
        Ok(info) => info,
        Err(reason) => {
            conn.close(CLOSE_REFUSED.into(), b"bad hello");
            return refused(format!("{peer}: bad hello: {reason}"));
        }
    };
    drop(permit);
    let answer = Frame::new(frame.kind, shared.upcalls.hello(&peer));
    if stream::write_frame(&mut send, &answer).await.is_err() {
        return;
    }
    if frame.kind == FrameKind::Probe {
        // The prober closes; we only answered.
        let _ = tokio::time::timeout(HELLO_TIMEOUT, conn.closed()).await;
        return;
    }
    let live = Live {
        since: std::time::Instant::now(),
        conn: conn.clone(),
        path: PathKind::Inbound,
        dialed_by_us: false,
        peer_boot: info.boot,
    };
    if install(&shared, &entry, live) {
        shared.emit(LinkEvent::Up {
            peer: peer.clone(),
            path: PathKind::Inbound,
            remote,
        });
        serve_streams(shared.clone(), peer, conn).await;
    }
}

/// Installs a connection whose hello was answered. If a live connection to
/// the same peer process exists, both ends keep the one dialed by the
/// station whose name sorts first, so simultaneous dials converge on one
/// connection. Returns whether `new` was kept.
fn install(shared: &Shared, entry: &PeerEntry, new: Live) -> bool {
    let mut slot = entry.slot();
    if let Some(old) = &slot.live {
        let old_alive = old.conn.close_reason().is_none();
        if old_alive && old.peer_boot == new.peer_boot && old.dialed_by_us != new.dialed_by_us {
            let we_dial_first = shared.settings.us < entry.spec.name;
            if old.dialed_by_us == we_dial_first {
                new.conn.close(CLOSE_DUPLICATE.into(), b"duplicate");
                return false;
            }
        }
    }
    if let Some(old) = slot.live.replace(new) {
        old.conn.close(CLOSE_REPLACED.into(), b"replaced");
    }
    slot.last_traffic = Some(jiff::Timestamp::now());
    drop(slot);
    entry.up.send_replace(true);
    true
}

/// Clears the slot if it still holds `conn`; returns whether it did.
fn uninstall(entry: &PeerEntry, conn: &quinn::Connection) -> bool {
    let mut slot = entry.slot();
    let ours = slot
        .live
        .as_ref()
        .is_some_and(|l| l.conn.stable_id() == conn.stable_id());
    if ours {
        slot.live = None;
        drop(slot);
        entry.up.send_replace(false);
    }
    ours
}

/// Answers every stream the peer opens on `conn` until it closes.
async fn serve_streams(shared: Arc<Shared>, peer: StationName, conn: quinn::Connection) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let shared = shared.clone();
        let peer = peer.clone();
        tokio::spawn(answer_stream(shared, peer, send, recv));
    }
}

/// Answers one stream. A frame exchange is bounded as a whole; an
/// attachment stream can take long, so its every read and write is bounded
/// instead (see [`attach::receive`]).
async fn answer_stream(
    shared: Arc<Shared>,
    peer: StationName,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let first = tokio::time::timeout(INBOUND_STREAM_TIMEOUT, stream::read_frame(&mut recv)).await;
    let frame = match first {
        Err(_) => return,
        Ok(Ok(f)) => f,
        Ok(Err(StreamError::Malformed(e))) => {
            let _ = recv.stop(STREAM_MALFORMED.into());
            let _ = send.reset(STREAM_MALFORMED.into());
            static LOG: crate::logging::Limit = crate::logging::Limit::new();
            if let Some(held_back) = LOG.allow() {
                tracing::warn!(%peer, error = %e, held_back, "malformed frame");
            }
            shared.emit(LinkEvent::Malformed {
                peer,
                reason: e.to_string(),
            });
            return;
        }
        Ok(Err(_)) => return,
    };
    if let Some(entry) = shared.entry(&peer) {
        entry.slot().last_traffic = Some(jiff::Timestamp::now());
    }
    if attach::is_offer(&frame) {
        attach::receive(&shared, peer, frame, send, recv).await;
        return;
    }
    let _ = tokio::time::timeout(INBOUND_STREAM_TIMEOUT, async {
        if let Some(answer) = shared.upcalls.frame(peer, frame).await {
            let _ = stream::write_frame(&mut send, &answer).await;
        }
    })
    .await;
}

/// Dials `addr` and exchanges hellos. On success the connection is ready to
/// install; `kind` is Hello for traffic, Probe for a path probe.
async fn dial(
    shared: &Shared,
    entry: &PeerEntry,
    addr: SocketAddr,
    kind: FrameKind,
) -> Result<(quinn::Connection, u64, Duration), String> {
    let started = Instant::now();
    let connecting = shared
        .endpoint
        .connect_with(entry.client(), addr, &tls::sni_for(&shared.settings.us))
        .map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(DIAL_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("no answer from {addr}"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    let hello = Frame::new(kind, shared.upcalls.hello(&entry.spec.name));
    let answer = stream::request(&conn, &hello, i32::MAX, HELLO_TIMEOUT)
        .await
        .map_err(|e| format!("{addr}: hello not answered: {e}"))?;
    if answer.kind != kind {
        conn.close(CLOSE_REFUSED.into(), b"hello expected");
        return Err(format!("{addr}: answered the hello with {:?}", answer.kind));
    }
    let info = shared
        .upcalls
        .hello_received(&entry.spec.name, &answer.payload)
        .inspect_err(|_| {
            conn.close(CLOSE_REFUSED.into(), b"bad hello");
        })?;
    Ok((conn, info.boot, started.elapsed()))
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + frac / 2.0)
}

/// Keeps one peer connected: dials primary then backup with backoff while
/// down; while up, waits for the connection to end, probing the other path
/// at the probe interval and returning to the primary once it answers.
pub async fn maintain(shared: Arc<Shared>, name: StationName) {
    let Some(entry) = shared.entry(&name) else {
        return;
    };
    let entry = &*entry;
    let mut stop = shared.stop.subscribe();
    let mut up = entry.up.subscribe();
    let mut backoff = DIAL_BACKOFF_MIN;
    let mut was_on_primary = true;
    loop {
        if *stop.borrow() {
            return;
        }
        let current = entry.slot().live.as_ref().map(|l| (l.conn.clone(), l.path));
        if let Some((conn, path)) = current {
            backoff = DIAL_BACKOFF_MIN;
            tokio::select! {
                reason = conn.closed() => {
                    if uninstall(entry, &conn) {
                        shared.emit(LinkEvent::Down { peer: name.clone(), reason: reason.to_string() });
                    }
                }
                () = tokio::time::sleep(shared.settings.probe_interval) => {
                    // A probe is not cut short when the connection in use
                    // closes: the peer closes it on purpose once the probe
                    // to the primary replaces it. Its loss is seen on the
                    // next turn, at most a probe's dial later.
                    tokio::select! {
                        () = probe(&shared, entry, path) => {}
                        _ = stop.changed() => return,
                    }
                }
                _ = stop.changed() => return,
            }
            // A probe may have brought the traffic back to the primary: a
            // later loss of it is a new failover.
            if entry
                .slot()
                .live
                .as_ref()
                .is_some_and(|l| l.path == PathKind::Primary)
            {
                was_on_primary = true;
            }
            continue;
        }
        let paths = [
            (PathKind::Primary, entry.spec.primary),
            (PathKind::Backup, entry.spec.backup),
        ];
        for (path, addr) in paths {
            let Some(addr) = addr else { continue };
            match dial(&shared, entry, addr, FrameKind::Hello).await {
                Ok((conn, boot, _)) => {
                    let live = Live {
                        since: std::time::Instant::now(),
                        conn: conn.clone(),
                        path,
                        dialed_by_us: true,
                        peer_boot: boot,
                    };
                    if install(&shared, entry, live) {
                        if path == PathKind::Backup && was_on_primary {
                            shared.emit(LinkEvent::FailedOver {
                                peer: name.clone(),
                                path,
                            });
                        }
                        was_on_primary = path == PathKind::Primary;
                        shared.emit(LinkEvent::Up {
                            peer: name.clone(),
                            path,
                            remote: addr,
                        });
                        tokio::spawn(serve_streams(shared.clone(), name.clone(), conn));
                    }
                    break;
                }
                Err(e) => tracing::info!(peer = %name, ?path, error = %e, "dial failed"),
            }
        }
        if entry.slot().live.is_some() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(jitter(backoff)) => {}
            _ = up.changed() => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
    }
}

/// Probes the path not in use. On the backup, a healthy primary brings the
/// traffic back to it.
async fn probe(shared: &Arc<Shared>, entry: &PeerEntry, current: PathKind) {
    let name = entry.spec.name.clone();
    let (other, addr) = match current {
        PathKind::Primary => (PathKind::Backup, entry.spec.backup),
        PathKind::Backup => (PathKind::Primary, entry.spec.primary),
        PathKind::Inbound => return,
    };
    let Some(addr) = addr else { return };
    let kind = if other == PathKind::Primary {
        FrameKind::Hello
    } else {
        FrameKind::Probe
    };
    match dial(shared, entry, addr, kind).await {
        Ok((conn, boot, rtt)) => {
            entry.slot().probes.insert(other, Some(rtt));
            shared.emit(LinkEvent::Probe {
                peer: name.clone(),
                path: other,
                rtt: Some(rtt),
            });
            if other == PathKind::Primary {
                let live = Live {
                    since: std::time::Instant::now(),
                    conn: conn.clone(),
                    path: PathKind::Primary,
                    dialed_by_us: true,
                    peer_boot: boot,
                };
                if install(shared, entry, live) {
                    shared.emit(LinkEvent::Up {
                        peer: name.clone(),
                        path: PathKind::Primary,
                        remote: addr,
                    });
                    tokio::spawn(serve_streams(shared.clone(), name, conn));
                }
            } else {
                conn.close(CLOSE_PROBE_DONE.into(), b"probe done");
            }
        }
        Err(e) => {
            tracing::info!(peer = %name, path = ?other, error = %e, "probe failed");
            entry.slot().probes.insert(other, None);
            shared.emit(LinkEvent::Probe {
                peer: name,
                path: other,
                rtt: None,
            });
        }
    }
}
