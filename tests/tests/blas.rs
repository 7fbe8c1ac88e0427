//! BLAS libraries told apart by asking them: `cfgmx probe --json` against ground truth this
//! test establishes itself (`tests/blas-truth.py` asks each library through ctypes: OpenBLAS's
//! own `openblas_get_parallel`/`openblas_get_config`, BLIS's `bli_info_*`, ATLAS's
//! `ATL_buildinfo`, MKL's thread count, loaded runtime and layers), every record's link line
//! compiled, linked and run, and a library that crashes or hangs when asked.
//!
//! Needs what `scripts/setup.sh` installs: Debian's three OpenBLAS builds, BLIS (OpenMP),
//! ATLAS, reference BLAS, and the PyPI venv in `target/test-venv` with mkl, mkl-devel,
//! intel-openmp and scipy-openblas64. A missing part fails the test.

use cfgmx_tests::{repo, run_env, tempdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TRUTH: &str = include_str!("../blas-truth.py");
const MULTIARCH: &str = "/usr/lib/x86_64-linux-gnu";

fn venv_lib() -> PathBuf {
    let lib = repo().join("target/test-venv/lib");
    assert!(
        has_versioned(&lib, "mkl_core"),
        "no MKL in {} (scripts/setup.sh installs it)",
        lib.display()
    );
    lib
}

fn has_versioned(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("lib{name}.so."))
        })
}

/// scipy-openblas64's library directory inside the venv (its Python version varies).
fn scipy_lib() -> PathBuf {
    let lib = repo().join("target/test-venv/lib");
    std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages/scipy_openblas64/lib"))
        .find(|p| p.join("libscipy_openblas64_.so").exists())
        .unwrap_or_else(|| {
            panic!(
                "no scipy_openblas64 in {} (scripts/setup.sh)",
                lib.display()
            )
        })
}

/// A fresh probe that also searches the venv's MKL and scipy-openblas64 directories.
fn probe(cache: &Path, extra: &[&str]) -> Value {
    let (v, s) = (venv_lib(), scipy_lib());
    let mut args = vec![
        "probe",
        "--json",
        "--fresh",
        "--search",
        v.to_str().unwrap(),
        "--search",
        s.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = run_env(cache, &args, &[]);
    r.expect_code(0);
    r.json()
}

/// What the library says about itself, through `tests/blas-truth.py`.
fn truth(kind: &str, path: &str, extra: &[&str]) -> Value {
    let dir = tempdir();
    let script = dir.path().join("truth.py");
    std::fs::write(&script, TRUTH).unwrap();
    let o = Command::new("python3")
        .arg(&script)
        .arg(kind)
        .arg(path)
        .args(extra)
        .env("OMP_NUM_THREADS", "2")
        .env_remove("MKL_NUM_THREADS")
        .env_remove("MKL_THREADING_LAYER")
        .env_remove("OPENBLAS_NUM_THREADS")
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "truth {kind} {path}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn records(p: &Value) -> &Vec<Value> {
    p["blas"].as_array().unwrap()
}

/// The one record of `provider`-`build` whose directory is `dir`.
fn record<'a>(p: &'a Value, provider: &str, build: &str, dir: &Path) -> &'a Value {
    let found: Vec<&Value> = records(p)
        .iter()
        .filter(|r| r["provider"] == provider && r["build"] == build)
        .filter(|r| Path::new(r["lib_dir"].as_str().unwrap()) == dir)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{provider}-{build} in {}: {found:#?}\nall: {:#}",
        dir.display(),
        p["blas"]
    );
    found[0]
}

#[test]
fn every_blas_answers_like_the_library_itself() {
    let cache = tempdir();
    let p = probe(cache.path(), &[]);
    let multi = Path::new(MULTIARCH);

    // OpenBLAS: Debian's three builds and scipy's ILP64, decorated build.
    let mut ob = vec![
        (multi.join("openblas-serial/libopenblas.so"), vec![]),
        (multi.join("openblas-pthread/libopenblas.so"), vec![]),
        (multi.join("openblas-openmp/libopenblas.so"), vec![]),
    ];
    ob.push((
        scipy_lib().join("libscipy_openblas64_.so"),
        vec!["scipy_", "64_"],
    ));
    for (lib, deco) in &ob {
        let t = truth("openblas", lib.to_str().unwrap(), deco);
        let threading = t["threading"].as_str().unwrap();
        let build = match threading {
            "sequential" => "serial",
            other => other,
        };
        let r = record(&p, "openblas", build, lib.parent().unwrap());
        assert_eq!(r["threading"], threading, "{r:#}");
        assert_eq!(r["int_width"], t["width"], "{r:#}");
        let (pre, suf) = (deco.first().unwrap_or(&""), deco.get(1).unwrap_or(&""));
        assert_eq!(
            (r["symbol_prefix"].as_str(), r["symbol_suffix"].as_str()),
            (Some(*pre), Some(*suf)),
            "{r:#}"
        );
    }
    // scipy's is the ILP64 one: the library says so, and so must the record
    assert_eq!(
        truth(
            "openblas",
            scipy_lib()
                .join("libscipy_openblas64_.so")
                .to_str()
                .unwrap(),
            &["scipy_", "64_"]
        )["width"],
        "ilp64"
    );

    // BLIS (Debian's OpenMP build), ATLAS, reference BLAS.
    let blis = multi.join("blis-openmp/libblis.so");
    let t = truth("blis", blis.to_str().unwrap(), &[]);
    let r = record(
        &p,
        "blis",
        t["threading"].as_str().unwrap(),
        blis.parent().unwrap(),
    );
    assert_eq!(r["int_width"], t["width"]);
    let atlas = multi.join("atlas/libblas.so.3");
    let t = truth("atlas", atlas.to_str().unwrap(), &[]);
    let r = record(&p, "atlas", "serial", atlas.parent().unwrap());
    assert_eq!(
        (&r["threading"], &r["int_width"]),
        (&t["threading"], &t["width"])
    );
    assert!(
        !records(&p).iter().any(|r| r["provider"] == "reference"
            && r["lib_dir"] == atlas.parent().unwrap().to_str().unwrap()),
        "ATLAS reported as reference BLAS: {:#}",
        p["blas"]
    );
    let reference = multi.join("blas/libblas.so.3");
    let t = truth("reference", reference.to_str().unwrap(), &[]);
    let r = record(&p, "reference", "sequential", reference.parent().unwrap());
    assert_eq!(
        (&r["threading"], &r["int_width"]),
        (&t["threading"], &t["width"])
    );

    // The system default is whatever libblas.so.3 really resolves to, and only that.
    let target = std::fs::canonicalize(multi.join("libblas.so.3")).unwrap();
    let defaults: Vec<&Value> = records(&p)
        .iter()
        .filter(|r| r["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{defaults:#?}");
    assert_eq!(
        std::fs::canonicalize(defaults[0]["lib_dir"].as_str().unwrap()).unwrap(),
        target.parent().unwrap(),
        "{:#}",
        defaults[0]
    );

    // MKL: every layer, each asked with its files loaded; versioned-only files by full path.
    let v = venv_lib();
    let file = |n: &str| -> String {
        let mut fs: Vec<String> = std::fs::read_dir(&v)
            .unwrap()
            .flatten()
            .map(|e| e.path().display().to_string())
            .filter(|p| {
                p.rsplit('/')
                    .next()
                    .unwrap()
                    .starts_with(&format!("lib{n}.so."))
            })
            .collect();
        fs.sort_by_key(|p| p.len());
        fs.into_iter()
            .next()
            .unwrap_or_else(|| panic!("no lib{n}.so.* in {}", v.display()))
    };
    for (build, iface, layer, runtime) in [
        ("sequential", "mkl_intel_lp64", "mkl_sequential", None),
        (
            "sequential_ilp64",
            "mkl_intel_ilp64",
            "mkl_sequential",
            None,
        ),
        (
            "intel_thread",
            "mkl_intel_lp64",
            "mkl_intel_thread",
            Some("iomp5"),
        ),
        (
            "gnu_thread",
            "mkl_intel_lp64",
            "mkl_gnu_thread",
            Some("gomp"),
        ),
    ] {
        let mut extra = vec![file(layer), file("mkl_core")];
        match runtime {
            Some("iomp5") => extra.push(v.join("libiomp5.so").display().to_string()),
            Some(_) => extra.push("libgomp.so.1".into()),
            None => {}
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let t = truth("mkl", &file(iface), &extra);
        // the library's own answers: one thread exactly for the sequential layer, and the
        // OpenMP runtime the threaded one really loaded
        assert_eq!(
            t["threads"].as_i64().unwrap() > 1,
            runtime.is_some(),
            "{build}: {t}"
        );
        assert_eq!(t["runtime"].as_str(), runtime, "{build}: {t}");
        let r = record(&p, "mkl", build, &v);
        let want = if runtime.is_some() {
            "openmp"
        } else {
            "sequential"
        };
        assert_eq!(r["threading"], want, "{r:#}");
        assert_eq!(r["int_width"], t["width"], "{r:#}");
        assert_eq!(
            t["width"],
            if iface.contains("ilp64") {
                "ilp64"
            } else {
                "lp64"
            }
        );
        let libs: Vec<&str> = r["libs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        for f in [file(iface), file(layer), file("mkl_core")] {
            assert!(libs.contains(&f.as_str()), "{build}: {f} not on {libs:?}");
        }
    }
    let t = truth("mkl", &file("mkl_rt"), &[]);
    let r = record(&p, "mkl", "rt", &v);
    assert_eq!(r["threading"], "runtime");
    assert_eq!(
        r["int_width"],
        if t["interface"] == 0 { "lp64" } else { "ilp64" }
    );
    assert!(
        r["config"]
            .as_str()
            .unwrap()
            .contains("threading layer intel")
            == (t["layer"] == 0),
        "{r:#} vs {t}"
    );
    assert!(p["blas_failures"].is_null(), "{:#}", p["blas_failures"]);
}

const DGEMM_C: &str = r#"#include <stdio.h>
#ifndef BLAS_INT
#define BLAS_INT int
#endif
typedef BLAS_INT bint;
void dgemm_(const char *, const char *, const bint *, const bint *, const bint *, const double *,
            const double *, const bint *, const double *, const bint *, const double *, double *,
            const bint *);
int main(void) {
  bint n = 2;
  double a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {0}, one = 1, zero = 0;
  dgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n);
  /* column-major: C = A B = [[23, 31], [34, 46]] */
  int ok = c[0] == 23 && c[1] == 34 && c[2] == 31 && c[3] == 46;
  printf("%s %g %g %g %g\n", ok ? "OK" : "WRONG", c[0], c[1], c[2], c[3]);
  return !ok;
}
"#;

/// Each BLAS record's link line, exactly as concretisation puts it on a variant, compiles,
/// links and runs a program that calls dgemm (OpenMP variants with 2 threads).
#[test]
fn every_blas_records_link_line_links_and_runs_dgemm() {
    let dir = tempdir();
    let d = dir.path();
    let p = probe(d, &[]);
    std::fs::write(d.join("p.json"), serde_json::to_vec(&p).unwrap()).unwrap();
    let ids = [
        "mkl-sequential",
        "mkl-sequential_ilp64",
        "mkl-intel_thread",
        "mkl-gnu_thread",
        "mkl-rt",
        "openblas-serial",
        "openblas-pthread",
        "openblas-openmp",
        "blis-openmp",
        "atlas-serial",
        "reference-sequential",
    ];
    let quoted: Vec<String> = ids.iter().map(|i| format!("{i:?}")).collect();
    std::fs::write(
        d.join("m.toml"),
        format!(
            "name = \"links\"\nlanguages = [\"c\"]\nthreads = 2\n[axes]\ncompiler = [\"gcc\", \"clang\"]\nblas = [{}]\n",
            quoted.join(", ")
        ),
    )
    .unwrap();
    let r = run_env(
        d,
        &["expand", "m.toml", "--profile", "p.json", "--json"],
        &[],
    );
    r.expect_code(0);
    let vs = r.json();
    let vs = vs.as_array().unwrap();
    assert_eq!(vs.len(), ids.len() * 2);
    std::fs::write(d.join("dgemm.c"), DGEMM_C).unwrap();
    for v in vs {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["available"], true, "{name}: {:#}", v["reasons"]);
        let f = &v["concrete_flags"];
        let strs = |x: &Value| -> Vec<String> {
            x.as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let lib_args: Vec<String> = strs(&f["libs"])
            .into_iter()
            .map(|l| {
                if l.starts_with('-') || l.contains('/') {
                    l
                } else {
                    format!("-l{l}")
                }
            })
            .collect();
        let exe = d.join(name);
        // the program's integers are the width the library answered (64-bit for ILP64)
        let blas = &v["blas_library"];
        let int = match blas["int_width"].as_str() {
            Some("ilp64") => "-DBLAS_INT=long long",
            _ => "-DBLAS_INT=int",
        };
        let o = Command::new(f["cc"].as_str().unwrap())
            .args(strs(&f["cflags"]))
            .arg(int)
            .arg(d.join("dgemm.c"))
            .arg("-o")
            .arg(&exe)
            .args(strs(&f["link"]["c"]))
            .args(strs(&f["ldflags"]))
            .args(&lib_args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: link failed: {}\nflags: {f:#}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = Command::new(&exe)
            .env("OMP_NUM_THREADS", "2")
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.starts_with("OK"),
            "{name}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // never the decorated scipy-openblas64 for a program calling plain `dgemm_`, and ILP64
        // only where the value names an ILP64 build
        let ilp64 = name.ends_with("_ilp64");
        assert_eq!(
            blas["int_width"],
            if ilp64 { "ilp64" } else { "lp64" },
            "{name}: {blas:#}"
        );
        assert_eq!(blas["symbol_prefix"], "", "{name}: {blas:#}");
    }
}

/// A library whose query function segfaults, one whose query hangs and one that does not load
/// (its dependency is gone) are reported with the reason; the others are still asked.
#[test]
fn a_blas_library_that_crashes_or_hangs_when_asked_is_reported_and_the_rest_go_on() {
    let dir = tempdir();
    let d = dir.path();
    // a library its dependency was removed from: it does not load at all
    let gone = d.join("gone");
    std::fs::create_dir_all(&gone).unwrap();
    std::fs::write(
        gone.join("dep.c"),
        "int cfgmx_test_dep(void) { return 0; }\n",
    )
    .unwrap();
    let o = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(gone.join("libcfgmxtestdep.so"))
        .arg(gone.join("dep.c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (sub, body, extra) in [
        ("crash", "volatile int *p = 0; return *p;", ""),
        ("hang", "for (;;) sleep(100); return 0;", ""),
        ("broken", "return cfgmx_test_dep();", "-lcfgmxtestdep"),
    ] {
        let sd = d.join(sub);
        std::fs::create_dir_all(&sd).unwrap();
        let src = sd.join("fake.c");
        std::fs::write(
            &src,
            format!("#include <unistd.h>\nint cfgmx_test_dep(void);\nint openblas_get_parallel(void) {{ {body} }}\nvoid dgemm_(void) {{}}\nint idamax_(void) {{ return 2; }}\n"),
        )
        .unwrap();
        let o = Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(sd.join("libopenblas.so"))
            .arg(&src)
            .arg(format!("-L{}", gone.display()))
            .args(extra.split_whitespace())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::remove_dir_all(&gone).unwrap();
    // Build (or check) the binary before the clock starts, and probe with no compiler on
    // PATH (cfgmx asks the libraries itself): only the BLAS queries are timed.
    let _ = cfgmx_tests::bin();
    let empty = tempdir();
    let t = Instant::now();
    let (c, h, b) = (d.join("crash"), d.join("hang"), d.join("broken"));
    let r = run_env(
        d,
        &[
            "probe",
            "--json",
            "--fresh",
            "--timeout",
            "2",
            "--search",
            c.to_str().unwrap(),
            "--search",
            h.to_str().unwrap(),
            "--search",
            b.to_str().unwrap(),
        ],
        &[("PATH", empty.path().to_str().unwrap())],
    );
    let took = t.elapsed();
    r.expect_code(0);
    let p = r.json();
    let failures = p["blas_failures"]
        .as_array()
        .unwrap_or_else(|| panic!("no blas_failures: {p:#}"));
    let failure = |dir: &Path| -> (&str, &str) {
        let path = dir.join("libopenblas.so");
        let f = failures
            .iter()
            .find(|f| f["path"] == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not reported: {failures:#?}", path.display()));
        (f["status"].as_str().unwrap(), f["error"].as_str().unwrap())
    };
    assert_eq!(failure(&c).0, "crashed", "{:?}", failure(&c));
    assert_eq!(failure(&h).0, "timed_out", "{:?}", failure(&h));
    let (status, why) = failure(&b);
    assert_eq!(status, "failed");
    assert!(why.contains("libcfgmxtestdep.so"), "{why}");
    assert!(
        !records(&p)
            .iter()
            .any(|r| r["lib_dir"] == c.to_str().unwrap() || r["lib_dir"] == h.to_str().unwrap()),
        "{:#}",
        p["blas"]
    );
    // the rest was asked on
    let multi = Path::new(MULTIARCH);
    record(&p, "openblas", "serial", &multi.join("openblas-serial"));
    record(&p, "openblas", "openmp", &multi.join("openblas-openmp"));
    // the hanging query costs its timeout, once, while the other libraries are asked
    assert!(took < Duration::from_secs(3), "probe took {took:?}");
}

/// Whatever `libblas.so.3` resolves to is the default: here a `libblas.so.3` in a searched
/// directory that points at ATLAS's (the system's alternative is left alone, other tests
/// share the machine). ATLAS is reported as ATLAS, not as reference BLAS, and is the default.
#[test]
fn the_default_blas_is_what_libblas_so_3_resolves_to_atlas_included() {
    let dir = tempdir();
    let alt = dir.path().join("alt");
    std::fs::create_dir_all(&alt).unwrap();
    let atlas = Path::new(MULTIARCH).join("atlas/libblas.so.3");
    assert!(
        atlas.exists(),
        "no ATLAS (scripts/setup.sh installs libatlas-base-dev)"
    );
    std::os::unix::fs::symlink(&atlas, alt.join("libblas.so.3")).unwrap();
    let r = run_env(
        dir.path(),
        &[
            "probe",
            "--json",
            "--fresh",
            "--search",
            alt.to_str().unwrap(),
        ],
        &[],
    );
    r.expect_code(0);
    let p = r.json();
    let defaults: Vec<&Value> = records(&p)
        .iter()
        .filter(|r| r["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{:#}", p["blas"]);
    assert_eq!(defaults[0]["provider"], "atlas", "{:#}", defaults[0]);
    assert_eq!(
        std::fs::canonicalize(defaults[0]["path"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&atlas).unwrap()
    );
    assert!(
        !records(&p).iter().any(|r| r["provider"] == "reference"
            && std::fs::canonicalize(r["path"].as_str().unwrap()).ok()
                == std::fs::canonicalize(&atlas).ok()),
        "{:#}",
        p["blas"]
    );
}
