//! Geographic coordinates, kept in a canonical text form `45.9200N 063.3400E`
//! so that both stations sign and render exactly the same value.

use std::fmt;
use std::str::FromStr;

use super::Language;

/// A point given as latitude and longitude in decimal degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coordinates {
    pub lat: f64,
    pub lon: f64,
}

/// Why coordinate text was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a position; write latitude and longitude in decimal degrees, \
     such as `45.92N 63.34E` or `45.92, -63.34`"
)]
pub struct BadCoordinates(pub String);

impl BadCoordinates {
    /// The error as a reader of `lang` reads it; in English, its `Display`.
    pub fn message(&self, lang: Language) -> String {
        crate::t!(lang, "field.coordinates", input = self.0)
    }
}

fn axis(text: &str, pos: char, neg: char, limit: f64) -> Option<f64> {
    let t = text.trim().to_ascii_uppercase();
    let (number, sign) = if let Some(n) = t.strip_suffix(pos) {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix(neg) {
        (n, -1.0)
    } else {
        (t.as_str(), 1.0)
    };
    let number = number.trim();
    if number.starts_with(['+', '-']) && sign < 0.0 {
        return None;
    }
    let v: f64 = number.parse().ok()?;
    let v = v * sign;
    (v.is_finite() && v.abs() <= limit).then_some(v)
}

impl FromStr for Coordinates {
    type Err = BadCoordinates;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCoordinates(s.to_string());
        let parts: Vec<&str> = if s.contains(',') {
            s.split(',').collect()
        } else {
            s.split_whitespace().collect()
        };
        let [lat, lon] = parts.as_slice() else {
            return Err(bad());
        };
        Ok(Coordinates {
            lat: axis(lat, 'N', 'S', 90.0).ok_or_else(bad)?,
            lon: axis(lon, 'E', 'W', 180.0).ok_or_else(bad)?,
        })
    }
}

impl fmt::Display for Coordinates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.lat < 0.0 { 'S' } else { 'N' };
        let ew = if self.lon < 0.0 { 'W' } else { 'E' };
        write!(f, "{:07.4}{ns} {:08.4}{ew}", self.lat.abs(), self.lon.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_round_trips() {
        let c: Coordinates = "45.92N 63.34E".parse().expect("valid");
        assert_eq!(c.to_string(), "45.9200N 063.3400E");
        let d: Coordinates = "-33.5, -70.25".parse().expect("valid");
        assert_eq!(d.to_string(), "33.5000S 070.2500W");
        assert_eq!(
            d.to_string()
                .parse::<Coordinates>()
                .expect("valid")
                .to_string(),
            d.to_string()
        );
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "", "45N", "91N 10E", "10N 181E", "abc def", "-10S 5E", "NaN 5E",
        ] {
            assert!(bad.parse::<Coordinates>().is_err(), "{bad}");
        }
    }
}
