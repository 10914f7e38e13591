//! The hybrid post-quantum key exchange X25519MLKEM768 for QUIC's TLS 1.3
//! handshake (draft-ietf-tls-ecdhe-mlkem, group 0x11EC), so that a
//! recording of the link cannot be decrypted later by a quantum computer
//! even below the age layer. rustls offers it only through its aws-lc-rs
//! provider, and the link is built on ring (STACK: both providers in one
//! build make rustls panic); this group uses RustCrypto's `ml-kem`, which
//! the `age` crate already brings, and `x25519-dalek`.
//!
//! Shares and secret, as the draft orders them for this group: the
//! client's share is an ML-KEM-768 encapsulation key (1184 bytes) followed
//! by an X25519 public key (32); the server's is the ML-KEM ciphertext
//! (1088) followed by its X25519 public key; the shared secret is the
//! ML-KEM shared secret followed by the X25519 one. An X25519 result of
//! all zeros is refused, as TLS requires. The group is offered first and
//! plain X25519 after it, so a peer without it still agrees on X25519.

use ml_kem::{Decapsulate, Encapsulate, Kem, KeyExport, MlKem768, TryKeyInit};
use rustls::crypto::{ActiveKeyExchange, CompletedKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved, ProtocolVersion};
use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};
use zeroize::Zeroizing;

/// ML-KEM-768's encapsulation key, in the client's share.
const ENCAPSULATION_KEY: usize = 1184;
/// ML-KEM-768's ciphertext, in the server's share.
const CIPHERTEXT: usize = 1088;
/// An X25519 public key, at the end of either share.
const X25519_SHARE: usize = 32;

/// The group, to list in a crypto provider's `kx_groups`.
pub static X25519_MLKEM768: &dyn SupportedKxGroup = &X25519MlKem768;

#[derive(Debug)]
struct X25519MlKem768;

fn invalid_share() -> Error {
    PeerMisbehaved::InvalidKeyShare.into()
}

/// A fresh X25519 secret and its public key.
fn x25519_pair() -> Result<(Zeroizing<[u8; 32]>, [u8; 32]), Error> {
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut())
        .map_err(|e| Error::General(format!("no random source: {e}")))?;
    let public = x25519(*secret, X25519_BASEPOINT_BYTES);
    Ok((secret, public))
}

/// The X25519 shared secret with `peer`, refusing the all-zero result of a
/// small-order point.
fn x25519_shared(secret: &[u8; 32], peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    let peer: [u8; 32] = peer.try_into().map_err(|_| invalid_share())?;
    let shared = Zeroizing::new(x25519(*secret, peer));
    if shared.iter().all(|b| *b == 0) {
        return Err(invalid_share());
    }
    Ok(shared)
}

fn secret(ml_kem: &[u8], x25519: &[u8]) -> SharedSecret {
    let mut both = Vec::with_capacity(ml_kem.len() + x25519.len());
    both.extend_from_slice(ml_kem);
    both.extend_from_slice(x25519);
    SharedSecret::from(both)
}

impl SupportedKxGroup for X25519MlKem768 {
    /// The client's side: a fresh ML-KEM key pair and X25519 pair.
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let (decapsulation, encapsulation) = MlKem768::generate_keypair();
        let (x25519_secret, x25519_public) = x25519_pair()?;
        let mut share = encapsulation.to_bytes().to_vec();
        share.extend_from_slice(&x25519_public);
        Ok(Box::new(Active {
            decapsulation,
            x25519_secret,
            share,
        }))
    }

    /// The server's side: encapsulate to the client's key, answer with the
    /// ciphertext and our X25519 share.
    fn start_and_complete(&self, client_share: &[u8]) -> Result<CompletedKeyExchange, Error> {
        if client_share.len() != ENCAPSULATION_KEY + X25519_SHARE {
            return Err(invalid_share());
        }
        let (key, client_x25519) = client_share.split_at(ENCAPSULATION_KEY);
        let encapsulation = <MlKem768 as Kem>::EncapsulationKey::new_from_slice(key)
            .map_err(|_| invalid_share())?;
        let (ciphertext, ml_kem_shared) = encapsulation.encapsulate();
        let (x25519_secret, x25519_public) = x25519_pair()?;
        let x25519_shared = x25519_shared(&x25519_secret, client_x25519)?;
        let mut share = ciphertext.to_vec();
        share.extend_from_slice(&x25519_public);
        Ok(CompletedKeyExchange {
            group: self.name(),
            pub_key: share,
            secret: secret(&ml_kem_shared, x25519_shared.as_ref()),
        })
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

struct Active {
    decapsulation: <MlKem768 as Kem>::DecapsulationKey,
    x25519_secret: Zeroizing<[u8; 32]>,
    share: Vec<u8>,
}

impl ActiveKeyExchange for Active {
    /// The client's side, with the server's share.
    fn complete(self: Box<Self>, server_share: &[u8]) -> Result<SharedSecret, Error> {
        if server_share.len() != CIPHERTEXT + X25519_SHARE {
            return Err(invalid_share());
        }
        let (ciphertext, server_x25519) = server_share.split_at(CIPHERTEXT);
        let ml_kem_shared = self
            .decapsulation
            .decapsulate_slice(ciphertext)
            .map_err(|_| invalid_share())?;
        let x25519_shared = x25519_shared(&self.x25519_secret, server_x25519)?;
        Ok(secret(&ml_kem_shared, x25519_shared.as_ref()))
    }

    fn pub_key(&self) -> &[u8] {
        &self.share
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_malformed_shares_are_refused() {
        let client = X25519_MLKEM768.start().expect("client starts");
        assert_eq!(client.pub_key().len(), ENCAPSULATION_KEY + X25519_SHARE);
        let server = X25519_MLKEM768
            .start_and_complete(client.pub_key())
            .expect("server completes");
        assert_eq!(server.pub_key.len(), CIPHERTEXT + X25519_SHARE);
        let server_secret = server.secret.secret_bytes().to_vec();
        assert_eq!(server_secret.len(), 64);
        let client_secret = client.complete(&server.pub_key).expect("client completes");
        assert_eq!(client_secret.secret_bytes(), &server_secret[..]);

        // A share of the wrong length, and an X25519 share that is a
        // small-order point (all zeros), are refused on either side.
        let client = X25519_MLKEM768.start().expect("client starts");
        let short = &client.pub_key()[..ENCAPSULATION_KEY];
        assert!(X25519_MLKEM768.start_and_complete(short).is_err());
        let mut zero = client.pub_key().to_vec();
        zero[ENCAPSULATION_KEY..].fill(0);
        assert!(X25519_MLKEM768.start_and_complete(&zero).is_err());
        let server = X25519_MLKEM768
            .start_and_complete(client.pub_key())
            .expect("server completes");
        let mut bad = server.pub_key.clone();
        bad[CIPHERTEXT..].fill(0);
        assert!(client.complete(&bad).is_err());
    }

    #[test]
    fn a_changed_ciphertext_gives_a_different_secret() {
        let client = X25519_MLKEM768.start().expect("client starts");
        let server = X25519_MLKEM768
            .start_and_complete(client.pub_key())
            .expect("server completes");
        let mut changed = server.pub_key.clone();
        changed[10] ^= 1;
        // ML-KEM's implicit rejection: a secret comes out, but not the
        // server's, so the handshake's Finished messages would not match.
        let secret = client.complete(&changed).expect("completes");
        assert_ne!(secret.secret_bytes(), server.secret.secret_bytes());
    }
}
