//! The one client of the control socket ([`super::control`]): async, typed,
//! used by the attached console and by every CLI command. Anything it cannot
//! read is an [`ApiError`] that reaches the caller, never an empty answer.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use zeroize::Zeroize;

use super::api::{API_VERSION, ApiError, Command, Reply};
use super::control::{Answer, Hello, Streamed, Welcome};
use super::passing;

/// A request connection to a running station.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub welcome: Welcome,
}

/// A watching connection: the station's events and heartbeats.
pub struct Watch {
    reader: BufReader<OwnedReadHalf>,
    _writer: OwnedWriteHalf,
    pub welcome: Welcome,
}

fn gone(e: std::io::Error) -> ApiError {
    ApiError::Gone {
        detail: e.to_string(),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    reader: &mut BufReader<OwnedReadHalf>,
) -> Result<T, ApiError> {
    let mut line = String::new();
    let n = reader.read_line(&mut line).await.map_err(gone)?;
    if n == 0 {
        return Err(ApiError::Gone {
            detail: "the station closed the connection".into(),
        });
    }
    serde_json::from_str(&line).map_err(|e| ApiError::Unreadable {
        detail: e.to_string(),
    })
}

/// Writes `value` as one line, with `files`' descriptors beside it.
async fn write_line(
    writer: &mut OwnedWriteHalf,
    value: &impl serde::Serialize,
    files: &[std::fs::File],
) -> Result<(), ApiError> {
    let mut line = serde_json::to_string(value).map_err(|e| ApiError::BadRequest {
        detail: e.to_string(),
    })?;
    line.push('\n');
    let sent = passing::send_line(writer, line.as_bytes(), files).await;
    // A command can carry a passphrase.
    line.zeroize();
    sent.map_err(gone)
}

async fn open(
    socket: &Path,
    watch: bool,
) -> Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf, Welcome), ApiError> {
    let stream = UnixStream::connect(socket).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => ApiError::Refused {
            detail: format!(
                "{}: permission denied; the station's socket serves its own user and the members of its operators' group ([control] group): ask to be made a member",
                socket.display()
            ),
        },
        _ => ApiError::NotRunning {
            socket: socket.to_path_buf(),
        },
    })?;
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    let hello = Hello {
        version: API_VERSION,
        watch,
    };
    write_line(&mut writer, &hello, &[]).await?;
    match read_json::<Answer>(&mut reader).await? {
        Answer::Welcome(w) if w.version == API_VERSION => Ok((reader, writer, w)),
        Answer::Welcome(w) => Err(ApiError::Version {
            ours: API_VERSION,
            theirs: w.version,
        }),
        Answer::Err(e) => Err(e),
        Answer::Ok(_) => Err(ApiError::Unreadable {
            detail: "a reply before the welcome".into(),
        }),
    }
}

impl Client {
    pub async fn connect(socket: &Path) -> Result<Client, ApiError> {
        let (reader, writer, welcome) = open(socket, false).await?;
        Ok(Client {
            reader,
            writer,
            welcome,
        })
    }

    /// One command, one answer. A command that hands over files goes
    /// with [`Client::send`].
    pub async fn call(&mut self, command: &Command) -> Result<Reply, ApiError> {
        write_line(&mut self.writer, command, &[]).await?;
        self.answer().await
    }

    /// One command, with the files it hands over passed as descriptors
    /// beside its line; one answer.
    pub async fn send(&mut self, mut command: Command) -> Result<Reply, ApiError> {
        let files = passing::take_files(&mut command)?;
        write_line(&mut self.writer, &command, &files).await?;
        drop(files);
        self.answer().await
    }

    async fn answer(&mut self) -> Result<Reply, ApiError> {
        match read_json::<Answer>(&mut self.reader).await? {
            Answer::Ok(reply) => Ok(reply),
            Answer::Err(e) => Err(e),
            Answer::Welcome(_) => Err(ApiError::Unreadable {
                detail: "a second welcome".into(),
            }),
        }
    }
}

impl Watch {
    pub async fn connect(socket: &Path) -> Result<Watch, ApiError> {
        let (reader, writer, welcome) = open(socket, true).await?;
        Ok(Watch {
            reader,
            _writer: writer,
            welcome,
        })
    }

    /// The next line from the station. Not cancel-safe (a line half read
    /// is lost): time it out from outside, on a channel it feeds.
    pub async fn next(&mut self) -> Result<Streamed, ApiError> {
        read_json(&mut self.reader).await
    }
}
