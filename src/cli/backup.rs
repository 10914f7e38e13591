//! `backup` (through the running station) and `restore` (into a stopped,
//! empty station).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::load_config;
use super::station::{connect, log_in, runtime, unexpected};
use crate::backup::{self, Part};
use crate::config::Config;
use crate::crypto::StationCard;
use crate::fsutil;
use crate::passphrase::OPERATOR_PASSPHRASE_ENV;
use crate::station::api::{Command, Passed, Reply};
use crate::station::{lock, restore};
use crate::store::Journal;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where to write the backup; it must not exist
    pub file: PathBuf,
    /// Seal the backup to this age recipient (age1… or age1pq1…), for
    /// example an offline key kept at another site; repeat for more.
    /// Without it the backup is sealed to the station's own key, and will
    /// not open once the station's key file is lost with its disk
    #[arg(long = "to", value_name = "RECIPIENT")]
    pub to: Vec<String>,
    /// Also hold the station's key file (still locked by its passphrase)
    /// and its card
    #[arg(long)]
    pub with_keys: bool,
    /// The operator taking the backup (passphrase asked, or read from
    /// $HOTLINE_PASSPHRASE_FILE)
    #[arg(long)]
    pub operator: String,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file
    pub file: PathBuf,
    /// An age identity file that opens the backup (for one sealed with
    /// --to); without it, the station's key file opens it
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

pub fn backup(config_path: &Path, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let file = std::path::absolute(&args.file)
        .with_context(|| format!("{}: cannot make the path absolute", args.file.display()))?;
    if file.exists() {
        bail!(
            "{}: already exists; a backup never replaces a file",
            file.display()
        );
    }
    if args.to.is_empty() {
        crate::note!(
            "warning: this backup is sealed only to the station's own key; it will not open if the station's key file is lost with its disk. Give --to with a recipient kept elsewhere."
        );
    }
    let reply = runtime()?.block_on(async {
        let mut client = connect(&config).await?;
        log_in(&mut client, &args.operator, OPERATOR_PASSPHRASE_ENV, false).await?;
        // This process makes the file and hands it over: the station, which
        // may run as its own user, never opens the operator's path.
        let (partial, into) = backup::Partial::create(&file)?;
        let command = Command::Backup {
            into: Passed::File(into),
            name: file.display().to_string(),
            to: args.to.clone(),
            with_keys: args.with_keys,
        };
        let reply = crate::cli::with_progress(client.send(command), || {
            let written = std::fs::metadata(partial.path()).ok()?.len();
            Some(format!(
                "backup: {:.1} MiB written",
                written as f64 / (1 << 20) as f64
            ))
        })
        .await?;
        partial.keep()?;
        anyhow::Ok(reply)
    })?;
    match reply {
        Reply::BackedUp { backup } => {
            crate::out!(
                "backup of {} written to {}: {} messages, {} parts, {} bytes{}",
                config.station.name,
                file.display(),
                backup.messages,
                backup.parts,
                backup.bytes,
                if backup.with_keys {
                    ", with the key file and card"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(&other)),
    }
}

pub fn restore(config_path: &Path, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let data_dir = &config.station.data_dir;
    refuse_unless_empty(&config)?;
    let _lock = lock::acquire(data_dir)?;
    let station_keys = if config.station.key_file.exists() {
        Some(super::load_keys(&config)?)
    } else {
        None
    };
    let from_file = match &args.identity {
        Some(path) => identity_file(path)?,
        None => Vec::new(),
    };
    let identities: Vec<&dyn age::Identity> = match (&args.identity, &station_keys) {
        (Some(_), _) => from_file
            .iter()
            .map(|i| i.as_ref() as &dyn age::Identity)
            .collect(),
        (None, Some(keys)) => keys.identities(),
        (None, None) => bail!(
            "{}: no station key file here to open the backup with; give --identity FILE for a backup sealed with --to",
            config.station.key_file.display()
        ),
    };
    let staging = data_dir.join(".restore");
    let name = config.station.name.clone();
    let mut card_note = None;
    let opened = backup::open(&args.file, &identities, &staging, |signer, parts| {
        if signer != name.as_str() {
            return Vec::new();
        }
        if let Some(keys) = &station_keys {
            return keys.all_signing_keys();
        }
        let (card, how) = if config.station.card.exists() {
            (config.station.card.clone(), "this station's card")
        } else {
            match staged(parts, "keys/station.card.toml") {
                Some(path) => (path.to_path_buf(), "the card inside the backup"),
                None => return Vec::new(),
            }
        };
        match StationCard::load(&card) {
            Ok((_, peer)) => {
                card_note = Some(format!(
                    "the backup's signature was checked against {how}, fingerprint {}; compare it with the one your peers hold",
                    peer.fingerprint()
                ));
                peer.accepted()
            }
            Err(_) => Vec::new(),
        }
    });
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            drop(std::fs::remove_dir_all(&staging));
            return Err(e.into());
        }
    };
    let placed = place(&config, &opened);
    drop(std::fs::remove_dir_all(&staging));
    let placed = placed?;
    if let Some(note) = card_note {
        crate::note!("{note}");
    }
    crate::out!(
        "restored {} from a backup taken {}: {} messages, audit verified to entry {}{}",
        opened.manifest.station,
        opened.manifest.taken_at,
        opened.manifest.messages,
        placed.audit_seq,
        if placed.keys {
            "; key file and card restored"
        } else {
            ""
        }
    );
    crate::out!(
        "the station releases nothing to a peer until that peer's hello says which of our serials it holds; start it with `hotline serve`"
    );
    Ok(ExitCode::SUCCESS)
}

/// The identities in an age identity file (owner-only, as every key file).
fn identity_file(path: &Path) -> anyhow::Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
    let bytes = fsutil::read_private(path, 1 << 20)?;
    let not = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "{}: not an age identity file ({e}); it holds AGE-SECRET-KEY-… lines, as `hotline identity` or age-keygen write them",
            path.display()
        )
    };
    let file = age::IdentityFile::from_buffer(&bytes[..]).map_err(|e| not(&e))?;
    file.into_identities().map_err(|e| not(&e))
}

fn staged<'a>(parts: &'a [(Part, PathBuf)], name: &str) -> Option<&'a Path> {
    parts
        .iter()
        .find(|(p, _)| p.name == name)
        .map(|(_, path)| path.as_path())
}

/// A restore goes only into a station that has no journal and an empty
/// data directory (a log directory aside): it never merges.
fn refuse_unless_empty(config: &Config) -> anyhow::Result<()> {
    if config.journal_path.exists() {
        bail!(
            "{}: a journal is already here; restore only into a station with no journal (move it away first)",
            config.journal_path.display()
        );
    }
    let data_dir = &config.station.data_dir;
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name != "logs" && name != "station.lock" {
                bail!(
                    "{}: the data directory is not empty ({} is there); restore only into an empty one",
                    data_dir.display(),
                    name.to_string_lossy()
                );
            }
        }
    }
    Ok(())
}

struct Placed {
    audit_seq: u64,
    keys: bool,
}

/// Checks the staged journal (integrity, audit chain) and moves every
/// part into place, then leaves the note the station reads at its start.
fn place(config: &Config, opened: &backup::Opened) -> anyhow::Result<Placed> {
    let parts = || opened.manifest.parts.iter().zip(&opened.staged);
    let journal = parts()
        .find(|(p, _)| p.name == backup::JOURNAL)
        .map(|(_, path)| path.clone())
        .context("the backup holds no journal")?;
    let verified = {
        let staged = Journal::open_read_only(&journal)?;
        staged.integrity()?;
        staged
            .verify_audit(&opened.signer)?
            .map_err(|fault| anyhow::anyhow!("the backup's audit log does not verify: {fault}"))?
    };
    let data_dir = &config.station.data_dir;
    let mut keys = false;
    for (part, path) in parts() {
        let dest = if part.name == backup::JOURNAL {
            config.journal_path.clone()
        } else if let Some(rel) = part.name.strip_prefix(backup::DATA) {
            data_dir.join(rel)
        } else if part.name == "keys/station.key" {
            config.station.key_file.clone()
        } else if part.name == "keys/station.card.toml" {
            config.station.card.clone()
        } else {
            continue;
        };
        if dest.exists() {
            if part.name.starts_with(backup::KEYS) {
                continue;
            }
            bail!("{}: already exists; nothing is replaced", dest.display());
        }
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        move_file(path, &dest)?;
        keys |= part.name.starts_with(backup::KEYS);
    }
    restore::leave_note(data_dir, &opened.manifest, &verified)?;
    Ok(Placed {
        audit_seq: verified.entries,
        keys,
    })
}

/// Renames `from` to `to`, or copies it where they are on different file
/// systems; either way the result is owner-only and synced.
fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, to).is_err() {
        let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        fsutil::create_private(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    }
    Ok(())
}
