//! "Available" means proven: `expand --probe` builds and runs each variant's exact toolchain
//! (compiler, flags, link line, BLAS, two OpenMP threads when threaded) before calling it
//! available, and reports the OpenMP runtimes that program really loaded.

use cfgmx_tests::{run_env, tempdir};
use serde_json::Value;
use std::path::Path;

/// gcc and clang (C only: no Fortran compiler is involved) x a serial and an OpenMP OpenBLAS x
/// a good link line and one whose extra library does not exist.
const MATRIX: &str = r#"name = "proof"
languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["openblas-serial", "openblas-openmp"]
link = ["plain", "broken"]
[values.link.broken]
ldflags = ["-lcfgmx_no_such_library"]
"#;

fn expand(dir: &Path) -> Vec<Value> {
    let r = run_env(dir, &["expand", "--probe", "--json", "m.toml"], &[]);
    r.expect_code(0);
    r.json().as_array().unwrap().clone()
}

fn by_name<'a>(vs: &'a [Value], name: &str) -> &'a Value {
    vs.iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variant {name}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_variant_is_available_only_when_its_exact_link_line_links_and_runs() {
    let dir = tempdir();
    std::fs::write(dir.path().join("m.toml"), MATRIX).unwrap();
    let vs = expand(dir.path());
    assert_eq!(vs.len(), 8);
    for v in &vs {
        let name = v["name"].as_str().unwrap();
        let reasons = strings(&v["reasons"]).join("; ");
        if name.ends_with("-broken") {
            // every record the probe made for it is fine: only building it shows the problem
            assert_eq!(v["available"], false, "{name}: {v:#}");
            assert!(v.get("concrete_hash").is_none(), "{name}");
            assert!(
                reasons.contains("link test failed") && reasons.contains("cfgmx_no_such_library"),
                "{name}: {reasons}"
            );
        } else {
            assert_eq!(v["available"], true, "{name}: {reasons}");
        }
    }
    // What was really loaded: gcc with the OpenMP OpenBLAS loads libgomp alone; clang with it
    // loads its own libomp beside the library's libgomp, and says so.
    let warnings = |n: &str| strings(&by_name(&vs, n)["concrete_warnings"]).join("; ");
    assert!(
        !warnings("gcc-openblas-openmp-plain").contains("OpenMP runtimes"),
        "{}",
        warnings("gcc-openblas-openmp-plain")
    );
    let clang = warnings("clang-openblas-openmp-plain");
    assert!(
        clang.contains("loads 2 OpenMP runtimes")
            && clang.contains("libgomp")
            && clang.contains("libomp"),
        "{clang}"
    );
    assert!(!warnings("clang-openblas-serial-plain").contains("OpenMP runtimes"));

    // Warm: the same answer from the cache, which is not rewritten.
    let cache = dir.path().join(".cfgmx-cache/probe-proofs.json");
    let stamp = std::fs::metadata(&cache).unwrap().modified().unwrap();
    assert_eq!(expand(dir.path()), vs);
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        stamp,
        "a warm expand ran the link tests again"
    );
}

/// A profile read from a file may describe another machine: its variants are rendered as it
/// says, not proven here, so a link flag only this machine lacks does not hide them.
#[test]
fn a_profile_file_is_not_proven_on_this_machine() {
    let dir = tempdir();
    std::fs::write(dir.path().join("m.toml"), MATRIX).unwrap();
    let r = run_env(dir.path(), &["probe", "--json"], &[]);
    r.expect_code(0);
    std::fs::write(dir.path().join("profile.json"), r.stdout()).unwrap();
    let r = run_env(
        dir.path(),
        &["expand", "--json", "--profile", "profile.json", "m.toml"],
        &[],
    );
    r.expect_code(0);
    let vs = r.json();
    let broken = by_name(vs.as_array().unwrap(), "gcc-openblas-serial-broken");
    assert_eq!(broken["available"], true, "{broken:#}");
    assert!(!dir.path().join(".cfgmx-cache/probe-proofs.json").exists());
}

/// PyPI's MKL ships only versioned files (`libmkl_core.so.3`): every layer's variant links them
/// by full path and is proven by running dgemm; what each really loads is reported, and for one
/// of them the test checks the claim itself with `ldd` on a program linked with the variant's
/// own flags.
#[test]
fn versioned_only_mkl_variants_are_proven_and_their_runtimes_told() {
    let venv = cfgmx_tests::repo().join("target/test-venv/lib");
    assert!(
        venv.join("libiomp5.so").exists(),
        "no MKL in {} (scripts/setup.sh installs it)",
        venv.display()
    );
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(
        d.join("m.toml"),
        r#"name = "mkl"
languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["mkl-sequential", "mkl-intel_thread", "mkl-gnu_thread", "mkl-rt"]
"#,
    )
    .unwrap();
    let search = venv.to_str().unwrap();
    let r = run_env(
        d,
        &["expand", "--probe", "--json", "--search", search, "m.toml"],
        &[],
    );
    r.expect_code(0);
    let vs = r.json().as_array().unwrap().clone();
    assert_eq!(vs.len(), 8);
    for v in &vs {
        assert_eq!(v["available"], true, "{}", v["name"]);
        // versioned-only files are named by path: `-lmkl_core` would not link
        let libs = strings(&v["concrete_flags"]["libs"]);
        assert!(libs.iter().any(|l| l.contains(".so.")), "{libs:?}");
    }
    let warns = |n: &str| strings(&by_name(&vs, n)["concrete_warnings"]).join("; ");
    for (name, runtimes) in [
        ("gcc-mkl-intel_thread", &["libiomp5", "libgomp"][..]),
        ("clang-mkl-intel_thread", &["libiomp5", "libomp."]),
        ("clang-mkl-gnu_thread", &["libomp.", "libgomp"]),
    ] {
        let w = warns(name);
        assert!(w.contains("loads 2 OpenMP runtimes"), "{name}: {w}");
        for rt in runtimes {
            assert!(w.contains(rt), "{name}: {rt} not in {w}");
        }
    }
    for name in [
        "gcc-mkl-sequential",
        "gcc-mkl-gnu_thread",
        "clang-mkl-sequential",
    ] {
        assert!(
            !warns(name).contains("OpenMP runtimes"),
            "{name}: {}",
            warns(name)
        );
    }
    // Ground truth for one claim: the variant's own flags, a program, ldd.
    let v = by_name(&vs, "clang-mkl-intel_thread");
    let f = &v["concrete_flags"];
    std::fs::write(
        d.join("t.c"),
        "void dgemm_(void);\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let mut cc = std::process::Command::new(f["cc"].as_str().unwrap());
    cc.args(strings(&f["cflags"]))
        .arg("t.c")
        .args(["-o", "t"])
        .args(strings(&f["link"]["c"]))
        .args(strings(&f["ldflags"]))
        .args(strings(&f["libs"]).iter().map(|l| {
            if l.contains('/') {
                l.clone()
            } else {
                format!("-l{l}")
            }
        }))
        .current_dir(d);
    let o = cc.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ldd = std::process::Command::new("ldd")
        .arg(d.join("t"))
        .output()
        .unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    assert!(
        ldd.contains("libiomp5") && ldd.contains("libomp.so"),
        "{ldd}"
    );
}
