//! Probing one machine: which compilers, MPI wrappers, BLAS builds and Python interpreters it
//! really has, and what really works with them.
//!
//! [`probe`] finds every executable a toolchain descriptor names (on `PATH`, in `--search`
//! directories, with version suffixes such as `gcc-12`) plus generic names (`cc`) and MPI
//! wrappers, reads each version with the descriptor's argument and regex, confirms the family
//! by preprocessing for the identity macros (so wrappers are reported as what they run), then
//! compiles, links and runs a small program per facet (OpenMP above all) with the descriptor's
//! candidate flags in order. BLAS library files are asked their threading through `dlopen` by
//! one small program. Everything runs in parallel (rayon) under a per-command timeout; the result
//! is a [`cfgmx_model::Profile`], cached and keyed by the compiler and library files found
//! (each one's path, resolved file, device, inode, size and mtime), so an unchanged machine is
//! answered by [`load_cached`] after a discovery pass, without running anything.
//! Key types: [`ProbeOptions`], [`ProbeEvent`].
//!
//! Never: prints, or writes anything but its cache file (scratch programs live in a temporary
//! directory that is removed).

mod avail;
mod blas;
mod cache;
mod discover;
mod facet;
mod identify;
mod modules;
mod prove;
mod python;

use cfgmx_model::{Profile, Registry};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

pub use cache::{fingerprint, CACHE_FILE};
pub use facet::runtime_hint;
pub use identify::parse_macros;
pub use modules::{cray_family, locate as locate_modules, ModuleOptions};
pub use prove::{prove, PROOF_FILE};

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Directories searched before `PATH` (their `../lib` is searched for BLAS too).
    pub search: Vec<PathBuf>,
    /// Per-command timeout.
    pub timeout: Duration,
    /// Ignore the cache (it is still rewritten).
    pub fresh: bool,
    /// Where the profile cache lives.
    pub cache_dir: PathBuf,
    /// Facets to test per compiler (`openmp` plus what a matrix needs).
    pub facets: Vec<String>,
    /// Parallel jobs (most of a probe's time is spent waiting for children).
    pub jobs: usize,
    /// The `PATH` to search (passed in so the probe does not read the environment itself).
    pub path: Option<std::ffi::OsString>,
    /// Fingerprint of the descriptor and provider texts in use ([`fingerprint`]); empty means
    /// the builtin ones. Part of the cache key, and known before the texts are parsed, so a
    /// warm probe need not parse them.
    pub descriptors: String,
    /// A program that answers BLAS queries when run as `PROGRAM HELPER_ARG LIB SPEC...`
    /// (the CLI passes its own executable, see [`helper_main`]); without one the probe
    /// compiles a small C program for it.
    pub helper: Option<PathBuf>,
    /// The only library directories to search for BLAS (the ones a module load added); `None`
    /// searches the `--search` directories' and the system's.
    pub lib_dirs: Option<Vec<PathBuf>>,
    /// Ask this module system too (`cfgmx probe --modules`).
    pub modules: Option<ModuleOptions>,
}

/// First argument under which a helper binary runs [`helper_main`].
pub const HELPER_ARG: &str = "__cfgmx-probe-blas-query";

/// First argument under which a helper binary runs [`module_helper_main`].
pub const MODULE_HELPER_ARG: &str = modules::HELPER_ARG;

/// The probe inside a loaded module environment, for a binary that serves as the probe's
/// helper: `args` after [`MODULE_HELPER_ARG`], the child's environment `vars`, and the
/// helper's own path (for its BLAS queries). Writes the answer (JSON) to `out`, the helper's
/// stdout, where the probe that ran it reads it; returns the exit code.
pub fn module_helper_main(
    args: &[String],
    vars: std::collections::BTreeMap<String, String>,
    me: PathBuf,
    out: &mut dyn std::io::Write,
) -> i32 {
    modules::helper_main(args, vars, me, out)
}

/// The BLAS query, for a binary that serves as the probe's helper: call it with the
/// arguments after [`HELPER_ARG`]; it writes the answers to `out`, the helper's stdout, where
/// the probe that ran it reads them, and returns the exit code.
pub fn helper_main(args: &[String], out: &mut dyn std::io::Write) -> i32 {
    blas::query_main(args, out)
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            search: Vec::new(),
            timeout: Duration::from_secs(10),
            fresh: false,
            cache_dir: PathBuf::from(".cfgmx-cache"),
            facets: vec!["openmp".to_string()],
            jobs: 4,
            path: None,
            descriptors: String::new(),
            helper: None,
            lib_dirs: None,
            modules: None,
        }
    }
}

/// Progress of a probe, for the CLI's progress bar.
#[derive(Debug, Clone)]
pub enum ProbeEvent {
    /// The answer came from the cache; nothing was run.
    CacheHit,
    /// A phase starts with `total` steps.
    Phase { name: &'static str, total: usize },
    /// One step finished (`what` names it: a path, `gcc openmp`, a library).
    Step { what: String },
    /// Something the user should hear about that does not change the answer (a corrupt cache
    /// discarded, a cache that could not be written).
    Warning(String),
}

/// Probes the machine (or answers from the cache when nothing changed and `fresh` is off).
pub fn probe(
    reg: &Registry,
    opts: &ProbeOptions,
    on_event: &(dyn Fn(ProbeEvent) + Sync),
) -> Profile {
    let (found, pythons) = discover_all(reg, opts);
    let mut key = cache::key(opts, &found);
    if !opts.fresh {
        match cache::load_warm(opts, &mut key) {
            Ok(Some(p)) => {
                on_event(ProbeEvent::CacheHit);
                return p;
            }
            Ok(None) => {}
            Err(why) => on_event(ProbeEvent::Warning(why)),
        }
    }
    // A few interpreters, each one short run: beside the compilers, not after them.
    let (mut profile, (pythons, failures)) = std::thread::scope(|s| {
        let asked = s.spawn(|| python::query(reg, &pythons, opts.timeout));
        let profile = run(reg, opts, &found, on_event);
        (profile, asked.join().unwrap_or_default())
    });
    profile.pythons = pythons;
    profile.python_failures = failures;
    if let Some(caller) = &opts.modules {
        // The tree's state before asking it: a module file edited meanwhile is seen next time.
        key.module_tree = modules::tree_state(&caller.command, &caller.module_dirs(), opts.jobs);
        let mo = match modules::purged(caller, opts.timeout) {
            Ok(mo) => mo,
            Err(why) => {
                profile.warnings.push(why);
                caller.clone()
            }
        };
        let mo = &mo;
        let asked = modules::Helper::new(opts, mo)
            .ok_or_else(|| "module probing needs the cfgmx binary as its helper".to_string())
            .and_then(|h| {
                let tree = avail::query(reg, mo, &h, opts.timeout, opts.jobs, on_event)?;
                Ok((tree, h))
            });
        match asked {
            Ok((tree, helper)) => {
                key.module_dirs = tree.dirs.iter().map(|d| d.display().to_string()).collect();
                key.module_tree = tree.state(&mo.command);
                modules::probe_modules(opts, mo, &helper, tree, &mut profile, on_event);
            }
            Err(why) => profile.warnings.push(why),
        }
    }
    // A cache that cannot be written only costs speed next time.
    if let Err(e) = cache::store(&opts.cache_dir, cache::file_name(opts), &key, &profile) {
        on_event(ProbeEvent::Warning(format!(
            "cannot write the probe cache in {}: {e}",
            opts.cache_dir.display()
        )));
    }
    profile
}

/// The cached profile, if the machine has not changed since it was written: discovery runs
/// (listings and stats, no process) and its files must be the ones the cache was made from.
/// `Err` says the cache file was corrupt and has been deleted.
pub fn load_cached(reg: &Registry, opts: &ProbeOptions) -> Result<Option<Profile>, String> {
    let (found, _) = discover_all(reg, opts);
    cache::load_warm(opts, &mut cache::key(opts, &found))
}

/// Discovery of compilers, MPI wrappers and BLAS files, and of Python interpreters, whose
/// files join the cache key (an interpreter installed or upgraded since is probed again).
fn discover_all(reg: &Registry, opts: &ProbeOptions) -> (discover::Found, Vec<python::Candidate>) {
    let mut found = discover::discover(reg, opts);
    let pythons = python::discover(reg, &found.bin_dirs);
    found.stamps.extend(
        pythons
            .iter()
            .map(|c| discover::stamp(&c.path, Some(&c.real))),
    );
    (found, pythons)
}

/// The cache file a probe with `opts` reads and writes.
pub fn cache_path(opts: &ProbeOptions) -> PathBuf {
    opts.cache_dir.join(cache::file_name(opts))
}

fn run(
    reg: &Registry,
    opts: &ProbeOptions,
    found: &discover::Found,
    on_event: &(dyn Fn(ProbeEvent) + Sync),
) -> Profile {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut profile = Profile::empty(cpus);
    let work = match tempfile::Builder::new()
        .prefix(&format!("cfgmx-probe-{}-", std::process::id()))
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            profile
                .warnings
                .push(format!("cannot create a scratch directory: {e}"));
            return profile;
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build();
    let body = || probe_all(reg, opts, found, work.path(), on_event);
    let ((compilers, mpi), blas) = match pool {
        Ok(p) => p.install(body),
        Err(_) => body(),
    };
    profile.compilers = compilers;
    profile.mpi = mpi;
    profile.blas = blas.records;
    profile.default_blas = blas.default;
    profile.blas_failures = blas.failures;
    profile.warnings.extend(blas.warnings);
    profile
}

/// What one task of [`probe_all`] found.
enum Done {
    Compiler(usize, Vec<identify::Identified>),
    Shown(usize, Box<cfgmx_model::MpiRecord>),
    Blas(usize, blas::Asked),
}

type Compilers = (
    Vec<cfgmx_model::CompilerRecord>,
    Vec<cfgmx_model::MpiRecord>,
);

/// Executables that are one real file in one language (indexes into `Found::exes`).
type Groups = Vec<((PathBuf, cfgmx_model::Language, bool), Vec<usize>)>;

/// What every task of one probe shares.
struct Prober<'a> {
    reg: &'a Registry,
    opts: &'a ProbeOptions,
    found: &'a discover::Found,
    work: &'a std::path::Path,
    on_event: &'a (dyn Fn(ProbeEvent) + Sync),
    /// Every identity macro a fused OpenMP program prints.
    ids: Vec<String>,
}

/// Identifies every executable and tests its facets, and asks every BLAS file its threading.
/// Each real compiler is probed once, in one task (version, then its tests), so a slow
/// compiler never holds up the others'.
fn probe_all(
    reg: &Registry,
    opts: &ProbeOptions,
    found: &discover::Found,
    work: &std::path::Path,
    on_event: &(dyn Fn(ProbeEvent) + Sync),
) -> (Compilers, blas::Detected) {
    on_event(ProbeEvent::Phase {
        name: "probing",
        total: found.exes.len(),
    });
    let p = Prober {
        reg,
        opts,
        found,
        work,
        on_event,
        ids: identify::identity_macros(reg),
    };
    let (wrappers, groups) = groups(found);
    let plan = blas::plan(reg, opts, found, work);
    let done = p.run_queue(&groups, &wrappers, plan.as_ref().ok());
    let (mut compiled, mut shown, mut per_lib) = (Vec::new(), Vec::new(), Vec::new());
    for d in done {
        match d {
            Done::Compiler(_, r) => compiled.push(r),
            Done::Shown(w, m) => shown.push((&wrappers[w].1, m)),
            Done::Blas(_, r) => per_lib.push(r),
        }
    }
    let blas = match plan {
        Ok(plan) => plan.finish(found, per_lib),
        Err(d) => d,
    };
    let mut ids: Vec<identify::Identified> = compiled.into_iter().flatten().collect();
    // A wrapper over a compiler probed here is that compiler; any other (a compiler outside
    // the search path, no compiler query) is identified through the wrapper itself. One that
    // hung, crashed or runs a missing compiler is reported as such and not run again.
    let rest: Vec<Vec<identify::Identified>> = shown
        .into_par_iter()
        .map(|(members, mpi)| p.wrapper(members, *mpi, &ids))
        .collect();
    ids.extend(rest.into_iter().flatten());
    // A family's own plain names first (`gcc` before `gcc-12`, `cc` and `mpicc`): whoever
    // takes the first matching record (concretisation) gets the canonical compiler.
    let rank = |i: &identify::Identified| match &i.exe.kind {
        discover::Kind::Named(_)
            if reg
                .toolchain(&i.record.family)
                .is_some_and(|t| t.executables.for_lang(i.exe.lang).contains(&i.exe.name)) =>
        {
            0
        }
        discover::Kind::Named(_) => 1,
        discover::Kind::Generic => 2,
        discover::Kind::Mpi => 3,
    };
    ids.sort_by(|a, b| (rank(a), &a.exe.path).cmp(&(rank(b), &b.exe.path)));
    let mpi = ids.iter().filter_map(|i| i.mpi.clone()).collect();
    ((ids.into_iter().map(|i| i.record).collect(), mpi), blas)
}

/// One identification per real file and language: `gcc`, `gcc-12` and a `cc` link to the
/// same binary are one compiler reported under three paths. The MPI wrappers' groups, then the
/// compilers'.
fn groups(found: &discover::Found) -> (Groups, Groups) {
    let mut groups: indexmap::IndexMap<(PathBuf, cfgmx_model::Language, bool), Vec<usize>> =
        indexmap::IndexMap::new();
    for (i, e) in found.exes.iter().enumerate() {
        // `ccache` under the names `gcc` and `clang` is two compilers: keyed by its own path
        let real = match &e.canonical {
            Some(c) if !identify::by_name(e, found) => c.clone(),
            _ => e.path.clone(),
        };
        let mpi = e.kind == discover::Kind::Mpi;
        groups.entry((real, e.lang, mpi)).or_default().push(i);
    }
    groups.into_iter().partition(|((_, _, mpi), _)| *mpi)
}

impl Prober<'_> {
    /// Runs every task in one queue, started in this order as threads come free: the longest
    /// first, so none is left running alone at the end while the other cores idle. C++ tests
    /// take longest (the C++ link), then Fortran (its runtime), then C; the MPI wrappers'
    /// `-show` and the BLAS queries are a few milliseconds each and fill the gaps. The results
    /// come back in the order of `groups`, `wrappers` and the plan's libraries.
    fn run_queue(
        &self,
        groups: &Groups,
        wrappers: &Groups,
        plan: Option<&blas::Plan>,
    ) -> Vec<Done> {
        let slowest_first = |l: cfgmx_model::Language| match l {
            cfgmx_model::Language::Cxx => 0,
            cfgmx_model::Language::Fortran => 1,
            cfgmx_model::Language::C => 2,
        };
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by_key(|&g| slowest_first(groups[g].0 .1));
        // One task per real file, its languages one after the other (the slowest first): a
        // language whose own first test cannot confirm the family (clang++ without `omp.h`)
        // takes the confirmation the same file gave in a language before it, instead of a
        // preprocessor run.
        let mut files: indexmap::IndexMap<&PathBuf, Vec<usize>> = indexmap::IndexMap::new();
        for &g in &order {
            files.entry(&groups[g].0 .0).or_default().push(g);
        }
        let done: std::sync::Mutex<Vec<Done>> = std::sync::Mutex::new(Vec::new());
        let keep = |d: Done| done.lock().unwrap_or_else(|e| e.into_inner()).push(d);
        let (reg, found, timeout) = (self.reg, self.found, self.opts.timeout);
        rayon::scope_fifo(|s| {
            for gs in files.into_values() {
                let keep = &keep;
                s.spawn_fifo(move |_| {
                    let mut before: Option<identify::Identified> = None;
                    for g in gs {
                        let ids = self.compiler(&groups[g].1, before.as_ref());
                        if before.is_none() {
                            before = ids.first().filter(|i| i.confirmed()).cloned();
                        }
                        keep(Done::Compiler(g, ids));
                    }
                });
            }
            for (w, (_, members)) in wrappers.iter().enumerate() {
                let keep = &keep;
                s.spawn_fifo(move |_| {
                    let shown = identify::mpi_show(reg, &found.exes[members[0]], found, timeout);
                    keep(Done::Shown(w, Box::new(shown)));
                });
            }
            if let Some(p) = plan {
                for (i, lib) in p.libs.iter().enumerate() {
                    let keep = &keep;
                    s.spawn_fifo(move |_| keep(Done::Blas(i, p.query(lib))));
                }
            }
        });
        let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
        done.sort_by_key(|d| match d {
            Done::Compiler(i, _) => (0, *i),
            Done::Shown(i, _) => (1, *i),
            Done::Blas(i, _) => (2, *i),
        });
        done
    }

    /// One real compiler, reported under each of its names (`members`); `sibling` is the same
    /// file identified in another language.
    fn compiler(
        &self,
        members: &[usize],
        sibling: Option<&identify::Identified>,
    ) -> Vec<identify::Identified> {
        let found = self.found;
        // a family's own name says more than a generic `cc`
        let rep = *members
            .iter()
            .find(|&&i| matches!(found.exes[i].kind, discover::Kind::Named(_)))
            .unwrap_or(&members[0]);
        let mut id = self.probe_exe(&found.exes[rep], sibling);
        // Known only by generic names (no family's own name is the same file): maybe an MPI
        // implementation's driver under a compiler's name (Cray's `cc`).
        let generic = members
            .iter()
            .all(|&i| found.exes[i].kind == discover::Kind::Generic);
        if generic && id.record.status == cfgmx_model::ProbeStatus::Ok {
            if let Some(m) = identify::shared_mpi(self.reg, &id.exe, found, self.opts.timeout) {
                id = identify::with_mpi(id, m);
            }
        }
        self.spread(&id, members)
    }

    /// One real compiler: identify it, then test its facets right away. The first OpenMP
    /// test doubles as the identity check when it can (one compile instead of a preprocessor
    /// run plus a compile); its result counts only if the family and version it was made for
    /// are what identification settled on.
    fn probe_exe(
        &self,
        exe: &discover::Exe,
        sibling: Option<&identify::Identified>,
    ) -> identify::Identified {
        let (opts, work) = (self.opts, self.work);
        let seed = std::sync::Mutex::new(None);
        let fuse = opts.facets.iter().any(|f| f == "openmp");
        let asked =
            std::sync::Mutex::new(fuse.then(|| self.ask_in_compile(exe, sibling)).flatten());
        let macros_for = |t: &std::sync::Arc<cfgmx_model::Toolchain>, version: &str| {
            // The first compile, made before the version was asked, counts when it was made for
            // this family and version, with the flags its first test tries.
            let mut asked = asked.lock().unwrap_or_else(|e| e.into_inner());
            let fits = asked.as_ref().is_some_and(|(family, a)| {
                std::sync::Arc::ptr_eq(family, t)
                    && a.version.as_deref() == Some(version)
                    && facet::first_openmp(t, exe.lang, version).as_ref() == Some(&a.flags)
            });
            if let Some((_, a)) = asked.take().filter(|_| fits) {
                *seed.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((t.name.clone(), version.to_string(), a.first));
                return a.macros;
            }
            let (first, macros) = facet::openmp_with_identity(
                t,
                &exe.path,
                exe.lang,
                version,
                &self.ids,
                opts.timeout,
                work,
            )?;
            *seed.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((t.name.clone(), version.to_string(), first));
            macros
        };
        let fused: Option<identify::MacrosFor> = if fuse { Some(&macros_for) } else { None };
        let mut r = identify::identify(
            self.reg,
            exe,
            self.found,
            opts.timeout,
            work,
            fused,
            sibling,
        );
        let openmp = seed
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .filter(|(family, version, _)| {
                *family == r.record.family && *version == r.record.version
            })
            .map(|(_, _, result)| result);
        // What the same real file found missing in another language (its identity was
        // taken from it: the same file).
        let known_missing = sibling
            .filter(|s| s.exe.canonical.is_some() && s.exe.canonical == exe.canonical)
            .filter(|s| s.record.family == r.record.family && s.record.version == r.record.version)
            .map_or(&[][..], |s| &s.missing_runtimes[..]);
        facet::test_record(opts, &mut r, work, openmp, known_missing);
        r
    }

    /// The first OpenMP test of `exe`, its compile also asked for the version text where the
    /// family its name belongs to prints it there (see [`identify::ask_in_compile`]): that
    /// text (or the compile's hang) is recorded as the version rule's answer, and the test
    /// is given back for `probe_exe` to count when identification settles on that family.
    fn ask_in_compile(
        &self,
        exe: &discover::Exe,
        sibling: Option<&identify::Identified>,
    ) -> Option<(std::sync::Arc<cfgmx_model::Toolchain>, facet::Asked)> {
        let (t, rule, verbose) = identify::ask_in_compile(self.reg, exe, self.found, sibling)?;
        let read = |text: &str| {
            t.detect_version(&exe.name, &rule.args, text)
                .filter(|d| !d.imprecise)
                .map(|d| d.version.to_string())
        };
        let too = facet::VersionToo {
            verbose,
            read: &read,
        };
        let timeout = self.opts.timeout;
        let asked = facet::openmp_asking_version(
            t, &exe.path, exe.lang, &self.ids, timeout, self.work, too,
        );
        match asked {
            Ok(a) => {
                identify::heard(self.found, exe, &rule.args, Ok(a.text.clone()));
                Some((std::sync::Arc::clone(t), a))
            }
            Err(hung) => {
                if hung {
                    identify::heard(self.found, exe, &rule.args, Err(timeout));
                }
                None
            }
        }
    }

    /// The same compiler under each of its names (`gcc`, `gcc-12`, `cc`).
    fn spread(&self, r: &identify::Identified, members: &[usize]) -> Vec<identify::Identified> {
        members
            .iter()
            .map(|&i| {
                (self.on_event)(ProbeEvent::Step {
                    what: self.found.exes[i].path.display().to_string(),
                });
                r.for_exe(&self.found.exes[i])
            })
            .collect()
    }

    /// An MPI wrapper under each of its names, from what it said (`mpi`): the compiler it runs
    /// when that was probed here (`ids`), else identified through the wrapper itself; why it
    /// cannot be used when it cannot.
    fn wrapper(
        &self,
        members: &[usize],
        mpi: cfgmx_model::MpiRecord,
        ids: &[identify::Identified],
    ) -> Vec<identify::Identified> {
        let exe = &self.found.exes[members[0]];
        if !matches!(
            mpi.status,
            cfgmx_model::ProbeStatus::Ok | cfgmx_model::ProbeStatus::Unrecognised
        ) {
            return self.spread(&identify::unusable_wrapper(exe, mpi), members);
        }
        let real =
            |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let under = Some(&mpi)
            .filter(|m| m.status == cfgmx_model::ProbeStatus::Ok)
            .and_then(|m| m.compiler.as_deref())
            .map(|c| real(std::path::Path::new(c)));
        let known = under.and_then(|u| {
            ids.iter().find(|c| {
                c.exe.lang == exe.lang
                    && c.record.status == cfgmx_model::ProbeStatus::Ok
                    && c.exe.canonical.as_deref() == Some(u.as_path())
            })
        });
        match known {
            Some(c) => self.spread(&identify::as_wrapper(c, exe, mpi), members),
            None => self.spread(&identify::with_mpi(self.probe_exe(exe, None), mpi), members),
        }
    }
}
