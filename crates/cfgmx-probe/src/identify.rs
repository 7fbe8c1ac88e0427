//! What an executable really is: version text read with each candidate descriptor's rules,
//! family confirmed by the preprocessor's identity macros (which see through `mpicc`, `ccache`,
//! a `cc` symlink), and for MPI wrappers the implementation and the compiler underneath.

use crate::discover::{Exe, Found, Kind, SharedRuns};
use cfgmx_exec::{Cmd, Outcome};
use cfgmx_model::mpi::NameMatch;
use cfgmx_model::toolchain::{Verbose, VersionRule};
use cfgmx_model::{CompilerRecord, Language, MpiImpl, MpiRecord, ProbeStatus, Registry, Toolchain};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One executable identified (facets not yet tested).
#[derive(Debug, Clone)]
pub struct Identified {
    pub exe: Exe,
    pub record: CompilerRecord,
    pub mpi: Option<MpiRecord>,
    /// The descriptor, when the family is known.
    pub toolchain: Option<Arc<Toolchain>>,
    /// OpenMP runtimes its facet tests found not installed, with why: the same real file in
    /// another language finds them missing too (its header and libraries are the same
    /// installation's), without compiling again.
    pub missing_runtimes: Vec<(String, String)>,
}

impl Identified {
    /// Whether its family was confirmed by its identity macros, with nothing amiss.
    pub fn confirmed(&self) -> bool {
        self.record.status == ProbeStatus::Ok
            && self.record.error.is_none()
            && self.toolchain.is_some()
    }

    /// The same identification reported under another path to the same real file.
    pub fn for_exe(&self, exe: &Exe) -> Identified {
        let mut c = self.clone();
        c.exe = exe.clone();
        c.record.path = exe.path.display().to_string();
        c.record.real_path = exe
            .canonical
            .as_ref()
            .filter(|r| **r != exe.path)
            .map(|r| r.display().to_string());
        if let Some(m) = &mut c.mpi {
            m.path = c.record.path.clone();
        }
        c
    }
}

/// `#define NAME VALUE` lines -> NAME -> VALUE.
pub fn parse_macros(text: &str) -> IndexMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ').unwrap_or((l, ""));
            // function-like macros are not identity markers
            (!name.contains('(')).then(|| (name.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// Every macro name any descriptor's identity rules mention, each once: what a program must
/// report for any family to be confirmed or ruled out. Names that are not C identifiers are
/// left out (they could not be tested with `#ifdef`; their family then takes the slow path).
pub fn identity_macros(reg: &Registry) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in reg.toolchains.values() {
        let i = &t.identity;
        for m in i
            .all
            .iter()
            .chain(&i.none)
            .chain(&i.version)
            .chain(&i.fortran_all)
        {
            let ident = m
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ident && !out.contains(m) {
                out.push(m.clone());
            }
        }
    }
    out
}

fn identity_ok(t: &Toolchain, lang: Language, m: &IndexMap<String, String>) -> bool {
    let all = if lang == Language::Fortran && !t.identity.fortran_all.is_empty() {
        &t.identity.fortran_all
    } else {
        &t.identity.all
    };
    !all.is_empty()
        && all.iter().all(|k| m.contains_key(k))
        && !t.identity.none.iter().any(|k| m.contains_key(k))
}

/// A run's end that ends the identification: the status and message.
type Fatal = (ProbeStatus, String);

/// A run that ended the probe of this executable, as a status and message.
fn fatal(o: &Outcome) -> Option<Fatal> {
    if let Some(e) = &o.spawn_error {
        return Some((ProbeStatus::NotExecutable, e.clone()));
    }
    if o.timed_out {
        return Some((ProbeStatus::TimedOut, o.to_string()));
    }
    if o.signal.is_some() {
        return Some((ProbeStatus::Crashed, o.to_string()));
    }
    None
}

struct Runner<'a> {
    exe: &'a Path,
    timeout: Duration,
    /// The run that timed out, once one did: the executable is not asked again (every later
    /// run answers with it), so a compiler that answers its version and then hangs costs one
    /// timeout, not one per run, and the probe ends within its timeout.
    hung: Option<Outcome>,
    memo: HashMap<Vec<String>, Outcome>,
    /// Set when this executable's runs may be shared with other names of the same real file.
    shared: Option<(&'a SharedRuns, &'a Path)>,
}

/// Programs that become another program depending on the name they are run under: two names
/// of one of these are two compilers, so their runs are never shared. (MPI wrappers of this
/// kind, `opal_wrapper`, are named by the MPI data: [`Found::dispatchers`].)
pub const BY_NAME: &[&str] = &["ccache", "sccache", "distcc", "icecc", "buildcache"];

/// Whether `exe` is a link to a program that acts by the name it is run under (`ccache`).
pub fn by_name(exe: &Exe, found: &Found) -> bool {
    exe.canonical
        .as_ref()
        .and_then(|r| r.file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|n| BY_NAME.contains(&n) || found.dispatchers.iter().any(|d| d == n))
}

impl<'a> Runner<'a> {
    fn new(exe: &'a Exe, timeout: Duration, found: &'a Found) -> Runner<'a> {
        // A compiler binary answers `--version` the same under each of its names; a wrapper
        // script (`mpicc`) or a dispatcher (`ccache`) may not.
        let shared = match (&exe.kind, &exe.canonical) {
            (Kind::Named(_), Some(real)) if !by_name(exe, found) => {
                Some((&found.runs, real.as_path()))
            }
            _ => None,
        };
        Runner {
            exe: &exe.path,
            timeout,
            hung: None,
            memo: HashMap::new(),
            shared,
        }
    }

    /// Called when something run for this executable outside the runner (the fused OpenMP
    /// test) used up a whole timeout.
    fn timed_out_elsewhere(&mut self) {
        let command = self.exe.display().to_string();
        let timeout = self.timeout;
        self.hung
            .get_or_insert_with(|| Outcome::hung(command, timeout));
    }

    fn run(&mut self, args: &[String]) -> &Outcome {
        let (exe, timeout) = (self.exe, self.timeout);
        let shared = self.shared;
        let hung = &mut self.hung;
        self.memo.entry(args.to_vec()).or_insert_with(|| {
            if let Some(h) = hung {
                return h.clone();
            }
            let run = || Cmd::new(exe).args(args).timeout(timeout).output();
            let o = match shared {
                Some((runs, real)) => runs.get(real, args, run),
                None => run(),
            };
            if o.timed_out {
                *hung = Some(o.clone());
            }
            o
        });
        &self.memo[args]
    }
}

fn rule_applies(t: &Toolchain, exe: &Exe, only: &[String]) -> bool {
    only.is_empty()
        || t.executables
            .matches(exe.lang, &exe.name)
            .is_some_and(|b| only.iter().any(|o| o == b))
}

/// Which version rules [`read_version`] may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Only those whose arguments have already been run: no new run.
    Heard,
    /// Every rule, running what has not been run yet.
    Run,
}

/// When [`read_texts`] stops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// At the first round that gives any match (the macros are not known yet: the caller
    /// confirms the claim).
    FirstClaim,
    /// When a family is confirmed by the macros, or nothing is left to run.
    Confirmed,
}

/// Reads a version with `t`'s rules; Err when a run hung, crashed or could not start.
fn read_version(
    t: &Toolchain,
    exe: &Exe,
    r: &mut Runner,
    ask: Ask,
) -> Result<Option<String>, Fatal> {
    let mut imprecise: Option<String> = None;
    for rule in &t.version {
        if !rule_applies(t, exe, &rule.only_names) {
            continue;
        }
        if ask == Ask::Heard && !r.memo.contains_key(&rule.args) {
            continue;
        }
        let o = r.run(&rule.args);
        if let Some(f) = fatal(o) {
            return Err(f);
        }
        let ok = o.success() || o.code.is_some_and(|c| rule.ok_status.contains(&c));
        if !ok {
            continue;
        }
        if let Some(d) = t.detect_version(&exe.name, &rule.args, &o.combined()) {
            if d.imprecise {
                imprecise.get_or_insert(d.version.to_string());
                continue;
            }
            return Ok(Some(d.version.to_string()));
        }
    }
    Ok(imprecise)
}

fn version_from_macros(t: &Toolchain, m: &IndexMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = t
        .identity
        .version
        .iter()
        .map_while(|k| m.get(k).map(String::as_str))
        .collect();
    (!parts.is_empty() && parts.iter().all(|p| p.parse::<u64>().is_ok())).then(|| parts.join("."))
}

fn first_line(s: &str) -> String {
    let l = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    l.chars().take(160).collect()
}

/// A family whose version text matched, with the version it read.
type Claim<'t> = (&'t Arc<Toolchain>, String);

/// The families among `named` whose version text matches, with their versions; a family
/// confirmed by `macros` comes first and ends the search. Outputs already at hand are read by
/// every family before a new argument is run, so `clang` (also AOCC's and Apple's name) is
/// settled by the one `--version` they share.
fn read_texts<'t>(
    named: &[&'t Arc<Toolchain>],
    exe: &Exe,
    r: &mut Runner,
    macros: Option<&IndexMap<String, String>>,
    until: Until,
) -> Result<Vec<Claim<'t>>, Fatal> {
    let mut by_text: Vec<(&Arc<Toolchain>, String)> = Vec::new();
    let mut todo = named.to_vec();
    loop {
        let mut rest = Vec::new();
        for t in todo {
            match read_version(t, exe, r, Ask::Heard)? {
                Some(v) => {
                    let confirmed = macros.is_some_and(|m| identity_ok(t, exe.lang, m));
                    by_text.push((t, v));
                    if confirmed {
                        by_text.rotate_right(1);
                        rest.clear();
                        break;
                    }
                }
                None => rest.push(t),
            }
        }
        if until == Until::FirstClaim && !by_text.is_empty() {
            break;
        }
        // one new run: the first argument a remaining family has not heard yet
        let next = rest.iter().find_map(|t| {
            t.version
                .iter()
                .find(|rule| {
                    rule_applies(t, exe, &rule.only_names) && !r.memo.contains_key(&rule.args)
                })
                .map(|rule| rule.args.clone())
        });
        let Some(args) = next else { break };
        if let Some(f) = fatal(r.run(&args)) {
            return Err(f);
        }
        todo = rest;
    }
    Ok(by_text)
}

/// Macros obtained some other way than a preprocessor run, for a family the version text
/// claims and its version (the probe's first OpenMP test prints them: see
/// `facet::openmp_with_identity`). `None`: no such way, fall back to preprocessing.
pub type MacrosFor<'a> = &'a dyn Fn(&Arc<Toolchain>, &str) -> Option<IndexMap<String, String>>;

/// What `exe` is: the family and version its version text and identity macros agree on.
/// `fused`, when given, is the way to get the macros from the first OpenMP test; `sibling`,
/// the same real file identified (and confirmed) in another language.
pub fn identify(
    reg: &Registry,
    exe: &Exe,
    found: &Found,
    timeout: Duration,
    work: &Path,
    fused: Option<MacrosFor>,
    sibling: Option<&Identified>,
) -> Identified {
    let out = unidentified(exe);
    let mut r = Runner::new(exe, timeout, found);
    let named: Vec<&Arc<Toolchain>> = match &exe.kind {
        Kind::Named(f) => f.iter().filter_map(|n| reg.toolchain(n)).collect(),
        _ => Vec::new(),
    };
    // The sibling's confirmation first: it costs no run, and the OpenMP test the fused path
    // would have made is then made on its own, at the same cost.
    let quick = match as_sibling(&named, exe, &mut r, sibling) {
        Ok(None) => match fused.filter(|_| !named.is_empty()) {
            Some(macros_for) => fast_path(&named, exe, &mut r, macros_for),
            None => Ok(None),
        },
        other => other,
    };
    let chosen = match quick {
        Ok(Some(c)) => Ok((Some(c), None)),
        Ok(None) => full_path(reg, &named, exe, &mut r, work),
        Err(f) => Err(f),
    };
    match chosen {
        Err((st, msg)) => failed(out, st, msg),
        Ok((None, _)) => {
            let shown = r
                .memo
                .values()
                .map(|o| first_line(&o.combined()))
                .find(|l| !l.is_empty())
                .unwrap_or_default();
            failed(
                out,
                ProbeStatus::Unrecognised,
                format!("not recognised as any known compiler (output: {shown:?})"),
            )
        }
        Ok((Some((t, v)), error)) => {
            let mut out = out;
            out.record.family = t.name.clone();
            out.record.version = v;
            out.record.error = error;
            out.toolchain = Some(t);
            out
        }
    }
}

/// The family a sibling (the same real file in another language) was confirmed as by its
/// identity macros, when this name's version text (the sibling's run, shared) claims that family at that
/// version: the macros of one binary do not change with the language it compiles, so the
/// preprocessor need not be run again.
fn as_sibling(
    named: &[&Arc<Toolchain>],
    exe: &Exe,
    r: &mut Runner,
    sibling: Option<&Identified>,
) -> Result<Option<Chosen>, Fatal> {
    let Some((s, t)) = sibling.and_then(|s| Some((s, s.toolchain.as_ref()?))) else {
        return Ok(None);
    };
    if s.exe.canonical.is_none()
        || s.exe.canonical != exe.canonical
        || !named.iter().any(|n| Arc::ptr_eq(n, t))
    {
        return Ok(None);
    }
    // Run, not only heard: the sibling's runs of this real file are shared, so its version
    // text comes back without a new process.
    Ok(read_version(t, exe, r, Ask::Run)?
        .filter(|v| *v == s.record.version)
        .map(|v| (Arc::clone(t), v)))
}

/// The family whose version text `exe`'s first compile may ask for (see
/// `facet::openmp_asking_version`), with that version rule and its verbose compile: the
/// first of the families its name belongs to whose first rule applies to the name and can be
/// read from a verbose compile, when that rule's answer (shared by the file's names) is not
/// known yet. `clang` is also AOCC's and Apple's name: when the text is theirs, it still
/// answers their rule, and only the test is made again. `None` where a sibling (the same
/// file in another language) already knows the version.
pub fn ask_in_compile<'r>(
    reg: &'r Registry,
    exe: &Exe,
    found: &Found,
    sibling: Option<&Identified>,
) -> Option<(&'r Arc<Toolchain>, &'r VersionRule, &'r Verbose)> {
    let (Kind::Named(families), Some(real)) = (&exe.kind, &exe.canonical) else {
        return None;
    };
    if by_name(exe, found) || sibling.is_some_and(|s| s.exe.canonical == exe.canonical) {
        return None;
    }
    families
        .iter()
        .filter_map(|n| reg.toolchain(n))
        .find_map(|t| {
            let rule = t.version.first()?;
            let verbose = rule.verbose.as_ref()?;
            rule_applies(t, exe, &rule.only_names).then_some((t, rule, verbose))
        })
        .filter(|(_, rule, _)| !found.runs.has(real, &rule.args))
}

/// Records what `exe`'s first compile said for version rule `args` (see [`ask_in_compile`]):
/// the version text it printed, or, when it hung, the hang (identification then ends with
/// it, within one timeout). Identification reads it as that rule's run.
pub fn heard(found: &Found, exe: &Exe, args: &[String], said: Result<String, Duration>) {
    let Some(real) = &exe.canonical else { return };
    let command = format!("{} {}", exe.path.display(), args.join(" "));
    let o = match said {
        Ok(text) => Outcome {
            command,
            code: Some(0),
            signal: None,
            timed_out: false,
            spawn_error: None,
            stdout: text,
            stderr: String::new(),
            duration: Duration::ZERO,
        },
        Err(timeout) => Outcome::hung(
            format!("{} (its first compile)", exe.path.display()),
            timeout,
        ),
    };
    found.runs.get(real, args, || o);
}

/// `exe` before anything is known of it: family `unknown`, status ok.
fn unidentified(exe: &Exe) -> Identified {
    let ccache = exe
        .canonical
        .as_ref()
        .and_then(|c| c.file_name())
        .is_some_and(|n| n == "ccache");
    let record = CompilerRecord {
        path: exe.path.display().to_string(),
        family: "unknown".into(),
        version: String::new(),
        languages: vec![exe.lang],
        facets: IndexMap::new(),
        real_path: exe
            .canonical
            .as_ref()
            .filter(|c| **c != exe.path)
            .map(|c| c.display().to_string()),
        wrapper: ccache.then(|| "ccache".into()),
        status: ProbeStatus::Ok,
        error: None,
    };
    Identified {
        exe: exe.clone(),
        record,
        mpi: None,
        toolchain: None,
        missing_runtimes: Vec::new(),
    }
}

/// A family and version, settled.
type Chosen = (Arc<Toolchain>, String);

/// For an executable named like a family: the version text claims a family, and that
/// family's first OpenMP test, which must be compiled anyway, prints the identity macros that
/// confirm it. No separate preprocessor run. `None` for anything unexpected (no claim, a
/// failed test, macros of another family: an emulator, a wrapper): the full path then reuses
/// the version outputs already read.
fn fast_path(
    named: &[&Arc<Toolchain>],
    exe: &Exe,
    r: &mut Runner,
    macros_for: MacrosFor,
) -> Result<Option<Chosen>, Fatal> {
    let Some((t, v)) = read_texts(named, exe, r, None, Until::FirstClaim)?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let started = Instant::now();
    let macros = macros_for(t, &v);
    if macros.as_ref().is_some_and(|m| identity_ok(t, exe.lang, m)) {
        return Ok(Some((Arc::clone(t), v)));
    }
    // Each of its runs is capped at the timeout: taking that long means one hung.
    if macros.is_none() && started.elapsed() >= r.timeout {
        r.timed_out_elsewhere();
    }
    Ok(None)
}

/// The preprocessor's identity macros, then the version texts of the families the name
/// belongs to, and the family they agree on; with the note a record carries when they do not
/// quite (macros missing, no preprocessor).
fn full_path(
    reg: &Registry,
    named: &[&Arc<Toolchain>],
    exe: &Exe,
    r: &mut Runner,
    work: &Path,
) -> Result<(Option<Chosen>, Option<String>), Fatal> {
    // 1. Identity macros: one preprocessor run gives them all, spelled as the family the name
    // belongs to spells it (none for cl), else as the defaults do.
    let driver = named
        .first()
        .map_or(cfgmx_model::toolchain::default_driver(), |t| &t.driver);
    let dump = dump_args(exe, driver, work);
    let macros = match preprocess(dump.as_deref(), r) {
        Ok(m) => Some(m),
        Err(Some(f)) => return Err(f),
        Err(None) => None,
    };
    // 2. Version text, from the families the name belongs to; once a family's text is
    // confirmed by its macros the others need not be asked (`clang` is also AOCC's name).
    let by_text = read_texts(named, exe, r, macros.as_ref(), Until::Confirmed)?;
    let Some(m) = &macros else {
        // Reported by its version text even though it cannot preprocess.
        let why = dump
            .as_ref()
            .and_then(|d| r.memo.get(d))
            .map(|o| format!("{o}: {}", first_line(&o.stderr)))
            .unwrap_or_else(|| "the family has no macro dump".into());
        let chosen = by_text.first().map(|(t, v)| (Arc::clone(t), v.clone()));
        return Ok((chosen, Some(format!("cannot preprocess: {why}"))));
    };
    let confirmed = by_text
        .iter()
        .find(|(t, _)| identity_ok(t, exe.lang, m))
        .map(|(t, v)| (Arc::clone(t), v.clone()));
    if let Some(c) = confirmed {
        return Ok((Some(c), None));
    }
    if let Some(c) = by_macros(reg, exe, r, m)? {
        return Ok((Some(c), None));
    }
    Ok(match by_text.first() {
        Some((t, v)) => (
            Some((Arc::clone(t), v.clone())),
            Some(format!(
                "version text says {} but the identity macros ({}) are missing",
                t.name,
                t.identity.all.join(", ")
            )),
        ),
        None => (None, None),
    })
}

/// A wrapper or a generic name: the macros say which family it runs; its version rules (names
/// not required) or its version macros give the version.
fn by_macros(
    reg: &Registry,
    exe: &Exe,
    r: &mut Runner,
    m: &IndexMap<String, String>,
) -> Result<Option<Chosen>, Fatal> {
    let fams: Vec<&Arc<Toolchain>> = reg
        .toolchains
        .values()
        .filter(|t| identity_ok(t, exe.lang, m))
        .collect();
    let from_macros = || {
        fams.iter()
            .find_map(|t| version_from_macros(t, m).map(|v| (Arc::clone(t), v)))
    };
    // Through an MPI wrapper the version macros are the compiler's own and save a run of the
    // (slow, scripted) wrapper.
    if exe.kind == Kind::Mpi {
        if let Some(c) = from_macros() {
            return Ok(Some(c));
        }
    }
    for t in &fams {
        if let Some(v) = read_version(t, exe, r, Ask::Run)? {
            return Ok(Some((Arc::clone(t), v)));
        }
    }
    Ok(from_macros())
}

fn failed(mut out: Identified, st: ProbeStatus, msg: String) -> Identified {
    out.record.status = st;
    out.record.error = Some(msg);
    out
}

/// The driver's macro dump for `exe`'s language (`None`: the family has none). Fortran's is
/// given a `.F90` file, which every Fortran compiler with a preprocessor preprocesses.
fn dump_args(exe: &Exe, driver: &cfgmx_model::Driver, work: &Path) -> Option<Vec<String>> {
    let file = match exe.lang {
        Language::Fortran => {
            let f = work.join("cfgmx-identity.F90");
            if !f.exists() {
                let _ = std::fs::write(&f, "end\n");
            }
            f.display().to_string()
        }
        _ => String::new(),
    };
    driver.dump_macros(exe.lang, &file)
}

/// Runs the preprocessor for the macros. Err(Some) for a hang or crash, Err(None) when it only
/// failed or the family cannot dump its macros (the compiler may still be identified by its
/// version text).
fn preprocess(
    args: Option<&[String]>,
    r: &mut Runner,
) -> Result<IndexMap<String, String>, Option<(ProbeStatus, String)>> {
    let Some(args) = args else {
        return Err(None);
    };
    let o = r.run(args);
    if let Some(f) = fatal(o) {
        return Err(Some(f));
    }
    let m = parse_macros(&o.stdout);
    if o.success() && !m.is_empty() {
        Ok(m)
    } else {
        Err(None)
    }
}

/// What an MPI wrapper says about itself, asked as its implementation's data says: which
/// implementation (the first `identify` rule whose answer matches, the implementations that
/// claim its name first), the version, the compiler command it runs and whether that exists,
/// and its launcher. Family and version of the compiler are left for the caller. A run that
/// hangs or crashes ends it with that status; `unrecognised` when no implementation's rule
/// matches.
pub fn mpi_show(reg: &Registry, exe: &Exe, found: &Found, timeout: Duration) -> MpiRecord {
    // The implementations whose own program the wrapper's real file is (`opal_wrapper`) or
    // whose suffixed name it has (`mpicc.openmpi`) first, then those that install the plain
    // name; a rule's arguments are run once for all. The order only saves runs: the answer
    // decides.
    let real_name = exe
        .canonical
        .as_ref()
        .and_then(|c| c.file_name())
        .and_then(|n| n.to_str());
    let mut claims: Vec<((bool, NameMatch), &Arc<MpiImpl>)> = reg
        .mpi
        .values()
        .filter_map(|m| {
            let own = real_name.is_some_and(|n| m.dispatchers.iter().any(|d| d == n));
            m.wrapper_name(&exe.name).map(|(_, how)| ((!own, how), m))
        })
        .collect();
    claims.sort_by_key(|(k, _)| *k);
    let mut claims: Vec<&Arc<MpiImpl>> = claims.into_iter().map(|(_, m)| m).collect();
    // then every other implementation that has wrappers of its own: a name may lie (a build
    // installed under another's suffix), the answer may not
    let rest: Vec<&Arc<MpiImpl>> = reg
        .mpi
        .values()
        .filter(|m| !claims.iter().any(|c| Arc::ptr_eq(c, m)))
        .filter(|m| {
            Language::ALL
                .iter()
                .flat_map(|l| m.wrappers(*l))
                .any(|n| !m.shared.contains(n))
        })
        .collect();
    claims.extend(rest);
    ask_mpi(&claims, exe, found, timeout)
}

/// Whether a compiler found under a name that is also an MPI implementation's driver (Cray's
/// `cc`, `CC`, `ftn`) is that driver: asked as the implementation's data says, and only then
/// an MPI wrapper. `None` for a plain compiler, or one that does not answer.
pub fn shared_mpi(
    reg: &Registry,
    exe: &Exe,
    found: &Found,
    timeout: Duration,
) -> Option<MpiRecord> {
    let claims: Vec<&Arc<MpiImpl>> = reg
        .mpi
        .values()
        .filter(|m| m.shared.contains(&exe.name))
        .collect();
    if claims.is_empty() {
        return None;
    }
    Some(ask_mpi(&claims, exe, found, timeout)).filter(|m| m.status == ProbeStatus::Ok)
}

fn ask_mpi(claims: &[&Arc<MpiImpl>], exe: &Exe, found: &Found, timeout: Duration) -> MpiRecord {
    let mut r = Runner::new(exe, timeout, found);
    let mut rec = MpiRecord {
        path: exe.path.display().to_string(),
        implementation: "unknown".into(),
        version: None,
        language: exe.lang,
        compiler: None,
        compiler_family: None,
        compiler_version: None,
        compiler_env: None,
        launcher: None,
        real_path: exe
            .canonical
            .as_ref()
            .filter(|c| **c != exe.path)
            .map(|c| c.display().to_string()),
        status: ProbeStatus::Ok,
        error: None,
    };
    let broken = |mut rec: MpiRecord, (st, msg): Fatal| {
        rec.status = st;
        rec.error = Some(msg);
        rec
    };
    let (m, version) = match which_mpi(claims, &mut r) {
        Ok(Answer::Hit(m, version)) => (m, version),
        Ok(Answer::NoMatch(tried)) => {
            rec.status = ProbeStatus::Unrecognised;
            rec.error = Some(format!(
                "named like an MPI wrapper, but its answers to {} match no known MPI implementation",
                tried.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ));
            return rec;
        }
        Err(f) => return broken(rec, f),
    };
    rec.implementation = m.name.clone();
    let beside = Beside::new(m, exe);
    rec.version = Some(version).filter(|v| !v.is_empty());
    if rec.version.is_none() {
        rec.version = tool_version(m, &beside, found, timeout);
    }
    rec.launcher = m
        .launchers
        .iter()
        .find_map(|l| beside.find(l))
        .map(|p| p.display().to_string());
    match wrapped_compiler(m, exe, &mut r, found, &mut rec) {
        Ok(()) => rec,
        Err(f) => broken(rec, f),
    }
}

/// What a wrapper's answers to the implementations' `identify` rules say.
enum Answer<'m> {
    /// The first implementation whose rule the answer matches, with the version it gives.
    Hit(&'m Arc<MpiImpl>, String),
    /// None matches: the arguments tried.
    NoMatch(Vec<String>),
}

fn which_mpi<'m>(claims: &[&'m Arc<MpiImpl>], r: &mut Runner) -> Result<Answer<'m>, Fatal> {
    let mut tried: Vec<String> = Vec::new();
    for m in claims {
        for rule in &m.identify {
            let o = r.run(&rule.args);
            if let Some(f) = fatal(o) {
                return Err(f);
            }
            // Read whatever the exit status: MPICH's `-v` names itself before it runs the
            // compiler, which may be missing.
            if let Some(v) = rule.read(&o.combined()) {
                return Ok(Answer::Hit(m, v));
            }
            let shown = rule.args.join(" ");
            if !tried.contains(&shown) {
                tried.push(shown);
            }
        }
    }
    Ok(Answer::NoMatch(tried))
}

/// The implementation's other programs beside a wrapper, by the names it installs them under.
struct Beside<'a> {
    dir: &'a Path,
    suffixes: Vec<&'a str>,
}

impl<'a> Beside<'a> {
    fn new(m: &'a MpiImpl, exe: &'a Exe) -> Beside<'a> {
        // A distribution's suffixed file first (`mpirun.openmpi` beside `mpicc.openmpi`), even
        // for a plain name: the plain `mpirun` may be another implementation's alternative.
        let own = m.suffix_of(&exe.name);
        let suffixes = own
            .into_iter()
            .chain(
                m.suffixes
                    .iter()
                    .map(String::as_str)
                    .filter(|s| Some(*s) != own),
            )
            .chain([""])
            .collect();
        Beside {
            dir: exe.path.parent().unwrap_or(Path::new(".")),
            suffixes,
        }
    }

    fn find(&self, name: &str) -> Option<PathBuf> {
        self.suffixes
            .iter()
            .map(|s| self.dir.join(format!("{name}{s}")))
            .find(|p| p.is_file())
    }
}

/// The implementation's version from its own version tool (`mpichversion`), asked once per
/// tool for every wrapper beside it.
fn tool_version(m: &MpiImpl, beside: &Beside, found: &Found, timeout: Duration) -> Option<String> {
    let tool = m.version_tool.as_ref()?;
    let path = beside.find(tool.tool.as_deref().unwrap_or_default())?;
    // held while running, so the other wrappers beside it wait for its answer
    let mut known = found.mpi_versions.lock().unwrap_or_else(|e| e.into_inner());
    known
        .entry(path.clone())
        .or_insert_with(|| {
            let o = Cmd::new(&path).args(&tool.args).timeout(timeout).output();
            tool.read(&o.combined()).filter(|v| !v.is_empty())
        })
        .clone()
}

/// The compiler the wrapper runs, as its implementation's data says to ask, into `rec`; a
/// compiler that is not installed makes it `compiler_missing`.
fn wrapped_compiler(
    m: &MpiImpl,
    exe: &Exe,
    r: &mut Runner,
    found: &Found,
    rec: &mut MpiRecord,
) -> Result<(), Fatal> {
    let Some(q) = &m.compiler else {
        return Ok(());
    };
    rec.compiler_env = q.env(exe.lang).first().cloned();
    let o = r.run(&q.args);
    if let Some(f) = fatal(o) {
        return Err(f);
    }
    let line = if q.echoed {
        // Only a line that carries the query's own argument is the command: a driver without
        // the verbose option runs the compiler, whose banner names no command.
        let last = q.args.last().map(String::as_str).unwrap_or_default();
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().skip(1).any(|w| w == last))
    } else {
        Some(o.stdout.as_str())
    };
    let word = line
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string);
    let (true, Some(word)) = (o.success(), word) else {
        return Ok(());
    };
    if let Some(p) = resolve(&word, found) {
        rec.compiler = Some(p.display().to_string());
        return Ok(());
    }
    rec.compiler = Some(word.clone());
    rec.status = ProbeStatus::CompilerMissing;
    let vars = q.env(exe.lang);
    let hint = if vars.is_empty() {
        String::new()
    } else {
        format!(
            " (install it, or name another compiler in {})",
            vars.join(" or ")
        )
    };
    rec.error = Some(format!(
        "{} wrapper over {word}, which is not installed{hint}",
        m.description
    ));
    Ok(())
}

/// The wrapper reported as the compiler it runs, which was itself identified as `under`
/// (identification and facet results carry over: the wrapper only adds MPI flags).
pub fn as_wrapper(under: &Identified, exe: &Exe, mpi: MpiRecord) -> Identified {
    let mut w = under.for_exe(exe);
    w.record.wrapper = Some(mpi.implementation.clone());
    w.mpi = Some(MpiRecord {
        compiler_family: Some(under.record.family.clone()),
        compiler_version: Some(under.record.version.clone()),
        ..mpi
    });
    w
}

/// A wrapper identified through itself (its compiler was not probed on its own), with what
/// it said as an MPI wrapper.
pub fn with_mpi(mut id: Identified, mpi: MpiRecord) -> Identified {
    let ok = id.record.status == ProbeStatus::Ok;
    id.mpi = Some(MpiRecord {
        compiler_family: ok.then(|| id.record.family.clone()),
        compiler_version: ok.then(|| id.record.version.clone()),
        ..mpi
    });
    if let Some(m) = id.mpi.as_ref().filter(|m| m.status == ProbeStatus::Ok) {
        id.record.wrapper = Some(m.implementation.clone());
    }
    id
}

/// A wrapper that cannot be used as it is (it hung, crashed, or its compiler is missing): its
/// compiler record says why, in the wrapper's words.
pub fn unusable_wrapper(exe: &Exe, mpi: MpiRecord) -> Identified {
    let record = CompilerRecord {
        path: exe.path.display().to_string(),
        family: "unknown".into(),
        version: String::new(),
        languages: vec![exe.lang],
        facets: IndexMap::new(),
        real_path: mpi.real_path.clone(),
        wrapper: Some(mpi.implementation.clone()).filter(|i| i != "unknown"),
        status: mpi.status,
        error: mpi.error.clone(),
    };
    Identified {
        exe: exe.clone(),
        record,
        mpi: Some(mpi),
        toolchain: None,
        missing_runtimes: Vec::new(),
    }
}

/// A command word as the wrapper would find it: a path that exists, or the first file of that
/// name in the searched directories. `None` when it is not installed.
fn resolve(cmd: &str, found: &Found) -> Option<PathBuf> {
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return p.is_file().then_some(p);
    }
    found
        .bin_dirs
        .iter()
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_parse() {
        let m =
            parse_macros("#define __GNUC__ 12\n#define __clang__ 1\n#define F(x) x\n#define E\n");
        assert_eq!(m.get("__GNUC__").map(String::as_str), Some("12"));
        assert!(m.contains_key("__clang__"));
        assert!(m.contains_key("E"));
        assert!(!m.keys().any(|k| k.starts_with("F(")));
    }

    #[test]
    fn the_fused_program_asks_for_every_macro_any_family_is_told_by() {
        let reg = Registry::builtin();
        let ids = identity_macros(&reg);
        for t in reg.toolchains.values() {
            let i = &t.identity;
            for m in i.all.iter().chain(&i.none).chain(&i.fortran_all) {
                assert!(ids.contains(m), "{}: {m} missing", t.name);
            }
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "each name once");
    }

    #[test]
    fn identity_sees_through_fakes() {
        let reg = Registry::builtin();
        let gcc = reg.toolchain("gcc").unwrap();
        let clang = reg.toolchain("clang").unwrap();
        let m = parse_macros("#define __GNUC__ 4\n#define __clang__ 1\n");
        assert!(!identity_ok(gcc, Language::C, &m), "clang fakes __GNUC__");
        assert!(identity_ok(clang, Language::C, &m));
        let m = parse_macros("#define __GNUC__ 12\n#define __INTEL_COMPILER 2021\n");
        assert!(!identity_ok(gcc, Language::C, &m));
        assert!(identity_ok(reg.toolchain("icc").unwrap(), Language::C, &m));
    }
}
