//! Each link test carries the sender's audit head and the peer records it.
//! A log truncated together with its checkpoints still verifies on its own;
//! the head the peer recorded is what catches it.

mod support;

use std::time::Duration;

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
