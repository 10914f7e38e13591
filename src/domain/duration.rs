//! Durations as people write them: `90s`, `10m`, `2h 30m`, `1d`.

use std::time::Duration;

use super::Language;

/// Why duration text was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a duration; write a number with a unit, such as `90s`, `10m`, `2h 30m` or `1d`"
)]
pub struct BadDuration(pub String);

impl BadDuration {
    /// The error as a reader of `lang` reads it; in English, its `Display`.
    pub fn message(&self, lang: Language) -> String {
        crate::t!(lang, "field.duration", input = self.0)
    }
}

/// Parses `2h30m`, `2h 30m`, `45m`, `90s`, `1d`. A bare number is refused:
/// a duration without a unit is a misunderstanding waiting to happen.
pub fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_string());
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut seen_unit = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
        seen_unit = true;
    }
    if !digits.is_empty() || !seen_unit {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way `parse_duration` reads it: `2h 30m`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut parts = Vec::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            parts.push(format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h 30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("2H30M"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(format_duration(Duration::from_secs(9000)), "2h 30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        for s in [1, 59, 61, 3600, 86_461] {
            let d = Duration::from_secs(s);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
