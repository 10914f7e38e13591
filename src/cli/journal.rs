//! `export` (a message, or its attachments decrypted: through a running
//! station, or from the journal) and `audit verify`, which reads the
//! journal without a running station.

use std::os::unix::fs::OpenOptionsExt as _;
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
use crate::station::api::{Command, Passed, Reply};
use crate::station::attachments;
use crate::station::client::Client;
use crate::store::{Journal, MessageRow};

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
    /// a taken name gets " (1)", " (2)" … Through the running station with
    /// --operator; without, from the journal with the station key.
    #[arg(long, value_name = "DIR")]
    pub attachments: Option<PathBuf>,
    /// Export through the running station, as this operator (passphrase
    /// asked, or read from $HOTLINE_PASSPHRASE_FILE): what an operator who
    /// is not the station's user does. The station writes into a file this
    /// command makes [default without --out: DATA_DIR/exports/ID.age if
    /// the data directory is yours, else ./ID.age]
    #[arg(long)]
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
    let (out, row) = match &args.operator {
        Some(operator) => export_sealed_through(&config, &args.id, args.out.clone(), operator)?,
        None => export_sealed_from_journal(&config, &args.id, args.out.clone())?,
    };
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

/// Where a sealed message goes without --out: DATA_DIR/exports/ID.age if
/// the data directory is this user's, else ./ID.age.
fn default_sealed_path(config: &Config, id: &crate::domain::MessageId) -> anyhow::Result<PathBuf> {
    let name = format!("{id}.age");
    if !super::owned_by_us(&config.station.data_dir) {
        return Ok(PathBuf::from(name));
    }
    let dir = config.station.data_dir.join("exports");
    fsutil::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(name))
}

fn refuse_existing(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} already exists; export never overwrites a file",
            out.display()
        );
    }
    Ok(())
}

/// The journal, read directly; one this user may not read says how an
/// operator exports instead.
fn journal_to_export_from(config: &Config) -> anyhow::Result<Journal> {
    Journal::open_read_only(&config.journal_path).with_context(|| {
        format!(
            "{} (an operator who is not the station's user exports through the running station: give --operator NAME)",
            config.journal_path.display()
        )
    })
}

fn export_sealed_from_journal(
    config: &Config,
    id: &str,
    out: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, MessageRow)> {
    let journal = journal_to_export_from(config)?;
    let row = journal.find(id)?;
    let sealed = journal.sealed(&row.id)?;
    let out = match out {
        Some(p) => p,
        None => default_sealed_path(config, &row.id)?,
    };
    refuse_existing(&out)?;
    fsutil::create_private(&out, &sealed).with_context(|| format!("writing {}", out.display()))?;
    Ok((out, row))
}

/// A connection to the running station with `operator` logged in, and
/// message `id` opened through it.
async fn opened_through(
    config: &Config,
    operator: &str,
    id: &str,
) -> anyhow::Result<(Client, Box<crate::domain::Message>)> {
    let mut client = connect(config).await?;
    log_in(&mut client, operator, OPERATOR_PASSPHRASE_ENV, false).await?;
    match client.call(&Command::Open { id: id.into() }).await? {
        Reply::Opened { message } => Ok((client, message)),
        other => Err(unexpected(&other)),
    }
}

/// A sealed message through the running station, which writes it into a
/// file this process made (removed again if the export fails).
fn export_sealed_through(
    config: &Config,
    id: &str,
    out: Option<PathBuf>,
    operator: &str,
) -> anyhow::Result<(PathBuf, MessageRow)> {
    runtime()?.block_on(async {
        let (mut client, message) = opened_through(config, operator, id).await?;
        let out = match out {
            Some(p) => p,
            None => default_sealed_path(config, &message.id)?,
        };
        refuse_existing(&out)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&out)
            .with_context(|| format!("creating {}", out.display()))?;
        let reply = client
            .send(Command::ExportSealed {
                id: message.id.to_string(),
                into: Passed::File(file),
            })
            .await;
        match reply {
            Ok(Reply::ExportedSealed { row, .. }) => Ok((out, *row)),
            other => {
                let _ = std::fs::remove_file(&out);
                match other {
                    Err(e) => Err(e.into()),
                    Ok(reply) => Err(unexpected(&reply)),
                }
            }
        }
    })
}

/// A message's attachments into `dir`: with an operator, through the
/// running station, which writes into files this process made; without,
/// straight from the journal with the station key.
fn export_attachments(
    config: &Config,
    id: &str,
    dir: &Path,
    operator: Option<&str>,
) -> anyhow::Result<Exported> {
    let Some(operator) = operator else {
        return export_from_journal(config, id, dir);
    };
    runtime()?.block_on(async {
        let (mut client, message) = opened_through(config, operator, id).await?;
        let (export, command) = AttachmentsExport::prepare(dir, &message)?;
        let reply = crate::cli::with_progress(client.send(command), || {
            let (done, total) = export.progress();
            Some(format!(
                "export: {:.1} of {:.1} MiB written",
                done as f64 / (1 << 20) as f64,
                total as f64 / (1 << 20) as f64
            ))
        })
        .await;
        Ok(export.finish(reply)?)
    })
}

fn export_from_journal(config: &Config, id: &str, dir: &Path) -> anyhow::Result<Exported> {
    let journal = journal_to_export_from(config)?;
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
        attachments::export_into(&config.station.data_dir, &keys.identities(), &rows, files)?;
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
