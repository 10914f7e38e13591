//! Commands that run a station or talk to a running one over its control
//! socket: `serve`, `send`, `inbox`, `outbox`, `ack`, `cancel`, `status`,
//! `watch`, `link-test`. With no station running, the read-only ones read
//! the journal directly and the rest say so.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use age::secrecy::ExposeSecret;
use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;

use super::{load_config, load_keys};
use crate::config::Config;
use crate::passphrase::{self, OPERATOR_PASSPHRASE_ENV};
use crate::sanitize::inert;
use crate::station::control::{self, Client, ClientError, Request};
use crate::station::{Options, Station, lock};
use crate::store::{Direction, Journal};

/// Names the file holding the second operator's passphrase (two-person rule).
pub const SECOND_PASSPHRASE_ENV: &str = "HOTLINE_SECOND_PASSPHRASE_FILE";

pub fn serve(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let keys = load_keys(&config)?;
    let data_dir = config.station.data_dir.clone();
    let _lock = lock::acquire(&data_dir)?;
    let _log = crate::logging::init(&data_dir).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let station = Station::start(config, keys, Options::default()).await?;
        let socket = control::socket_path(&data_dir);
        let control = tokio::spawn(control::serve(station.clone(), socket.clone()));
        println!(
            "station {} listening on {} (control socket {})",
            station.name(),
            station
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            socket.display()
        );
        wait_for_signal().await;
        eprintln!("stopping station {}", station.name());
        station.shutdown().await;
        let _ = control.await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn connect(config: &Config) -> Result<Client, ClientError> {
    Client::connect(&control::socket_path(&config.station.data_dir))
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The peer station to send to
    #[arg(long)]
    pub to: String,
    /// The template id, e.g. general, missile-launch (see `hotline templates`)
    #[arg(long)]
    pub template: String,
    /// A field value as NAME=VALUE; repeat for each field
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub fields: Vec<String>,
    /// FLASH, IMMEDIATE, PRIORITY or ROUTINE [default: the template's]
    #[arg(long)]
    pub precedence: Option<String>,
    /// Free text added to the message
    #[arg(long, default_value = "")]
    pub text: String,
    /// The id of an earlier message this one refers to; repeatable
    #[arg(long = "reference", value_name = "ID")]
    pub references: Vec<String>,
    /// Flag the message as a bilateral exercise message
    #[arg(long)]
    pub exercise: bool,
    /// The releasing operator (passphrase asked, or read from $HOTLINE_PASSPHRASE_FILE)
    #[arg(long)]
    pub operator: String,
    /// The second operator for a FLASH under the two-person rule
    /// (passphrase asked, or read from $HOTLINE_SECOND_PASSPHRASE_FILE)
    #[arg(long)]
    pub second_operator: Option<String>,
    /// Attach a file; repeatable. The running station opens and reads the
    /// file itself (its path is sent over the control socket), seals it for
    /// the peer and sends it after the message, at the lowest priority.
    /// Limits: attachments.max_size and max_message in operator.toml.
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<std::path::PathBuf>,
}

pub fn send(config_path: &Path, args: SendArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let mut fields = BTreeMap::new();
    for f in &args.fields {
        let Some((k, v)) = f.split_once('=') else {
            bail!("--field `{f}`: write NAME=VALUE");
        };
        fields.insert(k.trim().to_string(), v.to_string());
    }
    // The station runs elsewhere: give it absolute paths, checked here first.
    let mut attachments = Vec::new();
    for f in &args.attach {
        let abs = std::path::absolute(f).with_context(|| format!("--attach {}", f.display()))?;
        if !abs.is_file() {
            bail!("--attach {}: no such file", f.display());
        }
        attachments.push(abs);
    }
    let mut client = connect(&config)?;
    let pass = passphrase::obtain(
        OPERATOR_PASSPHRASE_ENV,
        &format!("Passphrase for {}: ", args.operator),
    )
    .map_err(anyhow::Error::msg)?;
    let second_passphrase = match &args.second_operator {
        Some(name) => Some(
            passphrase::obtain(
                SECOND_PASSPHRASE_ENV,
                &format!("Passphrase for {name} (second operator): "),
            )
            .map_err(anyhow::Error::msg)?
            .expose_secret()
            .to_string(),
        ),
        None => None,
    };
    let result = client.call(&Request::Send {
        to: args.to.clone(),
        template: args.template.clone(),
        fields,
        precedence: args.precedence.clone(),
        text: args.text.clone(),
        references: args.references.clone(),
        exercise: args.exercise,
        operator: args.operator.clone(),
        passphrase: Some(pass.expose_secret().to_string()),
        second_operator: args.second_operator.clone(),
        second_passphrase,
        attachments,
    })?;
    println!(
        "released {} {} serial {} to {}",
        result["precedence"].as_str().unwrap_or(""),
        result["id"].as_str().unwrap_or(""),
        result["serial"],
        result["to"].as_str().unwrap_or("")
    );
    Ok(ExitCode::SUCCESS)
}

fn print_rows(rows: &Value, inbound: bool) {
    let empty = Vec::new();
    let rows = rows.as_array().unwrap_or(&empty);
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    println!(
        "{:<10} {:>6}  {:<10} {:<20} {:<14} {:<24} ID",
        "PRECEDENCE",
        "SERIAL",
        if inbound { "FROM" } else { "TO" },
        "TEMPLATE",
        "STATE",
        "ACKNOWLEDGED"
    );
    for r in rows {
        let ack = match (r["ack_by"].as_str(), r["ack_at"].as_str()) {
            (Some(by), Some(at)) => format!("{by} {}", at.get(..16).unwrap_or(at)),
            _ => "-".into(),
        };
        let mut state = r["state"].as_str().unwrap_or("").to_uppercase();
        if r["exercise"] == Value::Bool(true) {
            state.push_str(" EX");
        }
        println!(
            "{:<10} {:>6}  {:<10} {:<20} {:<14} {:<24} {}",
            r["precedence"].as_str().unwrap_or(""),
            r["serial"].as_u64().unwrap_or(0),
            inert(r["peer"].as_str().unwrap_or("")),
            inert(r["template"].as_str().unwrap_or("")),
            state,
            inert(&ack),
            r["id"].as_str().unwrap_or("")
        );
        let att = &r["attachments"];
        if let Some(total) = att["total"].as_u64() {
            let done = att["receipted"].as_u64().unwrap_or(0);
            let refused = att["refused"].as_u64().unwrap_or(0);
            let mut line = format!("attachments {done}/{total}");
            if done + refused < total {
                line.push_str(" (attachments pending)");
            }
            if refused > 0 {
                line.push_str(&format!(", {refused} refused"));
            }
            println!("{:>19}{line}", "");
        }
        if let Some(reason) = r["refusal"].as_str() {
            println!("{:>19}refused: {}", "", inert(reason));
        }
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn list(config_path: &Path, direction: Direction, args: ListArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let rows = match connect(&config) {
        Ok(mut client) => {
            let request = if direction == Direction::In {
                Request::Inbox
            } else {
                Request::Outbox
            };
            client.call(&request)?
        }
        Err(ClientError::NotRunning(_)) => {
            eprintln!("(no station is running: reading the journal directly)");
            let journal = Journal::open_read_only(&config.journal_path)?;
            control::rows_with_attachments(&journal, direction)?
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_rows(&rows, direction == Direction::In);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// The message id (or its first 8 or more characters)
    pub id: String,
    /// The operator doing it (passphrase asked, or read from $HOTLINE_PASSPHRASE_FILE)
    #[arg(long)]
    pub operator: String,
}

pub fn ack(config_path: &Path, args: OperatorArgs, cancel: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let mut client = connect(&config)?;
    let pass = passphrase::obtain(
        OPERATOR_PASSPHRASE_ENV,
        &format!("Passphrase for {}: ", args.operator),
    )
    .map_err(anyhow::Error::msg)?;
    let passphrase = Some(pass.expose_secret().to_string());
    let (id, operator) = (args.id.clone(), args.operator.clone());
    let req = if cancel {
        Request::Cancel {
            id,
            operator,
            passphrase,
        }
    } else {
        Request::Ack {
            id,
            operator,
            passphrase,
        }
    };
    let result = client.call(&req)?;
    if cancel {
        println!("cancelled {}", args.id);
    } else {
        println!(
            "acknowledged {} as {}",
            result["id"].as_str().unwrap_or(""),
            args.operator
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let status = match connect(&config) {
        Ok(mut client) => client.call(&Request::Status)?,
        Err(ClientError::NotRunning(p)) => {
            println!(
                "station {}: NOT RUNNING (no live socket at {})",
                config.station.name,
                p.display()
            );
            if lock::is_held(&config.station.data_dir) {
                println!(
                    "  (but its data directory is locked: a station may be starting or stuck)"
                );
            }
            if let Ok(journal) = Journal::open_read_only(&config.journal_path) {
                let unacked = journal
                    .list(Direction::In)?
                    .iter()
                    .filter(|r| r.state == "received")
                    .count();
                let pending = journal
                    .list(Direction::Out)?
                    .iter()
                    .filter(|r| r.state == "queued" || r.state == "sent")
                    .count();
                println!(
                    "  journal: {unacked} inbound unacknowledged, {pending} outbound without receipt"
                );
            }
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "station {}: RUNNING",
        status["station"].as_str().unwrap_or("")
    );
    for l in status["links"].as_array().into_iter().flatten() {
        let peer = l["peer"].as_str().unwrap_or("");
        let health = &status["health"][peer];
        println!(
            "  {peer}: {}  path {}  rtt {}  last traffic {}  last link test {} {}",
            health["state"]
                .as_str()
                .unwrap_or(if l["up"] == Value::Bool(true) {
                    "up"
                } else {
                    "down"
                })
                .to_uppercase(),
            l["path"].as_str().unwrap_or("-"),
            l["rtt_ms"]
                .as_u64()
                .map_or("-".to_string(), |r| format!("{r} ms")),
            l["last_traffic"].as_str().unwrap_or("-"),
            health["last_link_test"].as_str().unwrap_or("-"),
            match health["last_link_test_ok"].as_bool() {
                Some(true) => "(ok)",
                Some(false) => "(FAILED)",
                None => "",
            }
        );
    }
    let u = &status["unacknowledged"];
    println!(
        "  unacknowledged inbound: FLASH {} IMMEDIATE {} PRIORITY {} ROUTINE {}",
        u["FLASH"], u["IMMEDIATE"], u["PRIORITY"], u["ROUTINE"]
    );
    println!(
        "  outbound awaiting receipt: {}",
        status["outbound_pending"]
    );
    Ok(ExitCode::SUCCESS)
}

pub fn watch(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let client = connect(&config)?;
    use std::io::Write;
    let mut out = std::io::stdout();
    client.watch(|line| writeln!(out, "{line}").and_then(|()| out.flush()).is_ok())?;
    Ok(ExitCode::SUCCESS)
}

pub fn link_test(config_path: &Path, peer: &str) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let mut client = connect(&config)?;
    let result = client.call(&Request::LinkTest {
        peer: peer.to_string(),
    })?;
    println!(
        "link test with {peer}: ok, round trip {} ms",
        result["rtt_ms"]
    );
    Ok(ExitCode::SUCCESS)
}
