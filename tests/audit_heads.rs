//! Each link test carries the sender's audit head and the peer records it.
//! A log truncated together with its checkpoints still verifies on its own;
//! the head the peer recorded is what catches it. A log cut short by a
//! restore from a backup says so in a signed entry, and the station rejoins
//! its peer without a false alarm, a reused serial or a lost message. The
//! station backs itself up on a schedule, and a full disk stops it taking
//! anything new, loudly, until space returns.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use hotline::domain::MessageId;
use hotline::station::api::{Command, Reply};
use hotline::store::{Direction, MessageRow, MessageState};
use support::*;

fn hotline(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("hotline")
        .expect("binary")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_log_is_caught_by_the_head_the_peer_recorded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ms = m.start().await;
    let ws = w.start().await;
    let session = door::login(&ws).await;
    for i in 0..3 {
        door::release(&ws, &session, "MOSCOW", general(&format!("m{i}"))).await;
    }
    door::rows_until(
        &ws,
        hotline::store::Direction::Out,
        Duration::from_secs(20),
        "the three messages receipted",
        |o| {
            o.iter()
                .all(|r| r.state == hotline::store::MessageState::Receipted)
        },
    )
    .await;
    // One more entry in a batch of its own, so the head MOSCOW declares has
    // an earlier checkpoint before it.
    ms.journal()
        .audit("op", "note", "end of watch")
        .done()
        .await
        .expect("audit");
    // MOSCOW tests the link: WASHINGTON records MOSCOW's head from it.
    door::link_test(&ms, "WASHINGTON").await.expect("link test");
    ws.shutdown().await;
    ms.shutdown().await;
    drop((ws, ms));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let out = hotline(&w.config_path, &["audit", "heads"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let head = text
        .lines()
        .find_map(|l| l.strip_prefix("MOSCOW "))
        .unwrap_or_else(|| panic!("a head for MOSCOW: {text}"))
        .trim()
        .to_string();
    let seq: i64 = head
        .split(':')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("SEQ:HASH");

    let ok = hotline(&m.config_path, &["audit", "verify", "--head", &head]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("matches"));

    // Control: restarted with its log intact, MOSCOW raises no alarm when
    // WASHINGTON's hello says which head of MOSCOW's it recorded.
    assert!(
        !mismatch_after_restart(&w, &m).await,
        "an intact log raised an audit mismatch"
    );

    // Truncate MOSCOW's log back to its last checkpoint before that entry,
    // and remove the later checkpoints too: what an insider covering tracks
    // would do.
    let db = m.config().journal_path;
    let conn = rusqlite::Connection::open(&db).expect("open");
    let keep: i64 = conn
        .query_row(
            "SELECT MAX(seq) FROM checkpoints WHERE seq < ?1",
            [seq],
            |r| r.get(0),
        )
        .expect("an earlier checkpoint");
    conn.execute("DELETE FROM audit WHERE seq > ?1", [keep])
        .expect("delete entries");
    conn.execute("DELETE FROM checkpoints WHERE seq > ?1", [keep])
        .expect("delete checkpoints");
    drop(conn);

    // Control: on its own, the shortened log still verifies.
    let alone = hotline(&m.config_path, &["audit", "verify"]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    // With the peer's head, it does not.
    let caught = hotline(&m.config_path, &["audit", "verify", "--head", &head]);
    assert_eq!(caught.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&caught.stderr).contains("truncated"),
        "{}",
        String::from_utf8_lossy(&caught.stderr)
    );
    // And with no one running the command: the next hello from WASHINGTON
    // carries the head it recorded, and MOSCOW raises the alarm itself.
    assert!(
        mismatch_after_restart(&w, &m).await,
        "the truncated log went unnoticed when the peer next spoke"
    );
}

/// Starts both stations, waits for the link and a moment after it, and
/// says whether MOSCOW raised an audit-mismatch alarm; stops them again.
async fn mismatch_after_restart(w: &Site, m: &Site) -> bool {
    use hotline::station::{AlarmKind, Event};
    let ms = m.restart().await;
    let mut events = ms.subscribe();
    let ws = w.restart().await;
    let mut mismatch = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut up_at = None;
    while tokio::time::Instant::now() < deadline {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left.min(Duration::from_millis(200)), events.recv()).await {
            Ok(Ok(Event::Alarm(a))) if a.kind == AlarmKind::AuditMismatch => {
                mismatch = true;
                break;
            }
            Ok(Ok(Event::LinkUp { .. })) => {
                up_at.get_or_insert_with(tokio::time::Instant::now);
            }
            _ => {}
        }
        // Both ends have exchanged hellos once the link is up; give the
        // check a second beyond that.
        if up_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
            break;
        }
    }
    assert!(up_at.is_some() || mismatch, "the link never came up");
    ws.shutdown().await;
    ms.shutdown().await;
    drop((ws, ms));
    tokio::time::sleep(Duration::from_millis(300)).await;
    mismatch
}

/// `audit verify` said "audit log: empty", exit 0, of a journal holding
/// messages whose audit and checkpoints were deleted, and "Invalid column
/// type Text at index: 2" of a damaged table. Each is a verdict, exit 2;
/// the intact log (and the repaired one) verifies, as the control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_damaged_audit_log_is_a_failed_verdict() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let session = door::login(&ws).await;
    for i in 0..3 {
        door::release(&ws, &session, "MOSCOW", general(&format!("m{i}"))).await;
    }
    ws.shutdown().await;
    drop(ws);
    let verify = || {
        let out = hotline(&w.config_path, &["audit", "verify"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(verify().0, Some(0), "control: {}", verify().1);
    let conn = rusqlite::Connection::open(w.config().journal_path).expect("open");
    let first: i64 = conn
        .query_row("SELECT MIN(seq) FROM audit", [], |r| r.get(0))
        .expect("an entry");

    let detail: String = conn
        .query_row("SELECT detail FROM audit WHERE seq = ?1", [first], |r| {
            r.get(0)
        })
        .expect("its detail");
    // A blob where text belongs: what reading it as text cannot survive.
    conn.execute("UPDATE audit SET detail = x'00ff' WHERE seq = ?1", [first])
        .expect("damage a column");
    let (code, stderr) = verify();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("tables are damaged"), "{stderr}");
    conn.execute(
        "UPDATE audit SET detail = ?1 WHERE seq = ?2",
        rusqlite::params![detail, first],
    )
    .expect("repair it");
    assert_eq!(verify().0, Some(0), "control, repaired: {}", verify().1);

    conn.execute_batch("DELETE FROM audit; DELETE FROM checkpoints;")
        .expect("delete the log");
    let (code, stderr) = verify();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("0 entries for 3 stored messages"),
        "{stderr}"
    );

    conn.execute_batch("DROP TABLE audit;")
        .expect("drop the table");
    let (code, stderr) = verify();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("tables are damaged"), "{stderr}");
}

/// A station's rows of one direction, as ids.
async fn ids(station: &hotline::station::Station, direction: Direction) -> Vec<MessageId> {
    door::list(station, direction)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Runs the `hotline` binary off the async workers (the station under
/// test serves its socket on them).
async fn hotline_async(config: &Path, args: Vec<String>, env: Vec<(String, PathBuf)>) -> Output {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("hotline").expect("binary");
        cmd.arg("--config").arg(&config).args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("runs")
    })
    .await
    .expect("the command's thread")
}

/// `hotline restore FILE [--identity IDENTITY]` for the station at `config`.
async fn restore(config: &Path, file: &Path, identity: Option<&Path>) -> Output {
    let mut args = vec!["restore".to_string(), file.display().to_string()];
    if let Some(identity) = identity {
        args.extend(["--identity".to_string(), identity.display().to_string()]);
    }
    hotline_async(config, args, Vec::new()).await
}

/// `hotline audit verify` for the station at `config`.
async fn audit_verify(config: &Path) -> Output {
    hotline_async(config, vec!["audit".into(), "verify".into()], Vec::new()).await
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// WASHINGTON's files again in an empty directory: its key file (kept
/// apart from the disk that was lost) and its config.
fn rebuilt(root: &Path, w: &Site, m: &Site) -> Site {
    let dir = root.join("washington");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(w.dir.join("station.key"), dir.join("station.key")).expect("copy the key file");
    Site::create(
        root,
        "WASHINGTON",
        "en",
        w.listen,
        &[m.entry(Some(m.listen), None)],
        FAST_LINK,
    )
}

async fn alarms(station: &hotline::station::Station) -> Vec<hotline::station::alarms::Alarm> {
    let session = door::login(station).await;
    match station.handle(&session, Command::Alarms).await {
        Ok(Reply::Alarms { alarms }) => alarms,
        other => panic!("alarms: {other:?}"),
    }
}

/// A backup taken by `hotline backup` while messages flow both ways, put
/// back by `hotline restore` into a new data directory after the old one
/// is lost: the audit log verifies, every message the backup holds is
/// there, nothing is released until the peer has said which serials it
/// holds, the next serial continues above them with no gap at the peer,
/// what the station receipted after the backup comes back once, and the
/// peer's record of the lost history raises no audit mismatch. A tampered
/// or truncated copy of the backup is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_live_traffic_restores_and_the_station_rejoins_exactly_once() {
    use hotline::station::AlarmKind;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(&tmp.path().join("old"), FAST_LINK);
    let ms = m.start().await;
    let ws = w.start().await;
    let listening = hotline::station::control::listen(&ws).expect("the control socket");
    tokio::spawn(hotline::station::control::serve(ws.clone(), listening));
    wait_link_up(&ws, "MOSCOW", Duration::from_secs(10)).await;
    let (wsess, msess) = (door::login(&ws).await, door::login(&ms).await);
    let all_receipted = |rows: &[MessageRow], n: usize| {
        rows.len() == n && rows.iter().all(|r| r.state == MessageState::Receipted)
    };
    let mut before = Vec::new();
    for i in 0..4 {
        before.push(
            door::release(&ws, &wsess, "MOSCOW", general(&format!("before w{i}")))
                .await
                .id,
        );
        before.push(
            door::release(&ms, &msess, "WASHINGTON", general(&format!("before m{i}")))
                .await
                .id,
        );
    }

    // Messages keep flowing both ways while the backup is taken.
    let traffic = {
        let (ws, ms, wsess, msess) = (
            ws.clone(),
            ms.clone(),
            door::login(&ws).await,
            door::login(&ms).await,
        );
        tokio::spawn(async move {
            for i in 0..12 {
                door::release(&ws, &wsess, "MOSCOW", general(&format!("during w{i}"))).await;
                door::release(&ms, &msess, "WASHINGTON", general(&format!("during m{i}"))).await;
            }
        })
    };
    let offline = age::pq::Identity::generate();
    let identity = tmp.path().join("offline.key");
    {
        use age::secrecy::ExposeSecret as _;
        let secret = offline.to_string();
        hotline::fsutil::create_private(
            &identity,
            format!("{}\n", secret.expose_secret()).as_bytes(),
        )
        .expect("identity file");
    }
    let passfile = tmp.path().join("pass");
    hotline::fsutil::create_private(&passfile, PASSPHRASE.as_bytes()).expect("passphrase file");
    let take = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "backup".to_string(),
            file.display().to_string(),
            "--to".into(),
            offline.to_public().to_string(),
            "--operator".into(),
            "op".into(),
        ];
        args.extend(extra.iter().map(ToString::to_string));
        hotline_async(
            &w.config_path,
            args,
            vec![("HOTLINE_PASSPHRASE_FILE".into(), passfile.clone())],
        )
    };
    let backup = tmp.path().join("washington.backup");
    let taken = take(&backup, &[]).await;
    assert!(taken.status.success(), "backup: {}", text(&taken));
    assert!(text(&taken).contains("messages"), "{}", text(&taken));
    let card = hotline::crypto::StationCard::from_keys(&w.keys().public(), Vec::new(), None);
    std::fs::write(w.dir.join("station.card.toml"), card.to_toml()).expect("card");
    let with_keys = tmp.path().join("with-keys.backup");
    let taken = take(&with_keys, &["--with-keys"]).await;
    assert!(
        text(&taken).contains("with the key file and card"),
        "backup --with-keys: {}",
        text(&taken)
    );
    traffic.await.expect("traffic");

    // After the backup: more both ways, all receipted; MOSCOW records a
    // head of WASHINGTON's audit log that the backup will not hold.
    let mut after_w = Vec::new();
    for i in 0..4 {
        after_w.push(
            door::release(&ws, &wsess, "MOSCOW", general(&format!("after w{i}")))
                .await
                .id,
        );
        door::release(&ms, &msess, "WASHINGTON", general(&format!("after m{i}"))).await;
    }
    door::rows_until(
        &ws,
        Direction::Out,
        Duration::from_secs(30),
        "WASHINGTON's 20 receipted",
        |r| all_receipted(r, 20),
    )
    .await;
    door::rows_until(
        &ms,
        Direction::Out,
        Duration::from_secs(30),
        "MOSCOW's 20 receipted",
        |r| all_receipted(r, 20),
    )
    .await;
    // MOSCOW acknowledges, after the backup, one of WASHINGTON's messages
    // that the backup holds and one that it does not.
    let (acked_held, acked_lost) = (before[0], after_w[0]);
    for id in [acked_held, acked_lost] {
        door::acknowledge(&ms, &msess, id)
            .await
            .expect("MOSCOW acknowledges");
    }
    door::rows_until(
        &ws,
        Direction::Out,
        Duration::from_secs(20),
        "both acknowledgements at WASHINGTON",
        |rows| {
            rows.iter()
                .filter(|r| {
                    (r.id == acked_held || r.id == acked_lost)
                        && r.state == MessageState::Acknowledged
                })
                .count()
                == 2
        },
    )
    .await;
    door::link_test(&ws, "MOSCOW").await.expect("link test");
    let sent_by_moscow = ids(&ms, Direction::Out).await;
    let sent_by_washington = ids(&ws, Direction::Out).await;
    let moscow_holds = door::list(&ms, Direction::In)
        .await
        .iter()
        .map(|r| r.serial)
        .max()
        .expect("serials");

    // WASHINGTON's disk is lost. MOSCOW is down too while WASHINGTON
    // comes back, so the hold can be seen.
    ws.shutdown().await;
    ms.shutdown().await;
    drop((ws, ms));
    let w2 = rebuilt(&tmp.path().join("new"), &w, &m);

    // A tampered copy and a truncated copy are refused, and restore nothing.
    let bytes = std::fs::read(&backup).expect("backup");
    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let truncated = bytes[..bytes.len() - 40].to_vec();
    for (name, damaged) in [("tampered", tampered), ("truncated", truncated)] {
        let copy = tmp.path().join(name);
        std::fs::write(&copy, damaged).expect("copy");
        let out = restore(&w2.config_path, &copy, Some(&identity)).await;
        assert!(!out.status.success(), "a {name} backup was restored");
        assert!(
            text(&out).contains(&copy.display().to_string()) && text(&out).contains("damaged"),
            "{name}: {}",
            text(&out)
        );
        assert!(
            !w2.config().journal_path.exists(),
            "a {name} backup left a journal"
        );
    }
    // Without the identity it was sealed to, it does not open either.
    let wrong = restore(&w2.config_path, &backup, None).await;
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("not encrypted to the identity given"),
        "{}",
        text(&wrong)
    );

    let restored = restore(&w2.config_path, &backup, Some(&identity)).await;
    assert!(restored.status.success(), "restore: {}", text(&restored));
    let verify = audit_verify(&w2.config_path).await;
    assert!(verify.status.success(), "audit verify: {}", text(&verify));

    // A station that lost its key file too is restored from the backup
    // that holds it: the signature is checked against the card inside,
    // whose fingerprint the operator is shown to compare.
    let bare = rebuilt(&tmp.path().join("bare"), &w, &m);
    std::fs::remove_file(bare.dir.join("station.key")).expect("no key file");
    let no_keys = restore(&bare.config_path, &backup, Some(&identity)).await;
    assert!(
        !no_keys.status.success(),
        "CONTROL: restored with no key to check it"
    );
    let keys_back = restore(&bare.config_path, &with_keys, Some(&identity)).await;
    assert!(
        keys_back.status.success(),
        "restore --with-keys: {}",
        text(&keys_back)
    );
    assert!(
        text(&keys_back).contains(&w.keys().public().fingerprint()),
        "{}",
        text(&keys_back)
    );
    assert_eq!(
        std::fs::read(bare.dir.join("station.key")).expect("key file restored"),
        std::fs::read(w.dir.join("station.key")).expect("key file")
    );
    let verify = audit_verify(&bare.config_path).await;
    assert!(verify.status.success(), "audit verify: {}", text(&verify));
    // Every message the backup says it holds is there, those from before
    // it among them.
    let held: Vec<MessageId> = {
        let journal = hotline::store::Journal::open_read_only(&w2.config().journal_path)
            .expect("restored journal");
        [Direction::Out, Direction::In]
            .into_iter()
            .flat_map(|d| journal.list(d).expect("list"))
            .map(|r| r.id)
            .collect()
    };
    assert!(
        text(&restored).contains(&format!("{} messages", held.len())),
        "{} rows restored: {}",
        held.len(),
        text(&restored)
    );
    assert!(
        before.iter().all(|id| held.contains(id)),
        "a message from before the backup is missing"
    );
    // CONTROL: the backup holds the acknowledged message as it was then,
    // receipted and not yet acknowledged.
    let state_here = |id: MessageId| {
        hotline::store::Journal::open_read_only(&w2.config().journal_path)
            .expect("restored journal")
            .row(&id)
            .expect("the row")
            .state
    };
    assert_eq!(state_here(acked_held), MessageState::Receipted);

    // Restored, and MOSCOW not yet heard from: nothing is released to it.
    let ws2 = w2.restart().await;
    let wsess2 = door::login(&ws2).await;
    let refused =
        door::try_release(&ws2, &wsess2, "MOSCOW", general("too early"), Vec::new()).await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("restored from a backup")),
        "{refused:?}"
    );
    assert!(
        alarms(&ws2)
            .await
            .iter()
            .any(|a| a.kind == AlarmKind::Restored)
    );

    // MOSCOW returns: its hello says which serials of ours it holds.
    let ms = m.restart().await;
    wait_link_up(&ws2, "MOSCOW", Duration::from_secs(10)).await;
    let mut next = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while next.is_none() {
        match door::try_release(
            &ws2,
            &wsess2,
            "MOSCOW",
            general("after the restore"),
            Vec::new(),
        )
        .await
        {
            Ok(row) => next = Some(row),
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "still held: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let next = next.expect("released");
    assert_eq!(
        next.serial,
        moscow_holds + 1,
        "the next serial continues above what MOSCOW holds"
    );
    door::rows_until(
        &ms,
        Direction::In,
        Duration::from_secs(20),
        "the new message at MOSCOW",
        |rows| rows.iter().any(|r| r.id == next.id),
    )
    .await;

    // MOSCOW's acknowledgement since the backup comes back; the one for
    // a message the restore lost is answered, not refused.
    door::rows_until(
        &ws2,
        Direction::Out,
        Duration::from_secs(20),
        "the acknowledgement back",
        |rows| {
            rows.iter()
                .any(|r| r.id == acked_held && r.state == MessageState::Acknowledged)
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the lost message's acknowledgement answered",
        || {
            ws2.journal()
                .audit_entries("restore-lost-ack", 0)
                .is_ok_and(|a| !a.is_empty())
        },
    )
    .await;
    assert!(
        !alarms(&ms)
            .await
            .iter()
            .any(|a| a.kind == AlarmKind::Refused),
        "MOSCOW was refused an acknowledgement: {:?}",
        alarms(&ms).await
    );
    // What WASHINGTON had received after the backup comes back, once each.
    let inbox = door::rows_until(
        &ws2,
        Direction::In,
        Duration::from_secs(20),
        "every MOSCOW message back",
        |rows| {
            sent_by_moscow
                .iter()
                .all(|id| rows.iter().any(|r| r.id == *id))
        },
    )
    .await;
    assert_eq!(inbox.len(), sent_by_moscow.len(), "a message shown twice");
    // MOSCOW holds each of WASHINGTON's messages once, the new one too.
    let at_moscow = ids(&ms, Direction::In).await;
    let mut unique = at_moscow.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), at_moscow.len());
    assert_eq!(at_moscow.len(), sent_by_washington.len() + 1);
    // No false alarms: no gap at MOSCOW, no audit mismatch here, though
    // MOSCOW recorded a head from the history the restore lost.
    assert!(
        !alarms(&ms).await.iter().any(|a| a.kind == AlarmKind::Gap),
        "{:?}",
        alarms(&ms).await
    );
    let here = alarms(&ws2).await;
    assert!(
        !here
            .iter()
            .any(|a| a.kind == AlarmKind::AuditMismatch || a.kind == AlarmKind::Restored),
        "{here:?}"
    );
    let journal = ws2.journal();
    assert_eq!(journal.audit_entries("restore", 0).expect("audit").len(), 1);
    assert!(
        !journal
            .audit_entries("restore-head", 0)
            .expect("audit")
            .is_empty(),
        "MOSCOW's record of the lost history was never checked"
    );
    assert_eq!(
        journal
            .audit_entries("restore-resume", 0)
            .expect("audit")
            .len(),
        1
    );
    // MOSCOW answered the restore once: its acknowledgements went pending
    // again until WASHINGTON receipted them.
    let answered = |ms: &hotline::station::Station| {
        ms.journal()
            .audit_entries("restore-resend", 0)
            .expect("audit")
            .iter()
            .filter(|(_, detail)| detail.contains("acks-resent="))
            .count()
    };
    eventually(
        Duration::from_secs(20),
        "MOSCOW's re-sent acknowledgements receipted",
        || {
            ms.journal()
                .pending_acks("WASHINGTON")
                .is_ok_and(|p| p.is_empty())
        },
    )
    .await;
    assert_eq!(answered(&ms), 1, "CONTROL: the restore was answered");
    // WASHINGTON's hellos still say it was restored; MOSCOW, restarted,
    // hears one again and asks for nothing more. (The hello's answer is
    // queued on MOSCOW's writer before the link counts as up, so the link
    // test's own journal writes come after it.)
    ms.shutdown().await;
    drop(ms);
    let ms = m.restart().await;
    wait_link_up(&ms, "WASHINGTON", Duration::from_secs(10)).await;
    door::link_test(&ms, "WASHINGTON")
        .await
        .expect("link test after MOSCOW's restart");
    assert_eq!(
        answered(&ms),
        1,
        "a restore is answered once, not at every hello"
    );
    ws2.shutdown().await;
    ms.shutdown().await;
    drop((ws2, ms));
    let verify = audit_verify(&w2.config_path).await;
    assert!(
        verify.status.success(),
        "audit verify after rejoining: {}",
        text(&verify)
    );
}

/// `[backup]` in operator.toml: the station backs itself up every
/// interval, keeps the newest `keep`, and each opens with the recipient's
/// identity and verifies. A directory it cannot write raises an alarm, and
/// the next backup that works clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_kept_and_a_failure_raises_an_alarm() {
    use hotline::station::AlarmKind;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(tmp.path(), FAST_LINK);
    let offline = age::pq::Identity::generate();
    // Where the backups go is a file for now: no directory can be made.
    let dir = tmp.path().join("backups");
    std::fs::write(&dir, b"a file, not a directory").expect("blocker");
    let mut config = std::fs::read_to_string(&w.config_path).expect("config");
    config.push_str(&format!(
        "\n[backup]\ninterval = \"1s\"\ndirectory = \"{}\"\nkeep = 2\nto = [\"{}\"]\n",
        dir.display(),
        offline.to_public()
    ));
    hotline::fsutil::replace_atomic(&w.config_path, config.as_bytes(), 0o600).expect("config");
    let ws = w.start().await;
    let mut events = ws.subscribe();
    wait_event(
        &mut events,
        Duration::from_secs(10),
        |e| matches!(e, hotline::station::Event::Alarm(a) if a.kind == AlarmKind::BackupFailed),
    )
    .await;
    assert!(
        alarms(&ws)
            .await
            .iter()
            .any(|a| a.kind == AlarmKind::BackupFailed
                && a.text.contains(&dir.display().to_string())),
        "the alarm names the directory"
    );
    std::fs::remove_file(&dir).expect("unblock");
    let session = door::login(&ws).await;
    door::release(&ws, &session, "MOSCOW", general("kept in a backup")).await;
    eventually(Duration::from_secs(20), "three scheduled backups", || {
        ws.journal()
            .audit_entries("backup", 0)
            .is_ok_and(|b| b.len() >= 3)
    })
    .await;
    assert!(
        !alarms(&ws)
            .await
            .iter()
            .any(|a| a.kind == AlarmKind::BackupFailed),
        "a backup that worked left the alarm up"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("backups")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "backup"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let key = w.keys().signing.verifying_key();
    for (i, file) in files.iter().enumerate() {
        let staging = tmp.path().join(format!("staging{i}"));
        let opened = hotline::backup::open(file, &[&offline], &staging, |_, _| vec![key])
            .expect("a scheduled backup opens and verifies");
        assert_eq!(opened.manifest.station.as_str(), "WASHINGTON");
        assert!(opened.manifest.messages >= 1);
    }
    ws.shutdown().await;
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` until it refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return path,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

/// The station's data directory on a 4 MiB tmpfs, filled: a release fails,
/// then every release is refused at once naming the journal, with an alarm;
/// a message from the peer gets no receipt (so its sender keeps it); what
/// was stored is kept. Once space returns the station finds out by itself,
/// the alarm ends, releases work and the waiting message is receipted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_releases_and_receipts_keeps_what_was_stored_and_recovers() {
    use hotline::station::AlarmKind;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let data = w.config().station.data_dir;
    let Some(_disk) = Tmpfs::mount(&data, "4m") else {
        // .ci/run sets this where it has seen a tmpfs mount work, and says
        // so in its output where it has not.
        assert!(
            std::env::var_os("HOTLINE_REQUIRE_TMPFS").is_none(),
            "this machine mounts a tmpfs, but not for the disk-full test"
        );
        eprintln!(
            "SKIPPED: this machine cannot mount a tmpfs (it needs root and CAP_SYS_ADMIN); the disk-full test did not run"
        );
        return;
    };
    let ws = w.start().await;
    let ms = m.start().await;
    wait_link_up(&ws, "MOSCOW", Duration::from_secs(10)).await;
    let (wsess, msess) = (door::login(&ws).await, door::login(&ms).await);
    // CONTROL: both ways work on the disk before it fills.
    let sent = door::release(&ws, &wsess, "MOSCOW", general("before")).await;
    let got = door::release(&ms, &msess, "WASHINGTON", general("stored before")).await;
    let receipted = |id: MessageId| {
        move |rows: &[MessageRow]| {
            rows.iter()
                .any(|r| r.id == id && r.state == MessageState::Receipted)
        }
    };
    door::rows_until(
        &ws,
        Direction::Out,
        Duration::from_secs(10),
        "the first receipted",
        receipted(sent.id),
    )
    .await;
    door::rows_until(
        &ms,
        Direction::Out,
        Duration::from_secs(10),
        "MOSCOW's first receipted",
        receipted(got.id),
    )
    .await;

    let filler = fill(&data);
    let mut failed = None;
    for i in 0..500 {
        if let Err(e) = door::try_release(
            &ws,
            &wsess,
            "MOSCOW",
            general(&format!("full {i}")),
            Vec::new(),
        )
        .await
        {
            failed = Some(e.to_string());
            break;
        }
    }
    let failed = failed.expect("a release failed on the full disk");
    let journal = w.config().journal_path.display().to_string();
    let refused = door::try_release(&ws, &wsess, "MOSCOW", general("refused"), Vec::new())
        .await
        .expect_err("a release on a journal that cannot be written");
    assert!(
        refused.to_string().contains("cannot be written") && refused.to_string().contains(&journal),
        "after `{failed}`: {refused}"
    );
    eventually(Duration::from_secs(5), "the write-failed alarm", || {
        ws.alarms()
            .iter()
            .any(|a| a.kind == AlarmKind::WriteFailed && a.text.contains(&journal))
    })
    .await;

    // MOSCOW's message is tried, not stored and not receipted: it waits
    // at MOSCOW.
    let waiting = door::release(&ms, &msess, "WASHINGTON", general("while full")).await;
    door::rows_until(
        &ms,
        Direction::Out,
        Duration::from_secs(10),
        "MOSCOW sending it",
        |rows| {
            rows.iter()
                .any(|r| r.id == waiting.id && r.state == MessageState::Sent)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!ids(&ws, Direction::In).await.contains(&waiting.id));
    // What was stored is kept.
    let inbox = ids(&ws, Direction::In).await;
    assert!(inbox.contains(&got.id));
    assert!(ids(&ws, Direction::Out).await.contains(&sent.id));

    // Space returns: the station finds out by itself.
    std::fs::remove_file(&filler).expect("free the space");
    eventually(Duration::from_secs(10), "the alarm to end", || {
        !ws.alarms().iter().any(|a| a.kind == AlarmKind::WriteFailed)
    })
    .await;
    door::release(&ws, &wsess, "MOSCOW", general("after")).await;
    door::rows_until(
        &ms,
        Direction::Out,
        Duration::from_secs(20),
        "the waiting message receipted",
        receipted(waiting.id),
    )
    .await;
    assert!(
        !ws.journal()
            .audit_entries("journal-writable", 0)
            .expect("audit")
            .is_empty(),
        "the recovery is not in the audit log"
    );
    ws.shutdown().await;
    ms.shutdown().await;
    drop((ws, ms));
    let verify = audit_verify(&w.config_path).await;
    assert!(verify.status.success(), "audit verify: {}", text(&verify));
}
