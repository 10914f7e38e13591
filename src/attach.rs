//! An attached console's view of a station running elsewhere on this
//! machine (`hotline serve`): the control socket's API, asynchronously.
//! One connection carries requests and the operator's log-in session; a
//! second one streams events.

use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc};
use zeroize::Zeroize;

use crate::station::Event;
use crate::station::control::{ClientError, Request};

/// Room for events from the station not yet taken by the console.
pub const REMOTE_EVENT_BUFFER: usize = 1024;

/// A request connection to a running station.
pub struct Remote {
    conn: Mutex<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

/// What the event stream delivers: an event, or word that some were missed.
#[derive(Debug)]
pub enum Streamed {
    Event(Event),
    Missed,
}

impl Remote {
    pub async fn connect(path: &Path) -> Result<Remote, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|_| ClientError::NotRunning(path.to_path_buf()))?;
        let (read, write) = stream.into_split();
        Ok(Remote {
            conn: Mutex::new((BufReader::new(read), write)),
        })
    }

    /// One request, one answer; `Err` carries the station's words.
    pub async fn call(&self, request: &Request) -> Result<Value, String> {
        let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        line.push('\n');
        let mut conn = self.conn.lock().await;
        let sent = conn.1.write_all(line.as_bytes()).await;
        line.zeroize();
        sent.map_err(|e| format!("the station went away: {e}"))?;
        let mut answer = String::new();
        let n = conn
            .0
            .read_line(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the station closed the connection".into());
        }
        let v: Value =
            serde_json::from_str(&answer).map_err(|e| format!("unreadable answer: {e}"))?;
        if v["ok"] == Value::Bool(true) {
            Ok(v["result"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("refused").to_string())
        }
    }

    /// Streams the station's events on a connection of their own.
    pub async fn events(path: &Path) -> Result<mpsc::Receiver<Streamed>, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|_| ClientError::NotRunning(path.to_path_buf()))?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(&Request::Watch)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        let (tx, rx) = mpsc::channel(REMOTE_EVENT_BUFFER);
        tokio::spawn(async move {
            let _keep = write;
            let mut lines = BufReader::new(read).lines();
            // The first line answers the watch request itself.
            let _ = lines.next_line().await;
            while let Ok(Some(line)) = lines.next_line().await {
                let item = match serde_json::from_str::<Event>(&line) {
                    Ok(Event::Resync) | Err(_) => Streamed::Missed,
                    Ok(e) => Streamed::Event(e),
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
