//! `cfgmx probe`: what this machine's compilers, MPI wrappers and BLAS builds really are.

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::load;
use crate::output::{Table, Term, Tone};
use cfgmx_model::{ProbeStatus, Profile, Registry};
use cfgmx_probe::{ProbeEvent, ProbeOptions};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args, Clone, Default)]
pub struct ProbeArgs {
    /// Seconds any one probe command may run before it is reported as hung.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub timeout: f64,
    /// Ignore the cached profile and probe again.
    #[arg(long)]
    pub fresh: bool,
    /// Facets to test besides openmp (debug, pic, cxx17, ...). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub facet: Vec<String>,
    /// Parallel probe jobs (default: CPUs + 1: one more than the cores keeps them busy while a
    /// job waits between its compiler runs; more only time-share the cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

fn parse_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        // Past a year the deadline overflows the clock (a panic, not a message).
        Ok(v) if v > 365.0 * 24.0 * 3600.0 && v.is_finite() => {
            Err(format!("`{s}` seconds is more than a year"))
        }
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// Where the profile cache lives: `CFGMX_CACHE_DIR`, else `$XDG_CACHE_HOME/cfgmx`, else
/// `~/.cache/cfgmx`.
fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CFGMX_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("cfgmx");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("cfgmx"),
        None => std::env::temp_dir().join("cfgmx-cache"),
    }
}

/// The MPI wrappers' compiler-override variables that are set (`OMPI_FC=...`), as
/// `NAME=VALUE`: they change what a wrapper runs, so a cached profile made without them must
/// not answer. Their names come from the MPI data (a user file that does not parse adds none;
/// loading the registry reports it).
fn wrapper_overrides(g: &Global) -> Vec<String> {
    // Named as the registry names them: a builtin file's patterns are then compiled only if
    // used (never, here), which was most of a warm probe's parsing.
    let mut srcs: Vec<cfgmx_model::Source> = cfgmx_model::registry::builtin_mpi_files()
        .iter()
        .map(|(f, t)| cfgmx_model::Source::new(format!("builtin:mpi/{f}"), *t))
        .collect();
    if let Some(rd) = g.mpi.as_ref().and_then(|d| std::fs::read_dir(d).ok()) {
        for p in rd.filter_map(|e| e.ok().map(|e| e.path())) {
            if let Ok(t) = cfgmx_fs::read_to_string(&p, cfgmx_fs::MAX_BYTES) {
                srcs.push(cfgmx_model::Source::new(p.display().to_string(), t));
            }
        }
    }
    let mut names: Vec<String> = srcs
        .iter()
        .filter_map(|s| cfgmx_model::MpiImpl::parse(s).ok())
        .filter_map(|m| m.compiler)
        .flat_map(|q| [q.env_c, q.env_cxx, q.env_fortran].concat())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| std::env::var(&n).ok().map(|v| format!("{n}={v}")))
        .collect()
}

/// Fingerprint of the descriptors in use, from their texts (no parsing), and of the MPI
/// compiler overrides set: empty for the builtin set and no override, which the probe crate
/// fingerprints itself.
fn descriptors(g: &Global) -> Result<String> {
    let dirs: Vec<&PathBuf> = [&g.toolchains, &g.providers, &g.mpi]
        .into_iter()
        .flatten()
        .collect();
    let overrides = wrapper_overrides(g);
    if dirs.is_empty() && overrides.is_empty() {
        return Ok(String::new());
    }
    let mut texts: Vec<String> = overrides;
    texts.extend(
        cfgmx_model::registry::builtin_toolchain_files()
            .iter()
            .chain(cfgmx_model::registry::builtin_provider_files())
            .chain(cfgmx_model::registry::builtin_mpi_files())
            .map(|(_, t)| t.to_string()),
    );
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| CliError::usage(format!("cannot read directory {}: {e}", d.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            texts.push(f.display().to_string());
            texts.push(load::read_source(&f)?.text.to_string());
        }
    }
    Ok(cfgmx_probe::fingerprint(texts.iter().map(String::as_str)))
}

pub fn options(g: &Global, a: &ProbeArgs) -> Result<ProbeOptions> {
    for d in &g.search {
        if !d.is_dir() {
            return Err(CliError::usage(format!(
                "--search {}: not a directory",
                d.display()
            )));
        }
    }
    if !a.facet.is_empty() {
        // Only then is the registry read: a plain warm probe parses no descriptor.
        let reg = load::registry(g)?;
        let mut known: Vec<&str> = reg
            .toolchains
            .values()
            .flat_map(|t| t.facets.keys().map(String::as_str))
            .collect();
        known.sort_unstable();
        known.dedup();
        if let Some(bad) = a.facet.iter().find(|f| !known.contains(&f.as_str())) {
            return Err(CliError::usage(format!(
                "--facet {bad}: no compiler descriptor has a facet of that name; known facets: {}",
                known.join(", ")
            )));
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut facets = vec!["openmp".to_string()];
    for f in &a.facet {
        if !facets.contains(f) {
            facets.push(f.clone());
        }
    }
    Ok(ProbeOptions {
        search: g.search.clone(),
        timeout: Duration::from_secs_f64(a.timeout),
        fresh: a.fresh,
        cache_dir: cache_dir(),
        facets,
        jobs: a.jobs.unwrap_or(cpus + 1).max(1),
        path: std::env::var_os("PATH"),
        descriptors: descriptors(g)?,
        // this binary answers the BLAS queries itself (main.rs), so no query program is built
        helper: std::env::current_exe().ok(),
        lib_dirs: None,
        modules: if g.modules {
            let get = |k: &str| std::env::var(k).ok();
            let path = std::env::var("PATH").ok();
            Some(
                cfgmx_probe::locate_modules(&get, path.as_deref(), std::env::vars().collect())
                    .map_err(|e| CliError::usage(format!("--modules: {e}")))?,
            )
        } else {
            None
        },
    })
}

/// Probes with a progress bar on a terminal (stderr), quiet otherwise; with `log_as`, a
/// non-terminal stderr (a CI log) gets one line saying the probe runs, so a pause of seconds
/// is explained there too.
pub fn probe_with_progress(
    reg: &Registry,
    opts: &ProbeOptions,
    quiet: bool,
    log_as: Option<&str>,
) -> Profile {
    let said = std::sync::atomic::AtomicBool::new(false);
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(1);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b
    });
    let _echo = bar.is_some().then(crate::output::QuietEcho::start);
    let on_event = |e: ProbeEvent| {
        if let ProbeEvent::Warning(w) = &e {
            match &bar {
                Some(b) => b.suspend(|| eprintln!("warning: {w}")),
                None => eprintln!("warning: {w}"),
            }
            return;
        }
        let Some(b) = &bar else {
            if let (Some(who), ProbeEvent::Phase { .. }) = (log_as, &e) {
                if !quiet && !said.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    eprintln!(
                        "{who}: probing this machine's compilers and BLAS (cached after this run)"
                    );
                }
            }
            return;
        };
        match e {
            ProbeEvent::Warning(_) => {}
            ProbeEvent::CacheHit => {}
            ProbeEvent::Phase { name, total } => {
                b.set_length(total as u64);
                b.set_position(0);
                b.set_prefix(name);
            }
            ProbeEvent::Step { what } => {
                b.set_message(what);
                b.inc(1);
            }
        }
    };
    let p = cfgmx_probe::probe(reg, opts, &on_event);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    p
}

pub fn run(g: &Global, a: ProbeArgs) -> Result<u8> {
    let opts = options(g, &a)?;
    // The warm path needs the descriptors: discovery looks for the names they give.
    let reg = load::registry(g)?;
    let cached = if opts.fresh {
        None
    } else {
        cfgmx_probe::load_cached(&reg, &opts).unwrap_or_else(|why| {
            eprintln!("warning: {why}");
            None
        })
    };
    let profile = match cached {
        Some(p) => p,
        None => probe_with_progress(&reg, &opts, g.json, None),
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    if g.json {
        // Whole, then one write: stdout is line-buffered, so writing the profile piecewise
        // costs a system call (and a reader's wake-up) per line, about 3000 for a module tree.
        let mut text =
            serde_json::to_vec_pretty(&profile).map_err(|e| CliError::runtime(e.to_string()))?;
        text.push(b'\n');
        out.write_all(&text).ok();
        return Ok(0);
    }
    write!(out, "{}", render(&profile, &Term::stdout(g))).ok();
    Ok(0)
}

/// The human report: compilers and MPI wrappers one row per toolchain (the names of one
/// family and version folded into a row, their languages listed once), then BLAS builds.
pub fn render(p: &Profile, term: &Term) -> String {
    let mut s = format!("CPUs: {}\n\nCompilers\n", p.cpus);
    let mut t = Table::new(&["FAMILY", "VERSION", "LANGUAGES", "OPENMP", "EXECUTABLES"]).keep(&[1]);
    let mut groups: Vec<(String, String, Vec<&cfgmx_model::CompilerRecord>)> = Vec::new();
    // An MPI wrapper has its row in the MPI table (with the compiler it runs); a wrapper that
    // is no MPI's (ccache, craype) stays here.
    let mpi_paths: Vec<&str> = p.mpi.iter().map(|m| m.path.as_str()).collect();
    for c in p
        .compilers
        .iter()
        .filter(|c| !mpi_paths.contains(&c.path.as_str()))
    {
        let mut fam = c.family.clone();
        if let Some(w) = &c.wrapper {
            fam.push_str(&format!(" (via {w})"));
        }
        match groups
            .iter_mut()
            .find(|(f, v, _)| *f == fam && *v == c.version)
        {
            Some(g) => g.2.push(c),
            None => groups.push((fam, c.version.clone(), vec![c])),
        }
    }
    // Plain compilers before wrapped ones, each family by version.
    groups.sort_by(|a, b| {
        (a.0.contains(" (via "), &a.0)
            .cmp(&(b.0.contains(" (via "), &b.0))
            .then_with(|| version_key(&a.1).cmp(&version_key(&b.1)))
    });
    for (fam, version, members) in &groups {
        let langs = languages(members.iter().flat_map(|c| c.languages.iter().copied()));
        // One verdict per distinct outcome, with the languages it holds for when they differ.
        let mut verdicts: Vec<(String, Vec<cfgmx_model::Language>)> = Vec::new();
        for c in members {
            let v = openmp_cell(c, term);
            match verdicts.iter_mut().find(|(x, _)| *x == v) {
                Some(e) => e.1.extend(c.languages.iter().copied()),
                None => verdicts.push((v, c.languages.clone())),
            }
        }
        let omp = if verdicts.len() == 1 {
            verdicts.remove(0).0
        } else {
            verdicts
                .into_iter()
                .map(|(v, l)| format!("{}: {v}", languages(l.into_iter())))
                .collect::<Vec<_>>()
                .join("; ")
        };
        t.row(vec![
            fam.clone(),
            version.clone(),
            langs,
            omp,
            fold_paths(members.iter().map(|c| c.path.as_str())),
        ]);
    }
    s.push_str(&t.render(term));
    if !p.mpi.is_empty() {
        s.push_str("\nMPI wrappers\n");
        let mut t = Table::new(&["MPI", "VERSION", "LANGUAGES", "COMPILER", "WRAPPERS"]).keep(&[1]);
        let mut groups: Vec<(String, String, String, Vec<&cfgmx_model::MpiRecord>)> = Vec::new();
        for m in &p.mpi {
            // an unusable wrapper says why (its compiler is missing, it hung, ...)
            let compiler = match (m.status, &m.error) {
                (ProbeStatus::Ok, _) | (_, None) => format!(
                    "{} {}",
                    m.compiler_family.as_deref().unwrap_or("?"),
                    m.compiler_version.as_deref().unwrap_or("?")
                ),
                (_, Some(e)) => term.reason(e),
            };
            let version = m.version.clone().unwrap_or_default();
            match groups
                .iter_mut()
                .find(|(i, v, c, _)| *i == m.implementation && *v == version && *c == compiler)
            {
                Some(g) => g.3.push(m),
                None => groups.push((m.implementation.clone(), version, compiler, vec![m])),
            }
        }
        for (imp, version, compiler, members) in &groups {
            t.row(vec![
                imp.clone(),
                version.clone(),
                languages(members.iter().map(|m| m.language)),
                compiler.clone(),
                fold_paths(members.iter().map(|m| m.path.as_str())),
            ]);
        }
        s.push_str(&t.render(term));
    }
    if !p.modules.is_empty() {
        s.push_str("\nModules\n");
        let mut t = Table::new(&["MODULES", "PROVIDES"]);
        for m in &p.modules {
            let mut what: Vec<String> = Vec::new();
            let provides =
                |list: &[cfgmx_model::Provided], p: &cfgmx_model::Provided| list.contains(p);
            for c in p
                .compilers
                .iter()
                .filter(|c| provides(&m.compilers, &cfgmx_model::Provided::compiler(c)))
            {
                let w = format!("{} {}", c.family, c.version).trim().to_string();
                if !what.contains(&w) {
                    what.push(w);
                }
            }
            for x in p
                .mpi
                .iter()
                .filter(|x| provides(&m.mpi, &cfgmx_model::Provided::mpi(x)))
            {
                let w = format!(
                    "{} {}",
                    x.implementation,
                    x.version.as_deref().unwrap_or("")
                );
                if !what.contains(&w.trim().to_string()) {
                    what.push(w.trim().to_string());
                }
            }
            for b in p
                .blas
                .iter()
                .filter(|b| provides(&m.blas, &cfgmx_model::Provided::blas(b)))
            {
                let w = b.id();
                if !what.contains(&w) {
                    what.push(w);
                }
            }
            t.row(vec![m.load.join(" "), what.join(", ")]);
        }
        s.push_str(&t.render(term));
    }
    s.push_str("\nBLAS\n");
    // The decoration column only when some library has one (scipy-openblas64: scipy_*64_).
    let decorated = p
        .blas
        .iter()
        .any(|b| !b.symbol_prefix.is_empty() || !b.symbol_suffix.is_empty());
    let mut head = vec!["BLAS", "THREADING", "INTEGERS"];
    if decorated {
        head.push("SYMBOLS");
    }
    head.extend(["DEFAULT", "PATH"]);
    let mut t = Table::new(&head);
    for b in &p.blas {
        // the decoration around every exported name (scipy-openblas64: scipy_*64_)
        let symbols = if b.symbol_prefix.is_empty() && b.symbol_suffix.is_empty() {
            "-".to_string()
        } else {
            format!("{}*{}", b.symbol_prefix, b.symbol_suffix)
        };
        let mut row = vec![b.id(), b.threading.to_string(), json_word(&b.int_width)];
        if decorated {
            row.push(symbols);
        }
        row.push(if b.is_default {
            term.paint(Tone::Good, "yes")
        } else {
            "-".into()
        });
        row.push(b.path.clone());
        t.row(row);
    }
    s.push_str(&t.render(term));
    let mut notes = Vec::new();
    for f in &p.blas_failures {
        notes.push(format!(
            "warning: BLAS library {} could not be asked ({}): {}",
            f.path,
            json_word(&f.status),
            f.error
        ));
    }
    for w in &p.warnings {
        notes.push(format!("warning: {w}"));
    }
    if !notes.is_empty() {
        s.push('\n');
    }
    for n in notes {
        s.push_str(&term.wrap(&n, 2));
        s.push('\n');
    }
    s
}

/// A compiler's OpenMP outcome as one cell: the flag and `_OPENMP`, or why not (folded to a
/// short phrase unless --verbose).
fn openmp_cell(c: &cfgmx_model::CompilerRecord, term: &Term) -> String {
    match (c.status, c.facets.get("openmp")) {
        (ProbeStatus::Ok, Some(f)) if f.works => {
            let mut x = f.flag.clone().unwrap_or_default();
            if let Some(d) = &f.detail {
                x.push_str(&format!(" (_OPENMP {d})"));
            }
            x
        }
        (ProbeStatus::Ok, Some(f)) => format!(
            "{}: {}",
            term.paint(Tone::Warn, "no"),
            term.reason(f.reason.as_deref().unwrap_or("no flag worked"))
        ),
        (ProbeStatus::Ok, None) => "-".into(),
        (st, _) => format!(
            "{}: {}",
            term.paint(Tone::Bad, &json_word(&st)),
            term.reason(c.error.as_deref().unwrap_or(""))
        ),
    }
}

/// Languages in their usual order (c, cxx, fortran), each once.
fn languages(it: impl Iterator<Item = cfgmx_model::Language>) -> String {
    let mut l: Vec<cfgmx_model::Language> = it.collect();
    l.sort();
    l.dedup();
    l.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(",")
}

/// Paths with their directory said once: `gcc g++ (in /usr/bin)`, then those of other
/// directories.
fn fold_paths<'a>(paths: impl Iterator<Item = &'a str>) -> String {
    let mut dirs: Vec<(&str, Vec<&str>)> = Vec::new();
    for p in paths {
        let (d, f) = p.rsplit_once('/').unwrap_or(("", p));
        match dirs.iter_mut().find(|(x, _)| *x == d) {
            Some(e) => {
                if !e.1.contains(&f) {
                    e.1.push(f)
                }
            }
            None => dirs.push((d, vec![f])),
        }
    }
    dirs.into_iter()
        .map(|(d, fs)| match fs.as_slice() {
            [one] if d.is_empty() => one.to_string(),
            [one] => format!("{d}/{one}"),
            // names first, spaced, so a narrow column wraps between them
            many if d.is_empty() => many.join(" "),
            many => format!("{} (in {d})", many.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Orders versions numerically (9.4 before 10.1); text parts compare as text.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-'])
        .map(|p| match p.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, p.to_string()),
        })
        .collect()
}

/// A unit enum as its JSON spelling (`lp64`, `timed_out`), so the table says what the JSON says.
fn json_word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Reads a profile written by `cfgmx probe --json`; a bad file is a located input error.
pub fn read_profile(path: &std::path::Path) -> Result<Profile> {
    load::read_profile(path)
}

/// The profile `expand --probe` / `--profile FILE` checks variants against, if asked for,
/// and for a probe of this machine the options its link tests run with (a profile read from a
/// file may describe another machine: its variants are not proven here).
pub fn profile_for_expand(
    g: &Global,
    probe: bool,
    file: Option<&std::path::Path>,
    reg: &Registry,
) -> Result<Option<(Profile, Option<ProbeOptions>)>> {
    if let Some(f) = file {
        return read_profile(f).map(|p| Some((p, None)));
    }
    if !probe {
        return Ok(None);
    }
    let opts = options(
        g,
        &ProbeArgs {
            timeout: 10.0,
            ..Default::default()
        },
    )?;
    let profile = probe_with_progress(reg, &opts, g.json, None);
    Ok(Some((profile, Some(opts))))
}

/// A concrete variant as `expand --json` prints it against a profile.
#[derive(serde::Serialize)]
struct ConcreteRecord<'a> {
    #[serde(flatten)]
    variant: &'a cfgmx_model::ConcreteVariant,
    /// The concrete hash when the variant can be built here, else the spec hash (the id a
    /// build or the lock file knows it by); the two below say which is which.
    short_hash: &'a str,
    short_spec_hash: &'a str,
    /// None when the variant cannot be built here.
    short_concrete_hash: Option<&'a str>,
}

/// Prints every variant with its availability on the profiled machine and its concrete hash.
pub fn print_concrete(
    g: &Global,
    m: &cfgmx_model::Matrix,
    reg: &Registry,
    set: &cfgmx_model::VariantSet,
    profile: &Profile,
    prove: Option<&ProbeOptions>,
) -> Result<u8> {
    let cs = crate::proven::concretize_all(&set.variants, m, reg, profile, prove);
    let short = set.short_len;
    let out = std::io::stdout();
    let mut out = out.lock();
    if g.json {
        let recs: Vec<ConcreteRecord> = cs
            .iter()
            .map(|c| ConcreteRecord {
                variant: c,
                short_hash: &c.id_hash()[..short],
                short_spec_hash: &c.variant.hash[..short],
                short_concrete_hash: c.concrete_hash.as_deref().map(|h| &h[..short]),
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &recs)
            .map_err(|e| CliError::runtime(e.to_string()))?;
        writeln!(out).ok();
        return Ok(0);
    }
    let term = Term::stdout(g);
    let mut t = Table::new(&[
        "NAME",
        "HASH",
        "STATUS",
        "COMPILERS",
        "BLAS",
        "WHY NOT / WARNINGS",
    ])
    .keep(&[1, 2]);
    for c in &cs {
        // family and version in the short form, the executables under --verbose
        let compilers = c
            .compilers
            .values()
            .map(|x| match term.verbose {
                true => format!("{}@{}", x.path, x.version),
                false => format!("{} {}", x.family, x.version),
            })
            .collect::<Vec<_>>();
        // each distinct compiler once (C and C++ may be one executable)
        let mut seen = Vec::new();
        for x in compilers {
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
        let mut notes: Vec<String> = c.reasons.iter().map(|r| term.reason(r)).collect();
        notes.extend(c.variant.resolved.warnings.iter().map(|r| term.reason(r)));
        notes.extend(c.concrete_warnings.iter().map(|r| term.reason(r)));
        notes.dedup();
        t.row(vec![
            c.variant.name.clone(),
            c.id_hash()[..short].to_string(),
            term.status(if c.available {
                "available"
            } else {
                "unavailable"
            }),
            if seen.is_empty() {
                "-".into()
            } else {
                seen.join(", ")
            },
            c.blas_library
                .as_ref()
                .map_or("-".into(), |b| match term.verbose {
                    true => b.path.clone(),
                    false => b.id(),
                }),
            notes.join("; "),
        ]);
    }
    write!(out, "{}", t.render(&term)).ok();
    let n = cs.iter().filter(|c| c.available).count();
    let summary = format!(
        "{n} of {} variants of matrix `{}` can be built here (HASH is their concrete hash, the spec hash of the others)",
        cs.len(),
        m.name
    );
    writeln!(out, "\n{}", term.wrap(&summary, 0)).ok();
    if !term.verbose && cs.iter().any(|c| !c.reasons.is_empty()) {
        writeln!(
            out,
            "{}",
            term.wrap(
                "(reasons shortened: --verbose shows them whole, --json as data)",
                0
            )
        )
        .ok();
    }
    // Most of the matrix out of reach (the default hpc16 on a machine without Intel, PGI or
    // XL compilers): point at the command that writes one for this machine.
    if n * 2 < cs.len() {
        eprintln!(
            "hint: most of `{}` cannot be built here; `cfgmx init` writes a matrix of the compilers and BLAS builds this machine has",
            m.name
        );
    }
    Ok(0)
}
