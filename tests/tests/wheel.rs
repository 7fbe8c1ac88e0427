//! Python wheels: both test projects (`tests/projects/py-skbuild`, scikit-build-core, and
//! `py-mesonpy`, meson-python; each a C extension calling BLAS and using OpenMP) built by
//! `cfgmx build` over gcc and clang x sequential/threaded OpenBLAS x debug/release. Each
//! variant must give its own wheel in one wheelhouse, installed and tested in its own
//! environment, loading its variant's BLAS and only its compiler's OpenMP runtime, debug
//! wheels without NDEBUG and without optimisation; the simple index must install exactly the
//! variant asked for; the generated settings used by hand with `pip wheel` and `python -m
//! build` must give the same wheels as `cfgmx build`, debug and release, both backends.
//!
//! The packaging parts (pip, wheel, the backends, build, pytest) come from the wheels
//! `scripts/setup.sh` downloads into `target/py-wheels`, installed with `PIP_NO_INDEX`.

use cfgmx_tests::{explain, files_under, repo, run_env, tempdir, variants, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn wheels_dir() -> String {
    let d = repo().join("target/py-wheels");
    assert!(
        d.join(".cfgmx-setup").is_file(),
        "{} is missing: run scripts/setup.sh",
        d.display()
    );
    d.display().to_string()
}

/// The offline pip settings every pip in these tests runs with.
fn offline(wheels: &str) -> [(&'static str, String); 2] {
    [
        ("PIP_FIND_LINKS", wheels.to_string()),
        ("PIP_NO_INDEX", "1".to_string()),
    ]
}

fn build(dir: &Path, project: &str) -> (Run, PathBuf, PathBuf) {
    let src = dir.join(project);
    copy_tree(&repo().join("tests/projects").join(project), &src);
    let root = dir.join("b");
    let matrix = repo().join("tests/matrices/python.toml");
    let wheels = wheels_dir();
    let env = offline(&wheels);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = run_env(
        dir,
        &[
            "build",
            matrix.to_str().unwrap(),
            "--source",
            src.to_str().unwrap(),
            "--build-root",
            root.to_str().unwrap(),
            "-j",
            "2",
            "--json",
        ],
        &env,
    );
    (r, src, root)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// What the extension says of itself in `python`'s process, and the OpenMP runtimes and BLAS
/// files that process has mapped (`/proc/self/maps`) once it is imported.
fn probe_ext(python: &Path, module: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let script = format!(
        "import json, {module}\n\
         maps = set(l.split()[-1] for l in open('/proc/self/maps') if '/' in l)\n\
         print(json.dumps(dict({module}.info(), \
           omp=sorted(m for m in maps if '/libgomp' in m or '/libomp' in m or '/libiomp' in m), \
           blas=sorted(m for m in maps if '/libopenblas' in m))))"
    );
    let mut c = Command::new(python);
    c.args(["-c", &script]).current_dir("/");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{python:?}: {}", explain(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The BLAS directory and `openblas_get_parallel` answer a variant promises, and the OpenMP
/// runtime its compiler brings.
fn promise(name: &str) -> (&'static str, i64, &'static str) {
    let (dir, parallel) = if name.contains("sequential") {
        ("openblas-serial", 0)
    } else if name.contains("pthread") {
        ("openblas-pthread", 1)
    } else {
        ("openblas-openmp", 2)
    };
    let omp = if name.starts_with("gcc") {
        "libgomp"
    } else {
        "libomp"
    };
    (dir, parallel, omp)
}

/// Every variant of one project: passed, its own labelled wheel in the wheelhouse, installed
/// in its own environment, loading what the variant promises.
fn check_project(
    project: &str,
    dist: &str,
    module: &str,
    key: &str,
) -> (tempfile::TempDir, serde_json::Value) {
    let t = tempdir();
    let (r, _src, root) = build(t.path(), project);
    r.expect_code(0);
    let report = r.json();
    let vs = variants(&report);
    assert_eq!(vs.len(), 8, "{}", r.explain());
    let mut wheels = Vec::new();
    for v in vs {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["status"], "passed", "{name}: {}", r.explain());
        assert_eq!(v["tests_passed"], 3, "{name}: pytest's three tests");
        let wheel = PathBuf::from(v["wheel"].as_str().unwrap());
        assert_eq!(wheel.parent().unwrap(), root.join("wheelhouse"));
        let file = wheel.file_name().unwrap().to_string_lossy().into_owned();
        let hash = &v["hash"].as_str().unwrap()[..12];
        let label = format!("{}.{hash}", name.replace('-', "."));
        assert!(
            file.starts_with(&format!("{dist}-1.2.0+{label}-")),
            "{file} lacks the label {label}"
        );
        wheels.push(file);
        let (blas_dir, parallel, omp) = promise(name);
        let linked = v["blas_linked"].as_array().unwrap();
        assert_eq!(linked.len(), 1, "{name}: {linked:?}");
        assert!(
            linked[0]
                .as_str()
                .unwrap()
                .contains(&format!("/{blas_dir}/")),
            "{name}: {linked:?}"
        );
        // In the variant's own environment, as its tests ran.
        let python = root.join(format!("{hash}-{key}/venv/bin/python"));
        let threads = if parallel == 0 { "1" } else { "2" };
        let got = probe_ext(&python, module, &[("OMP_NUM_THREADS", threads)]);
        assert_eq!(got["blas_parallel"], parallel, "{name}: {got}");
        let blas = got["blas"].as_array().unwrap();
        assert!(
            blas.len() == 1 && blas[0].as_str().unwrap().contains(&format!("/{blas_dir}/")),
            "{name}: {got}"
        );
        let omps = got["omp"].as_array().unwrap();
        assert!(
            omps.len() == 1 && omps[0].as_str().unwrap().contains(&format!("/{omp}.so")),
            "{name}: only {omp}: {got}"
        );
        assert_eq!(got["omp_threads"].as_i64(), Some(threads.parse().unwrap()));
        let debug = name.contains("debug");
        assert_eq!(got["ndebug"], i64::from(!debug), "{name}: NDEBUG {got}");
        assert_eq!(
            got["optimized"],
            i64::from(!debug),
            "{name}: optimisation {got}"
        );
    }
    wheels.sort();
    wheels.dedup();
    assert_eq!(wheels.len(), 8, "8 distinct wheels: {wheels:?}");
    let mut house: Vec<String> = std::fs::read_dir(root.join("wheelhouse"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    house.sort();
    assert_eq!(house, wheels);
    (t, report)
}

/// A fresh environment (no pip of its own: the given pip installs into it).
fn fresh_venv(dir: &Path) -> PathBuf {
    let o = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    dir.join("bin/python")
}

/// The one extension module under `dir`.
fn so_path(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "so"))
        .map(|p| dir.join(p))
        .collect();
    assert_eq!(found.len(), 1, "{}: {found:?}", dir.display());
    found.pop().unwrap()
}

fn the_so(dir: &Path) -> Vec<u8> {
    std::fs::read(so_path(dir)).unwrap()
}

/// Every file of an unpacked wheel, relative, its `.dist-info` named without a local label
/// (cfgmx's carries the variant's).
fn wheel_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = files_under(dir)
        .into_iter()
        .map(|p| {
            let rel = p.to_string_lossy().into_owned();
            match (rel.find('+'), rel.find(".dist-info/")) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &rel[..a], &rel[b..]),
                _ => rel,
            }
        })
        .collect();
    out.sort();
    out
}

/// What an extension module was built into, less where it was built: its bytes with the debug
/// sections and the build ID (a hash over them) taken out — code, data, dynamic section
/// (NEEDED, RUNPATH), `.comment` (the compiler's identity) —, and the compile flags its debug
/// information records (gcc's DW_AT_producer; a release build has none). The debug
/// information's only other difference is the directory each front end built in (a temporary
/// one).
fn build_facts(so: &Path, scratch: &Path) -> (Vec<u8>, Vec<String>) {
    let out = scratch.join(format!(
        "stripped-{}",
        so.display().to_string().replace('/', "_")
    ));
    let o = Command::new("objcopy")
        .args(["--strip-debug", "--remove-section=.note.gnu.build-id"])
        .arg(so)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let o = Command::new("readelf")
        .arg("--debug-dump=info")
        .arg(so)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let producers: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("DW_AT_producer"))
        .map(|l| l.rsplit("): ").next().unwrap_or(l).trim().to_string())
        .collect();
    (std::fs::read(&out).unwrap(), producers)
}

/// The generated settings by hand with `pip wheel` (`--config-settings`) and with `python -m
/// build` (`-C`), for each variant named: the same wheel as `cfgmx build` made (the same files,
/// the same extension but for where it was built), and the build really was that variant's
/// kind (a debug one without NDEBUG and optimisation, a release one with both: the compile
/// flags gcc recorded).
fn by_hand_is_the_same(
    t: &Path,
    report: &serde_json::Value,
    (project, format, key): (&str, &str, &str),
    names: &[&str],
) {
    let root = t.join("b");
    let fronts: [(&str, &[&str]); 2] = [
        (
            "pip",
            &["pip", "wheel", "--no-build-isolation", "--no-deps", "-w"],
        ),
        ("build", &["build", "--wheel", "--no-isolation", "-o"]),
    ];
    for name in names {
        let hash = &record(report, name)["hash"].as_str().unwrap()[..12];
        let ours = root.join(format!("{hash}-{key}/unpacked"));
        // `unpacked/<name>-<version>/`: the wheel's own tree.
        let ours_tree = std::fs::read_dir(&ours)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())
            .unwrap();
        let (ours_bytes, ours_flags) = build_facts(&so_path(&ours), t);
        if name.starts_with("gcc") {
            let debug = name.contains("debug");
            let flags = ours_flags.first().map(String::as_str).unwrap_or("");
            assert!(
                !debug || (flags.contains(" -O0") && flags.contains(" -g")),
                "{name}: a debug build's flags: {ours_flags:?}"
            );
            assert!(debug || ours_flags.is_empty(), "{name}: {ours_flags:?}");
        }
        for (front, args) in fronts {
            let hand = by_hand(t, project, format, name, front, args);
            let x = t.join(format!("hand-x-{name}-{front}"));
            unzip(&hand, &x);
            assert_eq!(
                wheel_files(&x),
                wheel_files(&ours_tree),
                "{name}: {front} by hand packed other files"
            );
            let (bytes, flags) = build_facts(&so_path(&x), t);
            assert_eq!(
                flags, ours_flags,
                "{name}: {front} by hand compiled otherwise"
            );
            assert!(
                bytes == ours_bytes,
                "{name}: {front} by hand built another extension than cfgmx build"
            );
            if !name.contains("debug") {
                // Without debug information nothing records the build directory: byte for byte.
                assert!(
                    the_so(&x) == the_so(&ours),
                    "{name}: {front} by hand built another extension than cfgmx build"
                );
            }
        }
    }
}

fn unzip(wheel: &Path, to: &Path) {
    let o = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(to)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
}

/// The variant's record in a report.
fn record<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    variants(report)
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The generated settings, by hand: `sh SCRIPT FRONT ...` in the project, with an environment
/// holding the backend and the front end; the wheel it wrote.
fn by_hand(
    t: &Path,
    project: &str,
    format: &str,
    variant: &str,
    label: &str,
    front: &[&str],
) -> PathBuf {
    let wheels = wheels_dir();
    let tools = t.join("tools");
    if !tools.join("bin/python").is_file() {
        let o = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&tools)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", explain(&o));
        let o = Command::new(tools.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args([
                "pip>=23.1",
                "wheel",
                "build",
                "scikit-build-core",
                "meson-python",
            ])
            .envs(offline(&wheels))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", explain(&o));
    }
    let matrix = repo().join("tests/matrices/python.toml");
    let out = t.join("gen");
    for f in [format, "meson-native"] {
        run_env(
            t,
            &["generate", matrix.to_str().unwrap(), "-f", f, "-o", "gen"],
            &[],
        )
        .expect_code(0);
    }
    let dist = t.join(format!("hand-{format}-{variant}-{label}"));
    let o = Command::new("sh")
        .arg(out.join(format!("python/{format}/{variant}.sh")))
        .args(front)
        .arg(&dist)
        .arg(".")
        .current_dir(t.join(project))
        .env("PYTHON", tools.join("bin/python"))
        .envs(offline(&wheels))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let w: Vec<PathBuf> = std::fs::read_dir(&dist)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    w[0].clone()
}

/// scikit-build-core: 8 wheels; the index installs exactly the one asked for; the generated
/// settings by hand with `pip wheel` and `python -m build` give the same wheels, debug and
/// release.
#[test]
fn scikit_build_core_wheels_per_variant() {
    let (t, report) = check_project("py-skbuild", "cfgmx_skext", "skext", "skbuild");
    let root = t.path().join("b");
    // pip, from the simple index, into an empty environment: exactly that variant.
    let v = record(&report, "clang-openblas-pthread-debug");
    let hash = &v["hash"].as_str().unwrap()[..12];
    let version = format!("1.2.0+clang.openblas.pthread.debug.{hash}");
    let venv = fresh_venv(&t.path().join("from-index"));
    let pip = root.join(format!("{hash}-skbuild/venv/bin/python"));
    let o = Command::new(&pip)
        .args(["-m", "pip", "--python"])
        .arg(&venv)
        .args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "--index-url",
        ])
        .arg(format!("file://{}/wheelhouse/simple", root.display()))
        .arg(format!("cfgmx-skext=={version}"))
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_NO_INDEX")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let o = Command::new(&venv)
        .args([
            "-c",
            "import importlib.metadata as m, skext; print(m.version('cfgmx-skext')); print(skext.__file__)",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(version.as_str()));
    let installed = std::fs::read(lines.next().unwrap().trim()).unwrap();
    assert_eq!(
        installed,
        the_so(&root.join(format!("{hash}-skbuild/unpacked"))),
        "the index installed another build"
    );
    // By hand, with both front ends: a debug and a release variant, both compilers.
    by_hand_is_the_same(
        t.path(),
        &report,
        ("py-skbuild", "scikit-build-core", "skbuild"),
        &["gcc-threaded-debug", "clang-openblas-pthread-release"],
    );
}

/// meson-python: 8 wheels; the generated settings by hand with `pip wheel` and `python -m
/// build` give the same wheels, debug and release.
#[test]
fn meson_python_wheels_per_variant() {
    let (t, report) = check_project("py-mesonpy", "cfgmx_mesonext", "mesonext", "mesonpy");
    by_hand_is_the_same(
        t.path(),
        &report,
        ("py-mesonpy", "meson-python", "mesonpy"),
        &["clang-openblas-pthread-debug", "gcc-sequential-release"],
    );
}

/// A wheel whose extension would load two OpenMP runtimes (clang's libomp for the project,
/// libgomp through Debian's OpenMP OpenBLAS) fails its variant at the build step, saying so,
/// before any test runs.
#[test]
fn two_openmp_runtimes_fail_the_variant() {
    let t = tempdir();
    let src = t.path().join("py-skbuild");
    copy_tree(&repo().join("tests/projects/py-skbuild"), &src);
    std::fs::write(
        t.path().join("m.toml"),
        "name = \"two-runtimes\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"clang\"]\n\
         blas = [\"openblas-openmp\"]\nbuild = [\"release\"]\n\
         [values.compiler.clang]\nfacets = [\"openmp\"]\n",
    )
    .unwrap();
    let wheels = wheels_dir();
    let env = offline(&wheels);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = run_env(
        t.path(),
        &[
            "build",
            "m.toml",
            "--source",
            "py-skbuild",
            "--build-root",
            "b",
            "-j",
            "2",
            "--json",
        ],
        &env,
    );
    r.expect_code(1);
    let report = r.json();
    let v = &variants(&report)[0];
    assert_eq!(v["status"], "failed", "{}", r.explain());
    let b = cfgmx_tests::step(v, "build");
    let m = b["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("2 OpenMP runtimes") && m.contains("libgomp") && m.contains("libomp"),
        "{m}"
    );
    assert_eq!(
        cfgmx_tests::step(v, "test")["status"],
        "not_run",
        "{}",
        r.explain()
    );
}

/// `--repair`: the wheel goes through `auditwheel repair`, carries its variant's BLAS inside
/// (tagged manylinux), and an environment that installs it loads that copy, which is still the
/// variant's build (threading answer), with no RUNPATH into the system's BLAS directories.
#[test]
fn repaired_wheel_carries_the_variants_blas() {
    let t = tempdir();
    let src = t.path().join("py-skbuild");
    copy_tree(&repo().join("tests/projects/py-skbuild"), &src);
    let matrix = repo().join("tests/matrices/python.toml");
    let wheels = wheels_dir();
    let env = offline(&wheels);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = run_env(
        t.path(),
        &[
            "build",
            matrix.to_str().unwrap(),
            "--source",
            "py-skbuild",
            "--build-root",
            "b",
            "-j",
            "2",
            "--only",
            "gcc-threaded-release",
            "--repair",
            "--json",
        ],
        &env,
    );
    r.expect_code(0);
    let report = r.json();
    let v = &variants(&report)[0];
    assert_eq!(v["status"], "passed", "{}", r.explain());
    let wheel = PathBuf::from(v["wheel"].as_str().unwrap());
    let file = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(file.contains("manylinux"), "{file}");
    // The one wheel of the variant in the wheelhouse is the repaired one.
    let house: Vec<_> = std::fs::read_dir(t.path().join("b/wheelhouse"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".whl"))
        .collect();
    assert_eq!(house.len(), 1);
    let linked = v["blas_linked"].as_array().unwrap();
    assert!(
        linked.len() == 1
            && linked[0]
                .as_str()
                .unwrap()
                .contains("/cfgmx_skext.libs/libopenblas"),
        "{linked:?}"
    );
    // Installed elsewhere: the copy inside the wheel, still the OpenMP build.
    let venv = fresh_venv(&t.path().join("elsewhere"));
    let hash = &v["hash"].as_str().unwrap()[..12];
    let pip = t.path().join(format!("b/{hash}-skbuild/venv/bin/python"));
    let o = Command::new(&pip)
        .args(["-m", "pip", "--python"])
        .arg(&venv)
        .args(["install", "-q", "--no-index", "--no-deps"])
        .arg(&wheel)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let got = probe_ext(&venv, "skext", &[("OMP_NUM_THREADS", "2")]);
    assert_eq!(got["blas_parallel"], 2, "{got}");
    let blas = got["blas"].as_array().unwrap();
    assert!(
        blas.len() == 1 && blas[0].as_str().unwrap().contains("/cfgmx_skext.libs/"),
        "{got}"
    );
}

/// A second CPython beside Debian's 3.11, for the `python` axis: Debian 12 packages no other
/// and `uv python install` cannot download one here, but this machine image's pyenv holds
/// real builds (`~/.pyenv/versions/3.12.*`, headers included). The directory of its
/// `python3.12`.
fn second_python() -> PathBuf {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".pyenv"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("3.12."))
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("python3.12").is_file())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no CPython 3.12 under {}/versions: the python axis test needs a second real \
             interpreter (this machine kind's image has pyenv's 3.12)",
            root.display()
        )
    })
}

/// What `python -c CODE` prints.
fn ask(python: &Path, code: &str) -> String {
    let o = Command::new(python).args(["-c", code]).output().unwrap();
    assert!(o.status.success(), "{python:?}: {}", explain(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The `python` axis, resolved by the probe: each value is built, installed and tested with
/// the interpreter the probe found for it (3.11: Debian's or pyenv's; 3.12: pyenv's, put on
/// PATH), its wheel tagged for that interpreter, its extension named with that interpreter's
/// suffix; the interpreter is in the concrete hash. A value no interpreter answers to (3.99) is
/// unavailable, with the reason, and nothing is built for it.
#[test]
fn python_axis_is_resolved_by_the_probe() {
    let t = tempdir();
    let src = t.path().join("py-skbuild");
    copy_tree(&repo().join("tests/projects/py-skbuild"), &src);
    std::fs::write(
        t.path().join("m.toml"),
        "name = \"py-axis\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\n\
         blas = [\"sequential\"]\nbuild = [\"debug\"]\npython = [\"3.11\", \"3.12\", \"3.99\"]\n\
         [values.compiler.gcc]\nfacets = [\"openmp\"]\n",
    )
    .unwrap();
    let py312 = second_python();
    let path = format!(
        "{}:{}",
        py312.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let wheels = wheels_dir();
    let mut env: Vec<(&str, &str)> = vec![("PATH", path.as_str())];
    let off = offline(&wheels);
    env.extend(off.iter().map(|(k, v)| (*k, v.as_str())));
    // What the probe recorded: the interpreters, by the axis value each answers to.
    let r = run_env(t.path(), &["probe", "--json"], &env);
    r.expect_code(0);
    let profile = r.json();
    let pythons = profile["pythons"].as_array().unwrap();
    let rec = |minor: &str| {
        pythons
            .iter()
            .find(|p| p["minor"] == minor)
            .unwrap_or_else(|| panic!("no {minor} in {pythons:?}"))
            .clone()
    };
    let (p311, p312) = (rec("3.11"), rec("3.12"));
    assert_eq!(p312["tag"], "cp312");
    assert_eq!(p312["ext_suffix"], ".cpython-312-x86_64-linux-gnu.so");
    assert_eq!(
        p312["path"].as_str(),
        Some(py312.join("python3.12").to_str().unwrap())
    );
    // The settings script made from that probe runs the variant's interpreter by default.
    run_env(
        t.path(),
        &["generate", "m.toml", "-f", "scikit-build-core", "-o", "gen"],
        &env,
    )
    .expect_code(0);
    let gen = t.path().join("gen/python/scikit-build-core");
    let script = std::fs::read_to_string(gen.join("gcc-sequential-debug-3.12.sh")).unwrap();
    let line = format!(
        "if [ -z \"${{PYTHON-}}\" ]; then PYTHON='{}'; fi",
        p312["path"].as_str().unwrap()
    );
    assert!(script.contains(&line), "{script}");
    assert!(!gen.join("gcc-sequential-debug-3.99.sh").exists());
    let r = run_env(
        t.path(),
        &[
            "build",
            "m.toml",
            "--source",
            "py-skbuild",
            "--build-root",
            "b",
            "-j",
            "2",
            "--json",
        ],
        &env,
    );
    r.expect_code(0);
    let report = r.json();
    assert_eq!(variants(&report).len(), 3, "{}", r.explain());
    let mut hashes = Vec::new();
    for (minor, p) in [("3.11", &p311), ("3.12", &p312)] {
        let name = format!("gcc-sequential-debug-{minor}");
        let v = record(&report, &name);
        assert_eq!(v["status"], "passed", "{name}: {}", r.explain());
        assert_eq!(v["tests_passed"], 3, "{name}");
        let tag = p["tag"].as_str().unwrap();
        let wheel = v["wheel"].as_str().unwrap();
        assert!(
            wheel.ends_with(&format!("-{tag}-{tag}-linux_x86_64.whl"))
                && wheel.contains(&format!("+gcc.sequential.debug.{minor}.")),
            "{name}: {wheel}"
        );
        assert_eq!(
            v["tools"]["python"],
            format!(
                "cpython {} ({})",
                p["version"].as_str().unwrap(),
                p["path"].as_str().unwrap()
            ),
            "{name}"
        );
        // The environment is that interpreter's, and so is the extension it imports.
        let hash = v["hash"].as_str().unwrap();
        hashes.push(hash.to_string());
        let venv = t
            .path()
            .join(format!("b/{}-skbuild/venv/bin/python", &hash[..12]));
        let got = ask(
            &venv,
            "import sys, skext; print('%d.%d.%d' % sys.version_info[:3]); print(skext.__file__)",
        );
        let mut lines = got.lines();
        assert_eq!(lines.next(), p["version"].as_str(), "{name}: {got}");
        let file = lines.next().unwrap();
        assert!(
            file.ends_with(p["ext_suffix"].as_str().unwrap()) && file.contains("/venv/"),
            "{name}: {file}"
        );
        let info = probe_ext(&venv, "skext", &[("OMP_NUM_THREADS", "1")]);
        assert_eq!(info["ndebug"], 0, "{name}: a debug build {info}");
        assert_eq!(info["blas_parallel"], 0, "{name}: {info}");
    }
    // Same spec but the interpreter: another concrete variant.
    assert_ne!(hashes[0], hashes[1]);
    let v = record(&report, "gcc-sequential-debug-3.99");
    assert_eq!(v["status"], "unavailable", "{}", r.explain());
    let why = v["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("no interpreter answers to python = \"3.99\"")
            && why.contains(p312["path"].as_str().unwrap()),
        "{why}"
    );
    assert!(v.get("wheel").is_none_or(|w| w.is_null()), "{v}");
    let house: Vec<String> = std::fs::read_dir(t.path().join("b/wheelhouse"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    assert_eq!(house.len(), 2, "only the two available variants: {house:?}");
    assert!(!house.iter().any(|w| w.contains(".3.99.")), "{house:?}");
}
