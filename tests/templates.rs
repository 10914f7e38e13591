//! The crisis templates: the built-in ones load and render in both languages,
//! field values are validated per kind, and a broken template file is
//! reported with its file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hotline::compose::{self, Draft, DraftError, Origin};
use hotline::domain::{Language, OperatorName, StationName};
use hotline::problem::Problem;
use hotline::templates::{
    Catalog, Field, FieldKind, ReaderView, Template, ValueError, for_reader, parse_template, render,
};
use jiff::Timestamp;

const EXPECTED_IDS: [&str; 8] = [
    "cyber-incident",
    "request-info",
    "response",
    "missile-launch",
    "nuclear-accident",
    "military-incident",
    "general",
    "situation-update",
];

/// The DTG every datetime field is filled with, and how it must render.
const DTG_INPUT: &str = "261415Z NOV 26";
const DTG_CANONICAL: &str = "2026-11-26T14:15:00Z";

fn now() -> Timestamp {
    // A different moment from DTG_INPUT, so the message header's own DTG
    // cannot satisfy the datetime assertions by accident.
    "2026-11-20T08:00:00Z".parse().expect("timestamp")
}

fn catalog() -> &'static Catalog {
    Catalog::builtin()
}

fn template(id: &str) -> &'static Template {
    catalog()
        .latest(id)
        .unwrap_or_else(|| panic!("built-in template `{id}` is missing"))
}

fn field<'t>(t: &'t Template, name: &str) -> &'t Field {
    t.field(name)
        .unwrap_or_else(|| panic!("template `{}` has no field `{name}`", t.id))
}

/// A valid value, as an operator would type it, for a field of this kind.
fn sample_input(f: &Field) -> String {
    match &f.kind {
        FieldKind::Text { .. } => "test text".into(),
        FieldKind::Choice(choices) => choices
            .first()
            .expect("a choice field has choices")
            .value
            .clone(),
        FieldKind::DateTime => DTG_INPUT.into(),
        FieldKind::Integer { min, max } => {
            if (*min..=*max).contains(&1) {
                "1".into()
            } else {
                min.to_string()
            }
        }
        FieldKind::Coordinates => "45.92N 63.34E".into(),
        FieldKind::Duration => "2h 30m".into(),
        FieldKind::Area => "circle 45.92N 63.34E radius 50 km".into(),
    }
}

fn origin(language: Language) -> Origin {
    Origin {
        station: StationName::new(if language == Language::EN {
            "WASHINGTON"
        } else {
            "MOSCOW"
        })
        .expect("name"),
        operator: OperatorName::new("j.smith").expect("name"),
        second_operator: None,
        language,
    }
}

fn full_draft(t: &Template) -> Draft {
    Draft {
        template_id: t.id.clone(),
        fields: t
            .fields
            .iter()
            .map(|f| (f.name.clone(), sample_input(f)))
            .collect(),
        precedence: None,
        text: "Additional free text from the sender.".into(),
        text_language: None,
        label: None,
        // An amending template names exactly one earlier message.
        references: if t.amends.is_some() {
            vec![hotline::domain::MessageId::new()]
        } else {
            Vec::new()
        },
        exercise: false,
    }
}

#[test]
fn builtin_templates_all_load() {
    let problems = Catalog::builtin_problems();
    assert!(
        problems.is_empty(),
        "built-in template problems:\n{problems:#?}"
    );
    let current = catalog().current();
    assert!(current.len() >= 8, "only {} templates", current.len());
    for id in EXPECTED_IDS {
        let t = template(id);
        assert_eq!(t.id, id);
        assert!(t.version >= 1);
        // Every shipped console language is one of the template's, and
        // each text is written in it (not left in English).
        let languages: Vec<Language> = t.languages.iter().map(|l| l.language).collect();
        for lang in hotline::lang::shipped_languages() {
            assert!(languages.contains(&lang), "{id}: no {lang}");
        }
        let script = |lang: Language, text: &str| match lang.code() {
            "ru" => text.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
            "zh" => text.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c)),
            _ => true,
        };
        for lang in &languages {
            let mut texts = vec![("title", &t.title), ("body", &t.body)];
            for f in &t.fields {
                texts.push(("label", &f.label));
            }
            for (what, text) in texts {
                let own = text.get(*lang);
                assert!(!own.trim().is_empty(), "{id}: empty {lang} {what}");
                assert!(
                    script(*lang, own),
                    "{id}: the {lang} {what} is not in its script: {own}"
                );
                if *lang != Language::EN && what != "label" {
                    assert_ne!(
                        own,
                        text.get(Language::EN),
                        "{id}: {what} is not translated to {lang}"
                    );
                }
            }
        }
        assert!(!t.fields.is_empty(), "{id}: no fields");
        for f in &t.fields {
            if let FieldKind::Choice(choices) = &f.kind {
                assert!(!choices.is_empty(), "{id}.{}: no choices", f.name);
                for c in choices {
                    for lang in &languages {
                        assert!(
                            !c.label(*lang).is_empty(),
                            "{id}.{}: choice {} unlabelled in {lang}",
                            f.name,
                            c.value
                        );
                    }
                }
            }
        }
    }
    // Titles are distinct across templates, in each language.
    for lang in hotline::lang::shipped_languages() {
        let mut titles: Vec<&str> = current.iter().map(|t| t.title.get(lang)).collect();
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(
            titles.len(),
            current.len(),
            "two templates share a {lang} title"
        );
    }
}

#[test]
fn every_template_renders_in_both_languages() {
    for t in catalog().current() {
        let checked = compose::check(&full_draft(t), catalog(), now())
            .unwrap_or_else(|e| panic!("{}: a fully filled draft was refused: {e}", t.id));
        assert_eq!(
            checked.precedence, t.precedence,
            "{}: default precedence",
            t.id
        );
        assert_eq!(checked.fields.len(), t.fields.len(), "{}", t.id);
        t.check_values(&checked.fields)
            .unwrap_or_else(|e| panic!("{}: canonical values refused on the wire: {e:?}", t.id));

        let to = StationName::new("MOSCOW").expect("name");
        let message = compose::build(&checked, &origin(Language::EN), &to, 7, now());
        assert_eq!(message.original.language, "en");
        assert_eq!(
            message.original.text,
            render(&message, t, Language::EN, Language::EN),
            "{}",
            t.id
        );

        let en = render(&message, t, Language::EN, Language::EN);
        let ru = render(&message, t, Language::RU, Language::EN);
        for (lang, text) in [(Language::EN, &en), (Language::RU, &ru)] {
            let id = &t.id;
            assert!(
                text.starts_with(&format!("{} — {}\n", t.precedence, t.title.get(lang))),
                "{id} {lang}: header\n{text}"
            );
            assert!(
                !text.contains('{') && !text.contains('}'),
                "{id} {lang}: unfilled placeholder\n{text}"
            );
            assert!(
                text.contains("200800Z NOV 26"),
                "{id} {lang}: the message's own DTG\n{text}"
            );
            let has_datetime = t.fields.iter().any(|f| f.kind == FieldKind::DateTime);
            assert_eq!(
                text.contains(DTG_INPUT),
                has_datetime,
                "{id} {lang}: datetime shown as a DTG\n{text}"
            );
            assert!(
                !text.contains(DTG_CANONICAL),
                "{id} {lang}: raw timestamp leaked\n{text}"
            );
            let free = match lang {
                Language::EN => "[free text, original language: English]",
                _ => "[свободный текст, язык оригинала: English]",
            };
            for f in &t.fields {
                let label = f.label.get(lang);
                let shown = match &f.kind {
                    FieldKind::Text { .. } => format!("{label} {free}:\n  test text\n"),
                    FieldKind::Choice(choices) => format!("{label}: {}\n", choices[0].label(lang)),
                    FieldKind::DateTime => format!("{label}: {DTG_INPUT}\n"),
                    FieldKind::Integer { .. } => format!("{label}: {}\n", sample_input(f)),
                    FieldKind::Coordinates => match lang {
                        Language::EN => format!("{label}: 45.9200N 063.3400E\n"),
                        _ => format!("{label}: 45.9200 с. ш. 063.3400 в. д.\n"),
                    },
                    FieldKind::Duration => match lang {
                        Language::EN => format!("{label}: 2h 30m\n"),
                        _ => format!("{label}: 2 ч 30 мин\n"),
                    },
                    FieldKind::Area => match lang {
                        Language::EN => format!(
                            "{label}: a circle of radius 50.0 km centred on 45.9200N 063.3400E\n"
                        ),
                        _ => format!(
                            "{label}: круг радиусом 50.0 км с центром в точке 45.9200 с. ш. 063.3400 в. д.\n"
                        ),
                    },
                };
                assert!(
                    text.contains(&shown),
                    "{id} {lang}: field {} should show as {shown:?}\n{text}",
                    f.name
                );
            }
            let text_label = if lang == Language::EN {
                "Text"
            } else {
                "Текст"
            };
            assert!(
                text.contains(&format!(
                    "{text_label} {free}:\n  Additional free text from the sender."
                )),
                "{id} {lang}: free text marked with its original language\n{text}"
            );
        }
        assert!(
            en.contains(t.title.get(Language::EN)) && !en.contains(t.title.get(Language::RU)),
            "{}: English rendering\n{en}",
            t.id
        );
        assert!(
            ru.contains(t.title.get(Language::RU)) && !ru.contains(t.title.get(Language::EN)),
            "{}: Russian rendering\n{ru}",
            t.id
        );
        assert!(
            ru.contains("От WASHINGTON для MOSCOW") && ru.contains("номер 7"),
            "{}\n{ru}",
            t.id
        );
        assert!(
            en.contains("From WASHINGTON to MOSCOW") && en.contains("serial 7"),
            "{}\n{en}",
            t.id
        );
    }
}

#[test]
fn reader_gets_own_language_rendering_or_the_original() {
    let t = template("missile-launch");
    let checked = compose::check(&full_draft(t), catalog(), now()).expect("valid draft");
    let to = StationName::new("WASHINGTON").expect("name");
    let message = compose::build(&checked, &origin(Language::RU), &to, 1, now());
    assert_eq!(message.original.language, "ru");
    assert!(
        message.original.text.contains(t.title.get(Language::RU)),
        "{}",
        message.original.text
    );

    match for_reader(&message, catalog(), Language::RU) {
        ReaderView::Original { text } => assert_eq!(text, message.original.text),
        other => panic!("a Russian reader of a Russian message gets the original, got {other:?}"),
    }
    match for_reader(&message, catalog(), Language::EN) {
        ReaderView::Rendered { text, language } => {
            assert_eq!(language, Language::EN);
            assert!(text.contains(t.title.get(Language::EN)), "{text}");
            assert!(
                text.contains("[free text, original language: русский]"),
                "{text}"
            );
            assert_eq!(text, render(&message, t, Language::EN, Language::RU));
        }
        other => panic!("an English reader gets a rendering, got {other:?}"),
    }

    let mut unknown = message.clone();
    unknown.template.version = 99;
    match for_reader(&unknown, catalog(), Language::EN) {
        ReaderView::OriginalOnly { text, reason } => {
            assert_eq!(text, message.original.text);
            assert!(reason.contains("version 99"), "{reason}");
        }
        other => panic!("an unknown template version shows the original, got {other:?}"),
    }
}

#[test]
fn exercise_messages_are_marked_in_both_languages() {
    let t = template("general");
    let mut draft = full_draft(t);
    draft.exercise = true;
    let checked = compose::check(&draft, catalog(), now()).expect("valid draft");
    let message = compose::build(
        &checked,
        &origin(Language::EN),
        &StationName::new("MOSCOW").expect("name"),
        1,
        now(),
    );
    assert!(
        render(&message, t, Language::EN, Language::EN).starts_with("EXERCISE EXERCISE EXERCISE\n")
    );
    assert!(render(&message, t, Language::RU, Language::EN).starts_with("УЧЕНИЯ УЧЕНИЯ УЧЕНИЯ\n"));
}

fn invalid(f: &Field, input: &str) -> String {
    match f.canonicalize(input, now()) {
        Ok(v) => panic!("{}: `{input}` should be refused, got `{v}`", f.name),
        Err(ValueError::Invalid { field, problem }) => {
            assert_eq!(field, f.name);
            let message = problem.to_string();
            assert!(!message.is_empty());
            message
        }
        Err(other) => panic!("{}: `{input}`: expected Invalid, got {other:?}", f.name),
    }
}

fn canonical(f: &Field, input: &str) -> String {
    f.canonicalize(input, now())
        .unwrap_or_else(|e| panic!("{}: `{input}` should be accepted: {e}", f.name))
}

#[test]
fn field_values_are_validated_per_kind() {
    let ml = template("missile-launch");

    let count = field(ml, "count");
    assert_eq!(count.kind, FieldKind::Integer { min: 1, max: 100 });
    assert!(invalid(count, "0").contains("outside 1..=100"));
    assert!(invalid(count, "101").contains("outside 1..=100"));
    assert!(invalid(count, "three").contains("not a whole number"));
    assert!(invalid(count, "2.5").contains("not a whole number"));
    assert_eq!(canonical(count, " 7 "), "7");
    assert_eq!(canonical(count, "007"), "7");

    let kind = field(ml, "missile_type");
    let message = invalid(kind, "banana");
    assert!(
        message.contains("`banana`") && message.contains("icbm") && message.contains("slbm"),
        "{message}"
    );
    assert_eq!(canonical(kind, "ICBM"), "icbm");
    assert_eq!(
        canonical(kind, "space launch vehicle"),
        "space_launch_vehicle"
    );
    assert_eq!(
        canonical(kind, "Ракета космического назначения"),
        "space_launch_vehicle"
    );

    let area = field(ml, "launch_area");
    for bad in ["91N 10E", "45.92N", "north pole", "10N 181E"] {
        assert!(invalid(area, bad).contains("not a position"), "{bad}");
    }
    assert_eq!(canonical(area, "45.92N 63.34E"), "45.9200N 063.3400E");
    assert_eq!(canonical(area, "-33.5, -70.25"), "33.5000S 070.2500W");

    let window = field(ml, "launch_window");
    for bad in ["90", "2 hours", "soon"] {
        assert!(invalid(window, bad).contains("not a duration"), "{bad}");
    }
    assert_eq!(canonical(window, "150m"), "2h 30m");
    assert_eq!(canonical(window, "1d"), "1d");

    let when = field(ml, "launch_time");
    for bad in ["tomorrow", "321415Z NOV 26", "261415Z FOO 26", "+"] {
        assert!(invalid(when, bad).contains("not a date-time"), "{bad}");
    }
    assert_eq!(canonical(when, DTG_INPUT), DTG_CANONICAL);
    assert_eq!(canonical(when, "2026-11-26 14:15"), DTG_CANONICAL);
    assert_eq!(canonical(when, "+30m"), "2026-11-20T08:30:00Z");
    assert_eq!(canonical(when, "now"), "2026-11-20T08:00:00Z");

    let subject = field(template("general"), "subject");
    assert_eq!(
        subject.kind,
        FieldKind::Text {
            multiline: false,
            max_len: 200
        }
    );
    assert!(invalid(subject, &"x".repeat(201)).contains("at most 200"));
    assert_eq!(
        canonical(subject, &"я".repeat(200)),
        "я".repeat(200),
        "length counts characters, not bytes"
    );
    assert!(invalid(subject, "red \u{1b}[31malert").contains("U+001B"));
    assert!(
        invalid(subject, "two\nlines").contains("U+000A"),
        "a single-line field refuses newlines"
    );
    assert_eq!(canonical(subject, "  padded  "), "padded");

    let remarks = field(ml, "remarks");
    assert_eq!(
        canonical(remarks, "line one\nline two\n\n"),
        "line one\nline two"
    );
    assert!(invalid(remarks, "bell\u{7}").contains("U+0007"));

    for f in [count, kind, area, window, when, subject] {
        assert_eq!(
            f.canonicalize("   ", now()),
            Err(ValueError::Missing {
                field: f.name.clone()
            }),
            "{}: blank is missing",
            f.name
        );
    }
}

#[test]
fn wire_values_must_be_canonical() {
    let ml = template("missile-launch");
    let cases: [(&str, &str, &str); 6] = [
        ("count", "7", "007"),
        ("missile_type", "icbm", "ICBM"),
        ("launch_area", "45.9200N 063.3400E", "45.92N 63.34E"),
        ("launch_window", "2h 30m", "150m"),
        ("launch_time", DTG_CANONICAL, DTG_INPUT),
        ("remarks", "text", "text\n"),
    ];
    for (name, good, bad) in cases {
        let f = field(ml, name);
        assert_eq!(
            f.check_canonical(good),
            Ok(()),
            "{name}: `{good}` is canonical"
        );
        match f.check_canonical(bad) {
            Err(ValueError::Invalid { field, problem }) => {
                assert_eq!(field, name);
                assert!(problem.to_string().contains("canonical"), "{problem}");
            }
            other => panic!("{name}: `{bad}` must be refused from the wire, got {other:?}"),
        }
    }
    let when = field(ml, "launch_time");
    assert!(
        when.check_canonical("now").is_err(),
        "relative times never travel"
    );
    assert!(
        when.check_canonical("+30m").is_err(),
        "relative times never travel"
    );
    assert!(
        field(ml, "count").check_canonical("500").is_err(),
        "out of range on the wire too"
    );

    // A whole value set: unknown and missing fields are both named.
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    values.insert("count".into(), "3".into());
    values.insert("warhead".into(), "none".into());
    let errors = ml.check_values(&values).expect_err("incomplete");
    assert!(
        errors.contains(&ValueError::Unknown {
            field: "warhead".into(),
            template: "missile-launch".into()
        }),
        "{errors:?}"
    );
    for required in [
        "launch_time",
        "launch_window",
        "launch_area",
        "impact_area",
        "missile_type",
    ] {
        assert!(
            errors.contains(&ValueError::Missing {
                field: required.into()
            }),
            "{required}: {errors:?}"
        );
    }
    assert!(
        !errors.contains(&ValueError::Missing {
            field: "remarks".into()
        }),
        "remarks is optional"
    );
}

#[test]
fn draft_check_reports_every_field_problem() {
    let draft = Draft {
        template_id: "missile-launch".into(),
        fields: [
            ("count", "0"),
            ("missile_type", "banana"),
            ("launch_time", "tomorrow"),
            ("launch_window", "90"),
            ("launch_area", "91N 10E"),
            ("colour", "red"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Draft::default()
    };
    match compose::check(&draft, catalog(), now()) {
        Err(DraftError::Fields(errors)) => {
            let named: Vec<&str> = errors
                .iter()
                .map(|e| match e {
                    ValueError::Missing { field }
                    | ValueError::Unknown { field, .. }
                    | ValueError::Invalid { field, .. } => field.as_str(),
                })
                .collect();
            for f in [
                "count",
                "missile_type",
                "launch_time",
                "launch_window",
                "launch_area",
                "colour",
                "impact_area",
            ] {
                assert!(named.contains(&f), "{f} not reported: {errors:?}");
            }
            assert_eq!(errors.len(), 7, "{errors:?}");
        }
        other => panic!("expected field errors, got {other:?}"),
    }
    let unknown = Draft {
        template_id: "no-such-template".into(),
        ..Draft::default()
    };
    assert!(matches!(
        compose::check(&unknown, catalog(), now()),
        Err(DraftError::UnknownTemplate(_))
    ));
}

// ---- broken template files ----

const PROBE: &str = r#"# A template for tests.
id = "probe"
version = 1
precedence = "PRIORITY"

[languages]
en = { reviewed = true }
ru = { reviewed = false }

[title]
en = "Probe"
ru = "Проба"

[body]
en = "Subject: {subject}."
ru = "Тема: {subject}."

[[fields]]
name = "subject"
type = "text"
required = true
label = { en = "Subject", ru = "Тема" }

[[fields]]
name = "note"
type = "text"
required = false
label = { en = "Note", ru = "Примечание" }

[[fields]]
name = "kind"
type = "choice"
required = true
label = { en = "Kind", ru = "Вид" }
choices = [
  { value = "alpha", en = "Alpha", ru = "Альфа" },
]
"#;

fn probe_path() -> PathBuf {
    PathBuf::from("dir/probe.toml")
}

fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "`{needle}` should occur on exactly one line: {hits:?}"
    );
    hits[0]
}

fn edited(from: &str, to: &str) -> String {
    assert!(
        PROBE.contains(from),
        "`{from}` is not in the probe template"
    );
    PROBE.replacen(from, to, 1)
}

fn problems(path: &Path, text: &str) -> Vec<Problem> {
    match parse_template(path, text) {
        Ok(t) => panic!("expected problems, but `{}` was accepted", t.id),
        Err(p) => {
            assert!(!p.is_empty());
            for problem in &p {
                assert_eq!(problem.path, path, "{problem}");
                assert!(
                    problem.line.is_some(),
                    "every problem has a line: {problem}"
                );
            }
            p
        }
    }
}

#[test]
fn probe_template_is_valid() {
    let t = parse_template(&probe_path(), PROBE).expect("the probe template is valid");
    assert_eq!(t.id, "probe");
    assert_eq!(t.fields.len(), 3);
}

#[test]
fn broken_template_unknown_key() {
    let text = edited("version = 1\n", "version = 1\ncolour = \"red\"\n");
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].line, Some(line_of(&text, "colour")), "{}", p[0]);
    assert!(p[0].message.contains("colour"), "{}", p[0]);
    assert!(
        p[0].to_string()
            .starts_with(&format!("dir/probe.toml:{}: ", line_of(&text, "colour"))),
        "{}",
        p[0]
    );

    let text = edited("required = false\n", "required = false\nmandatory = true\n");
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].line, Some(line_of(&text, "mandatory")), "{}", p[0]);
}

/// The line of a body problem: within the `[body]` table.
fn assert_in_body(text: &str, p: &Problem) {
    let line = p.line.expect("line");
    let (start, end) = (line_of(text, "[body]"), line_of(text, "ru = \"Тема:"));
    assert!(
        (start..=end).contains(&line),
        "line {line} is not in the body ({start}..={end}): {p}"
    );
}

#[test]
fn broken_template_placeholder_names_missing_field() {
    let text = edited(
        "en = \"Subject: {subject}.\"",
        "en = \"Subject: {subjekt}.\"",
    );
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "body.en");
    assert!(
        p[0].message.contains("{subjekt}") && p[0].message.contains("names no field"),
        "{}",
        p[0]
    );
    assert_in_body(&text, &p[0]);

    let text = edited(
        "ru = \"Тема: {subject}.\"",
        "ru = \"Тема: {subject} {open\"",
    );
    let p = problems(&probe_path(), &text);
    assert!(
        p.iter()
            .any(|x| x.key == "body.ru" && x.message.contains("never closed")),
        "{p:#?}"
    );
}

#[test]
fn broken_template_placeholder_names_optional_field() {
    let text = edited(
        "ru = \"Тема: {subject}.\"",
        "ru = \"Тема: {subject}, {note}.\"",
    );
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "body.ru");
    assert!(
        p[0].message.contains("{note}") && p[0].message.contains("optional"),
        "{}",
        p[0]
    );
    assert_in_body(&text, &p[0]);
}

#[test]
fn broken_template_choice_without_choices() {
    let text = edited(
        "choices = [\n  { value = \"alpha\", en = \"Alpha\", ru = \"Альфа\" },\n]\n",
        "",
    );
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "fields.kind.choices");
    assert_eq!(
        p[0].line,
        Some(line_of(&text, "type = \"choice\"")),
        "{}",
        p[0]
    );
    assert!(p[0].message.contains("at least one choice"), "{}", p[0]);

    let text = edited(
        "choices = [\n  { value = \"alpha\", en = \"Alpha\", ru = \"Альфа\" },\n]\n",
        "choices = []\n",
    );
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "fields.kind.choices");
}

#[test]
fn broken_template_id_must_match_file_name() {
    let path = Path::new("dir/other-name.toml");
    let p = problems(path, PROBE);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "id");
    assert_eq!(p[0].line, Some(line_of(PROBE, "id = ")), "{}", p[0]);
    assert!(p[0].message.contains("`other-name`"), "{}", p[0]);
    assert!(
        p[0].to_string()
            .starts_with("dir/other-name.toml:2: key `id`: "),
        "{}",
        p[0]
    );
}

#[test]
fn broken_template_reports_every_problem() {
    let text = edited("precedence = \"PRIORITY\"", "precedence = \"URGENT\"");
    let text = text.replacen(
        "type = \"text\"\nrequired = false",
        "type = \"colour\"\nrequired = false",
        1,
    );
    let text = text.replacen("name = \"kind\"", "name = \"Kind\"", 1);
    let p = problems(Path::new("dir/probe.toml"), &text);
    let keys: Vec<&str> = p.iter().map(|x| x.key.as_str()).collect();
    assert!(keys.contains(&"precedence"), "{p:#?}");
    assert!(keys.contains(&"fields.note.type"), "{p:#?}");
    assert!(keys.contains(&"fields.name"), "{p:#?}");
    let precedence = p
        .iter()
        .find(|x| x.key == "precedence")
        .expect("precedence problem");
    assert_eq!(precedence.line, Some(line_of(&text, "URGENT")));
    let colour = p
        .iter()
        .find(|x| x.key == "fields.note.type")
        .expect("type problem");
    assert_eq!(colour.line, Some(line_of(&text, "colour")));
    assert!(
        colour.message.contains("`colour`") && colour.message.contains("coordinates"),
        "{colour}"
    );
    assert_eq!(p.len(), 3, "{p:#?}");
}

#[test]
fn catalog_keeps_good_templates_and_names_bad_files() {
    let general = include_str!("../assets/templates/general.toml");
    let broken = edited(
        "en = \"Subject: {subject}.\"",
        "en = \"Subject: {nosuch}.\"",
    );
    let (catalog, problems) = Catalog::from_sources([
        (PathBuf::from("t/general.toml"), general),
        (PathBuf::from("t/probe.toml"), broken.as_str()),
        (PathBuf::from("t/again/general.toml"), general),
    ]);
    assert_eq!(catalog.current().len(), 1);
    assert!(catalog.latest("general").is_some());
    assert!(catalog.latest("probe").is_none());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.path == Path::new("t/probe.toml") && p.key == "body.en"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.path == Path::new("t/again/general.toml")
                && p.message.contains("defined twice")),
        "{problems:#?}"
    );
}

/// `summary` names the field that names a message in lists (default: a
/// field called `subject`, else the first); `reply` names the form a reply
/// starts from. Both are checked, with the line, and what would be valid.
#[test]
fn summary_and_reply_are_checked() {
    let t = parse_template(&probe_path(), PROBE).expect("valid");
    assert_eq!(t.summary, "subject", "a field called subject by default");
    assert_eq!(t.reply, None);
    let text = edited(
        "precedence = \"PRIORITY\"\n",
        "precedence = \"PRIORITY\"\nsummary = \"kind\"\nreply = \"general\"\n",
    );
    let t = parse_template(&probe_path(), &text).expect("valid");
    assert_eq!(
        (t.summary.as_str(), t.reply.as_deref()),
        ("kind", Some("general"))
    );

    let text = edited(
        "precedence = \"PRIORITY\"\n",
        "precedence = \"PRIORITY\"\nsummary = \"nosuch\"\nreply = \"Not An Id\"\n",
    );
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].key, "summary");
    assert_eq!(p[0].line, Some(line_of(&text, "summary")));
    assert!(
        p[0].message.contains("`nosuch` names no field")
            && p[0].message.contains("subject, note, kind"),
        "{}",
        p[0]
    );
    assert_eq!(p[1].key, "reply");
    assert!(p[1].message.contains("not a template id"), "{}", p[1]);

    // A reply form that is not in the catalog is named there.
    let text = edited(
        "precedence = \"PRIORITY\"\n",
        "precedence = \"PRIORITY\"\nreply = \"nosuch\"\n",
    );
    let (catalog, problems) = Catalog::from_sources([(probe_path(), text.as_str())]);
    assert!(catalog.latest("probe").is_some());
    assert!(
        problems
            .iter()
            .any(|p| p.key == "reply" && p.message.contains("`nosuch` names no template")),
        "{problems:#?}"
    );
    // Every built-in reply form exists (the built-in catalog has no problems).
    assert!(
        Catalog::builtin_problems().is_empty(),
        "{:#?}",
        Catalog::builtin_problems()
    );
    assert_eq!(
        Catalog::builtin()
            .latest("request-info")
            .and_then(|t| t.reply.as_deref()),
        Some("response")
    );
}

/// Free text is tagged with the language its writer chose, not the
/// station's: English typed at a Russian station reads as English, in
/// both renderings. Control: without a choice, the station's language.
#[test]
fn free_text_is_tagged_with_the_language_it_was_written_in() {
    let t = template("general");
    let mut draft = full_draft(t);
    draft.text_language = Some(Language::EN);
    let origin = Origin {
        station: StationName::new("MOSCOW").expect("name"),
        operator: OperatorName::new("ivanov").expect("name"),
        second_operator: None,
        language: Language::RU,
    };
    let to = StationName::new("WASHINGTON").expect("name");
    let build = |draft: &Draft| {
        let checked = compose::check(draft, catalog(), now()).expect("valid");
        compose::build(&checked, &origin, &to, 1, now())
    };
    let english = build(&draft);
    assert_eq!(
        english.text_language,
        Some(Language::EN),
        "signed in the message"
    );
    for lang in hotline::lang::shipped_languages() {
        let shown = render(&english, t, lang, Language::RU);
        assert!(shown.contains("English]"), "{lang}:\n{shown}");
        assert!(!shown.contains("русский]"), "{lang}:\n{shown}");
    }
    draft.text_language = None;
    let russian = build(&draft);
    assert_eq!(russian.text_language, Some(Language::RU));
    assert!(render(&russian, t, Language::EN, Language::RU).contains(": русский]"));
}

/// The 1988 launch notification is due 24 hours ahead, judged by when it
/// is given (for the receiver: when it was received, the notification's
/// date by treaty practice). Control: given 25 hours ahead it is on time.
#[test]
fn notice_rule_is_judged_by_the_time_given() {
    let t = template("blm-notification");
    let launch: Timestamp = "2026-12-10T12:00:00Z".parse().expect("time");
    let fields = BTreeMap::from([("planned_launch".to_string(), launch.to_string())]);
    let hours = |h: i64| launch - jiff::SignedDuration::from_hours(h);
    assert_eq!(
        t.short_notice(&fields, hours(25), Language::EN),
        None,
        "on time"
    );
    let why = t
        .short_notice(&fields, hours(23), Language::EN)
        .expect("short");
    assert!(why.contains("23.0 h") && why.contains("1d"), "{why}");
    // A template without the rule never is.
    assert_eq!(
        template("general").short_notice(&fields, hours(1), Language::EN),
        None
    );
}

/// Areas in a template: each form canonicalised, rendered in both
/// languages; a bad one gets an error naming the field and the valid forms.
#[test]
fn area_fields_take_circles_points_and_water() {
    let t = template("blm-notification");
    let field = t.field("launch_area").expect("launch area");
    for (input, en, ru) in [
        (
            "circle 62.93N 40.58E radius 20 nm",
            "a circle of radius 20.0 nautical miles centred on 62.9300N 040.5800E",
            "круг радиусом 20.0 морских миль с центром в точке 62.9300 с. ш. 040.5800 в. д.",
        ),
        (
            "points 57N 161E; 58N 162E; 57N 162E",
            "the area bounded by 57.0000N 161.0000E; 58.0000N 162.0000E; 57.0000N 162.0000E",
            "район, ограниченный точками 57.0000 с. ш. 161.0000 в. д.; 58.0000 с. ш. 162.0000 в. д.; 57.0000 с. ш. 162.0000 в. д.",
        ),
        (
            "water Barents Sea",
            "the ocean area or body of water: Barents Sea",
            "акватория: Barents Sea",
        ),
    ] {
        let canonical = field.canonicalize(input, now()).expect(input);
        field.check_canonical(&canonical).expect("canonical");
        assert_eq!(field.render(&canonical, Language::EN), en);
        assert_eq!(field.render(&canonical, Language::RU), ru);
    }
    let e = field
        .canonicalize("circle 62.93N 40.58E", now())
        .expect_err("no radius")
        .to_string();
    assert!(e.contains("launch_area") && e.contains("radius"), "{e}");
}

/// Every refusal a form can show, worded for each shipped language: in
/// English exactly as its `Display` (the CLI's and the console's English
/// stay as they were), in every other language its own words, every
/// placeholder filled. Control: the other languages' words differ.
#[test]
fn value_errors_are_worded_in_every_shipped_language() {
    let ml = template("missile-launch");
    let blm = template("blm-notification");
    let cases: Vec<(&Field, String)> = vec![
        (field(ml, "count"), "0".into()),
        (field(ml, "count"), "three".into()),
        (field(ml, "missile_type"), "banana".into()),
        (field(ml, "launch_area"), "91N 10E".into()),
        (field(ml, "launch_window"), "90".into()),
        (field(ml, "launch_time"), "tomorrow".into()),
        (field(ml, "remarks"), "bell\u{7}".into()),
        (field(template("general"), "subject"), "x".repeat(201)),
        (field(blm, "launch_area"), "circle 62.93N 40.58E".into()),
        (
            field(blm, "launch_area"),
            "circle 95N 63E radius 5 km".into(),
        ),
        (field(blm, "launch_area"), "circle 45N 63E radius 50".into()),
        (
            field(blm, "launch_area"),
            "circle 45N 63E radius far km".into(),
        ),
        (
            field(blm, "launch_area"),
            "circle 45N 63E radius -5 km".into(),
        ),
        (field(blm, "launch_area"), "points 45N 63E; 46N".into()),
        (field(blm, "launch_area"), "points 45N 63E; 46N 64E".into()),
        (field(blm, "launch_area"), "water ".into()),
        (field(blm, "launch_area"), "square 1 2".into()),
    ];
    let mut errors: Vec<ValueError> = cases
        .iter()
        .map(|(f, input)| f.canonicalize(input, now()).expect_err(input))
        .collect();
    errors.push(
        field(ml, "count")
            .check_canonical("007")
            .expect_err("not canonical"),
    );
    errors.push(ValueError::Missing {
        field: "count".into(),
    });
    errors.push(ValueError::Unknown {
        field: "colour".into(),
        template: "missile-launch".into(),
    });
    for e in &errors {
        assert_eq!(e.message(Language::EN), e.to_string(), "{e:?}");
        if let ValueError::Invalid { problem, .. } = e {
            assert_eq!(problem.message(Language::EN), problem.to_string());
        }
        for lang in hotline::lang::shipped_languages() {
            let worded = e.message(lang);
            assert!(!worded.contains('{'), "{lang}: {worded}");
            if lang != Language::EN {
                assert_ne!(worded, e.to_string(), "{lang}: still English");
            }
        }
    }
    let fr: Language = "fr".parse().expect("fr");
    let e = field(ml, "count")
        .canonicalize("0", now())
        .expect_err("out of range");
    assert_eq!(
        e.problem(fr),
        hotline::lang::format(
            fr,
            "field.out_of_range",
            &[("n", &0), ("min", &1), ("max", &100)]
        )
    );
}

/// A notice rule must name a datetime field of its template and a
/// duration; otherwise the template is refused at the line.
#[test]
fn a_notice_rule_names_a_datetime_field() {
    let text = std::fs::read_to_string("assets/templates/blm-notification.toml").expect("template");
    let bad = text.replace(
        "notice = { field = \"planned_launch\", ahead = \"24h\" }",
        "notice = { field = \"remarks\", ahead = \"soon\" }",
    );
    let problems = parse_template(Path::new("blm-notification.toml"), &bad).expect_err("refused");
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert!(
        keys.contains(&"notice.field") && keys.contains(&"notice.ahead"),
        "{problems:#?}"
    );
    assert!(
        parse_template(Path::new("blm-notification.toml"), &text).is_ok(),
        "control"
    );
}

// ---------------------------------------------------------------------------
// Languages as data: the console catalogues.

/// The console catalogues shipped: English, Russian, French and Chinese,
/// each with every key of the English one and the same placeholders.
#[test]
fn every_shipped_catalogue_has_every_text() {
    let problems = hotline::lang::shipped_problems();
    assert!(problems.is_empty(), "catalogue problems:\n{problems:#?}");
    let shipped: Vec<String> = hotline::lang::shipped_languages()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shipped, ["en", "fr", "ru", "zh"]);
    let en = &hotline::lang::shipped()[0];
    for c in hotline::lang::shipped() {
        assert_eq!(c.keys(), en.keys(), "{}", c.language);
        assert!(!c.name.is_empty());
    }
}

/// Control for the completeness check: a catalogue missing one text, or
/// with a placeholder renamed, is caught and the problem names the key.
#[test]
fn a_catalogue_missing_a_text_is_caught() {
    let en = &hotline::lang::shipped()[0];
    let text = include_str!("../assets/lang/fr.toml");
    let path = Path::new("fr.toml");
    let whole = hotline::lang::Catalogue::parse(path, text).expect("parses");
    assert!(
        whole.completeness(en).is_empty(),
        "control: complete as shipped"
    );

    let missing: String = text
        .lines()
        .filter(|l| !l.starts_with("opening ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let short = hotline::lang::Catalogue::parse(path, &missing).expect("parses");
    let problems = short.completeness(en);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, "reading.opening");
    assert!(problems[0].message.contains("missing"), "{}", problems[0]);

    let renamed = text.replacen("{error}", "{erreur}", 1);
    let problems = hotline::lang::Catalogue::parse(path, &renamed)
        .expect("parses")
        .completeness(en);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("{error}"), "{}", problems[0]);

    let broken = text.replacen("reviewed = false", "reviewed = \"no\"", 1);
    let problems = hotline::lang::Catalogue::parse(path, &broken).expect_err("refused");
    assert!(
        problems[0].to_string().contains("fr.toml:") && problems[0].key == "language.reviewed",
        "{}",
        problems[0]
    );
}

/// The keys the code asks for with `t!(lang, "key"…)` (or
/// `lang::text(lang, "key")`), read from the source.
fn keys_in_source() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut keys = Vec::new();
    for file in files {
        // Code only: a doc comment's example asks for nothing.
        let source: String = std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        for opener in ["t!(", "lang::text("] {
            for (at, _) in source.match_indices(opener) {
                // `t!(`, not the end of `format!(` or `print!(`.
                let before = source[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &source[at + opener.len()..];
                // The language argument, then the key literal.
                let Some(comma) = rest.find(',') else {
                    continue;
                };
                let after = rest[comma + 1..].trim_start();
                let Some(literal) = after.strip_prefix('"') else {
                    continue;
                };
                let key: String = literal.chars().take_while(|c| *c != '"').collect();
                if key.contains('.') {
                    keys.push((file.clone(), key));
                }
            }
        }
    }
    keys
}

/// Every key the code asks for is in the English catalogue, and every text
/// of the catalogue is asked for somewhere (no dead texts).
#[test]
fn every_key_the_code_asks_for_is_in_the_catalogue() {
    let en = &hotline::lang::shipped()[0];
    let used = keys_in_source();
    assert!(used.len() > 200, "the scan found only {} uses", used.len());
    let missing: Vec<_> = used.iter().filter(|(_, k)| en.get(k).is_none()).collect();
    assert!(
        missing.is_empty(),
        "keys not in assets/lang/en.toml: {missing:#?}"
    );
    let asked: std::collections::BTreeSet<&str> = used.iter().map(|(_, k)| k.as_str()).collect();
    let unused: Vec<&str> = en
        .keys()
        .into_iter()
        .filter(|k| !asked.contains(k))
        .collect();
    assert!(unused.is_empty(), "texts no code asks for: {unused:#?}");
}

/// Every template rendered in every shipped language, from one message
/// written in each: the original a sender of that language signs, and what
/// each reader gets. One snapshot per writing language, read before it was
/// accepted. The round trip: each original re-renders from its signed
/// fields to exactly itself, whatever the reader's language.
#[test]
fn every_template_renders_in_every_shipped_language() {
    let to = StationName::new("MOSCOW").expect("name");
    let washington = StationName::new("WASHINGTON").expect("name");
    for writer in hotline::lang::shipped_languages() {
        let mut all = String::new();
        for t in catalog().current() {
            let checked = compose::check(&full_draft(t), catalog(), now()).expect("valid");
            let to = if writer == Language::EN {
                &to
            } else {
                &washington
            };
            let message = compose::build(&checked, &origin(writer), to, 7, now());
            assert_eq!(message.original.language, writer.code(), "{}", t.id);
            assert_eq!(
                hotline::templates::check_original(&message, catalog(), Language::EN),
                hotline::templates::OriginalCheck::Agrees,
                "{} in {writer}",
                t.id
            );
            for reader in hotline::lang::shipped_languages() {
                let shown = hotline::templates::for_reader(&message, catalog(), reader);
                let text = shown.text();
                assert!(
                    text.contains(t.title.get(reader)),
                    "{} {writer}→{reader}",
                    t.id
                );
                assert!(!text.contains('{'), "{} {writer}→{reader}:\n{text}", t.id);
                if reader == writer {
                    all.push_str(&format!("=== {} ({writer})\n{text}\n", t.id));
                }
            }
        }
        let mut settings = insta::Settings::clone_current();
        // The referenced message's id is new in each run.
        settings.add_filter(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[id]",
        );
        settings.bind(|| insta::assert_snapshot!(format!("renderings_{writer}"), all));
    }
}

/// Every text of a template is in each of its `[languages]`: a missing one
/// and an undeclared one are named by file, line and key.
#[test]
fn broken_template_languages() {
    let text = edited("ru = \"Проба\"\n", "");
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "title", "{}", p[0]);
    assert!(p[0].message.contains("has no text in ru"), "{}", p[0]);

    let text = edited(
        "label = { en = \"Note\", ru = \"Примечание\" }",
        "label = { en = \"Note\", ru = \"Примечание\", de = \"Notiz\" }",
    );
    let p = problems(&probe_path(), &text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "fields.note.label", "{}", p[0]);
    assert_eq!(p[0].line, Some(line_of(&text, "Notiz")), "{}", p[0]);
    assert!(
        p[0].message
            .contains("is written in de, which [languages] does not declare"),
        "{}",
        p[0]
    );

    let text = edited(
        "ru = { reviewed = false }\n",
        "ru = { reviewed = false }\nxx-yy-zz-long = { reviewed = false }\n",
    );
    let p = problems(&probe_path(), &text);
    assert!(
        p.iter()
            .any(|p| p.key == "languages" && p.message.contains("not a language tag")),
        "{p:#?}"
    );
}

/// A template without the reader's language is rendered in English, and
/// the reader's view says which language it is in; with the language it
/// is rendered in it (control).
#[test]
fn a_template_without_the_readers_language_falls_back_to_english() {
    let probe = parse_template(&probe_path(), PROBE).expect("valid");
    let french: Language = "fr".parse().expect("tag");
    assert!(!probe.speaks(french) && probe.speaks(Language::RU));
    assert!(
        probe.speaks("ru-RU".parse().expect("tag")),
        "a regional tag uses its language"
    );
    assert_eq!(probe.rendered_in(french), Language::EN);
    assert_eq!(probe.title.get(french), "Probe");
    assert_eq!(probe.title.get(Language::RU), "Проба");
}
