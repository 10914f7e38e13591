//! The station's command/event API on a local socket (`station.sock` in the
//! data directory, owner-only), as JSON lines: one request line, one answer
//! line; `watch` then streams events. Headless CLI commands and a second
//! console use it. Operators prove themselves with their passphrase here,
//! exactly as at the console.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream as AsyncUnixStream};
use tokio::sync::broadcast::error::RecvError;
use zeroize::Zeroize;

use super::{Event, Station, StationError};
use crate::compose::Draft;
use crate::domain::{MessageId, OperatorName, Precedence};
use crate::store::Direction;

/// The longest request line accepted.
const MAX_REQUEST: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Send {
        to: String,
        template: String,
        #[serde(default)]
        fields: BTreeMap<String, String>,
        #[serde(default)]
        precedence: Option<String>,
        #[serde(default)]
        text: String,
        #[serde(default)]
        references: Vec<String>,
        #[serde(default)]
        exercise: bool,
        operator: String,
        /// Without a passphrase, the connection's logged-in operator.
        #[serde(default)]
        passphrase: Option<String>,
        #[serde(default)]
        second_operator: Option<String>,
        /// Without one, a second operator verified on this connection in
        /// the last few minutes.
        #[serde(default)]
        second_passphrase: Option<String>,
        /// Files to attach: paths the station itself opens and reads.
        #[serde(default)]
        attachments: Vec<PathBuf>,
    },
    Ack {
        id: String,
        operator: String,
        #[serde(default)]
        passphrase: Option<String>,
    },
    Cancel {
        id: String,
        operator: String,
        #[serde(default)]
        passphrase: Option<String>,
    },
    /// Logs an operator in on this connection (an attached console).
    Login {
        operator: String,
        passphrase: String,
    },
    Logout,
    /// Checks a second operator (two-person rule) for this connection.
    Verify {
        operator: String,
        passphrase: String,
    },
    /// One stored message, opened.
    Show {
        id: String,
    },
    /// A message's attachments, written to DATA_DIR/exports/ID/ at the
    /// station.
    ExportAttachments {
        id: String,
    },
    /// An audit entry by the logged-in operator (lock, escalation).
    Audit {
        action: String,
        detail: String,
    },
    Inbox,
    Outbox,
    Status,
    LinkTest {
        peer: String,
    },
    Watch,
}

impl Drop for Request {
    fn drop(&mut self) {
        match self {
            Request::Send {
                passphrase,
                second_passphrase,
                ..
            } => {
                passphrase.zeroize();
                if let Some(p) = second_passphrase {
                    p.zeroize();
                }
            }
            Request::Ack { passphrase, .. } | Request::Cancel { passphrase, .. } => {
                passphrase.zeroize()
            }
            _ => {}
        }
    }
}

/// The socket's path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("station.sock")
}

/// Serves the API on `path` until the station stops. The caller holds the
/// data directory's lock, so a socket file already there is stale.
pub async fn serve(station: Station, path: PathBuf) -> std::io::Result<()> {
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let mut stop = station.inner.stop.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                tokio::spawn(client(station.clone(), stream));
            }
            _ = stop.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Who is logged in on one control connection.
#[derive(Default)]
struct Session {
    operator: Option<OperatorName>,
    second: Option<(OperatorName, std::time::Instant)>,
}

/// How long a verified second operator stays valid for a FLASH release.
const SECOND_OPERATOR_VALID: std::time::Duration = std::time::Duration::from_secs(300);

async fn client(station: Station, stream: AsyncUnixStream) {
    let mut session = Session::default();
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read.take(MAX_REQUEST as u64 * 64)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.len() > MAX_REQUEST {
            return;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => json!({"ok": false, "error": format!("not a request: {e}")}),
            Ok(Request::Watch) => {
                let _ = write.write_all(b"{\"ok\":true}\n").await;
                watch(&station, &mut write).await;
                return;
            }
            Ok(req) => match handle(&station, &mut session, &req).await {
                Ok(result) => json!({"ok": true, "result": result}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            },
        };
        let mut text = answer.to_string();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

use tokio::io::AsyncReadExt as _;

async fn watch(station: &Station, write: &mut tokio::net::unix::OwnedWriteHalf) {
    let mut events = station.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(_)) => Event::Resync,
            Err(RecvError::Closed) => return,
        };
        let mut text = serde_json::to_string(&event).unwrap_or_default();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn authenticate(
    station: &Station,
    name: &str,
    passphrase: &str,
) -> Result<OperatorName, StationError> {
    let secret = SecretString::from(passphrase.to_string());
    let auth_station = station.clone();
    let who = name.to_string();
    let result =
        tokio::task::spawn_blocking(move || auth_station.authenticator().check(&who, &secret))
            .await
            .map_err(|e| StationError::Refused(e.to_string()))?;
    let outcome = if result.is_ok() { "ok" } else { "denied" };
    let _ = station.journal().audit(
        name,
        "login",
        &format!("via=control-socket outcome={outcome}"),
    );
    Ok(result?)
}

fn parse_id(id: &str) -> Result<MessageId, StationError> {
    id.parse()
        .map_err(|_| StationError::Refused(format!("`{id}` is not a message id")))
}

/// The operator a request acts for: proven by its passphrase, or the one
/// logged in on this connection.
async fn operator(
    station: &Station,
    session: &Session,
    name: &str,
    passphrase: Option<&str>,
) -> Result<OperatorName, StationError> {
    match passphrase {
        Some(p) => authenticate(station, name, p).await,
        None => match &session.operator {
            Some(op) if op.as_str() == name => Ok(op.clone()),
            _ => Err(StationError::Refused(format!(
                "{name} is not logged in on this connection; give the passphrase"
            ))),
        },
    }
}

async fn handle(
    station: &Station,
    session: &mut Session,
    req: &Request,
) -> Result<Value, StationError> {
    match req {
        Request::Send {
            to,
            template,
            fields,
            precedence,
            text,
            references,
            exercise,
            operator,
            passphrase,
            second_operator,
            second_passphrase,
            attachments,
        } => {
            let who = self::operator(station, session, operator, passphrase.as_deref()).await?;
            let precedence: Option<Precedence> =
                precedence.as_deref().map(str::parse).transpose().map_err(
                    |e: crate::domain::UnknownPrecedence| StationError::Refused(e.to_string()),
                )?;
            let default = crate::templates::Catalog::builtin()
                .latest(template)
                .map(|t| t.precedence);
            if precedence.or(default) == Some(Precedence::Flash)
                && station.config().console.two_person_flash
            {
                let Some(second) = second_operator else {
                    return Err(StationError::Refused(
                        "releasing a FLASH needs a second operator (two-person rule): give --second-operator".into(),
                    ));
                };
                let second = match (second_passphrase, &session.second) {
                    (Some(pass), _) => authenticate(station, second, pass).await?,
                    (None, Some((verified, at)))
                        if verified.as_str() == second && at.elapsed() < SECOND_OPERATOR_VALID =>
                    {
                        verified.clone()
                    }
                    (None, _) => {
                        return Err(StationError::Refused(format!(
                            "second operator {second} has not been verified"
                        )));
                    }
                };
                session.second = None;
                if second == who {
                    return Err(StationError::Refused(
                        "the second operator must be a different person".into(),
                    ));
                }
            }
            let references = references
                .iter()
                .map(|r| parse_id(r))
                .collect::<Result<Vec<_>, _>>()?;
            let draft = Draft {
                template_id: template.clone(),
                fields: fields.clone(),
                precedence,
                text: text.clone(),
                references,
                exercise: *exercise,
            };
            let (released, message) = station
                .release_with_attachments(&who, to, draft, attachments.clone())
                .await?;
            Ok(
                json!({"id": released.id.to_string(), "serial": released.serial, "precedence": message.precedence, "to": message.to}),
            )
        }
        Request::Ack {
            id,
            operator,
            passphrase,
        } => {
            let who = self::operator(station, session, operator, passphrase.as_deref()).await?;
            let row = station.journal().find(id)?;
            station.acknowledge(&who, row.id).await?;
            Ok(json!({"id": row.id.to_string(), "acknowledged_by": who.to_string()}))
        }
        Request::Cancel {
            id,
            operator,
            passphrase,
        } => {
            let who = self::operator(station, session, operator, passphrase.as_deref()).await?;
            station.cancel(&who, parse_id(id)?).await?;
            Ok(json!({"id": id, "cancelled": true}))
        }
        Request::Login {
            operator,
            passphrase,
        } => {
            let who = authenticate(station, operator, passphrase).await?;
            session.operator = Some(who.clone());
            Ok(json!({"operator": who.to_string()}))
        }
        Request::Logout => {
            if let Some(op) = session.operator.take() {
                let _ = station
                    .journal()
                    .audit(op.as_str(), "logout", "via=control-socket");
            }
            session.second = None;
            Ok(Value::Null)
        }
        Request::Verify {
            operator,
            passphrase,
        } => {
            let who = authenticate(station, operator, passphrase).await?;
            session.second = Some((who.clone(), std::time::Instant::now()));
            Ok(json!({"operator": who.to_string()}))
        }
        Request::Show { id } => {
            let row = station.journal().find(id)?;
            let message = station.open(&row.id)?;
            serde_json::to_value(message).map_err(|e| StationError::Refused(e.to_string()))
        }
        Request::ExportAttachments { id } => {
            let row = station.journal().find(id)?;
            let dir = station
                .config()
                .station
                .data_dir
                .join("exports")
                .join(row.id.to_string());
            let (written, skipped) = station.export_attachments(&row.id, dir.clone()).await?;
            Ok(
                json!({"dir": dir.display().to_string(), "written": written.len(), "skipped": skipped}),
            )
        }
        Request::Audit { action, detail } => {
            let Some(op) = &session.operator else {
                return Err(StationError::Refused("log in first".into()));
            };
            station
                .journal()
                .audit(op.as_str(), action, detail)
                .done()
                .await?;
            Ok(Value::Null)
        }
        Request::Inbox => Ok(rows_with_attachments(station.journal(), Direction::In)?),
        Request::Outbox => Ok(rows_with_attachments(station.journal(), Direction::Out)?),
        Request::Status => {
            serde_json::to_value(station.status()).map_err(|e| StationError::Refused(e.to_string()))
        }
        Request::LinkTest { peer } => {
            let rtt = station.link_test(peer).await?;
            Ok(json!({"peer": peer, "ok": true, "rtt_ms": rtt.as_millis() as u64}))
        }
        Request::Watch => Ok(Value::Null),
    }
}

/// Message rows as JSON, for `inbox` and `outbox`.
pub fn rows_json(rows: &[crate::store::MessageRow]) -> Value {
    serde_json::to_value(rows).unwrap_or(Value::Null)
}

/// One direction's message rows as JSON, each with an `attachments` object
/// (`receipted`, `refused`, `total`) when it has any.
pub fn rows_with_attachments(
    journal: &crate::store::Journal,
    direction: Direction,
) -> Result<Value, crate::store::StoreError> {
    let rows = journal.list(direction)?;
    let counts = journal.attachment_counts(direction)?;
    let mut v = rows_json(&rows);
    if let Some(items) = v.as_array_mut() {
        for (item, row) in items.iter_mut().zip(&rows) {
            if let (Some((done, refused, total)), Some(obj)) =
                (counts.get(&row.id), item.as_object_mut())
            {
                obj.insert(
                    "attachments".into(),
                    json!({"receipted": done, "refused": refused, "total": total}),
                );
            }
        }
    }
    Ok(v)
}

/// Why the CLI could not talk to a station.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no station is running for this config ({0} has no live socket); start one with `hotline serve`"
    )]
    NotRunning(PathBuf),
    #[error("talking to the station: {0}")]
    Io(#[from] std::io::Error),
    #[error("the station answered something unreadable: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}

/// A synchronous client of the control socket, for the CLI.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream =
            UnixStream::connect(path).map_err(|_| ClientError::NotRunning(path.to_path_buf()))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn send(&mut self, req: &Request) -> Result<Value, ClientError> {
        let mut line =
            serde_json::to_string(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        line.zeroize();
        let mut answer = String::new();
        self.reader.read_line(&mut answer)?;
        let v: Value =
            serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if v["ok"] == Value::Bool(true) {
            Ok(v)
        } else {
            Err(ClientError::Refused(
                v["error"].as_str().unwrap_or("refused").to_string(),
            ))
        }
    }

    /// Sends one request and returns its result.
    pub fn call(&mut self, req: &Request) -> Result<Value, ClientError> {
        self.send(req).map(|v| v["result"].clone())
    }

    /// Starts watching: every following line is an event.
    pub fn watch(mut self, mut each: impl FnMut(&str) -> bool) -> Result<(), ClientError> {
        self.send(&Request::Watch)?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if !each(line.trim_end()) {
                return Ok(());
            }
        }
    }
}
