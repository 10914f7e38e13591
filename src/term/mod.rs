//! The terminal: a guard that restores it on quit, error and panic; the
//! input task; and the run loop — update, then draw once. Every effect runs
//! in a task of its own and reports back with a `Msg` on one bounded
//! channel, so input never waits on the network or the disk.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures_util::StreamExt;
use jiff::Timestamp;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event as TermEvent, EventStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::attach::Remote;
use crate::console::{App, Effect, Msg, Setup, TICK, WhiteCellCommand, WhiteCellView, update};
use crate::station::Station;
use crate::station::api::{ApiError, Command, Door, Passphrase, Release, Reply, Session};

/// Messages waiting for the run loop. Input, station events and results
/// all share it; when it is full, producers wait, never the loop.
pub const MSG_BUFFER: usize = 1024;

/// Restores the terminal when dropped, whatever happened. `ratatui::init`
/// also installs a panic hook that restores it before the panic message.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<TerminalGuard> {
        Ok(TerminalGuard {
            terminal: ratatui::try_init()?,
        })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

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

/// Where the console's station is: in this process, or attached over the
/// control socket to one started with `hotline serve`. Either way every
/// request is a typed [`Command`] through the station's one door.
pub enum Backend {
    Local {
        station: Station,
        session: Session,
    },
    Remote {
        remote: Remote,
        socket: PathBuf,
        /// The run of the station the console attached to.
        boot: u64,
        peers: Vec<String>,
        /// What drafts are sealed to, learnt when the console attached, so
        /// that drafts are kept while the station is gone.
        recipient: Option<Box<age::x25519::Recipient>>,
    },
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

impl Backend {
    /// The console of a station running in this process.
    pub fn local(station: Station) -> Backend {
        Backend::Local {
            station,
            session: Session::new(Door::Console),
        }
    }

    /// The console of the station listening on `socket`.
    pub async fn attach(socket: PathBuf, peers: Vec<String>) -> Result<Backend, ApiError> {
        let remote = Remote::connect(socket.clone()).await?;
        let boot = remote.boot().await.unwrap_or_default();
        let recipient = remote
            .recipient()
            .await
            .and_then(|r| crate::crypto::keys::parse_age_recipient(&r).ok())
            .map(Box::new);
        Ok(Backend::Remote {
            remote,
            socket,
            boot,
            peers,
            recipient,
        })
    }

    async fn call(&self, command: Command) -> Result<Reply, ApiError> {
        match self {
            Backend::Local { station, session } => station.handle(session, command).await,
            Backend::Remote { remote, .. } => remote.call(command).await,
        }
    }

    /// Where drafts are kept, and what they are sealed to.
    fn drafts(&self) -> Option<(PathBuf, age::x25519::Recipient)> {
        match self {
            Backend::Local { station, .. } => {
                Some((station.data_dir().to_path_buf(), station.recipient()))
            }
            Backend::Remote {
                socket, recipient, ..
            } => Some((socket.parent()?.to_path_buf(), *recipient.clone()?)),
        }
    }

    fn peers(&self) -> Vec<String> {
        match self {
            Backend::Local { station, .. } => station.peers(),
            Backend::Remote { peers, .. } => peers.clone(),
        }
    }
}

/// What a reply says it did, for the status line.
fn done(what: String, result: Result<Reply, ApiError>) -> Msg {
    Msg::Done {
        what,
        result: result.map(|_| ()),
    }
}

/// A tabletop's white cell, for the facilitator's panel: where commands go,
/// and where its state comes from.
pub struct WhiteCellLink {
    pub commands: mpsc::Sender<WhiteCellCommand>,
    pub view: tokio::sync::watch::Receiver<WhiteCellView>,
}

struct World {
    backend: Arc<Backend>,
    /// Draft saves and discards, for [`keep_drafts`].
    drafts: mpsc::UnboundedSender<Effect>,
    tx: mpsc::Sender<Msg>,
    refresher: Arc<Refresher>,
    white_cell: Option<mpsc::Sender<WhiteCellCommand>>,
}

impl World {
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

    fn run(&self, effect: Effect) {
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
                let result = b.call(Command::Open { id }).await.and_then(|r| match r {
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
                let release = Release {
                    to,
                    draft: *draft,
                    attachments,
                    second_operator: second.map(|s| s.to_string()),
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
                Some(match b.call(Command::ExportAttachments { id }).await {
                    Ok(Reply::Exported {
                        dir,
                        written,
                        skipped,
                    }) => Msg::Done {
                        what: exported(written.len(), &dir.display().to_string(), &skipped),
                        result: Ok(()),
                    },
                    other => done(format!("export of {id}'s attachments"), other),
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
                let result = b.call(Command::OpenDraft).await.and_then(|r| match r {
                    Reply::Draft { saved } => Ok(saved),
                    other => Err(unexpected(&other)),
                });
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

/// A reply of the wrong kind: the station and this console disagree.
fn unexpected(reply: &Reply) -> ApiError {
    ApiError::Unreadable {
        detail: format!("an unexpected reply {reply:?}"),
    }
}

/// Runs the console until the operator quits.
pub async fn run(
    backend: Backend,
    setup: Setup,
    white_cell: Option<WhiteCellLink>,
) -> std::io::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let (tx, mut rx) = mpsc::channel::<Msg>(MSG_BUFFER);

    let input = tx.clone();
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(Ok(ev)) = events.next().await {
            let msg = match ev {
                TermEvent::Key(k) => Msg::Key(k),
                TermEvent::Resize(..) => Msg::Resized,
                _ => continue,
            };
            if input.send(msg).await.is_err() {
                return;
            }
        }
    });
    let events_tx = tx.clone();
    match &backend {
        Backend::Local { station, .. } => {
            let mut events = station.subscribe();
            tokio::spawn(async move {
                loop {
                    let msg = match events.recv().await {
                        Ok(e) => Msg::Station(e),
                        Err(RecvError::Lagged(_)) => Msg::MissedEvents,
                        Err(RecvError::Closed) => return,
                    };
                    if events_tx.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
        Backend::Remote { socket, boot, .. } => {
            tokio::spawn(crate::attach::supervise(socket.clone(), *boot, events_tx));
        }
    }
    let ticks = tx.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if ticks.send(Msg::Tick(Timestamp::now())).await.is_err() {
                return;
            }
        }
    });

    let commands = white_cell.map(|link| {
        let (mut view, tx) = (link.view, tx.clone());
        tokio::spawn(async move {
            loop {
                let current = view.borrow_and_update().clone();
                if tx.send(Msg::WhiteCell(current)).await.is_err() || view.changed().await.is_err()
                {
                    return;
                }
            }
        });
        link.commands
    });
    let backend = Arc::new(backend);
    let (drafts, jobs) = mpsc::unbounded_channel();
    let keeper = tokio::spawn(keep_drafts(backend.clone(), jobs, tx.clone()));
    let world = World {
        white_cell: commands,
        backend,
        drafts,
        tx,
        refresher: Arc::default(),
    };
    let mut app = App::new(setup, Timestamp::now());
    world.run(Effect::Refresh);
    guard.terminal.draw(|f| crate::ui::draw(f, &app))?;
    while let Some(msg) = rx.recv().await {
        for effect in update(&mut app, msg) {
            world.run(effect);
        }
        if app.quit {
            break;
        }
        guard.terminal.draw(|f| crate::ui::draw(f, &app))?;
    }
    drop(guard);
    // The last draft write (one is made on quitting) lands before we go.
    drop(rx);
    drop(world);
    let _ = keeper.await;
    Ok(())
}
