//! Every file under `tests/bad-inputs/` must be refused with exit code 2, a message that names
//! the file (and line:column where its header says `# at: L:C`) and contains the header's
//! `# expect:` text, no panic, and nothing written. Every message is also an insta snapshot
//! (`tests/tests/snapshots/`), so a message cannot drift into vagueness unnoticed.
//!
//! Cost: about 120 runs of the debug binary (a few seconds), plus the 100 MB file test
//! (writing it takes about a second; cfgmx refuses it from its size alone).

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

/// The message as a user reads it, with the temp dir redacted.
fn shown_message(err: &str, dir: &Path) -> String {
    err.replace(&dir.display().to_string(), "[TMP]")
}

fn check(kind: &str, path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let case = header(&bytes);
    let dir = tempdir();
    let name = path.file_name().unwrap().to_str().unwrap();
    let (args, shown): (Vec<String>, String) = match kind {
        "matrix" => {
            std::fs::write(dir.path().join(name), &bytes).unwrap();
            (vec!["expand".into(), name.into()], name.to_string())
        }
        "toolchain" | "provider" | "mpi" => {
            std::fs::create_dir(dir.path().join("d")).unwrap();
            std::fs::write(dir.path().join("d").join(name), &bytes).unwrap();
            let flag = match kind {
                "toolchain" => "--toolchains",
                "provider" => "--providers",
                _ => "--mpi",
            };
            (
                vec![flag.into(), "d".into(), "toolchains".into()],
                format!("d/{name}"),
            )
        }
        "template" => {
            std::fs::write(dir.path().join(name), &bytes).unwrap();
            (
                vec!["generate".into(), "--template".into(), name.into()],
                name.to_string(),
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
        Ok(shown_message(&err, dir.path()))
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
    let mut messages = Vec::new();
    let mut n = 0;
    for kind in ["matrix", "toolchain", "provider", "mpi", "template"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            n += 1;
            match check(kind, &p) {
                Ok(m) => messages.push((
                    format!("{kind}__{}", p.file_name().unwrap().to_string_lossy()),
                    m,
                )),
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(n >= 100, "the corpus shrank to {n} cases");
    assert!(
        failures.is_empty(),
        "{} of {n} bad inputs were not handled:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    for (name, m) in messages {
        insta::assert_snapshot!(name, m);
    }
}

/// A 100 MB matrix is refused from its size, before any of it is parsed, within a second.
#[test]
fn a_100_mb_file_is_refused_quickly_and_nothing_is_written() {
    let dir = tempdir();
    let path = dir.path().join("huge.toml");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"name = \"huge\"\n[axes]\ncompiler = [\"gcc\"]\n")
            .unwrap();
        let line = format!("# {}\n", "x".repeat(1022));
        for _ in 0..100 * 1024 {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    let before = files_under(dir.path());
    let r = run_in(dir.path(), &["expand", "huge.toml"]);
    r.expect_code(2);
    let err = r.stderr();
    assert!(err.contains("huge.toml"), "{}", r.explain());
    // Refused by its size before parsing (how fast is a benchmark's business, not a test's).
    assert!(
        err.contains("larger than the 16 MiB cfgmx reads"),
        "{}",
        r.explain()
    );
    assert_eq!(files_under(dir.path()), before);
    insta::assert_snapshot!("hundred_mb_file", shown_message(&err, dir.path()));
}

/// 2 x 10^12 combinations: a table is refused at once; `--jsonl` streams (the first lines
/// come out and a closed pipe ends the run).
#[test]
fn an_enormous_matrix_is_refused_as_a_table_and_streams_as_jsonl() {
    let dir = tempdir();
    let src = repo().join("tests/bad-inputs/matrix/enormous.toml");
    std::fs::copy(&src, dir.path().join("enormous.toml")).unwrap();
    for args in [
        &["expand", "enormous.toml"][..],
        &["expand", "enormous.toml", "--json"],
        &["generate", "enormous.toml", "-f", "github"],
    ] {
        let r = run_in(dir.path(), args);
        r.expect_code(2);
        assert!(r.stderr().contains("--jsonl"), "{}", r.explain());
    }
    let mut child = std::process::Command::new(cfgmx_tests::bin())
        .args(["expand", "enormous.toml", "--jsonl"])
        .current_dir(dir.path())
        .env("CFGMX_CACHE_DIR", dir.path().join(".c"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let lines: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(out))
        .take(3)
        .map(Result::unwrap)
        .collect();
    // Dropping the pipe's read end makes the next write fail: cfgmx must stop.
    let status = child.wait().unwrap();
    assert_eq!(lines.len(), 3);
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["name"].as_str().unwrap().starts_with("gcc-0-0-0"), "{l}");
    }
    assert!(!status.success() || status.code() == Some(0), "{status}");
}

/// A template whose loops make no output and no list still cannot hold cfgmx: rendering runs
/// in a child under a time limit (here lowered, as a slow machine would raise it).
#[test]
fn a_template_that_never_ends_is_stopped_by_the_time_limit() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("spin.tera"),
        "{% for i in range(end=1000000) %}{% for j in range(end=1000000) %}{% endfor %}{% endfor %}",
    )
    .unwrap();
    let before = files_under(dir.path());
    let r = cfgmx_tests::run_env(
        dir.path(),
        &["generate", "--template", "spin.tera"],
        &[("CFGMX_TEMPLATE_SECONDS", "1")],
    );
    r.expect_code(2);
    assert!(
        r.stderr().contains("rendering took longer than 1 s") && r.stderr().contains("spin.tera"),
        "{}",
        r.explain()
    );
    assert_eq!(files_under(dir.path()), before);
}

/// Pipes, devices and dangling links are refused by name wherever cfgmx reads a file, at
/// once: opening a FIFO would block forever and `/dev/zero` never ends.
#[test]
fn pipes_devices_and_dangling_links_are_refused_by_name() {
    let dir = tempdir();
    let d = dir.path();
    let fifo = |p: &Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    };
    fifo(&d.join("m.toml"));
    std::fs::create_dir(d.join("tc")).unwrap();
    fifo(&d.join("tc/pipe.toml"));
    fifo(&d.join("profile.json"));
    std::os::unix::fs::symlink("/nonexistent/solver.toml", d.join("gone.toml")).unwrap();
    fifo(&d.join("shard.json"));
    std::fs::create_dir(d.join("zero")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("zero/cfgmx.lock")).unwrap();
    for (args, want) in [
        (
            vec!["expand", "m.toml"],
            "m.toml: it is a FIFO (named pipe), not a regular file",
        ),
        (
            vec!["expand", "--profile", "profile.json"],
            "profile.json: it is a FIFO (named pipe)",
        ),
        (
            vec!["--toolchains", "tc", "toolchains"],
            "tc/pipe.toml: it is a FIFO (named pipe)",
        ),
        (
            vec!["--toolchains", "tc", "probe"],
            "tc/pipe.toml: it is a FIFO (named pipe)",
        ),
        (
            vec!["expand", "--profile", "/dev/zero"],
            "/dev/zero: it is a device, not a regular file",
        ),
        (
            vec!["expand", "gone.toml"],
            "a symbolic link to /nonexistent/solver.toml, which does not exist",
        ),
        (
            vec!["report", "merge", "shard.json"],
            "cannot read shard.json: it is a FIFO (named pipe)",
        ),
        (
            vec!["env", "--lock", "zero/cfgmx.lock", "abcdef1"],
            "cannot read zero/cfgmx.lock: it is a device, not a regular file",
        ),
    ] {
        let before = files_under(d);
        let start = std::time::Instant::now();
        let r = run_in(d, &args);
        r.expect_code(2);
        assert!(r.stderr().contains(want), "{args:?}: {}", r.explain());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{args:?}"
        );
        assert_eq!(files_under(d), before, "{args:?} wrote files");
    }
}

/// A profile is checked like every other input: its schema, and no NUL in any value.
#[test]
fn a_profile_of_another_schema_or_with_a_nul_is_refused_where_it_says_so() {
    let dir = tempdir();
    let d = dir.path();
    let p = run_in(d, &["probe", "--json"]);
    p.expect_code(0);
    let text = p.stdout();
    std::fs::write(
        d.join("s99.json"),
        text.replacen("\"schema\": 1", "\"schema\": 99", 1),
    )
    .unwrap();
    let nul = text.replacen("\"cpus\"", "\"x\": \"a\\u0000b\",\n  \"cpus\"", 1);
    std::fs::write(d.join("nul.json"), nul).unwrap();
    let r = run_in(d, &["expand", "--profile", "s99.json"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("s99.json:2:3") && r.stderr().contains("schema 99"),
        "{}",
        r.explain()
    );
    let r = run_in(d, &["generate", "-f", "env", "--profile", "nul.json"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("nul.json:") && r.stderr().contains("NUL"),
        "{}",
        r.explain()
    );
}

/// `show` with a hash that is not a spec hash looks in ./cfgmx.lock; a corrupt lock is called
/// corrupt there too, not "no variant".
#[test]
fn show_says_a_corrupt_lock_is_corrupt() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("cfgmx.lock"),
        "{\"schema\": 1, \"variants\": [",
    )
    .unwrap();
    let r = run_in(dir.path(), &["show", "abcdef12"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("Looked in the lock file too")
            && r.stderr().contains("cfgmx.lock:1:")
            && r.stderr().contains("not a cfgmx lock file"),
        "{}",
        r.explain()
    );
}

/// A source directory without a build system is a usage error found before anything is probed
/// or written: no lock file, no build root, no probe cache.
#[test]
fn a_source_without_a_build_system_is_refused_before_probing() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let before = files_under(dir.path());
    let start = std::time::Instant::now();
    let r = run_in(dir.path(), &["build", "--source", "empty"]);
    r.expect_code(2);
    assert!(
        r.stderr()
            .contains("--source empty: no CMakeLists.txt or meson.build there"),
        "{}",
        r.explain()
    );
    assert!(
        !r.stderr().contains("cannot be built here"),
        "{}",
        r.explain()
    );
    assert_eq!(files_under(dir.path()), before);
    assert!(!dir.path().join(".cfgmx-cache").exists());
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

/// Two files of one `--toolchains` / `--providers` directory with the same `name`: which one
/// wins would depend on file order, so both are refused, the message naming both files and
/// pointing at the second one's `name`.
#[test]
fn two_files_of_one_name_in_a_directory_are_refused_naming_both() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::create_dir(d.join("tc")).unwrap();
    let tc = "name = \"mycc\"\n[executables]\nc = [\"mycc\"]\n";
    std::fs::write(d.join("tc/a.toml"), tc).unwrap();
    std::fs::write(d.join("tc/b.toml"), tc).unwrap();
    std::fs::create_dir(d.join("pr")).unwrap();
    let pr = "name = \"myblas\"\n[[builds]]\nname = \"s\"\nthreading = \"sequential\"\nlibs = [\"myblas\"]\n";
    std::fs::write(d.join("pr/a.toml"), pr).unwrap();
    std::fs::write(d.join("pr/b.toml"), pr).unwrap();
    for (args, want) in [
        (
            ["--toolchains", "tc", "toolchains"],
            "toolchain `mycc` is also defined in tc/a.toml",
        ),
        (
            ["--providers", "pr", "toolchains"],
            "provider `myblas` is also defined in pr/a.toml",
        ),
    ] {
        let before = files_under(d);
        let r = run_in(d, &args);
        r.expect_code(2);
        let err = r.stderr();
        let second = format!("{}/b.toml:1:8", args[1]);
        assert!(
            err.contains(want) && err.contains(&second),
            "{args:?}: {}",
            r.explain()
        );
        assert_eq!(files_under(d), before);
    }
    let r = run_in(d, &["probe", "--timeout", "1e300"]);
    r.expect_code(2);
    assert!(r.stderr().contains("more than a year"), "{}", r.explain());
}

/// `--step-timeout 0` would fail every step before it ran and a huge one overflowed the
/// clock (as did `probe --timeout 1e300`, a panic): usage errors, refused before anything is
/// read or built.
#[test]
fn a_step_timeout_of_zero_or_past_a_year_is_a_usage_error() {
    let dir = tempdir();
    let d = dir.path();
    for (secs, want) in [
        ("0", "a step needs at least 1 second"),
        ("99999999999", "more than a year"),
        ("ten", "`ten` is not a whole number of seconds"),
    ] {
        let before = files_under(d);
        let r = run_in(d, &["build", "--source", ".", "--step-timeout", secs]);
        r.expect_code(2);
        assert!(
            r.stderr().contains("--step-timeout") && r.stderr().contains(want),
            "{secs}: {}",
            r.explain()
        );
        assert_eq!(files_under(d), before);
    }
    let r = run_in(d, &["probe", "--timeout", "1e300"]);
    r.expect_code(2);
    assert!(r.stderr().contains("more than a year"), "{}", r.explain());
}
