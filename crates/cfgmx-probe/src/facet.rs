//! Facet tests: compile, link and run a small program with each candidate flag of a facet, in
//! the descriptor's order; the first that works is recorded, otherwise why none did.
//!
//! The OpenMP program fails to compile unless `_OPENMP` is defined (clang `-fopenmp=libgomp`
//! accepts the flag without enabling OpenMP), and succeeds only when two threads really ran.

use crate::identify::Identified;
use crate::ProbeOptions;
use cfgmx_exec::{Cmd, Outcome};
use cfgmx_model::{Candidate, FacetResult, Language, ProbeStatus, Toolchain, Version};
use indexmap::IndexMap;
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const OPENMP_C: &str = r#"#include <omp.h>
#include <stdio.h>
#ifndef _OPENMP
#error "_OPENMP is not defined: the flag did not enable OpenMP"
#endif
int main(void) {
  int n = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp atomic
    n++;
  }
  printf("OPENMP %ld THREADS %d\n", (long)_OPENMP, n);
  return omp_get_max_threads() < 1;
}
"#;

// `!$` lines are compiled only when OpenMP is on; some compilers (PGI) accept OpenMP flags
// without enabling it, which leaves the version at 0.
const OPENMP_F: &str = "program cfgmx_probe
!$ use omp_lib
implicit none
integer :: n, v
n = 0
v = 0
!$ v = openmp_version
!$omp parallel num_threads(2)
!$omp atomic
n = n + 1
!$omp end parallel
print '(A,I0,A,I0)', 'OPENMP ', v, ' THREADS ', n
end program cfgmx_probe
";

const PLAIN_C: &str = "int main(void) { return 0; }\n";
const PLAIN_F: &str = "program cfgmx_probe\nend program cfgmx_probe\n";

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// What to say when a runtime library or its header is missing.
pub fn runtime_hint(runtime: &str) -> String {
    match runtime {
        "omp" => "libomp not found: install libomp-dev (Debian) or the LLVM OpenMP runtime".into(),
        "gomp" => "libgomp not found: install the GCC OpenMP runtime (libgomp, with gcc)".into(),
        "iomp5" => "libiomp5 not found: install the Intel OpenMP runtime (intel-openmp)".into(),
        other => format!("lib{other} not found: install the compiler's OpenMP runtime"),
    }
}

/// Why one candidate failed, from the compiler's or the program's messages.
fn explain(stage: &str, o: &Outcome, cand: &Candidate) -> String {
    let text = o.combined();
    let rt = cand.runtime.as_deref();
    let missing_header =
        text.contains("omp.h") && (text.contains("not found") || text.contains("No such file"));
    let missing_lib = |lib: &str| {
        text.contains(&format!("cannot find -l{lib}"))
            || text.contains(&format!("unable to find library -l{lib}"))
            || text.contains(&format!("lib{lib}.so")) && text.contains("cannot open shared object")
    };
    if let Some(rt) = rt {
        if missing_header || missing_lib(rt) {
            let first = text
                .lines()
                .find(|l| {
                    l.contains("omp")
                        && (l.contains("not found")
                            || l.contains("cannot")
                            || l.contains("No such"))
                })
                .unwrap_or("")
                .trim();
            return format!("{} ({stage}: {first})", runtime_hint(rt));
        }
    }
    if let Some(lib) = cand.libs.iter().find(|l| missing_lib(l)) {
        return format!("lib{lib} not found ({stage})");
    }
    if text.contains("_OPENMP is not defined") {
        return "flag accepted but OpenMP not enabled (_OPENMP undefined)".into();
    }
    if o.spawn_error.is_some() || o.timed_out || o.signal.is_some() {
        return format!("{stage}: {o}");
    }
    let line = text
        .lines()
        .find(|l| l.contains("error") || l.contains("unrecognized") || l.contains("unknown"))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim();
    let line: String = line.chars().take(200).collect();
    format!("{stage} failed: {line}")
}

fn try_candidate(
    exe: &Path,
    lang: Language,
    facet: &str,
    cand: &Candidate,
    timeout: Duration,
    work: &Path,
) -> Result<Option<String>, String> {
    let dir = work.join(format!("t{}", SCRATCH.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("scratch directory: {e}"))?;
    let omp = facet == "openmp";
    let (file, text) = match (lang, omp) {
        (Language::C, true) => ("probe.c", OPENMP_C),
        (Language::Cxx, true) => ("probe.cpp", OPENMP_C),
        (Language::Fortran, true) => ("probe.f90", OPENMP_F),
        (Language::C, false) => ("probe.c", PLAIN_C),
        (Language::Cxx, false) => ("probe.cpp", PLAIN_C),
        (Language::Fortran, false) => ("probe.f90", PLAIN_F),
    };
    std::fs::write(dir.join(file), text).map_err(|e| format!("scratch file: {e}"))?;
    let prog = dir.join("probe");
    let o = Cmd::new(exe)
        .args(&cand.flags)
        .arg(file)
        .arg("-o")
        .arg(&prog)
        .args(&cand.link)
        .args(cand.libs.iter().map(|l| format!("-l{l}")))
        .cwd(&dir)
        .timeout(timeout)
        .output();
    if !o.success() {
        return Err(explain("compile/link", &o, cand));
    }
    let run = Cmd::new(&prog)
        .cwd(&dir)
        .env("OMP_DYNAMIC", "false")
        .env_remove("OMP_NUM_THREADS")
        .env_remove("OMP_THREAD_LIMIT")
        .timeout(timeout)
        .output();
    if !run.success() {
        return Err(explain("run", &run, cand));
    }
    if !omp {
        return Ok(None);
    }
    let mut words = run.stdout.split_whitespace();
    let mut version = None;
    let mut threads = 0;
    while let Some(w) = words.next() {
        match w {
            "OPENMP" => version = words.next().and_then(|v| v.parse::<u64>().ok()),
            "THREADS" => threads = words.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    match version {
        None | Some(0) => Err("flag accepted but OpenMP not enabled (no OpenMP version)".into()),
        Some(_) if threads < 2 => Err(format!("OpenMP compiled but only {threads} thread ran")),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// Tries `facet`'s candidates for one compiler.
pub fn test_facet(
    t: &Toolchain,
    exe: &Path,
    lang: Language,
    version: &str,
    facet: &str,
    timeout: Duration,
    work: &Path,
) -> FacetResult {
    let v = Version::parse(version);
    let cands: Vec<&Candidate> = t
        .facet(facet)
        .iter()
        .filter(|c| c.applies_to(lang) && c.fits(v.as_ref()))
        .collect();
    if cands.is_empty() {
        return FacetResult {
            flag: None,
            works: false,
            reason: Some(format!(
                "{} has no `{facet}` flag for {} {version}",
                t.name,
                lang.as_str()
            )),
            flags: vec![],
            link: vec![],
            libs: vec![],
            detail: None,
        };
    }
    let mut why = Vec::new();
    for c in &cands {
        let flag = c.flags.join(" ");
        match try_candidate(exe, lang, facet, c, timeout, work) {
            Ok(detail) => {
                return FacetResult {
                    flag: Some(flag),
                    works: true,
                    reason: None,
                    flags: c.flags.clone(),
                    link: c.link.clone(),
                    libs: c.libs.clone(),
                    detail,
                }
            }
            Err(e) => why.push(format!("`{flag}`: {e}")),
        }
    }
    FacetResult {
        flag: cands.last().map(|c| c.flags.join(" ")),
        works: false,
        reason: Some(why.join("; ")),
        flags: vec![],
        link: vec![],
        libs: vec![],
        detail: None,
    }
}

/// Tests every facet of `opts` for one identified compiler (nothing for an unusable one).
pub fn test_record(opts: &ProbeOptions, id: &mut Identified, work: &Path) {
    let Some(t) = id.toolchain.clone() else {
        return;
    };
    if id.record.status != ProbeStatus::Ok {
        return;
    }
    for f in &opts.facets {
        let r = test_facet(
            &t,
            &id.exe.path,
            id.exe.lang,
            &id.record.version,
            f,
            opts.timeout,
            work,
        );
        id.record.facets.insert(f.clone(), r);
    }
}

/// MPI wrappers pass compile flags through to their compiler, so a wrapper whose compiler was
/// itself probed shares that compiler's facet results; the others are tested through the
/// wrapper.
pub fn test_wrappers(opts: &ProbeOptions, ids: &mut [Identified], work: &Path) {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let shared: Vec<Option<IndexMap<String, FacetResult>>> = ids
        .iter()
        .map(|w| {
            let under = w
                .mpi
                .as_ref()?
                .compiler
                .as_deref()
                .map(|c| real(Path::new(c)))?;
            ids.iter()
                .find(|c| {
                    c.mpi.is_none()
                        && c.exe.lang == w.exe.lang
                        && c.record.family == w.record.family
                        && c.record.status == ProbeStatus::Ok
                        && real(&c.exe.path) == under
                })
                .map(|c| c.record.facets.clone())
        })
        .collect();
    ids.par_iter_mut().zip(shared).for_each(|(w, s)| {
        if w.mpi.is_none() {
            return;
        }
        match s {
            Some(f) => w.record.facets = f,
            None => test_record(opts, w, work),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stderr: &str) -> Outcome {
        Outcome {
            command: "cc".into(),
            code: Some(1),
            signal: None,
            timed_out: false,
            spawn_error: None,
            stdout: String::new(),
            stderr: stderr.into(),
            duration: Duration::ZERO,
        }
    }

    fn cand(rt: &str) -> Candidate {
        Candidate {
            flags: vec!["-fopenmp".into()],
            link: vec!["-fopenmp".into()],
            libs: vec![],
            languages: vec![],
            versions: None,
            runtime: Some(rt.into()),
            note: None,
        }
    }

    #[test]
    fn failures_are_explained() {
        let c = cand("omp");
        for (stderr, want) in [
            (
                "t.c:1:10: fatal error: 'omp.h' file not found",
                "libomp not found: install libomp-dev",
            ),
            (
                "/usr/bin/ld: cannot find -lomp: No such file or directory",
                "libomp not found",
            ),
            (
                "t.c:4:2: error: \"_OPENMP is not defined: the flag did not enable OpenMP\"",
                "OpenMP not enabled",
            ),
            (
                "clang: error: unknown argument: '-qopenmp'",
                "unknown argument: '-qopenmp'",
            ),
        ] {
            let got = explain("compile/link", &outcome(stderr), &c);
            assert!(got.contains(want), "{stderr:?} -> {got:?}");
        }
    }
}
