//! `cfgmx.lock` across matrices: building a second matrix in a directory adds to the lock
//! rather than replacing it, so `show`, `env` and `reproduce` keep answering for the hashes of
//! both; a hash that is not there is explained by where cfgmx looked.

use cfgmx_tests::*;
use serde_json::Value;
use std::path::Path;

/// The second matrix: gcc, one BLAS build, so its variants differ from gcc-clang's; and icc,
/// which this machine does not have (a variant with a spec hash only).
const SMALL: &str = r#"name = "small"
languages = ["c"]
[axes]
compiler = ["gcc", "icc"]
blas = ["sequential"]
build = ["release"]
[blas]
prefer = ["openblas"]
"#;

fn lock(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("cfgmx.lock")).unwrap()).unwrap()
}

/// The concrete hashes the lock holds for `matrix`.
fn hashes(lock: &Value, matrix: &str) -> Vec<(String, String)> {
    lock["matrices"][matrix]["variants"]
        .as_object()
        .unwrap_or_else(|| panic!("no matrix `{matrix}` in the lock: {lock}"))
        .iter()
        .map(|(h, j)| (h.clone(), j["name"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn two_matrices_built_in_one_directory_both_answer_show_env_and_reproduce() {
    let dir = tempdir();
    let d = dir.path();
    // The project is the current directory: `build` and `reproduce` need no --source.
    copy_project(d);
    std::fs::write(d.join("small.toml"), SMALL).unwrap();
    std::fs::copy(
        repo().join("tests/matrices/gcc-clang.toml"),
        d.join("gc.toml"),
    )
    .unwrap();
    run_in(
        d,
        &[
            "build",
            "gc.toml",
            "-j",
            "2",
            "--only",
            "clang-threaded-debug",
        ],
    )
    .expect_code(0);
    let table = run_in(d, &["build", "small.toml", "-j", "2"]);
    table.expect_code(0);

    let l = lock(d);
    assert_eq!(l["schema"], 2, "{l}");
    let gc = hashes(&l, "gcc-clang");
    let small = hashes(&l, "small");
    assert_eq!(small.len(), 1, "{l}");
    // Every available variant of the first matrix is kept, not only the one built.
    assert!(gc.len() >= 2, "{l}");
    let clang = gc
        .iter()
        .find(|(_, n)| n == "clang-threaded-debug")
        .unwrap();
    for (hash, name) in [clang, &small[0]] {
        let prefix = &hash[..12];
        // `show` of a concrete hash shows the variant, wherever the default matrix is.
        let s = run_in(d, &["show", prefix]).expect_code(0).stdout();
        assert!(s.contains(&format!("variant       {name}")), "{s}");
        assert!(s.contains(&format!("concrete hash {prefix}")), "{s}");
        assert!(
            !s.contains("export "),
            "an env script, not the variant:\n{s}"
        );
        // `env` gives the script that variant was built with.
        let e = run_in(d, &["env", prefix]).expect_code(0).stdout();
        assert!(e.contains("export CC='/"), "{e}");
    }
    // The clang variant's script is the clang one (OpenMP through libomp), the small one's gcc.
    let e = run_in(d, &["env", &clang.0[..12]]).stdout();
    assert!(e.contains("clang") && e.contains("-fopenmp=libomp"), "{e}");
    let e = run_in(d, &["env", &small[0].0[..12]]).stdout();
    assert!(e.contains("gcc") && !e.contains("-fopenmp"), "{e}");
    // `reproduce` of the first matrix's hash, from the project directory, without --source.
    let r = run_in(d, &["reproduce", &clang.0[..12], "--build-root", "repro"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("clang-threaded-debug"),
        "{}",
        r.explain()
    );
    assert!(d.join("repro").read_dir().unwrap().count() >= 1);
}

#[test]
fn a_hash_not_found_says_which_lock_was_read_and_what_it_holds() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("small.toml"), SMALL).unwrap();
    run_in(d, &["expand", "small.toml", "--lock"]).expect_code(0);
    let lock_path = std::fs::canonicalize(d.join("cfgmx.lock")).unwrap();
    for cmd in ["show", "env", "reproduce"] {
        let r = run_in(d, &[cmd, "0123456789ab"]);
        r.expect_code(2);
        let err = r.stderr();
        assert!(
            err.contains(&format!("in {}", lock_path.display()))
                && err.contains("which holds small (1 variant(s))"),
            "{}",
            r.explain()
        );
    }
    // Elsewhere, with no lock file: where it looked, and who writes one.
    let other = tempdir();
    let r = run_in(other.path(), &["env", "0123456789ab"]);
    r.expect_code(2);
    let want = std::fs::canonicalize(other.path())
        .unwrap()
        .join("cfgmx.lock");
    assert!(
        r.stderr()
            .contains(&format!("there is no lock file {}", want.display()))
            && r.stderr().contains("cfgmx build"),
        "{}",
        r.explain()
    );
    // A prefix shorter than the minimum is refused as such, not searched.
    let hash = hashes(&lock(d), "small")[0].0.clone();
    let r = run_in(d, &["env", &hash[..6]]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("at least 7 hex digits"),
        "{}",
        r.explain()
    );
    run_in(d, &["env", &hash[..7]]).expect_code(0);
}

#[test]
fn a_lock_of_the_old_schema_is_read_and_kept() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("small.toml"), SMALL).unwrap();
    run_in(d, &["expand", "small.toml", "--lock"]).expect_code(0);
    let l = lock(d);
    // Schema 1: one matrix, its variants at the top.
    let v1 = serde_json::json!({
        "schema": 1,
        "matrix": "small",
        "variants": l["matrices"]["small"]["variants"],
    });
    std::fs::write(d.join("cfgmx.lock"), v1.to_string()).unwrap();
    let hash = hashes(&l, "small")[0].0.clone();
    let e = run_in(d, &["env", &hash[..12]]).expect_code(0).stdout();
    assert!(e.contains("export CC='/"), "{e}");
    // Locking another matrix turns it into schema 2 without losing the old entries.
    std::fs::copy(
        repo().join("tests/matrices/gcc-clang.toml"),
        d.join("gc.toml"),
    )
    .unwrap();
    run_in(d, &["expand", "gc.toml", "--lock"]).expect_code(0);
    let l2 = lock(d);
    assert_eq!(l2["schema"], 2);
    assert_eq!(hashes(&l2, "small")[0].0, hash);
    assert!(!hashes(&l2, "gcc-clang").is_empty());
    // A lock from a newer cfgmx is refused with a message, not misread.
    std::fs::write(d.join("cfgmx.lock"), r#"{"schema": 99, "matrices": {}}"#).unwrap();
    let r = run_in(d, &["env", &hash[..12]]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("lock schema 99 is newer"),
        "{}",
        r.explain()
    );
}

/// A command reads its matrix once (one session): a warning about the matrix is said once by
/// `expand --lock` and by `build` alike, which each loaded the matrix twice before.
#[test]
fn a_matrix_warning_is_said_once_per_command() {
    let dir = tempdir();
    let d = dir.path();
    copy_project(d);
    let matrix = SMALL.replace("[blas]", "[[exclude]]\nbuild = \"fast\"\n[blas]");
    std::fs::write(d.join("w.toml"), matrix).unwrap();
    let warning = "exclude value \"fast\" is not a value of axis `build`";
    let lock = run_in(d, &["expand", "w.toml", "--lock"]);
    lock.expect_code(0);
    assert_eq!(
        lock.stderr().matches(warning).count(),
        1,
        "{}",
        lock.explain()
    );
    let build = run_in(
        d,
        &["build", "w.toml", "-j", "2", "--only", "no-such-variant"],
    );
    build.expect_code(2);
    assert!(
        build.stderr().contains("--only/--skip leave no variant"),
        "{}",
        build.explain()
    );
    assert_eq!(
        build.stderr().matches(warning).count(),
        1,
        "{}",
        build.explain()
    );
}
