//! Probing this machine as commands need it: the probe's options from the command line and
//! the session, the probe with its progress display, and the profile a build works from.
//! Shared by `probe`, `expand`, `generate`, `init` and `build`, which never call each other.

use crate::cli::{Global, ProbeArgs};
use crate::error::{CliError, Result};
use crate::load::{self, Descriptors, Session};
use cfgmx_model::{Profile, Registry};
use cfgmx_probe::{ProbeEvent, ProbeOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
fn wrapper_overrides(s: &Session) -> Vec<String> {
    // Named as the registry names them: a builtin file's patterns are then compiled only if
    // used (never, here), which was most of a warm probe's parsing.
    let mut srcs: Vec<cfgmx_model::Source> = cfgmx_model::registry::builtin_mpi_files()
        .iter()
        .map(|(f, t)| cfgmx_model::Source::new(format!("builtin:mpi/{f}"), *t))
        .collect();
    srcs.extend(s.user_files_of(Descriptors::Mpi).cloned());
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
fn descriptors(s: &Session) -> String {
    let overrides = wrapper_overrides(s);
    if s.user_files().next().is_none() && overrides.is_empty() {
        return String::new();
    }
    let mut texts: Vec<String> = overrides;
    texts.extend(
        cfgmx_model::registry::builtin_toolchain_files()
            .iter()
            .chain(cfgmx_model::registry::builtin_provider_files())
            .chain(cfgmx_model::registry::builtin_mpi_files())
            .map(|(_, t)| t.to_string()),
    );
    for f in s.user_files() {
        texts.push(f.name.clone());
        texts.push(f.text.to_string());
    }
    cfgmx_probe::fingerprint(texts.iter().map(String::as_str))
}

/// The probe's options from the command line; `--facet` names are checked against the
/// session's descriptors.
pub fn options(s: &Session, g: &Global, a: &ProbeArgs) -> Result<ProbeOptions> {
    for d in &g.search {
        if !d.is_dir() {
            return Err(CliError::usage(format!(
                "--search {}: not a directory",
                d.display()
            )));
        }
    }
    if !a.facet.is_empty() {
        let mut known: Vec<&str> = s
            .registry
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
        descriptors: descriptors(s),
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

/// What a probe shows while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Nothing but warnings (`--json`: stdout is data).
    Quiet,
    /// A progress bar on a terminal (stderr), nothing in a log.
    Bar,
    /// A bar on a terminal; a non-terminal stderr (a CI log) gets one line, said as this
    /// command, that the probe runs, so a pause of seconds is explained there too.
    BarOrLine(&'a str),
}

impl Progress<'_> {
    /// A bar on a terminal, nothing under `--json` (stdout is data).
    pub fn unless_json(g: &Global) -> Progress<'static> {
        if g.json {
            Progress::Quiet
        } else {
            Progress::Bar
        }
    }
}

/// Probes this machine, showing `progress`.
pub fn probe_with_progress(reg: &Registry, opts: &ProbeOptions, progress: Progress) -> Profile {
    let quiet = matches!(progress, Progress::Quiet);
    let log_as = match progress {
        Progress::BarOrLine(who) => Some(who),
        _ => None,
    };
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

/// The probe options of a command that probes only as part of its work (not `cfgmx probe`):
/// the default timeout, `jobs` parallel probe jobs (default: the CPUs and one).
pub fn default_options(s: &Session, g: &Global, jobs: Option<usize>) -> Result<ProbeOptions> {
    options(
        s,
        g,
        &ProbeArgs {
            timeout: 10.0,
            jobs,
            ..Default::default()
        },
    )
}

/// The machine profile: `--profile FILE` when given, else a probe of this machine (answered
/// from the probe's cache when nothing changed, so it costs milliseconds after the first).
/// `cores` caps a cold probe's parallel compiles, so a build's probe stays inside its budget.
pub fn machine_profile(
    s: &Session,
    g: &Global,
    path: Option<&Path>,
    cores: Option<usize>,
) -> Result<Profile> {
    if let Some(p) = path {
        return load::read_profile(p);
    }
    let opts = default_options(s, g, cores)?;
    // A cold probe takes seconds: its progress bar on a terminal, one line in a log.
    Ok(probe_with_progress(
        &s.registry,
        &opts,
        Progress::BarOrLine("cfgmx"),
    ))
}
