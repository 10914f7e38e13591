//! Power loss: writes that were never synced are gone after the crash.
//!
//! This kernel has no device-mapper and FUSE is costly, so the disk is
//! simulated in process, below SQLite: [`disk`] is a VFS that wraps the
//! platform's and keeps every write to a file under a watched directory in
//! memory until that file is synced, the way a page cache does. At the
//! crash point the directory stops taking syncs and deletions; what is on
//! the real files then is what a machine that lost power would find. The
//! tests copy those files away and open the copies.
//!
//! Two real stations, both on the simulated disk, exchange a stream of
//! messages until the power fails: nothing WASHINGTON was told is released
//! (the release returned), and nothing it holds a receipt for, is missing
//! from the journals afterwards. CONTROL: under the same harness a plain
//! SQLite database with `synchronous=NORMAL` (the realistic mistake) loses
//! commits it acknowledged, and the same database with `synchronous=FULL`
//! loses none.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline::domain::{MessageId, Precedence};
use hotline::station::Event;
use hotline::store::{Direction, Journal, MessageState};
use rusqlite::Connection;
use support::*;
use tokio::task::JoinSet;

/// The simulated disk: a VFS over the platform's that holds unsynced writes
/// in memory for files under watched directories.
mod disk {
    use std::collections::HashMap;
    use std::ffi::{CStr, OsStr, c_char, c_int, c_void};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::ptr;
    use std::sync::{Mutex, MutexGuard, Once, OnceLock, PoisonError};

    use rusqlite::ffi;

    /// One write or truncation not yet synced.
    enum Op {
        Write(i64, Vec<u8>),
        Truncate(i64),
    }

    #[derive(Default)]
    struct Disk {
        watched: Vec<PathBuf>,
        /// Watched directories whose power has failed.
        crashed: Vec<PathBuf>,
        /// A directory whose power fails at its next write, mid-transaction.
        armed: Option<PathBuf>,
        /// What each watched file holds beyond its synced bytes, in order.
        /// Kept per path, not per handle: every connection to a file sees
        /// the same page cache.
        unsynced: HashMap<PathBuf, Vec<Op>>,
    }

    impl Disk {
        fn crashed(&self, path: &Path) -> bool {
            self.crashed.iter().any(|d| path.starts_with(d))
        }
    }

    fn disk() -> MutexGuard<'static, Disk> {
        static DISK: OnceLock<Mutex<Disk>> = OnceLock::new();
        DISK.get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The platform's VFS, which does the real I/O.
    static PLATFORM: OnceLock<usize> = OnceLock::new();

    fn platform() -> *mut ffi::sqlite3_vfs {
        *PLATFORM.get().expect("installed") as *mut ffi::sqlite3_vfs
    }

    /// One open file: our methods first, the platform's file after it.
    #[repr(C)]
    struct File {
        base: ffi::sqlite3_file,
        inner: *mut ffi::sqlite3_file,
        /// The file's path if it is watched, else null.
        path: *mut PathBuf,
    }

    const INNER_AT: usize = std::mem::size_of::<File>().next_multiple_of(16);

    /// Makes the simulated disk the process's default VFS (once).
    pub fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            // SAFETY: SQLite's own VFS registry; the copy lives for ever.
            unsafe {
                let platform = ffi::sqlite3_vfs_find(ptr::null());
                assert!(!platform.is_null(), "a default VFS");
                PLATFORM.set(platform as usize).expect("once");
                let mut vfs: ffi::sqlite3_vfs = ptr::read(platform);
                vfs.zName = c"power-loss".as_ptr();
                vfs.pNext = ptr::null_mut();
                vfs.szOsFile = c_int::try_from(INNER_AT).expect("size") + (*platform).szOsFile;
                vfs.xOpen = Some(open);
                vfs.xDelete = Some(delete);
                let vfs = Box::leak(Box::new(vfs));
                assert_eq!(ffi::sqlite3_vfs_register(vfs, 1), ffi::SQLITE_OK);
            }
        });
    }

    /// Files under `dir` keep their unsynced writes in memory from now on.
    pub fn watch(dir: &Path) {
        disk().watched.push(dir.to_path_buf());
    }

    /// The power fails under `dir`: from now on nothing reaches its files.
    pub fn crash(dir: &Path) {
        disk().crashed.push(dir.to_path_buf());
    }

    /// The power fails under `dir` just after its next write, before
    /// whatever transaction it belongs to is synced.
    pub fn crash_at_next_write(dir: &Path) {
        disk().armed = Some(dir.to_path_buf());
    }

    /// Whether the power under `dir` has failed.
    pub fn has_crashed(dir: &Path) -> bool {
        disk().crashed.iter().any(|d| d == dir)
    }

    /// How many writes under `dir` were never synced (lost if it crashed).
    pub fn unsynced(dir: &Path) -> usize {
        disk()
            .unsynced
            .iter()
            .filter(|(p, _)| p.starts_with(dir))
            .map(|(_, ops)| ops.len())
            .sum()
    }

    unsafe fn path_of(name: *const c_char) -> Option<PathBuf> {
        if name.is_null() {
            return None;
        }
        // SAFETY: SQLite passes a NUL-terminated path.
        let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
        let path = PathBuf::from(OsStr::from_bytes(bytes));
        let d = disk();
        d.watched
            .iter()
            .any(|w| path.starts_with(w))
            .then_some(path)
    }

    unsafe extern "C" fn open(
        _vfs: *mut ffi::sqlite3_vfs,
        name: *const c_char,
        file: *mut ffi::sqlite3_file,
        flags: c_int,
        out_flags: *mut c_int,
    ) -> c_int {
        // SAFETY: SQLite gave us `szOsFile` bytes at `file`.
        unsafe {
            let f = file.cast::<File>();
            let inner = file.cast::<u8>().add(INNER_AT).cast::<ffi::sqlite3_file>();
            (*f).base.pMethods = ptr::null();
            (*f).inner = inner;
            (*f).path = ptr::null_mut();
            (*inner).pMethods = ptr::null();
            let platform = platform();
            let rc = ((*platform).xOpen.expect("xOpen"))(platform, name, inner, flags, out_flags);
            if rc != ffi::SQLITE_OK {
                if !(*inner).pMethods.is_null() {
                    ((*(*inner).pMethods).xClose.expect("xClose"))(inner);
                }
                return rc;
            }
            if let Some(path) = path_of(name) {
                (*f).path = Box::into_raw(Box::new(path));
            }
            (*f).base.pMethods = &METHODS;
            ffi::SQLITE_OK
        }
    }

    unsafe extern "C" fn delete(
        _vfs: *mut ffi::sqlite3_vfs,
        name: *const c_char,
        sync_dir: c_int,
    ) -> c_int {
        // SAFETY: forwarded as SQLite gave it.
        unsafe {
            if let Some(path) = path_of(name) {
                let mut d = disk();
                if d.crashed(&path) {
                    return ffi::SQLITE_OK;
                }
                d.unsynced.remove(&path);
            }
            let platform = platform();
            ((*platform).xDelete.expect("xDelete"))(platform, name, sync_dir)
        }
    }

    /// The platform's file and methods behind one of ours.
    unsafe fn inner(
        file: *mut ffi::sqlite3_file,
    ) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
        // SAFETY: `file` was opened by `open`, so `inner` is open too.
        unsafe {
            let inner = (*file.cast::<File>()).inner;
            (inner, &*(*inner).pMethods)
        }
    }

    unsafe fn watched(file: *mut ffi::sqlite3_file) -> Option<&'static PathBuf> {
        // SAFETY: set by `open`, freed only by `close`.
        unsafe { (*file.cast::<File>()).path.as_ref() }
    }

    /// The size of the platform's file.
    unsafe fn platform_size(file: *mut ffi::sqlite3_file) -> Result<i64, c_int> {
        let mut size = 0;
        // SAFETY: an open file.
        let rc = unsafe {
            let (inner, m) = inner(file);
            (m.xFileSize.expect("xFileSize"))(inner, &mut size)
        };
        if rc == ffi::SQLITE_OK {
            Ok(size)
        } else {
            Err(rc)
        }
    }

    fn replayed_size(mut size: i64, ops: &[Op]) -> i64 {
        for op in ops {
            size = match op {
                Op::Write(at, bytes) => size.max(at + bytes.len() as i64),
                Op::Truncate(to) => *to,
            };
        }
        size
    }

    unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
        // SAFETY: closes the platform's file once; frees our path once.
        unsafe {
            let (inner, m) = inner(file);
            let rc = (m.xClose.expect("xClose"))(inner);
            let f = file.cast::<File>();
            if !(*f).path.is_null() {
                drop(Box::from_raw((*f).path));
                (*f).path = ptr::null_mut();
            }
            rc
        }
    }

    unsafe extern "C" fn read(
        file: *mut ffi::sqlite3_file,
        buf: *mut c_void,
        amount: c_int,
        offset: i64,
    ) -> c_int {
        // SAFETY: `buf` holds `amount` bytes.
        unsafe {
            let (inner, m) = inner(file);
            let Some(path) = watched(file) else {
                return (m.xRead.expect("xRead"))(inner, buf, amount, offset);
            };
            let d = disk();
            let rc = (m.xRead.expect("xRead"))(inner, buf, amount, offset);
            if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
                return rc;
            }
            let size = match platform_size(file) {
                Ok(s) => s,
                Err(rc) => return rc,
            };
            let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount as usize);
            let end = offset + i64::from(amount);
            let ops = d.unsynced.get(path).map_or(&[][..], Vec::as_slice);
            for op in ops {
                match op {
                    Op::Write(at, bytes) => {
                        let (from, to) = ((*at).max(offset), (at + bytes.len() as i64).min(end));
                        if from < to {
                            out[(from - offset) as usize..(to - offset) as usize]
                                .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
                        }
                    }
                    Op::Truncate(to) if *to < end => {
                        out[((*to).max(offset) - offset) as usize..].fill(0);
                    }
                    Op::Truncate(_) => {}
                }
            }
            let size = replayed_size(size, ops);
            if size < end {
                out[(size.max(offset) - offset) as usize..].fill(0);
                return ffi::SQLITE_IOERR_SHORT_READ;
            }
            ffi::SQLITE_OK
        }
    }

    unsafe extern "C" fn write(
        file: *mut ffi::sqlite3_file,
        buf: *const c_void,
        amount: c_int,
        offset: i64,
    ) -> c_int {
        // SAFETY: `buf` holds `amount` bytes.
        unsafe {
            let (inner, m) = inner(file);
            let Some(path) = watched(file) else {
                return (m.xWrite.expect("xWrite"))(inner, buf, amount, offset);
            };
            let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), amount as usize).to_vec();
            let mut d = disk();
            d.unsynced
                .entry(path.clone())
                .or_default()
                .push(Op::Write(offset, bytes));
            if let Some(dir) = d.armed.take_if(|dir| path.starts_with(dir)) {
                d.crashed.push(dir);
            }
            ffi::SQLITE_OK
        }
    }

    unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
        // SAFETY: an open file.
        unsafe {
            let (inner, m) = inner(file);
            let Some(path) = watched(file) else {
                return (m.xTruncate.expect("xTruncate"))(inner, size);
            };
            disk()
                .unsynced
                .entry(path.clone())
                .or_default()
                .push(Op::Truncate(size));
            ffi::SQLITE_OK
        }
    }

    unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
        // SAFETY: an open file; the pending writes go to it in order.
        unsafe {
            let (inner, m) = inner(file);
            let Some(path) = watched(file) else {
                return (m.xSync.expect("xSync"))(inner, flags);
            };
            let mut d = disk();
            if d.crashed(path) {
                return ffi::SQLITE_OK;
            }
            for op in d.unsynced.remove(path).unwrap_or_default() {
                let rc = match op {
                    Op::Write(at, bytes) => (m.xWrite.expect("xWrite"))(
                        inner,
                        bytes.as_ptr().cast(),
                        c_int::try_from(bytes.len()).expect("write size"),
                        at,
                    ),
                    Op::Truncate(to) => (m.xTruncate.expect("xTruncate"))(inner, to),
                };
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            (m.xSync.expect("xSync"))(inner, flags)
        }
    }

    unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
        // SAFETY: an open file; `size` is SQLite's out-parameter.
        unsafe {
            let (inner, m) = inner(file);
            let Some(path) = watched(file) else {
                return (m.xFileSize.expect("xFileSize"))(inner, size);
            };
            let d = disk();
            match platform_size(file) {
                Ok(s) => {
                    let ops = d.unsynced.get(path).map_or(&[][..], Vec::as_slice);
                    *size = replayed_size(s, ops);
                    ffi::SQLITE_OK
                }
                Err(rc) => rc,
            }
        }
    }

    unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xLock.expect("xLock"))(inner, level)
        }
    }

    unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xUnlock.expect("xUnlock"))(inner, level)
        }
    }

    unsafe extern "C" fn check_reserved(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xCheckReservedLock.expect("xCheckReservedLock"))(inner, out)
        }
    }

    unsafe extern "C" fn file_control(
        file: *mut ffi::sqlite3_file,
        op: c_int,
        arg: *mut c_void,
    ) -> c_int {
        // SAFETY: forwarded, but a size hint would grow the real file
        // behind the page cache.
        unsafe {
            if op == ffi::SQLITE_FCNTL_SIZE_HINT && watched(file).is_some() {
                return ffi::SQLITE_OK;
            }
            let (inner, m) = inner(file);
            (m.xFileControl.expect("xFileControl"))(inner, op, arg)
        }
    }

    unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xSectorSize.expect("xSectorSize"))(inner)
        }
    }

    unsafe extern "C" fn device(file: *mut ffi::sqlite3_file) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xDeviceCharacteristics.expect("xDeviceCharacteristics"))(inner)
        }
    }

    unsafe extern "C" fn shm_map(
        file: *mut ffi::sqlite3_file,
        region: c_int,
        size: c_int,
        extend: c_int,
        out: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: forwarded; the wal-index is shared memory, rebuilt from
        // the WAL after a crash, so it is not part of the simulated disk.
        unsafe {
            let (inner, m) = inner(file);
            (m.xShmMap.expect("xShmMap"))(inner, region, size, extend, out)
        }
    }

    unsafe extern "C" fn shm_lock(
        file: *mut ffi::sqlite3_file,
        offset: c_int,
        n: c_int,
        flags: c_int,
    ) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xShmLock.expect("xShmLock"))(inner, offset, n, flags)
        }
    }

    unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xShmBarrier.expect("xShmBarrier"))(inner);
        }
    }

    unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
        // SAFETY: forwarded.
        unsafe {
            let (inner, m) = inner(file);
            (m.xShmUnmap.expect("xShmUnmap"))(inner, delete)
        }
    }

    /// Version 2: shared memory for WAL, but no memory-mapped I/O, which
    /// would reach the file behind the page cache.
    static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
        iVersion: 2,
        xClose: Some(close),
        xRead: Some(read),
        xWrite: Some(write),
        xTruncate: Some(truncate),
        xSync: Some(sync),
        xFileSize: Some(file_size),
        xLock: Some(lock),
        xUnlock: Some(unlock),
        xCheckReservedLock: Some(check_reserved),
        xFileControl: Some(file_control),
        xSectorSize: Some(sector_size),
        xDeviceCharacteristics: Some(device),
        xShmMap: Some(shm_map),
        xShmLock: Some(shm_lock),
        xShmBarrier: Some(shm_barrier),
        xShmUnmap: Some(shm_unmap),
        xFetch: None,
        xUnfetch: None,
    };
}

/// A fresh directory on the simulated disk.
fn watched_dir() -> (tempfile::TempDir, PathBuf) {
    disk::install();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().canonicalize().expect("canonical");
    disk::watch(&root);
    (tmp, root)
}

/// What a machine that lost power has of a database: its file and its WAL
/// as they are on disk now, copied to `to`.
fn after_power_loss(db: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).expect("dir");
    let copy = to.join(db.file_name().expect("name"));
    std::fs::copy(db, &copy).expect("copy");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display())).expect("copy wal");
    }
    copy
}

/// Commits `n` rows, one per transaction, on the simulated disk at
/// `synchronous`, then loses power; returns how many rows survive.
fn rows_after_power_loss(synchronous: &str, n: usize) -> usize {
    let (_tmp, root) = watched_dir();
    let path = root.join("plain.db");
    let conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("full");
    conn.execute_batch("CREATE TABLE t (n INTEGER)")
        .expect("table");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    for i in 0..n {
        // Each execute outside a transaction is its own commit, acknowledged
        // when it returns.
        conn.execute("INSERT INTO t (n) VALUES (?1)", [i as i64])
            .expect("insert");
    }
    disk::crash(&root);
    let copy = after_power_loss(&path, &root.join("after"));
    drop(conn);
    let after = rusqlite::Connection::open(&copy).expect("open the copy");
    let rows: i64 = after
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count");
    rows as usize
}

#[test]
fn control_the_harness_loses_acknowledged_commits_at_synchronous_normal_and_none_at_full() {
    assert_eq!(rows_after_power_loss("FULL", 200), 200);
    let normal = rows_after_power_loss("NORMAL", 200);
    assert!(
        normal < 200,
        "synchronous=NORMAL lost nothing: {normal} rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_keeps_every_message_released_or_receipted() {
    let (_tmp, root) = watched_dir();
    let (w, m) = pair(&root, FAST_LINK);
    let ws = w.start().await;
    let ms = m.start().await;
    let session = Arc::new(door::login(&ws).await);
    // What WASHINGTON was told before the power failed: a release or a
    // receipt noted after the crash may rest on a sync that never happened.
    let released = Arc::new(Mutex::new(Vec::new()));
    let receipted = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut work = JoinSet::new();
    for worker in 0..2 {
        let (ws, session, released, stop, root) = (
            ws.clone(),
            session.clone(),
            released.clone(),
            stop.clone(),
            root.clone(),
        );
        work.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut draft = general(&format!("before the power fails {worker}-{i}"));
                draft.precedence = Some(Precedence::Routine);
                let row = door::release(&ws, &session, "MOSCOW", draft).await;
                if !disk::has_crashed(&root) {
                    released.lock().expect("released").push(row.id);
                }
                i += 1;
            }
        });
    }
    let mut events = ws.subscribe();
    let collect = {
        let (receipted, root) = (receipted.clone(), root.clone());
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let Event::Receipt { id, .. } = event
                    && !disk::has_crashed(&root)
                {
                    receipted.lock().expect("receipted").insert(id);
                }
            }
        })
    };
    eventually(Duration::from_secs(60), "150 receipts", || {
        receipted.lock().expect("receipted").len() >= 150
    })
    .await;
    disk::crash_at_next_write(&root);
    eventually(Duration::from_secs(10), "the power failed", || {
        disk::has_crashed(&root)
    })
    .await;
    let lost_writes = disk::unsynced(&root);
    assert!(lost_writes > 0, "the crash came between transactions");
    let w_copy = after_power_loss(&w.config().journal_path, &root.join("after/w"));
    let m_copy = after_power_loss(&m.config().journal_path, &root.join("after/m"));
    stop.store(true, Ordering::SeqCst);
    work.join_all().await;
    ws.shutdown().await;
    ms.shutdown().await;
    collect.abort();
    let released: Vec<MessageId> = released.lock().expect("released").clone();
    let receipted: HashSet<MessageId> = receipted.lock().expect("receipted").clone();

    let outbox = Journal::open(&w_copy, None)
        .expect("WASHINGTON's journal after the power loss")
        .list(Direction::Out)
        .expect("outbox");
    let inbox = Journal::open(&m_copy, None)
        .expect("MOSCOW's journal after the power loss")
        .list(Direction::In)
        .expect("inbox");
    let kept: HashSet<MessageId> = outbox.iter().map(|r| r.id).collect();
    let stored: HashSet<MessageId> = inbox.iter().map(|r| r.id).collect();
    let unreleased: Vec<&MessageId> = released.iter().filter(|id| !kept.contains(id)).collect();
    assert!(unreleased.is_empty(), "released, then lost: {unreleased:?}");
    let unstored: Vec<&MessageId> = receipted.iter().filter(|id| !stored.contains(id)).collect();
    assert!(unstored.is_empty(), "receipted, then lost: {unstored:?}");
    let receipt_lost: Vec<_> = outbox
        .iter()
        .filter(|r| receipted.contains(&r.id) && r.state != MessageState::Receipted)
        .collect();
    assert!(
        receipt_lost.is_empty(),
        "a receipt taken, then lost: {receipt_lost:?}"
    );
    eprintln!(
        "power loss: {} released and {} receipted before the crash, all kept; \
         {lost_writes} writes after the last sync were lost",
        released.len(),
        receipted.len(),
    );
}
