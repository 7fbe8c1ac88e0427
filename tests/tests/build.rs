//! `cfgmx build` end to end on the real tiny-blas project (C + OpenBLAS, OpenMP when the
//! variant asks): gcc/clang x sequential/threaded x debug/release, real cmake, ninja, ctest.

use cfgmx_tests::{copy_project, explain, step, variants, MatrixDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The gcc/clang x sequential/threaded x debug/release matrix the generate tests use too.
fn matrix() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("matrices/gcc-clang.toml"))
        .unwrap()
}

const BROKEN: &str = r#"
[[include]]
compiler = "gcc"
blas = "sequential"
build = "release"
flags = "broken"
[values.flags.broken]
cflags = ["-DCFGMX_BROKEN_BUILD"]
"#;

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("projects/omp-blas")
}

/// The comparable part of a run: per variant, everything but times and paths.
fn table(v: &Value) -> Vec<String> {
    let mut t: Vec<String> = variants(v)
        .iter()
        .map(|x| {
            let st = |n: &str| step(x, n)["status"].as_str().unwrap_or("").to_string();
            format!(
                "{} {} {} {} {} {} {}/{}",
                x["name"],
                x["hash"],
                x["status"],
                st("configure"),
                st("build"),
                st("test"),
                x["tests_passed"],
                x["tests_failed"]
            )
        })
        .collect();
    t.sort();
    t
}

#[test]
fn builds_eight_variants_shards_merge_skips_unchanged_and_rebuilds_touched() {
    let env = MatrixDir::new(&matrix());
    // A copy of the project, so touching a file does not disturb other tests.
    let src = env.path().join("src");
    copy_project(&src);

    // Two shards on one root: together every variant exactly once.
    let (o1, s1) = env.build_json(&src, "root", &["--shard", "1/2"]);
    assert_eq!(o1.status.code(), Some(0), "{}", explain(&o1));
    let (o2, s2) = env.build_json(&src, "root", &["--shard", "2/2"]);
    assert_eq!(o2.status.code(), Some(0), "{}", explain(&o2));
    let mut names: Vec<&str> = variants(&s1)
        .iter()
        .chain(variants(&s2))
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!((before, names.len()), (8, 8), "{names:?}");
    std::fs::write(env.path().join("s1.json"), &o1.stdout).unwrap();
    std::fs::write(env.path().join("s2.json"), &o2.stdout).unwrap();
    let m = env
        .cmd(&[
            "report",
            "merge",
            "s1.json",
            "s2.json",
            "--json",
            "--junit",
            "merged.xml",
        ])
        .output()
        .unwrap();
    assert_eq!(m.status.code(), Some(0), "{}", explain(&m));
    let merged: Value = serde_json::from_slice(&m.stdout).unwrap();

    // A full run (forced, so it really builds) has the same table as the merged shards.
    let (o, full) = env.build_json(
        &src,
        "root",
        &["--force", "--junit", "junit.xml", "--html", "report.html"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(table(&merged), table(&full));
    for v in variants(&full) {
        assert_eq!(v["status"], "passed", "{v}");
        assert_eq!(v["tests_passed"], 2, "{v}");
        let mut names: Vec<&str> = v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["dgemm", "info"], "{v}");
        for s in ["configure", "build", "test"] {
            let log = env
                .path()
                .join("root")
                .join(step(v, s)["log"].as_str().unwrap());
            assert!(log.is_file(), "{} missing", log.display());
        }
    }
    // Tests ran with the thread count recorded for the variant (the matrix's 2 when threaded),
    // the BLAS's own variable included.
    for v in variants(&full) {
        let log = std::fs::read_to_string(
            env.path()
                .join("root")
                .join(step(v, "test")["log"].as_str().unwrap()),
        )
        .unwrap();
        let first = log.lines().next().unwrap_or("");
        let omp: usize = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix("OMP_NUM_THREADS="))
            .unwrap_or_else(|| panic!("no OMP_NUM_THREADS in `{first}`"))
            .parse()
            .unwrap();
        let threaded = v["name"].as_str().unwrap().contains("threaded");
        assert_eq!(omp, if threaded { 2 } else { 1 }, "{first}");
        assert_eq!(v["threads"], omp, "{v}");
        // Whatever thread variable the variant's BLAS build reads (cfgmx env says which) is
        // capped too: a pthread OpenBLAS ignores OMP_NUM_THREADS.
        let script = env
            .cmd(&["env", v["hash"].as_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(script.status.code(), Some(0), "{}", explain(&script));
        let script = String::from_utf8_lossy(&script.stdout);
        for var in [
            "OPENBLAS_NUM_THREADS",
            "BLIS_NUM_THREADS",
            "MKL_NUM_THREADS",
        ] {
            if script.contains(var) {
                assert!(
                    first.contains(&format!("{var}=")),
                    "{var} uncapped: {first}"
                );
            }
        }
    }

    check_junit(&env.path().join("junit.xml"), 8, &["dgemm", "info"]);
    check_junit(&env.path().join("merged.xml"), 8, &["dgemm", "info"]);
    check_html(&env.path().join("report.html"));

    // No change: nothing is rebuilt, and every variant is a cached pass in every report: a CI
    // dashboard reading the JUnit file must see passes, not "nothing was tested".
    let t = Instant::now();
    let (o, again) = env.build_json(
        &src,
        "root",
        &["--junit", "cached.xml", "--html", "cached.html"],
    );
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(variants(&again).len(), 8);
    for v in variants(&again) {
        assert_eq!(v["status"], "cached", "{v}");
        assert_eq!(v["reason"], "unchanged since it passed", "{v}");
    }
    eprintln!("no-change run took {took:?}");
    check_junit(&env.path().join("cached.xml"), 8, &["dgemm", "info"]);
    let xml = std::fs::read_to_string(env.path().join("cached.xml")).unwrap();
    assert!(!xml.contains("<skipped"), "{xml}");
    assert_eq!(
        xml.matches("<property name=\"cached\" value=\"true\"/>")
            .count(),
        8,
        "{xml}"
    );
    let html = std::fs::read_to_string(env.path().join("cached.html")).unwrap();
    assert!(html.contains("8 passed (8 cached)</span>"), "{html}");
    assert_eq!(html.matches("class=\"cell cached\"").count(), 8, "{html}");
    let o = env.build_cmd(&src, "root", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.matches("passed (cached)").count(), 8, "{table}");
    assert!(
        table.contains("\n8 passed (8 cached), 0 failed in "),
        "{table}"
    );

    // Touch one source: every variant rebuilds and retests in its reused build dir.
    std::thread::sleep(Duration::from_millis(20));
    let f = src.join("info.c");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, format!("{text}\n")).unwrap();
    let (o, touched) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    for v in variants(&touched) {
        assert_eq!(v["status"], "passed", "{v}");
        assert_eq!(step(v, "configure")["command"], "(build dir reused)", "{v}");
        let blog = std::fs::read_to_string(
            env.path()
                .join("root")
                .join(step(v, "build")["log"].as_str().unwrap()),
        )
        .unwrap();
        assert!(blog.contains("info.c"), "info.c not recompiled:\n{blog}");
        assert!(
            !blog.contains("dgemm_check.c"),
            "dgemm_check.c needlessly recompiled:\n{blog}"
        );
    }

    // The lock file written by the build answers `env` and `reproduce` by hash.
    let hash = variants(&full)[0]["hash"].as_str().unwrap()[..10].to_string();
    let e = env.cmd(&["env", &hash]).output().unwrap();
    assert_eq!(e.status.code(), Some(0), "{}", explain(&e));
    let script = String::from_utf8_lossy(&e.stdout);
    // the env template's script: the compiler's path, and the variant it is
    assert!(
        script.contains("export CC='/") || script.contains("export CC=/"),
        "{script}"
    );
    assert!(script.contains("export CFGMX_HASH="), "{script}");
    let r = env
        .cmd(&["reproduce", &hash, "--build-root", "repro"])
        .arg("--source")
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", explain(&r));
    let built = std::fs::read_dir(env.path().join("repro")).unwrap().count();
    assert!(built >= 1);
}

/// Each variant's suite: configure, build, then one case per test the project ran.
fn check_junit(path: &Path, variants: usize, tests: &[&str]) {
    // Parse with a real XML parser and check the JUnit structure CI systems read.
    let script = format!(
        r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse({path:?}).getroot()
assert root.tag == "testsuites", root.tag
suites = root.findall("testsuite")
assert len(suites) == {variants}, len(suites)
for s in suites:
    cases = s.findall("testcase")
    names = [c.get("name") for c in cases]
    assert names[:2] == ["configure", "build"] and sorted(names[2:]) == {tests:?}, names
    assert int(s.get("tests")) == len(cases)
    for c in cases:
        assert c.get("classname") and c.get("time") is not None
print("ok")
"#,
        path = path.display().to_string(),
        tests = tests.iter().map(|t| t.to_string()).collect::<Vec<_>>()
    );
    cfgmx_tests::python_ok(&script, "");
}

fn check_html(html: &Path) {
    let text = std::fs::read_to_string(html).unwrap();
    assert!(text.contains("<table class=\"grid\">"));
    assert_eq!(text.matches("class=\"cell passed\"").count(), 8);
    cfgmx_tests::screenshot(html);
}

#[test]
fn a_broken_flag_fails_its_variant_alone_and_the_log_says_why() {
    let env = MatrixDir::new(&format!("{}{BROKEN}", matrix()));
    let (o, r) = env.build_json(&project(), "root", &["--only", "gcc-sequential"]);
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let vs = variants(&r);
    assert_eq!(vs.len(), 2);
    for v in vs {
        let broken = v["name"] == "gcc-sequential-release-broken";
        assert_eq!(v["status"], if broken { "failed" } else { "passed" }, "{v}");
        if broken {
            assert_eq!(step(v, "configure")["status"], "passed", "{v}");
            let b = step(v, "build");
            // The row says which step failed and its key line (the message's first line).
            assert_eq!(v["failed_step"], "build", "{v}");
            let first = b["message"]
                .as_str()
                .unwrap()
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap();
            assert_eq!(v["reason"], first, "{v}");
            let log =
                std::fs::read_to_string(env.path().join("root").join(b["log"].as_str().unwrap()))
                    .unwrap();
            assert!(log.contains("this variant's flags break"), "{log}");
            assert!(
                b["message"]
                    .as_str()
                    .unwrap()
                    .contains("this variant's flags break"),
                "{b}"
            );
            assert_eq!(step(v, "test")["status"], "not_run");
        }
    }
}

/// --fail-fast: a variant queued after the first failure is `not_started` with the reason, and
/// carries no steps (an old record's "ok ok ok" would claim a build this run never did).
#[test]
fn fail_fast_leaves_the_rest_not_started() {
    let m = format!("{}{BROKEN}", matrix()).replace("threads = 2", "threads = 1");
    let env = MatrixDir::new(&m);
    // One core: the broken variant (first in the queue) has failed before the next starts.
    let o = env
        .cmd(&[
            "build",
            "m.toml",
            "-j",
            "1",
            "--build-root",
            "root",
            "--fail-fast",
            "--only",
            "gcc-*-release",
            "--json",
        ])
        .arg("--source")
        .arg(project())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let st: Vec<(&str, &str)> = variants(&r)
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        st,
        [
            ("gcc-sequential-release-broken", "failed"),
            ("gcc-threaded-release", "not_started")
        ],
        "{r}"
    );
    let ns = &variants(&r)[1];
    assert_eq!(
        ns["reason"], "--fail-fast: an earlier variant failed",
        "{ns}"
    );
    assert_eq!(ns["steps"], serde_json::json!([]), "{ns}");
}

/// A flag no compiler accepts is caught by the variant's link test before anything is built:
/// the variant is unavailable here with the compiler's own line, and the others build.
#[test]
fn a_flag_the_compiler_rejects_makes_its_variant_unavailable_before_building() {
    let bad = BROKEN.replace("-DCFGMX_BROKEN_BUILD", "-fno-such-flag-cfgmx");
    let env = MatrixDir::new(&format!("{}{bad}", matrix()));
    let (o, r) = env.build_json(&project(), "root", &["--only", "gcc-sequential"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let vs = variants(&r);
    // --only gcc-sequential: the debug variant and the broken release one (the include adds
    // its flag to the release combination).
    assert_eq!(vs.len(), 2, "{r}");
    for v in vs {
        if v["name"] == "gcc-sequential-release-broken" {
            // Not built, but still a row, with the compiler's own line as the reason.
            assert_eq!(v["status"], "unavailable", "{v}");
            let why = v["reason"].as_str().unwrap();
            assert!(
                why.contains("link test failed") && why.contains("-fno-such-flag-cfgmx"),
                "{v}"
            );
            assert_eq!(v["steps"], serde_json::json!([]), "{v}");
        } else {
            assert_eq!(v["status"], "passed", "{v}");
        }
    }
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("gcc-sequential-release-broken cannot be built here"))
        .unwrap_or_else(|| panic!("no note for the broken variant:\n{err}"));
    assert!(
        line.contains("link test failed") && line.contains("-fno-such-flag-cfgmx"),
        "{line}"
    );
}

/// A variant whose compiler is not on this machine is not built but keeps its row, with the
/// reason, in the table, JSON, JUnit (a skipped case saying why) and the HTML grid.
#[test]
fn a_variant_that_cannot_be_built_here_has_a_row_in_every_report() {
    let env = MatrixDir::new(
        r#"
name = "with-icc"
languages = ["c", "fortran"]
[axes]
compiler = ["gcc", "icc"]
blas = ["sequential"]
build = ["release"]
[blas]
prefer = ["openblas"]
"#,
    );
    let (o, r) = env.build_json(
        &project(),
        "root",
        &["--junit", "j.xml", "--html", "r.html"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let vs = variants(&r);
    let st: Vec<(&str, &str)> = vs
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        st,
        [
            ("gcc-sequential-release", "passed"),
            ("icc-sequential-release", "unavailable")
        ],
        "{r}"
    );
    let why = vs[1]["reason"].as_str().unwrap().to_string();
    assert!(
        why.contains("icc"),
        "the reason names what is missing: {why}"
    );
    assert_eq!(vs[1]["compiler"], "icc", "{r}");

    let xml = std::fs::read_to_string(env.path().join("j.xml")).unwrap();
    let script = format!(
        r#"
import xml.etree.ElementTree as ET
root = ET.parse({path:?}).getroot()
s = [s for s in root.findall("testsuite") if s.get("name") == "icc-sequential-release"]
assert len(s) == 1, [x.get("name") for x in root.findall("testsuite")]
cases = s[0].findall("testcase")
assert len(cases) == 1, len(cases)
sk = cases[0].find("skipped")
assert sk is not None and sk.get("message") == "unavailable: " + {why:?}, sk.attrib if sk is not None else None
g = [s for s in root.findall("testsuite") if s.get("name") == "gcc-sequential-release"][0]
assert all(c.find("skipped") is None and c.find("failure") is None for c in g.findall("testcase"))
print("ok")
"#,
        path = env.path().join("j.xml").display().to_string()
    );
    cfgmx_tests::python_ok(&script, &xml);

    let html = std::fs::read_to_string(env.path().join("r.html")).unwrap();
    assert!(html.contains("1 passed</span>"), "{html}");
    assert!(html.contains("1 unavailable</span>"), "{html}");
    assert_eq!(
        html.matches("class=\"cell unavailable\"").count(),
        1,
        "{html}"
    );
    assert!(html.contains("<th>icc</th>"), "{html}");
    let why_html = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    assert!(html.contains(&why_html), "{html}");

    // The table (a second run: cached) has the row and says why under it.
    let o = env.build_cmd(&project(), "root", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("icc-sequential-release "))
        .unwrap_or_else(|| panic!("no row:\n{table}"));
    assert!(row.contains("unavailable"), "{table}");
    assert!(
        table.contains(&format!("unavailable icc-sequential-release: {why}")),
        "{table}"
    );
    assert!(
        table.contains("1 passed (1 cached), 0 failed, 1 unavailable in "),
        "{table}"
    );
}

/// No test ran: its own status, never "passed", and exit 1 unless --allow-no-tests.
#[test]
fn a_project_without_tests_is_reported_as_ran_no_test() {
    let env = MatrixDir::new(&matrix());
    let src = env.path().join("notests");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(p C)\nadd_executable(hello hello.c)\n",
    )
    .unwrap();
    std::fs::write(src.join("hello.c"), "int main(void) { return 0; }\n").unwrap();
    let (o, r) = env.build_json(&src, "root", &["--only", "gcc-sequential-debug"]);
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ran no test") && err.contains("--allow-no-tests"),
        "{err}"
    );
    let v = &variants(&r)[0];
    assert_eq!(v["status"], "no_tests", "{v}");
    assert_eq!(step(v, "test")["status"], "no_tests", "{v}");
    assert_eq!(
        (&v["tests_passed"], &v["tests_failed"]),
        (&0.into(), &0.into())
    );
    // The table says so too; the variant is not taken as passed and built again next time.
    let o = env
        .build_cmd(&src, "root", &["--only", "gcc-sequential-debug"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("gcc-sequential-debug"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("no tests") && !row.contains("passed"),
        "{table}"
    );
    assert!(table.contains("0 passed, 0 failed, 1 no tests"), "{table}");
    let (o, r) = env.build_json(
        &src,
        "root",
        &["--only", "gcc-sequential-debug", "--allow-no-tests"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(variants(&r)[0]["status"], "no_tests");
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Starts `cfgmx build` of the project into `root` (stdout discarded) and returns it once a
/// build step runs: once a process other than cfgmx itself names the build root.
fn start_until_a_step_runs(env: &MatrixDir, root: &str, extra: &[&str], stderr: Stdio) -> Child {
    let child = env
        .build_cmd(&project(), root, extra)
        // Kept for a test to read the report the build prints when it is stopped.
        .stdout(std::fs::File::create(env.path().join(format!("{root}.stdout"))).unwrap())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let root = env.path().join(root).display().to_string();
    let t = Instant::now();
    while !processes_mentioning(&root)
        .iter()
        .any(|p| !p.contains("cfgmx build"))
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no build step started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn sigint_stops_every_child_and_a_second_build_on_the_root_is_refused() {
    let env = MatrixDir::new(&matrix());
    let root = env.path().join("root");
    // Started, and some variant is configuring or building.
    let mut child = start_until_a_step_runs(&env, "root", &["--force", "--json"], Stdio::piped());
    // A second build on the same root refuses with a clear message.
    let second = env.build_cmd(&project(), "root", &[]).output().unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", explain(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another cfgmx build is using the build root"),
        "{err}"
    );
    // ... and names the flag that waits instead.
    assert!(err.contains("`--wait` waits for it"), "{err}");

    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    let left = processes_mentioning(&root.display().to_string());
    assert!(left.is_empty(), "still running after SIGINT: {left:?}");
    // The report printed on the way out has every variant: those stopped mid-build
    // `interrupted`, those never reached `not_started`, each with why and no step results.
    let stopped: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("root.stdout")).unwrap()).unwrap();
    assert_eq!(variants(&stopped).len(), 8, "{stopped}");
    let mut not_run = 0;
    for v in variants(&stopped) {
        match v["status"].as_str().unwrap() {
            "passed" => {}
            "interrupted" | "not_started" => {
                not_run += 1;
                assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
                assert_eq!(v["steps"], serde_json::json!([]), "{v}");
            }
            other => panic!("{other} after SIGINT: {v}"),
        }
    }
    assert!(not_run > 0, "SIGINT came while a step ran: {stopped}");

    // The store reads back fine and the build completes.
    let (o, r) = env.build_json(&project(), "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(variants(&r).len(), 8);
}

/// `--wait`: a second build on a root another build holds waits for it, then runs, and finds
/// what the first recorded (its variants unchanged since they passed).
#[test]
fn a_second_build_with_wait_runs_after_the_first() {
    let env = MatrixDir::new(&matrix());
    let only = ["--only", "gcc-sequential-*"];
    // Started, and the first holds the root and is running a build step.
    let mut first = start_until_a_step_runs(&env, "root", &only, Stdio::null());
    let second = env
        .build_cmd(&project(), "root", &only)
        .arg("--wait")
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first build ended before the second started: the test proves nothing"
    );
    let first_status = first.wait().unwrap();
    let first_done = Instant::now();
    assert!(first_status.success(), "first build: {first_status:?}");
    let o = second.wait_with_output().unwrap();
    assert!(
        first_done.elapsed() < Duration::from_secs(60),
        "the second build took long after the first"
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let vs = variants(&r);
    assert_eq!(vs.len(), 2, "{r}");
    for v in vs {
        // Cached as passed and unchanged: the second read the store the first wrote, so it
        // ran after it, not beside it.
        assert_eq!(v["status"], "cached", "{v}");
        assert_eq!(v["reason"], "unchanged since it passed", "{v}");
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn expand_lock_then_show_and_env_by_concrete_hash() {
    let env = MatrixDir::new(&matrix());
    let o = env.cmd(&["expand", "m.toml", "--lock"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("cfgmx.lock")).unwrap())
            .unwrap();
    let vars = lock["matrices"]["gcc-clang"]["variants"]
        .as_object()
        .unwrap();
    assert_eq!(vars.len(), 8);
    let (hash, job) = vars
        .iter()
        .find(|(_, j)| j["name"] == "clang-threaded-debug")
        .unwrap();
    // The concrete hash is not a spec hash, so only the lock file knows it.
    let s = env
        .cmd(&["show", &hash[..12], "m.toml", "--json"])
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(0), "{}", explain(&s));
    let shown: Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(&shown, job);
    let e = env.cmd(&["env", &hash[..12]]).output().unwrap();
    let script = String::from_utf8_lossy(&e.stdout);
    assert!(script.contains("-fopenmp=libomp"), "{script}");
    // The script is valid sh and sets what it says.
    let check = Command::new("sh")
        .args(["-c", &format!("{script}\necho \"$CC|$CFLAGS\"")])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        out.contains("clang|") && out.contains("-fopenmp=libomp"),
        "{out}"
    );
    let bad = env.cmd(&["env", "zzzz-no-such"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", explain(&bad));
}

#[test]
fn meson_builds_the_same_variants_in_build_dirs_of_their_own() {
    let env = MatrixDir::new(&matrix());
    let only = [
        "--only",
        "gcc-threaded-release",
        "--only",
        "clang-sequential-debug",
    ];
    let (o, cm) = env.build_json(&project(), "root", &only);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let mut args = only.to_vec();
    args.extend(["--system", "meson"]);
    let (o, me) = env.build_json(&project(), "root", &args);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    for (a, b) in variants(&cm).iter().zip(variants(&me)) {
        assert_eq!(a["hash"], b["hash"]);
        assert_eq!(b["status"], "passed", "{b}");
        assert_eq!(b["tests_passed"], 2, "{b}");
        // Per test, from Meson's own record of the run.
        assert_eq!(b["tests_from"], "meson-testlog", "{b}");
        assert_eq!(a["tests_from"], "ctest-junit", "{a}");
        let names = |v: &Value| {
            let mut n: Vec<String> = v["tests"]
                .as_array()
                .unwrap()
                .iter()
                // Meson >= 1.2 names a test `project:test`; ctest and older Meson `test`.
                .map(|t| {
                    let n = t["name"].as_str().unwrap();
                    format!(
                        "{} {}",
                        n.strip_prefix("ompblas:").unwrap_or(n),
                        t["status"]
                    )
                })
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(a), names(b));
        assert_eq!(names(b), ["dgemm \"passed\"", "info \"passed\""]);
        assert!(
            step(b, "test")["command"]
                .as_str()
                .unwrap()
                .contains("meson test"),
            "{b}"
        );
        assert_ne!(step(a, "build")["log"], step(b, "build")["log"]);
    }
}

#[test]
fn a_project_writing_into_its_source_is_detected_and_copy_source_avoids_it() {
    let env = MatrixDir::new(&matrix());
    let src = env.path().join("writer");
    std::fs::create_dir(&src).unwrap();
    // Configure writes a header into the source tree, as some real projects do.
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(w C)\n\
         file(WRITE ${CMAKE_SOURCE_DIR}/config.h \"#define CC \\\"${CMAKE_C_COMPILER}\\\"\\n\")\n\
         add_executable(w w.c)\nenable_testing()\nadd_test(NAME w COMMAND w)\n",
    )
    .unwrap();
    std::fs::write(
        src.join("w.c"),
        "#include \"config.h\"\nint main(void) { return CC[0] != '/'; }\n",
    )
    .unwrap();
    let only = [
        "--only",
        "gcc-sequential-debug",
        "--only",
        "clang-sequential-debug",
    ];
    // The first run builds from copies until it knows, and the copy tells it.
    let o = env.build_cmd(&src, "root", &only).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("wrote into its source tree")
            && err.contains("(config.h)")
            && err.contains("--copy-source"),
        "{err}"
    );
    assert!(
        !src.join("config.h").exists(),
        "the original source tree was written to"
    );

    // Asked for copies, cfgmx does not say it again; the tree stays clean.
    let mut args = only.to_vec();
    args.push("--copy-source");
    let o = env.build_cmd(&src, "root2", &args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("wrote into its source tree"), "{err}");
    assert!(
        !src.join("config.h").exists(),
        "the original source tree was written to"
    );
}

/// The lines printed under a variant's own line when it finishes: what follows its FAILED (or
/// TIMED OUT) line on stderr, up to the next variant's line.
fn under<'a>(err: &'a str, name: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.contains(&format!("FAILED {name} ")) || l.contains(&format!("TIMED OUT {name} "))
        })
        .unwrap_or_else(|| panic!("no FAILED line for {name}:\n{err}"));
    lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("          "))
        .map(|l| l.trim())
        .collect()
}

/// A failure's key lines come under the failed variant as it finishes, as cargo and nextest
/// print them: the step and how it ended (without the command line), the compiler's own error
/// line, and a log path that opens from where the user stands. A cold probe says it runs.
#[test]
fn a_failed_variant_prints_its_key_line_under_it() {
    let env = MatrixDir::new(&format!("{}{BROKEN}", matrix()));
    let o = env
        .build_cmd(&project(), "root", &["--only", "gcc-sequential-release"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.find("probing this machine") < err.find("cfgmx build:"),
        "no probe line before the build:\n{err}"
    );
    let lines = under(&err, "gcc-sequential-release-broken");
    assert_eq!(lines.len(), 2, "{lines:#?}\n{err}");
    // the step and the compiler's own error line, not the command that ran it
    assert!(
        lines[0].starts_with("build: ")
            && lines[0].contains("error")
            && lines[0].contains("this variant's flags break")
            && !lines[0].contains('`'),
        "{lines:#?}"
    );
    let log = lines[1]
        .strip_prefix("log: root/")
        .unwrap_or_else(|| panic!("not a path from here: {lines:#?}"));
    let text = std::fs::read_to_string(env.path().join("root").join(log)).unwrap();
    assert!(text.contains("this variant's flags break"), "{text}");
}

/// A step that runs past --step-timeout says so under the variant ("timed out after N s"), not
/// only in the JSON; a timeout's log tail is not passed off as its cause.
#[test]
fn a_timed_out_step_says_so_under_its_variant() {
    let env = MatrixDir::new(
        r#"
name = "slow"
languages = ["c"]
[axes]
compiler = ["gcc"]
blas = ["sequential"]
build = ["debug"]
"#,
    );
    let src = env.path().join("slow");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(slow C)\nenable_testing()\nadd_executable(hello hello.c)\nadd_test(NAME quick COMMAND hello)\nadd_test(NAME slow COMMAND sleep 60)\n",
    )
    .unwrap();
    std::fs::write(src.join("hello.c"), "int main(void) { return 0; }\n").unwrap();
    let o = env
        .build_cmd(&src, "root", &["--step-timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines = under(&err, "gcc-sequential-debug");
    assert_eq!(lines.len(), 2, "{lines:#?}\n{err}");
    assert!(
        lines[0].starts_with("test: timed out after 2 s"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("log: root/") && lines[1].ends_with("/logs/test.log"),
        "{lines:#?}"
    );
}

/// A usage error found after the probe (too few cores for the matrix's threads) comes alone:
/// no `note:` about unbuildable variants before it.
#[test]
fn a_usage_error_is_not_buried_under_notes() {
    let env = MatrixDir::new(&format!(
        "{}\n[[include]]\ncompiler = \"icc\"\nblas = \"threaded\"\nbuild = \"debug\"\n",
        matrix()
    ));
    let o = env
        .cmd(&["build", "m.toml", "-j", "1", "--build-root", "root"])
        .arg("--source")
        .arg(project())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("raise -j"), "{err}");
    assert!(!err.contains("note:"), "{err}");
}
