//! `peer add` and `operator add`: who this station trusts, and who may use it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::{confirm, load_config};
use crate::config::{add_operator, add_peer};
use crate::crypto::StationCard;
use crate::domain::OperatorName;
use crate::passphrase::{self, OPERATOR_PASSPHRASE_ENV};
use crate::sanitize::inert;

#[derive(Subcommand, Debug)]
pub enum PeerCommand {
    /// Add a peer from its station card, after you confirm its fingerprint
    Add(PeerAddArgs),
    /// Confirm a peer's new keys (after its `hotline rekey`) by the
    /// fingerprint it read to you out of band; needs the running station
    Confirm(PeerConfirmArgs),
}

#[derive(Args, Debug)]
pub struct PeerConfirmArgs {
    /// The peer station
    pub peer: String,
    /// Its new fingerprint, as read aloud by a known person there (spaces
    /// and case do not matter)
    pub fingerprint: String,
    /// The operator confirming it (passphrase asked, or read from $HOTLINE_PASSPHRASE_FILE)
    #[arg(long)]
    pub operator: String,
}

#[derive(Args, Debug)]
pub struct PeerAddArgs {
    /// The peer's station card (TOML), received out of band
    pub card: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Add a cleared operator (or set a new passphrase for one)
    Add(OperatorAddArgs),
}

#[derive(Args, Debug)]
pub struct OperatorAddArgs {
    /// The operator's name or call sign
    pub name: String,
    /// The operator's clearance, shown beside their name
    #[arg(long, default_value = "CLEARED")]
    pub clearance: String,
}

pub fn peer(config_path: &Path, cmd: PeerCommand) -> anyhow::Result<ExitCode> {
    let args = match cmd {
        PeerCommand::Add(args) => args,
        PeerCommand::Confirm(args) => return super::station::confirm_rotation(config_path, args),
    };
    let config = load_config(config_path)?;
    // The card is checked whole before anything of it is shown: its name
    // by the station-name rules, its addresses as IP:port, its time zone
    // from the tz database; the fingerprint shown is the one computed
    // from its keys, last, on a line of its own.
    let (card, keys) = StationCard::load(&args.card)?;
    if config.peer(card.station.as_str()).is_some() {
        bail!(
            "peer {} is already configured in {}",
            card.station,
            config_path.display()
        );
    }
    crate::note!("Station card for {}", card.station);
    crate::note!(
        "  addresses:   {}",
        if card.addresses.is_empty() {
            "(none)".into()
        } else {
            inert(&card.addresses.join(", "))
        }
    );
    crate::note!(
        "  time zone:   {}",
        inert(card.time_zone.as_deref().unwrap_or("(none)"))
    );
    crate::note!();
    crate::note!(
        "Check this fingerprint with {} over a separate channel you trust",
        card.station
    );
    crate::note!(
        "(read aloud by a known person). Anyone who can swap this card can read and forge traffic."
    );
    crate::note!();
    crate::note!("FINGERPRINT OF {}:", card.station);
    crate::note!("{}", keys.fingerprint());
    crate::note!();
    if !confirm(&format!(
        "Did you check the fingerprint of {} out of band?",
        card.station
    ))? {
        crate::note!("Not added.");
        return Ok(ExitCode::from(1));
    }
    add_peer(config_path, &card)?;
    crate::out!("Added peer {} to {}.", card.station, config_path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn operator(config_path: &Path, cmd: OperatorCommand) -> anyhow::Result<ExitCode> {
    let OperatorCommand::Add(args) = cmd;
    load_config(config_path)?;
    let name = OperatorName::new(&args.name)?;
    if args.clearance.trim().is_empty() || args.clearance.chars().any(char::is_control) {
        bail!("--clearance must be plain text, such as \"TOP SECRET\"");
    }
    let pass = passphrase::obtain_new(OPERATOR_PASSPHRASE_ENV, &format!("operator {name}"))
        .map_err(anyhow::Error::msg)?;
    if pass_is_weak(&pass) {
        bail!("that passphrase is shorter than 8 characters; choose a longer one");
    }
    let hash = passphrase::hash(&pass).map_err(anyhow::Error::msg)?;
    let new = add_operator(config_path, &name, args.clearance.trim(), &hash)?;
    if new {
        crate::out!("Added operator {name} to {}.", config_path.display());
    } else {
        crate::out!(
            "Set a new passphrase for operator {name} in {}.",
            config_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pass_is_weak(pass: &age::secrecy::SecretString) -> bool {
    use age::secrecy::ExposeSecret;
    pass.expose_secret().chars().count() < 8
}
