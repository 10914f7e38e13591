//! The terminal: a guard that restores it on quit, error and panic; the
//! input task; and the run loop — update, then draw once. Every effect runs
//! in a task of its own and reports back with a `Msg` on one bounded
//! channel, so input never waits on the network or the disk.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures_util::StreamExt;
use jiff::Timestamp;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event as TermEvent, EventStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use age::secrecy::{ExposeSecret, SecretString};

use crate::attach::{Remote, Streamed};
use crate::compose::Draft;
use crate::console::{App, Effect, Msg, Setup, TICK, WhiteCellCommand, WhiteCellView, update};
use crate::domain::{Message, MessageId, OperatorName};
use crate::station::control::Request;
use crate::station::{Station, Status};
use crate::store::{Direction, MessageRow};

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
/// control socket to one started with `hotline serve`.
pub enum Backend {
    Local(Station),
    Remote {
        remote: Arc<Remote>,
        peers: Vec<String>,
        /// The station's event stream, taken by the run loop.
        events: Option<mpsc::Receiver<Streamed>>,
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

fn text<T>(r: Result<T, impl std::fmt::Display>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl Backend {
    async fn read_all(&self) -> Option<(Vec<MessageRow>, Vec<MessageRow>, Status)> {
        match self {
            Backend::Local(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || {
                    let inbound = s.list(Direction::In).unwrap_or_default();
                    let outbound = s.list(Direction::Out).unwrap_or_default();
                    (inbound, outbound, s.status())
                })
                .await
                .ok()
            }
            Backend::Remote { remote, .. } => {
                let inbound =
                    serde_json::from_value(remote.call(&Request::Inbox).await.ok()?).ok()?;
                let outbound =
                    serde_json::from_value(remote.call(&Request::Outbox).await.ok()?).ok()?;
                let status =
                    serde_json::from_value(remote.call(&Request::Status).await.ok()?).ok()?;
                Some((inbound, outbound, status))
            }
        }
    }

    async fn check(
        &self,
        name: String,
        passphrase: SecretString,
        second: bool,
    ) -> Result<OperatorName, String> {
        match self {
            Backend::Local(station) => {
                let (who, s) = (name.clone(), station.clone());
                let result =
                    tokio::task::spawn_blocking(move || s.authenticator().check(&who, &passphrase))
                        .await
                        .unwrap_or(Err(crate::station::AuthError::Denied));
                let outcome = if result.is_ok() { "ok" } else { "denied" };
                let action = if second { "second-operator" } else { "login" };
                let _ = station.journal().audit(
                    &name,
                    action,
                    &format!("via=console outcome={outcome}"),
                );
                text(result)
            }
            Backend::Remote { remote, .. } => {
                let passphrase = passphrase.expose_secret().to_string();
                let request = if second {
                    Request::Verify {
                        operator: name,
                        passphrase,
                    }
                } else {
                    Request::Login {
                        operator: name,
                        passphrase,
                    }
                };
                let v = remote.call(&request).await?;
                text(OperatorName::new(
                    v["operator"].as_str().unwrap_or_default(),
                ))
            }
        }
    }

    async fn open(&self, id: MessageId) -> Result<Message, String> {
        match self {
            Backend::Local(s) => {
                let s = s.clone();
                text(tokio::task::spawn_blocking(move || s.open(&id)).await).and_then(text)
            }
            Backend::Remote { remote, .. } => {
                let v = remote.call(&Request::Show { id: id.to_string() }).await?;
                text(serde_json::from_value(v))
            }
        }
    }

    async fn release(
        &self,
        operator: OperatorName,
        to: String,
        draft: Draft,
        attachments: Vec<std::path::PathBuf>,
        second: Option<OperatorName>,
    ) -> Result<String, String> {
        match self {
            Backend::Local(s) => {
                let (released, m) = text(
                    s.release_with_attachments(&operator, &to, draft, attachments)
                        .await,
                )?;
                Ok(format!(
                    "released {} serial {} to {to}",
                    m.precedence, released.serial
                ))
            }
            Backend::Remote { remote, .. } => {
                let v = remote
                    .call(&Request::Send {
                        to: to.clone(),
                        template: draft.template_id,
                        fields: draft.fields,
                        precedence: draft.precedence.map(|p| p.to_string()),
                        text: draft.text,
                        references: draft.references.iter().map(ToString::to_string).collect(),
                        exercise: draft.exercise,
                        operator: operator.to_string(),
                        passphrase: None,
                        second_operator: second.map(|s| s.to_string()),
                        second_passphrase: None,
                        attachments,
                    })
                    .await?;
                Ok(format!(
                    "released {} serial {} to {to}",
                    v["precedence"].as_str().unwrap_or(""),
                    v["serial"]
                ))
            }
        }
    }

    async fn acknowledge(
        &self,
        operator: OperatorName,
        id: MessageId,
        cancel: bool,
    ) -> Result<(), String> {
        match self {
            Backend::Local(s) if cancel => text(s.cancel(&operator, id).await),
            Backend::Local(s) => text(s.acknowledge(&operator, id).await),
            Backend::Remote { remote, .. } => {
                let (id, operator) = (id.to_string(), operator.to_string());
                let request = if cancel {
                    Request::Cancel {
                        id,
                        operator,
                        passphrase: None,
                    }
                } else {
                    Request::Ack {
                        id,
                        operator,
                        passphrase: None,
                    }
                };
                remote.call(&request).await.map(|_| ())
            }
        }
    }

    async fn export_attachments(&self, id: MessageId) -> Result<String, String> {
        match self {
            Backend::Local(s) => {
                let dir = s
                    .config()
                    .station
                    .data_dir
                    .join("exports")
                    .join(id.to_string());
                let (written, skipped) = text(s.export_attachments(&id, dir.clone()).await)?;
                Ok(exported(
                    written.len(),
                    &dir.display().to_string(),
                    &skipped,
                ))
            }
            Backend::Remote { remote, .. } => {
                let v = remote
                    .call(&Request::ExportAttachments { id: id.to_string() })
                    .await?;
                let skipped: Vec<String> =
                    serde_json::from_value(v["skipped"].clone()).unwrap_or_default();
                Ok(exported(
                    v["written"].as_u64().unwrap_or(0) as usize,
                    v["dir"].as_str().unwrap_or(""),
                    &skipped,
                ))
            }
        }
    }

    async fn link_test(&self, peer: String) -> Result<u64, String> {
        match self {
            Backend::Local(s) => text(s.link_test(&peer).await).map(|d| d.as_millis() as u64),
            Backend::Remote { remote, .. } => {
                Ok(remote.call(&Request::LinkTest { peer }).await?["rtt_ms"]
                    .as_u64()
                    .unwrap_or(0))
            }
        }
    }

    async fn audit(&self, actor: String, action: String, detail: String) {
        match self {
            Backend::Local(s) => {
                let _ = s.journal().audit(&actor, &action, &detail).done().await;
            }
            Backend::Remote { remote, .. } => {
                let _ = remote.call(&Request::Audit { action, detail }).await;
            }
        }
    }

    async fn logged_out(&self) {
        if let Backend::Remote { remote, .. } = self {
            let _ = remote.call(&Request::Logout).await;
        }
    }

    fn peers(&self) -> Vec<String> {
        match self {
            Backend::Local(s) => s.peers(),
            Backend::Remote { peers, .. } => peers.clone(),
        }
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

    fn refresh(&self) {
        if !self.refresher.request() {
            return;
        }
        let refresher = self.refresher.clone();
        let (backend, tx) = (self.backend.clone(), self.tx.clone());
        tokio::spawn(async move {
            loop {
                if let Some((inbound, outbound, status)) = backend.read_all().await {
                    let status = Box::new(status);
                    let _ = tx
                        .send(Msg::Refreshed {
                            inbound,
                            outbound,
                            status,
                        })
                        .await;
                }
                if !refresher.finished() {
                    return;
                }
            }
        });
    }

    fn run(&self, effect: Effect) {
        match effect {
            Effect::Refresh => self.refresh(),
            Effect::CheckLogin { name, passphrase } => self.spawn(move |b| async move {
                let result = b.check(name.clone(), passphrase, false).await;
                Some(Msg::LoginChecked { name, result })
            }),
            Effect::CheckSecond { name, passphrase } => self.spawn(move |b| async move {
                Some(Msg::SecondChecked {
                    result: b.check(name, passphrase, true).await,
                })
            }),
            Effect::OpenMessage(id) => self.spawn(move |b| async move {
                Some(Msg::MessageOpened {
                    id,
                    result: b.open(id).await.map(Box::new),
                })
            }),
            Effect::Release {
                operator,
                to,
                draft,
                attachments,
                second,
            } => self.spawn(move |b| async move {
                let result = b
                    .release(operator, to.clone(), *draft, attachments, second)
                    .await;
                Some(match result {
                    Ok(what) => Msg::Done {
                        what,
                        result: Ok(()),
                    },
                    Err(e) => Msg::Done {
                        what: format!("release to {to}"),
                        result: Err(e),
                    },
                })
            }),
            Effect::Acknowledge { operator, id } => self.spawn(move |b| async move {
                let what = format!("acknowledged {id} as {operator}");
                Some(Msg::Done {
                    what,
                    result: b.acknowledge(operator, id, false).await,
                })
            }),
            Effect::Cancel { operator, id } => self.spawn(move |b| async move {
                Some(Msg::Done {
                    what: format!("cancelled {id}"),
                    result: b.acknowledge(operator, id, true).await,
                })
            }),
            Effect::ExportAttachments(id) => self.spawn(move |b| async move {
                Some(match b.export_attachments(id).await {
                    Ok(what) => Msg::Done {
                        what,
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
                        Some(match b.link_test(peer.clone()).await {
                            Ok(ms) => Msg::Done {
                                what: format!("link test with {peer}: ok, {ms} ms"),
                                result: Ok(()),
                            },
                            Err(e) => Msg::Done {
                                what: format!("link test with {peer}"),
                                result: Err(e),
                            },
                        })
                    });
                }
            }
            Effect::Audit {
                actor,
                action,
                detail,
            } => self.spawn(move |b| async move {
                b.audit(actor, action, detail).await;
                None
            }),
            Effect::LoggedOut => self.spawn(move |b| async move {
                b.logged_out().await;
                None
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
            Effect::Quit => {}
        }
    }
}

/// Runs the console until the operator quits.
pub async fn run(
    mut backend: Backend,
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
    match &mut backend {
        Backend::Local(station) => {
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
        Backend::Remote { events, .. } => {
            if let Some(mut events) = events.take() {
                tokio::spawn(async move {
                    while let Some(item) = events.recv().await {
                        let msg = match item {
                            Streamed::Event(e) => Msg::Station(e),
                            Streamed::Missed => Msg::MissedEvents,
                        };
                        if events_tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
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
    let world = World {
        white_cell: commands,
        backend: Arc::new(backend),
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
    Ok(())
}
