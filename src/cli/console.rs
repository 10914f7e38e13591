//! `hotline console`: the duty console. It runs the station in-process, or
//! attaches over the control socket to one that `hotline serve` runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{load_config, load_keys};
use crate::console::Setup;
use crate::console::keymap;
use crate::station::{Options, Station, control, lock};
use crate::term::Backend;

pub fn console(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let keymap = keymap::from_config(&config.console, config_path)
        .map_err(|p| anyhow::anyhow!(p.join("\n")))?;
    let data_dir = config.station.data_dir.clone();
    let setup = Setup {
        station: config.station.name.to_string(),
        language: config.station.language,
        time_zone: config.station.time_zone.clone(),
        peers: config
            .peers
            .iter()
            .map(|p| (p.keys.name.to_string(), p.time_zone.clone()))
            .collect(),
        deadlines: config.deadlines.clone(),
        idle_lock: config.console.idle_lock,
        two_person_flash: config.console.two_person_flash,
        exercise_mode: false,
        call_sign_login: false,
        keymap,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        attached: false,
        ring: config.console.ring,
        labels: config.labels.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let peers = config
        .peers
        .iter()
        .map(|p| p.keys.name.to_string())
        .collect();
    // A station already running for this data directory (`hotline serve`),
    // or one that another user runs (a service, whose operators reach it
    // through its socket): attach to it instead of starting another.
    if !super::owned_by_us(&data_dir) {
        return attach(&config.control.socket, &data_dir, peers, setup, &runtime);
    }
    let lock = match lock::acquire(&data_dir) {
        Ok(l) => l,
        Err(lock::LockError::Held(_)) => {
            return attach(&config.control.socket, &data_dir, peers, setup, &runtime);
        }
        Err(e) => return Err(e.into()),
    };
    let keys = load_keys(&config)?;
    let _log = crate::logging::init(&data_dir).map_err(anyhow::Error::msg)?;
    runtime.block_on(async move {
        let _lock = lock;
        let station = Station::start(config, keys, Options::default()).await?;
        let listening = match control::listen(&station) {
            Ok(l) => l,
            Err(e) => {
                station.shutdown().await;
                return Err(anyhow::Error::new(e).context("the control socket"));
            }
        };
        let control = tokio::spawn(control::serve(station.clone(), listening));
        let result = crate::term::run(Backend::local(station.clone()), setup, None).await;
        station.shutdown().await;
        let _ = control.await;
        result.context("the terminal")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The console of a station that `hotline serve` runs: everything goes
/// through the control socket, and the station goes on when we quit.
fn attach(
    socket: &Path,
    data_dir: &Path,
    peers: Vec<String>,
    setup: Setup,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let socket = socket.to_path_buf();
    let own_dir = console_dir(data_dir, &setup.station)?;
    runtime.block_on(async move {
        let backend = Backend::attach(socket, own_dir, peers).await?;
        let setup = Setup {
            attached: true,
            ..setup
        };
        crate::term::run(backend, setup, None)
            .await
            .context("the terminal")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where an attached console keeps its own files (drafts, exports): the
/// station's data directory when this user runs the station, else a
/// directory of this user's own, `$XDG_STATE_HOME/hotline/STATION` (or
/// `~/.local/state/hotline/STATION`), since a station run as a service
/// keeps its data directory to itself.
fn console_dir(data_dir: &Path, station: &str) -> anyhow::Result<PathBuf> {
    if super::owned_by_us(data_dir) {
        return Ok(data_dir.to_path_buf());
    }
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("state"),
            None => anyhow::bail!(
                "the station's data directory {} is not this user's, and neither XDG_STATE_HOME nor HOME says where this console may keep its drafts",
                data_dir.display()
            ),
        },
    };
    let dir = state.join("hotline").join(station);
    crate::fsutil::private_dir(&dir).with_context(|| format!("{}", dir.display()))?;
    Ok(dir)
}
