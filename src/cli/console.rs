//! `hotline console`: the duty console. It runs the station in-process, or
//! attaches over the control socket to one that `hotline serve` runs.

use std::path::Path;
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
    // A station already running for this data directory (`hotline serve`):
    // attach to it over its control socket instead of starting another.
    let lock = match lock::acquire(&data_dir) {
        Ok(l) => l,
        Err(lock::LockError::Held(_)) => {
            return attach(
                &data_dir,
                config
                    .peers
                    .iter()
                    .map(|p| p.keys.name.to_string())
                    .collect(),
                setup,
                &runtime,
            );
        }
        Err(e) => return Err(e.into()),
    };
    let keys = load_keys(&config)?;
    let _log = crate::logging::init(&data_dir).map_err(anyhow::Error::msg)?;
    runtime.block_on(async move {
        let _lock = lock;
        let station = Station::start(config, keys, Options::default()).await?;
        let socket = control::socket_path(&data_dir);
        let control = tokio::spawn(control::serve(station.clone(), socket));
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
    data_dir: &Path,
    peers: Vec<String>,
    setup: Setup,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let socket = control::socket_path(data_dir);
    runtime.block_on(async move {
        let backend = Backend::attach(socket, peers).await?;
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
