//! `cfgmx generate` against the real tools: CMake + Ninja + ctest, Meson, Lmod, sh, python3.
//!
//! The machine profile these tests pass is built from what is really installed (`which gcc`,
//! Debian's OpenBLAS directories), and every check reads back what the tool itself saw.

use cfgmx_tests::{copy_project, repo};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The cfgmx binary (the shared harness builds it once and keeps it current).
fn cfgmx_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(cfgmx_tests::bin)
}

/// Runs a command; on failure (when `ok` is asked) shows command, cwd, status and output.
fn run(cmd: &mut Command, ok: bool) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if ok && !out.status.success() {
        panic!(
            "command failed: {cmd:?}\ncwd: {:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
            cmd.get_current_dir(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn cfgmx(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(cfgmx_bin());
    // No probe cache from the developer's machine: each test says which profile it uses.
    c.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CFGMX_CACHE_DIR", dir.join(".no-probe-cache"));
    c
}

/// The JSON file at `path`, parsed.
fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `python3 -c SCRIPT` in `dir`, to succeed.
fn python(dir: &Path, script: &str) -> Output {
    run(
        Command::new("python3")
            .args(["-c", script])
            .current_dir(dir),
        true,
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn which(name: &str) -> String {
    let o = run(
        Command::new("sh").args(["-c", &format!("command -v {name}")]),
        true,
    );
    stdout(&o).trim().to_string()
}

fn version(exe: &str, arg: &str) -> String {
    stdout(&run(Command::new(exe).arg(arg), true))
        .trim()
        .to_string()
}

/// A machine profile from what is installed: compilers found on PATH, the three Debian
/// OpenBLAS builds from their directories. `with_clang = false` leaves clang out.
fn real_profile(with_clang: bool) -> String {
    let triplet = version("gcc", "-dumpmachine");
    let mut compilers = vec![
        serde_json::json!({"path": which("gcc"), "family": "gcc", "version": version("gcc", "-dumpfullversion"), "languages": ["c"]}),
        serde_json::json!({"path": which("gfortran"), "family": "gcc", "version": version("gfortran", "-dumpfullversion"), "languages": ["fortran"]}),
    ];
    if with_clang {
        compilers.push(serde_json::json!({"path": which("clang"), "family": "clang", "version": version("clang", "-dumpversion"), "languages": ["c"]}));
    }
    let blas: Vec<_> = [
        ("serial", "sequential"),
        ("pthread", "pthread"),
        ("openmp", "openmp"),
    ]
    .iter()
    .map(|(b, t)| {
        let dir = format!("/usr/lib/{triplet}/openblas-{b}");
        assert!(
            Path::new(&dir).join("libopenblas.so").exists(),
            "{dir} missing: run scripts/setup.sh"
        );
        serde_json::json!({"path": format!("{dir}/libopenblas.so"), "provider": "openblas", "build": b, "threading": t, "lib_dir": dir})
    })
    .collect();
    serde_json::json!({"schema": 1, "cpus": 2, "compilers": compilers, "blas": blas}).to_string()
}

fn matrix() -> String {
    repo()
        .join("tests/matrices/gcc-clang.toml")
        .display()
        .to_string()
}

/// A generate test's temporary directory: `profile.json` holds the real machine profile, and
/// `proj/` a copy of the test project when the test builds it.
struct Site {
    tmp: tempfile::TempDir,
    profile: PathBuf,
    proj: PathBuf,
}

impl Site {
    /// The directory with just the profile (`with_clang = false` leaves clang out of it).
    fn new(with_clang: bool) -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let profile = tmp.path().join("profile.json");
        std::fs::write(&profile, real_profile(with_clang)).unwrap();
        let proj = tmp.path().join("proj");
        Site { tmp, profile, proj }
    }

    /// The directory with the profile and the copy of the project in `proj/`.
    fn with_project(with_clang: bool) -> Site {
        let site = Site::new(with_clang);
        copy_project(&site.proj);
        site
    }

    /// The temporary directory itself.
    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `cfgmx generate MATRIX -f FORMAT -o OUT --profile profile.json`, to run in `dir`.
    fn generate_cmd(&self, dir: &Path, matrix: &str, format: &str, out: &str) -> Command {
        let profile = self.profile.to_str().unwrap();
        cfgmx(
            dir,
            &[
                "generate",
                matrix,
                "-f",
                format,
                "-o",
                out,
                "--profile",
                profile,
            ],
        )
    }

    /// Runs that generate in `dir` for each of `formats` in turn, each to succeed.
    fn generate(&self, dir: &Path, matrix: &str, formats: &[&str], out: &str) {
        for f in formats {
            run(&mut self.generate_cmd(dir, matrix, f, out), true);
        }
    }

    /// The gcc-clang matrix generated here in each of `formats` into `out/`, named by its
    /// absolute path; returns that directory.
    fn generate_out(&self, formats: &[&str]) -> PathBuf {
        let out = self.path().join("out");
        self.generate(self.path(), &matrix(), formats, out.to_str().unwrap());
        out
    }

    /// name -> (openmp?, BLAS threading) as the variants claim, read through a user template.
    fn claims(&self) -> Vec<(String, bool, String)> {
        let dir = self.path();
        let t = dir.join("claims.txt.tera");
        std::fs::write(
            &t,
            "{% for v in variants %}{{ v.name }} {{ v.openmp }} {{ v.blas.threading }}\n{% endfor %}",
        )
        .unwrap();
        let o = run(
            &mut cfgmx(
                dir,
                &[
                    "generate",
                    &matrix(),
                    "--template",
                    t.to_str().unwrap(),
                    "--profile",
                    self.profile.to_str().unwrap(),
                ],
            ),
            true,
        );
        stdout(&o)
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                (w[0].to_string(), w[1] == "true", w[2].to_string())
            })
            .collect()
    }
}

/// `cmake --preset`, `cmake --build --preset` and `ctest --preset` for preset `name` in `proj`,
/// with `env` added to the environment; each must succeed.
fn configure_build_test(proj: &Path, name: &str, env: &[(&str, &str)]) {
    for step in [
        vec!["cmake", "--preset", name],
        vec!["cmake", "--build", "--preset", name],
        vec!["ctest", "--preset", name],
    ] {
        let mut c = Command::new(step[0]);
        c.args(&step[1..])
            .current_dir(proj)
            .envs(env.iter().copied());
        run(&mut c, true);
    }
}

#[test]
fn every_preset_configures_builds_and_tests_with_its_own_flags_and_blas() {
    let site = Site::with_project(true);
    let proj = &site.proj;
    site.generate(proj, &matrix(), &["cmake-presets"], ".");
    let claims = site.claims();
    assert_eq!(claims.len(), 8, "{claims:?}");
    let gcc = which("gcc");
    let clang = which("clang");
    for (name, openmp, threading) in &claims {
        // A hostile parent environment: the presets must set or clear each of these.
        let env = [
            ("CC", "/bin/false"),
            ("FC", "/bin/false"),
            ("CFLAGS", "-DCFGMX_LEAKED_CFLAGS"),
            ("LDFLAGS", "-Wl,--no-such-flag"),
            ("BLA_VENDOR", "Generic"),
            ("CMAKE_BUILD_TYPE", "MinSizeRel"),
            ("OMP_NUM_THREADS", "7"),
        ];
        configure_build_test(proj, name, &env);
        let bdir = proj.join("build").join(name);
        let info = stdout(&run(
            Command::new(bdir.join("ompblas_info"))
                .env_remove("OMP_NUM_THREADS")
                .env_remove("OPENBLAS_NUM_THREADS"),
            true,
        ));
        let want_omp = if *openmp {
            "openmp: 20"
        } else {
            "openmp: none"
        };
        assert!(info.contains(want_omp), "{name}: {info}");
        let want_par = match threading.as_str() {
            "sequential" => "blas-parallel: 0",
            "pthread" => "blas-parallel: 1",
            "openmp" => "blas-parallel: 2",
            t => panic!("{name}: unexpected threading {t}"),
        };
        assert!(info.contains(want_par), "{name} ({threading}): {info}");

        let cc = std::fs::read_to_string(bdir.join("compile_commands.json")).unwrap();
        let cmds: serde_json::Value = serde_json::from_str(&cc).unwrap();
        let info_c = cmds
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["file"].as_str().unwrap().ends_with("info.c"))
            .expect("info.c compile command");
        let line = info_c["command"].as_str().unwrap();
        let compiler = if name.starts_with("clang") {
            &clang
        } else {
            &gcc
        };
        assert!(line.starts_with(compiler.as_str()), "{name}: {line}");
        let opt = if name.ends_with("debug") {
            "-O0"
        } else {
            "-O3"
        };
        assert!(line.contains(opt), "{name}: {line}");
        assert_eq!(line.contains("-fopenmp"), *openmp, "{name}: {line}");
        assert!(!line.contains("CFGMX_LEAKED_CFLAGS"), "{name}: {line}");
        let cache = std::fs::read_to_string(bdir.join("CMakeCache.txt")).unwrap();
        let bt = if name.ends_with("debug") {
            "Debug"
        } else {
            "Release"
        };
        assert!(
            cache.contains(&format!("CMAKE_BUILD_TYPE:STRING={bt}")),
            "{name}"
        );
        // Gone once checked: the 2-core machine is shared.
        let _ = std::fs::remove_dir_all(&bdir);
    }
}

#[test]
fn meson_accepts_each_native_file_and_builds() {
    let site = Site::with_project(true);
    let (tmp, proj) = (&site.tmp, &site.proj);
    let out = site.generate_out(&["meson-native"]);
    let claims = site.claims();
    // One per compiler x threading: the build modes add nothing Meson-specific.
    for (name, openmp, threading) in claims.iter().filter(|c| c.0.ends_with("release")) {
        let native = out.join(format!("meson/{name}.ini"));
        let b = tmp.path().join(format!("mb-{name}"));
        run(
            Command::new("meson")
                .args(["setup", "--native-file"])
                .arg(&native)
                .arg(&b)
                .current_dir(proj)
                .env_remove("CC")
                .env_remove("CFLAGS"),
            true,
        );
        run(Command::new("meson").args(["test", "-C"]).arg(&b), true);
        let info = stdout(&run(&mut Command::new(b.join("ompblas_info")), true));
        assert_eq!(info.contains("openmp: 20"), *openmp, "{name}: {info}");
        let want = match threading.as_str() {
            "sequential" => "blas-parallel: 0",
            "pthread" => "blas-parallel: 1",
            _ => "blas-parallel: 2",
        };
        assert!(info.contains(want), "{name}: {info}");
    }
}

const LMOD_INIT: &str = "/usr/share/lmod/lmod/init/bash";

/// bash running `script` in `dir` with no module state inherited from the caller's Lmod.
fn lmod_bash(dir: &Path, script: &str) -> Command {
    let mut c = Command::new("bash");
    c.args(["--noprofile", "--norc", "-c", script])
        .current_dir(dir)
        .env_remove("MODULEPATH")
        .env_remove("LOADEDMODULES")
        .env_remove("_LMFILES_");
    c
}

#[test]
fn lmod_loads_a_variant_and_swaps_compilers() {
    let site = Site::new(true);
    let tmp = &site.tmp;
    site.generate(tmp.path(), &matrix(), &["lmod"], "out");
    let gv = version("gcc", "-dumpfullversion");
    let cv = version("clang", "-dumpversion");
    // The hierarchy: only the loaded compiler's variants are visible; loading the other
    // compiler swaps it out (family "compiler") and Lmod marks the gcc variant inactive (the
    // clang branch has no module of that name); a second variant swaps the first.
    let script = format!(
        r#". {LMOD_INIT}
module use "$PWD/out/modules/Core"
module load gcc-clang/gcc-threaded-debug 2>/dev/null && exit 2
module load gcc/{gv} || exit 3
echo "avail: $(module -t avail 2>&1 | grep '^gcc-clang/.' | sort | tr '\n' ' ')"
module load gcc-clang/gcc-threaded-debug || exit 4
printf 'CC=%s\nCFLAGS=%s\n' "$CC" "$CFLAGS"
module load gcc-clang/gcc-sequential-release || exit 5
echo "swapped: $(module -t list 2>&1 | tr '\n' ' ')"
module load clang/{cv} 2>&1 || exit 6
echo "after-compiler-swap: CC=$CC $(module -t list 2>&1 | tr '\n' ' ')"
module load gcc-clang/clang-sequential-release 2>&1 || exit 7
printf 'CC=%s\nCFLAGS=%s\n' "$CC" "$CFLAGS"
echo "final: $(module -t list 2>&1 | tr '\n' ' ')"
"#
    );
    let o = run(&mut lmod_bash(tmp.path(), &script), true);
    let text = stdout(&o);
    let gcc = which("gcc");
    let clang = which("clang");
    let line = |prefix: &str| -> Vec<String> {
        let l = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"));
        l[prefix.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        line("avail: "),
        [
            "gcc-clang/gcc-sequential-debug",
            "gcc-clang/gcc-sequential-release",
            "gcc-clang/gcc-threaded-debug",
            "gcc-clang/gcc-threaded-release"
        ],
        "{text}"
    );
    assert!(
        text.contains(&format!("CC={gcc}\nCFLAGS=-g -O0 -fopenmp\n")),
        "{text}"
    );
    assert_eq!(
        line("swapped: "),
        [
            format!("gcc/{gv}"),
            "gcc-clang/gcc-sequential-release".into()
        ],
        "{text}"
    );
    // The gcc variant is unloaded (inactive), and with it its CC; only a variant sets CC.
    let after = line("after-compiler-swap: ");
    assert_eq!(after[0], "CC=", "{text}");
    assert!(after.contains(&format!("clang/{cv}")), "{text}");
    assert!(!after.iter().any(|m| m.starts_with("gcc")), "{text}");
    assert!(
        text.contains(&format!("CC={clang}\nCFLAGS=-O3 -DNDEBUG\n")),
        "{text}"
    );
    assert_eq!(
        line("final: "),
        [
            format!("clang/{cv}"),
            "gcc-clang/clang-sequential-release".into()
        ],
        "{text}"
    );
}

/// Every character that could break out of a quoted value somewhere.
const HOSTILE: &str = "a'b\"c\\d $(touch PWNED) `touch PWNED` ; && x\nnext ]=] ]==] ''' é ${HOME} $env{HOME} @DIRNAME@ %s";

fn toml_basic(s: &str) -> String {
    // serde_json's escaping is a subset of TOML basic strings' (\", \\, \n, \uXXXX).
    serde_json::to_string(s).unwrap()
}

fn hostile_matrix(dir: &Path, value: &str) -> PathBuf {
    let v = toml_basic(value);
    let text = format!(
        r#"name = "hostile"
languages = ["c"]
[axes]
compiler = ["gcc"]
flavor = [{v}]
[values.flavor.{v}]
env = {{ HOSTILE = {v} }}
cmake = {{ HOSTILE = {v} }}
meson = {{ HOSTILE = {v} }}
"#
    );
    let p = dir.join("hostile.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The first entry of `dir`: the one file a format writes there for the one-variant matrix.
fn first_entry(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

fn no_pwned(dir: &Path) {
    assert!(!dir.join("PWNED").exists(), "a value ran as code");
    assert!(!repo().join("PWNED").exists(), "a value ran as code");
}

#[test]
fn hostile_values_round_trip_through_sh_cmake_lmod_json_and_yaml() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let m = hostile_matrix(d, HOSTILE);
    let m = m.to_str().unwrap();
    for f in ["env", "cmake-cache", "cmake-presets"] {
        run(&mut cfgmx(d, &["generate", m, "-f", f, "-o", "out"]), true);
    }
    let name = first_entry(&d.join("out/env"));

    // sh: dash and bash read the same bytes back.
    for shell in ["sh", "bash"] {
        let o = run(
            Command::new(shell)
                .args(["-c", r#". "$1"; printf %s "$HOSTILE""#, "x"])
                .arg(&name)
                .current_dir(d),
            true,
        );
        assert_eq!(stdout(&o), HOSTILE, "{shell}");
    }

    // CMake: the -C cache file, and the presets, seen by a real configure.
    let proj = d.join("readback");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(readback NONE)\nfile(WRITE \"${CMAKE_BINARY_DIR}/hostile.out\" \"${HOSTILE}\")\n",
    )
    .unwrap();
    let cache = first_entry(&d.join("out/cache"));
    let b = d.join("b-cache");
    run(
        Command::new("cmake")
            .arg("-C")
            .arg(&cache)
            .arg("-S")
            .arg(&proj)
            .arg("-B")
            .arg(&b)
            .current_dir(d),
        true,
    );
    assert_eq!(
        std::fs::read_to_string(b.join("hostile.out")).unwrap(),
        HOSTILE
    );
    std::fs::copy(
        d.join("out/CMakePresets.json"),
        proj.join("CMakePresets.json"),
    )
    .unwrap();
    let presets = read_json(&proj.join("CMakePresets.json"));
    let pname = presets["configurePresets"][0]["name"].as_str().unwrap();
    run(
        Command::new("cmake")
            .args(["--preset", pname])
            .current_dir(&proj),
        true,
    );
    assert_eq!(
        std::fs::read_to_string(proj.join("build").join(pname).join("hostile.out")).unwrap(),
        HOSTILE
    );

    // Lmod: a line break is refused (Lmod would hand it unquoted to the shell); everything
    // else comes back exactly.
    let o = run(
        &mut cfgmx(d, &["generate", m, "-f", "lmod", "-o", "out"]),
        false,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Lmod"), "{err}");
    let one_line = HOSTILE.replace('\n', " ");
    let lm_dir = d.join("lm");
    std::fs::create_dir_all(&lm_dir).unwrap();
    let m1 = hostile_matrix(&lm_dir, &one_line);
    run(
        &mut cfgmx(
            &lm_dir,
            &["generate", m1.to_str().unwrap(), "-f", "lmod", "-o", "out"],
        ),
        true,
    );
    let module = first_entry(&lm_dir.join("out/modules/Compiler/gcc/default/hostile"));
    let mname = module.file_stem().unwrap().to_string_lossy().into_owned();
    let script = format!(
        ". {LMOD_INIT}\nmodule use \"$PWD/out/modules/Core\"\nmodule load gcc/default hostile/{mname} || exit 3\nprintf %s \"$HOSTILE\"\n"
    );
    let o = run(&mut lmod_bash(&lm_dir, &script), true);
    assert_eq!(stdout(&o), one_line);
    no_pwned(&lm_dir);

    // JSON (GitHub matrix) and YAML (a user template with the yaml filter), by python3.
    let gh = stdout(&run(&mut cfgmx(d, &["generate", m, "-f", "github"]), true));
    let t = d.join("t.yml.tera");
    std::fs::write(
        &t,
        "values:\n{% for v in variants %}  - {{ v.env.HOSTILE | yaml }}\n{% endfor %}",
    )
    .unwrap();
    let yml = stdout(&run(
        &mut cfgmx(d, &["generate", m, "--template", t.to_str().unwrap()]),
        true,
    ));
    std::fs::write(d.join("gh.json"), &gh).unwrap();
    std::fs::write(d.join("v.yml"), &yml).unwrap();
    let py = r#"
import json, sys, yaml
gh = json.load(open("gh.json"))
y = yaml.safe_load(open("v.yml"))
sys.stdout.write(gh["include"][0]["flavor"] + "\0" + y["values"][0])
"#;
    let o = python(d, py);
    assert_eq!(stdout(&o), format!("{HOSTILE}\0{HOSTILE}"));
    no_pwned(d);
}

#[test]
fn meson_refuses_a_single_quote_and_round_trips_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // `generate` of a matrix into Meson native files in `out`, to succeed or not.
    let generate = |m: &Path, ok: bool| {
        let m = m.to_str().unwrap();
        run(
            &mut cfgmx(d, &["generate", m, "-f", "meson-native", "-o", "out"]),
            ok,
        )
    };
    // With a quote: refused, exit 2, a message that says why, nothing written.
    let m = hostile_matrix(d, HOSTILE);
    let o = generate(&m, false);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("single quote"), "{err}");
    assert!(!d.join("out").exists(), "something was written");

    // Everything Meson can represent comes back exactly, as Meson read it.
    let value =
        "b\"c\\d $(touch PWNED) `touch PWNED` ; && ]=] é ${HOME} @DIRNAME@ @GLOBAL_SOURCE_ROOT@ x";
    let m = hostile_matrix(d, value);
    generate(&m, true);
    let native = first_entry(&d.join("out/meson"));
    let proj = d.join("mproj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("meson.build"), "project('readback', 'c')\n").unwrap();
    std::fs::write(
        proj.join("meson_options.txt"),
        "option('HOSTILE', type: 'string', value: '')\n",
    )
    .unwrap();
    let b = d.join("mb");
    run(
        Command::new("meson")
            .args(["setup", "--native-file"])
            .arg(&native)
            .arg(&b)
            .current_dir(&proj),
        true,
    );
    let o = run(
        Command::new("meson")
            .args(["introspect", "--buildoptions"])
            .arg(&b),
        true,
    );
    let opts: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got = opts
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "HOSTILE")
        .expect("HOSTILE option");
    assert_eq!(got["value"].as_str().unwrap(), value);
    no_pwned(d);
}

#[test]
fn github_matrix_has_one_entry_per_variant_and_splits_at_256() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = run(
        &mut cfgmx(d, &["generate", &matrix(), "-f", "github"]),
        true,
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let inc = j["include"].as_array().unwrap();
    assert_eq!(inc.len(), 8);
    assert!(inc
        .iter()
        .all(|e| e["name"].is_string() && e["hash"].is_string()));

    let values: Vec<String> = (0..150).map(|i| format!("\"p{i}\"")).collect();
    let big = d.join("big.toml");
    std::fs::write(
        &big,
        format!(
            "name = \"big\"\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"sequential\", \"threaded\"]\npart = [{}]\n",
            values.join(", ")
        ),
    )
    .unwrap();
    let big = big.to_str().unwrap();
    let o = run(&mut cfgmx(d, &["generate", big, "-f", "github"]), false);
    assert_eq!(o.status.code(), Some(2), "two files cannot go to stdout");
    run(
        &mut cfgmx(d, &["generate", big, "-f", "github", "-o", "gh"]),
        true,
    );
    let mut sizes = Vec::new();
    for n in 1..=2 {
        let j = read_json(&d.join(format!("gh/github-matrix-{n}.json")));
        sizes.push(j["include"].as_array().unwrap().len());
    }
    assert_eq!(sizes, vec![256, 44]);
}

#[test]
fn user_template_renders_and_a_syntax_error_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("list.md.tera"),
        "# {{ matrix.name }}\n{% for v in variants %}- {{ v.name }} {{ v.short_hash }}\n{% endfor %}",
    )
    .unwrap();
    let o = run(
        &mut cfgmx(d, &["generate", &matrix(), "--template", "list.md.tera"]),
        true,
    );
    let text = stdout(&o);
    assert!(text.starts_with("# gcc-clang\n"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("- ")).count(), 8);

    std::fs::write(
        d.join("bad.tera"),
        "ok line\n{% for v in variants %}\n{{ v.name }\n",
    )
    .unwrap();
    let o = run(
        &mut cfgmx(d, &["generate", &matrix(), "--template", "bad.tera"]),
        false,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.tera:3:"), "{err}");
}

#[test]
fn output_dir_is_written_atomically_and_foreign_files_are_kept() {
    let site = Site::new(false);
    let d = site.path();
    // Without clang on this "machine" its 4 variants are skipped, with a note.
    let o = run(&mut site.generate_cmd(d, &matrix(), "env", "out"), true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("skipping 4 variant"), "{err}");
    assert_eq!(std::fs::read_dir(d.join("out/env")).unwrap().count(), 4);
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("wrote "))
            .count(),
        4
    );
    run(
        site.generate_cmd(d, &matrix(), "env", "out").arg("--all"),
        true,
    );
    assert_eq!(std::fs::read_dir(d.join("out/env")).unwrap().count(), 8);

    // A file cfgmx did not write is refused, then overwritten with --force.
    std::fs::write(
        d.join("out/CMakePresets.json"),
        "{\"version\": 3, \"configurePresets\": [{\"name\": \"mine\", \"binaryDir\": \"b\"}]}",
    )
    .unwrap();
    let o = run(
        &mut cfgmx(
            d,
            &["generate", &matrix(), "-f", "cmake-presets", "-o", "out"],
        ),
        false,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    // --merge keeps the user's preset beside the generated ones.
    run(
        &mut cfgmx(
            d,
            &[
                "generate",
                &matrix(),
                "-f",
                "cmake-presets",
                "-o",
                "out",
                "--merge",
            ],
        ),
        true,
    );
    let j = read_json(&d.join("out/CMakePresets.json"));
    let names: Vec<&str> = j["configurePresets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 9);
    assert_eq!(names[0], "mine");
    // What cfgmx wrote itself it may rewrite; no temporary files are left behind.
    run(
        &mut cfgmx(d, &["generate", &matrix(), "-f", "env", "-o", "out"]),
        true,
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.join("out/env"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn toolchain_and_cache_files_configure_the_project_with_the_right_blas() {
    let site = Site::with_project(true);
    let (tmp, proj) = (&site.tmp, &site.proj);
    let out = site.generate_out(&["cmake-toolchain", "cmake-cache"]);
    let claims = site.claims();
    // The threaded ones: the BLAS build must come from the cache file's library directory.
    for (name, openmp, threading) in claims.iter().filter(|c| c.2 != "sequential") {
        let b = tmp.path().join(format!("tb-{name}"));
        run(
            Command::new("cmake")
                .arg("--toolchain")
                .arg(out.join(format!("toolchain/{name}.cmake")))
                .arg("-C")
                .arg(out.join(format!("cache/{name}.cmake")))
                .args(["-G", "Ninja", "-S"])
                .arg(proj)
                .arg("-B")
                .arg(&b)
                .env_remove("CC")
                .env_remove("FC")
                .env_remove("CFLAGS")
                .env_remove("BLA_VENDOR"),
            true,
        );
        run(Command::new("cmake").arg("--build").arg(&b), true);
        let info = stdout(&run(&mut Command::new(b.join("ompblas_info")), true));
        assert_eq!(info.contains("openmp: 20"), *openmp, "{name}: {info}");
        let want = if threading == "pthread" {
            "blas-parallel: 1"
        } else {
            "blas-parallel: 2"
        };
        assert!(info.contains(want), "{name}: {info}");
    }
}

/// Field `key` of every entry in `out/github-matrix-1.json` to `-5.json` under `dir`, in order.
fn github_entries(dir: &Path, key: &str) -> Vec<String> {
    (1..=5)
        .flat_map(|n| {
            let j = read_json(&dir.join(format!("out/github-matrix-{n}.json")));
            j["include"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[key].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Modes come from the format table: Slurm's job scripts are executable (sbatch and a user
/// run them), its submit script (run with `sh`) and every other file get the umask's mode.
/// An option no file of the format reads is refused with exit 2 before anything is written.
#[test]
fn file_modes_follow_the_format_table_and_unused_options_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("m.toml"),
        "name = \"m\"\n[axes]\ncompiler = [\"gcc\"]\nbuild = [\"debug\", \"release\"]\n",
    )
    .unwrap();
    for f in ["slurm", "env"] {
        run(
            &mut cfgmx(d, &["generate", "m.toml", "-f", f, "-o", "out"]),
            true,
        );
    }
    let exec = |p: &str| {
        let m = std::fs::metadata(d.join("out").join(p)).unwrap();
        m.permissions().mode() & 0o111 != 0
    };
    assert!(exec("slurm/cfgmx-array.sbatch"));
    assert!(exec("slurm/cfgmx-merge.sbatch"));
    assert!(!exec("slurm/submit.sh"));
    assert!(!exec("env/gcc-debug.sh") && !exec("env/gcc-release.sh"));
    assert!(!exec(".cfgmx-generated"));

    let o = run(
        &mut cfgmx(
            d,
            &[
                "generate",
                "m.toml",
                "-f",
                "env",
                "-o",
                "out2",
                "--cfgmx-from",
                "tools/cfgmx",
            ],
        ),
        false,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--cfgmx-from applies to -f github-workflow, -f gitlab"),
        "{err}"
    );
    assert!(!d.join("out2").exists());
}

#[test]
fn gitlab_and_slurm_split_and_slurm_task_i_runs_variant_i() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let values: Vec<String> = (0..550).map(|i| format!("\"p{i}\"")).collect();
    let big = d.join("big.toml");
    std::fs::write(
        &big,
        format!(
            "name = \"big\"\n[axes]\ncompiler = [\"gcc\"]\nbuild = [\"debug\", \"release\"]\npart = [{}]\n",
            values.join(", ")
        ),
    )
    .unwrap();
    let big = big.to_str().unwrap();
    for f in ["gitlab", "slurm", "github"] {
        run(
            &mut cfgmx(d, &["generate", big, "-f", f, "-o", "out"]),
            true,
        );
    }
    // GitLab: 1100 variants in jobs of at most 200, every variant once, as YAML says.
    let py = r#"
import yaml
ci = yaml.safe_load(open("out/gitlab-ci.yml"))
jobs = [k for k in ci if isinstance(ci[k], dict) and "parallel" in ci[k]]
sizes = [len(ci[j]["parallel"]["matrix"][0]["CFGMX_VARIANT"]) for j in jobs]
print(len(jobs), max(sizes), sum(sizes))
"#;
    let o = python(d, py);
    assert_eq!(stdout(&o).trim(), "6 200 1100");

    // Slurm: two arrays (1000 + 100); task i of array 2 is variant 1000 + i.
    let gh = github_entries(d, "name");
    assert_eq!(gh.len(), 1100);
    let second = d.join("out/slurm/cfgmx-array-2.sbatch");
    let text = std::fs::read_to_string(&second).unwrap();
    assert!(text.contains("#SBATCH --array=0-99\n"), "{text}");
    // No variant of this matrix runs threads: one core per task (outside Slurm, -j 1 too).
    assert!(text.contains("#SBATCH --cpus-per-task=1\n"), "{text}");
    assert!(!d.join("out/slurm/cfgmx-array-3.sbatch").exists());
    // Task 7 of array 2 builds variant 1007, by spec hash, into its own result file; a
    // stand-in cfgmx records what it was asked and answers like a build.
    let spec = github_entries(d, "spec_hash");
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stand_in = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        run(Command::new("chmod").arg("+x").arg(&p), true);
    };
    stand_in("cfgmx", r#"echo "$@" >> calls.log; echo '{"variants":[]}'"#);
    // sbatch: records its arguments, answers job ids 101, 102, ... as --parsable does.
    stand_in(
        "sbatch",
        r#"echo "$@" >> sbatch.log; n=$(wc -l < sbatch.log); echo "$((100 + n));cluster""#,
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    run(
        Command::new("bash")
            .arg(&second)
            .current_dir(d)
            .env("PATH", &path)
            .env("SLURM_ARRAY_TASK_ID", "7"),
        true,
    );
    let calls = std::fs::read_to_string(d.join("calls.log")).unwrap();
    let (v, h) = (&gh[1007], &spec[1007]);
    // Results and build roots go beside the source tree (here the submit directory), never
    // into it: cfgmx-slurm/<project>/.
    let name = d.file_name().unwrap().to_str().unwrap();
    let out = d.parent().unwrap().join("cfgmx-slurm").join(name);
    let _cleanup = RemoveOnDrop(d.parent().unwrap().join("cfgmx-slurm"), name.to_string());
    assert_eq!(
        calls,
        format!(
            "build {big} --source {} --only {h} --build-root {}/build/{v} -j 1 --json\n",
            d.display(),
            out.display()
        )
    );
    assert!(out.join(format!("results/{v}.json")).is_file());
    // submit.sh: both arrays, then the merge job depending on both (afterany), each writing
    // its Slurm log there too; it says every job id.
    let o = run(
        Command::new("sh")
            .arg("out/slurm/submit.sh")
            .current_dir(d)
            .env("PATH", &path)
            .env("CFGMX_OUT", d.join("o")),
        true,
    );
    assert_eq!(
        stdout(&o),
        format!(
            "cfgmx: array 1 of 2: job 101\ncfgmx: array 2 of 2: job 102\ncfgmx: merge: job 103 (results in {0}/o/results, logs in {0}/o/logs)\n",
            d.display()
        )
    );
    let sb = std::fs::read_to_string(d.join("sbatch.log")).unwrap();
    let logs = d.join("o/logs");
    assert_eq!(
        sb,
        format!(
            "--parsable --output={0}/cfgmx-%A_%a.out out/slurm/cfgmx-array-1.sbatch\n--parsable --output={0}/cfgmx-%A_%a.out out/slurm/cfgmx-array-2.sbatch\n--parsable --dependency=afterany:101:102 --output={0}/cfgmx-merge-%j.out out/slurm/cfgmx-merge.sbatch\n",
            logs.display()
        ),
        "{sb}"
    );

    // The GitHub workflow: 5 build jobs of at most 256 covering every variant once, each
    // running `cfgmx build --only` on its spec hash, and a merge job after all of them.
    run(
        &mut cfgmx(d, &["generate", big, "-f", "github-workflow", "-o", "out"]),
        true,
    );
    let py = r#"
import json, yaml
wf = yaml.safe_load(open("out/.github/workflows/cfgmx.yml"))
jobs = wf["jobs"]
build = [k for k in jobs if k != "cfgmx-merge"]
sizes = [len(jobs[k]["strategy"]["matrix"]["include"]) for k in build]
hashes = [e["spec_hash"] for k in build for e in jobs[k]["strategy"]["matrix"]["include"]]
run = [s for s in jobs[build[0]]["steps"] if s.get("name") == "cfgmx build"][0]["run"]
merge = jobs["cfgmx-merge"]
print(json.dumps({"build": build, "max": max(sizes), "hashes": hashes, "run": run,
  "needs": merge["needs"], "if": merge["if"],
  "merge": [s["run"] for s in merge["steps"] if s.get("name") == "cfgmx report merge"]}))
"#;
    let o = python(d, py);
    let wf: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let jobs: Vec<String> = (1..=5).map(|n| format!("cfgmx-{n}")).collect();
    assert_eq!(wf["build"], serde_json::json!(jobs));
    assert_eq!(wf["max"], 256);
    assert_eq!(wf["hashes"], serde_json::json!(spec));
    assert_eq!(wf["needs"], serde_json::json!(jobs));
    // After failed builds, not after a cancelled run.
    assert_eq!(wf["if"], "${{ !cancelled() }}");
    let run_step = wf["run"].as_str().unwrap();
    assert!(
        run_step.contains(r#""$CFGMX" build "$CFGMX_MATRIX" --source . --only "$CFGMX_SPEC_HASH""#),
        "{run_step}"
    );
    assert!(wf["merge"][0]
        .as_str()
        .unwrap()
        .contains(r#""$CFGMX" report merge "$@""#));
}

/// The generated Slurm scripts with the real cfgmx: tasks 0 and 1 of a 2-variant array build
/// and test the real project, each writing its JSON result, and the merge job's script
/// combines them into one table, a JUnit file and an HTML report.
#[test]
fn slurm_tasks_build_with_real_cfgmx_and_the_merge_job_combines_them() {
    let site = Site::with_project(false);
    let (d, proj, profile) = (site.path(), &site.proj, &site.profile);
    let m = d.join("two.toml");
    std::fs::write(
        &m,
        "name = \"two\"\nlanguages = [\"c\", \"fortran\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"sequential\"]\nbuild = [\"debug\", \"release\"]\n[blas]\nprefer = [\"openblas\"]\n",
    )
    .unwrap();
    site.generate(d, "two.toml", &["slurm"], "out");
    let env = |c: &mut Command| {
        c.current_dir(d)
            .env("CFGMX_OUT", d.join("slurm-out"))
            .env("CFGMX", cfgmx_bin())
            .env("CFGMX_SOURCE", proj)
            .env("CFGMX_PROFILE", profile)
            .env("CFGMX_CACHE_DIR", d.join(".no-probe-cache"))
            .env("NO_COLOR", "1");
    };
    for task in ["0", "1"] {
        let mut c = Command::new("bash");
        c.arg("out/slurm/cfgmx-array.sbatch")
            .env("SLURM_ARRAY_TASK_ID", task);
        env(&mut c);
        run(&mut c, true);
    }
    for n in ["gcc-sequential-debug", "gcc-sequential-release"] {
        let t = std::fs::read_to_string(d.join(format!("slurm-out/results/{n}.json"))).unwrap();
        let j: serde_json::Value = serde_json::from_str(&t).unwrap();
        let vs = j["variants"].as_array().unwrap();
        assert_eq!(vs.len(), 1, "{t}");
        assert_eq!(vs[0]["name"], n, "{t}");
        assert_eq!(vs[0]["status"], "passed", "{t}");
        assert!(d.join(format!("slurm-out/build/{n}")).is_dir());
    }
    let mut c = Command::new("bash");
    c.arg("out/slurm/cfgmx-merge.sbatch");
    env(&mut c);
    let o = run(&mut c, true);
    let table = stdout(&o);
    assert!(table.contains("merging 2 of 2 result(s)"), "{table}");
    for n in ["gcc-sequential-debug", "gcc-sequential-release"] {
        assert!(
            table.lines().any(|l| l.contains(n) && l.contains("passed")),
            "{table}"
        );
    }
    let junit = std::fs::read_to_string(d.join("slurm-out/results/junit.xml")).unwrap();
    assert!(junit.contains("gcc-sequential-release"), "{junit}");
    assert!(d.join("slurm-out/results/report.html").is_file());

    // Results that always merge: a task whose cfgmx dies before writing (here: not a cfgmx at
    // all) leaves a `crashed` record saying so; a variant with no result at all is `missing`;
    // the merge lists both with the rest and exits 1.
    let mut c = Command::new("bash");
    c.arg("out/slurm/cfgmx-array.sbatch")
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_JOB_ID", "77");
    env(&mut c);
    c.env("CFGMX", "false");
    let o = run(&mut c, false);
    assert_eq!(o.status.code(), Some(1), "{}", cfgmx_tests::explain(&o));
    let crashed = d.join("slurm-out/results/gcc-sequential-debug.json");
    let t = std::fs::read_to_string(&crashed).unwrap();
    let j: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(j["variants"][0]["status"], "crashed", "{t}");
    assert_eq!(
        j["variants"][0]["reason"],
        "the task ended with exit status 1 before cfgmx wrote a result (Slurm log cfgmx-77_0.out)"
    );
    std::fs::remove_file(d.join("slurm-out/results/gcc-sequential-release.json")).unwrap();
    let mut c = Command::new("bash");
    c.arg("out/slurm/cfgmx-merge.sbatch");
    env(&mut c);
    let o = run(&mut c, false);
    assert_eq!(o.status.code(), Some(1), "{}", cfgmx_tests::explain(&o));
    let table = stdout(&o);
    assert!(table.contains("merging 1 of 2 result(s)"), "{table}");
    for (n, st) in [
        ("gcc-sequential-debug", "CRASHED"),
        ("gcc-sequential-release", "missing"),
    ] {
        assert!(
            table.lines().any(|l| l.starts_with(n) && l.contains(st)),
            "{n} {st}:\n{table}"
        );
    }
}

/// Removes `dir/name` when dropped (and `dir` when that leaves it empty): a test whose
/// scripts write beside its temp directory cleans up after itself.
struct RemoveOnDrop(PathBuf, String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.join(&self.1));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A front end that prints the arguments it was run with, one a line.
fn arg_printer(d: &Path) -> PathBuf {
    let p = d.join("print-args");
    std::fs::write(&p, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

/// Each backend's script hands pip its words as `--config-settings=` and `python -m build`
/// as `-C`: scikit-build-core's every linker-flags kind (a Python extension is a MODULE
/// library), meson-python's native file by absolute path with the variant's buildtype and
/// b_ndebug (meson-python's defaults, release and NDEBUG, would win over the native file).
#[test]
fn python_backend_settings_per_front_end() {
    let site = Site::new(true);
    let d = site.path();
    for f in ["scikit-build-core", "meson-python", "meson-native"] {
        site.generate(d, &matrix(), &[f], "out");
    }
    let printer = arg_printer(d);
    let words = |file: &str, front: &str| -> Vec<String> {
        let o = run(
            Command::new("sh")
                .arg(format!("out/python/{file}"))
                .arg(front)
                .env("PYTHON", &printer)
                .current_dir(d),
            true,
        );
        stdout(&o).lines().map(str::to_string).collect()
    };
    for (front, p) in [("pip", "--config-settings="), ("build", "-C")] {
        let w = words("scikit-build-core/gcc-threaded-release.sh", front);
        assert_eq!(w[..2], ["-m", front], "{w:?}");
        for want in [
            "cmake.build-type=Release",
            "install.strip=true",
            "cmake.define.CMAKE_C_FLAGS=-O3 -DNDEBUG -fopenmp",
        ] {
            assert!(w.contains(&format!("{p}{want}")), "{want}: {w:?}");
        }
        for kind in ["EXE", "SHARED", "MODULE"] {
            let flags = w
                .iter()
                .find_map(|x| {
                    x.strip_prefix(&format!("{p}cmake.define.CMAKE_{kind}_LINKER_FLAGS="))
                })
                .unwrap_or_else(|| panic!("no {kind} linker flags: {w:?}"));
            assert!(
                flags.contains("-Wl,-rpath,/usr/lib/") && flags.ends_with("openblas-openmp"),
                "{kind}: {flags}"
            );
        }
        let w = words("meson-python/clang-threaded-debug.sh", front);
        let native = d.join("out/meson/clang-threaded-debug.ini");
        for want in [
            format!("setup-args=--native-file={}", native.display()),
            "setup-args=-Dbuildtype=debug".into(),
            "setup-args=-Db_ndebug=false".into(),
        ] {
            assert!(w.contains(&format!("{p}{want}")), "{want}: {w:?}");
        }
    }
    // The release variant's b_ndebug is true, its buildtype release.
    let w = words("meson-python/gcc-threaded-release.sh", "pip");
    assert!(
        w.contains(&"--config-settings=setup-args=-Db_ndebug=true".to_string()),
        "{w:?}"
    );
    assert!(
        w.contains(&"--config-settings=setup-args=-Dbuildtype=release".to_string()),
        "{w:?}"
    );
    // Without the native file beside it, the meson-python script says so and stops.
    std::fs::remove_file(d.join("out/meson/gcc-threaded-release.ini")).unwrap();
    let o = run(
        Command::new("sh")
            .args(["out/python/meson-python/gcc-threaded-release.sh", "pip"])
            .env("PYTHON", &printer)
            .current_dir(d),
        false,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no Meson native file"), "{err}");
    // The pyproject form is TOML that Python reads back into the same settings.
    let o = run(
        Command::new("sh")
            .args([
                "out/python/scikit-build-core/clang-threaded-debug.sh",
                "pyproject",
            ])
            .current_dir(d),
        true,
    );
    let o = run(
        Command::new("python3")
            .args([
                "-c",
                "import sys, tomllib; t = tomllib.loads(sys.argv[1])['tool']['scikit-build']; \
                 print(t['cmake']['build-type'], t['install']['strip'], t['cmake']['define']['CMAKE_MODULE_LINKER_FLAGS'])",
            ])
            .arg(stdout(&o)),
        true,
    );
    let got = stdout(&o);
    assert!(got.starts_with("Debug False -L/usr/lib/"), "{got}");
}

#[test]
fn generate_uses_the_probes_cached_profile_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    copy_project(&proj);
    let cache = tmp.path().join("cache");
    let with_cache = |args: &[&str]| {
        let mut c = cfgmx(&proj, args);
        c.env("CFGMX_CACHE_DIR", &cache);
        c
    };
    run(&mut with_cache(&["probe"]), true);
    let o = run(
        &mut with_cache(&["generate", &matrix(), "-f", "cmake-presets", "-o", "."]),
        true,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("no probed profile"), "{err}");
    let presets = read_json(&proj.join("CMakePresets.json"));
    for p in presets["configurePresets"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        if !name.ends_with("threaded-release") {
            continue;
        }
        assert!(
            p["environment"]["CC"].as_str().unwrap().starts_with('/'),
            "{name}: a probed compiler is a path"
        );
        let lib_dir = p["cacheVariables"]["CMAKE_LIBRARY_PATH"].as_str().unwrap();
        configure_build_test(&proj, name, &[]);
        // The loader really picks the library from the directory the profile chose.
        let ldd = stdout(&run(
            Command::new("ldd").arg(proj.join("build").join(name).join("ompblas_info")),
            true,
        ));
        let line = ldd
            .lines()
            .find(|l| l.contains("libopenblas") || l.contains("libblis"))
            .unwrap_or_else(|| panic!("{name}: no BLAS in\n{ldd}"));
        assert!(line.contains(lib_dir), "{name}: {line} (wanted {lib_dir})");
    }
}

/// Generated CI files say in their header what their variants were rendered from: the probe
/// (its cache file and date), a profile file, or nothing (abstract), so two generated files
/// that differ show why.
#[test]
fn ci_headers_say_what_the_variants_were_rendered_from() {
    let dir = cfgmx_tests::tempdir();
    let d = dir.path();
    let header = |out: &str, file: &str| -> String {
        std::fs::read_to_string(d.join(out).join(file))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("# Variants: "))
            .unwrap_or_else(|| panic!("no `# Variants:` line in {out}/{file}"))
            .to_string()
    };
    // No probe yet: abstract.
    cfgmx_tests::run_in(d, &["generate", "-f", "gitlab", "-o", "a"]).expect_code(0);
    let h = header("a", "gitlab-ci.yml");
    assert!(
        h.contains("abstract, rendered without a machine profile"),
        "{h}"
    );
    // After `cfgmx probe`: the probe's cache file and the day it ran.
    cfgmx_tests::run_in(d, &["probe"]).expect_code(0);
    cfgmx_tests::run_in(d, &["generate", "-f", "slurm", "-o", "p"]).expect_code(0);
    let cache = std::fs::canonicalize(d.join(".cfgmx-cache/probe-profile.json")).unwrap();
    let today = cfgmx_tests::sh("date -u +%Y-%m-%d");
    for f in [
        "slurm/cfgmx-array.sbatch",
        "slurm/submit.sh",
        "slurm/cfgmx-merge.sbatch",
    ] {
        let h = header("p", f);
        assert!(
            h.contains(&format!("rendered from the probe of {today}"))
                && h.contains(&format!("(cache {})", cache.display())),
            "{f}: {h}"
        );
    }
    // A profile file: named.
    let prof = cfgmx_tests::run_in(d, &["probe", "--json"])
        .expect_code(0)
        .stdout();
    std::fs::write(d.join("prof.json"), prof).unwrap();
    cfgmx_tests::run_in(
        d,
        &[
            "generate",
            "-f",
            "github-workflow",
            "-o",
            "f",
            "--profile",
            "prof.json",
        ],
    )
    .expect_code(0);
    let h = header("f", ".github/workflows/cfgmx.yml");
    assert!(h.contains("rendered from the profile prof.json"), "{h}");
}
