//! The world outside the console's model: every [`Effect`] runs here, in
//! a task of its own, and reports back with a `Msg`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::mpsc;

use super::Backend;
use crate::console::{Effect, Msg, WhiteCellCommand};
use crate::domain::{MessageId, OperatorName};
use crate::exports::{AttachmentsExport, Exported};
use crate::station::api::{ApiError, Attachment, Command, Passed, Passphrase, Release, Reply};

/// Refresh coalescing: at most one refresh runs, and at most one more waits.
#[derive(Default)]
struct Refresher(AtomicU8);

impl Refresher {
    /// Returns true if the caller should start a refresh now.
    fn request(&self) -> bool {
        self.0.fetch_add(1, Ordering::AcqRel) == 0
    }
    /// Returns true if another refresh was asked for meanwhile.
    fn finished(&self) -> bool {
        let before = self.0.swap(0, Ordering::AcqRel);
        if before > 1 {
            self.0.store(1, Ordering::Release);
            true
        } else {
            false
        }
    }
}

/// Completes a typed path as far as the directory's entries agree: the
/// whole name when one matches (with `/` for a directory), else their
/// longest common prefix. A leading `~/` stands for $HOME.
pub fn complete_path(typed: &str) -> String {
    let expanded = match (typed.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => format!("{}/{rest}", home.to_string_lossy()),
        _ => typed.to_string(),
    };
    let (dir, prefix) = match expanded.rfind('/') {
        Some(i) => (&expanded[..=i], &expanded[i + 1..]),
        None => ("", expanded.as_str()),
    };
    let Ok(entries) = std::fs::read_dir(if dir.is_empty() { "." } else { dir }) else {
        return typed.to_string();
    };
    let mut names: Vec<(String, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            name.starts_with(prefix).then_some((name, is_dir))
        })
        .collect();
    names.sort();
    let completed = match names.as_slice() {
        [] => return typed.to_string(),
        [(name, is_dir)] => format!("{name}{}", if *is_dir { "/" } else { "" }),
        [(first, _), rest @ ..] => {
            let mut common = first.clone();
            for (name, _) in rest {
                while !name.starts_with(&common) {
                    common.pop();
                }
            }
            common
        }
    };
    let head = &typed[..typed.len() - prefix.len().min(typed.len())];
    format!("{head}{completed}")
}

fn exported(written: usize, dir: &str, skipped: &[String]) -> String {
    let mut what = format!("exported {written} attachment(s) to {dir}");
    if !skipped.is_empty() {
        what.push_str(&format!("; not exported: {}", skipped.join("; ")));
    }
    what
}

/// What a reply says it did, for the status line.
fn done(what: String, result: Result<Reply, ApiError>) -> Msg {
    Msg::Done {
        what,
        result: result.map(|_| ()),
    }
}

pub(super) struct World {
    backend: Arc<Backend>,
    /// Draft saves and discards, for [`keep_drafts`].
    drafts: mpsc::UnboundedSender<Effect>,
    tx: mpsc::Sender<Msg>,
    refresher: Arc<Refresher>,
    white_cell: Option<mpsc::Sender<WhiteCellCommand>>,
}

impl World {
    /// The world of one console, and the task that keeps its drafts (await
    /// it on quitting: the last draft write lands before the console goes).
    pub(super) fn start(
        backend: Backend,
        white_cell: Option<mpsc::Sender<WhiteCellCommand>>,
        tx: mpsc::Sender<Msg>,
    ) -> (World, tokio::task::JoinHandle<()>) {
        let backend = Arc::new(backend);
        let (drafts, jobs) = mpsc::unbounded_channel();
        let keeper = tokio::spawn(keep_drafts(backend.clone(), jobs, tx.clone()));
        let world = World {
            backend,
            drafts,
            tx,
            refresher: Arc::default(),
            white_cell,
        };
        (world, keeper)
    }

    /// Runs `work` in a task and sends its `Msg` back to the loop.
    fn spawn<F>(&self, work: impl FnOnce(Arc<Backend>) -> F + Send + 'static)
    where
        F: std::future::Future<Output = Option<Msg>> + Send + 'static,
    {
        let (backend, tx) = (self.backend.clone(), self.tx.clone());
        tokio::spawn(async move {
            if let Some(msg) = work(backend).await {
                let _ = tx.send(msg).await;
            }
        });
    }

    /// A full resync from the station: at start, after lost events, after
    /// a reconnect. An answer that cannot be had reaches the operator.
    fn refresh(&self) {
        if !self.refresher.request() {
            return;
        }
        let refresher = self.refresher.clone();
        let (backend, tx) = (self.backend.clone(), self.tx.clone());
        tokio::spawn(async move {
            loop {
                let msg = match backend.call(Command::Snapshot).await {
                    Ok(Reply::Snapshot {
                        inbound,
                        outbound,
                        status,
                        alarms,
                    }) => Msg::Refreshed {
                        inbound,
                        outbound,
                        status,
                        alarms,
                    },
                    Ok(other) => done("resync".into(), Err(unexpected(&other))),
                    Err(e) => done("resync".into(), Err(e)),
                };
                let _ = tx.send(msg).await;
                if !refresher.finished() {
                    return;
                }
            }
        });
    }

    pub(super) fn run(&self, effect: Effect) {
        match effect {
            Effect::Refresh => self.refresh(),
            Effect::FetchStatus => self.spawn(move |b| async move {
                match b.call(Command::Status).await {
                    Ok(Reply::Status { status }) => Some(Msg::StatusFetched(status)),
                    Ok(other) => Some(done("status".into(), Err(unexpected(&other)))),
                    Err(e) => Some(done("status".into(), Err(e))),
                }
            }),
            Effect::CheckLogin { name, passphrase } => self.spawn(move |b| async move {
                let result = b
                    .call(Command::Login {
                        operator: name.clone(),
                        passphrase: Passphrase(passphrase),
                    })
                    .await
                    .and_then(|r| match r {
                        Reply::LoggedIn { operator } => Ok(operator),
                        other => Err(unexpected(&other)),
                    });
                Some(Msg::LoginChecked { name, result })
            }),
            Effect::SignIn(call_sign) => self.spawn(move |b| async move {
                let result = b
                    .call(Command::SignIn {
                        call_sign: call_sign.clone(),
                    })
                    .await
                    .and_then(|r| match r {
                        Reply::LoggedIn { operator } => Ok(operator),
                        other => Err(unexpected(&other)),
                    });
                Some(Msg::LoginChecked {
                    name: call_sign,
                    result,
                })
            }),
            Effect::CheckSecond { name, passphrase } => self.spawn(move |b| async move {
                let result = b
                    .call(Command::VerifySecond {
                        operator: name,
                        passphrase: Passphrase(passphrase),
                    })
                    .await
                    .and_then(|r| match r {
                        Reply::Verified { operator } => Ok(operator),
                        other => Err(unexpected(&other)),
                    });
                Some(Msg::SecondChecked { result })
            }),
            Effect::OpenMessage(id) => self.spawn(move |b| async move {
                let result =
                    b.call(Command::Open { id: id.to_string() })
                        .await
                        .and_then(|r| match r {
                            Reply::Opened { message } => Ok(message),
                            other => Err(unexpected(&other)),
                        });
                Some(Msg::MessageOpened { id, result })
            }),
            // The station acts for its session's operator, whom the login
            // proved; the effect's operator is the console's own view of it.
            Effect::Release {
                to,
                draft,
                attachments,
                second,
                ..
            } => self.spawn(move |b| async move {
                // The console opens the files and hands them over: an
                // attached station, running as its own user, never opens
                // the operator's paths.
                let attachments = match attachments
                    .iter()
                    .map(|p| {
                        Attachment::open(p).map_err(|e| ApiError::Refused {
                            detail: format!("attachment {}: {e}", p.display()),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(a) => a,
                    Err(e) => return Some(Msg::ReleaseFinished { result: Err(e) }),
                };
                let release = Release {
                    to,
                    draft: *draft,
                    attachments,
                    second_operator: second.map(|s| s.to_string()),
                    refer_to: Vec::new(),
                };
                let result =
                    b.call(Command::Release(Box::new(release)))
                        .await
                        .and_then(|r| match r {
                            Reply::Released { row } => Ok(row),
                            other => Err(unexpected(&other)),
                        });
                Some(Msg::ReleaseFinished { result })
            }),
            Effect::Acknowledge { id, what, .. } => self.spawn(move |b| async move {
                let result = b.call(Command::Acknowledge { id: id.to_string() }).await;
                // The changed row comes as an event, to every console.
                Some(done(format!("acknowledged {what}"), result))
            }),
            Effect::Cancel { id, .. } => self.spawn(move |b| async move {
                let result = b.call(Command::Cancel { id: id.to_string() }).await;
                Some(done(format!("cancelled {id}"), result))
            }),
            Effect::ExportAttachments(id) => self.spawn(move |b| async move {
                let dir = b.own_dir().join("exports").join(id.to_string());
                Some(match export(&b, id, &dir).await {
                    Ok(e) => Msg::Done {
                        what: exported(e.written.len(), &dir.display().to_string(), &e.skipped),
                        result: Ok(()),
                    },
                    Err(e) => Msg::Done {
                        what: format!("export of {id}'s attachments"),
                        result: Err(e),
                    },
                })
            }),
            Effect::CompletePath(typed) => self.spawn(move |_| async move {
                let t = typed.clone();
                let completed = tokio::task::spawn_blocking(move || complete_path(&t))
                    .await
                    .unwrap_or_else(|_| typed.clone());
                Some(Msg::PathCompleted { typed, completed })
            }),
            Effect::LinkTest => {
                for peer in self.backend.peers() {
                    self.spawn(move |b| async move {
                        let result = b.call(Command::LinkTest { peer: peer.clone() }).await;
                        Some(match result {
                            Ok(Reply::LinkTested { rtt_ms, .. }) => Msg::Done {
                                what: format!("link test with {peer}: ok, {rtt_ms} ms"),
                                result: Ok(()),
                            },
                            other => done(format!("link test with {peer}"), other),
                        })
                    });
                }
            }
            Effect::ClearAlarm { kind, subject } => self.spawn(move |b| async move {
                let what = format!("alarm cleared: {}", kind.as_str());
                Some(done(
                    what,
                    b.call(Command::ClearAlarm { kind, subject }).await,
                ))
            }),
            Effect::Audit { action, detail, .. } => self.spawn(move |b| async move {
                match b.call(Command::Audit { action, detail }).await {
                    Ok(_) => None,
                    Err(e) => Some(done("audit entry".into(), Err(e))),
                }
            }),
            Effect::LoggedOut => self.spawn(move |b| async move {
                match b.call(Command::Logout).await {
                    Ok(_) => None,
                    Err(e) => Some(done("log-out".into(), Err(e))),
                }
            }),
            Effect::RingBell => {
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07").and_then(|()| out.flush());
            }
            Effect::WhiteCell(command) => {
                if let Some(commands) = self.white_cell.clone() {
                    tokio::spawn(async move {
                        let _ = commands.send(command).await;
                    });
                }
            }
            // The old run's connection goes first, then the resync, so the
            // resync never goes down the dead connection.
            Effect::ForgetSession => self.spawn(move |b| async move {
                if let Backend::Remote { remote, .. } = b.as_ref() {
                    remote.reset().await;
                }
                Some(Msg::MissedEvents)
            }),
            // Draft writes go one at a time, in order, so that an older
            // seal never lands over a newer one or a discard.
            effect @ (Effect::SaveDraft(_) | Effect::DiscardDraft(_)) => {
                let _ = self.drafts.send(effect);
            }
            Effect::FetchSubjects(ids) => self.spawn(move |b| async move {
                match b.call(Command::Subjects { ids }).await {
                    Ok(Reply::Subjects { subjects }) => Some(Msg::SubjectsFetched { subjects }),
                    // Not logged in any more, or the station went: the
                    // list shows the form until the next resync.
                    _ => None,
                }
            }),
            Effect::Find { direction, query } => self.spawn(move |b| async move {
                let result = b
                    .call(Command::Find {
                        direction,
                        query: query.clone(),
                    })
                    .await
                    .and_then(|r| match r {
                        Reply::Found { ids } => Ok(ids),
                        other => Err(unexpected(&other)),
                    });
                Some(Msg::Found {
                    direction,
                    query,
                    result,
                })
            }),
            Effect::OpenDraft(operator) => self.spawn(move |b| async move {
                let result = open_draft(&b, &operator).await;
                Some(Msg::DraftOpened { operator, result })
            }),
            Effect::Quit => {}
        }
    }
}

/// Carries out draft saves and discards one at a time, in order.
async fn keep_drafts(
    backend: Arc<Backend>,
    mut jobs: mpsc::UnboundedReceiver<Effect>,
    tx: mpsc::Sender<Msg>,
) {
    while let Some(job) = jobs.recv().await {
        let Some((dir, recipient)) = backend.drafts() else {
            if let Effect::SaveDraft(saved) = job {
                let result = Err(crate::drafts::KeepError::NoRecipient);
                let at = saved.saved_at;
                let _ = tx.send(Msg::DraftSaved { at, result }).await;
            }
            continue;
        };
        let msg =
            tokio::task::spawn_blocking(move || match job {
                Effect::SaveDraft(saved) => Some(Msg::DraftSaved {
                    at: saved.saved_at,
                    result: crate::drafts::seal(&dir, &recipient, &saved).map(|_| ()),
                }),
                Effect::DiscardDraft(operator) => crate::drafts::discard(&dir, &operator)
                    .err()
                    .map(|e| Msg::Done {
                        what: "removing the kept draft".into(),
                        result: Err(ApiError::Refused {
                            detail: e.to_string(),
                        }),
                    }),
                _ => None,
            })
            .await
            .ok()
            .flatten();
        // The console may be gone (quitting): the writes still finish.
        if let Some(msg) = msg {
            let _ = tx.send(msg).await;
        }
    }
}

/// A message's attachments, written by the station into files this
/// console makes in `dir`.
async fn export(b: &Backend, id: MessageId, dir: &Path) -> Result<Exported, ApiError> {
    let message = match b.call(Command::Open { id: id.to_string() }).await? {
        Reply::Opened { message } => message,
        other => return Err(unexpected(&other)),
    };
    let (export, command) = AttachmentsExport::prepare(dir, &message)?;
    export.finish(b.call(command).await)
}

/// The operator's kept draft: the console opens its file and hands it to
/// the station, which holds the key. One the station cannot open is set
/// aside, never deleted.
async fn open_draft(
    b: &Backend,
    operator: &OperatorName,
) -> Result<Option<Box<crate::drafts::SavedDraft>>, ApiError> {
    let path = crate::drafts::path(b.own_dir(), operator);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ApiError::Refused {
                detail: format!("the kept draft {}: {e}", path.display()),
            });
        }
    };
    match b
        .call(Command::OpenDraft {
            draft: Passed::File(file),
        })
        .await
    {
        Ok(Reply::Draft { saved }) => Ok(Some(saved)),
        Ok(other) => Err(unexpected(&other)),
        Err(ApiError::Refused { detail }) => {
            let kept = crate::drafts::set_aside(&path);
            Err(ApiError::Refused {
                detail: crate::drafts::DraftFileError { path, detail, kept }.to_string(),
            })
        }
        Err(e) => Err(e),
    }
}

/// A reply of the wrong kind: the station and this console disagree.
fn unexpected(reply: &Reply) -> ApiError {
    ApiError::Unreadable {
        detail: format!("an unexpected reply {reply:?}"),
    }
}
