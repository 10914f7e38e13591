//! The `hotline` command line: one clap definition for help and parsing,
//! and one file per group of commands.

mod backup;
mod check;
mod console;
mod identity;
mod journal;
mod people;
pub mod rekey;
mod shell;
mod station;
mod tabletop;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::crypto::{StationKeys, read_key_file};
use crate::passphrase::{self, KEY_PASSPHRASE_ENV};

#[derive(Parser, Debug)]
#[command(
    name = "hotline",
    version,
    about = "Duty-officer console for a government-to-government crisis link",
    long_about = "Duty-officer console for a government-to-government crisis link.\n\n\
        Start with `hotline init --station NAME` to create a station, exchange station cards \
        with your peers (`hotline card`, `hotline peer add`), and add operators \
        (`hotline operator add NAME`). `hotline check` validates everything."
)]
pub struct Cli {
    /// The station's config file [default: $HOTLINE_CONFIG, else ./operator.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the duty console (the default when operator.toml is present)
    Console,
    /// Run a training exercise with a simulated counterpart; needs no setup
    Tabletop(tabletop::TabletopArgs),
    /// Create a station: secret key file, public station card and a commented operator.toml
    Init(identity::InitArgs),
    /// Print this station's public card (give it to peers out of band)
    Card,
    /// Write this station's secret age identity in age's own format (for `age -d -i`)
    Identity(identity::IdentityArgs),
    /// Make new station keys (signing, age, post-quantum); the old ones are
    /// kept, and each peer is sent a notice to confirm the new fingerprint
    Rekey(rekey::RekeyArgs),
    /// Manage peer stations
    #[command(subcommand)]
    Peer(people::PeerCommand),
    /// Manage cleared operators
    #[command(subcommand)]
    Operator(people::OperatorCommand),
    /// Validate the config, key files, templates and scenarios; list every problem
    Check(check::CheckArgs),
    /// Write a stored message out as a standard age file
    Export(journal::ExportArgs),
    /// Work with the audit log
    #[command(subcommand)]
    Audit(journal::AuditCommand),
    /// Run this station headless: the link, the journal and the control socket
    Serve,
    /// Release a message to a peer through the running station
    Send(station::SendArgs),
    /// List received messages
    Inbox(station::ListArgs),
    /// List sent messages and their state (queued, sent, received, acknowledged, refused)
    Outbox(station::ListArgs),
    /// Acknowledge a received message as a named operator
    Ack(station::OperatorArgs),
    /// Cancel a message that is still queued (audited)
    Cancel(station::OperatorArgs),
    /// Show the station's links, link tests and unacknowledged counts
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the station's events as JSON lines until interrupted
    Watch,
    /// Run a signed link test with a peer now
    LinkTest {
        /// The peer station
        peer: String,
    },
    /// Write a backup of the running station's journal and files, sealed
    /// with age, through its control socket (audited)
    Backup(backup::BackupArgs),
    /// Put a backup back into a stopped station with an empty data
    /// directory, after checking its signature and its audit log
    Restore(backup::RestoreArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff), or write one per command with --out
    Man(shell::ManArgs),
}

/// An error and its causes on one line, each cause once: many errors
/// already say their cause, and the chain would say it again.
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Runs one command. Errors are for `main` to print.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = Config::locate(cli.config.as_deref());
    match cli.command {
        None if config_path.exists() => console::console(&config_path),
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            crate::note!(
                "\nNo {} here: create a station with `hotline init --station NAME`, or pass --config.",
                config_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Console) => console::console(&config_path),
        Some(Command::Tabletop(args)) => tabletop::tabletop(&config_path, args),
        Some(Command::Init(args)) => identity::init(args),
        Some(Command::Card) => identity::card(&config_path),
        Some(Command::Identity(args)) => identity::identity(&config_path, args),
        Some(Command::Rekey(args)) => rekey::rekey(&config_path, args),
        Some(Command::Peer(cmd)) => people::peer(&config_path, cmd),
        Some(Command::Operator(cmd)) => people::operator(&config_path, cmd),
        Some(Command::Check(args)) => check::check(&config_path, args),
        Some(Command::Export(args)) => journal::export(&config_path, args),
        Some(Command::Audit(cmd)) => journal::audit(&config_path, cmd),
        Some(Command::Serve) => station::serve(&config_path),
        Some(Command::Send(args)) => station::send(&config_path, args),
        Some(Command::Inbox(args)) => {
            station::list(&config_path, crate::store::Direction::In, args)
        }
        Some(Command::Outbox(args)) => {
            station::list(&config_path, crate::store::Direction::Out, args)
        }
        Some(Command::Ack(args)) => station::act(&config_path, args, station::Act::Acknowledge),
        Some(Command::Cancel(args)) => station::act(&config_path, args, station::Act::Cancel),
        Some(Command::Status { json }) => station::status(&config_path, json),
        Some(Command::Watch) => station::watch(&config_path),
        Some(Command::LinkTest { peer }) => station::link_test(&config_path, &peer),
        Some(Command::Backup(args)) => backup::backup(&config_path, args),
        Some(Command::Restore(args)) => backup::restore(&config_path, args),
        Some(Command::Completions(args)) => shell::completions(args),
        Some(Command::Man(args)) => shell::man(args),
    }
}

/// Whether this user runs the station of `data_dir`: it is this user's, or
/// not made yet.
pub(super) fn owned_by_us(data_dir: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(data_dir) {
        Ok(m) => m.uid() == crate::fsutil::euid(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Loads and validates the config, printing its warnings to stderr.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let config = Config::load(path).map_err(|problems| anyhow::anyhow!("{problems}"))?;
    for w in &config.warnings {
        crate::note!("warning: {w}");
    }
    Ok(config)
}

/// Opens the station's key file, asking for its passphrase if it has one.
pub fn load_keys(config: &Config) -> anyhow::Result<StationKeys> {
    let keys = read_key_file(&config.station.key_file, || {
        passphrase::obtain(KEY_PASSPHRASE_ENV, "Passphrase for the station key: ")
    })?;
    if keys.name != config.station.name {
        anyhow::bail!(
            "{}: this key file belongs to station {}, but {} configures station {}",
            config.station.key_file.display(),
            keys.name,
            config.path.display(),
            config.station.name
        );
    }
    Ok(keys)
}

/// Asks a yes/no question on the terminal (or standard input).
fn confirm(question: &str) -> anyhow::Result<bool> {
    crate::cli::note_text(format_args!("{question} [yes/no] "));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// `println!` for what a command prints: where the reader went away
/// (`hotline inbox | head -3`) the command ends quietly, as other Unix
/// tools do, instead of panicking on the broken pipe.
#[macro_export]
macro_rules! out {
    () => {
        $crate::cli::out_text(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out_text(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` for what a command tells the operator beside its output
/// (questions, warnings, progress, the final error): made inert like
/// [`out!`], and never a panic when standard error has gone away.
#[macro_export]
macro_rules! note {
    () => {
        $crate::cli::note_text(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::note_text(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to standard error (see [`note!`]), each line made inert. A
/// write that fails is dropped: there is nowhere left to say so.
/// Runs `work`, and on a terminal shows `line()` as a progress line every
/// 250 ms until it is done.
pub(super) async fn with_progress<T>(
    work: impl std::future::Future<Output = T>,
    line: impl Fn() -> Option<String>,
) -> T {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    tokio::pin!(work);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
    let mut shown = false;
    let done = loop {
        tokio::select! {
            done = &mut work => break done,
            _ = ticks.tick() => if let Some(text) = line() {
                progress_line(format_args!("{text}"));
                shown = true;
            },
        }
    };
    if shown {
        note_text(format_args!("\n"));
    }
    done
}

/// A progress line on the terminal: it replaces the one before (carriage
/// return, erase to the end of the line); [`note_text`] with a newline
/// ends it.
pub fn progress_line(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = crate::sanitize::inert(&text.to_string());
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r{text}\x1b[K").and_then(|()| stderr.flush());
}

pub fn note_text(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = crate::sanitize::inert_lines(&text.to_string()).join("\n");
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
}

/// Writes command output to stdout (see [`out!`]). Whatever a command
/// prints may hold text from outside (a card, a config value, a message
/// field), so every line is made inert on the way out: no escape sequence
/// or control character reaches the terminal as itself.
pub fn out_text(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = crate::sanitize::inert_lines(&text.to_string()).join("\n");
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            crate::note!("hotline: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}
