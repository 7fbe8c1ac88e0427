//! One variant: write its build-system config, configure, build, test, each step logged to its
//! own file under the variant's directory with exit status and duration.

use crate::budget::Budget;
use crate::job::Job;
use crate::report::{Step, StepResult, StepStatus, TestCaseResult, TestStatus};
use cfgmx_exec::Cmd;
use cfgmx_model::Point;
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
    /// See `Options::blas_query_helper`.
    pub blas_query_helper: Option<(PathBuf, String)>,
    /// ctest writes `--output-junit` (CMake >= 3.21).
    pub ctest_junit: bool,
    /// The build tools of this run (`cmake version 3.25.1`, ninja's, ...), one per line: a
    /// build dir configured by other tools is configured again from scratch.
    pub tools: String,
}

impl StepContext<'_> {
    pub fn build_dir(&self) -> PathBuf {
        self.vdir.join("build")
    }
    pub(crate) fn log(&self, step: &str) -> PathBuf {
        self.vdir.join("logs").join(format!("{step}.log"))
    }
    pub(crate) fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.build_root)
            .unwrap_or(p)
            .display()
            .to_string()
    }
    pub(crate) fn base(&self, program: impl Into<std::ffi::OsString>) -> Cmd {
        let mut c = Cmd::new(program).cwd(&self.vdir);
        // The modules' environment first (PATH with the module's compiler directory, its
        // library path), then the variant's own variables on top.
        for (k, v) in self.job.module_env.iter().chain(&self.job.env) {
            c = c.env(k, v);
        }
        if let Some(l) = &self.job.mpi_launcher {
            // Before the variant's own PATH (a module's), which is where a bare `mpiexec`
            // would otherwise come from.
            let rest = self
                .job
                .env
                .get("PATH")
                .or_else(|| self.job.module_env.get("PATH"))
                .cloned()
                .or_else(|| std::env::var("PATH").ok())
                .unwrap_or_default();
            let dir = self.vdir.join(LAUNCHER_DIR);
            c = c
                .env("PATH", format!("{}:{rest}", dir.display()))
                .env(LAUNCHER_VAR, &l.path);
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

/// Writes the variant's configuration into its directory: exactly the files cfgmx-render
/// made for it (`job.files`, also carried by the lock), so a build and `cfgmx generate` can
/// never disagree. A job without them (a lock entry from an older cfgmx) is refused with
/// what to do, never configured from a second, different writer.
pub fn write_config(ctx: &StepContext) -> std::io::Result<Config> {
    let j = ctx.job;
    let wanted: &[(&str, &str)] = match ctx.system {
        System::Cmake => &[
            ("cmake-toolchain", "cfgmx-toolchain.cmake"),
            ("cmake-cache", "cfgmx-cache.cmake"),
        ],
        System::Meson => &[("meson-native", "cfgmx-native.ini")],
    };
    let mut changed = false;
    let mut toolchain = None;
    let mut main = PathBuf::new();
    for (format, name) in wanted {
        let Some(text) = j.files.get(*format) else {
            return Err(std::io::Error::other(format!(
                "no {format} file for {} ({}): its lock entry was written without it (by an \
                 older cfgmx, or a value the format cannot hold); run `cfgmx expand --lock` \
                 or `cfgmx build` again",
                j.name, j.hash
            )));
        };
        let path = ctx.vdir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            cfgmx_fs::write_atomic(&path, text.as_bytes())?;
            changed = true;
        }
        if *name == "cfgmx-toolchain.cmake" {
            toolchain = Some(path);
        } else {
            main = path;
        }
    }
    write_launcher_scripts(ctx)?;
    Ok(Config {
        toolchain,
        main,
        changed,
    })
}

/// Where an MPI variant's launcher scripts live (see [`Job::mpi_launcher`]).
const LAUNCHER_DIR: &str = "mpi-bin";

/// The variable that names the launcher to the scripts in [`LAUNCHER_DIR`].
const LAUNCHER_VAR: &str = "CFGMX_MPI_LAUNCHER";

/// Puts the variant's MPI launcher under its plain names (`mpiexec`, `mpirun`) into a
/// directory the steps put first on PATH: tests that call a bare `mpiexec` (arpack-ng's do)
/// otherwise get the distribution's default MPI's launcher, which starts an MPICH program as
/// separate one-rank jobs. Scripts, not links: MPICH's hydra finds its proxy beside the path it
/// was started by. The path comes in through the environment, so nothing is quoted here.
fn write_launcher_scripts(ctx: &StepContext) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Some(l) = &ctx.job.mpi_launcher else {
        return Ok(());
    };
    let dir = ctx.vdir.join(LAUNCHER_DIR);
    std::fs::create_dir_all(&dir)?;
    let script = format!(
        "#!/bin/sh\n# cfgmx: this variant's MPI launcher under a plain name (${LAUNCHER_VAR} is set by each step)\nexec \"${LAUNCHER_VAR}\" \"$@\"\n"
    );
    for name in &l.names {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(script.as_str()) {
            cfgmx_fs::write_atomic(&path, script.as_bytes())?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Lines of a failed test's own output kept with its result.
const TEST_OUTPUT_LINES: usize = 10;

pub(crate) fn finish(
    ctx: &StepContext,
    step: Step,
    o: &cfgmx_exec::Outcome,
    cores: usize,
) -> StepResult {
    finish_logged(ctx, step, &ctx.log(step.as_str()), o, cores)
}

/// [`finish`] for a step whose log is not named after it (a runtime point's test).
pub(crate) fn finish_logged(
    ctx: &StepContext,
    step: Step,
    log: &Path,
    o: &cfgmx_exec::Outcome,
    cores: usize,
) -> StepResult {
    let log = log.to_path_buf();
    let ok = o.success();
    StepResult {
        step,
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
            Some(format!("{}{}", disk_full(&ctx.vdir), why(step, o, &log)))
        },
        timed_out: o.timed_out,
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

/// The key line (see [`crate::keyline`]), the verdict and the log lines that say why a step
/// failed: errors first, else the tail.
fn why(step: Step, o: &cfgmx_exec::Outcome, log: &Path) -> String {
    let text = cfgmx_fs::read_to_string(log, cfgmx_fs::MAX_OWN_BYTES).unwrap_or_default();
    let key = if o.timed_out {
        Some(format!(
            "timed out after {:.0} s (--step-timeout)",
            o.duration.as_secs_f64()
        ))
    } else {
        match step {
            Step::Configure => crate::keyline::configure(&text),
            Step::Build => crate::keyline::build(&text),
            Step::Test => None,
        }
    };
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
    match key {
        Some(k) => format!("{k}\n{o}\n{}", pick.join("\n")),
        None => format!("{o}\n{}", pick.join("\n")),
    }
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
    // The stamp holds the tools that configured the dir: another CMake (or Meson, or Ninja)
    // first on PATH must configure again, not build on a cache another version wrote.
    // `cfgmx build` runs the project's tests, so it turns them on (`BUILD_TESTING=ON`, what
    // CTest's module defaults to) unless the matrix sets BUILD_TESTING itself. On the command
    // line, not in the rendered cache: the cache, and the hash, are what `cfgmx generate`
    // writes for a user who configures by hand and chooses for themselves. The stamp holds
    // these arguments too, so a dir configured without them is configured again.
    let mut extra: Vec<String> = match ctx.system {
        System::Cmake if !ctx.job.cmake.contains_key("BUILD_TESTING") => {
            vec!["-DBUILD_TESTING=ON".to_string()]
        }
        _ => Vec::new(),
    };
    // An MPI variant's rank count follows this run's cores (not in its hash): on the command
    // line, which overrides what an earlier configure of the dir cached (`-C` would not), and
    // in the stamp, so another count configures again.
    if let (System::Cmake, Some(n)) = (ctx.system, ctx.job.mpi_ranks) {
        extra.push(format!("-DMPIEXEC_MAX_NUMPROCS={n}"));
    }
    // And the source tree it was configured against: a variant that moves to its own copy of
    // the source (`--copy-source`, or a project found to write into its tree) configures
    // afresh, never builds the original tree through an old cache.
    let stamp_text: String = std::iter::once(ctx.tools.clone())
        .chain(std::iter::once(format!(
            "source: {}\n",
            ctx.source.display()
        )))
        .chain(extra.iter().map(|a| format!("configure: {a}\n")))
        .collect();
    let same_tools = std::fs::read_to_string(&stamp).is_ok_and(|t| t == stamp_text);
    let configured = same_tools
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
        return reused_configure(ctx.rel(&log));
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
            c.arg("-C").arg(config).args(&extra)
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
    run_configure(ctx, cmd, &stamp, &stamp_text)
}

/// Runs a configure command (its header already in the log) holding one core, and writes
/// `stamp` only when it succeeded: without the stamp the next run configures from scratch,
/// slower, never wrong. The CMake/Meson and the Python configure steps both end here.
pub(crate) fn run_configure(
    ctx: &StepContext,
    cmd: Cmd,
    stamp: &Path,
    stamp_text: &str,
) -> StepResult {
    let held = ctx.budget.take(1);
    let o = cmd.logged(&ctx.log("configure"));
    let n = held.as_ref().map_or(0, |h| h.count());
    drop(held);
    if o.success() {
        let _ = cfgmx_fs::write_atomic(stamp, stamp_text.as_bytes());
    }
    finish(ctx, Step::Configure, &o, n)
}

/// The command of a configure step that found its build dir configured and current.
pub const REUSED: &str = "(build dir reused)";

/// The result of a configure step that found its build dir (or venv) configured and current.
pub fn reused_configure(log: String) -> StepResult {
    StepResult {
        step: Step::Configure,
        status: StepStatus::Passed,
        command: REUSED.into(),
        exit_code: Some(0),
        duration_s: 0.0,
        log,
        cores: 0,
        message: None,
        timed_out: false,
    }
}

/// In a variant's directory: its build dir was configured to the end.
pub const CONFIGURED_STAMP: &str = "configured.ok";

/// Build with the variant's share of the budget.
pub fn build(ctx: &StepContext) -> StepResult {
    let log = ctx.log("build");
    let held = match ctx.budget.take(ctx.budget.share()) {
        Ok(h) => h,
        Err(e) => return io_failure(ctx, Step::Build, &log, e),
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
            Err(e) => return io_failure(ctx, Step::Build, &log, e),
        }
    } else {
        held
    };
    header(&log, &cmd);
    let o = cmd.logged(&log);
    drop(held);
    finish(ctx, Step::Build, &o, k)
}

/// The BLAS files the variant's built files really load, by real path, as the dynamic loader
/// resolves them (`ldd`, which follows the rpath cfgmx put on the link line); `None` when the
/// variant links no BLAS. The libraries are told by the provider's names (`libopenblas64.so.0`
/// for `openblas64`), so another build of the same provider, of either width, shows.
pub fn blas_linked(ctx: &StepContext) -> Option<Result<Vec<String>, String>> {
    ctx.job.blas_library.as_ref()?;
    let mut files = Vec::new();
    built_files(&ctx.build_dir(), &mut files, 0);
    Some(ldd(ctx, &files).map(|libs| blas_files(ctx.job, &libs)))
}

/// What `files` load as the dynamic loader resolves them (`ldd`): each library's soname and
/// real path, once.
pub(crate) fn ldd(ctx: &StepContext, files: &[PathBuf]) -> Result<Vec<(String, String)>, String> {
    let mut loaded: Vec<(String, String)> = Vec::new();
    // One `ldd` for many files: it prints `file:` before each one's list.
    for chunk in files.chunks(64) {
        let o = ctx
            .base("ldd")
            .args(chunk)
            .timeout(Duration::from_secs(60))
            .output();
        if o.spawn_error.is_some() || o.timed_out {
            return Err(format!("cannot check which BLAS the build loads: {o}"));
        }
        for line in o.stdout.lines() {
            let Some((soname, rest)) = line.trim().split_once(" => ") else {
                continue;
            };
            let path = rest.split(" (").next().unwrap_or("").trim();
            if !path.starts_with('/') {
                continue;
            }
            let real = std::fs::canonicalize(path)
                .map_or_else(|_| path.to_string(), |p| p.display().to_string());
            let e = (soname.to_string(), real);
            if !loaded.contains(&e) {
                loaded.push(e);
            }
        }
    }
    Ok(loaded)
}

/// The BLAS files among loaded libraries, told by the provider's names (`libopenblas64.so.0`
/// for `openblas64`), so another build of the same provider, of either width, shows.
pub(crate) fn blas_files(job: &Job, libs: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (soname, real) in libs {
        let is_blas = job.blas_names.iter().any(|n| soname_is(soname, n));
        if is_blas && !out.contains(real) {
            out.push(real.clone());
        }
    }
    out
}

/// Whether `soname` is library `name`'s: `libNAME.so[.N]`.
pub(crate) fn soname_is(soname: &str, name: &str) -> bool {
    soname
        .strip_prefix("lib")
        .and_then(|r| r.strip_prefix(name))
        .is_some_and(|r| r.starts_with(".so"))
}

/// Executables and shared libraries under the build directory (by mode and name, not read),
/// leaving out the build systems' own scratch (`CMakeFiles/`, `meson-private/`); at most 512.
fn built_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= 512 {
            return;
        }
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(ft) = e.file_type() else {
            continue;
        };
        if ft.is_dir()
            && depth < 16
            && !matches!(name.as_str(), "CMakeFiles" | "meson-private" | "meson-logs")
        {
            built_files(&e.path(), out, depth + 1);
        } else if ft.is_file() {
            let exec = e
                .metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
            let shared = name.ends_with(".so") || name.contains(".so.");
            if (exec || shared) && !name.ends_with(".sh") && !name.ends_with(".py") {
                out.push(e.path());
            }
        }
    }
}

/// Whether the built files loaded exactly the variant's BLAS: `Err` names the other file(s).
pub fn check_blas_linked(job: &Job, loaded: &[String]) -> Result<(), String> {
    let Some(want) = &job.blas_library else {
        return Ok(());
    };
    let real =
        std::fs::canonicalize(want).map_or_else(|_| want.clone(), |p| p.display().to_string());
    let other: Vec<&String> = loaded.iter().filter(|l| **l != real).collect();
    if other.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the built files load {}, not the variant's BLAS {want}",
        other
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// What a test run reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    /// The runner said there was no test.
    pub none: bool,
    /// Each test, when the driver's structured output was read (none from the summary text).
    pub cases: Vec<TestCaseResult>,
    /// Where the results came from (`ctest-junit`, `meson-testlog`, `ctest-summary`,
    /// `meson-summary`); none when nothing could be read.
    pub from: Option<&'static str>,
    /// Why the structured results could not be read, when the driver should have written them.
    pub unread: Option<String>,
}

impl TestCounts {
    pub(crate) fn from_cases(cases: Vec<TestCaseResult>, from: &'static str) -> TestCounts {
        let n = |st: TestStatus| cases.iter().filter(|c| c.status == st).count() as u32;
        TestCounts {
            passed: n(TestStatus::Passed),
            failed: n(TestStatus::Failed),
            skipped: n(TestStatus::Skipped),
            none: cases.is_empty(),
            from: Some(from),
            cases,
            unread: None,
        }
    }
}

/// The ctest version from `ctest --version` (`ctest version 3.25.1`), as (major, minor).
pub fn ctest_version(text: &str) -> Option<(u32, u32)> {
    let v = text.lines().next()?.split_whitespace().nth(2)?;
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}

/// `ctest --output-junit` appeared in CMake 3.21; older ctests get read from their summary.
pub fn ctest_has_junit(version: (u32, u32)) -> bool {
    version >= (3, 21)
}

/// Reads ctest's JUnit file (`--output-junit`): one `<testcase>` per test, its `status`
/// attribute (`run`, `fail`, `notrun`, `disabled`) and `<failure>`/`<skipped>` children.
pub fn parse_ctest_junit(xml: &str) -> Result<Vec<TestCaseResult>, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<TestCaseResult> = None;
    let mut saw_suite = false;
    let mut in_out = false;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", r.buffer_position()))?;
        match ev {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testsuite" => {
                saw_suite = true;
            }
            Event::Start(e) if e.name().as_ref() == b"testcase" => {
                current = Some(junit_case(&e)?);
            }
            Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                out.push(junit_case(&e)?);
            }
            Event::Start(e) if e.name().as_ref() == b"system-out" => in_out = true,
            // A child says more than the attribute (and some writers have no attribute).
            Event::Start(e) | Event::Empty(e) => {
                if let Some(c) = current.as_mut() {
                    match e.name().as_ref() {
                        b"failure" | b"error" => c.status = TestStatus::Failed,
                        b"skipped" if c.status != TestStatus::Failed => {
                            c.status = TestStatus::Skipped
                        }
                        _ => {}
                    }
                }
            }
            Event::Text(t) if in_out => {
                if let Some(c) = current.as_mut() {
                    let text = t.decode().map_err(|e| e.to_string())?;
                    c.output.get_or_insert_with(String::new).push_str(&text);
                }
            }
            // `&lt;` and `&#10;` inside the output come as references of their own.
            Event::GeneralRef(g) if in_out => {
                if let Some(c) = current.as_mut() {
                    let ch = junit_ref(&g)?;
                    c.output.get_or_insert_with(String::new).push_str(&ch);
                }
            }
            Event::End(e) if e.name().as_ref() == b"system-out" => in_out = false,
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some(mut c) = current.take() {
                    // Kept for failed tests only: a passing test's output is in the log.
                    c.output = c
                        .output
                        .filter(|o| c.status == TestStatus::Failed && !o.trim().is_empty())
                        .map(|o| crate::keyline::tail(&o, TEST_OUTPUT_LINES));
                    out.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_suite {
        return Err("no <testsuite> element".into());
    }
    Ok(out)
}

/// A `<testcase>` element's test, from its `name`, `status` and `time` attributes.
fn junit_case(e: &quick_xml::events::BytesStart) -> Result<TestCaseResult, String> {
    let (mut name, mut status, mut time) = (String::new(), String::new(), 0.0);
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        match a.key.as_ref() {
            b"name" => name = v,
            b"status" => status = v,
            b"time" => time = v.trim().parse().unwrap_or(0.0),
            _ => {}
        }
    }
    Ok(TestCaseResult {
        output: None,
        name,
        status: match status.as_str() {
            "run" | "" => TestStatus::Passed,
            "notrun" | "disabled" => TestStatus::Skipped,
            _ => TestStatus::Failed,
        },
        time_s: time,
    })
}

/// The text a character or entity reference in a test's output stands for.
fn junit_ref(g: &quick_xml::events::BytesRef) -> Result<String, String> {
    let name = g.decode().map_err(|e| e.to_string())?;
    Ok(match g.resolve_char_ref() {
        Ok(Some(ch)) => ch.to_string(),
        _ => quick_xml::escape::resolve_predefined_entity(&name)
            .unwrap_or_default()
            .to_string(),
    })
}

/// Reads Meson's `meson-logs/testlog.json`: one JSON object per line, with `name`, `result`
/// (`OK`, `FAIL`, `SKIP`, `EXPECTEDFAIL`, `UNEXPECTEDPASS`, `TIMEOUT`, `ERROR`, ...) and
/// `duration`.
pub fn parse_meson_testlog(text: &str) -> Result<Vec<TestCaseResult>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let name = v["name"]
            .as_str()
            .ok_or_else(|| format!("line {}: no test name", i + 1))?;
        let result = v["result"]
            .as_str()
            .ok_or_else(|| format!("line {}: no result", i + 1))?;
        out.push(TestCaseResult {
            name: name.to_string(),
            status: match result {
                // An expected failure is the outcome the project asked for.
                "OK" | "EXPECTEDFAIL" => TestStatus::Passed,
                "SKIP" => TestStatus::Skipped,
                _ => TestStatus::Failed,
            },
            time_s: v["duration"].as_f64().unwrap_or(0.0),
            output: v["stdout"]
                .as_str()
                .filter(|_| !matches!(result, "OK" | "EXPECTEDFAIL" | "SKIP"))
                .map(|o| crate::keyline::tail(o, TEST_OUTPUT_LINES)),
        });
    }
    Ok(out)
}

/// Reads ctest's or meson test's summary text: the fallback for a ctest older than 3.21.
/// ctest 3.x prints `100% tests passed, 0 tests failed out of 4`, 4.x prints `100% tests
/// passed out of 4` when nothing failed; both print `N% tests passed, F tests failed out of T`
/// otherwise and `No tests were found!!!` when there is none.
pub fn parse_tests(system: System, out: &str) -> TestCounts {
    let mut c = TestCounts::default();
    match system {
        System::Cmake => {
            if out.contains("No tests were found")
                || out.contains("No test configuration file found")
            {
                c.none = true;
            }
            for l in out.lines() {
                let Some(i) = l.find("tests passed") else {
                    continue;
                };
                let Some(j) = l.rfind("out of ") else {
                    continue;
                };
                let Ok(total) = l[j + "out of ".len()..].trim().parse::<u32>() else {
                    continue;
                };
                // "..., F tests failed out of T" or nothing between (4.x, none failed).
                let failed = match l[i..j].find("tests failed") {
                    Some(k) => {
                        let before = &l[i + "tests passed".len()..i + k];
                        match before.trim().trim_start_matches(',').trim().parse::<u32>() {
                            Ok(f) => f,
                            Err(_) => continue,
                        }
                    }
                    None => 0,
                };
                c.failed = failed;
                c.passed = total.saturating_sub(failed);
                c.from = Some("ctest-summary");
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
                    ("Ok", Some(n)) | ("Expected Fail", Some(n)) => c.passed += n,
                    ("Fail", Some(n)) | ("Timeout", Some(n)) | ("Unexpected Pass", Some(n)) => {
                        c.failed += n
                    }
                    ("Skipped", Some(n)) => c.skipped += n,
                    _ => continue,
                }
                c.from = Some("meson-summary");
            }
        }
    }
    c
}

/// The thread count a variant's tests run with: the matrix's `threads` for a threaded variant
/// (its tests are what the user ships, so they run as the user runs them, never with fewer),
/// 1 for a sequential one.
pub fn test_threads(job: &Job) -> usize {
    if job.threaded {
        job.threads.max(1) as usize
    } else {
        1
    }
}

/// The thread count of a runtime point's test run: the point's `threads` (for every variant:
/// the user asked for that count, and a sequential variant's own OpenMP-reading code sees it
/// too), else the variant's [`test_threads`].
pub fn point_threads(job: &Job, point: Option<&Point>) -> usize {
    point
        .and_then(Point::threads)
        .map_or_else(|| test_threads(job), |t| t.max(1) as usize)
}

/// The suffix of a runtime point's files (log, JUnit file, Meson testlog): none without one.
pub(crate) fn point_suffix(point: Option<&Point>) -> String {
    point.map(|p| format!("-{}", p.key())).unwrap_or_default()
}

/// The largest PROCESSORS of the tests ctest would run (its `--show-only=json-v1` listing,
/// with the same selection); 1 when none sets it or the listing cannot be read (the run
/// itself then says what is wrong).
fn ctest_processors(ctx: &StepContext, bdir: &Path, selection: &[String]) -> usize {
    let o = ctx
        .base("ctest")
        .arg("--test-dir")
        .arg(bdir)
        .arg("--show-only=json-v1")
        .args(selection)
        .output();
    if !o.success() {
        return 1;
    }
    widest_processors(&o.stdout)
}

/// The largest `PROCESSORS` property in ctest's `--show-only=json-v1` document.
pub fn widest_processors(json: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["properties"].as_array().into_iter().flatten())
        .filter(|p| p["name"] == "PROCESSORS")
        .filter_map(|p| p["value"].as_u64())
        .max()
        .map_or(1, |n| n.max(1) as usize)
}

/// The test step of a variant whose selection leaves no test: `no_tests`, nothing run (Meson
/// runs every test when given no name, so the selection must not become "all of them").
fn nothing_selected(ctx: &StepContext, log: &Path) -> (StepResult, TestCounts) {
    let message = "the matrix's test selection (`[test]` include/exclude) matches no test";
    if let Some(p) = log.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let _ = std::fs::write(log, format!("{message}\n"));
    let r = StepResult {
        step: Step::Test,
        status: StepStatus::NoTests,
        command: "(no test selected)".into(),
        exit_code: Some(0),
        duration_s: 0.0,
        log: ctx.rel(log),
        cores: 0,
        message: Some(message.into()),
        timed_out: false,
    };
    let c = TestCounts {
        none: true,
        ..Default::default()
    };
    (r, c)
}

/// One test as Meson's introspection lists it (`meson-info/intro-tests.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MesonTest {
    pub name: String,
    /// Seconds; 0 or less: no limit.
    #[serde(default)]
    pub timeout: f64,
}

/// The tests a configured Meson build dir declares, from the file Meson writes for tools
/// (structured, unlike `meson test --list`'s text).
fn meson_tests(bdir: &Path) -> std::io::Result<Vec<MesonTest>> {
    let path = bdir.join("meson-info").join("intro-tests.json");
    let text = cfgmx_fs::read_to_string(&path, cfgmx_fs::MAX_OWN_BYTES)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
}

/// The test driver's arguments for a variant's test settings: the one table of ctest's and
/// `meson test`'s spellings. ctest filters by regex itself (`-R`/`-E`, `-L`/`-LE`); Meson
/// takes test names, so cfgmx matches the regexes against the names Meson lists (`tests`),
/// and labels are its suites. Meson has no per-test timeout of its own, only a multiplier of
/// each test's declared one: the multiplier gives no selected test more than `timeout`
/// seconds (the longest-declared exactly that). `None`: the selection leaves no test (Meson
/// would run them all when given no name).
pub fn test_selection(
    system: System,
    t: &cfgmx_model::TestSettings,
    tests: &[MesonTest],
) -> Option<Vec<String>> {
    // Several regexes or labels are one alternation: ctest takes one regex per option.
    let any = |v: &[String]| match v {
        [one] => one.clone(),
        many => many
            .iter()
            .map(|r| format!("({r})"))
            .collect::<Vec<_>>()
            .join("|"),
    };
    let labels = |v: &[String]| format!("^({})$", v.join("|"));
    let mut a: Vec<String> = Vec::new();
    match system {
        System::Cmake => {
            if let Some(v) = t.include.as_deref().filter(|v| !v.is_empty()) {
                a.extend(["-R".into(), any(v)]);
            }
            if let Some(v) = t.exclude.as_deref().filter(|v| !v.is_empty()) {
                a.extend(["-E".into(), any(v)]); // ctest's, not a compiler's
            }
            if let Some(v) = t.labels.as_deref().filter(|v| !v.is_empty()) {
                a.extend(["-L".into(), labels(v)]); // ctest's, not a compiler's
            }
            if let Some(v) = t.exclude_labels.as_deref().filter(|v| !v.is_empty()) {
                a.extend(["-LE".into(), labels(v)]);
            }
            if let Some(n) = t.timeout {
                a.extend(["--timeout".into(), n.to_string()]);
            }
            if let Some(n) = t.repeat_until_fail {
                a.extend(["--repeat".into(), format!("until-fail:{n}")]);
            }
        }
        System::Meson => {
            let compile = |v: &Option<Vec<String>>| {
                v.as_deref().map(|v| {
                    v.iter()
                        .filter_map(|r| regex::Regex::new(r).ok())
                        .collect::<Vec<_>>()
                })
            };
            let (inc, exc) = (compile(&t.include), compile(&t.exclude));
            let selected: Vec<&MesonTest> = tests
                .iter()
                .filter(|x| {
                    inc.as_ref()
                        .is_none_or(|v| v.iter().any(|r| r.is_match(&x.name)))
                })
                .filter(|x| {
                    !exc.as_ref()
                        .is_some_and(|v| v.iter().any(|r| r.is_match(&x.name)))
                })
                .collect();
            if inc.is_some() || exc.is_some() {
                if selected.is_empty() {
                    return None;
                }
                a.extend(selected.iter().map(|x| x.name.clone()));
            }
            for l in t.labels.iter().flatten() {
                a.extend(["--suite".into(), l.clone()]);
            }
            for l in t.exclude_labels.iter().flatten() {
                a.extend(["--no-suite".into(), l.clone()]);
            }
            if let Some(n) = t.timeout {
                let m = selected
                    .iter()
                    .filter(|x| x.timeout > 0.0)
                    .map(|x| f64::from(n) / x.timeout)
                    .fold(f64::INFINITY, f64::min);
                if m.is_finite() {
                    a.extend(["--timeout-multiplier".into(), format!("{m}")]);
                }
            }
            if let Some(n) = t.repeat_until_fail {
                a.extend(["--repeat".into(), n.to_string()]);
            }
        }
    }
    a.extend(t.args.iter().flatten().cloned());
    Some(a)
}

/// Test. A test's cores are its ranks (ctest's PROCESSORS, 1 when unset; an MPI variant's
/// `MPIEXEC_MAX_NUMPROCS` at least) times the
/// variant's threads (its thread count when threaded, else 1). A variant with threads or a
/// multi-rank test waits for the cores of its widest selected test and runs `cores / threads`
/// ctest slots (ctest counts PROCESSORS against them); a sequential one with single-rank
/// tests runs as many tests as cores held. Either way the threads of concurrent tests never
/// exceed the cores held (a test wider than the whole budget runs alone on all of it). Results come from the
/// driver's structured output (ctest's JUnit file, Meson's testlog.json), the summary text
/// only for a ctest without `--output-junit`.
///
/// With a runtime `point`, its thread count and variables are the test's environment, and
/// its log, JUnit file and Meson testlog carry the point's key, so the points of one build
/// dir run side by side without sharing a file. `rebuild: false` tells `meson test` not to
/// run ninja first: the points after a variant's first run concurrently in one build dir,
/// where two ninjas would race on its logs (the first point's run built what the tests need).
pub fn test(ctx: &StepContext, point: Option<&Point>, rebuild: bool) -> (StepResult, TestCounts) {
    let suffix = point_suffix(point);
    let log = ctx.log(&format!("test{suffix}"));
    let threads = point_threads(ctx.job, point);
    let bdir = ctx.build_dir();
    let selection = match ctx.system {
        System::Cmake => Ok(test_selection(ctx.system, &ctx.job.test, &[])),
        System::Meson => {
            meson_tests(&bdir).map(|all| test_selection(ctx.system, &ctx.job.test, &all))
        }
    };
    let selection = match selection {
        Ok(Some(args)) => args,
        Ok(None) => return nothing_selected(ctx, &log),
        Err(e) => return (io_failure(ctx, Step::Test, &log, e), TestCounts::default()),
    };
    let widest = widest_test(ctx, &bdir);
    let counted = ctx.job.threaded || point.and_then(Point::threads).is_some();
    let held = if counted || widest > 1 {
        ctx.budget.take_exactly(widest * threads)
    } else {
        ctx.budget.take(ctx.budget.share())
    };
    let held = match held {
        Ok(h) => h,
        Err(e) => return (io_failure(ctx, Step::Test, &log, e), TestCounts::default()),
    };
    let k = held.count();
    // ctest counts a test's PROCESSORS against `-j`: with one slot per `threads` cores, the
    // tests it runs together never have more threads than the cores held.
    let parallel = (k / threads).max(1);
    let results = TestResultFiles {
        junit: ctx.vdir.join(format!("test-results{suffix}.xml")),
        testlog: bdir
            .join("meson-logs")
            .join(format!("testlog{suffix}.json")),
    };
    // Results of an earlier run must never stand for this one.
    let _ = std::fs::remove_file(&results.junit);
    let _ = std::fs::remove_file(&results.testlog);
    let mut cmd = test_command(ctx, &bdir, &results, &suffix, parallel, rebuild);
    // The test's thread count overrides any from the matrix env: it is the count the matrix
    // (or the runtime point) declares, and the budget holds that many cores for it; the
    // point's own variables come last, they are what this run varies.
    for (k, v) in ctx.job.test_env(threads, point) {
        cmd = cmd.env(k, v);
    }
    cmd = cmd.args(&selection);
    header(&log, &cmd);
    let o = cmd.logged(&log);
    drop(held);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let counts = read_test_results(ctx, &text, &results);
    let mut r = finish_logged(ctx, Step::Test, &log, &o, k);
    test_verdict(ctx, &mut r, &counts, &o);
    (r, counts)
}

/// Where a test run's driver writes its structured results: ctest's JUnit file, Meson's
/// testlog.
struct TestResultFiles {
    junit: PathBuf,
    testlog: PathBuf,
}

/// The widest selected test: ctest's PROCESSORS (the ranks an MPI test starts), each rank
/// running the variant's thread count. The step holds that many cores at least, so no
/// test runs more threads than the cores held (Meson has no such property: 1).
fn widest_test(ctx: &StepContext, bdir: &Path) -> usize {
    let widest = match ctx.system {
        System::Cmake => {
            // Only the filters decide which tests run; a user's `args` are for the run
            // (output, repeat options), not for the listing.
            let t = &ctx.job.test;
            let filters = cfgmx_model::TestSettings {
                include: t.include.clone(),
                exclude: t.exclude.clone(),
                labels: t.labels.clone(),
                exclude_labels: t.exclude_labels.clone(),
                ..Default::default()
            };
            let filters = test_selection(System::Cmake, &filters, &[]).unwrap_or_default();
            ctest_processors(ctx, bdir, &filters)
        }
        System::Meson => 1,
    };
    // An MPI variant's tests start the ranks cfgmx told CMake (`MPIEXEC_MAX_NUMPROCS`, what
    // FindMPI's users pass to the launcher) whether or not they declare PROCESSORS.
    widest.max(ctx.job.mpi_ranks.unwrap_or(1) as usize)
}

/// The test driver's command line: ctest or `meson test`, `parallel` tests at a time.
fn test_command(
    ctx: &StepContext,
    bdir: &Path,
    results: &TestResultFiles,
    suffix: &str,
    parallel: usize,
    rebuild: bool,
) -> Cmd {
    match ctx.system {
        System::Cmake => {
            let c = ctx
                .base("ctest")
                .arg("--test-dir")
                .arg(bdir)
                .arg("--output-on-failure")
                .arg("-j")
                .arg(parallel.to_string());
            if ctx.ctest_junit {
                c.arg("--output-junit").arg(&results.junit)
            } else {
                c
            }
        }
        System::Meson => ctx
            .base("meson")
            .args(["test", "-C"])
            .arg(bdir)
            .arg("--print-errorlogs")
            .args((!rebuild).then_some("--no-rebuild"))
            .arg("--logbase")
            .arg(format!("testlog{suffix}"))
            .arg("--num-processes")
            .arg(parallel.to_string()),
    }
}

/// The counts from the driver's structured results, else from its summary `text` (saying
/// in `unread` why, when the structured results should have been there).
fn read_test_results(ctx: &StepContext, text: &str, results: &TestResultFiles) -> TestCounts {
    let (junit, testlog) = (&results.junit, &results.testlog);
    let mut unread = None;
    let structured = match ctx.system {
        System::Cmake if ctx.ctest_junit => Some((
            std::fs::read_to_string(junit).map_err(|e| format!("{}: {e}", junit.display())),
            parse_ctest_junit as fn(&str) -> Result<Vec<TestCaseResult>, String>,
            "ctest-junit",
        )),
        System::Cmake => None,
        System::Meson => Some((
            std::fs::read_to_string(testlog).map_err(|e| format!("{}: {e}", testlog.display())),
            parse_meson_testlog as fn(&str) -> Result<Vec<TestCaseResult>, String>,
            "meson-testlog",
        )),
    };
    let mut counts = match structured {
        Some((Ok(t), parse, from)) => match parse(&t) {
            Ok(cases) => TestCounts::from_cases(cases, from),
            Err(e) => {
                unread = Some(format!("cannot read the test results ({from}): {e}"));
                parse_tests(ctx.system, text)
            }
        },
        Some((Err(e), _, _)) => {
            // ctest writes no file when it finds no test directory at all; Meson none when
            // there is no test: the text says which.
            let c = parse_tests(ctx.system, text);
            if !c.none {
                unread = Some(format!("no test results file: {e}"));
            }
            c
        }
        None => parse_tests(ctx.system, text),
    };
    counts.unread = unread;
    counts
}

/// The test step's status and message from what the tests reported: the failing test's key
/// line first, a failed test failing a driver that exited 0, no test counting as none.
fn test_verdict(
    ctx: &StepContext,
    r: &mut StepResult,
    counts: &TestCounts,
    o: &cfgmx_exec::Outcome,
) {
    if let (StepStatus::Failed, false, Some(key)) =
        (r.status, o.timed_out, crate::keyline::test(&counts.cases))
    {
        // The failing test and its own words first (the disk-full line, when there is one,
        // stays above: it is the cause).
        let m = r.message.take().unwrap_or_default();
        let full = disk_full(&ctx.vdir);
        r.message = Some(match m.strip_prefix(&full) {
            Some(rest) if !full.is_empty() => format!("{full}{key}\n{rest}"),
            _ => format!("{key}\n{m}"),
        });
    }
    if r.status == StepStatus::Passed && counts.failed > 0 {
        // A driver that exits 0 over a failed test is still a failed test.
        r.status = StepStatus::Failed;
        r.message = Some(
            crate::keyline::test(&counts.cases)
                .unwrap_or_else(|| format!("{} test(s) failed", counts.failed)),
        );
    } else if r.status == StepStatus::Passed && counts.passed + counts.failed == 0 {
        r.status = StepStatus::NoTests;
        r.message = Some(match &counts.unread {
            Some(u) => format!("no test result could be read: {u}"),
            None if counts.skipped > 0 => {
                format!("every test was skipped ({} skipped)", counts.skipped)
            }
            None => "ran no test (is testing enabled? ctest/meson found none)".into(),
        });
    }
}

pub(crate) fn io_failure(
    ctx: &StepContext,
    step: Step,
    log: &Path,
    e: std::io::Error,
) -> StepResult {
    StepResult {
        step,
        status: StepStatus::Failed,
        command: String::new(),
        exit_code: None,
        duration_s: 0.0,
        log: ctx.rel(log),
        cores: 0,
        message: Some(format!(
            "cfgmx could not take cores from its jobserver: {e}"
        )),
        timed_out: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every summary form ctest 3.x and 4.x print (the 4.x one without "0 tests failed"
    /// is what made every CMake 4 result unknown).
    #[test]
    fn ctest_summaries() {
        let cases = [
            // 3.x, all passed
            (
                "100% tests passed, 0 tests failed out of 3\n",
                (3, 0, false),
            ),
            // 4.x, all passed
            ("100% tests passed out of 4\n", (4, 0, false)),
            // both, some failed
            ("67% tests passed, 1 tests failed out of 3\n", (2, 1, false)),
            ("0% tests passed, 2 tests failed out of 2\n", (0, 2, false)),
            ("No tests were found!!!\n", (0, 0, true)),
            (
                "Test project /b\nNo test configuration file found!\n",
                (0, 0, true),
            ),
        ];
        for (text, (p, f, none)) in cases {
            let c = parse_tests(System::Cmake, text);
            assert_eq!((c.passed, c.failed, c.none), (p, f, none), "{text}");
            assert_eq!(c.from.is_some(), !none, "{text}");
        }
        let m = "Ok:                 2   \nExpected Fail:      1\nFail:               1\nSkipped:            3\nTimeout:            0\n";
        let c = parse_tests(System::Meson, m);
        assert_eq!((c.passed, c.failed, c.skipped), (3, 1, 3));
        assert!(parse_tests(System::Meson, "No tests defined.\n").none);
    }

    #[test]
    fn ctest_versions_decide_junit() {
        for (text, v, junit) in [
            (
                "ctest version 3.25.1\n\nCMake suite maintained",
                (3, 25),
                true,
            ),
            ("ctest version 4.4.5\n", (4, 4), true),
            ("ctest version 3.21.0-rc1\n", (3, 21), true),
            ("ctest version 3.20.6\n", (3, 20), false),
            ("ctest version 3.9.2\n", (3, 9), false),
        ] {
            assert_eq!(ctest_version(text), Some(v), "{text}");
            assert_eq!(ctest_has_junit(v), junit, "{text}");
        }
        assert_eq!(ctest_version("something else"), None);
    }

    /// The shape ctest 3.25 and 4.4 write with `--output-junit` for a passing, a failing, a
    /// SKIP_RETURN_CODE and a DISABLED test.
    #[test]
    fn ctest_junit_cases() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="(empty)"
	tests="4"
	failures="1"
	disabled="1"
	skipped="1"
	hostname=""
	time="0"
	timestamp="2026-11-30T01:05:02"
	>
	<testcase name="ok" classname="ok" time="0.00128938" status="run">
		<properties/>
		<system-out></system-out>
	</testcase>
	<testcase name="bad &amp; ugly" classname="bad" time="0.00248761" status="fail">
		<failure message="Failed"/>
		<system-out></system-out>
	</testcase>
	<testcase name="skipme" classname="skipme" time="0.00198008" status="notrun">
		<skipped message="SKIP_RETURN_CODE=77"/>
		<system-out></system-out>
	</testcase>
	<testcase name="dis" classname="dis" time="0" status="disabled">
		<system-out>Disabled</system-out>
	</testcase>
</testsuite>
"#;
        let cases = parse_ctest_junit(xml).unwrap();
        let got: Vec<(&str, TestStatus)> =
            cases.iter().map(|c| (c.name.as_str(), c.status)).collect();
        assert_eq!(
            got,
            [
                ("ok", TestStatus::Passed),
                ("bad & ugly", TestStatus::Failed),
                ("skipme", TestStatus::Skipped),
                ("dis", TestStatus::Skipped),
            ]
        );
        assert!((cases[0].time_s - 0.00128938).abs() < 1e-9);
        let c = TestCounts::from_cases(cases, "ctest-junit");
        assert_eq!((c.passed, c.failed, c.skipped, c.none), (1, 1, 2, false));
        // No test at all: an empty suite.
        let empty =
            parse_ctest_junit("<testsuite name=\"x\" tests=\"0\">\n</testsuite>\n").unwrap();
        assert!(TestCounts::from_cases(empty, "ctest-junit").none);
        assert!(parse_ctest_junit("not xml <").is_err());
        assert!(parse_ctest_junit("<other/>").is_err());
    }

    /// Meson 1.0's testlog.json for OK, FAIL, SKIP and an expected failure.
    #[test]
    fn meson_testlog_cases() {
        let log = concat!(
            r#"{"name": "ok", "stdout": "", "result": "OK", "duration": 0.0219, "returncode": 0}"#,
            "\n",
            r#"{"name": "bad", "result": "FAIL", "duration": 0.0222, "returncode": 1}"#,
            "\n",
            r#"{"name": "skipme", "result": "SKIP", "duration": 0.0193, "returncode": 77}"#,
            "\n",
            r#"{"name": "xfail", "result": "EXPECTEDFAIL", "duration": 0.0087, "returncode": 1}"#,
            "\n",
            r#"{"name": "slow", "result": "TIMEOUT", "duration": 30.0, "returncode": -15}"#,
            "\n"
        );
        let cases = parse_meson_testlog(log).unwrap();
        let got: Vec<(&str, TestStatus)> =
            cases.iter().map(|c| (c.name.as_str(), c.status)).collect();
        assert_eq!(
            got,
            [
                ("ok", TestStatus::Passed),
                ("bad", TestStatus::Failed),
                ("skipme", TestStatus::Skipped),
                ("xfail", TestStatus::Passed),
                ("slow", TestStatus::Failed),
            ]
        );
        assert!(parse_meson_testlog("{\"result\": \"OK\"}\n").is_err());
        assert!(parse_meson_testlog("").unwrap().is_empty());
    }

    /// Each test setting in each driver's spelling; Meson's names come from the regexes
    /// matched against its listing, its multiplier gives the longest-declared test exactly the
    /// timeout, and a selection of no test is `None` (never "no name: run them all").
    #[test]
    fn test_selection_spellings() {
        let s = |v: &[&str]| Some(v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let all = cfgmx_model::TestSettings {
            include: s(&["^a", "b$"]),
            exclude: s(&["slow"]),
            labels: s(&["unit", "fast"]),
            exclude_labels: s(&["big"]),
            timeout: Some(60),
            repeat_until_fail: Some(3),
            args: s(&["--verbose"]),
        };
        let ctest = test_selection(System::Cmake, &all, &[]).unwrap();
        assert_eq!(
            ctest.join(" "),
            "-R (^a)|(b$) -E slow -L ^(unit|fast)$ -LE ^(big)$ --timeout 60 --repeat until-fail:3 --verbose"
        );
        let t = |name: &str, timeout: f64| MesonTest {
            name: name.into(),
            timeout,
        };
        let tests = [
            t("ab", 30.0),
            t("a_slow", 120.0),
            t("xb", 0.0),
            t("c", 30.0),
        ];
        let meson = test_selection(System::Meson, &all, &tests).unwrap();
        assert_eq!(
            meson.join(" "),
            "ab xb --suite unit --suite fast --no-suite big --timeout-multiplier 2 --repeat 3 --verbose"
        );
        let none = cfgmx_model::TestSettings {
            include: s(&["^nothing$"]),
            ..Default::default()
        };
        assert_eq!(test_selection(System::Meson, &none, &tests), None);
        assert_eq!(
            test_selection(System::Meson, &Default::default(), &tests),
            Some(vec![])
        );
    }
}
