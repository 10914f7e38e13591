//! The station's secret key file: Ed25519 signing key plus age identities
//! (post-quantum and classic), as owner-only TOML, optionally wrapped in
//! age's passphrase (scrypt) armor. A key file from before post-quantum
//! identities has no `pq_identity`, and still opens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::age_io::{self, AgeError};
use super::keys::{RetiredKeys, StationKeys};
use crate::domain::{StationName, stamp};
use crate::fsutil::{self, PermissionError};

/// The most scrypt work (2^20) we accept when opening a protected key file;
/// more would let a crafted file stall us for minutes.
const MAX_SCRYPT_WORK_FACTOR: u8 = 20;
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a key file could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(transparent)]
    Permission(#[from] PermissionError),
    #[error(
        "{path}: already exists; hotline never overwrites a key. Move it away first if you mean to replace it"
    )]
    Exists { path: PathBuf },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: wrong passphrase, or the file is damaged")]
    WrongPassphrase { path: PathBuf },
    #[error("{path}: the key file is protected by a passphrase, and none was given: {reason}")]
    NoPassphrase { path: PathBuf, reason: String },
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("could not encrypt the key file: {0}")]
    Encrypt(String),
}

#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct SecretToml {
    #[zeroize(skip)]
    station: StationName,
    signing_key: String,
    age_identity: String,
    #[serde(default)]
    pq_identity: Option<String>,
    #[serde(default)]
    retired: Vec<RetiredToml>,
}

/// Keys replaced by `hotline rekey`, kept to open what was sealed to them.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct RetiredToml {
    signing_key: String,
    age_identity: String,
    #[serde(default)]
    pq_identity: Option<String>,
    retired_at: String,
    #[serde(default)]
    compromised_since: Option<String>,
}

/// The `signing_key`, `age_identity` and `pq_identity` lines of one set
/// of keys.
fn key_lines(
    signing: &SigningKey,
    age: &crate::crypto::classic::ClassicIdentity,
    pq: Option<&age::pq::Identity>,
) -> Zeroizing<String> {
    let signing = Zeroizing::new(B64.encode(signing.to_bytes()));
    let identity = age.to_string();
    let pq = pq.map(|pq| pq.to_string());
    let pq_line = Zeroizing::new(
        pq.as_ref()
            .map(|pq| format!("pq_identity = \"{}\"\n", pq.expose_secret()))
            .unwrap_or_default(),
    );
    Zeroizing::new(format!(
        "signing_key = \"ed25519-secret:{}\"\n\
         age_identity = \"{}\"\n{}",
        signing.as_str(),
        identity.expose_secret(),
        pq_line.as_str()
    ))
}

fn to_text(keys: &StationKeys) -> Zeroizing<String> {
    let mut text = Zeroizing::new(format!(
        "# hotline station secret key for {}. Never share it; keep it owner-only (chmod 600).\n\
         station = \"{}\"\n",
        keys.name, keys.name,
    ));
    text.push_str(&key_lines(&keys.signing, &keys.age, keys.pq.as_ref()));
    for r in &keys.retired {
        text.push_str(
            "\n# Replaced by `hotline rekey`; kept to open and verify what came before.\n[[retired]]\n",
        );
        text.push_str(&key_lines(&r.signing, &r.age, r.pq.as_ref()));
        text.push_str(&format!("retired_at = \"{}\"\n", stamp(r.retired_at)));
        if let Some(since) = r.compromised_since {
            text.push_str(&format!("compromised_since = \"{}\"\n", stamp(since)));
        }
    }
    text
}

/// Writes a new key file, owner-only from the first byte. With a passphrase,
/// the content is encrypted with age's scrypt recipient (armored).
pub fn write_key_file(
    path: &Path,
    keys: &StationKeys,
    passphrase: Option<SecretString>,
) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists {
            path: path.to_path_buf(),
        });
    }
    let text = to_text(keys);
    let bytes: Zeroizing<Vec<u8>> = match passphrase {
        None => Zeroizing::new(text.as_bytes().to_vec()),
        Some(pass) => Zeroizing::new(armor_with_passphrase(text.as_bytes(), pass)?),
    };
    fsutil::create_private(path, &bytes).map_err(|cause| KeyFileError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

fn armor_with_passphrase(plain: &[u8], pass: SecretString) -> Result<Vec<u8>, KeyFileError> {
    use age::armor::{ArmoredWriter, Format};
    let enc = age::Encryptor::with_user_passphrase(pass);
    let mut out = Vec::new();
    let armored = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor)
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    let mut w = enc
        .wrap_output(armored)
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    w.write_all(plain)
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    w.finish()
        .and_then(|armored| armored.finish())
        .map_err(|e| KeyFileError::Encrypt(e.to_string()))?;
    Ok(out)
}

/// Replaces the key file at `path` with `keys` (after `hotline rekey`),
/// atomically and owner-only, protected by `passphrase` when given.
pub fn replace_key_file(
    path: &Path,
    keys: &StationKeys,
    passphrase: Option<SecretString>,
) -> Result<(), KeyFileError> {
    let text = to_text(keys);
    let bytes: Zeroizing<Vec<u8>> = match passphrase {
        None => Zeroizing::new(text.as_bytes().to_vec()),
        Some(pass) => Zeroizing::new(armor_with_passphrase(text.as_bytes(), pass)?),
    };
    fsutil::replace_atomic(path, &bytes, 0o600).map_err(|cause| KeyFileError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// Whether the file at `path` is passphrase-protected (so a caller knows to
/// ask for the passphrase before opening it).
pub fn is_protected(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        || bytes.starts_with(b"age-encryption.org/")
}

/// Reads and checks a key file. It is refused if group or others can read
/// it. `passphrase` is asked only when the file is protected.
pub fn read_key_file(
    path: &Path,
    passphrase: impl FnOnce() -> Result<SecretString, String>,
) -> Result<StationKeys, KeyFileError> {
    let raw = Zeroizing::new(fsutil::read_private(path, MAX_KEY_FILE)?);
    let plain: Zeroizing<Vec<u8>> = if is_protected(&raw) {
        let pass = passphrase().map_err(|reason| KeyFileError::NoPassphrase {
            path: path.to_path_buf(),
            reason,
        })?;
        let mut identity = age::scrypt::Identity::new(pass);
        identity.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
        let ids: [&dyn age::Identity; 1] = [&identity];
        Zeroizing::new(
            age_io::decrypt(&raw[..], &ids, MAX_KEY_FILE).map_err(|e| match e {
                AgeError::NotForUs | AgeError::Damaged(_) => KeyFileError::WrongPassphrase {
                    path: path.to_path_buf(),
                },
                other => KeyFileError::Malformed {
                    path: path.to_path_buf(),
                    message: other.to_string(),
                },
            })?,
        )
    } else {
        raw
    };
    parse_secret(path, &plain)
}

fn parse_secret(path: &Path, plain: &[u8]) -> Result<StationKeys, KeyFileError> {
    let bad = |message: String| KeyFileError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(plain).map_err(|_| bad("not UTF-8 text".into()))?;
    let parsed: SecretToml =
        toml::from_str(text).map_err(|e| bad(crate::problem::describe_toml_error(text, &e)))?;
    let (signing, age, pq) = parse_keys(
        "",
        &parsed.signing_key,
        &parsed.age_identity,
        parsed.pq_identity.as_deref(),
    )
    .map_err(bad)?;
    let mut retired = Vec::with_capacity(parsed.retired.len());
    for (i, r) in parsed.retired.iter().enumerate() {
        let at = format!("retired[{i}].");
        let (signing, age, pq) = parse_keys(
            &at,
            &r.signing_key,
            &r.age_identity,
            r.pq_identity.as_deref(),
        )
        .map_err(bad)?;
        let time = |key: &str, text: &str| {
            text.parse::<jiff::Timestamp>().map_err(|_| {
                bad(format!(
                    "key `{at}{key}` is not an RFC 3339 time such as 2026-12-07T10:00:00Z"
                ))
            })
        };
        retired.push(RetiredKeys {
            signing,
            age,
            pq,
            retired_at: time("retired_at", &r.retired_at)?,
            compromised_since: r
                .compromised_since
                .as_deref()
                .map(|t| time("compromised_since", t))
                .transpose()?,
        });
    }
    Ok(StationKeys {
        name: parsed.station.clone(),
        signing,
        age,
        pq,
        retired,
    })
}

type KeySet = (
    SigningKey,
    crate::crypto::classic::ClassicIdentity,
    Option<age::pq::Identity>,
);

/// One set of keys from their text; `at` prefixes the key names in errors
/// (`retired[0].`).
fn parse_keys(
    at: &str,
    signing_key: &str,
    age_identity: &str,
    pq_identity: Option<&str>,
) -> Result<KeySet, String> {
    let seed_b64 = signing_key
        .strip_prefix("ed25519-secret:")
        .ok_or_else(|| format!("key `{at}signing_key` must start with `ed25519-secret:`"))?;
    let seed = Zeroizing::new(
        B64.decode(seed_b64)
            .map_err(|_| format!("key `{at}signing_key` is not valid base64"))?,
    );
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
        seed.as_slice()
            .try_into()
            .map_err(|_| format!("key `{at}signing_key` must hold exactly 32 bytes"))?,
    );
    let age = crate::crypto::classic::ClassicIdentity::from_str(age_identity).map_err(|_| {
        format!("key `{at}age_identity` is not an age identity (`AGE-SECRET-KEY-1…`)")
    })?;
    let pq = pq_identity
        .map(age::pq::Identity::from_str)
        .transpose()
        .map_err(|e| {
            format!(
                "key `{at}pq_identity` is not an age post-quantum identity (`AGE-SECRET-KEY-PQ-1…`): {e}"
            )
        })?;
    Ok((SigningKey::from_bytes(&seed), age, pq))
}

/// Every age identity of the station, in age's own identity-file format
/// (`age -d -i FILE`): the post-quantum one first, then the classic one, so
/// the file opens whatever was sealed to this station. A post-quantum
/// identity needs age 1.3 or later (or typage); older age refuses the file.
pub fn age_identity_file(keys: &StationKeys) -> Zeroizing<String> {
    let mut text = identity_file_head(keys);
    if let Some(pq) = &keys.pq {
        text.push_str(&format!(
            "# post-quantum recipient: {}\n{}\n",
            pq.to_public(),
            pq.to_string().expose_secret()
        ));
    }
    text.push_str(&classic_lines(keys));
    for r in keys.retired.iter().rev() {
        if let Some(pq) = &r.pq {
            text.push_str(&format!(
                "# retired {} (post-quantum): {}\n{}\n",
                stamp(r.retired_at),
                pq.to_public(),
                pq.to_string().expose_secret()
            ));
        }
        text.push_str(&retired_classic_lines(r));
    }
    text
}

/// Only the classic identity, for age before 1.3 (Debian's 1.1.1): it
/// opens what was sealed classically, never what was sealed post-quantum.
pub fn classic_identity_file(keys: &StationKeys) -> Zeroizing<String> {
    let mut text = identity_file_head(keys);
    text.push_str(&classic_lines(keys));
    for r in keys.retired.iter().rev() {
        text.push_str(&retired_classic_lines(r));
    }
    text
}

fn retired_classic_lines(r: &RetiredKeys) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# retired {} (classic): {}\n{}\n",
        stamp(r.retired_at),
        r.age.to_public(),
        r.age.to_string().expose_secret()
    ))
}

fn identity_file_head(keys: &StationKeys) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# hotline station {} — age identities (secret; keep owner-only)\n",
        keys.name
    ))
}

fn classic_lines(keys: &StationKeys) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# classic recipient: {}\n{}\n",
        keys.age.to_public(),
        keys.age.to_string().expose_secret()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> StationKeys {
        StationKeys::generate(StationName::new("WASHINGTON").expect("name")).expect("keys")
    }

    #[test]
    fn plain_key_file_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("station.key");
        let k = keys();
        write_key_file(&path, &k, None).expect("write");
        let back = read_key_file(&path, || Err("not asked".into())).expect("read");
        assert_eq!(back.signing.to_bytes(), k.signing.to_bytes());
        assert_eq!(
            back.age.to_public().to_string(),
            k.age.to_public().to_string()
        );
        assert!(matches!(
            write_key_file(&path, &k, None),
            Err(KeyFileError::Exists { .. })
        ));
    }

    #[test]
    fn damaged_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("station.key");
        fsutil::create_private(&path, b"station = \"WASHINGTON\"\nsigning_key = \"ed25519-secret:AAAA\"\nage_identity = \"x\"\n").expect("write");
        let err = read_key_file(&path, || Err("no".into()))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("signing_key"), "{err}");
    }
}
