//! Station and operator names: validated once, then carried as types so that
//! nothing downstream has to wonder whether a name is safe to print or store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a {kind} name must not be empty")]
    Empty { kind: &'static str },
    #[error("a {kind} name has at most {max} characters, `{name}` has {len}")]
    TooLong {
        kind: &'static str,
        name: String,
        len: usize,
        max: usize,
    },
    #[error("a {kind} name may only use {allowed}; `{name}` does not")]
    BadCharacter {
        kind: &'static str,
        name: String,
        allowed: &'static str,
    },
}

/// The longest name, in characters.
pub const MAX_NAME: usize = 32;

/// A refused name as an error shows it: inert, and cut short.
fn shown(name: &str) -> String {
    let cut: String = name.chars().take(MAX_NAME + 8).collect();
    let more = if cut.len() < name.len() { "…" } else { "" };
    format!("{}{more}", crate::sanitize::inert(&cut))
}

fn check(
    kind: &'static str,
    name: &str,
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let len = name.chars().count();
    if len > MAX_NAME {
        return Err(NameError::TooLong {
            kind,
            name: shown(name),
            len,
            max: MAX_NAME,
        });
    }
    if !name.chars().all(ok) {
        return Err(NameError::BadCharacter {
            kind,
            name: shown(name),
            allowed,
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(name: &str) -> Result<Self, NameError> {
                check($kind, name, $allowed, $ok)?;
                Ok(Self(name.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A station's name, such as `WASHINGTON`: capital letters, digits, `-`, `_`.
    StationName,
    "station",
    "capital letters A-Z, digits, '-' and '_'",
    |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_'
);

name_type!(
    /// An operator's name or call sign, such as `j.smith`.
    OperatorName,
    "operator",
    "letters, digits, '.', '-' and '_'",
    |c: char| c.is_alphanumeric() || c == '.' || c == '-' || c == '_'
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_names() {
        assert!(StationName::new("WASHINGTON").is_ok());
        assert!(StationName::new("NRRC-2").is_ok());
        assert!(matches!(
            StationName::new("moscow"),
            Err(NameError::BadCharacter { .. })
        ));
        assert!(matches!(StationName::new(""), Err(NameError::Empty { .. })));
        assert!(matches!(
            StationName::new(&"A".repeat(33)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn operator_names_refuse_control_characters() {
        assert!(OperatorName::new("j.smith").is_ok());
        assert!(OperatorName::new("Иванов").is_ok());
        assert!(OperatorName::new("evil\u{1b}[2J").is_err());
        assert!(OperatorName::new("two words").is_err());
        let err = OperatorName::new("evil\u{1b}]0;title\u{7}").expect_err("escape");
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
        let err = OperatorName::new(&"x".repeat(100_000)).expect_err("long");
        assert!(err.to_string().len() < 200, "{err}");
    }
}
