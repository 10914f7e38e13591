//! Logs go to a daily-rotated file under the station's data directory, never
//! to the console's screen. Message text is never logged.

use std::path::Path;

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
