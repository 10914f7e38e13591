//! Attachment benchmark: two real stations on 127.0.0.1 send one 256 MiB
//! attachment (sealed with age, streamed at the lowest priority, decrypted
//! and hashed at the receiver), against a bare quinn stream carrying the
//! same number of bytes over the same loopback in the same run. While the
//! attachment is in flight, FLASH messages are released one at a time and
//! their release → receipt latency measured. Peak memory is the process's
//! VmHWM (both stations and the floor run in this process).
//!
//! Run with `cargo bench --bench attachments`; `HOTLINE_BENCH_QUICK=1`
//! sends 32 MiB instead. Prints a table, then one JSON line.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::floor_configs;
use hotline::domain::Precedence;
use hotline::station::Event;
use hotline::store::Direction;
use serde_json::json;

/// How long any one step may take before the run is abandoned.
const WAIT_LIMIT: Duration = Duration::from_secs(600);
/// Bytes per write on the bare stream, as the link writes attachments.
const CHUNK: usize = 64 * 1024;
/// FLASH messages released while the attachment is in flight, at most.
const FLASH_PROBES: usize = 20;
/// Pause between FLASH probes.
const FLASH_GAP: Duration = Duration::from_millis(100);

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// `size` bytes on one bare quinn stream, read and discarded chunk by chunk
/// at the far end, which answers one byte when it has them all.
async fn bare_quinn(size: u64) -> Duration {
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
    conn.close(0u32.into(), b"done");
    took
}

struct Hotline {
    seal: Duration,
    upload: Duration,
    end_to_end: Duration,
    flash: Vec<Duration>,
}

async fn hotline_attachment(root: &std::path::Path, size: u64) -> Hotline {
    // A larger limit than the default 64 MiB, for the 256 MiB run.
    let limits = format!(
        "{}\n[attachments]\nmax_size = \"{}\"\nmax_message = \"{}\"\n",
        support::FAST_LINK.replace(
            "flash_receipt_alarm = \"5s\"",
            "flash_receipt_alarm = \"60s\""
        ),
        "1 GiB",
        "1 GiB"
    );
    let (w, m) = support::pair(root, &limits);
    let ws = w.start().await;
    let ms = m.start().await;
    let mut wev = ws.subscribe();
    let file = root.join("imagery.bin");
    {
        let mut f = std::fs::File::create(&file).expect("file");
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..size / (1 << 20) {
            getrandom::fill(&mut buf).expect("random");
            f.write_all(&buf).expect("write");
        }
    }
    let session = common::login(&ws, "op", support::PASSPHRASE).await;
    let t0 = Instant::now();
    let mut draft = support::general("imagery");
    draft.precedence = Some(Precedence::Routine);
    let released = common::release(&ws, &session, "MOSCOW", draft, vec![file]).await;
    let seal = t0.elapsed();
    let id = released.id;
    support::wait_event(&mut wev, WAIT_LIMIT, |e| {
        matches!(e, Event::AttachmentProgress { id: i, direction: Direction::Out, .. } if *i == id)
    })
    .await;
    let upload_start = Instant::now();
    // FLASH probes, one at a time, while the attachment is in flight.
    let mut flash = Vec::new();
    let mut done_at = None;
    for n in 0..FLASH_PROBES {
        let mut d = support::general(&format!("flash {n}"));
        d.precedence = Some(Precedence::Flash);
        let t = Instant::now();
        let r = common::release(&ws, &session, "MOSCOW", d, Vec::new()).await;
        support::wait_event(&mut wev, WAIT_LIMIT, |e| {
            if matches!(e, Event::AttachmentStored { id: i, direction: Direction::Out, .. } if *i == id)
            {
                done_at = Some(Instant::now());
            }
            matches!(e, Event::Receipt { id: i, .. } if *i == r.id)
        })
        .await;
        if done_at.is_some() {
            break;
        }
        flash.push(t.elapsed());
        tokio::time::sleep(FLASH_GAP).await;
    }
    let done_at = match done_at {
        Some(t) => t,
        None => {
            support::wait_event(&mut wev, WAIT_LIMIT, |e| {
                matches!(e, Event::AttachmentStored { id: i, direction: Direction::Out, .. } if *i == id)
            })
            .await;
            Instant::now()
        }
    };
    let out = ms.attachments(&id, Direction::In).expect("rows");
    assert_eq!(out[0].size, size);
    ws.shutdown().await;
    ms.shutdown().await;
    Hotline {
        seal,
        upload: done_at - upload_start,
        end_to_end: done_at - t0,
        flash,
    }
}

fn main() {
    let quick = std::env::var("HOTLINE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let size: u64 = if quick { 32 << 20 } else { 256 << 20 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let before = peak_kib();
    let (bare, h) = runtime.block_on(async {
        let bare = bare_quinn(size).await;
        let h = hotline_attachment(tmp.path(), size).await;
        (bare, h)
    });
    let peak = peak_kib();
    let rate = |d: Duration| mib(size) / d.as_secs_f64();
    let mut flash: Vec<f64> = h.flash.iter().map(|d| ms(*d)).collect();
    flash.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if flash.is_empty() {
            return f64::NAN;
        }
        flash[((flash.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "attachment benchmark: {} MiB{}",
        mib(size),
        if quick { " [QUICK]" } else { "" }
    );
    println!("{:<44} {:>12}", "measure", "value");
    let rows = [
        ("bare quinn stream, MiB/s", rate(bare)),
        ("hotline upload to stored+verified, MiB/s", rate(h.upload)),
        (
            "hotline upload vs bare quinn, %",
            100.0 * bare.as_secs_f64() / h.upload.as_secs_f64(),
        ),
        ("hotline seal at release, MiB/s", rate(h.seal)),
        (
            "hotline release to stored+verified, s",
            h.end_to_end.as_secs_f64(),
        ),
        ("FLASH in flight: probes", flash.len() as f64),
        ("FLASH in flight: p50 release->receipt, ms", pct(0.5)),
        ("FLASH in flight: max release->receipt, ms", pct(1.0)),
        ("peak memory before (VmHWM), MiB", before as f64 / 1024.0),
        ("peak memory after (VmHWM), MiB", peak as f64 / 1024.0),
    ];
    for (name, value) in rows {
        println!("{name:<44} {value:>12.2}");
    }
    println!(
        "{}",
        json!({
            "bench": "attachments",
            "quick": quick,
            "size_bytes": size,
            "bare_quinn_mib_s": rate(bare),
            "upload_mib_s": rate(h.upload),
            "seal_mib_s": rate(h.seal),
            "release_to_verified_s": h.end_to_end.as_secs_f64(),
            "flash_in_flight_ms": flash,
            "peak_rss_kib_before": before,
            "peak_rss_kib": peak,
        })
    );
}
