//! `cfgmx expand`: the variants of a matrix.

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::load;
use crate::output::{flags, Table, Term};
use cfgmx_model::{Diagnostics, Resolver, Variant};
use clap::Args;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// Matrix file or embedded matrix name (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
    /// Stream one JSON record per line as variants are resolved (constant memory; full hashes,
    /// since a unique short prefix needs the whole set).
    #[arg(long, conflicts_with = "json")]
    pub jsonl: bool,
    /// Check each variant against this machine (the cached probe, probing if there is none):
    /// available or why not, and a concrete hash.
    #[arg(long, conflicts_with_all = ["jsonl", "profile"])]
    pub probe: bool,
    /// Write the concrete variants, keyed by hash, to cfgmx.lock (probing this machine unless
    /// --profile is given).
    #[arg(long)]
    pub lock: bool,
    /// Check each variant against a profile written by `cfgmx probe --json` (also for --lock).
    #[arg(long, value_name = "FILE", conflicts_with = "jsonl")]
    pub profile: Option<std::path::PathBuf>,
}

/// A variant as `--json` prints it.
#[derive(Serialize)]
pub struct Record<'a> {
    #[serde(flatten)]
    pub variant: &'a Variant,
    pub short_hash: &'a str,
}

pub fn run(g: &Global, a: ExpandArgs) -> Result<u8> {
    if a.lock {
        return super::build::run_lock(g, a.matrix.as_deref(), a.profile.as_deref());
    }
    let reg = load::registry(g)?;
    let m = load::matrix(a.matrix.as_deref(), &reg)?;
    if a.jsonl {
        return stream(&m, &reg);
    }
    let set = m.variant_set(&reg)?;
    // Against a machine profile: availability and concrete hashes (see commands/probe.rs).
    if let Some((profile, prove)) =
        super::probe::profile_for_expand(g, a.probe, a.profile.as_deref(), &reg)?
    {
        return super::probe::print_concrete(g, &m, &reg, &set, &profile, prove.as_ref());
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
        serde_json::to_writer_pretty(&mut out, &recs)
            .map_err(|e| CliError::runtime(e.to_string()))?;
        writeln!(out).ok();
        return Ok(0);
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
    Ok(0)
}

/// Streams variants as JSON lines, resolving lazily.
fn stream(m: &cfgmx_model::Matrix, reg: &cfgmx_model::Registry) -> Result<u8> {
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
    Ok(0)
}
