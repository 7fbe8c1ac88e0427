//! The one way cfgmx runs a child process.
//!
//! Every compiler probe, configure, build and test step goes through [`Cmd`]: the working
//! directory and environment are explicit (`LC_ALL=C` so banners and diagnostics are stable), a
//! timeout ends a hung child, the child runs in its own process group so a timeout or an
//! interrupt kills everything it started, and the exact command line is kept for error messages.
//! [`kill_all`] terminates every process group still running (the CLI calls it on Ctrl-C).
//! Nothing a child started outlives it: when the child exits, what is left of its group is
//! killed; and a watchdog process (forked once, see [`watchdog`]) ends every live group if
//! cfgmx itself dies without cleaning up (SIGKILL, a crash, the OOM killer).
//!
//! Never: decides anything about compilers or builds; it only runs what it is given.

use serde::Serialize;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Process groups of children still running, so an interrupt can end them all.
static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Set by [`kill_all`]: from then on no child is started, so a worker thread still running
/// when the interrupt lands cannot start a compiler after the groups were ended.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Whether [`kill_all`] has run: results gathered since may come from children that were
/// never started or were killed, so nothing may be cached or written from them.
pub fn closing() -> bool {
    CLOSING.load(Ordering::SeqCst)
}

/// Sends SIGTERM, then SIGKILL after `grace`, to every live child process group, and refuses
/// every later start (the process is ending).
pub fn kill_all(grace: Duration) {
    CLOSING.store(true, Ordering::SeqCst);
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

/// How long a group gets between SIGTERM and SIGKILL when a timeout or the watchdog ends it:
/// long enough for ninja or make to pass the signal on to the compilers they run in process
/// groups of their own, short enough to keep a probe within its timeout plus a second.
const TERM_GRACE: Duration = Duration::from_millis(300);

/// Output kept per stream of a captured run; the rest is read and dropped so a child that
/// prints without end (garbage, `yes`) neither blocks nor fills memory.
const CAPTURE_LIMIT: usize = 4 << 20;

/// The write end of the watchdog's pipe, or None when it could not be started.
static WATCHDOG: OnceLock<Option<i32>> = OnceLock::new();

/// Starts (once) and returns the watchdog: a process forked from cfgmx that reads the process
/// groups of running children from a pipe. The pipe's write end lives only in cfgmx, so
/// when cfgmx ends, however it ends, the watchdog reads end-of-file and terminates every
/// group still registered (SIGTERM, then SIGKILL). Without it a `kill -9` of cfgmx would leave
/// cmake, ninja and the compilers running in their own process groups.
pub fn watchdog() -> Option<i32> {
    *WATCHDOG.get_or_init(|| {
        let mut fds = [0i32; 2];
        // SAFETY: plain syscalls; the child branch only makes async-signal-safe calls (no
        // allocation, no locks), as required after fork in a multi-threaded process.
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return None;
            }
            match libc::fork() {
                -1 => {
                    libc::close(fds[0]);
                    libc::close(fds[1]);
                    None
                }
                0 => watchdog_main(fds[0]),
                _ => {
                    libc::close(fds[0]);
                    Some(fds[1])
                }
            }
        }
    })
}

/// Sends one registration message (`+` a group started, `-` it ended) to the watchdog.
fn tell_watchdog(fd: i32, pgid: i32, tag: u8) {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&pgid.to_ne_bytes());
    msg[4] = tag;
    // SAFETY: an 8-byte write to a pipe we own is atomic (< PIPE_BUF).
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
}

/// The watchdog's whole life. Async-signal-safe calls only.
unsafe fn watchdog_main(r: i32) -> ! {
    // Keep nothing of cfgmx open but the pipe: a held stdout would keep cfgmx's reader
    // waiting, a held lock file would keep the build root locked.
    if r > 0 {
        libc::syscall(libc::SYS_close_range, 0u32, (r - 1) as u32, 0u32);
    }
    if libc::syscall(libc::SYS_close_range, (r + 1) as u32, u32::MAX, 0u32) != 0 {
        for fd in (r + 1)..4096 {
            libc::close(fd);
        }
    }
    // Out of the terminal's foreground group: a Ctrl-C is cfgmx's to handle, not ours.
    libc::setpgid(0, 0);
    // Nor pin cfgmx's working directory (an unmount would find it busy).
    libc::chdir(c"/".as_ptr());
    libc::signal(libc::SIGINT, libc::SIG_IGN);
    libc::signal(libc::SIGHUP, libc::SIG_IGN);
    let mut groups = [0i32; 1024];
    let mut buf = [0u8; 8];
    loop {
        let mut got = 0usize;
        while got < buf.len() {
            let n = libc::read(r, buf.as_mut_ptr().add(got).cast(), buf.len() - got);
            if n > 0 {
                got += n as usize;
            } else if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            } else {
                // cfgmx is gone: end whatever it left running.
                end_groups(&groups);
                libc::_exit(0);
            }
        }
        let g = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if g <= 0 {
            continue;
        }
        if buf[4] == b'+' {
            if let Some(slot) = groups.iter_mut().find(|x| **x == 0) {
                *slot = g;
            }
        } else if let Some(slot) = groups.iter_mut().find(|x| **x == g) {
            *slot = 0;
        }
    }
}

/// SIGTERM to every group, a grace period, SIGKILL to what is left. Async-signal-safe.
unsafe fn end_groups(groups: &[i32]) {
    let mut any = false;
    for &g in groups.iter().filter(|g| **g > 0) {
        any |= libc::killpg(g, libc::SIGTERM) == 0;
    }
    if !any {
        return;
    }
    let step = libc::timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    for _ in 0..(TERM_GRACE.as_millis() / 20 + 1) {
        if !groups.iter().any(|&g| g > 0 && libc::killpg(g, 0) == 0) {
            return;
        }
        libc::nanosleep(&step, std::ptr::null_mut());
    }
    for &g in groups.iter().filter(|g| **g > 0) {
        libc::killpg(g, libc::SIGKILL);
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
        if CLOSING.load(Ordering::SeqCst) {
            return Outcome::spawn_failed(self, "not started: cfgmx was interrupted".into());
        }
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
        // Registered from here, not from a pre_exec hook in the child: a hook would make std
        // fork and execvp, and execvp runs a file with a bad format through sh instead of
        // failing. The moment between spawn and this write is microseconds.
        if let Some(fd) = watchdog() {
            tell_watchdog(fd, pgid, b'+');
        }
        if let Ok(mut g) = LIVE.lock() {
            g.insert(pgid);
        }
        // kill_all sets CLOSING before it reads LIVE: either it saw this group, or this sees
        // the flag, so a child spawned while the interrupt lands is ended too.
        if CLOSING.load(Ordering::SeqCst) {
            // SAFETY: signalling the process group this call just created.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
        if let (Some(data), Some(mut stdin)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&data);
            });
        }
        // Drain pipes on threads so a chatty child cannot block on a full pipe.
        let so = child.stdout.take().map(Capture::start);
        let se = child.stderr.take().map(Capture::start);
        let (status, timed_out) = wait(&mut child, self.timeout, pgid);
        if let Ok(mut g) = LIVE.lock() {
            g.remove(&pgid);
        }
        if let Some(fd) = watchdog() {
            tell_watchdog(fd, pgid, b'-');
        }
        // The group is gone, so the pipes close at once, unless a process that left the
        // group (setsid: a daemon) holds them: then take what came and stop waiting.
        let end = Instant::now() + TERM_GRACE;
        let stdout = so.map(|c| c.finish(end)).unwrap_or_default();
        let stderr = se.map(|c| c.finish(end)).unwrap_or_default();
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

/// One captured stream: a thread reads it to the end, keeping the first [`CAPTURE_LIMIT`] bytes.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Capture {
    fn start<R: Read + Send + 'static>(mut r: R) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = std::sync::mpsc::channel();
        let b = Arc::clone(&buf);
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; 64 << 10];
            let mut dropped = false;
            loop {
                match r.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let Ok(mut v) = b.lock() else { break };
                        let room = CAPTURE_LIMIT.saturating_sub(v.len()).min(n);
                        v.extend_from_slice(&chunk[..room]);
                        if room < n && !dropped {
                            dropped = true;
                            v.extend_from_slice(b"\n[cfgmx: output truncated]\n");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Capture { buf, done }
    }

    /// What was read by `deadline` (all of it when the stream closed before).
    fn finish(self, deadline: Instant) -> Vec<u8> {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        self.buf
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Waits for the child to exit (up to `timeout`), without reaping it first: what is left of
/// its process group (a background job it started) is killed while the group id is still
/// certainly ours, then the child is reaped. On timeout the group gets SIGTERM, a grace
/// period, then SIGKILL.
fn wait(
    child: &mut Child,
    timeout: Option<Duration>,
    pgid: i32,
) -> (Option<std::process::ExitStatus>, bool) {
    // Without a deadline this returns only once the child has exited.
    let exited = exited_by(child, timeout.map(|t| Instant::now() + t));
    if !exited {
        // SAFETY: the group is the child's own (process_group(0)), not yet reaped.
        unsafe { libc::killpg(pgid, libc::SIGTERM) };
        let end = Instant::now() + TERM_GRACE;
        while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        return (child.wait().ok(), true);
    }
    // SAFETY: as above; the leader is a zombie, so the group id cannot have been reused.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    (child.wait().ok(), false)
}

/// Whether the child exited (it is left unreaped) before `deadline`; no deadline: waits.
/// The exit is seen the moment it happens through a pidfd: a probe is chains of short
/// compiler runs, and a polling wait's naps (up to 20 ms each) added up along each chain.
fn exited_by(child: &Child, deadline: Option<Instant>) -> bool {
    // SAFETY: pidfd_open on our own, not yet reaped child; the fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) } as i32;
    if fd >= 0 {
        let exited = loop {
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // round up, so a wait never ends a hair before the deadline
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r > 0 {
                break true;
            }
            if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break poll_exited_by(child, deadline);
            }
            if r == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                break false;
            }
        };
        // SAFETY: our own fd.
        unsafe { libc::close(fd) };
        return exited;
    }
    poll_exited_by(child, deadline)
}

/// [`exited_by`] for kernels without pidfds (before 5.3): waitid, with naps when there is a
/// deadline.
fn poll_exited_by(child: &Child, deadline: Option<Instant>) -> bool {
    let mut nap = Duration::from_millis(1);
    loop {
        // SAFETY: waitid on our own child; WNOWAIT leaves it to be reaped by child.wait().
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags =
            libc::WEXITED | libc::WNOWAIT | if deadline.is_some() { libc::WNOHANG } else { 0 };
        let r = unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, flags) };
        if r != 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return true;
        }
        // With WNOHANG and no exit yet, si_pid stays 0.
        if unsafe { info.si_pid() } != 0 {
            return true;
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return false;
            }
            std::thread::sleep(nap.min(d.saturating_duration_since(Instant::now())));
            nap = (nap * 2).min(Duration::from_millis(20));
        }
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

    /// A run known to have hung for `after` without being made here (the caller saw it hang
    /// some other way): what later asks of the same command are answered with.
    pub fn hung(command: String, after: Duration) -> Outcome {
        Outcome {
            command,
            code: None,
            signal: None,
            timed_out: true,
            spawn_error: None,
            stdout: String::new(),
            stderr: String::new(),
            duration: after,
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
    fn nothing_of_the_group_outlives_the_child() {
        let dir = std::env::temp_dir().join(format!("cfgmx-exec-bg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("background-survived");
        let script = format!(
            "(sleep 1; touch {}) >/dev/null 2>&1 & exit 0",
            marker.display()
        );
        let o = Cmd::new("sh").args(["-c", &script]).output();
        assert!(o.success(), "{o}");
        std::thread::sleep(Duration::from_millis(1400));
        assert!(!marker.exists(), "a background job outlived its command");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn endless_output_is_capped_and_a_daemon_holding_the_pipe_does_not_block() {
        let o = Cmd::new("sh")
            .args(["-c", "yes garbage"])
            .timeout(Duration::from_millis(500))
            .output();
        assert!(o.timed_out);
        assert!(o.stdout.len() <= CAPTURE_LIMIT + 64, "{}", o.stdout.len());
        assert!(o.stdout.ends_with("[cfgmx: output truncated]\n"));
        // setsid takes the sleeper out of the group; it keeps stdout open for 5 s.
        let t = Instant::now();
        let o = Cmd::new("sh")
            .args(["-c", "echo hi; setsid sleep 5 & exit 0"])
            .output();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(o.stdout, "hi\n");
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
