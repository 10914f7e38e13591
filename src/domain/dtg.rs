//! Date-time groups: `DDHHMMZ MON YY` in UTC, as on military message traffic,
//! and the forms an operator may type for a date-time field.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::Language;
use super::duration::parse_duration;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// A moment shown as a date-time group, e.g. `261415Z NOV 26`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dtg(pub Timestamp);

impl fmt::Display for Dtg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = self.0.to_zoned_datetime(TimeZone::UTC).datetime();
        let month = MONTHS[usize::try_from(dt.month() - 1).unwrap_or(0)];
        write!(
            f,
            "{:02}{:02}{:02}Z {} {:02}",
            dt.day(),
            dt.hour(),
            dt.minute(),
            month,
            dt.year().rem_euclid(100)
        )
    }
}

/// A timestamp as the journal stores it: UTC with all nine fraction digits,
/// so that text order is time order.
pub fn stamp(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// Why typed date-time text was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a date-time; write `now`, a relative time such as `+30m` or `-2h`, \
     a DTG such as `261415Z NOV 26`, or `2026-11-26 14:15` (UTC)"
)]
pub struct BadDateTime(pub String);

impl BadDateTime {
    /// The error as a reader of `lang` reads it; in English, its `Display`.
    pub fn message(&self, lang: Language) -> String {
        crate::t!(lang, "field.datetime", input = self.0)
    }
}

/// Parses what an operator may type into a date-time field, relative to `now`.
pub fn parse_datetime(input: &str, now: Timestamp) -> Result<Timestamp, BadDateTime> {
    let text = input.trim();
    let bad = || BadDateTime(input.to_string());
    let lower = text.to_ascii_lowercase();
    if lower == "now" {
        return Ok(now);
    }
    let relative = lower.strip_prefix("now").map(str::trim).unwrap_or(&lower);
    if let Some(rest) = relative.strip_prefix('+') {
        let d = parse_duration(rest).map_err(|_| bad())?;
        // A SignedDuration, not a Span: a Span of more seconds than jiff
        // allows panics (found by the scenario fuzzer); checked_add refuses.
        let span = jiff::SignedDuration::from_secs(i64::try_from(d.as_secs()).map_err(|_| bad())?);
        return now.checked_add(span).map_err(|_| bad());
    }
    if let Some(rest) = relative.strip_prefix('-') {
        let d = parse_duration(rest).map_err(|_| bad())?;
        // A SignedDuration, not a Span: a Span of more seconds than jiff
        // allows panics (found by the scenario fuzzer); checked_add refuses.
        let span = jiff::SignedDuration::from_secs(i64::try_from(d.as_secs()).map_err(|_| bad())?);
        return now.checked_sub(span).map_err(|_| bad());
    }
    if let Some(ts) = parse_dtg(text) {
        return Ok(ts);
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = text.trim_end_matches(['Z', 'z']).trim();
    if let Ok(dt) = civil.parse::<DateTime>() {
        return TimeZone::UTC.to_timestamp(dt).map_err(|_| bad());
    }
    Err(bad())
}

fn parse_dtg(text: &str) -> Option<Timestamp> {
    let upper = text.to_ascii_uppercase();
    let mut parts = upper.split_whitespace();
    let group = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    if parts.next().is_some() || group.len() != 7 || !group.ends_with('Z') || year.len() != 2 {
        return None;
    }
    let digits = &group[..6];
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let day: i8 = digits[0..2].parse().ok()?;
    let hour: i8 = digits[2..4].parse().ok()?;
    let minute: i8 = digits[4..6].parse().ok()?;
    let month = i8::try_from(MONTHS.iter().position(|m| *m == month)? + 1).ok()?;
    let year: i16 = 2000 + year.parse::<i16>().ok()?;
    let dt = DateTime::new(year, month, day, hour, minute, 0, 0).ok()?;
    TimeZone::UTC.to_timestamp(dt).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_relative_time_past_any_span_is_an_error_not_a_panic() {
        let now = Timestamp::UNIX_EPOCH;
        for input in ["-8000000000h", "+8000000000h", "now + 99999999999d"] {
            assert!(parse_datetime(input, now).is_err(), "{input}");
        }
        assert!(parse_datetime("-2h", now).is_ok(), "control");
    }

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn formats_dtg() {
        assert_eq!(
            Dtg(at("2026-11-26T14:15:59Z")).to_string(),
            "261415Z NOV 26"
        );
        assert_eq!(
            Dtg(at("2027-01-02T03:04:00Z")).to_string(),
            "020304Z JAN 27"
        );
    }

    #[test]
    fn parses_operator_forms() {
        let now = at("2026-11-26T14:15:00Z");
        assert_eq!(parse_datetime("now", now), Ok(now));
        assert_eq!(parse_datetime("+30m", now), Ok(at("2026-11-26T14:45:00Z")));
        assert_eq!(
            parse_datetime("now -2h", now),
            Ok(at("2026-11-26T12:15:00Z"))
        );
        assert_eq!(parse_datetime("261415Z NOV 26", now), Ok(now));
        assert_eq!(parse_datetime("261415z nov 26", now), Ok(now));
        assert_eq!(parse_datetime("2026-11-26 14:15", now), Ok(now));
        assert_eq!(parse_datetime("2026-11-26T14:15:00Z", now), Ok(now));
        assert!(parse_datetime("tomorrow", now).is_err());
        assert!(parse_datetime("321415Z NOV 26", now).is_err());
        assert!(parse_datetime("+", now).is_err());
    }

    #[test]
    fn stamps_sort_as_text() {
        let a = stamp(at("2026-11-26T14:15:20.12Z"));
        let b = stamp(at("2026-11-26T14:15:20.123Z"));
        assert_eq!(a, "2026-11-26T14:15:20.120000000Z");
        assert!(a < b);
        assert_eq!(
            a.parse::<Timestamp>().ok(),
            Some(at("2026-11-26T14:15:20.12Z"))
        );
    }

    #[test]
    fn dtg_round_trips() {
        let now = at("2026-11-26T14:15:00Z");
        let text = Dtg(now).to_string();
        assert_eq!(parse_datetime(&text, now), Ok(now));
    }
}
