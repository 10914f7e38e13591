//! `hotline check`: validates everything a station reads — config, key file,
//! station card, templates, scenarios and the journal — and lists every
//! problem, not just the first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::crypto::keyfile::is_protected;
use crate::crypto::{StationCard, read_key_file};
use crate::fsutil;
use crate::passphrase::{self, KEY_PASSPHRASE_ENV};
use crate::store::Journal;
use crate::templates::Catalog;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also check the template files in this directory (for template authors)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Also check the scenario files in this directory (for exercise writers)
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Also check this console catalogue against the English one (for
    /// translators: every key, the same placeholders)
    #[arg(long, value_name = "FILE")]
    pub catalogue: Option<PathBuf>,
}

pub fn check(config_path: &Path, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    match Config::load(config_path) {
        Err(errors) => problems.extend(errors.0.iter().map(ToString::to_string)),
        Ok(config) => {
            notes.extend(config.warnings.iter().map(|w| format!("warning: {w}")));
            if let Err(p) = crate::console::keymap::from_config(&config.console, config_path) {
                problems.extend(p);
            }
            check_station(&config, &mut problems, &mut notes);
            notes.extend(unreviewed(config.station.language));
        }
    }

    problems.extend(
        crate::lang::shipped_problems()
            .iter()
            .map(ToString::to_string),
    );
    notes.push(format!(
        "console languages: {} built in",
        crate::lang::shipped()
            .iter()
            .map(|c| format!("{} ({})", c.language, c.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(file) = &args.catalogue {
        check_catalogue(file, &mut problems, &mut notes);
    }

    problems.extend(Catalog::builtin_problems().iter().map(ToString::to_string));
    notes.push(format!(
        "templates: {} built in",
        Catalog::builtin().current().len()
    ));
    if let Some(dir) = &args.templates {
        check_template_dir(dir, &mut problems, &mut notes);
    }
    let (scenarios, scenario_problems) = crate::tabletop::scenario::builtin();
    problems.extend(scenario_problems.iter().map(ToString::to_string));
    notes.push(format!("scenarios: {} built in", scenarios.len()));
    if let Some(dir) = &args.scenarios {
        check_scenario_dir(dir, &mut problems, &mut notes);
    }

    for n in &notes {
        crate::out!("{n}");
    }
    if problems.is_empty() {
        crate::out!("ok: no problems found");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            crate::out!("error: {p}");
        }
        crate::out!("{} problem(s) found", problems.len());
        Ok(ExitCode::from(1))
    }
}

fn check_station(config: &Config, problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let key_file = &config.station.key_file;
    let read = fsutil::read_private(key_file, 1 << 20);
    let protected = read.as_ref().is_ok_and(|b| is_protected(b));
    let key_env_set = std::env::var_os(KEY_PASSPHRASE_ENV).is_some();
    if protected && !key_env_set {
        match read {
            Ok(_) => notes.push(format!(
                "{}: passphrase-protected; not opened (set ${KEY_PASSPHRASE_ENV} to check its content)",
                key_file.display()
            )),
            Err(e) => problems.push(e.to_string()),
        }
    } else {
        match read_key_file(key_file, || passphrase::obtain(KEY_PASSPHRASE_ENV, "")) {
            Err(e) => problems.push(format!("{e}{}", missing_hint(key_file))),
            Ok(keys) if keys.name != config.station.name => problems.push(format!(
                "{}: belongs to station {}, but the config names {}",
                key_file.display(),
                keys.name,
                config.station.name
            )),
            Ok(keys) => {
                notes.push(format!(
                    "key file: ok, fingerprint {}",
                    keys.public().fingerprint()
                ));
                if config.station.card.exists() {
                    match StationCard::load(&config.station.card) {
                        Err(e) => problems.push(e.to_string()),
                        Ok((card, _)) if card.fingerprint != keys.public().fingerprint() => problems.push(format!(
                            "{}: the card's keys are not this station's keys; regenerate it with `hotline card > {}`",
                            config.station.card.display(),
                            config.station.card.display()
                        )),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    if config.operators.is_empty() {
        notes.push("warning: no operators yet; add one with `hotline operator add NAME`".into());
    }
    if config.peers.is_empty() {
        notes.push("warning: no peers yet; add one with `hotline peer add CARD.toml`".into());
    }
    if config.journal_path.exists() {
        match Journal::open_read_only(&config.journal_path) {
            Ok(_) => notes.push(format!("journal: ok ({})", config.journal_path.display())),
            Err(e) => problems.push(format!("{}: {e}", config.journal_path.display())),
        }
    }
}

/// Warnings for a live station working in `lang` where a person has not
/// checked the texts: the console's, and each template's (the original a
/// sender signs is written in the sender's language).
fn unreviewed(lang: crate::domain::Language) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = crate::lang::find(lang)
        && !c.reviewed
    {
        out.push(format!(
            "warning: the console's {} texts ({}) are a machine translation nobody has reviewed; have a reader of {} check them, then set reviewed = true",
            c.name,
            c.path.display(),
            c.language
        ));
    }
    let templates: Vec<&str> = Catalog::builtin()
        .current()
        .into_iter()
        .filter(|t| {
            let used = t.rendered_in(lang);
            t.languages
                .iter()
                .any(|l| l.language == used && !l.reviewed)
        })
        .map(|t| t.id.as_str())
        .collect();
    if !templates.is_empty() {
        out.push(format!(
            "warning: {} template(s) are in {} by a machine translation nobody has reviewed, and messages released here are signed in it: {}",
            templates.len(),
            crate::lang::name(lang),
            templates.join(", ")
        ));
    }
    out
}

fn check_catalogue(file: &Path, problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let text = match crate::fsutil::read_regular_text(file, crate::fsutil::MAX_TEXT_FILE) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("{}: {e}", file.display()));
            return;
        }
    };
    let Some(english) = crate::lang::shipped().first() else {
        return;
    };
    match crate::lang::Catalogue::parse(file, &text) {
        Err(p) => problems.extend(p.iter().map(ToString::to_string)),
        Ok(c) => {
            let missing = c.completeness(english);
            if missing.is_empty() {
                notes.push(format!(
                    "{}: {} ({}), complete: {} texts{}",
                    file.display(),
                    c.language,
                    c.name,
                    c.keys().len(),
                    if c.reviewed { "" } else { ", not reviewed" }
                ));
            }
            problems.extend(missing.iter().map(ToString::to_string));
        }
    }
}

fn missing_hint(path: &Path) -> &'static str {
    if path.exists() {
        ""
    } else {
        " (create the station with `hotline init`)"
    }
}

fn check_template_dir(dir: &Path, problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let mut sources = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            match crate::fsutil::read_regular_text(&path, crate::fsutil::MAX_TEXT_FILE) {
                Ok(text) => sources.push((path, text)),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
    let (catalog, found) =
        Catalog::from_sources(sources.iter().map(|(p, t)| (p.clone(), t.as_str())));
    problems.extend(found.iter().map(ToString::to_string));
    notes.push(format!(
        "{}: {} template(s) valid",
        dir.display(),
        catalog.current().len()
    ));
}

fn check_scenario_dir(dir: &Path, problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let mut valid = 0;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") || crate::tabletop::msel::is_msel(p))
        .collect();
    paths.sort();
    for path in paths {
        match crate::fsutil::read_regular_text(&path, crate::fsutil::MAX_TEXT_FILE) {
            Ok(text) => match crate::tabletop::msel::parse_any(&path, &text, Catalog::builtin()) {
                Ok(_) => valid += 1,
                Err(p) => problems.extend(p.iter().map(ToString::to_string)),
            },
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    notes.push(format!("{}: {valid} scenario(s) valid", dir.display()));
}
