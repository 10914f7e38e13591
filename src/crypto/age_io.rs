//! The one place that calls age to encrypt and decrypt whole buffers, with a
//! size cap on what decryption may produce.

use std::io::{self, Read, Write};

use age::armor::ArmoredReader;
use age::{Decryptor, Encryptor, Identity, Recipient};

/// Why age could not encrypt or decrypt.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    #[error("this was not encrypted to any of our keys")]
    NotForUs,
    #[error("the age file is damaged or was tampered with: {0}")]
    Damaged(String),
    #[error("the decrypted content is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("age could not encrypt: {0}")]
    Encrypt(String),
}

/// Encrypts `plaintext` to every recipient, as a binary age file.
pub fn encrypt(plaintext: &[u8], recipients: &[&dyn Recipient]) -> Result<Vec<u8>, AgeError> {
    let encryptor = Encryptor::with_recipients(recipients.iter().copied())
        .map_err(|e| AgeError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| AgeError::Encrypt(e.to_string()))?;
    writer
        .write_all(plaintext)
        .and_then(|()| writer.finish().map(|_| ()))
        .map_err(|e| AgeError::Encrypt(e.to_string()))?;
    Ok(out)
}

/// Decrypts a binary or armored age file with the first identity that fits,
/// refusing to produce more than `limit` bytes.
pub fn decrypt(
    input: impl Read,
    identities: &[&dyn Identity],
    limit: u64,
) -> Result<Vec<u8>, AgeError> {
    let decryptor = Decryptor::new(ArmoredReader::new(input)).map_err(classify)?;
    let reader = decryptor
        .decrypt(identities.iter().copied())
        .map_err(classify)?;
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e: io::Error| AgeError::Damaged(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(AgeError::TooLarge { limit });
    }
    Ok(out)
}

fn classify(e: age::DecryptError) -> AgeError {
    match e {
        age::DecryptError::NoMatchingKeys => AgeError::NotForUs,
        other => AgeError::Damaged(other.to_string()),
    }
}
