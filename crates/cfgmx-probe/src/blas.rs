//! BLAS detection: one small C program, compiled once, `dlopen`s a library file and calls the
//! providers' query functions (`openblas_get_parallel`, `bli_info_get_enable_openmp`, ...), so
//! the threading comes from the library itself, not from its file name (Debian names the
//! pthread and OpenMP OpenBLAS files alike).

use crate::discover::{Found, Kind, Lib};
use crate::ProbeOptions;
use cfgmx_exec::Cmd;
use cfgmx_model::{BlasRecord, Language, Provider, Registry, Threading};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const QUERY_C: &str = r#"#include <dlfcn.h>
#include <stdio.h>
/* argv[1]: library; then i:NAME (int f(void)), s:NAME (const char *f(void)), p:NAME (present?) */
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("ERROR %s\n", dlerror()); return 3; }
  for (int i = 2; i < argc; i++) {
    const char *name = argv[i] + 2;
    void *f = dlsym(h, name);
    if (!f) { printf("MISSING %s\n", name); continue; }
    if (argv[i][0] == 'i') {
      int (*fn)(void) = (int (*)(void))f;
      printf("INT %s %d\n", name, fn());
    } else if (argv[i][0] == 's') {
      const char *(*fn)(void) = (const char *(*)(void))f;
      const char *s = fn();
      printf("STR %s %s\n", name, s ? s : "");
    } else {
      printf("HAS %s\n", name);
    }
  }
  return 0;
}
"#;

/// The query program's answers for one library.
#[derive(Debug, Default)]
struct Answers {
    ints: HashMap<String, i64>,
    strs: HashMap<String, String>,
    has: Vec<String>,
}

fn parse(out: &str) -> Answers {
    let mut a = Answers::default();
    for l in out.lines() {
        let mut it = l.splitn(3, ' ');
        match (it.next(), it.next(), it.next()) {
            (Some("INT"), Some(n), Some(v)) => {
                if let Ok(v) = v.trim().parse() {
                    a.ints.insert(n.into(), v);
                    a.has.push(n.into());
                }
            }
            (Some("STR"), Some(n), v) => {
                a.strs.insert(n.into(), v.unwrap_or("").trim().into());
                a.has.push(n.into());
            }
            (Some("HAS"), Some(n), _) => a.has.push(n.into()),
            _ => {}
        }
    }
    a
}

/// The provider and threading the answers say, if a provider with query functions claims it.
fn classify(p: &Provider, a: &Answers) -> Option<Threading> {
    let d = &p.detect;
    if let Some(q) = &d.query {
        let v = a.ints.get(q)?;
        return d.query_values.get(&v.to_string()).copied();
    }
    if !d.flags.is_empty() {
        if !d.flags.keys().any(|f| a.ints.contains_key(f)) {
            return None;
        }
        return Some(
            d.flags
                .iter()
                .find(|(f, _)| a.ints.get(*f).is_some_and(|v| *v != 0))
                .map_or(Threading::Sequential, |(_, t)| *t),
        );
    }
    None
}

fn record(
    p: &Provider,
    build: &str,
    t: Threading,
    lib: &Lib,
    config: Option<String>,
) -> BlasRecord {
    BlasRecord {
        path: lib.path.display().to_string(),
        provider: p.name.clone(),
        build: build.to_string(),
        threading: t,
        lib_dir: lib
            .path
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        config: config.filter(|c| !c.is_empty()),
        is_default: false,
    }
}

/// Libraries of a provider without query functions (MKL, reference BLAS): each build whose own
/// libraries all sit beside the file found (OpenMP runtimes and system libraries may live
/// elsewhere).
fn by_siblings(p: &Provider, lib: &Lib) -> Vec<BlasRecord> {
    let dir = lib.path.parent().unwrap_or(Path::new("/"));
    const ELSEWHERE: &[&str] = &["pthread", "m", "dl", "gomp", "iomp5", "omp"];
    p.builds
        .iter()
        .filter(|b| {
            b.libs
                .iter()
                .filter(|l| !ELSEWHERE.contains(&l.as_str()))
                .all(|l| {
                    dir.join(format!("lib{l}.so")).exists()
                        || dir.join(format!("lib{l}.so.3")).exists()
                })
        })
        .map(|b| record(p, &b.name, b.threading, lib, None))
        .collect()
}

pub type Detected = (Vec<BlasRecord>, Option<String>, Vec<String>);

pub fn detect(reg: &Registry, opts: &ProbeOptions, found: &Found, work: &Path) -> Detected {
    let mut warnings = Vec::new();
    if found.libs.is_empty() {
        return (Vec::new(), None, warnings);
    }
    let queryable: Vec<&Provider> = reg
        .providers
        .values()
        .map(|p| p.as_ref())
        .filter(|p| p.detect.query.is_some() || !p.detect.flags.is_empty())
        .collect();
    let mut specs: Vec<String> = Vec::new();
    for p in &queryable {
        if let Some(q) = &p.detect.query {
            specs.push(format!("i:{q}"));
        }
        specs.extend(p.detect.flags.keys().map(|f| format!("i:{f}")));
        if let Some(c) = &p.detect.config {
            specs.push(format!("s:{c}"));
        }
    }
    specs.push("p:dgemm_".into());

    let prog = compile_query(found, opts, work);
    let prog = match prog {
        Ok(p) => Some(p),
        Err(e) => {
            warnings.push(format!("BLAS threading not probed: {e}"));
            None
        }
    };
    let per_lib: Vec<Vec<BlasRecord>> = found
        .libs
        .par_iter()
        .map(|lib| {
            let answers = prog.as_ref().map(|prog| {
                let o = Cmd::new(prog)
                    .arg(&lib.path)
                    .args(&specs)
                    // a threaded library starts its pool on load; one thread is enough to answer
                    .env("OMP_NUM_THREADS", "1")
                    .env("OPENBLAS_NUM_THREADS", "1")
                    .timeout(opts.timeout)
                    .output();
                parse(&o.stdout)
            });
            if let Some(a) = &answers {
                for p in &queryable {
                    if let Some(t) = classify(p, a) {
                        let Some(b) = p.builds.iter().find(|b| b.threading == t) else {
                            continue;
                        };
                        let config = p
                            .detect
                            .config
                            .as_ref()
                            .and_then(|c| a.strs.get(c).cloned());
                        return vec![record(p, &b.name, t, lib, config)];
                    }
                }
                if !a.has.iter().any(|h| h == "dgemm_") {
                    return Vec::new();
                }
            }
            lib.providers
                .iter()
                .filter_map(|n| reg.providers.get(n))
                .filter(|p| p.detect.query.is_none() && p.detect.flags.is_empty())
                .flat_map(|p| by_siblings(p, lib))
                .collect()
        })
        .collect();
    let queried: Vec<bool> = per_lib
        .iter()
        .map(|rs| {
            rs.iter()
                .any(|r| queryable.iter().any(|p| p.name == r.provider))
        })
        .collect();
    let mut out: Vec<BlasRecord> = Vec::new();
    for (rs, q) in per_lib.iter().zip(&queried) {
        for r in rs {
            // A BLAS-interface file (`libblas.so.3`) beside a build the query identified is that
            // build's, not another provider (Debian's blis-openmp/libblas.so.3 has no bli_*).
            if !q
                && out
                    .iter()
                    .chain(per_lib.iter().flatten())
                    .any(|o| o.lib_dir == r.lib_dir && o.provider != r.provider)
            {
                continue;
            }
            out.push(r.clone());
        }
    }
    let mut default = None;
    if let Some((link, target)) = &found.default_blas {
        default = Some(target.display().to_string());
        let target_of = |r: &BlasRecord| std::fs::canonicalize(&r.path).ok();
        for r in &mut out {
            if target_of(r).as_ref() == Some(target) {
                r.is_default = true;
            }
        }
        if !out.iter().any(|r| r.is_default) {
            warnings.push(format!(
                "{} points to {}, which is not a BLAS build cfgmx recognised",
                link.display(),
                target.display()
            ));
        }
    }
    (merge(reg, out), default, warnings)
}

/// One record per build directory: the provider's own library name (`libopenblas.so`) stands
/// for its BLAS-interface twin (`libblas.so`), inheriting its default mark.
fn merge(reg: &Registry, recs: Vec<BlasRecord>) -> Vec<BlasRecord> {
    let own = |r: &BlasRecord| {
        reg.providers.get(&r.provider).is_some_and(|p| {
            let file = r.path.rsplit('/').next().unwrap_or("");
            p.detect
                .libraries
                .iter()
                .any(|l| file.starts_with(&format!("lib{l}.so")))
        })
    };
    let mut out: Vec<BlasRecord> = Vec::new();
    for r in recs {
        match out
            .iter_mut()
            .find(|o| o.provider == r.provider && o.build == r.build && o.lib_dir == r.lib_dir)
        {
            Some(o) => {
                let default = o.is_default || r.is_default;
                if own(&r) && !own(o) {
                    *o = r;
                }
                o.is_default = default;
            }
            None => out.push(r),
        }
    }
    out.sort_by(|a, b| (&a.provider, &a.build, &a.path).cmp(&(&b.provider, &b.build, &b.path)));
    out
}

/// Compiles the query program with the first C compiler that can (any will do: it only needs
/// `dlopen`); it runs beside the compiler probes, so it does not wait for their verdicts.
fn compile_query(found: &Found, opts: &ProbeOptions, work: &Path) -> Result<PathBuf, String> {
    let dir = work.join("blas");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("query.c"), QUERY_C).map_err(|e| e.to_string())?;
    let prog = dir.join("query");
    let mut ccs: Vec<&Path> = found
        .exes
        .iter()
        .filter(|e| e.lang == Language::C && e.kind != Kind::Mpi)
        .map(|e| e.path.as_path())
        .collect();
    // the usual system compilers first: they are the likeliest to work
    ccs.sort_by_key(|p| {
        !matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("cc" | "gcc" | "clang")
        )
    });
    let mut last = String::from("no C compiler found");
    for cc in ccs.into_iter().take(3) {
        let o = Cmd::new(cc)
            .args(["-O0", "-w", "query.c", "-o"])
            .arg(&prog)
            .arg("-ldl")
            .cwd(&dir)
            .timeout(opts.timeout)
            .output();
        if o.success() {
            return Ok(prog);
        }
        last = format!("{o}: {}", o.stderr.lines().next().unwrap_or(""));
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_classify() {
        let reg = Registry::builtin();
        let ob = reg.providers.get("openblas").unwrap();
        let blis = reg.providers.get("blis").unwrap();
        let a = parse("INT openblas_get_parallel 2\nSTR openblas_get_config OpenBLAS 0.3.21 USE_OPENMP\nMISSING bli_info_get_enable_openmp\n");
        assert_eq!(classify(ob, &a), Some(Threading::Openmp));
        assert_eq!(classify(blis, &a), None);
        let a = parse("MISSING openblas_get_parallel\nINT bli_info_get_enable_openmp 0\nINT bli_info_get_enable_pthreads 1\n");
        assert_eq!(classify(blis, &a), Some(Threading::Pthread));
        assert_eq!(classify(ob, &a), None);
        let a = parse("INT bli_info_get_enable_openmp 0\nINT bli_info_get_enable_pthreads 0\n");
        assert_eq!(classify(blis, &a), Some(Threading::Sequential));
    }
}
