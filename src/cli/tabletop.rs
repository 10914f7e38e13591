//! `hotline tabletop`: a training exercise with no setup. Ephemeral keys, a
//! temporary journal, a simulated counterpart over the real link on
//! loopback (exercise ALPN), the trainee's console, and an after-action
//! report at the end.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;

use crate::console::Setup;
use crate::console::keymap::Keymap;
use crate::domain::Language;
use crate::tabletop::{Engine, Scenario, run, scenario};
use crate::templates::Catalog;

#[derive(Args, Debug)]
pub struct TabletopArgs {
    /// The scenario id [default: intro]; see --list
    pub scenario: Option<String>,
    /// A scenario file instead of a built-in one
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub scenario_file: Option<PathBuf>,
    /// List the built-in scenarios and exit
    #[arg(long)]
    pub list: bool,
    /// Where to write the after-action report [default: after-action-SCENARIO-DATE.md]
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Run the scenario's timeline this many times faster (overrides its time compression)
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
}

fn choose(args: &TabletopArgs) -> anyhow::Result<Scenario> {
    if let Some(path) = &args.scenario_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return scenario::parse(path, &text, Catalog::builtin()).map_err(|p| {
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

pub fn tabletop(args: TabletopArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for s in scenario::builtin().0 {
            println!("{:<20} {} ({} injects)", s.id, s.title, s.injects.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut scenario = choose(&args)?;
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
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (report, summary) = runtime.block_on(async {
        let exercise = run::start(&scenario).await?;
        let _log = crate::logging::init(&exercise.scratch.0);
        let setup = Setup {
            station: scenario.trainee.clone(),
            language: Language::En,
            time_zone: "UTC".into(),
            peers: vec![(scenario.counterpart.clone(), "Europe/Moscow".into())],
            deadlines: exercise.trainee.config().deadlines.clone(),
            idle_lock: std::time::Duration::from_secs(24 * 3600),
            two_person_flash: false,
            exercise_mode: true,
            call_sign_login: true,
            keymap: Keymap::default().with_white_cell(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        };
        let started = Timestamp::now();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(run::WHITE_CELL_COMMANDS);
        let (view_tx, view_rx) =
            tokio::sync::watch::channel(crate::console::WhiteCellView::default());
        let link = crate::term::WhiteCellLink {
            commands: commands_tx,
            view: view_rx,
        };
        let engine = Engine::new(scenario.clone());
        let cell = {
            let ex_trainee = exercise.trainee.clone();
            let ex_cp = exercise.counterpart.clone();
            tokio::spawn(async move {
                let ex = run::Stations {
                    trainee: ex_trainee,
                    counterpart: ex_cp,
                };
                run::white_cell(
                    &ex,
                    engine,
                    run::Facilitator {
                        commands: commands_rx,
                        view: view_tx,
                    },
                    stop_rx,
                )
                .await
            })
        };
        let console = crate::term::run(
            crate::term::Backend::Local(exercise.trainee.clone()),
            setup,
            Some(link),
        )
        .await;
        let _ = stop_tx.send(true);
        let engine = cell.await.context("the white cell stopped unexpectedly")?;
        let elapsed = std::time::Duration::from_secs(
            Timestamp::now().duration_since(started).as_secs().max(0) as u64,
        );
        let actions = run::operator_actions(&exercise.trainee, started);
        let trainee = actions
            .iter()
            .find_map(|a| a.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(|| "(no log-in)".into());
        let report = engine.report(elapsed, &trainee, &date, &actions);
        let scores = engine.scores(elapsed, true);
        let met = scores
            .iter()
            .filter(|s| matches!(s.outcome, crate::tabletop::Outcome::Met { .. }))
            .count();
        exercise.trainee.shutdown().await;
        exercise.counterpart.shutdown().await;
        console.context("the terminal")?;
        Ok::<_, anyhow::Error>((
            report,
            format!("{met} of {} expectations met", scores.len()),
        ))
    })?;
    std::fs::write(&report_path, report)
        .with_context(|| format!("writing {}", report_path.display()))?;
    println!(
        "Exercise over: {summary}. After-action report: {}",
        report_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
