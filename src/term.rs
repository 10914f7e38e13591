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

use crate::console::{App, Effect, Msg, Setup, TICK, update};
use crate::station::Station;
use crate::store::Direction;

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

struct World {
    station: Station,
    tx: mpsc::Sender<Msg>,
    refresher: Arc<Refresher>,
}

impl World {
    fn refresh(&self) {
        if !self.refresher.request() {
            return;
        }
        let (station, tx, refresher) = (
            self.station.clone(),
            self.tx.clone(),
            self.refresher.clone(),
        );
        tokio::spawn(async move {
            loop {
                let s = station.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let inbound = s.list(Direction::In).unwrap_or_default();
                    let outbound = s.list(Direction::Out).unwrap_or_default();
                    (inbound, outbound, s.status())
                })
                .await;
                if let Ok((inbound, outbound, status)) = read {
                    let _ = tx
                        .send(Msg::Refreshed {
                            inbound,
                            outbound,
                            status: Box::new(status),
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
        let station = self.station.clone();
        match effect {
            Effect::Refresh => self.refresh(),
            Effect::CheckLogin { name, passphrase } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let who = name.clone();
                    let s = station.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        s.authenticator().check(&who, &passphrase)
                    })
                    .await
                    .unwrap_or(Err(crate::station::AuthError::Denied));
                    let outcome = if result.is_ok() { "ok" } else { "denied" };
                    let _ = station.journal().audit(
                        &name,
                        "login",
                        &format!("via=console outcome={outcome}"),
                    );
                    let _ = tx
                        .send(Msg::LoginChecked {
                            name,
                            result: result.map_err(|e| e.to_string()),
                        })
                        .await;
                });
            }
            Effect::CheckSecond { name, passphrase } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let who = name.clone();
                    let s = station.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        s.authenticator().check(&who, &passphrase)
                    })
                    .await
                    .unwrap_or(Err(crate::station::AuthError::Denied));
                    let outcome = if result.is_ok() { "ok" } else { "denied" };
                    let _ = station.journal().audit(
                        &name,
                        "second-operator",
                        &format!("via=console outcome={outcome}"),
                    );
                    let _ = tx
                        .send(Msg::SecondChecked {
                            result: result.map_err(|e| e.to_string()),
                        })
                        .await;
                });
            }
            Effect::OpenMessage(id) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || station.open(&id))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map(Box::new).map_err(|e| e.to_string()));
                    let _ = tx.send(Msg::MessageOpened { id, result }).await;
                });
            }
            Effect::Release {
                operator,
                to,
                draft,
            } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = station.release(&operator, &to, *draft).await;
                    let what = match &result {
                        Ok((r, m)) => {
                            format!("released {} serial {} to {to}", m.precedence, r.serial)
                        }
                        Err(_) => format!("release to {to}"),
                    };
                    let _ = tx
                        .send(Msg::Done {
                            what,
                            result: result.map(|_| ()).map_err(|e| e.to_string()),
                        })
                        .await;
                });
            }
            Effect::Acknowledge { operator, id } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = station
                        .acknowledge(&operator, id)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx
                        .send(Msg::Done {
                            what: format!("acknowledged {id} as {operator}"),
                            result,
                        })
                        .await;
                });
            }
            Effect::Cancel { operator, id } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = station
                        .cancel(&operator, id)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx
                        .send(Msg::Done {
                            what: format!("cancelled {id}"),
                            result,
                        })
                        .await;
                });
            }
            Effect::LinkTest => {
                for peer in station
                    .config()
                    .peers
                    .iter()
                    .map(|p| p.keys.name.to_string())
                    .collect::<Vec<_>>()
                {
                    let (tx, station) = (self.tx.clone(), station.clone());
                    tokio::spawn(async move {
                        let result = station.link_test(&peer).await;
                        let what = match &result {
                            Ok(rtt) => format!("link test with {peer}: ok, {} ms", rtt.as_millis()),
                            Err(_) => format!("link test with {peer}"),
                        };
                        let _ = tx
                            .send(Msg::Done {
                                what,
                                result: result.map(|_| ()).map_err(|e| e.to_string()),
                            })
                            .await;
                    });
                }
            }
            Effect::Audit {
                actor,
                action,
                detail,
            } => {
                let _ = station.journal().audit(&actor, &action, &detail);
            }
            Effect::RingBell => {
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07").and_then(|()| out.flush());
            }
            Effect::Quit => {}
        }
    }
}

/// Runs the console until the operator quits.
pub async fn run(station: Station, setup: Setup) -> std::io::Result<()> {
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

    let world = World {
        station,
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
