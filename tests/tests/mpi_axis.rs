//! The `mpi` axis end to end, on the machine's real MPICH and Open MPI (Debian's, both built
//! with gcc 12 and gfortran 12) and the test project `tests/projects/mpi-hybrid` (C and
//! Fortran, MPI + OpenMP + BLAS; its ctest tests check on every rank the ranks, threads and
//! BLAS threading they got): the shipped `mpi-hybrid` matrix builds every available pairing
//! and each passes, clang's Fortran variants are unavailable for the module-file reason, clang
//! C variants reach both MPIs through the override variables, `ldd` of each test binary shows
//! the variant's MPI library and BLAS build, and Open MPI as root without its variables is
//! unproven with its own words.
//!
//! We run as root in CI: Open MPI's launcher then needs OMPI_ALLOW_RUN_AS_ROOT and
//! OMPI_ALLOW_RUN_AS_ROOT_CONFIRM, which this harness sets (cfgmx never does).

use cfgmx_tests::{explain, repo, sh, variants, MatrixDir};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const ROOT_OK: &[(&str, &str)] = &[
    ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
];

fn with_root_ok(mut c: Command) -> Command {
    for (k, v) in ROOT_OK {
        c.env(k, v);
    }
    c
}

fn build(d: &MatrixDir, root: &str) -> Value {
    let o = with_root_ok(d.build_cmd(&repo().join("tests/projects/mpi-hybrid"), root, &[]))
        .arg("--json")
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("no JSON ({e})\n{}", explain(&o)))
}

/// The lock's entry of each variant (what cfgmx configured it with), by name.
fn lock(dir: &Path) -> Vec<Value> {
    let l: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cfgmx.lock")).unwrap()).unwrap();
    l["matrices"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m["variants"].as_object().unwrap().values().cloned())
        .collect()
}

/// Each passed variant's test binaries load its MPI's library (never the other's) and the
/// BLAS build it names, and its tests saw `ranks` ranks of `threads` threads each.
fn check_binaries(dir: &Path, root: &str, report: &Value, bins: &[&str]) {
    let locked = lock(dir);
    for v in variants(report) {
        if v["status"] != "passed" {
            continue;
        }
        let name = v["name"].as_str().unwrap();
        let job = locked.iter().find(|j| j["name"] == name).unwrap();
        let short = &v["hash"].as_str().unwrap()[..12];
        let openmpi = name.contains("openmpi");
        let (mine, other) = if openmpi {
            ("libmpi.so.40", "libmpich.so")
        } else {
            ("libmpich.so.12", "libmpi.so.40")
        };
        let blas_dir = Path::new(job["blas_library"].as_str().unwrap())
            .parent()
            .unwrap();
        for bin in bins {
            let path = dir.join(root).join(short).join("build").join(bin);
            let ldd = sh(&format!("ldd {}", path.display()));
            assert!(ldd.contains(mine), "{name} {bin}: {mine} not in\n{ldd}");
            assert!(!ldd.contains(other), "{name} {bin}: {other} in\n{ldd}");
            let blas = ldd
                .lines()
                .find(|l| l.contains("libopenblas") || l.contains("libblas"))
                .unwrap_or_else(|| panic!("{name} {bin}: no BLAS in\n{ldd}"));
            assert!(
                blas.contains(&format!("{}/", blas_dir.display())),
                "{name} {bin}: not the BLAS of {}: {blas}",
                blas_dir.display()
            );
        }
        // What the tests printed on every rank (ctest's JUnit file keeps each test's output).
        let junit =
            std::fs::read_to_string(dir.join(root).join(short).join("test-results.xml")).unwrap();
        let ranks: u32 = job["mpi_ranks"].as_u64().unwrap() as u32;
        // The BLAS build by its directory (Debian: openblas-serial, -pthread, -openmp).
        let build = blas_dir.file_name().unwrap().to_str().unwrap();
        let blas = match build {
            "openblas-serial" => "sequential",
            "openblas-pthread" => "pthread",
            "openblas-openmp" => "openmp",
            other => panic!("{name}: BLAS build {other}"),
        };
        let blas_threads = if blas == "sequential" { 1 } else { 2 };
        let omp = job["cflags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("-fopenmp"));
        let threads = if omp { 2 } else { 1 };
        assert_eq!(
            ranks * blas_threads.max(threads),
            2,
            "{name}: ranks x threads = the 2 cores"
        );
        for r in 0..ranks {
            let line = format!(
                "hybrid rank {r} of {ranks}: threads {threads}, blas {blas} with {blas_threads} thread(s), dgemm ok"
            );
            assert!(junit.contains(&line), "{name}: no `{line}` in\n{junit}");
        }
        if bins.contains(&"hybrid_f") {
            assert!(
                junit.contains(&format!("hybrid_f rank 0 of {ranks}: threads {threads}")),
                "{name}\n{junit}"
            );
        }
    }
}

/// The shipped matrix: gcc x {mpich, openmpi} x {sequential, threaded} x {debug, release}
/// builds and passes (8 builds); the 8 clang variants are unavailable, the reason naming
/// the module files (Debian's MPIs were built with gfortran; clang's Fortran is flang).
#[test]
fn the_shipped_matrix_builds_each_available_pairing() {
    let text = std::fs::read_to_string(repo().join("matrices/mpi-hybrid.toml")).unwrap();
    let d = MatrixDir::new(&text);
    let report = build(&d, "b");
    let vs = variants(&report);
    assert_eq!(vs.len(), 16, "{report:#}");
    for v in vs {
        let name = v["name"].as_str().unwrap();
        if name.starts_with("gcc-") {
            assert_eq!(v["status"], "passed", "{name}: {v:#}");
            assert_eq!(
                v["tests_passed"], 3,
                "{name}: hybrid_c, hybrid_bare_mpiexec and hybrid_f"
            );
        } else {
            assert_eq!(v["status"], "unavailable", "{name}: {v:#}");
            let why = v["reason"].as_str().unwrap_or_default();
            assert!(
                why.contains(
                    "Fortran module files (`use mpi`, `use mpi_f08`) are compiler-specific"
                ),
                "{name}: {why}"
            );
        }
    }
    check_binaries(d.path(), "b", &report, &["hybrid_c", "hybrid_f"]);
}

/// clang for C with both MPIs: the gcc-built wrappers pointed at clang by MPICH_CC and
/// OMPI_CC (in the variant's environment, the CMake cache names the wrapper and launcher),
/// compiled by clang, each passing on its own MPI. The threaded BLAS is the pthread build:
/// Debian's OpenMP OpenBLAS runs on libgomp, and beside clang's libomp the project's test
/// saw it run 1 thread where 2 were set (cfgmx warns of the two runtimes).
#[test]
fn clang_reaches_both_mpis_through_their_override_variables() {
    let d = MatrixDir::new(
        "name = \"clang-mpi\"\nlanguages = [\"c\"]\n[cmake]\nHYBRID_FORTRAN = \"OFF\"\n[axes]\ncompiler = [\"clang\"]\nmpi = [\"mpich\", \"openmpi\"]\nblas = [\"sequential\", \"openblas-pthread\"]\nbuild = [\"release\"]\n",
    );
    let report = build(&d, "b");
    let vs = variants(&report);
    assert_eq!(vs.len(), 4);
    for v in vs {
        assert_eq!(v["status"], "passed", "{v:#}");
    }
    for j in lock(d.path()) {
        let name = j["name"].as_str().unwrap();
        let (var, wrapper, launcher) = if name.contains("openmpi") {
            (
                "OMPI_CC",
                "/usr/bin/mpicc.openmpi",
                "/usr/bin/mpirun.openmpi",
            )
        } else {
            ("MPICH_CC", "/usr/bin/mpicc.mpich", "/usr/bin/mpiexec.mpich")
        };
        let cc = j["cc"].as_str().unwrap();
        assert!(cc.contains("clang"), "{name}: {cc}");
        assert_eq!(j["env"][var], cc, "{name}: {j:#}");
        assert_eq!(j["cmake"]["MPI_C_COMPILER"], wrapper, "{name}");
        assert_eq!(j["cmake"]["MPIEXEC_EXECUTABLE"], launcher, "{name}");
        let short = &j["hash"].as_str().unwrap()[..12];
        let cmds = std::fs::read_to_string(
            d.path()
                .join("b")
                .join(short)
                .join("build/compile_commands.json"),
        )
        .unwrap();
        assert!(cmds.contains(cc), "{name}: compiled by {cc}?\n{cmds}");
    }
    check_binaries(d.path(), "b", &report, &["hybrid_c"]);
}

/// Open MPI's launcher refuses root without its two variables: as root, the Open MPI
/// variants are unavailable with Open MPI's own reason, MPICH's are proven; with the
/// variables every variant is proven (another proof, not the cached refusal).
#[test]
fn open_mpi_as_root_is_unproven_with_its_own_reason() {
    let d = MatrixDir::new(
        "name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"mpich\", \"openmpi\"]\nblas = [\"none\"]\n",
    );
    let expand = |root_ok: bool| -> Vec<Value> {
        let mut c = d.cmd(&["expand", "m.toml", "--probe", "--json"]);
        for (k, _) in ROOT_OK {
            c.env_remove(k);
        }
        if root_ok {
            c = with_root_ok(c);
        }
        let o = c.output().unwrap();
        let v: Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", explain(&o)));
        v["variants"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| v.as_array().cloned().unwrap())
    };
    let root = sh("id -u").trim() == "0";
    for v in expand(false) {
        let name = v["name"].as_str().unwrap();
        if root && name.contains("openmpi") {
            assert_eq!(v["available"], false, "{v:#}");
            let why = v["reasons"][0].as_str().unwrap();
            assert!(
                why.contains(
                    "mpirun.openmpi -n 2): mpirun.openmpi has detected an attempt to run as root"
                ),
                "{why}"
            );
        } else {
            assert_eq!(v["available"], true, "{v:#}");
        }
    }
    for v in expand(true) {
        assert_eq!(v["available"], true, "{v:#}");
        assert!(v["concrete_flags"]["cmake"]["MPIEXEC_MAX_NUMPROCS"].is_string());
    }
    // Warm: the proofs come from the cache, which is rewritten (a new file) only when a proof
    // was made.
    let proofs = d.path().join("probe-cache/probe-proofs.json");
    let stamp = || {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&proofs).unwrap_or_else(|e| panic!("{}: {e}", proofs.display()));
        (m.ino(), m.mtime_nsec(), m.mtime())
    };
    let before = stamp();
    for v in expand(true) {
        assert_eq!(v["available"], true, "{v:#}");
    }
    assert_eq!(stamp(), before, "a warm expand --probe proved again");
}

/// The Lmod hierarchy of an MPI matrix, with real Lmod: `Core` (compiler) ->
/// `Compiler/<family>/<version>` (MPI) -> `MPI/<family>/<version>/<mpi>/<version>` (variants).
/// A variant loads only after its compiler and its MPI; swapping the MPI makes it inactive
/// (the other MPI's branch has no module of its name) and clears what it set.
#[test]
fn lmod_loads_compiler_then_mpi_then_variant_and_an_mpi_swap_inactivates_it() {
    let d = MatrixDir::new(
        "name = \"hy\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"mpich\", \"openmpi\"]\nblas = [\"sequential\"]\n",
    );
    let o = with_root_ok(d.cmd(&["probe"])).output().unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let o = with_root_ok(d.cmd(&["generate", "m.toml", "-f", "lmod", "-o", "gen"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let gv = sh("gcc -dumpfullversion");
    let version_of = |imp: &str| -> String {
        let dir = d
            .path()
            .join(format!("gen/modules/Compiler/gcc/{gv}/{imp}"));
        let f = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .next()
            .unwrap()
            .unwrap();
        f.file_name()
            .to_str()
            .unwrap()
            .trim_end_matches(".lua")
            .to_string()
    };
    let (ov, mv) = (version_of("openmpi"), version_of("mpich"));
    assert!(d
        .path()
        .join(format!(
            "gen/modules/MPI/gcc/{gv}/openmpi/{ov}/hy/gcc-openmpi-sequential.lua"
        ))
        .is_file());
    let script = format!(
        r#". /usr/share/lmod/lmod/init/bash
module use "$PWD/gen/modules/Core"
module load hy/gcc-openmpi-sequential 2>/dev/null && exit 2
module load gcc/{gv} || exit 3
module load hy/gcc-openmpi-sequential 2>/dev/null && exit 4
module load openmpi/{ov} || exit 5
echo "avail: $(module -t avail 2>&1 | grep '^hy/.' | sort | tr '\n' ' ')"
module load hy/gcc-openmpi-sequential || exit 6
echo "loaded: $(module -t list 2>&1 | tr '\n' ' ')"
echo "MPICC=$MPICC"
module swap openmpi mpich/{mv} 2>&1
echo "swapped: $(module -t list 2>&1 | tr '\n' ' ')"
echo "MPICC=$MPICC"
module load hy/gcc-mpich-sequential || exit 7
echo "final: $(module -t list 2>&1 | tr '\n' ' ')"
echo "MPICC=$MPICC"
"#
    );
    let o = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .current_dir(d.path())
        .env_remove("MODULEPATH")
        .env_remove("LOADEDMODULES")
        .env_remove("_LMFILES_")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", explain(&o));
    let line = |prefix: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))[prefix.len()..]
            .trim()
            .to_string()
    };
    // Only the loaded MPI's variants are visible.
    assert_eq!(line("avail: "), "hy/gcc-openmpi-sequential", "{text}");
    assert_eq!(
        line("loaded: "),
        format!("gcc/{gv} openmpi/{ov} hy/gcc-openmpi-sequential"),
        "{text}"
    );
    assert!(
        text.contains("Inactive Modules:"),
        "the swap inactivates the variant:\n{text}"
    );
    assert_eq!(line("swapped: "), format!("gcc/{gv} mpich/{mv}"), "{text}");
    assert_eq!(
        line("final: "),
        format!("gcc/{gv} mpich/{mv} hy/gcc-mpich-sequential"),
        "{text}"
    );
    let mpicc: Vec<&str> = text.lines().filter(|l| l.starts_with("MPICC=")).collect();
    assert_eq!(
        mpicc,
        [
            "MPICC=/usr/bin/mpicc.openmpi",
            "MPICC=",
            "MPICC=/usr/bin/mpicc.mpich"
        ],
        "the inactive variant's settings are gone:\n{text}"
    );
}

/// The generated files of an MPI variant read back by their consumers: the env script and the
/// scikit-build-core settings script (sh) set the wrapper, the override variable and Open MPI's launch settings; the
/// CMake cache (cmake -C) names the wrapper, the launcher and the ranks.
#[test]
fn generated_files_carry_the_mpi_to_their_consumers() {
    let d = MatrixDir::new(
        "name = \"g\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"clang\"]\nmpi = [\"openmpi\"]\nblas = [\"sequential\"]\n",
    );
    let o = with_root_ok(d.cmd(&["probe"])).output().unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    for f in ["env", "scikit-build-core", "cmake-cache"] {
        let o = with_root_ok(d.cmd(&["generate", "m.toml", "-f", f, "-o", "gen"]))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", explain(&o));
    }
    let clang = sh("command -v clang");
    let vars =
        "echo \"$MPICC|$OMPI_CC|$OMPI_MCA_rmaps_base_oversubscribe|$OMPI_ALLOW_RUN_AS_ROOT\"";
    let got = sh(&format!(
        "cd {} && unset OMPI_ALLOW_RUN_AS_ROOT; . ./gen/env/clang-openmpi-sequential.sh && {vars}",
        d.path().display()
    ));
    assert_eq!(got, format!("/usr/bin/mpicc.openmpi|{clang}|0|"), "env");
    // The scikit-build-core script runs its front end (here one that prints what it got) with
    // the same variables, and the wrapper among its CMake settings.
    let front = d.path().join("front");
    std::fs::write(
        &front,
        format!("#!/bin/sh\n{vars}\nprintf '%s\\n' \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&front, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let got = sh(&format!(
        "cd {} && unset OMPI_ALLOW_RUN_AS_ROOT; PYTHON={} sh gen/python/scikit-build-core/clang-openmpi-sequential.sh pip wheel",
        d.path().display(),
        front.display()
    ));
    let mut lines = got.lines();
    assert_eq!(
        lines.next(),
        Some(format!("/usr/bin/mpicc.openmpi|{clang}|0|").as_str()),
        "scikit-build-core:\n{got}"
    );
    assert!(
        lines.any(|l| l == "--config-settings=cmake.define.MPI_C_COMPILER=/usr/bin/mpicc.openmpi"),
        "{got}"
    );
    let cache = d.path().join("gen/cache/clang-openmpi-sequential.cmake");
    let probe = d.path().join("probe.cmake");
    std::fs::write(
        &probe,
        "foreach(v MPI_C_COMPILER MPIEXEC_EXECUTABLE MPIEXEC_NUMPROC_FLAG MPIEXEC_MAX_NUMPROCS)\n  message(STATUS \"${v}=${${v}}\")\nendforeach()\n",
    )
    .unwrap();
    let out = sh(&format!(
        "cmake -C {} -P {} 2>&1",
        cache.display(),
        probe.display()
    ));
    let cores = std::thread::available_parallelism().unwrap().get();
    for want in [
        "MPI_C_COMPILER=/usr/bin/mpicc.openmpi".to_string(),
        "MPIEXEC_EXECUTABLE=/usr/bin/mpirun.openmpi".to_string(),
        "MPIEXEC_NUMPROC_FLAG=-n".to_string(),
        format!("MPIEXEC_MAX_NUMPROCS={cores}"),
    ] {
        assert!(out.contains(&want), "{want} not in\n{out}");
    }
}

/// Threads of the test program built under `dir` that are running now (state R in /proc):
/// other tests of this binary run the same program from their own directories.
fn busy_threads(comm: &str, dir: &Path) -> Vec<String> {
    let mut n = Vec::new();
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let ours = std::fs::read_link(p.path().join("exe")).is_ok_and(|e| e.starts_with(dir));
        if !ours {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ...`: comm may hold spaces, so split at the last `)`.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let name = head.split_once('(').map(|(_, c)| c).unwrap_or("");
            if name == comm && rest.trim_start().starts_with('R') {
                n.push(t.path().display().to_string());
            }
        }
    }
    n
}

/// Four sequential MPI variants on 2 cores (`-j 2`), each running only a test that declares
/// no ctest PROCESSORS and whose 2 ranks (MPIEXEC_MAX_NUMPROCS: 2 cores over 1 thread) compute
/// for 2 s: sampled from /proc while they run, never more than 2 of their threads run at once
/// (a variant's test step holds the cores of the ranks cfgmx gave it, not the 1 core of a
/// test without PROCESSORS), and 2 do (the sampler sees the tests).
#[test]
fn ranks_times_threads_never_exceed_the_cores() {
    let d = MatrixDir::new(
        "name = \"busy\"\nlanguages = [\"c\"]\n[cmake]\nHYBRID_FORTRAN = \"OFF\"\nHYBRID_BUSY_SECONDS = \"2\"\n[test]\ninclude = [\"^hybrid_busy$\"]\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"mpich\", \"openmpi\"]\nblas = [\"sequential\"]\nbuild = [\"debug\", \"release\"]\n",
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let (report, most) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            // A thread counts as busy when it is running (or waiting to run) in 3 samples in a
            // row: an MPI library's helper threads wake for moments, computing ones stay.
            let mut streak: std::collections::HashMap<String, u32> = Default::default();
            let mut most: Vec<String> = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let now = busy_threads("hybrid_c", d.path());
                streak.retain(|t, _| now.contains(t));
                for t in now {
                    *streak.entry(t).or_default() += 1;
                }
                let busy: Vec<String> = streak
                    .iter()
                    .filter(|(_, n)| **n >= 3)
                    .map(|(t, _)| t.clone())
                    .collect();
                if busy.len() > most.len() {
                    most = busy;
                }
                std::thread::sleep(std::time::Duration::from_millis(15));
            }
            most
        });
        let report = build(&d, "b");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (report, sampler.join().unwrap())
    });
    for v in variants(&report) {
        assert_eq!(v["status"], "passed", "{v:#}");
        assert_eq!(v["tests_passed"], 1, "{v:#}");
    }
    assert!(
        most.len() <= 2,
        "{} threads of the tests ran at once on 2 cores: {most:?}",
        most.len()
    );
    assert_eq!(
        most.len(),
        2,
        "the sampler never saw the tests hold both cores"
    );
}
