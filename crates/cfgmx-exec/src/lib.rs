//! The one way cfgmx runs a child process.
//!
//! Every compiler probe, configure, build and test step goes through [`Cmd`]: the working
//! directory and environment are explicit (`LC_ALL=C` so banners and diagnostics are stable), a
//! timeout ends a hung child, the child runs in its own process group so a timeout or an
//! interrupt kills everything it started, and the exact command line is kept for error messages.
//! [`kill_all`] terminates every process group still running (the CLI calls it on Ctrl-C).
//!
//! Never: decides anything about compilers or builds; it only runs what it is given.

use serde::Serialize;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// Process groups of children still running, so an interrupt can end them all.
static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Sends SIGTERM, then SIGKILL after `grace`, to every live child process group.
pub fn kill_all(grace: Duration) {
    let groups: Vec<i32> = LIVE
        .lock()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default();
    for g in &groups {
        // SAFETY: signalling a process group we created; a stale id fails harmlessly (ESRCH).
        unsafe { libc::killpg(*g, libc::SIGTERM) };
    }
    if groups.is_empty() {
        return;
    }
    let end = Instant::now() + grace;
    while Instant::now() < end {
        let alive = groups.iter().any(|g| unsafe { libc::killpg(*g, 0) } == 0);
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in &groups {
        unsafe { libc::killpg(*g, libc::SIGKILL) };
    }
}

/// A command to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Variables set on top of the inherited environment (after `remove`).
    pub env: Vec<(OsString, OsString)>,
    /// Variables removed from the inherited environment.
    pub remove: Vec<OsString>,
    /// Start from an empty environment (plus `PATH`, `HOME`, `TMPDIR`) instead of inheriting.
    pub clear_env: bool,
    pub timeout: Option<Duration>,
    pub stdin: Option<Vec<u8>>,
    /// Last-moment adjustments to the `std::process::Command` (a jobserver hands its pipe to
    /// the child this way).
    pub hook: Option<Hook>,
}

/// A function applied to the `Command` just before it is spawned.
#[derive(Clone)]
pub struct Hook(pub std::sync::Arc<dyn Fn(&mut Command) + Send + Sync>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: vec![("LC_ALL".into(), "C".into())],
            remove: Vec::new(),
            clear_env: false,
            timeout: None,
            stdin: None,
            hook: None,
        }
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, a: I) -> Cmd {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    pub fn cwd(mut self, d: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(d.as_ref().to_path_buf());
        self
    }
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Cmd {
        let k = k.into();
        self.env.retain(|(x, _)| *x != k);
        self.env.push((k, v.into()));
        self
    }
    pub fn env_remove(mut self, k: impl Into<OsString>) -> Cmd {
        self.remove.push(k.into());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = Some(t);
        self
    }
    pub fn hook(mut self, f: impl Fn(&mut Command) + Send + Sync + 'static) -> Cmd {
        self.hook = Some(Hook(std::sync::Arc::new(f)));
        self
    }
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    /// The command line as a user could paste it (for error messages and logs).
    pub fn display(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            if k != "LC_ALL" {
                s.push_str(&format!(
                    "{}={} ",
                    k.to_string_lossy(),
                    shell_word(&v.to_string_lossy())
                ));
            }
        }
        s.push_str(&shell_word(&self.program.to_string_lossy()));
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_word(&a.to_string_lossy()));
        }
        s
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        if self.clear_env {
            c.env_clear();
            for k in ["PATH", "HOME", "TMPDIR"] {
                if let Some(v) = std::env::var_os(k) {
                    c.env(k, v);
                }
            }
        }
        for k in &self.remove {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            c.process_group(0);
        }
        if let Some(h) = &self.hook {
            (h.0)(&mut c);
        }
        c
    }

    /// Runs to completion (or timeout), capturing stdout and stderr.
    pub fn output(&self) -> Outcome {
        self.run(Stdio::piped(), Stdio::piped())
    }

    /// Runs with stdout and stderr appended to `log` (one file, interleaved as written).
    pub fn logged(&self, log: &Path) -> Outcome {
        let f = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            Ok(f) => f,
            Err(e) => {
                return Outcome::spawn_failed(
                    self,
                    format!("cannot open log {}: {e}", log.display()),
                )
            }
        };
        let f2 = match f.try_clone() {
            Ok(f2) => f2,
            Err(e) => return Outcome::spawn_failed(self, e.to_string()),
        };
        self.run(Stdio::from(f), Stdio::from(f2))
    }

    fn run(&self, out: Stdio, err: Stdio) -> Outcome {
        let start = Instant::now();
        let mut cmd = self.command();
        cmd.stdout(out).stderr(err);
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "not found".to_string(),
                    std::io::ErrorKind::PermissionDenied => {
                        "not executable (permission denied)".to_string()
                    }
                    _ if e.raw_os_error() == Some(libc::ENOEXEC) => {
                        "not executable (exec format error)".to_string()
                    }
                    _ => e.to_string(),
                };
                return Outcome::spawn_failed(self, why);
            }
        };
        let pgid = child.id() as i32;
        if let Ok(mut g) = LIVE.lock() {
            g.insert(pgid);
        }
        if let (Some(data), Some(mut stdin)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&data);
            });
        }
        // Drain pipes on threads so a chatty child cannot block on a full pipe.
        let so = child.stdout.take().map(reader);
        let se = child.stderr.take().map(reader);
        let (status, timed_out) = wait(&mut child, self.timeout, pgid);
        if let Ok(mut g) = LIVE.lock() {
            g.remove(&pgid);
        }
        let stdout = so.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let stderr = se.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let (code, signal) = split_status(status);
        Outcome {
            command: self.display(),
            code,
            signal,
            timed_out,
            spawn_error: None,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            duration: start.elapsed(),
        }
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn wait(
    child: &mut Child,
    timeout: Option<Duration>,
    pgid: i32,
) -> (Option<std::process::ExitStatus>, bool) {
    match timeout {
        None => (child.wait().ok(), false),
        Some(t) => match child.wait_timeout(t) {
            Ok(Some(s)) => (Some(s), false),
            _ => {
                // SAFETY: the group is the child's own (process_group(0)).
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
                (child.wait().ok(), true)
            }
        },
    }
}

fn split_status(s: Option<std::process::ExitStatus>) -> (Option<i32>, Option<i32>) {
    match s {
        None => (None, None),
        Some(s) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                (s.code(), s.signal())
            }
            #[cfg(not(unix))]
            {
                (s.code(), None)
            }
        }
    }
}

/// What happened when a command ran.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The command line, shell-quoted.
    pub command: String,
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Why it could not start (not found, not executable).
    pub spawn_error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    #[serde(with = "secs")]
    pub duration: Duration,
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Outcome {
    fn spawn_failed(cmd: &Cmd, why: String) -> Outcome {
        Outcome {
            command: cmd.display(),
            code: None,
            signal: None,
            timed_out: false,
            spawn_error: Some(why),
            stdout: String::new(),
            stderr: String::new(),
            duration: Duration::ZERO,
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// stdout then stderr, as a compiler's banner may be on either.
    pub fn combined(&self) -> String {
        let mut s = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&self.stderr);
        }
        s
    }
}

impl fmt::Display for Outcome {
    /// A one-line verdict: "exited with 1", "timed out after 10.0 s", "killed by signal 11".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.spawn_error {
            return write!(f, "could not run `{}`: {e}", self.command);
        }
        if self.timed_out {
            return write!(
                f,
                "`{}` timed out after {:.1} s",
                self.command,
                self.duration.as_secs_f64()
            );
        }
        match (self.code, self.signal) {
            (Some(0), _) => write!(f, "`{}` succeeded", self.command),
            (Some(c), _) => write!(f, "`{}` exited with status {c}", self.command),
            (None, Some(s)) => write!(
                f,
                "`{}` was killed by signal {s}{}",
                self.command,
                signal_name(s)
            ),
            _ => write!(f, "`{}` ended abnormally", self.command),
        }
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGSEGV => " (SIGSEGV: crashed)",
        libc::SIGABRT => " (SIGABRT: aborted)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGBUS => " (SIGBUS: crashed)",
        libc::SIGILL => " (SIGILL: illegal instruction)",
        _ => "",
    }
}

/// Quotes a word for POSIX sh when it needs it.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let o = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output();
        assert_eq!(o.code, Some(3));
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
        assert!(!o.success());
    }

    #[test]
    fn times_out_and_kills_the_group() {
        let dir = std::env::temp_dir().join(format!("cfgmx-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("grandchild-survived");
        // The grandchild would touch the marker after 1.5 s unless the whole group is killed.
        let script = format!("(sleep 1.5; touch {}) & sleep 30", marker.display());
        let t = Instant::now();
        let o = Cmd::new("sh")
            .args(["-c", &script])
            .timeout(Duration::from_millis(300))
            .output();
        assert!(o.timed_out);
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1800));
        assert!(!marker.exists(), "a grandchild outlived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reports_missing_and_non_executable() {
        let o = Cmd::new("/nonexistent/cfgmx-no-such-compiler").output();
        assert_eq!(o.spawn_error.as_deref(), Some("not found"));
        let f = std::env::temp_dir().join(format!("cfgmx-exec-noexec-{}", std::process::id()));
        std::fs::write(&f, "garbage").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = Cmd::new(&f).output();
        let e = o.spawn_error.clone().unwrap_or_default();
        assert!(e.contains("not executable"), "{o}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = Cmd::new(&f).output();
        let e = o.spawn_error.clone().unwrap_or_default();
        assert!(e.contains("not executable"), "{o}");
        let _ = std::fs::remove_file(&f);
    }

    #[test]
    fn reports_signals() {
        let o = Cmd::new("sh").args(["-c", "kill -SEGV $$"]).output();
        assert_eq!(o.signal, Some(libc::SIGSEGV));
        assert!(o.to_string().contains("crashed"));
    }

    #[test]
    fn sets_lc_all_and_quotes_display() {
        let o = Cmd::new("sh").args(["-c", "echo $LC_ALL"]).output();
        assert_eq!(o.stdout.trim(), "C");
        assert_eq!(
            Cmd::new("cc").arg("-DX=a b").arg("it's").display(),
            "cc '-DX=a b' 'it'\\''s'"
        );
    }
}
