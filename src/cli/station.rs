//! Commands that run a station or talk to a running one over its control
//! socket: `serve`, `send`, `inbox`, `outbox`, `ack`, `cancel`, `status`,
//! `watch`, `link-test`. Each goes through the station's typed API with the
//! one socket client; with no station running, the read-only ones read the
//! journal directly and the rest say so.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::{load_config, load_keys};
use crate::compose::Draft;
use crate::config::Config;
use crate::domain::Precedence;
use crate::passphrase::{self, OPERATOR_PASSPHRASE_ENV};
use crate::sanitize::inert;
use crate::station::api::{ApiError, Attachment, Command, Passphrase, Release, Reply};
use crate::station::client::{Client, Watch};
use crate::station::control::{self, Streamed};
use crate::station::{Options, Station, lock};
use crate::store::{Direction, Journal, MessageRow, MessageState};

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
        // Listening for SIGTERM before anything starts: a stop that comes
        // while the station starts still closes it cleanly.
        let stopping = stop_signal();
        let station = Station::start(config, keys, Options::default()).await?;
        let listening = match control::listen(&station) {
            Ok(l) => l,
            Err(e) => {
                station.shutdown().await;
                return Err(anyhow::Error::new(e).context("the control socket"));
            }
        };
        let socket = listening.path.clone();
        let control = tokio::spawn(control::serve(station.clone(), listening));
        crate::out!(
            "station {} listening on {} (control socket {})",
            station.name(),
            station
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            socket.display()
        );
        stopping.await;
        crate::note!("stopping station {}", station.name());
        station.shutdown().await;
        let _ = control.await;
        Ok::<_, anyhow::Error>(())
    })?;
    // Whatever is left in the blocking pool may not hold the process up:
    // shutdown has awaited every write the station had to make, and its
    // peers are told.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(ExitCode::SUCCESS)
}

/// Installs the SIGTERM and SIGINT handlers now, and returns what waits
/// for either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// A runtime for one command's talk with the station.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(super) async fn connect(config: &Config) -> Result<Client, ApiError> {
    Client::connect(&config.control.socket).await
}

/// Logs `operator` in on `client`, asking for the passphrase (or reading
/// it from `env`'s file).
pub(super) async fn log_in(
    client: &mut Client,
    operator: &str,
    env: &str,
    second: bool,
) -> anyhow::Result<()> {
    let prompt = if second {
        format!("Passphrase for {operator} (second operator): ")
    } else {
        format!("Passphrase for {operator}: ")
    };
    let passphrase = Passphrase(passphrase::obtain(env, &prompt).map_err(anyhow::Error::msg)?);
    let name = operator.to_string();
    let operator = name.clone();
    let command = if second {
        Command::VerifySecond {
            operator,
            passphrase,
        }
    } else {
        Command::Login {
            operator,
            passphrase,
        }
    };
    let role = if second {
        "second operator"
    } else {
        "operator"
    };
    client
        .call(&command)
        .await
        .with_context(|| format!("{role} {}", inert(&name)))?;
    Ok(())
}

/// An answer of the wrong kind.
pub(super) fn unexpected(reply: &Reply) -> anyhow::Error {
    anyhow::anyhow!("the station answered with an unexpected reply: {reply:?}")
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
    /// The language the free text (and the template's free-text fields)
    /// is written in, a BCP 47 tag such as en, ru, fr, zh [default: the station's language]
    #[arg(long, value_name = "LANG")]
    pub text_language: Option<String>,
    /// The security marking, one of the station's `[labels] markings`
    /// [default: its `[labels] default`]
    #[arg(long, value_name = "MARKING")]
    pub label: Option<String>,
    /// An earlier message this one refers to: its handle (MOSCOW/6 for a
    /// received one, to:MOSCOW/6 for one we sent) or its id; repeatable. A
    /// correction or cancellation names exactly one message of ours
    #[arg(long = "reference", value_name = "HANDLE")]
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
    /// Attach a file; repeatable. This command opens it and hands it to
    /// the running station over the control socket (the station never
    /// opens your paths), which seals it for the peer and sends it after
    /// the message, at the lowest priority.
    /// Limits: attachments.max_size and max_message in operator.toml.
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<std::path::PathBuf>,
}

pub fn send(config_path: &Path, args: SendArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let mut fields = BTreeMap::new();
    for f in &args.fields {
        let Some((k, v)) = f.split_once('=') else {
            bail!("--field `{}`: write NAME=VALUE", inert(f));
        };
        let name = k.trim().to_string();
        if fields.insert(name.clone(), v.to_string()).is_some() {
            bail!(
                "--field {}: given twice; give each field once",
                inert(&name)
            );
        }
    }
    let precedence = args
        .precedence
        .as_deref()
        .map(str::parse::<Precedence>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--precedence: {e}"))?;
    // This process opens the files and hands them over: the station, which
    // may run as its own user, never opens the operator's paths.
    let mut attachments = Vec::new();
    for f in &args.attach {
        let shown = inert(&f.display().to_string());
        match std::fs::metadata(f) {
            Ok(m) if m.is_file() => {}
            Ok(m) if m.is_dir() => {
                bail!("--attach {shown}: is a directory; attach files, one --attach each")
            }
            Ok(_) => bail!(
                "--attach {shown}: is not a regular file (a device, FIFO or socket); attach a regular file"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("--attach {shown}: no such file")
            }
            Err(e) => bail!("--attach {shown}: {e}"),
        }
        attachments.push(Attachment::open(f).with_context(|| format!("--attach {shown}"))?);
    }
    // A notification that would come too late for its treaty is sent all
    // the same (late is better than never), with a warning.
    if let Some(why) = crate::templates::Catalog::builtin()
        .latest(&args.template)
        .zip(
            crate::compose::check(
                &Draft {
                    template_id: args.template.clone(),
                    fields: fields.clone(),
                    ..Draft::default()
                },
                crate::templates::Catalog::builtin(),
                jiff::Timestamp::now(),
            )
            .ok(),
        )
        .and_then(|(t, checked)| {
            t.short_notice(
                &checked.fields,
                jiff::Timestamp::now(),
                config.station.language,
            )
        })
    {
        crate::note!("warning: SHORT NOTICE: {why}");
    }
    let release = Release {
        to: args.to.clone(),
        draft: Draft {
            template_id: args.template.clone(),
            fields,
            precedence,
            text: args.text.clone(),
            text_language: args
                .text_language
                .as_deref()
                .map(|l| {
                    l.parse::<crate::domain::Language>()
                        .map_err(|e| anyhow::anyhow!("--text-language: {e}"))
                })
                .transpose()?,
            label: args.label.clone(),
            references: Vec::new(),
            exercise: args.exercise,
        },
        attachments,
        second_operator: args.second_operator.clone(),
        refer_to: args.references.clone(),
    };
    runtime()?.block_on(async {
        let mut client = connect(&config).await?;
        log_in(&mut client, &args.operator, OPERATOR_PASSPHRASE_ENV, false).await?;
        if let Some(second) = &args.second_operator {
            log_in(&mut client, second, SECOND_PASSPHRASE_ENV, true).await?;
        }
        match client.send(Command::Release(Box::new(release))).await? {
            Reply::Released { row } => {
                crate::out!(
                    "released {} {} serial {} to {}",
                    row.precedence,
                    row.id,
                    row.serial,
                    row.peer
                );
                Ok(ExitCode::SUCCESS)
            }
            other => Err(unexpected(&other)),
        }
    })
}

fn print_rows(rows: &[MessageRow], labels: &crate::config::LabelPolicy) {
    if rows.is_empty() {
        crate::out!("(none)");
        return;
    }
    crate::out!(
        "{:<10} {:<16} {:<32} {:<16} {:<24} ID",
        "PRECEDENCE",
        "HANDLE",
        "SUBJECT",
        "STATE",
        "ACKNOWLEDGED"
    );
    for r in rows {
        let ack = match (&r.ack_by, r.ack_at) {
            (Some(by), Some(at)) => format!("{by} {}", at.strftime("%Y-%m-%dT%H:%M")),
            _ => "-".into(),
        };
        let mut state = r.state.label(crate::domain::Language::EN).to_string();
        if r.exercise {
            state.push_str(" EX");
        }
        if r.suspect.is_some() {
            state.push_str(" SUSPECT");
        }
        if let Some(amended) = crate::console::amended(r, crate::domain::Language::EN) {
            state = format!("{amended}, {state}");
        }
        if let Some(label) = &r.label {
            // A marking this station's policy does not list is shown as
            // sent, and flagged.
            let unknown = if labels.rank(label).is_none() {
                "(UNKNOWN MARKING) "
            } else {
                ""
            };
            state = format!("{}{unknown} {state}", inert(label));
        }
        // The journal holds content sealed: only a running station opens
        // the subject, in memory.
        let subject = match &r.subject {
            Some(s) => inert(s),
            None => format!("(sealed) {}", inert(&r.template_id)),
        };
        crate::out!(
            "{:<10} {:<16} {:<32} {:<16} {:<24} {}",
            r.precedence.to_string(),
            crate::console::handle(r),
            subject,
            state,
            inert(&ack),
            r.id
        );
        if let Some(second) = &r.second_operator {
            crate::out!("{:>19}released by {} and {second}", "", r.operator);
        }
        if r.attachments > 0 {
            let (done, refused, total) = (r.attachments_done, r.attachments_refused, r.attachments);
            let mut line = format!("attachments {done}/{total}");
            if done + refused < total {
                line.push_str(" (attachments pending)");
            }
            if refused > 0 {
                line.push_str(&format!(", {refused} refused"));
            }
            crate::out!("{:>19}{line}", "");
        }
        if let Some(reason) = &r.refusal {
            crate::out!("{:>19}refused: {}", "", inert(reason));
        }
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Only the newest N messages, oldest of them first
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// With --limit: the page below this message (its id)
    #[arg(long, value_name = "ID", requires = "limit")]
    pub before: Option<crate::domain::MessageId>,
}

pub fn list(config_path: &Path, direction: Direction, args: ListArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let rows = runtime()?.block_on(async {
        match connect(&config).await {
            Ok(mut client) => match client
                .call(&Command::List {
                    direction,
                    limit: args.limit,
                    before: args.before,
                })
                .await?
            {
                Reply::Rows { rows } => Ok(rows),
                other => Err(unexpected(&other)),
            },
            Err(ApiError::NotRunning { .. }) => {
                crate::note!("(no station is running: reading the journal directly)");
                let journal = Journal::open_read_only(&config.journal_path)?;
                Ok(match args.limit {
                    None => journal.list(direction)?,
                    Some(n) => journal.page(direction, n, args.before.as_ref())?,
                })
            }
            Err(e) => Err(e.into()),
        }
    })?;
    // A page comes newest first; a listing reads down in time.
    let rows = if args.limit.is_some() {
        rows.into_iter().rev().collect()
    } else {
        rows
    };
    if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_rows(&rows, &config.labels);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// The message: its handle (MOSCOW/6 is MOSCOW's 6th message to us,
    /// to:MOSCOW/6 our 6th to MOSCOW), or its id (or the id's first 8 or
    /// more characters)
    pub id: String,
    /// The operator doing it (passphrase asked, or read from $HOTLINE_PASSPHRASE_FILE)
    #[arg(long)]
    pub operator: String,
}

/// What an operator does to one message from the command line.
#[derive(Clone, Copy, Debug)]
pub enum Act {
    Acknowledge,
    Cancel,
}

pub fn act(config_path: &Path, args: OperatorArgs, act: Act) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    runtime()?.block_on(async {
        let mut client = connect(&config).await?;
        log_in(&mut client, &args.operator, OPERATOR_PASSPHRASE_ENV, false).await?;
        let id = args.id.clone();
        let command = match act {
            Act::Acknowledge => Command::Acknowledge { id },
            Act::Cancel => Command::Cancel { id },
        };
        match client.call(&command).await? {
            Reply::Acknowledged { row } => crate::out!(
                "acknowledged {} ({}) as {}",
                crate::console::describe(&row),
                row.id,
                args.operator
            ),
            Reply::Cancelled { row } => {
                crate::out!("cancelled {} ({})", crate::console::describe(&row), row.id)
            }
            other => return Err(unexpected(&other)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn confirm_rotation(
    config_path: &Path,
    args: super::people::PeerConfirmArgs,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    runtime()?.block_on(async {
        let mut client = connect(&config).await?;
        log_in(&mut client, &args.operator, OPERATOR_PASSPHRASE_ENV, false).await?;
        match client
            .call(&Command::ConfirmRotation {
                peer: args.peer.clone(),
                fingerprint: args.fingerprint.clone(),
            })
            .await?
        {
            Reply::RotationConfirmed { peer, fingerprint } => {
                crate::out!("{peer}'s new keys are pinned: {fingerprint}");
                Ok(ExitCode::SUCCESS)
            }
            other => Err(unexpected(&other)),
        }
    })
}

pub fn status(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let status = runtime()?.block_on(async {
        match connect(&config).await {
            Ok(mut client) => match client.call(&Command::Status).await? {
                Reply::Status { status } => Ok(Some(status)),
                other => Err(unexpected(&other)),
            },
            Err(ApiError::NotRunning { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })?;
    let Some(status) = status else {
        crate::out!(
            "station {}: NOT RUNNING (no live socket at {})",
            config.station.name,
            config.control.socket.display()
        );
        if lock::is_held(&config.station.data_dir) {
            crate::out!("  (but its data directory is locked: a station may be starting or stuck)");
        }
        if let Ok(journal) = Journal::open_read_only(&config.journal_path) {
            let unacked: usize = journal
                .count_in_state(Direction::In, MessageState::Received)?
                .iter()
                .sum();
            let pending = journal
                .list(Direction::Out)?
                .iter()
                .filter(|r| r.state.awaits_receipt())
                .count();
            crate::out!(
                "  journal: {unacked} inbound unacknowledged, {pending} outbound without receipt"
            );
        }
        return Ok(ExitCode::from(3));
    };
    if json {
        crate::out!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::out!("station {}: RUNNING", status.station);
    for l in &status.links {
        let health = status.health.get(&l.peer);
        let state = health
            .map(|h| h.state.to_uppercase())
            .unwrap_or_else(|| if l.up { "UP" } else { "DOWN" }.to_string());
        crate::out!(
            "  {}: {state}{}  path {}  rtt {}  last traffic {}  last link test {} {}",
            inert(&l.peer),
            if health.is_some_and(|h| h.post_quantum) {
                ""
            } else {
                "  link not post-quantum"
            },
            l.path
                .map_or("-".to_string(), |p| format!("{p:?}").to_lowercase()),
            l.rtt_ms.map_or("-".to_string(), |r| format!("{r} ms")),
            l.last_traffic.as_deref().unwrap_or("-"),
            health
                .and_then(|h| h.last_link_test.as_deref())
                .unwrap_or("-"),
            match health.and_then(|h| h.last_link_test_ok) {
                Some(true) => "(ok)",
                Some(false) => "(FAILED)",
                None => "",
            }
        );
        if let Some(keys) = health.and_then(|h| h.keys.as_deref()) {
            crate::out!("    keys: {}", inert(keys));
        }
    }
    let u = |p: Precedence| {
        status
            .unacknowledged
            .get(&p.to_string())
            .copied()
            .unwrap_or(0)
    };
    crate::out!(
        "  unacknowledged inbound: FLASH {} IMMEDIATE {} PRIORITY {} ROUTINE {}",
        u(Precedence::Flash),
        u(Precedence::Immediate),
        u(Precedence::Priority),
        u(Precedence::Routine)
    );
    crate::out!("  outbound awaiting receipt: {}", status.outbound_pending);
    crate::out!(
        "  connections refused from strangers since start: {}",
        status.strangers_refused
    );
    crate::out!(
        "  full resyncs served to consoles since start: {}",
        status.snapshots_served
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints the station's events as JSON lines until it stops.
pub fn watch(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    runtime()?.block_on(async {
        let mut watch = Watch::connect(&config.control.socket).await?;
        let mut out = std::io::stdout();
        loop {
            let line = match watch.next().await {
                Ok(Streamed::Heartbeat) => continue,
                Ok(Streamed::Lagged) => "{\"event\":\"resync\"}".to_string(),
                Ok(Streamed::Event(e)) => serde_json::to_string(&e)?,
                Err(ApiError::Gone { .. }) => return Ok(ExitCode::SUCCESS),
                Err(e) => return Err(e.into()),
            };
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
    })
}

pub fn link_test(config_path: &Path, peer: &str) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    runtime()?.block_on(async {
        let mut client = connect(&config).await?;
        match client
            .call(&Command::LinkTest {
                peer: peer.to_string(),
            })
            .await?
        {
            Reply::LinkTested { rtt_ms, .. } => {
                crate::out!("link test with {peer}: ok, round trip {rtt_ms} ms");
                Ok(ExitCode::SUCCESS)
            }
            other => Err(unexpected(&other)),
        }
    })
}
