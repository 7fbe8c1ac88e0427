//! The generated Slurm scripts on a real Slurm: a one-node cluster (Debian's munged,
//! slurmctld and slurmd, started here in a temp directory with their own key, socket, ports
//! and state, stopped when the test ends) runs `sh slurm/submit.sh` for an 8-variant matrix
//! of a real project, one variant of which fails, and then a resubmission.
//!
//! slurmd needs root (CI runs the tests as root); a daemon that cannot start fails the test
//! with its log, it never passes silently.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A one-node cluster for the life of the value: munged, slurmctld and slurmd on this host.
/// Dropping it cancels what is left of its jobs and stops the daemons.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    munged_pid: PathBuf,
}

/// A port nobody listens on now (the kernel's choice), for slurmctld and slurmd.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    l.local_addr().unwrap().port()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let dir = dir.to_path_buf();
        for d in ["state", "spool"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // munged with a key of its own (not the machine's /etc/munge), on a socket here.
        let key = dir.join("munge.key");
        let bytes: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ std::process::id() as u8)
            .collect();
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let sock = dir.join("munge.sock");
        let munged_pid = dir.join("munged.pid");
        let o = output(
            Command::new("munged")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", sock.display()))
                .arg(format!("--pid-file={}", munged_pid.display()))
                .arg(format!("--log-file={}", dir.join("munged.log").display()))
                .arg(format!("--seed-file={}", dir.join("munged.seed").display()))
                // It refuses to run as root, or with a key it thinks is shared, without this.
                .arg("--force"),
        );
        let mut c = Cluster {
            conf: dir.join("slurm.conf"),
            dir,
            daemons: Vec::new(),
            munged_pid,
        };
        if !o.status.success() {
            c.fail(&format!(
                "munged did not start ({}): {}{}",
                o.status,
                text(&o.stdout),
                text(&o.stderr)
            ));
        }
        let host = text(&output(&mut Command::new("hostname")).stdout)
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = c.dir.display().to_string();
        let conf = format!(
            "ClusterName=cfgmxtest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={}\n\
             SlurmdPort={}\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={d}/munge.sock\n\
             CredType=cred/munge\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\n\
             SlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             MpiDefault=none\n\
             ReturnToService=2\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=cfgmx Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
        );
        std::fs::write(&c.conf, conf).unwrap();
        for daemon in ["slurmctld", "slurmd"] {
            let log = std::fs::File::create(c.dir.join(format!("{daemon}.stderr"))).unwrap();
            let child = Command::new(daemon)
                .arg("-D")
                .arg("-f")
                .arg(&c.conf)
                .env("SLURM_CONF", &c.conf)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn();
            match child {
                Ok(ch) => c.daemons.push((daemon, ch)),
                Err(e) => c.fail(&format!("cannot start {daemon}: {e}")),
            }
        }
        // Up when the node is idle (slurmd registered with slurmctld).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = output(c.cmd("sinfo").args(["-h", "-N", "-o", "%T"]));
            if text(&o.stdout).trim() == "idle" {
                break;
            }
            for (name, ch) in &mut c.daemons {
                if let Ok(Some(st)) = ch.try_wait() {
                    let name = *name;
                    c.fail(&format!("{name} exited ({st}) before the node came up"));
                }
            }
            if Instant::now() > deadline {
                c.fail(&format!(
                    "the node is not idle after 60 s: sinfo says {:?} {:?}",
                    text(&o.stdout),
                    text(&o.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        c
    }

    /// A Slurm client command against this cluster.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Every daemon log, for a failure message.
    fn logs(&self) -> String {
        let mut s = String::new();
        for f in [
            "munged.log",
            "slurmctld.log",
            "slurmctld.stderr",
            "slurmd.log",
            "slurmd.stderr",
        ] {
            let t = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = t.lines().rev().take(40).collect();
            s.push_str(&format!("--- {f} (last 40 lines)\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    fn fail(&self, why: &str) -> ! {
        panic!("Slurm test cluster: {why}\n{}", self.logs());
    }

    /// Waits until no job of the cluster is pending or running.
    fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let o = output(self.cmd("squeue").args(["-h", "-o", "%i %T"]));
            if !o.status.success() {
                self.fail(&format!("squeue failed: {}", text(&o.stderr)));
            }
            if text(&o.stdout).trim().is_empty() {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "jobs still queued after {limit:?}:\n{}",
                    text(&o.stdout)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A finished job's exit code as Slurm recorded it (`ExitCode=N:signal`), read while
    /// slurmctld still holds the job (accounting is off here, so no sacct).
    fn exit_code(&self, job: &str) -> String {
        let o = output(self.cmd("scontrol").args(["show", "job", job]));
        let t = text(&o.stdout);
        t.split_whitespace()
            .find_map(|w| w.strip_prefix("ExitCode="))
            .map(str::to_string)
            .unwrap_or_else(|| self.fail(&format!("no ExitCode for job {job}: {t}")))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.cmd("scancel").args(["--user", "root"]).output();
        for (_, ch) in &mut self.daemons {
            let _ = ch.kill();
            let _ = ch.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(&self.munged_pid) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// gcc and clang x sequential/threaded OpenBLAS x debug/release of the C-only test project;
/// clang-threaded-release carries a CMake value CMake refuses, so it (and only it) fails at
/// configure.
const MATRIX: &str = r#"name = "slurm8"
languages = ["c"]
threads = 2
[axes]
compiler = ["gcc", "clang"]
blas = ["sequential", "threaded"]
build = ["debug", "release"]
[[include]]
compiler = "clang"
blas = "threaded"
build = "release"
broken = "yes"
[values.broken.yes]
cmake = { CMAKE_C_STANDARD = "42" }
[blas]
prefer = ["openblas"]
"#;

const BROKEN: &str = "clang-threaded-release-yes";

/// Every file under `dir` with its size and modification time: the project must not change.
/// `cfgmx.lock` is the one exception, by design: every `cfgmx build` adds its variants to the
/// lock in its working directory (here the submit directory), so `cfgmx reproduce HASH` works
/// from the project; the source fingerprint leaves it out.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in cfgmx_tests::files_under(dir) {
        if f == Path::new("cfgmx.lock") {
            continue;
        }
        let md = std::fs::metadata(dir.join(&f)).unwrap();
        out.insert(format!(
            "{} {} {:?}",
            f.display(),
            md.len(),
            md.modified().unwrap()
        ));
    }
    out
}

/// `sh slurm/submit.sh` under umask 022; the ids it prints (arrays, then the merge).
fn submit(c: &Cluster, proj: &Path, env: &[(&str, &Path)]) -> (Vec<String>, String) {
    let mut cmd = c.cmd("sh");
    cmd.args(["-c", "umask 022 && exec sh slurm/submit.sh"])
        .current_dir(proj)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = output(&mut cmd);
    let out = text(&o.stdout);
    if !o.status.success() {
        c.fail(&format!(
            "submit.sh failed ({}): {out}{}",
            o.status,
            text(&o.stderr)
        ));
    }
    let id = |prefix: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.split("job ").nth(1))
            .map(|r| r.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let arrays = id("cfgmx: array ");
    let merge = id("cfgmx: merge: ");
    assert_eq!(
        arrays.len(),
        1,
        "submit.sh prints the array's job id:\n{out}"
    );
    assert_eq!(
        merge.len(),
        1,
        "submit.sh prints the merge's job id:\n{out}"
    );
    assert!(
        arrays
            .iter()
            .chain(&merge)
            .all(|i| i.parse::<u32>().is_ok()),
        "job ids are numbers:\n{out}"
    );
    (arrays, merge[0].clone())
}

fn read_json(p: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}\n{t}", p.display()))
}

/// Every `href` of the HTML page that is not a page anchor or a web address.
fn file_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|l| !l.starts_with('#') && !l.starts_with("http"))
        .map(|l| l.replace("&amp;", "&"))
        .collect()
}

#[test]
fn slurm_array_and_merge_on_a_real_cluster_report_every_variant_and_a_rerun_skips_passes() {
    let tmp = cfgmx_tests::tempdir();
    let t = tmp.path();
    let cluster = Cluster::start(&t.join("slurm"));

    // The project, the generated scripts in it (as a user would: `-o .` at its root), and a
    // warm probe cache the tasks share (each would probe the node itself otherwise).
    let proj = t.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    for e in std::fs::read_dir(cfgmx_tests::repo().join("tests/projects/c-only")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), proj.join(e.file_name())).unwrap();
    }
    let m = t.join("slurm8.toml");
    std::fs::write(&m, MATRIX).unwrap();
    let cache = t.join("probe-cache");
    let bin = cfgmx_tests::bin();
    let cfgmx = |args: &[&str], cwd: &Path| {
        let o = output(
            Command::new(&bin)
                .args(args)
                .current_dir(cwd)
                .env("CFGMX_CACHE_DIR", &cache)
                .env("NO_COLOR", "1"),
        );
        assert!(
            o.status.success(),
            "cfgmx {args:?}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        o
    };
    let ms = m.to_str().unwrap();
    cfgmx(&["generate", ms, "-f", "slurm", "-o", "."], &proj);
    cfgmx(&["expand", ms, "--probe"], &proj);
    let before = tree(&proj);

    // cfgmx on PATH, as on a cluster where it is installed.
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let env: Vec<(&str, &Path)> = vec![
        ("PATH", Path::new(&path)),
        ("CFGMX_CACHE_DIR", &cache),
        ("NO_COLOR", Path::new("1")),
    ];
    let (arrays, merge) = submit(&cluster, &proj, &env);
    cluster.wait_idle(Duration::from_secs(900));

    // Everything the jobs wrote is beside the project, in cfgmx-slurm/proj.
    let out = t.join("cfgmx-slurm/proj");
    let results = out.join("results");
    let names = [
        "gcc-sequential-debug",
        "gcc-sequential-release",
        "gcc-threaded-debug",
        "gcc-threaded-release",
        "clang-sequential-debug",
        "clang-sequential-release",
        "clang-threaded-debug",
        BROKEN,
    ];
    let logs: Vec<String> = cfgmx_tests::files_under(&out.join("logs"))
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let merge_log = out.join(format!("logs/cfgmx-merge-{merge}.out"));
    let merged = std::fs::read_to_string(&merge_log).unwrap_or_else(|e| {
        cluster.fail(&format!(
            "no merge log {} ({e}); logs: {logs:?}",
            merge_log.display()
        ))
    });
    for (i, n) in names.iter().enumerate() {
        let log = out.join(format!("logs/cfgmx-{}_{i}.out", arrays[0]));
        let task = std::fs::read_to_string(&log).unwrap_or_default();
        let r = read_json(&results.join(format!("{n}.json")));
        let v = &r["variants"][0];
        assert_eq!(v["name"], *n, "{r}\ntask log:\n{task}");
        let want = if *n == BROKEN { "failed" } else { "passed" };
        assert_eq!(v["status"], want, "{n}: {r}\ntask log:\n{task}");
        // Each variant's logs are relative to its own build root, recorded whole.
        let root = out.join(format!("build/{n}")).canonicalize().unwrap();
        assert_eq!(v["build_root"], root.display().to_string(), "{r}");
        // The array asks for the matrix's `threads` per task, as its threaded variants test
        // with 2 threads, and cfgmx builds within what Slurm gave.
        assert!(task.contains("on 2 core(s)"), "{n}:\n{task}");
        assert!(
            !task.contains("wrote into its source tree") && v.get("warnings").is_none(),
            "{n} warned about the source tree:\n{task}\n{r}"
        );
        // The merged table has one row per variant, with its status.
        let row = merged
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("no row for {n} in the merged table:\n{merged}"));
        let label = if *n == BROKEN { "FAILED" } else { "passed" };
        assert!(row.contains(label), "{row}\n{merged}");
    }
    assert!(merged.contains("7 passed, 1 failed"), "{merged}");
    assert_eq!(cluster.exit_code(&merge), "1:0", "the merge job fails");
    // Nothing was written into the project: no results, build roots or Slurm logs.
    assert_eq!(tree(&proj), before, "the jobs wrote into the project");

    // JUnit: a suite per variant, the broken one with its failure.
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    for n in names {
        assert!(junit.contains(&format!("name=\"{n}\"")), "{n}:\n{junit}");
    }
    assert!(junit.contains("<failure"), "{junit}");
    // The HTML report's links all lead to files (the step logs in each variant's build root).
    let html_path = results.join("report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    let links = file_links(&html);
    assert!(links.len() >= 8 * 2, "{links:?}");
    for l in &links {
        let target = results.join(l);
        assert!(target.is_file(), "dead link {l} in {}", html_path.display());
    }
    // Readable by the group and others under umask 022, like any file the user writes.
    for f in ["junit.xml", "report.html"] {
        let mode = std::fs::metadata(results.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "{f} has mode {mode:o}");
    }

    // A resubmission: the 7 that passed are cached, the broken one fails again.
    let (_, merge2) = submit(&cluster, &proj, &env);
    cluster.wait_idle(Duration::from_secs(600));
    let merged2 =
        std::fs::read_to_string(out.join(format!("logs/cfgmx-merge-{merge2}.out"))).unwrap();
    for n in names {
        let r = read_json(&results.join(format!("{n}.json")));
        let want = if n == BROKEN { "failed" } else { "cached" };
        assert_eq!(r["variants"][0]["status"], want, "{n} on the rerun: {r}");
    }
    assert!(
        merged2.contains("7 passed (7 cached), 1 failed"),
        "{merged2}"
    );
    assert_eq!(cluster.exit_code(&merge2), "1:0");
    assert_eq!(tree(&proj), before, "the rerun wrote into the project");

    // Results that always merge, on the scheduler: task 0 run where cfgmx cannot start
    // (CFGMX=false) leaves a `crashed` result; task 1's result is gone (as if Slurm had killed
    // it with its wrapper); the merge still lists all 8, those two as crashed and missing, and
    // fails.
    let sbatch = |args: &[&str], extra: &[(&str, &str)]| -> String {
        let mut c = cluster.cmd("sbatch");
        c.arg("--parsable")
            .args(args)
            .current_dir(&proj)
            .env("CFGMX_SOURCE", &proj)
            .env("CFGMX_OUT", &out);
        for (k, v) in &env {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        let o = output(&mut c);
        if !o.status.success() {
            cluster.fail(&format!("sbatch {args:?}: {}", text(&o.stderr)));
        }
        text(&o.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let logs = out.join("logs");
    let crash = sbatch(
        &[
            "--array=0",
            &format!("--output={}/cfgmx-%A_%a.out", logs.display()),
            "slurm/cfgmx-array.sbatch",
        ],
        &[("CFGMX", "false")],
    );
    cluster.wait_idle(Duration::from_secs(120));
    std::fs::remove_file(results.join(format!("{}.json", names[1]))).unwrap();
    let merge3 = sbatch(
        &[
            &format!("--output={}/cfgmx-merge-%j.out", logs.display()),
            "slurm/cfgmx-merge.sbatch",
        ],
        &[],
    );
    cluster.wait_idle(Duration::from_secs(120));
    let r = read_json(&results.join(format!("{}.json", names[0])));
    assert_eq!(r["variants"][0]["status"], "crashed", "{r}");
    assert_eq!(
        r["variants"][0]["reason"],
        format!(
            "the task ended with exit status 1 before cfgmx wrote a result (Slurm log cfgmx-{crash}_0.out)"
        )
    );
    let merged3 = std::fs::read_to_string(logs.join(format!("cfgmx-merge-{merge3}.out"))).unwrap();
    for (n, label) in [
        (names[0], "CRASHED"),
        (names[1], "missing"),
        (names[2], "passed (cached)"),
        (BROKEN, "FAILED"),
    ] {
        assert!(
            merged3
                .lines()
                .any(|l| l.starts_with(&format!("{n} ")) && l.contains(label)),
            "{n} should be {label}:\n{merged3}"
        );
    }
    assert!(
        merged3.contains("5 passed (5 cached), 1 failed, 1 crashed, 1 missing"),
        "{merged3}"
    );
    assert_eq!(cluster.exit_code(&merge3), "1:0");
}

/// MPI variants on the real cluster: the array asks for 2 tasks, each task's `cfgmx build`
/// runs with `-j ntasks x cpus-per-task --mpi-ranks $SLURM_NTASKS`, and the MPI tests of
/// `tests/projects/mpi-hybrid` (C only) launch 2 ranks with MPICH's and Open MPI's own
/// launchers inside the allocation. Open MPI as root needs its two variables, which this
/// harness passes (cfgmx never sets them).
#[test]
fn mpi_variants_run_their_ranks_inside_the_allocation() {
    let tmp = cfgmx_tests::tempdir();
    let t = tmp.path();
    let cluster = Cluster::start(&t.join("slurm"));
    let proj = t.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    for e in std::fs::read_dir(cfgmx_tests::repo().join("tests/projects/mpi-hybrid")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), proj.join(e.file_name())).unwrap();
    }
    let m = t.join("mpi2.toml");
    std::fs::write(
        &m,
        "name = \"mpi2\"\nlanguages = [\"c\"]\n[cmake]\nHYBRID_FORTRAN = \"OFF\"\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"mpich\", \"openmpi\"]\nblas = [\"sequential\"]\n",
    )
    .unwrap();
    let cache = t.join("probe-cache");
    let bin = cfgmx_tests::bin();
    let root_ok = [
        ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
        ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ];
    let ms = m.to_str().unwrap();
    for args in [
        vec!["generate", ms, "-f", "slurm", "-o", "."],
        vec!["expand", ms, "--probe"],
    ] {
        let o = output(
            Command::new(&bin)
                .args(&args)
                .current_dir(&proj)
                .env("CFGMX_CACHE_DIR", &cache)
                .envs(root_ok),
        );
        assert!(
            o.status.success(),
            "cfgmx {args:?}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
    let array = std::fs::read_to_string(proj.join("slurm/cfgmx-array.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --ntasks=2"), "{array}");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let env: Vec<(&str, &Path)> = vec![
        ("PATH", Path::new(&path)),
        ("CFGMX_CACHE_DIR", &cache),
        ("NO_COLOR", Path::new("1")),
        ("OMPI_ALLOW_RUN_AS_ROOT", Path::new("1")),
        ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", Path::new("1")),
    ];
    let (arrays, _merge) = submit(&cluster, &proj, &env);
    cluster.wait_idle(Duration::from_secs(600));
    let out = t.join("cfgmx-slurm/proj");
    for (i, n) in ["gcc-mpich-sequential", "gcc-openmpi-sequential"]
        .iter()
        .enumerate()
    {
        let log = out.join(format!("logs/cfgmx-{}_{i}.out", arrays[0]));
        let task = std::fs::read_to_string(&log).unwrap_or_default();
        let r = read_json(&out.join(format!("results/{n}.json")));
        let v = &r["variants"][0];
        assert_eq!(v["status"], "passed", "{n}: {r}\ntask log:\n{task}");
        // 2 tasks x 1 CPU: 2 cores, 2 ranks
        assert!(task.contains("on 2 core(s)"), "{n}:\n{task}");
        let junit = std::fs::read_to_string(
            out.join(format!("build/{n}"))
                .join(&v["hash"].as_str().unwrap()[..12])
                .join("test-results.xml"),
        )
        .unwrap_or_default();
        assert!(junit.contains("hybrid rank 1 of 2"), "{n}: {junit}\n{task}");
    }
}
