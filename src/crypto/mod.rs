//! Keys and sealing. A station signs with Ed25519 and decrypts with an age
//! X25519 identity; messages are signed first, then encrypted with age to the
//! peer and to ourselves. Nothing here touches the network or the journal.

pub mod age_io;
pub mod card;
pub mod classic;
pub mod keyfile;
pub mod keys;
pub mod rotation;
pub mod seal;
pub mod signed;

pub use card::{CardError, StationCard};
pub use keyfile::{KeyFileError, read_key_file, write_key_file};
pub use keys::{PeerKeys, StationKeys, fingerprint};
pub use seal::{OpenError, Opened, SealError, open_inbound, open_outbound, seal};
pub use signed::{Kind, SignedError};
