//! Key rotation over the link (`hotline rekey`, `peer confirm`), with real
//! stations, key files and journals:
//!
//! - A rotation is held by the peer until an operator there confirms the
//!   new fingerprint; until then the old key stays in use. Once confirmed,
//!   messages flow both ways on the new keys, the old messages still open
//!   and verify on both sides, the audit chain verifies, an export opens
//!   with the identity file, and a replay of the notice is refused.
//! - A notice signed only by the new key is refused and audited (control:
//!   the genuine notice is held).
//! - A compromised key is refused at once; what was stored since the time
//!   the notice gives is flagged suspect, what came before is not; the link
//!   stays down until the new fingerprint is confirmed.

use ed25519_dalek::VerifyingKey;
use hotline::cli::rekey::rekey_station;
use hotline::crypto::keyfile::age_identity_file;
use hotline::crypto::rotation::notice;
use hotline::station::api::{ApiError, Command, Reply, Session};
use hotline::station::docs::{RotationAnswerBody, RotationState};
use hotline::store::{Answered, Standing};

use super::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Which of `keys` signed the stored message `id` (opened with `opener`'s
/// identities).
fn signed_with(
    station: &Station,
    opener: &StationKeys,
    id: MessageId,
    keys: &[VerifyingKey],
) -> Option<usize> {
    let sealed = station.journal().sealed(&id).expect("sealed");
    let doc = age_io::decrypt(&sealed[..], &opener.identities(), 1 << 20).expect("opens");
    keys.iter().position(|k| {
        signed::parse(&doc)
            .expect("a signed document")
            .verify(Kind::Message, k)
            .is_ok()
    })
}

async fn confirm(
    station: &Station,
    session: &Session,
    peer: &str,
    fingerprint: &str,
) -> Result<Reply, ApiError> {
    station
        .handle(
            session,
            Command::ConfirmRotation {
                peer: peer.into(),
                fingerprint: fingerprint.into(),
            },
        )
        .await
}

async fn delivered(from: &Station, session: &Session, to: &str, subject: &str) -> MessageId {
    let mut events = from.subscribe();
    let id = door::release(from, session, to, general(subject)).await.id;
    wait_event(
        &mut events,
        LIMIT,
        |e| matches!(e, Event::Receipt { id: i, .. } if *i == id),
    )
    .await;
    id
}

/// `hotline rekey` on a stopped site (compromised since `since`).
async fn rekeyed(site: &Site, since: Option<Timestamp>) -> StationKeys {
    let config = site.config();
    tokio::task::spawn_blocking(move || rekey_station(&config, None, Timestamp::now(), since))
        .await
        .expect("rekey task")
        .expect("rekey")
}

/// What `station` says about its keys with `peer`, in its status.
fn keys_status(station: &Station, peer: &str) -> Option<String> {
    station
        .status()
        .health
        .get(peer)
        .and_then(|h| h.keys.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_is_held_until_confirmed_then_both_sides_use_the_new_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let old = w.keys();
    let old_key = old.signing.verifying_key();
    let ms = m.start().await;
    let ws = w.start().await;
    let (wsess, msess) = (door::login(&ws).await, door::login(&ms).await);
    wait_link_up(&ws, "MOSCOW", LIMIT).await;
    let before = delivered(&ws, &wsess, "MOSCOW", "before the rotation").await;
    ws.shutdown().await;
    drop(ws);

    let new = rekeyed(&w, None).await;
    let new_key = new.signing.verifying_key();
    let fingerprint = new.public().fingerprint();
    assert_ne!(new_key, old_key);
    let mut mev = ms.subscribe();
    let ws = w.restart().await;
    let wsess = door::login(&ws).await;

    // MOSCOW holds the notice and shows the new fingerprint; nothing is
    // pinned yet.
    let held = wait_event(
        &mut mev,
        LIMIT,
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::KeyRotation),
    )
    .await;
    let Event::Alarm(alarm) = held else {
        unreachable!()
    };
    assert!(alarm.text.contains(&fingerprint), "{}", alarm.text);
    let rotations = ms
        .journal()
        .peer_rotations("WASHINGTON")
        .expect("rotations");
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].standing, Standing::Pending);
    eventually(LIMIT, "WASHINGTON hears MOSCOW holds the notice", || {
        ws.journal()
            .rotation_answer("MOSCOW", &fingerprint)
            .ok()
            .flatten()
            == Some(Answered::Held)
    })
    .await;

    // Unconfirmed: the old key is still the one in use, both ways.
    wait_link_up(&ws, "MOSCOW", LIMIT).await;
    let unconfirmed = delivered(&ws, &wsess, "MOSCOW", "while unconfirmed").await;
    let mkeys = m.keys();
    assert_eq!(
        signed_with(&ms, &mkeys, unconfirmed, &[old_key, new_key]),
        Some(0),
        "signed with the old key while MOSCOW has not confirmed"
    );
    assert_eq!(
        keys_status(&ws, "MOSCOW").as_deref(),
        Some("our new keys: awaiting their confirmation")
    );

    // A wrong fingerprint confirms nothing (and says what was announced).
    let wrong = old.public().fingerprint();
    match confirm(&ms, &msess, "WASHINGTON", &wrong).await {
        Err(ApiError::Refused { detail }) => {
            assert!(detail.contains(&fingerprint), "{detail}")
        }
        other => panic!("a wrong fingerprint was not refused: {other:?}"),
    }
    // Typed as a person would: lower case, no spaces.
    let typed = fingerprint.to_lowercase().replace(' ', "");
    match confirm(&ms, &msess, "WASHINGTON", &typed).await {
        Ok(Reply::RotationConfirmed { fingerprint: f, .. }) => assert_eq!(f, fingerprint),
        other => panic!("confirmation failed: {other:?}"),
    }
    eventually(LIMIT, "WASHINGTON hears MOSCOW confirmed", || {
        keys_status(&ws, "MOSCOW").is_none()
    })
    .await;

    // Confirmed: new keys both ways, and the change-over completes.
    wait_link_up(&ws, "MOSCOW", LIMIT).await;
    let after = delivered(&ws, &wsess, "MOSCOW", "on the new keys").await;
    assert_eq!(
        signed_with(&ms, &mkeys, after, &[old_key, new_key]),
        Some(1),
        "signed with the new key once MOSCOW confirmed"
    );
    let reply = delivered(&ms, &msess, "WASHINGTON", "answer on the new keys").await;
    eventually(LIMIT, "MOSCOW's change-over completes", || {
        ms.journal()
            .peer_rotations("WASHINGTON")
            .is_ok_and(|r| r[0].standing == Standing::Complete)
    })
    .await;
    assert!(
        door::list(&ws, Direction::In)
            .await
            .iter()
            .any(|r| r.id == reply)
    );

    // The old messages still open and verify, on both sides.
    for id in [before, unconfirmed] {
        let opened = door::open(&ms, &msess, id).await;
        assert_eq!(opened.id, id);
        assert_eq!(door::open(&ws, &wsess, id).await.id, id);
    }

    // An export of a message sealed before the rotation opens with the
    // identity file the station now writes.
    let sealed = ws.journal().sealed(&before).expect("sealed");
    let file = age::IdentityFile::from_buffer(age_identity_file(&w.keys()).as_bytes())
        .expect("identity file")
        .into_identities()
        .expect("identities");
    let ids: Vec<&dyn age::Identity> = file
        .iter()
        .map(|i| i.as_ref() as &dyn age::Identity)
        .collect();
    assert!(age_io::decrypt(&sealed[..], &ids, 1 << 20).is_ok());

    ws.shutdown().await;
    ms.shutdown().await;
    drop(ws);
    // The audit chain verifies under the new key, across the rotation.
    let journal = Journal::open_read_only(&w.config().journal_path).expect("journal");
    let verified = journal.verify_audit(&new_key).expect("read");
    assert!(verified.is_ok(), "{verified:?}");
    // Control: under the old key alone it does not.
    assert!(journal.verify_audit(&old_key).expect("read").is_err());
}

/// The same keys again, through a key file (the type is not `Clone`).
fn twin(keys: &StationKeys, dir: &std::path::Path) -> StationKeys {
    let path = dir.join(format!("twin-{}.key", hotline::domain::MessageId::new()));
    hotline::crypto::write_key_file(&path, keys, None).expect("write");
    hotline::crypto::read_key_file(&path, || Err("none".into())).expect("read")
}

/// MOSCOW's answer to a notice sent by hand.
fn rotation_answer(a: Answer, mk: &PeerKeys, us: &StationName) -> RotationAnswerBody {
    match a {
        Answer::Frame(f) if f.kind == FrameKind::RotationAnswer => {
            docs::open(Kind::RotationAnswer, &f.payload, mk, us).expect("a signed answer")
        }
        other => panic!("answered with {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_signed_only_by_the_new_key_or_replayed_is_refused_and_audited() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let msess = door::login(&ms).await;
    let mk = m.keys().public();
    let k0 = w.keys();
    let k1 = w.keys().rekey(Timestamp::now(), None).expect("rekey");
    let raw = Raw::hello(&k0, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("hello");
    let first = notice(&k1).expect("notice");
    let outer = signed::parse(&first)
        .expect("parses")
        .verify(Kind::Rotation, &k0.signing.verifying_key())
        .expect("genuine")
        .to_vec();
    let forged = signed::sign(Kind::Rotation, &k1.name, &outer, &k1.signing);
    let refused = rotation_answer(raw.frame(FrameKind::Rotation, forged).await, &mk, &k0.name);
    assert_eq!(refused.state, RotationState::Refused);
    assert!(
        refused
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("not signed by a key pinned")),
        "{refused:?}"
    );
    eventually(LIMIT, "the forged notice is audited", || {
        audit(ms.journal(), "key-rotation-refused").len() == 1
    })
    .await;
    assert!(
        ms.journal()
            .peer_rotations("WASHINGTON")
            .expect("read")
            .is_empty()
    );

    // CONTROL: the genuine notice, on the same connection, is held, and
    // confirmed.
    let held = rotation_answer(
        raw.frame(FrameKind::Rotation, first.clone()).await,
        &mk,
        &k0.name,
    );
    assert_eq!(held.state, RotationState::Held, "{held:?}");
    let f1 = k1.public().fingerprint();
    assert_eq!(held.fingerprint, f1);
    confirm(&ms, &msess, "WASHINGTON", &f1)
        .await
        .expect("confirmed");

    // A second rotation, confirmed too; then the first notice, replayed,
    // would take MOSCOW back to keys since replaced: refused and audited.
    let k2 = twin(&k1, tmp.path())
        .rekey(Timestamp::now(), None)
        .expect("rekey");
    let raw = Raw::hello(&k1, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("MOSCOW accepts the confirmed key");
    let second = notice(&k2).expect("notice");
    let held = rotation_answer(raw.frame(FrameKind::Rotation, second).await, &mk, &k1.name);
    assert_eq!(held.state, RotationState::Held, "{held:?}");
    confirm(&ms, &msess, "WASHINGTON", &k2.public().fingerprint())
        .await
        .expect("confirmed");
    let raw = Raw::hello(&k2, &mk, m.listen, ALPN_LIVE)
        .await
        .expect("MOSCOW accepts the newest key");
    let replayed = rotation_answer(raw.frame(FrameKind::Rotation, first).await, &mk, &k2.name);
    assert_eq!(replayed.state, RotationState::Refused, "{replayed:?}");
    assert!(
        replayed
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("replayed")),
        "{replayed:?}"
    );
    eventually(LIMIT, "the replay is audited", || {
        audit(ms.journal(), "key-rotation-refused").len() == 2
    })
    .await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_key_is_refused_at_once_and_what_came_since_is_flagged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let old = w.keys();
    let mk = m.keys().public();
    let ms = m.start().await;
    let ws = w.start().await;
    let (wsess, msess) = (door::login(&ws).await, door::login(&ms).await);
    wait_link_up(&ws, "MOSCOW", LIMIT).await;
    let earlier = delivered(&ws, &wsess, "MOSCOW", "before the exposure").await;
    let since = Timestamp::now();
    let later = delivered(&ws, &wsess, "MOSCOW", "after the exposure").await;
    // CONTROL: the old key opens a connection to MOSCOW now.
    assert!(Raw::hello(&old, &mk, m.listen, ALPN_LIVE).await.is_ok());
    ws.shutdown().await;
    drop(ws);

    let new = rekeyed(&w, Some(since)).await;
    let fingerprint = new.public().fingerprint();
    let mut mev = ms.subscribe();
    let ws = w.restart().await;
    let wsess = door::login(&ws).await;
    wait_event(
        &mut mev,
        LIMIT,
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::KeyCompromised),
    )
    .await;

    // Refused at once: no connection with the old key, no release to the
    // peer, and what was stored after `since` is suspect, not before.
    assert!(
        Raw::hello(&old, &mk, m.listen, ALPN_LIVE).await.is_err(),
        "MOSCOW still accepts the compromised key"
    );
    let rows = door::list(&ms, Direction::In).await;
    let suspect = |id| rows.iter().find(|r| r.id == id).map(|r| r.suspect.clone());
    assert!(suspect(later).flatten().is_some(), "{rows:?}");
    assert_eq!(suspect(earlier), Some(None));
    match door::try_release(
        &ms,
        &msess,
        "WASHINGTON",
        general("to a revoked key"),
        Vec::new(),
    )
    .await
    {
        Err(ApiError::Refused { detail }) => assert!(detail.contains("compromised"), "{detail}"),
        other => panic!("a release to a revoked peer went through: {other:?}"),
    }
    assert!(keys_status(&ms, "WASHINGTON").is_some_and(|k| k.contains("COMPROMISED")));

    // WASHINGTON signs with its new key only; its message waits.
    let waiting = door::release(&ws, &wsess, "MOSCOW", general("after the rekey"))
        .await
        .id;
    eventually(LIMIT, "the link goes down", || {
        !ws.link_up(&StationName::new("MOSCOW").expect("name"))
    })
    .await;

    // Confirmed out of band: the link returns on the new key, and the
    // waiting message is delivered, signed with it.
    let mut wev = ws.subscribe();
    assert!(matches!(
        confirm(&ms, &msess, "WASHINGTON", &fingerprint).await,
        Ok(Reply::RotationConfirmed { .. })
    ));
    wait_event(
        &mut wev,
        LIMIT,
        |e| matches!(e, Event::Receipt { id, .. } if *id == waiting),
    )
    .await;
    assert_eq!(
        signed_with(
            &ms,
            &m.keys(),
            waiting,
            &[old.signing.verifying_key(), new.signing.verifying_key()]
        ),
        Some(1)
    );
    assert!(
        Raw::hello(&old, &mk, m.listen, ALPN_LIVE).await.is_err(),
        "the compromised key is still refused after the confirmation"
    );
    ws.shutdown().await;
    ms.shutdown().await;
}
