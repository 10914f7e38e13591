//! Mutual TLS 1.3 with pinned station keys. Each station presents a
//! self-signed certificate for its Ed25519 station key; each side accepts only
//! a certificate whose public key (SPKI) is pinned for a peer. There are no
//! certificate authorities and no name checks, but the handshake signature is
//! still verified, or anyone replaying a public certificate would get in.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

use super::LinkError;
use crate::domain::StationName;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS#8 v1 private key; the 32 seed bytes follow.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// ring's provider, with the hybrid post-quantum key exchange offered
/// first ([`super::pqkx`]) and ring's classic groups after it.
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups.insert(0, super::pqkx::X25519_MLKEM768);
    Arc::new(provider)
}

/// The Ed25519 key inside a certificate, if it holds one.
pub fn key_of_cert(cert: &CertificateDer<'_>) -> Option<VerifyingKey> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = ee.subject_public_key_info();
    let raw = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let bytes: [u8; 32] = raw.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// A self-signed certificate for the station key, and the key for rustls.
fn certificate(
    key: &SigningKey,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), LinkError> {
    let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(key.as_bytes());
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .map_err(|e| LinkError::Tls(format!("station key: {e}")))?;
    let params = rcgen::CertificateParams::new(vec!["hotline".to_string()])
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(der)))
}

/// A self-signed certificate for `key`, ready for rustls to present.
fn certified(key: &SigningKey) -> Result<Arc<CertifiedKey>, LinkError> {
    let (cert, der) = certificate(key)?;
    CertifiedKey::from_der(vec![cert], der, &provider())
        .map(Arc::new)
        .map_err(|e| LinkError::Tls(e.to_string()))
}

/// The server name a station dials with: derived from the caller's own
/// name, so the station it calls knows which of its keys to present (a
/// peer that has not confirmed its rotation still pins the old one). Not
/// proof of anything: the caller's certificate is verified as always.
pub fn sni_for(caller: &StationName) -> String {
    let digest = hex::encode(Sha256::digest(caller.as_str().as_bytes()));
    format!("h{}.hotline", &digest[..32])
}

/// Which certificate the server presents: per caller (by the server name
/// it dialled with, [`sni_for`]), else the station's current key.
#[derive(Debug)]
pub struct Presented {
    default: Arc<CertifiedKey>,
    by_caller: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Presented {
    pub fn new(key: &SigningKey) -> Result<Arc<Presented>, LinkError> {
        Ok(Arc::new(Presented {
            default: certified(key)?,
            by_caller: RwLock::default(),
        }))
    }

    /// Presents `key` to `caller` from now on.
    pub fn set(&self, caller: &StationName, key: &SigningKey) -> Result<(), LinkError> {
        let cert = certified(key)?;
        self.by_caller
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sni_for(caller), cert);
        Ok(())
    }
}

impl ResolvesServerCert for Presented {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|name| {
            self.by_caller
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
                .cloned()
        });
        Some(chosen.unwrap_or_else(|| self.default.clone()))
    }
}

/// The keys a verifier accepts. Shared, so that a peer added to a running
/// link is accepted from then on.
#[derive(Clone, Debug, Default)]
pub struct PinSet(Arc<RwLock<Vec<VerifyingKey>>>);

impl PinSet {
    pub fn new(keys: Vec<VerifyingKey>) -> PinSet {
        PinSet(Arc::new(RwLock::new(keys)))
    }

    pub fn add(&self, key: VerifyingKey) {
        let mut keys = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    pub fn remove(&self, key: &VerifyingKey) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k| k != key);
    }

    fn contains(&self, key: &VerifyingKey) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }
}

/// Which certificates a verifier lets through.
#[derive(Debug)]
enum Accept {
    /// Exactly the pinned keys.
    Pinned(PinSet),
    /// Any Ed25519 key: only for asking to join a tabletop white cell,
    /// where the key is checked against a fingerprint afterwards.
    AnyKey,
}

/// Accepts the certificates `accept` allows, and verifies the handshake
/// signature made with them.
#[derive(Debug)]
struct Pinned {
    accept: Accept,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        match (key_of_cert(cert), &self.accept) {
            (Some(k), Accept::Pinned(keys)) if keys.contains(&k) => Ok(()),
            (Some(_), Accept::AnyKey) => Ok(()),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check(cert)?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Timeouts and windows for every connection. Windows are capped so one peer
/// cannot make us buffer without bound; the connection send window is larger
/// than any one stream's (STACK.md trap 8) so urgent streams are not starved.
pub fn transport(idle: Duration) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(super::MAX_STREAMS_PER_CONNECTION.into());
    t.max_concurrent_uni_streams(0u8.into());
    t.stream_receive_window((2u32 * 1024 * 1024).into());
    t.receive_window((16u32 * 1024 * 1024).into());
    t.send_window(32 * 1024 * 1024);
    t.keep_alive_interval(Some(idle / 3));
    t.max_idle_timeout(quinn::IdleTimeout::try_from(idle).ok());
    t
}

/// The server side: our certificate, and client certificates pinned (or,
/// with `admission`, any Ed25519 key, checked by the accept loop).
pub fn server_config(
    presented: Arc<Presented>,
    pinned: PinSet,
    admission: bool,
    alpn: &[u8],
    idle: Duration,
) -> Result<quinn::ServerConfig, LinkError> {
    let tls = server_tls(presented, pinned, admission, alpn)?;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| LinkError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport(idle)));
    // Bounds on what callers not yet accepted may hold: connection
    // attempts waiting for the accept loop, and the early data buffered
    // for them.
    config
        .max_incoming(2 * super::MAX_PENDING_HANDSHAKES)
        .incoming_buffer_size(64 * 1024)
        .incoming_buffer_size_total(4 * 1024 * 1024);
    Ok(config)
}

/// The server's TLS: 1.3 only, no early data, and no resumption, so a
/// client's key is verified against the pins on every connection (a
/// resumed session would restore it unverified, wrong once keys rotate).
fn server_tls(
    presented: Arc<Presented>,
    pinned: PinSet,
    admission: bool,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, LinkError> {
    server_tls_with(provider(), presented, pinned, admission, alpn)
}

fn server_tls_with(
    provider: Arc<CryptoProvider>,
    presented: Arc<Presented>,
    pinned: PinSet,
    admission: bool,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, LinkError> {
    let verifier = Arc::new(Pinned {
        accept: if admission {
            Accept::AnyKey
        } else {
            Accept::Pinned(pinned)
        },
        algorithms: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(presented);
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.max_early_data_size = 0;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    Ok(tls)
}

/// The client side for dialing one peer: only its key is accepted.
pub fn client_config(
    key: &SigningKey,
    peer: VerifyingKey,
    alpn: &[u8],
    idle: Duration,
) -> Result<quinn::ClientConfig, LinkError> {
    client_with(key, Accept::Pinned(PinSet::new(vec![peer])), alpn, idle)
}

/// The client side for dialing one peer whose keys are `accepted` (more
/// than one while it changes over to a new key).
pub fn client_config_accepting(
    key: &SigningKey,
    accepted: Vec<VerifyingKey>,
    alpn: &[u8],
    idle: Duration,
) -> Result<quinn::ClientConfig, LinkError> {
    client_with(key, Accept::Pinned(PinSet::new(accepted)), alpn, idle)
}

/// The client side for asking a white cell to join: any server key passes
/// the handshake, and the caller checks it against the pinned fingerprint.
pub fn join_client_config(
    key: &SigningKey,
    alpn: &[u8],
    idle: Duration,
) -> Result<quinn::ClientConfig, LinkError> {
    client_with(key, Accept::AnyKey, alpn, idle)
}

fn client_with(
    key: &SigningKey,
    accept: Accept,
    alpn: &[u8],
    idle: Duration,
) -> Result<quinn::ClientConfig, LinkError> {
    let tls = client_tls(key, accept, alpn)?;
    let quic = QuicClientConfig::try_from(tls).map_err(|e| LinkError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport(idle)));
    Ok(config)
}

/// The client's TLS: 1.3 only, no early data, no resumption (see
/// [`server_tls`]).
fn client_tls(
    key: &SigningKey,
    accept: Accept,
    alpn: &[u8],
) -> Result<rustls::ClientConfig, LinkError> {
    let provider = provider();
    let verifier = Arc::new(Pinned {
        accept,
        algorithms: provider.signature_verification_algorithms,
    });
    let (cert, der) = certificate(key)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], der)
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.enable_early_data = false;
    tls.resumption = rustls::client::Resumption::disabled();
    Ok(tls)
}

/// The station key the peer presented on an established connection.
pub fn peer_key(conn: &quinn::Connection) -> Option<VerifyingKey> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().and_then(key_of_cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::HandshakeKind;

    /// Runs a TLS handshake in memory, then lets the client take in what
    /// the server sends after it (session tickets); the client's kind.
    fn handshake(
        client: &Arc<rustls::ClientConfig>,
        server: &Arc<rustls::ServerConfig>,
    ) -> Option<HandshakeKind> {
        connect(client, server).0.handshake_kind()
    }

    /// The two stations' keys of these tests: the client's, the server's.
    fn keys() -> (SigningKey, SigningKey) {
        (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        )
    }

    fn pin(k: &SigningKey) -> PinSet {
        PinSet::new(vec![k.verifying_key()])
    }

    /// Both ends of a TLS handshake run in memory to its end.
    fn connect(
        client: &Arc<rustls::ClientConfig>,
        server: &Arc<rustls::ServerConfig>,
    ) -> (rustls::ClientConnection, rustls::ServerConnection) {
        let name = ServerName::try_from("hotline").expect("name");
        let mut c = rustls::ClientConnection::new(client.clone(), name).expect("client");
        let mut s = rustls::ServerConnection::new(server.clone()).expect("server");
        for _ in 0..16 {
            let mut bytes = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut bytes).expect("client writes");
            }
            if !bytes.is_empty() {
                s.read_tls(&mut &bytes[..]).expect("server reads");
                s.process_new_packets().expect("server handshake");
            }
            let mut bytes = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut bytes).expect("server writes");
            }
            if !bytes.is_empty() {
                c.read_tls(&mut &bytes[..]).expect("client reads");
                c.process_new_packets().expect("client handshake");
            }
            if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() {
                break;
            }
        }
        assert!(!c.is_handshaking(), "the handshake completes");
        (c, s)
    }

    #[test]
    fn every_connection_is_a_full_handshake_with_the_key_verified_again() {
        let (a, b) = keys();
        let client =
            Arc::new(client_tls(&a, Accept::Pinned(pin(&b)), b"hotline/test").expect("client tls"));
        let server = Arc::new(
            server_tls(
                Presented::new(&b).expect("cert"),
                pin(&a),
                false,
                b"hotline/test",
            )
            .expect("server tls"),
        );
        assert_eq!(handshake(&client, &server), Some(HandshakeKind::Full));
        assert_eq!(
            handshake(&client, &server),
            Some(HandshakeKind::Full),
            "a second connection is not resumed"
        );

        // The control: the same configs with resumption left at rustls's
        // defaults resume the second connection.
        let mut resuming_client = (*client).clone();
        resuming_client.resumption = rustls::client::Resumption::default();
        let mut resuming_server = (*server).clone();
        resuming_server.session_storage = rustls::server::ServerSessionMemoryCache::new(8);
        resuming_server.send_tls13_tickets = 2;
        let (client, server) = (Arc::new(resuming_client), Arc::new(resuming_server));
        assert_eq!(handshake(&client, &server), Some(HandshakeKind::Full));
        assert_eq!(handshake(&client, &server), Some(HandshakeKind::Resumed));
    }

    /// A key-exchange group that counts the key exchanges it completes as
    /// the server (quinn does not say which group a handshake used).
    #[derive(Debug)]
    struct Counted {
        inner: &'static dyn rustls::crypto::SupportedKxGroup,
        served: std::sync::atomic::AtomicUsize,
    }

    impl rustls::crypto::SupportedKxGroup for Counted {
        fn start(&self) -> Result<Box<dyn rustls::crypto::ActiveKeyExchange>, rustls::Error> {
            self.inner.start()
        }
        fn start_and_complete(
            &self,
            peer: &[u8],
        ) -> Result<rustls::crypto::CompletedKeyExchange, rustls::Error> {
            self.served
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner.start_and_complete(peer)
        }
        fn name(&self) -> rustls::NamedGroup {
            self.inner.name()
        }
    }

    /// The station's own TLS configs agree on the hybrid post-quantum key
    /// exchange, which the server really computes; a server without it
    /// (an older station) still agrees with the same client, on X25519.
    #[test]
    fn the_handshake_is_post_quantum_and_falls_back_to_x25519() {
        use rustls::NamedGroup;
        let (a, b) = keys();
        let client =
            Arc::new(client_tls(&a, Accept::Pinned(pin(&b)), b"hotline/test").expect("client tls"));
        let counted: &'static Counted = Box::leak(Box::new(Counted {
            inner: super::super::pqkx::X25519_MLKEM768,
            served: 0.into(),
        }));
        let mut groups = provider().kx_groups.clone();
        groups[0] = counted;
        let with_counted = Arc::new(CryptoProvider {
            kx_groups: groups,
            ..(*provider()).clone()
        });
        let server = server_tls_with(
            with_counted,
            Presented::new(&b).expect("cert"),
            pin(&a),
            false,
            b"hotline/test",
        )
        .expect("server tls");
        let (c, s) = connect(&client, &Arc::new(server));
        let group = |g: Option<&'static dyn rustls::crypto::SupportedKxGroup>| g.map(|g| g.name());
        assert_eq!(
            group(c.negotiated_key_exchange_group()),
            Some(NamedGroup::X25519MLKEM768)
        );
        assert_eq!(
            group(s.negotiated_key_exchange_group()),
            Some(NamedGroup::X25519MLKEM768)
        );
        assert_eq!(counted.served.load(std::sync::atomic::Ordering::Relaxed), 1);

        // The control: the hybrid group removed on the server's side.
        let ring_only = Arc::new(rustls::crypto::ring::default_provider());
        let classic = server_tls_with(
            ring_only,
            Presented::new(&b).expect("cert"),
            pin(&a),
            false,
            b"hotline/test",
        )
        .expect("server tls");
        let (c, s) = connect(&client, &Arc::new(classic));
        assert_eq!(
            group(c.negotiated_key_exchange_group()),
            Some(NamedGroup::X25519)
        );
        assert_eq!(
            group(s.negotiated_key_exchange_group()),
            Some(NamedGroup::X25519)
        );
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::FullWithHelloRetryRequest)
        );
    }
}
