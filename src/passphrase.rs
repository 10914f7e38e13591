//! Passphrases: asked at the terminal, or read from a file named in the
//! environment for unattended use, and stored only as argon2id hashes.

use std::path::Path;

use age::secrecy::{ExposeSecret, SecretString};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

/// Names the file holding an operator's passphrase, for automation.
pub const OPERATOR_PASSPHRASE_ENV: &str = "HOTLINE_PASSPHRASE_FILE";
/// Names the file holding the station key's passphrase, for unattended start.
/// Kept apart from the operator's: one command may need both.
pub const KEY_PASSPHRASE_ENV: &str = "HOTLINE_KEY_PASSPHRASE_FILE";

/// Reads a passphrase from the file named by `env`, if it is set, else asks
/// at the terminal with `prompt`. The file must be owner-only.
pub fn obtain(env: &str, prompt: &str) -> Result<SecretString, String> {
    if let Some(file) = std::env::var_os(env) {
        return from_file(Path::new(&file)).map_err(|e| format!("{} (from ${env})", e));
    }
    rpassword::prompt_password(prompt)
        .map(SecretString::from)
        .map_err(|e| format!("could not read a passphrase from the terminal ({e}); set ${env} to a file holding it"))
}

fn from_file(path: &Path) -> Result<SecretString, String> {
    let bytes = zeroize::Zeroizing::new(
        crate::fsutil::read_private(path, 4096).map_err(|e| e.to_string())?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{}: is not UTF-8 text", path.display()))?;
    let line = text.lines().next().unwrap_or("").to_string();
    Ok(SecretString::from(line))
}

/// Asks twice and insists on agreement, for setting a new passphrase. An
/// environment file is trusted as given.
pub fn obtain_new(env: &str, what: &str) -> Result<SecretString, String> {
    if std::env::var_os(env).is_some() {
        return obtain(env, "");
    }
    let first = obtain(env, &format!("New passphrase for {what}: "))?;
    let second = obtain(env, "Repeat it: ")?;
    if first.expose_secret() != second.expose_secret() {
        return Err("the two passphrases differ; nothing was changed".into());
    }
    Ok(first)
}

/// The argon2id cost of new hashes: 128 MiB of memory and 3 passes in one
/// lane: 0.30 s per check (p50 297 ms) on the 2-core machines hotline is
/// built on (`cargo bench --bench login`). Memory is the cost an attacker
/// with many cores pays most for; passes past 3 would bring it to half a
/// second, at the same price in every test log-in. Existing hashes keep
/// the cost they were made with until the operator's passphrase is next set.
pub const MEMORY_KIB: u32 = 128 * 1024;
pub const PASSES: u32 = 3;
pub const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a passphrase with argon2id at [`MEMORY_KIB`] and [`PASSES`], with
/// a random salt.
pub fn hash(passphrase: &SecretString) -> Result<String, String> {
    hasher()
        .hash_password(passphrase.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("could not hash the passphrase: {e}"))
}

/// Checks a passphrase against a stored argon2id hash.
pub fn verify(passphrase: &SecretString, stored: &str) -> bool {
    Argon2::default()
        .verify_password(passphrase.expose_secret().as_bytes(), stored)
        .is_ok()
}

/// A hash that no passphrase matches, costing what checking `like` costs
/// (or a new hash, if `like` is not one): checked for a name that is no
/// operator's, so that a wrong name takes as long as a wrong passphrase.
pub fn decoy(like: Option<&str>) -> String {
    let cost = like
        .filter(|h| is_argon2id_hash(h))
        .and_then(|h| h.split('$').nth(3))
        .map(str::to_string)
        .unwrap_or_else(|| format!("m={MEMORY_KIB},t={PASSES},p={LANES}"));
    let mut salt = [0u8; 16];
    let mut output = [0u8; 32];
    // Unpredictable bytes only make the decoy unguessable; zeros, had the
    // system no randomness, would still match no passphrase in practice.
    let _ = getrandom::fill(&mut salt);
    let _ = getrandom::fill(&mut output);
    format!(
        "$argon2id$v=19${cost}${}${}",
        B64.encode(salt),
        B64.encode(output)
    )
}

/// Whether `stored` is a well-formed argon2id PHC string.
pub fn is_argon2id_hash(stored: &str) -> bool {
    stored.starts_with("$argon2id$")
        && argon2::password_hash::phc::PasswordHash::new(stored).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash(&SecretString::from("correct horse".to_string())).expect("hash");
        assert!(is_argon2id_hash(&h));
        assert!(
            h.contains(&format!("$m={MEMORY_KIB},t={PASSES},p={LANES}$")),
            "{h}"
        );
        let decoy = decoy(Some(&h));
        assert!(is_argon2id_hash(&decoy), "{decoy}");
        assert_eq!(decoy.split('$').nth(3), h.split('$').nth(3));
        assert!(!verify(
            &SecretString::from("correct horse".to_string()),
            &decoy
        ));
        assert!(verify(&SecretString::from("correct horse".to_string()), &h));
        assert!(!verify(&SecretString::from("wrong".to_string()), &h));
        assert!(!is_argon2id_hash("$2b$12$abcdefghijk"));
    }
}
