//! `cfgmx build`, `cfgmx report merge`, `cfgmx env HASH`, `cfgmx reproduce HASH`: the CLI side
//! of cfgmx-build. This file prints; the library only emits events.

use crate::cli::{BuildArgs, EnvArgs, Global, ReportArgs, ReportCommand, ReproduceArgs, SystemArg};
use crate::error::{CliError, Exit, Result};
use crate::load::{self, Session};
use crate::lockfile::{lock_job, update_lock};
use crate::output::{rel_to_cwd, Table, Term, Tone};
use crate::plan::{self, Jobs, Project};
use crate::probing;
use cfgmx_build::job::{Job, LOCK_FILE};
use cfgmx_build::report::{RunReport, Status, StepResult, StepStatus, VariantResult};
use cfgmx_build::runner::System;
use cfgmx_build::store::{OpenError, Store};
use cfgmx_build::Event;
use cfgmx_fs::write_atomic;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn system(s: Option<SystemArg>) -> Option<System> {
    s.map(|s| match s {
        SystemArg::Cmake => System::Cmake,
        SystemArg::Meson => System::Meson,
    })
}

fn write_out(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text.as_bytes())
        .map_err(|e| CliError::caused(format!("cannot write {}", path.display()), e))
}

/// The prefix that makes log paths (relative to the build root) work from the HTML file.
fn log_prefix(html: &Path, root: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let dir = html
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    // Relative wherever the two share more than `/` (a merge's `results/` beside the tasks'
    // `build/`: `../build/<variant>/`), so the report keeps working when the directory holding
    // both is copied or served; only unrelated trees get an absolute file:// link.
    let (d, r): (Vec<_>, Vec<_>) = (dir.components().collect(), root.components().collect());
    let common = d.iter().zip(&r).take_while(|(a, b)| a == b).count();
    if common <= 1 || !root.is_absolute() || !dir.is_absolute() {
        return format!("file://{}/", root.display());
    }
    let mut rel = PathBuf::new();
    for _ in common..d.len() {
        rel.push("..");
    }
    rel.extend(&r[common..]);
    if rel.as_os_str().is_empty() {
        String::new()
    } else {
        format!("{}/", rel.display())
    }
}

pub fn run_build(g: &Global, a: BuildArgs) -> Result<Exit> {
    let shard = a
        .shard
        .as_deref()
        .map(cfgmx_build::parse_shard)
        .transpose()
        .map_err(CliError::usage)?;
    if a.jobs == Some(0) {
        return Err(CliError::usage("-j takes a number of cores of at least 1"));
    }
    let project = project(&a)?;
    // Ctrl-C while probing ends the probe's children and exits 130, like one during the build.
    cfgmx_build::install_interrupt_handler();
    let cores = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let given = match a.jobs {
        Some(_) => format!("-j {cores} gives {cores} core(s)"),
        None => format!("this machine has {cores} core(s)"),
    };
    // A runtime point needing more threads than the cores is refused at its place in the
    // matrix, before the probe writes its cache or anything is built; and the matrix's
    // `[probe] modules = true` asks this build's probe for modules.
    let session = Session::load(g)?;
    let m = session.matrix(a.matrix.as_deref())?;
    m.runtime.check_cores(&m.source, cores, &given)?;
    let g = &g.with_matrix(&m);
    let mut profile = probing::machine_profile(&session, g, a.profile.as_deref(), Some(cores))?;
    // The build's cores are the machine as far as its variants go: an MPI variant's
    // MPIEXEC_MAX_NUMPROCS is these cores over its threads, so its ranks fit the budget.
    profile.cpus = cores;
    if a.mpi_ranks.is_some() {
        profile.max_ranks = a.mpi_ranks;
    }
    if cfgmx_build::interrupted() {
        eprintln!("interrupted");
        return Ok(Exit::Interrupted);
    }
    let prove = probing::default_options(&session, g, None)?;
    let planned = plan::jobs(&session, m, &profile, &prove, Some(project))?;
    let (jobs, unavailable) = select(&a, &planned, shard)?;
    check_threads(&jobs, planned.threads, cores, &given)?;
    let store = Store::open(&a.build_root, a.wait).map_err(|e| match e {
        // Another build holds the root: nothing was done, and --wait is the way.
        OpenError::Busy(_) => CliError::usage(e.to_string()),
        OpenError::Io(m) => CliError::runtime(m),
    })?;
    // Said after every usage error (a busy build root included), so an error is never buried
    // under notes.
    let err_term = Term::stderr(g);
    for u in &unavailable {
        let why = u.reason.as_deref().unwrap_or_default();
        let note = format!("note: {} cannot be built here: {why}", u.name);
        eprintln!("{}", err_term.wrap(&note, 6));
    }
    // The lock is for sharing hashes; failing to write it must not stop a build.
    if let Err(e) = update_lock(Path::new(LOCK_FILE), &planned.matrix, &planned.jobs) {
        eprintln!("warning: {}", e.chain());
    }
    let opts = options(&a, cores, &planned.matrix, shard);
    let mut out = schedule(jobs, &opts, &store, err_term, &a.build_root)?;
    out.report.variants.extend(unavailable);
    // Stable: a variant's runtime points stay in the matrix's order.
    out.report.variants.sort_by(|a, b| a.name.cmp(&b.name));
    finish(
        &out.report,
        g,
        a.junit.as_deref(),
        a.html.as_deref(),
        &a.build_root,
    )?;
    if out.interrupted {
        eprintln!("cfgmx build: interrupted; finished variants are recorded, the others will run next time");
        return Ok(Exit::Interrupted);
    }
    Ok(exit_code(&out.report, NoTests::from_flag(a.allow_no_tests)))
}

/// The scheduler's options from the command line.
fn options(
    a: &BuildArgs,
    cores: usize,
    matrix: &str,
    shard: Option<(usize, usize)>,
) -> cfgmx_build::Options {
    cfgmx_build::Options {
        source: a.source.clone(),
        system: system(a.system),
        cores,
        fail_fast: a.fail_fast,
        force: a.force,
        copy_source: a.copy_source,
        repair: a.repair,
        matrix: matrix.to_string(),
        shard,
        step_timeout: a.step_timeout.map(std::time::Duration::from_secs),
        // This binary answers the probe's BLAS queries (main.rs).
        blas_query_helper: std::env::current_exe()
            .ok()
            .map(|p| (p, cfgmx_probe::HELPER_ARG.to_string())),
    }
}

/// The project `--source` holds, with its build system: usage errors come before any
/// probing or writing (a directory without a build system is known from its listing).
fn project(a: &BuildArgs) -> Result<Project<'_>> {
    if !a.source.is_dir() {
        return Err(CliError::usage(format!(
            "--source {} is not a directory",
            a.source.display()
        )));
    }
    // A pyproject.toml with scikit-build-core or meson-python: wheels (unless --system).
    let python = a
        .system
        .is_none()
        .then(|| cfgmx_build::python::Backend::detect(&a.source))
        .flatten()
        .map(|p| p.backend);
    let sys = system(a.system)
        .or(python.map(|b| b.system()))
        .or_else(|| System::detect(&a.source));
    match sys {
        Some(system) => Ok(Project {
            system,
            dir: &a.source,
            python,
        }),
        None => Err(CliError::usage(format!(
            "--source {}: no CMakeLists.txt or meson.build there (give the project's top directory, or --system)",
            a.source.display()
        ))),
    }
}

/// The jobs `--only`, `--skip` and `--shard` choose, and the rows of the unavailable
/// variants they choose: those get a row in every report, chosen by the same rules as the
/// others, so a shard's report has each variant exactly once.
fn select(
    a: &BuildArgs,
    planned: &Jobs,
    shard: Option<(usize, usize)>,
) -> Result<(Vec<Job>, Vec<VariantResult>)> {
    let mut jobs = cfgmx_build::select(planned.jobs.clone(), &a.only, &a.skip);
    let mut unavailable: Vec<VariantResult> = planned
        .unavailable
        .iter()
        .filter(|u| cfgmx_build::selected(&u.name, &[&u.hash], &a.only, &a.skip))
        .cloned()
        .collect();
    if let Some((k, n)) = shard {
        jobs = cfgmx_build::shard(jobs, k, n);
        unavailable = cfgmx_build::shard_rows(unavailable, k, n);
    }
    if jobs.is_empty() && unavailable.is_empty() && (!a.only.is_empty() || !a.skip.is_empty()) {
        return Err(CliError::usage(
            "--only/--skip leave no variant to build; `cfgmx expand` lists the names",
        ));
    }
    Ok((jobs, unavailable))
}

/// A threaded variant's tests run with the matrix's thread count and wait for that many
/// cores; with fewer cores they would wait forever or run with fewer threads than the user
/// ships with, and a pass would prove nothing about the declared count.
fn check_threads(jobs: &[Job], threads: u32, cores: usize, given: &str) -> Result<()> {
    // A runtime point with a thread count of its own does not test with the matrix's.
    let matrix_threads =
        |j: &Job| j.runtime.is_empty() || j.runtime.iter().any(|p| p.threads().is_none());
    if threads as usize > cores && jobs.iter().any(|j| j.threaded && matrix_threads(j)) {
        return Err(CliError::usage(format!(
            "threaded variants test with {threads} threads (the matrix's `threads`, 2 unless set) but {given}: raise -j to at least {threads}, or set `threads = {cores}` in the matrix to test with fewer threads"
        )));
    }
    Ok(())
}

/// Runs the scheduler with a live display on a terminal, plain lines in CI logs and pipes.
fn schedule(
    jobs: Vec<Job>,
    opts: &cfgmx_build::Options,
    store: &Store,
    err_term: Term,
    root: &Path,
) -> Result<cfgmx_build::Outcome> {
    // A row per variant and runtime point: each finishes, or is cached, on its own.
    let total: usize = jobs.iter().map(|j| j.runtime.len().max(1)).sum();
    let done = AtomicUsize::new(0);
    let points = if jobs.iter().any(|j| !j.runtime.is_empty()) {
        format!(" ({total} test runs at their runtime points)")
    } else {
        String::new()
    };
    eprintln!(
        "cfgmx build: {} variant(s) of `{}`{points} on {} core(s), build root {}",
        jobs.len(),
        opts.matrix,
        opts.cores,
        root.display()
    );
    let live = (std::io::stderr().is_terminal() && std::env::var_os("CI").is_none())
        .then(|| Live::new(total, err_term, root));
    let on_event = |e: &Event| match &live {
        Some(l) => l.event(e),
        None => progress(e, total, &done, &err_term, root),
    };
    cfgmx_build::run(jobs, opts, store, &on_event).map_err(|e| match e {
        cfgmx_build::RunError::Usage(m) => CliError::usage(m),
        cfgmx_build::RunError::Io(m) => CliError::runtime(m),
    })
}

/// What a variant that ran no test means for the exit code (`--allow-no-tests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoTests {
    /// Nothing proved it works: exit 1.
    Fail,
    /// Accepted (its status stays `no tests`).
    Allow,
}

impl NoTests {
    fn from_flag(allow: bool) -> NoTests {
        if allow {
            NoTests::Allow
        } else {
            NoTests::Fail
        }
    }
}

/// 1 when a variant failed, or ran no test and the user did not allow that (said on stderr).
fn exit_code(r: &RunReport, no_tests: NoTests) -> Exit {
    let allow_no_tests = no_tests == NoTests::Allow;
    let none = r.no_tests();
    if none > 0 && !allow_no_tests {
        eprintln!("cfgmx build: {none} variant(s) ran no test, so nothing proved they work: exit 1 (--allow-no-tests accepts that)");
    }
    // A variant with no result at all (a merge's `missing`) proved nothing either.
    let missing = r.count(cfgmx_build::report::Status::Missing);
    if missing > 0 {
        eprintln!("cfgmx: {missing} variant(s) left no result: exit 1");
    }
    if r.failed() > 0 || missing > 0 || (none > 0 && !allow_no_tests) {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// What the terminal shows under a failed variant, as cargo and nextest do: the failing step
/// and its key line (what cfgmx-build picked from the log: the CMake error with its text, the
/// first compiler error, the failing test's words, "timed out after N s"), or how the step
/// ended when there is none; the failing tests; the log's path from where the user stands.
fn failure_lines(r: &VariantResult, root: &Path) -> Vec<String> {
    let Some(s) = r.steps.iter().find(|s| s.status == StepStatus::Failed) else {
        // Failed before any step ran (a full disk writing its config): its reason, else the
        // warnings that say what went wrong, are all there is.
        return match &r.reason {
            Some(why) => vec![why.clone()],
            None => r.warnings.clone(),
        };
    };
    let msg: Vec<&str> = s
        .message
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // The runner's verdict line is "`COMMAND` exited with status 1" (cfgmx-exec's Outcome):
    // said without the command line, which the log has.
    let verdict = msg
        .iter()
        .position(|l| l.starts_with('`') && l.contains("` "));
    let how = verdict.map(|i| msg[i].rsplit_once("` ").map_or(msg[i], |(_, how)| how));
    let timed_out = s.timed_out || how.is_some_and(|h| h.starts_with("timed out after "));
    // The key line: the record's reason when it is more than the verdict; for a record
    // written before key lines, the first log line naming an error (a timeout's log tail is
    // only what ran last, not why; the log's `$ command` header is no key line either).
    let key = r
        .reason
        .as_deref()
        .filter(|k| !k.starts_with('`'))
        .map(str::to_string)
        .or_else(|| {
            msg.iter()
                .enumerate()
                .filter(|(i, l)| Some(*i) != verdict && !l.starts_with("$ "))
                .map(|(_, l)| *l)
                .find(|l| !timed_out && l.to_ascii_lowercase().contains("error"))
                .map(str::to_string)
        });
    let mut out = vec![match (&key, how) {
        (Some(k), _) => format!("{}: {k}", s.step),
        (None, Some(how)) => format!("{} {how}", s.step),
        (None, None) => format!("{} failed", s.step),
    }];
    if s.step == "test" {
        let failing: Vec<&str> = r
            .tests
            .iter()
            .filter(|t| t.status == cfgmx_build::report::TestStatus::Failed)
            .map(|t| t.name.as_str())
            .collect();
        if !failing.is_empty() {
            out.push(format!("failing tests: {}", failing.join(", ")));
        }
    }
    out.push(format!("log: {}", log_path(root, s)));
    out
}

/// A step's log from the current directory (the record keeps it relative to the build root).
fn log_path(root: &Path, s: &StepResult) -> String {
    rel_to_cwd(&root.join(&s.log))
}

/// Lines indented under a variant's own line, each fitted to the width.
fn indented(term: &Term, lines: &[String]) -> String {
    term.block(&lines.join("\n"), 10)
}

/// The terminal display: an overall bar whose timer ticks every second and one spinner line
/// per running variant; finished variants print a line (and a failure its key lines) above
/// them. Dropped, it clears every line it drew, so nothing stale stays after Ctrl-C.
struct Live {
    /// The echo of `^C` is off while the display is up (see `QuietEcho`).
    _echo: crate::output::QuietEcho,
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    running: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    term: Term,
    root: PathBuf,
}

impl Live {
    fn new(total: usize, term: Term, root: &Path) -> Live {
        let multi = indicatif::MultiProgress::new();
        let overall = multi.add(indicatif::ProgressBar::new(total as u64));
        if let Ok(st) = indicatif::ProgressStyle::with_template(
            "{prefix:>9} [{bar:30}] {pos}/{len} variants, {elapsed}",
        ) {
            overall.set_style(st.progress_chars("=> "));
        }
        overall.set_prefix("building");
        // Redrawn every second even when no variant finishes: the time is the time.
        overall.enable_steady_tick(std::time::Duration::from_secs(1));
        Live {
            _echo: crate::output::QuietEcho::start(),
            multi,
            overall,
            running: Default::default(),
            term,
            root: root.to_path_buf(),
        }
    }

    fn event(&self, e: &Event) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let t = &self.term;
        match e {
            Event::Queued { .. } => {}
            Event::Started { name, .. } => {
                let pb = self
                    .multi
                    .insert_before(&self.overall, indicatif::ProgressBar::new_spinner());
                if let Ok(st) = indicatif::ProgressStyle::with_template("  {spinner} {msg}") {
                    pb.set_style(st);
                }
                pb.set_message(format!("{name}: configure"));
                pb.enable_steady_tick(std::time::Duration::from_millis(120));
                running.insert(name.clone(), pb);
            }
            Event::StepFinished { name, step } => {
                if let Some(pb) = running.get(name) {
                    let next = match step.step.as_str() {
                        "configure" => "build",
                        "build" => "test",
                        _ => "finishing",
                    };
                    pb.set_message(format!("{name}: {next}"));
                }
            }
            Event::Finished(r) => {
                if let Some(pb) = running.remove(&r.name) {
                    pb.finish_and_clear();
                    self.multi.remove(&pb);
                }
                let line = match r.status {
                    Status::Failed | Status::TimedOut => format!(
                        "  {}  {}\n{}",
                        t.paint(Tone::Bad, cfgmx_build::report::status_label(r.status)),
                        r.row_name(),
                        indented(t, &failure_lines(r, &self.root))
                    ),
                    Status::NoTests => format!(
                        "  {} {} ({:.1}s)",
                        t.paint(Tone::Warn, "no tests"),
                        r.row_name(),
                        r.duration_s
                    ),
                    _ => format!(
                        "  {}  {} ({:.1}s)",
                        t.paint(Tone::Good, "passed"),
                        r.row_name(),
                        r.duration_s
                    ),
                };
                let _ = self.multi.println(line);
                self.overall.inc(1);
            }
            Event::Cached { name, reason, .. } => {
                let _ = self.multi.println(format!(
                    "  {}  {name}: {reason}",
                    t.paint(Tone::Good, "cached")
                ));
                self.overall.inc(1);
            }
            Event::Cancelled { name, .. } => {
                if let Some(pb) = running.remove(name) {
                    pb.finish_and_clear();
                    self.multi.remove(&pb);
                }
                self.overall.inc(1);
            }
            Event::Warning { name, message } => {
                let _ = self.multi.println(t.wrap(
                    &format!("{}: {name}: {message}", t.paint(Tone::Warn, "warning")),
                    2,
                ));
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let running = self.running.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, pb) in running.drain() {
            pb.finish_and_clear();
            self.multi.remove(&pb);
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// Plain progress lines on stderr (one per variant event), readable in CI logs.
fn progress(e: &Event, total: usize, done: &AtomicUsize, t: &Term, root: &Path) {
    let line = match e {
        Event::Queued { .. } | Event::StepFinished { .. } => return,
        Event::Started { name, hash } => {
            format!("  start   {name} ({})", cfgmx_model::hash::short_hash(hash))
        }
        Event::Finished(r) => {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            let steps: Vec<String> = r
                .steps
                .iter()
                .filter(|s| s.status != StepStatus::NotRun)
                .map(|s| {
                    format!(
                        "{} {}{:.1}s",
                        s.step,
                        match s.status {
                            StepStatus::Failed => "FAILED ",
                            StepStatus::NoTests => "no-tests ",
                            _ => "",
                        },
                        s.duration_s
                    )
                })
                .collect();
            let verdict = match r.status {
                Status::Failed => t.paint(Tone::Bad, "FAILED"),
                Status::TimedOut => t.paint(Tone::Bad, "TIMED OUT"),
                Status::NoTests => t.paint(Tone::Warn, "no-tests"),
                _ => t.paint(Tone::Good, "passed"),
            };
            // A variant that failed before any step ran (a full disk writing its config) has
            // only its reason to show.
            let what = match (&r.reason, steps.is_empty()) {
                (Some(why), true) => why.clone(),
                _ => steps.join(", "),
            };
            let mut l = format!("[{n}/{total}] {verdict} {} ({what})", r.row_name());
            if let Some(t) = r.threads.filter(|t| *t > 1) {
                l.push_str(&format!(" with {t} threads"));
            }
            let under = failure_lines(r, root);
            // a reason already in the parentheses is not said twice
            let said = steps.is_empty() && r.reason.is_some();
            if r.status.is_failure() && !said && !under.is_empty() {
                // under it: the step and its key line, the failing tests, the log
                l.push('\n');
                l.push_str(&indented(t, &under));
            }
            l
        }
        Event::Cached { name, reason, .. } => {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            format!(
                "[{n}/{total}] {} {name}: {reason}",
                t.paint(Tone::Good, "passed (cached)")
            )
        }
        Event::Cancelled { name, .. } => {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            format!("[{n}/{total}] cancelled {name}")
        }
        Event::Warning { name, message } => format!("warning: {name}: {message}"),
    };
    eprintln!("{line}");
}

fn finish(
    r: &RunReport,
    g: &Global,
    junit: Option<&Path>,
    html: Option<&Path>,
    root: &Path,
) -> Result<()> {
    if let Some(p) = junit {
        write_out(p, &r.junit())?;
    }
    if let Some(p) = html {
        // each variant's logs under its own build root (shards of a merge may differ)
        let prefix = |v: &cfgmx_build::report::VariantResult| {
            log_prefix(p, v.build_root.as_deref().map_or(root, Path::new))
        };
        let page = r.html(&prefix).map_err(CliError::runtime)?;
        write_out(p, &page)?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if g.json {
        let text = serde_json::to_string_pretty(r).map_err(|e| CliError::runtime(e.to_string()))?;
        writeln!(out, "{text}").ok();
        return Ok(());
    }
    let term = Term::stdout(g);
    let table = |fold: bool| {
        let head: &[&str] = if fold {
            &[
                "VARIANT", "CONCRETE", "STATUS", "STEPS", "TESTS", "THREADS", "TIME",
            ]
        } else {
            &[
                "VARIANT",
                "CONCRETE",
                "STATUS",
                "CONFIGURE",
                "BUILD",
                "TEST",
                "TESTS",
                "THREADS",
                "TIME",
            ]
        };
        let mut t = Table::new(head).prefix(1, 7);
        for mut row in r.table_rows() {
            // the status and the three step cells, coloured by what they say
            for c in row.iter_mut().take(6).skip(2) {
                *c = term.status(c);
            }
            if fold {
                let steps = row.drain(3..6).collect::<Vec<_>>().join(" ");
                row.insert(3, steps);
            }
            t.row(row);
        }
        t
    };
    // Too wide for the terminal: configure, build and test share one STEPS column.
    let mut t = table(false);
    if term.width.is_some_and(|w| t.natural_width() > w) {
        t = table(true);
    }
    write!(out, "{}", t.render(&term)).ok();
    // Why each variant that did not pass did not, under the table as cargo and nextest do.
    let why = r.why_lines();
    if !why.is_empty() {
        writeln!(out).ok();
        for l in why {
            writeln!(out, "{}", term.wrap(&l, 2)).ok();
        }
    }
    let summary = format!(
        "{} in {:.1} s on {} core(s)",
        r.summary(),
        r.wall_s,
        r.cores
    );
    writeln!(out, "\n{}", term.wrap(&summary, 0)).ok();
    Ok(())
}

pub fn run_report(g: &Global, a: ReportArgs) -> Result<Exit> {
    let ReportCommand::Merge(m) = a.command;
    let parts = m
        .files
        .iter()
        .map(|f| load::read_run_report(f))
        .collect::<Result<Vec<_>>>()?;
    let merged = RunReport::merge(parts).map_err(CliError::usage)?;
    finish(
        &merged,
        g,
        m.junit.as_deref(),
        m.html.as_deref(),
        Path::new("."),
    )?;
    Ok(exit_code(&merged, NoTests::from_flag(m.allow_no_tests)))
}

pub fn run_env(g: &Global, a: EnvArgs) -> Result<Exit> {
    let j = &lock_job(&a.lock, &a.variant)?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(j).unwrap_or_default());
    } else {
        print!("{}", crate::output::env_script(j)?);
    }
    Ok(Exit::Ok)
}

pub fn run_reproduce(g: &Global, a: ReproduceArgs) -> Result<Exit> {
    let j = &lock_job(&a.lock, &a.variant)?;
    let (step, bdir) = cfgmx_build::reproduce(j, &a.source, &a.build_root, system(a.system))
        .map_err(|e| CliError::usage(e.to_string()))?;
    if g.json {
        println!(
            "{}",
            serde_json::json!({"variant": j.name, "hash": j.hash, "build_dir": bdir, "configure": step, "runtime": j.runtime})
        );
    } else {
        println!("variant   {} ({})", j.name, j.hash);
        println!("build dir {}", bdir.display());
        println!("configure {}", step.command);
        println!("log       {}", a.build_root.join(&step.log).display());
    }
    if step.status == StepStatus::Failed {
        eprintln!(
            "configure failed: {}",
            step.message.as_deref().unwrap_or("see the log")
        );
        return Ok(Exit::Failed);
    }
    if !g.json {
        println!(
            "next: cmake --build {0} && ctest --test-dir {0}   (or: eval \"$(cfgmx env {1})\")",
            bdir.display(),
            j.short()
        );
        // The test run of each runtime point, as `cfgmx build` runs it: its variables quoted
        // for the shell the line is pasted into (a value it cannot hold is said, not mangled).
        for p in &j.runtime {
            let threads = cfgmx_build::runner::point_threads(j, Some(p));
            let words: std::result::Result<Vec<String>, _> = j
                .test_env(threads, Some(p))
                .into_iter()
                .map(|(k, v)| cfgmx_render::quote::sh(&v).map(|q| format!("{k}={q}")))
                .collect();
            let bdir = cfgmx_render::quote::sh(&bdir.display().to_string());
            match (words, bdir) {
                (Ok(w), Ok(b)) => println!(
                    "runtime [{}]: {} ctest --test-dir {b}",
                    p.label(),
                    w.join(" ")
                ),
                (Err(e), _) | (_, Err(e)) => {
                    println!(
                        "runtime [{}]: (not printable for a shell: {:?} {})",
                        p.label(),
                        e.value,
                        e.reason
                    )
                }
            }
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(step: &str, message: &str, reason: Option<&str>, timed_out: bool) -> VariantResult {
        let mut r = VariantResult::not_built("v", "h", ["gcc", "s", "d"], Status::Failed, "");
        r.reason = reason.map(str::to_string);
        r.steps.push(StepResult {
            step: step.parse().unwrap(),
            status: StepStatus::Failed,
            command: "x".into(),
            exit_code: Some(1),
            duration_s: 1.0,
            log: format!("abc/logs/{step}.log"),
            cores: 1,
            message: Some(message.into()),
            timed_out,
        });
        r
    }

    /// What is printed under a failed variant, from the step's message as the runner writes
    /// it (the key line, the verdict line, then the log lines that say why), and from records
    /// written before key lines (the verdict first).
    #[test]
    fn key_lines_under_a_failure() {
        let cases: [(VariantResult, &[&str]); 6] = [
            (
                failed(
                    "build",
                    "x.c:6:2: error: #error broken\n`cmake --build b --parallel 1` exited with status 1\n$ cmake --build b\nx.c:6:2: error: #error broken",
                    Some("x.c:6:2: error: #error broken"),
                    false,
                ),
                &["build: x.c:6:2: error: #error broken", "log: root/abc/logs/build.log"],
            ),
            (
                failed(
                    "test",
                    "timed out after 2 s (--step-timeout)\n`ctest --test-dir b` timed out after 2.0 s\n1/2 Test #1: quick ... Passed",
                    Some("timed out after 2 s (--step-timeout)"),
                    true,
                ),
                &["test: timed out after 2 s (--step-timeout)", "log: root/abc/logs/test.log"],
            ),
            // an older record: the verdict first, no key line of its own
            (
                failed(
                    "build",
                    "`cmake --build b --parallel 1` exited with status 1\n$ cmake --build b\nx.c:6:2: error: #error broken\nninja: build stopped: subcommand failed.",
                    Some("`cmake --build b --parallel 1` exited with status 1"),
                    false,
                ),
                &["build: x.c:6:2: error: #error broken", "log: root/abc/logs/build.log"],
            ),
            (
                failed(
                    "test",
                    "`ctest --test-dir b` timed out after 2.0 s\n$ ctest --test-dir b\n    Start 2: slow\n1/2 Test #1: quick ... Passed",
                    None,
                    false,
                ),
                &["test timed out after 2.0 s", "log: root/abc/logs/test.log"],
            ),
            (
                failed("build", "`make` exited with status 2\nsomething odd", None, false),
                &["build exited with status 2", "log: root/abc/logs/build.log"],
            ),
            (
                {
                    let mut r =
                        VariantResult::not_built("v", "h", ["g", "s", "d"], Status::Failed, "");
                    r.reason = None;
                    r.warnings = vec![
                        "cannot write the build configuration: No space left on device".into(),
                    ];
                    r
                },
                &["cannot write the build configuration: No space left on device"],
            ),
        ];
        for (r, want) in cases {
            assert_eq!(failure_lines(&r, Path::new("root")), want, "{r:?}");
        }
    }
}
