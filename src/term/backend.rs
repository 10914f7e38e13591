//! Where the console's station is, and the one call every request makes.

use std::path::PathBuf;

use crate::attach::Remote;
use crate::crypto::keys::OwnRecipient;
use crate::station::Station;
use crate::station::api::{ApiError, Command, Door, Reply, Session};

/// Where the console's station is: in this process, or attached over the
/// control socket to one started with `hotline serve`. Either way every
/// request is a typed [`Command`] through the station's one door.
pub enum Backend {
    Local {
        station: Station,
        session: Session,
    },
    Remote {
        remote: Remote,
        socket: PathBuf,
        /// The run of the station the console attached to.
        boot: u64,
        peers: Vec<String>,
        /// What drafts are sealed to, learnt when the console attached, so
        /// that drafts are kept while the station is gone.
        recipient: Option<Box<OwnRecipient>>,
    },
}

impl Backend {
    /// The console of a station running in this process.
    pub fn local(station: Station) -> Backend {
        Backend::Local {
            station,
            session: Session::new(Door::Console),
        }
    }

    /// The console of the station listening on `socket`.
    pub async fn attach(socket: PathBuf, peers: Vec<String>) -> Result<Backend, ApiError> {
        let remote = Remote::connect(socket.clone()).await?;
        let boot = remote.boot().await.unwrap_or_default();
        let recipient = remote
            .recipient()
            .await
            .and_then(|r| r.parse::<OwnRecipient>().ok())
            .map(Box::new);
        Ok(Backend::Remote {
            remote,
            socket,
            boot,
            peers,
            recipient,
        })
    }

    pub(super) async fn call(&self, command: Command) -> Result<Reply, ApiError> {
        match self {
            Backend::Local { station, session } => station.handle(session, command).await,
            Backend::Remote { remote, .. } => remote.call(command).await,
        }
    }

    /// Where drafts are kept, and what they are sealed to.
    pub(super) fn drafts(&self) -> Option<(PathBuf, OwnRecipient)> {
        match self {
            Backend::Local { station, .. } => {
                Some((station.data_dir().to_path_buf(), station.recipient()))
            }
            Backend::Remote {
                socket, recipient, ..
            } => Some((socket.parent()?.to_path_buf(), *recipient.clone()?)),
        }
    }

    pub(super) fn peers(&self) -> Vec<String> {
        match self {
            Backend::Local { station, .. } => station.peers(),
            Backend::Remote { peers, .. } => peers.clone(),
        }
    }
}
