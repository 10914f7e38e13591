//! The station's alarm board: one alarm per cause, raised by the station
//! alone and kept until its cause ends or an operator clears it. Consoles
//! show the board; they raise nothing of their own.
//!
//! A cause is a kind and a subject (the message, the peer, the remote
//! address). Raising an alarm that is already up only counts it again. An
//! operator's clear of an alarm whose cause is still there (a message still
//! overdue, a link still down) silences it until the cause ends, so the
//! next tick does not raise it again; alarms of a one-off event (a
//! refusal, a refused connection) are simply removed.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::AlarmKind;
use crate::domain::{Language, MessageId};
use crate::t;

/// Most alarms the board holds; past this the oldest one-off alarms go
/// (they are all in the audit log).
pub const MAX_ALARMS: usize = 500;

/// One active alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// What it is about, with the kind naming the cause: a message id, a
    /// peer, a remote address.
    pub subject: String,
    pub peer: Option<String>,
    pub id: Option<MessageId>,
    pub text: String,
    pub raised_at: Timestamp,
    /// How often the cause was seen while the alarm was up.
    pub count: u32,
}

impl AlarmKind {
    /// The kind's name in commands, audit entries and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::FlashNoReceipt => "flash-no-receipt",
            AlarmKind::Refused => "refused",
            AlarmKind::MissedLinkTest => "missed-link-test",
            AlarmKind::ClockSkew => "clock-skew",
            AlarmKind::Gap => "gap",
            AlarmKind::Overdue => "overdue",
            AlarmKind::ConnectionRefused => "connection-refused",
            AlarmKind::AuditMismatch => "audit-mismatch",
            AlarmKind::LinkDown => "link-down",
            AlarmKind::LinkDegraded => "link-degraded",
            AlarmKind::OriginalDiffers => "original-differs",
            AlarmKind::ConflictingId => "conflicting-id",
            AlarmKind::Storage => "storage",
            AlarmKind::KeyRotation => "key-rotation",
            AlarmKind::KeyCompromised => "key-compromised",
            AlarmKind::ShortNotice => "short-notice",
            AlarmKind::Restored => "restored",
            AlarmKind::BackupFailed => "backup-failed",
            AlarmKind::WriteFailed => "write-failed",
        }
    }

    /// The kind's name as consoles show it.
    pub fn label(self, lang: Language) -> &'static str {
        match self {
            AlarmKind::FlashNoReceipt => t!(lang, "alarm.kind_flash_no_receipt"),
            AlarmKind::Refused => t!(lang, "alarm.kind_refused"),
            AlarmKind::MissedLinkTest => t!(lang, "alarm.kind_missed_link_test"),
            AlarmKind::ClockSkew => t!(lang, "alarm.kind_clock_skew"),
            AlarmKind::Gap => t!(lang, "alarm.kind_gap"),
            AlarmKind::Overdue => t!(lang, "alarm.kind_overdue"),
            AlarmKind::ConnectionRefused => t!(lang, "alarm.kind_connection_refused"),
            AlarmKind::AuditMismatch => t!(lang, "alarm.kind_audit_mismatch"),
            AlarmKind::LinkDown => t!(lang, "alarm.kind_link_down"),
            AlarmKind::LinkDegraded => t!(lang, "alarm.kind_link_degraded"),
            AlarmKind::OriginalDiffers => t!(lang, "alarm.kind_original_differs"),
            AlarmKind::ConflictingId => t!(lang, "alarm.kind_conflicting_id"),
            AlarmKind::Storage => t!(lang, "alarm.kind_storage"),
            AlarmKind::KeyRotation => t!(lang, "alarm.kind_key_rotation"),
            AlarmKind::KeyCompromised => t!(lang, "alarm.kind_key_compromised"),
            AlarmKind::ShortNotice => t!(lang, "alarm.kind_short_notice"),
            AlarmKind::Restored => t!(lang, "alarm.kind_restored"),
            AlarmKind::BackupFailed => t!(lang, "alarm.kind_backup_failed"),
            AlarmKind::WriteFailed => t!(lang, "alarm.kind_write_failed"),
        }
    }

    /// How grave it is, gravest first (0): where one line shows one alarm,
    /// it shows the gravest, so that a newer, lesser one never hides it.
    pub fn gravity(self) -> u8 {
        match self {
            AlarmKind::FlashNoReceipt => 0,
            AlarmKind::KeyCompromised => 0,
            AlarmKind::Overdue => 1,
            AlarmKind::AuditMismatch => 2,
            AlarmKind::Refused => 3,
            AlarmKind::LinkDown => 4,
            AlarmKind::Gap => 5,
            AlarmKind::MissedLinkTest => 6,
            AlarmKind::ClockSkew => 7,
            AlarmKind::OriginalDiffers => 3,
            AlarmKind::ConflictingId => 3,
            AlarmKind::Storage => 4,
            AlarmKind::LinkDegraded => 8,
            AlarmKind::KeyRotation => 5,
            AlarmKind::ShortNotice => 3,
            AlarmKind::Restored => 2,
            AlarmKind::BackupFailed => 4,
            AlarmKind::WriteFailed => 1,
            AlarmKind::ConnectionRefused => 9,
        }
    }

    /// Whether the station sees this cause end by itself (a receipt, an
    /// acknowledgement, the link returning), or only an operator can clear
    /// it.
    pub fn ends_by_itself(self) -> bool {
        match self {
            AlarmKind::FlashNoReceipt
            | AlarmKind::Overdue
            | AlarmKind::Gap
            | AlarmKind::MissedLinkTest
            | AlarmKind::ClockSkew
            | AlarmKind::LinkDown
            | AlarmKind::LinkDegraded
            | AlarmKind::Storage
            | AlarmKind::KeyRotation
            | AlarmKind::KeyCompromised
            | AlarmKind::Restored
            | AlarmKind::BackupFailed
            | AlarmKind::WriteFailed => true,
            // An altered audit log stays altered: the next check raises it
            // again.
            AlarmKind::Refused
            | AlarmKind::ConnectionRefused
            | AlarmKind::AuditMismatch
            | AlarmKind::OriginalDiffers
            | AlarmKind::ConflictingId
            | AlarmKind::ShortNotice => false,
        }
    }
}

type Key = (AlarmKind, String);

/// The alarms up now, and the causes an operator silenced.
#[derive(Default)]
pub struct Board {
    up: BTreeMap<Key, Alarm>,
    silenced: BTreeSet<Key>,
}

/// What raising did.
pub enum Raised {
    /// A new alarm, or one whose text changed, for subscribers.
    New(Alarm),
    /// Counted again, or silenced by an operator: nothing to tell.
    Known,
}

impl Board {
    pub fn raise(&mut self, alarm: Alarm) -> Raised {
        let key = (alarm.kind, alarm.subject.clone());
        if self.silenced.contains(&key) {
            return Raised::Known;
        }
        if let Some(up) = self.up.get_mut(&key) {
            up.count = up.count.saturating_add(1);
            if up.text == alarm.text {
                return Raised::Known;
            }
            up.text = alarm.text;
            return Raised::New(up.clone());
        }
        self.up.insert(key, alarm.clone());
        self.trim();
        Raised::New(alarm)
    }

    /// The cause ended: the alarm goes, and so does any silence on it.
    /// Whether an alarm was up.
    pub fn resolve(&mut self, kind: AlarmKind, subject: &str) -> bool {
        let key = (kind, subject.to_string());
        self.silenced.remove(&key);
        self.up.remove(&key).is_some()
    }

    /// An operator cleared it; `None` if no such alarm is up.
    pub fn clear(&mut self, kind: AlarmKind, subject: &str) -> Option<Alarm> {
        let key = (kind, subject.to_string());
        let alarm = self.up.remove(&key)?;
        if kind.ends_by_itself() {
            self.silenced.insert(key);
        }
        Some(alarm)
    }

    /// The subjects of one kind that are up or silenced: what a check may
    /// find ended.
    pub fn subjects(&self, kind: AlarmKind) -> Vec<String> {
        self.up
            .keys()
            .chain(&self.silenced)
            .filter(|(k, _)| *k == kind)
            .map(|(_, s)| s.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Every alarm up, oldest first.
    pub fn list(&self) -> Vec<Alarm> {
        let mut alarms: Vec<Alarm> = self.up.values().cloned().collect();
        alarms.sort_by_key(|a| a.raised_at);
        alarms
    }

    fn trim(&mut self) {
        while self.up.len() > MAX_ALARMS {
            let oldest = self
                .up
                .iter()
                .filter(|(_, a)| !a.kind.ends_by_itself())
                .min_by_key(|(_, a)| a.raised_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.up.remove(&key),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(kind: AlarmKind, subject: &str) -> Alarm {
        Alarm {
            kind,
            subject: subject.into(),
            peer: None,
            id: None,
            text: format!("{kind:?} {subject}"),
            raised_at: Timestamp::now(),
            count: 1,
        }
    }

    #[test]
    fn one_alarm_per_cause_until_it_ends() {
        let mut board = Board::default();
        assert!(matches!(
            board.raise(alarm(AlarmKind::LinkDown, "MOSCOW")),
            Raised::New(_)
        ));
        assert!(matches!(
            board.raise(alarm(AlarmKind::LinkDown, "MOSCOW")),
            Raised::Known
        ));
        assert_eq!(board.list().len(), 1);
        assert_eq!(board.list()[0].count, 2);
        assert!(board.resolve(AlarmKind::LinkDown, "MOSCOW"));
        assert!(board.list().is_empty());
        assert!(matches!(
            board.raise(alarm(AlarmKind::LinkDown, "MOSCOW")),
            Raised::New(_)
        ));
    }

    #[test]
    fn a_cleared_lasting_cause_stays_quiet_until_it_ends() {
        let mut board = Board::default();
        board.raise(alarm(AlarmKind::Overdue, "m1"));
        assert!(board.clear(AlarmKind::Overdue, "m1").is_some());
        assert!(matches!(
            board.raise(alarm(AlarmKind::Overdue, "m1")),
            Raised::Known
        ));
        assert!(board.list().is_empty());
        assert_eq!(board.subjects(AlarmKind::Overdue), vec!["m1".to_string()]);
        board.resolve(AlarmKind::Overdue, "m1");
        assert!(board.subjects(AlarmKind::Overdue).is_empty());
    }

    #[test]
    fn a_cleared_one_off_alarm_can_come_again() {
        let mut board = Board::default();
        board.raise(alarm(AlarmKind::ConnectionRefused, "10.0.0.9"));
        board.clear(AlarmKind::ConnectionRefused, "10.0.0.9");
        assert!(matches!(
            board.raise(alarm(AlarmKind::ConnectionRefused, "10.0.0.9")),
            Raised::New(_)
        ));
        assert!(board.clear(AlarmKind::Gap, "nothing").is_none());
    }

    #[test]
    fn english_kind_labels_are_the_names_in_capitals() {
        for kind in [
            AlarmKind::FlashNoReceipt,
            AlarmKind::Refused,
            AlarmKind::MissedLinkTest,
            AlarmKind::ClockSkew,
            AlarmKind::Gap,
            AlarmKind::Overdue,
            AlarmKind::ConnectionRefused,
            AlarmKind::AuditMismatch,
            AlarmKind::LinkDown,
            AlarmKind::LinkDegraded,
            AlarmKind::OriginalDiffers,
            AlarmKind::ConflictingId,
            AlarmKind::Storage,
            AlarmKind::KeyRotation,
            AlarmKind::KeyCompromised,
            AlarmKind::ShortNotice,
            AlarmKind::Restored,
            AlarmKind::BackupFailed,
            AlarmKind::WriteFailed,
        ] {
            assert_eq!(kind.label(Language::EN), kind.as_str().to_uppercase());
        }
    }

    #[test]
    fn a_flood_of_one_off_alarms_is_bounded_and_keeps_lasting_ones() {
        let mut board = Board::default();
        board.raise(alarm(AlarmKind::LinkDown, "MOSCOW"));
        for i in 0..MAX_ALARMS + 50 {
            board.raise(alarm(AlarmKind::ConnectionRefused, &format!("10.0.{i}")));
        }
        let list = board.list();
        assert_eq!(list.len(), MAX_ALARMS);
        assert!(list.iter().any(|a| a.kind == AlarmKind::LinkDown));
    }
}
