//! Fault tests: broken compilers under the probe, SIGINT and SIGKILL at random moments of a
//! real `cfgmx build`, a full disk under `generate` and `build`, concurrent builds and probes
//! on one build root and cache, and corrupted store and cache files. Each asserts what was
//! observed: statuses, exit codes, messages, leftover processes, and what the files hold.
//!
//! The tests take one lock so they never overlap (their timing bounds and kill moments mean
//! something only on an otherwise idle machine); together they take about two minutes on two
//! cores. `CFGMX_FAULT_SEED=N` replays the kill moments of an earlier run (the seed is
//! printed).

use cfgmx_tests::{sh, MatrixDir};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// One probe cache for every build here: the machine is probed once, not per test.
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("cfgmx-faults-cache-")
            .tempdir()
            .unwrap()
    })
    .path()
}

/// A four-variant C-only matrix: gcc and clang, debug and release, no BLAS.
const MATRIX: &str = r#"
name = "faults"
languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["none"]
build = ["debug", "release"]
"#;

/// The smallest project with a configure, a build and a test. The test sleeps a second, so
/// a kill often lands while ctest runs, and a test process cfgmx failed to end would still be
/// there when the test looks (instead of finishing on its own first).
fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(tiny C)\nadd_executable(tiny tiny.c)\nenable_testing()\nadd_test(NAME runs COMMAND tiny 1)\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tiny.c"),
        "#include <stdlib.h>\n#include <unistd.h>\nint main(int argc, char **argv) { if (argc > 1) sleep(atoi(argv[1])); return 0; }\n",
    )
    .unwrap();
}

/// A test directory with the matrix and the project in it, probing into the shared cache.
fn new_env() -> MatrixDir {
    let dir = MatrixDir::with_cache(MATRIX, shared_cache());
    write_project(&dir.path().join("src"));
    dir
}

/// The builds the fault tests run in that directory, their output kept in files.
trait Builds {
    /// `cfgmx build m.toml --json` on `root`, stdout and stderr into files named after `tag`.
    fn spawn_build(&self, root: &Path, tag: &str, extra: &[&str]) -> Child;
    /// The file `TAG.EXT` a build's output went to (empty if there is none).
    fn read(&self, tag: &str, ext: &str) -> String;
    /// The stdout and stderr of the build `tag`, for a failed assertion.
    fn explain(&self, tag: &str) -> String;
    /// Runs a build to its end; returns the exit code and the JSON report.
    fn build(&self, root: &Path, tag: &str, extra: &[&str]) -> (i32, Value);
}

impl Builds for MatrixDir {
    fn spawn_build(&self, root: &Path, tag: &str, extra: &[&str]) -> Child {
        let mut c = self.cmd(&["build", "m.toml", "-j", "2", "--json", "--source", "src"]);
        c.arg("--build-root").arg(root).args(extra);
        c.stdout(std::fs::File::create(self.path().join(format!("{tag}.out"))).unwrap())
            .stderr(std::fs::File::create(self.path().join(format!("{tag}.err"))).unwrap())
            .stdin(Stdio::null());
        c.spawn().unwrap()
    }
    fn read(&self, tag: &str, ext: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{tag}.{ext}"))).unwrap_or_default()
    }
    fn explain(&self, tag: &str) -> String {
        format!(
            "--- {tag} stdout ---\n{}\n--- {tag} stderr ---\n{}",
            self.read(tag, "out"),
            self.read(tag, "err")
        )
    }
    fn build(&self, root: &Path, tag: &str, extra: &[&str]) -> (i32, Value) {
        let st = self.spawn_build(root, tag, extra).wait().unwrap();
        let v = serde_json::from_str(&self.read(tag, "out"))
            .unwrap_or_else(|e| panic!("{tag}: no JSON report ({e}); {st}\n{}", self.explain(tag)));
        (st.code().unwrap_or(-1), v)
    }
}

/// Processes (other than this test) whose working directory is under `dir` or whose command
/// line names it: what a build left running.
fn processes_under(dir: &Path) -> Vec<String> {
    let me = std::process::id().to_string();
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if cwd.starts_with(dir) || cmdline.contains(&needle) {
            found.push(format!("{pid} [{}] {cmdline}", cwd.display()));
        }
    }
    found
}

/// Waits up to `within` for every process under `dir` to end; returns those that did not.
fn leftovers(dir: &Path, within: Duration) -> Vec<String> {
    let end = Instant::now() + within;
    loop {
        let p = processes_under(dir);
        if p.is_empty() || Instant::now() > end {
            return p;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every record in the store, by file name: (variant name, status). Panics on a record that
/// does not parse, or on any file that is neither a record nor a killed writer's temp file.
fn records(root: &Path) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(root.join("records"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp") {
            continue;
        }
        assert!(name.ends_with(".json"), "stray file {name} in the store");
        let text = std::fs::read_to_string(e.path()).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("record {name} does not parse ({err}):\n{text}"));
        out.insert(
            name,
            (
                v["name"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
            ),
        );
    }
    out
}

fn passed(root: &Path) -> BTreeSet<String> {
    records(root)
        .into_values()
        .filter(|(_, s)| s == "passed")
        .map(|(n, _)| n)
        .collect()
}

fn by_name(report: &Value) -> BTreeMap<String, Value> {
    report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_string(), v.clone()))
        .collect()
}

/// The names in a finished run that were cached (passed before, unchanged), and those it built.
fn skipped_and_built(report: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut skipped = BTreeSet::new();
    let mut built = BTreeSet::new();
    for (n, v) in by_name(report) {
        match v["status"].as_str().unwrap() {
            "cached" => {
                assert_eq!(v["reason"], "unchanged since it passed", "{v:#}");
                skipped.insert(n);
            }
            "passed" => {
                built.insert(n);
            }
            other => panic!("{n} is {other}: {v:#}"),
        }
    }
    (skipped, built)
}

/// xorshift64*: reproducible kill moments from a printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn seed() -> u64 {
    std::env::var("CFGMX_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// SIGINT and SIGKILL, ten of each, at seeded random moments of a real build of four
/// variants, until 20 runs were killed mid-way. After each: nothing left running under the
/// test's directory, every record parses, every variant that had passed still has its passed
/// record; when a run gets to finish, it skipped exactly what had passed and built the rest.
#[test]
fn sigint_and_sigkill_at_random_moments_lose_nothing_and_leave_nothing_running() {
    let _g = serial();
    let env = new_env();
    let seed = seed();
    eprintln!("fault seed {seed} (CFGMX_FAULT_SEED={seed} replays these moments)");
    let mut rng = Rng(seed);
    // One whole build sets the scale of the kill moments (and warms the probe cache).
    let t0 = Instant::now();
    let (code, full) = env.build(&env.path().join("root-0"), "calibrate", &[]);
    let whole = t0.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{}", env.explain("calibrate"));
    assert_eq!(by_name(&full).len(), 4);
    let mut log = vec![format!("a whole build of 4 variants: {whole:.2} s")];
    let (mut kills, mut finished, mut cycle, mut trial) = ([0usize; 2], 0, 1, 0);
    let mut root = env.path().join(format!("root-{cycle}"));
    let mut by_signal = BTreeMap::<String, usize>::new();
    while kills[0] + kills[1] < 20 {
        trial += 1;
        assert!(
            trial < 80,
            "too few runs were still going at their kill moment"
        );
        // Ten of each: the signal that has killed fewer runs so far goes next.
        let sig = if kills[0] <= kills[1] {
            libc::SIGINT
        } else {
            libc::SIGKILL
        };
        let name = if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGKILL"
        };
        // A resumed run has less to do than the whole build: most moments fall within it.
        let at = Duration::from_secs_f64(rng.next() * whole * 0.8);
        let before = passed(&root);
        let tag = format!("trial-{trial}");
        let mut child = env.spawn_build(&root, &tag, &[]);
        let start = Instant::now();
        let killed = loop {
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            if start.elapsed() >= at {
                break true;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if killed {
            signal(&child, sig);
        }
        let status = child.wait().unwrap();
        // cfgmx's own SIGINT handler gives its children 2 s between SIGTERM and SIGKILL; the
        // watchdog that acts for a SIGKILLed cfgmx, 0.3 s. Anything alive later was orphaned.
        let grace = if killed && sig == libc::SIGKILL {
            0.8
        } else {
            2.5
        };
        let left = leftovers(env.path(), Duration::from_secs_f64(grace));
        assert!(
            left.is_empty(),
            "trial {trial}: {name} at {at:?} left processes running:\n{}\n{}",
            left.join("\n"),
            env.explain(&tag)
        );
        let after = passed(&root);
        assert!(
            before.is_subset(&after),
            "trial {trial}: passed results lost: before {before:?}, after {after:?}"
        );
        let outcome = if killed {
            use std::os::unix::process::ExitStatusExt;
            kills[usize::from(sig == libc::SIGKILL)] += 1;
            // SIGINT before cfgmx's handler is in place ends it by the signal; after, it
            // cleans up and exits 130. SIGKILL always ends it by the signal.
            let ok = match sig {
                libc::SIGINT => status.code() == Some(130) || status.signal() == Some(libc::SIGINT),
                _ => status.signal() == Some(libc::SIGKILL),
            };
            assert!(
                ok,
                "trial {trial}: {name} gave {status}\n{}",
                env.explain(&tag)
            );
            let o = match (status.code(), status.signal()) {
                (Some(c), _) => format!("{name}: exit {c}"),
                (_, Some(s)) => format!("{name}: killed by signal {s}"),
                _ => format!("{name}: {status}"),
            };
            *by_signal.entry(o.clone()).or_default() += 1;
            o
        } else {
            // It finished before its moment: it must have resumed, skipping exactly what had
            // passed before and building the rest.
            assert_eq!(status.code(), Some(0), "{}", env.explain(&tag));
            let report: Value = serde_json::from_str(&env.read(&tag, "out")).unwrap();
            let (skipped, built) = skipped_and_built(&report);
            assert_eq!(skipped, before, "trial {trial}: {}", env.explain(&tag));
            assert_eq!(skipped.len() + built.len(), 4);
            assert_eq!(after.len(), 4);
            finished += 1;
            cycle += 1;
            root = env.path().join(format!("root-{cycle}"));
            format!(
                "finished first: skipped {}, built {}",
                skipped.len(),
                built.len()
            )
        };
        log.push(format!(
            "trial {trial:2}: {name} at {:.3} s -> {outcome}; passed records {} -> {}",
            at.as_secs_f64(),
            before.len(),
            after.len()
        ));
    }
    // The last root resumes to the end: what had passed is skipped, the rest is built.
    let before = passed(&root);
    let (code, report) = env.build(&root, "resume", &[]);
    assert_eq!(code, 0, "{}", env.explain("resume"));
    let (skipped, built) = skipped_and_built(&report);
    assert_eq!(skipped, before);
    assert_eq!(skipped.len() + built.len(), 4);
    log.push(format!(
        "final resume: skipped {}, built {}",
        skipped.len(),
        built.len()
    ));
    log.push(format!(
        "{} runs killed ({} SIGINT, {} SIGKILL), {finished} finished before their moment; outcomes {by_signal:?}; no leftover process, no lost record",
        kills[0] + kills[1],
        kills[0],
        kills[1]
    ));
    eprintln!("{}", log.join("\n"));
}

/// Two and four `cfgmx build --wait` at once on one root: each variant is built exactly once,
/// the others wait and skip it; without --wait the second is refused at once. Then corrupted
/// records: a truncated one and a garbage one are reported, discarded and rebuilt.
#[test]
fn concurrent_builds_share_a_root_and_corrupt_records_are_rebuilt() {
    let _g = serial();
    let env = new_env();
    for n in [2usize, 4] {
        let root = env.path().join(format!("shared-{n}"));
        let children: Vec<(String, Child)> = (0..n)
            .map(|i| {
                let tag = format!("c{n}-{i}");
                let c = env.spawn_build(&root, &tag, &["--wait"]);
                (tag, c)
            })
            .collect();
        let mut built = BTreeMap::<String, usize>::new();
        for (tag, mut c) in children {
            let st = c.wait().unwrap();
            assert_eq!(st.code(), Some(0), "{}", env.explain(&tag));
            let report: Value = serde_json::from_str(&env.read(&tag, "out")).unwrap();
            let (_, b) = skipped_and_built(&report);
            for name in b {
                *built.entry(name).or_default() += 1;
            }
        }
        assert_eq!(built.len(), 4, "{n} runs: {built:?}");
        assert!(built.values().all(|&k| k == 1), "{n} runs: {built:?}");
        assert_eq!(passed(&root).len(), 4);
        eprintln!("{n} concurrent builds with --wait: each of 4 variants built once, 4 records");
    }

    // Without --wait the second build is refused while the first holds the root.
    let root = env.path().join("refuse");
    let mut first = env.spawn_build(&root, "holder", &[]);
    let t = Instant::now();
    while !env.read("holder", "err").contains("cfgmx build:") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{}",
            env.explain("holder")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = env.spawn_build(&root, "refused", &[]).wait().unwrap();
    assert_eq!(st.code(), Some(2), "{}", env.explain("refused"));
    assert!(
        env.read("refused", "err")
            .contains("another cfgmx build is using the build root"),
        "{}",
        env.explain("refused")
    );
    assert_eq!(
        first.wait().unwrap().code(),
        Some(0),
        "{}",
        env.explain("holder")
    );
    assert_eq!(passed(&root).len(), 4);

    // Corrupt two records of the finished root: one cut in half, one overwritten.
    let recs = records(&root);
    let mut it = recs.iter();
    let (trunc, (trunc_name, _)) = it.next().unwrap();
    let (garbage, (garbage_name, _)) = it.next().unwrap();
    let p = root.join("records").join(trunc);
    let text = std::fs::read(&p).unwrap();
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    std::fs::write(
        root.join("records").join(garbage),
        b"\x00\xffnot json at all",
    )
    .unwrap();
    let (code, report) = env.build(&root, "after-corruption", &[]);
    assert_eq!(code, 0, "{}", env.explain("after-corruption"));
    let err = env.read("after-corruption", "err");
    for f in [trunc, garbage] {
        assert!(
            err.lines().any(|l| l.starts_with("warning:")
                && l.contains(f.as_str())
                && l.contains("corrupt")
                && l.contains("building it again")),
            "no warning for {f}:\n{err}"
        );
    }
    let (skipped, built) = skipped_and_built(&report);
    assert_eq!(
        built,
        BTreeSet::from([trunc_name.clone(), garbage_name.clone()])
    );
    assert_eq!(skipped.len(), 2);
    assert_eq!(passed(&root).len(), 4);
    eprintln!(
        "corrupt records (truncated, garbage): warned, discarded, rebuilt; the other 2 skipped"
    );
}

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A `PATH` with only what gcc needs besides itself, so the probe sees just `--search`.
fn tools_path() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for t in ["as", "ld"] {
        std::os::unix::fs::symlink(sh(&format!("command -v {t}")), d.path().join(t)).unwrap();
    }
    d
}

/// Broken compilers beyond those `probe.rs` covers (a plain hang, SIGSEGV, a banner of
/// nonsense, a file that cannot be executed): one that ignores SIGTERM while it hangs, one
/// that aborts, one that pours out megabytes of binary garbage, one that leaves a daemon
/// holding its output open, a real gfortran whose compiles hang (identified, then its
/// facet test times out), and a real clang whose compiles hang (its first compile, which
/// also asks its version text, is all it is asked). Each is reported with its status, and the probe ends within its
/// timeout plus a second.
#[test]
fn broken_compilers_are_reported_within_the_timeout() {
    let _g = serial();
    let bin = tempfile::tempdir().unwrap();
    let tools = tools_path();
    let cache = tempfile::tempdir().unwrap();
    let b = bin.path();
    let marker = b.display().to_string();
    // (executable, script, status, words the record's error must contain)
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "gcc",
            "#!/bin/sh\ntrap '' TERM\nwhile :; do /bin/sleep 1; done\n".into(),
            "timed_out",
            "timed out",
        ),
        ("clang", "#!/bin/sh\nkill -ABRT $$\n".into(), "crashed", "SIGABRT"),
        (
            "icc",
            "#!/bin/sh\n/usr/bin/head -c 20000000 /dev/urandom\n".into(),
            "unrecognised",
            "",
        ),
        (
            "pgcc",
            format!("#!/bin/sh\n/usr/bin/setsid /bin/sleep 20 {marker} &\necho 'pgcc: who knows'\n"),
            "unrecognised",
            "",
        ),
        (
            "gfortran",
            format!("#!/bin/sh\necho \"$*\" >> {marker}/gfortran.calls\nfor a do [ \"$a\" = -o ] && exec /bin/sleep 1000; done\nexec /usr/bin/gfortran \"$@\"\n"),
            // answers its version, hangs compiling: not asked again, so no preprocessor run
            // gives it a family, and nothing waits a second timeout
            "timed_out",
            "timed out",
        ),
        (
            "clang-77",
            format!("#!/bin/sh\necho \"$*\" >> {marker}/clang.calls\nfor a do [ \"$a\" = -c ] && exec /bin/sleep 1000; done\nexec /usr/bin/clang \"$@\"\n"),
            // hangs in its first compile, which also asks its version text (`-v`): that
            // hang is its answer, and nothing is asked after it
            "timed_out",
            "timed out",
        ),
    ];
    for (exe, script, _, _) in cases {
        write_exe(&b.join(exe), script);
    }
    let timeout = 2.0;
    // Build (or check) the binary before the clock starts: only the probe is timed.
    let _ = cfgmx_tests::bin();
    let t = Instant::now();
    let r = cfgmx_tests::run_env(
        cache.path(),
        &[
            "probe",
            "--json",
            "--fresh",
            "--timeout",
            "2",
            "--search",
            b.to_str().unwrap(),
        ],
        &[("PATH", tools.path().to_str().unwrap())],
    );
    let took = t.elapsed();
    r.expect_code(0);
    let p = r.json();
    assert!(
        took < Duration::from_secs_f64(timeout + 1.0),
        "probe took {took:?}\n{}",
        r.explain()
    );
    for (exe, _, status, says) in cases {
        let path = format!("{}/{exe}", b.display());
        let c = p["compilers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == path.as_str())
            .unwrap_or_else(|| panic!("no record for {exe}:\n{p:#}"));
        assert_eq!(c["status"], *status, "{exe}: {c:#}");
        let text = c["error"].as_str().unwrap_or("");
        assert!(text.contains(says), "{exe}: `{says}` not in `{text}`");
        eprintln!(
            "{exe:9} -> {status:12} {}",
            text.lines().next().unwrap_or("")
        );
    }
    // the compiler that hung compiling was not asked anything after that
    let calls = std::fs::read_to_string(b.join("gfortran.calls")).unwrap();
    let last = calls.lines().last().unwrap_or("");
    assert!(
        last.split(' ').any(|w| w == "-o"),
        "asked again after it hung:\n{calls}"
    );
    assert_eq!(
        calls
            .lines()
            .filter(|l| l.split(' ').any(|w| w == "-o"))
            .count(),
        1,
        "{calls}"
    );
    let calls = std::fs::read_to_string(b.join("clang.calls")).unwrap();
    assert_eq!(calls.lines().count(), 1, "{calls}");
    assert!(calls.split(' ').any(|w| w == "-v"), "{calls}");
    eprintln!("probe with 6 broken compilers and a 2 s timeout took {took:.2?}");
    // The daemon left the process group on purpose (setsid): not cfgmx's to kill, so the
    // test ends it, by pid. Nothing else of theirs is left running.
    let left: Vec<String> = leftovers(b, Duration::from_secs(3));
    for l in left.iter().filter(|l| l.contains("sleep 20")) {
        let pid: i32 = l.split(' ').next().unwrap().parse().unwrap();
        // SAFETY: a pid just read from /proc, our own daemon's.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let left: Vec<&String> = left.iter().filter(|l| !l.contains("sleep 20")).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Two and four concurrent fresh probes with one cache directory, while a reader keeps reading
/// the cache file: every read is whole JSON, every probe's answer is whole, the cache stays
/// valid. Then the cache is truncated, then overwritten with garbage: the next probe warns,
/// discards it, probes again and writes a valid one; `generate` warns too.
#[test]
fn concurrent_probes_and_a_corrupt_cache() {
    let _g = serial();
    let bin = tempfile::tempdir().unwrap();
    let tools = tools_path();
    let cache = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/usr/bin/gcc", bin.path().join("gcc")).unwrap();
    let search = bin.path().to_str().unwrap().to_string();
    let cache_file = cache.path().join(".cfgmx-cache/probe-profile.json");
    let probe = |extra: &[&str]| {
        let mut c = Command::new(cfgmx_tests::bin());
        c.current_dir(cache.path())
            .env("CFGMX_CACHE_DIR", cache.path().join(".cfgmx-cache"))
            .env("PATH", tools.path())
            .args(["probe", "--json", "--search", &search])
            .args(extra);
        c
    };
    for n in [2, 4] {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (reads, outs) = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Ok(text) = std::fs::read(&cache_file) {
                        serde_json::from_slice::<Value>(&text).unwrap_or_else(|e| {
                            panic!("a reader saw a partial cache ({e}), {} bytes", text.len())
                        });
                        reads += 1;
                    }
                }
                reads
            });
            let children: Vec<Child> = (0..n)
                .map(|_| {
                    probe(&["--fresh"])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let outs: Vec<std::process::Output> = children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect();
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            (reader.join().unwrap(), outs)
        });
        for o in &outs {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let p: Value = serde_json::from_slice(&o.stdout).unwrap();
            let gcc = format!("{search}/gcc");
            assert!(
                p["compilers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["path"] == gcc.as_str() && c["status"] == "ok"),
                "{p:#}"
            );
        }
        let cached: Value = serde_json::from_slice(&std::fs::read(&cache_file).unwrap()).unwrap();
        assert!(cached["profile"]["compilers"].is_array());
        let litter: Vec<PathBuf> = cfgmx_tests::files_under(&cache.path().join(".cfgmx-cache"));
        assert_eq!(litter, [PathBuf::from("probe-profile.json")]);
        eprintln!("{n} concurrent probes: {reads} whole reads of the cache meanwhile, cache valid");
    }

    let good = std::fs::read(&cache_file).unwrap();
    for (what, bytes) in [
        ("truncated", good[..good.len() / 3].to_vec()),
        ("garbage", b"\x7fELF\x00\x01 garbage".to_vec()),
    ] {
        std::fs::write(&cache_file, &bytes).unwrap();
        let o = probe(&[]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{what}: {err}");
        assert!(
            err.contains("warning: the probe cache") && err.contains("was corrupt"),
            "{what}: {err}"
        );
        serde_json::from_slice::<Value>(&o.stdout).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&cache_file).unwrap()).unwrap();
        assert!(v["profile"]["compilers"].is_array(), "{what}");
        eprintln!("{what} probe cache: warned, discarded, rebuilt");
    }
    // generate reads the cache but never probes: it warns and renders abstract variants.
    std::fs::write(&cache_file, &good[..10]).unwrap();
    std::fs::write(cache.path().join("m.toml"), MATRIX).unwrap();
    let o = Command::new(cfgmx_tests::bin())
        .current_dir(cache.path())
        .env("CFGMX_CACHE_DIR", cache.path().join(".cfgmx-cache"))
        .env("PATH", tools.path())
        .args(["generate", "m.toml", "-f", "cmake-presets"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("was corrupt"), "{err}");
    assert!(!cache_file.exists(), "a corrupt cache was kept");
}

/// A tmpfs of 1 MiB mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
    /// Fills the file system, leaving about `free` bytes.
    fn fill(&self, free: u64) {
        let f = self.0.join("filler");
        let _ = std::fs::remove_file(&f);
        let mut file = std::fs::File::create(&f).unwrap();
        let chunk = vec![0u8; 4096];
        use std::io::Write;
        while file.write_all(&chunk).is_ok() {}
        drop(file);
        let len = std::fs::metadata(&f).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        file.set_len(len.saturating_sub(free)).unwrap();
    }
    fn unfill(&self) {
        let _ = std::fs::remove_file(self.0.join("filler"));
    }
    fn grow(&self) {
        let s = Command::new("mount")
            .args(["-o", "remount,size=256m"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    cfgmx_tests::files_under(dir)
        .into_iter()
        .filter(|p| p != Path::new("filler"))
        .map(|p| (p.clone(), std::fs::read(dir.join(&p)).unwrap()))
        .collect()
}

/// A full disk under `generate -o` (a 1 MiB tmpfs, filled): a clear error naming the file and
/// ENOSPC, and the directory exactly as before (the earlier generation whole, no temp file).
/// Under `build`: the variants that do not fit fail saying the disk is full, every record is
/// whole, and with space again the next run builds only what did not pass.
#[test]
fn a_full_disk_under_generate_and_build() {
    let _g = serial();
    let env = new_env();
    let disk = match Tmpfs::mount(&env.path().join("disk")) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs here ({why}); the full-disk test needs root");
            return;
        }
    };
    let out = disk.0.join("gen");
    // Abstract variants: a cache directory of its own with no profile in it.
    let generate = |matrix: &str| {
        Command::new(cfgmx_tests::bin())
            .current_dir(env.path())
            .env("CFGMX_CACHE_DIR", env.path().join("no-cache"))
            .args(["generate", matrix, "-f", "lmod", "-o"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = generate("m.toml");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = contents(&out);
    assert!(first.len() > 4, "{first:?}");
    // A changed matrix, on a full disk.
    std::fs::write(
        env.path().join("m2.toml"),
        MATRIX.replace("[axes]", "threads = 3\n[env]\nBIGGER = \"yes\"\n[axes]"),
    )
    .unwrap();
    disk.fill(0);
    let o = generate("m2.toml");
    let err = String::from_utf8_lossy(&o.stderr);
    // A run-time failure, not bad input: exit 1 (the exit-code table, error::Exit).
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: cannot write") && err.contains("No space left on device"),
        "{err}"
    );
    assert_eq!(
        contents(&out),
        first,
        "a failed generate changed the directory"
    );
    eprintln!(
        "generate on a full disk: exit 1, `{}`, directory unchanged",
        err.trim()
    );
    disk.unfill();
    let o = generate("m2.toml");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(contents(&out), first);

    // build: the build root on the small disk, a little space left.
    std::fs::remove_dir_all(&out).unwrap();
    let root = disk.0.join("root");
    disk.fill(160 << 10);
    let (code, report) = env.build(&root, "full", &[]);
    let err = env.read("full", "err");
    assert_eq!(code, 1, "{}", env.explain("full"));
    let vs = by_name(&report);
    let failed: BTreeSet<String> = vs
        .iter()
        .filter(|(_, v)| v["status"] == "failed")
        .map(|(n, _)| n.clone())
        .collect();
    assert!(!failed.is_empty());
    for n in &failed {
        let v = &vs[n];
        let says_full = v["steps"].as_array().unwrap().iter().any(|s| {
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("is full") || m.contains("No space left"))
        }) || v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("No space left"));
        assert!(
            says_full,
            "{n} failed without saying the disk is full: {v:#}"
        );
        // and the terminal says so too, not just `FAILED name ()`
        let at = err
            .find(&format!("FAILED {n} "))
            .unwrap_or_else(|| panic!("no FAILED line for {n}:\n{err}"));
        let shown: String = err[at..].lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(
            shown.contains("No space left") || shown.contains("is full"),
            "{n}: the terminal does not say the disk is full:\n{shown}"
        );
    }
    // Whatever got recorded is whole; no temp file is left in the store.
    let recs = records(&root);
    assert!(
        !cfgmx_tests::files_under(&root.join("records"))
            .iter()
            .any(|p| p.to_string_lossy().contains(".tmp")),
        "a temp record was left"
    );
    let passed_before = passed(&root);
    eprintln!(
        "build on a full disk: exit 1, {} of 4 failed saying the disk is full, {} whole records, no temp file; stderr warnings: {}",
        failed.len(),
        recs.len(),
        err.lines().filter(|l| l.starts_with("warning:")).count()
    );
    disk.unfill();
    disk.grow();
    let (code, report) = env.build(&root, "after-full", &[]);
    assert_eq!(code, 0, "{}", env.explain("after-full"));
    let (skipped, built) = skipped_and_built(&report);
    assert_eq!(skipped, passed_before);
    assert_eq!(skipped.len() + built.len(), 4);
    assert_eq!(
        leftovers(env.path(), Duration::from_secs(3)),
        Vec::<String>::new()
    );
}
