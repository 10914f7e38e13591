//! `export` (a message, or its attachments decrypted: through a running
//! station, or from the journal) and `audit verify`, which reads the
//! journal without a running station.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::load_config;
use super::station::{connect, log_in, runtime, unexpected};
use crate::config::Config;
use crate::crypto::StationCard;
use crate::crypto::keys::parse_signing_key;
use crate::exports::{AttachmentsExport, Exported, Pending};
use crate::fsutil;
use crate::passphrase::OPERATOR_PASSPHRASE_ENV;
use crate::station::api::{ApiError, Command, Reply};
use crate::station::attachments;
use crate::store::Journal;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The message id (or its first 8 or more characters)
    pub id: String,
    /// Where to write the .age file [default: DATA_DIR/exports/ID.age]
    #[arg(long, value_name = "FILE", conflicts_with = "attachments")]
    pub out: Option<PathBuf>,
    /// Write the message's attachments into DIR instead, decrypted and
    /// checked against their signed SHA-256. Names are made safe (no
    /// directories, no control characters) and no file is ever replaced:
    /// a taken name gets " (1)", " (2)" … With a station running, it goes
    /// through the station (give --operator); with none, it needs the
    /// station key.
    #[arg(long, value_name = "DIR")]
    pub attachments: Option<PathBuf>,
    /// The operator exporting attachments through a running station
    /// (passphrase asked, or read from $HOTLINE_PASSPHRASE_FILE)
    #[arg(long, requires = "attachments")]
    pub operator: Option<String>,
}

pub fn export(config_path: &Path, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    if let Some(dir) = &args.attachments {
        let exported = export_attachments(&config, &args.id, dir, args.operator.as_deref())?;
        for p in &exported.written {
            crate::out!("{}", p.display());
        }
        for s in &exported.skipped {
            crate::note!("not exported: {s}");
        }
        return Ok(if exported.skipped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let journal = Journal::open_read_only(&config.journal_path)?;
    let row = journal.find(&args.id)?;
    let sealed = journal.sealed(&row.id)?;
    let out = match args.out {
        Some(p) => p,
        None => {
            let dir = config.station.data_dir.join("exports");
            fsutil::create_private_dir(&dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            dir.join(format!("{}.age", row.id))
        }
    };
    if out.exists() {
        bail!(
            "{} already exists; export never overwrites a file",
            out.display()
        );
    }
    fsutil::create_private(&out, &sealed).with_context(|| format!("writing {}", out.display()))?;
    crate::out!("{}", out.display());
    crate::note!(
        "Exported message {} ({} {} serial {}). Decrypt it with any age tool, e.g. \
         `hotline identity --age --out id.txt && age -d -i id.txt {}`.",
        row.id,
        row.precedence,
        if row.exercise { "EXERCISE" } else { "" },
        row.serial,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A message's attachments into `dir`: through the running station, which
/// writes into files this process made; or, with none running, straight
/// from the journal with the station key.
fn export_attachments(
    config: &Config,
    id: &str,
    dir: &Path,
    operator: Option<&str>,
) -> anyhow::Result<Exported> {
    let runtime = runtime()?;
    let mut client = match runtime.block_on(connect(config)) {
        Ok(client) => client,
        Err(ApiError::NotRunning { .. }) => return export_from_journal(config, id, dir),
        Err(e) => return Err(e.into()),
    };
    let Some(operator) = operator else {
        bail!(
            "station {} is running: attachments are exported through it by a logged-in operator; give --operator NAME",
            config.station.name
        );
    };
    runtime.block_on(async {
        log_in(&mut client, operator, OPERATOR_PASSPHRASE_ENV, false).await?;
        let message = match client.call(&Command::Open { id: id.into() }).await? {
            Reply::Opened { message } => message,
            other => return Err(unexpected(&other)),
        };
        let (export, command) = AttachmentsExport::prepare(dir, &message)?;
        let reply = {
            let sent = client.send(command);
            tokio::pin!(sent);
            let terminal = std::io::stderr().is_terminal();
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tokio::select! {
                    reply = &mut sent => break reply,
                    _ = ticks.tick() => if terminal {
                        let (done, total) = export.progress();
                        crate::cli::progress_line(format_args!(
                            "export: {:.1} of {:.1} MiB written",
                            done as f64 / (1 << 20) as f64,
                            total as f64 / (1 << 20) as f64
                        ));
                    },
                }
            }
        };
        if std::io::stderr().is_terminal() {
            crate::cli::note_text(format_args!("\n"));
        }
        Ok(export.finish(reply)?)
    })
}

fn export_from_journal(config: &Config, id: &str, dir: &Path) -> anyhow::Result<Exported> {
    let journal = Journal::open_read_only(&config.journal_path)?;
    let row = journal.find(id)?;
    let rows = journal.attachments(&row.id, row.direction)?;
    if rows.is_empty() {
        bail!("message {} has no attachments", row.id);
    }
    let keys = super::load_keys(config)?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let (pending, files) = Pending::create(dir, &names)
        .with_context(|| format!("creating the export's files in {}", dir.display()))?;
    let (written, skipped) =
        attachments::export_into(&config.station.data_dir, &keys.identities(), &rows, files)
            .map_err(anyhow::Error::msg)?;
    let written = pending
        .finish(&written)
        .with_context(|| format!("naming the exported files in {}", dir.display()))?;
    Ok(Exported {
        dir: dir.to_path_buf(),
        written,
        skipped,
    })
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's hash chain against its last signed checkpoint,
    /// and against heads a peer recorded of it
    Verify {
        /// A head a peer recorded of this station's log (from that peer's
        /// `hotline audit heads`), as SEQ:HASH; repeatable. A rewritten or
        /// truncated log does not contain it.
        #[arg(long = "head", value_name = "SEQ:HASH")]
        heads: Vec<String>,
    },
    /// Print the newest audit head each peer declared in its link tests, to
    /// read back to that peer (who checks it with `audit verify --head`)
    Heads,
}

pub fn audit(config_path: &Path, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let heads = match cmd {
        AuditCommand::Heads => return peer_heads(config_path),
        AuditCommand::Verify { heads } => heads,
    };
    let config = load_config(config_path)?;
    let station_key = match StationCard::load(&config.station.card) {
        Ok((card, _)) => parse_signing_key(&card.signing_key).map_err(anyhow::Error::msg)?,
        Err(_) => super::load_keys(&config)?.signing.verifying_key(),
    };
    let journal = Journal::open_read_only(&config.journal_path)?;
    // Damage to the tables themselves (a column's type changed, a table
    // gone) is a verdict too: the log cannot be trusted.
    let verdict = journal
        .verify_audit(&station_key)
        .and_then(|v| journal.message_count().map(|messages| (v, messages)));
    let (verdict, messages) = match verdict {
        Ok(v) => v,
        Err(e) => {
            crate::note!(
                "audit log: FAILED: the journal's tables are damaged ({e}); it was tampered with or corrupted"
            );
            return Ok(ExitCode::from(2));
        }
    };
    match verdict {
        // Every stored message was audited (released or received) in the
        // transaction that stored it: fewer entries than messages means
        // entries were deleted.
        Ok(v) if v.entries < messages => {
            crate::note!(
                "audit log: FAILED: {} entries for {messages} stored messages, each of which was audited when stored; the log was shortened or deleted",
                v.entries
            );
            Ok(ExitCode::from(2))
        }
        // The station checkpoints the head in the same transaction as every
        // batch, so entries past the newest checkpoint mean checkpoints were
        // removed, perhaps to hide a rewrite.
        Ok(v) if v.entries > v.checkpoint.unwrap_or(0) => {
            crate::note!(
                "audit log: FAILED: entries {} to {} are not covered by a signed checkpoint; \
                 checkpoints were removed, or the log was written without the station key",
                v.checkpoint.unwrap_or(0) + 1,
                v.entries
            );
            Ok(ExitCode::from(2))
        }
        Ok(v) => {
            for head in &heads {
                let Some((seq, hash)) = head.split_once(':').and_then(|(s, h)| {
                    Some((s.trim().parse::<u64>().ok()?, h.trim().to_ascii_lowercase()))
                }) else {
                    bail!(
                        "--head `{head}`: write SEQ:HASH, as `hotline audit heads` prints it at the peer"
                    );
                };
                match journal.audit_hash_at(seq)? {
                    Some(ours) if ours == hash => crate::out!("peer-recorded head {seq}: matches"),
                    Some(_) => {
                        crate::note!(
                            "audit log: FAILED: entry {seq} differs from the head the peer recorded; the log was rewritten"
                        );
                        return Ok(ExitCode::from(2));
                    }
                    None => {
                        crate::note!(
                            "audit log: FAILED: the peer recorded entry {seq}, but the log ends at entry {}; it was truncated",
                            v.entries
                        );
                        return Ok(ExitCode::from(2));
                    }
                }
            }
            match (&v.head, v.checkpoint) {
                (Some(h), Some(cp)) => crate::out!(
                    "audit log: {} entries, chain intact; head {} {}; last signed checkpoint at entry {cp} verifies",
                    v.entries,
                    h.seq,
                    h.hash
                ),
                _ => crate::out!("audit log: empty"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(fault) => {
            crate::note!("audit log: FAILED: {fault}");
            Ok(ExitCode::from(2))
        }
    }
}

fn peer_heads(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let journal = Journal::open_read_only(&config.journal_path)?;
    for peer in &config.peers {
        match journal.peer_head(peer.keys.name.as_str())? {
            Some(h) => crate::out!("{} {}:{}", peer.keys.name, h.seq, h.hash),
            None => crate::out!("{} (no link test recorded yet)", peer.keys.name),
        }
    }
    Ok(ExitCode::SUCCESS)
}
