//! Geographic areas, as the 1988 Ballistic Missile Launch Notification
//! Agreement describes launch and impact areas: a circle (a centre and a
//! radius in kilometres or nautical miles), boundary points, or for
//! submarine launches an ocean area or body of water by name. Kept in one
//! canonical text form so both stations sign and render the same value.

use std::fmt;
use std::str::FromStr;

use super::{BadCoordinates, Coordinates, Language};

/// The fewest and most boundary points an area may have.
const MIN_POINTS: usize = 3;
const MAX_POINTS: usize = 16;
/// The longest name of a body of water.
const MAX_WATER: usize = 120;
/// The shortest and longest radius, in its unit, as the error words them.
const RADIUS_MIN: &str = "0.1";
const RADIUS_MAX: &str = "20000";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadiusUnit {
    Km,
    Nm,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Area {
    Circle {
        centre: Coordinates,
        radius: f64,
        unit: RadiusUnit,
    },
    Points(Vec<Coordinates>),
    Water(String),
}

/// Why area text was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not an area: {why}. Write `circle 45.92N 63.34E radius 50 km` (km or nm), \
     `points 45N 63E; 46N 64E; 46N 63E` ({MIN_POINTS} to {MAX_POINTS} boundary points), \
     or `water NAME` (an ocean area or body of water)"
)]
pub struct BadArea {
    pub text: String,
    pub why: AreaProblem,
}

/// What is wrong with area text, in the words of [`BadArea`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AreaProblem {
    #[error("a circle needs `radius` and a distance")]
    NoRadius,
    #[error("the centre is not a position such as 45.92N 63.34E")]
    BadCentre,
    #[error("the radius needs a unit, km or nm")]
    NoUnit,
    #[error("the radius is not a number")]
    RadiusNotANumber,
    #[error("the radius is not between {RADIUS_MIN} and {RADIUS_MAX}")]
    RadiusOutOfRange,
    /// A boundary point that is not a position.
    #[error("{0}")]
    BadPoint(BadCoordinates),
    #[error("{0} boundary points; an area has {MIN_POINTS} to {MAX_POINTS}, separated by `;`")]
    PointCount(usize),
    #[error("a body of water is named in plain text of 1 to {MAX_WATER} characters")]
    BadWater,
    #[error("it starts with neither circle, points nor water")]
    UnknownKind,
}

impl AreaProblem {
    /// The problem as a reader of `lang` reads it; in English, its `Display`.
    pub fn message(&self, lang: Language) -> String {
        match self {
            AreaProblem::NoRadius => crate::t!(lang, "field.area_no_radius").to_string(),
            AreaProblem::BadCentre => crate::t!(lang, "field.area_centre").to_string(),
            AreaProblem::NoUnit => crate::t!(lang, "field.area_no_unit").to_string(),
            AreaProblem::RadiusNotANumber => {
                crate::t!(lang, "field.area_radius_not_a_number").to_string()
            }
            AreaProblem::RadiusOutOfRange => crate::t!(
                lang,
                "field.area_radius_range",
                min = RADIUS_MIN,
                max = RADIUS_MAX
            ),
            AreaProblem::BadPoint(e) => e.message(lang),
            AreaProblem::PointCount(count) => crate::t!(
                lang,
                "field.area_point_count",
                count = count,
                min = MIN_POINTS,
                max = MAX_POINTS
            ),
            AreaProblem::BadWater => crate::t!(lang, "field.area_water", max = MAX_WATER),
            AreaProblem::UnknownKind => crate::t!(lang, "field.area_kind").to_string(),
        }
    }
}

impl BadArea {
    /// The error as a reader of `lang` reads it; in English, its `Display`.
    pub fn message(&self, lang: Language) -> String {
        crate::t!(
            lang,
            "field.area",
            input = self.text,
            why = self.why.message(lang),
            min = MIN_POINTS,
            max = MAX_POINTS
        )
    }
}

impl FromStr for Area {
    type Err = BadArea;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: AreaProblem| BadArea {
            text: s.to_string(),
            why,
        };
        let s = s.trim();
        let (kind, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let rest = rest.trim();
        match kind.to_ascii_lowercase().as_str() {
            "circle" => {
                let lower = rest.to_ascii_lowercase();
                let (centre, radius) = lower
                    .split_once("radius")
                    .ok_or_else(|| bad(AreaProblem::NoRadius))?;
                let centre: Coordinates = centre
                    .trim()
                    .parse()
                    .map_err(|_| bad(AreaProblem::BadCentre))?;
                let radius = radius.trim().replace(' ', "");
                let (number, unit) = if let Some(n) = radius.strip_suffix("km") {
                    (n, RadiusUnit::Km)
                } else if let Some(n) = radius.strip_suffix("nm") {
                    (n, RadiusUnit::Nm)
                } else {
                    return Err(bad(AreaProblem::NoUnit));
                };
                let radius: f64 = number
                    .parse()
                    .map_err(|_| bad(AreaProblem::RadiusNotANumber))?;
                // To a tenth, as it is written back.
                let radius = (radius * 10.0).round() / 10.0;
                if !(radius.is_finite() && radius > 0.0 && radius <= 20_000.0) {
                    return Err(bad(AreaProblem::RadiusOutOfRange));
                }
                Ok(Area::Circle {
                    centre,
                    radius,
                    unit,
                })
            }
            "points" => {
                let points = rest
                    .split(';')
                    .map(|p| p.trim().parse::<Coordinates>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(AreaProblem::BadPoint(e)))?;
                if !(MIN_POINTS..=MAX_POINTS).contains(&points.len()) {
                    return Err(bad(AreaProblem::PointCount(points.len())));
                }
                Ok(Area::Points(points))
            }
            "water" => {
                let name = rest.split_whitespace().collect::<Vec<_>>().join(" ");
                if name.is_empty()
                    || name.chars().count() > MAX_WATER
                    || name.chars().any(|c| c.is_control() || c == ';')
                {
                    return Err(bad(AreaProblem::BadWater));
                }
                Ok(Area::Water(name))
            }
            _ => Err(bad(AreaProblem::UnknownKind)),
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Area::Circle {
                centre,
                radius,
                unit,
            } => write!(
                f,
                "circle {centre} radius {radius:.1} {}",
                match unit {
                    RadiusUnit::Km => "km",
                    RadiusUnit::Nm => "nm",
                }
            ),
            Area::Points(points) => {
                let points: Vec<String> = points.iter().map(ToString::to_string).collect();
                write!(f, "points {}", points.join("; "))
            }
            Area::Water(name) => write!(f, "water {name}"),
        }
    }
}

impl Area {
    /// The area as a reader of `lang` reads it; positions as `position`
    /// renders them.
    pub fn render(&self, lang: Language, position: impl Fn(&Coordinates) -> String) -> String {
        match self {
            Area::Circle {
                centre,
                radius,
                unit,
            } => crate::t!(
                lang,
                "value.area_circle",
                radius = format!("{radius:.1}"),
                unit = match unit {
                    RadiusUnit::Km => crate::t!(lang, "value.km"),
                    RadiusUnit::Nm => crate::t!(lang, "value.nm"),
                },
                centre = position(centre)
            ),
            Area::Points(points) => {
                let points: Vec<String> = points.iter().map(&position).collect();
                crate::t!(lang, "value.area_points", points = points.join("; "))
            }
            Area::Water(name) => crate::t!(lang, "value.area_water", name = name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_round_trips_through_its_canonical_text() {
        for (input, canonical) in [
            (
                "circle 45.92N 63.34E radius 50km",
                "circle 45.9200N 063.3400E radius 50.0 km",
            ),
            (
                "CIRCLE 45.92N 63.34E RADIUS 20.25 nm",
                "circle 45.9200N 063.3400E radius 20.3 nm",
            ),
            (
                "points 45N 63E; 46N 64E;46N 63E",
                "points 45.0000N 063.0000E; 46.0000N 064.0000E; 46.0000N 063.0000E",
            ),
            ("water   Barents  Sea", "water Barents Sea"),
        ] {
            let area: Area = input.parse().expect(input);
            assert_eq!(area.to_string(), canonical);
            assert_eq!(canonical.parse::<Area>().expect(canonical), area);
        }
    }

    #[test]
    fn bad_areas_say_what_is_wrong_and_what_would_be_valid() {
        for (input, why) in [
            ("circle 45.92N 63.34E", "radius"),
            ("circle 45.92N 63.34E radius 50", "unit"),
            ("circle 95N 63E radius 5 km", "centre"),
            ("circle 45N 63E radius -5 km", "between"),
            ("points 45N 63E; 46N 64E", "2 boundary points"),
            ("water ", "plain text"),
            ("square 1 2", "neither"),
        ] {
            let e = input.parse::<Area>().expect_err(input).to_string();
            assert!(e.contains(why), "{input}: {e}");
            assert!(e.contains("circle 45.92N 63.34E radius 50 km"), "{e}");
        }
    }
}
