//! Networked tabletop end to end: the test build of the binary runs a white
//! cell (`tabletop --control`) in one tmux window and a trainee
//! (`tabletop --join`) in another, over UDP on 127.0.0.1. The facilitator
//! reads the join line from the F9 panel, admits the trainee by the
//! fingerprint the trainee's screen shows, starts the clock; the trainee
//! acknowledges and answers the inject, and the white cell's after-action
//! report scores it. Also: a trainee given a wrong --pin gives up with an
//! error and never waits in the facilitator's panel.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::assert_short_report_met;
use support::tmux::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
/// Wide enough that the printed join line fits on one row.
const WINDOW: (u16, u16) = (200, 50);

/// A process this test started, killed (by its own handle) if the test
/// ends before it does.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/short.toml")
}

/// Just the hex digits of a fingerprint, however it is grouped.
fn digits(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// 16 groups of 4 hex digits, separated by `sep`.
fn is_fingerprint(text: &str, sep: char) -> bool {
    let groups: Vec<&str> = text.split(sep).collect();
    groups.len() == 16
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The text inside the panel's borders on a screen line.
fn inside_panel(line: &str) -> &str {
    let start = line.find('│').map_or(0, |i| i + '│'.len_utf8());
    let end = line
        .rfind('│')
        .filter(|&e| e >= start)
        .unwrap_or(line.len());
    line[start..end].trim()
}

/// The fingerprint groups (4 hex digits) on the panel lines from `from`
/// on, however the panel wraps them, joined with colons; stops after 16
/// groups or at a line without any.
fn groups_from(lines: &[&str], from: usize) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for line in lines.iter().skip(from) {
        let found: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ':' || c == '│')
            .filter(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
            .collect();
        if found.is_empty() {
            break;
        }
        groups.extend(found);
        if groups.len() >= 16 {
            break;
        }
    }
    groups.join(":")
}

/// The join address and pin the white cell panel (F9) shows.
fn join_line(panel: &str) -> (String, String) {
    let marker = "hotline tabletop --join ";
    let lines: Vec<&str> = panel.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no --join line in the panel:\n{panel}"));
    let line = lines[at];
    let addr = line[line.find(marker).unwrap_or(0) + marker.len()..]
        .split_whitespace()
        .next()
        .unwrap_or("");
    // The pin: after `--pin ` on the join line itself, or (when that says
    // FINGERPRINT) on the lines under it.
    let inline = line.split_once("--pin ").map_or("", |(_, p)| p);
    let pin = match groups_from(&[inline], 0) {
        pin if !pin.is_empty() => pin,
        _ => groups_from(&lines, at + 1),
    };
    assert!(
        addr.starts_with("127.0.0.1:") && addr.rsplit(':').next() != Some("0"),
        "the panel advertises the bound loopback address, not `{addr}`:\n{panel}"
    );
    assert!(
        is_fingerprint(&pin, ':'),
        "the panel shows 16 groups of 4 hex digits, not `{pin}`:\n{panel}"
    );
    (addr.to_string(), pin)
}

/// The fingerprint a trainee prints under "Read this fingerprint…", in
/// the groups the panel shows them, joined with colons.
fn printed_fingerprint(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("Read this fingerprint to the facilitator:"))?;
    let fp = groups_from(&lines, at + 1);
    is_fingerprint(&fp, ':').then_some(fp)
}

/// The stations waiting in the panel: (name, fingerprint as shown).
fn waiting(panel: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = panel.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // `▶ NAME  from ADDR, asked HH:MM:SSZ`; unselected rows have a
        // space instead of the mark.
        let row = inside_panel(line);
        if !(row.contains(" from ") && row.contains(", asked ")) {
            continue;
        }
        let name = row
            .trim_start_matches('▶')
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        out.push((name, groups_from(&lines, i + 1)));
    }
    out
}

/// Starts a white cell on the short fixture in its own tmux window, logs
/// in as `white`, opens the F9 panel; returns it and the join address and
/// pin the panel shows.
fn white_cell(name: &str, dir: &Path) -> (Tmux, String, String) {
    let cmd = format!(
        "cd {dir} && {BIN} tabletop --control --scenario-file {fixture} --listen 127.0.0.1:0 \
         --report {dir}/report.md; echo TABLETOP-EXITED-$?; sleep 60",
        dir = dir.display(),
        fixture = fixture().display(),
    );
    let a = Tmux::new(name, &cmd, WINDOW);
    a.wait_for("call sign", Duration::from_secs(20));
    a.text("white");
    a.keys(&["Enter"]);
    a.wait_for("Handover summary", Duration::from_secs(10));
    a.keys(&["Enter"]);
    // On duty, a white cell with no trainee yet opens on its panel.
    let panel = a.wait_until(
        "the panel with its join line",
        Duration::from_secs(10),
        |s| s.contains("WHITE CELL") && s.contains("--pin "),
    );
    assert!(
        panel.contains("PAUSED"),
        "a networked white cell holds the clock until the facilitator starts it:\n{panel}"
    );
    assert!(panel.contains("No trainee admitted yet."), "{panel}");
    let (addr, pin) = join_line(&panel);
    (a, addr, pin)
}

#[test]
fn networked_trainee_is_admitted_by_fingerprint_and_scored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.md");
    let (a, addr, pin) = white_cell("admit-cell", dir.path());

    let b = Tmux::new(
        "admit-trainee",
        &format!(
            "cd {} && {BIN} tabletop --join {addr} --pin {pin} --station ALPHA; \
             echo JOIN-EXITED-$?; sleep 60",
            dir.path().display()
        ),
        WINDOW,
    );
    let joining = b.wait_for("Waiting for the facilitator", Duration::from_secs(15));
    let trainee_fp = printed_fingerprint(&joining)
        .unwrap_or_else(|| panic!("the trainee prints its fingerprint:\n{joining}"));
    assert_ne!(
        digits(&trainee_fp),
        digits(&pin),
        "the trainee has keys of its own"
    );

    // The facilitator sees ALPHA waiting, with the fingerprint the trainee
    // reads out.
    let panel = a.wait_for("Waiting to join", Duration::from_secs(10));
    let rows = waiting(&panel);
    assert_eq!(rows.len(), 1, "one station waits: {rows:?}\n{panel}");
    assert_eq!(rows[0].0, "ALPHA", "{panel}");
    assert_eq!(
        digits(&rows[0].1),
        digits(&trainee_fp),
        "the panel shows the fingerprint the trainee's screen shows:\n{panel}"
    );
    assert!(panel.contains("▶ ALPHA"), "ALPHA is selected:\n{panel}");

    // Control: not admitted yet, the trainee keeps waiting (it asks again
    // every second) and gets no console.
    std::thread::sleep(Duration::from_secs(3));
    let still = b.screen();
    assert!(still.contains("Waiting for the facilitator"), "{still}");
    assert!(
        !still.contains("call sign") && !still.contains("Admitted by"),
        "no console before the facilitator admits:\n{still}"
    );
    let panel = a.screen();
    assert!(panel.contains("No trainee admitted yet."), "{panel}");
    assert_eq!(waiting(&panel).len(), 1, "{panel}");

    a.keys(&["a"]);
    let admitted = Instant::now();
    b.wait_for("call sign", Duration::from_secs(15));
    // Admitted at once; its link comes up as its dialer gets through
    // (with the briefing queued behind it), within the same wait.
    let panel = a.wait_until(
        "ALPHA admitted with its link up",
        Duration::from_secs(10),
        |s| s.contains("delivered 0/1") && s.contains("ALPHA            up"),
    );
    assert!(
        panel.contains("ALPHA            up"),
        "ALPHA is admitted and its link is up:\n{panel}"
    );
    assert!(
        !panel.contains("Waiting to join"),
        "ALPHA no longer waits:\n{panel}"
    );
    b.text("bravo");
    b.keys(&["Enter"]);
    b.wait_for("Handover summary", Duration::from_secs(10));
    b.keys(&["Enter"]);
    b.wait_for("INBOUND", Duration::from_secs(10));

    // Control: held, the inject due at T+00:03 does not arrive.
    let held = Duration::from_millis(4500);
    if let Some(rest) = held.checked_sub(admitted.elapsed()) {
        std::thread::sleep(rest);
    }
    // Only the white cell's briefing (ROUTINE) has come, with the
    // objectives; the inject (IMMEDIATE) has not.
    let screen = b.screen();
    assert!(
        !screen.contains("IMMEDIATE"),
        "held: no inject arrives before the facilitator starts the clock\n{screen}"
    );
    b.keys(&["F8"]);
    let objectives = b.wait_for(
        "ping: acknowledge within 20s — expected from T+00:03",
        Duration::from_secs(10),
    );
    assert!(
        objectives.contains("Acknowledge within 20 seconds"),
        "{objectives}"
    );
    b.keys(&["F8"]);
    let panel = a.screen();
    assert!(
        panel.contains("PAUSED") && panel.contains("PENDING"),
        "{panel}"
    );

    a.keys(&["p"]);
    a.wait_for("running", Duration::from_secs(5));
    // The inject, and the briefing (unacknowledged too).
    let screen = b.wait_for("2 unacknowledged", Duration::from_secs(20));
    assert!(screen.contains("EXERCISE"), "{screen}");
    assert!(screen.contains("IMMEDIATE"), "{screen}");
    assert!(screen.contains("MOSCOW"), "{screen}");

    // On demand, before the trainee acts: an interim report, shown and
    // written, with the expectations still pending.
    a.keys(&["w"]);
    let interim = a.wait_for("AFTER-ACTION REPORT", Duration::from_secs(10));
    assert!(interim.contains("Interim"), "{interim}");
    assert!(interim.contains("| PENDING |"), "{interim}");
    assert!(!interim.contains("MISSED"), "{interim}");
    assert!(
        interim.contains("after-action report written to"),
        "{interim}"
    );
    let on_disk = std::fs::read_to_string(&report).expect("the interim report was written");
    assert!(on_disk.contains("Interim"), "{on_disk}");
    a.keys(&["Escape"]);
    a.wait_until("the report closing", Duration::from_secs(5), |s| {
        !s.contains("AFTER-ACTION REPORT") && s.contains("WHITE CELL")
    });

    // The inject heads the queue; the selection stayed on the briefing.
    b.keys(&["Home"]);
    b.acknowledge_and_reply("bravo");

    // Finished: the final report opens by itself.
    let last = a.wait_for("EXERCISE short finished", Duration::from_secs(20));
    assert!(last.contains("AFTER-ACTION REPORT"), "{last}");
    assert!(!last.contains("Interim"), "{last}");
    assert!(last.contains("2 of 2 expectations met."), "{last}");
    a.keys(&["Escape"]);
    let panel = a.wait_for("met 2 late 0 missed 0", Duration::from_secs(5));
    assert!(panel.contains("delivered 1/1"), "{panel}");

    a.keys(&["C-q"]);
    a.wait_for("Quit, and stop station", Duration::from_secs(10));
    a.keys(&["y"]);
    let end = a.wait_for("TABLETOP-EXITED-0", Duration::from_secs(20));
    assert!(
        end.contains("Exercise over: 2 of 2 expectations met"),
        "{end}"
    );
    // The join line printed before the console matches the panel's.
    assert!(
        end.contains(&format!("hotline tabletop --join {addr} --pin {pin}")),
        "{end}"
    );

    let text = std::fs::read_to_string(&report).expect("the report was written");
    assert_short_report_met(&text);
    assert!(
        text.contains("- trainee station: ALPHA (operator bravo)"),
        "{text}"
    );
    assert!(text.contains("2 of 2 expectations met."), "{text}");
    // The run counts from the start of the clock (STARTEX), not from the
    // admission 4.5 s earlier: the inject due at T+00:03 shows as sent then.
    assert!(
        text.contains("- T+00:03 inject `ping` sent")
            || text.contains("- T+00:04 inject `ping` sent"),
        "{text}"
    );
    let actions = text
        .split("## Operator actions (as they reached the white cell)")
        .nth(1)
        .unwrap_or_else(|| panic!("no operator actions section:\n{text}"));
    assert!(
        actions.contains("bravo acknowledged IMMEDIATE general"),
        "{text}"
    );
    // The reply keeps the IMMEDIATE's precedence.
    assert!(actions.contains("bravo sent IMMEDIATE general"), "{text}");

    b.keys(&["C-q"]);
    b.wait_for("Quit, and stop station", Duration::from_secs(10));
    b.keys(&["y"]);
    let end = b.wait_for("JOIN-EXITED-0", Duration::from_secs(20));
    assert!(end.contains("Admitted by MOSCOW"), "{end}");
    assert!(
        end.contains("The facilitator's white cell writes the scored after-action report"),
        "{end}"
    );
    // The trainee's own record, from its own audit log.
    let name = end
        .split("Your station's record: ")
        .nth(1)
        .and_then(|rest| rest.split(". The facilitator").next())
        .unwrap_or_else(|| panic!("no record named:\n{end}"));
    assert!(name.starts_with("trainee-ALPHA-"), "{name}");
    let record = std::fs::read_to_string(dir.path().join(name)).expect("the trainee's record");
    assert!(record.contains("# Trainee record: ALPHA"), "{record}");
    assert!(record.contains("EXERCISE"), "{record}");
    assert!(
        record.contains("received IMMEDIATE general") && record.contains("acknowledged by bravo"),
        "{record}"
    );
    assert!(record.contains("sent IMMEDIATE general"), "{record}");
    let actions = record
        .split("## Operator actions (from this station's audit log)")
        .nth(1)
        .unwrap_or_else(|| panic!("no actions:\n{record}"));
    assert!(actions.contains("bravo login"), "{record}");
    assert!(actions.contains("bravo acknowledge"), "{record}");
}

/// Waits for `child` to exit, at most `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the trainee did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A trainee with a wrong pin exits with an error naming the mismatch,
/// never waits for admission, and the white cell lists no waiting station.
/// (Its signed request does reach the white cell, which refuses it: the
/// pin covers the white cell's age key too, which only its signed answer
/// carries.)
#[test]
fn wrong_pin_is_refused_before_the_facilitator_sees_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, addr, pin) = white_cell("wrong-pin-cell", dir.path());

    // One group changed: every hex digit of the 8th group inverted.
    let mut groups: Vec<String> = pin.split(':').map(str::to_string).collect();
    groups[7] = groups[7]
        .chars()
        .map(|c| {
            let v = c.to_digit(16).expect("hex");
            char::from_digit(15 - v, 16)
                .expect("hex")
                .to_ascii_uppercase()
        })
        .collect();
    let wrong = groups.join(":");
    assert_ne!(wrong, pin);
    assert_eq!(
        wrong
            .split(':')
            .zip(pin.split(':'))
            .filter(|(x, y)| x != y)
            .count(),
        1
    );

    let (out_file, err_file) = (dir.path().join("wrong.out"), dir.path().join("wrong.err"));
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["tabletop", "--join", &addr, "--pin", &wrong])
        .args(["--station", "ALPHA"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("stdout file"))
        .stderr(std::fs::File::create(&err_file).expect("stderr file"))
        .spawn()
        .expect("the trainee starts");
    let mut trainee = Started(child);
    let status = exit_within(&mut trainee.0, Duration::from_secs(20));
    let stdout = std::fs::read_to_string(&out_file).expect("stdout");
    let stderr = std::fs::read_to_string(&err_file).expect("stderr");
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("is not the white cell you were given"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&wrong),
        "the error names the pin it was given:\n{stderr}"
    );
    assert!(
        !stdout.contains("Waiting for the facilitator") && !stdout.contains("Admitted"),
        "a wrong pin never waits for admission:\n{stdout}"
    );
    let refused_fp = printed_fingerprint(&stdout)
        .unwrap_or_else(|| panic!("the trainee printed its fingerprint:\n{stdout}"));

    // The panel refreshes every 250 ms; give it several refreshes.
    std::thread::sleep(Duration::from_millis(1500));
    let panel = a.screen();
    assert!(panel.contains("WHITE CELL"), "{panel}");
    assert!(
        !panel.contains("Waiting to join") && waiting(&panel).is_empty(),
        "no station waits after a wrong pin:\n{panel}"
    );
    assert!(
        !digits(&panel).contains(&digits(&refused_fp)),
        "the refused trainee's fingerprint is nowhere in the panel:\n{panel}"
    );
    assert!(panel.contains("No trainee admitted yet."), "{panel}");

    // Control: with the right pin, a trainee of the same name does wait in
    // the panel, so the check above could fail.
    let log = dir.path().join("control-trainee.out");
    let log_err = dir.path().join("control-trainee.err");
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["tabletop", "--join", &addr, "--pin", &pin])
        .args(["--station", "ALPHA"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(std::fs::File::create(&log_err).expect("log file"))
        .spawn()
        .expect("the control trainee starts");
    let mut control = Started(child);
    let panel = a.wait_for("Waiting to join", Duration::from_secs(10));
    let rows = waiting(&panel);
    let printed = std::fs::read_to_string(&log).expect("control output");
    let control_fp = printed_fingerprint(&printed)
        .unwrap_or_else(|| panic!("the control trainee printed its fingerprint:\n{printed}"));
    assert_eq!(rows.len(), 1, "{panel}");
    assert_eq!(rows[0].0, "ALPHA", "{panel}");
    assert_eq!(digits(&rows[0].1), digits(&control_fp), "{panel}");
    assert!(
        printed.contains("The white cell matches your --pin"),
        "{printed}"
    );
    // Refused by the facilitator, it gives up.
    a.keys(&["x"]);
    let status = exit_within(&mut control.0, Duration::from_secs(10));
    let err = std::fs::read_to_string(&log_err).expect("control errors");
    assert!(!status.success(), "a refused trainee exits with an error");
    assert!(
        err.contains("the facilitator refused this station"),
        "{err}"
    );
    let panel = a.wait_until(
        "the refused station leaving the panel",
        Duration::from_secs(5),
        |s| !s.contains("Waiting to join"),
    );
    assert!(panel.contains("No trainee admitted yet."), "{panel}");
}
