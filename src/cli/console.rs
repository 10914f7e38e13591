//! `hotline console`: the duty console, with the station running in-process.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::{load_config, load_keys};
use crate::console::Setup;
use crate::console::keymap;
use crate::station::{Options, Station, control, lock};

pub fn console(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let keymap = keymap::from_config(&config.console, config_path)
        .map_err(|p| anyhow::anyhow!(p.join("\n")))?;
    let keys = load_keys(&config)?;
    let data_dir = config.station.data_dir.clone();
    let _lock = match lock::acquire(&data_dir) {
        Ok(l) => l,
        Err(lock::LockError::Held(_)) => bail!(
            "a station is already running on {} (`hotline serve`). Attaching the console to a running station is not \
             built yet: stop that station first, or use `hotline inbox`, `hotline ack` and `hotline send`, which talk to it",
            data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let _log = crate::logging::init(&data_dir).map_err(anyhow::Error::msg)?;
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
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let station = Station::start(config, keys, Options::default()).await?;
        let socket = control::socket_path(&data_dir);
        let control = tokio::spawn(control::serve(station.clone(), socket));
        let result = crate::term::run(station.clone(), setup).await;
        station.shutdown().await;
        let _ = control.await;
        result.context("the terminal")
    })?;
    Ok(ExitCode::SUCCESS)
}
