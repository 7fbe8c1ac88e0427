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

/// Each rank of an MPI link test writes its lines to `<RANK_FILE>-<rank>.txt` in the scratch
/// directory (the Fortran program to `<RANK_FILE>-f<rank>.txt`).
const RANK_FILE: &str = "cfgmx-rank";

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
    let mpi = t.mpi.is_some();
    match t.language {
        Language::Fortran => ("proof.f90", fortran_program(sym, t.blas_int64, width)),
        Language::C => ("proof.c", c_program(sym, t.blas_int64, width, mpi)),
        Language::Cxx => ("proof.cpp", c_program(sym, t.blas_int64, width, mpi)),
    }
}

/// The `use mpi` program an MPI variant with Fortran must also build and launch: each rank
/// prints its rank, the job's size and its MPI library's first line, tagged with its rank.
pub fn fortran_mpi_program() -> String {
    format!(
        "program cfgmx_mpi_proof\n  use mpi\n  implicit none\n  integer :: ierr, rank, nranks, n, e, u\n  character(len=MPI_MAX_LIBRARY_VERSION_STRING) :: v\n  character(len=64) :: fname\n  call MPI_Init(ierr)\n  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)\n  call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)\n  call MPI_Get_library_version(v, n, ierr)\n  e = index(v(1:n), new_line('a')) - 1\n  if (e < 0) e = n\n  write(fname, '(A,I0,A)') '{RANK_FILE}-f', rank, '.txt'\n  open(newunit=u, file=trim(fname), action='write', status='replace')\n  write(u, '(A,I0,A,I0,A,I0)') '{MARK} r', rank, ' rank ', rank, ' ', nranks\n  write(u, '(A,I0,A,A)') '{MARK} r', rank, ' mpilib ', v(1:e)\n  close(u)\n  call MPI_Finalize(ierr)\nend program cfgmx_mpi_proof\n"
    )
}

/// `N` for the width check: 2 in its low 32 bits, negative as a 64-bit integer. An ILP64
/// `idamax` returns 0 for it (N < 1); an LP64 one reads 2 and returns 2.
const WIDTH_N: i64 = -(1i64 << 32) + 2;

fn c_program(sym: Option<&str>, int64: bool, width: Option<&str>, mpi: bool) -> String {
    let int = if int64 { "long long" } else { "int" };
    let mut s = String::from(
        "#include <stdio.h>\n#include <string.h>\n#ifdef _OPENMP\n#include <omp.h>\n#endif\n",
    );
    if mpi {
        s.push_str("#include <mpi.h>\n");
    }
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
    if mpi {
        // Every line of every rank carries the rank (`CFGMX-PROOF r1 ...`) and goes to the
        // rank's own file: a launcher forwards the ranks' output in pieces of any size,
        // interleaved (Open MPI splits lines), so stdout cannot carry whole lines.
        s.push_str(&format!("int main(int argc, char **argv) {{\n  MPI_Init(&argc, &argv);\n  int rank = 0, nranks = 0, vlen = 0;\n  MPI_Comm_rank(MPI_COMM_WORLD, &rank);\n  MPI_Comm_size(MPI_COMM_WORLD, &nranks);\n  char version[MPI_MAX_LIBRARY_VERSION_STRING];\n  MPI_Get_library_version(version, &vlen);\n  version[strcspn(version, \"\\n\")] = 0;\n  char tag[64];\n  snprintf(tag, sizeof tag, \"{MARK} r%d\", rank);\n  char out[64];\n  snprintf(out, sizeof out, \"{RANK_FILE}-%d.txt\", rank);\n  if (!freopen(out, \"w\", stdout)) return 1;\n  printf(\"%s rank %d %d\\n\", tag, rank, nranks);\n  printf(\"%s mpilib %s\\n\", tag, version);\n"));
    } else {
        s.push_str(&format!(
            "int main(void) {{\n  const char *tag = \"{MARK}\";\n"
        ));
    }
    if let Some(w) = width {
        s.push_str(&format!(
            "  {{\n    double x[2] = {{1, 5}};\n    long long n = {WIDTH_N}LL, inc = 1;\n    long long r = {w}(&n, x, &inc);\n    if (r != 0) {{ printf(\"%s blas wrong integer width: {w} read N as 32-bit (returned %lld)\\n\", tag, r); return 1; }}\n  }}\n"
        ));
    }
    if let Some(sym) = sym {
        s.push_str(&format!(
            "  double a[4] = {{1, 2, 3, 4}}, b[4] = {{1, 0, 0, 1}}, c[4] = {{0, 0, 0, 0}}, one = 1, zero = 0;\n  {int} n = 2;\n  {sym}(\"N\", \"N\", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n, 1, 1);\n  if (c[0] != 1 || c[1] != 2 || c[2] != 3 || c[3] != 4) {{ printf(\"%s blas wrong %g %g %g %g\\n\", tag, c[0], c[1], c[2], c[3]); return 1; }}\n  printf(\"%s blas ok\\n\", tag);\n"
        ));
    }
    s.push_str(
        "#ifdef _OPENMP\n  int t = 0;\n#pragma omp parallel\n  {\n#pragma omp atomic\n    t++;\n  }\n  printf(\"%s threads %d\\n\", tag, t);\n#endif\n  FILE *f = fopen(\"/proc/self/maps\", \"r\");\n  char line[4096];\n  while (f && fgets(line, sizeof line, f)) {\n    char *p = strchr(line, '/');\n    if (p && strstr(p, \".so\")) printf(\"%s map %s\", tag, p);\n  }\n",
    );
    if mpi {
        s.push_str("  MPI_Finalize();\n");
    }
    s.push_str("  return 0;\n}\n");
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
    let o = build(t, file, &exe, dir, timeout);
    if !o.success() {
        return fail(format!("compile/link: {}", key_line(&o)));
    }
    let launch = |exe: &Path| launcher(t, exe, dir, timeout);
    let o = launch(&exe).output();
    let out = match &t.mpi {
        Some(_) => rank_files(dir, ""),
        None => o.stdout.clone(),
    };
    let tagged = tagged_lines(&out);
    let lines: Vec<&str> = tagged.iter().map(|(_, l)| *l).collect();
    if !o.success() {
        return fail(run_failure(t, &o, &lines));
    }
    if t.blas_symbol.is_some() && !lines.contains(&"blas ok") {
        return fail("run: the BLAS call did not report".into());
    }
    // Each rank's count; a rank that saw fewer threads is the one that counts.
    let threads = lines
        .iter()
        .filter_map(|l| l.strip_prefix("threads "))
        .filter_map(|n| n.trim().parse::<u32>().ok())
        .min();
    let maps: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("map "))
        .map(str::trim)
        .collect();
    let mut mpi = None;
    if let Some(m) = &t.mpi {
        match cfgmx_model::proof::judge_mpi(m, "C program", &rank_reports(&tagged)) {
            Ok(s) => mpi = Some(s),
            Err(e) => return fail(e),
        }
        if let Some((wrapper, flags)) = &m.fortran {
            if let Err(e) = fortran_mpi(t, m, wrapper, flags, dir, timeout, &launch) {
                return fail(e);
            }
        }
    }
    Proof {
        ok: true,
        reason: None,
        threads,
        runtimes_loaded: loaded_runtimes(&maps, &t.runtimes),
        other_blas: t
            .blas_path
            .as_deref()
            .and_then(|want| other_blas(&maps, Path::new(want))),
        mpi,
    }
}

/// Compiles and links the test's program `file` into `exe`, with exactly the variant's
/// command line.
fn build(
    t: &LinkTest,
    file: &str,
    exe: &Path,
    dir: &Path,
    timeout: std::time::Duration,
) -> Outcome {
    // the defaults' spelling unless the test says the family's own (`LinkTest::output`)
    let exe_s = exe.display().to_string();
    let output = if t.output.is_empty() {
        cfgmx_model::toolchain::default_driver().output(&exe_s)
    } else {
        t.output.iter().map(|w| w.replace("{}", &exe_s)).collect()
    };
    // An MPI variant's program is compiled by its wrapper, with the variant's environment
    // (the override variable that points the wrapper at the variant's compiler); a variant
    // behind modules compiles under what they set (Cray's `cc` knows its compiler only so).
    let mut cc = Cmd::new(t.mpi.as_ref().map_or(&t.compiler, |m| &m.wrapper));
    for (k, v) in &t.module_env {
        cc = cc.env(k, v);
    }
    if t.mpi.is_some() {
        for (k, v) in &t.env {
            cc = cc.env(k, v);
        }
    }
    cc.args(&t.flags)
        .arg(file)
        .args(output)
        .args(&t.link)
        .cwd(dir)
        // the compiler's temporary files stay in the scratch directory (removed on Ctrl-C)
        .env("TMPDIR", dir)
        .timeout(timeout)
        .output()
}

/// How the test runs `exe`: on its own, or under the MPI launcher on the test's ranks, with
/// the variant's environment.
fn launcher(t: &LinkTest, exe: &Path, dir: &Path, timeout: std::time::Duration) -> Cmd {
    let mut run = match &t.mpi {
        Some(m) => Cmd::new(&m.launcher)
            .arg(&m.flag)
            .arg(m.ranks.to_string())
            .arg(exe),
        None => Cmd::new(exe),
    };
    run = run.cwd(dir).timeout(timeout);
    for (k, v) in t.module_env.iter().chain(&t.env) {
        run = run.env(k, v);
    }
    if let Some(m) = &t.mpi {
        for (k, v) in &m.user_env {
            run = match v {
                Some(v) => run.env(k, v),
                None => run.env_remove(k),
            };
        }
    }
    run
}

/// Why a run that failed did: the program's own words about the BLAS, else the launcher's,
/// else the key line of its output.
fn run_failure(t: &LinkTest, o: &Outcome, lines: &[&str]) -> String {
    let said = lines.iter().find(|l| l.starts_with("blas wrong"));
    match (said, &t.mpi) {
        (Some(l), _) => format!("run: {l}"),
        // The launcher's own words (Open MPI as root: "mpirun has detected an attempt to run
        // as root."), not a line of its banner.
        (None, Some(m)) => format!(
            "launch ({} {} {}): {}",
            m.launcher,
            m.flag,
            m.ranks,
            launcher_says(o)
        ),
        (None, None) => format!("run: {}", key_line(o)),
    }
}

/// The program's own lines, without the mark: `(rank, text)`, the rank `None` outside MPI.
fn tagged_lines(stdout: &str) -> Vec<(Option<u32>, &str)> {
    stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(MARK))
        .map(str::trim)
        .map(|l| {
            let rank = l
                .strip_prefix('r')
                .and_then(|r| r.split_once(' '))
                .and_then(|(n, rest)| n.parse::<u32>().ok().map(|n| (n, rest)));
            match rank {
                Some((n, rest)) => (Some(n), rest.trim()),
                None => (None, l),
            }
        })
        .collect()
}

/// The lines the ranks wrote to their files (`<RANK_FILE>-<kind><rank>.txt`), rank by rank.
fn rank_files(dir: &Path, kind: &str) -> String {
    let mut out = String::new();
    for rank in 0.. {
        let path = dir.join(format!("{RANK_FILE}-{kind}{rank}.txt"));
        match cfgmx_fs::read_to_string(&path, cfgmx_fs::MAX_OWN_BYTES) {
            Ok(text) => out.push_str(&text),
            Err(_) => break,
        }
    }
    out
}

/// What each rank reported, from its tagged lines.
fn rank_reports(lines: &[(Option<u32>, &str)]) -> Vec<cfgmx_model::proof::RankReport> {
    let mut out: Vec<cfgmx_model::proof::RankReport> = Vec::new();
    for (rank, l) in lines {
        let Some(rank) = *rank else { continue };
        let i = match out.iter().position(|r| r.rank == rank) {
            Some(i) => i,
            None => {
                out.push(cfgmx_model::proof::RankReport {
                    rank,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let r = &mut out[i];
        if let Some(x) = l.strip_prefix("rank ") {
            r.size = x
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(x) = l.strip_prefix("mpilib ") {
            r.library = x.trim().to_string();
        } else if let Some(x) = l.strip_prefix("map ") {
            r.loaded.push(x.trim().to_string());
        }
    }
    out
}

/// The line a launcher that refused to start says why in: the first that is not blank or a
/// rule of dashes (Open MPI frames its messages in them).
fn launcher_says(o: &Outcome) -> String {
    if o.timed_out || o.signal.is_some() || o.spawn_error.is_some() {
        return o.to_string();
    }
    let text = o.combined();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.chars().all(|c| c == '-' || c == '='))
        .unwrap_or("");
    line.chars().take(300).collect()
}

/// The `use mpi` program, compiled by the variant's Fortran wrapper and launched like the C
/// one: only the Fortran compiler the MPI's module files were made by reads them.
fn fortran_mpi(
    t: &LinkTest,
    m: &cfgmx_model::proof::MpiLaunchTest,
    wrapper: &str,
    flags: &[String],
    dir: &Path,
    timeout: std::time::Duration,
    launch: &dyn Fn(&Path) -> Cmd,
) -> Result<(), String> {
    std::fs::write(dir.join("mpiproof.f90"), fortran_mpi_program())
        .map_err(|e| format!("scratch file: {e}"))?;
    let exe = dir.join("mpiproof");
    // The wrapper takes its compiler's spelling: the test's own, else the defaults'.
    let exe_s = exe.display().to_string();
    let output = if t.output.is_empty() {
        cfgmx_model::toolchain::default_driver().output(&exe_s)
    } else {
        t.output.iter().map(|w| w.replace("{}", &exe_s)).collect()
    };
    let mut cc = Cmd::new(wrapper)
        .args(flags)
        .arg("mpiproof.f90")
        .args(output)
        .cwd(dir)
        .env("TMPDIR", dir)
        .timeout(timeout);
    for (k, v) in &t.env {
        cc = cc.env(k, v);
    }
    let o = cc.output();
    if !o.success() {
        return Err(format!(
            "Fortran `use mpi` program: compile/link: {}",
            key_line(&o)
        ));
    }
    let o = launch(&exe).output();
    if !o.success() {
        return Err(format!(
            "Fortran `use mpi` program: launch ({} {} {}): {}",
            m.launcher,
            m.flag,
            m.ranks,
            launcher_says(&o)
        ));
    }
    let out = rank_files(dir, "f");
    let tagged = tagged_lines(&out);
    cfgmx_model::proof::judge_mpi(m, "Fortran `use mpi` program", &rank_reports(&tagged))
        .map(|_| ())
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
    cfgmx_fs::write_atomic(&dir.join(PROOF_FILE), &text)
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
                    module_env: IndexMap::new(),
                    mpi: None,
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
            module_env: IndexMap::new(),
            mpi: None,
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

    /// An MPI link test as the model writes it for Debian's MPICH or Open MPI.
    fn mpi_test(imp: &str, wrapper: &str, launcher: &str, root_ok: bool) -> LinkTest {
        let reg = cfgmx_model::Registry::builtin();
        let data = &reg.mpi[imp];
        let lib = data.library.as_ref().unwrap();
        let mut env: IndexMap<String, String> = data.launch.env.clone();
        env.insert(cfgmx_model::OMP_NUM_THREADS.into(), "2".into());
        LinkTest {
            language: Language::C,
            compiler: "gcc".into(),
            flags: vec!["-fopenmp".into()],
            link: vec!["-fopenmp".into()],
            output: vec![],
            env,
            blas_symbol: None,
            blas_int64: false,
            blas_width_symbol: None,
            blas_path: None,
            threads: Some(2),
            runtimes: vec!["gomp".into()],
            module_env: IndexMap::new(),
            mpi: Some(cfgmx_model::proof::MpiLaunchTest {
                implementation: imp.into(),
                wrapper: wrapper.into(),
                fortran: None,
                launcher: launcher.into(),
                flag: "-n".into(),
                ranks: 2,
                library_names: lib.names.clone(),
                other_library_names: if imp == "mpich" {
                    vec!["mpi".into()]
                } else {
                    vec!["mpich".into()]
                },
                library_match: Some(lib.version.pattern.clone()),
                user_env: ["OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"]
                    .iter()
                    .map(|n| (n.to_string(), root_ok.then(|| "1".to_string())))
                    .collect(),
            }),
        }
    }

    fn root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }

    /// Real launches on 2 ranks: each implementation's program passes with its own launcher
    /// (every rank on its library, with its OpenMP threads); a program of one MPI started by
    /// the other's launcher is refused (ranks that never see each other); Open MPI as root
    /// without its variables is unproven with Open MPI's own words; a clang Fortran compiler
    /// behind Open MPI's gfortran-built `use mpi` module does not compile.
    #[test]
    fn mpi_link_tests_launch_two_ranks_on_the_right_library() {
        let dir = tempfile::tempdir().unwrap();
        let t60 = std::time::Duration::from_secs(60);
        let run = |t: &LinkTest, sub: &str| run_one(t, t60, &dir.path().join(sub));
        let p = run(
            &mpi_test("mpich", "mpicc.mpich", "mpiexec.mpich", true),
            "a",
        );
        assert!(p.ok, "{p:?}");
        assert!(
            p.mpi.as_deref().unwrap().starts_with("2 ranks on mpich 4"),
            "{p:?}"
        );
        assert!(p.mpi.as_deref().unwrap().contains("libmpich.so"), "{p:?}");
        assert_eq!(p.threads, Some(2));
        let p = run(
            &mpi_test("openmpi", "mpicc.openmpi", "mpirun.openmpi", true),
            "b",
        );
        assert!(p.ok, "{p:?}");
        assert!(p.mpi.as_deref().unwrap().contains("libmpi.so.40"), "{p:?}");
        // MPICH's program under Open MPI's launcher: two singleton jobs
        let mut t = mpi_test("mpich", "mpicc.mpich", "mpirun.openmpi", true);
        t.mpi.as_mut().unwrap().launcher = "mpirun.openmpi".into();
        let p = run(&t, "c");
        assert!(!p.ok);
        assert!(
            p.reason
                .as_deref()
                .unwrap()
                .contains("saw a job of 1 rank(s), not 2"),
            "{p:?}"
        );
        // Open MPI's program judged as MPICH's: its library says it is Open MPI
        let mut t = mpi_test("openmpi", "mpicc.openmpi", "mpirun.openmpi", true);
        let m = t.mpi.as_mut().unwrap();
        m.implementation = "mpich".into();
        m.library_match = Some(
            mpi_test("mpich", "", "", true)
                .mpi
                .unwrap()
                .library_match
                .unwrap(),
        );
        let p = run(&t, "d");
        assert!(
            p.reason
                .as_deref()
                .unwrap()
                .contains("loaded another MPI library than mpich: it says \"Open MPI v4"),
            "{p:?}"
        );
        if root() {
            let p = run(
                &mpi_test("openmpi", "mpicc.openmpi", "mpirun.openmpi", false),
                "e",
            );
            assert!(!p.ok);
            assert!(
                p.reason
                    .as_deref()
                    .unwrap()
                    .contains("has detected an attempt to run as root"),
                "{p:?}"
            );
        }
        let mut t = mpi_test("openmpi", "mpicc.openmpi", "mpirun.openmpi", true);
        t.mpi.as_mut().unwrap().fortran = Some(("mpifort.openmpi".into(), vec![]));
        t.env.insert("OMPI_FC".into(), "flang-new-19".into());
        let p = run(&t, "f");
        assert!(!p.ok);
        assert!(
            p.reason
                .as_deref()
                .unwrap()
                .starts_with("Fortran `use mpi` program: compile/link:"),
            "{p:?}"
        );
        t.env.shift_remove("OMPI_FC");
        let p = run(&t, "g");
        assert!(p.ok, "{p:?}");
    }
}
