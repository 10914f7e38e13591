//! The station's one door for tests: a session logged in as `op` with its
//! real passphrase, and the commands tests use most, through
//! `Station::handle` exactly as a console or the CLI reaches it.

use std::path::PathBuf;

use hotline::compose::Draft;
use hotline::domain::{Message, MessageId};
use hotline::station::Station;
use hotline::station::api::{ApiError, Command, Door, Passphrase, Release, Reply, Session};
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
    match station.handle(&session, login).await {
        Ok(_) => {}
        // A tabletop station has no operators: trainees sign in by call sign.
        Err(ApiError::Denied) => {
            let sign_in = Command::SignIn {
                call_sign: name.into(),
            };
            station
                .handle(&session, sign_in)
                .await
                .expect("a call-sign sign-in at a tabletop station");
        }
        Err(e) => panic!("log-in with the test passphrase: {e}"),
    }
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
    let release = Release {
        to: to.into(),
        draft,
        attachments,
        second_operator: None,
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
    match station.handle(&session, Command::List { direction }).await {
        Ok(Reply::Rows { rows }) => rows,
        other => panic!("unexpected answer to a listing: {other:?}"),
    }
}

/// A stored message, opened.
pub async fn open(station: &Station, session: &Session, id: MessageId) -> Message {
    match station.handle(session, Command::Open { id }).await {
        Ok(Reply::Opened { message }) => *message,
        other => panic!("unexpected answer to open: {other:?}"),
    }
}

/// A console set-up for `station` with MOSCOW and WASHINGTON as peers.
pub fn console_setup(station: &str) -> hotline::console::Setup {
    hotline::console::Setup {
        station: station.into(),
        language: hotline::domain::Language::En,
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
    }
}

/// One logged-in session per operator for the whole test binary: a
/// session is who proved their passphrase, so tests log in once (argon2 is
/// slow on purpose) and act through `Station::handle` as a console does.
async fn session_of(station: &Station, name: &str) -> std::sync::Arc<Session> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static SESSIONS: OnceLock<Mutex<HashMap<String, Arc<Session>>>> = OnceLock::new();
    let sessions = SESSIONS.get_or_init(Mutex::default);
    if let Some(s) = sessions.lock().expect("sessions").get(name) {
        return s.clone();
    }
    let s = Arc::new(login_as(station, name).await);
    sessions
        .lock()
        .expect("sessions")
        .insert(name.to_string(), s.clone());
    s
}

/// The station's door, spoken in the words the engine tests use: each
/// call is one `Command` through `Station::handle`, for operator `op`'s
/// session.
#[allow(async_fn_in_trait)]
pub trait ViaDoor {
    async fn d_release(
        &self,
        op: &hotline::domain::OperatorName,
        to: &str,
        draft: Draft,
    ) -> Result<(MessageRow, Message), ApiError>;
    async fn d_release_with_attachments(
        &self,
        op: &hotline::domain::OperatorName,
        to: &str,
        draft: Draft,
        files: Vec<PathBuf>,
    ) -> Result<(MessageRow, Message), ApiError>;
    async fn d_acknowledge(
        &self,
        op: &hotline::domain::OperatorName,
        id: MessageId,
    ) -> Result<(), ApiError>;
    fn d_list(&self, direction: Direction) -> Result<Vec<MessageRow>, ApiError>;
    fn d_open(&self, id: &MessageId) -> Result<Message, ApiError>;
    /// Exports through the station (which writes to DATA_DIR/exports/ID),
    /// then moves what it wrote to `dir`, where the test looks.
    async fn d_export_attachments(
        &self,
        id: &MessageId,
        dir: PathBuf,
    ) -> Result<(Vec<PathBuf>, Vec<String>), ApiError>;
    async fn d_link_test(&self, peer: &str) -> Result<std::time::Duration, ApiError>;
}

impl ViaDoor for Station {
    async fn d_release(
        &self,
        op: &hotline::domain::OperatorName,
        to: &str,
        draft: Draft,
    ) -> Result<(MessageRow, Message), ApiError> {
        self.d_release_with_attachments(op, to, draft, Vec::new())
            .await
    }

    async fn d_release_with_attachments(
        &self,
        op: &hotline::domain::OperatorName,
        to: &str,
        draft: Draft,
        files: Vec<PathBuf>,
    ) -> Result<(MessageRow, Message), ApiError> {
        let session = session_of(self, op.as_str()).await;
        let row = try_release(self, &session, to, draft, files).await?;
        match self.handle(&session, Command::Open { id: row.id }).await? {
            Reply::Opened { message } => Ok((row, *message)),
            other => panic!("unexpected answer to open: {other:?}"),
        }
    }

    async fn d_acknowledge(
        &self,
        op: &hotline::domain::OperatorName,
        id: MessageId,
    ) -> Result<(), ApiError> {
        let session = session_of(self, op.as_str()).await;
        acknowledge(self, &session, id).await.map(|_| ())
    }

    fn d_list(&self, direction: Direction) -> Result<Vec<MessageRow>, ApiError> {
        block(async {
            let session = Session::new(Door::Console);
            match self.handle(&session, Command::List { direction }).await? {
                Reply::Rows { rows } => Ok(rows),
                other => panic!("unexpected answer to a listing: {other:?}"),
            }
        })
    }

    fn d_open(&self, id: &MessageId) -> Result<Message, ApiError> {
        block(async {
            let session = session_of(self, "op").await;
            match self.handle(&session, Command::Open { id: *id }).await? {
                Reply::Opened { message } => Ok(*message),
                other => panic!("unexpected answer to open: {other:?}"),
            }
        })
    }

    async fn d_export_attachments(
        &self,
        id: &MessageId,
        dir: PathBuf,
    ) -> Result<(Vec<PathBuf>, Vec<String>), ApiError> {
        let session = session_of(self, "op").await;
        match self
            .handle(&session, Command::ExportAttachments { id: *id })
            .await?
        {
            Reply::Exported {
                dir: at,
                written,
                skipped,
            } => {
                std::fs::create_dir_all(&dir).expect("export dir");
                let moved = written
                    .iter()
                    .map(|p| {
                        let to = dir.join(p.file_name().expect("a file name"));
                        std::fs::rename(p, &to).expect("move the export");
                        to
                    })
                    .collect();
                let _ = std::fs::remove_dir(at);
                Ok((moved, skipped))
            }
            other => panic!("unexpected answer to an export: {other:?}"),
        }
    }

    async fn d_link_test(&self, peer: &str) -> Result<std::time::Duration, ApiError> {
        let session = Session::new(Door::Console);
        match self
            .handle(
                &session,
                Command::LinkTest {
                    peer: peer.to_string(),
                },
            )
            .await?
        {
            Reply::LinkTested { rtt_ms, .. } => Ok(std::time::Duration::from_millis(rtt_ms)),
            other => panic!("unexpected answer to a link test: {other:?}"),
        }
    }
}

/// Runs a future to its end from synchronous test code inside a
/// multi-threaded runtime (or on a runtime of its own outside one).
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(f)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f),
    }
}
