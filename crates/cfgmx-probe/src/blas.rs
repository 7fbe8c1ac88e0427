//! BLAS detection: one small C program, compiled once, `dlopen`s a library file and calls the
//! providers' query functions (`openblas_get_parallel`, `bli_info_get_enable_openmp`, ...), so
//! the threading comes from the library itself, not from its file name (Debian names the
//! pthread and OpenMP OpenBLAS files alike).

use crate::discover::{Found, Kind, Lib};
use crate::ProbeOptions;
use cfgmx_exec::Cmd;
use cfgmx_model::{BlasRecord, Language, Provider, Registry, Threading};
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

/// The query program, in Rust, for a binary that runs it as a helper (`cfgmx` does, with the
/// hidden first argument [`crate::HELPER_ARG`]): the same protocol and output as `QUERY_C`, so
/// no C compiler is needed to ask the libraries. Returns the exit code.
pub fn query_main(args: &[String]) -> i32 {
    use std::ffi::{CStr, CString};
    use std::io::Write;
    let Some((lib, specs)) = args.split_first() else {
        return 2;
    };
    let Ok(c_lib) = CString::new(lib.as_str()) else {
        return 2;
    };
    let mut out = std::io::stdout().lock();
    // SAFETY: dlopen/dlsym/dlerror with valid C strings. Calling the symbols is inherently
    // trusting the library (a provider's documented `int f(void)` / `const char *f(void)`);
    // this runs in a child process so a misbehaving library cannot harm the probe.
    unsafe {
        let h = libc::dlopen(c_lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if h.is_null() {
            let e = libc::dlerror();
            let msg = if e.is_null() {
                String::new()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            };
            let _ = writeln!(out, "ERROR {msg}");
            return 3;
        }
        for spec in specs {
            let (kind, name) = spec.split_at(spec.len().min(2));
            let Ok(c_name) = CString::new(name) else {
                continue;
            };
            let f = libc::dlsym(h, c_name.as_ptr());
            if f.is_null() {
                let _ = writeln!(out, "MISSING {name}");
                continue;
            }
            match kind {
                "i:" => {
                    let f: extern "C" fn() -> libc::c_int = std::mem::transmute(f);
                    let _ = writeln!(out, "INT {name} {}", f());
                }
                "s:" => {
                    let f: extern "C" fn() -> *const libc::c_char = std::mem::transmute(f);
                    let p = f();
                    let s = if p.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    };
                    let _ = writeln!(out, "STR {name} {s}");
                }
                _ => {
                    let _ = writeln!(out, "HAS {name}");
                }
            }
        }
    }
    0
}

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

/// What the BLAS probe asks, with which program, of which library files: made without running
/// anything (unless no helper binary is given and the query program must be compiled), so the
/// caller can schedule the per-library queries ([`Plan::query`]) among its other work.
pub struct Plan<'a> {
    reg: &'a Registry,
    queryable: Vec<&'a Provider>,
    specs: Vec<String>,
    prog: PathBuf,
    pre: Vec<String>,
    timeout: std::time::Duration,
    /// The library files to ask, one query each.
    pub libs: Vec<&'a Lib>,
}

/// The plan, or (`Err`) the whole answer when nothing can be asked.
pub fn plan<'a>(
    reg: &'a Registry,
    opts: &ProbeOptions,
    found: &'a Found,
    work: &Path,
) -> Result<Plan<'a>, Detected> {
    if found.libs.is_empty() {
        return Err((Vec::new(), None, Vec::new()));
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

    // The helper binary (cfgmx itself) when there is one; otherwise a compiled C program.
    let prog = match &opts.helper {
        Some(h) => Ok((h.clone(), vec![crate::HELPER_ARG.to_string()])),
        None => compile_query(found, opts, work).map(|p| (p, Vec::new())),
    };
    let (prog, pre) = match prog {
        Ok(p) => p,
        Err(e) => {
            // Without the query a file name says nothing reliable (Debian's libblas.so.3 may
            // be OpenBLAS, BLIS or reference BLAS), so nothing is reported.
            return Err((
                Vec::new(),
                None,
                vec![format!(
                    "BLAS libraries not probed: cannot compile the query program: {e}"
                )],
            ));
        }
    };
    // A BLAS-interface twin (`libblas.so.3`) beside a library a provider can be asked about
    // is that library's build: asking the one is enough.
    let asks = |l: &Lib| {
        l.providers
            .iter()
            .any(|p| queryable.iter().any(|q| q.name == *p))
    };
    let libs: Vec<&Lib> = found
        .libs
        .iter()
        .filter(|l| {
            asks(l)
                || !found
                    .libs
                    .iter()
                    .any(|o| asks(o) && o.path.parent() == l.path.parent())
        })
        .collect();
    Ok(Plan {
        reg,
        queryable,
        specs,
        prog,
        pre,
        timeout: opts.timeout,
        libs,
    })
}

/// Plans, asks every library (in parallel) and finishes: the BLAS probe on its own.
#[cfg(test)]
pub fn detect(reg: &Registry, opts: &ProbeOptions, found: &Found, work: &Path) -> Detected {
    match plan(reg, opts, found, work) {
        Err(d) => d,
        Ok(p) => {
            use rayon::prelude::*;
            let per_lib = p.libs.par_iter().map(|l| p.query(l)).collect();
            p.finish(found, per_lib)
        }
    }
}

impl Plan<'_> {
    /// What one library file is: the records of the build it belongs to (none when it is
    /// not a BLAS a provider recognises).
    pub fn query(&self, lib: &Lib) -> Vec<BlasRecord> {
        let (reg, queryable) = (self.reg, &self.queryable);
        let o = Cmd::new(&self.prog)
            .args(&self.pre)
            .arg(&lib.path)
            .args(&self.specs)
            // a threaded library starts its pool on load; one thread is enough to answer
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .timeout(self.timeout)
            .output();
        let a = parse(&o.stdout);
        for p in queryable {
            if let Some(t) = classify(p, &a) {
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
        lib.providers
            .iter()
            .filter_map(|n| reg.providers.get(n))
            .filter(|p| p.detect.query.is_none() && p.detect.flags.is_empty())
            .flat_map(|p| by_siblings(p, lib))
            .collect()
    }

    /// The answer from every library's records ([`Plan::query`], in `libs` order): twins
    /// folded into their build, the system default marked.
    pub fn finish(&self, found: &Found, per_lib: Vec<Vec<BlasRecord>>) -> Detected {
        let (reg, queryable) = (self.reg, &self.queryable);
        let mut warnings = Vec::new();
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
            // the alternative points at a build's file, or at its twin in the build's directory
            let real = |p: &Path| std::fs::canonicalize(p).ok();
            let target_dir = target.parent().map(Path::to_path_buf);
            for r in &mut out {
                let p = Path::new(&r.path);
                if real(p).as_ref() == Some(target)
                    || (target_dir.is_some() && real(Path::new(&r.lib_dir)) == target_dir)
                {
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

    /// Without a helper binary the probe compiles `QUERY_C` with a C compiler it found; the
    /// Debian OpenBLAS builds (setup.sh) must come out with their real threading.
    #[test]
    fn compiled_query_program_reads_the_threading() {
        let reg = Registry::builtin();
        let opts = ProbeOptions {
            path: Some("/usr/bin".into()),
            ..ProbeOptions::default()
        };
        let found = crate::discover::discover(&reg, &opts);
        let work = tempfile::tempdir().unwrap();
        let (recs, _, warnings) = detect(&reg, &opts, &found, work.path());
        assert!(warnings.is_empty(), "{warnings:?}");
        for (dir, t) in [
            ("openblas-serial", Threading::Sequential),
            ("openblas-pthread", Threading::Pthread),
            ("openblas-openmp", Threading::Openmp),
        ] {
            let r = recs
                .iter()
                .find(|r| r.provider == "openblas" && r.lib_dir.ends_with(dir))
                .unwrap_or_else(|| panic!("no {dir} in {recs:#?}"));
            assert_eq!(r.threading, t);
        }
    }

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
