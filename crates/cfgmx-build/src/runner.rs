//! One variant: write its build-system config, configure, build, test, each step logged to its
//! own file under the variant's directory with exit status and duration.

use crate::budget::Budget;
use crate::job::Job;
use crate::report::{StepResult, StepStatus};
use cfgmx_exec::Cmd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The build system driving a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Cmake,
    Meson,
}

impl System {
    /// Detects the build system from the source tree: CMake wins when both files exist, as
    /// most projects that ship both treat CMake as primary.
    pub fn detect(source: &Path) -> Option<System> {
        if source.join("CMakeLists.txt").is_file() {
            Some(System::Cmake)
        } else if source.join("meson.build").is_file() {
            Some(System::Meson)
        } else {
            None
        }
    }
}

/// What the runner needs besides the job.
pub struct StepContext<'a> {
    pub job: &'a Job,
    pub system: System,
    pub source: PathBuf,
    pub build_root: PathBuf,
    pub vdir: PathBuf,
    pub budget: &'a Budget,
    /// Use Ninja (else Unix Makefiles with the jobserver).
    pub ninja: bool,
    pub step_timeout: Option<Duration>,
}

impl StepContext<'_> {
    pub fn build_dir(&self) -> PathBuf {
        self.vdir.join("build")
    }
    fn log(&self, step: &str) -> PathBuf {
        self.vdir.join("logs").join(format!("{step}.log"))
    }
    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.build_root)
            .unwrap_or(p)
            .display()
            .to_string()
    }
    fn base(&self, program: &str) -> Cmd {
        let mut c = Cmd::new(program).cwd(&self.vdir);
        for (k, v) in &self.job.env {
            c = c.env(k, v);
        }
        if let Some(t) = self.step_timeout {
            c = c.timeout(t);
        }
        c
    }
}

/// The configuration files for one variant: CMake toolchain + initial cache, or a Meson
/// native file.
#[derive(Debug, Clone)]
pub struct Config {
    pub toolchain: Option<PathBuf>,
    /// The cache (`-C`) or native file.
    pub main: PathBuf,
    /// Some file differs from the last run's.
    pub changed: bool,
}

/// Writes the variant's configuration into its directory: the files cfgmx-render made (in
/// `job.files`) when there are, else a self-contained equivalent.
pub fn write_config(ctx: &StepContext) -> std::io::Result<Config> {
    let j = ctx.job;
    let mut files: Vec<(&str, String)> = Vec::new();
    match ctx.system {
        System::Cmake => match (j.files.get("cmake-toolchain"), j.files.get("cmake-cache")) {
            (Some(t), Some(c)) => {
                files.push(("cfgmx-toolchain.cmake", t.clone()));
                files.push(("cfgmx-cache.cmake", c.clone()));
            }
            _ => files.push(("cfgmx-cache.cmake", cmake_cache(j))),
        },
        System::Meson => files.push((
            "cfgmx-native.ini",
            j.files
                .get("meson-native")
                .cloned()
                .unwrap_or_else(|| meson_native(j)),
        )),
    }
    let mut changed = false;
    let mut toolchain = None;
    let mut main = PathBuf::new();
    for (name, text) in files {
        let path = ctx.vdir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            crate::store::write_atomic(&path, text.as_bytes())?;
            changed = true;
        }
        if name == "cfgmx-toolchain.cmake" {
            toolchain = Some(path);
        } else {
            main = path;
        }
    }
    Ok(Config {
        toolchain,
        main,
        changed,
    })
}

/// CMake bracket argument: no escape sequence or variable reference is interpreted inside, so
/// no value can inject CMake code; the bracket is made longer than any `]=*]` in the value.
fn cmake_quote(s: &str) -> String {
    let mut eq = String::new();
    while s.contains(&format!("]{eq}]")) {
        eq.push('=');
    }
    format!("[{eq}[{s}]{eq}]")
}

/// The initial cache (`cmake -C`): compilers, flags, link line and the matrix's cache
/// variables.
pub fn cmake_cache(j: &Job) -> String {
    let mut s = format!("# cfgmx variant {} ({})\n", j.name, j.hash);
    let mut set = |k: &str, v: &str| {
        s.push_str(&format!(
            "set({k} {} CACHE STRING \"\" FORCE)\n",
            cmake_quote(v)
        ));
    };
    for (k, v) in [
        ("CMAKE_C_COMPILER", &j.cc),
        ("CMAKE_CXX_COMPILER", &j.cxx),
        ("CMAKE_Fortran_COMPILER", &j.fc),
    ] {
        if let Some(v) = v {
            set(k, v);
        }
    }
    set("CMAKE_C_FLAGS", &j.cflags.join(" "));
    set("CMAKE_CXX_FLAGS", &j.cxxflags.join(" "));
    set("CMAKE_Fortran_FLAGS", &j.fflags.join(" "));
    let link = j.ldflags.join(" ");
    set("CMAKE_EXE_LINKER_FLAGS", &link);
    set("CMAKE_SHARED_LINKER_FLAGS", &link);
    // Standard libraries go at the end of every link line, after the objects, where `-l`
    // arguments must be; linker flags would put them before.
    let libs = j.libs.join(" ");
    for lang in ["C", "CXX", "Fortran"] {
        set(&format!("CMAKE_{lang}_STANDARD_LIBRARIES"), &libs);
    }
    for (k, v) in &j.cmake {
        set(k, v);
    }
    s
}

fn meson_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn meson_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|x| meson_quote(x))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The Meson native file: compilers under `[binaries]`, flags under `[built-in options]`.
pub fn meson_native(j: &Job) -> String {
    let mut s = format!("# cfgmx variant {} ({})\n[binaries]\n", j.name, j.hash);
    for (k, v) in [("c", &j.cc), ("cpp", &j.cxx), ("fortran", &j.fc)] {
        if let Some(v) = v {
            s.push_str(&format!("{k} = {}\n", meson_quote(v)));
        }
    }
    s.push_str("\n[built-in options]\n");
    for (lang, model_lang, flags) in [
        ("c", "c", &j.cflags),
        ("cpp", "cxx", &j.cxxflags),
        ("fortran", "fortran", &j.fflags),
    ] {
        // Meson passes no compile flags to the link: each language's link gets its own
        // compiler's facet link flags (a lock without them has the shared ones only).
        let mut link = j.link.get(model_lang).unwrap_or(&j.ldflags).clone();
        link.extend(j.libs.iter().cloned());
        s.push_str(&format!("{lang}_args = {}\n", meson_list(flags)));
        s.push_str(&format!("{lang}_link_args = {}\n", meson_list(&link)));
    }
    for (k, v) in &j.meson {
        s.push_str(&format!("{k} = {}\n", meson_quote(v)));
    }
    s
}

fn finish(ctx: &StepContext, step: &str, o: &cfgmx_exec::Outcome, cores: usize) -> StepResult {
    let log = ctx.log(step);
    let ok = o.success();
    StepResult {
        step: step.into(),
        status: if ok {
            StepStatus::Passed
        } else {
            StepStatus::Failed
        },
        command: o.command.clone(),
        exit_code: o.code,
        duration_s: o.duration.as_secs_f64(),
        log: ctx.rel(&log),
        cores,
        message: if ok {
            None
        } else {
            Some(format!("{}{}", disk_full(&ctx.vdir), why(o, &log)))
        },
    }
}

/// A full disk shows in a step's log as some tool's write error, or not at all (the log itself
/// could not be written): say it plainly when the build root has (almost) no space left.
fn disk_full(dir: &Path) -> String {
    match fs4::available_space(dir) {
        Ok(free) if free < 64 << 10 => format!(
            "the file system of {} is full ({free} bytes free): free some space and run again\n",
            dir.display()
        ),
        _ => String::new(),
    }
}

/// The verdict and the log lines that say why a step failed: errors first, else the tail.
fn why(o: &cfgmx_exec::Outcome, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut pick: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("failed") || l.contains("unrecognized")
        })
        .take(12)
        .collect();
    if pick.is_empty() {
        pick = lines[lines.len().saturating_sub(12)..].to_vec();
    }
    format!("{o}\n{}", pick.join("\n"))
}

fn header(log: &Path, cmd: &Cmd) {
    let _ = std::fs::create_dir_all(log.parent().unwrap_or(Path::new(".")));
    let _ = std::fs::write(log, format!("$ {}\n", cmd.display()));
}

/// Configure: runs when the build dir has never been configured or the config changed; an
/// unchanged configured build dir is reused (the build tool re-runs configure itself when the
/// project's own build files change).
pub fn configure(ctx: &StepContext, cfg: &Config) -> StepResult {
    let (config, changed) = (cfg.main.as_path(), cfg.changed);
    let bdir = ctx.build_dir();
    // The stamp is written only after a configure succeeded: a configure that was killed or
    // ran out of disk leaves a CMakeCache.txt (or meson-private) that looks configured but
    // is not, and reusing it would fail every later build of the variant.
    let stamp = ctx.vdir.join(CONFIGURED_STAMP);
    let configured = stamp.is_file()
        && match ctx.system {
            System::Cmake => bdir.join("CMakeCache.txt").is_file(),
            System::Meson => bdir.join("meson-private").is_dir(),
        };
    if !configured && bdir.exists() {
        // What an unfinished configure left cannot be trusted (a truncated cache): start clean.
        let _ = std::fs::remove_dir_all(&bdir);
    }
    let log = ctx.log("configure");
    if configured && !changed {
        let _ = std::fs::create_dir_all(log.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(
            &log,
            format!(
                "build dir {} reused: configured by an earlier run with the same {}; the build step reconfigures if the project's build files changed\n",
                bdir.display(),
                config.display()
            ),
        );
        return StepResult {
            step: "configure".into(),
            status: StepStatus::Passed,
            command: "(build dir reused)".into(),
            exit_code: Some(0),
            duration_s: 0.0,
            log: ctx.rel(&log),
            cores: 0,
            message: None,
        };
    }
    let cmd = match ctx.system {
        System::Cmake => {
            let c = ctx
                .base("cmake")
                .arg("-S")
                .arg(&ctx.source)
                .arg("-B")
                .arg(&bdir)
                .arg("-G")
                .arg(if ctx.ninja { "Ninja" } else { "Unix Makefiles" });
            let c = match &cfg.toolchain {
                Some(t) => c.arg(format!("-DCMAKE_TOOLCHAIN_FILE={}", t.display())),
                None => c,
            };
            c.arg("-C").arg(config)
        }
        System::Meson => {
            let c = ctx.base("meson");
            let c = if configured {
                c.args(["setup", "--reconfigure"])
            } else {
                c.arg("setup")
            };
            c.arg("--native-file")
                .arg(config)
                .arg(&bdir)
                .arg(&ctx.source)
        }
    };
    let _ = std::fs::remove_file(&stamp);
    header(&log, &cmd);
    let held = ctx.budget.take(1);
    let o = cmd.logged(&log);
    let n = held.as_ref().map_or(0, |h| h.count());
    drop(held);
    // Without the stamp the next run configures from scratch: slower, never wrong.
    if o.success() {
        let _ = crate::store::write_atomic(&stamp, b"configured\n");
    }
    finish(ctx, "configure", &o, n)
}

/// In a variant's directory: its build dir was configured to the end.
pub const CONFIGURED_STAMP: &str = "configured.ok";

/// Build with the variant's share of the budget.
pub fn build(ctx: &StepContext) -> StepResult {
    let log = ctx.log("build");
    let held = match ctx.budget.take(ctx.budget.share()) {
        Ok(h) => h,
        Err(e) => return io_failure(ctx, "build", &log, e),
    };
    let k = held.count();
    let bdir = ctx.build_dir();
    let cmd = match ctx.system {
        // Ninja 1.11 has no jobserver client: it gets an explicit -j of the tokens held.
        System::Cmake if ctx.ninja => ctx
            .base("cmake")
            .arg("--build")
            .arg(&bdir)
            .arg("--parallel")
            .arg(k.to_string()),
        // make joins the pool through MAKEFLAGS: no -j, or it would leave the jobserver. It
        // uses the implicit slot we hold plus what it draws; we return our extras first.
        System::Cmake => {
            let client = ctx.budget.client().clone();
            ctx.base("cmake")
                .arg("--build")
                .arg(&bdir)
                .hook(move |c| client.configure_make(c))
        }
        System::Meson => ctx
            .base("meson")
            .args(["compile", "-C"])
            .arg(&bdir)
            .arg("-j")
            .arg(k.to_string()),
    };
    let held = if ctx.system == System::Cmake && !ctx.ninja {
        drop(held);
        match ctx.budget.take(1) {
            Ok(h) => h,
            Err(e) => return io_failure(ctx, "build", &log, e),
        }
    } else {
        held
    };
    header(&log, &cmd);
    let o = cmd.logged(&log);
    drop(held);
    finish(ctx, "build", &o, k)
}

/// Counts from a test run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    /// The runner said there was no test.
    pub none: bool,
}

/// Reads ctest's or meson test's summary.
pub fn parse_tests(system: System, out: &str) -> TestCounts {
    let mut c = TestCounts::default();
    match system {
        System::Cmake => {
            if out.contains("No tests were found")
                || out.contains("No test configuration file found")
            {
                c.none = true;
            }
            // "67% tests passed, 1 tests failed out of 3"
            for l in out.lines() {
                if let Some(i) = l.find("tests failed out of ") {
                    let failed = l[..i]
                        .rsplit(|ch: char| !ch.is_ascii_digit())
                        .nth(1)
                        .and_then(|x| x.parse::<u32>().ok());
                    let total = l[i + "tests failed out of ".len()..]
                        .trim()
                        .parse::<u32>()
                        .ok();
                    if let (Some(f), Some(t)) = (failed, total) {
                        c.failed = f;
                        c.passed = t.saturating_sub(f);
                    }
                }
            }
        }
        System::Meson => {
            if out.contains("No tests defined.") {
                c.none = true;
            }
            for l in out.lines() {
                let mut it = l.split(':');
                let (Some(k), Some(v)) = (it.next(), it.next()) else {
                    continue;
                };
                let n = v.trim().parse::<u32>().ok();
                match (k.trim(), n) {
                    ("Ok", Some(n)) => c.passed += n,
                    ("Fail", Some(n)) | ("Timeout", Some(n)) | ("Unexpected Pass", Some(n)) => {
                        c.failed += n
                    }
                    _ => {}
                }
            }
        }
    }
    c
}

/// Test. A threaded variant runs one test at a time with the held cores as its thread count;
/// a sequential one runs as many tests as cores held with one thread each. Either way the
/// threads of concurrent tests never exceed the budget.
pub fn test(ctx: &StepContext) -> (StepResult, TestCounts) {
    let log = ctx.log("test");
    let held = match ctx.budget.take(ctx.budget.share()) {
        Ok(h) => h,
        Err(e) => return (io_failure(ctx, "test", &log, e), TestCounts::default()),
    };
    let k = held.count();
    let (parallel, threads) = if ctx.job.threaded { (1, k) } else { (k, 1) };
    let bdir = ctx.build_dir();
    let mut cmd = match ctx.system {
        System::Cmake => ctx
            .base("ctest")
            .arg("--test-dir")
            .arg(&bdir)
            .arg("--output-on-failure")
            .arg("-j")
            .arg(parallel.to_string()),
        System::Meson => ctx
            .base("meson")
            .args(["test", "-C"])
            .arg(&bdir)
            .arg("--print-errorlogs")
            .arg("--num-processes")
            .arg(parallel.to_string()),
    };
    // The budget overrides any thread count from the matrix env: oversubscription is what the
    // budget exists to prevent.
    for v in &ctx.job.thread_vars {
        cmd = cmd.env(v, threads.to_string());
    }
    if !ctx.job.thread_vars.iter().any(|v| v == "OMP_NUM_THREADS") {
        cmd = cmd.env("OMP_NUM_THREADS", threads.to_string());
    }
    header(&log, &cmd);
    let o = cmd.logged(&log);
    drop(held);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let counts = parse_tests(ctx.system, &text);
    let mut r = finish(ctx, "test", &o, k);
    if r.status == StepStatus::Passed && (counts.none || counts.passed + counts.failed == 0) {
        r.status = StepStatus::NoTests;
        r.message = Some("ran no test (is testing enabled? ctest/meson found none)".into());
    }
    (r, counts)
}

fn io_failure(ctx: &StepContext, step: &str, log: &Path, e: std::io::Error) -> StepResult {
    StepResult {
        step: step.into(),
        status: StepStatus::Failed,
        command: String::new(),
        exit_code: None,
        duration_s: 0.0,
        log: ctx.rel(log),
        cores: 0,
        message: Some(format!(
            "cfgmx could not take cores from its jobserver: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctest_summaries() {
        let cases = [
            (
                "100% tests passed, 0 tests failed out of 3\n",
                (3, 0, false),
            ),
            ("67% tests passed, 1 tests failed out of 3\n", (2, 1, false)),
            ("No tests were found!!!\n", (0, 0, true)),
            (
                "Test project /b\nNo test configuration file found!\n",
                (0, 0, true),
            ),
        ];
        for (text, (p, f, none)) in cases {
            let c = parse_tests(System::Cmake, text);
            assert_eq!((c.passed, c.failed, c.none), (p, f, none), "{text}");
        }
        let m = "Ok:                 2   \nExpected Fail:      0\nFail:               1\nSkipped:            0\nTimeout:            0\n";
        let c = parse_tests(System::Meson, m);
        assert_eq!((c.passed, c.failed), (2, 1));
        assert!(parse_tests(System::Meson, "No tests defined.\n").none);
    }

    #[test]
    fn cmake_values_cannot_escape_their_bracket() {
        assert_eq!(cmake_quote("-O2"), "[[-O2]]");
        assert_eq!(cmake_quote("a]]b"), "[=[a]]b]=]");
        assert_eq!(cmake_quote("x]=]y]]"), "[==[x]=]y]]]==]");
    }
}
