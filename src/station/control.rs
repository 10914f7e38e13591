//! The control socket: the station's typed API ([`super::api`]) as JSON
//! lines on `station.sock` in the data directory (owner-only). It is a thin
//! serde shell: every request is a [`Command`], answered by
//! [`Station::handle`] for the connection's own [`Session`], exactly as the
//! in-process console is. Headless CLI commands and attached consoles use it
//! through [`super::client`].
//!
//! A connection opens with a [`Hello`] naming the protocol version; the
//! station answers [`Answer::Welcome`], or [`ApiError::Version`] naming both
//! versions and closes. A request connection then carries one [`Command`]
//! line and one [`Answer`] line at a time. A watching connection
//! (`watch: true`) instead streams [`Streamed`] lines: events, and a
//! heartbeat every [`HEARTBEAT`], so that an attached console notices a
//! station that stopped or froze. A line that is not a request gets an
//! error answer and the connection goes on serving; a line longer than
//! [`MAX_REQUEST`] is answered and the connection closed, since where the
//! next request starts is then unknown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::broadcast::error::RecvError;

use super::api::{API_VERSION, ApiError, Command, Door, Reply, Session};
use super::{Event, Station};

/// The longest request line accepted.
pub const MAX_REQUEST: usize = 1 << 20;
/// How often a watching connection hears from the station when nothing
/// else happens.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// The first line from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub version: u32,
    /// This connection streams events instead of carrying requests.
    #[serde(default)]
    pub watch: bool,
}

/// The station's answer to a hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Welcome {
    pub version: u32,
    pub station: String,
    /// Random per start of the station: a console that reconnects learns
    /// whether it is the same run (its log-in still holds) or a new one.
    pub boot: u64,
    /// The station's own age recipient: what a console seals its drafts
    /// to, so that it can keep them even when the station is gone.
    pub recipient: String,
}

/// Every line the station writes on a request connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer {
    Welcome(Welcome),
    Ok(Reply),
    Err(ApiError),
}

/// Every line after the welcome on a watching connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Streamed {
    Event(Event),
    Heartbeat,
    /// Events were lost to a slow reader: resync from a snapshot.
    Lagged,
}

/// The socket's path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("station.sock")
}

/// Serves the API on `path` until the station stops. The caller holds the
/// data directory's lock, so a socket file already there is stale.
pub async fn serve(station: Station, path: PathBuf) -> std::io::Result<()> {
    let _ = std::fs::remove_file(&path);
    let listener = crate::fsutil::bind_private_socket(&path)?;
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

/// One line read with a bound on its length.
enum Line {
    Text(String),
    NotUtf8,
    TooLong,
    End,
}

async fn read_line(reader: &mut (impl AsyncBufRead + Unpin), max: usize) -> Line {
    let mut buf = Vec::new();
    loop {
        let (used, complete) = {
            let chunk = match reader.fill_buf().await {
                Ok(c) => c,
                Err(_) => return Line::End,
            };
            if chunk.is_empty() {
                // A line cut short by the end of the stream is not a request.
                return Line::End;
            }
            let (part, used, complete) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            if buf.len() + part.len() > max {
                return Line::TooLong;
            }
            buf.extend_from_slice(part);
            (used, complete)
        };
        reader.consume(used);
        if complete {
            return match String::from_utf8(buf) {
                Ok(s) => Line::Text(s),
                Err(_) => Line::NotUtf8,
            };
        }
    }
}

async fn write_json(write: &mut OwnedWriteHalf, value: &impl Serialize) -> bool {
    let Ok(mut text) = serde_json::to_string(value) else {
        return false;
    };
    text.push('\n');
    write.write_all(text.as_bytes()).await.is_ok()
}

async fn client(station: Station, stream: UnixStream) {
    // The socket is owner-only; this holds even if its mode were loosened.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let ours = unsafe { libc::geteuid() };
    let theirs = stream.peer_cred().map(|c| c.uid());
    if theirs.as_ref().ok() != Some(&ours) {
        let who = theirs.map_or_else(|e| format!("unknown ({e})"), |uid| uid.to_string());
        tracing::warn!(uid = %who, "refused a control-socket client of another user");
        let (_, mut write) = stream.into_split();
        let e = ApiError::Refused {
            detail: format!(
                "this station's socket serves only its own user (uid {ours}); uid {who} is refused"
            ),
        };
        write_json(&mut write, &Answer::Err(e)).await;
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut stop = station.inner.stop.subscribe();
    let hello = match read_line(&mut reader, MAX_REQUEST).await {
        Line::Text(line) => serde_json::from_str::<Hello>(&line).map_err(|e| e.to_string()),
        Line::End => return,
        Line::NotUtf8 => Err("the hello is not UTF-8".into()),
        Line::TooLong => Err("the hello is longer than 1 MiB".into()),
    };
    let hello = match hello {
        Ok(h) if h.version == API_VERSION => h,
        Ok(h) => {
            let e = ApiError::Version {
                ours: API_VERSION,
                theirs: h.version,
            };
            write_json(&mut write, &Answer::Err(e)).await;
            return;
        }
        Err(detail) => {
            let e = ApiError::BadRequest {
                detail: format!("expected a hello {{\"version\": {API_VERSION}}}: {detail}"),
            };
            write_json(&mut write, &Answer::Err(e)).await;
            return;
        }
    };
    let welcome = Welcome {
        version: API_VERSION,
        station: station.name().to_string(),
        boot: station.inner.boot,
        recipient: station.recipient().to_string(),
    };
    if !write_json(&mut write, &Answer::Welcome(welcome)).await {
        return;
    }
    if hello.watch {
        watch(&station, &mut write).await;
        return;
    }
    let session = Session::new(Door::ControlSocket);
    loop {
        let line = tokio::select! {
            line = read_line(&mut reader, MAX_REQUEST) => line,
            _ = stop.changed() => break,
        };
        let answer = match line {
            Line::End => break,
            Line::TooLong => {
                let e = ApiError::BadRequest {
                    detail: format!("a request line is longer than {MAX_REQUEST} bytes"),
                };
                write_json(&mut write, &Answer::Err(e)).await;
                break;
            }
            Line::NotUtf8 => Answer::Err(ApiError::BadRequest {
                detail: "the request is not UTF-8".into(),
            }),
            Line::Text(text) => match serde_json::from_str::<Command>(&text) {
                Err(e) => Answer::Err(ApiError::BadRequest {
                    detail: e.to_string(),
                }),
                Ok(command) => {
                    let name = command.name();
                    match station.handle(&session, command).await {
                        Ok(reply) => Answer::Ok(reply),
                        Err(e) => {
                            tracing::info!(command = name, error = %e, "control command refused");
                            Answer::Err(e)
                        }
                    }
                }
            },
        };
        if !write_json(&mut write, &answer).await {
            break;
        }
    }
    // A connection that goes away ends its operator's log-in, audited.
    let _ = station.handle(&session, Command::Logout).await;
}

async fn watch(station: &Station, write: &mut OwnedWriteHalf) {
    let mut events = station.subscribe();
    let mut stop = station.inner.stop.subscribe();
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let item = tokio::select! {
            event = events.recv() => match event {
                Ok(e) => Streamed::Event(without_content(e)),
                Err(RecvError::Lagged(_)) => Streamed::Lagged,
                Err(RecvError::Closed) => return,
            },
            _ = beat.tick() => Streamed::Heartbeat,
            _ = stop.changed() => {
                // Whatever was sent before the stop (the `Stopping` event
                // first of all) goes out before the connection closes.
                while let Ok(e) = events.try_recv() {
                    if !write_json(write, &Streamed::Event(without_content(e))).await {
                        return;
                    }
                }
                return;
            }
        };
        if !write_json(write, &item).await {
            return;
        }
    }
}

/// An event as a watching connection carries it: no operator is proven on
/// it, so a row goes without its subject (a console asks for subjects on
/// its logged-in connection, [`Command::Subjects`]).
fn without_content(event: Event) -> Event {
    match event {
        Event::MessageChanged { mut row } => {
            row.subject = None;
            Event::MessageChanged { row }
        }
        other => other,
    }
}
