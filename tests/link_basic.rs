//! Two real stations on loopback: release, receipt, acknowledgement.

mod support;

use std::time::Duration;

use hotline::station::Event;
use hotline::store::{Direction, MessageState};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_is_receipted_and_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let mut mev = ms.subscribe();

    let wsession = door::login(&ws).await;
    let msession = door::login(&ms).await;
    let released = door::release(&ws, &wsession, "MOSCOW", general("hello")).await;
    let id = released.id;
    wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Receipt { id: i, .. } if *i == id),
    )
    .await;
    wait_event(
        &mut mev,
        Duration::from_secs(5),
        |e| matches!(e, Event::Received { id: i, .. } if *i == id),
    )
    .await;

    door::acknowledge(&ms, &msession, id).await.expect("ack");
    let e = wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Acknowledged { id: i, .. } if *i == id),
    )
    .await;
    assert!(matches!(e, Event::Acknowledged { ref by, .. } if by == "op"));

    let out = door::list(&ws, Direction::Out).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].state, MessageState::Acknowledged);
    assert_eq!(out[0].ack_by.as_deref(), Some("op"));
    assert!(out[0].receipt_at.is_some());
    let inbox = door::list(&ms, Direction::In).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].state, MessageState::Acknowledged);
    ws.shutdown().await;
    ms.shutdown().await;
}
