//! `cfgmx probe`: what this machine's compilers, MPI wrappers and BLAS builds really are.

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::load;
use crate::output::Table;
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
    let mut srcs: Vec<cfgmx_model::Source> = cfgmx_model::registry::builtin_mpi_files()
        .iter()
        .map(|(f, t)| cfgmx_model::Source::new(*f, *t))
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
    })
}

/// Probes with a progress bar on a terminal (stderr), quiet otherwise.
pub fn probe_with_progress(reg: &Registry, opts: &ProbeOptions, quiet: bool) -> Profile {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(1);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b
    });
    let on_event = |e: ProbeEvent| {
        if let ProbeEvent::Warning(w) = &e {
            match &bar {
                Some(b) => b.suspend(|| eprintln!("warning: {w}")),
                None => eprintln!("warning: {w}"),
            }
            return;
        }
        let Some(b) = &bar else { return };
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
    // The warm path parses no descriptors: the cache key carries their fingerprint.
    let cached = if opts.fresh {
        None
    } else {
        cfgmx_probe::load_cached(&Registry::default(), &opts).unwrap_or_else(|why| {
            eprintln!("warning: {why}");
            None
        })
    };
    let profile = match cached {
        Some(p) => p,
        None => probe_with_progress(&load::registry(g)?, &opts, g.json),
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    if g.json {
        serde_json::to_writer_pretty(&mut out, &profile)
            .map_err(|e| CliError::runtime(e.to_string()))?;
        writeln!(out).ok();
        return Ok(0);
    }
    write!(out, "{}", render(&profile)).ok();
    Ok(0)
}

/// The human report: compilers, MPI wrappers, BLAS builds.
pub fn render(p: &Profile) -> String {
    let mut s = format!("CPUs: {}\n\nCompilers\n", p.cpus);
    let mut t = Table::new(&["PATH", "FAMILY", "VERSION", "LANG", "OPENMP"]);
    for c in &p.compilers {
        let omp = match (c.status, c.facets.get("openmp")) {
            (ProbeStatus::Ok, Some(f)) if f.works => {
                let mut x = f.flag.clone().unwrap_or_default();
                if let Some(d) = &f.detail {
                    x.push_str(&format!(" (_OPENMP {d})"));
                }
                x
            }
            (ProbeStatus::Ok, Some(f)) => {
                format!("no: {}", f.reason.as_deref().unwrap_or("no flag worked"))
            }
            (ProbeStatus::Ok, None) => "-".into(),
            (st, _) => format!(
                "{}: {}",
                serde_json::to_value(st)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                c.error.as_deref().unwrap_or("")
            ),
        };
        let mut fam = c.family.clone();
        if let Some(w) = &c.wrapper {
            fam.push_str(&format!(" (via {w})"));
        }
        t.row(vec![
            c.path.clone(),
            fam,
            c.version.clone(),
            c.languages
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(","),
            omp,
        ]);
    }
    s.push_str(&t.render());
    if !p.mpi.is_empty() {
        s.push_str("\nMPI wrappers\n");
        let mut t = Table::new(&["PATH", "MPI", "VERSION", "LANG", "COMPILER"]);
        for m in &p.mpi {
            t.row(vec![
                m.path.clone(),
                m.implementation.clone(),
                m.version.clone().unwrap_or_default(),
                m.language.as_str().into(),
                // an unusable wrapper says why (its compiler is missing, it hung, ...)
                match (m.status, &m.error) {
                    (ProbeStatus::Ok, _) | (_, None) => format!(
                        "{} ({} {})",
                        m.compiler.as_deref().unwrap_or("?"),
                        m.compiler_family.as_deref().unwrap_or("?"),
                        m.compiler_version.as_deref().unwrap_or("?")
                    ),
                    (_, Some(e)) => e.clone(),
                },
            ]);
        }
        s.push_str(&t.render());
    }
    s.push_str("\nBLAS\n");
    let mut t = Table::new(&[
        "PATH",
        "PROVIDER",
        "BUILD",
        "THREADING",
        "INTEGERS",
        "SYMBOLS",
        "DEFAULT",
    ]);
    for b in &p.blas {
        // the decoration around every exported name (scipy-openblas64: scipy_*64_)
        let symbols = if b.symbol_prefix.is_empty() && b.symbol_suffix.is_empty() {
            String::new()
        } else {
            format!("{}*{}", b.symbol_prefix, b.symbol_suffix)
        };
        t.row(vec![
            b.path.clone(),
            b.provider.clone(),
            b.build.clone(),
            b.threading.to_string(),
            json_word(&b.int_width),
            symbols,
            if b.is_default {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    s.push_str(&t.render());
    for f in &p.blas_failures {
        s.push_str(&format!(
            "warning: BLAS library {} could not be asked ({}): {}\n",
            f.path,
            json_word(&f.status),
            f.error
        ));
    }
    for w in &p.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
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
    let profile = probe_with_progress(reg, &opts, g.json);
    Ok(Some((profile, Some(opts))))
}

/// A concrete variant as `expand --json` prints it against a profile.
#[derive(serde::Serialize)]
struct ConcreteRecord<'a> {
    #[serde(flatten)]
    variant: &'a cfgmx_model::ConcreteVariant,
    short_hash: &'a str,
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
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &recs)
            .map_err(|e| CliError::runtime(e.to_string()))?;
        writeln!(out).ok();
        return Ok(0);
    }
    let mut t = Table::new(&[
        "NAME",
        "HASH",
        "STATUS",
        "COMPILERS",
        "BLAS",
        "WHY NOT / WARNINGS",
    ]);
    for c in &cs {
        let compilers = c
            .compilers
            .values()
            .map(|x| format!("{}@{}", x.path, x.version))
            .collect::<Vec<_>>()
            .join(",");
        let mut notes = c.reasons.clone();
        notes.extend(c.variant.resolved.warnings.iter().cloned());
        notes.extend(c.concrete_warnings.iter().cloned());
        t.row(vec![
            c.variant.name.clone(),
            c.id_hash()[..short].to_string(),
            if c.available {
                "available"
            } else {
                "unavailable"
            }
            .into(),
            if compilers.is_empty() {
                "-".into()
            } else {
                compilers
            },
            c.blas_library
                .as_ref()
                .map_or("-".into(), |b| b.path.clone()),
            notes.join("; "),
        ]);
    }
    write!(out, "{}", t.render()).ok();
    let n = cs.iter().filter(|c| c.available).count();
    writeln!(
        out,
        "\n{n} of {} variants of matrix `{}` can be built here (HASH is the concrete hash for those)",
        cs.len(),
        m.name
    )
    .ok();
    Ok(0)
}
