//! Passphrases: asked at the terminal, or read from a file named in the
//! environment for unattended use, and stored only as argon2id hashes.

use std::path::Path;

use age::secrecy::{ExposeSecret, SecretString};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

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

/// Hashes a passphrase with argon2id (default parameters, random salt).
pub fn hash(passphrase: &SecretString) -> Result<String, String> {
    Argon2::default()
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
        assert!(verify(&SecretString::from("correct horse".to_string()), &h));
        assert!(!verify(&SecretString::from("wrong".to_string()), &h));
        assert!(!is_argon2id_hash("$2b$12$abcdefghijk"));
    }
}
