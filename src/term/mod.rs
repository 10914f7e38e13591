//! The terminal: a guard that restores it on quit, error and panic; the
//! input task; and the run loop — gather a frame's messages (keys first,
//! see [`inbox`]), update, then draw once. Every effect runs in a task of
//! its own and reports back with a `Msg` on a bounded channel, so input
//! never waits on the network or the disk.

mod backend;
pub mod inbox;
mod world;

use futures_util::StreamExt;
use jiff::Timestamp;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event as TermEvent, EventStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

pub use self::backend::Backend;
use self::inbox::Inbox;
use self::world::World;
pub use self::world::complete_path;
use crate::console::{App, Effect, Msg, Setup, TICK, WhiteCellCommand, WhiteCellView, update};

/// Messages waiting for the run loop: station events, ticks and results
/// share it; when it is full, producers wait, never the loop.
pub const MSG_BUFFER: usize = 1024;
/// Keys and resizes waiting for the run loop, on a channel of their own.
pub const KEY_BUFFER: usize = 256;

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

/// A tabletop's white cell, for the facilitator's panel: where commands go,
/// and where its state comes from.
pub struct WhiteCellLink {
    pub commands: mpsc::Sender<WhiteCellCommand>,
    pub view: tokio::sync::watch::Receiver<WhiteCellView>,
}

/// Runs the console until the operator quits.
pub async fn run(
    backend: Backend,
    setup: Setup,
    white_cell: Option<WhiteCellLink>,
) -> std::io::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let (tx, rx) = mpsc::channel::<Msg>(MSG_BUFFER);

    let (input, keys) = mpsc::channel::<Msg>(KEY_BUFFER);
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
    let (world, keeper) = World::start(backend, commands, tx);
    let mut app = App::new(setup, Timestamp::now());
    world.run(Effect::Refresh);
    guard.terminal.draw(|f| crate::ui::draw(f, &app))?;
    let mut inbox = Inbox::new(keys, rx);
    while let Some((first, mut frame)) = inbox.first().await {
        // The subjects a frame's arrivals lack are asked for in one call.
        let mut subjects = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            for effect in update(&mut app, msg) {
                match effect {
                    Effect::FetchSubjects(ids) => subjects.extend(ids),
                    other => world.run(other),
                }
            }
            next = if app.quit {
                None
            } else {
                inbox.more(&mut frame)
            };
        }
        if !subjects.is_empty() {
            world.run(Effect::FetchSubjects(subjects));
        }
        if app.quit {
            break;
        }
        guard.terminal.draw(|f| crate::ui::draw(f, &app))?;
    }
    drop(guard);
    // The last draft write (one is made on quitting) lands before we go.
    drop(inbox);
    drop(world);
    let _ = keeper.await;
    Ok(())
}
