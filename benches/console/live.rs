//! The real `hotline console` under tmux: idle CPU, and an attached
//! console over a station that stops or freezes.

use super::*;

pub(crate) struct Idle {
    pub(crate) login: Window,
    pub(crate) queue: Window,
    pub(crate) login_after: Duration,
    pub(crate) threads: Option<usize>,
    pub(crate) rss_kib: Option<u64>,
}

pub(crate) fn hotline(bin: &Path, args: &[&str], envs: &[(&str, &Path)]) {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hotline");
    assert!(
        out.status.success(),
        "console bench: `hotline {}` failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh station with one operator, made by the real binary: its temp
/// dir, config path and the operator's passphrase file.
pub(crate) fn bench_station(bin: &Path) -> (tempfile::TempDir, String, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("hotline-bench-console")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().join("station");
    let config = dir.join("operator.toml");
    let dir_s = dir.to_str().expect("utf-8 temp path");
    let config_s = config.to_str().expect("utf-8 temp path").to_string();
    hotline(
        bin,
        &[
            "init",
            "--station",
            "BENCH",
            "--dir",
            dir_s,
            "--no-passphrase",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let pass = tmp.path().join("passphrase");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pass)
            .expect("passphrase file");
        writeln!(f, "{PASSPHRASE}").expect("write passphrase file");
    }
    hotline(
        bin,
        &["--config", &config_s, "operator", "add", OPERATOR],
        &[("HOTLINE_PASSPHRASE_FILE", &pass)],
    );
    (tmp, config_s, pass)
}

pub(crate) fn idle_bench(scale: &Scale, bin: &Path) -> Idle {
    let (tmp, config_s, _pass) = bench_station(bin);
    let err = tmp.path().join("console.stderr");
    let mut tmux = Tmux::new();
    let console = tmux
        .session(
            "console",
            &format!(
                "exec '{}' --config '{config_s}' console 2>'{}'",
                bin.display(),
                err.display()
            ),
        )
        .unwrap_or_else(|e| panic!("console bench: starting the console under tmux: {e}"));
    let floor = tmux
        .session("floor", "exec sleep 3600")
        .unwrap_or_else(|e| panic!("console bench: starting the floor pane: {e}"));
    let server = tmux
        .server_pid()
        .unwrap_or_else(|e| panic!("console bench: {e}"));
    assert_eq!(
        comm(console),
        "hotline",
        "console bench: the console pane runs {:?}, not hotline",
        comm(console)
    );

    tmux.wait_for("console", "LOG IN", Duration::from_secs(20), &err);
    std::thread::sleep(scale.settle);
    eprintln!("console bench: idle at the log-in screen...");
    let login = sample(scale.idle, console, floor, server);

    tmux.keys("console", Some(OPERATOR), Some("Enter"));
    tmux.keys("console", Some(PASSPHRASE), Some("Enter"));
    let login_after = tmux.wait_for("console", "Handover summary", Duration::from_secs(30), &err);
    tmux.keys("console", None, Some("Enter"));
    tmux.wait_for("console", "INBOUND", Duration::from_secs(10), &err);
    std::thread::sleep(scale.settle);
    eprintln!("console bench: idle logged in on the empty queue...");
    let queue = sample(scale.idle, console, floor, server);
    let screen = tmux.screen("console");
    assert!(
        screen.contains("INBOUND") && screen.contains("on duty"),
        "console bench: the console left the queue while idle:\n{screen}"
    );
    let idle = Idle {
        login,
        queue,
        login_after,
        threads: threads(console),
        rss_kib: rss_kib(console),
    };
    drop(tmux);
    idle
}

// ---------------------------------------------------------------- station stops

/// How often the screen is read while timing a stop: the resolution of
/// the figures.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(10);

/// Times from a station stopping (SIGTERM) or freezing (SIGSTOP: socket
/// open, no heartbeat) to its attached console showing STATION NOT
/// RUNNING, from the signal to the first screen read that shows it.
pub(crate) struct Stops {
    pub(crate) stopped: Vec<Duration>,
    pub(crate) frozen: Vec<Duration>,
}

/// A `hotline serve` child, killed when dropped.
pub(crate) struct Serve(std::process::Child);

impl Serve {
    pub(crate) fn start(bin: &Path, config: &str, socket: &Path, log: &Path) -> Serve {
        let out = std::fs::File::create(log).expect("serve log");
        let child = Command::new(bin)
            .args(["--config", config, "serve"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("serve log"))
            .stderr(out)
            .spawn()
            .expect("console bench: starting hotline serve");
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "console bench: hotline serve did not listen on {}:\n{}",
                socket.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve(child)
    }

    pub(crate) fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on this bench's own child, by its id.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, signal);
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn stop_bench(scale: &Scale, bin: &Path) -> Stops {
    let (tmp, config_s, _pass) = bench_station(bin);
    let config = hotline::config::Config::load(Path::new(&config_s)).expect("bench config");
    let socket = config.control.socket.clone();
    let log = tmp.path().join("serve.log");
    let mut serve = Serve::start(bin, &config_s, &socket, &log);
    let err = tmp.path().join("attached.stderr");
    let mut tmux = Tmux::new();
    tmux.session(
        "attached",
        &format!(
            "exec '{}' --config '{config_s}' console 2>'{}'",
            bin.display(),
            err.display()
        ),
    )
    .unwrap_or_else(|e| panic!("console bench: starting the attached console: {e}"));
    let limit = Duration::from_secs(20);
    let log_in = |tmux: &Tmux| {
        tmux.wait_for("attached", "LOG IN", limit, &err);
        tmux.keys("attached", Some(OPERATOR), Some("Enter"));
        tmux.keys("attached", Some(PASSPHRASE), Some("Enter"));
        tmux.wait_for("attached", "Handover summary", limit, &err);
        tmux.keys("attached", None, Some("Enter"));
        tmux.wait_for("attached", "INBOUND", limit, &err);
    };
    log_in(&tmux);
    let lost = "STATION NOT RUNNING";
    let rounds = if scale.quick { 2 } else { 5 };
    let mut stops = Stops {
        stopped: Vec::new(),
        frozen: Vec::new(),
    };
    for _ in 0..rounds {
        tmux.wait_until("attached", lost, false, limit, &err, STOP_POLL);
        serve.signal(libc::SIGSTOP);
        stops
            .frozen
            .push(tmux.wait_until("attached", lost, true, limit, &err, STOP_POLL));
        serve.signal(libc::SIGCONT);
        tmux.wait_until("attached", lost, false, limit, &err, STOP_POLL);

        serve.signal(libc::SIGTERM);
        stops
            .stopped
            .push(tmux.wait_until("attached", lost, true, limit, &err, STOP_POLL));
        let _ = serve.0.wait();
        drop(serve);
        serve = Serve::start(bin, &config_s, &socket, &log);
        log_in(&tmux);
    }
    stops
}

pub(crate) fn p50_max(times: &[Duration]) -> (f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |i: usize| sorted.get(i).map_or(f64::NAN, |d| ms(*d));
    (at(sorted.len() / 2), at(sorted.len().saturating_sub(1)))
}
