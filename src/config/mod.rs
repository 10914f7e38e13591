//! operator.toml: parsed into a raw, spanned form (`raw`), then checked into
//! a validated [`Config`]. Every problem names the file, the line and the key,
//! and says what would be valid. Unknown keys are errors.

mod edit;
mod labels;
mod raw;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use edit::{Control, add_operator, add_peer, example_for, peer_table};
pub use labels::LabelPolicy;

use crate::crypto::StationCard;
use crate::crypto::keys::{
    PeerKeys, fingerprint, parse_age_recipient, parse_pq_recipient, parse_signing_key,
    same_fingerprint,
};
use crate::domain::{Language, OperatorName, Precedence, StationName, parse_duration};
use crate::fsutil;
use crate::problem::{Problem, Problems, line_of};
use raw::{RawConfig, S};

/// Where the config is looked for when `--config` is not given.
pub const CONFIG_ENV: &str = "HOTLINE_CONFIG";
pub const DEFAULT_CONFIG: &str = "operator.toml";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7401";

/// One problem in a config file.
pub type ConfigError = Problem;
/// Every problem found in a config file.
pub type ConfigErrors = Problems;

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub station: StationConfig,
    pub journal_path: PathBuf,
    pub link: LinkConfig,
    pub deadlines: Deadlines,
    pub console: ConsoleConfig,
    pub attachments: AttachmentLimits,
    /// The security markings messages carry.
    pub labels: LabelPolicy,
    /// Backups the station takes by itself; none without `[backup]`.
    pub backup: Option<BackupSchedule>,
    pub control: ControlConfig,
    pub operators: Vec<Operator>,
    pub peers: Vec<Peer>,
    /// Things worth saying that do not stop the station (loose read bits).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StationConfig {
    pub name: StationName,
    pub key_file: PathBuf,
    pub card: PathBuf,
    pub data_dir: PathBuf,
    pub language: Language,
    pub time_zone: String,
    pub listen: SocketAddr,
    pub addresses: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub test_interval: Duration,
    pub flash_receipt_alarm: Duration,
    pub max_clock_skew: Duration,
    pub retry_window: Duration,
    /// How long a link may be down before it raises an alarm.
    pub down_alarm: Duration,
}

/// Acknowledgement deadline per precedence, counted from the receipt time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines {
    pub flash: Duration,
    pub immediate: Duration,
    pub priority: Duration,
    pub routine: Duration,
}

impl Default for Deadlines {
    /// The military handling objectives.
    fn default() -> Self {
        Deadlines {
            flash: Duration::from_secs(10 * 60),
            immediate: Duration::from_secs(30 * 60),
            priority: Duration::from_secs(3 * 3600),
            routine: Duration::from_secs(6 * 3600),
        }
    }
}

impl Deadlines {
    pub fn for_precedence(&self, p: Precedence) -> Duration {
        match p {
            Precedence::Flash => self.flash,
            Precedence::Immediate => self.immediate,
            Precedence::Priority => self.priority,
            Precedence::Routine => self.routine,
        }
    }
}

/// `[backup]`: how often the station backs itself up, where, how many it
/// keeps, and whom they are sealed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSchedule {
    pub interval: Duration,
    pub directory: PathBuf,
    /// The newest this many scheduled backups are kept; older ones go.
    pub keep: usize,
    /// age recipients (`age1pq1…`, `age1…`); none means the station's own.
    pub to: Vec<String>,
    pub with_keys: bool,
}

/// `[control]`: where the control socket is, and who besides the
/// station's own user may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Default DATA_DIR/station.sock.
    pub socket: PathBuf,
    /// Members of this group may use the socket (mode 0660); without it
    /// the socket is the station's user's alone (0600).
    pub group: Option<ControlGroup>,
}

/// The group whose members are the station's operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlGroup {
    pub name: String,
    pub gid: u32,
}

/// How many scheduled backups are kept unless `[backup] keep` says.
pub const DEFAULT_BACKUPS_KEPT: usize = 14;

/// How large attachments may be, sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// The most one attachment's plaintext may hold.
    pub max_size: u64,
    /// The most all of one message's attachments may hold together.
    pub max_message: u64,
    /// The most this station keeps from one peer, messages and attachments
    /// together; an alarm goes up at 90%.
    pub peer_quota: u64,
    /// The most it keeps from all peers together.
    pub total_quota: u64,
}

/// 4 GiB from one peer, 16 GiB in all.
pub const DEFAULT_PEER_QUOTA: u64 = 4 << 30;
pub const DEFAULT_TOTAL_QUOTA: u64 = 16 << 30;

/// 64 MiB, for one attachment and for all of a message's together.
pub const DEFAULT_ATTACHMENT_LIMIT: u64 = 64 << 20;

impl Default for AttachmentLimits {
    fn default() -> Self {
        AttachmentLimits {
            max_size: DEFAULT_ATTACHMENT_LIMIT,
            max_message: DEFAULT_ATTACHMENT_LIMIT,
            peer_quota: DEFAULT_PEER_QUOTA,
            total_quota: DEFAULT_TOTAL_QUOTA,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub idle_lock: Duration,
    pub two_person_flash: bool,
    pub lockout_after: u32,
    pub lockout_for: Duration,
    /// Key rebindings: action name → (key text, line in the file). Checked
    /// against the keymap by the console and by `hotline check`.
    pub keys: std::collections::BTreeMap<String, (String, usize)>,
    /// What rings the console's bell as it arrives.
    pub ring: Ring,
}

/// What rings as it arrives (`[console] ring`): arrivals by precedence,
/// and the peer's acknowledgements of our messages. A FLASH always rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    /// By precedence rank, FLASH first (always true).
    pub arrivals: [bool; 4],
    pub acknowledgements: bool,
}

impl Default for Ring {
    fn default() -> Ring {
        Ring {
            arrivals: [true, true, false, false],
            acknowledgements: false,
        }
    }
}

impl Ring {
    pub fn arrival(&self, precedence: Precedence) -> bool {
        precedence == Precedence::Flash || self.arrivals[precedence.rank() as usize]
    }
}

#[derive(Debug, Clone)]
pub struct Operator {
    pub name: OperatorName,
    pub clearance: String,
    pub passphrase_hash: String,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub keys: PeerKeys,
    pub primary: Option<SocketAddr>,
    pub backup: Option<SocketAddr>,
    pub time_zone: String,
    /// The highest marking this peer may receive; `None`: any.
    pub max_label: Option<String>,
}

impl Config {
    /// Finds the config: `explicit`, else `$HOTLINE_CONFIG`, else `./operator.toml`.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        match std::env::var_os(CONFIG_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_CONFIG),
        }
    }

    /// Reads, checks permissions and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let whole = |message: String| {
            Problems(vec![ConfigError {
                path: path.to_path_buf(),
                line: None,
                key: String::new(),
                message,
            }])
        };
        let text = fsutil::read_regular_text(path, fsutil::MAX_TEXT_FILE)
            .map_err(|e| whole(e.to_string()))?;
        // Its kind first (a device's permissions mean nothing), then who
        // may change it.
        let readers = fsutil::check_config(path).map_err(|e| whole(permission_message(e)))?;
        let mut config = Config::parse(&text, path)?;
        // Readable by the operators' group is what a station run as a
        // service needs: its operators' commands read this file.
        let operators = config.control.group.as_ref().map(|g| g.gid);
        if readers.others || readers.group.is_some_and(|gid| Some(gid) != operators) {
            config.warnings.push(format!(
                "{}: other users can read this file, which holds passphrase hashes; run `chmod 600 {}` (or 640 with the file in the group named in [control] group)",
                path.display(),
                path.display()
            ));
        }
        Ok(config)
    }

    /// Validates config text; `path` names the file in errors and anchors
    /// relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| Problems(vec![crate::problem::from_toml_error(path, text, &e)]))?;
        let mut c = Checker {
            path: path.to_path_buf(),
            dir: path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            text,
            errors: Vec::new(),
        };
        let config = c.check(raw);
        match config {
            Some(config) if c.errors.is_empty() => Ok(config),
            _ => Err(Problems(c.errors)),
        }
    }

    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.keys.name.as_str() == name)
    }

    pub fn operator(&self, name: &str) -> Option<&Operator> {
        self.operators.iter().find(|o| o.name.as_str() == name)
    }
}

/// The permission problem without the path, which the Problem names already.
fn permission_message(e: fsutil::PermissionError) -> String {
    match e {
        fsutil::PermissionError::OthersCanWrite { path, mode }
        | fsutil::PermissionError::SecretReadable { path, mode } => format!(
            "permissions {mode:03o} let other users change this file, which holds passphrase hashes; it is refused. Run `chmod 600 {}`",
            path.display()
        ),
        fsutil::PermissionError::Io { cause, .. } => cause.to_string(),
        other @ (fsutil::PermissionError::Symlink { .. }
        | fsutil::PermissionError::NotOurs { .. }) => other.to_string(),
    }
}

struct Checker<'t> {
    path: PathBuf,
    dir: PathBuf,
    text: &'t str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.errors.push(Problem::at(
            self.path.clone(),
            self.text,
            span.map(|s| s.start),
            key,
            message,
        ));
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn duration(&mut self, v: &Option<S<String>>, key: &str, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.err(Some(v.span()), key, "must be longer than zero");
                default
            }
            Err(e) => {
                self.err(Some(v.span()), key, e.to_string());
                default
            }
        }
    }

    fn size(&mut self, v: &Option<S<String>>, key: &str, default: u64) -> u64 {
        let Some(v) = v else { return default };
        match crate::domain::parse_size(v.get_ref()) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                self.err(Some(v.span()), key, "must be larger than zero");
                default
            }
            Err(e) => {
                self.err(Some(v.span()), key, e.to_string());
                default
            }
        }
    }

    fn time_zone(&mut self, v: &Option<S<String>>, key: &str) -> String {
        let Some(v) = v else { return "UTC".into() };
        if jiff::tz::TimeZone::get(v.get_ref()).is_err() {
            self.err(
                Some(v.span()),
                key,
                format!("`{}` is not an IANA time zone; write one such as \"UTC\", \"Europe/Moscow\" or \"America/New_York\"", v.get_ref()),
            );
        }
        v.get_ref().clone()
    }

    fn address(&mut self, v: &S<String>, key: &str) -> Option<SocketAddr> {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("`{}` is not an address; write IP:port, such as \"192.0.2.10:7401\" or \"[2001:db8::1]:7401\"", v.get_ref()),
                );
                None
            }
        }
    }

    fn check(&mut self, raw: RawConfig) -> Option<Config> {
        let st = &raw.station;
        // A bad name or address is reported, then replaced by a placeholder
        // so that every other problem in the file is still found.
        let name = match StationName::new(st.name.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.err(Some(st.name.span()), "station.name", e.to_string());
                None
            }
        };
        let placeholder = || StationName::new("INVALID").ok();
        let language = match &st.language {
            None => Language::EN,
            Some(v) => match v.get_ref().parse::<Language>() {
                Ok(l) if crate::lang::find(l).is_some() => l,
                Ok(l) => {
                    self.err(
                        Some(v.span()),
                        "station.language",
                        format!(
                            "this build has no console texts in `{l}`; use one of {} (README: Adding a language)",
                            crate::lang::shipped()
                                .iter()
                                .map(|c| format!("\"{}\" ({})", c.language, c.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    Language::EN
                }
                Err(e) => {
                    self.err(Some(v.span()), "station.language", e.to_string());
                    Language::EN
                }
            },
        };
        let time_zone = self.time_zone(&st.time_zone, "station.time_zone");
        let listen = match &st.listen {
            Some(v) => self.address(v, "station.listen"),
            None => DEFAULT_LISTEN.parse().ok(),
        }
        .or_else(|| DEFAULT_LISTEN.parse().ok());
        let addresses = st
            .addresses
            .iter()
            .flatten()
            .filter_map(|a| self.address(a, "station.addresses"))
            .collect();
        let data_dir = self.resolve(st.data_dir.as_ref().map_or("data", |v| v.get_ref()));
        let journal_path = match &raw.journal.path {
            Some(p) => self.resolve(p.get_ref()),
            None => data_dir.join("journal.sqlite"),
        };
        let station = StationConfig {
            name: name.clone().or_else(placeholder)?,
            key_file: self.resolve(st.key_file.as_ref().map_or("station.key", |v| v.get_ref())),
            card: self.resolve(
                st.card
                    .as_ref()
                    .map_or("station.card.toml", |v| v.get_ref()),
            ),
            data_dir,
            language,
            time_zone,
            listen: listen?,
            addresses,
        };

        let l = &raw.link;
        let link = LinkConfig {
            test_interval: self.duration(
                &l.test_interval,
                "link.test_interval",
                Duration::from_secs(3600),
            ),
            flash_receipt_alarm: self.duration(
                &l.flash_receipt_alarm,
                "link.flash_receipt_alarm",
                Duration::from_secs(30),
            ),
            max_clock_skew: self.duration(
                &l.max_clock_skew,
                "link.max_clock_skew",
                Duration::from_secs(30),
            ),
            retry_window: self.duration(
                &l.retry_window,
                "link.retry_window",
                Duration::from_secs(300),
            ),
            down_alarm: self.duration(&l.down_alarm, "link.down_alarm", Duration::from_secs(60)),
        };
        let d = &raw.deadlines;
        let def = Deadlines::default();
        let deadlines = Deadlines {
            flash: self.duration(&d.flash, "deadlines.flash", def.flash),
            immediate: self.duration(&d.immediate, "deadlines.immediate", def.immediate),
            priority: self.duration(&d.priority, "deadlines.priority", def.priority),
            routine: self.duration(&d.routine, "deadlines.routine", def.routine),
        };
        let cs = &raw.console;
        let lockout_after = match &cs.lockout_after {
            None => 5,
            Some(v) => match u32::try_from(*v.get_ref()) {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    self.err(
                        Some(v.span()),
                        "console.lockout_after",
                        "must be a whole number from 1 to 100",
                    );
                    5
                }
            },
        };
        let ring = match &cs.ring {
            None => Ring::default(),
            Some(list) => {
                let mut ring = Ring {
                    arrivals: [true, false, false, false],
                    acknowledgements: false,
                };
                for item in list {
                    let text = item.get_ref();
                    if text.eq_ignore_ascii_case("ACKNOWLEDGEMENT") {
                        ring.acknowledgements = true;
                    } else if let Ok(p) = text.parse::<Precedence>() {
                        ring.arrivals[p.rank() as usize] = true;
                    } else {
                        self.err(
                            Some(item.span()),
                            "console.ring",
                            format!(
                                "`{text}` is not something that rings; list precedences (FLASH, IMMEDIATE, PRIORITY, ROUTINE) and ACKNOWLEDGEMENT (a FLASH always rings)"
                            ),
                        );
                    }
                }
                ring
            }
        };
        let console = ConsoleConfig {
            ring,
            idle_lock: self.duration(
                &cs.idle_lock,
                "console.idle_lock",
                Duration::from_secs(15 * 60),
            ),
            two_person_flash: cs.two_person_flash.unwrap_or(false),
            lockout_after,
            lockout_for: self.duration(
                &cs.lockout_for,
                "console.lockout_for",
                Duration::from_secs(300),
            ),
            keys: cs
                .keys
                .iter()
                .map(|(action, key)| {
                    (
                        action.clone(),
                        (key.get_ref().clone(), line_of(self.text, key.span().start)),
                    )
                })
                .collect(),
        };

        let a = &raw.attachments;
        let attachments = AttachmentLimits {
            max_size: self.size(
                &a.max_size,
                "attachments.max_size",
                DEFAULT_ATTACHMENT_LIMIT,
            ),
            max_message: self.size(
                &a.max_message,
                "attachments.max_message",
                DEFAULT_ATTACHMENT_LIMIT,
            ),
            peer_quota: self.size(&a.peer_quota, "attachments.peer_quota", DEFAULT_PEER_QUOTA),
            total_quota: self.size(
                &a.total_quota,
                "attachments.total_quota",
                DEFAULT_TOTAL_QUOTA,
            ),
        };

        let mut operators: Vec<Operator> = Vec::new();
        for o in &raw.operators {
            let name = match OperatorName::new(o.name.get_ref()) {
                Ok(n) => n,
                Err(e) => {
                    self.err(Some(o.name.span()), "operators.name", e.to_string());
                    continue;
                }
            };
            if operators.iter().any(|x| x.name == name) {
                self.err(
                    Some(o.name.span()),
                    "operators.name",
                    format!("operator `{name}` is listed twice"),
                );
            }
            if !crate::passphrase::is_argon2id_hash(o.passphrase_hash.get_ref()) {
                self.err(
                    Some(o.passphrase_hash.span()),
                    "operators.passphrase_hash",
                    format!("not an argon2id hash (`$argon2id$…`); set it with `hotline operator add {name}`"),
                );
            }
            operators.push(Operator {
                name,
                clearance: o.clearance.get_ref().clone(),
                passphrase_hash: o.passphrase_hash.get_ref().clone(),
            });
        }

        let labels = self.labels(&raw.labels);
        let backup = raw.backup.as_ref().map(|b| self.backup(b));
        let control = self.control(&raw.control, &station.data_dir);
        let mut peers: Vec<Peer> = Vec::new();
        for p in &raw.peers {
            if let Some(peer) = self.peer(p, name.as_ref(), &labels) {
                if peers.iter().any(|x| x.keys.name == peer.keys.name) {
                    self.err(
                        Some(p.name.span()),
                        "peers.name",
                        format!("peer `{}` is listed twice", peer.keys.name),
                    );
                }
                peers.push(peer);
            }
        }

        Some(Config {
            path: self.path.clone(),
            station,
            journal_path,
            link,
            deadlines,
            console,
            attachments,
            labels,
            warnings: match &backup {
                Some(b) if b.to.is_empty() => vec![
                    "[backup] has no `to`: scheduled backups are sealed only to the station's own key, and will not open once its key file is lost with its disk".into(),
                ],
                _ => Vec::new(),
            },
            backup,
            control,
            operators,
            peers,
        })
    }

    fn control(&mut self, c: &raw::RawControl, data_dir: &Path) -> ControlConfig {
        let socket = match &c.socket {
            Some(s) => self.resolve(s.get_ref()),
            None => data_dir.join("station.sock"),
        };
        let group = c.group.as_ref().and_then(|g| {
            let name = g.get_ref().trim();
            match fsutil::group_id(name) {
                Ok(Some(gid)) => Some(ControlGroup {
                    name: name.to_string(),
                    gid,
                }),
                Ok(None) => {
                    self.err(
                        Some(g.span()),
                        "control.group",
                        format!("no group `{name}` on this machine: create it (the package makes `hotline`), or leave `group` out for a socket only the station's own user can use"),
                    );
                    None
                }
                Err(e) => {
                    self.err(
                        Some(g.span()),
                        "control.group",
                        format!("looking up group `{name}`: {e}"),
                    );
                    None
                }
            }
        });
        ControlConfig { socket, group }
    }

    fn backup(&mut self, b: &raw::RawBackup) -> BackupSchedule {
        let interval = self.duration(
            &Some(b.interval.clone()),
            "backup.interval",
            Duration::from_secs(86_400),
        );
        let keep = match &b.keep {
            None => DEFAULT_BACKUPS_KEPT,
            Some(k) => match usize::try_from(*k.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.err(Some(k.span()), "backup.keep", "must be a whole number of at least 1 (how many scheduled backups are kept)");
                    DEFAULT_BACKUPS_KEPT
                }
            },
        };
        let mut to = Vec::new();
        for r in b.to.iter().flatten() {
            match r.get_ref().parse::<crate::crypto::keys::OwnRecipient>() {
                Ok(_) => to.push(r.get_ref().trim().to_string()),
                Err(e) => self.err(Some(r.span()), "backup.to", e),
            }
        }
        BackupSchedule {
            interval,
            directory: self.resolve(b.directory.get_ref()),
            keep,
            to,
            with_keys: b.with_keys.unwrap_or(false),
        }
    }

    fn peer(
        &mut self,
        p: &raw::RawPeer,
        us: Option<&StationName>,
        labels: &LabelPolicy,
    ) -> Option<Peer> {
        let name = match StationName::new(p.name.get_ref()) {
            Ok(n) => n,
            Err(e) => {
                self.err(Some(p.name.span()), "peers.name", e.to_string());
                return None;
            }
        };
        if Some(&name) == us {
            self.err(
                Some(p.name.span()),
                "peers.name",
                "a station cannot be its own peer",
            );
        }
        let keys = match (&p.card, &p.signing_key, &p.age_recipient) {
            (Some(card), None, None) => match StationCard::load(&self.resolve(card.get_ref())) {
                Ok((c, keys)) if c.station == name => keys,
                Ok((c, _)) => {
                    self.err(
                        Some(card.span()),
                        "peers.card",
                        format!("the card is for {}, not {name}", c.station),
                    );
                    return None;
                }
                Err(e) => {
                    self.err(Some(card.span()), "peers.card", e.to_string());
                    return None;
                }
            },
            (None, Some(sk), Some(ar)) => {
                let signing = parse_signing_key(sk.get_ref())
                    .map_err(|e| self.err(Some(sk.span()), "peers.signing_key", e));
                let age = parse_age_recipient(ar.get_ref())
                    .map_err(|e| self.err(Some(ar.span()), "peers.age_recipient", e));
                let pq = match &p.pq_recipient {
                    None => Ok(None),
                    Some(r) => parse_pq_recipient(r.get_ref())
                        .map(Some)
                        .map_err(|e| self.err(Some(r.span()), "peers.pq_recipient", e)),
                };
                let (signing, age, pq) = (signing.ok()?, age.ok()?, pq.ok()?);
                if let Some(fp) = &p.fingerprint {
                    let computed = fingerprint(&name, &signing, &age, pq.as_ref());
                    if !same_fingerprint(fp.get_ref(), &computed) {
                        self.err(
                            Some(fp.span()),
                            "peers.fingerprint",
                            format!("does not match the keys given (they give {computed}); re-add the peer from its card"),
                        );
                    }
                }
                PeerKeys {
                    name: name.clone(),
                    signing,
                    age,
                    pq,
                    handover: Vec::new(),
                }
            }
            _ => {
                self.err(
                    Some(p.name.span()),
                    "peers",
                    format!("peer {name} needs either `card = \"FILE\"` or both `signing_key` and `age_recipient`"),
                );
                return None;
            }
        };
        let primary = p
            .primary
            .as_ref()
            .and_then(|a| self.address(a, "peers.primary"));
        let backup = p
            .backup
            .as_ref()
            .and_then(|a| self.address(a, "peers.backup"));
        let time_zone = self.time_zone(&p.time_zone, "peers.time_zone");
        let max_label = p
            .max_label
            .as_ref()
            .and_then(|m| self.marking(labels, m, "peers.max_label"));
        Some(Peer {
            keys,
            primary,
            backup,
            time_zone,
            max_label,
        })
    }
}
