//! `hotline tabletop`: a training exercise with no setup. Ephemeral keys, a
//! temporary journal, a simulated counterpart over the real link (exercise
//! ALPN), the trainee's console, and an after-action report at the end.
//!
//! Three ways to run it: everything in this process (the default); a white
//! cell (`--control`) that plays the counterpart to trainees on other
//! machines; and a trainee console that joins one (`--join ADDR --pin FP`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;

use crate::console::keymap::Keymap;
use crate::console::{Setup, WhiteCellView};
use crate::domain::Language;
use crate::station::Station;
use crate::station::admission::Waiting;
use crate::tabletop::run::{self, Facilitator, RenderReport, Reporter, TraineeRun, WhiteCell};
use crate::tabletop::{Outcome, ReportFacts, Scenario, scenario};
use crate::templates::Catalog;

/// An after-action report in Markdown, and the language it is written in.
type Report = (String, Language);

/// Where a white cell listens unless told otherwise.
pub const DEFAULT_CONTROL_LISTEN: &str = "0.0.0.0:7471";

#[derive(Args, Debug)]
pub struct TabletopArgs {
    /// The scenario id [default: intro]; see --list
    #[arg(conflicts_with = "join")]
    pub scenario: Option<String>,
    /// A scenario file instead of a built-in one: TOML, or a MSEL
    /// spreadsheet (FILE.csv) as --export-msel writes it
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "join"])]
    pub scenario_file: Option<PathBuf>,
    /// List the built-in scenarios and exit
    #[arg(long)]
    pub list: bool,
    /// Write the scenario as a MSEL spreadsheet (CSV) to FILE.csv and exit,
    /// without running the exercise
    #[arg(
        long,
        value_name = "FILE.csv",
        conflicts_with_all = ["join", "control", "list", "report", "speed"]
    )]
    pub export_msel: Option<PathBuf>,
    /// Where to write the after-action report [default: after-action-SCENARIO-DATE.md;
    /// a trainee that joins writes its own record, default trainee-STATION-DATE.md]
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Run the scenario's timeline this many times faster (overrides its time compression)
    #[arg(long, value_name = "FACTOR", conflicts_with = "join")]
    pub speed: Option<f64>,
    /// Run a white cell: play the counterpart to trainee consoles on other
    /// machines, which join with the command it prints
    #[arg(long, conflicts_with = "join")]
    pub control: bool,
    /// Where the white cell listens (UDP) [default: 0.0.0.0:7471]
    #[arg(long, value_name = "ADDR", requires = "control")]
    pub listen: Option<SocketAddr>,
    /// Join the white cell at ADDR (host:port) as a trainee
    #[arg(long, value_name = "ADDR", requires = "pin")]
    pub join: Option<String>,
    /// The white cell's fingerprint, as its join line gives it
    #[arg(long, value_name = "FINGERPRINT", requires = "join")]
    pub pin: Option<String>,
    /// This trainee station's name [default: TRAINEE-XXXX, random]
    #[arg(long, value_name = "NAME", requires = "join")]
    pub station: Option<String>,
    /// The side the trainee plays, one the scenario declares in `sides`
    /// (the counterpart is the other) [default: this station's, when run
    /// in a station's directory and the scenario has its side; else the
    /// scenario's trainee]
    #[arg(long = "as", value_name = "SIDE", conflicts_with = "join")]
    pub side: Option<String>,
}

fn choose(args: &TabletopArgs) -> anyhow::Result<Scenario> {
    if let Some(path) = &args.scenario_file {
        let text = crate::fsutil::read_regular_text(path, crate::fsutil::MAX_TEXT_FILE)
            .with_context(|| format!("reading {}", path.display()))?;
        return crate::tabletop::msel::parse_any(path, &text, Catalog::builtin()).map_err(|p| {
            anyhow::anyhow!(
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    }
    let (all, problems) = scenario::builtin();
    if !problems.is_empty() {
        bail!("built-in scenarios are broken: {problems:?}");
    }
    let wanted = args.scenario.as_deref().unwrap_or("intro");
    all.into_iter().find(|s| s.id == wanted).ok_or_else(|| {
        let ids: Vec<String> = scenario::builtin().0.into_iter().map(|s| s.id).collect();
        anyhow::anyhow!(
            "there is no scenario `{wanted}`; choose one of: {}",
            ids.join(", ")
        )
    })
}

/// The station whose directory the exercise runs in, if any: its name and
/// the language its operators read.
fn home_station(config_path: &Path) -> Option<(String, Language)> {
    if !config_path.exists() {
        return None;
    }
    let config = crate::config::Config::load(config_path).ok()?;
    Some((config.station.name.to_string(), config.station.language))
}

/// The scenario with the trainee on the side `--as` names, or on the home
/// station's side where the scenario has it; and the trainee's language.
fn cast(
    scenario: Scenario,
    side: Option<&str>,
    home: Option<(String, Language)>,
) -> anyhow::Result<(Scenario, Language)> {
    let language = home.as_ref().map_or(Language::EN, |(_, l)| *l);
    let side = match (side, &home) {
        (Some(side), _) => side.to_string(),
        (None, Some((name, _))) if scenario.sides.contains(name) => name.clone(),
        (None, _) => scenario.trainee.clone(),
    };
    let cast = scenario
        .cast(&side)
        .map_err(|e| anyhow::anyhow!("--as {side}: {e}"))?;
    Ok((cast, language))
}

pub fn tabletop(config_path: &Path, args: TabletopArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for s in scenario::builtin().0 {
            crate::out!("{:<20} {} ({} injects)", s.id, s.title, s.injects.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(out) = &args.export_msel {
        let scenario = choose(&args)?;
        std::fs::write(out, crate::tabletop::msel::to_csv(&scenario))
            .with_context(|| format!("writing {}", out.display()))?;
        crate::out!(
            "Wrote scenario `{}` ({} injects) as a MSEL spreadsheet: {}\nRun it with: hotline tabletop --scenario-file {}",
            scenario.id,
            scenario.injects.len(),
            out.display(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if let (Some(addr), Some(pin)) = (&args.join, &args.pin) {
        return runtime.block_on(join(
            addr,
            pin,
            args.station.as_deref(),
            args.report.clone(),
        ));
    }
    let (mut scenario, language) = cast(
        choose(&args)?,
        args.side.as_deref(),
        home_station(config_path),
    )?;
    if let Some(speed) = args.speed {
        if !(0.1..=60.0).contains(&speed) {
            bail!("--speed must be from 0.1 to 60");
        }
        scenario.time_compression = speed;
    }
    let date = Timestamp::now().strftime("%Y-%m-%d").to_string();
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("after-action-{}-{date}.md", scenario.id)));
    let ((report, report_language), summary) = if args.control {
        let listen = match args.listen {
            Some(a) => a,
            None => DEFAULT_CONTROL_LISTEN
                .parse()
                .context("the default address")?,
        };
        runtime.block_on(control(scenario, listen, &date, &report_path))?
    } else {
        runtime.block_on(in_process(scenario, language, &date, &report_path))?
    };
    std::fs::write(&report_path, &report)
        .with_context(|| format!("writing {}", report_path.display()))?;
    let html_path = crate::tabletop::html::path_beside(&report_path);
    std::fs::write(
        &html_path,
        crate::tabletop::html::report(&report, report_language),
    )
    .with_context(|| format!("writing {}", html_path.display()))?;
    crate::out!(
        "Exercise over: {summary}. After-action report: {} (and {})",
        report_path.display(),
        html_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn setup(
    station: &Station,
    peers: Vec<(String, String)>,
    white_cell: bool,
    language: Language,
) -> Setup {
    let keymap = if white_cell {
        Keymap::default().with_white_cell()
    } else {
        Keymap::default().with_objectives()
    };
    Setup {
        station: station.name().to_string(),
        language,
        time_zone: "UTC".into(),
        peers,
        deadlines: station.config().deadlines.clone(),
        idle_lock: Duration::from_secs(24 * 3600),
        two_person_flash: false,
        exercise_mode: true,
        call_sign_login: true,
        keymap,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        attached: false,
        ring: station.config().console.ring,
        labels: station.config().labels.clone(),
    }
}

/// Runs the white cell beside the console on `console`, until the console
/// quits; returns each trainee's run.
async fn drive(cell: WhiteCell, setup: Setup) -> anyhow::Result<Vec<TraineeRun>> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(run::WHITE_CELL_COMMANDS);
    let (view_tx, view_rx) = tokio::sync::watch::channel(WhiteCellView::default());
    let link = crate::term::WhiteCellLink {
        commands: commands_tx,
        view: view_rx,
    };
    let console_station = cell.console.clone();
    let facilitator = Facilitator {
        commands: commands_rx,
        view: view_tx,
    };
    let task = tokio::spawn(run::white_cell(cell, facilitator, stop_rx));
    let console = crate::term::run(
        crate::term::Backend::local(console_station),
        setup,
        Some(link),
    )
    .await;
    stop_tx.send_replace(true);
    let runs = task.await.context("the white cell stopped unexpectedly")?;
    console.context("the terminal")?;
    Ok(runs)
}

/// "n of m expectations met" over every trainee.
fn summary(runs: &[TraineeRun]) -> String {
    let (mut met, mut all) = (0, 0);
    for r in runs {
        let scores = r.engine.scores(r.ran, true);
        met += scores
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Met { .. }))
            .count();
        all += scores.len();
    }
    format!("{met} of {all} expectations met")
}

/// The default: trainee console, white cell and counterpart in this process.
async fn in_process(
    scenario: Scenario,
    language: Language,
    date: &str,
    report_path: &Path,
) -> anyhow::Result<(Report, String)> {
    let counterpart_language = if language == Language::EN {
        Language::RU
    } else {
        Language::EN
    };
    let exercise = run::start(
        &scenario,
        run::Casting {
            trainee_language: language,
            counterpart_language,
        },
    )
    .await?;
    let _log = crate::logging::init(&exercise.scratch.0);
    let setup = setup(
        &exercise.trainee,
        vec![(scenario.counterpart.clone(), "UTC".into())],
        true,
        language,
    );
    let lang = setup.language;
    let render: RenderReport = {
        let trainee = exercise.trainee.clone();
        let date = date.to_string();
        Arc::new(move |runs: &[TraineeRun], finished: bool, lang: Language| {
            in_process_report(&trainee, &date, runs, finished, lang)
        })
    };
    let cell = WhiteCell {
        counterpart: exercise.counterpart.clone(),
        console: exercise.trainee.clone(),
        trainees: vec![exercise.trainee.name().clone()],
        scenario,
        join: None,
        report: Reporter {
            path: report_path.to_path_buf(),
            render: render.clone(),
        },
        language: lang,
        clock: Some(exercise.clock.clone()),
    };
    let runs = drive(cell, setup).await;
    let report = render(runs.as_deref().unwrap_or_default(), true, lang);
    exercise.trainee.shutdown().await;
    exercise.counterpart.shutdown().await;
    let runs = runs?;
    Ok(((report, lang), summary(&runs)))
}

/// The in-process report: the trainee's actions from its own audit log.
fn in_process_report(
    trainee: &Station,
    date: &str,
    runs: &[TraineeRun],
    finished: bool,
    lang: Language,
) -> String {
    let mut report = Vec::new();
    for r in runs {
        let actions = run::operator_actions(trainee, r.admitted_at);
        let operator = actions
            .iter()
            .find_map(|a| a.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(|| crate::t!(lang, "report.no_log_in").into());
        report.push(r.engine.report(
            lang,
            r.ran,
            &ReportFacts {
                trainee: &operator,
                date,
                source: crate::t!(lang, "report.source_audit"),
                actions: &actions,
                finished,
            },
        ));
    }
    report.join("\n")
}

/// The white cell's report: a section per trainee, with its operators'
/// actions as they reached the white cell.
fn control_report(
    station: &Station,
    date: &str,
    runs: &[TraineeRun],
    finished: bool,
    lang: Language,
) -> String {
    let mut report = String::new();
    for r in runs {
        let mine: Vec<run::ReceivedAction> = run::received_actions(station, r.admitted_at, lang)
            .into_iter()
            .filter(|a| a.peer == r.station.as_str())
            .collect();
        let mut operators: Vec<&str> = mine.iter().map(|a| a.operator.as_str()).collect();
        operators.sort_unstable();
        operators.dedup();
        let operators = if operators.is_empty() {
            crate::t!(lang, "report.none_seen").to_string()
        } else {
            operators.join(", ")
        };
        let actions: Vec<String> = mine.iter().map(|a| a.text.clone()).collect();
        report.push_str(&r.engine.report(
            lang,
            r.ran,
            &ReportFacts {
                trainee: &operators,
                date,
                source: crate::t!(lang, "report.source_white_cell"),
                actions: &actions,
                finished,
            },
        ));
        report.push('\n');
        report.push_str(&crate::tabletop::classroom::record_section(r, lang));
    }
    if runs.is_empty() {
        report.push_str(&format!(
            "# {}\n\n{}\n",
            crate::t!(lang, "report.heading"),
            crate::t!(lang, "report.no_trainee")
        ));
    }
    report
}

/// How long a quitting trainee waits for the white cell's receipt of its
/// record.
const RECORD_RECEIPT: Duration = Duration::from_secs(15);

/// The address trainees dial: `listen`, or, when it is the unspecified
/// address, this machine's address on its default route.
fn advertised(listen: SocketAddr) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let probe = std::net::UdpSocket::bind((listen.ip(), 0)).and_then(|s| {
        let target: SocketAddr = if listen.is_ipv4() {
            "192.0.2.1:9".parse().unwrap_or(listen)
        } else {
            "[2001:db8::1]:9".parse().unwrap_or(listen)
        };
        s.connect(target)?;
        s.local_addr()
    });
    let ip = match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ if listen.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        _ => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    SocketAddr::new(ip, listen.port())
}

/// `--control`: the white cell and its console; trainees join over the
/// network and are admitted by fingerprint.
async fn control(
    scenario: Scenario,
    listen: SocketAddr,
    date: &str,
    report_path: &Path,
) -> anyhow::Result<(Report, String)> {
    let (station, scratch) = run::start_white_cell(&scenario, listen).await?;
    let _log = crate::logging::init(&scratch.0);
    let bound = station
        .local_addr()
        .context("the white cell did not bind")?;
    let fingerprint = station.fingerprint().replace(' ', ":");
    let join = format!(
        "hotline tabletop --join {} --pin {fingerprint}",
        advertised(bound)
    );
    crate::out!(
        "EXERCISE white cell for scenario `{}`, listening on {bound}.\nTrainees join with:\n  {join}\n",
        scenario.id
    );
    let setup = setup(&station, Vec::new(), true, Language::EN);
    let lang = setup.language;
    let render: RenderReport = {
        let station = station.clone();
        let date = date.to_string();
        Arc::new(move |runs: &[TraineeRun], finished: bool, lang: Language| {
            control_report(&station, &date, runs, finished, lang)
        })
    };
    let cell = WhiteCell {
        counterpart: station.clone(),
        console: station.clone(),
        trainees: Vec::new(),
        scenario,
        join: Some(join),
        report: Reporter {
            path: report_path.to_path_buf(),
            render: render.clone(),
        },
        language: lang,
        clock: None,
    };
    let runs = drive(cell, setup).await;
    let report = render(runs.as_deref().unwrap_or_default(), true, lang);
    station.shutdown().await;
    let runs = runs?;
    drop(scratch);
    Ok(((report, lang), summary(&runs)))
}

/// `--join ADDR --pin FP`: asks the white cell to admit a fresh trainee
/// station, then runs its console against the white cell.
async fn join(
    addr: &str,
    pin: &str,
    station: Option<&str>,
    report: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let addr = addr
        .to_socket_addrs()
        .with_context(|| format!("--join {addr}: not a host:port (for example 192.0.2.7:7471)"))?
        .next()
        .with_context(|| format!("--join {addr}: the name has no address"))?;
    let name = match station {
        Some(n) => n.to_string(),
        None => {
            let mut r = [0u8; 2];
            getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("random name: {e}"))?;
            format!("TRAINEE-{}", hex::encode_upper(r))
        }
    };
    let keys = run::keys(&name).context("--station")?;
    // In the groups the facilitator's panel shows, two rows of eight.
    let groups: Vec<String> = keys
        .public()
        .fingerprint()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let half = groups.len().div_ceil(2);
    crate::out!("EXERCISE: asking the white cell at {addr} to admit station {name}.");
    crate::out!(
        "Read this fingerprint to the facilitator:\n  {}\n  {}",
        groups[..half].join(" "),
        groups[half..].join(" ")
    );
    let mut told = false;
    let mut lost = false;
    let white_cell = crate::station::admission::join(&keys, addr, pin, |w| match w {
        Waiting::Pending(_) => {
            if !std::mem::replace(&mut told, true) {
                crate::out!(
                    "The white cell matches your --pin. Waiting for the facilitator to admit you (Ctrl-C to give up)…"
                );
            }
            if std::mem::replace(&mut lost, false) {
                crate::out!("The white cell answers again. Still waiting…");
            }
        }
        Waiting::Lost(e) => {
            if !std::mem::replace(&mut lost, true) {
                crate::out!("The white cell stopped answering ({e}); asking again…");
            }
        }
    })
    .await?;
    crate::out!("Admitted by {}. Starting your console…", white_cell.name);
    let (trainee, scratch) = run::start_trainee(keys, &white_cell, addr).await?;
    let _log = crate::logging::init(&scratch.0);
    let setup = setup(
        &trainee,
        vec![(white_cell.name.to_string(), "UTC".into())],
        false,
        Language::EN,
    );
    let started = Timestamp::now();
    // The objectives panel, from the white cell's briefing.
    let (commands, commands_rx) = tokio::sync::mpsc::channel(run::WHITE_CELL_COMMANDS);
    let (view_tx, view) = tokio::sync::watch::channel(WhiteCellView::default());
    let (stop_mirror, stop_rx) = tokio::sync::watch::channel(false);
    let mirror = tokio::spawn(crate::tabletop::classroom::mirror(
        trainee.clone(),
        white_cell.name.to_string(),
        view_tx,
        commands_rx,
        stop_rx,
    ));
    let console = crate::term::run(
        crate::term::Backend::local(trainee.clone()),
        setup,
        Some(crate::term::WhiteCellLink { commands, view }),
    )
    .await;
    stop_mirror.send_replace(true);
    let _ = mirror.await;
    let date = Timestamp::now().strftime("%Y-%m-%d").to_string();
    let record = run::trainee_record(
        &trainee,
        &white_cell,
        addr,
        started,
        &date,
        trainee.config().station.language,
    );
    match crate::tabletop::classroom::send_record(
        &trainee,
        white_cell.name.as_str(),
        &record,
        RECORD_RECEIPT,
    )
    .await
    {
        Ok(()) => crate::out!("{}", crate::t!(Language::EN, "report.record_delivered")),
        Err(e) => crate::out!(
            "{}",
            crate::t!(Language::EN, "report.record_undelivered", error = e)
        ),
    }
    trainee.shutdown().await;
    console.context("the terminal")?;
    let path = report.unwrap_or_else(|| PathBuf::from(format!("trainee-{name}-{date}.md")));
    std::fs::write(&path, record).with_context(|| format!("writing {}", path.display()))?;
    crate::out!(
        "Exercise over. Your station's record: {}. The facilitator's white cell writes the scored after-action report.",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_line_never_advertises_the_unspecified_address() {
        let any: SocketAddr = DEFAULT_CONTROL_LISTEN.parse().expect("default");
        let shown = advertised(any);
        assert!(!shown.ip().is_unspecified(), "{shown}");
        assert_eq!(shown.port(), 7471);
        let given: SocketAddr = "127.0.0.1:9999".parse().expect("addr");
        assert_eq!(advertised(given), given, "a given address is kept");
    }
}
