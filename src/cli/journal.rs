//! `export` (a message, or its attachments decrypted) and `audit verify`:
//! reading the journal without a running station.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::load_config;
use crate::crypto::StationCard;
use crate::crypto::keys::parse_signing_key;
use crate::fsutil;
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
    /// a taken name gets " (1)", " (2)" … Needs the station key.
    #[arg(long, value_name = "DIR")]
    pub attachments: Option<PathBuf>,
}

pub fn export(config_path: &Path, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let journal = Journal::open_read_only(&config.journal_path)?;
    let row = journal.find(&args.id)?;
    if let Some(dir) = args.attachments {
        let rows = journal.attachments(&row.id, row.direction)?;
        if rows.is_empty() {
            bail!("message {} has no attachments", row.id);
        }
        let keys = super::load_keys(&config)?;
        let (written, skipped) =
            attachments::export(&config.station.data_dir, &keys.identities(), &rows, &dir)
                .map_err(anyhow::Error::msg)?;
        for p in &written {
            crate::out!("{}", p.display());
        }
        for s in &skipped {
            crate::note!("not exported: {s}");
        }
        return Ok(if skipped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
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
