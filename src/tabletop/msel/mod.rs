//! Scenarios as exercise planners keep them: a Master Scenario Events List
//! (MSEL) in a CSV spreadsheet. [`to_csv`] writes one from a [`Scenario`];
//! [`parse`] reads one back into the very scenario the TOML form gives,
//! checked as [`scenario::parse`] checks TOML, with every problem located by
//! file, row and column.
//!
//! # Layout
//!
//! Scenario-level settings come first, one `#key,value` row each (any cells
//! after the last value are left empty):
//!
//! | row | meaning |
//! |---|---|
//! | `#id,intro` | the scenario id (required) |
//! | `#title,First contact` | its title (required) |
//! | `#description,…` | what the players read first |
//! | `#trainee,WASHINGTON` | the trainee's station (default WASHINGTON) |
//! | `#counterpart,MOSCOW` | the simulated station (default MOSCOW) |
//! | `#sides,WASHINGTON,MOSCOW` | the sides a trainee may play |
//! | `#time_compression,2` | scenario minutes per real minute (default 1) |
//! | `#objective,ID,TEXT,CAPABILITY,SOME,MAJOR` | one row per objective, in order: its id (empty: its position, 1, 2, …), text, HSEEP capability (may be empty) and rating rule (both empty: 0.75 and 0.25) |
//!
//! Then a header row naming the columns, in any order (`inject number`,
//! `scenario time` and `template` are required; `inject`, `inject #`,
//! `inject no` and `expected player action` are read as their usual
//! names):
//!
//! ```text
//! inject number,scenario time,from,to,precedence,template,fields,text,language,expected action,objective,notes
//! ```
//!
//! and one row per message:
//!
//! - **An inject**: its id, its scenario time (`T+mm:ss` or `T+h:mm:ss`),
//!   from the counterpart to the trainee (both may be left empty), its
//!   precedence (empty: the template's), template, fields, free text,
//!   language (a BCP 47 tag, empty for English), what the trainee is
//!   expected to do, and the objective (by id) its expectations serve
//!   (unless one names its own in `expected action`).
//! - **The inject as written for another side**: the same inject number
//!   with `from` and `to` swapped (to = the side played), its own fields,
//!   text and language. Its scenario time, precedence, template, expected
//!   action and objective are its inject's: leave them empty or repeat them.
//! - **A follow-up** sent when the inject is still unacknowledged: inject
//!   number `ID/follow-up`, scenario time `after 1m 30s` (how long after
//!   the inject), the same from and to as the row it follows up, and its
//!   own precedence, template, fields and text.
//!
//! `notes` is for the planners and is not read. Cells:
//!
//! - `fields`: one `name = value` per line; in a value `\n` is a line
//!   break, `\r` a carriage return, `\t` a tab and `\\` a backslash.
//! - `expected action`: `acknowledge within 2m`, or `reply TEMPLATE within
//!   3m` with an optional `[field=value]` the reply must carry, each
//!   optionally ending in `for objective ID` when that expectation serves
//!   an objective other than the inject's (its `objective` column), several
//!   separated by `;` (in a field, value or ID, `\;`, `\[`, `\]` and `\\`):
//!   `acknowledge within 2m; reply response within 3m [disposition=accept]
//!   for objective reply`. (`[objective=reply]` would be a field named
//!   `objective` that the reply must carry.)
//!
//! For example (as [`to_csv`] writes it):
//!
//! ```text
//! #id,intro
//! #title,First contact
//! #description,
//! #trainee,WASHINGTON
//! #counterpart,MOSCOW
//! #sides,WASHINGTON,MOSCOW
//! #time_compression,1
//! #objective,ack,Acknowledge within 2 minutes,Operational Communications,0.75,0.25
//! #objective,reply,Reply within 3 minutes,Operational Communications,0.75,0.25
//! inject number,scenario time,from,to,precedence,template,fields,text,language,expected action,objective,notes
//! link-check,T+00:15,MOSCOW,WASHINGTON,ROUTINE,general,"subject = Link check
//! text = Please acknowledge and reply.",,,"acknowledge within 2m; reply response within 3m for objective reply",ack,
//! link-check/follow-up,after 1m 30s,MOSCOW,WASHINGTON,IMMEDIATE,general,"subject = Reminder
//! text = Please acknowledge, now.",,,,,sent to WASHINGTON if link-check is not acknowledged after 1m 30s
//! link-check,T+00:15,WASHINGTON,MOSCOW,ROUTINE,general,"subject = Проверка связи
//! text = Просим подтвердить.",,ru,,,as written for MOSCOW
//! ```
//!
//! Spreadsheets' habits are accepted: a UTF-8 byte-order mark, `;` as the
//! separator (detected from the header row), CRLF or LF line ends, and a
//! decimal comma in numbers. [`to_csv`] writes `,`, CRLF and a byte-order
//! mark (so that spreadsheets read the file as UTF-8).

mod csv;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use crate::domain::{Language, Precedence, StationName, format_duration, parse_duration};
use crate::problem::Problem;
use crate::tabletop::scenario::{
    self, Expect, FollowUp, Inject, MAX_SCENARIO_TIME, Objective, RatingRule, Scenario, Wording,
    format_offset,
};
use crate::templates::Catalog;
use csv::{CsvError, read_csv, write_row};

/// The columns of the event table, in the order [`to_csv`] writes them.
pub const COLUMNS: [&str; 12] = [
    INJECT, TIME, FROM, TO, PRECEDENCE, TEMPLATE, FIELDS, TEXT, LANGUAGE, EXPECTED, OBJECTIVE,
    NOTES,
];

const INJECT: &str = "inject number";
const TIME: &str = "scenario time";
const FROM: &str = "from";
const TO: &str = "to";
const PRECEDENCE: &str = "precedence";
const TEMPLATE: &str = "template";
const FIELDS: &str = "fields";
const TEXT: &str = "text";
const LANGUAGE: &str = "language";
const EXPECTED: &str = "expected action";
const OBJECTIVE: &str = "objective";
const NOTES: &str = "notes";

/// The columns a MSEL cannot do without.
const REQUIRED: [&str; 3] = [INJECT, TIME, TEMPLATE];

/// Other names spreadsheets give the columns.
const ALIASES: [(&str, &str); 5] = [
    ("inject", INJECT),
    ("inject #", INJECT),
    ("inject no", INJECT),
    ("inject no.", INJECT),
    ("expected player action", EXPECTED),
];

/// What ends the inject number of a follow-up row.
pub const FOLLOW_UP_SUFFIX: &str = "/follow-up";

/// The settings rows, as `#key` names them.
const SETTINGS: [&str; 8] = [
    "id",
    "title",
    "description",
    "trainee",
    "counterpart",
    "sides",
    "time_compression",
    "objective",
];

const BOM: char = '\u{feff}';

/// Whether `path` names a MSEL spreadsheet (`.csv`) rather than TOML.
pub fn is_msel(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Parses a scenario file in either form: a MSEL spreadsheet if its name
/// ends in `.csv`, TOML otherwise.
pub fn parse_any(path: &Path, text: &str, catalog: &Catalog) -> Result<Scenario, Vec<Problem>> {
    if is_msel(path) {
        parse(path, text, catalog)
    } else {
        scenario::parse(path, text, catalog)
    }
}

// ---------------------------------------------------------------- writing

/// The scenario as a MSEL spreadsheet: the whole file's text, byte-order
/// mark first, `,`-separated with CRLF line ends (see the module's doc).
pub fn to_csv(s: &Scenario) -> String {
    let mut out = String::new();
    out.push(BOM);
    let mut row = |cells: &[&str]| write_row(&mut out, cells, ',');
    row(&["#id", &s.id]);
    row(&["#title", &s.title]);
    row(&["#description", &s.description]);
    row(&["#trainee", &s.trainee]);
    row(&["#counterpart", &s.counterpart]);
    let mut sides = vec!["#sides"];
    sides.extend(s.sides.iter().map(String::as_str));
    row(&sides);
    row(&["#time_compression", &s.time_compression.to_string()]);
    for o in &s.objectives {
        row(&[
            "#objective",
            &o.id,
            &o.text,
            o.capability.as_deref().unwrap_or(""),
            &o.rating.some.to_string(),
            &o.rating.major.to_string(),
        ]);
    }
    row(&COLUMNS);
    for i in &s.injects {
        let at = format_offset(i.at);
        let precedence = i.precedence.as_str();
        let language = i.language.map(|l| l.to_string()).unwrap_or_default();
        row(&[
            &i.id,
            &at,
            &s.counterpart,
            &s.trainee,
            precedence,
            &i.template,
            &format_fields(&i.fields),
            &i.text,
            &language,
            &format_expect(&i.expect, &i.expect_objectives),
            i.objective.as_deref().unwrap_or(""),
            "",
        ]);
        if let Some(f) = &i.follow_up {
            follow_up_row(&mut row, &i.id, f, &s.counterpart, &s.trainee);
        }
        for (side, w) in &i.sides {
            let from = other_side(s, side);
            let language = w.language.map(|l| l.to_string()).unwrap_or_default();
            row(&[
                &i.id,
                &at,
                from,
                side,
                precedence,
                &i.template,
                &format_fields(&w.fields),
                &w.text,
                &language,
                "",
                "",
                &format!("as written for {side}"),
            ]);
            if let Some(f) = &w.follow_up {
                follow_up_row(&mut row, &i.id, f, from, side);
            }
        }
    }
    out
}

fn follow_up_row(row: &mut impl FnMut(&[&str]), id: &str, f: &FollowUp, from: &str, to: &str) {
    let after = format!("after {}", format_duration(f.after));
    row(&[
        &format!("{id}{FOLLOW_UP_SUFFIX}"),
        &after,
        from,
        to,
        f.precedence.as_str(),
        &f.template,
        &format_fields(&f.fields),
        &f.text,
        "",
        "",
        "",
        &format!("sent to {to} if {id} is not acknowledged {after}"),
    ]);
}

/// Who sends to `side` when the trainee plays it.
fn other_side<'a>(s: &'a Scenario, side: &str) -> &'a str {
    if side == s.counterpart {
        &s.trainee
    } else {
        &s.counterpart
    }
}

/// One `name = value` per line.
fn format_fields(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k} = {}", escape(v, "")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The expected actions, each with ` for objective ID` where it names an
/// objective of its own (`objectives`, beside `expect`).
fn format_expect(expect: &[Expect], objectives: &[Option<String>]) -> String {
    expect
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let mut s = match e {
                Expect::Acknowledge { within } => {
                    format!("acknowledge within {}", format_duration(*within))
                }
                Expect::Reply {
                    template,
                    within,
                    field,
                } => {
                    let mut s = format!("reply {template} within {}", format_duration(*within));
                    if let Some((f, v)) = field {
                        s.push_str(&format!(" [{}={}]", escape(f, ";[]="), escape(v, ";[]")));
                    }
                    s
                }
            };
            if let Some(Some(o)) = objectives.get(n) {
                s.push_str(&format!(" {FOR_OBJECTIVE} {}", escape(o, ";[]")));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Backslash escapes for line breaks, tabs, backslashes and `extra`.
fn escape(text: &str, extra: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if extra.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The text `escape` wrote. A backslash before anything else is kept as
/// it is, so `C:\x` reads as written.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(&c @ ('\\' | ';' | '[' | ']' | '=')) => out.push(c),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

fn blank(record: &[String]) -> bool {
    record.iter().all(|c| c.trim().is_empty())
}

fn is_setting(record: &[String]) -> bool {
    record
        .first()
        .is_some_and(|c| c.trim_start().starts_with('#'))
}

/// The index of the header: the first row that is neither blank nor a
/// setting.
fn header_index(records: &[Vec<String>]) -> Option<usize> {
    records.iter().position(|r| !blank(r) && !is_setting(r))
}

/// The column a header cell names, if any.
fn column_name(cell: &str) -> Option<&'static str> {
    let name = cell
        .replace('_', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    COLUMNS
        .iter()
        .find(|c| **c == name)
        .copied()
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c))
}

/// The records, read with `,` or `;`: whichever makes more of the header
/// row's cells column names (`,` on a tie).
fn read_records(text: &str) -> Result<Vec<Vec<String>>, CsvError> {
    let mut best: Option<(usize, Vec<Vec<String>>)> = None;
    let mut failed = None;
    for sep in [',', ';'] {
        match read_csv(text, sep) {
            Ok(records) => {
                let score = header_index(&records).map_or(0, |h| {
                    records[h]
                        .iter()
                        .filter(|c| column_name(c).is_some())
                        .count()
                });
                if best.as_ref().is_none_or(|(b, _)| score > *b) {
                    best = Some((score, records));
                }
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match (best, failed) {
        (Some((_, records)), _) => Ok(records),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(Vec::new()),
    }
}

// ---------------------------------------------------------------- reading

/// Problems found so far, each named by row and column.
struct Found<'a> {
    path: &'a Path,
    problems: Vec<Problem>,
}

impl Found<'_> {
    fn push(&mut self, row: Option<usize>, key: String, message: impl Into<String>) {
        self.problems.push(Problem {
            path: self.path.to_path_buf(),
            line: row,
            key,
            message: message.into(),
        });
    }

    /// A problem in a cell of the event table.
    fn cell(&mut self, row: usize, column: &str, message: impl Into<String>) {
        self.push(
            Some(row),
            format!("row {row}, column \"{column}\""),
            message,
        );
    }

    /// A problem in cell `column` (1-based) of a settings row.
    fn setting(&mut self, row: usize, column: usize, what: &str, message: impl Into<String>) {
        self.push(
            Some(row),
            format!("row {row}, column {column} ({what})"),
            message,
        );
    }
}

/// The scenario-level settings, before they are checked against each
/// other.
struct Settings {
    id: Option<String>,
    title: Option<String>,
    description: String,
    trainee: String,
    counterpart: String,
    /// Each named side with its row and column.
    sides: Vec<(usize, usize, String)>,
    time_compression: f64,
    objectives: Vec<Objective>,
}

/// A number as a spreadsheet may write it, with a decimal point or comma.
fn number(text: &str) -> Option<f64> {
    text.trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
}

fn read_settings(records: &[Vec<String>], found: &mut Found<'_>) -> Settings {
    let mut s = Settings {
        id: None,
        title: None,
        description: String::new(),
        trainee: "WASHINGTON".into(),
        counterpart: "MOSCOW".into(),
        sides: Vec::new(),
        time_compression: 1.0,
        objectives: Vec::new(),
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let valid = SETTINGS.map(|k| format!("#{k}")).join(", ");
    for (i, record) in records.iter().enumerate() {
        let row = i + 1;
        if blank(record) {
            continue;
        }
        let key = record[0]
            .trim()
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .replace([' ', '-'], "_");
        let label = format!("#{key}");
        let last = record
            .iter()
            .rposition(|c| !c.trim().is_empty())
            .unwrap_or(0);
        let values: &[String] = record.get(1..=last).unwrap_or(&[]);
        if !SETTINGS.contains(&key.as_str()) {
            found.setting(
                row,
                1,
                &label,
                format!(
                    "`{}` is not a setting; the settings rows are {valid}, above the header row",
                    record[0].trim()
                ),
            );
            continue;
        }
        if key != "objective" && key != "sides" {
            if let Some(first) = seen.insert(key.clone(), row) {
                found.setting(
                    row,
                    1,
                    &label,
                    format!("`{label}` is set twice (row {first} too); keep one"),
                );
            }
            if values.len() > 1 {
                found.setting(
                    row,
                    3,
                    &label,
                    format!(
                        "`{label}` takes one value, in column 2; quote a value that holds a separator"
                    ),
                );
            }
        }
        let value = values.first().map_or("", String::as_str);
        match key.as_str() {
            "id" => {
                if value.trim().is_empty() {
                    found.setting(row, 2, &label, "the scenario needs an id, such as `intro`");
                }
                s.id = Some(value.trim().to_string());
            }
            "title" => s.title = Some(value.to_string()),
            "description" => s.description = value.to_string(),
            "trainee" | "counterpart" => {
                let name = value.trim().to_string();
                if StationName::new(&name).is_err() {
                    found.setting(
                        row,
                        2,
                        &label,
                        format!(
                            "`{name}` is not a station name; a station name uses capital letters, digits, '-' and '_'"
                        ),
                    );
                }
                if key == "trainee" {
                    s.trainee = name;
                } else {
                    s.counterpart = name;
                }
            }
            "sides" => {
                for (n, side) in values.iter().enumerate() {
                    if !side.trim().is_empty() {
                        s.sides.push((row, n + 2, side.trim().to_string()));
                    }
                }
            }
            "time_compression" => match number(value) {
                Some(n) if (0.1..=60.0).contains(&n) => s.time_compression = n,
                _ => found.setting(
                    row,
                    2,
                    &label,
                    format!(
                        "`{value}` is not a time compression; it must be a number from 0.1 to 60 (scenario minutes per real minute)"
                    ),
                ),
            },
            _ => {
                if let Some(o) = read_objective(row, values, s.objectives.len(), found) {
                    if s.objectives.iter().any(|x| x.id == o.id) {
                        found.setting(
                            row,
                            2,
                            "#objective id",
                            format!("objective `{}` is defined twice", o.id),
                        );
                    }
                    s.objectives.push(o);
                }
            }
        }
    }
    s
}

/// `#objective,ID,TEXT,CAPABILITY,SOME,MAJOR`; `before` objectives come
/// before it.
fn read_objective(
    row: usize,
    values: &[String],
    before: usize,
    found: &mut Found<'_>,
) -> Option<Objective> {
    let at = |n: usize| values.get(n).map_or("", String::as_str);
    if values.len() > 5 {
        found.setting(
            row,
            7,
            "#objective",
            "an objective row is `#objective,ID,TEXT,CAPABILITY,SOME,MAJOR`; nothing comes after MAJOR",
        );
    }
    let id = match at(0).trim() {
        "" => (before + 1).to_string(),
        id => id.to_string(),
    };
    let capability = Some(at(2).to_string()).filter(|c| !c.trim().is_empty());
    let rating = match (at(3).trim(), at(4).trim()) {
        ("", "") => RatingRule::default(),
        (some, major) => {
            let mut share = |n: usize, what: &str, text: &str| {
                number(text).unwrap_or_else(|| {
                    found.setting(
                        row,
                        n + 2,
                        &format!("#objective {what}"),
                        format!(
                            "`{text}` is not a share; write both SOME and MAJOR as numbers from 0 to 1 (such as 0.75 and 0.25), or leave both empty for those"
                        ),
                    );
                    f64::NAN
                })
            };
            let some = share(3, "some", some);
            let major = share(4, "major", major);
            if some.is_nan() || major.is_nan() {
                return None;
            }
            if !(0.0 <= major && major <= some && some <= 1.0) {
                found.setting(
                    row,
                    5,
                    "#objective some",
                    format!(
                        "SOME and MAJOR are shares of the expectations met in time, with 0 ≤ MAJOR ≤ SOME ≤ 1; got SOME = {some}, MAJOR = {major}"
                    ),
                );
            }
            RatingRule { some, major }
        }
    };
    Some(Objective {
        id,
        text: at(1).to_string(),
        capability,
        rating,
    })
}

/// One row of the event table.
struct Row<'r> {
    row: usize,
    cells: &'r [String],
    columns: &'r HashMap<&'static str, usize>,
}

impl<'r> Row<'r> {
    /// The cell under `column`, as written ("" when the column is absent).
    fn raw(&self, column: &str) -> &'r str {
        self.columns
            .get(column)
            .and_then(|&c| self.cells.get(c))
            .map_or("", String::as_str)
    }

    /// The cell under `column`, trimmed.
    fn get(&self, column: &str) -> &'r str {
        self.raw(column).trim()
    }
}

/// The templates' ids, for messages.
fn template_ids(catalog: &Catalog) -> String {
    catalog
        .current()
        .iter()
        .map(|t| t.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `T+mm:ss` or `T+h:mm:ss` scenario time.
fn parse_time(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("t+")
        .map_or(t.to_string(), |r| format!("T+{r}"));
    scenario::parse_offset(&t).ok_or_else(|| {
        format!(
            "`{text}` is not a scenario time within 7 days of the start; write T+mm:ss such as `T+02:30`, or T+h:mm:ss such as `T+1:05:00`"
        )
    })
}

/// A follow-up's delay: `after 1m 30s` (also `+90s`, `90s` or `after 01:30`).
fn parse_after(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let rest = if t.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("after")) {
        &t[5..]
    } else {
        t.strip_prefix('+').unwrap_or(t)
    };
    let rest = rest.trim();
    let after = parse_duration(rest).ok().or_else(|| {
        (rest.contains(':'))
            .then(|| scenario::parse_offset(rest))
            .flatten()
    });
    match after {
        Some(d) if d <= MAX_SCENARIO_TIME => Ok(d),
        Some(_) => Err(format!(
            "`{text}` is more than 7 days; a follow-up comes within 7d"
        )),
        None => Err(format!(
            "`{text}` is not a delay; a follow-up row's scenario time is how long after its inject it is sent if the inject is still unacknowledged, such as `after 90s` or `after 2m`"
        )),
    }
}

/// `name = value` lines; every problem, by line.
fn parse_fields(cell: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut fields = BTreeMap::new();
    let mut problems = Vec::new();
    for (n, line) in cell.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(format!(
                "line {} of the cell, `{}`, is not a field; write one `name = value` per line",
                n + 1,
                line.trim()
            ));
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            problems.push(format!(
                "line {} of the cell has no field name before `=`; write one `name = value` per line",
                n + 1
            ));
            continue;
        }
        let value = unescape(value.strip_prefix(' ').unwrap_or(value));
        if fields.insert(name.to_string(), value).is_some() {
            problems.push(format!(
                "field `{name}` is given twice; keep one `{name} = …` line"
            ));
        }
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}

/// Splits `text` at each `sep` not escaped with a backslash; the parts
/// keep their escapes.
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The words before the id of the objective an expectation serves, at its
/// end: `reply response within 3m for objective reply`.
const FOR_OBJECTIVE: &str = "for objective";

/// Splits `for objective ID` off the end of an expectation, after any
/// `[field=value]`: the rest, and the ID as written (escaped), if any.
fn split_objective(item: &str) -> (&str, Option<&str>) {
    // After the `]` that closes a `[field=value]`, if there is one.
    let mut from = 0;
    let mut escaped = false;
    for (i, c) in item.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ']' {
            from = i + 1;
        }
    }
    let rest = &item[from..];
    let words: Vec<(usize, &str)> = rest
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - rest.as_ptr() as usize, w))
        .collect();
    for pair in words.windows(2) {
        let [(start, first), (at, second)] = pair else {
            continue;
        };
        if first.eq_ignore_ascii_case("for") && second.eq_ignore_ascii_case("objective") {
            return (
                &item[..from + start],
                Some(item[from + at + second.len()..].trim()),
            );
        }
    }
    (item, None)
}

/// `acknowledge within 2m; reply response within 3m [disposition=accept]
/// for objective reply`: each expectation with the objective it names,
/// which must be one of `objectives`.
fn parse_expect(
    cell: &str,
    catalog: &Catalog,
    objectives: &[&str],
) -> Result<Vec<(Expect, Option<String>)>, Vec<String>> {
    const FORMS: &str = "write `acknowledge within 2m` or `reply TEMPLATE within 3m`, optionally followed by `[field=value]` and then by `for objective ID`, separating several with `;`";
    let mut expect = Vec::new();
    let mut problems = Vec::new();
    for item in split_unescaped(cell, ';') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (rest, objective) = split_objective(item);
        let objective = match objective.map(unescape) {
            Some(o) if o.is_empty() => {
                problems.push(format!(
                    "`{item}`: `{FOR_OBJECTIVE}` is followed by the id of the objective the expectation serves, such as `{FOR_OBJECTIVE} reply`"
                ));
                continue;
            }
            Some(o) if !objectives.contains(&o.as_str()) => {
                problems.push(if objectives.is_empty() {
                    format!(
                        "`{item}`: `{o}` names no objective; declare it in a `#objective,{o},TEXT` row above the header"
                    )
                } else {
                    format!(
                        "`{item}`: `{o}` names no objective; the objectives are {}",
                        objectives.join(", ")
                    )
                });
                continue;
            }
            o => o,
        };
        let (head, field) = match split_unescaped(rest, '[').as_slice() {
            [head] => (*head, None),
            [head, tail] => match tail.trim_end().strip_suffix(']') {
                Some(inner) if !inner.ends_with('\\') || inner.ends_with("\\\\") => {
                    match split_unescaped(inner, '=').as_slice() {
                        [f, v @ ..] if !v.is_empty() && !f.trim().is_empty() => (
                            *head,
                            Some((unescape(f.trim()), unescape(v.join("=").trim()))),
                        ),
                        _ => {
                            problems.push(format!(
                                "`{item}`: the part in brackets is `[field=value]`, the field a reply must carry"
                            ));
                            continue;
                        }
                    }
                }
                _ => {
                    problems.push(format!(
                        "`{item}`: `[field=value]` comes last (but for `{FOR_OBJECTIVE} ID`) and is closed with `]`"
                    ));
                    continue;
                }
            },
            _ => {
                problems.push(format!(
                    "`{item}` has more than one `[`; {FORMS} (`\\[` for a `[` in a value)"
                ));
                continue;
            }
        };
        let words: Vec<&str> = head.split_whitespace().collect();
        let within = |rest: &[&str]| -> Result<Duration, String> {
            match rest {
                [w, duration @ ..] if w.eq_ignore_ascii_case("within") && !duration.is_empty() => {
                    if duration.iter().any(|d| d.eq_ignore_ascii_case("for")) {
                        return Err(format!(
                            "`{item}`: `{FOR_OBJECTIVE} ID` comes last, after any `[field=value]`"
                        ));
                    }
                    parse_duration(&duration.join(" ")).map_err(|e| format!("`{item}`: {e}"))
                }
                _ => Err(format!("`{item}` does not say within how long; {FORMS}")),
            }
        };
        match words.split_first() {
            Some((kind, rest)) if kind.eq_ignore_ascii_case("acknowledge") => {
                if field.is_some() {
                    problems.push(format!(
                        "`{item}`: an acknowledgement carries no fields; `[field=value]` is for a reply"
                    ));
                }
                match within(rest) {
                    Ok(within) => expect.push((Expect::Acknowledge { within }, objective)),
                    Err(e) => problems.push(e),
                }
            }
            Some((kind, rest)) if kind.eq_ignore_ascii_case("reply") => {
                let Some((template, rest)) = rest.split_first().filter(|(t, _)| **t != "within")
                else {
                    problems.push(format!("`{item}` names no template for the reply; {FORMS}"));
                    continue;
                };
                if catalog.latest(template).is_none() {
                    problems.push(format!(
                        "`{item}`: there is no template `{template}` for the reply; the templates are {}",
                        template_ids(catalog)
                    ));
                    continue;
                }
                match within(rest) {
                    Ok(within) => expect.push((
                        Expect::Reply {
                            template: template.to_string(),
                            within,
                            field,
                        },
                        objective,
                    )),
                    Err(e) => problems.push(e),
                }
            }
            _ => problems.push(format!("`{item}` is not an expected action; {FORMS}")),
        }
    }
    if problems.is_empty() {
        Ok(expect)
    } else {
        Err(problems)
    }
}

/// What a message row says, shared by injects, wordings and follow-ups.
struct Message {
    template: Option<String>,
    precedence: Precedence,
    fields: BTreeMap<String, String>,
    text: String,
    language: Option<Language>,
}

/// Reads the template (unless `template` gives it: a wording's is its
/// inject's), precedence, fields, text and language of a row.
fn read_message(
    r: &Row<'_>,
    template: Option<&str>,
    catalog: &Catalog,
    found: &mut Found<'_>,
) -> Message {
    let template = match template {
        Some(t) => catalog.latest(t).map(|_| t.to_string()),
        None => {
            let t = r.get(TEMPLATE);
            if t.is_empty() {
                found.cell(
                    r.row,
                    TEMPLATE,
                    format!(
                        "every message names its template; the templates are {}",
                        template_ids(catalog)
                    ),
                );
                None
            } else if catalog.latest(t).is_none() {
                found.cell(
                    r.row,
                    TEMPLATE,
                    format!(
                        "there is no template `{t}`; the templates are {}",
                        template_ids(catalog)
                    ),
                );
                None
            } else {
                Some(t.to_string())
            }
        }
    };
    let fields = match parse_fields(r.raw(FIELDS)) {
        Ok(fields) => {
            if let Some(t) = &template {
                let mut messages = Vec::new();
                scenario::check_template(
                    catalog,
                    &Spanned::new(0..0, t.clone()),
                    &fields,
                    FIELDS,
                    &mut |_, _, m| messages.push(m),
                );
                for m in messages {
                    found.cell(r.row, FIELDS, m);
                }
            }
            fields
        }
        Err(problems) => {
            for p in problems {
                found.cell(r.row, FIELDS, p);
            }
            BTreeMap::new()
        }
    };
    let precedence = match r.get(PRECEDENCE) {
        "" => template
            .as_deref()
            .and_then(|t| catalog.latest(t))
            .map_or(Precedence::Routine, |t| t.precedence),
        p => p
            .parse()
            .unwrap_or_else(|e: crate::domain::UnknownPrecedence| {
                found.cell(r.row, PRECEDENCE, e.to_string());
                Precedence::Routine
            }),
    };
    let language = match r.get(LANGUAGE) {
        "" => None,
        l => l
            .parse()
            .map_err(|e: crate::domain::UnknownLanguage| found.cell(r.row, LANGUAGE, e.to_string()))
            .ok(),
    };
    Message {
        template,
        precedence,
        fields,
        text: r.raw(TEXT).to_string(),
        language,
    }
}

/// The kind of an event-table row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// An inject, to the trainee.
    Inject,
    /// An inject as written for this side.
    Wording(String),
    /// The follow-up of an inject (`None`) or of its wording for a side.
    FollowUp(Option<String>),
}

/// Parses and checks a MSEL spreadsheet: the scenario [`scenario::parse`]
/// gives for the same content in TOML, or every problem, each named by
/// file, row (1-based, counting the settings and header rows) and column.
pub fn parse(path: &Path, text: &str, catalog: &Catalog) -> Result<Scenario, Vec<Problem>> {
    let mut found = Found {
        path,
        problems: Vec::new(),
    };
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let records = match read_records(text) {
        Ok(r) => r,
        Err(e) => {
            found.push(
                Some(e.row),
                format!("row {}, column {}", e.row, e.column),
                e.message,
            );
            return Err(found.problems);
        }
    };
    let Some(header_at) = header_index(&records) else {
        found.push(
            None,
            String::new(),
            format!(
                "no header row; a MSEL has `#key,value` settings rows, then a header row naming its columns ({}), then one row per inject",
                COLUMNS.join(", ")
            ),
        );
        return Err(found.problems);
    };
    let header_row = header_at + 1;
    let settings = read_settings(&records[..header_at], &mut found);

    // The header.
    let mut columns: HashMap<&'static str, usize> = HashMap::new();
    for (c, cell) in records[header_at].iter().enumerate() {
        if cell.trim().is_empty() {
            continue;
        }
        match column_name(cell) {
            Some(name) => {
                if columns.insert(name, c).is_some() {
                    found.cell(
                        header_row,
                        cell.trim(),
                        format!("the header names column `{name}` twice; keep one"),
                    );
                }
            }
            None => found.cell(
                header_row,
                cell.trim(),
                format!(
                    "`{}` is not a column; the columns are {} (planners' remarks go in `notes`)",
                    cell.trim(),
                    COLUMNS.join(", ")
                ),
            ),
        }
    }
    for name in REQUIRED {
        if !columns.contains_key(name) {
            found.cell(
                header_row,
                name,
                format!(
                    "the header has no `{name}` column; the columns are {}",
                    COLUMNS.join(", ")
                ),
            );
        }
    }
    if REQUIRED.iter().any(|c| !columns.contains_key(c)) {
        return Err(found.problems);
    }

    // The scenario's parties.
    let trainee = settings.trainee.clone();
    let counterpart = settings.counterpart.clone();
    let mut sides: Vec<String> = vec![trainee.clone()];
    for (row, column, side) in &settings.sides {
        if *side != trainee && *side != counterpart {
            found.setting(
                *row,
                *column,
                "#sides",
                format!(
                    "`{side}` is neither the trainee ({trainee}) nor the counterpart ({counterpart})"
                ),
            );
        } else if !sides.contains(side) {
            sides.push(side.clone());
        }
    }
    let objective_ids: Vec<&str> = settings.objectives.iter().map(|o| o.id.as_str()).collect();
    let sender_to = |side: &str| {
        if side == trainee {
            counterpart.as_str()
        } else if side == counterpart {
            trainee.as_str()
        } else {
            counterpart.as_str()
        }
    };

    // Sort the rows into injects, wordings and follow-ups.
    let mut rows: Vec<(String, Kind, Row<'_>)> = Vec::new();
    let mut first_row: BTreeMap<(String, Kind), usize> = BTreeMap::new();
    for (i, cells) in records.iter().enumerate().skip(header_at + 1) {
        let r = Row {
            row: i + 1,
            cells,
            columns: &columns,
        };
        if blank(cells) {
            continue;
        }
        if is_setting(cells) {
            found.push(
                Some(r.row),
                format!("row {}, column 1", r.row),
                "a `#key,value` settings row goes above the header row; move it up",
            );
            continue;
        }
        for (c, cell) in cells.iter().enumerate() {
            let named = records[header_at]
                .get(c)
                .is_some_and(|h| !h.trim().is_empty());
            if !named && !cell.trim().is_empty() {
                found.push(
                    Some(r.row),
                    format!("row {}, column {}", r.row, c + 1),
                    "this cell is under no column name; name its column in the header or leave it empty",
                );
            }
        }
        let number = r.get(INJECT);
        let (id, follow_up) = match number.len().checked_sub(FOLLOW_UP_SUFFIX.len()) {
            Some(cut)
                if number.is_char_boundary(cut)
                    && number[cut..].eq_ignore_ascii_case(FOLLOW_UP_SUFFIX) =>
            {
                (number[..cut].trim(), true)
            }
            _ => (number, false),
        };
        if id.is_empty() {
            found.cell(
                r.row,
                INJECT,
                format!(
                    "every row names its inject, such as `link-check` (or `link-check{FOLLOW_UP_SUFFIX}` for its follow-up)"
                ),
            );
            continue;
        }
        let to = r.get(TO);
        let side = if to.is_empty() || to == trainee {
            None
        } else if sides.iter().any(|s| s == to) {
            Some(to.to_string())
        } else {
            found.cell(
                r.row,
                TO,
                format!(
                    "`{to}` is not a side of this scenario: a row goes to the trainee ({trainee}){}",
                    if sides.len() > 1 {
                        format!(", or to a side of `#sides` ({})", sides[1..].join(", "))
                    } else {
                        ", or to another side declared with `#sides`".into()
                    }
                ),
            );
            continue;
        };
        let from = r.get(FROM);
        let sender = sender_to(side.as_deref().unwrap_or(&trainee));
        if !from.is_empty() && from != sender {
            found.cell(
                r.row,
                FROM,
                format!(
                    "a row to {} comes from {sender}; write {sender} or leave it empty",
                    side.as_deref().unwrap_or(&trainee)
                ),
            );
        }
        let kind = match (follow_up, side) {
            (false, None) => Kind::Inject,
            (false, Some(s)) => Kind::Wording(s),
            (true, s) => Kind::FollowUp(s),
        };
        if let Some(before) = first_row.insert((id.to_string(), kind.clone()), r.row) {
            let what = match &kind {
                Kind::Inject => format!("inject `{id}`"),
                Kind::Wording(s) => format!("inject `{id}` as written for {s}"),
                Kind::FollowUp(None) => format!("the follow-up of `{id}`"),
                Kind::FollowUp(Some(s)) => format!("the follow-up of `{id}` for {s}"),
            };
            found.cell(
                r.row,
                INJECT,
                format!("{what} has a row already (row {before}); keep one"),
            );
            continue;
        }
        rows.push((id.to_string(), kind, r));
    }

    // The injects.
    let mut injects: Vec<(usize, Inject)> = Vec::new();
    for (id, kind, r) in &rows {
        if *kind != Kind::Inject {
            continue;
        }
        let at = parse_time(r.get(TIME)).unwrap_or_else(|e| {
            found.cell(r.row, TIME, e);
            Duration::ZERO
        });
        let m = read_message(r, None, catalog, &mut found);
        let (expect, expect_objectives) = parse_expect(r.get(EXPECTED), catalog, &objective_ids)
            .unwrap_or_else(|problems| {
                for p in problems {
                    found.cell(r.row, EXPECTED, p);
                }
                Vec::new()
            })
            .into_iter()
            .unzip();
        let objective = match r.get(OBJECTIVE) {
            "" => None,
            o => {
                if !objective_ids.contains(&o) {
                    found.cell(
                        r.row,
                        OBJECTIVE,
                        if objective_ids.is_empty() {
                            format!(
                                "`{o}` names no objective; declare it in a `#objective,{o},TEXT` row above the header"
                            )
                        } else {
                            format!(
                                "`{o}` names no objective; the objectives are {}",
                                objective_ids.join(", ")
                            )
                        },
                    );
                }
                Some(o.to_string())
            }
        };
        injects.push((
            r.row,
            Inject {
                id: id.clone(),
                at,
                template: m.template.unwrap_or_else(|| r.get(TEMPLATE).to_string()),
                precedence: m.precedence,
                fields: m.fields,
                text: m.text,
                language: m.language,
                expect,
                expect_objectives,
                follow_up: None,
                objective,
                sides: BTreeMap::new(),
            },
        ));
    }

    // Each inject as written for the other sides, then the follow-ups.
    let orphan = |found: &mut Found<'_>, r: &Row<'_>, id: &str| {
        found.cell(
            r.row,
            INJECT,
            format!(
                "there is no inject `{id}`: no row for it goes from {counterpart} to {trainee}; a side's wording and a follow-up belong to an inject"
            ),
        );
    };
    for (id, kind, r) in &rows {
        let Kind::Wording(side) = kind else {
            continue;
        };
        let Some((_, inject)) = injects.iter_mut().find(|(_, i)| i.id == *id) else {
            orphan(&mut found, r, id);
            continue;
        };
        // What is the inject's: empty, or the same.
        let same = |column: &str, matches: bool, found: &mut Found<'_>, shown: &str| {
            if !r.get(column).is_empty() && !matches {
                found.cell(
                    r.row,
                    column,
                    format!(
                        "a side's wording has its inject's {column} ({shown}); leave it empty or write the same"
                    ),
                );
            }
        };
        let at = format_offset(inject.at);
        same(
            TIME,
            parse_time(r.get(TIME)).is_ok_and(|t| t == inject.at),
            &mut found,
            &at,
        );
        same(
            TEMPLATE,
            r.get(TEMPLATE) == inject.template,
            &mut found,
            &inject.template,
        );
        same(
            PRECEDENCE,
            r.get(PRECEDENCE)
                .parse::<Precedence>()
                .is_ok_and(|p| p == inject.precedence),
            &mut found,
            inject.precedence.as_str(),
        );
        same(
            EXPECTED,
            parse_expect(r.get(EXPECTED), catalog, &objective_ids).is_ok_and(|e| {
                e.into_iter().unzip() == (inject.expect.clone(), inject.expect_objectives.clone())
            }),
            &mut found,
            &format_expect(&inject.expect, &inject.expect_objectives),
        );
        same(
            OBJECTIVE,
            inject.objective.as_deref() == Some(r.get(OBJECTIVE)),
            &mut found,
            inject.objective.as_deref().unwrap_or("none"),
        );
        let template = inject.template.clone();
        let m = read_message(r, Some(&template), catalog, &mut found);
        inject.sides.insert(
            side.clone(),
            Wording {
                fields: m.fields,
                text: m.text,
                language: m.language,
                follow_up: None,
            },
        );
    }
    for (id, kind, r) in &rows {
        let Kind::FollowUp(side) = kind else {
            continue;
        };
        let after = parse_after(r.get(TIME)).unwrap_or_else(|e| {
            found.cell(r.row, TIME, e);
            Duration::ZERO
        });
        for column in [LANGUAGE, EXPECTED, OBJECTIVE] {
            if !r.get(column).is_empty() {
                found.cell(
                    r.row,
                    column,
                    format!(
                        "a follow-up has no {column} of its own (it is its inject's); leave it empty"
                    ),
                );
            }
        }
        let m = read_message(r, None, catalog, &mut found);
        let follow_up = FollowUp {
            after,
            template: m.template.unwrap_or_default(),
            precedence: m.precedence,
            fields: m.fields,
            text: m.text,
        };
        let Some((_, inject)) = injects.iter_mut().find(|(_, i)| i.id == *id) else {
            orphan(&mut found, r, id);
            continue;
        };
        match side {
            None => inject.follow_up = Some(follow_up),
            Some(side) => match inject.sides.get_mut(side) {
                Some(w) => w.follow_up = Some(follow_up),
                None => found.cell(
                    r.row,
                    TO,
                    format!(
                        "inject `{id}` has no row for {side} (from {} to {side}); a follow-up for {side} follows its inject's wording for {side}",
                        sender_to(side)
                    ),
                ),
            },
        }
    }
    for (row, inject) in &injects {
        for side in &sides[1..] {
            if !inject.sides.contains_key(side) {
                found.cell(
                    *row,
                    INJECT,
                    format!(
                        "inject `{}` is not written for {side}, a side of `#sides`; add a row for `{}` from {} to {side} with its fields",
                        inject.id,
                        inject.id,
                        sender_to(side)
                    ),
                );
            }
        }
    }
    // (A row that is not an inject has a problem of its own.)
    if records[header_at + 1..].iter().all(|r| blank(r)) {
        found.push(
            Some(header_row),
            format!("row {header_row}"),
            "a scenario needs at least one inject: a row under the header",
        );
    }
    if settings.id.is_none() {
        found.push(
            Some(1),
            "row 1, column 1 (#id)".into(),
            "the scenario has no `#id` row; put `#id,SCENARIO-ID` above the header",
        );
    }
    if settings.title.is_none() {
        found.push(
            Some(1),
            "row 1, column 1 (#title)".into(),
            "the scenario has no `#title` row; put `#title,TITLE` above the header",
        );
    }
    if !found.problems.is_empty() {
        found.problems.sort_by_key(|p| p.line);
        return Err(found.problems);
    }
    let mut injects: Vec<Inject> = injects.into_iter().map(|(_, i)| i).collect();
    injects.sort_by_key(|i| i.at);
    Ok(Scenario {
        id: settings.id.unwrap_or_default(),
        title: settings.title.unwrap_or_default(),
        description: settings.description,
        objectives: settings.objectives,
        time_compression: settings.time_compression,
        counterpart,
        trainee,
        sides,
        injects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module's example is what `to_csv` writes, and reads back.
    #[test]
    fn the_documented_example_is_exact() {
        let source = include_str!("mod.rs");
        let start = source.find("//! ```text\n//! #id").expect("the example") + 12;
        let end = start + source[start..].find("//! ```").expect("its end");
        let example: String = source[start..end]
            .lines()
            .map(|l| {
                let l = l.trim_start().trim_start_matches("//!");
                format!("{}\n", l.strip_prefix(' ').unwrap_or(l))
            })
            .collect();
        let s = parse(Path::new("example.csv"), &example, Catalog::builtin())
            .unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(s.injects[0].sides["MOSCOW"].language, Some(Language::RU));
        // The acknowledgement serves the inject's objective, the reply its own.
        assert_eq!(
            (s.injects[0].objective_of(0), s.injects[0].objective_of(1)),
            (Some("ack"), Some("reply"))
        );
        // Records end in CRLF, line breaks within a cell in LF.
        assert_eq!(to_csv(&s).replace("\r\n", "\n"), format!("{BOM}{example}"));
    }

    #[test]
    fn escapes_round_trip() {
        for s in ["a\\b", "x\ny\r\tz", "\\n literal", "semi;[br]=eq", "C:\\x"] {
            assert_eq!(unescape(&escape(s, ";[]=")), s);
        }
        assert_eq!(unescape("C:\\x"), "C:\\x", "an unknown escape is kept");
    }

    #[test]
    fn times_and_delays() {
        assert_eq!(format_offset(Duration::from_secs(75)), "T+01:15");
        assert_eq!(format_offset(Duration::from_secs(3725)), "T+1:02:05");
        for s in [0, 75, 3599, 3600, 3725, 7 * 86_400] {
            let d = Duration::from_secs(s);
            assert_eq!(parse_time(&format_offset(d)), Ok(d));
        }
        assert_eq!(parse_after("after 1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_after("+90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_after("After 01:30"), Ok(Duration::from_secs(90)));
        assert!(parse_after("later").is_err());
        assert!(parse_after("after 8d").is_err());
    }

    #[test]
    fn expectations_parse() {
        let catalog = Catalog::builtin();
        let objectives = ["reply", "odd; [id]"];
        let e = parse_expect(
            "acknowledge within 2m; reply response within 1m 30s [disposition=accept]",
            catalog,
            &objectives,
        )
        .expect("parses");
        assert_eq!(
            e,
            vec![
                (
                    Expect::Acknowledge {
                        within: Duration::from_secs(120)
                    },
                    None
                ),
                (
                    Expect::Reply {
                        template: "response".into(),
                        within: Duration::from_secs(90),
                        field: Some(("disposition".into(), "accept".into())),
                    },
                    None
                )
            ]
        );
        let (expect, objectives_of): (Vec<_>, Vec<_>) = e.iter().cloned().unzip();
        assert_eq!(
            parse_expect(
                &format_expect(&expect, &objectives_of),
                catalog,
                &objectives
            ),
            Ok(e)
        );

        // An expectation's own objective, after any `[field=value]`.
        let e = parse_expect(
            "acknowledge within 2m FOR Objective reply; reply response within 3m [objective=x\\]] for objective odd\\; \\[id\\]",
            catalog,
            &objectives,
        )
        .unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(
            e.iter().map(|(_, o)| o.as_deref()).collect::<Vec<_>>(),
            [Some("reply"), Some("odd; [id]")]
        );
        assert_eq!(
            e[1].0,
            Expect::Reply {
                template: "response".into(),
                within: Duration::from_secs(180),
                field: Some(("objective".into(), "x]".into())),
            },
            "`[objective=…]` is a field the reply carries"
        );
        let (expect, objectives_of): (Vec<_>, Vec<_>) = e.iter().cloned().unzip();
        let written = format_expect(&expect, &objectives_of);
        assert_eq!(
            written,
            "acknowledge within 2m for objective reply; reply response within 3m [objective=x\\]] for objective odd\\; \\[id\\]"
        );
        assert_eq!(parse_expect(&written, catalog, &objectives), Ok(e));

        for bad in [
            "acknowledge",
            "acknowledge soon",
            "reply within 2m",
            "reply nosuch within 2m",
            "reply response within 2m [x]",
            "wave within 2m",
            "acknowledge within 2m for objective",
            "acknowledge within 2m for objective nosuch",
            "reply response within 2m for objective reply [disposition=accept]",
        ] {
            assert!(parse_expect(bad, catalog, &objectives).is_err(), "{bad}");
        }
        let problems = parse_expect(
            "acknowledge within 2m for objective nosuch",
            catalog,
            &objectives,
        )
        .expect_err("an unknown objective");
        assert!(
            problems[0]
                .contains("`nosuch` names no objective; the objectives are reply, odd; [id]"),
            "{problems:?}"
        );
        let problems = parse_expect(
            "reply response within 2m for objective reply [disposition=accept]",
            catalog,
            &objectives,
        )
        .expect_err("the objective before the field");
        assert!(problems[0].contains("comes last"), "{problems:?}");
    }
}
