//! A result is current only with the tools that made it: the same variants built first with
//! Debian's CMake 3.25, then with the latest CMake 4 (the test venv's) first on PATH, are
//! configured again from scratch and tested again, and their records name the new CMake;
//! a third run with CMake 4 skips them as unchanged.

use cfgmx_tests::{explain, repo, step, variants, MatrixDir};
use serde_json::Value;

const MATRIX: &str = r#"name = "tools"
languages = ["c"]
[axes]
compiler = ["gcc"]
blas = ["none"]
build = ["debug", "release"]
"#;

fn build(env: &MatrixDir, path: &str) -> Value {
    let o = env
        .build_cmd(&env.path().join("src"), "root", &["--json"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn another_cmake_first_on_path_configures_and_tests_again() {
    let venv = repo().join("target/test-venv/bin");
    assert!(
        venv.join("cmake").is_file(),
        "no CMake 4 in {} (scripts/setup.sh installs it)",
        venv.display()
    );
    let env = MatrixDir::new(MATRIX);
    cfgmx_tests::write_c_project(
        &env.path().join("src"),
        "add_test(NAME t COMMAND t)\n",
        "int main(void) { return 0; }\n",
    );
    let system = std::env::var("PATH").unwrap();
    // Debian's CMake first, whatever the caller's PATH holds (CI puts the venv first).
    let debian = format!("/usr/bin:{system}");
    let newer = format!("{}:{system}", venv.display());

    let first = build(&env, &debian);
    for v in variants(&first) {
        assert_eq!(v["status"], "passed", "{v:#}");
        assert!(
            v["tools"]["cmake"].as_str().unwrap().contains(" 3."),
            "{v:#}"
        );
    }
    let second = build(&env, &newer);
    for v in variants(&second) {
        assert_eq!(v["status"], "passed", "not built again: {v:#}");
        assert!(
            v["tools"]["cmake"].as_str().unwrap().contains(" 4."),
            "{v:#}"
        );
        let c = step(v, "configure");
        assert_ne!(c["command"], "(build dir reused)", "{v:#}");
        assert!(
            c["command"]
                .as_str()
                .unwrap()
                .contains("test-venv/bin/cmake")
                || c["command"].as_str().unwrap().starts_with("cmake"),
            "{c:#}"
        );
    }
    let third = build(&env, &newer);
    for v in variants(&third) {
        assert_eq!(v["status"], "cached", "{v:#}");
    }
}
