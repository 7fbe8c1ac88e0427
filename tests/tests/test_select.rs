//! Test selection and project settings in the matrix (`[test]`, `[cmake]`, `[meson]`, and a
//! value's `test = {...}`), through `cfgmx build` on a real project (`tests/projects/
//! test-select`: `fast_a`, `fast_b`, and `slow`, labelled / in the suite `slow`, which sleeps
//! 3 s), with real ctest 3.25 and `meson test`. What a user relies on: the tests that ran are
//! the ones the matrix selected, a per-test timeout stops a test in the variants it applies to
//! only, and CMake projects get their tests built without a `BUILD_TESTING` in every value.
//!
//! The last test checks the cores a test step holds: ranks (ctest's PROCESSORS) x threads.
//!
//! Cost: about twelve builds of a one-file C project (a few seconds each), one probe shared.

use cfgmx_tests::{explain, repo, variants, MatrixDir};
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

/// One probe cache for every build here: the machine is probed once, not per test.
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("cfgmx-tsel-cache-")
            .tempdir()
            .unwrap()
    })
    .path()
}

/// gcc, no BLAS, the build modes given; `extra` is the rest of the matrix.
fn matrix(builds: &str, extra: &str) -> String {
    format!(
        "name = \"tsel\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [{builds}]\n{extra}"
    )
}

/// The project copied into the matrix's directory; for Meson without its CMakeLists.txt
/// (CMake wins when a project has both).
fn project(dir: &Path, meson: bool) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for e in std::fs::read_dir(repo().join("tests/projects/test-select")).unwrap() {
        let e = e.unwrap();
        if meson && e.file_name() == "CMakeLists.txt" {
            continue;
        }
        std::fs::copy(e.path(), src.join(e.file_name())).unwrap();
    }
    src
}

/// Builds `m` (`--json`) and returns the exit code and, per variant name, its status and
/// each test as `name:status`, sorted (Meson's `project:suite / name` as `name`).
fn build(m: &str, meson: bool) -> (i32, Vec<(String, String, Vec<String>)>) {
    let env = MatrixDir::with_cache(m, shared_cache());
    let src = project(env.path(), meson);
    let o = env
        .cmd(&[
            "build",
            "m.toml",
            "-j",
            "2",
            "--build-root",
            "root",
            "--json",
        ])
        .arg("--source")
        .arg(&src)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", explain(&o)));
    let mut out: Vec<(String, String, Vec<String>)> = variants(&v)
        .iter()
        .map(|x| {
            let mut tests: Vec<String> = x["tests"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| {
                            format!(
                                "{}:{}",
                                t["name"].as_str().unwrap().rsplit(" / ").next().unwrap(),
                                t["status"].as_str().unwrap()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            tests.sort();
            (
                x["build"].as_str().unwrap().to_string(),
                x["status"].as_str().unwrap().to_string(),
                tests,
            )
        })
        .collect();
    out.sort();
    (o.status.code().unwrap_or(-1), out)
}

fn row(build: &str, status: &str, tests: &[&str]) -> (String, String, Vec<String>) {
    (
        build.into(),
        status.into(),
        tests.iter().map(|t| t.to_string()).collect(),
    )
}

/// Selection by label and by name, with ctest and with `meson test`: exactly the selected
/// tests run (the slow one is never started when excluded).
#[test]
fn label_and_name_selection_runs_exactly_the_selected_tests() {
    for meson in [false, true] {
        let by_label = matrix("\"release\"", "[test]\nexclude_labels = [\"slow\"]\n");
        assert_eq!(
            build(&by_label, meson),
            (
                0,
                vec![row(
                    "release",
                    "passed",
                    &["fast_a:passed", "fast_b:passed"]
                )]
            ),
            "exclude_labels, meson: {meson}"
        );
        let by_name = matrix("\"release\"", "[test]\ninclude = [\"^fast_a$\"]\n");
        assert_eq!(
            build(&by_name, meson),
            (0, vec![row("release", "passed", &["fast_a:passed"])]),
            "include, meson: {meson}"
        );
    }
}

/// `[values.build.debug] test = { timeout = 1 }`: the 3 s test times out in debug only; the
/// matrix's `[test]` (`exclude`) still applies under the value's own key.
#[test]
fn a_values_timeout_applies_to_its_variants_only() {
    for meson in [false, true] {
        let m = matrix(
            "\"debug\", \"release\"",
            "[test]\nexclude = [\"^fast_b$\"]\n[values.build.debug]\ntest = { timeout = 1 }\n",
        );
        assert_eq!(
            build(&m, meson),
            (
                1,
                vec![
                    row("debug", "failed", &["fast_a:passed", "slow:failed"]),
                    row("release", "passed", &["fast_a:passed", "slow:passed"]),
                ]
            ),
            "meson: {meson}"
        );
    }
}

/// CMake: BUILD_TESTING is on by default (the project builds its tests only then), off where
/// the matrix's `[cmake]` says so, and a value's own `cmake` entry wins over `[cmake]`.
#[test]
fn build_testing_is_on_unless_the_matrix_sets_it() {
    let m = matrix(
        "\"debug\", \"release\"",
        "[cmake]\nBUILD_TESTING = \"OFF\"\n[values.build.release]\ncmake = { BUILD_TESTING = \"ON\" }\n[test]\nexclude_labels = [\"slow\"]\n",
    );
    assert_eq!(
        build(&m, false),
        (
            1,
            vec![
                row("debug", "no_tests", &[]),
                row("release", "passed", &["fast_a:passed", "fast_b:passed"]),
            ]
        )
    );
}

/// The settings are part of the variant: in its JSON record (and so the lock) as merged, and
/// in its hash only when set (a matrix without them keeps its hashes).
#[test]
fn settings_are_recorded_and_hashed() {
    let expand = |m: &str| {
        let env = MatrixDir::with_cache(m, shared_cache());
        let o = env.cmd(&["expand", "m.toml", "--jsonl"]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
        let v: Vec<Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        v
    };
    let plain = expand(&matrix("\"debug\", \"release\"", ""));
    let set = expand(&matrix(
        "\"debug\", \"release\"",
        "[cmake]\nFOO = \"1\"\n[test]\nexclude = [\"x\"]\ntimeout = 60\n[values.build.debug]\ntest = { timeout = 5 }\n",
    ));
    assert_eq!(
        set[0]["test"],
        serde_json::json!({"exclude": ["x"], "timeout": 5})
    );
    assert_eq!(
        set[1]["test"],
        serde_json::json!({"exclude": ["x"], "timeout": 60})
    );
    assert_eq!(set[0]["flags"]["cmake"]["FOO"], "1");
    assert!(plain[0].get("test").is_none(), "{}", plain[0]);
    assert_ne!(plain[0]["hash"], set[0]["hash"]);
}

/// A test's cores are its ranks (ctest's PROCESSORS) times the variant's threads: with
/// `-j 4`, an OpenMP variant (2 threads) whose tests say `PROCESSORS 2` holds 4 cores for its
/// test step and runs one such test at a time; the same tests in a variant without threads
/// hold 2 cores. Each test sleeps 1 s, so one at a time is at least 3 s. A user's `args`
/// (`--verbose`) go to the run and leave the listing alone.
#[test]
fn test_cores_are_ranks_times_threads() {
    let m = "name = \"cores\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"release\"]\nopenmp = [\"on\", \"off\"]\n[test]\nargs = [\"--verbose\"]\n";
    let env = MatrixDir::with_cache(m, shared_cache());
    let src = project(env.path(), false);
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(cores C)\nadd_executable(t t.c)\nenable_testing()\n\
         foreach(i 1 2 3)\n  add_test(NAME mpi${i} COMMAND t sleep 1)\n  set_tests_properties(mpi${i} PROPERTIES PROCESSORS 2)\nendforeach()\n",
    )
    .unwrap();
    let o = env
        .cmd(&[
            "build",
            "m.toml",
            "-j",
            "4",
            "--build-root",
            "root",
            "--json",
        ])
        .arg("--source")
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut seen: Vec<(String, u64, bool)> = variants(&v)
        .iter()
        .map(|x| {
            let t = cfgmx_tests::step(x, "test");
            (
                // The name ends in the `openmp` value (the one axis that varies last).
                x["name"]
                    .as_str()
                    .unwrap()
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .to_string(),
                t["cores"].as_u64().unwrap(),
                t["duration_s"].as_f64().unwrap() >= 3.0,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![("off".to_string(), 2, true), ("on".to_string(), 4, true)],
        "(openmp, cores held, one test at a time)"
    );
}
