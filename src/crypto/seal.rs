//! Sealing a message: sign the exact serialised bytes, then encrypt with age
//! to the peer and to ourselves. Opening reverses it: decrypt, verify the
//! signed bytes against the pinned key of the claimed sender, and only then
//! parse; then check that the message is from that sender and is for us.

use super::age_io::{self, AgeError};
use super::keys::{PeerKeys, StationKeys, seal_recipients};
use super::signed::{self, Kind, SignedError};
use crate::domain::{Message, StationName};

/// The most a sealed message may decrypt to. Attachments travel separately,
/// so a message is form fields and free text: 1 MiB is generous.
pub const MAX_MESSAGE_PLAINTEXT: u64 = 1 << 20;

/// Why a message could not be sealed. These are programming or key errors on
/// our side, never caused by the peer.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the message says it is from {from}, but this station is {us}")]
    NotFromUs { from: StationName, us: StationName },
    #[error("the message is addressed to {to}, but the keys given are {peer}'s")]
    RecipientMismatch { to: StationName, peer: StationName },
    #[error("the message could not be serialised: {0}")]
    Serialise(String),
    #[error(transparent)]
    Age(#[from] AgeError),
}

/// Why a sealed message was refused. Each failure has its own variant so that
/// the link can answer with the right refusal code and the audit log can say
/// what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the message is not encrypted to this station")]
    NotForUs,
    #[error("the ciphertext is damaged or was tampered with: {0}")]
    Tampered(String),
    #[error("the message is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the decrypted content is not a hotline message: {0}")]
    Malformed(String),
    #[error("the message claims to be signed by {0}, which is not a pinned peer")]
    UnknownSender(String),
    #[error("the signature does not verify against the key pinned for {0}")]
    BadSignature(String),
    #[error("signed by {signer} but the message says it is from {from}")]
    WrongSender { signer: String, from: String },
    #[error("the message is addressed to {to}, not to this station ({us})")]
    WrongRecipient { to: String, us: String },
    /// Genuinely signed by the sender, but at a newer revision than this
    /// build reads ([`crate::domain::REVISION`]).
    #[error("message revision {theirs}; this station reads up to revision {ours}; upgrade hotline")]
    UnsupportedRevision { theirs: u32, ours: u32 },
}

/// A message that decrypted, verified and passed the address checks.
#[derive(Debug, Clone)]
pub struct Opened {
    pub message: Message,
    /// The signed document exactly as it was inside the age layer.
    pub plaintext: Vec<u8>,
}

/// Signs and encrypts `message` from `me` to `peer`.
pub fn seal(message: &Message, me: &StationKeys, peer: &PeerKeys) -> Result<Vec<u8>, SealError> {
    if message.from != me.name {
        return Err(SealError::NotFromUs {
            from: message.from.clone(),
            us: me.name.clone(),
        });
    }
    if message.to != peer.name {
        return Err(SealError::RecipientMismatch {
            to: message.to.clone(),
            peer: peer.name.clone(),
        });
    }
    let body = serde_json::to_vec(message).map_err(|e| SealError::Serialise(e.to_string()))?;
    let doc = signed::sign(Kind::Message, &me.name, &body, &me.signing);
    let sealing = seal_recipients(me, peer);
    Ok(age_io::encrypt(&doc, &sealing.recipients())?)
}

/// Opens a message sent to us by one of our pinned peers.
pub fn open_inbound<P: std::borrow::Borrow<PeerKeys>>(
    ciphertext: &[u8],
    me: &StationKeys,
    pinned: impl Fn(&str) -> Option<P>,
) -> Result<Opened, OpenError> {
    let opened = open_with(ciphertext, me, |signer| {
        pinned(signer).map(|p| p.borrow().accepted())
    })?;
    if opened.message.to != me.name {
        return Err(OpenError::WrongRecipient {
            to: opened.message.to.to_string(),
            us: me.name.to_string(),
        });
    }
    Ok(opened)
}

/// Opens a message this station sealed itself (from the journal's outbox),
/// signed with its current key or one it had before a rotation.
pub fn open_outbound(ciphertext: &[u8], me: &StationKeys) -> Result<Opened, OpenError> {
    open_with(ciphertext, me, |signer| {
        (signer == me.name.as_str()).then(|| me.all_signing_keys())
    })
}

fn open_with(
    ciphertext: &[u8],
    me: &StationKeys,
    keys_for: impl Fn(&str) -> Option<Vec<ed25519_dalek::VerifyingKey>>,
) -> Result<Opened, OpenError> {
    let identities = me.identities();
    let plaintext =
        age_io::decrypt(ciphertext, &identities, MAX_MESSAGE_PLAINTEXT).map_err(|e| match e {
            AgeError::NotForUs => OpenError::NotForUs,
            AgeError::TooLarge { limit } => OpenError::TooLarge { limit },
            other => OpenError::Tampered(other.to_string()),
        })?;
    let doc = signed::parse(&plaintext).map_err(|e| OpenError::Malformed(e.to_string()))?;
    let signer = doc.claimed_signer().to_string();
    let keys = keys_for(&signer).ok_or_else(|| OpenError::UnknownSender(signer.clone()))?;
    let (body, _) = doc.verify_any(Kind::Message, &keys).map_err(|e| match e {
        SignedError::BadSignature { .. } => OpenError::BadSignature(signer.clone()),
        SignedError::UnsupportedRevision { theirs, ours, .. } => {
            OpenError::UnsupportedRevision { theirs, ours }
        }
        other => OpenError::Malformed(other.to_string()),
    })?;
    let message: Message =
        serde_json::from_slice(body).map_err(|e| OpenError::Malformed(e.to_string()))?;
    if message.from.as_str() != signer {
        return Err(OpenError::WrongSender {
            signer,
            from: message.from.to_string(),
        });
    }
    Ok(Opened { message, plaintext })
}
