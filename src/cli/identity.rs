//! `init`, `card` and `identity`: who this station is.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::{load_config, load_keys};
use crate::config::{Control, DEFAULT_LISTEN, example_for};
use crate::crypto::keyfile::{age_identity_file, classic_identity_file};
use crate::crypto::{StationCard, StationKeys, write_key_file};
use crate::domain::{Language, StationName};
use crate::fsutil;
use crate::passphrase::{self, KEY_PASSPHRASE_ENV};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The station's name, e.g. WASHINGTON (capital letters, digits, - and _)
    #[arg(long)]
    pub station: String,
    /// Where to create the station's files [default: the current directory]
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The operators' language, a BCP 47 tag: en, ru, fr or zh ship
    #[arg(long, default_value = "en")]
    pub language: String,
    /// The station's IANA time zone, e.g. Europe/Moscow
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// The UDP address the link listens on
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// An address peers should dial (IP:port); repeat for a backup. Goes on the card
    #[arg(long = "address", value_name = "ADDR")]
    pub addresses: Vec<SocketAddr>,
    /// Do not protect the key file with a passphrase (the passphrase is
    /// otherwise asked for, or read from $HOTLINE_KEY_PASSPHRASE_FILE)
    #[arg(long)]
    pub no_passphrase: bool,
    /// Where the control socket goes ([control] socket), e.g.
    /// /run/hotline/station.sock for the packaged service
    /// [default: station.sock in the data directory]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The operators' group ([control] group): its members may use the
    /// control socket, and read the config (made mode 640, in a directory
    /// of mode 750), so that they work as themselves, not as the station's
    /// user
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let name = StationName::new(&args.station)?;
    let language: Language = args.language.parse()?;
    if crate::lang::find(language).is_none() {
        bail!(
            "this build has no console texts in `{language}`; use one of {} (README: Adding a language)",
            crate::lang::shipped_languages()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if jiff::tz::TimeZone::get(&args.time_zone).is_err() {
        bail!(
            "`{}` is not an IANA time zone; use one such as UTC, Europe/Moscow or America/New_York",
            args.time_zone
        );
    }
    let dir = &args.dir;
    fsutil::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join("station.key");
    let card_path = dir.join("station.card.toml");
    let config_path = dir.join("operator.toml");
    for p in [&key_path, &card_path, &config_path] {
        if p.exists() {
            bail!(
                "{} already exists; `hotline init` never overwrites a station. Use another --dir",
                p.display()
            );
        }
    }
    let passphrase = if args.no_passphrase {
        None
    } else {
        Some(
            passphrase::obtain_new(KEY_PASSPHRASE_ENV, "the station key")
                .map_err(anyhow::Error::msg)?,
        )
    };
    let keys = StationKeys::generate(name.clone()).context("the system's random source failed")?;
    write_key_file(&key_path, &keys, passphrase)?;
    let card = StationCard::from_keys(
        &keys.public(),
        args.addresses.iter().map(ToString::to_string).collect(),
        Some(args.time_zone.clone()),
    );
    fsutil::replace_atomic(&card_path, card.to_toml().as_bytes(), 0o644)
        .with_context(|| format!("writing {}", card_path.display()))?;
    let control = Control {
        socket: args.socket.clone(),
        group: args.group.clone(),
    };
    let config = example_for(
        &name,
        language,
        &args.time_zone,
        args.listen,
        &args.addresses,
        &control,
    );
    fsutil::create_private(&config_path, config.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    if let Some(group) = &args.group {
        share_with_group(dir, &config_path, group)?;
    }

    crate::out!("Created station {name}:");
    crate::out!(
        "  secret key   {}  (owner-only; never share it)",
        key_path.display()
    );
    crate::out!(
        "  station card {}  (public; give it to peers)",
        card_path.display()
    );
    crate::out!("  config       {}", config_path.display());
    crate::out!("Fingerprint: {}", card.fingerprint);
    crate::out!(
        "Next: add an operator with `hotline --config {} operator add NAME`,",
        config_path.display()
    );
    crate::out!(
        "and each peer with `hotline --config {} peer add THEIR-CARD.toml`.",
        config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Lets the operators' group read the config and enter its directory
/// (the key file stays owner-only).
fn share_with_group(dir: &Path, config_path: &Path, group: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let gid = fsutil::group_id(group)
        .with_context(|| format!("--group {group}"))?
        .ok_or_else(|| anyhow::anyhow!("--group {group}: no such group on this machine"))?;
    for (path, mode) in [(dir, 0o750), (config_path, 0o640)] {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("giving {} to group {group}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
    }
    Ok(())
}

/// The card as written by `init`, or rebuilt from the key file if missing.
fn station_card(config_path: &Path) -> anyhow::Result<StationCard> {
    let config = load_config(config_path)?;
    if config.station.card.exists() {
        let (card, _) = StationCard::load(&config.station.card)?;
        if card.station != config.station.name {
            bail!(
                "{}: this card is for {}, not {}",
                config.station.card.display(),
                card.station,
                config.station.name
            );
        }
        return Ok(card);
    }
    let keys = load_keys(&config)?;
    Ok(card_of(&config, &keys))
}

/// The card of `keys` with the addresses and time zone `config` gives.
pub(super) fn card_of(config: &crate::config::Config, keys: &StationKeys) -> StationCard {
    StationCard::from_keys(
        &keys.public(),
        config
            .station
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect(),
        Some(config.station.time_zone.clone()),
    )
}

pub fn card(config_path: &Path) -> anyhow::Result<ExitCode> {
    crate::cli::out_text(format_args!("{}", station_card(config_path)?.to_toml()));
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct IdentityArgs {
    /// Write the station's age identities (post-quantum and classic) in
    /// age's identity-file format; post-quantum needs age 1.3 or typage
    #[arg(long, required = true)]
    pub age: bool,
    /// Only the classic X25519 identity, for age before 1.3 (such as
    /// Debian's 1.1.1); it cannot open what was sealed post-quantum
    #[arg(long)]
    pub classic: bool,
    /// Write it to this new owner-only file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn identity(config_path: &Path, args: IdentityArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let keys = load_keys(&config)?;
    let text = if args.classic {
        classic_identity_file(&keys)
    } else {
        age_identity_file(&keys)
    };
    match args.out {
        Some(path) => {
            fsutil::create_private(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            crate::note!(
                "Wrote the age identity of {} to {} (owner-only).",
                keys.name,
                path.display()
            );
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
