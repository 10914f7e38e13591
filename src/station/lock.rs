//! One station process per data directory, held by an exclusive lock on
//! `station.lock`. The lock is released by the kernel when the process
//! ends, however it ends, so a stale control socket can be told apart from a
//! live one.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Holding this keeps the data directory ours.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another station is already running on {0} (its lock is held)")]
    Held(PathBuf),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Takes the data directory's lock, or says who has it.
pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let path = data_dir.join("station.lock");
    let tightened = crate::fsutil::private_dir(data_dir).map_err(|cause| LockError::Io {
        path: data_dir.to_path_buf(),
        cause,
    })?;
    if let Some(mode) = tightened {
        tracing::warn!(
            dir = %data_dir.display(),
            "the data directory was open to others (mode {mode:03o}); tightened to 700"
        );
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|cause| LockError::Io {
            path: path.clone(),
            cause,
        })?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(LockError::Held(data_dir.to_path_buf()));
    }
    Ok(DataDirLock { _file: file, path })
}

/// Whether a station holds the lock right now (without taking it).
pub fn is_held(data_dir: &Path) -> bool {
    match acquire(data_dir) {
        Ok(_) => false,
        Err(LockError::Held(_)) => true,
        Err(LockError::Io { .. }) => false,
    }
}
