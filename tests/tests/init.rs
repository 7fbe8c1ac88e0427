//! `cfgmx init` writes a matrix for the machine it runs on, and every variant of it builds and
//! passes on a test project; `expand --probe` on a matrix mostly out of reach points at it.

use cfgmx_tests::*;
use serde_json::Value;
use std::path::Path;

/// The C-only test project copied into `dst`.
fn copy_c_only(dst: &Path) {
    for e in std::fs::read_dir(repo().join("tests/projects/c-only")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

#[test]
fn init_writes_a_matrix_whose_every_variant_builds_and_passes() {
    let dir = tempdir();
    let d = dir.path();
    copy_c_only(d);
    let r = run_in(d, &["init"]);
    r.expect_code(0);
    let text = std::fs::read_to_string(d.join("cfgmx.toml")).unwrap();
    // Commented for editing, with the project's language (CMakeLists.txt says C only).
    assert!(text.starts_with("# Written by `cfgmx init`"), "{text}");
    assert!(text.contains("languages = [\"c\"]"), "{text}");
    assert!(text.contains("build = [\"debug\", \"release\"]"), "{text}");

    // Every compiler family the probe found working with a C compiler is there (or said to
    // be left out, with the reason), with the version found.
    let probe = run_in(d, &["probe", "--json"]).expect_code(0).json();
    let compiler_line = text
        .lines()
        .find(|l| l.starts_with("compiler = "))
        .unwrap()
        .to_string();
    for c in probe["compilers"].as_array().unwrap() {
        let ok = c["status"] == "ok" && c.get("wrapper").is_none_or(Value::is_null);
        let c_lang = c["languages"].as_array().unwrap().iter().any(|l| l == "c");
        if !(ok && c_lang) {
            continue;
        }
        let fam = c["family"].as_str().unwrap();
        let ver = c["version"].as_str().unwrap();
        assert!(
            compiler_line.contains(&format!("\"{fam}"))
                || text.contains(&format!("left out, cannot be built here: {fam}")),
            "{fam} {ver} missing:\n{text}"
        );
        assert!(
            text.contains(&format!("{ver} (")),
            "version {ver} of {fam} not noted:\n{text}"
        );
    }
    // Sequential and threaded BLAS where the probe found both.
    let threadings: Vec<&str> = probe["blas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["threading"].as_str().unwrap())
        .collect();
    if threadings.contains(&"sequential") && threadings.iter().any(|t| *t != "sequential") {
        assert!(
            text.contains("blas = [\"sequential\", \"threaded\"]"),
            "{text}"
        );
    }

    // Every variant of the written matrix is available here, and builds and passes.
    let exp = run_in(d, &["expand", "cfgmx.toml", "--probe", "--json"])
        .expect_code(0)
        .json();
    let n = exp.as_array().unwrap().len();
    assert!(n >= 2, "{exp}");
    for v in exp.as_array().unwrap() {
        assert_eq!(v["available"], true, "{v}");
    }
    let b = run_in(d, &["build", "cfgmx.toml", "-j", "2", "--json"]);
    b.expect_code(0);
    let report = b.json();
    let vs = variants(&report);
    assert_eq!(vs.len(), n, "{}", b.explain());
    for v in vs {
        assert_eq!(v["status"], "passed", "{v}");
        assert_eq!(v["tests_passed"], 3, "{v}");
    }

    // An existing file is kept unless --force.
    std::fs::write(d.join("cfgmx.toml"), "# mine\n").unwrap();
    let again = run_in(d, &["init"]);
    again.expect_code(2);
    assert!(again.stderr().contains("--force"), "{}", again.explain());
    assert_eq!(
        std::fs::read_to_string(d.join("cfgmx.toml")).unwrap(),
        "# mine\n"
    );
    run_in(d, &["init", "--force"]).expect_code(0);
    assert_eq!(std::fs::read_to_string(d.join("cfgmx.toml")).unwrap(), text);
}

#[test]
fn expand_probe_of_a_mostly_unbuildable_matrix_hints_at_init() {
    let dir = tempdir();
    // hpc16: gcc, icc, pgi, xl; this machine has gcc only of those.
    let r = run_in(dir.path(), &["expand", "--probe"]);
    r.expect_code(0);
    assert!(
        r.stderr().contains("`cfgmx init` writes a matrix"),
        "{}",
        r.explain()
    );
    // A matrix this machine builds whole gets no hint.
    std::fs::copy(
        repo().join("tests/matrices/gcc-clang.toml"),
        dir.path().join("gc.toml"),
    )
    .unwrap();
    let r = run_in(dir.path(), &["expand", "gc.toml", "--probe"]);
    r.expect_code(0);
    assert!(!r.stderr().contains("cfgmx init"), "{}", r.explain());
}
