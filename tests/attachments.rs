//! Attachments between two real stations on loopback: sealed, streamed,
//! verified against the signed size and SHA-256, receipted one by one,
//! refused when oversize or tampered with, exported under safe names,
//! overtaken by FLASH, and resumed after an interruption.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hotline::domain::{MessageId, Precedence};
use hotline::exports::Pending;
use hotline::station::{Event, Station};
use hotline::store::{AttachmentState, Direction};
use sha2::{Digest, Sha256};
use support::*;

/// A file of `len` random bytes; returns its SHA-256.
fn random_file(path: &Path, len: usize) -> String {
    let mut f = std::fs::File::create(path).expect("create");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        getrandom::fill(&mut buf[..n]).expect("random");
        hasher.update(&buf[..n]);
        f.write_all(&buf[..n]).expect("write");
        left -= n;
    }
    hex::encode(hasher.finalize())
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

fn flash(subject: &str) -> hotline::compose::Draft {
    let mut d = general(subject);
    d.precedence = Some(Precedence::Flash);
    d
}

fn routine(subject: &str) -> hotline::compose::Draft {
    let mut d = general(subject);
    d.precedence = Some(Precedence::Routine);
    d
}

fn stored(e: &Event, id: MessageId, index: u32, direction: Direction) -> bool {
    matches!(e, Event::AttachmentStored { id: i, index: x, direction: d, .. }
        if *i == id && *x == index && *d == direction)
}

fn data_dir(s: &Station) -> PathBuf {
    s.config().station.data_dir.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_checks_size_and_hash_and_receipts_each_attachment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let mut mev = ms.subscribe();

    let big = tmp.path().join("imagery.bin");
    let big_hash = random_file(&big, 3 << 20);
    // A hostile-looking but legal file name: an escape sequence in it.
    let odd = tmp.path().join("note\u{1b}[31m.txt");
    std::fs::write(&odd, b"see the imagery").expect("write");

    let wsession = door::login(&ws).await;
    let msession = door::login(&ms).await;
    let released = door::try_release(
        &ws,
        &wsession,
        "MOSCOW",
        general("imagery"),
        vec![big.clone(), odd],
    )
    .await
    .expect("release");
    let id = released.id;
    assert_eq!(released.attachments, 2);
    let message = door::open(&ws, &wsession, id).await;
    assert_eq!(message.attachments.len(), 2);
    assert_eq!(message.attachments[0].name, "imagery.bin");
    assert_eq!(message.attachments[0].size, 3 << 20);
    assert_eq!(message.attachments[0].sha256, big_hash);

    // The message's own receipt first; each attachment's receipt after it.
    wait_event(
        &mut wev,
        Duration::from_secs(20),
        |e| matches!(e, Event::Receipt { id: i, .. } if *i == id),
    )
    .await;
    // Two uploads run at once, so either may finish first.
    let mut seen = [false; 2];
    wait_event(&mut wev, Duration::from_secs(30), |e| {
        for (index, s) in seen.iter_mut().enumerate() {
            *s |= stored(e, id, index as u32, Direction::Out);
        }
        seen == [true, true]
    })
    .await;
    let sent = ws.attachments(&id, Direction::Out).expect("rows");
    assert!(sent.iter().all(|a| a.state == AttachmentState::Receipted));
    let got = ms.attachments(&id, Direction::In).expect("rows");
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|a| a.state == AttachmentState::Receipted));
    assert_eq!(got[0].sha256, big_hash);
    // Stored sealed: the file at the receiver is age ciphertext, not the content.
    let sealed = std::fs::read(data_dir(&ms).join(&got[0].sealed_path)).expect("sealed file");
    assert!(sealed.starts_with(b"age-encryption.org/v1"));
    assert_ne!(hex::encode(Sha256::digest(&sealed)), big_hash);

    let door::Exported {
        dir: out,
        written,
        skipped,
    } = door::export(&ms, &msession, id).await.expect("export");
    assert_eq!(out, data_dir(&ms).join("exports").join(id.to_string()));
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(written.len(), 2);
    assert_eq!(sha256_of(&written[0]), big_hash);
    assert_eq!(written[1], out.join("note_[31m.txt"));
    assert_eq!(
        std::fs::read(&written[1]).expect("read"),
        b"see the imagery"
    );

    let received = std::iter::from_fn(|| mev.try_recv().ok())
        .filter(|e| matches!(e, Event::Received { id: i, .. } if *i == id))
        .count();
    assert_eq!(received, 1, "the message is shown once");
    ws.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_attachment_is_refused_from_its_offer_and_nothing_is_stored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let mut cfg = std::fs::OpenOptions::new()
        .append(true)
        .open(&m.config_path)
        .expect("config");
    writeln!(cfg, "\n[attachments]\nmax_size = \"1 MiB\"").expect("append");
    drop(cfg);
    let ws = w.start().await;
    let ms = m.start().await;
    assert_eq!(ms.config().attachments.max_size, 1 << 20);
    let mut wev = ws.subscribe();

    let file = tmp.path().join("big.bin");
    random_file(&file, 2 << 20);
    let session = door::login(&ws).await;
    let released = door::try_release(&ws, &session, "MOSCOW", general("too big"), vec![file])
        .await
        .expect("release");
    let id = released.id;
    let e = wait_event(
        &mut wev,
        Duration::from_secs(30),
        |e| matches!(e, Event::AttachmentRefused { id: i, .. } if *i == id),
    )
    .await;
    assert!(
        matches!(&e, Event::AttachmentRefused { reason, .. } if reason.starts_with("oversize")),
        "{e:?}"
    );
    // The message itself was stored and receipted.
    assert_eq!(door::list(&ms, Direction::In).await.len(), 1);
    let row = &ms.attachments(&id, Direction::In).expect("rows")[0];
    assert_eq!(row.state, AttachmentState::Refused);
    let dir = data_dir(&ms)
        .join("attachments")
        .join("in")
        .join(id.to_string());
    let files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "nothing of it is stored: {files:?}");
    assert_eq!(
        ws.attachments(&id, Direction::Out).expect("rows")[0].state,
        AttachmentState::Refused
    );
    ws.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_chunk_is_refused_and_an_untouched_one_is_receipted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    // The receiver is not up yet, so the sealed files can be changed
    // before they are sent.
    let ws = w.start().await;
    let mut wev = ws.subscribe();
    let a = tmp.path().join("a.bin");
    let b = tmp.path().join("b.bin");
    random_file(&a, 1 << 20);
    random_file(&b, 1 << 20);
    let session = door::login(&ws).await;
    let released = door::try_release(&ws, &session, "MOSCOW", general("tamper"), vec![a, b])
        .await
        .expect("release");
    let id = released.id;
    let rows = ws.attachments(&id, Direction::Out).expect("rows");
    let victim = data_dir(&ws).join(&rows[0].sealed_path);
    let mut bytes = std::fs::read(&victim).expect("sealed");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, &bytes).expect("tamper");

    let ms = m.start().await;
    // The tampered one is refused; the control, the untouched attachment of
    // the same message, arrives (in either order: both upload at once).
    let (mut refused, mut control) = (None, false);
    wait_event(&mut wev, Duration::from_secs(30), |e| {
        if let Event::AttachmentRefused {
            id: i,
            index: 0,
            reason,
            ..
        } = e
            && *i == id
        {
            refused = Some(reason.clone());
        }
        control |= stored(e, id, 1, Direction::Out);
        refused.is_some() && control
    })
    .await;
    let reason = refused.unwrap_or_default();
    assert!(reason.starts_with("malformed"), "{reason}");
    let got = ms.attachments(&id, Direction::In).expect("rows");
    assert_eq!(got[0].state, AttachmentState::Refused);
    assert_eq!(got[1].state, AttachmentState::Receipted);
    assert!(!data_dir(&ms).join(&got[0].sealed_path).exists());
    ws.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_names_are_neutralised_on_export() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let file = tmp.path().join("passwd");
    std::fs::write(&file, b"root:x:0:0").expect("write");
    let session = door::login(&ws).await;
    let released = door::try_release(&ws, &session, "MOSCOW", general("names"), vec![file])
        .await
        .expect("release");
    let id = released.id;
    wait_event(&mut wev, Duration::from_secs(30), |e| {
        stored(e, id, 0, Direction::Out)
    })
    .await;
    // A peer's name is whatever it signed: give the row a hostile one.
    let mut rows = ms.attachments(&id, Direction::In).expect("rows");
    rows[0].name = "../../etc/passwd".into();
    let out = tmp.path().join("deep").join("exports");
    let keys = m.keys();
    for _ in 0..2 {
        let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
        let (pending, files) = Pending::create(&out, &names).expect("files");
        let (written, _) = hotline::station::attachments::export_into(
            &data_dir(&ms),
            &keys.identities(),
            &rows,
            files,
        )
        .expect("export");
        pending.finish(&written).expect("named");
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["passwd", "passwd (1)"],
        "inside DIR, never overwritten"
    );
    assert!(!tmp.path().join("etc").exists());
    assert_eq!(
        std::fs::read(out.join("passwd")).expect("read"),
        b"root:x:0:0"
    );
    ws.shutdown().await;
    ms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_overtakes_an_attachment_in_flight() {
    const SIZE: usize = 64 << 20;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let file = tmp.path().join("imagery.bin");
    random_file(&file, SIZE);
    let session = door::login(&ws).await;
    let released = door::try_release(&ws, &session, "MOSCOW", routine("bulk"), vec![file])
        .await
        .expect("release");
    let bulk = released.id;
    wait_event(&mut wev, Duration::from_secs(30), |e| {
        matches!(e, Event::AttachmentProgress { id, done, total, direction: Direction::Out, .. }
            if *id == bulk && *done > 0 && done < total)
    })
    .await;
    let started = Instant::now();
    let released = door::try_release(&ws, &session, "MOSCOW", flash("urgent"), Vec::new())
        .await
        .expect("release flash");
    let urgent = released.id;
    let mut finished_first = false;
    wait_event(&mut wev, Duration::from_secs(30), |e| {
        if stored(e, bulk, 0, Direction::Out) {
            finished_first = true;
        }
        matches!(e, Event::Receipt { id, .. } if *id == urgent)
    })
    .await;
    let flash_latency = started.elapsed();
    assert!(!finished_first, "the attachment finished before the FLASH");
    assert_eq!(
        ws.attachments(&bulk, Direction::Out).expect("rows")[0].state,
        AttachmentState::Pending,
        "the attachment is still in flight when the FLASH receipt arrives"
    );
    eprintln!("FLASH receipted {flash_latency:?} after release, attachment in flight");
    wait_event(&mut wev, Duration::from_secs(120), |e| {
        stored(e, bulk, 0, Direction::Out)
    })
    .await;
    ws.shutdown().await;
    ms.shutdown().await;
}

/// A message with one random `size`-byte attachment from WASHINGTON to
/// MOSCOW, with MOSCOW stopped once it holds about a tenth of it. Returns
/// the sites, the sender, its events, the message, the file's SHA-256 and
/// the receiver's partial file.
struct Interrupted {
    m: Site,
    ws: Station,
    wev: tokio::sync::broadcast::Receiver<Event>,
    id: MessageId,
    hash: String,
    partial: PathBuf,
}

async fn interrupted(root: &Path, size: usize) -> Interrupted {
    let (w, m) = pair(root, FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let wev = ws.subscribe();
    let mut mev = ms.subscribe();
    let file = root.join("imagery.bin");
    let hash = random_file(&file, size);
    let session = door::login(&ws).await;
    let released = door::try_release(&ws, &session, "MOSCOW", general("resume"), vec![file])
        .await
        .expect("release");
    let id = released.id;
    wait_event(&mut mev, Duration::from_secs(30), |e| {
        matches!(e, Event::AttachmentProgress { id: i, done, total, direction: Direction::In, .. }
            if *i == id && *done * 10 >= *total && done < total)
    })
    .await;
    let sealed = ms.attachments(&id, Direction::In).expect("rows")[0]
        .sealed_path
        .clone();
    let partial = PathBuf::from(format!("{}.part", data_dir(&ms).join(&sealed).display()));
    ms.shutdown().await;
    Interrupted {
        m,
        ws,
        wev,
        id,
        hash,
        partial,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_transfer_resumes_after_reconnect_and_shows_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Interrupted {
        m,
        ws,
        mut wev,
        id,
        hash,
        ..
    } = interrupted(tmp.path(), 32 << 20).await;
    let rows = ws.attachments(&id, Direction::Out).expect("rows");
    assert_eq!(
        rows[0].state,
        AttachmentState::Pending,
        "interrupted, not done"
    );

    let ms = m.restart().await;
    let mut mev = ms.subscribe();
    let first = wait_event(
        &mut mev,
        Duration::from_secs(30),
        |e| matches!(e, Event::AttachmentProgress { id: i, .. } if *i == id),
    )
    .await;
    assert!(
        matches!(first, Event::AttachmentProgress { done, .. } if done > 0),
        "resumed from the bytes already stored, not from zero: {first:?}"
    );
    wait_event(&mut wev, Duration::from_secs(60), |e| {
        stored(e, id, 0, Direction::Out)
    })
    .await;
    assert_eq!(door::list(&ms, Direction::In).await.len(), 1, "shown once");
    let session = door::login(&ms).await;
    let exported = door::export(&ms, &session, id).await.expect("export");
    assert_eq!(sha256_of(&exported.written[0]), hash);
    ws.shutdown().await;
    ms.shutdown().await;
}

/// A power loss can leave the receiver's partial file with a tail that
/// never reached the disk. Resuming into it must not end in a refusal (the
/// sender never retries those): the damaged partial is dropped and the
/// attachment fetched again whole. The tampered-chunk test above is the
/// control: damage in a transfer received whole is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_partial_file_is_fetched_again_not_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Interrupted {
        m,
        ws,
        mut wev,
        id,
        hash,
        partial,
    } = interrupted(tmp.path(), 16 << 20).await;

    // The last 64 KiB written never made it to the disk: zeros instead.
    let len = std::fs::metadata(&partial).expect("a partial file").len();
    assert!(len > 128 * 1024, "enough was received to tear: {len}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&partial)
        .expect("open partial");
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(len - 64 * 1024)).expect("seek");
    f.write_all(&[0u8; 64 * 1024]).expect("tear");
    f.sync_all().expect("sync");
    drop(f);

    let ms = m.restart().await;
    let mut refused = None;
    wait_event(&mut wev, Duration::from_secs(60), |e| {
        if let Event::AttachmentRefused { id: i, reason, .. } = e
            && *i == id
        {
            refused = Some(reason.clone());
        }
        refused.is_some() || stored(e, id, 0, Direction::Out)
    })
    .await;
    assert_eq!(refused, None, "a torn partial file ended in a refusal");
    let got = ms.attachments(&id, Direction::In).expect("rows");
    assert_eq!(got[0].state, AttachmentState::Receipted);
    let session = door::login(&ms).await;
    let exported = door::export(&ms, &session, id).await.expect("export");
    assert_eq!(
        sha256_of(&exported.written[0]),
        hash,
        "the whole file, intact"
    );
    ws.shutdown().await;
    ms.shutdown().await;
}

/// Runs the built `hotline` binary off the async workers.
async fn hotline_cli(
    args: Vec<std::ffi::OsString>,
    passphrase: Option<PathBuf>,
) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("hotline").expect("binary");
        cmd.args(&args).env_remove("HOTLINE_CONFIG");
        if let Some(p) = passphrase {
            cmd.env("HOTLINE_PASSPHRASE_FILE", p);
        }
        let out = cmd.output().expect("hotline runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("cli task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_attaches_lists_and_exports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (w, m) = pair(tmp.path(), FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let listening = hotline::station::control::listen(&ws).expect("the control socket");
    tokio::spawn(hotline::station::control::serve(ws.clone(), listening));
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).expect("pass");
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let file = tmp.path().join("chart.png");
    let hash = random_file(&file, 256 << 10);

    let args = |list: &[&str]| -> Vec<std::ffi::OsString> { list.iter().map(Into::into).collect() };
    let wcfg = w.config_path.to_string_lossy().into_owned();
    let mcfg = m.config_path.to_string_lossy().into_owned();
    let file_arg = file.to_string_lossy().into_owned();
    let (ok, out, err) = hotline_cli(
        args(&[
            "--config",
            &wcfg,
            "send",
            "--to",
            "MOSCOW",
            "--template",
            "general",
            "--field",
            "subject=chart",
            "--field",
            "text=see the chart",
            "--attach",
            &file_arg,
            "--operator",
            "op",
        ]),
        Some(pass.clone()),
    )
    .await;
    assert!(ok, "send --attach: {out}{err}");
    let id: MessageId = out
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no id in {out}"));
    wait_event(&mut wev, Duration::from_secs(30), |e| {
        stored(e, id, 0, Direction::Out)
    })
    .await;
    let (ok, out, err) = hotline_cli(args(&["--config", &wcfg, "outbox"]), None).await;
    assert!(ok && out.contains("attachments 1/1"), "outbox: {out}{err}");
    ms.shutdown().await;
    drop(ms);

    // No MOSCOW station running: both read its journal directly.
    let (ok, out, err) = hotline_cli(args(&["--config", &mcfg, "inbox"]), None).await;
    assert!(ok && out.contains("attachments 1/1"), "inbox: {out}{err}");
    let dir = tmp.path().join("out");
    let dir_arg = dir.to_string_lossy().into_owned();
    let id_arg = id.to_string();
    let (ok, out, err) = hotline_cli(
        args(&[
            "--config",
            &mcfg,
            "export",
            &id_arg,
            "--attachments",
            &dir_arg,
        ]),
        None,
    )
    .await;
    assert!(ok, "export --attachments: {out}{err}");
    assert_eq!(out.trim(), dir.join("chart.png").to_string_lossy());
    assert_eq!(sha256_of(&dir.join("chart.png")), hash);
    ws.shutdown().await;
}

#[test]
fn console_shows_attachment_progress_in_the_sent_list() {
    use hotline::console::keymap::Keymap;
    use hotline::console::{App, Msg, Screen, Setup, update};
    let setup = Setup {
        station: "WASHINGTON".into(),
        language: hotline::domain::Language::EN,
        time_zone: "UTC".into(),
        peers: vec![("MOSCOW".into(), "UTC".into())],
        deadlines: hotline::config::Deadlines::default(),
        idle_lock: Duration::from_secs(900),
        two_person_flash: false,
        exercise_mode: false,
        call_sign_login: false,
        keymap: Keymap::default(),
        no_color: true,
        attached: false,
        ring: Default::default(),
        labels: Default::default(),
    };
    let now = jiff::Timestamp::now();
    let id = MessageId::new();
    let mut app = App::new(setup, now);
    app.operator = Some(op());
    app.screen = Screen::Sent;
    app.apply_row(hotline::store::MessageRow {
        id,
        direction: Direction::Out,
        peer: hotline::domain::StationName::new("MOSCOW").expect("name"),
        serial: 1,
        precedence: Precedence::Routine,
        exercise: false,
        template_id: "general".into(),
        template_version: 1,
        released_at: now,
        stored_at: now,
        operator: op(),
        second_operator: None,
        state: hotline::store::MessageState::Receipted,
        receipt_at: None,
        ack_by: None,
        ack_at: None,
        refusal: None,
        attachments: 0,
        attachments_done: 0,
        attachments_refused: 0,
        subject: None,
        suspect: None,
        label: None,
        amended: None,
    });
    let progress = |index, done| {
        Msg::Station(Event::AttachmentProgress {
            id,
            index,
            direction: Direction::Out,
            done,
            total: 1000,
        })
    };
    // Progress re-reads nothing: the journal has not changed.
    assert!(update(&mut app, progress(0, 200)).is_empty());
    assert!(update(&mut app, progress(1, 600)).is_empty());
    assert_eq!(app.transfer_percent(&id), Some(40));
    let backend = ratatui::backend::TestBackend::new(120, 40);
    let mut terminal = ratatui::Terminal::new(backend).expect("terminal");
    terminal.draw(|f| hotline::ui::draw(f, &app)).expect("draw");
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("ATT 40%"), "{screen}");
    // Control: a stored attachment does change the rows: the station
    // follows its event with the changed row, which the console applies.
    update(
        &mut app,
        Msg::Station(Event::AttachmentStored {
            id,
            index: 0,
            direction: Direction::Out,
            peer: "MOSCOW".into(),
        }),
    );
    let mut stored = app.outbound.get(0).expect("a row").clone();
    (stored.attachments, stored.attachments_done) = (2, 1);
    update(
        &mut app,
        Msg::Station(Event::MessageChanged {
            row: Box::new(stored),
        }),
    );
    assert_eq!(
        (
            app.outbound.len(),
            app.outbound.get(0).expect("a row").attachments_done
        ),
        (1, 1),
        "the stored attachment's row is applied in place"
    );
    update(
        &mut app,
        Msg::Station(Event::AttachmentRefused {
            id,
            index: 1,
            direction: Direction::Out,
            peer: "MOSCOW".into(),
            reason: "oversize: \u{1b}[2J".into(),
        }),
    );
    assert_eq!(app.transfer_percent(&id), None);
    let notice = app.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("REFUSED attachment 2") && !notice.contains('\u{1b}'),
        "{notice}"
    );
}

/// A UDP relay between WASHINGTON and MOSCOW that can cut the path both ways.
struct Relay {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn relay(target: std::net::SocketAddr) -> Relay {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    back.connect(target).await.expect("connect");
    let cut = Arc::new(AtomicBool::new(false));
    let client = Arc::new(std::sync::Mutex::new(None));
    let (f, b, c, k) = (front.clone(), back.clone(), cut.clone(), client.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            // Errors (an ICMP unreachable reported on the socket) are loss.
            let Ok((n, from)) = f.recv_from(&mut buf).await else {
                continue;
            };
            *k.lock().expect("lock") = Some(from);
            if !c.load(Ordering::Relaxed) {
                let _ = b.send(&buf[..n]).await;
            }
        }
    });
    let addr = front.local_addr().expect("addr");
    let c = cut.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok(n) = back.recv(&mut buf).await else {
                continue;
            };
            let to = *client.lock().expect("lock");
            if let (Some(to), false) = (to, c.load(Ordering::Relaxed)) {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    Relay { addr, cut }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_cut_by_a_partition_completes_when_the_link_returns() {
    use std::sync::atomic::Ordering;
    const SIZE: usize = 50 << 20;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (wa, ma) = (free_addr(), free_addr());
    let w0 = Site::create(tmp.path(), "WASHINGTON", "en", wa, &[], FAST_LINK);
    let m0 = Site::create(tmp.path(), "MOSCOW", "ru", ma, &[], FAST_LINK);
    let relay = relay(ma).await;
    // Only WASHINGTON dials, and only through the relay.
    let w = Site::create(
        tmp.path(),
        "WASHINGTON",
        "en",
        wa,
        &[m0.entry(Some(relay.addr), None)],
        FAST_LINK,
    );
    let m = Site::create(
        tmp.path(),
        "MOSCOW",
        "ru",
        ma,
        &[w0.entry(None, None)],
        FAST_LINK,
    );
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let mut mev = ms.subscribe();
    let file = tmp.path().join("imagery.bin");
    let hash = random_file(&file, SIZE);
    let session = door::login(&ws).await;
    let released = door::try_release(&ws, &session, "MOSCOW", general("partition"), vec![file])
        .await
        .expect("release");
    let id = released.id;
    wait_event(&mut mev, Duration::from_secs(30), |e| {
        matches!(e, Event::AttachmentProgress { id: i, done, total, direction: Direction::In, .. }
            if *i == id && *done * 10 >= *total && done < total)
    })
    .await;
    relay.cut.store(true, Ordering::Relaxed);
    // The link is down at both ends once its idle timeout has passed.
    wait_event(&mut wev, Duration::from_secs(40), |e| {
        matches!(e, Event::LinkDown { .. })
    })
    .await;
    assert_eq!(
        ws.attachments(&id, Direction::Out).expect("rows")[0].state,
        AttachmentState::Pending
    );
    // Forget what MOSCOW reported before the cut: the next progress event
    // is the new offer's starting point.
    while mev.try_recv().is_ok() {}
    relay.cut.store(false, Ordering::Relaxed);
    let resumed = wait_event(
        &mut mev,
        Duration::from_secs(40),
        |e| matches!(e, Event::AttachmentProgress { id: i, .. } if *i == id),
    )
    .await;
    wait_event(&mut wev, Duration::from_secs(60), |e| {
        stored(e, id, 0, Direction::Out)
    })
    .await;
    // Progress events after the cut: the first one is where it resumed.
    assert!(
        matches!(resumed, Event::AttachmentProgress { done, .. } if done > 0),
        "resumed from the bytes already stored: {resumed:?}"
    );
    let received = std::iter::from_fn(|| mev.try_recv().ok())
        .filter(|e| matches!(e, Event::Received { id: i, .. } if *i == id))
        .count();
    assert_eq!(received, 0, "the message is not shown again");
    assert_eq!(door::list(&ms, Direction::In).await.len(), 1, "shown once");
    let session = door::login(&ms).await;
    let exported = door::export(&ms, &session, id).await.expect("export");
    assert_eq!(sha256_of(&exported.written[0]), hash);
    ws.shutdown().await;
    ms.shutdown().await;
}
