//! `cfgmx expand`: the variants of a matrix.

use crate::cli::{ExpandArgs, Global};
use crate::error::{CliError, Exit, Result};
use crate::load::{self, Session};
use crate::lockfile::update_lock;
use crate::output::{flags, Table, Term};
use crate::plan;
use crate::probing::{self, Progress};
use crate::records::Record;
use cfgmx_build::job::LOCK_FILE;
use cfgmx_model::{ConcreteVariant, Diagnostics, Matrix, Profile, Resolver, VariantSet};
use cfgmx_probe::ProbeOptions;
use std::io::Write;
use std::path::Path;

pub fn run(g: &Global, a: ExpandArgs) -> Result<Exit> {
    let session = Session::load(g)?;
    let m = session.matrix(a.matrix.as_deref())?;
    let g = &g.with_matrix(&m);
    if a.lock {
        return write_lock(&session, g, m, a.profile.as_deref());
    }
    let reg = &session.registry;
    if a.jsonl {
        return stream(&m, reg);
    }
    let set = m.variant_set(reg)?;
    // Against a machine profile: availability and concrete hashes.
    let against = match (&a.profile, a.probe) {
        (Some(f), _) => Against::File(f),
        (None, true) => Against::ThisMachine,
        (None, false) => Against::Nothing,
    };
    if let Some((profile, prove)) = profile_for_expand(&session, g, against)? {
        let cs = crate::proven::concretize_all(&set.variants, &m, reg, &profile, prove.as_ref());
        return print_concrete(g, &m, &set, &cs);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    if g.json {
        let recs: Vec<Record> = set
            .variants
            .iter()
            .map(|v| Record {
                variant: v,
                short_hash: &v.hash[..set.short_len],
            })
            .collect();
        return print_json(&mut out, &recs);
    }
    let term = Term::stdout(g);
    // Only spec hashes here: a concrete one needs a machine (`--probe`).
    // Narrow, the link line goes first (`--json` and `show` have it), then the compilers (the
    // name says the family).
    let mut t = Table::new(&["NAME", "SPEC", "COMPILERS", "BLAS", "C FLAGS", "LIBS"])
        .keep(&[1])
        .optional(&[5, 2]);
    for v in &set.variants {
        let f = v.flags();
        let compilers = [&f.cc, &f.cxx, &f.fc]
            .iter()
            .filter_map(|c| c.as_deref())
            .collect::<Vec<_>>()
            .join(", ");
        let blas = v
            .resolved
            .blas
            .as_ref()
            .map_or("-".to_string(), |b| b.id.clone());
        let mut name = v.name.clone();
        if !v.resolved.warnings.is_empty() {
            name.push_str(" (!)");
        }
        t.row(vec![
            name,
            v.hash[..set.short_len].to_string(),
            compilers,
            blas,
            flags(&f.cflags),
            f.lib_args().join(" "),
        ]);
    }
    write!(out, "{}", t.render(&term)).ok();
    let n_warn = set
        .variants
        .iter()
        .filter(|v| !v.resolved.warnings.is_empty())
        .count();
    let summary = format!(
        "{} variants from matrix `{}`{}",
        set.variants.len(),
        m.name,
        if n_warn > 0 {
            format!("; {n_warn} with warnings (!): see `cfgmx show NAME`")
        } else {
            String::new()
        }
    );
    writeln!(out, "\n{}", term.wrap(&summary, 0)).ok();
    Ok(Exit::Ok)
}

/// Streams variants as JSON lines, resolving lazily.
fn stream(m: &cfgmx_model::Matrix, reg: &cfgmx_model::Registry) -> Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut resolver = Resolver::new(m, reg);
    let mut combos = m.combos();
    let mut errs = Vec::new();
    let mut n = 0u64;
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    for c in combos.by_ref() {
        match resolver.resolve_owned(c) {
            Ok(v) => {
                line.clear();
                v.write_json_line(&mut line);
                out.write_all(&line)
                    .map_err(|e| CliError::runtime(e.to_string()))?;
                n += 1;
            }
            Err(d) => {
                if !errs.contains(&d) {
                    errs.push(d);
                }
            }
        }
    }
    out.flush().ok();
    if n == 0 && errs.is_empty() {
        errs = m.nothing_left(&combos.removed_by);
    }
    if !errs.is_empty() {
        return Err(Diagnostics {
            diagnostics: errs,
            sources: vec![m.source.clone()],
        }
        .into());
    }
    Ok(Exit::Ok)
}

/// `cfgmx expand --lock`: writes the concrete variants to cfgmx.lock.
fn write_lock(s: &Session, g: &Global, m: Matrix, profile: Option<&Path>) -> Result<Exit> {
    let profile = probing::machine_profile(s, g, profile, None)?;
    let prove = probing::default_options(s, g, None)?;
    let j = plan::jobs(s, m, &profile, &prove, None)?;
    update_lock(Path::new(LOCK_FILE), &j.matrix, &j.jobs)?;
    for u in &j.unavailable {
        eprintln!(
            "note: {} cannot be built here: {}",
            u.name,
            u.reason.as_deref().unwrap_or_default()
        );
    }
    if g.json {
        println!(
            "{}",
            serde_json::json!({"lock": LOCK_FILE, "variants": j.jobs.len()})
        );
    } else {
        println!(
            "wrote {} variant(s) of `{}` to {LOCK_FILE}",
            j.jobs.len(),
            j.matrix
        );
    }
    Ok(Exit::Ok)
}

/// What `expand` checks variants against.
#[derive(Debug, Clone, Copy)]
enum Against<'a> {
    /// Nothing: spec hashes only.
    Nothing,
    /// This machine, probed (`--probe`).
    ThisMachine,
    /// A profile file (`--profile FILE`), maybe of another machine.
    File(&'a Path),
}

/// The profile `expand --probe` / `--profile FILE` checks variants against, if asked for,
/// and for a probe of this machine the options its link tests run with (a profile read from a
/// file may describe another machine: its variants are not proven here).
fn profile_for_expand(
    s: &Session,
    g: &Global,
    against: Against,
) -> Result<Option<(Profile, Option<ProbeOptions>)>> {
    match against {
        Against::Nothing => return Ok(None),
        Against::File(f) => return load::read_profile(f).map(|p| Some((p, None))),
        Against::ThisMachine => {}
    }
    let opts = probing::default_options(s, g, None)?;
    let profile = probing::probe_with_progress(&s.registry, &opts, Progress::unless_json(g));
    Ok(Some((profile, Some(opts))))
}

/// A concrete variant as `expand --json` prints it against a profile.
#[derive(serde::Serialize)]
struct ConcreteRecord<'a> {
    #[serde(flatten)]
    variant: &'a ConcreteVariant,
    /// The concrete hash when the variant can be built here, else the spec hash (the id a
    /// build or the lock file knows it by); the two below say which is which.
    short_hash: &'a str,
    short_spec_hash: &'a str,
    /// None when the variant cannot be built here.
    short_concrete_hash: Option<&'a str>,
}

/// Prints every variant with its availability on the profiled machine and its concrete hash.
fn print_concrete(
    g: &Global,
    m: &Matrix,
    set: &VariantSet,
    cs: &[ConcreteVariant],
) -> Result<Exit> {
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
        return print_json(&mut out, &recs);
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
    for c in cs {
        t.row(concrete_row(c, short, &term));
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
    Ok(Exit::Ok)
}

/// One concrete variant's row of the `expand --probe` table.
fn concrete_row(c: &ConcreteVariant, short: usize, term: &Term) -> Vec<String> {
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
    vec![
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
    ]
}

/// The `--json` answer: the records as one pretty array, then a newline.
fn print_json(out: &mut impl Write, recs: &impl serde::Serialize) -> Result<Exit> {
    serde_json::to_writer_pretty(&mut *out, recs).map_err(|e| CliError::runtime(e.to_string()))?;
    writeln!(out).ok();
    Ok(Exit::Ok)
}
