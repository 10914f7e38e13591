//! Logs go to a daily-rotated file under the station's data directory, never
//! to the console's screen. Message text is never logged. Lines that
//! outside traffic can provoke at will (a peer's malformed frames, a full
//! event buffer) go through [`Limit`], so a flood cannot fill the disk
//! with them.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};

/// How many daily log files are kept.
pub const KEPT_LOG_FILES: usize = 14;

/// Starts logging into `data_dir/logs`. Keep the guard alive until exit so
/// buffered lines are written. `RUST_LOG` style filtering is by level only:
/// `HOTLINE_LOG=debug` for more.
pub fn init(data_dir: &Path) -> Result<WorkerGuard, String> {
    let dir = data_dir.join("logs");
    crate::fsutil::create_private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("hotline")
        .filename_suffix("log")
        .max_log_files(KEPT_LOG_FILES)
        .build(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let level = match std::env::var("HOTLINE_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        Ok("warn") => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(level)
        .try_init();
    Ok(guard)
}

/// How long one count of a rate-limited line runs.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// How many times a rate-limited line is written per window; the rest are
/// counted, and the count goes with the next line written.
pub const LIMIT_BURST: u64 = 20;

/// A rate limit for one kind of log line.
pub struct Limit {
    window: Mutex<Option<(Instant, u64, u64)>>,
}

impl Limit {
    pub const fn new() -> Self {
        Limit {
            window: Mutex::new(None),
        }
    }

    /// Whether to write the line now: `Some(n)` with how many were held
    /// back since the last one written, or `None` to hold this one back.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, written, held) = window.get_or_insert((now, 0, 0));
        if now.duration_since(*start) >= LIMIT_WINDOW {
            *start = now;
            *written = 0;
        }
        if *written < LIMIT_BURST {
            *written += 1;
            Some(std::mem::take(held))
        } else {
            *held += 1;
            None
        }
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_one_line_is_written_a_burst_a_window_with_the_rest_counted() {
        let limit = Limit::new();
        let t0 = Instant::now();
        let written = (0..10_000).filter(|_| limit.allow_at(t0).is_some()).count();
        assert_eq!(written as u64, LIMIT_BURST);
        assert_eq!(
            limit.allow_at(t0 + LIMIT_WINDOW),
            Some(10_000 - LIMIT_BURST),
            "the next window's first line says how many were held back"
        );
        assert_eq!(limit.allow_at(t0 + LIMIT_WINDOW), Some(0));
    }
}
