//! `cfgmx build` never reports a false pass: test results read from ctest's JUnit output
//! (Debian's CMake 3.25 and the latest CMake 4.x from the test venv), threaded variants tested
//! with the thread count the matrix declares, languages taken from the project when the matrix
//! sets none. Real CMake, ctest, gcc, clang and OpenBLAS.

use cfgmx_tests::{explain, repo, step, variants, MatrixDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// gcc and clang x sequential/threaded OpenBLAS x debug/release, with no `languages`: the
/// build must take them from the project.
const MATRIX: &str = r#"
name = "gcc-clang-c"
[axes]
compiler = ["gcc", "clang"]
blas = ["sequential", "threaded"]
build = ["debug", "release"]
[blas]
prefer = ["openblas"]
"#;

fn project(name: &str) -> PathBuf {
    repo().join("tests/projects").join(name)
}

/// `cfgmx build m.toml -j 2 --source SRC --build-root ROOT EXTRA`, with `path` first on `PATH`
/// when given.
fn build(env: &MatrixDir, src: &Path, root: &str, extra: &[&str], path: Option<&Path>) -> Command {
    let mut c = env.cmd(&["build", "m.toml", "-j", "2", "--build-root", root]);
    c.arg("--source").arg(src).args(extra);
    if let Some(p) = path {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![p.to_path_buf()];
        dirs.extend(std::env::split_paths(&old));
        c.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    c
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("no JSON ({e})\n{}", explain(o)))
}

/// (name, status) of each test a variant recorded.
fn tests_of(v: &Value) -> Vec<(String, String)> {
    v["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no per-test results: {v}"))
        .iter()
        .map(|t| {
            assert!(t["time_s"].as_f64().is_some(), "no time: {t}");
            (
                t["name"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The major version `cmake --version` prints, for the `cmake` found through `path` (or the
/// default PATH).
fn cmake_major(path: Option<&Path>) -> u32 {
    let cmake = path.map_or(PathBuf::from("cmake"), |p| p.join("cmake"));
    let o = Command::new(&cmake)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/setup.sh installs it)", cmake.display()));
    let text = String::from_utf8_lossy(&o.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no version in `{text}`"))
}

/// The C-only project over the 8 variants: every one passes with 3 tests of 3, each named,
/// read from ctest's JUnit file; threaded variants ran their tests with 2 threads (the
/// project's `threads` test checks it got exactly OMP_NUM_THREADS threads).
fn check_c_only_run(env: &MatrixDir, root: &str, path: Option<&Path>, cmake: u32) {
    let o = build(
        env,
        &project("c-only"),
        root,
        &["--json", "--junit", &format!("{root}.xml")],
        path,
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    // clang has no Fortran compiler here: a C project must not need one.
    assert!(!err.contains("cannot be built here"), "{err}");
    assert!(err.contains("`languages`: c from the project"), "{err}");
    let r = json_of(&o);
    let vs = variants(&r);
    assert_eq!(vs.len(), 8, "{r}");
    for v in vs {
        assert_eq!(v["status"], "passed", "{v}");
        assert_eq!(
            (&v["tests_passed"], &v["tests_failed"]),
            (&3.into(), &0.into()),
            "{v}"
        );
        assert_eq!(v["tests_from"], "ctest-junit", "{v}");
        let mut names = tests_of(v);
        names.sort();
        assert_eq!(
            names,
            [
                ("ddot1000", "passed"),
                ("ddot3", "passed"),
                ("threads", "passed")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string())),
            "{v}"
        );
        let threaded = v["name"].as_str().unwrap().contains("threaded");
        assert_eq!(v["threads"], if threaded { 2 } else { 1 }, "{v}");
        let tool = v["tools"]["ctest"].as_str().unwrap_or("");
        assert!(
            tool.starts_with(&format!("ctest version {cmake}.")),
            "{tool}"
        );
        assert!(
            step(v, "test")["command"]
                .as_str()
                .unwrap()
                .contains("--output-junit"),
            "{v}"
        );
        // The compilers recorded are C only.
        let langs: Vec<&String> = v["tools"].as_object().unwrap().keys().collect();
        assert!(
            !langs.iter().any(|k| *k == "fortran" || *k == "cxx"),
            "{langs:?}"
        );
    }
    // JUnit: one case per test of the project under each variant's suite.
    let script = format!(
        r#"
import xml.etree.ElementTree as ET
root = ET.parse({path:?}).getroot()
suites = root.findall("testsuite")
assert len(suites) == 8, len(suites)
for s in suites:
    names = sorted(c.get("name") for c in s.findall("testcase"))
    assert names == ["build", "configure", "ddot1000", "ddot3", "threads"], names
    for c in s.findall("testcase"):
        assert c.find("failure") is None and c.find("skipped") is None, c.get("name")
print("ok")
"#,
        path = env.path().join(format!("{root}.xml")).display().to_string()
    );
    let py = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", explain(&py));
}

#[test]
fn a_c_only_project_passes_8_of_8_with_cmake_3_and_cmake_4() {
    let env = MatrixDir::new(MATRIX);
    // Debian's CMake 3.25, first on PATH whatever the caller's PATH has first (CI runs the
    // build tests a second time with CMake 4.x first).
    let debian = Path::new("/usr/bin");
    assert_eq!(
        cmake_major(Some(debian)),
        3,
        "/usr/bin/cmake should be Debian's 3.x"
    );
    check_c_only_run(&env, "root3", Some(debian), 3);
    // The latest CMake 4.x from PyPI first on PATH, in a fresh build root.
    let venv = repo().join("target/test-venv/bin");
    assert_eq!(
        cmake_major(Some(&venv)),
        4,
        "{} should hold CMake 4.x (scripts/setup.sh)",
        venv.display()
    );
    check_c_only_run(&env, "root4", Some(&venv), 4);
}

#[test]
fn a_test_failing_with_two_threads_fails_every_threaded_variant() {
    let env = MatrixDir::new(MATRIX);
    let src = project("omp-threads");
    let o = build(&env, &src, "root", &["--json", "--html", "r.html"], None)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let r = json_of(&o);
    let vs = variants(&r);
    assert_eq!(vs.len(), 8, "{r}");
    for v in vs {
        let threaded = v["name"].as_str().unwrap().contains("threaded");
        let mut t = tests_of(v);
        t.sort();
        if threaded {
            assert_eq!(v["status"], "failed", "{v}");
            assert_eq!(step(v, "test")["status"], "failed", "{v}");
            assert_eq!(v["threads"], 2, "{v}");
            assert_eq!(
                t,
                [("parallel", "failed"), ("serial", "passed")]
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            );
            // The test's own log says it ran on a team of 2.
            let log = std::fs::read_to_string(
                env.path()
                    .join("root")
                    .join(step(v, "test")["log"].as_str().unwrap()),
            )
            .unwrap();
            assert!(log.contains("team of 2 thread(s)"), "{log}");
        } else {
            assert_eq!(v["status"], "passed", "{v}");
            assert_eq!(v["threads"], 1, "{v}");
            assert_eq!(
                (&v["tests_passed"], &v["tests_failed"]),
                (&2.into(), &0.into())
            );
        }
    }
    // The table shows the thread count each variant was tested with.
    std::fs::write(env.path().join("run.json"), &o.stdout).unwrap();
    let t = env.cmd(&["report", "merge", "run.json"]).output().unwrap();
    assert_eq!(t.status.code(), Some(1), "{}", explain(&t));
    let table = String::from_utf8_lossy(&t.stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let col = header
        .iter()
        .position(|h| *h == "THREADS")
        .expect("THREADS column");
    let status = header.iter().position(|h| *h == "STATUS").unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 8, "{table}");
    for row in rows {
        let threaded = row[0].contains("threaded");
        assert_eq!(row[col], if threaded { "2" } else { "1" }, "{table}");
        assert_eq!(
            row[status],
            if threaded { "FAILED" } else { "passed" },
            "{table}"
        );
    }
    let html = std::fs::read_to_string(env.path().join("r.html")).unwrap();
    assert!(
        html.contains("<th>threads</th>") && html.contains(">parallel<"),
        "{html}"
    );

    // Lowering `threads` explicitly is accepted and recorded, and the same variant then
    // passes: the failure was the thread count's. Back at 2 threads on the same root, that
    // pass is not reused ("unchanged since it passed") for a run with another count.
    let only = ["--json", "--only", "gcc-threaded-debug"];
    std::fs::write(env.path().join("m.toml"), format!("threads = 1\n{MATRIX}")).unwrap();
    let o = build(&env, &src, "root1", &only, None).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r = json_of(&o);
    assert_eq!(variants(&r)[0]["threads"], 1, "{r}");
    assert_eq!(variants(&r)[0]["status"], "passed", "{r}");
    std::fs::write(env.path().join("m.toml"), MATRIX).unwrap();
    let o = build(&env, &src, "root1", &only, None).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let r = json_of(&o);
    assert_eq!(variants(&r)[0]["status"], "failed", "{r}");
    assert_eq!(variants(&r)[0]["threads"], 2, "{r}");
}

/// Fewer cores than the thread count: said before anything is built, exit 2.
#[test]
fn fewer_cores_than_threads_is_refused_before_building() {
    let env = MatrixDir::new(MATRIX);
    let o = env
        .cmd(&["build", "m.toml", "-j", "1", "--build-root", "root"])
        .arg("--source")
        .arg(project("omp-threads"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("2 threads") && err.contains("-j 1") && err.contains("`threads = 1`"),
        "{err}"
    );
    assert!(!env.path().join("root").exists(), "something was built");
    // Only sequential variants: nothing threaded to refuse.
    let o = env
        .cmd(&[
            "build",
            "m.toml",
            "-j",
            "1",
            "--build-root",
            "root",
            "--only",
            "gcc-sequential-debug",
        ])
        .arg("--source")
        .arg(project("omp-threads"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
}

/// Meson's per-test results come from meson-logs/testlog.json.
#[test]
fn meson_per_test_results_come_from_testlog_json() {
    let env = MatrixDir::new(MATRIX);
    let o = build(
        &env,
        &project("c-only"),
        "root",
        &[
            "--json",
            "--system",
            "meson",
            "--only",
            "gcc-threaded-release",
            "--only",
            "clang-sequential-debug",
        ],
        None,
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`languages`: c from the project's meson.build"),
        "{err}"
    );
    let r = json_of(&o);
    assert_eq!(variants(&r).len(), 2, "{r}");
    for v in variants(&r) {
        assert_eq!(v["status"], "passed", "{v}");
        assert_eq!(v["tests_from"], "meson-testlog", "{v}");
        // Meson >= 1.2 names a test `project:test`, older Meson `test`.
        let mut t: Vec<(String, String)> = tests_of(v)
            .into_iter()
            .map(|(n, s)| (n.strip_prefix("conly:").unwrap_or(&n).to_string(), s))
            .collect();
        t.sort();
        assert_eq!(
            t,
            [
                ("ddot1000", "passed"),
                ("ddot3", "passed"),
                ("threads", "passed")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let log = env
            .path()
            .join("root")
            .join(step(v, "test")["log"].as_str().unwrap());
        let testlog = log
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("build/meson-logs/testlog.json");
        assert!(testlog.is_file(), "{}", testlog.display());
    }
}
