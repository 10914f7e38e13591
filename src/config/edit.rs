//! Changes to operator.toml made by commands (`init`, `operator add`,
//! `peer add`). They edit the document in place with toml_edit, so every
//! comment the operator wrote is kept, and write it back atomically.

use std::net::SocketAddr;
use std::path::Path;

use toml_edit::{Array, DocumentMut, Item, Table, value};

use crate::crypto::keys::signing_key_text;
use crate::crypto::{PeerKeys, StationCard};
use crate::domain::{Language, OperatorName, StationName};
use crate::fsutil;

/// The committed, fully commented example. `hotline init` starts from it.
const EXAMPLE: &str = include_str!("../../operator.toml");

/// Why operator.toml could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Conflict { path: String, message: String },
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
}

/// The example config, set up for a new station.
pub fn example_for(
    name: &StationName,
    language: Language,
    time_zone: &str,
    listen: SocketAddr,
    addresses: &[SocketAddr],
    control: &Control,
) -> String {
    let mut doc: DocumentMut = EXAMPLE.parse().unwrap_or_default();
    let station = &mut doc["station"];
    station["name"] = value(name.as_str());
    station["language"] = value(language.code());
    station["time_zone"] = value(time_zone);
    station["listen"] = value(listen.to_string());
    let mut arr = Array::new();
    for a in addresses {
        arr.push(a.to_string());
    }
    station["addresses"] = value(arr);
    if control.socket.is_some() || control.group.is_some() {
        let mut table = toml_edit::Table::new();
        if let Some(socket) = &control.socket {
            table["socket"] = value(socket.display().to_string());
        }
        if let Some(group) = &control.group {
            table["group"] = value(group.as_str());
        }
        doc["control"] = Item::Table(table);
    }
    doc.to_string()
}

/// What `hotline init` writes into `[control]`, if anything.
#[derive(Debug, Default)]
pub struct Control {
    pub socket: Option<std::path::PathBuf>,
    pub group: Option<String>,
}

fn load(path: &Path) -> Result<DocumentMut, EditError> {
    let shown = path.display().to_string();
    let text =
        crate::fsutil::read_regular_text(path, crate::fsutil::MAX_TEXT_FILE).map_err(|cause| {
            EditError::Io {
                path: shown.clone(),
                cause,
            }
        })?;
    text.parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse {
            path: shown,
            message: e.to_string(),
        })
}

fn save(path: &Path, doc: &DocumentMut) -> Result<(), EditError> {
    fsutil::replace_atomic(path, doc.to_string().as_bytes(), 0o600).map_err(|cause| EditError::Io {
        path: path.display().to_string(),
        cause,
    })
}

fn array_of_tables<'d>(
    doc: &'d mut DocumentMut,
    key: &str,
    path: &Path,
) -> Result<&'d mut toml_edit::ArrayOfTables, EditError> {
    if doc.get(key).is_none() {
        doc.insert(key, Item::ArrayOfTables(Default::default()));
    }
    doc[key]
        .as_array_of_tables_mut()
        .ok_or_else(|| EditError::Conflict {
            path: path.display().to_string(),
            message: format!("`{key}` must be written as [[{key}]] tables"),
        })
}

fn has_name(tables: &toml_edit::ArrayOfTables, name: &str) -> bool {
    tables
        .iter()
        .any(|t| t.get("name").and_then(|v| v.as_str()) == Some(name))
}

/// Adds an operator, or replaces the passphrase hash of an existing one.
/// Returns whether the operator was new.
pub fn add_operator(
    path: &Path,
    name: &OperatorName,
    clearance: &str,
    hash: &str,
) -> Result<bool, EditError> {
    let mut doc = load(path)?;
    let ops = array_of_tables(&mut doc, "operators", path)?;
    let existing = ops
        .iter_mut()
        .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(name.as_str()));
    let new = existing.is_none();
    match existing {
        Some(t) => {
            t["passphrase_hash"] = value(hash);
            t["clearance"] = value(clearance);
        }
        None => {
            let mut t = Table::new();
            t["name"] = value(name.as_str());
            t["clearance"] = value(clearance);
            t["passphrase_hash"] = value(hash);
            ops.push(t);
        }
    }
    save(path, &doc)?;
    Ok(new)
}

/// A `[[peers]]` table naming a peer by its keys, as TOML text (for
/// configs written by programs: the tabletop's scratch stations, tests).
pub fn peer_table(keys: &PeerKeys) -> String {
    let pq = keys
        .pq
        .as_ref()
        .map(|r| format!("pq_recipient = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        "[[peers]]\nname = \"{}\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\n{pq}",
        keys.name,
        signing_key_text(&keys.signing),
        keys.age
    )
}

/// Adds a peer from its checked card, with its keys written inline so the
/// config does not depend on where the card file was.
pub fn add_peer(path: &Path, card: &StationCard) -> Result<(), EditError> {
    let mut doc = load(path)?;
    if doc
        .get("station")
        .and_then(|s| s.get("name"))
        .and_then(|n| n.as_str())
        == Some(card.station.as_str())
    {
        return Err(EditError::Conflict {
            path: path.display().to_string(),
            message: format!("{} is this station itself, not a peer", card.station),
        });
    }
    let peers = array_of_tables(&mut doc, "peers", path)?;
    if has_name(peers, card.station.as_str()) {
        return Err(EditError::Conflict {
            path: path.display().to_string(),
            message: format!(
                "peer {} is already configured; remove its [[peers]] table first if its keys really changed",
                card.station
            ),
        });
    }
    let mut t = Table::new();
    t["name"] = value(card.station.as_str());
    t["signing_key"] = value(&card.signing_key);
    t["age_recipient"] = value(&card.age_recipient);
    if let Some(pq) = &card.pq_recipient {
        t["pq_recipient"] = value(pq);
    }
    t["fingerprint"] = value(&card.fingerprint);
    if let Some(primary) = card.addresses.first() {
        t["primary"] = value(primary);
    }
    if let Some(backup) = card.addresses.get(1) {
        t["backup"] = value(backup);
    }
    if let Some(tz) = &card.time_zone {
        t["time_zone"] = value(tz);
    }
    peers.push(t);
    save(path, &doc)
}
