//! `cfgmx show HASH_OR_NAME`: one variant whole: a variant of the matrix by name or spec hash,
//! or a built variant from ./cfgmx.lock by concrete (or spec) hash.

use crate::cli::{Global, ShowArgs};
use crate::error::{CliError, Exit, Result};
use crate::load::Session;
use crate::lockfile::from_lock;
use crate::output::flags;
use crate::records::{find, Record};
use cfgmx_build::job::{Job, LOCK_FILE};
use cfgmx_model::hash::short_hash;
use cfgmx_model::Variant;
use std::path::Path;

pub fn run(g: &Global, a: ShowArgs) -> Result<Exit> {
    let session = Session::load(g)?;
    let m = session.matrix(a.matrix.as_deref())?;
    let set = m.variant_set(&session.registry)?;
    let v = match find(&set, &a.variant, &m.name) {
        Ok(v) => v,
        // A hash from a bug report may be a concrete one, or one of another matrix, recorded
        // in ./cfgmx.lock.
        Err(CliError::Usage(not_in_matrix)) => {
            return match from_lock(Path::new(LOCK_FILE), &a.variant) {
                Ok((matrix, j)) if !a.spec => {
                    if g.json {
                        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
                    } else {
                        let lock = std::path::absolute(LOCK_FILE)
                            .unwrap_or_else(|_| LOCK_FILE.into());
                        print!("{}", describe_job(&j, &matrix, &lock));
                    }
                    Ok(Exit::Ok)
                }
                Ok((matrix, j)) => Err(CliError::usage(format!(
                    "`{}` is variant {} of matrix `{matrix}` in {LOCK_FILE}, which records what was built, not the documents its spec hash is computed from: `cfgmx show {} MATRIX --spec` with that matrix's file",
                    a.variant, j.name, j.name
                ))),
                Err(lock) => Err(CliError::usage(format!(
                    "{not_in_matrix}.\nLooked in the lock file too: {lock}"
                ))),
            };
        }
        Err(e) => return Err(e),
    };
    if a.spec {
        let doc = v.spec_document();
        if g.json {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else {
            // The three lines the spec hash is the SHA-256 of, then the resolved part whose
            // canonical JSON the third line digests: a reader can recompute the hash.
            use cfgmx_model::hash::{canonical_json, sha256_hex, SPEC_SCHEMA};
            let resolved = canonical_json(&doc["resolved"]);
            let text = format!(
                "{SPEC_SCHEMA}\naxes {}\nresolved {}\n",
                canonical_json(&doc["axes"]),
                sha256_hex(resolved.as_bytes())
            );
            println!(
                "# spec hash {} = SHA-256 of these three lines:\n{text}",
                sha256_hex(text.as_bytes())
            );
            println!("# the resolved part (its canonical JSON, compact with sorted keys, is what `resolved` digests):");
            println!(
                "{}",
                serde_json::to_string_pretty(&doc["resolved"]).unwrap_or_default()
            );
        }
        return Ok(Exit::Ok);
    }
    if g.json {
        let rec = Record {
            variant: v,
            short_hash: &v.hash[..set.short_len],
        };
        println!("{}", serde_json::to_string_pretty(&rec).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    print!("{}", describe(v, set.short_len));
    Ok(Exit::Ok)
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
    line("axes", assignments(&v.axes, ""));
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
    line("cmake", assignments(&f.cmake, "-D")); // CMake's -D, not a compiler's
    line("env", assignments(&f.env, ""));
    for w in &r.warnings {
        line("warning", w.clone());
    }
    s
}

/// `k=v` pairs joined by spaces, each behind `prefix` (`-D` for CMake's cache variables).
fn assignments<K: std::fmt::Display, V: std::fmt::Display>(
    map: impl IntoIterator<Item = (K, V)>,
    prefix: &str,
) -> String {
    map.into_iter()
        .map(|(k, x)| format!("{prefix}{k}={x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The human description of a built variant from the lock file: what it was built with.
pub fn describe_job(j: &Job, matrix: &str, lock: &Path) -> String {
    let mut s = String::new();
    let mut line = |k: &str, val: String| {
        if !val.is_empty() {
            s.push_str(&format!("{k:<14}{val}\n"));
        }
    };
    line("variant", format!("{} (matrix `{matrix}`)", j.name));
    line("from", lock.display().to_string());
    line(
        "concrete hash",
        format!("{} (full {})", short_hash(&j.hash), j.hash),
    );
    line(
        "spec hash",
        format!("{} (full {})", short_hash(&j.spec_hash), j.spec_hash),
    );
    line("axes", assignments(&j.axes, ""));
    line(
        "compilers",
        j.compiler_versions
            .iter()
            .map(|(l, c)| format!("{l}: {c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    line("CC", j.cc.clone().unwrap_or_default());
    line("CXX", j.cxx.clone().unwrap_or_default());
    line("FC", j.fc.clone().unwrap_or_default());
    line("CFLAGS", flags(&j.cflags));
    line("CXXFLAGS", flags(&j.cxxflags));
    line("FFLAGS", flags(&j.fflags));
    line("LDFLAGS", flags(&j.ldflags));
    line("LIBS", j.libs.join(" "));
    line("cmake", assignments(&j.cmake, "-D")); // CMake's -D, not a compiler's
    line("env", assignments(&j.env, ""));
    if j.threaded {
        line(
            "threads",
            format!("{} in tests ({})", j.threads, j.thread_vars.join(", ")),
        );
    }
    // Its tests run once per runtime point: each named, as the reports name its rows.
    line(
        "runtime",
        j.runtime
            .iter()
            .map(|p| format!("[{}]", p.label()))
            .collect::<Vec<_>>()
            .join(" "),
    );
    line(
        "next",
        format!(
            "cfgmx env {0} (a sourceable script), cfgmx reproduce {0} (a configured build dir)",
            short_hash(&j.hash)
        ),
    );
    s
}
