//! Lost work is not lost: Ctrl-C during a variant's test step keeps the steps it finished,
//! and the next run resumes there — the configure finds its build dir current and the build,
//! finished before the interruption, is not done again; the tests run and pass.

use cfgmx_tests::{explain, step, variants, MatrixDir};
use std::time::{Duration, Instant};

const MATRIX: &str = r#"name = "resume"
languages = ["c"]
[axes]
compiler = ["gcc"]
blas = ["none"]
build = ["release"]
"#;

#[test]
fn ctrl_c_in_a_test_then_a_rerun_does_not_configure_or_build_again() {
    let env = MatrixDir::new(MATRIX);
    let src = env.path().join("src");
    let marker = env.path().join("slow");
    std::fs::write(&marker, "").unwrap();
    // The test waits while the marker exists (outside the source, so the sources stay the same).
    cfgmx_tests::write_c_project(
        &src,
        &format!(
            "add_test(NAME wait COMMAND sh -c \"while [ -e '{}' ]; do sleep 0.1; done\")\nadd_test(NAME t COMMAND t)\n",
            marker.display()
        ),
        "int main(void) { return 0; }\n",
    );

    let mut child = env
        .build_cmd(&src, "root", &["--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once the test step runs (its log exists).
    let start = Instant::now();
    let test_log = || {
        std::fs::read_dir(env.path().join("root"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("logs/test.log").is_file())
    };
    while !test_log() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the test step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");

    std::fs::remove_file(&marker).unwrap();
    let (o, r) = env.build_json(&src, "root", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let v = &variants(&r)[0];
    assert_eq!(v["status"], "passed", "{v:#}");
    assert_eq!(
        step(v, "configure")["command"],
        "(build dir reused)",
        "{v:#}"
    );
    assert!(
        step(v, "build")["command"]
            .as_str()
            .unwrap()
            .contains("built before the interruption"),
        "the build ran again: {v:#}"
    );
    assert_eq!(v["tests_passed"], 2, "{v:#}");
}
