//! `cfgmx probe` and the MPI wrappers: every wrapper the machine has (MPICH and Open MPI side
//! by side, as the setup script installs them; suffixed and plain names) compared with ground
//! truth the test establishes itself (the package that owns the wrapper's real file, the
//! implementation's own version tool, the compiler command the wrapper shows); wrappers whose
//! compiler is missing; and wrappers that hang, crash or answer nonsense.
//!
//! No test depends on which implementation the plain `mpicc` is (the `mpi` alternative).

use cfgmx_tests::{run_env, sh};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Wrapper base names per language, as the test knows them (independently of `mpi/*.toml`).
const WRAPPERS: &[(&str, &str)] = &[
    ("mpicc", "c"),
    ("mpicxx", "cxx"),
    ("mpic++", "cxx"),
    ("mpiCC", "cxx"),
    ("mpifort", "fortran"),
    ("mpif90", "fortran"),
    ("mpif77", "fortran"),
];

/// Output of a command that may fail (a wrapper's `-v` exits 127 without its compiler).
fn out(cmd: &str) -> String {
    let o = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn real(p: &str) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// What the machine says one wrapper is, found without cfgmx.
#[derive(Debug)]
struct Truth {
    implementation: &'static str,
    version: String,
    lang: &'static str,
    /// The compiler command's first word, as the wrapper shows it.
    compiler: String,
}

/// The Debian package that owns a file: an independent witness of which MPI it belongs to.
fn package_of(file: &Path) -> String {
    let line = sh(&format!("dpkg -S {}", file.display()));
    line.split(':').next().unwrap().to_string()
}

/// Every MPI compiler wrapper in /usr/bin with its ground truth.
fn machine_wrappers() -> BTreeMap<String, Truth> {
    let mut found = BTreeMap::new();
    let mpich_version = sh("mpichversion | sed -n 's/^MPICH Version:[[:space:]]*//p'");
    let ompi_version = sh("ompi_info --parsable | sed -n 's/^ompi:version:full://p'");
    let mut names: Vec<String> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let base = name.split('.').next().unwrap();
        let Some((_, lang)) = WRAPPERS.iter().find(|(w, _)| *w == base) else {
            continue;
        };
        let path = format!("/usr/bin/{name}");
        let pkg = package_of(&real(&path));
        let (implementation, version, show) = if pkg.contains("openmpi") {
            ("openmpi", ompi_version.clone(), "--showme:command")
        } else if pkg.contains("mpich") {
            ("mpich", mpich_version.clone(), "-show")
        } else {
            panic!("{path} belongs to {pkg}, neither MPICH nor Open MPI");
        };
        let compiler = sh(&format!("'{path}' {show}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        found.insert(
            path,
            Truth {
                implementation,
                version,
                lang,
                compiler,
            },
        );
    }
    found
}

fn probe(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = vec!["--fresh"];
    all.extend_from_slice(args);
    probe_cached(cache, &all, env)
}

/// A probe that may answer from the cache.
fn probe_cached(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = vec!["probe", "--json"];
    all.extend_from_slice(args);
    let r = run_env(cache, &all, env);
    r.expect_code(0);
    r.json()
}

fn record<'a>(p: &'a Value, key: &str, path: &str) -> &'a Value {
    p[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == path)
        .unwrap_or_else(|| panic!("no {key} record for {path} in\n{:#}", p[key]))
}

/// Family and version of a real compiler, from the compiler itself.
fn compiler_truth(path: &str) -> (&'static str, String) {
    let banner = sh(&format!("'{path}' --version"));
    // GCC under any of its names (`x86_64-linux-gnu-g++-12` prints no "GCC")
    assert!(
        banner.contains("Free Software Foundation") && !banner.contains("clang"),
        "the wrappers here are expected over GCC: {path} says {banner}"
    );
    ("gcc", sh(&format!("'{path}' -dumpfullversion")))
}

#[test]
fn every_mpi_wrapper_is_told_apart_with_its_implementation_version_and_compiler() {
    let truth = machine_wrappers();
    // setup.sh installs both, with Debian's suffixed names: fail loudly if either is missing
    for (imp, suffix) in [("mpich", ".mpich"), ("openmpi", ".openmpi")] {
        for (w, _) in WRAPPERS {
            if *w == "mpiCC" && imp == "mpich" {
                continue; // MPICH installs no mpiCC
            }
            if *w == "mpic++" && imp == "mpich" {
                continue; // nor Debian an mpic++.mpich
            }
            let p = format!("/usr/bin/{w}{suffix}");
            assert!(
                truth.contains_key(&p),
                "{p} missing: scripts/setup.sh installs MPICH and Open MPI"
            );
        }
    }
    assert!(truth.len() >= 15, "{truth:#?}");
    let cache = tempfile::tempdir().unwrap();
    // /usr/bin alone: the records are named as the ground truth is (not /bin/..., which is
    // the same directory on a merged-/usr system and may come first on a user's PATH)
    let p = probe(cache.path(), &[], &[("PATH", "/usr/bin")]);
    let mut seen = BTreeMap::new();
    for (path, t) in &truth {
        let m = record(&p, "mpi", path);
        assert_eq!(m["status"], "ok", "{path}: {m:#}");
        assert_eq!(m["implementation"], t.implementation, "{path}: {m:#}");
        assert_eq!(m["version"], t.version.as_str(), "{path}: {m:#}");
        assert_eq!(m["language"], t.lang, "{path}: {m:#}");
        let want = real(&sh(&format!("command -v '{}'", t.compiler)));
        let got = real(m["compiler"].as_str().unwrap());
        assert_eq!(got, want, "{path}: {m:#}");
        let (family, version) = compiler_truth(&want.display().to_string());
        assert_eq!(m["compiler_family"], family, "{path}: {m:#}");
        assert_eq!(m["compiler_version"], version.as_str(), "{path}: {m:#}");
        // the launcher that goes with it is the same implementation's
        let launcher = m["launcher"].as_str().unwrap_or_else(|| panic!("{m:#}"));
        let lp = package_of(&real(launcher));
        assert!(
            lp.contains(if t.implementation == "openmpi" {
                "openmpi"
            } else {
                "mpich"
            }),
            "{path}: launcher {launcher} belongs to {lp}"
        );
        // the compiler record of the wrapper says the same
        let c = record(&p, "compilers", path);
        assert_eq!(c["status"], "ok", "{path}: {c:#}");
        assert_eq!(c["wrapper"], t.implementation, "{path}: {c:#}");
        assert_eq!(c["family"], family, "{path}: {c:#}");
        assert_eq!(c["version"], version.as_str(), "{path}: {c:#}");
        *seen.entry(t.implementation).or_insert(0) += 1;
    }
    // nothing else is reported as an MPI wrapper
    let reported: Vec<&str> = p["mpi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .filter(|p| p.starts_with("/usr/bin/"))
        .collect();
    assert_eq!(reported.len(), truth.len(), "{reported:#?}");
    eprintln!("wrappers checked: {seen:?}");
}

/// A wrapper whose own compiler is missing is reported as "wrapper over X, which is not
/// installed", first with the implementations' own override variables pointing at nothing,
/// then with a `PATH` that has the wrappers but no gfortran. Its C and C++ siblings stay ok.
/// The variables change what the wrappers run, so a profile cached without them is not used.
#[test]
fn a_wrapper_over_a_missing_compiler_says_so() {
    let truth = machine_wrappers();
    let missing = "/nonexistent/gfortran";
    let env = [
        ("OMPI_FC", missing),
        ("MPICH_FC", missing),
        ("PATH", "/usr/bin"),
    ];
    let cache = tempfile::tempdir().unwrap();
    let before = probe_cached(cache.path(), &[], &[("PATH", "/usr/bin")]);
    assert!(
        before["mpi"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "ok"),
        "{before:#}"
    );
    let p = probe_cached(cache.path(), &[], &env);
    let mut fortran = 0;
    for (path, t) in &truth {
        let m = record(&p, "mpi", path);
        let c = record(&p, "compilers", path);
        assert_eq!(m["implementation"], t.implementation, "{path}: {m:#}");
        if t.lang != "fortran" {
            assert_eq!(m["status"], "ok", "{path}: {m:#}");
            continue;
        }
        // ground truth: the wrapper itself names the missing compiler under this environment
        let flag = if t.implementation == "openmpi" {
            "--showme:command"
        } else {
            "-show"
        };
        let var = if t.implementation == "openmpi" {
            "OMPI_FC"
        } else {
            "MPICH_FC"
        };
        let shown = out(&format!("{var}={missing} '{path}' {flag}"));
        assert!(shown.starts_with(missing), "{path}: {shown}");
        // the variable that just replaced its compiler is the one the record names
        assert_eq!(m["compiler_env"], var, "{path}: {m:#}");
        fortran += 1;
        assert_eq!(m["status"], "compiler_missing", "{path}: {m:#}");
        assert_eq!(m["compiler"], missing, "{path}: {m:#}");
        let why = m["error"].as_str().unwrap();
        assert!(
            why.contains(&format!("wrapper over {missing}, which is not installed")),
            "{path}: {why}"
        );
        assert_eq!(c["status"], "compiler_missing", "{path}: {c:#}");
        assert_eq!(c["error"].as_str().unwrap(), why);
        assert_eq!(c["wrapper"], t.implementation, "{path}: {c:#}");
    }
    assert!(fortran >= 6, "{fortran} Fortran wrappers");

    // A PATH without gfortran: the suffixed Fortran wrappers and the tools MPICH's scripts use.
    let bin = tempfile::tempdir().unwrap();
    for t in [
        "expr", "sed", "grep", "dirname", "basename", "cat", "tr", "head",
    ] {
        std::os::unix::fs::symlink(sh(&format!("command -v {t}")), bin.path().join(t)).unwrap();
    }
    let linked: Vec<&String> = truth
        .iter()
        .filter(|(p, t)| t.lang == "fortran" && p.contains('.'))
        .map(|(p, _)| p)
        .collect();
    for p in &linked {
        let name = Path::new(p).file_name().unwrap();
        std::os::unix::fs::symlink(p, bin.path().join(name)).unwrap();
    }
    let dir = bin.path().to_str().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let p = probe(cache.path(), &[], &[("PATH", dir)]);
    for p0 in &linked {
        let path = format!(
            "{dir}/{}",
            Path::new(p0).file_name().unwrap().to_str().unwrap()
        );
        let m = record(&p, "mpi", &path);
        assert_eq!(m["implementation"], truth[*p0].implementation, "{m:#}");
        assert_eq!(m["status"], "compiler_missing", "{path}: {m:#}");
        let why = m["error"].as_str().unwrap();
        assert!(
            why.contains("wrapper over gfortran, which is not installed"),
            "{path}: {why}"
        );
    }
}

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Wrappers and a compiler that hang (one only after answering its version), crash, or answer
/// nothing any implementation says: each is reported with the reason, beside a working
/// wrapper, and the whole probe ends within its timeout plus a second.
#[test]
fn hung_crashing_and_unknown_wrappers_are_reported_within_the_timeout() {
    let bin = tempfile::tempdir().unwrap();
    let b = bin.path();
    let hang = "trap '' TERM\nwhile :; do /bin/sleep 1; done";
    let gcc_banner = sh("gcc --version");
    let gcc_version = sh("gcc -dumpfullversion");
    // (name, script, mpi status, implementation, words the error must contain)
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        ("mpicc", format!("#!/bin/sh\n{hang}\n"), "timed_out", "unknown", "timed out"),
        (
            "mpicxx",
            "#!/bin/sh\nkill -SEGV $$\n".into(),
            "crashed",
            "unknown",
            "SIGSEGV",
        ),
        // names itself, then hangs when asked its compiler
        (
            "mpif90.mpich",
            format!(
                "#!/bin/sh\n[ \"$1\" = -v ] && {{ echo 'mpif90 for MPICH version 4.1.2'; exit 0; }}\n{hang}\n"
            ),
            "timed_out",
            "mpich",
            "timed out",
        ),
        (
            "mpifort",
            "#!/bin/sh\necho 'hello, I am no MPI'\n".into(),
            "unrecognised",
            "unknown",
            "match no known MPI implementation",
        ),
    ];
    for (name, script, ..) in &cases {
        write_exe(&b.join(name), script);
    }
    // a compiler that answers its version, then hangs on everything else (it costs one
    // timeout, not one per run)
    write_exe(
        &b.join("gcc"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ cat <<'EOF'\n{gcc_banner}\nEOF\nexit 0; }}\nexec /bin/sleep 1000\n"
        ),
    );
    // a working Open MPI-like wrapper over the real gcc beside them
    write_exe(
        &b.join("mpicc.openmpi"),
        "#!/bin/sh\ncase \"$1\" in\n--showme:version) echo 'mpicc: Open MPI 9.8.7 (Language: C)'; exit 0;;\n--showme:command) echo /usr/bin/gcc; exit 0;;\nesac\nexec /usr/bin/gcc \"$@\"\n",
    );
    // an MPICH build installed under Open MPI's suffix: the answer decides, not the name
    write_exe(
        &b.join("mpicxx.openmpi"),
        "#!/bin/sh\ncase \"$1\" in\n-v) echo 'mpicxx for MPICH version 4.1.2'; exit 0;;\n-show) echo /usr/bin/g++; exit 0;;\nesac\nexec /usr/bin/g++ \"$@\"\n",
    );
    let tools = tempfile::tempdir().unwrap();
    for t in ["as", "ld"] {
        std::os::unix::fs::symlink(sh(&format!("command -v {t}")), tools.path().join(t)).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let _ = cfgmx_tests::bin(); // built before the clock starts
    let timeout = 2.0;
    let t0 = Instant::now();
    let p = probe(
        cache.path(),
        &["--timeout", "2", "--search", b.to_str().unwrap()],
        &[("PATH", tools.path().to_str().unwrap())],
    );
    let took = t0.elapsed();
    let dir = b.display();
    for (name, _, status, imp, says) in &cases {
        let path = format!("{dir}/{name}");
        let m = record(&p, "mpi", &path);
        assert_eq!(m["status"], *status, "{name}: {m:#}");
        assert_eq!(m["implementation"], *imp, "{name}: {m:#}");
        let why = m["error"].as_str().unwrap_or("");
        assert!(why.contains(says), "{name}: `{says}` not in `{why}`");
        let c = record(&p, "compilers", &path);
        assert_ne!(c["status"], "ok", "{name}: {c:#}");
        eprintln!("{name:13} -> {status:13} {why}");
    }
    let g = record(&p, "compilers", &format!("{dir}/gcc"));
    assert_eq!(g["status"], "timed_out", "{g:#}");
    let ok = record(&p, "mpi", &format!("{dir}/mpicc.openmpi"));
    assert_eq!(ok["status"], "ok", "{ok:#}");
    assert_eq!(ok["implementation"], "openmpi", "{ok:#}");
    assert_eq!(ok["version"], "9.8.7", "{ok:#}");
    assert_eq!(ok["compiler_family"], "gcc", "{ok:#}");
    assert_eq!(ok["compiler_version"], gcc_version.as_str(), "{ok:#}");
    let liar = record(&p, "mpi", &format!("{dir}/mpicxx.openmpi"));
    assert_eq!(liar["implementation"], "mpich", "{liar:#}");
    assert_eq!(liar["version"], "4.1.2", "{liar:#}");
    assert_eq!(liar["compiler_family"], "gcc", "{liar:#}");
    eprintln!("probe with 4 broken wrappers and a hanging compiler, 2 s timeout: {took:.2?}");
    assert!(
        took < Duration::from_secs_f64(timeout + 1.0),
        "probe took {took:?}"
    );
}

/// Cray's compiler drivers carry Cray MPICH under names that are any compiler's (`cc`,
/// `ftn`): a driver that answers as the Cray MPICH data says is reported as that MPI over the
/// compiler it runs; a plain compiler under such a name is not an MPI wrapper.
#[test]
fn a_cray_driver_is_told_from_a_plain_compiler_of_the_same_name() {
    let bin = tempfile::tempdir().unwrap();
    let b = bin.path();
    write_exe(
        &b.join("cc"),
        "#!/bin/sh\ncase \"$1\" in\n--cray-print-opts=libs) echo '-L/opt/cray/pe/mpich/8.1.27/ofi/gnu/9.1/lib -lmpi_gnu_91'; exit 0;;\nesac\nexec /usr/bin/gcc \"$@\"\n",
    );
    write_exe(&b.join("ftn"), "#!/bin/sh\nexec /usr/bin/gfortran \"$@\"\n");
    let tools = tempfile::tempdir().unwrap();
    for t in ["as", "ld"] {
        std::os::unix::fs::symlink(sh(&format!("command -v {t}")), tools.path().join(t)).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let p = probe(
        cache.path(),
        &["--search", b.to_str().unwrap()],
        &[("PATH", tools.path().to_str().unwrap())],
    );
    let dir = b.display();
    let gcc_version = sh("/usr/bin/gcc -dumpfullversion");
    let cc = record(&p, "compilers", &format!("{dir}/cc"));
    assert_eq!(cc["family"], "gcc", "{cc:#}");
    assert_eq!(cc["version"], gcc_version.as_str(), "{cc:#}");
    assert_eq!(cc["wrapper"], "cray-mpich", "{cc:#}");
    let m = record(&p, "mpi", &format!("{dir}/cc"));
    assert_eq!(m["implementation"], "cray-mpich", "{m:#}");
    assert_eq!(m["version"], "8.1.27", "{m:#}");
    assert_eq!(m["compiler_family"], "gcc", "{m:#}");
    // It has no `-craype-verbose`: what it runs answered `--version` alone (gcc's banner), which
    // names no command, so none is claimed and the driver is not taken for a missing compiler.
    assert!(m.get("compiler").is_none(), "{m:#}");
    assert_eq!(m["status"], "ok", "{m:#}");
    let ftn = record(&p, "compilers", &format!("{dir}/ftn"));
    assert_eq!(ftn["family"], "gcc", "{ftn:#}");
    assert!(ftn.get("wrapper").is_none(), "{ftn:#}");
    assert_eq!(p["mpi"].as_array().unwrap().len(), 1, "{:#}", p["mpi"]);
}
