//! Harness shared by the integration tests in `tests/tests/*.rs`: runs the real `cfgmx`
//! binary in a temporary directory with a controlled environment, and on failure shows the
//! command, directory, status, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Repository root (the workspace).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `cfgmx` binary, built (or brought up to date) once per test process.
///
/// These tests live in their own package, so cargo neither builds the plain `cfgmx` binary
/// for them nor sets `CARGO_BIN_EXE_cfgmx`; `cargo build` here does both jobs, and is a no-op
/// when the binary is current (so a test never runs a stale binary either).
pub fn bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        // This test executable is target/<profile>/deps/<name>: the binary is two levels up.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "cfgmx", "--bin", "cfgmx"])
            .current_dir(repo());
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "`cargo build -p cfgmx` failed");
        dir.join(format!("cfgmx{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// A finished run, with everything needed to explain a failed assertion.
pub struct Run {
    pub cmd: String,
    pub cwd: PathBuf,
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Panics with the whole story unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        if self.code() != code {
            panic!("{}\nexpected exit code {code}", self.explain());
        }
        self
    }
    pub fn explain(&self) -> String {
        format!(
            "command: {}\ncwd: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd,
            self.cwd.display(),
            self.out.status,
            self.stdout(),
            self.stderr()
        )
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("{}\nstdout is not JSON: {e}", self.explain()))
    }
}

/// Runs `cfgmx ARGS` in `cwd` with a clean cfgmx environment (cache in `cwd`).
pub fn run_in(cwd: &Path, args: &[&str]) -> Run {
    run_env(cwd, args, &[])
}

pub fn run_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        // The width and colour the tests ask for, never the ones of the terminal they run in.
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE")
        .env("CFGMX_CACHE_DIR", cwd.join(".cfgmx-cache"));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("cfgmx runs");
    Run {
        cmd: format!("cfgmx {}", args.join(" ")),
        cwd: cwd.to_path_buf(),
        out,
    }
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cfgmx-test-")
        .tempdir()
        .expect("temp dir")
}

/// A temporary directory with a matrix in it as `m.toml`, where the build and fault tests run
/// `cfgmx` (each with its probe cache: see [`MatrixDir::cmd`]).
pub struct MatrixDir {
    dir: tempfile::TempDir,
    cache: PathBuf,
}

impl MatrixDir {
    /// `matrix` as `m.toml` in a fresh directory, probing into a cache of its own (`probe-cache/`).
    pub fn new(matrix: &str) -> MatrixDir {
        let dir = tempdir();
        let cache = dir.path().join("probe-cache");
        MatrixDir::write(dir, cache, matrix)
    }

    /// `matrix` as `m.toml` in a fresh directory, with the probe cache in `cache` (so several
    /// tests share one probe of the machine).
    pub fn with_cache(matrix: &str, cache: &Path) -> MatrixDir {
        MatrixDir::write(tempdir(), cache.to_path_buf(), matrix)
    }

    fn write(dir: tempfile::TempDir, cache: PathBuf, matrix: &str) -> MatrixDir {
        std::fs::write(dir.path().join("m.toml"), matrix).unwrap();
        MatrixDir { dir, cache }
    }

    /// The directory (`m.toml` in it).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `cfgmx build m.toml -j 2 --build-root ROOT --source SOURCE EXTRA`, not started yet.
    pub fn build_cmd(&self, source: &Path, root: &str, extra: &[&str]) -> Command {
        let mut c = self.cmd(&["build", "m.toml", "-j", "2", "--build-root", root]);
        c.arg("--source").arg(source).args(extra);
        c
    }

    /// That build run to its end with `--json`: its output and its report.
    pub fn build_json(
        &self,
        source: &Path,
        root: &str,
        extra: &[&str],
    ) -> (Output, serde_json::Value) {
        let o = self
            .build_cmd(source, root, extra)
            .arg("--json")
            .output()
            .unwrap();
        let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!("no JSON ({e})\n{}", explain(&o));
        });
        (o, v)
    }

    /// `cfgmx ARGS` in this directory with its probe cache (not started yet).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .env_remove("CLICOLOR_FORCE")
            .env("CFGMX_CACHE_DIR", &self.cache)
            .args(args);
        c
    }
}

/// Copies the test project (`tests/projects/omp-blas`: C + BLAS, OpenMP when asked) into `dst`,
/// so a test may build or touch it without disturbing the others.
pub fn copy_project(dst: &Path) {
    let src = repo().join("tests/projects/omp-blas");
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// Every file under `dir`, relative, sorted (to prove a failed command wrote nothing).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Runs `cmd` with `sh -c` and returns its trimmed standard output; the test fails, with the
/// command's standard error, if it does (ground truth the tests ask of the machine).
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A finished process's status and output, for an assertion message.
pub fn explain(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The variant records of a `cfgmx build --json` report.
pub fn variants(report: &serde_json::Value) -> &Vec<serde_json::Value> {
    report["variants"].as_array().unwrap()
}

/// The record of step `name` (`configure`, `build`, `test`) of one variant record.
pub fn step<'a>(variant: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    variant["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap()
}

/// A small C project in `dir`: `CMakeLists.txt` (C only, testing enabled, an executable `t`
/// from `t.c`) followed by `more` (tests, options), and `t.c` with `main_c`.
pub fn write_c_project(dir: &Path, more: &str, main_c: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.20)\nproject(p C)\nenable_testing()\nadd_executable(t t.c)\n{more}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("t.c"), main_c).unwrap();
}

/// Opens an HTML report in headless Chromium and checks it rendered (a coloured grid and
/// tables compress to far more than a blank page's few kB).
pub fn screenshot(html: &Path) {
    let shot = html.with_extension("png");
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,900",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(shot.is_file(), "no screenshot\n{}", explain(&o));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 20_000,
        "screenshot is {} bytes: blank?",
        png.len()
    );
}

/// Runs a Python check script (`python3 -c`): it must exit 0, else the assertion shows its
/// output and `context`.
pub fn python_ok(script: &str, context: &str) {
    let o = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{context}", explain(&o));
}

/// A Python driver (`python3 -c PTY_DRIVER PROGRAM ARGS...`) that runs the program on a
/// pseudo-terminal of 40 x 100 and prints, as JSON, its exit code, every byte the terminal
/// received (base64) and whether the terminal still echoes control characters (`ECHOCTL`)
/// after it ended. With `MARK` in its environment it types Ctrl-C once the output shows
/// `MARK`, `WAIT` seconds later; the exit code is then -1 if that never happened.
pub const PTY_DRIVER: &str = r#"
import base64, fcntl, json, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
mark = os.environ.get("MARK")
out, sent, start = b"", False, time.time()
while True:
    if select.select([fd], [], [], 0.1)[0]:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
    if mark is not None and not sent and mark.encode() in out:
        time.sleep(float(os.environ["WAIT"]))
        os.write(fd, b"\x03")  # Ctrl-C, as typed: the line discipline signals the group
        sent = True
    if time.time() - start > 300:
        os.kill(pid, 9)
        break
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
# The terminal's settings as the program left them (the master reads the pty's own).
echoctl = bool(termios.tcgetattr(fd)[3] & termios.ECHOCTL)
print(json.dumps({"code": code if sent or mark is None else -1,
                  "out": base64.b64encode(out).decode(), "echoctl": echoctl}))
"#;

/// Runs `cmd` (a `python3 -c PTY_DRIVER ...` command) and gives what the driver reported: the
/// exit code, the terminal's bytes, and whether it still echoes control characters.
pub fn pty_output(cmd: &mut Command) -> (i32, Vec<u8>, bool) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let out = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(r["out"].as_str().unwrap().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    (
        r["code"].as_i64().unwrap() as i32,
        out,
        r["echoctl"].as_bool().unwrap(),
    )
}
