//! Builds and tests every variant of a user's CMake or Meson project in parallel under one core
//! budget.
//!
//! It owns the scheduler ([`run`]: worker threads, a jobserver-backed [`budget::Budget`] that
//! nested `make` shares and that caps ninja's `-j` and the tests' thread counts), the
//! [`runner`] (config file, configure, build, test, one log per step; a variant with
//! `[runtime]` points is built once and tested once per point), the [`store::Store`]
//! (build root lock, one atomic record per concrete hash and runtime point, source
//! fingerprint for skipping),
//! the reports ([`report::RunReport`]: JSON, JUnit, HTML grid) and the lock file
//! ([`job::LockFile`], `cfgmx.lock`). Only the scheduler touches signals: on SIGINT it ends
//! every child process group and records nothing half-done.
//!
//! Never: prints. It emits typed [`Event`]s (queued, started, step finished, finished, cached,
//! cancelled) that the CLI's reporters consume.

pub mod budget;
pub mod job;
pub mod keyline;
pub mod project;
pub mod python;
pub mod report;
pub mod runner;
pub mod store;
mod testcase;

use budget::Budget;
use cfgmx_model::Point;
use job::Job;
use report::{RunReport, Status, Step, StepResult, StepStatus, VariantResult};
use runner::{StepContext, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use store::Store;

/// What happens during a run, in order per variant.
#[derive(Debug, Clone)]
pub enum Event {
    Queued {
        name: String,
        hash: String,
    },
    Started {
        name: String,
        hash: String,
    },
    StepFinished {
        name: String,
        step: StepResult,
    },
    Finished(Box<VariantResult>),
    /// Not rebuilt: it passed before with the same source and thread count.
    Cached {
        name: String,
        hash: String,
        reason: String,
    },
    Cancelled {
        name: String,
        hash: String,
    },
    Warning {
        name: String,
        message: String,
    },
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: PathBuf,
    /// None: detect from the source tree.
    pub system: Option<System>,
    pub cores: usize,
    pub fail_fast: bool,
    pub force: bool,
    pub copy_source: bool,
    pub matrix: String,
    pub shard: Option<(usize, usize)>,
    pub step_timeout: Option<Duration>,
    /// The program and first argument that answer the probe's BLAS queries
    /// (`PROGRAM ARG LIB i:SYMBOL...`: cfgmx itself, as the probe runs it): a Python project's
    /// installed extensions are checked by asking the BLAS they load.
    pub blas_query_helper: Option<(PathBuf, String)>,
    /// Python projects: each wheel goes through `auditwheel repair`.
    pub repair: bool,
}

/// Why a run could not start.
#[derive(Debug)]
pub enum RunError {
    Usage(String),
    Io(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(m) | RunError::Io(m) => f.write_str(m),
        }
    }
}

/// The end of a run.
pub struct Outcome {
    pub report: RunReport,
    pub interrupted: bool,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: std::sync::Once = std::sync::Once::new();

/// Installs the SIGINT/SIGTERM handler once: it flags the run as interrupted and ends every
/// child process group (compilers included) so nothing keeps running after cfgmx returns.
/// `run` installs it; a command that does work before `run` (probing) installs it first.
pub fn install_interrupt_handler() {
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTED.store(true, Ordering::SeqCst);
            cfgmx_exec::kill_all(Duration::from_secs(2));
        });
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Parses `K/N` (1-based K).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard takes K/N with 1 <= K <= N (like 1/4), not `{s}`");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Keeps the jobs of shard K of N: sorted by hash so every runner, whatever order its matrix
/// lists variants in, takes the same ones, and each job lands in exactly one shard.
pub fn shard(mut jobs: Vec<Job>, k: usize, n: usize) -> Vec<Job> {
    jobs.sort_by(|a, b| a.hash.cmp(&b.hash));
    jobs.into_iter()
        .enumerate()
        .filter(|(i, _)| i % n == k - 1)
        .map(|(_, j)| j)
        .collect()
}

/// Keeps jobs whose name contains `pat` (or whose concrete or spec hash starts with it) for
/// `only`, drops them for `skip`. `*` in a pattern matches any run of characters. The spec
/// hash is what generated CI and Slurm scripts pass: it names the same variant on every
/// machine, whatever compilers each one found.
pub fn select(jobs: Vec<Job>, only: &[String], skip: &[String]) -> Vec<Job> {
    jobs.into_iter()
        .filter(|j| selected(&j.name, &[&j.hash, &j.spec_hash], only, skip))
        .collect()
}

/// Whether a variant with this name and these hashes passes `--only`/`--skip`, as [`select`]
/// decides for jobs (also for the rows of variants that cannot be built here).
pub fn selected(name: &str, hashes: &[&str], only: &[String], skip: &[String]) -> bool {
    let hit = |p: &String| {
        let p_hex = p.to_ascii_lowercase();
        glob_contains(name, p) || (p.len() >= 4 && hashes.iter().any(|h| h.starts_with(&p_hex)))
    };
    (only.is_empty() || only.iter().any(hit)) && !skip.iter().any(hit)
}

/// Shard K of N of rows that are not jobs (variants that cannot be built here), by the same
/// rule as [`shard`]: sorted by hash, every row in exactly one shard.
pub fn shard_rows(mut rows: Vec<VariantResult>, k: usize, n: usize) -> Vec<VariantResult> {
    rows.sort_by(|a, b| a.hash.cmp(&b.hash));
    rows.into_iter()
        .enumerate()
        .filter(|(i, _)| i % n == k - 1)
        .map(|(_, r)| r)
        .collect()
}

fn glob_contains(name: &str, pat: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return name.contains(pat);
    }
    let mut rest = name;
    for p in parts {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// The build tools as the configure stamp records them: one `name: version` line each.
fn tools_stamp(tools: &indexmap::IndexMap<String, String>) -> String {
    tools.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

/// The build tools a step's result depends on, by name (`ctest`, `cmake` or `meson`, `ninja`,
/// in that order), each with its `--version` line; asked at once, since each is a process
/// start the first configure waits for.
fn build_tools(system: System) -> indexmap::IndexMap<String, String> {
    let main_tool = match system {
        System::Cmake => "cmake",
        System::Meson => "meson",
    };
    let (main, ninja, ctest) = std::thread::scope(|s| {
        let main = s.spawn(|| tool_version(main_tool));
        let ctest = s.spawn(|| match system {
            System::Cmake => tool_version("ctest"),
            System::Meson => None,
        });
        let ninja = tool_version("ninja");
        (
            main.join().ok().flatten(),
            ninja,
            ctest.join().ok().flatten(),
        )
    });
    [("ctest", ctest), (main_tool, main), ("ninja", ninja)]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect()
}

fn tool_version(prog: &str) -> Option<String> {
    let o = cfgmx_exec::Cmd::new(prog)
        .arg("--version")
        .timeout(Duration::from_secs(10))
        .output();
    if !o.success() {
        return None;
    }
    o.stdout.lines().next().map(|l| l.trim().to_string())
}

/// Builds and tests `jobs` under `store`, calling `on_event` from the worker threads.
pub fn run(
    jobs: Vec<Job>,
    opts: &Options,
    store: &Store,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<Outcome, RunError> {
    let start = Instant::now();
    let sched = Scheduler::new(opts, store, on_event)?;
    // An interrupt during the work before the run (the probe) counts: no reset here.
    install_interrupt_handler();

    for j in &jobs {
        on_event(&Event::Queued {
            name: j.name.clone(),
            hash: j.hash.clone(),
        });
    }
    let queue = Mutex::new(sched.queue(&jobs));
    let workers = opts.cores.max(1).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some(job) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    return;
                };
                sched.work(job);
            });
        }
    });
    let cores = sched.budget.cores;
    let variants = sched.finish(&jobs);
    Ok(Outcome {
        report: RunReport {
            schema: 1,
            matrix: opts.matrix.clone(),
            shard: opts.shard.map(|(k, n)| format!("{k}/{n}")),
            cores,
            wall_s: start.elapsed().as_secs_f64(),
            variants,
        },
        interrupted: interrupted(),
    })
}

/// One run's settings, what it found out before the first job (the project, the source
/// fingerprint, the build tools) and what its worker threads share.
struct Scheduler<'a> {
    opts: &'a Options,
    store: &'a Store,
    on_event: &'a (dyn Fn(&Event) + Sync),
    source: PathBuf,
    python: Option<python::Project>,
    system: System,
    /// The build root, canonical.
    root: PathBuf,
    /// What fingerprinting and copying the source leave out: the build root.
    exclude: Vec<PathBuf>,
    fp: String,
    tree: SourceTree<'a>,
    budget: Budget,
    tools: indexmap::IndexMap<String, String>,
    ninja: bool,
    ctest_junit: bool,
    results: Mutex<Vec<VariantResult>>,
    /// `--fail-fast`: a variant failed.
    stop: AtomicBool,
}

impl<'a> Scheduler<'a> {
    fn new(
        opts: &'a Options,
        store: &'a Store,
        on_event: &'a (dyn Fn(&Event) + Sync),
    ) -> Result<Self, RunError> {
        let source = opts
            .source
            .canonicalize()
            .map_err(|e| RunError::Usage(format!("--source {}: {e}", opts.source.display())))?;
        // A pyproject.toml naming scikit-build-core or meson-python makes a Python project (built
        // into wheels), unless --system asks for the plain CMake or Meson build.
        let python = match opts.system {
            Some(_) => None,
            None => python::Backend::detect(&source).map(|p| python::Project {
                repair: opts.repair,
                ..p
            }),
        };
        if opts.repair && python.is_none() {
            return Err(RunError::Usage(format!(
                "--repair repairs Python wheels, and {} has no pyproject.toml with scikit-build-core or meson-python",
                source.display()
            )));
        }
        let system = match (opts.system, &python) {
            (Some(s), _) => s,
            (None, Some(p)) => p.backend.system(),
            (None, None) => System::detect(&source).ok_or_else(|| {
                RunError::Usage(format!(
                    "{} has neither CMakeLists.txt nor meson.build; point --source at the project's top directory or pass --system",
                    source.display()
                ))
            })?,
        };
        let root = store
            .root
            .canonicalize()
            .unwrap_or_else(|_| store.root.clone());
        let exclude = vec![root.clone()];
        let unreadable = |e: std::io::Error| {
            RunError::Io(format!(
                "cannot read the source tree {}: {e}",
                source.display()
            ))
        };
        let fp = store::fingerprint(&source, &exclude).map_err(unreadable)?;
        let tree = SourceTree {
            before: store::tree_entries(&source, &exclude).map_err(unreadable)?,
            verdict: Mutex::new(store.source_verdict(&source)),
            store,
            warned: AtomicBool::new(false),
            in_place: AtomicBool::new(false),
        };
        let budget = Budget::new(opts.cores)
            .map_err(|e| RunError::Io(format!("cannot create the jobserver: {e}")))?;
        let tools = build_tools(system);
        // ctest's own version decides how its results are read: a ctest that cannot write JUnit
        // is read from its summary text.
        let ctest_junit = tools
            .get("ctest")
            .and_then(|v| runner::ctest_version(v))
            .is_some_and(runner::ctest_has_junit);
        let ninja = tools.contains_key("ninja");
        Ok(Scheduler {
            opts,
            store,
            on_event,
            source,
            python,
            system,
            root,
            exclude,
            fp,
            tree,
            budget,
            tools,
            ninja,
            ctest_junit,
            results: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        })
    }

    fn backend(&self) -> Option<python::Backend> {
        self.python.as_ref().map(|p| p.backend)
    }

    fn push(&self, r: VariantResult) {
        if let Ok(mut v) = self.results.lock() {
            v.push(r);
        }
    }

    /// A record that does not parse is said once and dropped: the variant is built again.
    fn load(&self, job: &Job, point: Option<&Point>) -> Option<VariantResult> {
        match self
            .store
            .load(&point_key(job, self.system, self.backend(), point))
        {
            Ok(r) => r,
            Err(why) => {
                (self.on_event)(&Event::Warning {
                    name: job.name.clone(),
                    message: format!("{why}; building it again"),
                });
                None
            }
        }
    }

    /// Longest first (by the store's last durations; never-built variants count as longest):
    /// a long variant started last would leave the other cores idle at the end. Reports are
    /// sorted by name, so the order shows nowhere else.
    fn queue<'j>(&self, jobs: &'j [Job]) -> std::collections::VecDeque<&'j Job> {
        let estimates: Vec<Option<f64>> = jobs
            .iter()
            .map(|j| {
                self.load(j, points(j).first().and_then(Option::as_ref))
                    .filter(|r| !r.steps.is_empty())
                    .map(|r| r.steps.iter().map(|s| s.duration_s).sum())
            })
            .collect();
        longest_first(&estimates)
            .into_iter()
            .map(|i| &jobs[i])
            .collect()
    }

    /// One job, taken from the queue by a worker: cancelled, cached, or built and recorded.
    fn work(&self, job: &Job) {
        let all_points = points(job);
        if interrupted() || self.stop.load(Ordering::SeqCst) {
            self.cancel(job, &all_points);
            return;
        }
        let (resume, todo) = self.plan(job, &all_points);
        if todo.is_empty() {
            return;
        }
        match self.run_one(job, &todo, resume.as_ref()) {
            Some(rows) => self.record(job, rows),
            None => {
                for p in &todo {
                    (self.on_event)(&Event::Cancelled {
                        name: row_name(job, p.as_ref()),
                        hash: job.hash.clone(),
                    });
                    self.push(not_built_at(
                        job,
                        p.as_ref(),
                        Status::Interrupted,
                        INTERRUPTED_WHY,
                    ));
                }
            }
        }
    }

    /// A job the run stops before: a row per point, saying why.
    fn cancel(&self, job: &Job, all_points: &[Option<Point>]) {
        let reason = if interrupted() {
            "the run was interrupted before it started"
        } else {
            "--fail-fast: an earlier variant failed"
        };
        // No earlier record's steps: they would show an old "ok ok ok" for a
        // variant this run never built.
        for p in all_points {
            (self.on_event)(&Event::Cancelled {
                name: row_name(job, p.as_ref()),
                hash: job.hash.clone(),
            });
            self.push(not_built_at(job, p.as_ref(), Status::NotStarted, reason));
        }
    }

    /// A record of an interrupted run of this very variant, sources and tools: the steps it
    /// finished are not done again. Each runtime point has its record; the points that passed
    /// unchanged are not tested again (their rows are pushed as cached here), and a variant
    /// with no point left is not built again. Returns the record to resume from and the points
    /// to run.
    fn plan(
        &self,
        job: &Job,
        all_points: &[Option<Point>],
    ) -> (Option<VariantResult>, Vec<Option<Point>>) {
        let mut resume = None;
        let mut todo: Vec<Option<Point>> = Vec::new();
        for p in all_points {
            let prev = if self.opts.force {
                None
            } else {
                self.load(job, p.as_ref())
            };
            let Some(prev) = prev else {
                todo.push(p.clone());
                continue;
            };
            // Only with the build tools it ran with is a record current (another
            // CMake first on PATH configures, builds and tests again).
            let same_tools = self.tools.iter().all(|(k, v)| prev.tools.get(k) == Some(v));
            let current = prev.source_fingerprint == self.fp && same_tools;
            if prev.status == Status::Interrupted && current && resume.is_none() {
                resume = Some(prev.clone());
            }
            // A pass proves only what it ran: with another thread count (or a
            // record from before counts were kept) the tests run again.
            let same_threads = prev.threads == Some(runner::point_threads(job, p.as_ref()));
            if prev.status == Status::Passed && current && same_threads && prev.runtime == *p {
                let reason = "unchanged since it passed".to_string();
                (self.on_event)(&Event::Cached {
                    name: row_name(job, p.as_ref()),
                    hash: job.hash.clone(),
                    reason: reason.clone(),
                });
                let mut prev = prev;
                prev.status = Status::Cached;
                prev.reason = Some(reason);
                self.push(prev);
            } else {
                todo.push(p.clone());
            }
        }
        (resume, todo)
    }

    /// Saves and reports the rows of a job this run built.
    fn record(&self, job: &Job, rows: Vec<VariantResult>) {
        let was_interrupted = interrupted() || rows.iter().any(|r| r.status == Status::Interrupted);
        for mut r in rows {
            r.explain_failure();
            let key = point_key(job, self.system, self.backend(), r.runtime.as_ref());
            if was_interrupted {
                // Half a result: the steps it finished are recorded, so the
                // next run resumes after them (a finished build is not done
                // again).
                (self.on_event)(&Event::Cancelled {
                    name: r.row_name(),
                    hash: job.hash.clone(),
                });
                r.status = Status::Interrupted;
                r.reason = Some(INTERRUPTED_WHY.into());
                r.failed_step = None;
                r.steps.retain(|s| s.status == StepStatus::Passed);
                if r.steps.iter().any(|s| s.step == Step::Build) {
                    let _ = self.store.save(&key, &r);
                }
                self.push(r);
                continue;
            }
            if let Err(e) = self.store.save(&key, &r) {
                (self.on_event)(&Event::Warning {
                    name: r.row_name(),
                    message: format!("cannot write its record (it will rebuild next time): {e}"),
                });
            }
            if r.status.is_failure() && self.opts.fail_fast {
                self.stop.store(true, Ordering::SeqCst);
            }
            (self.on_event)(&Event::Finished(Box::new(r.clone())));
            self.push(r);
        }
    }

    /// The rows of the run, in report order, and the wheelhouse's index.
    fn finish(self, jobs: &[Job]) -> Vec<VariantResult> {
        let mut variants = self.results.into_inner().unwrap_or_default();
        // By name, then a variant's runtime points in the matrix's order.
        let order = |v: &VariantResult| {
            jobs.iter()
                .find(|j| j.hash == v.hash)
                .and_then(|j| j.runtime.iter().position(|p| Some(p) == v.runtime.as_ref()))
                .unwrap_or(0)
        };
        variants.sort_by(|a, b| a.name.cmp(&b.name).then(order(a).cmp(&order(b))));
        // The index over every wheel in the wheelhouse, this run's and earlier ones'.
        let house = self.root.join(python::WHEELHOUSE);
        if self.python.is_some() && house.is_dir() {
            if let Err(e) = python::write_index(&house) {
                (self.on_event)(&Event::Warning {
                    name: python::WHEELHOUSE.into(),
                    message: format!("cannot write the simple index of {}: {e}", house.display()),
                });
            }
        }
        // Each variant's logs are relative to its build root: a merged report of shards built in
        // different roots still finds them.
        for v in &mut variants {
            v.build_root = Some(self.root.display().to_string());
        }
        variants
    }
}

/// What a run knows about the project's source tree: the files it had when the run started,
/// and whether the project writes into it (remembered in the build root; `None` until a
/// variant built from a copy ran its tests, or one built in the tree changed it).
struct SourceTree<'a> {
    before: std::collections::BTreeMap<String, String>,
    verdict: Mutex<Option<store::SourceVerdict>>,
    store: &'a Store,
    warned: AtomicBool,
    /// A variant of this run was built in the source tree itself (its writes are its own).
    in_place: AtomicBool,
}

impl Scheduler<'_> {
    /// Compares the tree the variant was built from (its copy, with the files the copy had
    /// before configure; or the source itself) with what it holds now, and updates the
    /// verdict: a project that wrote into its tree is built from copies from now on, in this
    /// run and the next; one whose tests ran from a copy and left it alone is built in place.
    fn after_variant(
        &self,
        job: &Job,
        copy: Option<(PathBuf, std::collections::BTreeMap<String, String>)>,
        tested: bool,
        warnings: &mut Vec<String>,
    ) {
        let (tree, on_event) = (&self.tree, self.on_event);
        let (source, exclude) = (self.source.as_path(), self.exclude.as_slice());
        let changed = |before: &std::collections::BTreeMap<String, String>,
                       dir: &Path,
                       exclude: &[PathBuf]| {
            store::tree_entries(dir, exclude)
                .map(|after| store::changed_paths(before, &after, 5))
                .unwrap_or_default()
        };
        let in_source = changed(&tree.before, source, exclude);
        let in_copy = copy.as_ref().map(|(dir, before)| changed(before, dir, &[]));
        let mut warn = |m: String| {
            on_event(&Event::Warning {
                name: job.name.clone(),
                message: m.clone(),
            });
            warnings.push(m);
        };
        let written = match &in_copy {
            Some(paths) => paths.clone(),
            None => in_source.clone(),
        };
        let mut verdict = tree.verdict.lock().unwrap_or_else(|e| e.into_inner());
        let new = if !written.is_empty() {
            (!matches!(*verdict, Some(store::SourceVerdict::Writes { .. }))).then(|| {
                store::SourceVerdict::Writes {
                    paths: written.clone(),
                }
            })
        } else if in_copy.is_some() && tested && verdict.is_none() {
            Some(store::SourceVerdict::Clean)
        } else {
            None
        };
        if let Some(v) = new {
            let remembered = tree.store.root.join(store::SOURCE_WRITES);
            if let Err(e) = tree.store.remember_source(source, &v) {
                warn(format!("cannot write {}: {e}", remembered.display()));
            }
            if let store::SourceVerdict::Writes { paths } = &v {
                let then = if in_copy.is_some() {
                    "it ran from its own copy, so the source tree is untouched"
                } else {
                    "variants built at the same time may have corrupted each other's files"
                };
                let m = format!(
                    "the project wrote into its source tree while building and testing this variant ({}); {then}. Every variant of it is built from its own copy of the source from now on (remembered in {}; --copy-source does so for any project)",
                    paths.join(", "),
                    remembered.display()
                );
                // Under --copy-source the user has already chosen copies: only remembered.
                if !self.opts.copy_source && !tree.warned.swap(true, Ordering::SeqCst) {
                    warn(m);
                }
            }
            *verdict = Some(v);
        }
        drop(verdict);
        // A copy keeps the tree clean only from writes relative to the build: a project that
        // writes by absolute path (or someone editing the tree meanwhile) still changes it.
        // (Unless a variant of this run was built in the tree: the change may be its own.)
        if in_copy.is_some()
            && !in_source.is_empty()
            && !tree.in_place.load(Ordering::SeqCst)
            && !tree.warned.swap(true, Ordering::SeqCst)
        {
            warn(format!(
                "the source tree changed while this variant was built from its own copy ({}): something writes into it by absolute path, or it was edited meanwhile; a copy cannot keep it clean",
                in_source.join(", ")
            ));
        }
    }
}

/// The order to start jobs in, as indices: unknown durations (`None`) first, then the longest
/// estimate first; ties keep the given order, so equal inputs give the same schedule.
pub fn longest_first(estimates: &[Option<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| estimates[i].unwrap_or(f64::INFINITY);
        key(b).total_cmp(&key(a))
    });
    order
}

/// Sets up one variant's build directory under `root` (config written, build dir configured)
/// for a developer to debug: `cfgmx reproduce HASH`. Returns the configure step and the build
/// directory.
pub fn reproduce(
    job: &Job,
    source: &Path,
    root: &Path,
    system: Option<System>,
) -> Result<(StepResult, PathBuf), RunError> {
    let source = source
        .canonicalize()
        .map_err(|e| RunError::Usage(format!("--source {}: {e}", source.display())))?;
    let system = match system.or_else(|| System::detect(&source)) {
        Some(s) => s,
        None => {
            // The source defaults to `.`: say how to point elsewhere.
            return Err(RunError::Usage(format!(
                "--source {}: no CMakeLists.txt or meson.build there (give the project's top directory, or --system)",
                source.display()
            )));
        }
    };
    std::fs::create_dir_all(root).map_err(|e| RunError::Io(format!("{}: {e}", root.display())))?;
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let budget = Budget::new(1).map_err(|e| RunError::Io(e.to_string()))?;
    let vdir = root.join(store_key(job, system, None));
    std::fs::create_dir_all(vdir.join("logs")).map_err(|e| RunError::Io(e.to_string()))?;
    // The same tools as a build records: a dir a build configured with them is reused, one
    // configured by other tools is configured again.
    let tools = build_tools(system);
    let ctx = StepContext {
        job,
        system,
        source,
        build_root: root.clone(),
        vdir,
        budget: &budget,
        ninja: tools.contains_key("ninja"),
        step_timeout: None,
        blas_query_helper: None,
        // reproduce runs no test.
        ctest_junit: false,
        tools: tools_stamp(&tools),
    };
    let cfg = runner::write_config(&ctx).map_err(|e| RunError::Io(e.to_string()))?;
    Ok((runner::configure(&ctx, &cfg), ctx.build_dir()))
}

/// Where a variant's record and directory live: its concrete hash as cfgmx shows it
/// everywhere ([`cfgmx_model::SHORT_HASH`] digits, so the directory name is the hash in the
/// tables), suffixed for Meson so the same variant built by both build systems
/// keeps two build dirs and two records.
fn store_key(job: &Job, system: System, python: Option<python::Backend>) -> String {
    let h = cfgmx_model::hash::short_hash(&job.hash);
    match (python, system) {
        (Some(b), _) => format!("{h}-{}", b.key()),
        (None, System::Cmake) => h.to_string(),
        (None, System::Meson) => format!("{h}-meson"),
    }
}

/// The record of a variant at a runtime point: the variant's key, then the point's.
fn point_key(
    job: &Job,
    system: System,
    python: Option<python::Backend>,
    point: Option<&Point>,
) -> String {
    match point {
        Some(p) => format!("{}@{}", store_key(job, system, python), p.key()),
        None => store_key(job, system, python),
    }
}

/// The test runs of a job: one per runtime point, or one (`None`) without `[runtime]`.
fn points(job: &Job) -> Vec<Option<Point>> {
    if job.runtime.is_empty() {
        vec![None]
    } else {
        job.runtime.iter().cloned().map(Some).collect()
    }
}

/// How events name a job's row at a point: `gcc-debug [threads=2]`.
fn row_name(job: &Job, point: Option<&Point>) -> String {
    match point {
        Some(p) => format!("{} [{}]", job.name, p.label()),
        None => job.name.clone(),
    }
}

/// [`not_built`] at a runtime point.
fn not_built_at(job: &Job, point: Option<&Point>, status: Status, reason: &str) -> VariantResult {
    let mut r = not_built(job, status, reason);
    r.runtime = point.cloned();
    r
}

const INTERRUPTED_WHY: &str =
    "interrupted while it was building; the steps it finished are kept, and the next run resumes after them";

/// The row of a variant this run did not build.
fn not_built(job: &Job, status: Status, reason: &str) -> VariantResult {
    VariantResult::not_built(
        &job.name,
        &job.hash,
        [&job.compiler, &job.blas, &job.build],
        status,
        reason,
    )
}

/// Where a variant is built from: its own copy of the source (with the files the copy had
/// before configure) or the source tree itself, or why the copy it needs failed.
struct BuiltFrom {
    src: PathBuf,
    copy_before: Option<std::collections::BTreeMap<String, String>>,
    copy_error: Option<String>,
}

/// What a variant's configure and build left: common to the rows of all its points.
struct Built {
    t0: Instant,
    steps: Vec<StepResult>,
    warnings: Vec<String>,
    /// The configuration could not be written: nothing ran.
    config_failed: bool,
    /// What stopped it then: the variant's reason, as a step's key line would be.
    config_error: Option<String>,
    blas_linked: Vec<String>,
    wheel: Option<String>,
    /// The run's build tools and the variant's compilers.
    tools: indexmap::IndexMap<String, String>,
}

impl Scheduler<'_> {
    /// Builds `job` once and tests it at each of `points`; `None` when interrupted before it
    /// could say anything, else a row per point (interrupted ones with the steps finished).
    fn run_one(
        &self,
        job: &Job,
        points: &[Option<Point>],
        resume: Option<&VariantResult>,
    ) -> Option<Vec<VariantResult>> {
        let t0 = Instant::now();
        let _running = self.budget.enter();
        (self.on_event)(&Event::Started {
            name: job.name.clone(),
            hash: job.hash.clone(),
        });
        let vdir = self.root.join(store_key(job, self.system, self.backend()));
        let mut warnings = Vec::new();
        let from = self.built_from(job, &vdir, &mut warnings);
        let _ = std::fs::create_dir_all(vdir.join("logs"));
        // Stale logs from an earlier run would mislead: each step rewrites its own.
        for s in ["configure", "build", "test"] {
            let _ = std::fs::remove_file(vdir.join("logs").join(format!("{s}.log")));
        }
        for p in points.iter().flatten() {
            let _ = std::fs::remove_file(vdir.join("logs").join(format!("test-{}.log", p.key())));
        }
        let ctx = StepContext {
            job,
            system: self.system,
            source: from.src,
            build_root: self.root.clone(),
            vdir: vdir.clone(),
            budget: &self.budget,
            ninja: self.ninja,
            step_timeout: self.opts.step_timeout,
            blas_query_helper: self.opts.blas_query_helper.clone(),
            ctest_junit: self.ctest_junit,
            tools: tools_stamp(&self.tools),
        };
        let mut steps = Vec::new();
        let config = self.configure_step(&ctx, from.copy_error, &mut steps);
        let config_failed = config.is_err();
        let ok = match config {
            Ok(ok) => ok,
            Err(e) => {
                warnings.push(e);
                false
            }
        };
        // Nothing ran: what stopped it is the variant's reason, as a step's key line would be.
        let config_error = config_failed.then(|| warnings.last().cloned()).flatten();
        if interrupted() {
            return self.partial(job, points, steps, t0);
        }
        let (ok, blas_linked, wheel) = if ok {
            self.build_step(&ctx, resume, &mut steps, &mut warnings)
        } else {
            (false, Vec::new(), None)
        };
        if interrupted() {
            return self.partial(job, points, steps, t0);
        }
        let tests = self.test_steps(&ctx, points, ok);
        if interrupted() {
            return self.partial(job, points, steps, t0);
        }
        // Whether the project wrote into the tree it was built from: every point's test ran.
        let tested = tests.iter().any(Option::is_some);
        let copy = from.copy_before.map(|b| (ctx.source.clone(), b));
        self.after_variant(job, copy, tested, &mut warnings);
        let mut tools = self.tools.clone();
        for (l, v) in &job.compiler_versions {
            tools.insert(l.clone(), v.clone());
        }
        let built = Built {
            t0,
            steps,
            warnings,
            config_failed,
            config_error,
            blas_linked,
            wheel,
            tools,
        };
        let rows = points
            .iter()
            .zip(tests)
            .map(|(p, test)| self.row(job, p, test, &built))
            .collect();
        Some(rows)
    }

    /// Its own copy of the source when asked, when the project is known to write into its
    /// tree, and while that is not known yet (a project's first run here): the copy then
    /// tells. A variant built from a copy before stays there, so its next build is
    /// incremental.
    fn built_from(&self, job: &Job, vdir: &Path, warnings: &mut Vec<String>) -> BuiltFrom {
        let (source, tree) = (&self.source, &self.tree);
        let verdict = tree
            .verdict
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Why a copy cannot be done without (a failed copy then fails the variant, saying why); a
        // copy made only to find out, or to stay incremental, gives way to the tree itself.
        let needed = match &verdict {
            _ if self.opts.copy_source => Some("--copy-source asks for it".to_string()),
            Some(store::SourceVerdict::Writes { paths }) => Some(format!(
                "the project writes into its source tree ({}; remembered in {})",
                paths.join(", "),
                self.root.join(store::SOURCE_WRITES).display()
            )),
            _ => None,
        };
        let use_copy = needed.is_some()
            || vdir.join("src").is_dir()
            || !matches!(verdict, Some(store::SourceVerdict::Clean));
        let copied = use_copy.then(|| {
            let dst = vdir.join("src");
            store::copy_tree(source, &dst, &self.exclude)
                .and_then(|()| store::tree_entries(&dst, &[]))
                .map(|entries| (dst.clone(), entries))
                .map_err(|e| {
                    format!(
                        "copying {} to {} failed: {e}",
                        source.display(),
                        dst.display()
                    )
                })
        });
        let in_tree = || {
            tree.in_place.store(true, Ordering::SeqCst);
            BuiltFrom {
                src: source.to_path_buf(),
                copy_before: None,
                copy_error: None,
            }
        };
        match copied {
            Some(Ok((dst, entries))) => BuiltFrom {
                src: dst,
                copy_before: Some(entries),
                copy_error: None,
            },
            Some(Err(e)) => match &needed {
                Some(why) => BuiltFrom {
                    src: vdir.join("src"),
                    copy_before: None,
                    copy_error: Some(format!(
                        "cannot build this variant from its own copy of the source, which it needs because {why}: {e}"
                    )),
                },
                None => {
                    // Half a copy must not make the next run take it for this variant's tree.
                    let _ = std::fs::remove_dir_all(vdir.join("src"));
                    let m = format!(
                        "cannot build from a copy of the source ({e}); built in the source tree itself"
                    );
                    (self.on_event)(&Event::Warning {
                        name: job.name.clone(),
                        message: m.clone(),
                    });
                    warnings.push(m);
                    in_tree()
                }
            },
            None => in_tree(),
        }
    }

    fn step_done(&self, job: &Job, s: &StepResult) {
        (self.on_event)(&Event::StepFinished {
            name: job.name.clone(),
            step: s.clone(),
        })
    }

    /// Writes the build configuration and configures: `Ok` whether the configure step
    /// passed, `Err` why no configuration could be written (or the copy it needed failed).
    fn configure_step(
        &self,
        ctx: &StepContext,
        copy_error: Option<String>,
        steps: &mut Vec<StepResult>,
    ) -> Result<bool, String> {
        let python = self.python.as_ref();
        if let Some(e) = copy_error {
            return Err(e);
        }
        let cfg = match python {
            Some(p) => python::write_config(ctx, p.backend),
            None => runner::write_config(ctx),
        }
        .map_err(|e| format!("cannot write the build configuration: {e}"))?;
        let c = match python {
            Some(p) => python::configure(ctx, p),
            None => runner::configure(ctx, &cfg),
        };
        self.step_done(ctx.job, &c);
        let ok = c.status == StepStatus::Passed;
        steps.push(c);
        Ok(ok)
    }

    /// Interrupted: what finished is returned (the caller records it), the rest is not run.
    fn partial(
        &self,
        job: &Job,
        points: &[Option<Point>],
        steps: Vec<StepResult>,
        t0: Instant,
    ) -> Option<Vec<VariantResult>> {
        let rows = points.iter().map(|p| {
            let mut r = not_built_at(job, p.as_ref(), Status::Interrupted, INTERRUPTED_WHY);
            r.steps = steps.clone();
            r.source_fingerprint = self.fp.clone();
            r.tools = self.tools.clone();
            r.duration_s = t0.elapsed().as_secs_f64();
            r
        });
        Some(rows.collect())
    }

    /// The build step (or a wheel's build, relabel, install and check), and what the build
    /// linked: whether it passed, the BLAS files loaded, the wheel.
    fn build_step(
        &self,
        ctx: &StepContext,
        resume: Option<&VariantResult>,
        steps: &mut Vec<StepResult>,
        warnings: &mut Vec<String>,
    ) -> (bool, Vec<String>, Option<String>) {
        let (job, python) = (ctx.job, self.python.as_ref());
        // The configure found its dir as an interrupted run left it, after a finished build:
        // that build is current (same sources, config and tools), so it is not done again.
        let reused = steps.last().is_some_and(|c| c.command == runner::REUSED);
        let built_before = resume
            .and_then(|r| r.step(Step::Build.as_str()))
            .filter(|b| reused && b.status == StepStatus::Passed && python.is_none());
        let mut blas_linked = Vec::new();
        let mut wheel = None;
        let mut b = match (python, built_before) {
            // A wheel is built, relabelled, installed and checked in one step.
            (Some(p), _) => {
                let (b, built) = python::build(ctx, p);
                blas_linked = built.blas_linked;
                wheel = built.wheel.map(|w| w.display().to_string());
                b
            }
            (None, Some(b)) => StepResult {
                command: "(built before the interruption; reused)".into(),
                duration_s: 0.0,
                cores: 0,
                ..b.clone()
            },
            (None, None) => runner::build(ctx),
        };
        // What the build really linked, before anything runs it: the variant's BLAS file, or
        // the build fails (CMake's FindBLAS may have found another build by name).
        if b.status == StepStatus::Passed && python.is_none() {
            match runner::blas_linked(ctx) {
                Some(Ok(loaded)) => {
                    if let Err(e) = runner::check_blas_linked(job, &loaded) {
                        b.status = StepStatus::Failed;
                        b.message = Some(e);
                    }
                    blas_linked = loaded;
                }
                Some(Err(e)) => warnings.push(e),
                None => {}
            }
        }
        self.step_done(job, &b);
        let ok = b.status == StepStatus::Passed;
        steps.push(b);
        (ok, blas_linked, wheel)
    }

    /// The test step once per runtime point, side by side: each point waits for its own
    /// cores, so together they never hold more than the budget. `None` for a point not
    /// tested (the build failed).
    fn test_steps(
        &self,
        ctx: &StepContext,
        points: &[Option<Point>],
        built: bool,
    ) -> Vec<Option<(StepResult, runner::TestCounts)>> {
        let run_test = |p: &Option<Point>, rebuild: bool| {
            let (mut t, c) = match self.python {
                Some(_) => python::test(ctx, p.as_ref()),
                None => runner::test(ctx, p.as_ref(), rebuild),
            };
            if let Some(p) = p {
                // The point's label in the step's message keeps a failure at one point apart
                // from the others in every report.
                if let Some(m) = &mut t.message {
                    *m = format!("[{}] {m}", p.label());
                }
            }
            (t, c)
        };
        if !built {
            points.iter().map(|_| None).collect()
        } else if self.system == System::Meson && points.len() > 1 {
            // `meson test` rebuilds what its tests need first: the first point alone does, the
            // others then run side by side without a ninja of their own.
            let first = run_test(&points[0], true);
            let rest: Vec<Option<_>> = std::thread::scope(|s| {
                let hs: Vec<_> = points[1..]
                    .iter()
                    .map(|p| s.spawn(|| run_test(p, false)))
                    .collect();
                hs.into_iter().map(|h| h.join().ok()).collect()
            });
            std::iter::once(Some(first)).chain(rest).collect()
        } else {
            std::thread::scope(|s| {
                let hs: Vec<_> = points
                    .iter()
                    .map(|p| s.spawn(|| run_test(p, true)))
                    .collect();
                hs.into_iter().map(|h| h.join().ok()).collect()
            })
        }
    }

    /// The row of `job` at point `p`: the variant's steps, the point's test, the verdict.
    fn row(
        &self,
        job: &Job,
        p: &Option<Point>,
        test: Option<(StepResult, runner::TestCounts)>,
        built: &Built,
    ) -> VariantResult {
        let mut steps = built.steps.clone();
        let mut counts = runner::TestCounts::default();
        let mut warnings = built.warnings.clone();
        let mut threads = None;
        if let Some((t, c)) = test {
            self.step_done(job, &t);
            if let Some(u) = &c.unread {
                // The counts then come from the summary text: say so, it is the weaker source.
                warnings.push(u.clone());
            }
            counts = c;
            threads = Some(runner::point_threads(job, p.as_ref()));
            steps.push(t);
        }
        for name in Step::ALL {
            if !steps.iter().any(|s| s.step == name) {
                steps.push(StepResult {
                    step: name,
                    status: StepStatus::NotRun,
                    command: String::new(),
                    exit_code: None,
                    duration_s: 0.0,
                    log: String::new(),
                    cores: 0,
                    message: None,
                    timed_out: false,
                });
            }
        }
        let failed = built.config_failed || steps.iter().any(|s| s.status == StepStatus::Failed);
        VariantResult {
            name: job.name.clone(),
            hash: job.hash.clone(),
            hash_kind: report::HashKind::Concrete,
            compiler: job.compiler.clone(),
            blas: job.blas.clone(),
            build: job.build.clone(),
            status: if failed && steps.iter().any(|s| s.timed_out) {
                Status::TimedOut
            } else if failed {
                Status::Failed
            } else if steps
                .iter()
                .any(|s| s.step == Step::Test && s.status == StepStatus::NoTests)
            {
                Status::NoTests
            } else {
                Status::Passed
            },
            reason: built.config_error.clone(),
            failed_step: None,
            steps,
            tests_passed: counts.passed,
            tests_failed: counts.failed,
            tests_skipped: counts.skipped,
            tests: counts.cases,
            tests_from: counts.from.map(str::to_string),
            threads,
            duration_s: built.t0.elapsed().as_secs_f64(),
            source_fingerprint: self.fp.clone(),
            tools: built.tools.clone(),
            warnings,
            blas_linked: built.blas_linked.clone(),
            wheel: built.wheel.clone(),
            build_root: None,
            runtime: p.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::LockFile;

    fn job(name: &str, hash: &str) -> Job {
        Job {
            name: name.into(),
            hash: hash.into(),
            spec_hash: hash.into(),
            axes: Default::default(),
            compiler: "gcc".into(),
            blas: "sequential".into(),
            build: "debug".into(),
            cc: None,
            cxx: None,
            fc: None,
            compiler_versions: Default::default(),
            cflags: vec![],
            cxxflags: vec![],
            fflags: vec![],
            ldflags: vec![],
            link: Default::default(),
            libs: vec![],
            cmake: Default::default(),
            meson: Default::default(),
            env: Default::default(),
            modules: Vec::new(),
            module_env: Default::default(),
            threaded: false,
            thread_vars: vec![],
            threads: 2,
            test: Default::default(),
            blas_library: None,
            blas_names: vec![],
            blas_threading: None,
            blas_query: None,
            int_width: None,
            mpi_ranks: None,
            mpi_launcher: None,
            files: Default::default(),
            runtime: vec![],
        }
    }

    /// A Slurm array's tasks all update the lock file in the submit directory at once: every
    /// variant each of them adds must be there afterwards.
    #[test]
    fn concurrent_lock_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(job::LOCK_FILE);
        std::thread::scope(|s| {
            for t in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..10 {
                        let j = job(&format!("t{t}-{i}"), &format!("{:064x}", t * 100 + i));
                        // Two matrices at once: neither replaces the other's entries.
                        let m = if t % 2 == 0 { "m" } else { "n" };
                        LockFile::update(path, m, &[j]).unwrap();
                    }
                });
            }
        });
        let lf = LockFile::read(&path).unwrap();
        assert_eq!(lf.entries().count(), 80, "lost updates");
        assert_eq!(lf.matrices["m"].variants.len(), 40);
        assert_eq!(lf.matrices["n"].variants.len(), 40);
        // nothing but the lock file is left in the directory
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn shards_cover_every_job_once() {
        let jobs: Vec<Job> = (0..11)
            .map(|i| job(&format!("v{i}"), &format!("{:064x}", i * 7919 % 101)))
            .collect();
        for n in 1..5 {
            let mut all: Vec<String> = (1..=n)
                .flat_map(|k| shard(jobs.clone(), k, n))
                .map(|j| j.name)
                .collect();
            all.sort();
            let mut want: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
            want.sort();
            assert_eq!(all, want, "n={n}");
        }
        assert!(parse_shard("0/2").is_err());
        assert!(parse_shard("3/2").is_err());
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
    }

    #[test]
    fn never_built_then_longest_first_ties_in_order() {
        let est = [Some(1.0), None, Some(5.0), Some(1.0), None, Some(3.0)];
        assert_eq!(longest_first(&est), [1, 4, 2, 5, 0, 3]);
        assert!(longest_first(&[]).is_empty());
    }

    #[test]
    fn select_by_name_glob_and_hash_prefix() {
        let jobs = vec![
            job("gcc-threaded-debug", "abcd1234"),
            job("clang-sequential-release", "ffff0000"),
        ];
        let names = |v: Vec<Job>| v.into_iter().map(|j| j.name).collect::<Vec<_>>();
        assert_eq!(
            names(select(jobs.clone(), &["gcc".into()], &[])),
            ["gcc-threaded-debug"]
        );
        assert_eq!(
            names(select(jobs.clone(), &["*-release".into()], &[])),
            ["clang-sequential-release"]
        );
        assert_eq!(
            names(select(jobs.clone(), &["ABCD".into()], &[])),
            ["gcc-threaded-debug"]
        );
        assert_eq!(
            names(select(jobs.clone(), &[], &["threaded".into()])),
            ["clang-sequential-release"]
        );
        // The spec hash, as generated CI and Slurm scripts pass it, selects too.
        let mut spec = jobs;
        spec[1].spec_hash = "5eec0001".into();
        assert_eq!(
            names(select(spec, &["5eec0001".into()], &[])),
            ["clang-sequential-release"]
        );
    }
}
