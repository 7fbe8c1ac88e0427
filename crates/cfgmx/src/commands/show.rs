//! `cfgmx show HASH_OR_NAME`: one variant whole.

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::load;
use crate::output::flags;
use cfgmx_model::{lookup, Lookup, Variant, VariantSet};
use clap::Args;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Variant name or hash prefix.
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::variants))]
    pub variant: String,
    /// Matrix file or embedded matrix name (default: hpc16).
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::complete::matrices))]
    pub matrix: Option<String>,
    /// Print the documents the spec hash is computed from.
    #[arg(long)]
    pub spec: bool,
}

/// Finds a variant by name or hash prefix, with a message that helps when it is not there.
pub fn find<'a>(set: &'a VariantSet, key: &str, matrix_name: &str) -> Result<&'a Variant> {
    match lookup(&set.variants, key, |v| &v.name, |v| vec![v.hash.as_str()]) {
        Lookup::Found(v) => Ok(v),
        Lookup::Ambiguous(vs) => Err(CliError::usage(format!(
            "`{key}` is a prefix of {} hashes ({}); give more digits",
            vs.len(),
            vs.iter()
                .map(|v| format!("{} {}", &v.hash[..set.short_len], v.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Lookup::NotFound => {
            let close: Vec<&str> = set
                .variants
                .iter()
                .map(|v| v.name.as_str())
                .filter(|n| n.contains(key) || key.contains(*n))
                .take(5)
                .collect();
            let hint = if close.is_empty() {
                "run `cfgmx expand` to list the variants".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            Err(CliError::usage(format!(
                "no variant `{key}` in matrix `{matrix_name}`; {hint}"
            )))
        }
    }
}

pub fn run(g: &Global, a: ShowArgs) -> Result<u8> {
    let reg = load::registry(g)?;
    let m = load::matrix(a.matrix.as_deref(), &reg)?;
    let set = m.variant_set(&reg)?;
    let v = match find(&set, &a.variant, &m.name) {
        Ok(v) => v,
        // A hash from a bug report may be a concrete one recorded in ./cfgmx.lock.
        Err(e) => match super::build::from_lock(&a.variant) {
            Err(lock) => {
                drop(e);
                return Err(CliError::usage(format!(
                    "`{}` is not a variant of matrix `{}`, and {} here, where built variants' concrete hashes are recorded, cannot be read: {lock}",
                    a.variant,
                    m.name,
                    cfgmx_build::job::LOCK_FILE
                )));
            }
            Ok(Some(j)) if !a.spec => {
                if g.json {
                    println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
                } else {
                    let script = crate::output::env_script(&j)?;
                    print!("from {}:\n{script}", cfgmx_build::job::LOCK_FILE);
                }
                return Ok(0);
            }
            _ => return Err(e),
        },
    };
    if a.spec {
        let doc = v.spec_document();
        if g.json {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else {
            println!("{}", cfgmx_model::hash::canonical_json(&doc));
        }
        return Ok(0);
    }
    if g.json {
        let rec = super::expand::Record {
            variant: v,
            short_hash: &v.hash[..set.short_len],
        };
        println!("{}", serde_json::to_string_pretty(&rec).unwrap_or_default());
        return Ok(0);
    }
    print!("{}", describe(v, set.short_len));
    Ok(0)
}

/// The human description of a variant.
pub fn describe(v: &Variant, short: usize) -> String {
    let r = &v.resolved;
    let f = &r.flags;
    let mut s = String::new();
    let mut line = |k: &str, val: String| {
        if !val.is_empty() {
            s.push_str(&format!("{k:<14}{val}\n"));
        }
    };
    line("variant", v.name.clone());
    line("hash", format!("{} (full {})", &v.hash[..short], v.hash));
    line(
        "axes",
        v.axes
            .iter()
            .map(|(k, x)| format!("{k}={x}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let fam = match &r.fortran_family {
        Some(ff) => format!("{} (Fortran: {ff})", r.compiler.family),
        None => r.compiler.family.clone(),
    };
    line("toolchain", fam);
    line("CC", f.cc.clone().unwrap_or_default());
    line("CXX", f.cxx.clone().unwrap_or_default());
    line("FC", f.fc.clone().unwrap_or_default());
    line("CFLAGS", flags(&f.cflags));
    line("CXXFLAGS", flags(&f.cxxflags));
    line("FFLAGS", flags(&f.fflags));
    line("LDFLAGS", flags(&f.ldflags));
    // Facet link flags belong to one language's compiler: shown apart, per language.
    for (lang, l) in &f.link {
        line(&format!("LDFLAGS {}", lang.as_str()), flags(l));
    }
    line("LIBS", f.lib_args().join(" "));
    if let Some(b) = &r.blas {
        line(
            "blas",
            format!(
                "{} ({} threading){}",
                b.id,
                b.build.threading,
                r.blas_request
                    .as_ref()
                    .filter(|q| **q != b.id)
                    .map(|q| format!(", for `{q}`"))
                    .unwrap_or_default()
            ),
        );
        if !b.build.ignored_vars.is_empty() {
            line("", format!("ignores {}", b.build.ignored_vars.join(", ")));
        }
    }
    line("facets", r.facets.join(", "));
    line(
        "cmake",
        f.cmake
            .iter()
            .map(|(k, x)| format!("-D{k}={x}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    line(
        "env",
        f.env
            .iter()
            .map(|(k, x)| format!("{k}={x}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    for w in &r.warnings {
        line("warning", w.clone());
    }
    s
}
