//! Station cards: the public TOML a station hands its peers out of band.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::keys::{
    PeerKeys, parse_age_recipient, parse_pq_recipient, parse_signing_key, same_fingerprint,
    signing_key_text,
};
use crate::domain::StationName;

/// The largest card read: a real one is a few hundred bytes.
pub const MAX_CARD: u64 = 64 * 1024;
/// The most addresses a card may list.
pub const MAX_ADDRESSES: usize = 8;

/// A station's public card, exactly as written to and read from TOML.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationCard {
    pub station: StationName,
    pub signing_key: String,
    pub age_recipient: String,
    /// The hybrid post-quantum recipient (`age1pq1…`); absent on the card
    /// of a station made before hotline had one. Its presence changes the
    /// fingerprint's format ([`super::keys::fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pq_recipient: Option<String>,
    pub fingerprint: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Why a card was refused.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("{path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: key `{key}`: {message}")]
    BadKey {
        path: String,
        key: &'static str,
        message: String,
    },
    #[error(
        "{path}: the fingerprint written on the card does not match its keys \
         (computed {computed}); the card is damaged or was altered"
    )]
    FingerprintMismatch { path: String, computed: String },
}

impl StationCard {
    pub fn from_keys(keys: &PeerKeys, addresses: Vec<String>, time_zone: Option<String>) -> Self {
        StationCard {
            station: keys.name.clone(),
            signing_key: signing_key_text(&keys.signing),
            age_recipient: keys.age.to_string(),
            pq_recipient: keys.pq.as_ref().map(|r| r.to_string()),
            fingerprint: keys.fingerprint(),
            addresses,
            time_zone,
        }
    }

    /// The card as a commented TOML document.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# hotline station card for {}. It is public: give it to peer stations out of band,\n\
             # and read the fingerprint aloud to them so they can check it.\n{body}",
            self.station
        )
    }

    /// Reads a card: a regular file of at most [`MAX_CARD`] bytes (a
    /// device, a FIFO or a huge file is refused before it is read).
    pub fn load(path: &Path) -> Result<(Self, PeerKeys), CardError> {
        use std::io::Read;
        let shown = crate::sanitize::inert(&path.display().to_string());
        let read = |cause| CardError::Read {
            path: shown.clone(),
            cause,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if !meta.is_file() {
            return Err(CardError::Parse {
                path: shown,
                message: "is not a regular file; give the path of a station card (.toml)".into(),
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_CARD + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_CARD {
            return Err(CardError::Parse {
                path: shown,
                message: format!(
                    "is larger than {MAX_CARD} bytes; a station card is a few hundred"
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| CardError::Parse {
            path: shown.clone(),
            message: "is not UTF-8 text".into(),
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses a card and checks that its fingerprint matches its keys.
    pub fn parse(text: &str, path: &str) -> Result<(Self, PeerKeys), CardError> {
        let card: StationCard = toml::from_str(text).map_err(|e| CardError::Parse {
            path: path.to_string(),
            message: crate::problem::describe_toml_error(text, &e),
        })?;
        let keys = card
            .keys()
            .and_then(|keys| card.check_values().map(|()| keys))
            .map_err(|(key, message)| CardError::BadKey {
                path: path.to_string(),
                key,
                message,
            })?;
        let computed = keys.fingerprint();
        if !same_fingerprint(&computed, &card.fingerprint) {
            return Err(CardError::FingerprintMismatch {
                path: path.to_string(),
                computed,
            });
        }
        Ok((card, keys))
    }

    /// Addresses are IP:port (at most [`MAX_ADDRESSES`]); the time zone is
    /// a name from the tz database. Nothing else can reach the config or
    /// the screen from a card.
    fn check_values(&self) -> Result<(), (&'static str, String)> {
        if self.addresses.len() > MAX_ADDRESSES {
            return Err((
                "addresses",
                format!(
                    "{} addresses; a card lists at most {MAX_ADDRESSES}",
                    self.addresses.len()
                ),
            ));
        }
        for a in &self.addresses {
            if a.parse::<std::net::SocketAddr>().is_err() {
                return Err((
                    "addresses",
                    format!(
                        "`{}` is not an IP address with a port, such as 192.0.2.10:7401 or [2001:db8::1]:7401",
                        crate::sanitize::inert(a)
                    ),
                ));
            }
        }
        if let Some(tz) = &self.time_zone {
            let named = !tz.is_empty()
                && !tz.starts_with('/')
                && !tz
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
                && tz
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
            if !named || jiff::tz::TimeZone::get(tz).is_err() {
                return Err((
                    "time_zone",
                    format!(
                        "`{}` is not a time zone of the tz database, such as Europe/Moscow or UTC",
                        crate::sanitize::inert(tz)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn keys(&self) -> Result<PeerKeys, (&'static str, String)> {
        Ok(PeerKeys {
            name: self.station.clone(),
            signing: parse_signing_key(&self.signing_key).map_err(|e| ("signing_key", e))?,
            age: parse_age_recipient(&self.age_recipient).map_err(|e| ("age_recipient", e))?,
            pq: self
                .pq_recipient
                .as_deref()
                .map(parse_pq_recipient)
                .transpose()
                .map_err(|e| ("pq_recipient", e))?,
            handover: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StationKeys;

    #[test]
    fn card_round_trips_and_detects_swapped_keys() {
        let a = StationKeys::generate(StationName::new("WASHINGTON").expect("name")).expect("keys");
        let b = StationKeys::generate(StationName::new("MOSCOW").expect("name")).expect("keys");
        let card = StationCard::from_keys(
            &a.public(),
            vec!["127.0.0.1:7401".into()],
            Some("America/New_York".into()),
        );
        let text = card.to_toml();
        let (back, keys) = StationCard::parse(&text, "a.toml").expect("parses");
        assert_eq!(back, card);
        assert_eq!(keys.signing, a.signing.verifying_key());

        let forged = text.replace(&card.age_recipient, &b.age.to_public().to_string());
        assert!(matches!(
            StationCard::parse(&forged, "f.toml"),
            Err(CardError::FingerprintMismatch { .. })
        ));
        let unknown = format!("{text}\ncolour = \"red\"\n");
        let err = StationCard::parse(&unknown, "u.toml").expect_err("unknown key");
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
