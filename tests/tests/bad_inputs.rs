//! Every file under `tests/bad-inputs/` must be refused with exit code 2, a message that names
//! the file (and line:column where its header says `# at: L:C`) and contains the header's
//! `# expect:` text, no panic, and nothing written.

use cfgmx_tests::{files_under, repo, run_in, tempdir};
use std::path::Path;

struct Case {
    expect: String,
    at: Option<String>,
}

fn header(text: &[u8]) -> Case {
    let text = String::from_utf8_lossy(text);
    let field = |k: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("# {k}: "))
                .map(|s| s.trim().to_string())
        })
    };
    Case {
        expect: field("expect").expect("every bad input says what it expects"),
        at: field("at"),
    }
}

fn check(kind: &str, path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).unwrap();
    let case = header(&bytes);
    let dir = tempdir();
    let name = path.file_name().unwrap().to_str().unwrap();
    let (args, shown): (Vec<String>, String) = match kind {
        "matrix" => {
            std::fs::write(dir.path().join(name), &bytes).unwrap();
            (vec!["expand".into(), name.into()], name.to_string())
        }
        "toolchain" | "provider" => {
            std::fs::create_dir(dir.path().join("d")).unwrap();
            std::fs::write(dir.path().join("d").join(name), &bytes).unwrap();
            let flag = if kind == "toolchain" {
                "--toolchains"
            } else {
                "--providers"
            };
            (
                vec![flag.into(), "d".into(), "toolchains".into()],
                format!("d/{name}"),
            )
        }
        other => panic!("unknown bad-input kind {other}"),
    };
    let before = files_under(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_in(dir.path(), &args);
    let err = r.stderr();
    let mut problems = Vec::new();
    if r.code() != 2 {
        problems.push(format!("exit code {} (want 2)", r.code()));
    }
    if !err.contains(&case.expect) {
        problems.push(format!("message lacks {:?}", case.expect));
    }
    if !err.contains(&shown) {
        problems.push(format!("message does not name the file {shown}"));
    }
    if let Some(at) = &case.at {
        if !err.contains(&format!("{shown}:{at}")) {
            problems.push(format!("message does not point at {shown}:{at}"));
        }
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        problems.push("a panic reached the user".into());
    }
    if files_under(dir.path()) != before {
        problems.push(format!("files were written: {:?}", files_under(dir.path())));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n{}",
            path.display(),
            problems.join("; "),
            r.explain()
        ))
    }
}

#[test]
fn every_bad_input_is_refused_with_a_located_message() {
    let root = repo().join("tests/bad-inputs");
    let mut failures = Vec::new();
    let mut n = 0;
    for kind in ["matrix", "toolchain", "provider"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            n += 1;
            if let Err(e) = check(kind, &p) {
                failures.push(e);
            }
        }
    }
    assert!(n >= 35, "the corpus shrank to {n} cases");
    assert!(
        failures.is_empty(),
        "{} of {n} bad inputs were not handled:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
