//! `cfgmx probe --json` on the widened machine against ground truth the test establishes
//! itself, compiler by compiler: every gcc, g++, gfortran, clang, clang++ and flang-new on
//! `PATH` (plain and version-suffixed names) is reported with the family its name says and the
//! exact version the compiler itself prints for `-dumpfullversion` (GCC) or `-dumpversion`
//! (LLVM), and two names of one real file are one compiler.

use cfgmx_tests::{run_env, tempdir};
use serde_json::Value;
use std::collections::BTreeMap;

fn ask(exe: &str, arg: &str) -> String {
    let o = std::process::Command::new(exe).arg(arg).output().unwrap();
    assert!(o.status.success(), "{exe} {arg} failed");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Every compiler name of the GNU and LLVM families in the directories of `PATH`, with the
/// family and version the compiler itself gives.
fn ground_truth() -> BTreeMap<String, (&'static str, String)> {
    let mut out = BTreeMap::new();
    let gnu = regex_lite(&["gcc", "g++", "gfortran"]);
    let llvm = regex_lite(&["clang", "clang++", "flang-new"]);
    let mut seen = Vec::new();
    for dir in std::env::var("PATH").unwrap().split(':') {
        // /bin is /usr/bin on a merged-/usr system: one directory, listed once (as the probe does)
        let Ok(real) = std::fs::canonicalize(dir) else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            if out.contains_key(&path) {
                continue;
            }
            if gnu(&name) {
                out.insert(path.clone(), ("gcc", ask(&path, "-dumpfullversion")));
            } else if llvm(&name) {
                out.insert(path.clone(), ("clang", ask(&path, "-dumpversion")));
            }
        }
    }
    out
}

/// `base` or `base-N` (Debian's version suffix) for one of `bases`.
fn regex_lite(bases: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |name: &str| {
        bases.iter().any(|b| {
            name == *b
                || name
                    .strip_prefix(b)
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
        })
    }
}

#[test]
fn every_gnu_and_llvm_compiler_has_its_own_family_and_exact_version() {
    let truth = ground_truth();
    // what setup installs: two GCCs, four clangs, two flangs, each under its suffixed name
    for must in [
        "gcc-11",
        "gcc-12",
        "g++-11",
        "gfortran-11",
        "clang-13",
        "clang-14",
        "clang-16",
        "clang-19",
        "clang++-19",
        "flang-new-16",
        "flang-new-19",
    ] {
        assert!(
            truth.keys().any(|p| p.ends_with(&format!("/{must}"))),
            "{must} is not installed (scripts/setup.sh)"
        );
    }
    let dir = tempdir();
    let r = run_env(dir.path(), &["probe", "--json"], &[]);
    r.expect_code(0);
    let p: Value = r.json();
    let records: BTreeMap<String, &Value> = p["compilers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c))
        .collect();
    let mut wrong = Vec::new();
    for (path, (family, version)) in &truth {
        match records.get(path) {
            None => wrong.push(format!("{path}: not reported")),
            Some(c) => {
                if c["family"] != *family || c["version"] != *version.as_str() {
                    wrong.push(format!(
                        "{path}: reported {} {}, is {family} {version}",
                        c["family"], c["version"]
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        truth.len(),
        wrong.join("\n")
    );
}
