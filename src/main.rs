//! The `hotline` command: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Everything this process creates (keys, journal, exports, sockets) is
    // owner-only unless a path says otherwise explicitly.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let cli = hotline::cli::Cli::parse();
    match hotline::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote what was wrong, which may be text from outside:
            // note_text makes them inert.
            hotline::cli::note_text(format_args!("hotline: {}\n", hotline::cli::describe(&e)));
            ExitCode::from(1)
        }
    }
}
