//! Drafts kept at rest: what an operator has typed but not released, sealed
//! with age to the station's own recipient and written to
//! `DIR/drafts/OPERATOR.age` (owner-only directory and file; DIR is the
//! data directory, or the console user's own, see [`crate::term`]), so that
//! a crashed console or a lost station loses no typed work. The console
//! seals (it needs only the public recipient, so it can write even when its
//! station is gone); at the operator's next log-in it hands the file to the
//! station, which opens it with its secret key. Nothing is ever written in
//! clear.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::compose::Draft;
use crate::crypto::keys::OwnRecipient;
use crate::crypto::{StationKeys, age_io};
use crate::domain::OperatorName;

/// The largest draft file opened: far above anything typed by hand.
pub const MAX_DRAFT: u64 = 4 << 20;

/// One operator's draft, as the compose form held it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedDraft {
    pub operator: OperatorName,
    /// The peer it is addressed to.
    pub to: String,
    pub draft: Draft,
    /// Paths of files to attach, as typed.
    #[serde(default)]
    pub attachments: Vec<String>,
    pub saved_at: Timestamp,
}

/// Why a kept draft could not be opened, and where it was set aside (so
/// that the next draft does not overwrite what may be the only copy).
#[derive(Debug, thiserror::Error)]
#[error("the kept draft {path} does not open: {detail}; {kept}")]
pub struct DraftFileError {
    pub path: PathBuf,
    pub detail: String,
    pub kept: String,
}

/// Why a draft could not be kept or removed.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sealing the draft: {0}")]
    Seal(String),
    #[error("the station's recipient is not known to this console")]
    NoRecipient,
}

/// Where an operator's draft is kept.
pub fn path(data_dir: &Path, operator: &OperatorName) -> PathBuf {
    data_dir.join("drafts").join(format!("{operator}.age"))
}

/// Seals `saved` to `recipient` and replaces the operator's kept draft
/// with it, atomically (a crash leaves the old draft or the new one).
pub fn seal(
    data_dir: &Path,
    recipient: &OwnRecipient,
    saved: &SavedDraft,
) -> Result<PathBuf, KeepError> {
    let path = path(data_dir, &saved.operator);
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(saved).map_err(|e| KeepError::Seal(e.to_string()))?,
    );
    let sealed = age_io::encrypt(&json, &[recipient.as_recipient()])
        .map_err(|e| KeepError::Seal(e.to_string()))?;
    let dir = data_dir.join("drafts");
    crate::fsutil::create_private_dir(&dir).map_err(|source| KeepError::Io {
        path: dir.clone(),
        source,
    })?;
    crate::fsutil::replace_atomic(&path, &sealed, 0o600).map_err(|source| KeepError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Why a kept draft does not open.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("it cannot be read: {0}")]
    Read(std::io::Error),
    #[error("it is larger than {MAX_DRAFT} bytes")]
    TooLarge,
    #[error("not with this station's key: {0}")]
    NotOurs(String),
    #[error("not a draft this hotline can read: {0}")]
    Unreadable(serde_json::Error),
    #[error("it holds the draft of {0}")]
    OtherOperator(OperatorName),
}

/// Reads a kept draft from a file its console opened and handed over.
pub fn read_from(
    file: std::fs::File,
    keys: &StationKeys,
    operator: &OperatorName,
) -> Result<SavedDraft, UnsealError> {
    use std::io::Read as _;
    let mut sealed = Vec::new();
    file.take(MAX_DRAFT + 1)
        .read_to_end(&mut sealed)
        .map_err(UnsealError::Read)?;
    if sealed.len() as u64 > MAX_DRAFT {
        return Err(UnsealError::TooLarge);
    }
    let json = zeroize::Zeroizing::new(
        age_io::decrypt(&sealed[..], &keys.identities(), MAX_DRAFT)
            .map_err(|e| UnsealError::NotOurs(e.to_string()))?,
    );
    let saved: SavedDraft = serde_json::from_slice(&json).map_err(UnsealError::Unreadable)?;
    if &saved.operator != operator {
        return Err(UnsealError::OtherOperator(saved.operator));
    }
    Ok(saved)
}

/// Moves a draft that does not open out of the way, under a new name:
/// never deleted, since it may be the only copy of someone's work. Says
/// where it is.
pub fn set_aside(path: &Path) -> String {
    let aside = path.with_extension(format!("age.unopened-{}", Timestamp::now().as_second()));
    match std::fs::rename(path, &aside) {
        Ok(()) => format!("it is kept as {}", aside.display()),
        Err(e) => format!(
            "it could not be set aside ({e}) and stays as {}",
            path.display()
        ),
    }
}

/// Removes the operator's kept draft (released or thrown away).
pub fn discard(data_dir: &Path, operator: &OperatorName) -> Result<(), KeepError> {
    let path = path(data_dir, operator);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(KeepError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(operator: &str) -> SavedDraft {
        SavedDraft {
            operator: OperatorName::new(operator).unwrap(),
            to: "MOSCOW".into(),
            draft: Draft {
                template_id: "general".into(),
                fields: [("subject".to_string(), "Река Днепр".to_string())].into(),
                precedence: Some(crate::domain::Precedence::Immediate),
                text: "secret words".into(),
                text_language: None,
                label: None,
                references: Vec::new(),
                exercise: false,
            },
            attachments: vec!["/tmp/a.pdf".into()],
            saved_at: Timestamp::from_second(1_800_000_000).unwrap(),
        }
    }

    #[test]
    fn a_draft_is_sealed_owner_only_and_opens_with_the_station_key_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = |name| StationKeys::generate(crate::domain::StationName::new(name).unwrap());
        let station = keys("WASHINGTON").unwrap();
        let other = keys("WASHINGTON").unwrap();
        let op = OperatorName::new("j.smith").unwrap();
        let read = |keys: &StationKeys, op: &OperatorName| {
            read_from(
                std::fs::File::open(super::path(dir.path(), op)).unwrap(),
                keys,
                op,
            )
        };

        let path = seal(dir.path(), &station.own_recipient(), &saved("j.smith")).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(12).any(|w| w == b"secret words"));
        // Sealed post-quantum: the station has a post-quantum identity.
        assert!(bytes.windows(18).any(|w| w == b"-> mlkem768x25519 "));
        assert!(!bytes.windows(10).any(|w| w == b"-> X25519 "));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(read(&station, &op).unwrap(), saved("j.smith"));
        // A draft moved onto another operator's name is refused; set
        // aside, the next draft cannot overwrite it.
        let moved = OperatorName::new("a.ivanova").unwrap();
        let moved_path = super::path(dir.path(), &moved);
        std::fs::copy(&path, &moved_path).unwrap();
        let e = read(&station, &moved).unwrap_err();
        assert!(e.to_string().contains("holds the draft of j.smith"), "{e}");
        let kept = set_aside(&moved_path);
        assert!(!moved_path.exists());
        let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("a.ivanova.age.unopened-"))
            .collect();
        assert_eq!(aside.len(), 1, "{kept}");
        assert!(kept.contains(&aside[0]), "{kept}");
        // The wrong key is refused.
        let e = read(&other, &op).unwrap_err();
        assert!(e.to_string().contains("not with this station's key"), "{e}");
        discard(dir.path(), &op).unwrap();
        assert!(!path.exists());
        discard(dir.path(), &op).unwrap();
    }
}
