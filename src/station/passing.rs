//! Files handed over the control socket: descriptors sent beside a request
//! line as `SCM_RIGHTS` ancillary data, so that a station running as its
//! own user reads and writes the operator's files without ever opening the
//! operator's paths (see [`super::api::Passed`]).
//!
//! A request's descriptors go with the first byte of its line, and the
//! kernel does not merge that byte into a read with bytes sent before it;
//! since a client sends its next request only after the answer to the
//! last, the descriptors that came while a line was read are that line's.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::{AsyncRead, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::api::{ApiError, Command, Passed};

/// The most files one request may hand over.
pub const MAX_PASSED: usize = 32;

/// The read half of a control connection that keeps the descriptors
/// arriving with its bytes.
pub struct Receiving {
    read: OwnedReadHalf,
    fds: Vec<OwnedFd>,
    /// More descriptors came than [`MAX_PASSED`]: the kernel closed the
    /// rest, so the request they came with cannot be carried out.
    truncated: bool,
}

impl Receiving {
    pub fn new(read: OwnedReadHalf) -> Receiving {
        Receiving {
            read,
            fds: Vec::new(),
            truncated: false,
        }
    }

    /// Closes the descriptors that came with a line that is no request.
    pub fn discard(&mut self) {
        self.fds.clear();
        self.truncated = false;
    }

    /// Binds the descriptors received with a request line to the files its
    /// command names, in order. Descriptors left over are closed.
    pub fn bind(&mut self, command: &mut Command) -> Result<(), ApiError> {
        let fds = std::mem::take(&mut self.fds);
        if std::mem::take(&mut self.truncated) {
            return Err(ApiError::BadRequest {
                detail: format!("more than {MAX_PASSED} files were handed over with one request"),
            });
        }
        let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
        for passed in command.passed_mut() {
            let Passed::Slot(i) = *passed else {
                continue;
            };
            let fd = fds
                .get_mut(i as usize)
                .and_then(Option::take)
                .ok_or_else(|| ApiError::BadRequest {
                    detail: format!(
                        "file {i} of the request came without its descriptor (or was named twice)"
                    ),
                })?;
            *passed = Passed::File(std::fs::File::from(fd));
        }
        Ok(())
    }
}

impl AsyncRead for Receiving {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let stream = this.read.as_ref();
        loop {
            ready!(stream.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let received = stream.try_io(Interest::READABLE, || {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let msg = rustix::net::recvmsg(
                    stream,
                    &mut [IoSliceMut::new(unfilled)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(fds) = message {
                        this.fds.extend(fds);
                    }
                }
                if msg.flags.contains(ReturnFlags::CTRUNC) {
                    this.truncated = true;
                }
                Ok(msg.bytes)
            });
            match received {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Takes the files out of `command`, leaving their places: what goes
/// beside its line.
pub fn take_files(command: &mut Command) -> Result<Vec<std::fs::File>, ApiError> {
    let mut files = Vec::new();
    for passed in command.passed_mut() {
        let slot = Passed::Slot(files.len() as u32);
        match std::mem::replace(passed, slot) {
            Passed::File(f) => files.push(f),
            Passed::Slot(i) => {
                return Err(ApiError::BadRequest {
                    detail: format!("file {i} of the request is not an open file"),
                });
            }
        }
    }
    if files.len() > MAX_PASSED {
        return Err(ApiError::BadRequest {
            detail: format!(
                "{} files in one request; at most {MAX_PASSED} can be handed over at once",
                files.len()
            ),
        });
    }
    Ok(files)
}

/// Writes `line` with `files`' descriptors beside its first byte.
pub async fn send_line(
    writer: &mut OwnedWriteHalf,
    line: &[u8],
    files: &[std::fs::File],
) -> io::Result<()> {
    if files.is_empty() || line.is_empty() {
        return writer.write_all(line).await;
    }
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
    let stream = writer.as_ref();
    let sent = loop {
        stream.writable().await?;
        let attempt = stream.try_io(Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(io::Error::other("too many descriptors for one message"));
            }
            Ok(rustix::net::sendmsg(
                stream,
                &[IoSlice::new(line)],
                &mut control,
                SendFlags::NOSIGNAL,
            )?)
        });
        match attempt {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    writer.write_all(&line[sent..]).await
}
