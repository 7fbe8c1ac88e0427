//! `cfgmx probe` against the real compilers and BLAS builds the setup script installs, and
//! against emulated HPC compilers: scripts that print a real banner from
//! `tests/fixtures/compiler-versions.toml`, accept the family's OpenMP spelling and define its
//! identity macros, and forward to gcc/g++/gfortran.

use cfgmx_model::Registry;
use cfgmx_tests::{run_env, sh, Run};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIXTURES: &str = include_str!("../fixtures/compiler-versions.toml");

/// Runs `cfgmx ARGS` through the shared harness in `dir` (cache in `dir/.cfgmx-cache`), with
/// `PATH` replaced when given.
fn cfgmx(args: &[&str], dir: &Path, path: Option<&str>) -> Run {
    match path {
        Some(p) => run_env(dir, args, &[("PATH", p)]),
        None => run_env(dir, args, &[]),
    }
}

fn probe_json(args: &[&str], dir: &Path, path: Option<&str>) -> Value {
    let mut a = vec!["probe", "--json"];
    a.extend_from_slice(args);
    let r = cfgmx(&a, dir, path);
    r.expect_code(0);
    r.json()
}

fn compiler<'a>(p: &'a Value, path: &str) -> &'a Value {
    p["compilers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("no compiler record for {path} in\n{p:#}"))
}

/// A `PATH` with only what gcc needs besides itself (the assembler and linker), so a probe
/// sees just the compilers a test puts in its `--search` directory.
fn tools_path() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for t in ["as", "ld"] {
        std::os::unix::fs::symlink(sh(&format!("command -v {t}")), d.path().join(t)).unwrap();
    }
    d
}

/// A fresh probe that sees only the compilers in `dir` (besides the assembler and linker),
/// with a cache of its own.
fn probe_only(dir: &Path) -> Value {
    let tools = tools_path();
    let cache = tempfile::tempdir().unwrap();
    probe_json(
        &["--search", dir.to_str().unwrap(), "--fresh"],
        cache.path(),
        Some(tools.path().to_str().unwrap()),
    )
}

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Compiles and runs an OpenMP program with `flag` (split on spaces): the recorded flag must
/// really work, checked here independently of the probe.
fn openmp_flag_works(cc: &str, flag: &str, dir: &Path) -> bool {
    let src = dir.join(if cc.ends_with("++") {
        "t.cpp"
    } else if cc.contains("fortran") {
        "t.f90"
    } else {
        "t.c"
    });
    if cc.contains("fortran") {
        std::fs::write(
            &src,
            "program t\nuse omp_lib\nprint *, omp_get_max_threads()\nend program t\n",
        )
        .unwrap();
    } else {
        std::fs::write(&src, "#include <omp.h>\n#include <stdio.h>\nint main(void){printf(\"%d\\n\", omp_get_max_threads());return 0;}\n").unwrap();
    }
    let exe = dir.join("t.out");
    let ok = std::process::Command::new(cc)
        .args(flag.split_whitespace())
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(flag.split_whitespace())
        .status()
        .unwrap()
        .success();
    ok && std::process::Command::new(&exe)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn real_compilers_mpi_and_blas() {
    let cache = tempfile::tempdir().unwrap();
    let p = probe_json(&["--fresh"], cache.path(), None);
    let scratch = tempfile::tempdir().unwrap();
    let gcc_version = sh("gcc -dumpfullversion");
    let clang_version = {
        let banner = sh("clang --version");
        let v = banner.split("clang version ").nth(1).unwrap();
        v.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap()
            .to_string()
    };
    for (exe, family, version, lang) in [
        ("gcc", "gcc", &gcc_version, "c"),
        ("g++", "gcc", &gcc_version, "cxx"),
        ("gfortran", "gcc", &gcc_version, "fortran"),
        ("clang", "clang", &clang_version, "c"),
        ("clang++", "clang", &clang_version, "cxx"),
    ] {
        let path = sh(&format!("command -v {exe}"));
        let c = compiler(&p, &path);
        assert_eq!(c["family"], family, "{c:#}");
        assert_eq!(c["version"].as_str().unwrap(), version.as_str(), "{c:#}");
        assert_eq!(c["languages"][0], lang, "{c:#}");
        let omp = &c["facets"]["openmp"];
        assert_eq!(omp["works"], true, "{exe}: {omp:#}");
        // the interface scripts rely on: all three keys, always
        for k in ["flag", "works", "reason"] {
            assert!(omp.get(k).is_some(), "{exe}: no `{k}` in {omp:#}");
        }
        let flag = omp["flag"].as_str().unwrap();
        assert!(
            openmp_flag_works(&path, flag, scratch.path()),
            "{exe} {flag} does not work"
        );
    }
    // Every MPI wrapper (MPICH's and Open MPI's, suffixed and plain) against ground truth:
    // tests/tests/mpi.rs.

    // Each Debian OpenBLAS build sits in its own directory; the probe does not read directory
    // names for threading, so the directory is an independent witness.
    let blas = p["blas"].as_array().unwrap();
    for (dir, threading) in [
        ("openblas-serial", "sequential"),
        ("openblas-pthread", "pthread"),
        ("openblas-openmp", "openmp"),
    ] {
        let r = blas
            .iter()
            .find(|b| b["provider"] == "openblas" && b["lib_dir"].as_str().unwrap().ends_with(dir))
            .unwrap_or_else(|| panic!("no OpenBLAS record in {dir}: {blas:#?}"));
        assert_eq!(r["threading"], threading, "{r:#}");
    }
    assert!(
        blas.iter().any(|b| b["provider"] == "blis"),
        "BLIS not found: {blas:#?}"
    );
    let default = std::fs::canonicalize(sh("ls /usr/lib/*/libblas.so.3 | head -1")).unwrap();
    assert_eq!(
        p["default_blas"].as_str().unwrap(),
        default.display().to_string()
    );
    assert_eq!(
        blas.iter().filter(|b| b["is_default"] == true).count(),
        1,
        "{blas:#?}"
    );
}

/// Fixture family -> (descriptor, identity macros the real compiler defines: C, Fortran).
fn emulation(family: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match family {
        "intel-classic" => ("icc", "-D__INTEL_COMPILER=2021", "-D__INTEL_COMPILER=2021"),
        "oneapi" => (
            "oneapi",
            "-D__INTEL_LLVM_COMPILER=20230000 -D__clang__=1",
            "-D__INTEL_LLVM_COMPILER=20230000",
        ),
        "pgi" => ("pgi", "-D__PGI=1", "-D__PGI=1"),
        "nvhpc" => ("nvhpc", "-D__NVCOMPILER=1", "-D__NVCOMPILER=1"),
        "xl" => ("xl", "-D__ibmxl__=1", "-D__IBMC__=1600"),
        "cce" => ("cce", "-D_CRAYC=1", "-D_CRAYFTN=1"),
        "acfl" => (
            "armclang",
            "-D__clang__=1 -D__ARMCOMPILER_VERSION=22010000",
            "-D__clang__=1",
        ),
        "fujitsu" => ("fujitsu", "-D__FUJITSU=1", "-D__FUJITSU=1"),
        // Arm Toolchain for Linux shares armclang's name: not one of the emulated families
        _ => return None,
    })
}

/// A script that prints `banner` for exactly `arg`, turns the family's OpenMP spellings into
/// `-fopenmp`, adds identity macros when preprocessing, and runs `real` for everything else.
fn emulator(arg: &str, banner: &str, real: &str, macros: &str, log: Option<&Path>) -> String {
    // printf is a shell builtin: the scripts run with a PATH that has no coreutils
    let banner = banner.replace('\'', "'\\''");
    let log = log.map_or(String::new(), |l| {
        format!("echo \"$*\" >> '{}'\n", l.display())
    });
    format!(
        r#"#!/bin/sh
{log}if [ "$*" = "{arg}" ]; then
printf '%s\n' '{banner}'
exit 0
fi
pp=0; h=0; first=1
for a do
  if [ $first = 1 ]; then set --; first=0; fi
  if [ $h = 1 ]; then h=0; if [ "$a" = omp ]; then set -- "$@" -fopenmp; else set -- "$@" -h "$a"; fi; continue; fi
  case "$a" in
    -qopenmp|-fiopenmp|-mp|-qsmp=omp|-Kopenmp|-KOMP|-openmp) set -- "$@" -fopenmp ;;
    -h) h=1 ;;
    -E) pp=1; set -- "$@" "$a" ;;
    *) set -- "$@" "$a" ;;
  esac
done
if [ $pp = 1 ]; then exec {real} {macros} "$@"; fi
exec {real} "$@"
"#
    )
}

struct Case {
    family: String,
    version: String,
    argument: String,
    output: String,
}

fn fixture_case(reg: &Registry, exe: &str) -> Case {
    let v: toml::Value = toml::from_str(FIXTURES).unwrap();
    let mut pick = None;
    for c in v["case"].as_array().unwrap() {
        let s = |k: &str| c.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        if s("expect") != "detect" {
            continue;
        }
        let names: Vec<String> = s("executable")
            .split('/')
            .map(|n| n.split(" (").next().unwrap().trim().to_string())
            .collect();
        if !names.iter().any(|n| n == exe) {
            continue;
        }
        let out = s("output");
        // the oneAPI pairs list all three drivers for every banner (see version_fixtures.rs)
        if exe == "ifx" && !(out.contains("(IFORT)") || out.contains("(IFX)"))
            || exe != "ifx" && out.contains("(IFORT)")
        {
            continue;
        }
        let Some((desc, _, _)) = emulation(&s("family")) else {
            continue;
        };
        let args: Vec<String> = s("argument").split_whitespace().map(String::from).collect();
        if !reg
            .toolchain(desc)
            .unwrap()
            .version
            .iter()
            .any(|r| r.args == args)
        {
            continue;
        }
        // the last case of a name is usually the newest banner (Intel 2021's deprecation remark)
        pick = Some(Case {
            family: s("family"),
            version: s("version"),
            argument: s("argument"),
            output: out,
        });
    }
    pick.unwrap_or_else(|| panic!("no fixture case for {exe}"))
}

#[test]
fn emulated_hpc_compilers_are_identified_and_openmp_works_through_them() {
    let reg = Registry::builtin();
    let bin = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for (exe, lang) in [
        ("icc", "c"),
        ("icx", "c"),
        ("ifx", "fortran"),
        ("pgcc", "c"),
        ("nvc", "c"),
        ("xlc", "c"),
        ("xlc_r", "c"),
        ("xlf", "fortran"),
        ("craycc", "c"),
        ("armclang", "c"),
        ("fcc", "c"),
    ] {
        let case = fixture_case(&reg, exe);
        let (desc, cmac, fmac) = emulation(&case.family).unwrap();
        let (real, macros) = if lang == "fortran" {
            ("/usr/bin/gfortran", fmac)
        } else {
            ("/usr/bin/gcc", cmac)
        };
        write_exe(
            &bin.path().join(exe),
            &emulator(&case.argument, &case.output, real, macros, None),
        );
        expected.push((exe, desc, case.version, lang));
    }
    let dir = bin.path().to_str().unwrap();
    let p = probe_only(bin.path());
    for (exe, desc, version, lang) in expected {
        let c = compiler(&p, &format!("{dir}/{exe}"));
        assert_eq!(c["family"], desc, "{exe}: {c:#}");
        let got = c["version"].as_str().unwrap();
        assert!(
            got == version || got.starts_with(&format!("{version}.")),
            "{exe}: version {got}, fixture says {version}"
        );
        assert_eq!(c["languages"][0], lang);
        assert_eq!(c["facets"]["openmp"]["works"], true, "{exe}: {c:#}");
    }
}

/// A compiler named like its family is identified by its version run plus its first OpenMP
/// test, whose program also reports the identity macros: no separate preprocessor run.
#[test]
fn the_first_openmp_test_confirms_the_family_without_a_preprocessor_run() {
    let bin = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("gcc.log");
    write_exe(
        &bin.path().join("gcc"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec /usr/bin/gcc \"$@\"\n",
            log.display()
        ),
    );
    let dir = bin.path().to_str().unwrap();
    let p = probe_only(bin.path());
    let c = compiler(&p, &format!("{dir}/gcc"));
    assert_eq!(c["family"], "gcc", "{c:#}");
    assert_eq!(c["version"], sh("/usr/bin/gcc -dumpfullversion"));
    assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    assert_eq!(c["facets"]["openmp"]["flag"], "-fopenmp");
    let runs = std::fs::read_to_string(&log).unwrap();
    let runs: Vec<&str> = runs.lines().collect();
    // a word of its own: a scratch path may hold "-E" (cfgmx-probe-PID-E...)
    assert!(
        !runs.iter().any(|r| r.split(' ').any(|w| w == "-E")),
        "{runs:#?}"
    );
    assert_eq!(runs.len(), 2, "a version run and one compile: {runs:#?}");
    assert!(runs[1].contains("-fopenmp"), "{runs:#?}");
}

/// `clang` and `clang++` are one binary: its version text is asked once, and each name still gets
/// its own OpenMP test in its own language.
#[test]
fn one_binary_under_two_names_is_asked_its_version_once() {
    let bin = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("clang.log");
    // one script under both names, running clang or clang++ by the name it was called by
    let driver = bin.path().join("llvm-driver");
    write_exe(
        &driver,
        &format!(
            "#!/bin/sh\necho \"${{0##*/}} $*\" >> '{}'\ncase \"$0\" in *++) exec /usr/bin/clang++ \"$@\";; esac\nexec /usr/bin/clang \"$@\"\n",
            log.display()
        ),
    );
    for name in ["clang", "clang++"] {
        std::os::unix::fs::symlink(&driver, bin.path().join(name)).unwrap();
    }
    let dir = bin.path().to_str().unwrap();
    let p = probe_only(bin.path());
    let version = sh("/usr/bin/clang -dumpversion");
    for (name, lang) in [("clang", "c"), ("clang++", "cxx")] {
        let c = compiler(&p, &format!("{dir}/{name}"));
        assert_eq!(c["family"], "clang", "{c:#}");
        assert_eq!(c["version"], version.as_str(), "{c:#}");
        assert_eq!(c["languages"][0], lang);
        assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    }
    let runs = std::fs::read_to_string(&log).unwrap();
    // asked once: in a run of its own, or by the first compile (`-v`)
    let versions: Vec<&str> = runs
        .lines()
        .filter(|l| l.split(' ').any(|w| w == "--version" || w == "-v"))
        .collect();
    assert_eq!(versions.len(), 1, "{runs}");
    for name in ["clang ", "clang++ "] {
        assert!(
            runs.lines()
                .any(|l| l.starts_with(name) && l.contains("-fopenmp")),
            "no OpenMP test through {name}: {runs}"
        );
    }
}

/// A ccache masquerade directory (`gcc`, `g++`, `clang` all links to `ccache`, which runs the
/// compiler named like the link): each name is reported as the compiler it really runs,
/// marked as going through ccache, though all three are one file.
#[test]
fn a_ccache_masquerade_is_reported_as_the_compilers_it_runs() {
    let ccache = sh("command -v ccache");
    let bin = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    for name in ["gcc", "g++", "clang"] {
        std::os::unix::fs::symlink(&ccache, bin.path().join(name)).unwrap();
    }
    let dir = bin.path().to_str().unwrap();
    // ccache finds the real compiler further along PATH
    let path = format!("{dir}:/usr/bin:/bin");
    let r = run_env(
        cache.path(),
        &["probe", "--json", "--fresh"],
        &[
            ("PATH", path.as_str()),
            ("CCACHE_DIR", store.path().to_str().unwrap()),
        ],
    );
    r.expect_code(0);
    let p = r.json();
    for (name, family, version, lang) in [
        ("gcc", "gcc", sh("/usr/bin/gcc -dumpfullversion"), "c"),
        ("g++", "gcc", sh("/usr/bin/g++ -dumpfullversion"), "cxx"),
        ("clang", "clang", sh("/usr/bin/clang -dumpversion"), "c"),
    ] {
        let c = compiler(&p, &format!("{dir}/{name}"));
        assert_eq!(c["family"], family, "{c:#}");
        assert_eq!(c["version"], version.as_str(), "{c:#}");
        assert_eq!(c["languages"][0], lang, "{c:#}");
        assert_eq!(c["wrapper"], "ccache", "{c:#}");
        assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    }
}

#[test]
fn hung_crashing_garbage_and_unexecutable_compilers_are_reported_and_the_rest_go_on() {
    let bin = tempfile::tempdir().unwrap();
    let empty = tools_path();
    let cache = tempfile::tempdir().unwrap();
    let b = bin.path();
    write_exe(&b.join("gcc"), "#!/bin/sh\nexec /bin/sleep 1000\n");
    write_exe(&b.join("clang"), "#!/bin/sh\nkill -SEGV $$\n");
    write_exe(
        &b.join("icc"),
        "#!/bin/sh\necho 'hello, I am not a compiler'\n",
    );
    std::fs::write(b.join("pgcc"), "not a program").unwrap();
    std::fs::set_permissions(b.join("pgcc"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // a working compiler beside them
    std::os::unix::fs::symlink("/usr/bin/gfortran", b.join("gfortran")).unwrap();
    let timeout = 2.0;
    // Build (or check) the binary before the clock starts: only the probe is timed.
    let _ = cfgmx_tests::bin();
    let t = Instant::now();
    let dir = b.to_str().unwrap();
    let p = probe_json(
        &["--search", dir, "--fresh", "--timeout", "2"],
        cache.path(),
        Some(empty.path().to_str().unwrap()),
    );
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs_f64(timeout + 1.0),
        "probe took {took:?}"
    );
    let status = |exe: &str| {
        compiler(&p, &format!("{dir}/{exe}"))["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("gcc"), "timed_out");
    assert_eq!(status("clang"), "crashed");
    assert_eq!(status("icc"), "unrecognised");
    assert_eq!(status("pgcc"), "not_executable");
    let f = compiler(&p, &format!("{dir}/gfortran"));
    assert_eq!(f["family"], "gcc");
    assert_eq!(f["facets"]["openmp"]["works"], true);
    assert!(compiler(&p, &format!("{dir}/gcc"))["error"]
        .as_str()
        .unwrap()
        .contains("timed out"));
}

/// A real clang installed without libomp-dev's files: the clang binary linked into a fresh
/// LLVM-style prefix whose resource directory lacks `omp.h` and whose `lib/` lacks `libomp.so`
/// (`-no-canonical-prefixes` makes clang take its prefix from the path it was run by).
#[test]
fn clang_without_libomp_says_why_openmp_fails() {
    let root = tempfile::tempdir().unwrap();
    let real_clang = std::fs::canonicalize(sh("command -v clang")).unwrap();
    let res = PathBuf::from(sh("clang -print-resource-dir"));
    let prefix = root.path().join("llvm");
    let fake_res = prefix.join("lib/clang").join(res.file_name().unwrap());
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(fake_res.join("include")).unwrap();
    std::os::unix::fs::symlink(&real_clang, prefix.join("bin/clang")).unwrap();
    for e in std::fs::read_dir(&res).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "include" {
            std::os::unix::fs::symlink(e.path(), fake_res.join(e.file_name())).unwrap();
        }
    }
    for e in std::fs::read_dir(res.join("include")).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "omp.h" {
            std::os::unix::fs::symlink(e.path(), fake_res.join("include").join(e.file_name()))
                .unwrap();
        }
    }
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    write_exe(
        &bin.join("clang"),
        &format!(
            "#!/bin/sh\nexec '{}' -no-canonical-prefixes \"$@\"\n",
            prefix.join("bin/clang").display()
        ),
    );
    let empty = tools_path();
    let cache = tempfile::tempdir().unwrap();
    let p = probe_json(
        &["--search", bin.to_str().unwrap(), "--fresh"],
        cache.path(),
        Some(empty.path().to_str().unwrap()),
    );
    let c = compiler(&p, &format!("{}/clang", bin.display()));
    assert_eq!(c["family"], "clang");
    let omp = &c["facets"]["openmp"];
    assert_eq!(omp["works"], false, "{omp:#}");
    let why = omp["reason"].as_str().unwrap();
    let major = c["version"].as_str().unwrap().split('.').next().unwrap();
    assert!(
        why.contains(&format!("install libomp-{major}-dev")),
        "{why}"
    );
}

/// The clangs setup installs beside the default one have no OpenMP runtime of their own
/// version (only the default clang's libomp-dev can be installed): each is told to install
/// the runtime of its own version, while the default clang's OpenMP works.
#[test]
fn each_llvm_version_is_told_its_own_runtime_and_a_flang_that_cannot_link_is_unusable() {
    let cache = tempfile::tempdir().unwrap();
    let p = probe_json(&["--fresh"], cache.path(), None);
    let default_major = sh("clang -dumpversion");
    let default_major = default_major.split('.').next().unwrap();
    let mut seen = 0;
    for major in ["13", "16", "19"] {
        let path = sh(&format!("command -v clang-{major}"));
        assert!(
            !path.is_empty(),
            "clang-{major} is not installed (scripts/setup.sh)"
        );
        let c = compiler(&p, &path);
        assert_eq!(c["family"], "clang", "{c:#}");
        assert!(
            c["version"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{major}.")),
            "{c:#}"
        );
        let omp = &c["facets"]["openmp"];
        assert_eq!(omp["works"], false, "clang-{major}: {omp:#}");
        let why = omp["reason"].as_str().unwrap();
        assert!(
            why.contains(&format!("install libomp-{major}-dev")),
            "{why}"
        );
        assert!(
            !why.contains(&format!("libomp-{default_major}-dev")),
            "{why}"
        );
        seen += 1;
    }
    assert_eq!(seen, 3);
    let c = compiler(&p, &sh("command -v clang"));
    assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    // flang-new-16 compiles but cannot link (Debian ships it without its runtime libraries):
    // unusable, with the linker's reason; flang-new-19 links (only its OpenMP runtime is
    // missing)
    let f16 = compiler(&p, &sh("command -v flang-new-16"));
    assert_eq!(f16["status"], "failed", "{f16:#}");
    let why = f16["error"].as_str().unwrap();
    assert!(why.contains("cannot find -lFortran"), "{why}");
    let f19 = compiler(&p, &sh("command -v flang-new-19"));
    assert_eq!(f19["status"], "ok", "{f19:#}");
    assert!(
        f19["version"].as_str().unwrap().starts_with("19."),
        "{f19:#}"
    );
    assert!(f19["facets"]["openmp"]["reason"]
        .as_str()
        .unwrap()
        .contains("install libomp-19-dev"));
}

#[test]
fn a_warm_probe_runs_no_compiler() {
    let bin = tempfile::tempdir().unwrap();
    let empty = tools_path();
    let cache = tempfile::tempdir().unwrap();
    let log = bin.path().join("runs.log");
    let banner = sh("/usr/bin/gcc --version");
    // a gcc that logs every run (it is not in the searched dir's file set: the log is elsewhere)
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join(log.file_name().unwrap());
    write_exe(
        &bin.path().join("gcc"),
        &emulator("--version", &banner, "/usr/bin/gcc", "", Some(&log)),
    );
    let dir = bin.path().to_str().unwrap();
    let path = Some(empty.path().to_str().unwrap());
    let runs = || {
        std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let cold = probe_json(&["--search", dir], cache.path(), path);
    let after_cold = runs();
    assert!(after_cold > 0, "the cold probe ran nothing?");
    let warm = probe_json(&["--search", dir], cache.path(), path);
    assert_eq!(runs(), after_cold, "the warm probe ran the compiler");
    assert_eq!(cold, warm);
    // --fresh probes again; so does a changed compiler
    probe_json(&["--search", dir, "--fresh"], cache.path(), path);
    let after_fresh = runs();
    assert!(after_fresh > after_cold);
    let text = std::fs::read_to_string(bin.path().join("gcc")).unwrap();
    write_exe(&bin.path().join("gcc"), &format!("{text}\n# changed\n"));
    probe_json(&["--search", dir], cache.path(), path);
    assert!(
        runs() > after_fresh,
        "a changed compiler was answered from the cache"
    );
}

#[test]
fn expand_marks_variants_available_or_why_not() {
    let cache = tempfile::tempdir().unwrap();
    let r = cfgmx(&["probe", "--json"], cache.path(), None);
    r.expect_code(0);
    let prof = cache.path().join("profile.json");
    std::fs::write(&prof, r.stdout()).unwrap();
    let r = cfgmx(
        &["expand", "--json", "--profile", prof.to_str().unwrap()],
        cache.path(),
        None,
    );
    r.expect_code(0);
    let vs = r.json();
    let vs = vs.as_array().unwrap();
    let by_name = |n: &str| {
        vs.iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("no {n}"))
    };
    let gcc = by_name("gcc-threaded-release");
    assert_eq!(gcc["available"], true, "{gcc:#}");
    let ch = gcc["concrete_hash"].as_str().unwrap();
    assert_ne!(ch, gcc["hash"].as_str().unwrap());
    let icc = by_name("icc-threaded-release");
    assert_eq!(icc["available"], false);
    assert!(
        icc["reasons"][0]
            .as_str()
            .unwrap()
            .contains("missing compiler"),
        "{icc:#}"
    );
    assert!(icc.get("concrete_hash").is_none());
    // a broken profile is a located input error
    std::fs::write(&prof, "{\n  \"schema\": 1,\n  \"cpus\": \"two\"\n}\n").unwrap();
    let r = cfgmx(
        &["expand", "--profile", prof.to_str().unwrap()],
        cache.path(),
        None,
    );
    r.expect_code(2);
    assert!(r.stderr().contains("profile.json:3"), "{}", r.explain());
}

/// A wrapper whose compiler is not on the searched path is identified through itself: the
/// identity macros it preprocesses with are its compiler's.
#[test]
fn an_mpi_wrapper_over_an_unseen_compiler_is_identified_by_its_macros() {
    let bin = tempfile::tempdir().unwrap();
    // the compiler exists, outside every directory the probe searches
    let elsewhere = tempfile::tempdir().unwrap();
    let gcc = elsewhere.path().join("gcc");
    std::os::unix::fs::symlink("/usr/bin/gcc", &gcc).unwrap();
    write_exe(
        &bin.path().join("mpicc"),
        &format!(
            "#!/bin/sh\ncase \"$1\" in\n-show) echo '{} -I/opt/mpich/include -lmpi'; exit 0;;\n-v) echo 'mpicc for MPICH version 4.1.2';;\nesac\nexec /usr/bin/gcc \"$@\"\n",
            gcc.display()
        ),
    );
    let dir = bin.path().to_str().unwrap();
    let p = probe_only(bin.path());
    let c = compiler(&p, &format!("{dir}/mpicc"));
    assert_eq!(c["family"], "gcc", "{c:#}");
    assert_eq!(
        c["version"].as_str().unwrap(),
        sh("/usr/bin/gcc -dumpfullversion")
    );
    assert_eq!(c["wrapper"], "mpich");
    assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    let m = &p["mpi"][0];
    assert_eq!(m["implementation"], "mpich", "{m:#}");
    assert_eq!(m["version"], "4.1.2", "{m:#}");
    assert_eq!(m["compiler"], gcc.display().to_string());
    assert_eq!(m["compiler_family"], "gcc");
}

#[test]
fn bad_probe_arguments_are_usage_errors() {
    let cache = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["probe", "--search", "/nonexistent/cfgmx-dir"][..],
            "--search /nonexistent/cfgmx-dir: not a directory",
        ),
        (
            &["probe", "--timeout", "soon"][..],
            "not a positive number of seconds",
        ),
        (
            &["probe", "--timeout", "0"][..],
            "not a positive number of seconds",
        ),
        (
            &["probe", "--facet", "nosuch"][..],
            "--facet nosuch: no compiler descriptor has a facet of that name; known facets: always",
        ),
    ] {
        let r = cfgmx(args, cache.path(), None);
        r.expect_code(2);
        assert!(r.stderr().contains(says), "{}", r.explain());
    }
    assert!(
        cfgmx_tests::files_under(cache.path()).is_empty(),
        "a failed probe wrote its cache"
    );
}

/// The cache is keyed by the compilers found, not by the directories looked in: a directory
/// on `PATH` whose contents change for other reasons (a pyenv shims directory) leaves the cached
/// profile in place, while a compiler replaced by another file (same size and mtime, a new
/// inode) or a compiler installed since is probed.
#[test]
fn the_probe_cache_ignores_unrelated_path_changes_and_sees_replaced_or_new_compilers() {
    let bin = tempfile::tempdir().unwrap();
    let tools = tools_path();
    let shims = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("runs.log");
    let banner = sh("/usr/bin/gcc --version");
    let gcc = bin.path().join("gcc");
    write_exe(
        &gcc,
        &emulator("--version", &banner, "/usr/bin/gcc", "", Some(&log)),
    );
    let dir = bin.path().to_str().unwrap();
    let path = format!("{}:{}", shims.path().display(), tools.path().display());
    let path = Some(path.as_str());
    let runs = || {
        std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let cold = probe_json(&["--search", dir], cache.path(), path);
    let after_cold = runs();
    assert!(after_cold > 0, "the cold probe ran nothing?");

    // A shim written and another removed: the directory's mtime moves, no compiler changes.
    std::fs::write(shims.path().join("python3"), "#!/bin/sh\n").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(shims.path().join("pip"), "#!/bin/sh\n").unwrap();
    std::fs::remove_file(shims.path().join("python3")).unwrap();
    let warm = probe_json(&["--search", dir], cache.path(), path);
    assert_eq!(runs(), after_cold, "an unrelated PATH change re-probed");
    assert_eq!(cold, warm);

    // The same bytes and mtime in a new file (an upgrade's rename): a new inode, probed again.
    let copy = bin.path().join(".gcc.new");
    std::fs::copy(&gcc, &copy).unwrap();
    let mtime = std::fs::metadata(&gcc).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&copy, &gcc).unwrap();
    probe_json(&["--search", dir], cache.path(), path);
    let after_replace = runs();
    assert!(
        after_replace > after_cold,
        "a replaced compiler was answered from the cache"
    );
    probe_json(&["--search", dir], cache.path(), path);
    assert_eq!(
        runs(),
        after_replace,
        "the re-probed profile was not cached"
    );

    // A compiler installed since, under a name discovery knows: found, and probed.
    std::os::unix::fs::symlink(&gcc, bin.path().join("gcc-99")).unwrap();
    let p = probe_json(&["--search", dir], cache.path(), path);
    assert!(runs() > after_replace, "a new compiler was not noticed");
    compiler(&p, &bin.path().join("gcc-99").display().to_string());
}

/// A script that logs each run (`NAME ARGS`) to `log` and runs the real compiler of the name
/// it was called by, so every name linked to it is one file to the probe.
fn logging(log: &Path, real: &[(&str, &str)]) -> String {
    let cases: String = real
        .iter()
        .map(|(name, path)| format!("  {name}) exec '{path}' \"$@\" ;;\n"))
        .collect();
    format!(
        "#!/bin/sh\nn=${{0##*/}}\necho \"$n $*\" >> '{}'\ncase \"$n\" in\n{cases}esac\nexit 127\n",
        log.display()
    )
}

/// The runs a logging script recorded whose arguments contain `what`.
fn logged(log: &Path, what: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .map(str::to_string)
        .collect()
}

/// One clang file under its C and C++ names, without its version's OpenMP runtime (clang-13,
/// which setup leaves so): both names are identified and told why OpenMP fails, with no
/// version run of its own (the OpenMP compile printed the version text) and no preprocessor
/// run between them (the failed OpenMP compile said the
/// identity macros in its `#pragma message` lines, and a binary's macros do not change with
/// the language it compiles), and one OpenMP compile: the runtime the C++ compile found
/// missing is the same installation's for C, and the C record says where it was found.
#[test]
fn one_clang_file_is_asked_its_identity_once_for_both_languages() {
    let bin = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("runs.log");
    let (c, cxx) = (sh("command -v clang-13"), sh("command -v clang++-13"));
    let script = bin.path().join("clang-13-logged");
    write_exe(
        &script,
        &logging(&log, &[("clang-13", &c), ("clang++-13", &cxx)]),
    );
    for n in ["clang-13", "clang++-13"] {
        std::os::unix::fs::symlink(&script, bin.path().join(n)).unwrap();
    }
    let p = probe_only(bin.path());
    for n in ["clang-13", "clang++-13"] {
        let r = compiler(&p, &format!("{}/{n}", bin.path().display()));
        assert_eq!(r["family"], "clang", "{r:#}");
        assert!(r["version"].as_str().unwrap().starts_with("13."), "{r:#}");
        let why = r["facets"]["openmp"]["reason"].as_str().unwrap();
        assert!(why.contains("install libomp-13-dev"), "{n}: {why}");
    }
    let all = std::fs::read_to_string(&log).unwrap();
    // the version text came with the OpenMP compile's `-v`
    assert_eq!(logged(&log, "--version").len(), 0, "{all}");
    assert_eq!(logged(&log, " -v ").len(), 1, "{all}");
    assert_eq!(logged(&log, "-dM").len(), 0, "{all}");
    assert_eq!(logged(&log, "-fopenmp").len(), 1, "{all}");
    let c = compiler(&p, &format!("{}/clang-13", bin.path().display()));
    let why = c["facets"]["openmp"]["reason"].as_str().unwrap();
    assert!(
        why.contains("with ") && why.contains("clang++-13, the same compiler"),
        "{why}"
    );
}

/// A clang or flang compile run with `-v` opens with the very text `--version` prints, and,
/// without the lines `-v` adds (the descriptor's `noise`), says what the same compile says
/// without it: the probe reads the version text from its first compile of an LLVM compiler
/// instead of a run of its own. Checked on every LLVM compiler setup installs, on compiles
/// that fail in each of the ways the probe reads (a missing `omp.h`, a missing library), that
/// warn, and that work.
#[test]
fn a_verbose_llvm_compile_says_what_version_and_the_quiet_compile_say() {
    let reg = Registry::builtin();
    let clang = reg.toolchain("clang").unwrap();
    let rule = &clang.version[0];
    assert_eq!(rule.args, ["--version"]);
    let verbose = rule
        .verbose
        .as_ref()
        .expect("clang's --version rule reads -v compiles");
    let dir = tempfile::tempdir().unwrap();
    let c = "#pragma message(\"said while compiling\")\n#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n";
    std::fs::write(dir.path().join("p.c"), c).unwrap();
    std::fs::write(dir.path().join("p.cpp"), c).unwrap();
    std::fs::write(dir.path().join("p.f90"), "program p\nend program p\n").unwrap();
    let run = |exe: &str, args: &[&str]| {
        let o = std::process::Command::new(exe)
            .args(args)
            .current_dir(dir.path())
            .env("LLVM_DISABLE_SYMBOLIZATION", "1")
            .output()
            .unwrap();
        let out = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (o.status.code(), out(&o.stdout), out(&o.stderr))
    };
    let loud: Vec<&str> = verbose.args.iter().map(String::as_str).collect();
    // one compile, quiet and with the verbose arguments, beside `--version`
    let ask = |exe: &str, args: &[&str]| {
        let version = run(exe, &["--version"]).1;
        let verbose_run = run(exe, &[&loud[..], args].concat());
        compare(verbose, &version, run(exe, args), verbose_run)
    };
    let mut asked = 0;
    for v in ["13", "14", "16", "19"] {
        for (exe, file) in [
            (format!("clang-{v}"), "p.c"),
            (format!("clang++-{v}"), "p.cpp"),
        ] {
            asked += ask(&exe, &["-fopenmp=libomp", "-c", "-o", "p.o", file]);
            asked += ask(&exe, &["-fopenmp=libomp", file, "-o", "p"]);
        }
    }
    for v in ["16", "19"] {
        let exe = format!("flang-new-{v}");
        asked += ask(&exe, &["p.f90", "-o", "p"]);
        asked += ask(&exe, &["-fopenmp", "p.f90", "-o", "p"]);
    }
    assert_eq!(asked, 20);

    /// The verbose compile's version text is `--version`'s, its exit status the quiet
    /// compile's, and its messages the quiet compile's once the noise is dropped.
    fn compare(
        verbose: &cfgmx_model::toolchain::Verbose,
        version: &str,
        quiet: (Option<i32>, String, String),
        loud: (Option<i32>, String, String),
    ) -> usize {
        let (text, rest) = verbose.split(&loud.2);
        assert!(version.contains(" version "), "{version}");
        assert_eq!(text.as_deref(), Some(version), "{}", loud.2);
        assert_eq!(loud.0, quiet.0, "{}\n---\n{}", loud.2, quiet.2);
        assert_eq!(rest, quiet.2, "verbose:\n{}", loud.2);
        1
    }
}

/// A clang that does not print its version text when its first compile asks with `-v` (here
/// a wrapper that drops the flag): that compile says nothing about it, the version is asked on
/// its own, and the OpenMP test is made again for the family and version it settles on.
#[test]
fn a_clang_whose_compile_does_not_tell_its_version_is_asked_it_apart() {
    let bin = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("runs.log");
    write_exe(
        &bin.path().join("clang"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nfor a do shift; [ \"$a\" = -v ] || set -- \"$@\" \"$a\"; done\nexec /usr/bin/clang \"$@\"\n",
            log.display()
        ),
    );
    let p = probe_only(bin.path());
    let c = compiler(&p, &format!("{}/clang", bin.path().display()));
    assert_eq!(c["family"], "clang", "{c:#}");
    assert_eq!(
        c["version"],
        sh("/usr/bin/clang -dumpversion").as_str(),
        "{c:#}"
    );
    assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    let runs = std::fs::read_to_string(&log).unwrap();
    let with = |w: &str| {
        runs.lines()
            .filter(|l| l.split(' ').any(|x| x == w))
            .count()
    };
    assert_eq!(with("-v"), 1, "{runs}");
    assert_eq!(with("--version"), 1, "{runs}");
    // the OpenMP compile asking -v, then the one made once the version was known
    assert_eq!(with("-c"), 2, "{runs}");
}

/// flang-new-16 crashes on the OpenMP program and cannot link a plain one: it is reported
/// unusable with the linker's reason after one OpenMP compile, not two.
#[test]
fn a_broken_fortran_compiler_is_given_its_openmp_test_once() {
    let bin = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("runs.log");
    let real = sh("command -v flang-new-16");
    write_exe(
        &bin.path().join("flang-new-16"),
        &logging(&log, &[("flang-new-16", &real)]),
    );
    let p = probe_only(bin.path());
    let r = compiler(&p, &format!("{}/flang-new-16", bin.path().display()));
    assert_eq!(r["status"], "failed", "{r:#}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("cannot find -lFortran"),
        "{r:#}"
    );
    assert_eq!(r["facets"]["openmp"]["works"], false, "{r:#}");
    let all = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged(&log, "-fopenmp").len(), 1, "{all}");
}

/// A pyenv root (`ROOT/shims` on the search path, interpreters under `ROOT/versions/*/bin`):
/// the shims, which run pyenv's scripts and answer only for the version pyenv selects, are
/// never run; the installed interpreters are asked directly, and what they answer is what
/// their own `sysconfig` says.
#[test]
fn pyenv_shims_stand_for_the_interpreters_installed_beside_them() {
    let root = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("shim.log");
    let shims = root.path().join("shims");
    // a real interpreter's own file (`python3` on the test's PATH may itself be a shim)
    let real = sh("python3 -c 'import os, sys; print(os.path.realpath(sys.executable))'");
    let real = real.trim();
    let minor = sh(&format!(
        "{real} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'"
    ));
    let name = format!("python{}", minor.trim());
    let bin = root
        .path()
        .join(format!("versions/{}.99/bin", minor.trim()));
    std::fs::create_dir_all(&shims).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(real, bin.join(&name)).unwrap();
    for n in [name.as_str(), "python3"] {
        write_exe(
            &shims.join(n),
            &format!(
                "#!/bin/sh\necho \"$0 $*\" >> '{}'\nexit 127\n",
                log.display()
            ),
        );
    }
    let p = probe_only(&shims);
    assert!(
        !log.exists(),
        "a shim ran: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    let pythons = p["pythons"].as_array();
    let py = pythons
        .unwrap_or_else(|| panic!("no pythons: {p:#}"))
        .iter()
        .find(|r| {
            let here = bin.join(&name).display().to_string();
            r["path"] == here
                || r["aliases"]
                    .as_array()
                    .is_some_and(|a| a.contains(&here.into()))
        })
        .unwrap_or_else(|| panic!("no interpreter from versions/: {p:#}"));
    assert!(
        p.get("python_failures")
            .is_none_or(|f| f.as_array().unwrap().is_empty()),
        "{p:#}"
    );
    let own = |code: &str| sh(&format!("{real} -c '{code}'"));
    let v = own("import sys; print(\"%d.%d.%d\" % sys.version_info[:3])");
    assert_eq!(py["version"], v.trim(), "{py:#}");
    let ext = own("import sysconfig; print(sysconfig.get_config_var(\"EXT_SUFFIX\"))");
    assert_eq!(py["ext_suffix"], ext.trim(), "{py:#}");
    let soabi = own("import sysconfig; print(sysconfig.get_config_var(\"SOABI\"))");
    let abi = format!("cp{}", soabi.trim().split('-').nth(1).unwrap());
    assert_eq!(py["abi"], abi, "{py:#}");
}
