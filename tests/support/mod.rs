//! Test support: real stations on 127.0.0.1 with real keys and journals in a
//! temp dir. Nothing here is a mock: each station is `Station::start` over a
//! real quinn endpoint.
#![allow(dead_code)]

pub mod door;
pub mod proxy;
pub mod tmux;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hotline::compose::Draft;
use hotline::config::Config;
use hotline::crypto::{StationKeys, write_key_file};
use hotline::domain::{OperatorName, StationName};
use hotline::station::{Event, Options, Station};
use tokio::sync::broadcast;

/// A free UDP port on 127.0.0.1 (bound, read, released).
pub fn free_addr() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr")
}

/// One station's files: keys, config, data dir.
pub struct Site {
    pub name: StationName,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub listen: SocketAddr,
}

/// A peer entry for a site's config.
pub struct PeerEntry {
    pub name: String,
    pub keys: hotline::crypto::PeerKeys,
    pub primary: Option<SocketAddr>,
    pub backup: Option<SocketAddr>,
}

/// Extra `[link]` lines, e.g. a short test interval.
pub const FAST_LINK: &str =
    "test_interval = \"1h\"\nflash_receipt_alarm = \"5s\"\nretry_window = \"5s\"\n";

impl Site {
    /// Creates keys and a config for `name` under `root`, listening on `listen`.
    pub fn create(
        root: &Path,
        name: &str,
        language: &str,
        listen: SocketAddr,
        peers: &[PeerEntry],
        link: &str,
    ) -> Site {
        let dir = root.join(name.to_lowercase());
        std::fs::create_dir_all(&dir).expect("dir");
        let key_path = dir.join("station.key");
        if !key_path.exists() {
            let mut keys =
                StationKeys::generate(StationName::new(name).expect("name")).expect("keys");
            // Benches measure classic sealing too: stations as they were
            // before post-quantum keys.
            if std::env::var("HOTLINE_BENCH_SEALING").is_ok_and(|v| v == "classic") {
                keys.pq = None;
            }
            write_key_file(&key_path, &keys, None).expect("key file");
        }
        let mut text = format!(
            "[station]\nname = \"{name}\"\nlanguage = \"{language}\"\nlisten = \"{listen}\"\n\n[link]\n{link}\n\n\
             [[operators]]\nname = \"op\"\nclearance = \"TEST\"\npassphrase_hash = \"{hash}\"\n\n\
             [[operators]]\nname = \"op2\"\nclearance = \"TEST\"\npassphrase_hash = \"{hash}\"\n",
            hash = operator_hash()
        );
        for p in peers {
            text.push('\n');
            text.push_str(&hotline::config::peer_table(&p.keys));
            if let Some(a) = p.primary {
                text.push_str(&format!("primary = \"{a}\"\n"));
            }
            if let Some(a) = p.backup {
                text.push_str(&format!("backup = \"{a}\"\n"));
            }
        }
        let config_path = dir.join("operator.toml");
        hotline::fsutil::replace_atomic(&config_path, text.as_bytes(), 0o600).expect("config");
        Site {
            name: StationName::new(name).expect("name"),
            dir,
            config_path,
            listen,
        }
    }

    pub fn keys(&self) -> StationKeys {
        hotline::crypto::read_key_file(&self.dir.join("station.key"), || Err("none".into()))
            .expect("keys")
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path).expect("config")
    }

    pub fn entry(&self, primary: Option<SocketAddr>, backup: Option<SocketAddr>) -> PeerEntry {
        PeerEntry {
            name: self.name.to_string(),
            keys: self.keys().public(),
            primary,
            backup,
        }
    }

    pub async fn start(&self) -> Station {
        self.start_with(Options::default()).await
    }

    pub async fn start_with(&self, options: Options) -> Station {
        Station::start(self.config(), self.keys(), options)
            .await
            .expect("station starts")
    }

    /// Starts the station again on its port once its last run's endpoint
    /// has let go of it.
    pub async fn restart(&self) -> Station {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Station::start(self.config(), self.keys(), Options::default()).await {
                Ok(s) => return s,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("restart: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("station does not restart: {e}"),
            }
        }
    }
}

/// The passphrase of operator `op` in every test site.
pub const PASSPHRASE: &str = "test passphrase";

fn operator_hash() -> String {
    use std::sync::OnceLock;
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        hotline::passphrase::hash(&age::secrecy::SecretString::from(PASSPHRASE.to_string()))
            .expect("hash")
    })
    .clone()
}

pub fn op() -> OperatorName {
    OperatorName::new("op").expect("name")
}

/// Two sites that know each other: WASHINGTON (en) and MOSCOW (ru).
pub fn pair(root: &Path, link: &str) -> (Site, Site) {
    let (wa, ma) = (free_addr(), free_addr());
    // Keys first, so each config can pin the other's key.
    let w0 = Site::create(root, "WASHINGTON", "en", wa, &[], link);
    let m0 = Site::create(root, "MOSCOW", "ru", ma, &[], link);
    let w = Site::create(
        root,
        "WASHINGTON",
        "en",
        wa,
        &[m0.entry(Some(ma), None)],
        link,
    );
    let m = Site::create(root, "MOSCOW", "ru", ma, &[w0.entry(Some(wa), None)], link);
    (w, m)
}

/// A general-message draft.
pub fn general(subject: &str) -> Draft {
    let mut d = Draft {
        template_id: "general".into(),
        ..Draft::default()
    };
    d.fields.insert("subject".into(), subject.into());
    d.fields.insert("text".into(), format!("body of {subject}"));
    d
}

/// Waits until `pred` holds for an event, or fails after `limit`.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<Event>,
    limit: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event channel closed: {e}"),
            Err(_) => panic!("no matching event within {limit:?}"),
        }
    }
}

/// Waits until `station`'s link to `peer` is up, or fails after `limit`.
/// Subscribes before it looks, so a link that came up before the call is
/// seen in the status and one that comes up after is seen as an event.
pub async fn wait_link_up(station: &Station, peer: &str, limit: Duration) {
    let mut rx = station.subscribe();
    let up = |s: &Station| s.status().links.iter().any(|l| l.peer == peer && l.up);
    if up(station) {
        return;
    }
    wait_event(
        &mut rx,
        limit,
        |e| matches!(e, Event::LinkUp { peer: p, .. } if p == peer),
    )
    .await;
}

/// Polls `pred` every 50 ms until it holds, or fails after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !pred() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks an after-action report of `tests/fixtures/short.toml` in which
/// both expectations of its one inject were met.
pub fn assert_short_report_met(text: &str) {
    assert!(text.contains("# After-action report: "), "{text}");
    assert!(text.contains("EXERCISE"), "{text}");
    assert!(
        text.contains("| `ping` | acknowledge | within 20s | MET |"),
        "{text}"
    );
    assert!(
        text.contains("| `ping` | reply with `general` | within 25s | MET |"),
        "{text}"
    );
    assert_eq!(text.matches("| MET |").count(), 2, "{text}");
}
