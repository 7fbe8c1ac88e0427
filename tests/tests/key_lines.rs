//! Why a variant failed, wherever the user looks: a build where one variant fails to
//! configure, one to compile, one fails a test, one times out, some cannot be built here and
//! one passes. The key line (CMake's message, the compiler's error, the test's own words,
//! "timed out") is in the terminal, the JSON, the JUnit file and the HTML page, and the log
//! links of a report merged from shards built in two build roots all resolve.

use cfgmx_tests::{explain, variants, MatrixDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const MATRIX: &str = r#"name = "why"
languages = ["c"]
[axes]
compiler = ["gcc", "icc"]
blas = ["none"]
build = ["release"]
case = ["ok", "cfgfail", "buildfail", "testfail", "hang"]
[values.case.ok]
cmake = { CASE = "ok" }
[values.case.cfgfail]
cmake = { CASE = "cfgfail" }
[values.case.buildfail]
cmake = { CASE = "buildfail" }
[values.case.testfail]
cmake = { CASE = "testfail" }
[values.case.hang]
cmake = { CASE = "hang" }
"#;

const CMAKE: &str = r#"cmake_minimum_required(VERSION 3.20)
project(why C)
enable_testing()
if(CASE STREQUAL "cfgfail")
  message(FATAL_ERROR "the foo library is required\n  install libfoo-dev")
endif()
add_executable(t t.c)
if(CASE STREQUAL "buildfail")
  target_compile_definitions(t PRIVATE BREAK)
elseif(CASE STREQUAL "testfail")
  target_compile_definitions(t PRIVATE FAIL)
elseif(CASE STREQUAL "hang")
  target_compile_definitions(t PRIVATE HANG)
endif()
add_test(NAME sums COMMAND t)
"#;

const MAIN: &str = r#"#include <stdio.h>
#include <unistd.h>
int main(void) {
#ifdef BREAK
  return undeclared_thing;
#endif
#ifdef HANG
  sleep(100);
#endif
  puts("checking sums");
#ifdef FAIL
  puts("FAIL: sum is 3, expected 4");
  puts("cleaning up");
  return 1;
#endif
  return 0;
}
"#;

/// What each variant's reason must say (after its failing step).
fn expected() -> BTreeMap<&'static str, (&'static str, Option<&'static str>, &'static str)> {
    BTreeMap::from([
        ("gcc-none-release-ok", ("passed", None, "")),
        (
            "gcc-none-release-cfgfail",
            (
                "failed",
                Some("configure"),
                "CMake Error at CMakeLists.txt:5 (message): the foo library is required",
            ),
        ),
        (
            "gcc-none-release-buildfail",
            (
                "failed",
                Some("build"),
                "error: 'undeclared_thing' undeclared",
            ),
        ),
        (
            "gcc-none-release-testfail",
            ("failed", Some("test"), "sums: FAIL: sum is 3, expected 4"),
        ),
        (
            "gcc-none-release-hang",
            ("timed_out", Some("test"), "timed out after 3 s"),
        ),
    ])
}

fn build(env: &MatrixDir, root: &str, extra: &[&str]) -> (std::process::Output, Value) {
    let src = env.path().join("src");
    let mut args = vec![
        "build",
        "m.toml",
        "--source",
        src.to_str().unwrap(),
        "--build-root",
        root,
        "--step-timeout",
        "3",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = env.cmd(&args).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}", explain(&o)));
    (o, v)
}

fn check_json(report: &Value) {
    let by_name: BTreeMap<&str, &Value> = variants(report)
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    assert_eq!(by_name.len(), 10, "{report:#}");
    for (name, (status, step, key)) in expected() {
        let v = by_name[name];
        assert_eq!(v["status"], status, "{name}: {v:#}");
        assert_eq!(v["failed_step"].as_str(), step, "{name}: {v:#}");
        let reason = v["reason"].as_str().unwrap_or("");
        assert!(reason.contains(key), "{name}: `{key}` not in `{reason}`");
    }
    for case in ["ok", "cfgfail", "buildfail", "testfail", "hang"] {
        let v = by_name[format!("icc-none-release-{case}").as_str()];
        assert_eq!(v["status"], "unavailable", "{v:#}");
        assert!(v["reason"].as_str().unwrap().contains("icc"), "{v:#}");
    }
    // the failed test keeps its own last lines
    let t = &by_name["gcc-none-release-testfail"]["tests"][0];
    assert_eq!(t["status"], "failed", "{t:#}");
    assert!(
        t["output"].as_str().unwrap().contains("cleaning up"),
        "{t:#}"
    );
}

/// Every `href` of the page that is not an anchor names an existing file.
fn links_resolve(html: &Path) -> usize {
    let text = std::fs::read_to_string(html).unwrap();
    let dir = html.parent().unwrap();
    let mut n = 0;
    for part in text.split("href=\"").skip(1) {
        let href = &part[..part.find('"').unwrap()];
        if href.starts_with('#') {
            continue;
        }
        let href = href.replace("&amp;", "&");
        let path = match href.strip_prefix("file://") {
            Some(abs) => Path::new(abs).to_path_buf(),
            None => dir.join(&href),
        };
        assert!(path.is_file(), "dead link {href} in {}", html.display());
        n += 1;
    }
    n
}

#[test]
fn every_report_says_why_each_variant_failed_and_merged_links_work() {
    let env = MatrixDir::new(MATRIX);
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("CMakeLists.txt"), CMAKE).unwrap();
    std::fs::write(src.join("t.c"), MAIN).unwrap();

    let (o, full) = build(
        &env,
        "root",
        &["--junit", "junit.xml", "--html", "report.html"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    check_json(&full);

    // the terminal: each failure's key line on the line under it as it finishes
    let err = String::from_utf8_lossy(&o.stderr);
    for (name, (status, _, key)) in expected() {
        if status != "passed" {
            let word = if status == "failed" {
                "FAILED"
            } else {
                "TIMED OUT"
            };
            let at = err
                .lines()
                .position(|l| l.contains(name) && l.contains(word))
                .unwrap_or_else(|| panic!("no FAILED line for {name}:\n{err}"));
            let next = err.lines().nth(at + 1).unwrap_or("");
            assert!(next.contains(key), "{name}: `{key}` not under it:\n{err}");
        }
    }

    // JUnit: valid against the format CI servers read, counts that add up, the failure
    // messages carrying the key lines, unavailable variants skipped with why
    let xsd = cfgmx_tests::repo().join("tests/fixtures/junit/junit.xsd");
    let v = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(env.path().join("junit.xml"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", explain(&v));
    let script = format!(
        r#"
import xml.etree.ElementTree as ET
root = ET.parse({path:?}).getroot()
suites = {{s.get("name"): s for s in root.findall("testsuite")}}
assert len(suites) == 10, sorted(suites)
def failure(suite, case):
    c = [c for c in suites[suite].findall("testcase") if c.get("name") == case][0]
    f = c.find("failure")
    assert f is not None, (suite, case)
    return f.get("message"), (f.text or "")
m, _ = failure("gcc-none-release-cfgfail", "configure")
assert "the foo library is required" in m, m
m, _ = failure("gcc-none-release-buildfail", "build")
assert "undeclared_thing" in m, m
m, text = failure("gcc-none-release-testfail", "sums")
assert m.startswith("sums: FAIL: sum is 3, expected 4"), m
assert "cleaning up" in text, text
m, _ = failure("gcc-none-release-hang", "test")
assert "timed out after 3 s" in m, m
for case in ["ok", "cfgfail", "buildfail", "testfail", "hang"]:
    s = suites["icc-none-release-" + case]
    sk = s.find("testcase").find("skipped")
    assert sk is not None and "icc" in sk.get("message"), case
for s in suites.values():
    cases = s.findall("testcase")
    assert int(s.get("tests")) == len(cases), s.get("name")
    assert int(s.get("failures")) == sum(c.find("failure") is not None for c in cases), s.get("name")
ok = suites["gcc-none-release-ok"]
assert all(c.find("failure") is None and c.find("skipped") is None for c in ok.findall("testcase"))
print("ok")
"#,
        path = env.path().join("junit.xml").display().to_string()
    );
    cfgmx_tests::python_ok(&script, "");

    // HTML: the key lines, folded to the excerpt, and links that resolve
    let html = std::fs::read_to_string(env.path().join("report.html")).unwrap();
    assert!(html.contains("the foo library is required"), "{html}");
    assert!(html.contains("sums: FAIL: sum is 3, expected 4"), "{html}");
    assert!(html.contains("<details><summary>"), "{html}");
    assert!(links_resolve(&env.path().join("report.html")) >= 5);
    cfgmx_tests::screenshot(&env.path().join("report.html"));

    // Two shards in two build roots, merged from elsewhere: every link still resolves.
    let (_, s1) = build(&env, "root-a", &["--shard", "1/2"]);
    let (_, s2) = build(&env, "root-b", &["--shard", "2/2"]);
    std::fs::write(env.path().join("s1.json"), s1.to_string()).unwrap();
    std::fs::write(env.path().join("s2.json"), s2.to_string()).unwrap();
    std::fs::create_dir_all(env.path().join("out")).unwrap();
    let m = env
        .cmd(&[
            "report",
            "merge",
            "s1.json",
            "s2.json",
            "--json",
            "--html",
            "out/merged.html",
        ])
        .output()
        .unwrap();
    assert_eq!(m.status.code(), Some(1), "{}", explain(&m));
    let merged: Value = serde_json::from_slice(&m.stdout).unwrap();
    check_json(&merged);
    let n = links_resolve(&env.path().join("out/merged.html"));
    assert!(n >= 5, "only {n} links");
}
