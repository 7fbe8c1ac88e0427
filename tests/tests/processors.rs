//! Cores counted as the tests use them (issue 18): a project whose ctest tests are each
//! `PROCESSORS 2` wide and run the variant's 2 OpenMP threads in each of their processes
//! (`tests/projects/processors`). While cfgmx builds and tests 4 threaded variants on a budget
//! of 4 cores, a sampler reads every thread of those tests from /proc: never more running
//! threads than the budget, although each variant alone would gladly run two tests at once.

use cfgmx_tests::{explain, repo, step, variants, MatrixDir};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

fn matrix() -> String {
    std::fs::read_to_string(repo().join("tests/matrices/gcc-clang.toml"))
        .unwrap()
        .replace("languages = [\"c\", \"fortran\"]", "languages = [\"c\"]")
}

/// The parent pid of `pid`, from /proc (None once it has exited).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// The threads running or ready to run (state R) of the `burn` test processes below `root`.
fn busy_test_threads(root: u32) -> usize {
    let mut busy = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or(true, |c| c.trim() != "burn")
        {
            continue;
        }
        // Ours only: another test's (or another user's) processes are not this budget's.
        let mut p = pid;
        let mut ours = false;
        for _ in 0..32 {
            match parent(p) {
                Some(q) if q == root => {
                    ours = true;
                    break;
                }
                Some(q) if q > 1 => p = q,
                _ => break,
            }
        }
        if !ours {
            continue;
        }
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            if stat
                .rfind(')')
                .and_then(|i| stat.get(i + 2..i + 3))
                .is_some_and(|s| s == "R")
            {
                busy += 1;
            }
        }
    }
    busy
}

#[test]
fn processors_times_threads_never_exceeds_the_budget() {
    let env = MatrixDir::new(&matrix());
    let src: &Path = &repo().join("tests/projects/processors");
    let child = env
        .cmd(&[
            "build",
            "m.toml",
            "-j",
            "4",
            "--build-root",
            "root",
            "--json",
        ])
        .args(["--only", "threaded", "--source"])
        .arg(src)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    let done = AtomicBool::new(false);
    let (o, (samples, most)) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let (mut n, mut most) = (0usize, 0usize);
            while !done.load(Ordering::SeqCst) {
                let b = busy_test_threads(root);
                n += usize::from(b > 0);
                most = most.max(b);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (n, most)
        });
        let o = child.wait_with_output().unwrap();
        done.store(true, Ordering::SeqCst);
        (o, sampler.join().unwrap())
    });
    assert!(
        most <= 4,
        "{most} busy test threads at once on a budget of 4 cores\n{}",
        explain(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(variants(&v).len(), 4, "{v}");
    for x in variants(&v) {
        assert_eq!(x["status"], "passed", "{x}");
        assert_eq!(x["tests_passed"], 4, "{x}");
        assert_eq!(x["threads"], 2, "{x}");
        // The step held a widest test's cores: 2 processes x 2 threads.
        assert_eq!(step(x, "test")["cores"], 4, "{x}");
    }
    eprintln!("{samples} samples with a test running, at most {most} busy test threads");
    // The sampler saw the tests at work, and at their full width (2 processes x 2 threads):
    // the bound above is a measurement, not an empty one.
    assert!(samples > 20, "only {samples} samples with a test running");
    assert!(most >= 3, "at most {most} busy test threads seen");
}
