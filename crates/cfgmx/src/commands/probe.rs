//! `cfgmx probe`: what this machine's compilers, MPI wrappers and BLAS builds really are.

use crate::cli::{Global, ProbeArgs};
use crate::error::{CliError, Exit, Result};
use crate::load::Session;
use crate::output::{Table, Term, Tone};
use crate::probing::{self, Progress};
use cfgmx_model::{ProbeStatus, Profile};
use std::io::Write;

pub fn run(g: &Global, a: ProbeArgs) -> Result<Exit> {
    // The warm path needs the descriptors: discovery looks for the names they give.
    let session = Session::load(g)?;
    let opts = probing::options(&session, g, &a)?;
    let reg = &session.registry;
    let cached = if opts.fresh {
        None
    } else {
        cfgmx_probe::load_cached(reg, &opts).unwrap_or_else(|why| {
            eprintln!("warning: {why}");
            None
        })
    };
    let profile = match cached {
        Some(p) => p,
        None => probing::probe_with_progress(reg, &opts, Progress::unless_json(g)),
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
        return Ok(Exit::Ok);
    }
    write!(out, "{}", render(&profile, &Term::stdout(g))).ok();
    Ok(Exit::Ok)
}

/// The human report: compilers and MPI wrappers one row per toolchain (the names of one
/// family and version folded into a row, their languages listed once), then BLAS builds.
pub fn render(p: &Profile, term: &Term) -> String {
    let mut s = format!("CPUs: {}\n\nCompilers\n", p.cpus);
    s.push_str(&compilers_table(p, term));
    if !p.mpi.is_empty() {
        s.push_str("\nMPI wrappers\n");
        s.push_str(&mpi_table(p, term));
    }
    if !p.modules.is_empty() {
        s.push_str("\nModules\n");
        s.push_str(&modules_table(p, term));
    }
    s.push_str("\nBLAS\n");
    s.push_str(&blas_table(p, term));
    s.push_str(&notes(p, term));
    s
}

/// Compilers, one row per family and version (MPI wrappers have their own table).
fn compilers_table(p: &Profile, term: &Term) -> String {
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
    t.render(term)
}

/// MPI wrappers, one row per implementation, version and compiler.
fn mpi_table(p: &Profile, term: &Term) -> String {
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
    t.render(term)
}

/// What each module set provides.
fn modules_table(p: &Profile, term: &Term) -> String {
    let mut t = Table::new(&["MODULES", "PROVIDES"]);
    for m in &p.modules {
        let mut what: Vec<String> = Vec::new();
        let provides = |list: &[cfgmx_model::Provided], p: &cfgmx_model::Provided| list.contains(p);
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
    t.render(term)
}

/// BLAS builds, with the symbol decoration column when some library has one.
fn blas_table(p: &Profile, term: &Term) -> String {
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
    t.render(term)
}

/// The warnings under the tables: BLAS libraries that could not be asked, the probe's own.
fn notes(p: &Profile, term: &Term) -> String {
    let mut s = String::new();
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
