//! A project whose tests write into its source tree (`tests/projects/source-writer`: a data
//! file next to its sources, written and read back): cfgmx notices on the first run, builds
//! every variant from its own copy from then on (remembered in the build root), so 8 variants
//! at `-j 2` never race, an unchanged rerun skips them all, and the source tree is left as it
//! was. `--copy-source` on a build root whose variants were configured in the tree configures
//! them again against their copies.

use cfgmx_tests::{explain, repo, step, variants, MatrixDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn matrix() -> String {
    std::fs::read_to_string(repo().join("tests/matrices/gcc-clang.toml"))
        .unwrap()
        .replace("languages = [\"c\", \"fortran\"]", "languages = [\"c\"]")
}

/// Every file under `dir` with its contents and modification time: what "left as it was" means.
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    cfgmx_tests::files_under(dir)
        .into_iter()
        .map(|p| {
            let full = dir.join(&p);
            let mtime = std::fs::metadata(&full).unwrap().modified().unwrap();
            (
                p.display().to_string(),
                (std::fs::read(&full).unwrap(), mtime),
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn statuses(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = variants(v)
        .iter()
        .map(|x| format!("{} {}", x["name"].as_str().unwrap(), x["status"]))
        .collect();
    s.sort();
    s
}

#[test]
fn tests_writing_into_the_source_get_copies_no_race_skips_hold_and_the_tree_stays_clean() {
    let env = MatrixDir::new(&matrix());
    let src = env.path().join("proj");
    copy_dir(&repo().join("tests/projects/source-writer"), &src);
    let pristine = tree(&src);

    // First run: cfgmx does not know yet, so the variants that start first run from copies;
    // the first test that writes tells it, and says so.
    let (o, v) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(variants(&v).len(), 8, "{}", explain(&o));
    for x in variants(&v) {
        assert_eq!(x["status"], "passed", "a race between variants?\n{x}");
        assert_eq!(x["tests_passed"], 1, "{x}");
    }
    assert!(
        err.contains("wrote into its source tree")
            && err.contains("roundtrip.dat")
            && err.contains("source tree is untouched")
            && err.contains("from its own copy of the source from now on"),
        "{err}"
    );
    // Said once, not once per variant.
    assert_eq!(
        err.matches("wrote into its source tree").count(),
        1,
        "{err}"
    );
    assert_eq!(
        tree(&src),
        pristine,
        "the first run changed the source tree"
    );
    let remembered: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("root/source-writes.json")).unwrap())
            .unwrap();
    let key = src.canonicalize().unwrap().display().to_string();
    assert_eq!(
        remembered[&key]["writes"]["paths"],
        serde_json::json!(["roundtrip.dat"]),
        "{remembered}"
    );
    // Every variant configured against its own copy, none against the tree itself.
    for x in variants(&v) {
        let configure = step(x, "configure")["command"].as_str().unwrap();
        assert!(
            configure.contains("/src -B") && !configure.contains(&format!("{} ", key)),
            "{configure}"
        );
    }

    // Unchanged: every variant is skipped, nothing written.
    let (o, v2) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(
        statuses(&v2),
        statuses(&v)
            .iter()
            .map(|s| s.replace("\"passed\"", "\"cached\""))
            .collect::<Vec<_>>(),
        "{}",
        explain(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("wrote into"),
        "{}",
        explain(&o)
    );
    assert_eq!(tree(&src), pristine, "the rerun changed the source tree");

    // A real change rebuilds, from the copies (still no race, still a clean tree).
    let c = src.join("roundtrip.c");
    let text = std::fs::read_to_string(&c).unwrap();
    std::fs::write(&c, text.replace("read back: %s", "read back %s")).unwrap();
    let changed = tree(&src);
    let (o, v3) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    for x in variants(&v3) {
        assert_eq!(x["status"], "passed", "{x}");
    }
    assert_eq!(tree(&src), changed, "the rebuild changed the source tree");
}

#[test]
fn copy_source_on_an_existing_root_configures_against_the_copy() {
    let env = MatrixDir::new(&matrix());
    let src = env.path().join("proj");
    std::fs::create_dir_all(&src).unwrap();
    // A project that writes nothing into its tree.
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(p C)\nadd_executable(p p.c)\n\
         enable_testing()\nadd_test(NAME p COMMAND p)\n",
    )
    .unwrap();
    std::fs::write(src.join("p.c"), "int main(void) { return 0; }\n").unwrap();
    let one = |name: &str| ["--only".to_string(), name.to_string()];
    // The first variant tells cfgmx the project writes nothing; the second is then built in
    // the tree itself.
    let (o, _) = env.build_json(
        &src,
        "root",
        &one("gcc-sequential-debug").each_ref().map(|s| s.as_str()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let only = one("clang-sequential-debug");
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    let (o, v) = env.build_json(&src, "root", &only);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let key = src.canonicalize().unwrap().display().to_string();
    let x = &variants(&v)[0];
    let configure = step(x, "configure")["command"].as_str().unwrap();
    assert!(configure.contains(&format!("-S {key} ")), "{configure}");
    // The variant's directory, as its log path names it (relative to the build root).
    let log = step(x, "configure")["log"].as_str().unwrap();
    let hash = log.split('/').next().unwrap();
    let cache = env
        .path()
        .join("root")
        .join(hash)
        .join("build/CMakeCache.txt");
    let home = |cache: &Path| {
        std::fs::read_to_string(cache)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL=")
                    .map(str::to_string)
            })
            .unwrap()
    };
    assert_eq!(home(&cache), key);

    // --copy-source on that root: the variant's build dir is configured again, against its copy.
    std::fs::write(src.join("p.c"), "int main(void) { return 0 * 1; }\n").unwrap();
    let mut args = only.clone();
    args.push("--copy-source");
    let (o, v) = env.build_json(&src, "root", &args);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let x = &variants(&v)[0];
    let configure = step(x, "configure")["command"].as_str().unwrap();
    let copy = env
        .path()
        .join("root")
        .canonicalize()
        .unwrap()
        .join(hash)
        .join("src");
    assert!(
        configure.contains(&format!("-S {} ", copy.display())),
        "{configure}"
    );
    assert_eq!(home(&cache), copy.display().to_string());
    assert_eq!(x["status"], "passed", "{x}");
}

/// A source tree that cannot be copied (a file whose path fits the system's limit only where
/// it is: PATH_MAX is 4096): on a first run cfgmx builds in the tree itself and says why;
/// where a copy is required (`--copy-source`), the variant fails with that reason, nothing run.
#[test]
fn a_copy_that_cannot_be_made_says_why() {
    let env = MatrixDir::new(&matrix());
    let src = env.path().join("proj");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(p C)\nadd_executable(p p.c)\n\
         enable_testing()\nadd_test(NAME p COMMAND p)\n",
    )
    .unwrap();
    std::fs::write(src.join("p.c"), "int main(void) { return 0; }\n").unwrap();
    // A data file at 4090 characters of path; its copy under root/HASH/src would need 4107.
    let mut dir = src.clone();
    while dir.as_os_str().len() + 1 + 200 + 1 + 20 < 4090 {
        dir = dir.join("d".repeat(200));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let name = "f".repeat(4090 - dir.as_os_str().len() - 1);
    std::fs::write(dir.join(name), "data").unwrap();
    let only = ["--only", "gcc-sequential-debug"];

    let (o, v) = env.build_json(&src, "root", &only);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(variants(&v)[0]["status"], "passed", "{v}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot build from a copy of the source")
            && err.contains("File name too long")
            && err.contains("built in the source tree itself"),
        "{err}"
    );

    let mut args = only.to_vec();
    args.extend(["--copy-source", "--force"]);
    let (o, v) = env.build_json(&src, "root", &args);
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
    let x = &variants(&v)[0];
    assert_eq!(x["status"], "failed", "{x}");
    let why = x["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("needs because --copy-source asks for it")
            && why.contains("File name too long"),
        "{x}"
    );
    for s in ["configure", "build", "test"] {
        assert_eq!(step(x, s)["status"], "not_run", "{x}");
    }
}
