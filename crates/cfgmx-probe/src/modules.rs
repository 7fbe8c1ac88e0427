//! Environment modules (`cfgmx probe --modules`): which modules put a compiler, an MPI wrapper
//! or a BLAS library in reach, and what loading them sets.
//!
//! The module system there (Lmod or Environment Modules: `modules/systems.toml` says how to
//! tell them apart and how to ask each) is asked through its own commands: Lmod's `spider -o
//! spider-json` walks the whole hierarchy at once (a compiler module opens the MPI level, an
//! MPI module the library level, and each module file comes with the modules to load before
//! it); `avail` in JSON or terse form answers one level, and `avail.rs`, which asks,
//! follows the hierarchy by loading. Every candidate (a module named like a descriptor, MPI
//! implementation or BLAS provider, or listed in `modules/systems.toml`) is loaded once in
//! all, with its parents, in a clean child environment — a shell that evaluates `lmod bash
//! load ...` (or `modulecmd.tcl bash load ...`) and then runs the probe helper
//! ([`helper_main`]) under what it set — never in cfgmx's own. In a walk that same child first
//! asks the level query (its answer into a file, the helper's JSON alone on stdout), so the
//! load that shows what a module opens is also its probe; spider's candidates are loaded
//! after it answered. The helper probes the directories the load put
//! first on `PATH` and the library paths exactly as a plain probe does, and answers with the
//! profile and the environment it ran under. Candidates load in
//! parallel within the probe's job limit.
//!
//! The state of the module tree (every file under `MODULEPATH` and under the directories the
//! hierarchy opened, with its stat) is part of the probe cache's key, so a warm probe on an
//! unchanged tree runs no module command.

use cfgmx_exec::Cmd;
use cfgmx_model::{ModuleSet, Profile, Provided, Registry};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// First argument under which the probe runs its helper inside a loaded module environment.
pub const HELPER_ARG: &str = "__cfgmx-probe-modules";

const SYSTEMS: &str = include_str!("../../../modules/systems.toml");

#[derive(Debug, Deserialize)]
struct Systems {
    system: Vec<System>,
    names: BTreeMap<String, String>,
    cray: BTreeMap<String, String>,
}

/// One module system (Lmod, Environment Modules): how to find it, load with it and ask it.
#[derive(Debug, Deserialize)]
pub(crate) struct System {
    pub(crate) name: String,
    pub(crate) title: String,
    detect: String,
    commands: Vec<PathBuf>,
    pub(crate) shell: String,
    pub(crate) load: Vec<String>,
    purge: Vec<String>,
    pub(crate) version: Vec<String>,
    pub(crate) version_after: String,
    evaluator: Vec<String>,
    bookkeeping: Vec<String>,
    keep: Vec<String>,
    pub(crate) query: Vec<Query>,
}

/// The output form of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Form {
    /// Lmod's spider JSON: the whole hierarchy, each module with the modules to load first.
    SpiderJson,
    /// `{DIR: {NAME: {...}}}` for the directories in reach.
    AvailJson,
    /// `DIR:` lines, then one module a line.
    Terse,
}

/// Where a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One way to ask a module system which modules there are.
#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    /// Spider's whole hierarchy at once, or one level per run (`avail`: the hierarchy is
    /// followed by loading).
    pub(crate) form: Form,
    /// The program beside the module command to run instead of it.
    #[serde(default)]
    program: Option<String>,
    /// Its arguments; `{MODULEPATH}` stands for the tree's directories.
    args: Vec<String>,
    /// Where the answer is printed.
    pub(crate) stream: Stream,
    /// The first version that has this form (the system's `version` answer).
    #[serde(default)]
    pub(crate) since: Option<String>,
    /// Terse form: a name ends at a blank or the first of these.
    #[serde(default)]
    pub(crate) marks: Vec<String>,
    /// JSON form: the entry types that are module files.
    #[serde(default)]
    pub(crate) types: Vec<String>,
}

/// Fingerprint of the module-system data (part of the cache key: new names mean new candidates).
pub fn data_fingerprint() -> String {
    crate::fingerprint([SYSTEMS])
}

fn systems() -> &'static Systems {
    static S: std::sync::OnceLock<Systems> = std::sync::OnceLock::new();
    // The file is embedded and a unit test parses it: a failure here is a build defect.
    S.get_or_init(|| toml::from_str(SYSTEMS).expect("modules/systems.toml parses"))
}

/// The module system to ask and the clean environment children start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOptions {
    /// The module system's name in `modules/systems.toml` (`lmod`, `environment-modules`).
    pub system: String,
    /// Its command: Lmod's `lmod`, Environment Modules' `modulecmd.tcl`.
    pub command: PathBuf,
    /// The clean child environment: `PATH` and the variables the module system needs.
    pub env: Vec<(String, String)>,
    /// The caller's whole environment when it has modules loaded (`LOADEDMODULES`), else
    /// empty: a cold probe purges them once (`lmod bash --force purge` under it) so that the
    /// clean environment's `PATH` and `MODULEPATH` are a fresh login's, not the caller's.
    pub loaded: Vec<(String, String)>,
}

impl ModuleOptions {
    /// The data file's facts about this system.
    pub(crate) fn sys(&self) -> &'static System {
        let all = &systems().system;
        all.iter()
            .find(|s| s.name == self.system)
            .unwrap_or(&all[0])
    }

    pub(crate) fn var(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// The `MODULEPATH` directories, in order.
    pub fn module_dirs(&self) -> Vec<PathBuf> {
        split(self.var("MODULEPATH").unwrap_or_default())
            .into_iter()
            .map(PathBuf::from)
            .collect()
    }
}

/// Finds the module system from the caller's environment (`get` reads one variable) and the
/// `PATH` the probe searches: the first system of the data file whose variable (`LMOD_CMD`,
/// `MODULES_CMD`) is set, else the first whose command is installed. `Err` says what is
/// missing, for a usage message.
pub fn locate(
    get: &dyn Fn(&str) -> Option<String>,
    path: Option<&str>,
    caller: Vec<(String, String)>,
) -> Result<ModuleOptions, String> {
    let all = &systems().system;
    let by_var = all.iter().find_map(|s| {
        get(&s.detect)
            .filter(|c| !c.is_empty())
            .map(|c| (s, PathBuf::from(c)))
    });
    let found = by_var.or_else(|| {
        all.iter().find_map(|s| {
            s.commands
                .iter()
                .find(|c| c.is_file())
                .map(|c| (s, c.clone()))
        })
    });
    let Some((s, command)) = found else {
        let vars: Vec<&str> = all.iter().map(|s| s.detect.as_str()).collect();
        let places: Vec<String> = all
            .iter()
            .flat_map(|s| s.commands.iter().map(|c| c.display().to_string()))
            .collect();
        return Err(format!(
            "no module system found: {} is not set and no module command is at {}",
            vars.join(" or "),
            places.join(", ")
        ));
    };
    if get("MODULEPATH").is_none_or(|m| m.is_empty()) {
        return Err("MODULEPATH is not set: there is no module tree to ask".to_string());
    }
    let mut env: Vec<(String, String)> = s
        .keep
        .iter()
        .filter_map(|k| get(k).map(|v| (k.clone(), v)))
        .collect();
    env.push((
        "PATH".to_string(),
        path.unwrap_or("/usr/bin:/bin").to_string(),
    ));
    let loaded = if get("LOADEDMODULES").is_some_and(|l| !l.is_empty()) {
        caller
    } else {
        Vec::new()
    };
    Ok(ModuleOptions {
        system: s.name.clone(),
        command,
        env,
        loaded,
    })
}

fn split(s: &str) -> Vec<String> {
    s.split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

/// The tree's state: the workspace's content hash over the module command's stat and each of
/// `dirs` with its state (`dir_state`), in order. An edited, added or removed module file changes
/// it. A digest, not a stamp per file: a site's tree has thousands of files, and the warm
/// probe, which stats them all, must not also read, parse and compare a stamp for each. The
/// directories are walked in parallel within `jobs`: their stats are the warm probe's cost.
pub fn tree_state(command: &Path, dirs: &[PathBuf], jobs: usize) -> String {
    use rayon::prelude::*;
    let go = || dirs.par_iter().map(|d| dir_state(d)).collect::<Vec<_>>();
    let states = match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
    {
        Ok(p) => p.install(go),
        Err(_) => go(),
    };
    combine(command, dirs, &states)
}

fn combine(command: &Path, dirs: &[PathBuf], states: &[String]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut h = cfgmx_model::hash::ContentHasher::default();
    h.update(&stat_bytes(std::fs::metadata(command)));
    for (d, s) in dirs.iter().zip(states) {
        // A path has no NUL: ended by one, each record reads back one way.
        h.update(d.as_os_str().as_bytes());
        h.update(&[0]);
        h.update(s.as_bytes());
    }
    h.finish()
}

/// Device, inode, size and mtime (ns), or `-1`s for a file that cannot be stat'ed.
fn stat_bytes(meta: std::io::Result<std::fs::Metadata>) -> Vec<u8> {
    use std::os::unix::fs::MetadataExt;
    let stat = meta.map_or([-1; 4], |m| {
        let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        [m.dev() as i128, m.ino() as i128, m.size() as i128, mtime]
    });
    stat.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// One directory's state: every file and directory under it (recursively, at most 8 levels
/// down, in name order) with its path and stat (through a link, what it points to).
pub(crate) fn dir_state(root: &Path) -> String {
    let mut h = cfgmx_model::hash::ContentHasher::default();
    let mut count = 0usize;
    let mut add = |p: &Path, meta: std::io::Result<std::fs::Metadata>| {
        use std::os::unix::ffi::OsStrExt;
        count += 1;
        h.update(p.as_os_str().as_bytes());
        h.update(&[0]);
        h.update(&stat_bytes(meta));
        count
    };
    let mut todo: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = todo.pop() {
        // Bounded: a MODULEPATH entry pointing at `/` must not walk the machine.
        if add(&dir, std::fs::metadata(&dir)) > 200_000 {
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<std::fs::DirEntry> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for e in entries {
            // The entry's type from the listing, and its stat relative to the open directory
            // (no path walk per file); a link is followed, as the module command follows it.
            let link_or_unknown = e.file_type().map_or(true, |t| t.is_symlink());
            let meta = if link_or_unknown {
                std::fs::metadata(e.path())
            } else {
                e.metadata()
            };
            if meta.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
                if depth < 8 {
                    subdirs.push((e.path(), depth + 1));
                }
            } else {
                add(&e.path(), meta);
            }
        }
        todo.extend(subdirs.into_iter().rev());
    }
    h.finish()
}

/// One module file of spider's answer.
#[derive(Debug, Deserialize)]
struct SpiderEntry {
    #[serde(rename = "fullName")]
    full_name: String,
    #[serde(rename = "parentAA", default)]
    parents: Vec<Vec<String>>,
    #[serde(default)]
    mpath: Option<String>,
    #[serde(default)]
    hidden: bool,
}

/// A module to load (with its parents first) and probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub load: Vec<String>,
}

/// What asking the module system found: the candidates and the directories of the hierarchy,
/// and, from a walk, each candidate's probe answer (its load to see what level it opens ran the
/// probe helper too).
#[derive(Debug, Default)]
pub struct Tree {
    pub candidates: Vec<Candidate>,
    pub dirs: Vec<PathBuf>,
    pub(crate) probed: std::collections::HashMap<Vec<String>, Result<HelperAnswer, String>>,
    /// A walk's [`dir_state`] of each directory, taken when it was found: before any module in
    /// it was loaded.
    pub(crate) states: std::collections::HashMap<PathBuf, String>,
}

impl Tree {
    /// The tree's state ([`tree_state`]) as it was before the loads that its answer comes from
    /// (a walk's directories as each was found, the others now): a module file edited while
    /// the probe ran changes the next probe's state, which is then asked again.
    pub fn state(&self, command: &Path) -> String {
        let states: Vec<String> = self
            .dirs
            .iter()
            .map(|d| self.states.get(d).cloned().unwrap_or_else(|| dir_state(d)))
            .collect();
        combine(command, &self.dirs, &states)
    }
}

/// Module names that may provide a compiler, MPI or BLAS: descriptor, implementation and
/// provider names, and the data file's own.
pub(crate) fn wanted(reg: &Registry, short: &str) -> bool {
    let s = systems();
    let n = short
        .rsplit('/')
        .next()
        .unwrap_or(short)
        .to_ascii_lowercase();
    reg.toolchains.keys().any(|k| k.eq_ignore_ascii_case(&n))
        || reg.mpi.keys().any(|k| k.eq_ignore_ascii_case(&n))
        || reg.providers.keys().any(|k| k.eq_ignore_ascii_case(&n))
        || s.names.keys().any(|k| k.eq_ignore_ascii_case(&n))
        || s.cray.keys().any(|k| k.eq_ignore_ascii_case(&n))
}

/// The family a Cray programming environment module selects (`PrgEnv-gnu` -> `gcc`).
pub fn cray_family(module: &str) -> Option<&'static str> {
    let short = module.split('/').next().unwrap_or(module);
    systems()
        .cray
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(short))
        .map(|(_, v)| v.as_str())
}

/// The clean environment of a caller with modules loaded: what the module system's own purge
/// leaves of its `PATH`, `MODULEPATH` and the variables the data file keeps (one module command,
/// on the cold path only). Unchanged when nothing is loaded.
pub fn purged(mo: &ModuleOptions, timeout: Duration) -> Result<ModuleOptions, String> {
    if mo.loaded.is_empty() {
        return Ok(mo.clone());
    }
    let sys = mo.sys();
    let mut cmd = evaluator(mo)
        .arg(format!(
            "eval \"$(\"$0\" {} {})\" || exit 97; exec env -0",
            words(std::slice::from_ref(&sys.shell)),
            words(&sys.purge)
        ))
        .arg(&mo.command)
        .timeout(timeout);
    cmd.clear_env = true;
    for (k, v) in &mo.loaded {
        cmd = cmd.env(k, v);
    }
    let o = cmd.output();
    if !o.success() {
        return Err(format!(
            "`module purge` (to start from a clean environment) failed: {}",
            o.stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
        ));
    }
    let after: BTreeMap<&str, &str> = o
        .stdout
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let keep = &sys.keep;
    let env = mo
        .env
        .iter()
        .filter_map(|(k, _)| {
            let clean = k == "PATH" || keep.contains(k);
            clean.then(|| after.get(k.as_str()).map(|v| (k.clone(), v.to_string())))?
        })
        .collect();
    Ok(ModuleOptions {
        system: mo.system.clone(),
        command: mo.command.clone(),
        env,
        loaded: Vec::new(),
    })
}

/// Shell words for a script (the data file's arguments, quoted for `sh`).
pub(crate) fn words(ws: &[String]) -> String {
    ws.iter()
        .map(|w| cfgmx_exec::shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A query's command line: the program beside the module command (or the command itself) with
/// the query's arguments, `{MODULEPATH}` filled in.
pub(crate) fn query_cmd(mo: &ModuleOptions, q: &Query) -> Cmd {
    let program = match &q.program {
        Some(p) => mo
            .command
            .parent()
            .map(|d| d.join(p))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => mo.command.clone(),
    };
    let mp = mo.var("MODULEPATH").unwrap_or_default();
    clean(Cmd::new(program), mo).args(q.args.iter().map(|a| a.replace("{MODULEPATH}", mp)))
}

/// The query's arguments, for a script that runs the module command as `"$0"`.
pub(crate) fn query_words(q: &Query) -> String {
    words(&q.args)
}

pub(crate) fn parse_spider(reg: &Registry, json: &str, roots: &[PathBuf]) -> Result<Tree, String> {
    let all: BTreeMap<String, BTreeMap<String, SpiderEntry>> =
        serde_json::from_str(json).map_err(|e| format!("not spider's JSON: {e}"))?;
    let mut tree = Tree {
        dirs: roots.to_vec(),
        ..Tree::default()
    };
    for files in all.values() {
        for e in files.values() {
            if let Some(m) = &e.mpath {
                let m = PathBuf::from(m);
                if !tree.dirs.contains(&m) {
                    tree.dirs.push(m);
                }
            }
        }
    }
    for (short, files) in &all {
        if !wanted(reg, short) {
            continue;
        }
        for e in files.values().filter(|e| !e.hidden) {
            // The first way to reach it (a module under two compilers has one file per
            // compiler, each with its own parents).
            let mut load = e.parents.first().cloned().unwrap_or_default();
            load.push(e.full_name.clone());
            let c = Candidate { load };
            if !tree.candidates.contains(&c) {
                tree.candidates.push(c);
            }
        }
    }
    tree.candidates.sort_by(|a, b| a.load.cmp(&b.load));
    Ok(tree)
}

/// The shell that evaluates a module command's output (`sh -c`, from the data file), ready for
/// its script.
pub(crate) fn evaluator(mo: &ModuleOptions) -> Cmd {
    let ev = &mo.sys().evaluator;
    Cmd::new(ev.first().map_or("/bin/sh", String::as_str)).args(ev.iter().skip(1))
}

/// A command in the clean environment: nothing of cfgmx's own but what the data file keeps.
pub(crate) fn clean(cmd: Cmd, mo: &ModuleOptions) -> Cmd {
    let mut cmd = cmd;
    cmd.clear_env = true;
    for (k, v) in &mo.env {
        cmd = cmd.env(k, v);
    }
    cmd
}

/// What the helper is told: where to look and how to probe.
#[derive(Debug, Serialize, Deserialize)]
pub struct HelperSpec {
    /// Directories not to probe: the clean `PATH`'s and the parents'.
    pub exclude: Vec<String>,
    pub timeout_ms: u64,
    pub facets: Vec<String>,
    pub jobs: usize,
}

/// The helper's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperAnswer {
    env: BTreeMap<String, String>,
    profile: Profile,
}

/// Runs in the child, under the loaded modules' environment (`vars`): probes the directories
/// the load added and writes the answer as JSON to `out` (the helper's stdout, which the probe
/// that ran it reads). Returns the exit code.
pub fn helper_main(
    args: &[String],
    vars: BTreeMap<String, String>,
    me: PathBuf,
    out: &mut dyn std::io::Write,
) -> i32 {
    let Some(spec) = args
        .first()
        .and_then(|a| serde_json::from_str::<HelperSpec>(a).ok())
    else {
        return 2;
    };
    let added = |var: &str| -> Vec<PathBuf> {
        split(vars.get(var).map(String::as_str).unwrap_or_default())
            .into_iter()
            .filter(|d| !spec.exclude.contains(d))
            .map(PathBuf::from)
            .collect()
    };
    let path = std::env::join_paths(added("PATH")).unwrap_or_default();
    let mut libs = added("LD_LIBRARY_PATH");
    libs.extend(added("LIBRARY_PATH"));
    let opts = crate::ProbeOptions {
        timeout: Duration::from_millis(spec.timeout_ms),
        fresh: true,
        facets: spec.facets,
        jobs: spec.jobs.max(1),
        path: Some(path),
        helper: Some(me),
        lib_dirs: Some(libs),
        ..crate::ProbeOptions::default()
    };
    let reg = Registry::builtin();
    let mut found = crate::discover::discover(&reg, &opts);
    // Probed are only the directories the load added, but a wrapper's compiler is found as the
    // wrapper finds it: on the whole `PATH` (the parent compiler module's directory included).
    found.bin_dirs = split(vars.get("PATH").map(String::as_str).unwrap_or_default())
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let mut profile = crate::run(&reg, &opts, &found, &|_| {});
    // The system's default BLAS is the system's: a module's library is loaded by its module.
    for b in &mut profile.blas {
        b.is_default = false;
    }
    profile.default_blas = None;
    let answer = HelperAnswer { env: vars, profile };
    match serde_json::to_string(&answer) {
        Ok(s) => {
            if out.write_all(s.as_bytes()).is_err() {
                return 1;
            }
            0
        }
        Err(_) => 1,
    }
}

fn bookkeeping(sys: &System, name: &str) -> bool {
    sys.bookkeeping.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == p,
    })
}

/// The probe helper as a candidate's loaded child runs it: the program (the cfgmx binary), its
/// spec and the time one load and its probe may take.
pub(crate) struct Helper {
    path: PathBuf,
    spec: String,
    timeout: Duration,
}

impl Helper {
    /// The helper for children of `mo`'s clean environment; `None` without a helper binary.
    pub(crate) fn new(opts: &crate::ProbeOptions, mo: &ModuleOptions) -> Option<Helper> {
        let spec = HelperSpec {
            // The parents' directories are probed again here: a wrapper over a compiler probed
            // in the same run is known to be that compiler (its identity through the wrapper
            // alone is weaker); the records are kept once, under the shortest module list.
            exclude: split(mo.var("PATH").unwrap_or_default()),
            timeout_ms: opts.timeout.as_millis() as u64,
            facets: opts.facets.clone(),
            jobs: 1,
        };
        Some(Helper {
            path: opts.helper.clone()?,
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            // Each load runs a whole probe of what it adds: its budget is many commands'.
            timeout: opts.timeout * 30,
        })
    }
}

/// Adds what every candidate's load provides to `profile`: the answers a walk's loads already
/// gave ([`Tree::probed`]), and for the others (spider's tree) a load of each now, in parallel
/// within the probe's jobs. Each candidate is loaded once in all.
pub(crate) fn probe_modules(
    opts: &crate::ProbeOptions,
    mo: &ModuleOptions,
    helper: &Helper,
    mut tree: Tree,
    profile: &mut Profile,
    on_event: &(dyn Fn(crate::ProbeEvent) + Sync),
) {
    let base: BTreeMap<&str, &str> = mo
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let todo: Vec<&Candidate> = tree
        .candidates
        .iter()
        .filter(|c| !tree.probed.contains_key(&c.load))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build();
    if !todo.is_empty() {
        on_event(crate::ProbeEvent::Phase {
            name: "modules",
            total: todo.len(),
        });
    }
    let go = || {
        use rayon::prelude::*;
        todo.par_iter()
            .map(|c| {
                let a = load_and_probe(mo, helper, c, None);
                on_event(crate::ProbeEvent::Step {
                    what: c.load.join(" "),
                });
                a
            })
            .collect::<Vec<_>>()
    };
    let answers = match pool {
        Ok(p) => p.install(go),
        Err(_) => go(),
    };
    for (c, a) in todo.iter().zip(answers) {
        tree.probed.insert(c.load.clone(), a);
    }
    let answers = tree
        .candidates
        .iter()
        .map(|c| {
            tree.probed
                .remove(&c.load)
                .unwrap_or_else(|| Err(format!("module load {}: not probed", c.load.join(" "))))
        })
        .collect();
    merge(profile, mo.sys(), &tree.candidates, answers, &base);
}

/// Where a walk's loaded child writes its level query's answer: the query, and the file.
pub(crate) type LevelQuery<'a> = (&'a Query, &'a Path);

/// Loads candidate `c` in a clean shell and runs the probe helper under what the load set: its
/// answer, or why there is none. In a walk (`level`), the same child first asks the level query
/// under the load, its answer (the stream the data file names) written to the file and the
/// file removed when the query fails, so the helper's JSON alone is on stdout and one load
/// serves both.
pub(crate) fn load_and_probe(
    mo: &ModuleOptions,
    helper: &Helper,
    c: &Candidate,
    level: Option<LevelQuery>,
) -> Result<HelperAnswer, String> {
    let sys = mo.sys();
    let load = words(&[vec![sys.shell.clone()], sys.load.clone()].concat());
    let ask = level.map_or(String::new(), |(q, _)| {
        let into = match q.stream {
            Stream::Stderr => "2>\"$a\" >/dev/null",
            Stream::Stdout => ">\"$a\" 2>/dev/null",
        };
        format!(
            "\"$l\" {} {into} </dev/null || rm -f \"$a\"; ",
            query_words(q)
        )
    });
    // `$0` is the module command, `$1` the helper, `$2` its spec, `$3` the level answer's file
    // (empty outside a walk); the rest are the modules in load order.
    let script = format!(
        "l=\"$0\" h=\"$1\" s=\"$2\" a=\"$3\"; shift 3; eval \"$(\"$l\" {load} \"$@\")\" || exit 97; {ask}exec \"$h\" {HELPER_ARG} \"$s\""
    );
    let o = clean(evaluator(mo), mo)
        .arg(&script)
        .arg(&mo.command)
        .arg(&helper.path)
        .arg(&helper.spec)
        .arg(level.map_or(Path::new(""), |(_, f)| f))
        .args(&c.load)
        .timeout(helper.timeout)
        .output();
    if !o.success() {
        let why = o
            .stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        return Err(format!("module load {} failed: {why}", c.load.join(" ")));
    }
    serde_json::from_str::<HelperAnswer>(&o.stdout).map_err(|e| {
        format!(
            "module load {}: unreadable probe answer: {e}",
            c.load.join(" ")
        )
    })
}

/// Adds what each candidate's load provides to `profile`: its records (one per file and
/// identity, kept under the first, shortest, module list that provides it; the same file
/// under another identity, Cray's `cc` under another PrgEnv, is another record), its module
/// set (the variables it changed from `base`), and its warnings.
fn merge(
    profile: &mut Profile,
    sys: &System,
    candidates: &[Candidate],
    answers: Vec<Result<HelperAnswer, String>>,
    base: &BTreeMap<&str, &str>,
) {
    let (mut compilers, mut mpi, mut blas) = (Vec::new(), Vec::new(), Vec::new());
    let mut taken = std::collections::HashSet::new();
    for (c, a) in candidates.iter().zip(answers) {
        let a = match a {
            Ok(a) => a,
            Err(w) => {
                profile.warnings.push(w);
                continue;
            }
        };
        let env: IndexMap<String, String> = a
            .env
            .into_iter()
            .filter(|(k, v)| !bookkeeping(sys, k) && base.get(k.as_str()) != Some(&v.as_str()))
            .collect();
        let mut set = ModuleSet {
            load: c.load.clone(),
            env,
            ..ModuleSet::default()
        };
        let p = a.profile;
        for r in p.compilers {
            let id = Provided::compiler(&r);
            if taken.insert(("c", id.clone(), r.languages.clone())) {
                if !set.compilers.contains(&id) {
                    set.compilers.push(id);
                }
                compilers.push(r);
            }
        }
        for r in p.mpi {
            let id = Provided::mpi(&r);
            if taken.insert(("m", id.clone(), vec![r.language])) {
                if !set.mpi.contains(&id) {
                    set.mpi.push(id);
                }
                mpi.push(r);
            }
        }
        for r in p.blas {
            let id = Provided::blas(&r);
            if taken.insert(("b", id.clone(), Vec::new())) {
                set.blas.push(id);
                blas.push(r);
            }
        }
        profile.warnings.extend(
            p.warnings
                .into_iter()
                .map(|w| format!("module load {}: {w}", c.load.join(" "))),
        );
        if !(set.compilers.is_empty() && set.mpi.is_empty() && set.blas.is_empty()) {
            profile.modules.push(set);
        }
    }
    // Module-provided records come first: whoever takes the first matching record
    // (concretisation) gets the module's compiler, which a site means to be used.
    compilers.append(&mut profile.compilers);
    profile.compilers = compilers;
    mpi.append(&mut profile.mpi);
    profile.mpi = mpi;
    blas.append(&mut profile.blas);
    profile.blas = blas;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_parses_and_names_cray_environments() {
        assert_eq!(cray_family("PrgEnv-gnu/8.5.0"), Some("gcc"));
        assert_eq!(cray_family("PrgEnv-cray"), Some("cce"));
        assert_eq!(cray_family("gcc/12"), None);
        let lmod = &systems().system[0];
        assert!(bookkeeping(lmod, "_ModuleTable001_"));
        assert!(bookkeeping(lmod, "LOADEDMODULES"));
        assert!(!bookkeeping(lmod, "PATH"));
    }

    #[test]
    fn the_tree_state_changes_with_any_module_file_and_only_then() {
        let d = tempfile::tempdir().unwrap();
        let core = d.path().join("Core");
        let level = d.path().join("Compiler/gcc/12");
        std::fs::create_dir_all(core.join("gcc")).unwrap();
        std::fs::create_dir_all(level.join("mpich")).unwrap();
        let shared = d.path().join("shared-4.0");
        std::fs::write(core.join("gcc/12"), "#%Module\n").unwrap();
        std::fs::write(&shared, "#%Module\n").unwrap();
        std::os::unix::fs::symlink(&shared, level.join("mpich/4.0")).unwrap();
        let cmd = d.path().join("modulecmd.tcl");
        std::fs::write(&cmd, "").unwrap();
        let dirs = [core.clone(), level.clone()];
        let state = || tree_state(&cmd, &dirs, 2);
        let before = state();
        assert_eq!(state(), before, "an unchanged tree has one state");
        // Edited in place (a new size), through a link, added, removed: each is another state.
        let edits: [&dyn Fn(); 4] = [
            &|| std::fs::write(core.join("gcc/12"), "#%Module\nsetenv A 1\n").unwrap(),
            &|| std::fs::write(&shared, "#%Module\nsetenv B 1\n").unwrap(),
            &|| std::fs::write(level.join("mpich/4.1"), "#%Module\n").unwrap(),
            &|| std::fs::remove_file(level.join("mpich/4.1")).unwrap(),
        ];
        let mut last = before;
        for (i, edit) in edits.iter().enumerate() {
            edit();
            let now = state();
            assert_ne!(now, last, "edit {i}");
            last = now;
        }
        // Only the directories asked for: another level's files are not the tree's.
        std::fs::write(d.path().join("Compiler/gcc/other"), "").unwrap();
        assert_eq!(state(), last);
    }

    #[test]
    fn the_system_is_the_one_whose_variable_is_set() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let em = locate(
            &env(&[("MODULES_CMD", "/x/modulecmd.tcl"), ("MODULEPATH", "/m")]),
            None,
            Vec::new(),
        )
        .unwrap();
        assert_eq!(em.system, "environment-modules");
        assert_eq!(em.command, PathBuf::from("/x/modulecmd.tcl"));
        assert!(em.env.iter().any(|(k, _)| k == "MODULES_CMD"));
        let lmod = locate(
            &env(&[("LMOD_CMD", "/x/lmod"), ("MODULEPATH", "/m")]),
            None,
            Vec::new(),
        )
        .unwrap();
        assert_eq!(lmod.system, "lmod");
    }

    #[test]
    fn spider_hierarchy_gives_parents_first_and_only_wanted_modules() {
        let json = r#"{"gcc":{"/m/core/gcc/11.lua":{"fullName":"gcc/11","pathA":{"/b/gcc11":1},"mpath":"/m/core"}},
            "mpich":{"/m/comp/gcc/11/mpich/4.lua":{"fullName":"mpich/4","pathA":{"/b/mpich":1},"parentAA":[["gcc/11"]],"mpath":"/m/comp/gcc/11"}},
            "cmake":{"/m/core/cmake/3.lua":{"fullName":"cmake/3","mpath":"/m/core"}}}"#;
        let t = parse_spider(&Registry::builtin(), json, &[PathBuf::from("/m/core")]).unwrap();
        let loads: Vec<Vec<String>> = t.candidates.iter().map(|c| c.load.clone()).collect();
        assert_eq!(
            loads,
            vec![
                vec!["gcc/11".to_string()],
                vec!["gcc/11".into(), "mpich/4".into()]
            ]
        );
        assert_eq!(
            t.dirs,
            vec![PathBuf::from("/m/core"), PathBuf::from("/m/comp/gcc/11")]
        );
    }
}
