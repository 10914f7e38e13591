//! Serial numbers reveal gaps. Serials are judged as a set; a serial at or
//! below the peer's declared highest that has not arrived within the retry
//! window is a gap. A serial released and then cancelled before sending is
//! declared as such, and is not a gap; so is a serial given up by a
//! release that failed.

mod support;

use std::sync::Arc;
use std::time::Duration;

use hotline::compose::{self, Origin};
use hotline::domain::{Language, OperatorName};
use hotline::station::Event;
use hotline::store::Journal;
use hotline::templates::Catalog;
use support::*;

/// Releases three messages into WASHINGTON's outbox before any station runs;
/// `mangle` then acts on serial 2 with WASHINGTON's journal.
fn release_three(w: &Site, m: &Site, mangle: impl FnOnce(&Journal, hotline::domain::MessageId)) {
    let journal = release_messages(w, m, 3, None);
    let second = journal
        .list(hotline::store::Direction::Out)
        .expect("outbox")
        .into_iter()
        .find(|r| r.serial == 2)
        .expect("serial 2");
    mangle(&journal, second.id);
}

/// Releases `count` messages into WASHINGTON's outbox; the release numbered
/// `failing` (from 1), if any, fails while sealing instead.
fn release_messages(w: &Site, m: &Site, count: u64, failing: Option<u64>) -> Journal {
    let config = w.config();
    let journal = Journal::open(&config.journal_path, None).expect("journal");
    let keys = Arc::new(w.keys());
    let peer = m.keys().public();
    for i in 1..=count {
        if Some(i) == failing {
            let failed = journal
                .release(peer.name.clone(), |_| Err("sealing failed".into()))
                .wait();
            assert!(failed.is_err(), "the failing release fails");
            continue;
        }
        let checked = compose::check(
            &general(&format!("m{i}")),
            Catalog::builtin(),
            jiff::Timestamp::now(),
        )
        .expect("valid");
        let origin = Origin {
            station: w.name.clone(),
            operator: OperatorName::new("op").expect("name"),
            second_operator: None,
            language: Language::EN,
        };
        compose::release(&journal, keys.clone(), peer.clone(), checked, origin)
            .wait()
            .expect("released");
    }
    journal
}

async fn gap_events(w: &Site, m: &Site, watch: Duration) -> (Vec<u64>, usize) {
    let ms = m.start().await;
    let mut events = ms.subscribe();
    let ws = w.start().await;
    let mut gaps = Vec::new();
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + watch;
    while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match e {
            Event::Gap { serials, .. } => gaps.extend(serials),
            Event::Received { .. } => received += 1,
            _ => {}
        }
    }
    ws.shutdown().await;
    ms.shutdown().await;
    (gaps, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_serial_is_reported_as_a_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    // Serial 2 is lost from the sender's journal after its release (a
    // restore from an old backup, say): the receiver can only see the gap.
    tokio::task::block_in_place(|| {
        release_three(&w, &m, |journal, id| {
            journal
                .write(move |tx| {
                    tx.execute("DELETE FROM messages WHERE id = ?1", [id.to_string()])?;
                    Ok(())
                })
                .wait()
                .expect("deleted");
        })
    });
    let (gaps, received) = gap_events(&w, &m, Duration::from_secs(9)).await;
    assert_eq!(received, 2, "serials 1 and 3 arrive");
    assert_eq!(
        gaps,
        vec![2],
        "serial 2 is a gap once the 5 s retry window has passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_serial_is_not_a_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    tokio::task::block_in_place(|| {
        release_three(&w, &m, |journal, id| {
            journal
                .cancel(id, "op".into())
                .wait()
                .expect("cancelled while queued");
        })
    });
    let (gaps, received) = gap_events(&w, &m, Duration::from_secs(9)).await;
    assert_eq!(received, 2, "serials 1 and 3 arrive");
    assert!(
        gaps.is_empty(),
        "the cancelled serial was declared, not a gap: {gaps:?}"
    );
}

/// Sealing runs outside the journal's writer on a reserved serial; a
/// release that fails there gives its serial up as void, and the peer is
/// told, so it reports no gap. The control is
/// `a_missing_serial_is_reported_as_a_gap`: the same wait sees a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_given_up_by_a_failed_release_is_not_a_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    tokio::task::block_in_place(|| {
        let journal = release_messages(&w, &m, 3, Some(2));
        assert_eq!(
            journal.cancelled_serials("MOSCOW", 10).expect("void"),
            vec![2]
        );
        assert_eq!(journal.highest_released("MOSCOW").expect("highest"), 3);
    });
    let (gaps, received) = gap_events(&w, &m, Duration::from_secs(9)).await;
    assert_eq!(received, 2, "serials 1 and 3 arrive");
    assert!(
        gaps.is_empty(),
        "the void serial was declared, not a gap: {gaps:?}"
    );
}
