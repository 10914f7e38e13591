//! The journal against a real SQLite file in a temporary directory, with real
//! keys and really sealed messages: durability settings, SIGKILL of a writing
//! process (with a deliberately broken writer as the control), audit tamper
//! detection, batching, duplicates, serial allocation, reopening and schema
//! versions.
//!
//! The SIGKILL tests re-execute this test binary; `child_writer_entry` is the
//! child's entry point and does nothing unless `HOTLINE_TEST_CHILD` is set.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};
use hotline::compose::{self, Checked, Draft, Origin};
use hotline::crypto::signed::{self, Kind};
use hotline::crypto::{PeerKeys, StationKeys, open_inbound, open_outbound, seal};
use hotline::domain::{Language, Message, OperatorName, Precedence, StationName};
use hotline::store::audit::{self, AuditFault, GENESIS, Head, Verified};
use hotline::store::{
    CheckpointKey, Direction, Journal, MessageState, StoreError, Stored, schema_version,
};
use hotline::templates::Catalog;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

// ---------------------------------------------------------------------------
// Helpers

fn name(s: &str) -> StationName {
    StationName::new(s).expect("valid station name")
}

fn station(s: &str) -> StationKeys {
    StationKeys::generate(name(s)).expect("random keys")
}

fn checkpoint_key(keys: &StationKeys) -> CheckpointKey {
    CheckpointKey {
        station: keys.name.clone(),
        key: keys.signing.clone(),
    }
}

fn origin(keys: &StationKeys) -> Origin {
    Origin {
        station: keys.name.clone(),
        operator: OperatorName::new("j.smith").expect("operator name"),
        second_operator: None,
        language: Language::EN,
    }
}

fn general(subject: &str) -> Checked {
    let draft = Draft {
        template_id: "general".into(),
        fields: BTreeMap::from([
            ("subject".to_string(), subject.to_string()),
            (
                "text".to_string(),
                "Stand by for further traffic.".to_string(),
            ),
        ]),
        ..Draft::default()
    };
    compose::check(&draft, Catalog::builtin(), Timestamp::now()).expect("the draft checks")
}

/// A real message from `from` to `to`, signed and sealed with real keys.
fn sealed_message(from: &StationKeys, to: &PeerKeys, serial: u64) -> (Message, Vec<u8>) {
    let message = compose::build(
        &general("test"),
        &origin(from),
        &to.name,
        serial,
        Timestamp::now(),
    );
    let sealed = seal(&message, from, to).expect("seal");
    (message, sealed)
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("raw sqlite connection");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

fn u64s(conn: &Connection, sql: &str) -> Vec<u64> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .expect("query")
        .map(|v| v.expect("row") as u64)
        .collect()
}

fn synchronous_of(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
}

fn open_err(result: Result<Journal, StoreError>) -> StoreError {
    match result {
        Ok(_) => panic!("the journal was expected to be refused"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------
// 1. Durability settings

#[test]
fn durability_settings_wal_full_sync_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let path = state.join("journal.db");
    let journal = Journal::open(&path, None).expect("open");

    // journal_mode is stored in the file: any connection sees it.
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    // Control: a plain SQLite file does not report WAL, so the probe can fail.
    let plain_path = dir.path().join("plain.db");
    let plain = raw(&plain_path);
    plain.execute_batch("CREATE TABLE t (x)").expect("create");
    let plain_mode: String = plain
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_ne!(plain_mode, "wal");

    // synchronous is per connection: ask the writer's own connection.
    let sync = journal
        .write(|tx| Ok(synchronous_of(tx)?))
        .wait()
        .expect("writer answers");
    assert_eq!(sync, 2, "the writer must use synchronous=FULL (2)");
    // Control: the same probe reports a weaker setting when there is one.
    plain
        .pragma_update(None, "synchronous", "NORMAL")
        .expect("set NORMAL");
    assert_eq!(synchronous_of(&plain).expect("probe"), 1);

    // Owner-only: the journal, its WAL and the directory created for it.
    assert_eq!(mode_of(&path), 0o600, "journal file mode");
    let wal = sidecar(&path, "-wal");
    assert!(wal.exists(), "a committed write leaves a WAL file");
    assert_eq!(mode_of(&wal), 0o600, "WAL file mode");
    assert_eq!(mode_of(&state), 0o700, "journal directory mode");
    drop(journal);

    // Control: a journal others can read is refused, by both ways of opening.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(matches!(
        open_err(Journal::open(&path, None)),
        StoreError::Permission(_)
    ));
    assert!(matches!(
        open_err(Journal::open_read_only(&path)),
        StoreError::Permission(_)
    ));
}

// ---------------------------------------------------------------------------
// 2. SIGKILL durability

const CHILD_MODE: &str = "HOTLINE_TEST_CHILD";
const CHILD_JOURNAL: &str = "HOTLINE_TEST_JOURNAL";
const CHILD_SEED: &str = "HOTLINE_TEST_SEED";
/// The parent kills the child once it has been told of this many commits.
const KILL_AFTER: usize = 300;
const CHILD_THREADS: usize = 4;
/// Writes each child thread keeps in flight before waiting.
const CHILD_IN_FLIGHT: usize = 4;
/// A child never outlives this, even if its parent died.
const CHILD_LIFETIME: Duration = Duration::from_secs(25);
/// How long the parent waits for the child's reports.
const CHILD_REPORT_TIMEOUT: Duration = Duration::from_secs(20);
/// The real writers are crashed this many times in a row on one journal:
/// each run recovers the previous crash and goes on writing.
const CRASH_CYCLES: usize = 3;
/// The broken writer commits every this many rows...
const BROKEN_BATCH: u64 = 128;
/// ...and stops for good, its transaction open, after this many reports.
/// 300 is inside the third batch (257..=384), so whenever the kill lands,
/// at least rows 257..=300 were reported but never committed.
const BROKEN_STOP: u64 = KILL_AFTER as u64 + 20;

/// One commit a child claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reported {
    Audit { seq: u64, hash: String },
    Message { id: String, serial: u64 },
}

fn parse_report(line: &str) -> Option<Reported> {
    let mut words = line.strip_prefix("committed ")?.split(' ');
    let kind = words.next()?;
    let a = words.next()?;
    let b = words.next()?;
    match kind {
        "audit" => Some(Reported::Audit {
            seq: a.parse().ok()?,
            hash: b.to_string(),
        }),
        "message" => Some(Reported::Message {
            id: a.to_string(),
            serial: b.parse().ok()?,
        }),
        _ => None,
    }
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("flush stdout");
}

/// Entry point of the child process; a no-op in a normal test run.
#[test]
fn child_writer_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(CHILD_JOURNAL).expect("journal path in env"));
    let seed: [u8; 32] = hex::decode(std::env::var(CHILD_SEED).expect("seed in env"))
        .expect("hex seed")
        .try_into()
        .expect("32-byte seed");
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFETIME);
        std::process::exit(3);
    });
    match mode.as_str() {
        "audit" => child_audit(&path, &seed),
        "release" => child_release(&path, &seed),
        "broken" => child_broken(&path),
        other => panic!("unknown child mode {other}"),
    }
}

fn child_checkpoint_key(seed: &[u8; 32]) -> CheckpointKey {
    CheckpointKey {
        station: name("CHILD"),
        key: SigningKey::from_bytes(seed),
    }
}

/// Audit entries from several threads through the real journal; each one
/// reported only after its `wait()` said it is committed.
fn child_audit(path: &Path, seed: &[u8; 32]) {
    let journal = Journal::open(path, Some(child_checkpoint_key(seed))).expect("child open");
    std::thread::scope(|s| {
        for t in 0..CHILD_THREADS {
            let journal = &journal;
            s.spawn(move || {
                for round in 0u64.. {
                    let pending: Vec<_> = (0..CHILD_IN_FLIGHT)
                        .map(|k| journal.audit("child", "tick", &format!("t={t} r={round} k={k}")))
                        .collect();
                    for p in pending {
                        let head = p.wait().expect("audit committed");
                        report(&format!("committed audit {} {}", head.seq, head.hash));
                    }
                }
            });
        }
    });
}

/// Messages released (serial, seal, store, audit) from several threads.
fn child_release(path: &Path, seed: &[u8; 32]) {
    let journal = Journal::open(path, Some(child_checkpoint_key(seed))).expect("child open");
    let mut me = station("CHILD");
    me.signing = SigningKey::from_bytes(seed);
    let me = Arc::new(me);
    let peer = station("PEER").public();
    let checked = general("crash test");
    std::thread::scope(|s| {
        for _ in 0..CHILD_THREADS {
            let (journal, me, peer, checked) =
                (&journal, me.clone(), peer.clone(), checked.clone());
            s.spawn(move || {
                loop {
                    let pending: Vec<_> = (0..CHILD_IN_FLIGHT)
                        .map(|_| {
                            compose::release(
                                journal,
                                me.clone(),
                                peer.clone(),
                                checked.clone(),
                                origin(&me),
                            )
                        })
                        .collect();
                    for p in pending {
                        let (released, _) = p.wait().expect("release committed");
                        report(&format!(
                            "committed message {} {}",
                            released.id, released.serial
                        ));
                    }
                }
            });
        }
    });
}

/// The CONTROL writer: bypasses the journal and claims each row committed as
/// soon as it is inserted, before its transaction commits.
fn child_broken(path: &Path) {
    drop(Journal::open(path, None).expect("create the schema"));
    let conn = raw(path);
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("synchronous=OFF");
    let mut prev = GENESIS.to_string();
    let mut seq = 0u64;
    loop {
        conn.execute_batch("BEGIN").expect("begin");
        for _ in 0..BROKEN_BATCH {
            seq += 1;
            let at = Timestamp::now().to_string();
            let detail = format!("row {seq}");
            let hash = audit::entry_hash(seq, &at, "broken", "tick", &detail, &prev);
            conn.execute(
                "INSERT INTO audit (seq, at, actor, action, detail, prev, hash) \
                 VALUES (?1, ?2, 'broken', 'tick', ?3, ?4, ?5)",
                params![seq as i64, at, detail, prev, hash],
            )
            .expect("insert");
            report(&format!("committed audit {seq} {hash}"));
            prev = hash;
            if seq == BROKEN_STOP {
                // Never commits this batch: waits to be killed.
                loop {
                    std::thread::park();
                }
            }
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
}

/// Kills the child if the parent panics before it did.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a child writer, SIGKILLs it once it has reported `KILL_AFTER`
/// commits, and returns every commit it reported (also those printed between
/// the parent's decision and the kill).
fn run_child_and_kill(mode: &str, path: &Path, seed: &[u8; 32]) -> Vec<Reported> {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_writer_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_JOURNAL, path)
        .env(CHILD_SEED, hex::encode(seed))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("child stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut reported = Vec::new();
    let deadline = Instant::now() + CHILD_REPORT_TIMEOUT;
    while reported.len() < KILL_AFTER {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => reported.extend(parse_report(&line.expect("child stdout line"))),
            Err(e) => panic!(
                "child `{mode}` stopped reporting after {} commits ({e}); status {:?}",
                reported.len(),
                child.0.try_wait()
            ),
        }
    }
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "the child must still be writing when it is killed"
    );
    let pid = libc::pid_t::try_from(child.0.id()).expect("pid");
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill(SIGKILL)");
    let status = child.0.wait().expect("wait for the child");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "child died of SIGKILL"
    );
    // Whatever reached the pipe before the kill was reported as committed too.
    for line in lines.iter() {
        reported.extend(parse_report(&line.expect("child stdout line")));
    }
    reader.join().expect("reader thread");
    reported
}

/// What the reopened journal says about a crashed writer's claims.
struct AfterCrash {
    /// Commits the writer reported that the journal does not hold.
    missing: Vec<Reported>,
    audit: Result<Verified, AuditFault>,
    /// Serials of outbound messages, in order.
    serials: Vec<u64>,
    /// Serials declared void (crash holes voided on reopening), in order.
    void: Vec<u64>,
}

/// The one checker for every crashed writer, real or broken.
/// Reopens the journal as the station would after the crash (with its
/// key: serials reserved and never stored are declared void, audited and
/// signed) and checks what the children reported against it.
fn check_after_crash(path: &Path, seed: &[u8; 32], reported: &[Reported]) -> AfterCrash {
    let station_key = SigningKey::from_bytes(seed).verifying_key();
    let journal =
        Journal::open(path, Some(child_checkpoint_key(seed))).expect("reopen after the crash");
    let missing = journal
        .read(|c| {
            let mut missing = Vec::new();
            for r in reported {
                let present = match r {
                    Reported::Audit { seq, hash } => c
                        .query_row(
                            "SELECT hash FROM audit WHERE seq = ?1",
                            [*seq as i64],
                            |r| r.get::<_, String>(0),
                        )
                        .optional()?
                        .is_some_and(|h| h == *hash),
                    Reported::Message { id, serial } => c
                        .query_row(
                            "SELECT serial FROM messages WHERE id = ?1 AND direction = 'out'",
                            [id],
                            |r| r.get::<_, i64>(0),
                        )
                        .optional()?
                        .is_some_and(|s| s as u64 == *serial),
                };
                if !present {
                    missing.push(r.clone());
                }
            }
            Ok(missing)
        })
        .expect("read");
    let audit = journal.verify_audit(&station_key).expect("verify runs");
    let serials = journal
        .read(|c| {
            Ok(u64s(
                c,
                "SELECT serial FROM messages WHERE direction = 'out' ORDER BY serial",
            ))
        })
        .expect("read");
    let void = journal
        .read(|c| Ok(u64s(c, "SELECT serial FROM void_serials ORDER BY serial")))
        .expect("read");
    AfterCrash {
        missing,
        audit,
        serials,
        void,
    }
}

fn crash_seed() -> [u8; 32] {
    station("SEED").signing.to_bytes()
}

#[test]
fn sigkill_audit_writer_loses_no_reported_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let seed = crash_seed();
    let mut reported = Vec::new();
    for cycle in 1..=CRASH_CYCLES {
        reported.extend(run_child_and_kill("audit", &path, &seed));
        assert!(reported.len() >= cycle * KILL_AFTER);
    }
    let seqs: HashSet<u64> = reported
        .iter()
        .map(|r| match r {
            Reported::Audit { seq, .. } => *seq,
            Reported::Message { .. } => panic!("audit child reported a message"),
        })
        .collect();
    assert_eq!(seqs.len(), reported.len(), "each seq reported once");

    let after = check_after_crash(&path, &seed, &reported);
    assert_eq!(
        after.missing,
        Vec::new(),
        "reported commits lost by SIGKILL"
    );
    let verified = after.audit.expect("the audit chain verifies after SIGKILL");
    let top = seqs.iter().copied().max().expect("some seq");
    assert!(verified.entries >= top);
    assert_eq!(
        verified.checkpoint,
        Some(verified.entries),
        "each batch commits with its checkpoint"
    );
}

#[test]
fn sigkill_release_writer_loses_no_reported_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let seed = crash_seed();
    let mut reported = Vec::new();
    for cycle in 1..=CRASH_CYCLES {
        reported.extend(run_child_and_kill("release", &path, &seed));
        assert!(reported.len() >= cycle * KILL_AFTER);
    }

    let after = check_after_crash(&path, &seed, &reported);
    assert_eq!(
        after.missing,
        Vec::new(),
        "reported releases lost by SIGKILL"
    );
    let verified = after.audit.expect("the audit chain verifies after SIGKILL");
    let stored = after.serials.len() as u64;
    assert!(stored >= reported.len() as u64);
    // Seals run in parallel, so a kill can leave a serial reserved and
    // never stored below one that was: each such hole is declared void on
    // reopening, and only those (at most what was in flight per kill).
    let voids = after.void.len() as u64;
    assert!(
        voids <= (CRASH_CYCLES * CHILD_THREADS * CHILD_IN_FLIGHT) as u64,
        "more voids than releases in flight: {:?}",
        after.void
    );
    let mut accounted: Vec<u64> = after.serials.iter().chain(&after.void).copied().collect();
    accounted.sort_unstable();
    assert_eq!(
        accounted,
        (1..=stored + voids).collect::<Vec<_>>(),
        "serials without repeats, every hole void (void: {:?})",
        after.void
    );
    assert_eq!(
        verified.entries,
        stored + voids,
        "one audit entry per release and per void"
    );
    assert_eq!(verified.checkpoint, Some(verified.entries));
}

#[test]
fn sigkill_control_broken_writer_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let seed = crash_seed();
    let reported = run_child_and_kill("broken", &path, &seed);
    assert!(reported.len() >= KILL_AFTER);

    let after = check_after_crash(&path, &seed, &reported);
    assert!(
        !after.missing.is_empty(),
        "the checker must notice commits that a broken writer only claimed"
    );
    // ...and it is precise: the committed batches are all found.
    let committed_up_to = (KILL_AFTER as u64 / BROKEN_BATCH) * BROKEN_BATCH;
    for m in &after.missing {
        let Reported::Audit { seq, .. } = m else {
            panic!("unexpected report {m:?}");
        };
        assert!(
            *seq > committed_up_to,
            "committed row {seq} reported missing"
        );
    }
    assert!(after.missing.len() as u64 >= KILL_AFTER as u64 - committed_up_to);
    // The surviving prefix is a whole chain, which this writer (holding
    // no key) never checkpointed: verify says exactly that, up to where it
    // committed.
    assert_eq!(
        after.audit,
        Err(AuditFault::Unsigned {
            checkpoint: 0,
            last: committed_up_to
        })
    );
}

// ---------------------------------------------------------------------------
// 3. Audit tampering

const AUDITED: u64 = 20;

/// A fresh journal with `AUDITED` entries, each committed in its own batch
/// and so checkpointed.
fn audited_journal(dir: &Path, keys: &StationKeys) -> PathBuf {
    let path = dir.join("journal.db");
    let journal = Journal::open(&path, Some(checkpoint_key(keys))).expect("open");
    for i in 1..=AUDITED {
        let head = journal
            .audit("j.smith", "login", &format!("console {i}"))
            .wait()
            .expect("audit");
        assert_eq!(head.seq, i);
    }
    path
}

fn verify_file(path: &Path, key: &VerifyingKey) -> Result<Verified, AuditFault> {
    Journal::open_read_only(path)
        .expect("open read-only")
        .verify_audit(key)
        .expect("verify runs")
}

fn entries_from(conn: &Connection, from: u64) -> Vec<audit::Entry> {
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, actor, action, detail, prev, hash FROM audit WHERE seq >= ?1 ORDER BY seq",
        )
        .expect("prepare");
    stmt.query_map([from as i64], |r| {
        Ok(audit::Entry {
            seq: r.get::<_, i64>(0)? as u64,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            detail: r.get(4)?,
            prev: r.get(5)?,
            hash: r.get(6)?,
        })
    })
    .expect("query")
    .map(|e| e.expect("row"))
    .collect()
}

/// Changes entry `seq`'s detail and rewrites the chain from there on so
/// that every link and hash is consistent again (the unsigned `hash` column
/// of the checkpoints too). Returns the new head hash.
fn rewrite_chain_from(conn: &Connection, seq: u64, detail: &str) -> String {
    let mut prev: Option<String> = None;
    for mut e in entries_from(conn, seq) {
        if let Some(p) = prev.take() {
            e.prev = p;
        }
        if e.seq == seq {
            e.detail = detail.to_string();
        }
        e.hash = audit::entry_hash(e.seq, &e.at, &e.actor, &e.action, &e.detail, &e.prev);
        conn.execute(
            "UPDATE audit SET detail = ?2, prev = ?3, hash = ?4 WHERE seq = ?1",
            params![e.seq as i64, e.detail, e.prev, e.hash],
        )
        .expect("update entry");
        conn.execute(
            "UPDATE checkpoints SET hash = ?2 WHERE seq = ?1",
            params![e.seq as i64, e.hash],
        )
        .expect("update checkpoint hash");
        prev = Some(e.hash);
    }
    prev.expect("entries were rewritten")
}

/// Replaces the newest checkpoint's signature by one made with `key` over the
/// same body, or over a body naming `hash` if given.
fn resign_newest_checkpoint(conn: &Connection, key: &SigningKey, hash: Option<&str>) -> u64 {
    let (seq, doc): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT seq, signed FROM checkpoints ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("newest checkpoint");
    let parsed = signed::parse(&doc).expect("stored checkpoint parses");
    let signer = name(parsed.claimed_signer());
    let split = doc
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("header/body split");
    let mut body: serde_json::Value = serde_json::from_slice(&doc[split + 2..]).expect("body json");
    if let Some(h) = hash {
        body["hash"] = serde_json::Value::String(h.to_string());
    }
    let body = serde_json::to_vec(&body).expect("json");
    let forged = signed::sign(Kind::Checkpoint, &signer, &body, key);
    conn.execute(
        "UPDATE checkpoints SET signed = ?2 WHERE seq = ?1",
        params![seq, forged],
    )
    .expect("replace checkpoint");
    seq as u64
}

#[test]
fn audit_tampering_is_detected() {
    let keys = station("WASHINGTON");
    let vk = keys.signing.verifying_key();
    let attacker = station("WASHINGTON").signing;
    let fresh = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = audited_journal(dir.path(), &keys);
        (dir, path)
    };

    // CONTROL: untouched, it verifies, covered by a checkpoint at the head.
    let (_d0, path) = fresh();
    let head_hash: String = raw(&path)
        .query_row(
            "SELECT hash FROM audit WHERE seq = ?1",
            [AUDITED as i64],
            |r| r.get(0),
        )
        .expect("head");
    assert_eq!(
        u64s(&raw(&path), "SELECT seq FROM checkpoints ORDER BY seq"),
        (1..=AUDITED).collect::<Vec<_>>(),
        "one checkpoint per batch"
    );
    assert_eq!(
        verify_file(&path, &vk),
        Ok(Verified {
            entries: AUDITED,
            head: Some(Head {
                seq: AUDITED,
                hash: head_hash
            }),
            checkpoint: Some(AUDITED),
        })
    );
    // CONTROL: another station's key does not verify our checkpoint.
    assert_eq!(
        verify_file(&path, &attacker.verifying_key()),
        Err(AuditFault::BadCheckpointSignature { seq: 1 })
    );

    // (a) one entry's detail altered.
    let (_da, path) = fresh();
    raw(&path)
        .execute("UPDATE audit SET detail = 'console 99' WHERE seq = 7", [])
        .expect("tamper");
    assert_eq!(verify_file(&path, &vk), Err(AuditFault::Altered { seq: 7 }));

    // (b) altered and the chain recomputed: only the signed checkpoint knows.
    let (_db, path) = fresh();
    rewrite_chain_from(&raw(&path), 7, "console 99");
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::Rewritten { seq: 7 }),
        "every checkpoint is checked: the first after the change catches it"
    );

    // (b') rewritten and the checkpoint re-signed by someone else's key.
    let (_db2, path) = fresh();
    let conn = raw(&path);
    let new_head = rewrite_chain_from(&conn, 7, "console 99");
    let seq = resign_newest_checkpoint(&conn, &attacker, Some(&new_head));
    drop(conn);
    assert_eq!(seq, AUDITED);
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::Rewritten { seq: 7 })
    );

    // CONTROL: the genuine body re-signed by another key is refused too.
    let (_dc, path) = fresh();
    resign_newest_checkpoint(&raw(&path), &attacker, None);
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::BadCheckpointSignature { seq: AUDITED })
    );
    // ...while the same re-signing with the station's own key verifies, so
    // it is the key that is detected, not the rewriting of the row.
    let (_dc2, path) = fresh();
    resign_newest_checkpoint(&raw(&path), &keys.signing, None);
    assert!(verify_file(&path, &vk).is_ok());

    // (c) the last entries, covered by the newest checkpoint, cut off.
    let (_dt, path) = fresh();
    raw(&path)
        .execute("DELETE FROM audit WHERE seq > 17", [])
        .expect("truncate");
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::Truncated {
            checkpoint: 18,
            last: 17
        }),
        "the first checkpoint past the end names the cut"
    );
    // With the checkpoints past the cut removed too, no checkpoint is
    // missing from the chain of them, so what remains verifies; that cut
    // is what the peers' recorded heads catch (tests/audit_heads.rs).
    raw(&path)
        .execute("DELETE FROM checkpoints WHERE seq > 17", [])
        .expect("cut checkpoints");
    assert_eq!(verify_file(&path, &vk).map(|v| v.checkpoint), Ok(Some(17)));

    // (d) a middle entry deleted.
    let (_dg, path) = fresh();
    raw(&path)
        .execute("DELETE FROM audit WHERE seq = 10", [])
        .expect("delete");
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::Gap {
            seq: 11,
            expected: 10
        })
    );

    // (d') a middle entry deleted and the later ones renumbered.
    let (_dl, path) = fresh();
    let conn = raw(&path);
    conn.execute("DELETE FROM audit WHERE seq = 10", [])
        .expect("delete");
    for seq in 11..=AUDITED {
        conn.execute(
            "UPDATE audit SET seq = ?1 WHERE seq = ?2",
            params![(seq - 1) as i64, seq as i64],
        )
        .expect("renumber");
    }
    drop(conn);
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::BrokenLink { seq: 10 })
    );

    // (e) cut back to an older checkpoint, its later checkpoints with it,
    // and invented entries appended with a recomputed chain: no signed
    // checkpoint covers them.
    let (_de, path) = fresh();
    let conn = raw(&path);
    conn.execute("DELETE FROM audit WHERE seq > 12", [])
        .expect("cut");
    conn.execute("DELETE FROM checkpoints WHERE seq > 12", [])
        .expect("cut checkpoints");
    // CONTROL: cut back exactly to a checkpoint, it verifies (what the
    // peers' recorded heads are for), so the appending is what fails below.
    assert!(verify_file(&path, &vk).is_ok());
    let mut prev: String = conn
        .query_row("SELECT hash FROM audit WHERE seq = 12", [], |r| r.get(0))
        .expect("entry 12");
    for seq in 13..=15u64 {
        let at = "2026-12-03T12:00:00Z";
        let detail = format!("invented {seq}");
        let hash = audit::entry_hash(seq, at, "j.smith", "login", &detail, &prev);
        conn.execute(
            "INSERT INTO audit (seq, at, actor, action, detail, prev, hash) VALUES (?1, ?2, 'j.smith', 'login', ?3, ?4, ?5)",
            params![seq as i64, at, detail, prev, hash],
        )
        .expect("append");
        prev = hash;
    }
    drop(conn);
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::Unsigned {
            checkpoint: 12,
            last: 15
        })
    );

    // (f) a checkpoint taken out of the middle: the next one names it.
    let (_df, path) = fresh();
    raw(&path)
        .execute("DELETE FROM checkpoints WHERE seq = 9", [])
        .expect("delete checkpoint");
    assert_eq!(
        verify_file(&path, &vk),
        Err(AuditFault::CheckpointMissing {
            seq: 10,
            previous: 9
        })
    );
}

// ---------------------------------------------------------------------------
// 4. Batching and rollback of one failing job

#[test]
fn queued_writes_share_a_batch_and_a_failing_job_rolls_back_alone() {
    const JOBS: usize = 300;
    const REFUSED: usize = 100;
    const SQL_ERROR: usize = 200;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let keys = station("WASHINGTON");
    let journal = Journal::open(&path, Some(checkpoint_key(&keys))).expect("open");

    // Hold the writer inside a first job so that everything below queues.
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (open_gate, gate) = mpsc::channel::<()>();
    let gate_job = journal.write(move |tx| {
        let head = audit::append(tx, "test", "gate", "held")?;
        let _ = entered_tx.send(());
        gate.recv_timeout(Duration::from_secs(10))
            .map_err(|_| StoreError::Rejected("the gate never opened".into()))?;
        Ok(head)
    });
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer runs the gate job");

    let pending: Vec<_> = (0..JOBS)
        .map(|i| match i {
            REFUSED => journal.write(|tx| {
                audit::append(tx, "test", "bulk", "poison refused")?;
                tx.execute(
                    "INSERT INTO serials (peer, last_released) VALUES ('POISON', 7)",
                    [],
                )?;
                Err(StoreError::Rejected("refused on purpose".into()))
            }),
            SQL_ERROR => journal.write(|tx| {
                let head = audit::append(tx, "test", "bulk", "poison sql")?;
                // The primary key of entry 1 is taken: a constraint error.
                tx.execute(
                    "INSERT INTO audit (seq, at, actor, action, detail, prev, hash) \
                     VALUES (1, 'x', 'x', 'x', 'x', 'x', 'x')",
                    [],
                )?;
                Ok(head)
            }),
            _ => journal.audit("test", "bulk", &format!("job {i}")),
        })
        .collect();
    open_gate.send(()).expect("open the gate");
    assert_eq!(gate_job.wait().expect("gate job").seq, 1);

    let check = raw(&path);
    let mut next = 2;
    for (i, p) in pending.into_iter().enumerate() {
        match (i, p.wait()) {
            (REFUSED, Err(StoreError::Rejected(m))) => assert_eq!(m, "refused on purpose"),
            (SQL_ERROR, Err(StoreError::Sqlite(_))) => {}
            (REFUSED | SQL_ERROR, other) => panic!("job {i} should fail, got {other:?}"),
            (_, Ok(head)) => {
                assert_eq!(head.seq, next, "job {i}: entries stay contiguous");
                next += 1;
                // Answered only after the commit: another connection sees it.
                let detail: String = check
                    .query_row(
                        "SELECT detail FROM audit WHERE seq = ?1",
                        [head.seq as i64],
                        |r| r.get(0),
                    )
                    .expect("committed entry visible");
                assert_eq!(detail, format!("job {i}"));
            }
            (_, Err(e)) => panic!("job {i} failed: {e}"),
        }
    }
    let entries = 1 + JOBS as u64 - 2;
    assert_eq!(next, entries + 1);

    let poison: i64 = check
        .query_row(
            "SELECT count(*) FROM audit WHERE detail LIKE 'poison%' OR seq > ?1",
            [entries as i64],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(poison, 0, "the failing jobs' entries were rolled back");
    let poison_serials: i64 = check
        .query_row("SELECT count(*) FROM serials", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        poison_serials, 0,
        "the failing job's other writes were rolled back"
    );
    // The gate's batch, then all the queued jobs in one transaction (the
    // writer takes up to 512 jobs a batch): one checkpoint for each.
    assert_eq!(
        u64s(&check, "SELECT seq FROM checkpoints ORDER BY seq"),
        vec![1, entries]
    );
    assert_eq!(
        journal
            .verify_audit(&keys.signing.verifying_key())
            .expect("verify runs")
            .map(|v| (v.entries, v.checkpoint)),
        Ok((entries, Some(entries)))
    );
}

// ---------------------------------------------------------------------------
// 5. Duplicates

#[test]
fn an_inbound_duplicate_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let us = station("WASHINGTON");
    let peer = station("MOSCOW");
    let peer_public = peer.public();
    let journal = Journal::open(&dir.path().join("journal.db"), None).expect("open");

    let (message, sealed) = sealed_message(&peer, &us.public(), 1);
    // A retransmission: the same message, sealed again (new ciphertext).
    let resealed = seal(&message, &peer, &us.public()).expect("seal");
    assert_ne!(sealed, resealed);

    assert_eq!(
        journal
            .store_inbound(message.clone(), sealed.clone(), b"receipt".to_vec())
            .wait()
            .expect("store"),
        Stored::New
    );
    assert_eq!(
        journal
            .store_inbound(message.clone(), resealed, b"receipt".to_vec())
            .wait()
            .expect("store"),
        Stored::Duplicate {
            receipt: b"receipt".to_vec()
        }
    );
    let inbox = journal.list(Direction::In).expect("list");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].id, message.id);
    assert_eq!(inbox[0].serial, 1);
    assert_eq!(inbox[0].peer.as_str(), "MOSCOW");
    assert_eq!(inbox[0].state, MessageState::Received);
    // The first copy is kept, and it opens to the very message.
    let stored = journal.sealed(&message.id).expect("sealed");
    assert_eq!(stored, sealed);
    let opened = open_inbound(&stored, &us, |s| (s == "MOSCOW").then_some(&peer_public))
        .expect("stored copy opens");
    assert_eq!(opened.message, message);

    // The same within one batch: submitted together, stored once.
    let (second, sealed2) = sealed_message(&peer, &us.public(), 2);
    let a = journal.store_inbound(second.clone(), sealed2.clone(), b"receipt".to_vec());
    let b = journal.store_inbound(second.clone(), sealed2, b"receipt".to_vec());
    assert_eq!(a.wait().expect("store"), Stored::New);
    assert_eq!(
        b.wait().expect("store"),
        Stored::Duplicate {
            receipt: b"receipt".to_vec()
        }
    );
    let inbox = journal.list(Direction::In).expect("list");
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox.iter().filter(|r| r.id == second.id).count(), 1);

    // Not a duplicate: other content under the same id, or the same id
    // from another station. Neither is stored, and the first stays.
    let mut changed = message.clone();
    changed.serial = 9;
    let resealed = seal(&changed, &peer, &us.public()).expect("seal");
    match journal
        .store_inbound(changed, resealed, b"receipt".to_vec())
        .wait()
        .expect("store")
    {
        Stored::Conflict { reason } => assert!(reason.contains("other content"), "{reason}"),
        other => panic!("other content: {other:?}"),
    }
    let third = station("LONDON");
    let mut from_london = message.clone();
    from_london.from = third.name.clone();
    let sealed_london = seal(&from_london, &third, &us.public()).expect("seal");
    match journal
        .store_inbound(from_london, sealed_london, b"receipt".to_vec())
        .wait()
        .expect("store")
    {
        Stored::Conflict { reason } => {
            assert!(reason.contains("received from MOSCOW"), "{reason}")
        }
        other => panic!("another station: {other:?}"),
    }
    assert_eq!(journal.list(Direction::In).expect("list").len(), 2);
    assert_eq!(journal.sealed(&message.id).expect("sealed"), sealed);

    let receipts: i64 = journal
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit WHERE action = 'receive'",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("count");
    assert_eq!(
        receipts, 2,
        "one audit entry per stored message, none per duplicate"
    );
}

// ---------------------------------------------------------------------------
// 6. Serial allocation

#[test]
fn concurrent_releases_get_serials_one_to_fifty() {
    const MESSAGES: u64 = 50;
    const THREADS: u64 = 4;

    let dir = tempfile::tempdir().expect("tempdir");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW").public();
    let kyiv = station("KYIV").public();
    let journal = Journal::open(&dir.path().join("journal.db"), None).expect("open");
    let checked = general("serials");

    let results: Vec<(u64, Message)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (journal, me, moscow, checked) =
                    (&journal, me.clone(), moscow.clone(), checked.clone());
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (t..MESSAGES).step_by(THREADS as usize) {
                        if i == 10 {
                            // A release whose sealing fails gives up its
                            // serial, declared void...
                            let failed = journal
                                .release(moscow.name.clone(), |_| Err("sealing failed".into()))
                                .wait();
                            assert!(matches!(failed, Err(StoreError::Rejected(_))));
                            // ...and so does one that sealed the wrong serial.
                            let (me2, to) = (me.clone(), moscow.clone());
                            let wrong = journal
                                .release(moscow.name.clone(), move |serial| {
                                    Ok(sealed_message(&me2, &to, serial + 1))
                                })
                                .wait();
                            assert!(matches!(wrong, Err(StoreError::Rejected(_))));
                        }
                        let (released, message) = compose::release(
                            journal,
                            me.clone(),
                            moscow.clone(),
                            checked.clone(),
                            origin(&me),
                        )
                        .wait()
                        .expect("release");
                        assert_eq!(released.serial, message.serial);
                        assert_eq!(released.id, message.id);
                        mine.push((released.serial, message));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });

    let mut serials: Vec<u64> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        serials.iter().collect::<HashSet<_>>().len(),
        serials.len(),
        "no repeats"
    );
    serials.sort_unstable();
    // Every serial reserved is accounted for, as a message or as void: the
    // two failed releases gave up two, which no message carries.
    let void = journal
        .cancelled_serials("MOSCOW", 100)
        .expect("void serials");
    assert_eq!(void.len(), 2, "{void:?}");
    assert!(void.iter().all(|v| !serials.contains(v)), "{void:?}");
    let mut accounted: Vec<u64> = serials.iter().chain(&void).copied().collect();
    accounted.sort_unstable();
    assert_eq!(accounted, (1..=MESSAGES + 2).collect::<Vec<_>>());
    assert_eq!(
        journal.highest_released("MOSCOW").expect("highest"),
        MESSAGES + 2
    );

    // The journal agrees, and each stored ciphertext carries its serial.
    let outbox = journal.list(Direction::Out).expect("list");
    assert_eq!(outbox.len() as u64, MESSAGES);
    let mut stored: Vec<u64> = outbox.iter().map(|r| r.serial).collect();
    stored.sort_unstable();
    assert_eq!(stored, serials);
    for (serial, message) in &results {
        let opened = open_outbound(&journal.sealed(&message.id).expect("sealed"), &me)
            .expect("own message opens");
        assert_eq!(opened.message.serial, *serial);
        assert_eq!(&opened.message, message);
    }

    // Another peer counts from 1; the first goes on after the last serial
    // it gave out, and so does a journal opened again.
    let (released, _) = compose::release(&journal, me.clone(), kyiv, checked.clone(), origin(&me))
        .wait()
        .expect("release");
    assert_eq!(released.serial, 1);
    let (released, _) = compose::release(
        &journal,
        me.clone(),
        moscow.clone(),
        checked.clone(),
        origin(&me),
    )
    .wait()
    .expect("release");
    assert_eq!(released.serial, MESSAGES + 3);
    drop(journal);
    let journal = Journal::open(&dir.path().join("journal.db"), None).expect("reopen");
    let (released, _) = compose::release(&journal, me.clone(), moscow, checked, origin(&me))
        .wait()
        .expect("release");
    assert_eq!(released.serial, MESSAGES + 4);
}

/// A serial whose message never reached the journal while a later one did
/// (the process died between the two commits; sealing runs in parallel, so
/// commits come in any order) is declared void when the journal opens. A
/// journal without holes gains no void serials, and neither does one that
/// lost a message it had committed: that is a gap, for the peer to report.
#[test]
fn a_hole_left_by_a_crash_is_declared_void_on_opening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW").public();
    let journal = Journal::open(&path, None).expect("open");
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (released, _) = compose::release(
            &journal,
            me.clone(),
            moscow.clone(),
            general("hole"),
            origin(&me),
        )
        .wait()
        .expect("release");
        ids.push(released.id);
    }
    drop(journal);
    // Control: reopened without a hole, nothing is void.
    let journal = Journal::open(&path, None).expect("reopen");
    assert_eq!(
        journal.cancelled_serials("MOSCOW", 100).expect("void"),
        Vec::<u64>::new()
    );
    drop(journal);
    // Serial 2 lost after it was committed (a restore from an old backup):
    // not a crash hole, so it is left for the peer to report as a gap.
    Connection::open(&path)
        .expect("sqlite")
        .execute("DELETE FROM messages WHERE id = ?1", [ids[1].to_string()])
        .expect("delete");
    let journal = Journal::open(&path, None).expect("reopen");
    assert_eq!(
        journal.cancelled_serials("MOSCOW", 100).expect("void"),
        Vec::<u64>::new()
    );
    drop(journal);
    // What the disk holds when serials 3 and 4 committed while 2 was still
    // being sealed, and the process died: settled only through 1.
    Connection::open(&path)
        .expect("sqlite")
        .execute("UPDATE serials SET settled = 1 WHERE peer = 'MOSCOW'", [])
        .expect("update");
    let journal = Journal::open(&path, None).expect("reopen");
    assert_eq!(
        journal.cancelled_serials("MOSCOW", 100).expect("void"),
        vec![2]
    );
    let voids: i64 = journal
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit WHERE action = 'void-serial' AND detail LIKE '%serial=2 %'",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("count");
    assert_eq!(voids, 1, "the void is audited");
    let (released, _) =
        compose::release(&journal, me.clone(), moscow, general("hole"), origin(&me))
            .wait()
            .expect("release");
    assert_eq!(released.serial, 5, "serials are never given out twice");
    drop(journal);
    // A record claiming far more unsettled serials than a station ever
    // leaves (edited, or damaged): nothing more is voided, and opening
    // costs no walk over the span.
    Connection::open(&path)
        .expect("sqlite")
        .execute(
            "UPDATE serials SET settled = 0, last_released = ?1 WHERE peer = 'MOSCOW'",
            [1i64 << 40],
        )
        .expect("update");
    let journal = Journal::open(&path, None).expect("reopen");
    assert_eq!(
        journal.cancelled_serials("MOSCOW", 100).expect("void"),
        vec![2]
    );
}

// ---------------------------------------------------------------------------
// 7. Reopen and schema version

#[test]
fn data_survives_reopen_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW");
    let vk = me.signing.verifying_key();

    let journal = Journal::open(&path, Some(checkpoint_key(&me))).expect("open");
    journal
        .audit("j.smith", "login", "console")
        .wait()
        .expect("audit");
    let (released, _) = compose::release(
        &journal,
        me.clone(),
        moscow.public(),
        general("before"),
        origin(&me),
    )
    .wait()
    .expect("release");
    let (inbound, sealed) = sealed_message(&moscow, &me.public(), 1);
    journal
        .store_inbound(inbound.clone(), sealed.clone(), b"receipt".to_vec())
        .wait()
        .expect("inbound");
    let head = journal.audit_head().expect("head").expect("some head");
    assert_eq!(head.seq, 3);
    drop(journal);

    let journal = Journal::open(&path, Some(checkpoint_key(&me))).expect("reopen");
    let outbox = journal.list(Direction::Out).expect("list");
    assert_eq!(outbox.len(), 1);
    assert_eq!((outbox[0].id, outbox[0].serial), (released.id, 1));
    let inbox = journal.list(Direction::In).expect("list");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].id, inbound.id);
    assert_eq!(journal.sealed(&inbound.id).expect("sealed"), sealed);
    assert_eq!(journal.audit_head().expect("head"), Some(head.clone()));
    assert_eq!(
        journal
            .verify_audit(&vk)
            .expect("verify runs")
            .map(|v| v.checkpoint),
        Ok(Some(3))
    );
    let version: u32 = journal
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .expect("user_version");
    assert_eq!(version, schema_version());
    assert!(schema_version() >= 1);
    // The serial counter survived too; a duplicate is still recognised.
    let (again, _) = compose::release(
        &journal,
        me.clone(),
        moscow.public(),
        general("after"),
        origin(&me),
    )
    .wait()
    .expect("release");
    assert_eq!(again.serial, 2);
    assert_eq!(
        journal
            .store_inbound(inbound, sealed, b"receipt".to_vec())
            .wait()
            .expect("inbound"),
        Stored::Duplicate {
            receipt: b"receipt".to_vec()
        }
    );
    drop(journal);

    // Read-only: reads work, writes are refused.
    let ro = Journal::open_read_only(&path).expect("open read-only");
    assert_eq!(ro.list(Direction::Out).expect("list").len(), 2);
    assert!(matches!(
        ro.audit("x", "y", "z").wait(),
        Err(StoreError::ReadOnly)
    ));
    drop(ro);

    // A journal from a newer build is refused, and left as it was.
    let newer = schema_version() + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .expect("set user_version");
    for result in [
        Journal::open(&path, Some(checkpoint_key(&me))),
        Journal::open_read_only(&path),
    ] {
        match open_err(result) {
            StoreError::TooNew { found, supported } => {
                assert_eq!((found, supported), (newer, schema_version()));
            }
            other => panic!("expected TooNew, got {other}"),
        }
    }
    let still: u32 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(still, newer, "a refused journal is not migrated");

    // CONTROL: the same file at the current version opens, data intact.
    raw(&path)
        .pragma_update(None, "user_version", schema_version())
        .expect("reset user_version");
    let journal = Journal::open(&path, None).expect("opens again");
    assert_eq!(journal.list(Direction::Out).expect("list").len(), 2);
    assert_eq!(journal.list(Direction::In).expect("list").len(), 1);
}

// ---------------------------------------------------------------------------
// 8. Typed state, schema 3 and the second operator

/// A journal holding one outbound message MOSCOW has receipted and one
/// inbound message from MOSCOW awaiting acknowledgement.
fn receipted_and_received(
    path: &Path,
    me: &Arc<StationKeys>,
    moscow: &StationKeys,
) -> (Message, Message) {
    let journal = Journal::open(path, Some(checkpoint_key(me))).expect("open");
    let (released, sent) = compose::release(
        &journal,
        me.clone(),
        moscow.public(),
        general("out"),
        origin(me),
    )
    .wait()
    .expect("release");
    assert!(
        journal
            .mark_receipted(
                released.id,
                Precedence::Routine,
                b"receipt".to_vec(),
                Timestamp::now()
            )
            .wait()
            .expect("receipt")
    );
    let (inbound, sealed) = sealed_message(moscow, &me.public(), 1);
    journal
        .store_inbound(inbound.clone(), sealed, b"receipt".to_vec())
        .wait()
        .expect("inbound");
    (sent, inbound)
}

fn state_in_sql(conn: &Connection, message: &Message, direction: &str) -> String {
    conn.query_row(
        "SELECT state FROM messages WHERE id = ?1 AND direction = ?2",
        params![message.id.to_string(), direction],
        |r| r.get(0),
    )
    .expect("state")
}

#[test]
fn migration_3_makes_an_outbound_received_receipted_and_leaves_inbound_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW");
    let (sent, inbound) = receipted_and_received(&path, &me, &moscow);

    // Back to what schema 2 wrote: 'received' for both, no second_operator.
    {
        let conn = raw(&path);
        assert_eq!(state_in_sql(&conn, &sent, "out"), "receipted");
        conn.execute_batch(
            "UPDATE messages SET state = 'received' WHERE direction = 'out';
             ALTER TABLE messages DROP COLUMN second_operator;
             ALTER TABLE messages DROP COLUMN content_hash;
             DROP TABLE void_serials;
             ALTER TABLE serials DROP COLUMN settled;
             DROP INDEX messages_newest;
             DROP TABLE rotations_out;
             DROP TABLE rotations_in;
             ALTER TABLE messages DROP COLUMN suspect;
             ALTER TABLE messages DROP COLUMN label;
             DROP INDEX messages_amends;
             ALTER TABLE messages DROP COLUMN amends;
             ALTER TABLE messages DROP COLUMN amends_kind;
             ALTER TABLE messages DROP COLUMN amended_by;
             ALTER TABLE messages DROP COLUMN amended_by_serial;
             ALTER TABLE messages DROP COLUMN amended_kind;
             DROP TABLE restores_answered;
             PRAGMA user_version = 2;",
        )
        .expect("downgrade to schema 2");
        // CONTROL: the old spelling really is there before the migration.
        assert_eq!(state_in_sql(&conn, &sent, "out"), "received");
        assert_eq!(state_in_sql(&conn, &inbound, "in"), "received");
    }

    let journal = Journal::open(&path, None).expect("open migrates");
    let version: u32 = journal
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .expect("user_version");
    assert_eq!(version, schema_version());
    let outbox = journal.list(Direction::Out).expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].id, sent.id);
    assert_eq!(outbox[0].state, MessageState::Receipted);
    assert_eq!(outbox[0].second_operator, None);
    let inbox = journal.list(Direction::In).expect("inbox");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].id, inbound.id);
    assert_eq!(inbox[0].state, MessageState::Received);
    let count = |state| {
        journal
            .count_in_state(Direction::Out, state)
            .expect("count_in_state")
    };
    assert_eq!(count(MessageState::Receipted).iter().sum::<usize>(), 1);
    assert_eq!(
        count(MessageState::Received),
        [0; 4],
        "no outbound message is 'received' any more"
    );
    drop(journal);
    let conn = raw(&path);
    assert_eq!(state_in_sql(&conn, &sent, "out"), "receipted");
    assert_eq!(state_in_sql(&conn, &inbound, "in"), "received");
}

#[test]
fn an_unknown_state_or_time_in_the_journal_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW");
    let (sent, inbound) = receipted_and_received(&path, &me, &moscow);
    let journal = Journal::open(&path, None).expect("open");
    // CONTROL: both lists read before the damage.
    assert_eq!(journal.list(Direction::Out).expect("outbox").len(), 1);
    assert_eq!(journal.list(Direction::In).expect("inbox").len(), 1);

    raw(&path)
        .execute(
            "UPDATE messages SET state = 'delivered' WHERE id = ?1",
            [sent.id.to_string()],
        )
        .expect("damage the state");
    let corrupt = |r: Result<_, StoreError>, what: &str| match r {
        Err(StoreError::Corrupt(why)) => why,
        Err(other) => panic!("{what}: expected Corrupt, got {other}"),
        Ok(_) => panic!("{what}: a damaged row was read as fine"),
    };
    let why = corrupt(journal.list(Direction::Out).map(|_| ()), "list");
    assert!(
        why.contains("`delivered`") && why.contains("state"),
        "{why}"
    );
    assert!(
        why.contains(&sent.id.to_string()),
        "names the message: {why}"
    );
    let why = corrupt(journal.find(&sent.id.to_string()).map(|_| ()), "find");
    assert!(why.contains("`delivered`"), "{why}");
    let why = corrupt(
        journal
            .mark_receipted(
                sent.id,
                Precedence::Routine,
                b"again".to_vec(),
                Timestamp::now(),
            )
            .wait()
            .map(|_| ()),
        "mark_receipted",
    );
    assert!(why.contains("`delivered`"), "{why}");
    // The other direction is untouched and still reads.
    assert_eq!(journal.list(Direction::In).expect("inbox").len(), 1);

    raw(&path)
        .execute(
            "UPDATE messages SET released_at = 'yesterday' WHERE id = ?1",
            [inbound.id.to_string()],
        )
        .expect("damage a time");
    let why = corrupt(journal.list(Direction::In).map(|_| ()), "list in");
    assert!(
        why.contains("`yesterday`") && why.contains("released_at"),
        "{why}"
    );
}

#[test]
fn a_flash_released_with_a_second_operator_keeps_it_in_row_audit_and_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW");
    let second = OperatorName::new("a.jones").expect("operator name");

    let journal = Journal::open(&path, Some(checkpoint_key(&me))).expect("open");
    let mut flash = general("two-person");
    flash.precedence = hotline::domain::Precedence::Flash;
    let (two, message) = compose::release(
        &journal,
        me.clone(),
        moscow.public(),
        flash,
        Origin {
            second_operator: Some(second.clone()),
            ..origin(&me)
        },
    )
    .wait()
    .expect("release");
    assert_eq!(message.second_operator, Some(second.clone()));
    // CONTROL: a release by one operator records none.
    let (one, _) = compose::release(
        &journal,
        me.clone(),
        moscow.public(),
        general("one operator"),
        origin(&me),
    )
    .wait()
    .expect("release");
    // Inbound: the sender's second operator is stored as it was signed.
    let mut inbound = compose::build(
        &general("theirs"),
        &Origin {
            second_operator: Some(OperatorName::new("i.petrov").expect("name")),
            ..origin(&moscow)
        },
        &me.name,
        1,
        Timestamp::now(),
    );
    inbound.precedence = hotline::domain::Precedence::Flash;
    let sealed = seal(&inbound, &moscow, &me.public()).expect("seal");
    journal
        .store_inbound(inbound.clone(), sealed, b"receipt".to_vec())
        .wait()
        .expect("inbound");
    drop(journal);

    let journal = Journal::open(&path, None).expect("reopen");
    let row = journal.find(&two.id.to_string()).expect("row");
    assert_eq!(row.operator.as_str(), "j.smith");
    assert_eq!(row.second_operator, Some(second.clone()));
    assert_eq!(
        journal
            .find(&one.id.to_string())
            .expect("row")
            .second_operator,
        None
    );
    let theirs = journal.find(&inbound.id.to_string()).expect("inbound row");
    assert_eq!(theirs.direction, Direction::In);
    assert_eq!(
        theirs.second_operator.as_ref().map(OperatorName::as_str),
        Some("i.petrov")
    );

    // The audit entry of each release says who released it.
    let releases: Vec<audit::Entry> = entries_from(&raw(&path), 1)
        .into_iter()
        .filter(|e| e.action == "release")
        .collect();
    assert_eq!(releases.len(), 2);
    let of = |id: &hotline::domain::MessageId| {
        releases
            .iter()
            .find(|e| e.detail.contains(&format!("id={id}")))
            .expect("a release entry")
    };
    assert_eq!(of(&two.id).actor, "j.smith");
    assert!(
        of(&two.id).detail.ends_with(" second_operator=a.jones"),
        "{}",
        of(&two.id).detail
    );
    assert!(
        !of(&one.id).detail.contains("second_operator"),
        "{}",
        of(&one.id).detail
    );
    assert_eq!(
        journal
            .verify_audit(&me.signing.verifying_key())
            .expect("verify runs")
            .map(|v| v.entries),
        Ok(3)
    );

    // It survives opening: it is in the signed message itself.
    let stored = journal.sealed(&two.id).expect("sealed");
    let opened = open_outbound(&stored, &me).expect("opens");
    assert_eq!(opened.message.second_operator, Some(second));
    assert_eq!(opened.message, message);
}

/// A message is found by its id or by a unique prefix (at least 8
/// characters, any case); a shared prefix names no one message, and one
/// that matches nothing says so.
#[test]
fn a_message_is_found_by_a_unique_prefix_of_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW").public();
    let journal = Journal::open(&dir.path().join("journal.db"), None).expect("open");
    let ids: Vec<String> = (0..2)
        .map(|_| {
            compose::release(
                &journal,
                me.clone(),
                moscow.clone(),
                general("find"),
                origin(&me),
            )
            .wait()
            .expect("release")
            .0
            .id
            .to_string()
        })
        .collect();
    let shared = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .count();
    for id in &ids {
        assert_eq!(journal.find(id).expect("by id").id.to_string(), *id);
        let unique = &id[..(shared + 1).max(8)];
        assert_eq!(
            journal
                .find(&unique.to_uppercase())
                .expect("by prefix")
                .id
                .to_string(),
            *id
        );
    }
    // uuid v7 ids released together share their time prefix (its first 8
    // characters change once a minute).
    if shared >= 8 {
        assert!(matches!(
            journal.find(&ids[0][..shared]),
            Err(StoreError::Rejected(_))
        ));
    }
    assert!(matches!(
        journal.find("ffffffff"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(journal.find("0123"), Err(StoreError::Rejected(_))));
}

/// Lists come a page at a time, newest first, and the pages chain without
/// a gap or a repeat. The plan SQLite picks walks the `messages_newest`
/// index from the newest row and stops at the limit: no scan of the table
/// and no sort, so a page costs the same at 1,000 rows and at 1,000,000.
#[test]
fn pages_of_the_newest_chain_and_never_read_the_whole_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW").public();
    let journal = Journal::open(&dir.path().join("journal.db"), None).expect("open");
    for _ in 0..25 {
        compose::release(
            &journal,
            me.clone(),
            moscow.clone(),
            general("page"),
            origin(&me),
        )
        .wait()
        .expect("release");
    }
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = journal
            .page(Direction::Out, 10, before.as_ref())
            .expect("page");
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page.iter().map(|r| r.id));
    }
    let mut all: Vec<_> = journal
        .list(Direction::Out)
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    all.reverse();
    assert_eq!(paged, all, "three pages, newest first, each row once");
    assert_eq!(
        journal.page(Direction::In, 10, None).expect("page").len(),
        0
    );

    let plan = |sql: &str| -> String {
        journal
            .read(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let given = ["out", "x"];
                let params = rusqlite::params_from_iter(&given[..stmt.parameter_count()]);
                let rows = stmt.query_map(params, |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
            })
            .expect("plan")
    };
    for sql in [
        "SELECT id FROM messages WHERE direction = ?1 ORDER BY stored_at DESC, id DESC LIMIT 10",
        "SELECT id FROM messages WHERE direction = ?1 \
         AND (stored_at, id) < (SELECT stored_at, id FROM messages WHERE id = ?2) \
         ORDER BY stored_at DESC, id DESC LIMIT 10",
    ] {
        let plan = plan(sql);
        assert!(plan.contains("messages_newest"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "a page must not sort: {plan}"
        );
    }
    // Control: the whole-journal order of the inbound list is a sort.
    let whole = plan(
        "SELECT id FROM messages WHERE direction = ?1 ORDER BY state <> ?2, precedence, stored_at",
    );
    assert!(whole.contains("TEMP B-TREE"), "{whole}");
}

/// Every stored message looks for an earlier amendment of itself. Left to
/// the planner, that lookup walked the unique (direction, peer, serial) key
/// backwards for its ORDER BY, reading every message to the peer on every
/// insert: 10,000 queued messages took 90 s instead of 4.
#[test]
fn the_lookup_for_an_earlier_amendment_goes_through_its_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("journal.sqlite"), None).expect("open");
    let plan = |sql: &str| -> String {
        journal
            .read(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt.query_map(["x", "in", "MOSCOW"], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
            })
            .expect("plan")
    };
    let lookup = "SELECT id, serial, amends_kind FROM messages INDEXED BY messages_amends \
                  WHERE amends = ?1 AND direction = ?2 AND peer = ?3 ORDER BY serial DESC LIMIT 1";
    let used = plan(lookup);
    assert!(used.contains("USING INDEX messages_amends"), "{used}");
    // Control: the same query without the hint walks the peer's messages.
    let unhinted = plan(&lookup.replace(" INDEXED BY messages_amends", ""));
    assert!(!unhinted.contains("messages_amends"), "{unhinted}");
    let source = include_str!("../src/store/messages.rs");
    let code = "\"SELECT id, serial, amends_kind FROM messages INDEXED BY messages_amends \\\n";
    assert!(source.contains(code), "the test's query is the journal's");
}

#[test]
fn the_timers_query_returns_the_rows_past_a_cutoff_and_counts_by_precedence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    let me = Arc::new(station("WASHINGTON"));
    let moscow = station("MOSCOW");
    let (_, inbound) = receipted_and_received(&path, &me, &moscow);
    let journal = Journal::open(&path, None).expect("open");
    let row = journal
        .list(Direction::In)
        .expect("inbox")
        .into_iter()
        .next()
        .expect("the inbound row");
    let waiting = |precedence, cutoff| {
        journal
            .waiting_since(Direction::In, MessageState::Received, precedence, cutoff)
            .expect("waiting_since")
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    // CONTROL: at its own storing time the row is found...
    assert_eq!(waiting(row.precedence, row.stored_at), vec![inbound.id]);
    // ... one nanosecond earlier it is not, nor under another precedence.
    let before = row.stored_at - jiff::SignedDuration::from_nanos(1);
    assert!(waiting(row.precedence, before).is_empty());
    let other = Precedence::ALL
        .into_iter()
        .find(|p| *p != row.precedence)
        .expect("another precedence");
    assert!(waiting(other, Timestamp::now()).is_empty());

    let mut expected = [0; 4];
    expected[usize::from(row.precedence.rank())] = 1;
    assert_eq!(
        journal
            .count_in_state(Direction::In, MessageState::Received)
            .expect("count"),
        expected
    );
}

/// A snapshot taken while writes keep committing is the journal as of one
/// commit: its audit chain verifies up to a signed checkpoint, it holds
/// some but not all of the writes, and the writes after it went on (none
/// waited for it). CONTROL: the copy with its newest checkpoint removed
/// does not verify, so the check could fail.
#[test]
fn a_snapshot_under_live_writes_is_one_commit_of_the_journal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys = station("WASHINGTON");
    let path = tmp.path().join("journal.sqlite");
    let journal =
        std::sync::Arc::new(Journal::open(&path, Some(checkpoint_key(&keys))).expect("open"));
    journal
        .audit("op", "note", "first")
        .wait()
        .expect("first entry");
    const WRITES: usize = 2_000;
    let writer = {
        let journal = journal.clone();
        std::thread::spawn(move || {
            for i in 0..WRITES {
                journal
                    .audit("op", "note", &format!("entry {i}"))
                    .wait()
                    .expect("a write beside the snapshot");
            }
        })
    };
    while journal
        .audit_head()
        .expect("head")
        .is_none_or(|h| h.seq < 50)
    {
        std::thread::yield_now();
    }
    let copy = tmp.path().join("copy.sqlite");
    journal.snapshot(&copy).expect("snapshot");
    writer.join().expect("the writes all committed");

    let taken = Journal::open_read_only(&copy).expect("the copy opens");
    taken.integrity().expect("the copy is whole");
    let verified = taken
        .verify_audit(&keys.signing.verifying_key())
        .expect("verify runs")
        .expect("the copy's audit chain verifies");
    assert!(
        verified.entries > 1 && verified.entries < WRITES as u64 + 1,
        "the copy holds {} entries of {}",
        verified.entries,
        WRITES + 1
    );
    drop(taken);
    let conn = rusqlite::Connection::open(&copy).expect("open the copy");
    conn.execute(
        "DELETE FROM checkpoints WHERE seq = (SELECT MAX(seq) FROM checkpoints)",
        [],
    )
    .expect("remove the newest checkpoint");
    drop(conn);
    let damaged = Journal::open_read_only(&copy).expect("opens");
    assert!(
        damaged
            .verify_audit(&keys.signing.verifying_key())
            .expect("verify runs")
            .is_err(),
        "CONTROL: a chain past its last checkpoint verified"
    );
}
