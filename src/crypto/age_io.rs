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
    #[error(
        "the age header names more than {max} recipients, or runs past {} KiB; it is refused before any key is tried",
        MAX_HEADER / 1024
    )]
    Header { max: usize },
}

/// The most recipient stanzas an age header may hold: each costs a key
/// operation per identity, so a header of thousands could stall a station.
/// hotline seals to two (the peer and itself).
pub const MAX_STANZAS: usize = 16;
/// The longest age header read.
pub const MAX_HEADER: usize = 64 * 1024;

/// Refuses an age header (at the start of `bytes`, binary) with more than
/// [`MAX_STANZAS`] recipients, or longer than [`MAX_HEADER`], before any
/// key operation. Bytes that are not an age header pass: the parser says
/// what is wrong with them.
pub fn check_header(bytes: &[u8]) -> Result<(), AgeError> {
    const INTRO: &[u8] = b"age-encryption.org/v1\n";
    let Some(rest) = bytes.strip_prefix(INTRO) else {
        return Ok(());
    };
    let window = &rest[..rest.len().min(MAX_HEADER)];
    let mut stanzas = 0;
    for line in window.split(|b| *b == b'\n') {
        if line.starts_with(b"---") {
            return Ok(());
        }
        if line.starts_with(b"-> ") {
            stanzas += 1;
            if stanzas > MAX_STANZAS {
                return Err(AgeError::Header { max: MAX_STANZAS });
            }
        }
    }
    if rest.len() > MAX_HEADER {
        return Err(AgeError::Header { max: MAX_STANZAS });
    }
    Ok(())
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
    input: &[u8],
    identities: &[&dyn Identity],
    limit: u64,
) -> Result<Vec<u8>, AgeError> {
    // Armor removed first, so that the header is checked either way.
    let mut binary = Vec::with_capacity(input.len());
    ArmoredReader::new(input)
        .read_to_end(&mut binary)
        .map_err(|e| AgeError::Damaged(e.to_string()))?;
    check_header(&binary)?;
    let decryptor = Decryptor::new_buffered(&binary[..]).map_err(classify)?;
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
