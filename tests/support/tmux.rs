//! A terminal for end-to-end tests: the binary under test runs in a tmux
//! window of its own; keys go in with send-keys, the screen comes back with
//! capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of its own running `cmd` in a `size` (columns, rows)
    /// window, so tests running at once never share one.
    pub fn new(name: &str, cmd: &str, size: (u16, u16)) -> Tmux {
        let socket = format!("hotline-test-{}-{name}", std::process::id());
        let (x, y) = (size.0.to_string(), size.1.to_string());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", &x, "-y", &y, cmd])
            .status()
            .expect("tmux runs (install the Debian package tmux)")
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { socket }
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["-L", &self.socket, "send-keys", "-t", "0", k])
                .status()
                .expect("send-keys")
                .success();
            assert!(ok);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// A tmux format (`#{alternate_on}`, say) evaluated for the pane.
    pub fn format(&self, format: &str) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "display-message",
                "-p",
                "-t",
                "0",
                format,
            ])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0", "-l", text])
            .status()
            .expect("send-keys")
            .success();
        assert!(ok);
        std::thread::sleep(Duration::from_millis(150));
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its attributes, as SGR escape sequences.
    pub fn styled_screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-e", "-p", "-t", "0"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls until the screen satisfies `ok`, or fails naming `what`.
    pub fn wait_until(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "{what} did not happen within {limit:?}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The negative of [`Tmux::wait_for`], polled the same way: `what`
    /// does not appear for all of `during`.
    pub fn never_for(&self, what: &str, during: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            assert!(!s.contains(what), "`{what}` appeared; the screen:\n{s}");
            if start.elapsed() >= during {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn wait_for(&self, what: &str, limit: Duration) -> String {
        self.wait_until(&format!("`{what}` appearing"), limit, |s| s.contains(what))
    }

    /// In a duty console showing one unacknowledged IMMEDIATE message:
    /// acknowledges it as `operator` (confirming), then replies with a
    /// general message and waits until the peer's receipt is on the sent
    /// row. In an in-process tabletop the reply can end the exercise, and
    /// the final report then opens over the lists, maybe before the receipt
    /// is drawn: the report is closed and the row looked for beneath it.
    pub fn acknowledge_and_reply(&self, operator: &str) {
        self.keys(&["a"]);
        self.wait_for("Acknowledge IMMEDIATE", Duration::from_secs(5));
        self.keys(&["y"]);
        self.wait_for(&format!("ACK {operator}"), Duration::from_secs(10));
        self.keys(&["r"]);
        self.wait_for("Template (type to filter)", Duration::from_secs(5));
        self.text("gen");
        self.keys(&["Enter"]);
        self.wait_for("COMPOSE: General message", Duration::from_secs(5));
        self.keys(&["Tab", "Tab"]);
        self.text("Received");
        self.keys(&["Tab"]);
        self.text("We acknowledge your message.");
        self.keys(&["F5"]);
        self.wait_for("Release", Duration::from_secs(5));
        self.keys(&["y"]);
        let screen = self.wait_until(
            "the reply's receipt, or the final report",
            Duration::from_secs(15),
            |s| s.contains("RECEIVED BY PEER") || s.contains("AFTER-ACTION REPORT"),
        );
        if !screen.contains("RECEIVED BY PEER") {
            self.keys(&["Escape"]);
            self.wait_for("RECEIVED BY PEER", Duration::from_secs(15));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
