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
    tmux.acknowledge_and_reply("alpha-1");
    tmux.wait_for("finished", Duration::from_secs(30));
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
