//! operator.toml exactly as written: every value that needs checking keeps
//! its span, so that an error can name the line it came from.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub station: RawStation,
    #[serde(default)]
    pub journal: RawJournal,
    #[serde(default)]
    pub link: RawLink,
    #[serde(default)]
    pub deadlines: RawDeadlines,
    #[serde(default)]
    pub console: RawConsole,
    #[serde(default)]
    pub attachments: RawAttachments,
    #[serde(default)]
    pub labels: RawLabels,
    pub backup: Option<RawBackup>,
    #[serde(default)]
    pub control: RawControl,
    #[serde(default)]
    pub operators: Vec<RawOperator>,
    #[serde(default)]
    pub peers: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStation {
    pub name: S<String>,
    pub key_file: Option<S<String>>,
    pub card: Option<S<String>>,
    pub data_dir: Option<S<String>>,
    pub language: Option<S<String>>,
    pub time_zone: Option<S<String>>,
    pub listen: Option<S<String>>,
    pub addresses: Option<Vec<S<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawJournal {
    pub path: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    pub test_interval: Option<S<String>>,
    pub flash_receipt_alarm: Option<S<String>>,
    pub max_clock_skew: Option<S<String>>,
    pub retry_window: Option<S<String>>,
    pub down_alarm: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAttachments {
    pub max_size: Option<S<String>>,
    pub max_message: Option<S<String>>,
    pub peer_quota: Option<S<String>>,
    pub total_quota: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub socket: Option<S<String>>,
    pub group: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    pub interval: S<String>,
    pub directory: S<String>,
    pub keep: Option<S<i64>>,
    pub to: Option<Vec<S<String>>>,
    pub with_keys: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDeadlines {
    pub flash: Option<S<String>>,
    pub immediate: Option<S<String>>,
    pub priority: Option<S<String>>,
    pub routine: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub idle_lock: Option<S<String>>,
    pub two_person_flash: Option<bool>,
    pub lockout_after: Option<S<i64>>,
    pub lockout_for: Option<S<String>>,
    pub ring: Option<Vec<S<String>>>,
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperator {
    pub name: S<String>,
    pub clearance: S<String>,
    pub passphrase_hash: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLabels {
    pub markings: Option<Vec<S<String>>>,
    pub default: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    pub name: S<String>,
    pub max_label: Option<S<String>>,
    pub card: Option<S<String>>,
    pub signing_key: Option<S<String>>,
    pub age_recipient: Option<S<String>>,
    pub pq_recipient: Option<S<String>>,
    pub fingerprint: Option<S<String>>,
    pub primary: Option<S<String>>,
    pub backup: Option<S<String>>,
    pub time_zone: Option<S<String>>,
}
