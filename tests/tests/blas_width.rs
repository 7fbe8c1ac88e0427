//! Integer width and the project's OpenMP through `cfgmx build`, against real CMake (Debian's
//! 3.25 and the venv's 4.x), gcc, gfortran and Debian's LP64 and ILP64 OpenBLAS builds:
//!
//! - an ILP64 variant links the ILP64 build it names (ldd and the library's own answer), its
//!   test passes where the same project's LP64 variants fail, and the JSON and the lock name
//!   the file;
//! - with the ILP64 builds hidden (a provider file without their names) an ILP64 variant is
//!   unavailable, and the reason says what there is instead;
//! - a threaded-BLAS variant whose project OpenMP is off compiles without `-fopenmp` and still
//!   links the threaded BLAS (and, through it, its runtime).

use cfgmx_tests::{explain, repo, sh, step, variants, MatrixDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WIDTHS: &str = r#"
name = "widths"
languages = ["c"]
[axes]
compiler = ["gcc"]
blas = ["openblas-serial", "openblas-pthread", "threaded"]
int = ["lp64", "ilp64"]
[blas]
prefer = ["openblas"]
"#;

fn project(name: &str) -> PathBuf {
    repo().join("tests/projects").join(name)
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("no JSON ({e})\n{}", explain(o)))
}

/// `cfgmx build m.toml -j 2 --json --build-root ROOT --source SRC EXTRA`, `path` first on
/// `PATH` when given.
fn build(env: &MatrixDir, src: &Path, root: &str, extra: &[&str], path: Option<&Path>) -> Output {
    let mut c = env.cmd(&["build", "m.toml", "-j", "2", "--json", "--build-root", root]);
    c.arg("--source").arg(src).args(extra);
    if let Some(p) = path {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![p.to_path_buf()];
        dirs.extend(std::env::split_paths(&old));
        c.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    c.output().unwrap()
}

/// The variant's build directory under the build root (named by its concrete hash).
fn build_dir(env: &MatrixDir, root: &str, v: &Value) -> PathBuf {
    let hash = v["hash"].as_str().unwrap();
    let root = env.path().join(root);
    std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            // `<hash prefix>` for CMake, `<hash prefix>-meson` for Meson
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                let prefix = n.split('-').next().unwrap_or("");
                p.is_dir() && !prefix.is_empty() && hash.starts_with(prefix)
            })
        })
        .unwrap_or_else(|| panic!("no directory for {hash} in {}", root.display()))
        .join("build")
}

fn real(p: &str) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .display()
        .to_string()
}

/// What `ldd` says `exe` loads for the library `soname_prefix` (`libopenblas64.so`), real path.
fn ldd_blas(exe: &Path, soname_prefix: &str) -> Option<String> {
    let out = sh(&format!("ldd '{}'", exe.display()));
    out.lines()
        .filter_map(|l| l.trim().split_once(" => "))
        .find(|(name, _)| name.starts_with(soname_prefix))
        .map(|(_, rest)| real(rest.split(" (").next().unwrap().trim()))
}

fn check_widths_run(env: &MatrixDir, root: &str, path: Option<&Path>, extra: &[&str]) {
    let o = build(env, &project("c-ilp64"), root, extra, path);
    // the LP64 variants build and fail their test: the project needs 64-bit BLAS integers
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let r = json_of(&o);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("cfgmx.lock")).unwrap())
            .unwrap();
    let vs = variants(&r);
    assert_eq!(vs.len(), 6, "{r:#}");
    for v in vs {
        let name = v["name"].as_str().unwrap();
        let linked: Vec<&str> = v["blas_linked"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no blas_linked: {v:#}"))
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        // The lock keys entries by matrix, then by concrete hash.
        let job = lock["matrices"]
            .as_object()
            .unwrap()
            .values()
            .find_map(|m| m["variants"].get(v["hash"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{name} not in the lock: {lock:#}"));
        let named = job["blas_library"].as_str().unwrap();
        // the file the build really loads is the one the lock names, and only that
        assert_eq!(linked, [real(named)], "{name}: {v:#}");
        let exe = build_dir(env, root, v).join("ilp64_check");
        if name.ends_with("-lp64") {
            assert_eq!(v["status"], "failed", "{name}: {v:#}");
            assert_eq!(v["failed_step"], "test", "{name}: {v:#}");
            assert!(!named.contains("openblas64"), "{name}: {named}");
            assert_eq!(ldd_blas(&exe, "libopenblas.so"), Some(real(named)));
            continue;
        }
        assert_eq!(v["status"], "passed", "{name}: {v:#}");
        assert_eq!(job["int_width"], "ilp64", "{name}: {job:#}");
        assert_eq!(job["cmake"]["BLA_SIZEOF_INTEGER"], "8", "{name}: {job:#}");
        assert_eq!(job["cmake"]["BLAS_LIBRARIES"], named, "{name}: {job:#}");
        let build = match v["blas"].as_str().unwrap() {
            "openblas-serial" => ("openblas64-serial", "0"),
            "openblas-pthread" => ("openblas64-pthread", "1"),
            _ => ("openblas64-openmp", "2"),
        };
        assert!(
            Path::new(named).parent().unwrap().ends_with(build.0),
            "{name}: {named}"
        );
        // ldd, and the library's own answer: 64-bit integers, the named threading
        assert_eq!(ldd_blas(&exe, "libopenblas64.so"), Some(real(named)));
        assert_eq!(ldd_blas(&exe, "libopenblas.so"), None, "{name}");
        let run = Command::new(&exe)
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{name}: {}", explain(&run));
        assert!(out.contains("USE64BITINT"), "{name}: {out}");
        assert!(
            out.contains(&format!("blas-parallel: {}\n", build.1)),
            "{name}: {out}"
        );
    }
}

#[test]
fn an_ilp64_variant_links_the_ilp64_build_it_names_with_cmake_3_and_4_and_meson() {
    let env = MatrixDir::new(WIDTHS);
    check_widths_run(&env, "root3", Some(Path::new("/usr/bin")), &[]);
    let venv = repo().join("target/test-venv/bin");
    assert!(
        venv.join("cmake").exists(),
        "{} should hold CMake 4.x (scripts/setup.sh)",
        venv.display()
    );
    check_widths_run(&env, "root4", Some(&venv), &[]);
    // Meson: the variant's link arguments (-L and rpath of the build's directory)
    check_widths_run(&env, "meson", None, &["--system", "meson"]);
}

/// A project that also links `-lopenblas` by name (an LP64 library beside the ILP64 one the
/// variant names): the build step fails, naming both files, and no test runs.
#[test]
fn a_build_that_loads_another_blas_than_the_variants_fails() {
    let env = MatrixDir::new(&WIDTHS.replace(r#"int = ["lp64", "ilp64"]"#, r#"int = ["ilp64"]"#));
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["CMakeLists.txt", "ilp64_check.c"] {
        std::fs::copy(project("c-ilp64").join(f), src.join(f)).unwrap();
    }
    let cm = std::fs::read_to_string(src.join("CMakeLists.txt")).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        format!("{cm}target_link_libraries(ilp64_check PRIVATE openblas)\n"),
    )
    .unwrap();
    let o = build(&env, &src, "root", &[], None);
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    for v in variants(&json_of(&o)) {
        assert_eq!(v["failed_step"], "build", "{v:#}");
        let msg = step(v, "build")["message"].as_str().unwrap_or("");
        assert!(
            msg.starts_with("the built files load /") && msg.contains("/openblas-"),
            "{msg}"
        );
        assert!(msg.contains("not the variant's BLAS /"), "{msg}");
        assert_eq!(step(v, "test")["status"], "not_run", "{v:#}");
    }
}

/// A provider directory whose `openblas` leaves out Debian's ILP64 library names, so the
/// probe does not see them (scipy-openblas64, ILP64 but decorated, is still found).
fn providers_without_ilp64(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("providers/openblas.toml")).unwrap();
    let hidden = text.replace(r#""openblas64", "openblas64_", "#, "");
    assert_ne!(
        hidden, text,
        "providers/openblas.toml lists its ILP64 names differently"
    );
    let p = dir.join("providers");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("openblas.toml"), hidden).unwrap();
    p
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

#[test]
fn with_the_ilp64_builds_hidden_an_ilp64_variant_is_unavailable_with_the_reason() {
    let env = MatrixDir::new(WIDTHS);
    let providers = providers_without_ilp64(env.path());
    let scipy = scipy_lib();
    let args = [
        "--providers",
        providers.to_str().unwrap(),
        "--search",
        scipy.to_str().unwrap(),
    ];
    let mut c = env.cmd(&["expand", "m.toml", "--probe", "--json"]);
    let o = c.args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r = json_of(&o);
    let vs = r.as_array().or_else(|| r["variants"].as_array()).unwrap();
    assert_eq!(vs.len(), 6);
    for v in vs {
        let name = v["name"].as_str().unwrap();
        let reasons: Vec<&str> = v["reasons"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        if name.ends_with("-lp64") {
            assert_eq!(v["available"], true, "{name}: {reasons:?}");
            continue;
        }
        assert_eq!(v["available"], false, "{name}");
        let want = match v["axes"]["blas"].as_str().unwrap() {
            "threaded" => "no threaded ILP64 BLAS found".to_string(),
            b => format!("no ILP64 build of BLAS {b} found (int = ilp64)"),
        };
        assert!(reasons[0].starts_with(&want), "{name}: {reasons:?}");
        // what is there instead: the LP64 builds, and scipy's decorated ILP64 one
        if name.contains("serial") {
            assert!(
                reasons[0].contains("openblas-serial/libopenblas.so is LP64"),
                "{reasons:?}"
            );
        } else {
            assert!(
                reasons[0].contains("is ILP64 with decorated symbols (scipy_dgemm_64_)"),
                "{reasons:?}"
            );
        }
    }
    // `cfgmx build` gives the same reason and builds nothing for them
    let mut c = env.cmd(&["build", "m.toml", "-j", "2", "--json", "--source"]);
    let o = c.arg(project("c-ilp64")).args(args).output().unwrap();
    for v in variants(&json_of(&o)) {
        if v["name"].as_str().unwrap().ends_with("-ilp64") {
            assert_eq!(v["status"], "unavailable", "{v:#}");
            assert!(v["reason"].as_str().unwrap().contains("ILP64 "), "{v:#}");
        }
    }
}

/// gcc with the OpenMP OpenBLAS, the project's OpenMP on and off: `off` compiles without
/// `-fopenmp` (compile_commands.json, and the program's own `_OPENMP`), and still links the
/// OpenMP build and its runtime, which runs threaded.
#[test]
fn a_threaded_blas_variant_with_the_projects_openmp_off_compiles_without_it() {
    let env = MatrixDir::new(
        r#"
name = "omp"
languages = ["c", "fortran"]
[axes]
compiler = ["gcc"]
blas = ["openblas-openmp"]
openmp = ["on", "off"]
[values.compiler.gcc]
cmake = { CMAKE_EXPORT_COMPILE_COMMANDS = "ON" }
"#,
    );
    let o = build(&env, &project("omp-blas"), "root", &[], None);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    for v in variants(&json_of(&o)) {
        let name = v["name"].as_str().unwrap();
        let on = name.ends_with("-on");
        assert_eq!(v["status"], "passed", "{name}: {v:#}");
        let dir = build_dir(&env, "root", v);
        let cc: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("compile_commands.json")).unwrap(),
        )
        .unwrap();
        let info = cc
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["file"].as_str().unwrap().ends_with("info.c"))
            .unwrap_or_else(|| panic!("{name}: info.c not compiled: {cc:#}"));
        let cmd = info["command"].as_str().unwrap();
        assert_eq!(cmd.contains("-fopenmp"), on, "{name}: {cmd}");
        // the threaded BLAS is linked either way, with its OpenMP runtime
        let exe = dir.join("ompblas_info");
        let blas = ldd_blas(&exe, "libopenblas.so").unwrap();
        assert!(blas.contains("/openblas-openmp/"), "{name}: {blas}");
        assert!(ldd_blas(&exe, "libgomp.so").is_some(), "{name}");
        let run = Command::new(&exe)
            .env("OMP_NUM_THREADS", "2")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{name}: {}", explain(&run));
        assert!(out.contains("blas-parallel: 2"), "{name}: {out}");
        assert_eq!(out.contains("openmp: none"), !on, "{name}: {out}");
    }
}
