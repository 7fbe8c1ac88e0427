//! Nothing left behind: scratch and staging directories of an interrupted or killed cfgmx are
//! removed (on Ctrl-C by the process itself, after SIGKILL by the next run), and a live
//! process's are never touched; an interrupted probe caches nothing.

use cfgmx_tests::{bin, files_under, run_env, tempdir};
use std::path::Path;
use std::time::{Duration, Instant};

/// A pid above Linux's highest (`pid_max` is at most 2^22): no process can have it.
const DEAD: u32 = 4_194_305;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_runs_staging_and_scratch_are_removed_by_the_next_run() {
    let dir = tempdir();
    let tmp = tempdir();
    let out = dir.path().join("out");
    let me = std::process::id();
    // what `generate -o` and a probe killed by SIGKILL leave, and a live process's own
    for d in [
        out.join(format!(".cfgmx-staging-{DEAD}")),
        out.join(format!(".cfgmx-staging-{me}")),
        tmp.path().join(format!("cfgmx-probe-{DEAD}-abc")),
        tmp.path().join(format!("cfgmx-probe-{me}-abc")),
    ] {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("0"), "partial").unwrap();
    }
    std::fs::create_dir_all(out.join("sub")).unwrap();
    std::fs::write(out.join(format!("sub/.CMakePresets.json.tmp-{DEAD}")), "x").unwrap();
    let tmpdir = tmp.path().to_str().unwrap();
    let r = run_env(
        dir.path(),
        &["generate", "-f", "env", "-o", "out"],
        &[("TMPDIR", tmpdir)],
    );
    r.expect_code(0);
    let left = names(&out);
    assert!(
        !left.contains(&format!(".cfgmx-staging-{DEAD}")),
        "{left:?}"
    );
    assert!(left.contains(&format!(".cfgmx-staging-{me}")), "{left:?}");
    assert!(!out
        .join(format!("sub/.CMakePresets.json.tmp-{DEAD}"))
        .exists());
    assert_eq!(names(tmp.path()), vec![format!("cfgmx-probe-{me}-abc")]);
    // and its own staging directory is gone once it has written
    assert!(!left
        .iter()
        .any(|n| n.starts_with(".cfgmx-staging-") && n != &format!(".cfgmx-staging-{me}")));
    assert!(left.contains(&".cfgmx-generated".to_string()), "{left:?}");
}

#[test]
fn ctrl_c_during_a_probe_removes_its_scratch_directory() {
    let dir = tempdir();
    let tmp = tempdir();
    let mut child = std::process::Command::new(bin())
        .args(["probe", "--fresh"])
        .current_dir(dir.path())
        .env("TMPDIR", tmp.path())
        .env("CFGMX_CACHE_DIR", dir.path().join("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let pid = child.id();
    let mine = format!("cfgmx-probe-{pid}-");
    // wait until a compile has started in it: the interrupt then lands among running compilers
    let busy = || {
        names(tmp.path())
            .iter()
            .filter(|n| n.starts_with(&mine))
            .any(|n| std::fs::read_dir(tmp.path().join(n)).is_ok_and(|mut d| d.next().is_some()))
    };
    while !busy() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the probe made no scratch directory"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(names(tmp.path()), Vec::<String>::new());
    // and compilers killed or never started are not cached as the machine's answer
    assert!(
        !dir.path().join("cache/probe-profile.json").exists(),
        "an interrupted probe cached its profile"
    );
}

#[test]
fn a_template_named_to_write_outside_or_over_the_manifest_is_refused() {
    for name in ["...tera", ".cfgmx-generated.tera", ".hidden.tera"] {
        let dir = tempdir();
        std::fs::write(dir.path().join(name), "{{ matrix.name }}").unwrap();
        let before = files_under(dir.path());
        let r = run_env(
            dir.path(),
            &["generate", "--template", name, "-o", "."],
            &[],
        );
        r.expect_code(2);
        assert!(
            r.stderr().contains("name the template after the file"),
            "{}",
            r.explain()
        );
        assert_eq!(files_under(dir.path()), before, "{name}");
    }
}
