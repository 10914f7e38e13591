//! What the live parts read of other processes (/proc), and the private
//! tmux server they run in.

use super::*;

/// The `hotline` binary cargo built for this bench.
pub(crate) fn console_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hotline"));
    assert!(
        bin.is_file(),
        "console bench: the hotline binary is missing at {}; run `cargo build --release` \
         (or `cargo bench --bench console`, which builds it)",
        bin.display()
    );
    bin
}

pub(crate) fn tmux_version() -> String {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!(
            "console bench: `tmux` is needed for the idle-CPU part and was not found on PATH; \
             install it (e.g. `apt-get install tmux`)"
        ),
    }
}

/// CPU time a process has used (all its threads, live and exited).
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime); `rest` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks()))
}

/// Clock ticks per second of /proc/PID/stat's times.
pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// On-CPU time of each live thread in nanoseconds (schedstat), for a finer
/// reading than stat's clock ticks; threads that exit are not counted.
pub(crate) fn thread_times(pid: u32) -> HashMap<u32, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let tid = t.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, text.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

pub(crate) fn threads(pid: u32) -> Option<usize> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 20 of stat(5).
    rest.split_whitespace().nth(17)?.parse().ok()
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A private tmux server, killed when dropped, whatever happened.
pub(crate) struct Tmux {
    pub(crate) socket: String,
    /// Processes started in its panes, killed by id if they outlive it.
    pub(crate) pids: Vec<u32>,
    /// The server's socket, which kill-server leaves behind.
    pub(crate) socket_path: Option<PathBuf>,
}

impl Tmux {
    pub(crate) fn new() -> Tmux {
        Tmux {
            socket: format!("hotline-bench-console-{}", std::process::id()),
            pids: Vec::new(),
            socket_path: None,
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("tmux {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Starts `command` in a new detached 100x30 session and returns the
    /// pane's process id.
    pub(crate) fn session(&mut self, name: &str, command: &str) -> Result<u32, String> {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            command,
        ])?;
        let pid = self
            .run(&["list-panes", "-t", name, "-F", "#{pane_pid}"])?
            .trim()
            .parse::<u32>()
            .map_err(|e| format!("pane pid of {name}: {e}"))?;
        self.pids.push(pid);
        if self.socket_path.is_none() {
            let path = self.run(&["display-message", "-p", "#{socket_path}"])?;
            self.socket_path = Some(PathBuf::from(path.trim()));
        }
        Ok(pid)
    }

    pub(crate) fn server_pid(&self) -> Result<u32, String> {
        self.run(&["display-message", "-p", "#{pid}"])?
            .trim()
            .parse()
            .map_err(|e| format!("tmux server pid: {e}"))
    }

    pub(crate) fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
            .unwrap_or_default()
    }

    /// Waits until the pane shows `text`.
    pub(crate) fn wait_for(
        &self,
        target: &str,
        text: &str,
        limit: Duration,
        err: &Path,
    ) -> Duration {
        self.wait_until(target, text, true, limit, err, Duration::from_millis(50))
    }

    /// Waits until the pane shows `text` (or, with `shown` false, no longer
    /// shows it), looking every `every`.
    pub(crate) fn wait_until(
        &self,
        target: &str,
        text: &str,
        shown: bool,
        limit: Duration,
        err: &Path,
        every: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.screen(target).contains(text) == shown {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                panic!(
                    "console bench: the console did not show {text:?} within {limit:?}.\n\
                     screen:\n{}\nstderr ({}):\n{}",
                    self.screen(target),
                    err.display(),
                    std::fs::read_to_string(err).unwrap_or_default()
                );
            }
            std::thread::sleep(every);
        }
    }

    pub(crate) fn keys(&self, target: &str, literal: Option<&str>, key: Option<&str>) {
        if let Some(text) = literal {
            self.run(&["send-keys", "-t", target, "-l", text])
                .expect("tmux send-keys");
        }
        if let Some(k) = key {
            self.run(&["send-keys", "-t", target, k])
                .expect("tmux send-keys");
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        for &pid in &self.pids {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                // SAFETY: kill(2) on a process this bench started, by its id.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        if let Some(path) = self
            .socket_path
            .as_ref()
            .filter(|p| p.file_name().is_some_and(|n| *n == *self.socket))
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// CPU use of each process over one window, in % of one core.
pub(crate) struct Window {
    pub(crate) wall: Duration,
    pub(crate) console: f64,
    /// The same from schedstat (live threads only).
    pub(crate) console_ns: f64,
    pub(crate) floor: f64,
    pub(crate) server: f64,
}

pub(crate) fn sample(window: Duration, console: u32, floor: u32, server: u32) -> Window {
    let read =
        |pid: u32| cpu_time(pid).unwrap_or_else(|| panic!("console bench: process {pid} is gone"));
    let (c0, f0, s0) = (read(console), read(floor), read(server));
    let n0 = thread_times(console);
    let t = Instant::now();
    std::thread::sleep(window);
    let (c1, f1, s1) = (read(console), read(floor), read(server));
    let n1 = thread_times(console);
    let wall = t.elapsed();
    let pct = |a: Duration, b: Duration| 100.0 * (b - a).as_secs_f64() / wall.as_secs_f64();
    let ns: u64 = n1
        .iter()
        .map(|(tid, end)| end.saturating_sub(n0.get(tid).copied().unwrap_or(0)))
        .sum();
    Window {
        wall,
        console: pct(c0, c1),
        console_ns: 100.0 * Duration::from_nanos(ns).as_secs_f64() / wall.as_secs_f64(),
        floor: pct(f0, f1),
        server: pct(s0, s1),
    }
}
