//! `hotline backup`, inside the station: a consistent snapshot of the
//! journal (see [`Journal::snapshot`]), with the sealed attachment
//! files and kept drafts it refers to (and, if asked, the key file and
//! card), written as one signed, age-encrypted file (see [`crate::backup`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api::ApiError;
use super::{AlarmKind, Station, StationError};
use crate::backup::{self, About, Source};
use crate::config::BackupSchedule;
use crate::crypto::keys::OwnRecipient;
use crate::fsutil;
use crate::store::Journal;

/// What a backup holds, and how it is sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackedUp {
    /// What the caller calls the file.
    pub file: String,
    pub bytes: u64,
    pub parts: usize,
    pub messages: u64,
    pub with_keys: bool,
    /// Sealed to the station's own key only: it will not open once the
    /// station's key file is lost with its disk.
    pub to_self_only: bool,
}

/// Removes the snapshot however the backup ends.
struct Snapshot(PathBuf);

impl Drop for Snapshot {
    fn drop(&mut self) {
        drop(std::fs::remove_file(&self.0));
    }
}

impl Station {
    /// Writes a backup into `into`, a file opened for writing (by the
    /// caller: the station never opens a caller's path), which the caller
    /// calls `file`; sealed to `to` (age recipients; none means the
    /// station's own), audited as taken by `actor` (an operator, or
    /// `station` for a scheduled one).
    pub(crate) async fn backup(
        &self,
        actor: &str,
        into: std::fs::File,
        file: String,
        to: Vec<String>,
        with_keys: bool,
    ) -> Result<BackedUp, ApiError> {
        let refused = |detail: String| ApiError::Refused { detail };
        let to_self_only = to.is_empty();
        let recipients: Vec<OwnRecipient> = if to_self_only {
            vec![self.inner.keys.own_recipient()]
        } else {
            to.iter()
                .map(|r| {
                    r.parse::<OwnRecipient>()
                        .map_err(|e| refused(format!("--to {}: {e}", crate::sanitize::inert(r))))
                })
                .collect::<Result<_, _>>()?
        };
        let data_dir = self.inner.config.station.data_dir.clone();
        let snapshot =
            Snapshot(data_dir.join(format!(".backup-{}.sqlite", uuid::Uuid::now_v7().simple())));
        let inner = self.inner.clone();
        let shown = PathBuf::from(&file);
        let written = tokio::task::spawn_blocking(move || {
            let taken_at = jiff::Timestamp::now();
            inner.journal.snapshot(&snapshot.0)?;
            let taken = Journal::open_read_only(&snapshot.0)?;
            let about = About {
                station: inner.keys.name.clone(),
                taken_at,
                audit_head: taken.audit_head()?,
                messages: taken.message_count()?,
            };
            let mut sources = vec![Source {
                name: backup::JOURNAL.into(),
                path: snapshot.0.clone(),
            }];
            sources.extend(data_files(&data_dir, &taken)?);
            drop(taken);
            if with_keys {
                let st = &inner.config.station;
                sources.push(Source {
                    name: format!("{}station.key", backup::KEYS),
                    path: st.key_file.clone(),
                });
                // The card is public, and made again by `hotline card`.
                if st.card.is_file() {
                    sources.push(Source {
                        name: format!("{}station.card.toml", backup::KEYS),
                        path: st.card.clone(),
                    });
                }
            }
            let recipients: Vec<&dyn age::Recipient> =
                recipients.iter().map(OwnRecipient::as_recipient).collect();
            let counted = into.try_clone().ok();
            let manifest = backup::write_into(
                into,
                &shown,
                &recipients,
                &sources,
                about,
                &inner.keys.signing,
                |_| {},
            )
            .map_err(|e| StationError::Refused(e.to_string()))?;
            let bytes = counted
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
            drop(snapshot);
            Ok::<_, StationError>((manifest, bytes))
        })
        .await
        .map_err(|e| refused(format!("the backup task failed: {e}")))?;
        let (manifest, bytes) = written?;
        let done = BackedUp {
            file,
            bytes,
            parts: manifest.parts.len(),
            messages: manifest.messages,
            with_keys,
            to_self_only,
        };
        let detail = format!(
            "file={} bytes={} parts={} messages={} audit-seq={} with-keys={} sealed-to={}",
            crate::sanitize::inert(&done.file),
            done.bytes,
            done.parts,
            done.messages,
            manifest.audit_head.as_ref().map_or(0, |h| h.seq),
            with_keys,
            if to_self_only { "station" } else { "given" },
        );
        self.inner
            .journal
            .audit(actor, "backup", &detail)
            .done()
            .await
            .map_err(StationError::from)?;
        tracing::info!(%detail, "backup written");
        Ok(done)
    }
}

/// The sealed attachment files the snapshot refers to that are complete
/// on disk, and the operators' kept drafts.
fn data_files(data_dir: &Path, taken: &Journal) -> Result<Vec<Source>, StationError> {
    let mut files: Vec<PathBuf> = taken
        .attachment_files()?
        .into_iter()
        .filter(|rel| data_dir.join(rel).is_file())
        .collect();
    if let Ok(drafts) = std::fs::read_dir(data_dir.join("drafts")) {
        for entry in drafts.flatten() {
            let name = PathBuf::from("drafts").join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_file())
                && name.extension().is_some_and(|e| e == "age")
            {
                files.push(name);
            }
        }
    }
    Ok(files
        .into_iter()
        .filter_map(|rel| {
            let name = format!("{}{}", backup::DATA, rel.to_str()?);
            backup::valid_name(&name).then(|| Source {
                name,
                path: data_dir.join(&rel),
            })
        })
        .collect())
}

/// What scheduled backups are named: the station, then the time taken.
fn scheduled_name(station: &str, at: jiff::Timestamp) -> String {
    format!(
        "{station}-{}{:03}Z.backup",
        at.strftime("%Y%m%dT%H%M%S."),
        at.subsec_millisecond()
    )
}

/// Takes a backup every `[backup] interval`, keeps the newest `keep` in its
/// directory, and raises an alarm when one fails; the next that works
/// clears it. Runs until the station stops.
pub(super) async fn schedule(station: Station, plan: BackupSchedule) {
    let mut stop = station.inner.stop.subscribe();
    loop {
        tokio::select! {
            () = tokio::time::sleep(plan.interval) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        match scheduled_once(&station, &plan).await {
            Ok(path) => {
                tracing::info!(path = %path.display(), "scheduled backup written");
                station.inner.resolve(AlarmKind::BackupFailed, "scheduled");
            }
            Err(why) => {
                tracing::error!(dir = %plan.directory.display(), %why, "a scheduled backup failed");
                station.inner.raise(
                    AlarmKind::BackupFailed,
                    "scheduled",
                    None,
                    None,
                    crate::t!(
                        station.inner.config.station.language,
                        "alarm.backup_failed",
                        dir = plan.directory.display(),
                        why = why
                    ),
                );
            }
        }
    }
}

/// Why a scheduled backup failed.
#[derive(Debug, thiserror::Error)]
enum ScheduleError {
    #[error("{}: {cause}", dir.display())]
    Directory { dir: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    File(#[from] backup::BackupError),
    #[error(transparent)]
    Backup(#[from] ApiError),
}

async fn scheduled_once(
    station: &Station,
    plan: &BackupSchedule,
) -> Result<PathBuf, ScheduleError> {
    let dir = &plan.directory;
    let in_dir = |cause| ScheduleError::Directory {
        dir: dir.clone(),
        cause,
    };
    fsutil::create_private_dir(dir).map_err(in_dir)?;
    let name = station.name().to_string();
    let path = dir.join(scheduled_name(&name, jiff::Timestamp::now()));
    let (partial, file) = backup::Partial::create(&path)?;
    station
        .backup(
            "station",
            file,
            path.display().to_string(),
            plan.to.clone(),
            plan.with_keys,
        )
        .await?;
    partial.keep()?;
    prune(dir, &name, plan.keep).map_err(in_dir)?;
    Ok(path)
}

/// Removes all but the newest `keep` scheduled backups of `station` in
/// `dir`, and what a scheduled backup cut short left; nothing else there.
fn prune(dir: &Path, station: &str, keep: usize) -> std::io::Result<()> {
    let prefix = format!("{station}-");
    let mut taken = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) {
            continue;
        }
        if name.ends_with(".backup.partial") {
            std::fs::remove_file(dir.join(&name))?;
        } else if name.ends_with(".backup") {
            taken.push(name);
        }
    }
    // The names sort by the time they were taken.
    taken.sort();
    let extra = taken.len().saturating_sub(keep);
    for name in &taken[..extra] {
        std::fs::remove_file(dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_and_nothing_else_is_touched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t0 = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let names: Vec<String> = (0..5)
            .map(|i| {
                scheduled_name(
                    "WASHINGTON",
                    t0 + jiff::SignedDuration::from_millis(i * 1500),
                )
            })
            .collect();
        for name in &names {
            std::fs::write(tmp.path().join(name), b"x").expect("write");
        }
        let others = [
            "MOSCOW-20260101T000000.000Z.backup",
            "WASHINGTON-manual.age",
            "notes.txt",
        ];
        for name in others {
            std::fs::write(tmp.path().join(name), b"x").expect("write");
        }
        std::fs::write(tmp.path().join(format!("{}.partial", names[4])), b"x").expect("write");
        prune(tmp.path(), "WASHINGTON", 2).expect("pruned");
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<String> = others.iter().map(ToString::to_string).collect();
        expected.extend(names[3..].iter().cloned());
        expected.sort();
        assert_eq!(left, expected);
    }
}
