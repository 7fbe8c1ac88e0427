//! Runtime axes (`[runtime]`): a variant is built once and its tests run once per runtime
//! point, through `cfgmx build` on a real project (`tests/projects/rt-threads`: one C test
//! that appends the `OMP_NUM_THREADS` it was given, its OpenMP team size and `OMP_PROC_BIND`
//! to `seen.txt` in its build dir, and fails when team and count disagree). What a user relies
//! on: every point's run sees its own values, a build is never repeated for a point, a rerun
//! skips the points that passed, a source change rebuilds each variant once and re-tests every
//! point, and every report has a row (a JUnit suite, an HTML sub-cell) per point.
//!
//! Cost: 8 + 8 builds of a one-file C project with gcc and clang and about 40 ctest runs
//! (about 60 s on 2 shared cores), 5 more small builds (one with Meson; two whose test sleeps
//! 1.5 s per point), one probe per test.

use cfgmx_tests::{explain, files_under, repo, variants, write_c_project, MatrixDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project copied into the matrix's directory, so a test may edit its source.
fn project(dir: &Path) -> PathBuf {
    copy_project(dir, false)
}

/// The project copied, for Meson without its CMakeLists.txt (CMake wins when both exist).
fn copy_project(dir: &Path, meson: bool) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for e in std::fs::read_dir(repo().join("tests/projects/rt-threads")).unwrap() {
        let e = e.unwrap();
        if meson && e.file_name() == "CMakeLists.txt" {
            continue;
        }
        std::fs::copy(e.path(), src.join(e.file_name())).unwrap();
    }
    src
}

/// Per variant directory of the build root (its short hash), the lines its test runs wrote.
fn seen(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let f = e.path().join("build").join("seen.txt");
        if let Ok(t) = std::fs::read_to_string(&f) {
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            lines.sort();
            out.insert(e.file_name().to_string_lossy().to_string(), lines);
        }
    }
    out
}

/// Files named `name` (or starting with it, for `test-`) under each variant's `logs/`.
fn logs(root: &Path, prefix: &str) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|p| {
            p.parent().is_some_and(|d| d.ends_with("logs"))
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}

/// (variant name, runtime point label, status, threads) of each row of a `--json` report.
fn rows(v: &Value) -> Vec<(String, String, String, u64)> {
    variants(v)
        .iter()
        .map(|x| {
            let point = x["runtime"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            (
                x["name"].as_str().unwrap().to_string(),
                point,
                x["status"].as_str().unwrap().to_string(),
                x["threads"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

const EIGHT: &str = r#"name = "rt"
languages = ["c"]

[axes]
compiler = ["gcc", "clang"]
blas = ["none"]
openmp = ["on", "off"]
build = ["debug", "release"]

[runtime]
threads = [1, 2]
"#;

#[test]
fn threads_axis_builds_each_variant_once_and_tests_each_point() {
    let env = MatrixDir::new(EIGHT);
    let src = project(env.path());
    let root = env.path().join("root");
    let (o, v) = env.build_json(
        &src,
        "root",
        &["--junit", "junit.xml", "--html", "grid.html"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));

    // 16 rows: each of the 8 variants at threads=1 and threads=2, passed, with that count.
    let r = rows(&v);
    assert_eq!(r.len(), 16, "{r:#?}");
    let names: std::collections::BTreeSet<&str> = r.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    for (name, point, status, threads) in &r {
        assert_eq!(status, "passed", "{name} [{point}]");
        assert_eq!(point, &format!("threads={threads}"), "{name}");
    }
    // 8 builds (a build log per variant), 16 test runs (a test log per point).
    assert_eq!(logs(&root, "build.log").len(), 8);
    assert_eq!(logs(&root, "test-").len(), 16);
    // Each variant's test ran once at 1 and once at 2 threads, and saw that count; built with
    // OpenMP, its team had that many threads.
    let first = seen(&root);
    assert_eq!(first.len(), 8, "{first:#?}");
    for (dir, lines) in &first {
        assert_eq!(lines.len(), 2, "{dir}: {lines:?}");
        assert!(
            lines[0].starts_with("OMP_NUM_THREADS=1 "),
            "{dir}: {lines:?}"
        );
        assert!(
            lines[1].starts_with("OMP_NUM_THREADS=2 "),
            "{dir}: {lines:?}"
        );
        let openmp = !lines[0].contains("team=0");
        if openmp {
            assert!(
                lines[0].contains("team=1 ") && lines[1].contains("team=2 "),
                "{dir}: {lines:?}"
            );
        }
    }
    assert_eq!(
        first.values().filter(|l| !l[0].contains("team=0")).count(),
        4,
        "the openmp=on variants run OpenMP teams: {first:#?}"
    );

    // JUnit: valid against the schema CI servers read; a suite per variant and point, each
    // with its runtime values as properties.
    let xsd = repo().join("tests/fixtures/junit/junit.xsd");
    let x = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(env.path().join("junit.xml"))
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", explain(&x));
    let junit = std::fs::read_to_string(env.path().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 16, "{junit}");
    for (name, point, _, _) in &r {
        assert!(
            junit.contains(&format!("name=\"{name} [{point}]\"")),
            "{name} [{point}]"
        );
    }
    assert_eq!(
        junit.matches("<property name=\"runtime.threads\"").count(),
        16
    );
    // HTML: each grid cell holds its variants' points as sub-cells.
    let html = std::fs::read_to_string(env.path().join("grid.html")).unwrap();
    assert_eq!(
        html.matches("<div class=\"sub passed\">").count(),
        16,
        "{html}"
    );
    assert!(html.contains("gcc-none-on-debug [threads=2]"));

    // Rerun: all 16 points skipped, nothing built or run.
    let (o, v) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r = rows(&v);
    assert_eq!(r.len(), 16);
    assert!(r.iter().all(|x| x.2 == "cached"), "{r:#?}");
    assert_eq!(seen(&root), first, "a cached point ran its test");

    // A source change: each variant rebuilt once, every point tested again.
    for p in logs(&root, "build.log") {
        std::fs::remove_file(root.join(p)).unwrap();
    }
    let c = src.join("seen.c");
    let text = std::fs::read_to_string(&c).unwrap();
    std::fs::write(&c, format!("{text}/* changed */\n")).unwrap();
    let (o, v) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r = rows(&v);
    assert_eq!(r.len(), 16);
    assert!(r.iter().all(|x| x.2 == "passed"), "{r:#?}");
    assert_eq!(logs(&root, "build.log").len(), 8, "each variant built once");
    let again = seen(&root);
    for (dir, lines) in &again {
        assert_eq!(lines.len(), 4, "{dir}: every point tested again: {lines:?}");
    }
}

/// Environment axes with include and exclude, one exclude naming a build axis: each variant
/// tests exactly its points, each run seeing its variables.
#[test]
fn environment_axes_follow_include_and_exclude() {
    let m = r#"name = "rtenv"
languages = ["c"]

[axes]
compiler = ["gcc"]
blas = ["none"]
openmp = ["on"]
build = ["debug", "release"]

[runtime]
threads = [1, 2]
OMP_PROC_BIND = ["close", "spread"]

[[runtime.exclude]]
threads = 1
OMP_PROC_BIND = "spread"

[[runtime.exclude]]
build = "release"
threads = 2

[[runtime.include]]
threads = 1
OMP_PROC_BIND = "master"
"#;
    let env = MatrixDir::new(m);
    let src = project(env.path());
    let (o, v) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let mut got: Vec<(String, String)> = rows(&v).into_iter().map(|x| (x.0, x.1)).collect();
    got.sort();
    let want = [
        ("gcc-none-on-debug", "threads=1 OMP_PROC_BIND=close"),
        ("gcc-none-on-debug", "threads=1 OMP_PROC_BIND=master"),
        ("gcc-none-on-debug", "threads=2 OMP_PROC_BIND=close"),
        ("gcc-none-on-debug", "threads=2 OMP_PROC_BIND=spread"),
        ("gcc-none-on-release", "threads=1 OMP_PROC_BIND=close"),
        ("gcc-none-on-release", "threads=1 OMP_PROC_BIND=master"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
    // What each run saw, per variant directory.
    let mut saw: Vec<Vec<String>> = seen(&env.path().join("root")).into_values().collect();
    saw.sort_by_key(Vec::len);
    assert_eq!(
        saw,
        [
            vec![
                "OMP_NUM_THREADS=1 team=1 OMP_PROC_BIND=close",
                "OMP_NUM_THREADS=1 team=1 OMP_PROC_BIND=master",
            ],
            vec![
                "OMP_NUM_THREADS=1 team=1 OMP_PROC_BIND=close",
                "OMP_NUM_THREADS=1 team=1 OMP_PROC_BIND=master",
                "OMP_NUM_THREADS=2 team=2 OMP_PROC_BIND=close",
                "OMP_NUM_THREADS=2 team=2 OMP_PROC_BIND=spread",
            ],
        ]
    );
}

/// Meson: the points of a variant run `meson test` in one build dir, each with its own
/// testlog (the first rebuilds what the tests need, the others do not run ninja beside it).
#[test]
fn meson_points_share_one_build_dir() {
    let m = "name = \"rtmeson\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nopenmp = [\"on\"]\nbuild = [\"debug\"]\n[runtime]\nthreads = [1, 2]\nOMP_PROC_BIND = [\"close\", \"spread\"]\n";
    let env = MatrixDir::new(m);
    let src = copy_project(env.path(), true);
    let (o, v) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r = rows(&v);
    assert_eq!(r.len(), 4, "{r:#?}");
    assert!(r.iter().all(|x| x.2 == "passed"), "{r:#?}");
    let root = env.path().join("root");
    let saw: Vec<Vec<String>> = seen(&root).into_values().collect();
    assert_eq!(
        saw,
        [vec![
            "OMP_NUM_THREADS=1 team=1 OMP_PROC_BIND=close",
            "OMP_NUM_THREADS=1 team=1 OMP_PROC_BIND=spread",
            "OMP_NUM_THREADS=2 team=2 OMP_PROC_BIND=close",
            "OMP_NUM_THREADS=2 team=2 OMP_PROC_BIND=spread",
        ]]
    );
    let testlogs = files_under(&root)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("testlog-") && n.ends_with(".json")
        })
        .count();
    assert_eq!(testlogs, 4);
}

/// The points of a variant test side by side when the budget has their cores, one after
/// the other when it does not: with 2 cores, two points of 1 thread each overlap, two of 2
/// threads each never do. The test records when it started and ended (ms) and sleeps 1.5 s.
#[test]
fn points_run_side_by_side_within_the_core_budget() {
    let main_c = r#"#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}
int main(void) {
    long long a = now();
    struct timespec d = {1, 500000000};
    nanosleep(&d, NULL);
    long long b = now();
    FILE *f = fopen("spans.txt", "a");
    if (!f) return 1;
    fprintf(f, "%lld %lld\n", a, b);
    return fclose(f) != 0;
}
"#;
    for (threads, overlap) in [(1, true), (2, false)] {
        let m = format!("name = \"rtpar\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"debug\"]\n[runtime]\nthreads = [{threads}]\nRT_POINT = [\"a\", \"b\"]\n");
        let env = MatrixDir::new(&m);
        let src = env.path().join("src");
        write_c_project(&src, "add_test(NAME span COMMAND t)\n", main_c);
        let (o, v) = env.build_json(&src, "root", &[]);
        assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
        assert_eq!(rows(&v).len(), 2);
        let spans: Vec<(i64, i64)> = files_under(&env.path().join("root"))
            .into_iter()
            .filter(|p| p.ends_with("build/spans.txt"))
            .flat_map(|p| {
                std::fs::read_to_string(env.path().join("root").join(p))
                    .unwrap()
                    .lines()
                    .map(|l| {
                        let (a, b) = l.split_once(' ').unwrap();
                        (a.parse().unwrap(), b.parse().unwrap())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(spans.len(), 2, "{spans:?}");
        let (x, y) = (spans[0], spans[1]);
        let overlaps = x.0 < y.1 && y.0 < x.1;
        assert_eq!(overlaps, overlap, "threads={threads}: {spans:?}");
    }
}

/// A Slurm task tests every runtime point of its variant: its allocation holds the widest
/// point's cores, even for variants that run no threads of their own.
#[test]
fn slurm_tasks_ask_for_the_widest_point() {
    for (runtime, want) in [("", "1"), ("[runtime]\nthreads = [1, 4]\n", "4")] {
        let m = format!("name = \"rtslurm\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"debug\"]\n{runtime}");
        let env = MatrixDir::new(&m);
        let o = env
            .cmd(&["generate", "m.toml", "-f", "slurm", "-o", "out"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", explain(&o));
        let text =
            std::fs::read_to_string(env.path().join("out/slurm/cfgmx-array.sbatch")).unwrap();
        assert!(
            text.contains(&format!("#SBATCH --cpus-per-task={want}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("-j \"${{SLURM_CPUS_PER_TASK:-{want}}}\"")),
            "{text}"
        );
    }
}

/// A point needing more threads than the cores is refused before anything is built or
/// written, at the value's place in the matrix, with what to do.
#[test]
fn threads_above_the_cores_are_refused_before_building() {
    for (threads, jobs, at, given) in [
        ("[1, 4096]", None, "m.toml:8:15", "this machine has"),
        ("[1, 2]", Some("1"), "m.toml:8:15", "-j 1 gives 1 core(s)"),
    ] {
        let m = format!(
            "name = \"rtbig\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"debug\"]\n[runtime]\nthreads = {threads}\n"
        );
        let env = MatrixDir::new(&m);
        let src = project(env.path());
        let before = files_under(env.path());
        let mut args = vec!["build", "m.toml", "--build-root", "root"];
        if let Some(j) = jobs {
            args.extend(["-j", j]);
        }
        let o = env.cmd(&args).arg("--source").arg(&src).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}", explain(&o));
        assert!(err.contains(at), "{}", explain(&o));
        assert!(
            err.contains("needs") && err.contains(given),
            "{}",
            explain(&o)
        );
        assert!(
            err.contains("lower it, or give more cores with -j"),
            "{err}"
        );
        assert_eq!(files_under(env.path()), before, "something was written");
    }
}

/// `cfgmx show` and `cfgmx reproduce` of a hash name its points; reproduce prints each
/// point's test command.
#[test]
fn show_and_reproduce_name_the_points() {
    let m = "name = \"rtshow\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"debug\"]\n[runtime]\nthreads = [1, 2]\nOMP_PROC_BIND = [\"close\"]\n";
    let env = MatrixDir::new(m);
    let src = project(env.path());
    let o = env.cmd(&["expand", "m.toml", "--lock"]).output().unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("cfgmx.lock")).unwrap())
            .unwrap();
    let hash = lock["matrices"]["rtshow"]["variants"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let short = &hash[..12];
    let o = env.cmd(&["show", short]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", explain(&o));
    assert!(
        out.contains("[threads=1 OMP_PROC_BIND=close] [threads=2 OMP_PROC_BIND=close]"),
        "{out}"
    );
    let o = env
        .cmd(&["reproduce", short, "--build-root", "r"])
        .arg("--source")
        .arg(&src)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", explain(&o));
    for t in ["1", "2"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("runtime [threads={t} ")))
            .unwrap_or_else(|| panic!("no line for threads={t}: {out}"));
        assert!(
            line.contains(&format!(
                "OMP_NUM_THREADS='{t}' OMP_PROC_BIND='close' ctest --test-dir"
            )),
            "{line}"
        );
    }
}
