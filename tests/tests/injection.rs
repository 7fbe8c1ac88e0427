//! Injection corpus: hostile matrix values and descriptor flags through every generated format,
//! each read back by the real tool that consumes it (dash/bash, cmake -P and configure,
//! cmake --preset, meson setup/introspect, Lmod, python3's json and yaml, a Slurm script run
//! with stand-in commands). Every value must read back exactly, or be refused with a clear
//! message (exit 2, nothing written) where the table below says the format cannot represent
//! it; no `PWNED` file may ever appear. Variant names used as directories must stay inside
//! the output and build roots.
//!
//! Cost: about 13 values x 11 formats; the CMake configures, Meson setups and Lmod loads
//! dominate (roughly a minute in a debug build on 2 cores), plus one small `cfgmx build`.

use cfgmx_tests::{bin, files_under, repo, tempdir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The hostile values: (id, value). Each carries a payload that creates `PWNED` if any tool
/// ever runs it as code.
fn values() -> Vec<(&'static str, String)> {
    vec![
        ("single-quote", "it's a ' quote".into()),
        ("double-quote", r#"say "hi" \" there"#.into()),
        ("backslash", r"back\slash\ \n \\".into()),
        ("dollar-paren", "$(touch PWNED)".into()),
        ("backticks", "`touch PWNED`".into()),
        ("semicolon", "x; touch PWNED".into()),
        ("and-and", "x && touch PWNED".into()),
        ("newline", "line1\ntouch PWNED\n".into()),
        (
            "lua-long-bracket",
            r#"]=] os.execute("touch PWNED") --[=[ ]==] ]]"#.into(),
        ),
        (
            "triple-quote",
            r#"''' + __import__("os").system("touch PWNED") + '''"#.into(),
        ),
        ("nul", "a\0b".into()),
        (
            "long-100k",
            format!("{}$(touch PWNED){}", "x".repeat(50_000), "y".repeat(50_000)),
        ),
        ("non-ascii", "é日本🎉 \u{202e}ß ${HOME} %s @DIRNAME@".into()),
    ]
}

const FORMATS: &[&str] = &[
    "cmake-presets",
    "cmake-toolchain",
    "cmake-cache",
    "meson-native",
    "bento",
    "scikit-build-core",
    "env",
    "lmod",
    "github",
    "gitlab",
    "slurm",
];

/// Where a format cannot represent a value, the message cfgmx must refuse it with.
fn refusal(value: &str, text: &str, format: &str) -> Option<&'static str> {
    match (value, format) {
        // Refused when the matrix is read, whatever the format.
        ("nul", _) => Some("a NUL character in a value"),
        // The env script's CFLAGS are read by make, which expands every `$`.
        (_, "env") if text.contains('$') => Some("make expands `$` in an environment variable"),
        ("single-quote" | "triple-quote", "meson-native") => {
            Some("Meson machine files cannot represent a single quote")
        }
        ("newline", "meson-native") => Some("Meson machine files cannot represent a line break"),
        ("newline", "lmod") => Some("Lmod passes a line break"),
        _ => None,
    }
}

const LMOD_INIT: &str = "/usr/share/lmod/lmod/init/bash";

/// A TOML basic string: serde_json's escapes are a subset of TOML's, and it leaves
/// non-ASCII text as is.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

struct Case {
    dir: PathBuf,
    value: String,
}

impl Case {
    fn new(root: &Path, id: &str, value: &str) -> Case {
        let dir = root.join(id);
        std::fs::create_dir_all(dir.join("tc")).unwrap();
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let v = toml_str(value);
        // A descriptor flag: gcc as shipped plus an `always` flag carrying the value.
        let gcc = std::fs::read_to_string(repo().join("toolchains/gcc.toml")).unwrap();
        std::fs::write(
            dir.join("tc/gcc.toml"),
            format!("{gcc}\n[[facets.always]]\nflags = [{v}]\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("m.toml"),
            format!(
                "name = \"inj\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nflavor = [{v}]\n\
                 [values.flavor.{v}]\nenv = {{ HOSTILE = {v} }}\ncmake = {{ HOSTILE = {v} }}\n\
                 meson = {{ HOSTILE = {v} }}\n"
            ),
        )
        .unwrap();
        Case {
            dir,
            value: value.to_string(),
        }
    }

    /// A child in the case's directory with its own HOME (a payload would land in one of them).
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir)
            .env("HOME", self.dir.join("home"))
            .env("NO_COLOR", "1")
            .env("CFGMX_CACHE_DIR", self.dir.join(".cfgmx-cache"))
            .env_remove("MODULEPATH")
            .env_remove("LOADEDMODULES")
            .env_remove("_LMFILES_");
        c
    }

    fn cfgmx(&self, args: &[&str]) -> Output {
        self.cmd(bin())
            .args(["--toolchains", "tc"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a reader; Err with the whole story unless it succeeds.
    fn read(&self, c: &mut Command) -> Result<Vec<u8>, String> {
        let o = c.output().map_err(|e| format!("{c:?}: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "{c:?} failed ({}):\n{}\n{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(o.stdout)
    }

    fn only_file(&self, dir: &str) -> PathBuf {
        let d = self.dir.join(dir);
        let mut files = files_under(&d);
        assert_eq!(files.len(), 1, "{}: {files:?}", d.display());
        d.join(files.remove(0))
    }

    /// The variant's name, as cfgmx reports it.
    fn name(&self) -> String {
        let o = self.cfgmx(&["expand", "m.toml", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["name"].as_str().unwrap().to_string()
    }

    /// The variant's full spec hash.
    fn hash(&self) -> String {
        let o = self.cfgmx(&["expand", "m.toml", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["hash"].as_str().unwrap().to_string()
    }

    /// The words a shell makes of a flags string (how make and ninja hand it to a compiler).
    fn shell_words(&self, flags: &str) -> Result<Vec<String>, String> {
        let out = self.read(self.cmd("sh").args([
            "-c",
            "eval \"set -- $1\"; printf '%s\\0' \"$@\"",
            "sh",
            flags,
        ]))?;
        Ok(split0(&out))
    }

    fn expect_word(&self, what: &str, words: &[String]) -> Result<(), String> {
        if words.contains(&self.value) {
            Ok(())
        } else {
            Err(format!(
                "{what}: the value is not one of the words {words:?}"
            ))
        }
    }

    fn expect_eq(&self, what: &str, got: &str) -> Result<(), String> {
        if got == self.value {
            Ok(())
        } else {
            Err(format!("{what}: read back {got:?}"))
        }
    }
}

fn split0(b: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(b);
    let mut v: Vec<String> = s.split('\0').map(str::to_string).collect();
    if v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}

/// Reads the generated output of `format` back with its real consumer.
fn read_back(c: &Case, format: &str) -> Result<(), String> {
    let out = c.dir.join(format!("out-{format}"));
    match format {
        "env" => {
            let file = c.only_file(&format!("out-{format}/env"));
            for shell in ["sh", "dash", "bash"] {
                let o = c.read(c.cmd(shell).args([
                    "-c",
                    ". \"$1\" && printf '%s\\0%s' \"$HOSTILE\" \"$CFLAGS\"",
                    "sh",
                    file.to_str().unwrap(),
                ]))?;
                let parts = split0(&o);
                c.expect_eq(&format!("{shell}: $HOSTILE"), &parts[0])?;
                c.expect_word(
                    &format!("{shell}: $CFLAGS"),
                    &c.shell_words(parts.get(1).map_or("", |s| s.as_str()))?,
                )?;
            }
            Ok(())
        }
        "scikit-build-core" => {
            let file = c.only_file(&format!("out-{format}/python/scikit-build-core"));
            // The front end the script runs: one that prints its arguments.
            let printer = c.dir.join("print-args");
            std::fs::write(&printer, "#!/bin/sh\nprintf '%s\\0' \"$@\"\n").unwrap();
            std::fs::set_permissions(
                &printer,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            for (front, prefix) in [("pip", "--config-settings="), ("build", "-C")] {
                let o = c.read(c.cmd("sh").arg(&file).arg(front).env("PYTHON", &printer))?;
                let words = split0(&o);
                let want = format!("{prefix}cmake.define.HOSTILE={}", c.value);
                if !words.contains(&want) {
                    return Err(format!("{front} words lack {want:?}: {words:?}"));
                }
                let cflags = words
                    .iter()
                    .find_map(|w| {
                        w.strip_prefix(prefix)?
                            .strip_prefix("cmake.define.CMAKE_C_FLAGS=")
                    })
                    .ok_or("no CMAKE_C_FLAGS word")?;
                c.expect_word(&format!("{front} CMAKE_C_FLAGS"), &c.shell_words(cflags)?)?;
            }
            // The pyproject form, read by Python's own TOML parser.
            let toml = c.read(c.cmd("sh").arg(&file).arg("pyproject"))?;
            let toml_file = c.dir.join("settings.toml");
            std::fs::write(&toml_file, toml).unwrap();
            let o = c.read(
                c.cmd("python3")
                    .args([
                        "-c",
                        "import sys, tomllib; d = tomllib.load(open(sys.argv[1], 'rb')); \
                         sys.stdout.write(d['tool']['scikit-build']['cmake']['define']['HOSTILE'])",
                    ])
                    .arg(&toml_file),
            )?;
            c.expect_eq("pyproject HOSTILE", &String::from_utf8_lossy(&o))
        }
        "cmake-toolchain" => {
            let file = c.only_file(&format!("out-{format}/toolchain"));
            let script = c.dir.join("read-toolchain.cmake");
            std::fs::write(
                &script,
                format!(
                    "include([==[{}]==])\nfile(WRITE [==[{}]==] \"${{CMAKE_C_FLAGS_INIT}}\")\n",
                    file.display(),
                    c.dir.join("tc.out").display()
                ),
            )
            .unwrap();
            c.read(c.cmd("cmake").arg("-P").arg(&script))?;
            let flags = std::fs::read_to_string(c.dir.join("tc.out")).unwrap();
            c.expect_word("CMAKE_C_FLAGS_INIT", &c.shell_words(&flags)?)
        }
        "cmake-cache" | "cmake-presets" => {
            let proj = c.dir.join(format!("proj-{format}"));
            std::fs::create_dir_all(&proj).unwrap();
            std::fs::write(
                proj.join("CMakeLists.txt"),
                "cmake_minimum_required(VERSION 3.18)\nproject(readback NONE)\nfile(WRITE \"${CMAKE_BINARY_DIR}/hostile.out\" \"${HOSTILE}\")\n",
            )
            .unwrap();
            let b = if format == "cmake-cache" {
                let cache = c.only_file(&format!("out-{format}/cache"));
                let b = c.dir.join("b-cache");
                c.read(
                    c.cmd("cmake")
                        .arg("-C")
                        .arg(&cache)
                        .arg("-S")
                        .arg(&proj)
                        .arg("-B")
                        .arg(&b),
                )?;
                b
            } else {
                std::fs::copy(
                    out.join("CMakePresets.json"),
                    proj.join("CMakePresets.json"),
                )
                .unwrap();
                let name = c.name();
                c.read(c.cmd("cmake").args(["--preset", &name]).current_dir(&proj))?;
                proj.join("build").join(&name)
            };
            let got = std::fs::read_to_string(b.join("hostile.out")).map_err(|e| e.to_string())?;
            c.expect_eq(&format!("{format}: HOSTILE"), &got)
        }
        "meson-native" => {
            let native = c.only_file(&format!("out-{format}/meson"));
            // A project without languages: the hostile compiler flag would (rightly) fail
            // Meson's compiler sanity check, which is not what is tested here.
            let proj = c.dir.join("mproj");
            std::fs::create_dir_all(&proj).unwrap();
            std::fs::write(proj.join("meson.build"), "project('readback')\n").unwrap();
            std::fs::write(
                proj.join("meson_options.txt"),
                "option('HOSTILE', type: 'string', value: '')\n",
            )
            .unwrap();
            let b = c.dir.join("mb");
            c.read(
                c.cmd("meson")
                    .args(["setup", "--native-file"])
                    .arg(&native)
                    .arg(&b)
                    .current_dir(&proj),
            )?;
            let o = c.read(
                c.cmd("meson")
                    .args(["introspect", "--buildoptions"])
                    .arg(&b),
            )?;
            let opts: serde_json::Value = serde_json::from_slice(&o).map_err(|e| e.to_string())?;
            let got = opts
                .as_array()
                .and_then(|a| a.iter().find(|o| o["name"] == "HOSTILE"))
                .and_then(|o| o["value"].as_str())
                .unwrap_or_default()
                .to_string();
            c.expect_eq("meson HOSTILE", &got)?;
            // c_args as Meson's own machine-file parser reads them (the system python has
            // mesonbuild).
            let py = "import sys\nfrom mesonbuild.coredata import MachineFileParser\nfor a in MachineFileParser([sys.argv[1]]).sections['built-in options']['c_args']: sys.stdout.write(a + '\\0')";
            let o = c.read(c.cmd("/usr/bin/python3").args(["-c", py]).arg(&native))?;
            c.expect_word("meson c_args", &split0(&o))
        }
        "lmod" => {
            let module = c.only_file(&format!("out-{format}/modules/Compiler/gcc/default/inj"));
            let mname = module.file_stem().unwrap().to_string_lossy().into_owned();
            let script = format!(
                ". {LMOD_INIT}\nmodule use \"$PWD/out-lmod/modules/Core\"\nmodule load gcc/default inj/{mname} || exit 3\nprintf %s \"$HOSTILE\"\n"
            );
            let o = c.read(c.cmd("bash").args(["--noprofile", "--norc", "-c", &script]))?;
            c.expect_eq("Lmod $HOSTILE", &String::from_utf8_lossy(&o))
        }
        "github" | "gitlab" | "bento" => {
            let (file, py) = match format {
                "github" => (
                    out.join("github-matrix.json"),
                    "import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))['include'][0]['flavor'])",
                ),
                "gitlab" => (
                    out.join("gitlab-ci.yml"),
                    "import yaml,sys\nd = yaml.safe_load(open(sys.argv[1]))\njob = [v for k, v in d.items() if isinstance(v, dict) and 'parallel' in v][0]\nsys.stdout.write(job['parallel']['matrix'][0]['CFGMX_VARIANT'][0])",
                ),
                _ => (
                    c.only_file(&format!("out-{format}/bento")),
                    "import sys\nfor l in open(sys.argv[1], encoding='utf-8'):\n    if l.startswith('Name: '): sys.stdout.write(l[6:].rstrip('\\n'))",
                ),
            };
            let o = c.read(c.cmd("python3").args(["-c", py]).arg(&file))?;
            let got = String::from_utf8_lossy(&o).into_owned();
            let want = match format {
                "github" => c.value.clone(),
                "gitlab" => c.name(),
                _ => format!("inj-{}", c.name()),
            };
            if got == want {
                Ok(())
            } else {
                Err(format!("{format}: read back {got:?}, want {want:?}"))
            }
        }
        "slurm" => {
            let dir = c.dir.join(format!("out-{format}/slurm"));
            for f in files_under(&dir) {
                c.read(c.cmd("bash").arg("-n").arg(dir.join(f)))?;
            }
            // Task 0 of the array, with a stand-in cfgmx that records its arguments.
            let stub = c.dir.join("cfgmx-stub");
            std::fs::write(
                &stub,
                "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$STUB_LOG\"\necho '{}'\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
            let log = c.dir.join("stub.log");
            c.read(
                c.cmd("bash")
                    .arg(dir.join("cfgmx-array.sbatch"))
                    .env("CFGMX", &stub)
                    .env("CFGMX_OUT", &c.dir)
                    .env("STUB_LOG", &log)
                    .env("SLURM_ARRAY_TASK_ID", "0")
                    .env("SLURM_CPUS_PER_TASK", "1"),
            )?;
            let args = split0(&std::fs::read(&log).unwrap());
            let after = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .unwrap_or_default()
            };
            let (name, hash) = (c.name(), c.hash());
            let want = [
                ("--only", hash),
                ("--build-root", format!("{}/build/{name}", c.dir.display())),
            ];
            for (flag, v) in want {
                if after(flag) != v {
                    return Err(format!(
                        "slurm task ran cfgmx {args:?}; {flag} should be {v:?}"
                    ));
                }
            }
            if !c.dir.join(format!("results/{name}.json")).is_file() {
                return Err(format!("slurm task left no results/{name}.json"));
            }
            Ok(())
        }
        other => panic!("no reader for {other}"),
    }
}

fn pwned_anywhere(dirs: &[&Path]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in dirs {
        for f in files_under(d) {
            if f.file_name().is_some_and(|n| n == "PWNED") {
                found.push(d.join(f));
            }
        }
    }
    found
}

#[test]
fn hostile_values_read_back_exactly_or_are_refused_in_every_format() {
    let tmp = tempdir();
    // Two threads (the CI machine's two cores): the readers mostly wait on cmake and meson.
    let all = values();
    let (a, b) = all.split_at(all.len() / 2);
    let results: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = [a, b]
            .into_iter()
            .map(|part| s.spawn(|| grid(tmp.path(), part)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let tried: usize = results.iter().map(|t| t.tried).sum();
    let round_trips: usize = results.iter().map(|t| t.round_trips).sum();
    let refused: usize = results.iter().map(|t| t.refused).sum();
    let failures: Vec<String> = results.into_iter().flat_map(|t| t.failures).collect();
    eprintln!(
        "injection corpus: {tried} value x format combinations: {round_trips} read back exactly, {refused} refused"
    );
    assert!(tried >= 143, "{tried}");
    assert!(
        failures.is_empty(),
        "{} of {tried} combinations failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[derive(Default)]
struct Tally {
    tried: usize,
    round_trips: usize,
    refused: usize,
    failures: Vec<String>,
}

fn grid(root: &Path, values: &[(&'static str, String)]) -> Tally {
    let mut t = Tally::default();
    for (id, value) in values {
        let id = *id;
        let c = Case::new(root, id, value);
        for format in FORMATS {
            t.tried += 1;
            let out = format!("out-{format}");
            let o = c.cfgmx(&["generate", "m.toml", "-f", format, "-o", &out]);
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            let res = match (refusal(id, value, format), o.status.code()) {
                (Some(msg), Some(2)) if err.contains(msg) && !c.dir.join(&out).exists() => {
                    t.refused += 1;
                    Ok(())
                }
                (Some(msg), code) => Err(format!(
                    "expected a refusal ({msg:?}, exit 2, nothing written); got exit {code:?}:\n{err}"
                )),
                (None, Some(0)) => read_back(&c, format).map(|()| t.round_trips += 1),
                (None, code) => Err(format!("generate failed with {code:?}:\n{err}")),
            };
            if let Err(e) = res {
                t.failures.push(format!("{id} x {format}: {e}"));
            }
            // The case dir holds every child's cwd and HOME; the repository and the test's
            // own cwd are checked at the top only (a payload runs in its cwd; walking a
            // target/ tree 143 times would cost minutes).
            let mut pwned = pwned_anywhere(&[&c.dir]);
            for d in [repo(), std::env::current_dir().unwrap()] {
                if d.join("PWNED").exists() {
                    pwned.push(d.join("PWNED"));
                }
            }
            if !pwned.is_empty() {
                t.failures
                    .push(format!("{id} x {format}: a value ran as code: {pwned:?}"));
            }
        }
    }
    t
}

/// Values that would walk out of a directory, name a device or read as an option, as the
/// first axis so they start the variant name.
const ESCAPES: &str = r#"name = "esc"
languages = ["c"]
[axes]
flavor = ["../x", "/etc", "..", ".", "CON", "-rf", "a/../../b", "nul.txt"]
compiler = ["gcc"]
build = ["debug"]
"#;

#[test]
fn variant_names_never_escape_the_output_or_build_root() {
    let tmp = tempdir();
    let work = tmp.path().join("work");
    let src = work.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(work.join("m.toml"), ESCAPES).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(p C)\nenable_testing()\nadd_executable(t main.c)\nadd_test(NAME t COMMAND t)\n",
    )
    .unwrap();
    std::fs::write(src.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .current_dir(&work)
            .env("CFGMX_CACHE_DIR", work.join("probe-cache"))
            .output()
            .unwrap()
    };
    let o = run(&["expand", "m.toml", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<String> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 8);
    for n in &names {
        let base = n.split('.').next().unwrap().to_ascii_uppercase();
        assert!(
            !n.contains('/')
                && n != "."
                && n != ".."
                && !n.starts_with('-')
                && !["CON", "PRN", "AUX", "NUL"].contains(&base.as_str()),
            "unsafe variant name {n:?}"
        );
    }

    // Per-variant files land exactly at OUT/<subdir>/<name>.<ext>.
    for (format, subdir, ext) in [
        ("env", "env", "sh"),
        ("cmake-toolchain", "toolchain", "cmake"),
        ("meson-native", "meson", "ini"),
        ("lmod", "modules/Compiler/gcc/default/esc", "lua"),
    ] {
        let o = run(&["generate", "m.toml", "-f", format, "-o", "out"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut want: Vec<PathBuf> = names
            .iter()
            .map(|n| Path::new(subdir).join(format!("{n}.{ext}")))
            .collect();
        want.sort();
        let got: Vec<PathBuf> = files_under(&work.join("out"))
            .into_iter()
            .filter(|p| p.starts_with(subdir))
            .collect();
        assert_eq!(got, want, "{format}");
    }

    // A build writes only under its build root (plus the lock file and the probe cache).
    let o = run(&[
        "build",
        "m.toml",
        "--source",
        "src",
        "--build-root",
        "root",
        "-j",
        "2",
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let root = work.join("root").canonicalize().unwrap();
    for f in files_under(&work) {
        let top = f.components().next().unwrap().as_os_str().to_string_lossy();
        assert!(
            ["m.toml", "src", "out", "root", "probe-cache", "cfgmx.lock"].contains(&top.as_ref()),
            "build wrote {} outside its root",
            f.display()
        );
        if top == "root" {
            let real = work.join(&f).canonicalize().unwrap();
            assert!(
                real.starts_with(&root),
                "{} escapes the root",
                real.display()
            );
        }
    }
    // Nothing beside the working directory ("../x" would be there).
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("work")]);

    // Two values with one slug ("" and ".") are refused, not merged or overwritten.
    std::fs::write(
        work.join("e.toml"),
        "name = \"e\"\n[axes]\nflavor = [\"\", \".\"]\ncompiler = [\"gcc\"]\n",
    )
    .unwrap();
    let o = run(&["generate", "e.toml", "-f", "env", "-o", "out-e"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("two variants are both named `_-gcc`"));
    assert!(!work.join("out-e").exists());
}
