//! The networked white cell: trainees join over the real link (quinn on
//! 127.0.0.1, real keys, real journals), are admitted by fingerprint, and
//! are driven and scored by the white cell. Nothing is mocked.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hotline::console::{WhiteCellCommand, WhiteCellView};
use hotline::crypto::StationKeys;
use hotline::station::admission::{self, JoinError, JoinState};
use hotline::station::{Event, Options, Station};
use hotline::tabletop::run::{self, Facilitator, WhiteCell};
use hotline::tabletop::{Outcome, ReportFacts, Scenario, scenario};
use hotline::templates::Catalog;
use hotline::wire::ALPN_EXERCISE;
use support::{door, eventually, general, wait_event};

fn short() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/short.toml");
    let text = std::fs::read_to_string(&path).expect("fixture");
    scenario::parse(&path, &text, Catalog::builtin()).expect("the short scenario parses")
}

const LOOPBACK: &str = "127.0.0.1:0";

/// The in-process exercise on the short scenario: an English trainee
/// station and its Russian counterpart.
async fn in_process() -> run::Exercise {
    run::start(
        &short(),
        run::Casting {
            trainee_language: hotline::domain::Language::EN,
            counterpart_language: hotline::domain::Language::RU,
        },
    )
    .await
    .expect("in-process exercise")
}

async fn white_cell() -> (Station, run::Scratch, SocketAddr) {
    let (station, scratch) = run::start_white_cell(&short(), LOOPBACK.parse().expect("addr"))
        .await
        .expect("the white cell starts");
    let addr = station.local_addr().expect("bound");
    (station, scratch, addr)
}

fn link_up(station: &Station, peer: &str) -> bool {
    station
        .status()
        .links
        .iter()
        .any(|l| l.peer == peer && l.up)
}

/// The same station keys again (the type is not `Clone`, to keep secret
/// keys from being copied casually).
fn twin(keys: &StationKeys) -> StationKeys {
    StationKeys {
        name: keys.name.clone(),
        signing: keys.signing.clone(),
        age: keys.age.clone(),
        pq: keys.pq.clone(),
        retired: Vec::new(),
    }
}

/// Asks to join and waits until the white cell lists the request.
async fn asked(
    wc: &Station,
    keys: &StationKeys,
    addr: SocketAddr,
) -> tokio::task::JoinHandle<Result<hotline::crypto::PeerKeys, JoinError>> {
    let joining = ask(keys, addr, wc.fingerprint());
    let name = keys.name.to_string();
    eventually(Duration::from_secs(10), "the request is waiting", || {
        wc.candidates().iter().any(|c| c.station == name)
    })
    .await;
    joining
}

/// Asks to join in the background; the handle resolves once admitted or
/// refused.
fn ask(
    keys: &StationKeys,
    addr: SocketAddr,
    pin: String,
) -> tokio::task::JoinHandle<Result<hotline::crypto::PeerKeys, JoinError>> {
    let keys = twin(keys);
    tokio::spawn(async move { admission::join(&keys, addr, &pin, |_| {}).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trainee_is_admitted_by_fingerprint_and_then_is_an_ordinary_pinned_peer() {
    let (wc, _scratch, addr) = white_cell().await;
    let mut wc_events = wc.subscribe();
    let keys = run::keys("ALPHA").expect("keys");
    let ours = keys.public().fingerprint();
    let joining = ask(&keys, addr, wc.fingerprint());

    let asked = wait_event(&mut wc_events, Duration::from_secs(10), |e| {
        matches!(e, Event::JoinRequested { .. })
    })
    .await;
    let Event::JoinRequested {
        station,
        fingerprint,
        ..
    } = asked
    else {
        unreachable!()
    };
    assert_eq!(station, "ALPHA");
    assert_eq!(
        fingerprint, ours,
        "the facilitator sees the trainee's own fingerprint"
    );
    let waiting = wc.candidates();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].state, JoinState::Pending);

    // Control: nothing is admitted until the facilitator says so.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !joining.is_finished(),
        "the join finished without admission"
    );
    assert!(wc.peers().is_empty(), "a peer was added without admission");

    let admitted = wc.admit(&fingerprint).await.expect("admit");
    assert_eq!(admitted.as_str(), "ALPHA");
    let white_cell = tokio::time::timeout(Duration::from_secs(10), joining)
        .await
        .expect("the join ends once admitted")
        .expect("task")
        .expect("admitted");
    assert_eq!(white_cell.fingerprint(), wc.fingerprint());
    assert_eq!(white_cell.name.as_str(), "MOSCOW");
    assert_eq!(wc.peers(), vec!["ALPHA".to_string()]);

    let again_keys = twin(&keys);
    let (trainee, _trainee_scratch) = run::start_trainee(keys, &white_cell, addr)
        .await
        .expect("the trainee starts");
    eventually(Duration::from_secs(10), "the link to ALPHA is up", || {
        link_up(&wc, "ALPHA") && link_up(&trainee, "MOSCOW")
    })
    .await;

    // Messages, receipts and acknowledgements flow both ways, signed and sealed.
    let mut tr_events = trainee.subscribe();
    let facilitator = door::sign_in(&wc, "op").await;
    let released = door::try_release(
        &wc,
        &facilitator,
        "ALPHA",
        general("inject over the network"),
        Vec::new(),
    )
    .await
    .expect("release to the admitted trainee");
    wait_event(
        &mut tr_events,
        Duration::from_secs(10),
        |e| matches!(e, Event::Received { id, .. } if *id == released.id),
    )
    .await;
    wait_event(
        &mut wc_events,
        Duration::from_secs(10),
        |e| matches!(e, Event::Receipt { id, .. } if *id == released.id),
    )
    .await;
    let at_trainee = door::sign_in(&trainee, "op").await;
    let message = door::try_open(&trainee, &at_trainee, released.id)
        .await
        .expect("stored");
    assert!(message.exercise, "everything from a white cell is EXERCISE");
    door::acknowledge(&trainee, &at_trainee, released.id)
        .await
        .expect("acknowledge");
    let acked = wait_event(
        &mut wc_events,
        Duration::from_secs(10),
        |e| matches!(e, Event::Acknowledged { id, .. } if *id == released.id),
    )
    .await;
    assert!(matches!(acked, Event::Acknowledged { by, peer, .. } if by == "op" && peer == "ALPHA"));

    // Asking again with the admitted key is answered "admitted" at once;
    // another station under the same name is refused.
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        ask(&again_keys, addr, wc.fingerprint()),
    )
    .await
    .expect("answered")
    .expect("task");
    assert!(again.is_ok(), "{again:?}");
    let impostor = run::keys("ALPHA").expect("keys");
    let other = ask(&impostor, addr, wc.fingerprint());
    let refused = tokio::time::timeout(Duration::from_secs(10), other)
        .await
        .expect("answered")
        .expect("task");
    assert!(
        matches!(&refused, Err(JoinError::Refused(r)) if r.contains("taken")),
        "a second ALPHA with another key is refused: {refused:?}"
    );
    trainee.shutdown().await;
    wc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_refused_before_the_facilitator_sees_anything() {
    let (wc, _scratch, addr) = white_cell().await;
    let keys = run::keys("ALPHA").expect("keys");
    let stranger = run::keys("MOSCOW").expect("keys").public().fingerprint();
    let result = ask(&keys, addr, stranger.clone()).await.expect("task");
    match result {
        Err(JoinError::WrongWhiteCell { found, pinned, .. }) => {
            assert_eq!(found, wc.fingerprint());
            assert_eq!(pinned, stranger);
        }
        other => panic!("expected a wrong white cell, got {other:?}"),
    }
    assert!(wc.candidates().is_empty(), "{:?}", wc.candidates());

    // Control: the right pin is recorded as waiting.
    let joining = asked(&wc, &keys, addr).await;
    assert_eq!(wc.candidates().len(), 1);
    joining.abort();
    wc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_trainee_is_told_and_never_linked() {
    let (wc, _scratch, addr) = white_cell().await;
    let keys = run::keys("ALPHA").expect("keys");
    let fingerprint = keys.public().fingerprint();
    let joining = asked(&wc, &keys, addr).await;
    wc.refuse_join(&fingerprint).await.expect("refuse");
    let result = tokio::time::timeout(Duration::from_secs(10), joining)
        .await
        .expect("answered")
        .expect("task");
    assert!(
        matches!(&result, Err(JoinError::Refused(r)) if r.contains("facilitator")),
        "{result:?}"
    );
    assert!(wc.peers().is_empty());
    assert!(
        wc.admit(&fingerprint).await.is_err(),
        "a refused station cannot be admitted afterwards"
    );
    wc.shutdown().await;
}

/// A station that dials the white cell without being admitted is refused
/// at the hello; once admitted, the same station's dialer gets through
/// (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unadmitted_station_cannot_link_until_admitted() {
    let (wc, _scratch, addr) = white_cell().await;
    let keys = run::keys("ALPHA").expect("keys");
    let fingerprint = keys.public().fingerprint();
    let white_cell_keys = {
        let probe = run::keys("PROBE").expect("keys");
        let joining = asked(&wc, &probe, addr).await;
        let probe_fp = probe.public().fingerprint();
        wc.admit(&probe_fp).await.expect("admit probe");
        joining.await.expect("task").expect("admitted")
    };
    let (trainee, _ts) = run::start_trainee(twin(&keys), &white_cell_keys, addr)
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !link_up(&trainee, "MOSCOW"),
        "an unadmitted station got a link"
    );
    assert!(!wc.peers().contains(&"ALPHA".to_string()));

    let joining = asked(&wc, &keys, addr).await;
    wc.admit(&fingerprint).await.expect("admit");
    joining.await.expect("task").expect("admitted");
    eventually(
        Duration::from_secs(15),
        "the admitted station's own dialer links",
        || link_up(&trainee, "MOSCOW"),
    )
    .await;
    trainee.shutdown().await;
    wc.shutdown().await;
}

/// An exercise station that does not admit (the in-process counterpart)
/// and a configuration asking a live station to admit are both refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_white_cell_answers_requests_to_join() {
    let exercise = in_process().await;
    let addr = exercise.counterpart.local_addr().expect("bound");
    let keys = run::keys("ALPHA").expect("keys");
    let result = ask(&keys, addr, exercise.counterpart.fingerprint())
        .await
        .expect("task");
    assert!(
        matches!(result, Err(JoinError::Link(_))),
        "a station without admission refuses the handshake: {result:?}"
    );
    assert!(exercise.counterpart.candidates().is_empty());
    exercise.trainee.shutdown().await;
    exercise.counterpart.shutdown().await;

    let tmp = tempfile::tempdir().expect("tempdir");
    let site = support::Site::create(
        tmp.path(),
        "WASHINGTON",
        "en",
        support::free_addr(),
        &[],
        "",
    );
    let live = Options {
        admission: true,
        ..Options::default()
    };
    let refused = Station::start(site.config(), site.keys(), live).await;
    assert!(
        refused.is_err(),
        "a live station never admits stations that ask"
    );
    let exercise_admission = Options {
        alpn: ALPN_EXERCISE.to_vec(),
        exercise_only: true,
        admission: true,
        ..Options::default()
    };
    let white_cell = Station::start(site.config(), site.keys(), exercise_admission)
        .await
        .expect("control: an exercise white cell may admit");
    white_cell.shutdown().await;
}

/// The white cell drives a trainee over the network: held until the
/// facilitator starts it, then the inject is delivered, acknowledged and
/// answered, and scored met.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_white_cell_scores_a_trainee_across_the_network() {
    let (wc, _scratch, addr) = white_cell().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let report_path = tmp.path().join("aar.md");
    let Driven {
        commands,
        mut view,
        stop,
        task,
    } = drive(&wc, addr, &report_path);

    let keys = run::keys("ALPHA").expect("keys");
    let fingerprint = keys.public().fingerprint();
    let joining = asked(&wc, &keys, addr).await;
    commands
        .send(WhiteCellCommand::Admit(fingerprint))
        .await
        .expect("send");
    let white_cell = joining.await.expect("task").expect("admitted");
    let (trainee, _ts) = run::start_trainee(keys, &white_cell, addr)
        .await
        .expect("starts");
    let mut tr_events = trainee.subscribe();

    // Held: the inject at T+00:03 is not sent while the clock waits.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Only the briefing (ROUTINE) has come; the inject is IMMEDIATE.
    assert!(
        door::list(&trainee, hotline::store::Direction::In)
            .await
            .iter()
            .all(|r| r.precedence == hotline::domain::Precedence::Routine),
        "an inject went out before the facilitator started the clock"
    );
    let held = view.borrow_and_update().clone();
    assert!(held.paused);
    assert_eq!(held.trainees.len(), 1);

    commands
        .send(WhiteCellCommand::TogglePause)
        .await
        .expect("send");
    // The inject (IMMEDIATE), not the briefing (ROUTINE).
    let received = wait_event(&mut tr_events, Duration::from_secs(15), |e| {
        matches!(
            e,
            Event::Received {
                precedence: hotline::domain::Precedence::Immediate,
                ..
            }
        )
    })
    .await;
    let Event::Received { id, .. } = received else {
        unreachable!()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_trainee = door::sign_in(&trainee, "op").await;
    door::acknowledge(&trainee, &at_trainee, id)
        .await
        .expect("ack");
    eventually(
        Duration::from_secs(10),
        "the acknowledgement is scored",
        || view.borrow().trainees.first().is_some_and(|t| t.met == 1),
    )
    .await;

    // On demand: an interim report, shown and written, with the reply
    // still pending (not missed).
    commands.send(WhiteCellCommand::Report).await.expect("send");
    eventually(Duration::from_secs(10), "the interim report", || {
        view.borrow().report.is_some()
    })
    .await;
    let interim = view.borrow().report.clone().expect("report");
    assert_eq!(interim.seq, 1);
    assert!(interim.text.contains("Interim"), "{}", interim.text);
    assert!(interim.text.contains("| PENDING |"), "{}", interim.text);
    assert!(!interim.text.contains("MISSED"), "{}", interim.text);
    assert!(
        interim.written.contains(&report_path.display().to_string()),
        "{}",
        interim.written
    );
    let on_disk = std::fs::read_to_string(&report_path).expect("written");
    assert_eq!(on_disk, interim.text);
    let mut reply = general("reply from ALPHA");
    reply.references = vec![id];
    door::try_release(&trainee, &at_trainee, "MOSCOW", reply, Vec::new())
        .await
        .expect("reply");

    eventually(Duration::from_secs(15), "both expectations met", || {
        view.borrow().trainees.first().is_some_and(|t| t.met == 2)
    })
    .await;
    // Every trainee finished: the final report is shown and written unasked.
    eventually(Duration::from_secs(30), "the final report", || {
        view.borrow().report.as_ref().is_some_and(|r| r.seq == 2)
    })
    .await;
    let last = view.borrow().report.clone().expect("report");
    assert!(!last.text.contains("Interim"), "{}", last.text);
    assert_eq!(last.text.matches("| MET |").count(), 2, "{}", last.text);
    stop.send(true).expect("stop");
    let runs = task.await.expect("white cell");
    assert_eq!(runs.len(), 1);
    let scores = runs[0].engine.scores(runs[0].ran, true);
    assert_eq!(scores.len(), 2, "{scores:?}");
    assert!(
        scores
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Met { .. })),
        "{scores:?}"
    );
    trainee.shutdown().await;
    wc.shutdown().await;
}

/// A white cell's loop running on `wc`, and the facilitator's handles.
struct Driven {
    commands: tokio::sync::mpsc::Sender<WhiteCellCommand>,
    view: tokio::sync::watch::Receiver<WhiteCellView>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<run::TraineeRun>>,
}

fn drive(wc: &Station, addr: SocketAddr, report_path: &Path) -> Driven {
    let (commands, commands_rx) = tokio::sync::mpsc::channel(8);
    let (view_tx, view) = tokio::sync::watch::channel(WhiteCellView::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let cell = WhiteCell {
        counterpart: wc.clone(),
        console: wc.clone(),
        scenario: short(),
        trainees: Vec::new(),
        join: Some(format!("hotline tabletop --join {addr}")),
        language: hotline::domain::Language::EN,
        clock: None,
        report: run::Reporter {
            path: report_path.to_path_buf(),
            render: std::sync::Arc::new(|runs: &[run::TraineeRun], finished: bool, lang| {
                runs.iter()
                    .map(|r| {
                        r.engine.report(
                            lang,
                            r.ran,
                            &ReportFacts {
                                trainee: "op",
                                date: "today",
                                source: "test",
                                actions: &[],
                                finished,
                            },
                        )
                    })
                    .collect()
            }),
        },
    };
    let task = tokio::spawn(run::white_cell(
        cell,
        Facilitator {
            commands: commands_rx,
            view: view_tx,
        },
        stop_rx,
    ));
    Driven {
        commands,
        view,
        stop,
        task,
    }
}

/// Admits `name` through the facilitator's command and starts its station.
async fn admitted_trainee(
    wc: &Station,
    addr: SocketAddr,
    commands: &tokio::sync::mpsc::Sender<WhiteCellCommand>,
    name: &str,
) -> (Station, run::Scratch) {
    let keys = run::keys(name).expect("keys");
    let joining = asked(wc, &keys, addr).await;
    commands
        .send(WhiteCellCommand::Admit(keys.public().fingerprint()))
        .await
        .expect("send");
    let white_cell = joining.await.expect("task").expect("admitted");
    run::start_trainee(keys, &white_cell, addr)
        .await
        .expect("starts")
}

/// Two trainees run the same scenario, each scored on its own: one
/// answers, one does not. The facilitator's start applies to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_trainees_are_driven_together_and_scored_apart() {
    let (wc, _scratch, addr) = white_cell().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let Driven {
        commands,
        view,
        stop,
        task,
    } = drive(&wc, addr, &tmp.path().join("aar.md"));
    let (alpha, _a) = admitted_trainee(&wc, addr, &commands, "ALPHA").await;
    let (bravo, _b) = admitted_trainee(&wc, addr, &commands, "BRAVO").await;
    eventually(Duration::from_secs(10), "both admitted and linked", || {
        let v = view.borrow();
        v.trainees.len() == 2 && v.trainees.iter().all(|t| t.link_up)
    })
    .await;
    // Each was briefed on admission; what arrives from here on is the
    // inject and the ad-hoc message.
    for trainee in [&alpha, &bravo] {
        door::rows_until(
            trainee,
            hotline::store::Direction::In,
            Duration::from_secs(15),
            "the briefing",
            |rows| rows.len() == 1,
        )
        .await;
    }
    let mut alpha_events = alpha.subscribe();
    let mut bravo_events = bravo.subscribe();
    commands
        .send(WhiteCellCommand::TogglePause)
        .await
        .expect("start");
    let got = |e: &Event| matches!(e, Event::Received { .. });
    let Event::Received { id, .. } =
        wait_event(&mut alpha_events, Duration::from_secs(15), got).await
    else {
        unreachable!()
    };
    wait_event(&mut bravo_events, Duration::from_secs(15), got).await;
    let at_alpha = door::sign_in(&alpha, "op").await;
    door::acknowledge(&alpha, &at_alpha, id).await.expect("ack");
    let mut reply = general("ALPHA answers");
    reply.references = vec![id];
    door::try_release(&alpha, &at_alpha, "MOSCOW", reply, Vec::new())
        .await
        .expect("reply");
    eventually(
        Duration::from_secs(15),
        "ALPHA's two expectations met",
        || {
            view.borrow()
                .trainees
                .iter()
                .any(|t| t.station == "ALPHA" && t.met == 2)
        },
    )
    .await;
    let bravo_row = view
        .borrow()
        .trainees
        .iter()
        .find(|t| t.station == "BRAVO")
        .cloned()
        .expect("BRAVO");
    assert_eq!(
        (bravo_row.delivered, bravo_row.met),
        (1, 0),
        "{bravo_row:?}"
    );

    // An ad-hoc message from the facilitator goes to every trainee.
    commands
        .send(WhiteCellCommand::Inject(Box::new(general("ad hoc"))))
        .await
        .expect("inject");
    wait_event(&mut alpha_events, Duration::from_secs(15), got).await;
    wait_event(&mut bravo_events, Duration::from_secs(15), got).await;
    let at_bravo = door::sign_in(&bravo, "op").await;
    for (trainee, session) in [(&alpha, &at_alpha), (&bravo, &at_bravo)] {
        let mut subjects: Vec<String> = Vec::new();
        for row in door::list(trainee, hotline::store::Direction::In).await {
            if let Ok(m) = door::try_open(trainee, session, row.id).await {
                subjects.extend(m.fields.get("subject").cloned());
            }
        }
        assert!(subjects.iter().any(|s| s == "ad hoc"), "{subjects:?}");
    }

    stop.send(true).expect("stop");
    let runs = task.await.expect("white cell");
    let scored = |name: &str| {
        let r = runs
            .iter()
            .find(|r| r.station.as_str() == name)
            .expect("run");
        r.engine.scores(r.ran, true)
    };
    assert!(
        scored("ALPHA")
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Met { .. })),
        "{:?}",
        scored("ALPHA")
    );
    assert!(
        scored("BRAVO")
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Missed)),
        "{:?}",
        scored("BRAVO")
    );
    alpha.shutdown().await;
    bravo.shutdown().await;
    wc.shutdown().await;
}

/// A trainee that gives up (stops asking) is forgotten, so the facilitator
/// cannot admit a station nobody runs; one still asking stays (control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_that_stops_asking_is_forgotten() {
    let (wc, _scratch, addr) = white_cell().await;
    let gone = run::keys("ALPHA").expect("keys");
    let still = run::keys("BRAVO").expect("keys");
    let gone_task = asked(&wc, &gone, addr).await;
    let still_task = asked(&wc, &still, addr).await;
    gone_task.abort();
    tokio::time::sleep(admission::JOIN_STALE + Duration::from_millis(1500)).await;
    let names: Vec<String> = wc.candidates().into_iter().map(|c| c.station).collect();
    assert_eq!(names, vec!["BRAVO".to_string()], "ALPHA gave up");
    let refused = wc.admit(&gone.public().fingerprint()).await;
    assert!(refused.is_err(), "admitted a station that gave up");
    wc.admit(&still.public().fingerprint())
        .await
        .expect("the one still asking is admitted");
    still_task.await.expect("task").expect("admitted");
    wc.shutdown().await;
}

/// A white cell that falls silent after it was reached (a network blip) is
/// asked again, and admission still works once it answers; one never
/// reached is an error at once (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_while_waiting_does_not_end_the_join() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use support::proxy::start_proxy;

    let (wc, _scratch, addr) = white_cell().await;
    let proxy = start_proxy(addr, 0, 0, 0x7AB1E).await;

    // Control: through a partitioned path, never reached: an error at once.
    proxy.partitioned.store(true, Ordering::SeqCst);
    let early = run::keys("EARLY").expect("keys");
    let refused = admission::join(&early, proxy.addr, &wc.fingerprint(), |_| {}).await;
    assert!(matches!(refused, Err(JoinError::Link(_))), "{refused:?}");
    proxy.partitioned.store(false, Ordering::SeqCst);

    let keys = run::keys("ALPHA").expect("keys");
    let pin = wc.fingerprint();
    let lost = Arc::new(AtomicBool::new(false));
    let pending = Arc::new(AtomicUsize::new(0));
    let joining = {
        let keys = twin(&keys);
        let (lost, pending) = (lost.clone(), pending.clone());
        let via = proxy.addr;
        tokio::spawn(async move {
            admission::join(&keys, via, &pin, |w| match w {
                admission::Waiting::Lost(_) => lost.store(true, Ordering::SeqCst),
                admission::Waiting::Pending(_) => {
                    pending.fetch_add(1, Ordering::SeqCst);
                }
            })
            .await
        })
    };
    eventually(Duration::from_secs(10), "ALPHA is waiting", || {
        pending.load(Ordering::SeqCst) > 0
    })
    .await;
    proxy.partitioned.store(true, Ordering::SeqCst);
    eventually(
        Duration::from_secs(10),
        "the trainee noticing the silence",
        || lost.load(Ordering::SeqCst),
    )
    .await;
    assert!(!joining.is_finished(), "the join gave up on a blip");
    proxy.partitioned.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(15), "ALPHA waiting again", || {
        wc.candidates().iter().any(|c| c.station == "ALPHA")
    })
    .await;
    wc.admit(&keys.public().fingerprint()).await.expect("admit");
    let white_cell = tokio::time::timeout(Duration::from_secs(15), joining)
        .await
        .expect("the join ends once admitted")
        .expect("task")
        .expect("admitted after the blip");
    assert_eq!(white_cell.fingerprint(), wc.fingerprint());
    wc.shutdown().await;
}

/// Requests to join that are not what they claim are answered with a
/// signed refusal and leave nothing waiting: garbage, a card signed by a
/// key other than the connection's (a relayed request), and a request that
/// is not a join at all. A proper request afterwards still waits (control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_to_join_are_refused_and_leave_nothing_waiting() {
    use hotline::crypto::signed::{self, Kind};
    use hotline::crypto::{PeerKeys, StationCard};
    use hotline::wire::{ALPN_EXERCISE, Frame, FrameKind};

    let (wc, _scratch, addr) = white_cell().await;
    let pin = wc.fingerprint();
    let dialer = run::keys("ALPHA").expect("keys");
    let other = run::keys("BRAVO").expect("keys");
    let request = |card_of: &PeerKeys, signer: &StationKeys| {
        let body = serde_json::json!({
            "protocol": hotline::domain::PROTOCOL,
            "card": StationCard::from_keys(card_of, Vec::new(), None).to_toml(),
            "pin": pin,
            "time": jiff::Timestamp::now(),
        });
        signed::sign(
            Kind::Join,
            &signer.name,
            &serde_json::to_vec(&body).expect("json"),
            &signer.signing,
        )
    };
    let cases = [
        (
            "garbage",
            Frame::new(FrameKind::Join, b"not a document".to_vec()),
        ),
        (
            "relayed: BRAVO's card and signature on ALPHA's connection",
            Frame::new(FrameKind::Join, request(&other.public(), &other)),
        ),
        (
            "ALPHA's card signed by BRAVO",
            Frame::new(FrameKind::Join, request(&dialer.public(), &other)),
        ),
        (
            "BRAVO's card signed by ALPHA, whose connection it is",
            Frame::new(FrameKind::Join, request(&other.public(), &dialer)),
        ),
    ];
    for (what, frame) in cases {
        let (key, answer) = hotline::link::join::ask(&dialer.signing, addr, ALPN_EXERCISE, &frame)
            .await
            .unwrap_or_else(|e| panic!("{what}: not answered: {e}"));
        assert_eq!(answer.kind, FrameKind::JoinAnswer, "{what}");
        let body = signed::parse(&answer.payload)
            .and_then(|doc| doc.verify(Kind::JoinAnswer, &key))
            .unwrap_or_else(|e| panic!("{what}: the answer is not signed: {e}"));
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("\"refused\""), "{what}: {text}");
        assert!(wc.candidates().is_empty(), "{what}: {:?}", wc.candidates());
    }
    // Not a join at all, from a key nobody pinned: the connection is closed.
    let hello = Frame::new(FrameKind::Hello, b"{}".to_vec());
    assert!(
        hotline::link::join::ask(&dialer.signing, addr, ALPN_EXERCISE, &hello)
            .await
            .is_err()
    );
    assert!(wc.candidates().is_empty());

    // Control: ALPHA's own signed request waits.
    let joining = asked(&wc, &dialer, addr).await;
    assert_eq!(wc.candidates().len(), 1);
    joining.abort();
    wc.shutdown().await;
}

/// The facilitator's rating and notes reach the view and the written
/// report, as Markdown and as HTML beside it (hostile note text escaped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitators_ratings_and_notes_go_into_both_reports() {
    use hotline::tabletop::engine::{NoteKind, Rating};
    let (wc, _scratch, addr) = white_cell().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let md_path = tmp.path().join("aar.md");
    let Driven {
        commands,
        view,
        stop,
        task,
    } = drive(&wc, addr, &md_path);
    let (alpha, _a) = admitted_trainee(&wc, addr, &commands, "ALPHA").await;
    eventually(Duration::from_secs(10), "ALPHA admitted", || {
        view.borrow().trainees.len() == 1
    })
    .await;
    for command in [
        WhiteCellCommand::Rate {
            objective: "1".into(),
            rating: Some(Rating::M),
        },
        WhiteCellCommand::Rate {
            objective: "no-such-objective".into(),
            rating: Some(Rating::P),
        },
        WhiteCellCommand::Note {
            text: "Calm <script>alert(1)</script> read-back".into(),
            kind: NoteKind::Strength,
        },
        WhiteCellCommand::Note {
            text: "Reply drafted too slowly".into(),
            kind: NoteKind::Improvement,
        },
        WhiteCellCommand::Report,
    ] {
        commands.send(command).await.expect("command");
    }
    eventually(Duration::from_secs(10), "the report", || {
        view.borrow().report.is_some()
    })
    .await;
    {
        let v = view.borrow();
        assert_eq!(v.notes, 2);
        let ratings: Vec<(&str, Option<Rating>)> = v
            .evaluation
            .iter()
            .map(|o| (o.id.as_str(), o.rating))
            .collect();
        assert_eq!(ratings, vec![("1", Some(Rating::M)), ("2", None)]);
        let written = &v.report.as_ref().expect("report").written;
        assert!(written.contains("aar.html"), "{written}");
    }
    let md = std::fs::read_to_string(&md_path).expect("markdown");
    let html = std::fs::read_to_string(tmp.path().join("aar.html")).expect("html");
    for text in [
        "### Objective `1`: Acknowledge within 20 seconds",
        "- **evaluator's rating (given by the facilitator): Performed with Major Challenges (M)**",
        "- T+00:00 facilitator's note: Calm \\<script\\>alert(1)\\</script\\> read-back",
        "| T+00:00 facilitator's note: Reply drafted too slowly |  |  |  |",
    ] {
        assert!(md.contains(text), "{text}\n\n{md}");
    }
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("<li>T+00:00 facilitator&#39;s note: Calm &lt;script&gt;alert(1)&lt;/script&gt; read-back</li>"),
        "{html}"
    );
    assert!(
        html.contains("<td>T+00:00 facilitator&#39;s note: Reply drafted too slowly</td>"),
        "{html}"
    );
    stop.send(true).expect("stop");
    let runs = task.await.expect("white cell");
    assert_eq!(
        runs[0].engine.evaluation.notes.len(),
        2,
        "kept for the last report"
    );
    alpha.shutdown().await;
    wc.shutdown().await;
}

/// A trainee's console sends its station's own record to the white cell
/// as it quits, signed by the station; the white cell's report carries it
/// under that station. A station the white cell did not admit cannot
/// deliver one (the same wait sees the admitted one's receipt: control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trainees_signed_record_reaches_the_white_cells_report() {
    let (wc, _scratch, addr) = white_cell().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let Driven {
        commands,
        view,
        stop,
        task,
    } = drive(&wc, addr, &tmp.path().join("aar.md"));
    let (alpha, _a) = admitted_trainee(&wc, addr, &commands, "ALPHA").await;
    eventually(Duration::from_secs(10), "ALPHA admitted and linked", || {
        view.borrow().trainees.iter().any(|t| t.link_up)
    })
    .await;
    // A station with keys nobody admitted, dialling the same white cell.
    let white_cell_keys = {
        let probe = run::keys("PROBE").expect("keys");
        let joining = asked(&wc, &probe, addr).await;
        wc.admit(&probe.public().fingerprint())
            .await
            .expect("admit probe");
        joining.await.expect("task").expect("admitted")
    };
    let (stranger, _s) =
        run::start_trainee(run::keys("STRANGER").expect("keys"), &white_cell_keys, addr)
            .await
            .expect("starts");

    let wait = Duration::from_secs(8);
    let record = "# Record of ALPHA\n- T+00:10 alpha-1 acknowledged MOSCOW/1\n# not a heading";
    hotline::tabletop::classroom::send_record(&alpha, "MOSCOW", record, wait)
        .await
        .expect("the admitted trainee's record is receipted");
    let refused =
        hotline::tabletop::classroom::send_record(&stranger, "MOSCOW", "# forged record", wait)
            .await;
    assert!(refused.is_err(), "{refused:?}");

    stop.send(true).expect("stop");
    let runs = task.await.expect("white cell");
    let alpha_run = runs
        .iter()
        .find(|r| r.station.as_str() == "ALPHA")
        .expect("ALPHA's run");
    assert_eq!(alpha_run.record.as_deref(), Some(record));
    let report = alpha_run.engine.report(
        hotline::domain::Language::EN,
        alpha_run.ran,
        &ReportFacts {
            trainee: "op",
            date: "today",
            source: "test",
            actions: &[],
            finished: true,
        },
    );
    assert!(
        !report.contains("reply with `general` received"),
        "the record is not taken for a reply:\n{report}"
    );
    let section =
        hotline::tabletop::classroom::record_section(alpha_run, hotline::domain::Language::EN);
    assert!(section.contains("signed by ALPHA"), "{section}");
    // The trainee's text is quoted, never read as the report's Markdown.
    assert!(section.contains("\n    # not a heading\n"), "{section}");
    assert!(
        runs.iter().all(|r| r.station.as_str() != "STRANGER"),
        "no run for a station never admitted"
    );
    alpha.shutdown().await;
    stranger.shutdown().await;
    wc.shutdown().await;
}

/// A trainee on another machine sees its objectives too: the white cell
/// briefs it on admission (the scenario as it plays it), and its console's
/// mirror shows each expectation pending once the inject arrives, then met
/// once the trainee acknowledges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_trainee_sees_its_objectives_live() {
    let (wc, _scratch, addr) = white_cell().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let Driven {
        commands,
        view: _,
        stop,
        task,
    } = drive(&wc, addr, &tmp.path().join("aar.md"));
    let (alpha, _a) = admitted_trainee(&wc, addr, &commands, "ALPHA").await;
    let (_trainee_commands, commands_rx) = tokio::sync::mpsc::channel(8);
    let (view_tx, mut mirrored) = tokio::sync::watch::channel(WhiteCellView::default());
    let (stop_mirror, stop_rx) = tokio::sync::watch::channel(false);
    let mirror = tokio::spawn(hotline::tabletop::classroom::mirror(
        alpha.clone(),
        "MOSCOW".into(),
        view_tx,
        commands_rx,
        stop_rx,
    ));
    let state = |v: &WhiteCellView, kind: &str| {
        v.objectives
            .iter()
            .flat_map(|o| &o.expectations)
            .filter(|e| e.inject == "ping")
            .map(|e| format!("{:?}", e.progress))
            .any(|p| p.starts_with(kind))
    };
    let wait_for = |kind: &'static str,
                    mirrored: &mut tokio::sync::watch::Receiver<WhiteCellView>| {
        let mut mirrored = mirrored.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(20),
                mirrored.wait_for(|v| state(v, kind)),
            )
            .await
            .unwrap_or_else(|_| panic!("no {kind} expectation mirrored"))
            .expect("mirror running")
            .clone()
        }
    };
    // Briefed on admission: the objectives, before the clock starts.
    let briefed = wait_for("Upcoming", &mut mirrored).await;
    assert_eq!(briefed.scenario, "short");
    assert!(
        briefed
            .objectives
            .iter()
            .any(|o| o.text == "Acknowledge within 20 seconds"),
        "{briefed:?}"
    );
    // Each expectation under the objective it serves, as the scenario
    // says: the acknowledgement the inject's, the reply its own. The
    // briefing (a MSEL) carried the reply's.
    let grouped: Vec<(Option<&str>, Vec<String>)> = briefed
        .objectives
        .iter()
        .map(|o| {
            (
                o.id.as_deref(),
                o.expectations
                    .iter()
                    .map(|e| format!("{}: {:?}", e.inject, e.expectation))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        grouped,
        [
            (
                Some("1"),
                vec!["ping: Acknowledge { within: 20s }".to_string()]
            ),
            (
                Some("2"),
                vec!["ping: Reply { template: \"general\", within: 25s, field: None }".to_string()]
            ),
        ],
        "{briefed:?}"
    );
    commands
        .send(WhiteCellCommand::TogglePause)
        .await
        .expect("start");
    wait_for("Pending", &mut mirrored).await;
    let session = door::sign_in(&alpha, "alpha-1").await;
    let inject = door::list(&alpha, hotline::store::Direction::In)
        .await
        .into_iter()
        .find(|r| r.precedence == hotline::domain::Precedence::Immediate)
        .expect("the inject arrived");
    door::acknowledge(&alpha, &session, inject.id)
        .await
        .expect("ack");
    let met = wait_for("Met", &mut mirrored).await;
    assert!(met.scenario_time > Duration::ZERO, "{met:?}");
    // The station's deadlines count on the clock the mirror keeps: past
    // the inject's T+00:03 (it stands at zero until the mirror runs it).
    let clock = alpha.exercise_clock().expect("a trainee's scenario clock");
    assert!(
        clock.scenario_at(jiff::Timestamp::now()) >= Duration::from_secs(3),
        "{:?}",
        clock.scenario_at(jiff::Timestamp::now())
    );
    let _ = stop_mirror.send(true);
    mirror.await.expect("mirror");
    stop.send(true).expect("stop");
    task.await.expect("white cell");
    alpha.shutdown().await;
    wc.shutdown().await;
}

/// The trainee station's own acknowledgement deadlines run on the
/// exercise's scenario clock: while the clock is paused a FLASH does not
/// fall overdue however long it waits; once the clock runs (here at 60x,
/// so its 10 scenario minutes are 10 s) the same wait sees it overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trainee_stations_deadlines_run_on_the_scenario_clock() {
    let exercise = in_process().await;
    let (trainee, counterpart) = (&exercise.trainee, &exercise.counterpart);
    let now = jiff::Timestamp::now;
    exercise.clock.sync(now(), Duration::ZERO, 1.0, true);
    let mut events = trainee.subscribe();
    let at_counterpart = door::sign_in(counterpart, "white").await;
    let mut flash = general("deadline");
    flash.precedence = Some(hotline::domain::Precedence::Flash);
    let sent = door::release(counterpart, &at_counterpart, "WASHINGTON", flash).await;
    wait_event(
        &mut events,
        Duration::from_secs(15),
        |e| matches!(e, Event::Received { id, .. } if *id == sent.id),
    )
    .await;
    let overdue = |s: &Station| {
        s.alarms()
            .iter()
            .any(|a| a.kind == hotline::station::AlarmKind::Overdue && a.id == Some(sent.id))
    };
    let wait = Duration::from_secs(15);
    tokio::time::sleep(wait).await;
    assert!(!overdue(trainee), "paused: the scenario clock stood still");
    exercise.clock.sync(now(), Duration::ZERO, 60.0, false);
    eventually(wait, "the FLASH overdue on the running clock", || {
        overdue(trainee)
    })
    .await;
    trainee.shutdown().await;
    counterpart.shutdown().await;
}
