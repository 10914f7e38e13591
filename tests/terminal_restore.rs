//! The console's terminal guard restores the terminal when the console
//! panics: cooked mode back on, the alternate screen left, the panic
//! message readable. The test runs itself in a tmux window as a child that
//! panics inside the guard; the control child leaves raw mode and the
//! alternate screen on without the guard, and the same checks catch it.

mod support;

use std::io::Write as _;
use std::time::Duration;

use support::tmux::Tmux;

/// Set in the child this test starts; says what the child does.
const CHILD: &str = "HOTLINE_TERMINAL_CHILD";
const NAME: &str = "a_panic_inside_the_terminal_guard_restores_the_terminal";

#[test]
fn a_panic_inside_the_terminal_guard_restores_the_terminal() {
    match std::env::var(CHILD).as_deref() {
        Ok("panic") => {
            let _guard = hotline::term::TerminalGuard::enter().expect("a terminal");
            std::thread::sleep(Duration::from_millis(500));
            panic!("deliberate panic inside the terminal guard");
        }
        Ok("abandon") => {
            use ratatui::crossterm::{execute, terminal};
            terminal::enable_raw_mode().expect("raw mode");
            let mut out = std::io::stdout();
            execute!(out, terminal::EnterAlternateScreen).expect("alternate screen");
            let _ = out.flush();
            std::thread::sleep(Duration::from_millis(500));
            std::process::exit(3);
        }
        _ => {}
    }
    let exe = std::env::current_exe().expect("the test binary");
    for (mode, restored) in [("panic", true), ("abandon", false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let stty = dir.path().join("stty.txt");
        let cmd = format!(
            "{CHILD}={mode} {} --exact {NAME} --nocapture --test-threads 1; \
             stty -a > {}; echo CHILD-DONE; sleep 30",
            exe.display(),
            stty.display()
        );
        let tmux = Tmux::new(mode, &cmd, (120, 40));
        let screen = tmux.wait_for("CHILD-DONE", Duration::from_secs(30));
        let modes = std::fs::read_to_string(&stty).expect("stty wrote its report");
        let cooked = !modes.contains("-icanon") && !modes.contains("-echo ");
        let alternate = tmux.format("#{alternate_on}");
        if restored {
            assert!(cooked, "raw mode left on after the panic:\n{modes}");
            assert_eq!(alternate, "0", "still on the alternate screen:\n{screen}");
            // The test harness prints its own report over part of it.
            assert!(
                screen.contains("panic inside the terminal guard"),
                "the panic message is on the normal screen:\n{screen}"
            );
        } else {
            assert!(
                !cooked,
                "control: the abandoned terminal should be in raw mode:\n{modes}"
            );
            assert_eq!(
                alternate, "1",
                "control: the abandoned terminal should be on the alternate screen"
            );
        }
    }
}
