//! Precedence: FLASH > IMMEDIATE > PRIORITY > ROUTINE. It orders sending, the
//! inbound queue, alarms and acknowledgement deadlines.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgent a message is. `Ord` sorts the most urgent first, so a sorted
/// queue starts with FLASH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Precedence {
    Flash,
    Immediate,
    Priority,
    Routine,
}

impl Precedence {
    pub const ALL: [Precedence; 4] = [
        Precedence::Flash,
        Precedence::Immediate,
        Precedence::Priority,
        Precedence::Routine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Precedence::Flash => "FLASH",
            Precedence::Immediate => "IMMEDIATE",
            Precedence::Priority => "PRIORITY",
            Precedence::Routine => "ROUTINE",
        }
    }

    /// The one-letter prosign used on teletype circuits (Z, O, P, R).
    pub fn prosign(self) -> char {
        match self {
            Precedence::Flash => 'Z',
            Precedence::Immediate => 'O',
            Precedence::Priority => 'P',
            Precedence::Routine => 'R',
        }
    }

    /// 0 for FLASH up to 3 for ROUTINE: the order stored in the journal.
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn from_rank(rank: u8) -> Option<Precedence> {
        Precedence::ALL.get(usize::from(rank)).copied()
    }
}

impl fmt::Display for Precedence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for text that names no precedence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a precedence; use FLASH, IMMEDIATE, PRIORITY or ROUTINE")]
pub struct UnknownPrecedence(pub String);

impl FromStr for Precedence {
    type Err = UnknownPrecedence;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "FLASH" | "Z" => Ok(Precedence::Flash),
            "IMMEDIATE" | "O" => Ok(Precedence::Immediate),
            "PRIORITY" | "P" => Ok(Precedence::Priority),
            "ROUTINE" | "R" => Ok(Precedence::Routine),
            _ => Err(UnknownPrecedence(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_sorts_first() {
        let mut all = vec![
            Precedence::Routine,
            Precedence::Flash,
            Precedence::Priority,
            Precedence::Immediate,
        ];
        all.sort();
        assert_eq!(all, Precedence::ALL.to_vec());
    }

    #[test]
    fn parses_names_and_prosigns() {
        assert_eq!("flash".parse(), Ok(Precedence::Flash));
        assert_eq!("O".parse(), Ok(Precedence::Immediate));
        assert!("urgent".parse::<Precedence>().is_err());
        for p in Precedence::ALL {
            assert_eq!(Precedence::from_rank(p.rank()), Some(p));
        }
    }
}
