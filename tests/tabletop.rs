//! Tabletop end to end: the test build of the binary runs the 30-second
//! fixture scenario under tmux; the trainee logs in with a call sign,
//! acknowledges and answers the inject, quits, and the written report says
//! both expectations were met. Also: a broken scenario file is reported with
//! file and line.

mod support;

use std::path::Path;
use std::time::Duration;

use support::assert_short_report_met;
use support::tmux::Tmux;

/// The trainee's terminal.
const WINDOW: (u16, u16) = (110, 30);

#[test]
fn trainee_acknowledges_and_answers_and_the_report_scores_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("aar.md");
    let bin = assert_cmd::cargo::cargo_bin("hotline");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/short.toml");
    let cmd = format!(
        "cd {} && {} tabletop --scenario-file {} --report {}; echo TABLETOP-EXITED-$?; sleep 60",
        dir.path().display(),
        bin.display(),
        fixture.display(),
        report.display()
    );
    let tmux = Tmux::new("trainee", &cmd, WINDOW);
    tmux.wait_for("call sign", Duration::from_secs(20));
    tmux.text("alpha-1");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Handover summary", Duration::from_secs(10));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("1 unacknowledged", Duration::from_secs(20));
    assert!(
        screen.contains("EXERCISE"),
        "the EXERCISE banner is shown:\n{screen}"
    );
    assert!(screen.contains("IMMEDIATE"), "{screen}");
    // The objectives, on the trainee's screen from the start (F8).
    assert!(screen.contains("F8 objectives"), "{screen}");
    tmux.keys(&["F8"]);
    let panel = tmux.wait_for("OBJECTIVES", Duration::from_secs(5));
    assert!(panel.contains("Acknowledge within 20 seconds"), "{panel}");
    assert!(
        panel.contains("ping: acknowledge within 20s — PENDING"),
        "{panel}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_until("the panel to close", Duration::from_secs(5), |s| {
        !s.contains("OBJECTIVES")
    });
    tmux.acknowledge_and_reply("alpha-1");
    tmux.wait_for("finished", Duration::from_secs(30));
    // Met on the panel once the trainee acted.
    tmux.keys(&["F8"]);
    let panel = tmux.wait_for(
        "ping: acknowledge within 20s — met in",
        Duration::from_secs(5),
    );
    assert!(
        panel.contains("ping: reply with general within 25s — met in"),
        "{panel}"
    );
    tmux.keys(&["F8"]);
    tmux.keys(&["C-q"]);
    tmux.wait_for("Quit, and stop station", Duration::from_secs(10));
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("TABLETOP-EXITED-0", Duration::from_secs(20));
    assert!(screen.contains("2 of 2 expectations met"), "{screen}");

    let text = std::fs::read_to_string(&report).expect("the report was written");
    assert_short_report_met(&text);
    assert!(text.contains("operator alpha-1"), "{text}");
    assert!(
        text.contains("alpha-1 acknowledge"),
        "operator actions from the audit log:\n{text}"
    );
    assert!(text.contains("alpha-1 release"), "{text}");
    assert!(text.contains("## Timeline"), "{text}");
}

#[test]
fn a_broken_scenario_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = assert_cmd::Command::cargo_bin("hotline")
        .expect("binary")
        .current_dir(dir.path())
        .env_remove("HOTLINE_CONFIG")
        .args(["check", "--scenarios"])
        .arg(&fixtures)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "problems make check fail");
    let text = String::from_utf8_lossy(&out.stdout);
    let broken = fixtures.join("broken.toml").display().to_string();
    for needle in [
        format!("{broken}:11: key `injects.template`: there is no template `weather-report`"),
        format!("{broken}:16: key `injects.at`"),
        format!("{broken}:27: key `injects.expect.kind`"),
        format!("{broken}:33: key `injects.template`"),
    ] {
        assert!(text.contains(&needle), "missing `{needle}` in:\n{text}");
    }
    assert!(
        text.contains("1 scenario(s) valid"),
        "the good fixture still counts:\n{text}"
    );

    // Control: the tabletop refuses the broken file before starting anything.
    let run = assert_cmd::Command::cargo_bin("hotline")
        .expect("binary")
        .current_dir(dir.path())
        .args(["tabletop", "--scenario-file"])
        .arg(fixtures.join("broken.toml"))
        .output()
        .expect("runs");
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("broken.toml:11"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn list_shows_the_built_in_scenarios() {
    let out = assert_cmd::Command::cargo_bin("hotline")
        .expect("binary")
        .args(["tabletop", "--list"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "intro",
        "election-cyber",
        "accidental-launch",
        "nuclear-accident",
    ] {
        assert!(text.contains(id), "{id} missing from:\n{text}");
    }
}

#[test]
fn the_facilitator_pauses_and_resumes_the_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("aar.md");
    let bin = assert_cmd::cargo::cargo_bin("hotline");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/short.toml");
    let cmd = format!(
        "cd {} && {} tabletop --scenario-file {} --report {}; echo TABLETOP-EXITED-$?; sleep 60",
        dir.path().display(),
        bin.display(),
        fixture.display(),
        report.display()
    );
    let tmux = Tmux::new("facilitator", &cmd, WINDOW);
    tmux.wait_for("call sign", Duration::from_secs(20));
    // Paused at once: the inject due at T+00:03 must not arrive.
    tmux.keys(&["F9"]);
    tmux.wait_for("WHITE CELL", Duration::from_secs(5));
    tmux.keys(&["p"]);
    tmux.wait_for("PAUSED", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(6));
    let screen = tmux.screen();
    assert!(
        screen.contains("PENDING"),
        "paused: the inject is still pending\n{screen}"
    );
    assert!(
        screen.contains("UNACK Z:0 O:0 P:0 R:0"),
        "paused: nothing arrived\n{screen}"
    );
    // Control: resumed, it arrives.
    tmux.keys(&["p", "Escape"]);
    tmux.wait_for("UNACK Z:0 O:1", Duration::from_secs(15));
    tmux.keys(&["C-q"]);
    tmux.wait_for("Quit, and stop station", Duration::from_secs(10));
    tmux.keys(&["y"]);
    tmux.wait_for("TABLETOP-EXITED-0", Duration::from_secs(20));
    let text = std::fs::read_to_string(&report).expect("report");
    assert!(text.contains("paused by the facilitator"), "{text}");
    assert!(text.contains("resumed by the facilitator"), "{text}");
}

/// The SGR parameters on a styled screen that set a colour (not the
/// defaults, 39 and 49).
fn colours(styled: &str) -> Vec<String> {
    let mut found = Vec::new();
    for sequence in styled.split("\x1b[").skip(1) {
        let Some(end) = sequence.find(|c: char| c.is_ascii_alphabetic()) else {
            continue;
        };
        if &sequence[end..=end] != "m" {
            continue;
        }
        let params = &sequence[..end];
        let colour = params
            .split(';')
            .any(|p| matches!(p.parse::<u8>(), Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)));
        if colour {
            found.push(params.to_string());
        }
    }
    found
}

/// `NO_COLOR` in the environment leaves only modifiers (bold, reverse) on
/// the screen. CONTROL: the same screen without it has colours.
#[test]
fn no_color_from_the_environment_takes_every_colour_off_the_screen() {
    let bin = assert_cmd::cargo::cargo_bin("hotline");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/short.toml");
    let screen_with = |name: &str, env: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = format!(
            "cd {} && {env} {} tabletop --scenario-file {}; sleep 60",
            dir.path().display(),
            bin.display(),
            fixture.display(),
        );
        let tmux = Tmux::new(name, &cmd, WINDOW);
        tmux.wait_for("call sign", Duration::from_secs(20));
        tmux.text("alpha-1");
        tmux.keys(&["Enter"]);
        tmux.wait_for("Handover summary", Duration::from_secs(10));
        tmux.keys(&["Enter"]);
        tmux.wait_for("1 unacknowledged", Duration::from_secs(20));
        tmux.styled_screen()
    };
    let plain = screen_with("no-color", "NO_COLOR=1");
    let found = colours(&plain);
    assert!(
        found.is_empty(),
        "colours under NO_COLOR: {found:?}\n{plain}"
    );
    assert!(plain.contains("\x1b["), "modifiers remain: {plain}");
    let coloured = screen_with("colour", "env -u NO_COLOR");
    assert!(!colours(&coloured).is_empty(), "{coloured}");
}

/// One scenario clock: the same exercise at speed 1 and at speed 4, the
/// trainee acting after the same scenario time, gives the same scenario
/// times and results in the report. (Before the clock was one, time limits
/// ran on the wall clock: at speed 4 the trainee had four times as long.)
#[test]
fn the_report_tells_scenario_time_at_any_speed() {
    use hotline::domain::{Language, MessageId};
    use hotline::tabletop::{Engine, Input, ReportFacts};
    let report_at = |speed: f64| {
        let (all, _) = hotline::tabletop::scenario::builtin();
        let mut scenario = all.into_iter().find(|s| s.id == "intro").expect("intro");
        scenario.time_compression = speed;
        let mut engine = Engine::new(scenario);
        // Real time for a scenario second.
        let real = |t: u64| Duration::from_secs_f64(t as f64 / speed);
        let mut delivered: Vec<(MessageId, u64)> = Vec::new();
        for t in 0..=400 {
            for send in engine.due(real(t)) {
                let message = MessageId::new();
                delivered.push((message, t + 1));
                engine.record(Input::Delivered {
                    inject: send.inject,
                    message,
                    at: real(t + 1),
                });
            }
            // The trainee acknowledges 40 scenario seconds after delivery.
            for (message, at) in &delivered {
                if t == at + 40 {
                    engine.record(Input::Acknowledged {
                        message: *message,
                        by: "op".into(),
                        at: real(t),
                    });
                }
            }
        }
        let report = engine.report(
            Language::EN,
            real(400),
            &ReportFacts {
                trainee: "op",
                date: "today",
                source: "test",
                actions: &[],
                finished: true,
            },
        );
        report
            .lines()
            .filter(|l| !l.contains("wall clock") && !l.contains("time compression"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (one, four) = (report_at(1.0), report_at(4.0));
    assert_eq!(one, four);
    // Control: the times compared are there, in scenario time.
    for expected in ["T+00:15", "T+01:01", "| MET | 40s |"] {
        assert!(four.contains(expected), "{expected:?}:\n{four}");
    }
}

/// Roles: a scenario declares the sides a trainee may play, with each
/// inject written for each; `--as` picks one, the counterpart is the
/// other. A side the scenario does not declare, or `--as` with `--join`,
/// is refused before anything starts.
#[test]
fn the_trainee_may_play_either_declared_side() {
    let (all, problems) = hotline::tabletop::scenario::builtin();
    assert!(problems.is_empty(), "{problems:?}");
    for s in &all {
        assert_eq!(s.sides, ["WASHINGTON", "MOSCOW"], "{}", s.id);
        let moscow = s.cast("MOSCOW").expect("MOSCOW is a side");
        assert_eq!(
            (moscow.trainee.as_str(), moscow.counterpart.as_str()),
            ("MOSCOW", "WASHINGTON")
        );
        for (theirs, ours) in moscow.injects.iter().zip(&s.injects) {
            assert_eq!(
                theirs.language.map(|l| l.to_string()).as_deref(),
                Some("ru"),
                "{}",
                theirs.id
            );
            assert_ne!(
                theirs.fields, ours.fields,
                "{}: written for MOSCOW",
                theirs.id
            );
            assert_eq!(
                (&theirs.template, &theirs.expect, &theirs.expect_objectives),
                (&ours.template, &ours.expect, &ours.expect_objectives)
            );
        }
        // Control: the default side is the scenario as written.
        assert_eq!(&s.cast("WASHINGTON").expect("default"), s);
    }
    let intro = all.iter().find(|s| s.id == "intro").expect("intro");
    let subject = &intro.cast("MOSCOW").expect("cast").injects[0].fields["subject"];
    assert!(
        subject
            .chars()
            .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
        "{subject}"
    );

    let refused = assert_cmd::Command::cargo_bin("hotline")
        .expect("binary")
        .args(["tabletop", "intro", "--as", "BERLIN"])
        .env("HOTLINE_CONFIG", "/nonexistent/operator.toml")
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot be played as BERLIN; its sides are WASHINGTON, MOSCOW"),
        "{stderr}"
    );
    let both = assert_cmd::Command::cargo_bin("hotline")
        .expect("binary")
        .args([
            "tabletop",
            "--as",
            "MOSCOW",
            "--join",
            "127.0.0.1:1",
            "--pin",
            "AA",
        ])
        .output()
        .expect("runs");
    assert_eq!(both.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("--as"),
        "{both:?}"
    );
}

/// Run in a Russian station's directory, a built-in scenario casts the
/// trainee as that station (MOSCOW) and the console works in Russian: its
/// own words, and the inject written for MOSCOW.
#[test]
fn a_moscow_station_plays_moscow_in_russian() {
    let dir = tempfile::tempdir().expect("tempdir");
    let station = dir.path().join("moscow");
    let bin = assert_cmd::cargo::cargo_bin("hotline");
    let init = std::process::Command::new(&bin)
        .args([
            "init",
            "--station",
            "MOSCOW",
            "--language",
            "ru",
            "--no-passphrase",
            "--dir",
        ])
        .arg(&station)
        .output()
        .expect("init");
    assert!(init.status.success(), "{init:?}");
    let cmd = format!(
        "cd {} && {} tabletop intro --speed 4; sleep 60",
        station.display(),
        bin.display()
    );
    let ru: hotline::domain::Language = "ru".parse().expect("tag");
    // The first words of a catalogue text, before any placeholder.
    let words = |key: &str| -> String {
        let text = hotline::lang::text(ru, key);
        text.split('{')
            .next()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect()
    };
    let tmux = Tmux::new("moscow", &cmd, WINDOW);
    tmux.wait_for(
        &words("overlay.call_sign_exercise"),
        Duration::from_secs(20),
    );
    tmux.text("bravo-2");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&words("overlay.handover_heading"), Duration::from_secs(10));
    tmux.keys(&["Enter"]);
    let (all, _) = hotline::tabletop::scenario::builtin();
    let intro = all.into_iter().find(|s| s.id == "intro").expect("intro");
    // The start of the subject: the list may cut the rest.
    let subject: String = intro.cast("MOSCOW").expect("cast").injects[0].fields["subject"]
        .chars()
        .take(12)
        .collect();
    let screen = tmux.wait_for(&subject, Duration::from_secs(30));
    let queue = hotline::lang::text(ru, "lists.inbound_title");
    assert!(screen.contains(queue), "{queue:?}:\n{screen}");
    assert!(screen.contains("MOSCOW"), "{screen}");
    assert!(screen.contains("WASHINGTON"), "the counterpart:\n{screen}");
}

// ---- MSEL spreadsheets (src/tabletop/msel.rs)

/// A scenario using every part of the model: plain and rated objectives,
/// a second side with its own wording and follow-up, a free text and
/// language, a reply expectation with a field, expectations naming their
/// own objectives (one whose id needs escaping), a time past an hour, two
/// injects at the same time (their order kept), and text that needs
/// quoting and escaping in a CSV.
const RICH_SCENARIO: &str = r#"
id = "rich"
title = "Every feature, \"quoted\", with a comma; and a semicolon"
description = """Two lines:
the second, with a "quote", a comma; and a semicolon."""
time_compression = 2.5
counterpart = "MOSCOW"
trainee = "WASHINGTON"
sides = ["WASHINGTON", "MOSCOW"]
objectives = [
  "A plain objective, numbered by its place",
  { id = "reply", text = "Reply; properly", capability = "Operational Communications", rating = { some = 0.9, major = 0.5 } },
  { id = "odd; [id]", text = "An id to escape" },
]

[[injects]]
id = "late"
at = "1:02:03"
template = "general"
fields = { subject = "Late; after an hour, \"quoted\"", text = "Back\\slash = kept,\nnew line\nand \\n literally" }
text = "Free text,\nwith a line break; and \"quotes\""
language = "en"
objective = "reply"
expect = [
  { kind = "acknowledge", within = "2m", objective = "1" },
  { kind = "reply", template = "response", within = "1h 30s", field = "disposition", value = "accept", objective = "odd; [id]" },
]
follow_up = { after = "90s", template = "general", fields = { subject = "Reminder", text = "Please acknowledge." } }

[injects.for.MOSCOW]
language = "ru"
text = "Свободный текст"
fields = { subject = "Поздно", text = "Текст" }
follow_up = { after = "2m", template = "general", precedence = "FLASH", fields = { subject = "Напоминание", text = "Просим подтвердить." } }

[[injects]]
id = "early"
at = "00:05"
template = "general"
precedence = "FLASH"
fields = { subject = "Early", text = "First." }
objective = "1"

[injects.for.MOSCOW]
fields = { subject = "Рано", text = "Первое." }

[[injects]]
id = "early-too"
at = "00:05"
template = "request-info"
fields = { subject = "Same time", question = "Who is on watch?", response_within = "5m" }
expect = [{ kind = "reply", template = "response", within = "3m", objective = "reply" }]

[injects.for.MOSCOW]
fields = { subject = "То же время", question = "Кто дежурит?", response_within = "5m" }
"#;

/// Every shipped scenario, and one using every part of the model, written
/// as a MSEL and read back: the same scenario, and the same CSV again.
#[test]
fn every_scenario_survives_the_msel_round_trip() {
    use hotline::tabletop::{msel, scenario};
    use hotline::templates::Catalog;
    let (mut all, problems) = scenario::builtin();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(all.len() >= 4);
    let rich = scenario::parse(Path::new("rich.toml"), RICH_SCENARIO, Catalog::builtin())
        .expect("the rich scenario is valid");
    assert_eq!(rich.sides, ["WASHINGTON", "MOSCOW"]);
    assert_eq!(rich.injects[0].id, "early", "sorted by time");
    all.push(rich);
    for s in &all {
        let csv = msel::to_csv(s);
        let back = msel::parse(Path::new("x.csv"), &csv, Catalog::builtin())
            .unwrap_or_else(|p| panic!("{}: {p:#?}\n{csv}", s.id));
        assert_eq!(&back, s, "{}:\n{csv}", s.id);
        assert_eq!(msel::to_csv(&back), csv, "{}: the CSV is stable", s.id);
    }
    let rich = all.last().expect("rich");
    let late = rich.injects.iter().find(|i| i.id == "late").expect("late");
    assert_eq!(
        (late.objective_of(0), late.objective_of(1)),
        (Some("1"), Some("odd; [id]"))
    );
    let early_too = &rich.injects[1];
    assert_eq!(
        (early_too.objective.as_deref(), early_too.objective_of(0)),
        (None, Some("reply"))
    );
    // Readable in a spreadsheet.
    let csv = msel::to_csv(all.last().expect("rich"));
    for needle in [
        "\u{feff}#id,rich\r\n",
        "inject number,scenario time,from,to,precedence,template,fields,text,language,expected action,objective,notes\r\n",
        "late,T+1:02:03,MOSCOW,WASHINGTON,ROUTINE,general,",
        "late,T+1:02:03,WASHINGTON,MOSCOW,ROUTINE,general,",
        "late/follow-up,after 1m 30s,MOSCOW,WASHINGTON,",
        "late/follow-up,after 2m,WASHINGTON,MOSCOW,FLASH,general,",
        "acknowledge within 2m for objective 1; reply response within 1h 30s [disposition=accept] for objective odd\\; \\[id\\]",
        ",,,reply response within 3m for objective reply,,\r\n",
        "#objective,reply,Reply; properly,Operational Communications,0.9,0.5",
        "text = Back\\\\slash = kept,\\nnew line\\nand \\\\n literally",
    ] {
        let needle = needle.replace("Reply; properly", "\"Reply; properly\"");
        assert!(csv.contains(&needle), "missing {needle:?} in:\n{csv}");
    }
}

/// A MSEL as a spreadsheet in a `;` locale saves it: a byte-order mark,
/// `;` between cells, CRLF, a decimal comma, columns in its own order,
/// trailing empty cells, and a blank row.
#[test]
fn a_semicolon_msel_with_a_byte_order_mark_imports() {
    use hotline::domain::Precedence;
    use hotline::tabletop::{Expect, msel};
    use hotline::templates::Catalog;
    let csv = "\u{feff}#id;drill;;\r\n#title;Drill, with a comma;;\r\n#time_compression;1,5;;\r\n\
               ;;;\r\n\
               Inject Number;Template;Scenario Time;Fields;Expected Action;Notes\r\n\
               check;general;T+00:10;\"subject = Check; now\ntext = Please acknowledge.\";acknowledge within 2m;first\r\n";
    let s = msel::parse(Path::new("drill.csv"), csv, Catalog::builtin()).expect("imports");
    assert_eq!(s.id, "drill");
    assert_eq!(s.title, "Drill, with a comma");
    assert_eq!(s.time_compression, 1.5);
    assert_eq!(
        (s.trainee.as_str(), s.counterpart.as_str()),
        ("WASHINGTON", "MOSCOW")
    );
    let i = &s.injects[0];
    assert_eq!(i.at, Duration::from_secs(10));
    assert_eq!(i.fields["subject"], "Check; now");
    assert_eq!(i.fields["text"], "Please acknowledge.");
    assert_eq!(i.precedence, Precedence::Routine, "the template's");
    assert_eq!(
        i.expect,
        [Expect::Acknowledge {
            within: Duration::from_secs(120)
        }]
    );
}

/// The MSEL the broken variants start from. Row 6 starts on line 7: rows
/// are counted as a spreadsheet counts them.
const GOOD_MSEL: &str = "#id,drill\n#title,Drill\n#objective,ack,Acknowledge promptly\n\
inject number,scenario time,template,fields,expected action,objective\n\
check,T+00:10,general,\"subject = Check\ntext = Please acknowledge.\",acknowledge within 2m,ack\n\
question,T+01:00,request-info,\"subject = Watch\nquestion = Who is on watch?\nresponse_within = 5m\",acknowledge within 2m; reply response within 3m,\n";

/// A bad time, an unknown template, a bad expected action and one naming
/// an unknown objective are each
/// named by file, row and column, with what would be valid. CONTROL: the
/// unbroken MSEL imports.
#[test]
fn a_broken_msel_names_row_and_column() {
    use hotline::tabletop::msel;
    use hotline::templates::Catalog;
    let path = Path::new("drill.csv");
    let good = msel::parse(path, GOOD_MSEL, Catalog::builtin()).expect("the control imports");
    assert_eq!(good.injects.len(), 2);
    assert_eq!(good.injects[0].objective.as_deref(), Some("ack"));
    assert_eq!(good.injects[1].objective_of(1), None);
    // An expectation naming its own objective.
    let own = GOOD_MSEL.replace(
        "reply response within 3m",
        "reply response within 3m for objective ack",
    );
    let own = msel::parse(path, &own, Catalog::builtin()).expect("a declared objective");
    assert_eq!(
        (
            own.injects[1].objective_of(0),
            own.injects[1].objective_of(1)
        ),
        (None, Some("ack"))
    );
    for (from, to, row, column, says) in [
        ("T+01:00", "soon", 6, "scenario time", "T+mm:ss"),
        (
            "check,T+00:10,general",
            "check,T+00:10,weather-report",
            5,
            "template",
            "there is no template `weather-report`; the templates are",
        ),
        (
            "reply response within 3m",
            "reply response eventually",
            6,
            "expected action",
            "acknowledge within 2m",
        ),
        (
            "reply response within 3m",
            "reply response within 3m for objective nosuch",
            6,
            "expected action",
            "`nosuch` names no objective; the objectives are ack",
        ),
    ] {
        let broken = GOOD_MSEL.replace(from, to);
        assert_ne!(broken, GOOD_MSEL);
        let problems = msel::parse(path, &broken, Catalog::builtin()).expect_err(to);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let wanted = format!("drill.csv:{row}: key `row {row}, column \"{column}\"`: ");
        assert!(
            text.iter()
                .any(|t| t.starts_with(&wanted) && t.contains(says)),
            "{to}: no `{wanted}…{says}` in {text:#?}"
        );
        assert_eq!(problems.len(), 1, "{text:#?}");
    }
}

/// `--export-msel` writes a file that runs as `--scenario-file` (exported
/// again, byte for byte the same) and that `check --scenarios` reads.
#[test]
fn the_cli_exports_a_msel_that_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("intro.csv");
    let hotline = || {
        let mut c = assert_cmd::Command::cargo_bin("hotline").expect("binary");
        c.current_dir(dir.path()).env_remove("HOTLINE_CONFIG");
        c
    };
    let out = hotline()
        .args(["tabletop", "intro", "--export-msel"])
        .arg(&first)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&first.display().to_string()), "{said}");
    let again = dir.path().join("again.csv");
    let out = hotline()
        .args(["tabletop", "--scenario-file"])
        .arg(&first)
        .arg("--export-msel")
        .arg(&again)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&first).expect("first"),
        std::fs::read(&again).expect("again")
    );
    let out = hotline()
        .args(["check", "--scenarios"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 scenario(s) valid"), "{text}");
    assert!(!text.contains(".csv"), "{text}");
}

// ---------------------------------------------------------------------------
// Evaluation: HSEEP ratings, strengths, areas for improvement, the
// improvement plan, and the HTML report.

mod evaluation {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use hotline::domain::{Language, MessageId};
    use hotline::tabletop::engine::{Evaluation, Note, NoteKind, Rating};
    use hotline::tabletop::scenario::RatingRule;
    use hotline::tabletop::{Engine, Input, ReportFacts, scenario};
    use hotline::templates::Catalog;

    /// One inject per objective, each with four acknowledgements due
    /// within 10, 20, 30 and 40 seconds: when the trainee acknowledges
    /// decides how many are met in time. `control` is never delivered.
    fn text() -> String {
        let mut s = String::from(
            "id = \"eval\"\ntitle = \"Evaluation <drill>\"\n\
             [[objectives]]\nid = \"p\"\ntext = \"All in time\"\ncapability = \"Operational Communications\"\n\
             [[objectives]]\nid = \"s\"\ntext = \"Three of four\"\n\
             [[objectives]]\nid = \"m\"\ntext = \"One of four\"\n\
             [[objectives]]\nid = \"u\"\ntext = \"None\"\n\
             [[objectives]]\nid = \"strict\"\ntext = \"Three of four, strictly\"\nrating = { some = 0.8, major = 0.5 }\n\
             [[objectives]]\nid = \"control\"\ntext = \"Never delivered\"\n",
        );
        for (i, id) in ["p", "s", "m", "u", "strict", "control"].iter().enumerate() {
            s.push_str(&format!(
                "[[injects]]\nid = \"{id}-inject\"\nat = \"00:{:02}\"\ntemplate = \"general\"\n\
                 fields = {{ subject = \"s\", text = \"t\" }}\nobjective = \"{id}\"\n\
                 expect = [ {{ kind = \"acknowledge\", within = \"10s\" }}, {{ kind = \"acknowledge\", within = \"20s\" }}, \
                 {{ kind = \"acknowledge\", within = \"30s\" }}, {{ kind = \"acknowledge\", within = \"40s\" }} ]\n",
                i + 1
            ));
        }
        s
    }

    fn id(n: u128) -> MessageId {
        MessageId(uuid::Uuid::from_u128(n))
    }

    /// The exercise run to its end: each objective's inject delivered at
    /// T+1:00 and acknowledged after the given seconds (None: never).
    fn run() -> Engine {
        let scenario =
            scenario::parse(Path::new("eval.toml"), &text(), Catalog::builtin()).expect("valid");
        let mut engine = Engine::new(scenario);
        let _ = engine.due(Duration::from_secs(60));
        let acks = [
            ("p", Some(5)),
            ("s", Some(15)),
            ("m", Some(35)),
            ("u", None),
            ("strict", Some(15)),
        ];
        for (n, (objective, ack)) in acks.into_iter().enumerate() {
            let message = id(n as u128 + 1);
            engine.record(Input::Delivered {
                inject: format!("{objective}-inject"),
                message,
                at: Duration::from_secs(60),
            });
            if let Some(after) = ack {
                engine.record(Input::Acknowledged {
                    message,
                    by: "op".into(),
                    at: Duration::from_secs(60 + after),
                });
            }
        }
        engine
    }

    fn report(engine: &Engine) -> String {
        engine.report(
            Language::EN,
            Duration::from_secs(200),
            &ReportFacts {
                trainee: "op",
                date: "2026-11-26",
                source: "test",
                actions: &[],
                finished: true,
            },
        )
    }

    #[test]
    fn each_objective_gets_the_rating_its_rule_proposes() {
        let engine = run();
        let results = engine.objective_results(Duration::from_secs(200), true);
        let proposed: BTreeMap<&str, Option<Rating>> = results
            .iter()
            .map(|r| (r.objective.id.as_str(), r.proposed))
            .collect();
        assert_eq!(proposed["p"], Some(Rating::P), "4 of 4");
        assert_eq!(proposed["s"], Some(Rating::S), "3 of 4: exactly `some`");
        assert_eq!(proposed["m"], Some(Rating::M), "1 of 4: exactly `major`");
        assert_eq!(proposed["u"], Some(Rating::U), "0 of 4");
        assert_eq!(
            proposed["strict"],
            Some(Rating::M),
            "3 of 4 is below its own `some` of 0.8, above its `major` of 0.5"
        );
        assert_eq!(proposed["control"], None, "nothing scored: not rated");
        let s = results.iter().find(|r| r.objective.id == "s").expect("s");
        assert_eq!((s.met, s.scored, s.scores.len()), (3, 4, 4));
        assert!(results.iter().all(|r| r.rating.is_none()), "none given yet");

        // While the exercise runs, pending expectations are not scored.
        let live = engine.objective_results(Duration::from_secs(62), false);
        let u = live.iter().find(|r| r.objective.id == "u").expect("u");
        assert_eq!((u.scored, u.proposed), (0, None), "{u:?}");
    }

    #[test]
    fn proposals_at_the_boundaries() {
        let rule = RatingRule::default();
        assert_eq!(Rating::propose(rule, 0, 0), None);
        assert_eq!(Rating::propose(rule, 1, 1), Some(Rating::P));
        assert_eq!(Rating::propose(rule, 99, 100), Some(Rating::S));
        assert_eq!(Rating::propose(rule, 74, 100), Some(Rating::M));
        assert_eq!(Rating::propose(rule, 25, 100), Some(Rating::M));
        assert_eq!(Rating::propose(rule, 24, 100), Some(Rating::U));
        assert_eq!(Rating::propose(rule, 0, 3), Some(Rating::U));
        let lenient = RatingRule {
            some: 0.0,
            major: 0.0,
        };
        assert_eq!(Rating::propose(lenient, 0, 3), Some(Rating::S));
        let mut cycle = vec![None];
        for _ in 0..5 {
            cycle.push(Rating::cycle(*cycle.last().expect("one")));
        }
        assert_eq!(
            cycle,
            [
                None,
                Some(Rating::P),
                Some(Rating::S),
                Some(Rating::M),
                Some(Rating::U),
                None
            ]
        );
    }

    #[test]
    fn the_report_has_ratings_strengths_improvements_and_a_plan() {
        let mut engine = run();
        engine.evaluation = Evaluation {
            ratings: [("m".to_string(), Rating::S)].into(),
            notes: vec![
                Note {
                    at: Duration::from_secs(95),
                    kind: NoteKind::Strength,
                    text: "Clear read-back of the FLASH".into(),
                },
                Note {
                    at: Duration::from_secs(130),
                    kind: NoteKind::Improvement,
                    text: "Supervisor | not told <in time>".into(),
                },
            ],
        };
        let md = report(&engine);
        for line in [
            "## Evaluation by objective",
            "### Objective `p`: All in time",
            "- capability: Operational Communications",
            "- expectations met in time: 4 of 4 scored",
            "- proposed rating: Performed without Challenges (P)",
            "### Objective `m`: One of four",
            "- proposed rating: Performed with Major Challenges (M)",
            "- **evaluator's rating (given by the facilitator): Performed with Some Challenges (S)**",
            "- proposed rating: Unable to be Performed (U)",
            "### Objective `control`: Never delivered",
            "- expectations met in time: 0 of 0 scored",
            "- proposed rating: not rated",
            "## Strengths",
            "- `p-inject`: acknowledge, within 10s: met in 5s",
            "- T+01:35 facilitator's note: Clear read-back of the FLASH",
            "## Areas for improvement",
            "- `m-inject`: acknowledge, within 10s: done late, in 35s",
            "- `u-inject`: acknowledge, within 40s: not done",
            "- T+02:10 facilitator's note: Supervisor \\| not told \\<in time\\>",
            "## Improvement plan",
            "| issue | corrective action | owner | due date |",
            "| `u-inject`: acknowledge, within 40s: not done |  |  |  |",
            "| T+02:10 facilitator's note: Supervisor \\| not told \\<in time\\> |  |  |  |",
        ] {
            assert!(md.contains(line), "{line}\n\n{md}");
        }
        assert_eq!(
            md.matches("evaluator's rating").count(),
            1,
            "only the rated objective: {md}"
        );
        // The existing content is kept, and the plan ends the report.
        assert!(
            md.contains("| `p-inject` | acknowledge | within 10s | MET | 5s |"),
            "{md}"
        );
        assert!(md.contains("## Timeline") && md.contains("## Operator actions (test)"));
        let plan = md.find("## Improvement plan").expect("plan");
        assert!(
            plan > md.find("## Operator actions").expect("actions"),
            "{md}"
        );
        assert!(md.trim_end().ends_with("|  |  |  |"), "{md}");
        // Improvement rows: each late or missed expectation, and the note.
        let rows = md[plan..]
            .lines()
            .filter(|l| l.ends_with("|  |  |  |"))
            .count();
        let areas = md
            .lines()
            .skip_while(|l| *l != "## Areas for improvement")
            .take_while(|l| !l.starts_with("## Timeline"))
            .filter(|l| l.starts_with("- "))
            .count();
        assert_eq!(rows, areas, "{md}");
    }

    #[test]
    fn nothing_to_improve_leaves_an_empty_plan() {
        let scenario =
            scenario::parse(Path::new("eval.toml"), &text(), Catalog::builtin()).expect("valid");
        let engine = Engine::new(scenario);
        let md = report(&engine);
        let plan = &md[md.find("## Improvement plan").expect("plan")..];
        assert!(plan.contains("- none"), "{md}");
        assert!(!plan.contains("| issue |"), "{md}");
        assert!(md.contains("- proposed rating: not rated"), "{md}");
    }

    #[test]
    fn the_html_report_says_the_same_and_escapes_hostile_text() {
        let mut engine = run();
        engine.evaluation.ratings.insert("p".into(), Rating::P);
        engine.evaluation.notes.push(Note {
            at: Duration::from_secs(70),
            kind: NoteKind::Improvement,
            text: "<script>alert('x')</script> & <img src=x onerror=alert(1)>".into(),
        });
        let md = report(&engine);
        let html = hotline::tabletop::html::report(&md, Language::EN);
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(
            html.contains("<title>After-action report: Evaluation &lt;drill&gt;</title>"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains(
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;"
            ),
            "{html}"
        );
        for external in ["href=", "src=\"", "url(", "@import"] {
            assert!(!html.contains(external), "{external}: {html}");
        }
        for text in [
            "<h2>Evaluation by objective</h2>",
            "<h3>Objective <code>p</code>: All in time</h3>",
            "<li>capability: Operational Communications</li>",
            "<li><strong>evaluator&#39;s rating (given by the facilitator): Performed without Challenges (P)</strong></li>",
            "<li>proposed rating: Performed with Major Challenges (M)</li>",
            "<h2>Strengths</h2>",
            "<h2>Areas for improvement</h2>",
            "<h2>Improvement plan</h2>",
            "<tr><th>issue</th><th>corrective action</th><th>owner</th><th>due date</th></tr>",
            "<tr><td><code>u-inject</code>: acknowledge, within 40s: not done</td><td></td><td></td><td></td></tr>",
            "<td>MET</td>",
        ] {
            assert!(html.contains(text), "{text}\n\n{html}");
        }
        // As many list items and table rows as the Markdown has.
        let items = md.lines().filter(|l| l.starts_with("- ")).count();
        assert_eq!(html.matches("<li>").count(), items, "{html}");
        let rows = md
            .lines()
            .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
            .count();
        assert_eq!(html.matches("<tr>").count(), rows, "{html}");
    }

    /// The shipped scenarios put each expectation under the objective it
    /// serves: every `reply` objective holds replies (and no longer none),
    /// every `acknowledge` objective acknowledgements.
    #[test]
    fn shipped_replies_serve_their_reply_objective() {
        use hotline::tabletop::Expect;
        let (all, problems) = scenario::builtin();
        assert!(problems.is_empty(), "{problems:?}");
        for s in all {
            let id = s.id.clone();
            let panel = Engine::new(s).progress(Duration::ZERO);
            for (objective, reply) in [("reply", true), ("acknowledge", false)] {
                let o = panel
                    .iter()
                    .find(|o| o.id.as_deref() == Some(objective))
                    .unwrap_or_else(|| panic!("{id}: no `{objective}` objective"));
                assert!(!o.expectations.is_empty(), "{id}: `{objective}` is empty");
                for e in &o.expectations {
                    assert_eq!(
                        matches!(e.expectation, Expect::Reply { .. }),
                        reply,
                        "{id}: {e:?} under `{objective}`"
                    );
                }
            }
        }
    }

    /// An expectation's `objective` overrides its inject's, and must name
    /// a declared objective: else a problem with file, line and key.
    /// CONTROL: the same scenario naming a declared objective is valid.
    #[test]
    fn an_expectation_names_a_declared_objective() {
        let text = |objective: &str| {
            format!(
                "id = \"own\"\ntitle = \"Own objectives\"\n\
                 [[objectives]]\nid = \"ack\"\ntext = \"Acknowledge\"\n\
                 [[objectives]]\nid = \"reply\"\ntext = \"Reply\"\n\
                 [[injects]]\nid = \"q\"\nat = \"00:10\"\ntemplate = \"general\"\n\
                 fields = {{ subject = \"s\", text = \"t\" }}\nobjective = \"ack\"\n\
                 expect = [\n  {{ kind = \"acknowledge\", within = \"30s\" }},\n  \
                 {{ kind = \"reply\", template = \"response\", within = \"1m\", objective = \"{objective}\" }},\n]\n"
            )
        };
        let path = Path::new("own.toml");
        let good = scenario::parse(path, &text("reply"), Catalog::builtin()).expect("valid");
        let q = &good.injects[0];
        assert_eq!(q.expect_objectives, [None, Some("reply".to_string())]);
        assert_eq!(
            (q.objective_of(0), q.objective_of(1)),
            (Some("ack"), Some("reply"))
        );
        let problems =
            scenario::parse(path, &text("nosuch"), Catalog::builtin()).expect_err("unknown");
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "own.toml:17: key `injects.expect.objective`: `nosuch` names no objective; the objectives are ack, reply"
            ],
            "{problems:#?}"
        );
    }
}
