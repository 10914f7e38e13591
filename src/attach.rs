//! An attached console's view of a station running elsewhere on this
//! machine (`hotline serve`), through the control socket's client. One
//! connection carries commands and the operator's log-in; a second one
//! streams events and heartbeats. [`supervise`] watches that stream: a
//! closed socket, or no heartbeat for [`STATION_SILENT`], is reported to the
//! console at once as [`Msg::StationLost`], and the connection is retried
//! every [`RECONNECT_EVERY`] until the station answers again
//! ([`Msg::StationReached`], with whether it is a new run of it).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use crate::console::Msg;
use crate::station::Event;
use crate::station::api::{ApiError, Command, Reply};
use crate::station::client::{Client, Watch};
use crate::station::control::Streamed;

/// How long the station may say nothing (it sends a heartbeat every
/// 250 ms) before the console shows it as not running.
pub const STATION_SILENT: Duration = Duration::from_secs(1);
/// How often a lost station is tried again.
pub const RECONNECT_EVERY: Duration = Duration::from_millis(500);
/// Room for lines from the watch connection not yet taken.
const WATCH_BUFFER: usize = 1024;

/// The command connection to a running station, made again on demand
/// after it broke.
pub struct Remote {
    socket: PathBuf,
    conn: Mutex<Option<Client>>,
}

impl Remote {
    pub async fn connect(socket: PathBuf) -> Result<Remote, ApiError> {
        let client = Client::connect(&socket).await?;
        Ok(Remote {
            socket,
            conn: Mutex::new(Some(client)),
        })
    }

    /// Carries out one command at the station. A broken connection is
    /// dropped, and the next command dials again.
    pub async fn call(&self, command: Command) -> Result<Reply, ApiError> {
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            *conn = Some(Client::connect(&self.socket).await?);
        }
        let Some(client) = conn.as_mut() else {
            return Err(ApiError::NotRunning {
                socket: self.socket.clone(),
            });
        };
        let result = client.send(command).await;
        if matches!(
            result,
            Err(ApiError::Gone { .. } | ApiError::Unreadable { .. })
        ) {
            *conn = None;
        }
        result
    }

    /// The run of the station the command connection reached.
    pub async fn boot(&self) -> Option<u64> {
        self.conn.lock().await.as_ref().map(|c| c.welcome.boot)
    }

    /// The station's own age recipient, as its welcome gave it.
    pub async fn recipient(&self) -> Option<String> {
        self.conn
            .lock()
            .await
            .as_ref()
            .map(|c| c.welcome.recipient.clone())
    }

    /// Forgets the command connection (its station was restarted: the
    /// log-in it carried is gone with the old run).
    pub async fn reset(&self) {
        *self.conn.lock().await = None;
    }
}

/// Feeds one watch connection's lines into a channel, so that waiting for
/// them can be timed out without losing half a line.
fn pump(mut watch: Watch) -> mpsc::Receiver<Result<Streamed, ApiError>> {
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    tokio::spawn(async move {
        loop {
            let item = watch.next().await;
            let end = item.is_err();
            if tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    rx
}

/// Watches the station for as long as the console runs, reporting to it
/// on `tx`. `boot` is the run the console first attached to.
pub async fn supervise(socket: PathBuf, mut boot: u64, tx: mpsc::Sender<Msg>) {
    let mut first = true;
    loop {
        let watch = match Watch::connect(&socket).await {
            Ok(w) => w,
            Err(e) => {
                if first {
                    first = false;
                    if tx
                        .send(Msg::StationLost {
                            reason: e.to_string(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::time::sleep(RECONNECT_EVERY).await;
                continue;
            }
        };
        let restarted = watch.welcome.boot != boot;
        boot = watch.welcome.boot;
        // Events from here on reach the console: a resync now loses none
        // that came before the watch was up.
        let reached = if first && !restarted {
            Msg::MissedEvents
        } else {
            Msg::StationReached { restarted }
        };
        if tx.send(reached).await.is_err() {
            return;
        }
        first = false;
        let mut lines = pump(watch);
        let mut silent = false;
        let reason = loop {
            let next = tokio::time::timeout(STATION_SILENT, lines.recv()).await;
            let item = match next {
                Err(_) => {
                    if !silent {
                        silent = true;
                        let reason = format!(
                            "the station is not responding (nothing heard for {} s)",
                            STATION_SILENT.as_secs()
                        );
                        if tx.send(Msg::StationLost { reason }).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Ok(None) => break "the station's connection ended".to_string(),
                Ok(Some(Err(e))) => break e.to_string(),
                Ok(Some(Ok(item))) => item,
            };
            if std::mem::take(&mut silent)
                && tx
                    .send(Msg::StationReached { restarted: false })
                    .await
                    .is_err()
            {
                return;
            }
            let msg = match item {
                Streamed::Heartbeat => continue,
                Streamed::Lagged => Msg::MissedEvents,
                Streamed::Event(Event::Stopping { reason }) => break reason,
                Streamed::Event(e) => Msg::Station(e),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        };
        if tx.send(Msg::StationLost { reason }).await.is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}
