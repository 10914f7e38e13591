//! The station's one door, through every front: `Station::handle` as the
//! in-process console calls it, and the control socket with its typed
//! client as the attached console and the CLI use it. Real stations on
//! 127.0.0.1, real keys, real journals.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use hotline::console::Msg;
use hotline::domain::{OperatorName, Precedence};
use hotline::station::Station;
use hotline::station::api::{
    API_VERSION, ApiError, Command, Door, Passphrase, Release, Reply, Session,
};
use hotline::station::client::{Client, Watch};
use hotline::station::control::{self, Answer, Streamed};
use hotline::store::{Direction, MessageState};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use support::{FAST_LINK, PASSPHRASE, door, general, pair};

/// Turns on the two-person rule for FLASH in a site's config.
fn two_person(site: &support::Site) {
    let mut text = std::fs::read_to_string(&site.config_path).expect("config");
    text.push_str("\n[console]\ntwo_person_flash = true\n");
    hotline::fsutil::replace_atomic(&site.config_path, text.as_bytes(), 0o600).expect("config");
}

fn flash(subject: &str) -> hotline::compose::Draft {
    let mut d = general(subject);
    d.precedence = Some(Precedence::Flash);
    d
}

async fn serve(station: &Station) -> std::path::PathBuf {
    let listening = control::listen(station).expect("the control socket");
    let socket = listening.path.clone();
    tokio::spawn(control::serve(station.clone(), listening));
    socket
}

fn audit_actions(station: &Station, action: &str) -> Vec<String> {
    station
        .journal()
        .read(|c| {
            let mut stmt = c.prepare("SELECT detail FROM audit WHERE action = ?1 ORDER BY seq")?;
            let rows = stmt
                .query_map([action], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .expect("audit read")
}

async fn login_socket(client: &mut Client, name: &str) {
    client
        .call(&Command::Login {
            operator: name.into(),
            passphrase: Passphrase::new(PASSPHRASE),
        })
        .await
        .expect("log-in over the socket");
}

fn release_cmd(draft: hotline::compose::Draft, second: Option<&str>) -> Command {
    Command::Release(Box::new(Release {
        to: "MOSCOW".into(),
        draft,
        attachments: Vec::new(),
        second_operator: second.map(str::to_string),
        refer_to: Vec::new(),
    }))
}

/// The regression behind the typed API: an attached console's snapshot of
/// a station holding messages with attachments decodes whole, with every
/// row and its attachment counts (the untyped socket once gave such rows
/// another JSON shape, and the console dropped the whole snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_over_the_socket_carries_every_row_with_its_attachments() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let socket = serve(&ms).await;
    let session = door::login(&ws).await;
    let files: Vec<_> = (0..2)
        .map(|i| {
            let p = root.path().join(format!("annex-{i}.txt"));
            std::fs::write(&p, format!("annex {i}\n").repeat(1000)).expect("file");
            p
        })
        .collect();
    let with = door::try_release(&ws, &session, "MOSCOW", general("with annexes"), files)
        .await
        .expect("release with attachments");
    let plain = door::release(&ws, &session, "MOSCOW", general("plain")).await;
    support::eventually(
        Duration::from_secs(20),
        "both messages and both attachments stored",
        || {
            let rows = ms.journal().list(Direction::In).unwrap_or_default();
            rows.len() == 2 && rows.iter().all(|r| r.attachments_done == r.attachments)
        },
    )
    .await;

    let mut client = Client::connect(&socket).await.expect("attach");
    assert_eq!(client.welcome.station, "MOSCOW");
    let Reply::Snapshot {
        inbound, outbound, ..
    } = client.call(&Command::Snapshot).await.expect("snapshot")
    else {
        panic!("a snapshot answers a snapshot");
    };
    assert!(outbound.is_empty());
    assert_eq!(
        inbound.len(),
        2,
        "every received message is in the snapshot"
    );
    let row = inbound
        .iter()
        .find(|r| r.id == with.id)
        .expect("the message with annexes");
    assert_eq!(
        (
            row.attachments,
            row.attachments_done,
            row.attachments_refused
        ),
        (2, 2, 0)
    );
    assert!(
        inbound
            .iter()
            .any(|r| r.id == plain.id && r.attachments == 0)
    );
    assert!(inbound.iter().all(|r| r.state == MessageState::Received));

    // The console takes the snapshot as it came, rows and counts.
    let Reply::Snapshot {
        inbound,
        outbound,
        status,
        alarms,
    } = client.call(&Command::Snapshot).await.expect("snapshot")
    else {
        panic!("snapshot");
    };
    assert_eq!(
        status.snapshots_served, 2,
        "the station counts each snapshot it serves, this one included"
    );
    // Both stations were made with post-quantum keys: what MOSCOW seals to
    // WASHINGTON is post-quantum, and the status says so.
    assert!(
        status
            .health
            .get("WASHINGTON")
            .is_some_and(|h| h.post_quantum),
        "{:?}",
        status.health
    );
    let mut app = hotline::console::App::new(door::console_setup("MOSCOW"), jiff::Timestamp::now());
    hotline::console::update(
        &mut app,
        Msg::Refreshed {
            inbound,
            outbound,
            status,
            alarms,
        },
    );
    assert_eq!(app.inbound.len(), 2);
    assert_eq!(
        app.unacknowledged_counts()[Precedence::Routine.rank() as usize],
        2
    );
    ws.shutdown().await;
    ms.shutdown().await;
}

/// Rows in every attachment state survive the socket's encoding as they are.
#[test]
fn rows_in_every_attachment_state_round_trip_through_the_socket_encoding() {
    let base = door::inbound_row(1);
    for (total, done, refused) in [(3, 0, 0), (3, 1, 0), (3, 1, 1), (3, 3, 0), (3, 0, 3)] {
        let mut row = base.clone();
        (
            row.attachments,
            row.attachments_done,
            row.attachments_refused,
        ) = (total, done, refused);
        let answer = Answer::Ok(Reply::Rows {
            rows: vec![row.clone(), base.clone()],
        });
        let line = serde_json::to_string(&answer).expect("encode");
        let Answer::Ok(Reply::Rows { rows }) = serde_json::from_str(&line).expect("decode") else {
            panic!("rows decode as rows");
        };
        assert_eq!(rows, vec![row, base.clone()]);
    }
}

/// The two-person rule, checked by the station for the in-process console
/// and for a raw socket client alike: no second operator, the releaser as
/// their own second, and an unverified second are refused, each refusal
/// audited; an accepted release records both names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_person_rule_is_the_stations_through_every_door() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    two_person(&w);
    let (ws, ms) = (w.start().await, m.start().await);
    let socket = serve(&ws).await;

    // The in-process console's door.
    let console = door::login(&ws).await;
    for (second, why) in [
        (None, "needs a second operator"),
        (Some("op"), "different person"),
        (Some("op2"), "has not been verified"),
    ] {
        match ws.handle(&console, release_cmd(flash("no"), second)).await {
            Err(ApiError::TwoPersonRule { reason }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("a FLASH with second {second:?} must be refused, got {other:?}"),
        }
    }
    // The socket's door, with the same three mistakes.
    let mut raw = Client::connect(&socket).await.expect("connect");
    login_socket(&mut raw, "op").await;
    for second in [None, Some("op"), Some("op2")] {
        match raw.call(&release_cmd(flash("no"), second)).await {
            Err(ApiError::TwoPersonRule { .. }) => {}
            other => {
                panic!("socket: a FLASH with second {second:?} must be refused, got {other:?}")
            }
        }
    }
    let refused = audit_actions(&ws, "release-refused");
    assert_eq!(refused.len(), 6, "each refusal is audited: {refused:?}");
    assert!(
        ws.journal()
            .list(Direction::Out)
            .expect("outbox")
            .is_empty(),
        "nothing was released"
    );

    // Accepted: the second operator verified on the same session.
    raw.call(&Command::VerifySecond {
        operator: "op2".into(),
        passphrase: Passphrase::new(PASSPHRASE),
    })
    .await
    .expect("verify the second operator");
    let Reply::Released { row } = raw
        .call(&release_cmd(flash("two-person"), Some("op2")))
        .await
        .expect("a FLASH with a verified second operator is released")
    else {
        panic!("released");
    };
    assert_eq!(row.operator, OperatorName::new("op").expect("name"));
    assert_eq!(
        row.second_operator,
        Some(OperatorName::new("op2").expect("name"))
    );
    let released = audit_actions(&ws, "release");
    assert!(
        released
            .last()
            .is_some_and(|d| d.contains("second_operator=op2")),
        "the release's audit entry names both: {released:?}"
    );
    // The verification is spent: a second FLASH needs it again.
    assert!(matches!(
        raw.call(&release_cmd(flash("again"), Some("op2"))).await,
        Err(ApiError::TwoPersonRule { .. })
    ));
    // Control: a PRIORITY message needs no second operator.
    let plain = door::release(&ws, &console, "MOSCOW", general("priority")).await;
    assert_eq!(plain.second_operator, None);
    ws.shutdown().await;
    ms.shutdown().await;
}

/// The two-person rule through `hotline send` against a running
/// `hotline serve`: the CLI is refused the same three ways as the other
/// doors (no second operator, the releaser twice, a second whose passphrase
/// is wrong), each refusal audited, and the accepted FLASH names both in
/// `hotline outbox`.
#[test]
fn two_person_rule_holds_for_hotline_send() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(root.path(), FAST_LINK);
    two_person(&w);
    let secret = |name: &str, text: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, text).expect("passphrase file");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("owner-only");
        path
    };
    let right = secret("right", PASSPHRASE);
    let wrong = secret("wrong", "not the passphrase of op2 at all");
    let serve = Serve::start(&w);
    let send = |subject: &str, second: Option<&str>, second_file: &std::path::Path| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"));
        cmd.arg("--config")
            .arg(&w.config_path)
            .args(["send", "--to", "MOSCOW", "--template", "general"])
            .args(["--precedence", "FLASH", "--operator", "op"])
            .arg("--field")
            .arg(format!("subject={subject}"))
            .args(["--field", "text=two-person check"])
            .env_remove("HOTLINE_CONFIG")
            .env("HOTLINE_PASSPHRASE_FILE", &right)
            .env("HOTLINE_SECOND_PASSPHRASE_FILE", second_file);
        if let Some(second) = second {
            cmd.args(["--second-operator", second]);
        }
        cmd.output().expect("hotline send runs")
    };
    for (second, file, why) in [
        (None, &right, "needs a second operator"),
        (Some("op"), &right, "different person"),
        (
            Some("op2"),
            &wrong,
            "second operator op2: unknown operator or wrong passphrase",
        ),
    ] {
        let out = send("refused", second, file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "second {second:?} must be refused");
        assert!(stderr.contains(why), "second {second:?}: {stderr}");
    }
    let out = send("accepted", Some("op2"), &right);
    assert!(
        out.status.success(),
        "a FLASH with a verified second operator is released: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outbox = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"))
        .arg("--config")
        .arg(&w.config_path)
        .arg("outbox")
        .env_remove("HOTLINE_CONFIG")
        .output()
        .expect("hotline outbox runs");
    let listed = String::from_utf8_lossy(&outbox.stdout);
    assert!(listed.contains("released by op and op2"), "{listed}");
    assert_eq!(
        listed.matches("FLASH").count(),
        1,
        "one FLASH was released:\n{listed}"
    );
    serve.stop();

    let journal =
        hotline::store::Journal::open_read_only(&w.config().journal_path).expect("journal");
    let count = |sql: &str| {
        journal
            .read(|c| Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))?))
            .expect("audit read")
    };
    let refused = count("SELECT count(*) FROM audit WHERE action = 'release-refused'");
    let denied = count(
        "SELECT count(*) FROM audit WHERE action = 'second-operator' AND detail LIKE '%outcome=denied%'",
    );
    assert_eq!((refused, denied), (2, 1), "each refusal is audited");
}

/// Commands that act for an operator need one logged in on that session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acting_commands_need_a_logged_in_operator() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let anonymous = Session::new(Door::Console);
    assert!(matches!(
        ws.handle(&anonymous, release_cmd(general("x"), None)).await,
        Err(ApiError::NotLoggedIn)
    ));
    match ws
        .handle(
            &anonymous,
            Command::Login {
                operator: "op".into(),
                passphrase: Passphrase::new("wrong"),
            },
        )
        .await
    {
        Err(ApiError::Denied) => {}
        other => panic!("a wrong passphrase is denied, got {other:?}"),
    }
    assert!(matches!(
        ws.handle(
            &anonymous,
            Command::SignIn {
                call_sign: "ALPHA".into()
            }
        )
        .await,
        Err(ApiError::NotAnExercise)
    ));
    // Control: after a log-in the same release goes through.
    let session = door::login(&ws).await;
    door::release(&ws, &session, "MOSCOW", general("x")).await;
    ws.shutdown().await;
    ms.shutdown().await;
}

/// Files travel beside a request as descriptors: what the station is
/// handed must be a regular file (a pipe whose reader stalls would hold
/// the station's work), and one request hands over at most
/// `MAX_PASSED`. CONTROL: a regular file, the same way, is written into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handed_files_must_be_regular_and_few() {
    use hotline::station::api::Passed;
    use std::os::fd::OwnedFd;
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(root.path(), FAST_LINK);
    let ws = w.start().await;
    let socket = serve(&ws).await;
    let mut client = Client::connect(&socket).await.expect("connect");
    login_socket(&mut client, "op").await;
    let backup_into = |into: Passed| Command::Backup {
        into,
        name: "b".into(),
        to: Vec::new(),
        with_keys: false,
    };
    let (_reader, writer) = std::io::pipe().expect("pipe");
    let pipe = std::fs::File::from(OwnedFd::from(writer));
    match client.send(backup_into(Passed::File(pipe))).await {
        Err(ApiError::BadRequest { detail }) => {
            assert!(detail.contains("regular file"), "{detail}");
        }
        other => panic!("a pipe was taken: {other:?}"),
    }
    let many = (0..=hotline::station::passing::MAX_PASSED)
        .map(|_| Passed::File(tempfile::tempfile().expect("file")))
        .collect();
    let too_many = Command::ExportAttachments {
        id: hotline::domain::MessageId::new().to_string(),
        into: many,
    };
    match client.send(too_many).await {
        Err(ApiError::BadRequest { detail }) => assert!(detail.contains("at most"), "{detail}"),
        other => panic!("{other:?}"),
    }
    let target = root.path().join("b.backup");
    let file = std::fs::File::create(&target).expect("file");
    match client.send(backup_into(Passed::File(file))).await {
        Ok(Reply::BackedUp { backup }) => assert!(backup.bytes > 0),
        other => panic!("CONTROL: a regular file is written into: {other:?}"),
    }
    assert!(std::fs::metadata(&target).expect("backup").len() > 0);
    ws.shutdown().await;
}

/// The stop is a state, not a message: the control socket's task, spawned
/// just before a SIGTERM came and first run after the station stopped,
/// still sees the stop and ends (it once waited for ever, and `hotline
/// serve` with it, whenever no task happened to be listening for the
/// stop at the moment it was given).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_served_after_the_stop_ends_at_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(root.path(), FAST_LINK);
    let ws = w.start().await;
    let listening = control::listen(&ws).expect("the control socket");
    ws.shutdown().await;
    tokio::time::timeout(
        Duration::from_secs(10),
        control::serve(ws.clone(), listening),
    )
    .await
    .expect("serve ended after the stop")
    .expect("serve");
}

/// Sends raw bytes as one connection and reads what comes back.
fn raw_exchange(socket: &std::path::Path, bytes: &[u8], lines: usize) -> Vec<String> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut reader = BufReader::new(stream);
    let mut out = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => out.push(line),
        }
    }
    out
}

fn hello() -> String {
    format!("{{\"version\":{API_VERSION}}}\n")
}

/// Garbage, truncated, oversized, non-UTF-8 and wrong-version lines get a
/// typed error; the station goes on serving every other client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_answers_bad_input_with_typed_errors_and_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let socket = serve(&ws).await;
    let mut steady = Client::connect(&socket).await.expect("a steady client");
    let path = socket.clone();
    let oversized = {
        let mut b = hello().into_bytes();
        b.extend(std::iter::repeat_n(b'x', control::MAX_REQUEST + 10));
        b.push(b'\n');
        b
    };
    let cases: Vec<(&str, Vec<u8>, usize, &str)> = vec![
        (
            "wrong version",
            b"{\"version\":99}\n".to_vec(),
            1,
            "\"version\"",
        ),
        (
            "garbage hello",
            b"hello there\n".to_vec(),
            1,
            "\"bad-request\"",
        ),
        (
            "garbage request",
            format!("{}nonsense\n", hello()).into_bytes(),
            2,
            "\"bad-request\"",
        ),
        (
            "unknown command",
            format!("{}{{\"command\":\"launch\"}}\n", hello()).into_bytes(),
            2,
            "\"bad-request\"",
        ),
        (
            "not UTF-8",
            [hello().into_bytes(), vec![0xff, 0xfe, b'\n']].concat(),
            2,
            "\"bad-request\"",
        ),
        ("oversized", oversized, 2, "\"bad-request\""),
        (
            "a file named without its descriptor",
            format!(
                "{}{{\"command\":\"backup\",\"into\":0,\"name\":\"x\"}}\n",
                hello()
            )
            .into_bytes(),
            2,
            "without its descriptor",
        ),
        (
            "truncated",
            format!("{}{{\"command\":\"sta", hello()).into_bytes(),
            2,
            "",
        ),
    ];
    for (what, bytes, lines, expected) in cases {
        let p = path.clone();
        let answers = tokio::task::spawn_blocking(move || raw_exchange(&p, &bytes, lines))
            .await
            .expect("exchange");
        let last = answers.last().cloned().unwrap_or_default();
        if expected.is_empty() {
            // A line cut short by the end of the stream is never a request.
            assert_eq!(answers.len(), 1, "{what}: only the welcome: {answers:?}");
        } else {
            assert!(
                last.contains("\"err\"") && last.contains(expected),
                "{what}: {answers:?}"
            );
        }
        // The station still serves: the steady client and a new one.
        assert!(
            matches!(
                steady.call(&Command::Status).await,
                Ok(Reply::Status { .. })
            ),
            "{what}"
        );
        let mut fresh = Client::connect(&socket)
            .await
            .expect("a new client after bad input");
        assert!(matches!(
            fresh.call(&Command::Status).await,
            Ok(Reply::Status { .. })
        ));
    }
    // A garbage line leaves its own connection usable too.
    let p = path.clone();
    let answers = tokio::task::spawn_blocking(move || {
        raw_exchange(
            &p,
            format!("{}nonsense\n{{\"command\":\"status\"}}\n", hello()).as_bytes(),
            3,
        )
    })
    .await
    .expect("exchange");
    assert!(
        answers[2].contains("\"ok\"") && answers[2].contains("\"status\""),
        "{answers:?}"
    );
    // And the typed client names both versions on a mismatch.
    let e = ApiError::Version {
        ours: API_VERSION,
        theirs: 99,
    };
    assert!(e.to_string().contains("99") && e.to_string().contains(&API_VERSION.to_string()));
    ws.shutdown().await;
    ms.shutdown().await;
}

async fn next(watch: &mut Watch) -> Result<Streamed, ApiError> {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a line within 10 s")
}

/// A watching connection hears a heartbeat, the station's events with
/// their changed rows, and the station's stopping before the socket closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_gets_heartbeats_rows_and_the_stop() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let socket = serve(&ws).await;
    let mut watch = Watch::connect(&socket).await.expect("watch");
    // A heartbeat comes within a few beats (a link event may come first).
    let mut beat = false;
    for _ in 0..20 {
        if matches!(next(&mut watch).await, Ok(Streamed::Heartbeat)) {
            beat = true;
            break;
        }
    }
    assert!(beat, "no heartbeat");
    let session = door::login(&ws).await;
    let released = door::release(&ws, &session, "MOSCOW", general("watched")).await;
    let row = loop {
        if let Ok(Streamed::Event(hotline::station::Event::MessageChanged { row })) =
            next(&mut watch).await
        {
            break row;
        }
    };
    assert_eq!(row.id, released.id, "the changed row follows the release");
    ws.shutdown().await;
    let mut stopping = false;
    loop {
        match next(&mut watch).await {
            Ok(Streamed::Event(hotline::station::Event::Stopping { .. })) => stopping = true,
            Ok(_) => {}
            Err(ApiError::Gone { .. }) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        stopping,
        "the station said it was stopping before the socket closed"
    );
    ms.shutdown().await;
}

/// A `hotline serve` child for a site, killed when dropped.
struct Serve(std::process::Child);

impl Serve {
    fn start(site: &support::Site) -> Serve {
        let log = std::fs::File::create(site.dir.join("serve.log")).expect("serve log");
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"))
            .arg("--config")
            .arg(&site.config_path)
            .arg("serve")
            .env_remove("HOTLINE_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("hotline serve starts");
        let socket = site.config().control.socket;
        let start = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve(child)
    }

    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An attached console over a station that stops, freezes or restarts:
/// the screen says STATION NOT RUNNING with no peer UP (stopped with
/// SIGTERM, and frozen with SIGSTOP: socket open, no heartbeat), reconnects
/// by itself when the station answers again, and keeps the draft through a
/// restart for the operator who typed it. The positive control is the same
/// screen showing the peer UP before each fault.
#[test]
fn attached_console_shows_a_stopped_or_frozen_station_and_reconnects() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let _moscow = Serve::start(&m);
    let washington = Serve::start(&w);
    // `exec`, so that the pane's process is the console itself.
    let cmd = format!(
        "exec {} --config {} console",
        assert_cmd::cargo::cargo_bin("hotline").display(),
        w.config_path.display()
    );
    let tmux = support::tmux::Tmux::new("attached", &cmd, (120, 40));
    let limit = Duration::from_secs(10);
    let log_in = |tmux: &support::tmux::Tmux| {
        tmux.wait_for("Operator:", limit);
        tmux.text("op");
        tmux.keys(&["Tab"]);
        tmux.text(PASSPHRASE);
        tmux.keys(&["Enter"]);
        tmux.wait_for("Handover summary", limit);
    };
    log_in(&tmux);
    tmux.keys(&["Enter"]);
    tmux.wait_for("MOSCOW ● UP", Duration::from_secs(20));
    // Control: over a live station the same poll does not see the
    // not-running state for three heartbeat windows, so below it is the
    // console's own finding, and a console that ignored the closed or silent
    // socket would go on showing this screen and fail.
    tmux.never_for("STATION NOT RUNNING", 3 * hotline::attach::STATION_SILENT);

    // Frozen: the socket stays open, the heartbeat stops.
    washington.signal(libc::SIGSTOP);
    let screen = tmux.wait_for("STATION NOT RUNNING", limit);
    assert!(!screen.contains("● UP"), "no peer is shown UP:\n{screen}");
    washington.signal(libc::SIGCONT);
    tmux.wait_for("answering again", limit);
    tmux.wait_for("MOSCOW ● UP", limit);

    // A draft, then the station stops under it.
    tmux.keys(&["c"]);
    tmux.wait_for("Template (type to filter)", limit);
    tmux.text("gen");
    tmux.keys(&["Enter"]);
    tmux.wait_for("COMPOSE: General message", limit);
    tmux.keys(&["Tab", "Tab"]);
    tmux.text("DRAFT-KEPT-42");
    tmux.wait_for("DRAFT-KEPT-42", limit);
    // Sealed to disk within a tick of the keystroke, never in clear.
    let kept = w.config().station.data_dir.join("drafts").join("op.age");
    let start = std::time::Instant::now();
    while !kept.exists() {
        assert!(
            start.elapsed() < limit,
            "no draft file at {}",
            kept.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    washington.stop();
    let screen = tmux.wait_for("STATION NOT RUNNING", limit);
    assert!(!screen.contains("● UP"), "no peer is shown UP:\n{screen}");
    assert!(
        screen.contains("DRAFT-KEPT-42"),
        "the draft stays on screen:\n{screen}"
    );

    // Back as a new run: the console reconnects, asks for a log-in, and
    // gives the draft back.
    let _washington = Serve::start(&w);
    tmux.wait_for("running again", limit);
    log_in(&tmux);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("DRAFT-KEPT-42", limit);
    assert!(screen.contains("COMPOSE: General message"), "{screen}");
    tmux.wait_for("MOSCOW ● UP", Duration::from_secs(20));
    tmux.text(" AND-MORE");
    tmux.wait_for("DRAFT-KEPT-42 AND-MORE", limit);
    let sealed = std::fs::read(&kept).expect("the kept draft");
    assert!(
        !sealed.windows(13).any(|w| w == b"DRAFT-KEPT-42"),
        "the kept draft is sealed"
    );

    // The console dies (kill -9) with the station gone too: nothing but
    // the sealed file is left. The next console, running the station
    // in-process this time, offers the draft back at the log-in.
    let wait_saved = |text: &[u8]| {
        let start = std::time::Instant::now();
        let station = w.keys();
        loop {
            let op = hotline::domain::OperatorName::new("op").expect("name");
            let opened =
                std::fs::File::open(hotline::drafts::path(&w.config().station.data_dir, &op))
                    .ok()
                    .map(|f| {
                        hotline::drafts::read_from(f, &station, &op).expect("the kept draft opens")
                    });
            let holds = opened.is_some_and(|d| {
                d.draft
                    .fields
                    .values()
                    .any(|v| v.as_bytes().windows(text.len()).any(|w| w == text))
            });
            if holds {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the draft on disk never held the last keys"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_saved(b"AND-MORE");
    let pid: libc::pid_t = tmux.format("#{pane_pid}").parse().expect("pane pid");
    // SAFETY: kill(2) on the console the test started; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    _washington.stop();
    drop(tmux);
    let tmux = support::tmux::Tmux::new("after-kill", &cmd, (120, 40));
    log_in(&tmux);
    let screen = tmux.wait_for("Resume your draft", limit);
    assert!(
        screen.contains("General message to MOSCOW"),
        "the offer names the draft:\n{screen}"
    );
    tmux.keys(&["y"]);
    tmux.wait_for("your draft is back", limit);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("DRAFT-KEPT-42 AND-MORE", limit);
    assert!(screen.contains("COMPOSE: General message"), "{screen}");
}

/// Applies every message waiting on `rx` to `app`, until `done` holds.
async fn follow(
    app: &mut hotline::console::App,
    rx: &mut tokio::sync::mpsc::Receiver<Msg>,
    done: impl Fn(&hotline::console::App) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(app) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, rx.recv())
            .await
            .expect("the console state settles within 20 s")
            .expect("the feed stays open");
        hotline::console::update(app, msg);
    }
}

/// The same console behaviour over both backends: one console fed from
/// the in-process station's events, one from the control socket through the
/// attached console's supervisor. Both follow arrivals and an
/// acknowledgement by applying the rows the events carry (no re-read), and
/// end with the same rows; the attached one alone sees its station stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_follow_the_same_events_to_the_same_rows() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let socket = serve(&ms).await;

    let (local_tx, mut local_rx) = tokio::sync::mpsc::channel(1024);
    let mut events = ms.subscribe();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if local_tx.send(Msg::Station(e)).await.is_err() {
                return;
            }
        }
    });
    let (remote_tx, mut remote_rx) = tokio::sync::mpsc::channel(1024);
    let boot = Client::connect(&socket).await.expect("attach").welcome.boot;
    tokio::spawn(hotline::attach::supervise(socket.clone(), boot, remote_tx));
    // The supervisor's first word, once its watch is up, is a resync.
    let first = tokio::time::timeout(Duration::from_secs(10), remote_rx.recv()).await;
    assert!(matches!(first, Ok(Some(Msg::MissedEvents))), "{first:?}");

    let mut local =
        hotline::console::App::new(door::console_setup("MOSCOW"), jiff::Timestamp::now());
    let mut remote =
        hotline::console::App::new(door::console_setup("MOSCOW"), jiff::Timestamp::now());
    let session = door::login(&ws).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            door::release(&ws, &session, "MOSCOW", general(&format!("n{i}")))
                .await
                .id,
        );
    }
    let three = |app: &hotline::console::App| app.inbound.len() == 3;
    follow(&mut local, &mut local_rx, three).await;
    follow(&mut remote, &mut remote_rx, three).await;
    // The watch carries rows without subjects; the attached console asks
    // for them on its logged-in connection, as its world does.
    let missing: Vec<_> = remote
        .inbound
        .iter()
        .filter(|r| r.subject.is_none())
        .map(|r| r.id)
        .collect();
    assert_eq!(missing.len(), 3, "the watch carried no subject");
    let mut asking = Client::connect(&socket).await.expect("connect");
    login_socket(&mut asking, "op").await;
    match asking.call(&Command::Subjects { ids: missing }).await {
        Ok(Reply::Subjects { subjects }) => {
            hotline::console::update(&mut remote, Msg::SubjectsFetched { subjects });
        }
        other => panic!("{other:?}"),
    }
    // Each row names its message by the subject the station opened.
    for app in [&local, &remote] {
        let mut subjects: Vec<_> = app.inbound.iter().map(|r| r.subject.clone()).collect();
        subjects.sort();
        assert_eq!(
            subjects,
            ["n0", "n1", "n2"].map(|s| Some(s.to_string())),
            "the rows carry their subjects"
        );
    }
    let moscow = door::login(&ms).await;
    door::acknowledge(&ms, &moscow, ids[0])
        .await
        .expect("acknowledge");
    let acked = |app: &hotline::console::App| {
        app.inbound
            .iter()
            .any(|r| r.id == ids[0] && r.state == MessageState::Acknowledged)
    };
    follow(&mut local, &mut local_rx, acked).await;
    follow(&mut remote, &mut remote_rx, acked).await;
    assert_eq!(
        local.inbound.iter().collect::<Vec<_>>(),
        remote.inbound.iter().collect::<Vec<_>>(),
        "both consoles hold the same rows"
    );
    assert_eq!(local.unacknowledged_counts(), [0, 0, 0, 2]);
    assert_eq!(remote.unacknowledged_counts(), [0, 0, 0, 2]);
    assert!(remote.station_lost.is_none());

    ms.shutdown().await;
    follow(&mut remote, &mut remote_rx, |app| {
        app.station_lost.is_some()
    })
    .await;

    // A new run knows no subject until it has opened its journal in
    // memory; then it asks for a resync, and the rows have them again.
    let journal = std::fs::read(m.config().journal_path).expect("journal");
    assert!(
        !journal.windows(10).any(|w| w == b"body of n0"),
        "no message text in clear at rest"
    );
    drop(ms);
    let ms = m.restart().await;
    let mut events = ms.subscribe();
    let session = door::login(&ms).await;
    let list = || async {
        match ms
            .handle(
                &session,
                Command::List {
                    direction: hotline::store::Direction::In,
                    limit: None,
                    before: None,
                },
            )
            .await
        {
            Ok(Reply::Rows { rows }) => rows,
            other => panic!("{other:?}"),
        }
    };
    if list().await.iter().any(|r| r.subject.is_none()) {
        support::wait_event(&mut events, Duration::from_secs(20), |e| {
            matches!(e, hotline::station::Event::Resync)
        })
        .await;
    }
    let rows = list().await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.subject.is_some()), "{rows:?}");
    ms.shutdown().await;
    ws.shutdown().await;
}

/// An arrival or an acknowledgement moves no selection: the highlighted
/// message stays highlighted through the re-sort.
#[test]
fn a_changed_row_keeps_the_selection_on_its_message() {
    let mut app =
        hotline::console::App::new(door::console_setup("WASHINGTON"), jiff::Timestamp::now());
    let rows: Vec<_> = (1..=3).map(door::inbound_row).collect();
    for r in &rows {
        app.apply_row(r.clone());
    }
    app.selected_in = app
        .inbound
        .iter()
        .position(|r| r.id == rows[2].id)
        .expect("row");
    let mut flash = door::inbound_row(4);
    flash.precedence = Precedence::Flash;
    assert!(
        app.apply_row(flash.clone()),
        "a new unacknowledged FLASH rings"
    );
    assert_eq!(
        app.inbound.get(0).expect("a row").id,
        flash.id,
        "the FLASH sorts first"
    );
    assert_eq!(
        app.inbound.get(app.selected_in).expect("a row").id,
        rows[2].id,
        "the selection stayed"
    );
    let mut acked = flash;
    acked.state = MessageState::Acknowledged;
    assert!(!app.apply_row(acked), "an acknowledged FLASH does not ring");
    assert_eq!(
        app.inbound.get(app.selected_in).expect("a row").id,
        rows[2].id,
        "the selection stayed"
    );
    assert_eq!(
        app.inbound.len(),
        4,
        "a changed row replaces, never duplicates"
    );
}

/// The station's alarm board through the door: one alarm per cause, raised
/// by the station, down when its cause ends, and cleared by an operator
/// only when logged in (and audited).
#[tokio::test]
async fn alarms_are_one_per_cause_and_end_with_their_cause() {
    use hotline::station::AlarmKind;
    use hotline::station::Event;
    use support::wait_event;

    let dir = tempfile::tempdir().expect("tmp");
    let link = "test_interval = \"1h\"\nflash_receipt_alarm = \"1s\"\nretry_window = \"5s\"\ndown_alarm = \"1s\"\n";
    let (w, m) = pair(dir.path(), link);
    let ws = w.start().await;
    let mut events = ws.subscribe();
    let session = door::login(&ws).await;
    // MOSCOW is not running: the FLASH waits for its receipt.
    let row = door::release(&ws, &session, "MOSCOW", flash("no receipt yet")).await;
    let mut seen = Vec::new();
    while !(seen.contains(&AlarmKind::FlashNoReceipt) && seen.contains(&AlarmKind::LinkDown)) {
        let Event::Alarm(alarm) = wait_event(&mut events, Duration::from_secs(10), |e| {
            matches!(e, Event::Alarm(_))
        })
        .await
        else {
            unreachable!()
        };
        if alarm.kind == AlarmKind::FlashNoReceipt {
            assert_eq!(alarm.id, Some(row.id), "{alarm:?}");
            assert!(alarm.text.contains("to:MOSCOW/1"), "{alarm:?}");
        }
        seen.push(alarm.kind);
    }
    // More ticks have run since the FLASH alarm went up (the link alarm
    // waits a tick longer): still one alarm for it.
    let Ok(Reply::Alarms { alarms }) = ws.handle(&session, Command::Alarms).await else {
        panic!("alarms");
    };
    let kinds: Vec<AlarmKind> = alarms.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == AlarmKind::FlashNoReceipt)
            .count(),
        1,
        "{alarms:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == AlarmKind::LinkDown).count(),
        1,
        "{alarms:?}"
    );

    // Clearing needs a log-in; then it is audited and told to consoles.
    let clear = || Command::ClearAlarm {
        kind: AlarmKind::LinkDown,
        subject: "MOSCOW".into(),
    };
    let nobody = Session::new(Door::Console);
    assert_eq!(
        ws.handle(&nobody, clear()).await.err(),
        Some(ApiError::NotLoggedIn)
    );
    let Ok(Reply::AlarmCleared { alarm }) = ws.handle(&session, clear()).await else {
        panic!("clear");
    };
    assert_eq!(alarm.kind, AlarmKind::LinkDown);
    wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, Event::AlarmCleared { kind: AlarmKind::LinkDown, by: Some(by), .. } if by == "op")
    })
    .await;
    let cleared = audit_actions(&ws, "alarm-cleared");
    assert_eq!(cleared, vec!["kind=link-down subject=MOSCOW".to_string()]);
    assert!(
        matches!(
            ws.handle(&session, clear()).await,
            Err(ApiError::Refused { .. })
        ),
        "a second clear finds nothing up"
    );

    // MOSCOW comes up: the receipt takes the FLASH alarm down by itself.
    let ms = m.start().await;
    wait_event(&mut events, Duration::from_secs(15), |e| {
        matches!(e, Event::AlarmCleared { kind: AlarmKind::FlashNoReceipt, subject, by: None } if *subject == row.id.to_string())
    })
    .await;
    let Ok(Reply::Alarms { alarms }) = ws.handle(&session, Command::Alarms).await else {
        panic!("alarms");
    };
    assert!(alarms.is_empty(), "{alarms:?}");
    ms.shutdown().await;
    ws.shutdown().await;
}

/// An inbound message past its precedence's deadline is overdue: one
/// alarm, raised by the station's own ticks, down when it is acknowledged.
/// The timers read only the rows past a deadline, so an older message of
/// a precedence with a longer deadline stays quiet (it is stored first, so
/// the tick that alarms the other has seen it too).
#[tokio::test]
async fn a_message_past_its_deadline_is_overdue_until_acknowledged() {
    use hotline::station::AlarmKind;
    use hotline::station::Event;
    use support::wait_event;

    let dir = tempfile::tempdir().expect("tmp");
    let config = format!("{FAST_LINK}\n[deadlines]\npriority = \"1s\"\n");
    let (w, m) = pair(dir.path(), &config);
    let (ws, ms) = (w.start().await, m.start().await);
    let mut events = ws.subscribe();
    let (washington, moscow) = (door::login(&ws).await, door::login(&ms).await);
    let mut routine = general("a routine one, first");
    routine.precedence = Some(Precedence::Routine);
    let quiet = door::release(&ms, &moscow, "WASHINGTON", routine).await;
    let mut priority = general("a priority one, second");
    priority.precedence = Some(Precedence::Priority);
    let late = door::release(&ms, &moscow, "WASHINGTON", priority).await;

    let Event::Alarm(alarm) = wait_event(
        &mut events,
        Duration::from_secs(15),
        |e| matches!(e, Event::Alarm(a) if a.kind == AlarmKind::Overdue),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(alarm.id, Some(late.id), "{alarm:?}");
    assert!(alarm.text.contains("OVERDUE"), "{alarm:?}");
    let rows = door::list(&ws, Direction::In).await;
    assert!(
        rows.iter()
            .any(|r| r.id == quiet.id && r.state.is_unacknowledged()),
        "the ROUTINE one is stored and waiting: {rows:?}"
    );
    let Ok(Reply::Alarms { alarms }) = ws.handle(&washington, Command::Alarms).await else {
        panic!("alarms");
    };
    let overdue: Vec<_> = alarms
        .iter()
        .filter(|a| a.kind == AlarmKind::Overdue)
        .map(|a| a.id)
        .collect();
    assert_eq!(overdue, vec![Some(late.id)], "{alarms:?}");

    door::acknowledge(&ws, &washington, late.id)
        .await
        .expect("acknowledge");
    wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::AlarmCleared { kind: AlarmKind::Overdue, subject, by: None } if *subject == late.id.to_string())
    })
    .await;
    ms.shutdown().await;
    ws.shutdown().await;
}

/// Operators speak of serials: `ack` takes a received message's handle
/// (`WASHINGTON/2`), `cancel` one we sent (`to:MOSCOW/1`); the wrong
/// direction, an unknown serial or a malformed handle is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_name_messages_for_acknowledge_and_cancel() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let ws = w.start().await;
    let session = door::login(&ws).await;
    let queued = door::release(&ws, &session, "MOSCOW", general("to cancel")).await;
    assert_eq!(queued.serial, 1);
    let cancel = |id: &str| Command::Cancel { id: id.into() };
    let refused = |r: Result<Reply, ApiError>| match r {
        Err(e) => e.to_string(),
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    };
    let e = refused(ws.handle(&session, cancel("MOSCOW/1")).await);
    assert!(
        e.contains("is a message we received; this takes one we sent"),
        "{e}"
    );
    let e = refused(ws.handle(&session, cancel("to:MOSCOW/2")).await);
    assert!(e.contains("no message to:MOSCOW/2"), "{e}");
    let e = refused(ws.handle(&session, cancel("to:moscow/1")).await);
    assert!(e.contains("a handle is PEER/SERIAL"), "{e}");
    match ws.handle(&session, cancel("to:MOSCOW/1")).await {
        Ok(Reply::Cancelled { row }) => {
            assert_eq!(row.id, queued.id);
            assert_eq!(row.state, MessageState::Cancelled);
        }
        other => panic!("{other:?}"),
    }

    let ms = m.start().await;
    let mut arrivals = ms.subscribe();
    let sent = door::release(&ws, &session, "MOSCOW", general("to acknowledge")).await;
    support::wait_event(
        &mut arrivals,
        Duration::from_secs(20),
        |e| matches!(e, hotline::station::Event::Received { id, .. } if *id == sent.id),
    )
    .await;
    let moscow = door::login(&ms).await;
    let ack = |id: &str| Command::Acknowledge { id: id.into() };
    let e = refused(ms.handle(&moscow, ack("to:WASHINGTON/2")).await);
    assert!(
        e.contains("is a message we sent; this takes a received message"),
        "{e}"
    );
    let e = refused(ms.handle(&moscow, ack("WASHINGTON/two")).await);
    assert!(e.contains("does not end in a serial number"), "{e}");
    match ms.handle(&moscow, ack("WASHINGTON/2")).await {
        Ok(Reply::Acknowledged { row }) => {
            assert_eq!(row.id, sent.id);
            assert_eq!(row.state, MessageState::Acknowledged);
            assert_eq!(row.subject.as_deref(), Some("to acknowledge"));
        }
        other => panic!("{other:?}"),
    }
    ms.shutdown().await;
    ws.shutdown().await;
}

/// Find searches the whole history in memory: field values, free text, a
/// choice's label and the rendering, in either language. It needs a log-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_searches_fields_text_and_renderings_in_either_language() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(root.path(), FAST_LINK);
    let ws = w.start().await;
    let session = door::login(&ws).await;
    let mut general = general("Dnieper dam");
    general.text = "Проверка связи".into();
    let plain = door::release(&ws, &session, "MOSCOW", general).await;
    let mut launch = hotline::compose::Draft {
        template_id: "missile-launch".into(),
        ..Default::default()
    };
    for (k, v) in [
        ("launch_time", "+2h"),
        ("launch_window", "2h"),
        ("launch_area", "62.93N 40.58E"),
        ("impact_area", "57.77N 161.77E"),
        ("missile_type", "icbm"),
        ("count", "1"),
    ] {
        launch.fields.insert(k.into(), v.into());
    }
    let launch = door::release(&ws, &session, "MOSCOW", launch).await;
    let find = |query: &str| {
        let (ws, session) = (&ws, &session);
        let query = query.to_string();
        async move {
            match ws
                .handle(
                    session,
                    Command::Find {
                        direction: Direction::Out,
                        query,
                    },
                )
                .await
            {
                Ok(Reply::Found { ids }) => ids,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(find("dnieper").await, vec![plain.id], "a field value");
    assert_eq!(
        find("ПРОВЕРКА").await,
        vec![plain.id],
        "free text, any case"
    );
    assert_eq!(
        find("межконтинентальная").await,
        vec![launch.id],
        "a choice's Russian label"
    );
    assert_eq!(
        find("notifying party").await,
        vec![launch.id],
        "the English rendering"
    );
    assert_eq!(
        find("уведомляющая сторона").await.len(),
        1,
        "the Russian rendering"
    );
    assert!(
        find("nothing-like-this").await.is_empty(),
        "control: no false match"
    );
    let mut both = find("moscow").await;
    both.sort();
    let mut expected = vec![plain.id, launch.id];
    expected.sort();
    assert_eq!(both, expected);
    let anonymous = Session::new(Door::ControlSocket);
    let denied = ws
        .handle(
            &anonymous,
            Command::Find {
                direction: Direction::Out,
                query: "dnieper".into(),
            },
        )
        .await;
    assert!(matches!(denied, Err(ApiError::NotLoggedIn)), "{denied:?}");
    ws.shutdown().await;
}

/// The duty-screen cases, end to end against the real binary at
/// 80x24: after acknowledging the top FLASH (which moves down), `Down` then
/// `a` acknowledges the message then highlighted, named in its question or
/// notice, and no other; a FLASH released while the peer is down raises
/// its no-receipt alarm on screen within the station's tick and it stays
/// after a newer notice.
#[test]
fn duty_screen_acts_on_the_highlighted_row_and_keeps_the_flash_alarm_up() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let mut moscow = Some(Serve::start(&m));
    let _washington = Serve::start(&w);
    let pass = root.path().join("pass");
    std::fs::write(&pass, PASSPHRASE).expect("passphrase file");
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("owner-only");
    let send = |site: &support::Site, to: &str, precedence: &str, subject: &str| {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"))
            .arg("--config")
            .arg(&site.config_path)
            .args(["send", "--to", to, "--template", "general"])
            .args(["--precedence", precedence, "--operator", "op"])
            .arg("--field")
            .arg(format!("subject={subject}"))
            .args(["--field", "text=duty screen check"])
            .env_remove("HOTLINE_CONFIG")
            .env("HOTLINE_PASSPHRASE_FILE", &pass)
            .output()
            .expect("hotline send runs");
        assert!(
            out.status.success(),
            "send {subject}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let cmd = format!(
        "exec {} --config {} console",
        assert_cmd::cargo::cargo_bin("hotline").display(),
        w.config_path.display()
    );
    let tmux = support::tmux::Tmux::new("duty-screen", &cmd, (80, 24));
    let limit = Duration::from_secs(15);
    tmux.wait_for("Operator:", limit);
    tmux.text("op");
    tmux.keys(&["Tab"]);
    tmux.text(PASSPHRASE);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Handover summary", limit);
    tmux.keys(&["Enter"]);
    tmux.wait_for("MOSCOW ● UP", Duration::from_secs(20));
    for (precedence, subject) in [
        ("FLASH", "FLASH-ONE"),
        ("FLASH", "FLASH-TWO"),
        ("PRIORITY", "PRIO-THREE"),
        ("ROUTINE", "ROUT-FOUR"),
    ] {
        send(&m, "WASHINGTON", precedence, subject);
    }
    tmux.wait_for("ROUT-FOUR", limit);
    // Ctrl-Q with FLASH unacknowledged asks, and says so; `n` keeps going.
    tmux.keys(&["C-q"]);
    let screen = tmux.wait_for("Quit this console?", limit);
    assert!(
        screen.contains("Messages are unacknowledged: 2 FLASH."),
        "{screen}"
    );
    tmux.keys(&["n"]);
    let screen = tmux.wait_until("the question to close", limit, |s| {
        !s.contains("Quit this console?")
    });
    assert!(screen.contains("UNACK Z:2"), "still running:\n{screen}");
    let subjects = ["FLASH-ONE", "FLASH-TWO", "PRIO-THREE", "ROUT-FOUR"];
    let highlighted = |screen: &str| -> String {
        let line = screen
            .lines()
            .find(|l| l.starts_with('▶'))
            .unwrap_or_else(|| panic!("no highlighted row:\n{screen}"));
        subjects
            .iter()
            .find(|s| line.contains(*s))
            .unwrap_or_else(|| panic!("the highlighted row names no message: {line}"))
            .to_string()
    };
    let acked = |screen: &str, subject: &str| {
        screen
            .lines()
            .any(|l| l.contains(subject) && l.contains("ACK op"))
    };
    // Acknowledges the highlighted message, through its question where its
    // precedence asks one, and checks that it and only it is acknowledged.
    let acknowledge_highlighted = |done: &mut Vec<String>| {
        let target = highlighted(&tmux.screen());
        tmux.keys(&["a"]);
        let question = "┌ ACKNOWLEDGE ";
        let screen = tmux.wait_until("the question or the notice", limit, |s| {
            s.contains(question) || s.contains(" acknowledged ")
        });
        if screen.contains(question) {
            assert!(
                screen.contains(&format!("\"{target}\"?")),
                "the question names {target}:\n{screen}"
            );
            tmux.keys(&["y"]);
        }
        let screen = tmux.wait_until(&format!("{target} acknowledged"), limit, |s| {
            acked(s, &target)
        });
        done.push(target);
        for s in subjects {
            assert_eq!(
                acked(&screen, s),
                done.iter().any(|d| d == s),
                "{s}: only the highlighted messages are acknowledged:\n{screen}"
            );
        }
    };
    let mut done = Vec::new();
    let top = highlighted(&tmux.screen());
    assert!(top.starts_with("FLASH-"), "a FLASH is on top: {top}");
    acknowledge_highlighted(&mut done);
    // The acknowledged FLASH moved below the unacknowledged rows, and the
    // highlight went with it (a re-sort never moves the highlight onto
    // another message); the row above it is the last unacknowledged one.
    let screen = tmux.screen();
    assert_eq!(
        highlighted(&screen),
        top,
        "the highlight follows the message:\n{screen}"
    );
    assert!(
        screen
            .lines()
            .rfind(|l| subjects.iter().any(|s| l.contains(s)))
            .is_some_and(|l| l.contains(&top)),
        "the acknowledged FLASH is last:\n{screen}"
    );
    tmux.keys(&["Up"]);
    let above = highlighted(&tmux.screen());
    assert_ne!(above, top);
    acknowledge_highlighted(&mut done);
    tmux.keys(&["g"]);
    let first = highlighted(&tmux.screen());
    assert!(first.starts_with("FLASH-") && first != top, "{first}");
    acknowledge_highlighted(&mut done);

    // The peer goes down; a FLASH to it gets no receipt.
    if let Some(m) = moscow.take() {
        m.stop();
    }
    tmux.wait_for("MOSCOW ○ DOWN", Duration::from_secs(20));
    // CONTROL: no such alarm before the release.
    tmux.never_for("has no receipt", Duration::from_secs(1));
    let released = std::time::Instant::now();
    send(&w, "MOSCOW", "FLASH", "FLASH-OUT");
    let screen = tmux.wait_for("has no receipt", Duration::from_secs(5 + 3));
    let took = released.elapsed();
    assert!(
        took <= Duration::from_secs(5) + hotline::station::TIMER_TICK + Duration::from_secs(2),
        "the alarm is on screen within a tick of its time: {took:?}"
    );
    assert!(
        screen.contains("ALARMS"),
        "the count is on the status bar:\n{screen}"
    );
    // A newer notice does not hide it.
    tmux.keys(&["t"]);
    let screen = tmux.wait_for("link test with MOSCOW", Duration::from_secs(25));
    assert!(screen.contains("has no receipt"), "{screen}");
    tmux.keys(&["F3"]);
    let screen = tmux.wait_for("ALARMS —", limit);
    assert!(screen.contains("FLASH-NO-RECEIPT"), "{screen}");
}

/// Subjects are content: the control socket gives them only to a session
/// with an operator logged in. A listing without one, and a watching
/// connection's rows, carry none; a logged-in session asks for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_reach_only_a_logged_in_session() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _m) = pair(root.path(), FAST_LINK);
    let ws = w.start().await;
    let socket = serve(&ws).await;
    let mut anonymous = Client::connect(&socket).await.expect("connect");
    let mut watch = Watch::connect(&socket).await.expect("watch");
    let mut client = Client::connect(&socket).await.expect("connect");
    login_socket(&mut client, "op").await;
    let released = match client
        .call(&release_cmd(general("Secret subject"), None))
        .await
    {
        Ok(Reply::Released { row }) => row,
        other => panic!("{other:?}"),
    };
    assert_eq!(released.subject.as_deref(), Some("Secret subject"));
    let list = |rows: Result<Reply, ApiError>| match rows {
        Ok(Reply::Rows { rows }) => rows,
        other => panic!("{other:?}"),
    };
    let out = Command::List {
        direction: Direction::Out,
        limit: None,
        before: None,
    };
    let seen = list(client.call(&out).await);
    assert_eq!(
        seen[0].subject.as_deref(),
        Some("Secret subject"),
        "control: logged in"
    );
    let seen = list(anonymous.call(&out).await);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].subject, None, "no operator, no subject");
    match anonymous.call(&Command::Snapshot).await {
        Ok(Reply::Snapshot { outbound, .. }) => assert_eq!(outbound[0].subject, None),
        other => panic!("{other:?}"),
    }
    let asked = anonymous
        .call(&Command::Subjects {
            ids: vec![released.id],
        })
        .await;
    assert!(matches!(asked, Err(ApiError::NotLoggedIn)), "{asked:?}");
    // The watch saw the row, without its subject.
    loop {
        match next(&mut watch).await.expect("a line") {
            Streamed::Event(hotline::station::Event::MessageChanged { row })
                if row.id == released.id =>
            {
                assert_eq!(row.subject, None, "{row:?}");
                break;
            }
            _ => {}
        }
    }
    match client
        .call(&Command::Subjects {
            ids: vec![released.id],
        })
        .await
    {
        Ok(Reply::Subjects { subjects }) => {
            assert_eq!(subjects, vec![(released.id, "Secret subject".to_string())]);
        }
        other => panic!("{other:?}"),
    }
    ws.shutdown().await;
}

/// Runs `hotline` against `site` with the operator's passphrase file.
fn hotline_at(site: &support::Site, pass: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"))
        .arg("--config")
        .arg(&site.config_path)
        .args(args)
        .env_remove("HOTLINE_CONFIG")
        .env("HOTLINE_PASSPHRASE_FILE", pass)
        .output()
        .expect("hotline runs");
    assert!(
        out.status.success(),
        "hotline {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `hotline ARGS` against `site` with its standard output closed from the
/// start, as under `| head -0`.
fn closed_pipe(site: &support::Site, args: &[&str]) -> std::process::Child {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"))
        .arg("--config")
        .arg(&site.config_path)
        .args(args)
        .env_remove("HOTLINE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hotline runs");
    drop(child.stdout.take());
    child
}

/// The command ended by itself, with success and without a panic.
fn quietly_ended(what: &str, child: std::process::Child) {
    let out = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(out.status.success(), "{what}: {:?}: {stderr}", out.status);
}

/// What every log file in a site's data directory holds.
fn logs_of(site: &support::Site) -> (Vec<String>, String) {
    let dir = site.config().station.data_dir.join("logs");
    let mut names = Vec::new();
    let mut text = String::new();
    for entry in std::fs::read_dir(&dir).expect("logs dir") {
        let path = entry.expect("entry").path();
        names.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
        text.push_str(&std::fs::read_to_string(&path).expect("log file"));
    }
    names.sort();
    (names, text)
}

/// The README's promises for the command line and the logs, against two
/// real `hotline serve` processes: `hotline watch` streams the arrival and
/// the acknowledgement, `hotline ack MOSCOW/1` acknowledges and the
/// acknowledgement reaches MOSCOW's `outbox`, `hotline link-test` answers;
/// every listing whose reader has gone ends quietly (`watch` at the next
/// event);
/// the logs keep 14 files and never hold the message's text, though they
/// do hold the station's own lines (the positive control).
#[test]
fn watch_ack_and_link_test_on_the_command_line_and_logs_without_message_text() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    let logs = w.config().station.data_dir.join("logs");
    hotline::fsutil::create_private_dir(&logs).expect("logs dir");
    for day in 1..=20 {
        let old = logs.join(format!("hotline.2026-01-{day:02}.log"));
        hotline::fsutil::create_private(&old, b"an old day\n").expect("old log");
        // The appender prunes by creation time, which the kernel keeps on
        // a coarse clock: apart, so that the order is the days' order.
        std::thread::sleep(Duration::from_millis(15));
    }
    let moscow = Serve::start(&m);
    let washington = Serve::start(&w);
    let pass = root.path().join("pass");
    hotline::fsutil::create_private(&pass, PASSPHRASE.as_bytes()).expect("passphrase file");

    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("hotline"))
        .arg("--config")
        .arg(&w.config_path)
        .arg("watch")
        .env_remove("HOTLINE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hotline watch starts");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_line = |what: &str, want: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!("no {what} from hotline watch ({e}); it printed {seen:#?}")
            });
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("hotline watch printed {line:?}: {e}"));
            seen.push(line);
            if want(&value) {
                return value;
            }
        }
    };
    // A watcher whose reader has gone ends at the next event, quietly.
    let closed_watch = closed_pipe(&w, &["watch"]);
    let (subject, text) = ("SUBJECT-7Q-NEVER-LOGGED", "BODY-9Z-NEVER-LOGGED");
    hotline_at(
        &m,
        &pass,
        &[
            "send",
            "--to",
            "WASHINGTON",
            "--template",
            "general",
            "--operator",
            "op",
            "--field",
            &format!("subject={subject}"),
            "--field",
            &format!("text={text}"),
        ],
    );
    let received = wait_line("the arrival", &|v| v["event"] == "received");
    let id = received["id"].as_str().expect("id").to_string();
    assert_eq!(received["from"], "MOSCOW");

    let acked = hotline_at(&w, &pass, &["ack", "MOSCOW/1", "--operator", "op"]);
    assert_eq!(
        acked.trim_end(),
        format!("acknowledged ROUTINE MOSCOW/1 \"{subject}\" ({id}) as op")
    );
    let event = wait_line("the acknowledged row", &|v| {
        v["event"] == "message-changed" && v["row"]["ack_by"] == "op"
    });
    assert_eq!(event["row"]["id"], id.as_str());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let outbox = hotline_at(&m, &pass, &["outbox"]);
        if outbox
            .lines()
            .any(|l| l.contains("ACKNOWLEDGED") && l.contains("op"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the acknowledgement never reached MOSCOW:\n{outbox}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    quietly_ended("watch", closed_watch);
    // Every listing, its reader gone at once (`hotline inbox | head -0`).
    for args in [
        &["inbox"][..],
        &["outbox"],
        &["status"],
        &["status", "--json"],
        &["audit", "verify"],
        &["audit", "heads"],
        &["card"],
        &["check"],
        &["tabletop", "--list"],
        &["--help"],
    ] {
        quietly_ended(&args.join(" "), closed_pipe(&w, args));
    }
    let tested = hotline_at(&w, &pass, &["link-test", "MOSCOW"]);
    assert!(
        tested.starts_with("link test with MOSCOW: ok, round trip "),
        "{tested}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    washington.stop();
    moscow.stop();

    let (names, w_logs) = logs_of(&w);
    let (_, m_logs) = logs_of(&m);
    assert_eq!(names.len(), hotline::logging::KEPT_LOG_FILES, "{names:?}");
    assert!(
        !names.iter().any(|n| n.as_str() < "hotline.2026-01-08.log"),
        "the oldest days go first: {names:?}"
    );
    let today = format!(
        "hotline.{}.log",
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    );
    assert!(names.contains(&today), "{names:?}");
    for logs in [&w_logs, &m_logs] {
        assert!(logs.contains("station started"), "{logs}");
        assert!(
            !logs.contains(subject) && !logs.contains(text),
            "message text in the logs:\n{logs}"
        );
    }
}

/// Five wrong passphrases lock the operator out, so that even the right
/// one is refused, and say for how long; another operator still logs in.
/// Every attempt is audited. CONTROL: four wrong ones and then the right
/// one log in (the count starts again after a success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_is_locked_out_after_repeated_failures() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _) = pair(root.path(), FAST_LINK);
    let ws = w.start().await;
    let attempt = |operator: &str, passphrase: &str| {
        let (ws, operator, passphrase) = (ws.clone(), operator.to_string(), passphrase.to_string());
        async move {
            ws.handle(
                &Session::new(Door::Console),
                Command::Login {
                    operator,
                    passphrase: Passphrase::new(&passphrase),
                },
            )
            .await
        }
    };
    let limit = w.config().console.lockout_after;
    assert_eq!(limit, 5);
    for _ in 1..limit {
        assert_eq!(attempt("op", "wrong").await.err(), Some(ApiError::Denied));
    }
    attempt("op", PASSPHRASE)
        .await
        .expect("CONTROL: below the limit");
    for _ in 0..limit {
        assert_eq!(attempt("op", "wrong").await.err(), Some(ApiError::Denied));
    }
    match attempt("op", PASSPHRASE).await {
        Err(ApiError::LockedOut { name, seconds }) => {
            assert_eq!(name, "op");
            assert!((1..=300).contains(&seconds), "{seconds}");
        }
        other => panic!("the right passphrase got through a lockout: {other:?}"),
    }
    attempt("op2", PASSPHRASE).await.expect("another operator");
    let logins = audit_actions(&ws, "login");
    let count = |outcome: &str| {
        logins
            .iter()
            .filter(|d| d.ends_with(&format!("outcome={outcome}")))
            .count()
    };
    assert_eq!(
        (count("denied"), count("locked-out"), count("ok")),
        (2 * limit as usize - 1, 1, 2),
        "{logins:?}"
    );
    // A failure is recorded by the station, naming what was typed; a
    // success in the operator's own name.
    let actors: Vec<(String, String)> = ws
        .journal()
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT actor, detail FROM audit WHERE action = 'login' ORDER BY seq")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .expect("audit read");
    for (actor, detail) in &actors {
        if detail.ends_with("outcome=ok") {
            assert!(actor == "op" || actor == "op2", "{actor}: {detail}");
        } else {
            assert_eq!(actor, "station", "{detail}");
            assert!(detail.starts_with("name=\"op\" "), "{detail}");
        }
    }

    // Twelve wrong attempts at once through the socket, each on its own
    // connection: only the limit of them is ever checked.
    let socket = serve(&ws).await;
    let mut clients = Vec::new();
    for _ in 0..12 {
        clients.push(Client::connect(&socket).await.expect("connect"));
    }
    let attempts = clients.into_iter().map(|mut client| {
        tokio::spawn(async move {
            client
                .call(&Command::Login {
                    operator: "op2".into(),
                    passphrase: Passphrase::new("wrong"),
                })
                .await
        })
    });
    let mut answers = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        answers.push(attempt.await.expect("task").err());
    }
    let denied = answers
        .iter()
        .filter(|a| **a == Some(ApiError::Denied))
        .count();
    let locked = answers
        .iter()
        .filter(|a| matches!(a, Some(ApiError::LockedOut { .. })))
        .count();
    assert_eq!(
        (denied, locked),
        (limit as usize, 12 - limit as usize),
        "{answers:?}"
    );
    ws.shutdown().await;
}

/// Debian's Python, which every user may run (not a per-user install).
const PYTHON: &str = "/usr/bin/python3";

/// What a client (run as `uid`, through setpriv, when given) hears first
/// from the socket at `socket` after a hello.
fn first_answer(socket: &std::path::Path, uid: Option<u32>) -> String {
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(socket.AF_UNIX)\n\
         s.connect(sys.argv[1])\n\
         try: s.sendall(b'{{\"version\": {API_VERSION}}}\\n')\n\
         except OSError: pass\n\
         print(s.makefile().readline().strip())\n"
    );
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = std::process::Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
                PYTHON,
            ]);
            c
        }
        None => std::process::Command::new(PYTHON),
    };
    let out = cmd
        .args(["-c", &script])
        .arg(socket)
        .output()
        .expect("python3 runs (and setpriv: install util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The control socket is a door: owner-only from the moment it exists, in
/// a data directory tightened to 700 even if it was left open; content
/// without a log-in is refused; and a client of another user is refused
/// by its peer credentials even when the file's mode would let it in. The
/// control: the same client, as the station's own user, is welcomed.
#[test]
fn the_socket_is_owner_only_and_serves_only_its_own_user() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("tempdir");
    let (w, _) = pair(root.path(), FAST_LINK);
    let data = w.config().station.data_dir;
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let serve = Serve::start(&w);
    let socket = w.config().control.socket;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600, "the socket as soon as it answers");
    assert_eq!(mode(&data), 0o700, "the open data directory was tightened");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = Client::connect(&socket).await.expect("connect");
        let handed = || {
            hotline::station::api::Passed::File(
                tempfile::tempfile_in(&data).expect("a file to hand over"),
            )
        };
        for command in [
            Command::Open {
                id: hotline::domain::MessageId::new().to_string(),
            },
            Command::ExportAttachments {
                id: hotline::domain::MessageId::new().to_string(),
                into: vec![handed()],
            },
            Command::OpenDraft { draft: handed() },
        ] {
            let what = format!("{command:?}");
            assert_eq!(
                client.send(command).await.err(),
                Some(ApiError::NotLoggedIn),
                "{what}"
            );
        }
    });

    let welcome = first_answer(&socket, None);
    assert!(welcome.contains("welcome"), "the control: {welcome}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Loosened by hand, so that another user can reach the socket at
        // all: what stops it then is the peer-credential check.
        for dir in [root.path(), w.dir.as_path(), data.as_path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        }
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let refused = first_answer(&socket, Some(65534));
        assert!(
            refused.contains("uid 65534 is refused") && !refused.contains("welcome"),
            "{refused}"
        );
    }
    serve.stop();
}

/// A `hotline serve` whose peer declares serial 2^40 (its journal edited to
/// say it released that many, as the reproduction did) still
/// reports the gap as one bounded range and stops on SIGTERM.
#[test]
fn a_station_whose_peer_declares_serial_two_to_the_forty_stops_on_sigterm() {
    let root = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(root.path(), FAST_LINK);
    {
        let journal =
            hotline::store::Journal::open(&w.config().journal_path, None).expect("journal");
        journal
            .write(|tx| {
                tx.execute(
                    "INSERT INTO serials (peer, last_released) VALUES ('MOSCOW', ?1)",
                    [1i64 << 40],
                )?;
                Ok(())
            })
            .wait()
            .expect("edited");
    }
    let mut moscow = Serve::start(&m);
    let socket = m.config().control.socket;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ws = rt.block_on(w.start());
    let gap = rt.block_on(async {
        let mut client = Client::connect(&socket).await.expect("connect");
        for _ in 0..300 {
            if let Ok(Reply::Alarms { alarms }) = client.call(&Command::Alarms).await
                && let Some(a) = alarms
                    .iter()
                    .find(|a| a.kind == hotline::station::AlarmKind::Gap)
            {
                return a.text.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no gap alarm in 30 s");
    });
    // MOSCOW works in Russian: its alarms are in Russian.
    let expected = hotline::lang::format(
        hotline::domain::Language::RU,
        "alarm.gap_beyond",
        &[
            ("serials", &"1–4096"),
            ("peer", &"WASHINGTON"),
            ("declared", &1099511627776u64),
            ("tracked", &4096),
        ],
    );
    assert_eq!(gap, expected);
    moscow.signal(libc::SIGTERM);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = moscow.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the station did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    rt.block_on(ws.shutdown());
}

/// Gives a site the three markings of the hotline's policy, `default` as
/// its default, and (if given) a ceiling for MOSCOW.
fn label_policy(site: &support::Site, default: &str, moscow_max: Option<&str>) {
    let path = &site.config_path;
    let mut text = std::fs::read_to_string(path).expect("config");
    if let Some(max) = moscow_max {
        text = text.replace(
            "name = \"MOSCOW\"\n",
            &format!("name = \"MOSCOW\"\nmax_label = \"{max}\"\n"),
        );
    }
    text.push_str(&format!(
        "\n[labels]\nmarkings = [\"UNCLASSIFIED\", \"CONFIDENTIAL – HOTLINE\", \"EYES ONLY\"]\ndefault = \"{default}\"\n"
    ));
    hotline::fsutil::replace_atomic(path, text.as_bytes(), 0o600).expect("config");
}

async fn release_labelled(
    station: &Station,
    session: &Session,
    to: &str,
    label: Option<&str>,
    references: Vec<hotline::domain::MessageId>,
) -> Result<hotline::store::MessageRow, ApiError> {
    let mut draft = general("marked");
    draft.label = label.map(Into::into);
    draft.references = references;
    door::try_release(station, session, to, draft, Vec::new()).await
}

/// Every message carries a marking, travels with it, is refused above the
/// peer's ceiling or under a marking the policy does not know, and a reply
/// never carries a lower marking than what it answers (with none chosen
/// it takes the higher one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markings_are_checked_at_release_and_never_lowered_on_reply() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    label_policy(&w, "CONFIDENTIAL – HOTLINE", Some("CONFIDENTIAL – HOTLINE"));
    label_policy(&m, "UNCLASSIFIED", None);
    let (ws, ms) = (w.start().await, m.start().await);
    let (wsess, msess) = (door::login(&ws).await, door::login(&ms).await);

    let sent = release_labelled(&ws, &wsess, "MOSCOW", None, Vec::new())
        .await
        .expect("released under the default");
    assert_eq!(sent.label.as_deref(), Some("CONFIDENTIAL – HOTLINE"));
    match release_labelled(&ws, &wsess, "MOSCOW", Some("EYES ONLY"), Vec::new()).await {
        Err(ApiError::Refused { detail }) => {
            assert!(
                detail.contains("MOSCOW may receive messages marked up to"),
                "{detail}"
            )
        }
        other => panic!("released above MOSCOW's ceiling: {other:?}"),
    }
    match release_labelled(&ws, &wsess, "MOSCOW", Some("SECRET"), Vec::new()).await {
        Err(ApiError::Refused { detail }) => assert!(detail.contains("\"EYES ONLY\""), "{detail}"),
        other => panic!("released under an unknown marking: {other:?}"),
    }
    // CONTROL: a lower marking than the default is the writer's choice.
    let low = release_labelled(&ws, &wsess, "MOSCOW", Some("UNCLASSIFIED"), Vec::new())
        .await
        .expect("a lower marking, chosen");
    assert_eq!(low.label.as_deref(), Some("UNCLASSIFIED"));

    let arrived = door::rows_until(
        &ms,
        Direction::In,
        Duration::from_secs(20),
        "both messages at MOSCOW",
        |rows| rows.len() == 2,
    )
    .await;
    let at_moscow = arrived.iter().find(|r| r.id == sent.id).expect("arrived");
    assert_eq!(at_moscow.label.as_deref(), Some("CONFIDENTIAL – HOTLINE"));

    // MOSCOW's default is UNCLASSIFIED: a reply with none chosen is raised
    // to the marking it answers; one chosen lower is refused.
    match release_labelled(
        &ms,
        &msess,
        "WASHINGTON",
        Some("UNCLASSIFIED"),
        vec![sent.id],
    )
    .await
    {
        Err(ApiError::Refused { detail }) => assert!(detail.contains("lower marking"), "{detail}"),
        other => panic!("a reply went out under a lower marking: {other:?}"),
    }
    let reply = release_labelled(&ms, &msess, "WASHINGTON", None, vec![sent.id])
        .await
        .expect("a reply");
    assert_eq!(reply.label.as_deref(), Some("CONFIDENTIAL – HOTLINE"));
    // CONTROL: without the reference, MOSCOW's default applies.
    let plain = release_labelled(&ms, &msess, "WASHINGTON", None, Vec::new())
        .await
        .expect("a plain message");
    assert_eq!(plain.label.as_deref(), Some("UNCLASSIFIED"));
    ws.shutdown().await;
    ms.shutdown().await;
}

async fn amend(
    station: &Station,
    session: &Session,
    template: &str,
    field: (&str, &str),
    refer_to: &[&str],
) -> Result<hotline::store::MessageRow, ApiError> {
    let mut draft = hotline::compose::Draft {
        template_id: template.into(),
        ..Default::default()
    };
    draft.fields.insert(field.0.into(), field.1.into());
    if template == "correction" {
        draft
            .fields
            .insert("text".into(), "the corrected text".into());
    }
    let release = Release {
        to: "MOSCOW".into(),
        draft,
        attachments: Vec::new(),
        second_operator: None,
        refer_to: refer_to.iter().map(ToString::to_string).collect(),
    };
    match station
        .handle(session, Command::Release(Box::new(release)))
        .await?
    {
        Reply::Released { row } => Ok(*row),
        other => panic!("unexpected reply: {other:?}"),
    }
}

/// A correction and then a withdrawal of one of our messages, named by its
/// handle, travel over the link; both journals show the earlier message
/// CORRECTED, then WITHDRAWN, by the newer one's handle. A station cannot
/// amend a message it received, and an amendment names exactly one
/// message. Control: a message nothing amends shows nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_and_withdrawals_mark_the_earlier_message_on_both_sides() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let (wsess, msess) = (door::login(&ws).await, door::login(&ms).await);
    let first = door::release(&ws, &wsess, "MOSCOW", general("first")).await;
    let other = door::release(&ws, &wsess, "MOSCOW", general("untouched")).await;
    let handle = format!("to:MOSCOW/{}", first.serial);

    let fix = amend(
        &ws,
        &wsess,
        "correction",
        ("subject", "the date"),
        &[&handle],
    )
    .await
    .expect("a correction");
    let at = |rows: &[hotline::store::MessageRow], id| {
        rows.iter()
            .find(|r| r.id == id)
            .and_then(|r| hotline::console::amended(r, hotline::domain::Language::EN))
    };
    let sent = door::list(&ws, Direction::Out).await;
    assert_eq!(
        at(&sent, first.id).as_deref(),
        Some(format!("CORRECTED by to:MOSCOW/{}", fix.serial).as_str())
    );
    let wanted = format!("CORRECTED by WASHINGTON/{}", fix.serial);
    door::rows_until(
        &ms,
        Direction::In,
        Duration::from_secs(20),
        "the correction shown at MOSCOW",
        |rows| at(rows, first.id).as_deref() == Some(wanted.as_str()),
    )
    .await;

    let withdrawn = amend(
        &ws,
        &wsess,
        "cancellation",
        ("reason", "sent in error"),
        &[&handle],
    )
    .await
    .expect("a withdrawal");
    let wanted = format!("WITHDRAWN by WASHINGTON/{}", withdrawn.serial);
    let rows = door::rows_until(
        &ms,
        Direction::In,
        Duration::from_secs(20),
        "the withdrawal shown at MOSCOW",
        |rows| at(rows, first.id).as_deref() == Some(wanted.as_str()),
    )
    .await;
    assert_eq!(at(&rows, other.id), None, "control: nothing amends it");
    let sent = door::list(&ws, Direction::Out).await;
    assert!(at(&sent, first.id).is_some_and(|a| a.starts_with("WITHDRAWN")));

    // MOSCOW cannot withdraw WASHINGTON's message, nor amend without
    // naming exactly one message.
    let theirs = format!("WASHINGTON/{}", first.serial);
    let mut draft = hotline::compose::Draft {
        template_id: "cancellation".into(),
        ..Default::default()
    };
    draft.fields.insert("reason".into(), "not ours".into());
    let release = Release {
        to: "WASHINGTON".into(),
        draft: draft.clone(),
        attachments: Vec::new(),
        second_operator: None,
        refer_to: vec![theirs],
    };
    match ms.handle(&msess, Command::Release(Box::new(release))).await {
        Err(ApiError::Refused { detail }) => assert!(detail.contains("of ours only"), "{detail}"),
        other => panic!("MOSCOW withdrew WASHINGTON's message: {other:?}"),
    }
    match door::try_release(&ms, &msess, "WASHINGTON", draft, Vec::new()).await {
        Err(ApiError::Draft { detail }) => assert!(detail.contains("exactly one"), "{detail}"),
        other => panic!("an amendment without a reference: {other:?}"),
    }
    ws.shutdown().await;
    ms.shutdown().await;
}

fn launch_notice(hours_ahead: i64) -> hotline::compose::Draft {
    let launch = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours_ahead);
    let mut draft = hotline::compose::Draft {
        template_id: "blm-notification".into(),
        ..Default::default()
    };
    for (k, v) in [
        ("planned_launch", launch.to_string()),
        ("launch_kind", "slbm".into()),
        ("launch_area", "water Barents Sea".into()),
        ("impact_area", "circle 65N 175E radius 50 km".into()),
    ] {
        draft.fields.insert(k.into(), v);
    }
    draft
}

/// A launch notification that arrives less than 24 hours before the launch
/// raises a short-notice alarm at the receiver, judged by its own time of
/// receipt. Control: one 48 hours ahead, received first, raises none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_launch_notification_raises_short_notice_at_the_receiver() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let (ws, ms) = (w.start().await, m.start().await);
    let session = door::login(&ws).await;
    let mut events = ms.subscribe();
    let early = door::release(&ws, &session, "MOSCOW", launch_notice(48)).await;
    support::wait_event(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(e, hotline::station::Event::Received { id, .. } if *id == early.id),
    )
    .await;
    let late = door::release(&ws, &session, "MOSCOW", launch_notice(2)).await;
    let raised = support::wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e, hotline::station::Event::Alarm(a) if a.kind == hotline::station::AlarmKind::ShortNotice)
    })
    .await;
    let hotline::station::Event::Alarm(alarm) = raised else {
        unreachable!()
    };
    assert_eq!(alarm.id, Some(late.id));
    // MOSCOW works in Russian: its alarms are in Russian.
    let words = hotline::lang::format(
        hotline::domain::Language::RU,
        "alarm.short_notice",
        &[
            ("peer", &"WASHINGTON"),
            ("serial", &late.serial),
            ("why", &""),
        ],
    );
    assert!(alarm.text.starts_with(words.trim_end()), "{}", alarm.text);
    let short: Vec<_> = ms
        .alarms()
        .into_iter()
        .filter(|a| a.kind == hotline::station::AlarmKind::ShortNotice)
        .collect();
    assert_eq!(short.len(), 1, "only the late one: {short:?}");
    ws.shutdown().await;
    ms.shutdown().await;
}

/// The console of `station`, working in `language`, on duty with `inbound`.
fn console_in(
    station: &Station,
    peer: &str,
    language: &str,
    inbound: Vec<hotline::store::MessageRow>,
) -> hotline::console::App {
    let mut setup = door::console_setup(&station.config().station.name.to_string());
    setup.language = language.parse().expect("tag");
    setup.peers = vec![(peer.to_string(), "UTC".to_string())];
    let mut app = hotline::console::App::new(setup, jiff::Timestamp::now());
    hotline::console::update(
        &mut app,
        Msg::Refreshed {
            inbound,
            outbound: Vec::new(),
            status: Box::new(station.status()),
            alarms: Vec::new(),
        },
    );
    hotline::console::update(
        &mut app,
        Msg::LoginChecked {
            name: "op".into(),
            result: Ok(OperatorName::new("op").expect("name")),
        },
    );
    key(&mut app, KeyCode::Enter);
    app
}

fn key(app: &mut hotline::console::App, code: KeyCode) -> Vec<hotline::console::Effect> {
    hotline::console::update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn screen(app: &hotline::console::App) -> String {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).expect("terminal");
    terminal
        .draw(|frame| hotline::ui::draw(frame, app))
        .expect("draws");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        // A wide character fills two cells: the second is not text.
        let mut x = 0;
        while x < buffer.area.width {
            let symbol = buffer[(x, y)].symbol();
            out.push_str(symbol);
            x += u16::try_from(hotline::ui::width_of(symbol).max(1)).unwrap_or(1);
        }
        out.push('\n');
    }
    out
}

/// The start of a catalogue text (before its first placeholder), as a
/// screen shows it before wrapping.
fn words(lang: &str, key: &str) -> String {
    let text = hotline::lang::text(lang.parse().expect("tag"), key);
    text.split('{')
        .next()
        .unwrap_or_default()
        .chars()
        .take(8)
        .collect()
}

/// A French station and a Chinese station exchange messages over the link:
/// each console works in its own language (its own words, the form's title
/// and body rendered from the signed fields), and shows the sender's
/// original, in the sender's language, one key away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_french_and_a_chinese_station_each_read_in_their_own_language() {
    let root = tempfile::tempdir().expect("tempdir");
    let (pa, ba) = (support::free_addr(), support::free_addr());
    let p0 = support::Site::create(root.path(), "PARIS", "fr", pa, &[], FAST_LINK);
    let b0 = support::Site::create(root.path(), "BEIJING", "zh", ba, &[], FAST_LINK);
    let paris = support::Site::create(
        root.path(),
        "PARIS",
        "fr",
        pa,
        &[b0.entry(Some(ba), None)],
        FAST_LINK,
    );
    let beijing = support::Site::create(
        root.path(),
        "BEIJING",
        "zh",
        ba,
        &[p0.entry(Some(pa), None)],
        FAST_LINK,
    );
    let (ps, bs) = (paris.start().await, beijing.start().await);
    let general_title = |lang: &str| {
        hotline::templates::Catalog::builtin()
            .latest("general")
            .expect("general")
            .title
            .get(lang.parse().expect("tag"))
            .to_string()
    };

    for (from, to, from_lang, to_lang, subject) in [
        (&ps, &bs, "fr", "zh", "Essai de la liaison"),
        (&bs, &ps, "zh", "fr", "线路测试"),
    ] {
        let (from_name, to_name) = (
            from.config().station.name.to_string(),
            to.config().station.name.to_string(),
        );
        let sender = door::login(from).await;
        let sent = door::release(from, &sender, &to_name, general(subject)).await;
        let rows = door::rows_until(
            to,
            Direction::In,
            Duration::from_secs(20),
            "the message",
            |rows| rows.iter().any(|r| r.id == sent.id),
        )
        .await;
        let reader = door::login(to).await;
        let message = door::open(to, &reader, sent.id).await;
        assert_eq!(
            message.original.language, from_lang,
            "the original is in the sender's language"
        );
        assert_eq!(
            message.text_language.map(|l| l.to_string()).as_deref(),
            Some(from_lang)
        );

        let mut app = console_in(to, &from_name, to_lang, rows);
        app.selected_in = app
            .inbound
            .iter()
            .position(|r| r.id == sent.id)
            .expect("row");
        let shown = screen(&app);
        assert!(
            shown.contains(&words(to_lang, "lists.inbound_title")) || shown.contains(subject),
            "{shown}"
        );
        let effects = key(&mut app, KeyCode::Enter);
        assert!(
            matches!(effects.as_slice(), [hotline::console::Effect::OpenMessage(id)] if *id == sent.id),
            "{effects:?}"
        );
        hotline::console::update(
            &mut app,
            Msg::MessageOpened {
                id: sent.id,
                result: Ok(Box::new(message)),
            },
        );
        let rendered = screen(&app);
        // Wide characters leave an empty cell after them: compare without.
        let flat = |s: &str| s.replace(' ', "");
        for expected in [
            general_title(to_lang),
            words(to_lang, "reading.rendered"),
            subject.to_string(),
        ] {
            assert!(
                flat(&rendered).contains(&flat(&expected)),
                "{to_lang}: {expected:?} not shown:\n{rendered}"
            );
        }
        // Control: the sender's title is not on the reader's rendering.
        assert!(
            !flat(&rendered).contains(&flat(&general_title(from_lang))),
            "{rendered}"
        );

        key(&mut app, KeyCode::Char('o'));
        let original = screen(&app);
        for expected in [general_title(from_lang), words(to_lang, "reading.original")] {
            assert!(
                flat(&original).contains(&flat(&expected)),
                "{expected:?} not in the original view:\n{original}"
            );
        }
    }
    ps.shutdown().await;
    bs.shutdown().await;
}
