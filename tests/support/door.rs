//! The station's one door for tests: a session logged in as `op` with its
//! real passphrase, and the commands tests use most, through
//! `Station::handle` exactly as a console or the CLI reaches it.

use std::path::PathBuf;

use hotline::compose::Draft;
use hotline::domain::{Message, MessageId};
use hotline::exports::AttachmentsExport;
pub use hotline::exports::Exported;
use hotline::station::Station;
use hotline::station::api::{
    ApiError, Attachment, Command, Door, Passphrase, Release, Reply, Session,
};
use hotline::store::{Direction, MessageRow};

use super::PASSPHRASE;

/// A console session on `station`, logged in as `op`.
pub async fn login(station: &Station) -> Session {
    login_as(station, "op").await
}

/// A console session logged in as `name` (whose passphrase is PASSPHRASE).
pub async fn login_as(station: &Station, name: &str) -> Session {
    let session = Session::new(Door::Console);
    let login = Command::Login {
        operator: name.into(),
        passphrase: Passphrase::new(PASSPHRASE),
    };
    station
        .handle(&session, login)
        .await
        .expect("log-in with the test passphrase");
    session
}

/// A console session at a tabletop station (which has no operators),
/// signed in by call sign as a trainee or facilitator does.
pub async fn sign_in(station: &Station, call_sign: &str) -> Session {
    let session = Session::new(Door::Console);
    let sign_in = Command::SignIn {
        call_sign: call_sign.into(),
    };
    station
        .handle(&session, sign_in)
        .await
        .expect("a call-sign sign-in at a tabletop station");
    session
}

/// Releases `draft` to `to` with files attached; the stored row, or why not.
pub async fn try_release(
    station: &Station,
    session: &Session,
    to: &str,
    draft: Draft,
    attachments: Vec<PathBuf>,
) -> Result<MessageRow, ApiError> {
    let attachments = attachments
        .iter()
        .map(|p| Attachment::open(p).expect("a file to attach opens"))
        .collect();
    let release = Release {
        to: to.into(),
        draft,
        attachments,
        second_operator: None,
        refer_to: Vec::new(),
    };
    match station
        .handle(session, Command::Release(Box::new(release)))
        .await?
    {
        Reply::Released { row } => Ok(*row),
        other => panic!("unexpected reply to a release: {other:?}"),
    }
}

/// Releases `draft` to `to`; the stored row.
pub async fn release(station: &Station, session: &Session, to: &str, draft: Draft) -> MessageRow {
    try_release(station, session, to, draft, Vec::new())
        .await
        .expect("release")
}

/// Acknowledges a received message.
pub async fn acknowledge(
    station: &Station,
    session: &Session,
    id: MessageId,
) -> Result<MessageRow, ApiError> {
    match station
        .handle(session, Command::Acknowledge { id: id.to_string() })
        .await?
    {
        Reply::Acknowledged { row } => Ok(*row),
        other => panic!("unexpected reply to an acknowledgement: {other:?}"),
    }
}

/// Cancels a queued message.
pub async fn cancel(
    station: &Station,
    session: &Session,
    id: MessageId,
) -> Result<MessageRow, ApiError> {
    match station
        .handle(session, Command::Cancel { id: id.to_string() })
        .await?
    {
        Reply::Cancelled { row } => Ok(*row),
        other => panic!("unexpected reply to a cancellation: {other:?}"),
    }
}

/// One direction's rows.
pub async fn list(station: &Station, direction: Direction) -> Vec<MessageRow> {
    let session = Session::new(Door::Console);
    match station
        .handle(
            &session,
            Command::List {
                direction,
                limit: None,
                before: None,
            },
        )
        .await
    {
        Ok(Reply::Rows { rows }) => rows,
        other => panic!("unexpected answer to a listing: {other:?}"),
    }
}

/// Lists `direction`'s rows through the door every 50 ms until `pred`
/// holds for them, or fails after `limit`; the rows it held for.
pub async fn rows_until(
    station: &Station,
    direction: Direction,
    limit: std::time::Duration,
    what: &str,
    mut pred: impl FnMut(&[MessageRow]) -> bool,
) -> Vec<MessageRow> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let rows = list(station, direction).await;
        if pred(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A stored message, opened.
pub async fn open(station: &Station, session: &Session, id: MessageId) -> Message {
    match try_open(station, session, id).await {
        Ok(message) => message,
        Err(e) => panic!("unexpected answer to open: {e:?}"),
    }
}

/// A stored message, opened, or why not.
pub async fn try_open(
    station: &Station,
    session: &Session,
    id: MessageId,
) -> Result<Message, ApiError> {
    match station
        .handle(session, Command::Open { id: id.to_string() })
        .await?
    {
        Reply::Opened { message } => Ok(*message),
        other => panic!("unexpected reply to open: {other:?}"),
    }
}

/// A console set-up for `station` with MOSCOW and WASHINGTON as peers.
pub fn console_setup(station: &str) -> hotline::console::Setup {
    hotline::console::Setup {
        station: station.into(),
        language: hotline::domain::Language::EN,
        time_zone: "UTC".into(),
        peers: ["WASHINGTON", "MOSCOW"]
            .iter()
            .filter(|p| **p != station)
            .map(|p| (p.to_string(), "UTC".to_string()))
            .collect(),
        deadlines: hotline::config::Deadlines::default(),
        idle_lock: std::time::Duration::from_secs(15 * 60),
        two_person_flash: false,
        exercise_mode: false,
        call_sign_login: false,
        keymap: hotline::console::keymap::Keymap::default(),
        no_color: false,
        attached: false,
        ring: Default::default(),
        labels: Default::default(),
    }
}

/// An unacknowledged inbound ROUTINE row from MOSCOW with serial `n`.
pub fn inbound_row(n: u64) -> MessageRow {
    let now = jiff::Timestamp::now();
    MessageRow {
        id: MessageId::new(),
        direction: Direction::In,
        peer: hotline::domain::StationName::new("MOSCOW").expect("name"),
        serial: n,
        precedence: hotline::domain::Precedence::Routine,
        exercise: false,
        template_id: "general".into(),
        template_version: 1,
        released_at: now,
        stored_at: now,
        operator: hotline::domain::OperatorName::new("i.petrov").expect("name"),
        second_operator: None,
        state: hotline::store::MessageState::Received,
        receipt_at: None,
        ack_by: None,
        ack_at: None,
        refusal: None,
        attachments: 0,
        attachments_done: 0,
        attachments_refused: 0,
        subject: None,
        suspect: None,
        label: None,
        amended: None,
    }
}

/// Exports a message's attachments, decrypted and checked, into files
/// made in DATA_DIR/exports/ID, as the in-process console does.
pub async fn export(
    station: &Station,
    session: &Session,
    id: MessageId,
) -> Result<Exported, ApiError> {
    let dir = station.data_dir().join("exports").join(id.to_string());
    let message = try_open(station, session, id).await?;
    let (export, command) = AttachmentsExport::prepare(&dir, &message)?;
    export.finish(station.handle(session, command).await)
}

/// A signed, sealed, journalled link test to `peer`; its round trip.
pub async fn link_test(station: &Station, peer: &str) -> Result<std::time::Duration, ApiError> {
    let session = Session::new(Door::Console);
    let command = Command::LinkTest { peer: peer.into() };
    match station.handle(&session, command).await? {
        Reply::LinkTested { rtt_ms, .. } => Ok(std::time::Duration::from_millis(rtt_ms)),
        other => panic!("unexpected reply to a link test: {other:?}"),
    }
}
