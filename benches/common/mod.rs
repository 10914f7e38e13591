//! What the benchmarks share: the bare-quinn floor they are measured
//! against, and the timing summary they print.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use hotline::compose::Draft;
use hotline::station::Station;
use hotline::station::api::{Command, Door, Passphrase, Release, Reply, Session};
use hotline::store::{Direction, MessageRow};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

/// A plain TLS 1.3 QUIC server and client (self-signed, no client
/// certificates), with the station's own transport settings, so that only
/// the protocol differs from hotline's link.
pub fn floor_configs() -> (quinn::ServerConfig, quinn::ClientConfig) {
    floor_configs_with(Arc::new(rustls::crypto::ring::default_provider()))
}

/// The floor's configs with another crypto provider (its key exchanges).
pub fn floor_configs_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> (quinn::ServerConfig, quinn::ClientConfig) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("self-signed certificate");
    let cert_der = cert.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let alpn = b"bench/1".to_vec();
    let transport = Arc::new(hotline::link::tls::transport(Duration::from_secs(15)));

    let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .expect("server certificate");
    server_tls.alpn_protocols = vec![alpn.clone()];
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(
        QuicServerConfig::try_from(server_tls).expect("QUIC server config"),
    ));
    server.transport_config(transport.clone());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let mut client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_tls.alpn_protocols = vec![alpn];
    let mut client = quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(client_tls).expect("QUIC client config"),
    ));
    client.transport_config(transport);
    (server, client)
}

/// Timing summary of one series.
#[derive(Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        let mut s = samples.to_vec();
        s.sort_unstable();
        // Nearest rank.
        let pick = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        let total: Duration = s.iter().sum();
        Summary {
            n: s.len(),
            p50: pick(0.50),
            p99: pick(0.99),
            mean: total / s.len() as u32,
            max: s[s.len() - 1],
        }
    }
}

/// `x` rounded to `places` decimals.
pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

// ------------------------------------------------------------------- the door

/// A console session on `station` logged in as `operator`. Log in once per
/// station: a log-in costs an argon2 hash, which is not what is measured.
pub async fn login(station: &Station, operator: &str, passphrase: &str) -> Session {
    let session = Session::new(Door::Console);
    let login = Command::Login {
        operator: operator.into(),
        passphrase: Passphrase::new(passphrase),
    };
    station
        .handle(&session, login)
        .await
        .expect("log-in with the test passphrase");
    session
}

/// Releases `draft` to `to` through `Station::handle`; the stored row once
/// it is durably in the outbox.
pub async fn release(
    station: &Station,
    session: &Session,
    to: &str,
    draft: Draft,
    attachments: Vec<std::path::PathBuf>,
) -> MessageRow {
    let attachments = attachments
        .iter()
        .map(|p| hotline::station::api::Attachment::open(p).expect("a file to attach opens"))
        .collect();
    let release = Release {
        to: to.into(),
        draft,
        attachments,
        second_operator: None,
        refer_to: Vec::new(),
    };
    match station
        .handle(session, Command::Release(Box::new(release)))
        .await
    {
        Ok(Reply::Released { row }) => *row,
        other => panic!("unexpected answer to a release: {other:?}"),
    }
}

/// One direction's rows through `Station::handle`.
pub async fn list(station: &Station, direction: Direction) -> Vec<MessageRow> {
    let session = Session::new(Door::Console);
    match station
        .handle(
            &session,
            Command::List {
                direction,
                limit: None,
                before: None,
            },
        )
        .await
    {
        Ok(Reply::Rows { rows }) => rows,
        other => panic!("unexpected answer to a listing: {other:?}"),
    }
}

/// Whether `dir` is on tmpfs, where fdatasync reaches no disk.
pub fn on_tmpfs(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `path` is a valid C string and `fs` is written by statfs
    // before it is read, only when it returns 0.
    let ok = unsafe { libc::statfs(path.as_ptr(), fs.as_mut_ptr()) } == 0;
    // SAFETY: statfs returned 0, so it filled `fs`.
    ok && unsafe { fs.assume_init() }.f_type == libc::TMPFS_MAGIC
}

/// The process's peak resident memory (VmHWM), in KiB.
pub fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts the peak (VmHWM) again from the memory resident now, so a
/// stage's peak is its own and not an earlier stage's (an argon2 log-in
/// alone takes 128 MiB). Whether the kernel allowed it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time of the whole process so far, user and system.
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given,
    // and the struct is only read after it reported success.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return Duration::ZERO;
        }
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
