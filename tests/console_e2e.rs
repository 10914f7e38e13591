//! The duty console end to end: the real `hotline` binary in a dedicated
//! tmux server, against a second station running as `hotline serve`.
//!
//! WASHINGTON's operator logs in with keys sent through tmux, reads the
//! handover summary, receives an IMMEDIATE message from MOSCOW (a Russian
//! station) rendered in English, acknowledges it (MOSCOW's outbox shows who
//! acknowledged), and composes and releases a reply (MOSCOW's inbox and
//! journal have it, and the reply, decrypted with typage (another age),
//! references the original). The screen is read with `capture-pane`.
//!
//! Hostile text: `hotline send` itself refuses escape sequences, so they
//! are delivered the way a compromised peer would send them, by a hand-made
//! link client holding MOSCOW's key. Bidirectional overrides and zero-width
//! characters, which senders accept, also travel through the real MOSCOW.
//! The console shows all of them as inert placeholders, the screen is not
//! cleared, the pane title and the clipboard (tmux buffers) are untouched.
//! A CONTROL prints the same bytes raw into another pane of the same tmux
//! server and sees the title change, the clipboard written and the screen
//! cleared, so the checks have teeth. Ctrl-Q leaves the terminal restored.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hotline::compose::{self, Draft, Origin};
use hotline::crypto::{Kind, PeerKeys, StationKeys, read_key_file, seal};
use hotline::domain::{Language, OperatorName, PROTOCOL, Precedence, StationName};
use hotline::link::tls::client_config;
use hotline::station::docs::{self, HelloBody, RefusalBody};
use hotline::templates::Catalog;
use hotline::wire::{ALPN_LIVE, Frame, FrameKind};
use jiff::Timestamp;
use serde_json::Value;

/// How long anything may take to show up on screen or at the peer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Pause after each key, so that Esc is never merged with the next key
/// into an Alt sequence and each key is its own read.
const KEY_PAUSE: Duration = Duration::from_millis(80);

const W_OPERATOR: &str = "j.smith";
const W_PASSPHRASE: &str = "washington duty passphrase";
const M_OPERATOR: &str = "i.ivanov";
const M_PASSPHRASE: &str = "moscow duty passphrase";

/// Screen clear, window title change, OSC 52 clipboard write, a
/// right-to-left override and a zero-width space.
const HOSTILE: &str = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;SGVsbG8=\x07\u{202E}evil\u{200B}x";
/// What the console must show for [`HOSTILE`].
const HOSTILE_INERT: &str = "␛[2J␛]0;pwned␇␛]52;c;SGVsbG8=␇⟨U+202E⟩evil⟨U+200B⟩x";
/// The part of [`HOSTILE`] that senders accept.
const BIDI: &str = "\u{202E}evil\u{200B}x";
const BIDI_INERT: &str = "⟨U+202E⟩evil⟨U+200B⟩x";

const HOTLINE_ENV: [&str; 4] = [
    "HOTLINE_CONFIG",
    "HOTLINE_KEY_PASSPHRASE_FILE",
    "HOTLINE_PASSPHRASE_FILE",
    "HOTLINE_SECOND_PASSPHRASE_FILE",
];

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("hotline")
}

/// A free UDP port on 127.0.0.1 (bound, read, released).
fn free_addr() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    s.local_addr().expect("its address")
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn secret_file(path: &Path, text: &str) -> PathBuf {
    fs::write(path, format!("{text}\n")).expect("write passphrase file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    path.to_path_buf()
}

/// Single-quotes `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "{what} should succeed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn output(out: Output) -> Run {
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One station's files.
struct Site {
    name: &'static str,
    dir: PathBuf,
    config: PathBuf,
    addr: SocketAddr,
    passphrase_file: PathBuf,
}

impl Site {
    /// `hotline --config CONFIG`, with none of hotline's variables inherited
    /// and the operator passphrase file set.
    fn hotline(&self) -> Command {
        let mut cmd = Command::new(bin());
        for var in HOTLINE_ENV {
            cmd.env_remove(var);
        }
        cmd.env("HOTLINE_PASSPHRASE_FILE", &self.passphrase_file);
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        output(
            self.hotline()
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("hotline runs"),
        )
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .hotline()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hotline runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        output(child.wait_with_output().expect("hotline finishes"))
    }

    /// `inbox --json` or `outbox --json` (through the running station's
    /// socket, or the journal if none runs).
    fn list(&self, which: &str) -> Vec<Value> {
        let out = self.run(&[which, "--json"]).ok(which);
        let rows: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{which} --json is not JSON ({e}):\n{}", out.stdout));
        rows.as_array().cloned().unwrap_or_default()
    }

    fn keys(&self) -> StationKeys {
        read_key_file(&self.dir.join("station.key"), || {
            Err("the test stations have no key passphrase".into())
        })
        .expect("read the station key")
    }
}

/// `hotline init` for a station listening on a free port of its own.
fn init(
    root: &Path,
    name: &'static str,
    dir: &str,
    operator: &str,
    pass: &str,
    extra: &[&str],
) -> Site {
    let addr = free_addr();
    let site = Site {
        name,
        dir: root.join(dir),
        config: root.join(dir).join("operator.toml"),
        addr,
        passphrase_file: secret_file(&root.join(format!("{dir}.pass")), pass),
    };
    let listen = addr.to_string();
    let mut cmd = Command::new(bin());
    for var in HOTLINE_ENV {
        cmd.env_remove(var);
    }
    let out = output(
        cmd.args(["init", "--station", name, "--dir"])
            .arg(&site.dir)
            .args(["--no-passphrase", "--listen", &listen, "--address", &listen])
            .args(extra)
            .output()
            .expect("hotline init runs"),
    )
    .ok("init");
    assert!(
        out.stdout.contains(&format!("Created station {name}")),
        "{}",
        out.stdout
    );
    let out = site
        .run(&["operator", "add", operator, "--clearance", "TOP SECRET"])
        .ok("operator add");
    assert!(out.stdout.contains("Added operator"), "{}", out.stdout);
    site
}

/// Polls `pred` every 100 ms until it holds or [`TIMEOUT`] passes.
fn eventually<T>(what: &str, mut pred: impl FnMut() -> Option<T>, last: impl Fn() -> String) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = pred() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}\n{}",
            last()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `hotline serve` child process, stopped when dropped (also on panic).
struct Serve {
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl Serve {
    fn start(site: &Site, log: PathBuf) -> Serve {
        let file = fs::File::create(&log).expect("serve log");
        let child = site
            .hotline()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("hotline serve starts");
        let serve = Serve {
            child,
            log,
            stopped: false,
        };
        eventually(
            "`hotline serve` to listen",
            || {
                fs::read_to_string(&serve.log)
                    .ok()
                    .filter(|t| t.contains("listening on"))
            },
            || serve.output(),
        );
        serve
    }

    fn output(&self) -> String {
        format!(
            "hotline serve output:\n{}",
            fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 5 s.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("{}", self.output());
        }
    }
}

/// A tmux server of our own, killed when dropped (also on panic).
struct Tmux {
    socket: String,
    /// The socket file, removed after the server is killed (tmux leaves it).
    socket_path: Option<PathBuf>,
    /// Files whose contents help explain a failure.
    logs: Vec<PathBuf>,
}

impl Tmux {
    /// Starts the server with one detached 100x30 session running `command`.
    fn start(session: &str, command: &str) -> Tmux {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut tmux = Tmux {
            socket: format!("hotline-e2e-{}-{nanos}", std::process::id()),
            socket_path: None,
            logs: Vec::new(),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            command,
        ]);
        tmux.socket_path = Some(PathBuf::from(tmux.display(session, "#{socket_path}")));
        tmux
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // Our own server, without the user's configuration, and not nested
        // in whatever tmux the tests may run in.
        cmd.args(["-f", "/dev/null", "-L", &self.socket]);
        cmd.env_remove("TMUX");
        for var in HOTLINE_ENV {
            cmd.env_remove(var);
        }
        if std::env::var_os("TERM").is_none() {
            cmd.env("TERM", "xterm-256color");
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = output(self.command().args(args).output().expect("tmux runs"));
        assert_eq!(
            out.code,
            Some(0),
            "tmux {args:?} failed:\n{}{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
    }

    fn display(&self, target: &str, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", target, format])
            .trim_end_matches('\n')
            .to_string()
    }

    fn buffers(&self) -> String {
        // With no buffer at all, list-buffers succeeds and prints nothing.
        self.run(&["list-buffers"])
    }

    fn diagnostics(&self, target: &str) -> String {
        let mut text = format!(
            "--- screen of {target} ---\n{}\n---",
            self.command()
                .args(["capture-pane", "-p", "-t", target])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        );
        for log in &self.logs {
            text.push_str(&format!(
                "\n--- {} ---\n{}",
                log.display(),
                fs::read_to_string(log).unwrap_or_default()
            ));
        }
        text
    }

    /// Waits until the screen of `target` satisfies `pred`; returns it.
    fn wait(&self, target: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        eventually(
            what,
            || {
                let screen = self.screen(target);
                pred(&screen).then_some(screen)
            },
            || self.diagnostics(target),
        )
    }

    fn wait_text(&self, target: &str, needle: &str) -> String {
        self.wait(target, &format!("{needle:?} on screen"), |s| {
            s.contains(needle)
        })
    }

    /// Waits for one screen line with every one of `parts`.
    fn wait_line(&self, target: &str, parts: &[&str]) -> String {
        self.wait(target, &format!("a line with {parts:?}"), |s| {
            s.lines().any(|l| parts.iter().all(|p| l.contains(p)))
        })
    }

    /// One key, by tmux's name for it (Enter, Escape, Tab, F5, C-q, a).
    fn key(&self, target: &str, key: &str) {
        self.run(&["send-keys", "-t", target, key]);
        std::thread::sleep(KEY_PAUSE);
    }

    /// Printable text, typed literally.
    fn type_text(&self, target: &str, text: &str) {
        self.run(&["send-keys", "-t", target, "-l", text]);
        std::thread::sleep(KEY_PAUSE);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics(CONSOLE));
        }
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) = &self.socket_path {
            let _ = fs::remove_file(path);
        }
    }
}

const SESSION: &str = "e2e";
const CONSOLE: &str = "e2e:0.0";

/// Opens inbound message `id` in the console, whose queue holds `rows`
/// messages, by walking the queue from the top. Returns the message view.
fn open_inbound(tmux: &Tmux, id: &str, rows: usize) -> String {
    for _ in 0..rows {
        tmux.key(CONSOLE, "Up");
    }
    for _ in 0..rows {
        tmux.key(CONSOLE, "Enter");
        let screen = tmux.wait(CONSOLE, "a message opened", |s| {
            s.contains(" MESSAGE ")
                && (s.lines().any(|l| l.starts_with("id ")) || s.contains("cannot be opened"))
        });
        assert!(!screen.contains("cannot be opened"), "{screen}");
        if screen.contains(&format!("id {id}")) {
            return screen;
        }
        tmux.key(CONSOLE, "Escape");
        tmux.wait_text(CONSOLE, " INBOUND ");
        tmux.key(CONSOLE, "Down");
    }
    panic!(
        "message {id} is not in the inbound queue\n{}",
        tmux.screen(CONSOLE)
    );
}

/// The id in `hotline send`'s "released PRECEDENCE ID serial N to PEER".
fn released_id(out: &Run) -> String {
    out.stdout
        .split_whitespace()
        .nth(2)
        .filter(|id| id.len() == 36)
        .unwrap_or_else(|| panic!("no message id in {:?}", out.stdout))
        .to_string()
}

/// The JSON message inside a decrypted export: a signed header, a blank
/// line, then the message.
fn message_json(plaintext: &str) -> Value {
    let start = plaintext
        .find("\n{")
        .unwrap_or_else(|| panic!("no JSON body in:\n{plaintext}"));
    serde_json::from_str(&plaintext[start + 1..])
        .unwrap_or_else(|e| panic!("the body is not JSON ({e}):\n{plaintext}"))
}

/// The screen as a hostile message must leave it: placeholders shown, no
/// raw control, bidi or zero-width character, the status bar on the first
/// row and the footer on the last, the pane title and clipboard untouched.
fn assert_inert(tmux: &Tmux, screen: &str, expected: &str, title: &str) {
    assert!(
        screen.contains(expected),
        "the placeholders {expected:?} should be shown:\n{screen}"
    );
    for c in ['\u{1b}', '\u{7}', '\u{202E}', '\u{200B}'] {
        assert!(
            !screen.contains(c),
            "U+{:04X} reached the terminal as itself:\n{screen}",
            u32::from(c)
        );
    }
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with(&format!(" WASHINGTON  on duty: {W_OPERATOR}"))),
        "the status bar should still be on row 1 (screen not cleared):\n{screen}"
    );
    assert!(
        lines.last().is_some_and(|l| !l.trim().is_empty()),
        "the footer should still be on the last row:\n{screen}"
    );
    let now = tmux.display(CONSOLE, "#{pane_title}");
    assert_eq!(now, title, "the console's pane title changed");
    assert_ne!(now, "pwned");
    let buffers = tmux.buffers();
    assert!(
        !buffers.contains("Hello"),
        "OSC 52 reached tmux's clipboard:\n{buffers}"
    );
}

/// Everything the console wrote to its terminal, as tmux copied it to
/// `pty`: placeholders were drawn, and no hostile sequence was written.
fn assert_pty_clean(pty: &Path) {
    // Each ␛ and ⟨ cell was new on screen, so it was written at least once.
    let written = eventually(
        "the console's output in the pane log",
        || {
            let bytes = fs::read(pty).unwrap_or_default();
            (contains(&bytes, "␛".as_bytes()) && contains(&bytes, "⟨".as_bytes())).then_some(bytes)
        },
        || String::from_utf8_lossy(&fs::read(pty).unwrap_or_default()).into_owned(),
    );
    for raw in [
        "\x1b[2J\x1b]",
        "\x1b]0;pwned",
        "\x1b]52;",
        "pwned\x07",
        "\u{202E}",
        "\u{200B}",
    ] {
        assert!(
            !contains(&written, raw.as_bytes()),
            "the console wrote {raw:?} to its terminal"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Delivers `sealed` to `addr` as the station `keys` over a hand-made link
/// connection, exactly as a compromised peer could; returns the answer.
fn deliver_as_peer(keys: &StationKeys, to: &PeerKeys, addr: SocketAddr, sealed: Vec<u8>) -> Frame {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
        let config = client_config(
            &keys.signing,
            to.signing,
            ALPN_LIVE,
            Duration::from_secs(15),
        )
        .expect("client TLS config");
        let conn = tokio::time::timeout(
            TIMEOUT,
            endpoint
                .connect_with(config, addr, "hotline")
                .expect("dial"),
        )
        .await
        .expect("handshake in time")
        .expect("handshake");
        let exchange = |frame: Frame| {
            let conn = conn.clone();
            async move {
                let (mut send, mut recv) = conn.open_bi().await.expect("open a stream");
                send.write_all(&frame.encode())
                    .await
                    .expect("write a frame");
                send.finish().expect("finish the stream");
                let bytes = tokio::time::timeout(TIMEOUT, recv.read_to_end(1 << 20))
                    .await
                    .expect("an answer in time")
                    .expect("an answer");
                Frame::decode(&bytes).expect("the answer is a frame")
            }
        };
        let hello = HelloBody {
            protocol: PROTOCOL.to_string(),
            revision: hotline::domain::REVISION,
            from: keys.name.clone(),
            to: to.name.clone(),
            time: Timestamp::now(),
            boot: Timestamp::now().as_nanosecond() as u64,
            highest_serial: 0,
            cancelled: Vec::new(),
            audit_head: None,
            your_head: None,
            your_serial: Some(0),
            restored_from: None,
        };
        let answer = exchange(Frame::new(
            FrameKind::Hello,
            docs::sign(Kind::Hello, &hello, keys),
        ))
        .await;
        assert_eq!(answer.kind, FrameKind::Hello, "the hello is answered");
        let answer = exchange(Frame::new(FrameKind::Message, sealed)).await;
        conn.close(0u8.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        answer
    })
}

#[test]
fn duty_console_end_to_end() {
    assert!(
        have("tmux"),
        "this test drives the console in tmux; install it (apt-get install -y tmux)"
    );
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();

    // Two stations that know each other, each with one operator.
    let w = init(root, "WASHINGTON", "w", W_OPERATOR, W_PASSPHRASE, &[]);
    let m = init(
        root,
        "MOSCOW",
        "m",
        M_OPERATOR,
        M_PASSPHRASE,
        &["--language", "ru", "--time-zone", "Europe/Moscow"],
    );
    for (site, peer) in [(&w, &m), (&m, &w)] {
        let card = peer.dir.join("station.card.toml");
        let out = site
            .run_with_stdin(
                &["peer", "add", card.to_str().expect("utf-8 path")],
                "yes\n",
            )
            .ok("peer add");
        assert!(
            out.stdout.contains(&format!("Added peer {}", peer.name)),
            "{}",
            out.stdout
        );
    }

    let mut moscow = Serve::start(&m, root.join("moscow-serve.log"));

    // WASHINGTON's console in a tmux server of our own. The script reports
    // how the console exited and whether the terminal is back in cooked
    // mode with echo, then stays so the pane can be read.
    let console_log = root.join("console.stderr");
    let script = root.join("console.sh");
    fs::write(
        &script,
        format!(
            "{bin} --config {config} console 2>{log}\n\
             echo \"CONSOLE-EXITED-$?\"\n\
             modes=$(stty -a | tr ' ;' '\\n\\n')\n\
             if echo \"$modes\" | grep -qx icanon && echo \"$modes\" | grep -qx echo; then\n\
             echo TTY-RESTORED; else echo TTY-NOT-RESTORED; fi\n\
             sleep 60\n",
            bin = sh_quote(bin().to_str().expect("utf-8 path")),
            config = sh_quote(w.config.to_str().expect("utf-8 path")),
            log = sh_quote(console_log.to_str().expect("utf-8 path")),
        ),
    )
    .expect("write console.sh");
    let mut tmux = Tmux::start(
        SESSION,
        &format!("sh {}", sh_quote(script.to_str().expect("utf-8 path"))),
    );
    tmux.logs.push(console_log.clone());
    // OSC 52 from a program in a pane sets a tmux buffer only with this on,
    // which is what lets the clipboard check (and its CONTROL) mean something.
    tmux.run(&["set-option", "-s", "set-clipboard", "on"]);
    // Everything the console writes to its terminal from now on, as bytes.
    let pty = root.join("console.pty");
    tmux.run(&[
        "pipe-pane",
        "-t",
        CONSOLE,
        "-O",
        &format!("cat > {}", sh_quote(pty.to_str().expect("utf-8 path"))),
    ]);

    // 1. Log in, read the handover summary, take the watch.
    tmux.wait_text(CONSOLE, "LOG IN");
    let screen = tmux.wait_text(CONSOLE, "Operator:");
    assert!(
        screen.contains("Station WASHINGTON — console locked"),
        "{screen}"
    );
    tmux.type_text(CONSOLE, W_OPERATOR);
    tmux.key(CONSOLE, "Tab");
    tmux.type_text(CONSOLE, W_PASSPHRASE);
    let screen = tmux.wait_text(
        CONSOLE,
        &format!("Passphrase: {}", "•".repeat(W_PASSPHRASE.chars().count())),
    );
    assert!(
        !screen.contains(W_PASSPHRASE),
        "the passphrase is never shown"
    );
    tmux.key(CONSOLE, "Enter");
    let screen = tmux.wait_text(CONSOLE, "Handover summary");
    assert!(
        screen.contains("Inbound awaiting YOUR acknowledgement: 0"),
        "{screen}"
    );
    tmux.key(CONSOLE, "Enter");
    let screen = tmux.wait_text(CONSOLE, " INBOUND ");
    assert!(screen.contains("No messages received."), "{screen}");
    assert!(
        screen.starts_with(&format!(" WASHINGTON  on duty: {W_OPERATOR}")),
        "{screen}"
    );
    tmux.wait_text(CONSOLE, "MOSCOW ● UP");
    let title = tmux.display(CONSOLE, "#{pane_title}");

    // 2. MOSCOW (a Russian operator) sends an IMMEDIATE message.
    let subject = "Учения A7";
    let sent = m
        .run(&[
            "send",
            "--to",
            "WASHINGTON",
            "--template",
            "general",
            "--field",
            &format!("subject={subject}"),
            "--field",
            "text=Проверка связи",
            "--precedence",
            "IMMEDIATE",
            "--operator",
            M_OPERATOR,
        ])
        .ok("send IMMEDIATE");
    let first = released_id(&sent);
    tmux.wait_line(CONSOLE, &["IMMEDIATE", "MOSCOW", subject, "UNACK"]);
    tmux.wait_text(CONSOLE, "UNACK Z:0 O:1 P:0 R:0");

    // Ctrl-Q asks first, says what stops and what is waiting; `n` keeps
    // the console (and the station it runs) going.
    tmux.key(CONSOLE, "C-q");
    let screen = tmux.wait_text(CONSOLE, "Quit, and stop station WASHINGTON?");
    assert!(
        screen.contains("A message is unacknowledged: 1 IMMEDIATE."),
        "{screen}"
    );
    tmux.key(CONSOLE, "n");
    let screen = tmux.wait(CONSOLE, "the quit question to close", |s| {
        !s.contains("Quit, and stop station")
    });
    assert!(screen.contains("UNACK Z:0 O:1 P:0 R:0"), "{screen}");

    // 3. Read it, rendered in English, then acknowledge it.
    let screen = open_inbound(&tmux, &first, 1);
    for expected in [
        "RENDERED in your language",
        "IMMEDIATE — General message",
        "From MOSCOW to WASHINGTON",
        &format!("Operator: {M_OPERATOR}"),
        &format!("The sending Party transmits the following message on the subject: {subject}."),
        "original language: русский",
        "Проверка связи",
        "NOT ACKNOWLEDGED",
    ] {
        assert!(
            screen.contains(expected),
            "{expected:?} not shown:\n{screen}"
        );
    }
    tmux.key(CONSOLE, "Escape");
    tmux.wait_text(CONSOLE, " INBOUND ");
    tmux.key(CONSOLE, "a");
    tmux.wait_text(
        CONSOLE,
        &format!("Acknowledge IMMEDIATE MOSCOW/1 \"{subject}\"?"),
    );
    tmux.key(CONSOLE, "y");
    tmux.wait_line(
        CONSOLE,
        &["IMMEDIATE", "MOSCOW", &format!("ACK {W_OPERATOR}")],
    );
    tmux.wait_text(CONSOLE, "UNACK Z:0 O:0 P:0 R:0");
    eventually(
        "MOSCOW's outbox to show the acknowledgement",
        || {
            m.list("outbox")
                .into_iter()
                .find(|r| r["id"] == first.as_str())
                .filter(|r| r["state"] == "acknowledged" && r["ack_by"] == W_OPERATOR)
        },
        || format!("{:#?}", m.list("outbox")),
    );

    // 4. Reply: template picker, form, release.
    tmux.key(CONSOLE, "r");
    tmux.wait_text(CONSOLE, &format!("reply to {first}"));
    for c in ["g", "e", "n"] {
        tmux.type_text(CONSOLE, c);
    }
    tmux.wait_text(CONSOLE, "Template (type to filter): gen");
    tmux.wait_line(CONSOLE, &["▶", "General message", "(general v1)"]);
    tmux.key(CONSOLE, "Enter");
    let screen = tmux.wait_text(CONSOLE, "COMPOSE: General message (v1)");
    assert!(screen.contains("To:          ◀ MOSCOW ▶"), "{screen}");
    assert!(screen.contains(&format!("References: {first}")), "{screen}");
    let reply_subject = "Reply-W1 received";
    let reply_text = "Acknowledged, standing by.";
    tmux.key(CONSOLE, "Tab"); // To -> Precedence
    tmux.key(CONSOLE, "Tab"); // Precedence -> Subject
    tmux.type_text(CONSOLE, reply_subject);
    tmux.key(CONSOLE, "Tab"); // Subject -> Text
    tmux.type_text(CONSOLE, reply_text);
    tmux.wait_line(CONSOLE, &["Subject:", reply_subject, "✓"]);
    tmux.wait_line(CONSOLE, &["Text:", reply_text, "✓"]);
    tmux.key(CONSOLE, "F5");
    // A reply keeps the original's precedence.
    tmux.wait_text(CONSOLE, "Release IMMEDIATE General message to MOSCOW?");
    tmux.key(CONSOLE, "y");
    tmux.wait_text(CONSOLE, " SENT 1 messages");
    tmux.wait_line(
        CONSOLE,
        &["IMMEDIATE", "MOSCOW", reply_subject, "RECEIVED BY PEER"],
    );
    let reply = eventually(
        "the reply in MOSCOW's inbox",
        || {
            m.list("inbox")
                .into_iter()
                .find(|r| r["peer"] == "WASHINGTON" && r["operator"] == W_OPERATOR)
        },
        || format!("{:#?}", m.list("inbox")),
    );
    assert_eq!(reply["template"], "general", "{reply:#}");
    assert_eq!(reply["precedence"], "IMMEDIATE", "{reply:#}");
    let reply_id = reply["id"].as_str().expect("id").to_string();

    // MOSCOW's journal holds it as received from WASHINGTON.
    let journal = rusqlite::Connection::open_with_flags(
        m.dir.join("data").join("journal.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open MOSCOW's journal");
    let (direction, peer, operator, template): (String, String, String, String) = journal
        .query_row(
            "SELECT direction, peer, operator, template_id FROM messages WHERE id = ?1",
            [&reply_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("the reply is in MOSCOW's journal");
    assert_eq!(
        (
            direction.as_str(),
            peer.as_str(),
            operator.as_str(),
            template.as_str()
        ),
        ("in", "WASHINGTON", W_OPERATOR, "general")
    );
    drop(journal);

    // The reply, exported and opened with another age implementation, references
    // the original.
    let exported = root.join("reply.age");
    m.run(&[
        "export",
        &reply_id,
        "--out",
        exported.to_str().expect("utf-8"),
    ])
    .ok("export");
    // Both stations are post-quantum, which Debian's age (1.1.1) cannot
    // read: typage, installed by .ci/run, opens it.
    let identity = root.join("moscow-identity.txt");
    m.run(&[
        "identity",
        "--age",
        "--out",
        identity.to_str().expect("utf-8"),
    ])
    .ok("identity --age");
    let typage = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        typage.join("node_modules/age-encryption").is_dir(),
        "typage is not installed: run `npm ci --prefix tests/interop`"
    );
    let plaintext = output(
        Command::new("node")
            .arg(typage.join("typage.mjs"))
            .arg("decrypt")
            .arg(&identity)
            .stdin(fs::File::open(&exported).expect("open export"))
            .output()
            .expect("node runs"),
    )
    .ok("typage decrypt")
    .stdout;
    assert!(
        plaintext.starts_with("hotline/1 message\nsigner: WASHINGTON\n"),
        "{plaintext}"
    );
    let body = message_json(&plaintext);
    assert_eq!(body["id"], reply_id.as_str());
    assert_eq!(body["from"], "WASHINGTON");
    assert_eq!(body["to"], "MOSCOW");
    assert_eq!(body["operator"], W_OPERATOR);
    assert_eq!(body["fields"]["subject"], reply_subject);
    assert_eq!(body["fields"]["text"], reply_text);
    assert!(
        body["references"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r == first.as_str())),
        "the reply should reference {first}:\n{body:#}"
    );

    // 5. Hostile text. Back to the inbound queue first.
    tmux.key(CONSOLE, "Tab");
    tmux.wait_text(CONSOLE, " INBOUND ");

    // 5a. The sending station refuses escape sequences from its own operator.
    let hostile_send = |text: &str, subject: &str| {
        m.run(&[
            "send",
            "--to",
            "WASHINGTON",
            "--template",
            "general",
            "--field",
            &format!("subject={subject}"),
            "--field",
            &format!("text={text}"),
            "--precedence",
            "PRIORITY",
            "--operator",
            M_OPERATOR,
        ])
    };
    let refused = hostile_send(HOSTILE, "Hostile A");
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("control character U+001B is not allowed"),
        "{}",
        refused.stderr
    );
    assert_eq!(m.list("outbox").len(), 1, "nothing was released");

    // 5b. Bidi overrides and zero-width characters pass senders, and travel
    // through the real MOSCOW.
    let bidi = released_id(&hostile_send(BIDI, &format!("Bidi {BIDI}")).ok("send bidi text"));
    tmux.wait_line(CONSOLE, &["PRIORITY", "MOSCOW", "UNACK"]);
    let screen = open_inbound(&tmux, &bidi, 2);
    assert_inert(&tmux, &screen, BIDI_INERT, &title);
    assert!(screen.contains(&format!("Bidi {BIDI_INERT}")), "{screen}");
    tmux.key(CONSOLE, "Escape");
    tmux.wait_text(CONSOLE, " INBOUND ");
    tmux.key(CONSOLE, "a"); // PRIORITY: no confirmation
    tmux.wait_line(
        CONSOLE,
        &["PRIORITY", "MOSCOW", &format!("ACK {W_OPERATOR}")],
    );

    // 5c. Escape sequences, as a compromised MOSCOW would send them: signed
    // with MOSCOW's key, in the free text and in the sender's original,
    // which receivers do not check for control characters. The real MOSCOW
    // is stopped first so that its reconnection cannot replace ours.
    let serial = m
        .list("outbox")
        .iter()
        .filter_map(|r| r["serial"].as_u64())
        .max()
        .unwrap_or(0)
        + 1;
    let status = moscow.stop().expect("MOSCOW stops");
    assert!(status.success(), "hotline serve exit: {status}");
    tmux.wait_text(CONSOLE, "MOSCOW ○ DOWN");
    let m_keys = m.keys();
    let w_public = w_public_keys(&w);
    let mut draft = Draft {
        template_id: "general".into(),
        precedence: Some(Precedence::Routine),
        ..Draft::default()
    };
    draft.fields.insert("subject".into(), "Crafted".into());
    draft
        .fields
        .insert("text".into(), "see the free text".into());
    let checked =
        compose::check(&draft, Catalog::builtin(), Timestamp::now()).expect("a valid draft");
    let origin = Origin {
        station: StationName::new("MOSCOW").expect("name"),
        operator: OperatorName::new(M_OPERATOR).expect("name"),
        second_operator: None,
        language: Language::RU,
    };
    let mut message = compose::build(
        &checked,
        &origin,
        &StationName::new("WASHINGTON").expect("name"),
        serial,
        Timestamp::now(),
    );
    message.text = HOSTILE.to_string();
    // Its original rendered from the same fields and text, as a sender
    // does: this test is about hostile text, not about two texts.
    message.original.text =
        hotline::templates::render(&message, &checked.template, Language::RU, Language::RU);
    let crafted = message.id.to_string();
    let sealed = seal(&message, &m_keys, &w_public).expect("seal");
    let answer = deliver_as_peer(&m_keys, &w_public, w.addr, sealed);
    if answer.kind == FrameKind::Refusal {
        let why: Result<RefusalBody, _> =
            docs::open(Kind::Refusal, &answer.payload, &w_public, &m_keys.name);
        panic!("WASHINGTON refused the crafted message: {why:?}");
    }
    assert_eq!(answer.kind, FrameKind::Receipt, "WASHINGTON stored it");
    tmux.wait_line(CONSOLE, &["ROUTINE", "MOSCOW", "UNACK"]);
    let screen = open_inbound(&tmux, &crafted, 3);
    assert!(screen.contains("RENDERED in your language"), "{screen}");
    assert_inert(&tmux, &screen, HOSTILE_INERT, &title);
    // The sender's original, one key away, is just as inert.
    tmux.key(CONSOLE, "o");
    let screen = tmux.wait_text(CONSOLE, "THE SENDER'S ORIGINAL (ru)");
    assert!(screen.contains("Сообщение общего характера"), "{screen}");
    assert_inert(&tmux, &screen, HOSTILE_INERT, &title);
    tmux.key(CONSOLE, "Escape");
    let screen = tmux.wait_text(CONSOLE, " INBOUND ");
    assert_inert(&tmux, &screen, "UNACK Z:0 O:0 P:0 R:1", &title);

    // CONTROL: the same bytes printed raw in another pane of this tmux
    // server do clear the screen, set the title and write the clipboard.
    let control_script = root.join("control.sh");
    fs::write(
        &control_script,
        "printf 'CONTROL-BEFORE-CLEAR\\n'\n\
         printf '\\033[2J\\033]0;pwned\\007\\033]52;c;SGVsbG8=\\007\\342\\200\\256evil\\342\\200\\213x\\n'\n\
         printf 'CONTROL-AFTER\\n'\n\
         sleep 60\n",
    )
    .expect("write control.sh");
    tmux.run(&[
        "new-window",
        "-d",
        "-t",
        SESSION,
        "-n",
        "control",
        &format!("sh {}", sh_quote(control_script.to_str().expect("utf-8"))),
    ]);
    let control = "e2e:control";
    let screen = tmux.wait_text(control, "CONTROL-AFTER");
    assert!(
        !screen.contains("CONTROL-BEFORE-CLEAR"),
        "CONTROL: the raw bytes should clear the screen:\n{screen}"
    );
    eventually(
        "CONTROL: the raw bytes to set the pane title",
        || (tmux.display(control, "#{pane_title}") == "pwned").then_some(()),
        || tmux.display(control, "#{pane_title}"),
    );
    eventually(
        "CONTROL: the raw bytes to write the clipboard (a tmux buffer)",
        || tmux.buffers().contains("Hello").then_some(()),
        || tmux.buffers(),
    );
    assert_eq!(
        tmux.display(CONSOLE, "#{pane_title}"),
        title,
        "the CONTROL changed only its own pane"
    );

    // 6. Ctrl-Q: the console exits cleanly and the terminal is restored.
    tmux.key(CONSOLE, "C-q");
    tmux.wait_text(CONSOLE, "Quit, and stop station WASHINGTON?");
    tmux.key(CONSOLE, "y");
    let screen = tmux.wait_text(CONSOLE, "CONSOLE-EXITED-");
    assert!(screen.contains("CONSOLE-EXITED-0"), "{screen}");
    let screen = tmux.wait_text(CONSOLE, "TTY-");
    assert!(
        screen.contains("TTY-RESTORED"),
        "raw mode left on after quitting:\n{screen}"
    );
    assert!(
        !screen.contains(" INBOUND ") && !screen.contains("on duty:"),
        "the console's screen should be gone (alternate screen left):\n{screen}"
    );
    assert_eq!(tmux.display(CONSOLE, "#{alternate_on}"), "0");
    assert_pty_clean(&pty);
    // The console's station stopped with it.
    let status = w.run(&["status"]);
    assert_eq!(
        status.code,
        Some(3),
        "WASHINGTON should not be running:\n{}{}",
        status.stdout,
        status.stderr
    );
    eprintln!(
        "console end-to-end test finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn w_public_keys(w: &Site) -> PeerKeys {
    w.keys().public()
}
