//! A backup: a station's journal and files as one age-encrypted file.
//!
//! Inside the age layer the file is a sequence of parts, then a signed
//! manifest that names each part with its length and SHA-256:
//!
//! ```text
//! hotline-backup/1
//! part journal.sqlite 1048576
//! <1048576 bytes>
//! part data/attachments/0192…/0.age 4096
//! <4096 bytes>
//! manifest 612
//! <a signed document "hotline/3 backup manifest" of 612 bytes>
//! ```
//!
//! age makes the whole file tamper-evident to whoever cannot encrypt to the
//! recipient, and detects truncation. The manifest, signed with the
//! station's key, makes it evident to whoever can: only the station could
//! have written it. A reader stores each part in a staging directory as it
//! arrives and trusts none of it until the manifest at the end verifies and
//! every part matches it; parts are written in one pass, so a backup of
//! large attachments never needs them in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use age::{Decryptor, Encryptor, Identity, Recipient};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::age_io;
use crate::crypto::signed::{self, Kind};
use crate::domain::{REVISION, StationName};
use crate::store::audit::Head;

const MAGIC: &str = "hotline-backup/1";
/// The name of the journal's part.
pub const JOURNAL: &str = "journal.sqlite";
/// Parts under this prefix are files of the data directory.
pub const DATA: &str = "data/";
/// Parts under this prefix are the station's key file and card.
pub const KEYS: &str = "keys/";
/// The longest header line read.
const MAX_LINE: usize = 4096;
/// The largest manifest read.
const MAX_MANIFEST: u64 = 16 << 20;
/// The most parts a backup may hold.
const MAX_PARTS: usize = 1_000_000;

/// One part of a backup, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What a backup holds, signed by the station that took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub revision: u32,
    pub station: StationName,
    pub taken_at: Timestamp,
    /// The newest audit entry in the journal part.
    pub audit_head: Option<Head>,
    /// How many messages the journal part holds, both directions.
    pub messages: u64,
    pub parts: Vec<Part>,
}

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("{path}: already exists; a backup never replaces a file")]
    Exists { path: PathBuf },
    #[error("{path}: changed while it was being backed up ({expected} bytes expected)")]
    Changed { path: PathBuf, expected: u64 },
    #[error("{file}: {cause}")]
    Age { file: PathBuf, cause: String },
    #[error("{file}: not a hotline backup, or damaged: {why}")]
    Malformed { file: PathBuf, why: String },
    #[error("{file}: the manifest does not verify: {why}")]
    Manifest { file: PathBuf, why: String },
    #[error("{file}: part `{name}` does not match the signed manifest ({why})")]
    Mismatch {
        file: PathBuf,
        name: String,
        why: String,
    },
}

/// A file to put in a backup under `name`.
pub struct Source {
    pub name: String,
    pub path: PathBuf,
}

/// What to say in the manifest besides the parts.
pub struct About {
    pub station: StationName,
    /// When the journal was copied: nothing committed after it is in the
    /// backup.
    pub taken_at: Timestamp,
    pub audit_head: Option<Head>,
    pub messages: u64,
}

/// A backup file being written: `NAME.partial` beside where it goes, so
/// that the file appears under its name only once complete and synced.
/// Dropped unkept, it is removed.
pub struct Partial {
    partial: PathBuf,
    dest: PathBuf,
    kept: bool,
}

impl Partial {
    /// Creates `dest`'s partial file (owner-only); `dest` must not exist.
    pub fn create(dest: &Path) -> Result<(Partial, File), BackupError> {
        if dest.exists() {
            return Err(BackupError::Exists {
                path: dest.to_path_buf(),
            });
        }
        let partial = partial_path(dest);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|cause| BackupError::Io {
                path: partial.clone(),
                cause,
            })?;
        Ok((
            Partial {
                partial,
                dest: dest.to_path_buf(),
                kept: false,
            },
            file,
        ))
    }

    /// The partial file's path, whose size shows how far the backup is.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Puts the finished file at its name. Never replaces: a file that
    /// appeared there meanwhile is kept, and this is an error.
    pub fn keep(mut self) -> Result<(), BackupError> {
        let io_at = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| BackupError::Io { path, cause }
        };
        fs::hard_link(&self.partial, &self.dest).map_err(|cause| match cause.kind() {
            io::ErrorKind::AlreadyExists => BackupError::Exists {
                path: self.dest.clone(),
            },
            _ => BackupError::Io {
                path: self.dest.clone(),
                cause,
            },
        })?;
        self.kept = true;
        fs::remove_file(&self.partial).map_err(io_at(&self.partial))?;
        let dir = self
            .dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::fsutil::sync_dir(dir).map_err(io_at(dir))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            drop(fs::remove_file(&self.partial));
        }
    }
}

/// Writes a backup of `sources` to `dest`, encrypted to `recipients` and
/// signed with `key`; `progress` hears the bytes written so far. The file
/// appears at `dest` only once complete and synced; `dest` must not exist.
pub fn write(
    dest: &Path,
    recipients: &[&dyn Recipient],
    sources: &[Source],
    about: About,
    key: &SigningKey,
    progress: impl FnMut(u64),
) -> Result<Manifest, BackupError> {
    let (partial, file) = Partial::create(dest)?;
    let manifest = write_into(file, dest, recipients, sources, about, key, progress)?;
    partial.keep()?;
    Ok(manifest)
}

/// Writes a backup into `file` (opened for writing, by this process or
/// handed over by the caller; `shown` is what errors call it), and syncs
/// it.
pub fn write_into(
    file: File,
    shown: &Path,
    recipients: &[&dyn Recipient],
    sources: &[Source],
    about: About,
    key: &SigningKey,
    mut progress: impl FnMut(u64),
) -> Result<Manifest, BackupError> {
    let io_at = |cause| BackupError::Io {
        path: shown.to_path_buf(),
        cause,
    };
    let encryptor =
        Encryptor::with_recipients(recipients.iter().copied()).map_err(|e| BackupError::Age {
            file: shown.to_path_buf(),
            cause: e.to_string(),
        })?;
    let mut out = encryptor.wrap_output(BufWriter::new(file)).map_err(io_at)?;
    writeln!(out, "{MAGIC}").map_err(io_at)?;
    let mut parts = Vec::with_capacity(sources.len());
    let mut total = 0u64;
    for source in sources {
        parts.push(copy_part(&mut out, source, &mut total, &mut progress)?);
    }
    let manifest = Manifest {
        revision: REVISION,
        station: about.station.clone(),
        taken_at: about.taken_at,
        audit_head: about.audit_head,
        messages: about.messages,
        parts,
    };
    let body = serde_json::to_vec(&manifest).map_err(|e| BackupError::Malformed {
        file: shown.to_path_buf(),
        why: e.to_string(),
    })?;
    let doc = signed::sign(Kind::Backup, &about.station, &body, key);
    writeln!(out, "manifest {}", doc.len()).map_err(io_at)?;
    out.write_all(&doc).map_err(io_at)?;
    let buffered = out.finish().map_err(io_at)?;
    let file = buffered.into_inner().map_err(|e| io_at(e.into_error()))?;
    file.sync_all().map_err(io_at)?;
    Ok(manifest)
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

fn copy_part(
    out: &mut impl Write,
    source: &Source,
    total: &mut u64,
    progress: &mut impl FnMut(u64),
) -> Result<Part, BackupError> {
    let io_err = |cause| BackupError::Io {
        path: source.path.clone(),
        cause,
    };
    let mut file = File::open(&source.path).map_err(io_err)?;
    let bytes = file.metadata().map_err(io_err)?.len();
    writeln!(out, "part {} {bytes}", source.name).map_err(io_err)?;
    let sha256 = copy_hashed(&mut file, out, bytes, |n| {
        *total += n;
        progress(*total);
    })
    .map_err(|e| match e {
        CopyError::Short => BackupError::Changed {
            path: source.path.clone(),
            expected: bytes,
        },
        CopyError::Read(cause) | CopyError::Write(cause) => io_err(cause),
    })?;
    Ok(Part {
        name: source.name.clone(),
        bytes,
        sha256,
    })
}

/// Whether `name` may name a part: the journal, or a relative path with
/// plain components under [`DATA`] or [`KEYS`].
pub fn valid_name(name: &str) -> bool {
    if name == JOURNAL {
        return true;
    }
    let Some(rest) = name.strip_prefix(DATA).or_else(|| name.strip_prefix(KEYS)) else {
        return false;
    };
    !rest.is_empty()
        && !name
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '\\')
        && Path::new(rest)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A backup read into a staging directory and checked against its signed
/// manifest: each part is the file at `staged[i]` for `manifest.parts[i]`.
#[derive(Debug)]
pub struct Opened {
    pub manifest: Manifest,
    pub staged: Vec<PathBuf>,
    /// The key that signed the manifest.
    pub signer: VerifyingKey,
}

/// Decrypts `file` with `identities` into `staging` (a new, owner-only
/// directory), and checks every part against the manifest, which must be
/// signed by one of `keys_for(station, parts)`; `parts` are the parts as
/// staged, not yet trusted (a card among them is only as good as the
/// fingerprint a person compares). Nothing in `staging` may be used unless
/// this returns `Ok`.
pub fn open(
    file: &Path,
    identities: &[&dyn Identity],
    staging: &Path,
    keys_for: impl FnOnce(&str, &[(Part, PathBuf)]) -> Vec<VerifyingKey>,
) -> Result<Opened, BackupError> {
    let malformed = |why: &str| BackupError::Malformed {
        file: file.to_path_buf(),
        why: why.to_string(),
    };
    let age_err = |cause: String| BackupError::Age {
        file: file.to_path_buf(),
        cause,
    };
    let input = File::open(file).map_err(|cause| BackupError::Io {
        path: file.to_path_buf(),
        cause,
    })?;
    let mut input = BufReader::new(input);
    let head = input.fill_buf().map_err(|cause| BackupError::Io {
        path: file.to_path_buf(),
        cause,
    })?;
    age_io::check_header(head).map_err(|e| age_err(e.to_string()))?;
    let decryptor = Decryptor::new_buffered(input).map_err(|e| age_err(e.to_string()))?;
    let reader = decryptor
        .decrypt(identities.iter().copied())
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => age_err(
                "not encrypted to the identity given; a backup opens only with the identity of the recipient it was sealed to".into(),
            ),
            other => age_err(other.to_string()),
        })?;
    let mut reader = BufReader::new(reader);
    // A damaged or truncated age stream shows as a read error here.
    let damaged = |cause: io::Error| age_err(format!("damaged or truncated: {cause}"));
    if read_line(&mut reader).map_err(damaged)?.as_deref() != Some(MAGIC) {
        return Err(malformed("it does not start with `hotline-backup/1`"));
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(staging)
        .map_err(|cause| BackupError::Io {
            path: staging.to_path_buf(),
            cause,
        })?;
    let mut parts = Vec::new();
    let doc = loop {
        let line = read_line(&mut reader)
            .map_err(damaged)?
            .ok_or_else(|| malformed("it ends before its manifest"))?;
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("part"), Some(name), Some(len), None) => {
                let bytes: u64 = len
                    .parse()
                    .map_err(|_| malformed("a part length is not a number"))?;
                if !valid_name(name) {
                    return Err(malformed(&format!(
                        "a part is named `{}`, which is not a journal, data or key path",
                        crate::sanitize::inert(name)
                    )));
                }
                if parts.len() >= MAX_PARTS {
                    return Err(malformed("it holds too many parts"));
                }
                let path = staging.join(format!("{}", parts.len()));
                let sha256 = stage_part(&mut reader, &path, bytes).map_err(|e| match e {
                    CopyError::Short => malformed("it ends inside a part"),
                    CopyError::Read(cause) => damaged(cause),
                    CopyError::Write(cause) => BackupError::Io {
                        path: path.clone(),
                        cause,
                    },
                })?;
                parts.push((
                    Part {
                        name: name.to_string(),
                        bytes,
                        sha256,
                    },
                    path,
                ));
            }
            (Some("manifest"), Some(len), None, None) => {
                let len: u64 = len
                    .parse()
                    .map_err(|_| malformed("the manifest length is not a number"))?;
                if len > MAX_MANIFEST {
                    return Err(malformed("the manifest is too large"));
                }
                let mut doc = Vec::new();
                (&mut reader)
                    .take(len)
                    .read_to_end(&mut doc)
                    .map_err(damaged)?;
                if doc.len() as u64 != len {
                    return Err(malformed("it ends inside its manifest"));
                }
                let mut rest = Vec::new();
                (&mut reader)
                    .take(1)
                    .read_to_end(&mut rest)
                    .map_err(damaged)?;
                if !rest.is_empty() {
                    return Err(malformed("there is more after the manifest"));
                }
                break doc;
            }
            _ => return Err(malformed("a line is neither a part nor the manifest")),
        }
    };
    let bad_manifest = |why: String| BackupError::Manifest {
        file: file.to_path_buf(),
        why,
    };
    let unverified = signed::parse(&doc).map_err(|e| bad_manifest(e.to_string()))?;
    let keys = keys_for(unverified.claimed_signer(), &parts);
    if keys.is_empty() {
        return Err(bad_manifest(format!(
            "it claims to be signed by {}, and no key for that station was given",
            crate::sanitize::inert(unverified.claimed_signer())
        )));
    }
    let (body, signer) = unverified
        .verify_any(Kind::Backup, &keys)
        .map_err(|e| bad_manifest(e.to_string()))?;
    let manifest: Manifest =
        serde_json::from_slice(body).map_err(|e| bad_manifest(e.to_string()))?;
    if manifest.parts.len() != parts.len() {
        return Err(bad_manifest(format!(
            "it lists {} parts; the file holds {}",
            manifest.parts.len(),
            parts.len()
        )));
    }
    for (listed, (found, _)) in manifest.parts.iter().zip(&parts) {
        if listed != found {
            let why = if listed.name != found.name {
                format!("the manifest lists `{}` here", listed.name)
            } else if listed.bytes != found.bytes {
                format!("{} bytes, the manifest says {}", found.bytes, listed.bytes)
            } else {
                "its SHA-256 differs".into()
            };
            return Err(BackupError::Mismatch {
                file: file.to_path_buf(),
                name: crate::sanitize::inert(&found.name),
                why,
            });
        }
    }
    Ok(Opened {
        manifest,
        staged: parts.into_iter().map(|(_, path)| path).collect(),
        signer,
    })
}

/// Reads one `\n`-ended line of at most [`MAX_LINE`] bytes; `None` at the
/// end of the input.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a header line is too long or unfinished",
        ));
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a header line is not UTF-8"))
}

/// Why copying a part stopped.
enum CopyError {
    /// The input ended before the part's length.
    Short,
    Read(io::Error),
    Write(io::Error),
}

/// Copies `bytes` bytes of `reader` into a new owner-only file at `path`,
/// returning their SHA-256.
fn stage_part(reader: &mut impl Read, path: &Path, bytes: u64) -> Result<String, CopyError> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(CopyError::Write)?;
    let sha256 = copy_hashed(reader, &mut out, bytes, |_| {})?;
    out.sync_all().map_err(CopyError::Write)?;
    Ok(sha256)
}

/// Copies exactly `bytes` bytes of `from` into `to`, telling `progress` of
/// each step's length, and returns their SHA-256 in hex.
fn copy_hashed(
    from: &mut impl Read,
    to: &mut impl Write,
    bytes: u64,
    mut progress: impl FnMut(u64),
) -> Result<String, CopyError> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = bytes;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = from.read(&mut buf[..want]).map_err(CopyError::Read)?;
        if n == 0 {
            return Err(CopyError::Short);
        }
        hash.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        left -= n as u64;
        progress(n as u64);
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StationKeys;

    fn station() -> StationKeys {
        StationKeys::generate(StationName::new("WASHINGTON").expect("name")).expect("keys")
    }

    fn about(keys: &StationKeys) -> About {
        About {
            station: keys.name.clone(),
            taken_at: Timestamp::now(),
            audit_head: None,
            messages: 0,
        }
    }

    /// Writes `parts` as a backup sealed to `keys`' own recipient.
    fn written(dir: &Path, keys: &StationKeys, parts: &[(&str, &[u8])]) -> PathBuf {
        let mut sources = Vec::new();
        for (i, (name, bytes)) in parts.iter().enumerate() {
            let path = dir.join(format!("src{i}"));
            fs::write(&path, bytes).expect("source");
            sources.push(Source {
                name: (*name).into(),
                path,
            });
        }
        let dest = dir.join("backup");
        let own = keys.own_recipient();
        write(
            &dest,
            &[own.as_recipient()],
            &sources,
            about(keys),
            &keys.signing,
            |_| {},
        )
        .expect("written");
        dest
    }

    /// A backup's inside written by hand: `inside`, then a manifest signed by
    /// `keys` listing `listed`, sealed to `keys`.
    fn by_hand(dir: &Path, keys: &StationKeys, inside: &[u8], listed: Vec<Part>) -> PathBuf {
        let manifest = Manifest {
            revision: REVISION,
            station: keys.name.clone(),
            taken_at: Timestamp::now(),
            audit_head: None,
            messages: 0,
            parts: listed,
        };
        let body = serde_json::to_vec(&manifest).expect("json");
        let doc = signed::sign(Kind::Backup, &keys.name, &body, &keys.signing);
        let mut plain = inside.to_vec();
        plain.extend_from_slice(format!("manifest {}\n", doc.len()).as_bytes());
        plain.extend_from_slice(&doc);
        let own = keys.own_recipient();
        let sealed = age_io::encrypt(&plain, &[own.as_recipient()]).expect("sealed");
        let path = dir.join("by-hand");
        fs::write(&path, sealed).expect("write");
        path
    }

    fn part(name: &str, bytes: &[u8]) -> Part {
        Part {
            name: name.into(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }

    fn opened(file: &Path, keys: &StationKeys, staging: &Path) -> Result<Opened, BackupError> {
        let signing = keys.all_signing_keys();
        open(file, &keys.identities(), staging, |_, _| signing)
    }

    #[test]
    fn a_backup_opens_to_its_parts_and_refuses_another_stations_signature() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let keys = station();
        let file = written(
            tmp.path(),
            &keys,
            &[(JOURNAL, b"journal bytes"), ("data/drafts/op.age", b"")],
        );
        let back = opened(&file, &keys, &tmp.path().join("s1")).expect("opens");
        assert_eq!(back.manifest.parts.len(), 2);
        assert_eq!(fs::read(&back.staged[0]).expect("part"), b"journal bytes");
        assert!(fs::read(&back.staged[1]).expect("part").is_empty());

        let other = station().signing.verifying_key();
        let refused = open(&file, &keys.identities(), &tmp.path().join("s2"), |_, _| {
            vec![other]
        });
        assert!(
            matches!(&refused, Err(BackupError::Manifest { why, .. }) if why.contains("signature")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_part_that_differs_from_the_manifest_or_escapes_the_station_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let keys = station();
        let inside = format!("{MAGIC}\npart {JOURNAL} 5\nhello");
        // CONTROL: the same construction with the right hash opens.
        let good = by_hand(
            tmp.path(),
            &keys,
            inside.as_bytes(),
            vec![part(JOURNAL, b"hello")],
        );
        opened(&good, &keys, &tmp.path().join("s0")).expect("CONTROL: opens");

        let bad = by_hand(
            tmp.path(),
            &keys,
            inside.as_bytes(),
            vec![part(JOURNAL, b"jello")],
        );
        let refused = opened(&bad, &keys, &tmp.path().join("s1"));
        assert!(
            matches!(&refused, Err(BackupError::Mismatch { name, why, .. }) if name == JOURNAL && why.contains("SHA-256")),
            "{refused:?}"
        );

        for (i, name) in [
            "data/../../etc/passwd",
            "/etc/passwd",
            "data/",
            "other/x",
            "data/a\tb",
        ]
        .into_iter()
        .enumerate()
        {
            let inside = format!("{MAGIC}\npart {name} 1\nx");
            let hostile = by_hand(tmp.path(), &keys, inside.as_bytes(), vec![part(name, b"x")]);
            let refused = opened(&hostile, &keys, &tmp.path().join(format!("h{i}")));
            assert!(
                matches!(&refused, Err(BackupError::Malformed { why, .. }) if why.contains("not a journal, data or key path")),
                "{name}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_backup_never_replaces_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let keys = station();
        let dest = tmp.path().join("backup");
        fs::write(&dest, b"keep me").expect("write");
        let own = keys.own_recipient();
        let refused = write(
            &dest,
            &[own.as_recipient()],
            &[],
            about(&keys),
            &keys.signing,
            |_| {},
        );
        assert!(matches!(refused, Err(BackupError::Exists { .. })));
        assert_eq!(fs::read(&dest).expect("read"), b"keep me");
    }
}
