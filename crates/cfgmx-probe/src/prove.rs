//! Link tests: each concrete variant's exact toolchain builds and runs one program that calls
//! its BLAS (and, threaded, runs an OpenMP region with two threads), and the program reports
//! which libraries it really loaded. Results are cached beside the profile, keyed by the test's
//! content and the profile they were made against, so a warm `expand --probe` runs nothing.

use crate::ProbeOptions;
use cfgmx_exec::{Cmd, Outcome};
use cfgmx_model::{Language, LinkTest, Proof};
use indexmap::IndexMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const PROOF_FILE: &str = "probe-proofs.json";

/// Marks the lines the program prints for the probe (the BLAS or runtime may print too).
const MARK: &str = "CFGMX-PROOF";

#[derive(Default, Serialize, Deserialize)]
struct Entries {
    /// Digest of the profile the proofs were made against: a re-probed machine starts over.
    profile: String,
    proofs: IndexMap<String, Proof>,
}

/// The program text and file name for `t`.
pub fn program(t: &LinkTest) -> (&'static str, String) {
    let sym = t.blas_symbol.as_deref();
    let width = t.blas_width_symbol.as_deref();
    match t.language {
        Language::Fortran => ("proof.f90", fortran_program(sym, t.blas_int64, width)),
        Language::C => ("proof.c", c_program(sym, t.blas_int64, width)),
        Language::Cxx => ("proof.cpp", c_program(sym, t.blas_int64, width)),
    }
}

/// `N` for the width check: 2 in its low 32 bits, negative as a 64-bit integer. An ILP64
/// `idamax` returns 0 for it (N < 1); an LP64 one reads 2 and returns 2.
const WIDTH_N: i64 = -(1i64 << 32) + 2;

fn c_program(sym: Option<&str>, int64: bool, width: Option<&str>) -> String {
    let int = if int64 { "long long" } else { "int" };
    let mut s = String::from(
        "#include <stdio.h>\n#include <string.h>\n#ifdef _OPENMP\n#include <omp.h>\n#endif\n",
    );
    if let Some(sym) = sym {
        // Fortran calling convention: everything by reference, the two character lengths as
        // trailing hidden arguments (gfortran-built libraries read them; others ignore them).
        s.push_str(&format!(
            "#ifdef __cplusplus\nextern \"C\"\n#endif\nvoid {sym}(const char *, const char *, const {int} *, const {int} *, const {int} *, const double *, const double *, const {int} *, const double *, const {int} *, const double *, double *, const {int} *, size_t, size_t);\n"
        ));
    }
    if let Some(w) = width {
        s.push_str(&format!(
            "#ifdef __cplusplus\nextern \"C\"\n#endif\nlong long {w}(const long long *, const double *, const long long *);\n"
        ));
    }
    s.push_str("int main(void) {\n");
    if let Some(w) = width {
        s.push_str(&format!(
            "  {{\n    double x[2] = {{1, 5}};\n    long long n = {WIDTH_N}LL, inc = 1;\n    long long r = {w}(&n, x, &inc);\n    if (r != 0) {{ printf(\"{MARK} blas wrong integer width: {w} read N as 32-bit (returned %lld)\\n\", r); return 1; }}\n  }}\n"
        ));
    }
    if let Some(sym) = sym {
        s.push_str(&format!(
            "  double a[4] = {{1, 2, 3, 4}}, b[4] = {{1, 0, 0, 1}}, c[4] = {{0, 0, 0, 0}}, one = 1, zero = 0;\n  {int} n = 2;\n  {sym}(\"N\", \"N\", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n, 1, 1);\n  if (c[0] != 1 || c[1] != 2 || c[2] != 3 || c[3] != 4) {{ printf(\"{MARK} blas wrong %g %g %g %g\\n\", c[0], c[1], c[2], c[3]); return 1; }}\n  printf(\"{MARK} blas ok\\n\");\n"
        ));
    }
    s.push_str(&format!(
        "#ifdef _OPENMP\n  int t = 0;\n#pragma omp parallel\n  {{\n#pragma omp atomic\n    t++;\n  }}\n  printf(\"{MARK} threads %d\\n\", t);\n#endif\n  FILE *f = fopen(\"/proc/self/maps\", \"r\");\n  char line[4096];\n  while (f && fgets(line, sizeof line, f)) {{\n    char *p = strchr(line, '/');\n    if (p && strstr(p, \".so\")) printf(\"{MARK} map %s\", p);\n  }}\n  return 0;\n}}\n"
    ));
    s
}

fn fortran_program(sym: Option<&str>, int64: bool, width: Option<&str>) -> String {
    let kind = if int64 { "c_int64_t" } else { "c_int" };
    let mut s = String::from("program cfgmx_proof\n  use iso_c_binding\n  implicit none\n");
    if let Some(w) = width {
        s.push_str(&format!(
            "  interface\n    function xidamax(n, x, incx) bind(C, name=\"{w}\")\n      import :: c_int64_t, c_double\n      integer(c_int64_t) :: n, incx, xidamax\n      real(c_double) :: x(*)\n    end function\n  end interface\n  real(c_double) :: wx(2) = [1d0, 5d0]\n  integer(c_int64_t) :: wn = {WIDTH_N}_c_int64_t, winc = 1\n"
        ));
    }
    if let Some(sym) = sym {
        // bind(C) names the symbol exactly as the library exports it, decorations included.
        s.push_str(&format!(
            "  interface\n    subroutine xdgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) bind(C, name=\"{sym}\")\n      import :: c_char, {kind}, c_double\n      character(kind=c_char) :: ta, tb\n      integer({kind}) :: m, n, k, lda, ldb, ldc\n      real(c_double) :: alpha, beta, a(*), b(*), c(*)\n    end subroutine\n  end interface\n  real(c_double) :: a(4) = [1d0, 2d0, 3d0, 4d0], b(4) = [1d0, 0d0, 0d0, 1d0], c(4) = 0d0\n  integer({kind}) :: n = 2\n"
        ));
    }
    s.push_str("  character(len=4096) :: line\n  integer :: u, ios, i\n!$ integer :: t\n");
    if let Some(w) = width {
        s.push_str(&format!(
            "  if (xidamax(wn, wx, winc) /= 0) then\n    print '(A)', '{MARK} blas wrong integer width: {w} read N as 32-bit'\n    stop 1\n  end if\n"
        ));
    }
    if sym.is_some() {
        s.push_str(&format!(
            "  call xdgemm('N', 'N', n, n, n, 1d0, a, n, b, n, 0d0, c, n)\n  if (any(c /= [1d0, 2d0, 3d0, 4d0])) then\n    print '(A,4F6.1)', '{MARK} blas wrong ', c\n    stop 1\n  end if\n  print '(A)', '{MARK} blas ok'\n"
        ));
    }
    s.push_str(&format!(
        "!$ t = 0\n!$omp parallel\n!$omp atomic\n!$ t = t + 1\n!$omp end parallel\n!$ print '(A,I0)', '{MARK} threads ', t\n  open(newunit=u, file='/proc/self/maps', action='read', iostat=ios)\n  do while (ios == 0)\n    read(u, '(A)', iostat=ios) line\n    if (ios /= 0) exit\n    i = index(line, '/')\n    if (i > 0 .and. index(line, '.so') > 0) print '(A,A)', '{MARK} map ', trim(line(i:))\n  end do\nend program cfgmx_proof\n"
    ));
    s
}

/// The key line of a failed step's output: the first error, else the first line.
fn key_line(o: &Outcome) -> String {
    if o.timed_out || o.signal.is_some() || o.spawn_error.is_some() {
        return o.to_string();
    }
    let text = o.combined();
    let line = text
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            // cl's linker says `error LNK2019`; GNU ld's words are the defaults' link errors
            l.contains("error")
                || l.contains("cannot")
                || cfgmx_model::toolchain::default_driver().is_link_error(&l)
        })
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim();
    line.chars().take(300).collect()
}

/// Builds and runs one test in `dir`.
pub fn run_one(t: &LinkTest, timeout: std::time::Duration, dir: &Path) -> Proof {
    let fail = |reason: String| Proof {
        ok: false,
        reason: Some(reason),
        ..Default::default()
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(format!("scratch directory: {e}"));
    }
    let (file, text) = program(t);
    if let Err(e) = std::fs::write(dir.join(file), text) {
        return fail(format!("scratch file: {e}"));
    }
    let exe = dir.join("proof");
    // the defaults' spelling unless the test says the family's own (`LinkTest::output`)
    let exe_s = exe.display().to_string();
    let output = if t.output.is_empty() {
        cfgmx_model::toolchain::default_driver().output(&exe_s)
    } else {
        t.output.iter().map(|w| w.replace("{}", &exe_s)).collect()
    };
    let o = Cmd::new(&t.compiler)
        .args(&t.flags)
        .arg(file)
        .args(output)
        .args(&t.link)
        .cwd(dir)
        // the compiler's temporary files stay in the scratch directory (removed on Ctrl-C)
        .env("TMPDIR", dir)
        .timeout(timeout)
        .output();
    if !o.success() {
        return fail(format!("compile/link: {}", key_line(&o)));
    }
    let mut run = Cmd::new(&exe).cwd(dir).timeout(timeout);
    for (k, v) in &t.env {
        run = run.env(k, v);
    }
    let o = run.output();
    let lines: Vec<&str> = o
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix(MARK))
        .map(str::trim)
        .collect();
    if !o.success() {
        let said = lines.iter().find(|l| l.starts_with("blas wrong"));
        return fail(match said {
            Some(l) => format!("run: {l}"),
            None => format!("run: {}", key_line(&o)),
        });
    }
    if t.blas_symbol.is_some() && !lines.contains(&"blas ok") {
        return fail("run: the BLAS call did not report".into());
    }
    let threads = lines
        .iter()
        .find_map(|l| l.strip_prefix("threads "))
        .and_then(|n| n.trim().parse().ok());
    let maps: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("map "))
        .map(str::trim)
        .collect();
    Proof {
        ok: true,
        reason: None,
        threads,
        runtimes_loaded: loaded_runtimes(&maps, &t.runtimes),
        other_blas: t
            .blas_path
            .as_deref()
            .and_then(|want| other_blas(&maps, Path::new(want))),
    }
}

/// The OpenMP runtime libraries among the loaded files: `lib<runtime>.so*` or
/// `lib<runtime>-<version>.so*` (Debian's `libomp-14.so.5`), each file once.
fn loaded_runtimes(maps: &[&str], runtimes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in maps {
        let name = m.rsplit('/').next().unwrap_or(m);
        let Some(stem) = name.strip_prefix("lib") else {
            continue;
        };
        let base = stem.split(['.', '-']).next().unwrap_or("");
        if runtimes.iter().any(|r| r == base) && !out.iter().any(|o| o == m) {
            out.push(m.to_string());
        }
    }
    out
}

/// The loaded file standing in for `want` when `want` itself was not loaded: a file of the
/// same name from another directory (another build of the same library).
fn other_blas(maps: &[&str], want: &Path) -> Option<String> {
    let real = std::fs::canonicalize(want).unwrap_or_else(|_| want.to_path_buf());
    if maps
        .iter()
        .any(|m| Path::new(m) == real || Path::new(m) == want)
    {
        return None;
    }
    let name = real.file_name()?.to_str()?;
    let stem = name.split(".so").next().unwrap_or(name);
    maps.iter()
        .find(|m| {
            let n = m.rsplit('/').next().unwrap_or(m);
            n.split(".so").next() == Some(stem)
        })
        .map(|m| m.to_string())
}

fn read(dir: &Path, profile: &str) -> Entries {
    let path = dir.join(PROOF_FILE);
    cfgmx_fs::read(&path, cfgmx_fs::MAX_OWN_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<Entries>(&b).ok())
        .filter(|e| e.profile == profile)
        .unwrap_or_else(|| Entries {
            profile: profile.to_string(),
            proofs: IndexMap::new(),
        })
}

fn store(dir: &Path, e: &Entries) -> std::io::Result<()> {
    if cfgmx_exec::closing() {
        // Interrupted: a killed link test is no proof either way.
        return Err(std::io::Error::other("interrupted"));
    }
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_vec(e).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{PROOF_FILE}.{}.tmp", std::process::id()));
    let res = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, dir.join(PROOF_FILE)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Runs every test not cached for `profile` (a digest of the profile the tests were made
/// from), in parallel within the probe's job limit, and returns one proof per test in order.
/// A cache that cannot be written only costs time: the error is returned beside the proofs.
pub fn prove(
    tests: &[LinkTest],
    opts: &ProbeOptions,
    profile: &str,
) -> (Vec<Proof>, Option<String>) {
    let mut cached = read(&opts.cache_dir, profile);
    let keys: Vec<String> = tests.iter().map(LinkTest::key).collect();
    let mut todo: Vec<(&String, &LinkTest)> = Vec::new();
    for (k, t) in keys.iter().zip(tests) {
        if !cached.proofs.contains_key(k) && !todo.iter().any(|(x, _)| *x == k) {
            todo.push((k, t));
        }
    }
    let mut warning = None;
    if !todo.is_empty() {
        match tempfile::Builder::new()
            .prefix(&format!("cfgmx-proof-{}-", std::process::id()))
            .tempdir()
        {
            Ok(work) => {
                let run = || -> Vec<(String, Proof)> {
                    todo.par_iter()
                        .enumerate()
                        .map(|(i, (k, t))| {
                            let dir = work.path().join(i.to_string());
                            ((*k).clone(), run_one(t, opts.timeout, &dir))
                        })
                        .collect()
                };
                let done = match rayon::ThreadPoolBuilder::new()
                    .num_threads(opts.jobs.max(1))
                    .build()
                {
                    Ok(p) => p.install(run),
                    Err(_) => run(),
                };
                cached.proofs.extend(done);
                if let Err(e) = store(&opts.cache_dir, &cached) {
                    warning = Some(format!(
                        "cannot write the link-test cache in {}: {e}",
                        opts.cache_dir.display()
                    ));
                }
            }
            Err(e) => {
                let p = Proof {
                    ok: false,
                    reason: Some(format!("cannot create a scratch directory: {e}")),
                    ..Default::default()
                };
                return (vec![p; tests.len()], None);
            }
        }
    }
    let proofs = keys
        .iter()
        .map(|k| cached.proofs.get(k).cloned().unwrap_or_default())
        .collect();
    (proofs, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_told_from_their_file_names() {
        let rts = vec!["gomp".to_string(), "omp".to_string(), "iomp5".to_string()];
        let maps = [
            "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
            "/usr/lib/llvm-14/lib/libomp-14.so.5",
            "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
            "/usr/lib/x86_64-linux-gnu/libompitrace.so",
        ];
        assert_eq!(
            loaded_runtimes(&maps, &rts),
            vec![
                "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
                "/usr/lib/llvm-14/lib/libomp-14.so.5"
            ]
        );
    }

    #[test]
    fn another_build_of_the_blas_is_named() {
        let maps = ["/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"];
        let want = Path::new("/nonexistent/openblas-serial/libopenblasp-r0.3.21.so");
        assert_eq!(other_blas(&maps, want).as_deref(), Some(maps[0]));
        assert_eq!(other_blas(&maps, Path::new(maps[0])), None);
    }

    /// The ILP64 link test, built for real with gcc and gfortran: Debian's ILP64 OpenBLAS
    /// passes it, the LP64 build (whose dgemm computes the same 2x2 product from the low 32
    /// bits of N) fails on the width check.
    #[test]
    fn the_ilp64_link_test_fails_on_an_lp64_library() {
        let multi = "/usr/lib/x86_64-linux-gnu";
        for (language, compiler) in [(Language::C, "gcc"), (Language::Fortran, "gfortran")] {
            for (dir, lib, ok) in [
                ("openblas64-serial", "-lopenblas64", true),
                ("openblas-serial", "-lopenblas", false),
            ] {
                let t = LinkTest {
                    output: vec![],
                    language,
                    compiler: compiler.into(),
                    flags: vec![],
                    link: vec![
                        format!("-L{multi}/{dir}"),
                        format!("-Wl,-rpath,{multi}/{dir}"),
                        lib.into(),
                    ],
                    env: IndexMap::new(),
                    blas_symbol: Some("dgemm_".into()),
                    blas_int64: true,
                    blas_width_symbol: Some("idamax_".into()),
                    blas_path: None,
                    threads: None,
                    runtimes: vec![],
                };
                let scratch = tempfile::tempdir().unwrap();
                let p = run_one(&t, std::time::Duration::from_secs(60), scratch.path());
                assert_eq!(p.ok, ok, "{compiler} {dir}: {p:?}");
                if !ok {
                    let why = p.reason.unwrap_or_default();
                    assert!(why.contains("integer width: idamax_"), "{why}");
                }
            }
        }
    }

    #[test]
    fn programs_call_the_decorated_symbol_with_the_integer_width() {
        let mut t = LinkTest {
            output: vec![],
            language: Language::C,
            compiler: "cc".into(),
            flags: vec![],
            link: vec![],
            env: IndexMap::new(),
            blas_symbol: Some("scipy_dgemm_64_".into()),
            blas_int64: true,
            blas_width_symbol: Some("scipy_idamax_64_".into()),
            blas_path: None,
            threads: None,
            runtimes: vec![],
        };
        let (_, c) = program(&t);
        assert!(c.contains("void scipy_dgemm_64_("), "{c}");
        assert!(c.contains("long long n = 2"), "{c}");
        assert!(c.contains("long long scipy_idamax_64_("), "{c}");
        t.language = Language::Fortran;
        let (file, f) = program(&t);
        assert_eq!(file, "proof.f90");
        assert!(f.contains("bind(C, name=\"scipy_dgemm_64_\")"), "{f}");
        assert!(f.contains("integer(c_int64_t) :: n = 2"), "{f}");
        assert!(f.contains("bind(C, name=\"scipy_idamax_64_\")"), "{f}");
    }
}
