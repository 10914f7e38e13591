//! Files that hold secrets: created owner-only from the first byte, replaced
//! atomically, and refused when their permissions are loose.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Permission trouble with a file, always naming the command that fixes it.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error(
        "{path}: permissions {mode:03o} let other users read this secret; \
         it is refused. Run `chmod 600 {path}` and check who may have copied it"
    )]
    SecretReadable { path: PathBuf, mode: u32 },
    #[error(
        "{path}: permissions {mode:03o} let other users change it; it is refused. \
         Run `chmod 600 {path}`"
    )]
    OthersCanWrite { path: PathBuf, mode: u32 },
    #[error(
        "{path}: is a symbolic link; a secret is read only from the file itself. \
         Put the file there in place of the link"
    )]
    Symlink { path: PathBuf },
    #[error(
        "{path}: belongs to user {owner}, not to this user ({us}); a secret is \
         refused unless its owner runs hotline. Run `chown` on it, or run hotline as its owner"
    )]
    NotOurs { path: PathBuf, owner: u32, us: u32 },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PermissionError + '_ {
    move |cause| PermissionError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

fn mode_of(path: &Path) -> Result<u32, PermissionError> {
    Ok(fs::metadata(path).map_err(io_err(path))?.mode() & 0o777)
}

/// Refuses a secret file (a key file, a journal) that group or others can
/// read or write.
pub fn check_private(path: &Path) -> Result<(), PermissionError> {
    let mode = mode_of(path)?;
    if mode & 0o077 != 0 {
        return Err(PermissionError::SecretReadable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Reads a secret file of at most `max` bytes, checking the file that was
/// opened rather than the path: it is opened once without following a
/// symbolic link (nor waiting on a FIFO), and must then be a regular file,
/// owned by this user and closed to group and others.
pub fn read_private(path: &Path, max: u64) -> Result<Vec<u8>, PermissionError> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|cause| {
            if cause.raw_os_error() == Some(libc::ELOOP) {
                PermissionError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                io_err(path)(cause)
            }
        })?;
    let meta = file.metadata().map_err(io_err(path))?;
    let invalid = |what: String| io_err(path)(io::Error::new(io::ErrorKind::InvalidInput, what));
    if !meta.is_file() {
        return Err(invalid(
            "is not a regular file (a directory, device, FIFO or socket)".into(),
        ));
    }
    let us = euid();
    if meta.uid() != us {
        return Err(PermissionError::NotOurs {
            path: path.to_path_buf(),
            owner: meta.uid(),
            us,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PermissionError::SecretReadable {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > max {
        return Err(invalid(format!("is larger than {max} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > max {
        return Err(invalid(format!("is larger than {max} bytes")));
    }
    Ok(bytes)
}

/// Who besides its owner can read a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readers {
    /// The file's group, if its members can read it.
    pub group: Option<u32>,
    /// Everyone can read it.
    pub others: bool,
}

/// Checks a config file: refused if others can write it; otherwise says
/// who else can read it, which may deserve a warning.
pub fn check_config(path: &Path) -> Result<Readers, PermissionError> {
    let mode = mode_of(path)?;
    if mode & 0o022 != 0 {
        return Err(PermissionError::OthersCanWrite {
            path: path.to_path_buf(),
            mode,
        });
    }
    let gid = fs::metadata(path)
        .map(|m| m.gid())
        .map_err(|e| PermissionError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
    Ok(Readers {
        group: (mode & 0o040 != 0).then_some(gid),
        others: mode & 0o004 != 0,
    })
}

/// The id of the group called `name`, if there is one.
pub fn group_id(name: &str) -> io::Result<Option<u32>> {
    let name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a group name has no NUL"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: `group` and `buf` outlive the call, which fills them
        // (the group's strings point into `buf`); only `gr_gid`, a plain
        // integer, is read afterwards.
        let (rc, gid) = unsafe {
            let mut group: libc::group = std::mem::zeroed();
            let mut found: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                name.as_ptr(),
                &mut group,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            );
            (rc, (!found.is_null()).then_some(group.gr_gid))
        };
        match rc {
            0 => return Ok(gid),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            _ => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// Creates a new file readable and writable by its owner only. The mode is
/// given to `open(2)`, so there is no moment at which others can read it.
/// Refuses to replace an existing file.
pub fn create_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_parent(path)
}

/// Replaces a file's content atomically (temp file, fsync, rename), keeping
/// the old file's permissions, or `new_mode` for a file that did not exist.
pub fn replace_atomic(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<()> {
    let mode = match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => new_mode,
        Err(e) => return Err(e),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode & 0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// The largest config, template or scenario file read.
pub const MAX_TEXT_FILE: u64 = 4 << 20;

/// Reads a file that must be a regular file of at most `max` bytes: a
/// device (`/dev/zero`), a FIFO or a huge file is refused before it is
/// read, with an error that says so.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            if meta.is_dir() {
                "is a directory, not a file"
            } else {
                "is not a regular file (a device, FIFO or socket)"
            },
        ));
    }
    let mut bytes = Vec::new();
    File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// Starts writing `len` bytes of `file` from `offset` back to the disk,
/// without waiting. A large file written in one go otherwise leaves all
/// its pages dirty until its final sync, and on ext4 every other sync on
/// the disk (the journal's, a FLASH's) waits behind that flush.
pub fn start_writeback(file: &impl std::os::fd::AsRawFd, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range takes a descriptor and plain integers and
    // touches no memory; a descriptor that is not a file just errs.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Creates a directory (and its parents) that only the owner can enter.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Makes sure `path` is a directory only its owner can enter: created
/// owner-only if missing; refused if it is not a directory or belongs to
/// another user; tightened to 700 if group or others could enter it, in
/// which case its old mode is returned.
pub fn private_dir(path: &Path) -> io::Result<Option<u32>> {
    create_private_dir(path)?;
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a directory (a symbolic link or a file)",
        ));
    }
    let us = euid();
    if meta.uid() != us {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "belongs to user {}, not to this user ({us}); a station's data is kept only by the user that runs it",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    Ok(Some(mode))
}

fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

/// Makes the entries of `dir` (a file made, linked or renamed in it)
/// durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The lock held while the process-wide umask is swapped.
static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Binds a Unix socket that is owner-only from the moment it exists: the
/// umask is tightened around `bind`, so no other user can connect in the
/// window before a `chmod` (the umask is process-wide, hence the lock).
pub fn bind_private_socket(path: &Path) -> io::Result<tokio::net::UnixListener> {
    let listener = bind_under_umask(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(listener)
}

/// `bind` with the umask at 0177: the socket is born 0600.
fn bind_under_umask(path: &Path) -> io::Result<tokio::net::UnixListener> {
    let _held = UMASK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: umask only swaps the process's file-mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = tokio::net::UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket is 0600 when `bind` returns, before any `chmod`; the
    /// control binds the same way under the ambient umask, whose mode
    /// the check sees.
    #[tokio::test]
    async fn a_socket_is_born_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let _listener = bind_under_umask(&path).expect("bind");
        assert_eq!(mode_of(&path).expect("mode"), 0o600);

        let plain = dir.path().join("plain.sock");
        let ambient = {
            let _held = UMASK
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // SAFETY: reading the mask by swapping it back at once.
            let mask = unsafe { libc::umask(0o022) };
            // SAFETY: as above.
            unsafe { libc::umask(mask) };
            let _plain = tokio::net::UnixListener::bind(&plain).expect("bind");
            mask
        };
        assert_eq!(
            mode_of(&plain).expect("mode"),
            0o777 & !ambient,
            "control: a plain bind takes the ambient umask"
        );
    }

    #[test]
    fn private_files_are_owner_only_and_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        create_private(&path, b"x").expect("create");
        assert_eq!(mode_of(&path).expect("mode"), 0o600);
        assert!(check_private(&path).is_ok());
        assert!(create_private(&path, b"y").is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = check_private(&path).expect_err("loose mode refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_secret_is_read_from_the_file_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        create_private(&path, b"key").expect("create");
        assert_eq!(read_private(&path, 16).expect("read"), b"key");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let err = read_private(&link, 16).expect_err("a symlink is refused");
        assert!(matches!(err, PermissionError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = read_private(dir.path(), 16).expect_err("a directory is refused");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = read_private(&path, 2).expect_err("too large");
        assert!(err.to_string().contains("larger than 2 bytes"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).expect("chmod");
        let err = read_private(&path, 16).expect_err("loose mode refused");
        assert!(
            matches!(err, PermissionError::SecretReadable { .. }),
            "{err}"
        );
    }

    #[test]
    fn replace_keeps_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("operator.toml");
        replace_atomic(&path, b"a", 0o600).expect("first write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        replace_atomic(&path, b"b", 0o600).expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"b");
        assert_eq!(mode_of(&path).expect("mode"), 0o640);
        let gid = fs::metadata(&path).expect("stat").gid();
        assert_eq!(
            check_config(&path).expect("not writable by others"),
            Readers {
                group: Some(gid),
                others: false
            }
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).expect("chmod");
        assert_eq!(
            check_config(&path).expect("not writable by others"),
            Readers {
                group: None,
                others: true
            }
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(check_config(&path).is_err());
    }
}
