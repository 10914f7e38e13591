//! The control socket: the station's typed API ([`super::api`]) as JSON
//! lines on `[control] socket` (default `station.sock` in the data
//! directory): the station's own user's alone, or also its operators'
//! group's with `[control] group`. Files go with a request as descriptors
//! ([`super::passing`]). It is a thin
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

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::broadcast::error::RecvError;
use zeroize::{Zeroize, Zeroizing};

use super::api::{API_VERSION, ApiError, Command, Reply, Session};
use super::passing::Receiving;
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

/// The control socket, bound and ready: serve it with [`serve`].
pub struct Listening {
    listener: tokio::net::UnixListener,
    pub path: PathBuf,
}

/// Binds the station's control socket (`[control] socket`): owner-only
/// from the moment it exists, then, with `[control] group`, given to that
/// group with mode 0660. The caller holds the data directory's lock, so a
/// socket file left there is stale; one elsewhere that still answers is
/// another station's, and is left alone.
pub fn listen(station: &Station) -> std::io::Result<Listening> {
    let control = &station.inner.config.control;
    let path = control.socket.clone();
    let at = |e: std::io::Error, doing: &str| {
        std::io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
    };
    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "{}: another station answers on this socket; give each station its own ([control] socket)",
                path.display()
            ),
        ));
    }
    let _ = std::fs::remove_file(&path);
    let listener = crate::fsutil::bind_private_socket(&path).map_err(|e| at(e, "binding"))?;
    if let Some(group) = &control.group {
        use std::os::unix::fs::PermissionsExt as _;
        std::os::unix::fs::chown(&path, None, Some(group.gid))
            .map_err(|e| at(e, &format!("giving group {} the socket", group.name)))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| at(e, "letting the group use the socket"))?;
    }
    Ok(Listening { listener, path })
}

/// Serves the API until the station stops, then removes the socket.
pub async fn serve(station: Station, listening: Listening) -> std::io::Result<()> {
    let Listening { listener, path } = listening;
    let mut stop = station.inner.stop.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                tokio::spawn(client(station.clone(), stream));
            }
            // The stop may have come before this task first ran: waiting
            // only for a change would then wait for ever, and `serve`
            // with it.
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// One line read with a bound on its length. The text is wiped when it is
/// dropped: a log-in line carries a passphrase.
enum Line {
    Text(Zeroizing<String>),
    NotUtf8,
    TooLong,
    End,
}

/// How many bytes a [`Lines`] reads from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Request lines off the socket, through buffers that are wiped as they
/// are used: what a client sent (a log-in's passphrase among it) does not
/// stay behind in memory after its line has been handled.
struct Lines<R> {
    read: R,
    chunk: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(read: R) -> Self {
        Lines {
            read,
            chunk: Zeroizing::new(vec![0; READ_CHUNK]),
            start: 0,
            end: 0,
        }
    }

    async fn line(&mut self, max: usize) -> Line {
        let mut line = Zeroizing::new(Vec::new());
        loop {
            if self.start == self.end {
                self.start = 0;
                self.end = match self.read.read(&mut self.chunk[..]).await {
                    Ok(0) | Err(_) => return Line::End,
                    Ok(n) => n,
                };
            }
            let unread = &self.chunk[self.start..self.end];
            let (part, complete) = match unread.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (unread.len(), false),
            };
            if line.len() + part > max {
                return Line::TooLong;
            }
            if line.len() + part > line.capacity() {
                // Grown by hand, so the old allocation is wiped, not freed
                // with the bytes still in it.
                let mut grown = Zeroizing::new(Vec::with_capacity(
                    (line.len() + part).max(2 * line.capacity()),
                ));
                grown.extend_from_slice(&line);
                line = grown;
            }
            line.extend_from_slice(&unread[..part]);
            let used = part + usize::from(complete);
            self.chunk[self.start..self.start + used].zeroize();
            self.start += used;
            if complete {
                return match String::from_utf8(std::mem::take(&mut *line)) {
                    Ok(text) => Line::Text(Zeroizing::new(text)),
                    Err(e) => {
                        e.into_bytes().zeroize();
                        Line::NotUtf8
                    }
                };
            }
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
    // The socket's mode is the first door; this holds even if it were
    // loosened.
    let ours = crate::fsutil::euid();
    let group = station.inner.config.control.group.as_ref().map(|g| g.gid);
    let cred = stream.peer_cred();
    let station_user = cred.as_ref().is_ok_and(|c| c.uid() == ours);
    let admitted = station_user
        || cred.as_ref().is_ok_and(|c| {
            group.is_some_and(|gid| c.gid() == gid || peer_groups(&stream).contains(&gid))
        });
    if !admitted {
        let who = cred.map_or_else(|e| format!("unknown ({e})"), |c| c.uid().to_string());
        tracing::warn!(uid = %who, "refused a control-socket client of another user");
        let (_, mut write) = stream.into_split();
        let serves = match &station.inner.config.control.group {
            Some(g) => format!("its own user (uid {ours}) and members of group {}", g.name),
            None => format!("only its own user (uid {ours})"),
        };
        let e = ApiError::Refused {
            detail: format!("this station's socket serves {serves}; uid {who} is refused"),
        };
        write_json(&mut write, &Answer::Err(e)).await;
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut reader = Lines::new(Receiving::new(read));
    let mut stop = station.inner.stop.subscribe();
    let hello = match reader.line(MAX_REQUEST).await {
        Line::Text(line) => serde_json::from_str::<Hello>(&line).map_err(|e| e.to_string()),
        Line::End => return,
        Line::NotUtf8 => Err("the hello is not UTF-8".into()),
        Line::TooLong => Err("the hello is longer than 1 MiB".into()),
    };
    reader.read.discard();
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
    let session = Session::socket(station_user);
    loop {
        let line = tokio::select! {
            line = reader.line(MAX_REQUEST) => line,
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
            Line::NotUtf8 => {
                reader.read.discard();
                Answer::Err(ApiError::BadRequest {
                    detail: "the request is not UTF-8".into(),
                })
            }
            Line::Text(text) => match serde_json::from_str::<Command>(&text)
                .map_err(|e| ApiError::BadRequest {
                    detail: e.to_string(),
                })
                .and_then(|mut command| reader.read.bind(&mut command).map(|()| command))
                .inspect_err(|_| reader.read.discard())
            {
                Err(e) => Answer::Err(e),
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

/// The supplementary groups of the process at the other end, as the
/// kernel recorded them when it connected (`SO_PEERGROUPS`); none if they
/// cannot be read.
fn peer_groups(stream: &UnixStream) -> Vec<u32> {
    use std::os::fd::AsRawFd as _;
    let size = std::mem::size_of::<libc::gid_t>();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * size) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes long and outlives the call,
        // which writes at most `len` bytes into it and the size used
        // into `len`.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / size;
        if rc == 0 {
            groups.truncate(needed);
            return groups;
        }
        let again = std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE);
        if !again || needed <= groups.len() || needed > 1 << 16 {
            return Vec::new();
        }
        groups.resize(needed, 0);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines come whole and in order, and what has been handed out no
    /// longer sits in the read buffer (a log-in's passphrase above all).
    #[tokio::test]
    async fn lines_are_read_whole_and_wiped_from_the_buffer() {
        let secret = r#"{"login":{"operator":"op","passphrase":"hunter2 correct horse"}}"#;
        let wire = format!("{secret}\n{{\"status\":null}}\npartial");
        let mut lines = Lines::new(wire.as_bytes());
        let Line::Text(first) = lines.line(MAX_REQUEST).await else {
            panic!("the first line")
        };
        assert_eq!(first.as_str(), secret);
        let left = &lines.chunk[..];
        assert!(
            !left.windows(7).any(|w| w == b"hunter2"),
            "the passphrase is wiped from the buffer once read"
        );
        assert!(
            left.windows(6).any(|w| w == b"status"),
            "control: the unread line is still there"
        );
        let Line::Text(second) = lines.line(MAX_REQUEST).await else {
            panic!("the second line")
        };
        assert_eq!(second.as_str(), r#"{"status":null}"#);
        assert!(
            matches!(lines.line(MAX_REQUEST).await, Line::End),
            "a cut line is no request"
        );
        let big = format!("{}\nnext\n", "x".repeat(3 * READ_CHUNK + 5));
        let mut across = Lines::new(big.as_bytes());
        let Line::Text(whole) = across.line(MAX_REQUEST).await else {
            panic!("a line longer than the buffer")
        };
        assert_eq!(whole.len(), 3 * READ_CHUNK + 5);
        assert!(matches!(across.line(MAX_REQUEST).await, Line::Text(t) if t.as_str() == "next"));
        let mut long = Lines::new(&b"0123456789\n"[..]);
        assert!(matches!(long.line(4).await, Line::TooLong));
        let mut bad = Lines::new(&b"\xff\n"[..]);
        assert!(matches!(bad.line(4).await, Line::NotUtf8));
    }
}
