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
        /// Where this console keeps its own files (drafts, exports).
        own_dir: PathBuf,
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

    /// The console of the station listening on `socket`, keeping its own
    /// files (drafts, exports) in `own_dir`.
    pub async fn attach(
        socket: PathBuf,
        own_dir: PathBuf,
        peers: Vec<String>,
    ) -> Result<Backend, ApiError> {
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
            own_dir,
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

    /// Where this console keeps its own files: drafts, and exports (under
    /// `exports/`). In-process, the station's data directory; attached, a
    /// directory of the console user's (see [`crate::cli`]'s console).
    pub(super) fn own_dir(&self) -> &std::path::Path {
        match self {
            Backend::Local { station, .. } => station.data_dir(),
            Backend::Remote { own_dir, .. } => own_dir,
        }
    }

    /// Where drafts are kept, and what they are sealed to.
    pub(super) fn drafts(&self) -> Option<(PathBuf, OwnRecipient)> {
        let recipient = match self {
            Backend::Local { station, .. } => station.recipient(),
            Backend::Remote { recipient, .. } => *recipient.clone()?,
        };
        Some((self.own_dir().to_path_buf(), recipient))
    }

    pub(super) fn peers(&self) -> Vec<String> {
        match self {
            Backend::Local { station, .. } => station.peers(),
            Backend::Remote { peers, .. } => peers.clone(),
        }
    }
}
