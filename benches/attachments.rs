//! Attachment benchmark: two real stations on 127.0.0.1 send one 256 MiB
//! attachment (sealed with age, streamed at the lowest priority, decrypted
//! and hashed at the receiver), against a bare quinn stream carrying the
//! same number of bytes over the same loopback in the same run.
//!
//! Three hotline figures, each from its own pair of stations:
//! - the upload alone: from the first byte offered to the sender's
//!   receipt for the stored and verified attachment, and the peak memory
//!   of that stage;
//! - FLASH at idle: FLASH messages released one at a time on a quiet link,
//!   release → receipt;
//! - FLASH in flight: the same while a second upload of the same size runs.
//!
//! Peak memory is the process's VmHWM, started again before each stage
//! (both stations and the floor run in this process; a log-in's argon2
//! alone takes 128 MiB and is not counted). The temp dir is checked for
//! tmpfs, which would make every sync free.
//!
//! Run with `cargo bench --bench attachments`; `HOTLINE_BENCH_QUICK=1`
//! sends 32 MiB instead. Prints a table, then one JSON line.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Summary, floor_configs, peak_kib, reset_peak};
use hotline::domain::{MessageId, Precedence};
use hotline::station::api::Session;
use hotline::station::{Event, Station};
use hotline::store::Direction;
use serde_json::json;
use tokio::sync::broadcast;

/// How long any one step may take before the run is abandoned.
const WAIT_LIMIT: Duration = Duration::from_secs(600);
/// Bytes per write on the bare stream, as the link writes attachments.
const CHUNK: usize = 64 * 1024;
/// FLASH messages released at idle.
const IDLE_PROBES: usize = 50;
/// FLASH messages released while the attachment is in flight, at most.
const FLASH_PROBES: usize = 400;
/// Pause between FLASH probes.
const FLASH_GAP: Duration = Duration::from_millis(5);

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn ms(d: Duration) -> f64 {
    common::round(d.as_secs_f64() * 1e3, 2)
}

/// `size` bytes on one bare quinn stream, read and discarded chunk by chunk
/// at the far end, which answers one byte when it has them all.
async fn bare_quinn(size: u64) -> (Duration, f64) {
    let (server_config, client_config) = floor_configs();
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().expect("addr"))
        .expect("server endpoint");
    let addr = server.local_addr().expect("addr");
    tokio::spawn(async move {
        let Some(incoming) = server.accept().await else {
            return;
        };
        let Ok(conn) = incoming.await else { return };
        let Ok((mut send, mut recv)) = conn.accept_bi().await else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        while let Ok(Some(_)) = recv.read(&mut buf).await {}
        let _ = send.write_all(b"k").await;
        let _ = send.finish();
        let _ = conn.closed().await;
    });
    let mut client =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
    client.set_default_client_config(client_config);
    let conn = client
        .connect(addr, "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    let mut chunk = vec![0u8; CHUNK];
    getrandom::fill(&mut chunk).expect("random");
    let t0 = Instant::now();
    let cpu0 = common::process_cpu();
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    send.set_priority(-1).expect("priority");
    let mut sent = 0u64;
    while sent < size {
        send.write_all(&chunk).await.expect("write");
        sent += CHUNK as u64;
    }
    send.finish().expect("finish");
    let answer = tokio::time::timeout(WAIT_LIMIT, recv.read_to_end(16))
        .await
        .expect("answer in time")
        .expect("answer");
    assert_eq!(answer, b"k");
    let took = t0.elapsed();
    let cores = (common::process_cpu() - cpu0).as_secs_f64() / took.as_secs_f64();
    conn.close(0u32.into(), b"done");
    (took, cores)
}

/// Two stations that know each other, with room for the attachment, and
/// WASHINGTON's operator logged in.
struct Pair {
    ws: Station,
    ms: Station,
    wev: broadcast::Receiver<Event>,
    session: Session,
    m_dir: PathBuf,
    m_keys: hotline::crypto::StationKeys,
}

async fn pair(root: &Path) -> Pair {
    // A larger limit than the default 64 MiB, for the 256 MiB run.
    let limits = format!(
        "{}\n[attachments]\nmax_size = \"1 GiB\"\nmax_message = \"1 GiB\"\n",
        support::FAST_LINK.replace(
            "flash_receipt_alarm = \"5s\"",
            "flash_receipt_alarm = \"60s\""
        ),
    );
    let (w, m) = support::pair(root, &limits);
    let ws = w.start().await;
    let ms = m.start().await;
    let wev = ws.subscribe();
    let session = common::login(&ws, "op", support::PASSPHRASE).await;
    Pair {
        ws,
        ms,
        wev,
        session,
        m_dir: m.dir.clone(),
        m_keys: m.keys(),
    }
}

fn random_file(path: &Path, size: u64) {
    let mut f = std::fs::File::create(path).expect("file");
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..size / (1 << 20) {
        getrandom::fill(&mut buf).expect("random");
        f.write_all(&buf).expect("write");
    }
}

fn stored(e: &Event, id: MessageId) -> bool {
    matches!(e, Event::AttachmentStored { id: i, direction: Direction::Out, .. } if *i == id)
}

/// One FLASH, release → receipt. Whether the attachment `upload` was
/// stored meanwhile is noted in `done`.
async fn flash(p: &mut Pair, n: usize, upload: Option<MessageId>, done: &mut bool) -> Duration {
    let mut d = support::general(&format!("flash {n}"));
    d.precedence = Some(Precedence::Flash);
    let t = Instant::now();
    let r = common::release(&p.ws, &p.session, "MOSCOW", d, Vec::new()).await;
    support::wait_event(&mut p.wev, WAIT_LIMIT, |e| {
        if upload.is_some_and(|id| stored(e, id)) {
            *done = true;
        }
        matches!(e, Event::Receipt { id: i, .. } if *i == r.id)
    })
    .await;
    t.elapsed()
}

/// Releases `file` ROUTINE and waits until its upload starts.
async fn release_attachment(p: &mut Pair, file: PathBuf) -> (MessageId, Duration) {
    let t0 = Instant::now();
    let mut draft = support::general("imagery");
    draft.precedence = Some(Precedence::Routine);
    let released = common::release(&p.ws, &p.session, "MOSCOW", draft, vec![file]).await;
    let seal = t0.elapsed();
    let id = released.id;
    support::wait_event(&mut p.wev, WAIT_LIMIT, |e| {
        matches!(e, Event::AttachmentProgress { id: i, direction: Direction::Out, .. } if *i == id)
    })
    .await;
    (id, seal)
}

struct Upload {
    seal: Duration,
    upload: Duration,
    /// Cores busy on average during the upload.
    cores: f64,
    verify: Duration,
    peak_kib: u64,
}

/// The upload alone, on a link with nothing else to do.
async fn upload_alone(root: &Path, size: u64) -> Upload {
    let mut p = pair(root).await;
    let file = root.join("imagery.bin");
    random_file(&file, size);
    reset_peak();
    let (id, seal) = release_attachment(&mut p, file).await;
    let t0 = Instant::now();
    let cpu0 = common::process_cpu();
    support::wait_event(&mut p.wev, WAIT_LIMIT, |e| stored(e, id)).await;
    let upload = t0.elapsed();
    let cores = (common::process_cpu() - cpu0).as_secs_f64() / upload.as_secs_f64();
    let peak_kib = peak_kib();
    let rows = p.ms.attachments(&id, Direction::In).expect("rows");
    assert_eq!(rows[0].size, size);
    p.ws.shutdown().await;
    p.ms.shutdown().await;
    // The receiver's check alone, on one core: decrypt and hash the file
    // it kept, as the verifier does while the bytes arrive.
    let kept = p.m_dir.join("data").join(&rows[0].sealed_path);
    let (classic, pq) = (p.m_keys.age.clone(), p.m_keys.pq.clone());
    let row = rows[0].clone();
    let verify = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut identities: Vec<&dyn age::Identity> = vec![&classic];
        if let Some(pq) = &pq {
            identities.insert(0, pq);
        }
        hotline::station::attachments::decrypt_into(
            &kept,
            &identities,
            row.size,
            &row.sha256,
            &mut std::io::sink(),
        )
        .expect("the kept file checks");
        t.elapsed()
    })
    .await
    .expect("verify");
    Upload {
        seal,
        upload,
        cores,
        verify,
        peak_kib,
    }
}

/// FLASH at idle, then FLASH while an upload of `size` bytes is in flight.
async fn flash_figures(root: &Path, size: u64) -> (Vec<Duration>, Vec<Duration>) {
    let mut p = pair(root).await;
    let file = root.join("imagery.bin");
    random_file(&file, size);
    let mut idle = Vec::new();
    let mut never = false;
    for n in 0..IDLE_PROBES {
        idle.push(flash(&mut p, n, None, &mut never).await);
        tokio::time::sleep(FLASH_GAP).await;
    }
    let (id, _) = release_attachment(&mut p, file).await;
    let mut busy = Vec::new();
    let mut done = false;
    for n in 0..FLASH_PROBES {
        let took = flash(&mut p, IDLE_PROBES + n, Some(id), &mut done).await;
        if done {
            break;
        }
        busy.push(took);
        tokio::time::sleep(FLASH_GAP).await;
    }
    if !done {
        support::wait_event(&mut p.wev, WAIT_LIMIT, |e| stored(e, id)).await;
    }
    p.ws.shutdown().await;
    p.ms.shutdown().await;
    (idle, busy)
}

fn main() {
    let quick = std::env::var("HOTLINE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let size: u64 = if quick { 32 << 20 } else { 256 << 20 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let tmpfs = common::on_tmpfs(tmp.path());
    eprintln!(
        "attachment bench: temp dir {}{}",
        tmp.path().display(),
        if tmpfs {
            " (tmpfs: syncs reach no disk, so no figure here is a durable one)"
        } else {
            ""
        }
    );
    let peak_resettable = reset_peak();
    let ((bare, bare_cores), bare_peak, up, (idle, busy)) = runtime.block_on(async {
        let bare = bare_quinn(size).await;
        let bare_peak = peak_kib();
        let up = upload_alone(&tmp.path().join("upload"), size).await;
        let flash = flash_figures(&tmp.path().join("flash"), size).await;
        (bare, bare_peak, up, flash)
    });
    let rate = |d: Duration| mib(size) / d.as_secs_f64();
    let share = 100.0 * bare.as_secs_f64() / up.upload.as_secs_f64();
    let idle = Summary::of(&idle);
    let busy = (!busy.is_empty()).then(|| Summary::of(&busy));
    let ratio = |f: fn(&Summary) -> Duration| {
        busy.map_or(f64::NAN, |b| {
            common::round(f(&b).as_secs_f64() / f(&idle).as_secs_f64(), 2)
        })
    };
    let (p50_ratio, p99_ratio) = (ratio(|s| s.p50), ratio(|s| s.p99));
    println!(
        "attachment benchmark: {} MiB{}{}",
        mib(size),
        if quick { " [QUICK]" } else { "" },
        if tmpfs { " [TMPFS: NOT DURABLE]" } else { "" }
    );
    println!("{:<48} {:>10}  goal", "measure", "value");
    let busy_ms = |f: fn(&Summary) -> Duration| busy.map_or(f64::NAN, |b| ms(f(&b)));
    let rows = [
        ("bare quinn stream, MiB/s", rate(bare), ""),
        ("bare quinn stream, cores busy", bare_cores, ""),
        (
            "hotline upload to stored+verified, MiB/s",
            rate(up.upload),
            "",
        ),
        ("hotline upload vs bare quinn, %", share, ">= 70"),
        ("hotline upload, cores busy", up.cores, ""),
        ("hotline seal at release, MiB/s", rate(up.seal), ""),
        (
            "receiver's check alone, one core, MiB/s",
            rate(up.verify),
            "",
        ),
        ("FLASH idle: p50 release->receipt, ms", ms(idle.p50), ""),
        ("FLASH idle: p99 release->receipt, ms", ms(idle.p99), ""),
        (
            "FLASH in flight: probes",
            busy.map_or(0.0, |b| b.n as f64),
            "",
        ),
        (
            "FLASH in flight: p50 release->receipt, ms",
            busy_ms(|s| s.p50),
            "",
        ),
        (
            "FLASH in flight: p99 release->receipt, ms",
            busy_ms(|s| s.p99),
            "",
        ),
        ("FLASH in flight / idle, p50", p50_ratio, ""),
        ("FLASH in flight / idle, p99", p99_ratio, "<= 2"),
        (
            "peak memory, bare quinn (VmHWM), MiB",
            bare_peak as f64 / 1024.0,
            "",
        ),
        (
            "peak memory, upload (VmHWM), MiB",
            up.peak_kib as f64 / 1024.0,
            "<= 64",
        ),
    ];
    for (name, value, goal) in rows {
        println!("{name:<48} {value:>10.2}  {goal}");
    }
    if !peak_resettable {
        println!("(the kernel did not let VmHWM be reset: peaks include earlier stages)");
    }
    println!(
        "{}",
        json!({
            "bench": "attachments",
            "quick": quick,
            "tmpfs": tmpfs,
            "size_bytes": size,
            "bare_quinn_mib_s": rate(bare),
            "bare_quinn_cores": common::round(bare_cores, 2),
            "upload_cores": common::round(up.cores, 2),
            "upload_mib_s": rate(up.upload),
            "upload_share_pct": common::round(share, 1),
            "seal_mib_s": rate(up.seal),
            "check_one_core_mib_s": rate(up.verify),
            "flash_idle_ms": {"p50": ms(idle.p50), "p99": ms(idle.p99), "n": idle.n},
            "flash_in_flight_ms": busy.map(|b| json!({"p50": ms(b.p50), "p99": ms(b.p99), "max": ms(b.max), "n": b.n})),
            "flash_in_flight_over_idle": {"p50": p50_ratio, "p99": p99_ratio},
            "peak_rss_kib": {"bare_quinn": bare_peak, "upload": up.peak_kib, "reset": peak_resettable},
        })
    );
}
