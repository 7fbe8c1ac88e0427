//! The env scripts (`cfgmx env HASH` from the lock file, and `generate -f env`) read back by
//! their most common consumer: a shell sources them and `make` expands `$(CFLAGS)` in a
//! recipe. A flag holding `; cmd` must reach the compiler as one argument and run nothing.

use cfgmx_tests::{run_in, tempdir};
use std::path::Path;

const MATRIX: &str = r#"name = "inj"
languages = ["c"]
[axes]
compiler = ["gcc"]
blas = ["none"]
flavor = ["evil"]
[values.flavor.evil]
cflags = ["-DMSG=x; touch PWNED; echo", "-DQ=\"a  b\"", "-DD=`id`>x"]
"#;

/// Sources `script` and runs a make recipe that prints each word of `$(CFLAGS)` and compiles
/// with them; returns what it printed.
fn make_with(dir: &Path, script: &str) -> String {
    std::fs::write(
        dir.join("Makefile"),
        "all:\n\t@printf '[%s]\\n' $(CFLAGS)\n\t@$(CC) $(CFLAGS) -c -x c /dev/null -o /dev/null\n",
    )
    .unwrap();
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(". ./{script} && make -s"))
        .current_dir(dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "make failed: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir.join("PWNED").exists(), "a flag ran a command: {out}");
    out
}

fn expect_words(out: &str) {
    for w in [
        "[-DMSG=x; touch PWNED; echo]",
        "[-DQ=\"a  b\"]",
        "[-DD=`id`>x]",
    ] {
        assert!(out.lines().any(|l| l == w), "{w} not one word in:\n{out}");
    }
}

#[test]
fn cfgmx_env_output_is_safe_under_make() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("inj.toml"), MATRIX).unwrap();
    run_in(d, &["expand", "--probe", "--lock", "inj.toml"]).expect_code(0);
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cfgmx.lock")).unwrap()).unwrap();
    let hash = lock["matrices"]["inj"]["variants"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let r = run_in(d, &["env", &hash[..12]]);
    r.expect_code(0);
    std::fs::write(d.join("env.sh"), r.stdout()).unwrap();
    expect_words(&make_with(d, "env.sh"));
}

#[test]
fn generated_env_scripts_are_safe_under_make() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("inj.toml"), MATRIX).unwrap();
    run_in(d, &["generate", "inj.toml", "-f", "env", "-o", "out"]).expect_code(0);
    let script = std::fs::read_dir(d.join("out/env"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sh"))
        .expect("an env script");
    std::fs::copy(&script, d.join("gen.sh")).unwrap();
    expect_words(&make_with(d, "gen.sh"));
}

/// What make would expand in CFLAGS (`$(shell cmd)` runs cmd) cannot be quoted for both sh
/// and make: it is refused, by `generate -f env` and by `cfgmx env` alike.
#[test]
fn a_make_function_in_a_flag_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    let m = MATRIX.replace("-DD=`id`>x", "-DD=$(shell touch PWNED)");
    std::fs::write(d.join("inj.toml"), m).unwrap();
    let r = run_in(d, &["generate", "inj.toml", "-f", "env", "-o", "out"]);
    r.expect_code(2);
    assert!(r.stderr().contains("make expands"), "{}", r.explain());
    assert!(!d.join("out/env").exists());
    // the lock keeps no script for it, says why when written, and `cfgmx env` refuses
    let l = run_in(d, &["expand", "--probe", "--lock", "inj.toml"]);
    l.expect_code(0);
    assert!(l.stderr().contains("make expands"), "{}", l.explain());
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cfgmx.lock")).unwrap()).unwrap();
    let hash = lock["matrices"]["inj"]["variants"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let e = run_in(d, &["env", &hash[..12]]);
    e.expect_code(2);
    assert!(e.stderr().contains("no env script"), "{}", e.explain());
    assert!(!d.join("PWNED").exists());
}
