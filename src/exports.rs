//! What a caller writes into when it exports: files it creates itself, in
//! a directory of its choosing, and hands to the station to write (see
//! [`crate::station::api::Passed`]). Nothing lands in the station's data
//! directory, and a station running as its own user needs no access to
//! the caller's.
//!
//! Each file is created as a hidden `.part` until the station has written
//! and checked it, and only then takes its real name: an export cut short
//! or failing its check leaves nothing under the name of the attachment.
//! A real name is never replaced: `name (1)`, `name (2)` … if taken.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::domain::Message;
use crate::fsutil;
use crate::station::api::{ApiError, Command, Passed, Reply};

/// What an export wrote, and what it could not.
#[derive(Debug)]
pub struct Exported {
    pub dir: PathBuf,
    pub written: Vec<PathBuf>,
    pub skipped: Vec<String>,
}

/// An export of one message's attachments under way: send its
/// [`Command`], then [`AttachmentsExport::finish`] with the reply.
pub struct AttachmentsExport {
    pending: Pending,
    total: u64,
}

impl AttachmentsExport {
    /// Creates the files for `message`'s attachments in `dir`, and the
    /// command that hands them to the station to write.
    pub fn prepare(dir: &Path, message: &Message) -> Result<(Self, Command), ApiError> {
        if message.attachments.is_empty() {
            return Err(ApiError::NotFound {
                detail: format!("message {} has no attachments", message.id),
            });
        }
        let names: Vec<String> = message.attachments.iter().map(|a| a.name.clone()).collect();
        let (pending, files) = Pending::create(dir, &names).map_err(|e| ApiError::Refused {
            detail: format!("creating the export's files in {}: {e}", dir.display()),
        })?;
        let command = Command::ExportAttachments {
            id: message.id.to_string(),
            into: files.into_iter().map(Passed::File).collect(),
        };
        let total = message.attachments.iter().map(|a| a.size).sum();
        Ok((AttachmentsExport { pending, total }, command))
    }

    /// Bytes written into the export's files so far, and the total the
    /// message's attachments hold: how far a long export has come.
    pub fn progress(&self) -> (u64, u64) {
        let done = self
            .pending
            .parts
            .iter()
            .filter_map(|(part, _)| std::fs::metadata(part).ok())
            .map(|m| m.len())
            .sum();
        (done, self.total)
    }

    /// Names the files the station wrote; removes the rest.
    pub fn finish(self, reply: Result<Reply, ApiError>) -> Result<Exported, ApiError> {
        let dir = self.pending.dir.clone();
        match reply? {
            Reply::Exported { written, skipped } => {
                let written = self
                    .pending
                    .finish(&written)
                    .map_err(|e| ApiError::Refused {
                        detail: format!("naming the exported files in {}: {e}", dir.display()),
                    })?;
                Ok(Exported {
                    dir,
                    written,
                    skipped,
                })
            }
            other => Err(ApiError::Unreadable {
                detail: format!("expected the export's reply, got {other:?}"),
            }),
        }
    }
}

/// Files created for an export, not yet named.
pub struct Pending {
    dir: PathBuf,
    /// Each file's temporary path and the name it is to take.
    parts: Vec<(PathBuf, String)>,
}

impl Pending {
    /// Creates `dir` (owner-only, if new) and one empty `.part` file in it
    /// per name (an untrusted name, made safe with
    /// [`crate::sanitize::file_name`]). Returns the files to hand over.
    pub fn create(dir: &Path, names: &[String]) -> io::Result<(Pending, Vec<File>)> {
        fsutil::create_private_dir(dir)?;
        let mut pending = Pending {
            dir: dir.to_path_buf(),
            parts: Vec::new(),
        };
        let mut files = Vec::new();
        for name in names {
            let part = dir.join(format!(".{}.part", uuid::Uuid::now_v7().simple()));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&part)?;
            pending.parts.push((part, crate::sanitize::file_name(name)));
            files.push(file);
        }
        Ok((pending, files))
    }

    /// Gives the files at the places `written` their real names, and
    /// removes the rest. Returns the paths written, in order.
    pub fn finish(mut self, written: &[usize]) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for (place, (part, name)) in self.parts.iter().enumerate() {
            if written.contains(&place) {
                paths.push(link_unique(part, &self.dir, name)?);
            }
        }
        fsutil::sync_dir(&self.dir)?;
        self.remove_parts();
        Ok(paths)
    }

    fn remove_parts(&mut self) {
        for (part, _) in self.parts.drain(..) {
            let _ = std::fs::remove_file(part);
        }
    }
}

impl Drop for Pending {
    /// An export that is not finished leaves nothing behind.
    fn drop(&mut self) {
        self.remove_parts();
    }
}

/// Links `part` into `dir` as `name`, or `name (1)`, `name (2)` … if taken:
/// never replaces a file.
fn link_unique(part: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            name.to_string()
        } else {
            format!("{stem} ({n}){ext}")
        };
        let path = dir.join(candidate);
        match std::fs::hard_link(part, &path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{name}: too many files of that name"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written files take their names without replacing what is there;
    /// the rest, and every part file, are gone.
    #[test]
    fn an_export_names_what_was_written_and_leaves_no_parts() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "kept").expect("existing");
        let names = vec!["a.txt".to_string(), "../b.txt".to_string(), "c".to_string()];
        let (pending, files) = Pending::create(dir.path(), &names).expect("create");
        assert_eq!(files.len(), 3);
        let paths = pending.finish(&[0, 1]).expect("finish");
        assert_eq!(
            paths,
            vec![dir.path().join("a (1).txt"), dir.path().join("b.txt")]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).expect("read"),
            "kept"
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a (1).txt", "a.txt", "b.txt"]);
        let (abandoned, _files) = Pending::create(dir.path(), &names).expect("again");
        drop(abandoned);
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 3);
    }
}
