//! `rekey`: new station keys, the old ones kept, and the rotation recorded
//! so the station announces it to its peers when it next runs.

use std::path::Path;
use std::process::ExitCode;

use age::secrecy::{ExposeSecret as _, SecretString};
use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;

use super::load_config;
use crate::config::Config;
use crate::crypto::keyfile::{is_protected, replace_key_file};
use crate::crypto::{StationKeys, read_key_file};
use crate::domain::stamp;
use crate::fsutil;
use crate::passphrase::{self, KEY_PASSPHRASE_ENV};
use crate::store::{CheckpointKey, Journal};

#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// The old key may be in someone else's hands: peers refuse it as soon
    /// as they hold the notice, and flag what they stored from us since
    /// --since; this station stops signing with it at once
    #[arg(long)]
    pub compromised: bool,
    /// From when the old key may have been compromised, as RFC 3339 UTC
    /// (2026-12-07T09:00:00Z) [default: now]
    #[arg(long, value_name = "TIME", requires = "compromised")]
    pub since: Option<String>,
}

pub fn rekey(config_path: &Path, args: RekeyArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let now = Timestamp::now();
    let since = match (&args.since, args.compromised) {
        (Some(text), _) => Some(text.trim().parse::<Timestamp>().map_err(|_| {
            anyhow::anyhow!(
                "--since `{text}` is not an RFC 3339 time; write it as 2026-12-07T09:00:00Z"
            )
        })?),
        (None, true) => Some(now),
        (None, false) => None,
    };
    if since.is_some_and(|t| t > now) {
        bail!("--since is in the future; give the time from when the key may have been exposed");
    }
    let passphrase = key_passphrase(&config)?;
    let keys = rekey_station(&config, passphrase, now, since)?;
    crate::out!(
        "New keys for {} (the old ones are kept in {} to open and verify what came before).",
        keys.name,
        config.station.key_file.display()
    );
    crate::out!("New fingerprint: {}", keys.public().fingerprint());
    crate::out!(
        "The card {} is rewritten; give it to new peers.",
        config.station.card.display()
    );
    crate::out!(
        "When the station next runs it sends each peer a notice signed by the old and the new key."
    );
    crate::out!(
        "Read the new fingerprint to each peer over a channel you trust; they confirm it with \
         `hotline peer confirm {} \"FINGERPRINT\"`.",
        keys.name
    );
    if since.is_some() {
        crate::out!(
            "The old key is marked COMPROMISED since {}: it signs nothing but the notice, and \
             the link to each peer stays down until that peer confirms the new fingerprint.",
            since.map(stamp).unwrap_or_default()
        );
    } else {
        crate::out!("Until a peer confirms, the station keeps using the old key with it.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The key file's passphrase, asked once, if the file has one.
fn key_passphrase(config: &Config) -> anyhow::Result<Option<SecretString>> {
    let raw = fsutil::read_private(&config.station.key_file, 64 * 1024)?;
    if !is_protected(&raw) {
        return Ok(None);
    }
    passphrase::obtain(KEY_PASSPHRASE_ENV, "Passphrase for the station key: ")
        .map(Some)
        .map_err(anyhow::Error::msg)
}

/// Rotates the keys of the station `config` describes, which must not be
/// running: fresh keys, the old ones retired (compromised since
/// `compromised_since`, when given) and kept in the key file, which stays
/// under `passphrase`; the card rewritten; and the rotation recorded in the
/// journal under the new key.
pub fn rekey_station(
    config: &Config,
    passphrase: Option<SecretString>,
    now: Timestamp,
    compromised_since: Option<Timestamp>,
) -> anyhow::Result<StationKeys> {
    let _lock = crate::station::lock::acquire(&config.station.data_dir)
        .context("stop the station first: rekey rewrites its key file")?;
    let path = &config.station.key_file;
    let again = |p: &SecretString| SecretString::from(p.expose_secret().to_string());
    let keys = read_key_file(path, || {
        passphrase
            .as_ref()
            .map(again)
            .ok_or_else(|| "no passphrase given".to_string())
    })?;
    if keys.name != config.station.name {
        bail!(
            "{}: this key file belongs to station {}, not {}",
            path.display(),
            keys.name,
            config.station.name
        );
    }
    let keys = keys
        .rekey(now, compromised_since)
        .context("the system's random source failed")?;
    replace_key_file(path, &keys, passphrase)?;
    let card = super::identity::card_of(config, &keys);
    fsutil::replace_atomic(&config.station.card, card.to_toml().as_bytes(), 0o644)
        .with_context(|| format!("writing {}", config.station.card.display()))?;
    let journal = Journal::open(
        &config.journal_path,
        Some(CheckpointKey {
            station: keys.name.clone(),
            key: keys.signing.clone(),
        }),
    )?;
    if let Some(recorded) = crate::station::rotation::record_rekey(&journal, &keys, config)? {
        recorded.wait()?;
    }
    Ok(keys)
}
