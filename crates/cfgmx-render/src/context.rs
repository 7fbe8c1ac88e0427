//! The template context: what every template (built-in or the user's) sees. Documented for
//! users in `docs/templates.md`; keep the two in step.

use crate::quote;
use cfgmx_model::matrix::build_modes;
use cfgmx_model::resolve::{FlagSet, Resolved};
use cfgmx_model::{ConcreteVariant, Language, Matrix, Profile, Registry, Variant};
use indexmap::IndexMap;
use serde::Serialize;

/// The matrix as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixCtx {
    pub name: String,
    /// How to name the matrix on a cfgmx command line (the generated CI and Slurm scripts run
    /// `cfgmx build <arg>`): the file or embedded name `generate` was given, else `name`.
    pub arg: String,
    pub description: String,
    pub languages: Vec<&'static str>,
    pub threads: u32,
    /// The largest thread count of a `[runtime]` point (0 without one): a job that tests
    /// every point needs that many cores, whatever its variants' own threading.
    pub runtime_threads: u32,
    /// Axis name -> its values, in matrix order.
    pub axes: IndexMap<String, Vec<String>>,
}

/// The BLAS library a variant links.
#[derive(Debug, Clone, Serialize)]
pub struct BlasCtx {
    /// `openblas-openmp`.
    pub id: String,
    pub provider: String,
    pub build: String,
    /// `sequential`, `pthread`, `openmp`, `runtime`.
    pub threading: String,
    /// FindBLAS vendor (`OpenBLAS`), when CMake knows the provider.
    pub vendor: Option<String>,
    /// Directory of the library file (from the profile), when concrete.
    pub lib_dir: Option<String>,
    pub path: Option<String>,
    /// Variables that set its thread count, most specific first.
    pub thread_vars: Vec<String>,
}

/// One variant as templates see it: the concrete flag set when a profile was given, the
/// abstract one otherwise.
#[derive(Debug, Clone, Serialize)]
pub struct VariantCtx {
    pub index: u64,
    pub name: String,
    /// Spec hash (64 hex digits) and its unique short prefix.
    pub hash: String,
    pub short_hash: String,
    /// Concrete hash, when the variant was concretised and is available.
    pub concrete_hash: Option<String>,
    /// The hash to show users: concrete when there is one, else spec.
    pub id_hash: String,
    pub available: bool,
    pub reasons: Vec<String>,
    pub axes: IndexMap<String, String>,
    pub compiler: String,
    /// Family providing Fortran when not `compiler`.
    pub fortran_compiler: Option<String>,
    /// The C (else first) compiler's version from the profile, and its `major.minor`.
    pub compiler_version: Option<String>,
    pub compiler_series: String,
    /// The Lmod compiler module the variant's module sits under: `gcc/12.2.0`
    /// (`<family>/default` when abstract), each part a safe file name.
    pub compiler_module: String,
    pub build: Option<String>,
    /// CMake build type (`Debug`) or empty.
    pub build_type: String,
    /// Meson `buildtype` for the build mode (`debug`, `release`, `debugoptimized`, `minsize`,
    /// `plain` when there is no build axis).
    pub meson_buildtype: String,
    pub openmp: bool,
    pub facets: Vec<String>,
    pub blas: Option<BlasCtx>,
    pub cc: Option<String>,
    pub cxx: Option<String>,
    pub fc: Option<String>,
    pub cflags: Vec<String>,
    pub cxxflags: Vec<String>,
    pub fflags: Vec<String>,
    /// Link flags for a link whichever language drives it (`LDFLAGS`, CMake's linker flags):
    /// the model's language-independent ones, plus facet link flags every language shares
    /// that are not already compile flags (CMake and make pass those when linking).
    pub ldflags: Vec<String>,
    /// Link flags per language (`c`, `cxx`, `fortran`) for tools that do not pass compile
    /// flags to the link (Meson's `<lang>_link_args`): that language's facet link flags
    /// (its own compiler's spelling), then the language-independent ones.
    pub link: IndexMap<&'static str, Vec<String>>,
    /// Libraries as linker arguments (`-lopenblas`).
    pub libs: Vec<String>,
    /// CMake cache variables (`CMAKE_BUILD_TYPE`, `BLA_VENDOR`, `CMAKE_PREFIX_PATH`, values').
    pub cmake: IndexMap<String, String>,
    /// Meson options contributed by matrix values.
    pub meson: IndexMap<String, String>,
    /// Run-time environment: thread counts and the matrix's env.
    pub env: IndexMap<String, String>,
    /// The build environment to set or clear (`None`) explicitly, in this order: CC, CXX, FC,
    /// CFLAGS, CXXFLAGS, FFLAGS, LDFLAGS, LIBS, BLA_VENDOR, CMAKE_BUILD_TYPE. Each of these
    /// silently changes a CMake configure when inherited from the caller's shell.
    pub build_env: IndexMap<String, Option<String>>,
    pub warnings: Vec<String>,
    /// The Debian/Ubuntu packages that install the variant's compilers and BLAS build (from
    /// the data files' `[packages]`, the probed compiler version's when there is one), what
    /// a CI job installs; empty until [`Context::with_packages`].
    pub apt: Vec<String>,
    /// Environment modules to load first, in order (the probe found the variant's compilers
    /// or BLAS behind them); empty for a toolchain on `PATH`.
    pub modules: Vec<String>,
    /// The variant's MPI (`mpi` axis), concrete when a profile was given.
    pub mpi: Option<MpiCtx>,
    /// The interpreter the probe found for the variant's `python` axis value (its path), when
    /// concrete: the Python settings scripts run it unless `PYTHON` says otherwise.
    pub python: Option<String>,
}

/// A variant's MPI as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct MpiCtx {
    /// `openmpi`, `mpich`, ...
    pub implementation: String,
    /// The version found (`default` when abstract).
    pub version: String,
    /// The Lmod MPI module below the compiler: `openmpi/4.1.4`, each part a safe file name.
    pub module: String,
    pub dir_name: String,
    pub dir_version: String,
    /// The launcher's path (concrete) or its first name from the data (abstract).
    pub launcher: String,
    /// The launcher's rank option (`-n`).
    pub numproc_flag: String,
    /// Ranks a test starts (`MPIEXEC_MAX_NUMPROCS`), when concrete.
    pub ranks: Option<u32>,
    /// Wrapper per language (`c` -> `/usr/bin/mpicc.openmpi`), when concrete.
    pub wrappers: IndexMap<&'static str, String>,
}

/// Where a generated CI job gets cfgmx from (`cfgmx generate --cfgmx-from`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum CfgmxSource {
    /// `cargo install --locked cfgmx --version V` from crates.io (the default: the version
    /// that generated the files).
    Crate(String),
    /// `cargo install --locked --git URL cfgmx`.
    Git(String),
    /// `cargo install --locked --path DIR`, DIR relative to the repository.
    Path(String),
    /// A prebuilt binary downloaded from a URL.
    Url(String),
}

impl CfgmxSource {
    /// `git+URL`, an `http(s)://` URL of a binary, or a path; `None` for the default.
    pub fn parse(s: Option<&str>) -> CfgmxSource {
        match s {
            None => CfgmxSource::Crate(env!("CARGO_PKG_VERSION").into()),
            Some(s) => match s.strip_prefix("git+") {
                Some(url) => CfgmxSource::Git(url.into()),
                None if s.starts_with("https://") || s.starts_with("http://") => {
                    CfgmxSource::Url(s.into())
                }
                None => CfgmxSource::Path(s.into()),
            },
        }
    }
}

/// What CI templates need besides the variants.
#[derive(Debug, Clone, Serialize)]
pub struct CiCtx {
    /// Where jobs install cfgmx from.
    pub cfgmx_from: CfgmxSource,
    /// Whether the variants were rendered from a probe (`false`: abstract, resolved on the
    /// runner by `cfgmx build`).
    pub probed: bool,
}

/// [`Context::rendered_from`] without a profile.
pub const ABSTRACT: &str =
    "abstract, rendered without a machine profile (compiler names, not paths; spec hashes)";

/// What a render sees: the matrix, the variants to render, the profile if there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub cfgmx_version: &'static str,
    pub matrix: MatrixCtx,
    pub variants: Vec<VariantCtx>,
    /// The machine profile as `cfgmx probe --json` prints it, or null.
    pub profile: Option<Profile>,
    /// Where the variants' machine facts came from, for generated files' headers: set by the
    /// caller, which knows the file (`rendered from the probe of DATE (cache F)`, `... from the profile F`); by default
    /// only whether there was a profile.
    pub rendered_from: String,
    pub ci: CiCtx,
}

impl Context {
    /// A context for `variants` (each with its concretisation when a profile exists).
    /// `short_len` is the unique short-hash length of the whole variant set.
    pub fn new<'a>(
        matrix: &Matrix,
        variants: impl IntoIterator<Item = (&'a Variant, Option<&'a ConcreteVariant>)>,
        short_len: usize,
        profile: Option<&Profile>,
    ) -> Context {
        let m = MatrixCtx {
            name: matrix.name.clone(),
            arg: matrix.name.clone(),
            description: matrix.description.clone(),
            languages: matrix.languages.iter().map(|l| l.as_str()).collect(),
            threads: matrix.threads,
            runtime_threads: matrix.runtime.max_threads(),
            axes: matrix
                .axes
                .iter()
                .map(|a| {
                    (
                        a.name.to_string(),
                        a.values.iter().map(|v| v.to_string()).collect(),
                    )
                })
                .collect(),
        };
        Context {
            cfgmx_version: env!("CARGO_PKG_VERSION"),
            matrix: m,
            variants: variants
                .into_iter()
                .map(|(v, c)| variant_ctx(v, c, short_len, &matrix.languages))
                .collect(),
            ci: CiCtx {
                cfgmx_from: CfgmxSource::parse(None),
                probed: profile.is_some(),
            },
            profile: profile.cloned(),
            rendered_from: if profile.is_some() {
                "rendered from a machine profile".to_string()
            } else {
                ABSTRACT.to_string()
            },
        }
    }

    /// Fills each variant's `apt` from the registry's `[packages]`: its compiler's (and its
    /// Fortran compiler's when another family), its MPI's, then its BLAS build's, each named
    /// once; and an abstract MPI's launcher name from the MPI's data.
    pub fn with_packages(mut self, reg: &Registry) -> Context {
        for v in &mut self.variants {
            let version = v.compiler_version.as_deref();
            let mut apt: Vec<String> = Vec::new();
            let families =
                std::iter::once(v.compiler.as_str()).chain(v.fortran_compiler.as_deref());
            for f in families {
                if let Some(t) = reg.toolchains.get(f) {
                    // The Fortran family's version is not probed separately here: its plain
                    // packages unless it is the compiler itself.
                    let ver = if f == v.compiler { version } else { None };
                    apt.extend(t.packages.apt_for(ver));
                }
            }
            if let Some(m) = v.mpi.as_ref().and_then(|m| reg.mpi.get(&m.implementation)) {
                apt.extend(m.packages.apt_for(None));
            }
            if let Some(b) = &v.blas {
                let build = reg
                    .providers
                    .get(&b.provider)
                    .and_then(|p| p.builds.iter().find(|x| x.name == b.build));
                if let Some(build) = build {
                    apt.extend(build.packages.apt_for(None));
                }
            }
            if let Some(m) = v.mpi.as_mut().filter(|m| m.launcher.is_empty()) {
                if let Some(data) = reg.mpi.get(&m.implementation) {
                    m.launcher = data.launchers.first().cloned().unwrap_or_default();
                    m.numproc_flag = data.launch.flag.clone();
                }
            }
            let mut seen = std::collections::HashSet::new();
            apt.retain(|p| seen.insert(p.clone()));
            v.apt = apt;
        }
        self
    }
}

fn variant_ctx(
    v: &Variant,
    c: Option<&ConcreteVariant>,
    short_len: usize,
    langs: &[Language],
) -> VariantCtx {
    let r = &v.resolved;
    let f = c.map_or(&r.flags, |c| &c.concrete_flags);
    let short = |h: &str| h[..short_len.min(h.len())].to_string();
    let concrete_hash = c.and_then(|c| c.concrete_hash.clone());
    let compiler_version = c.and_then(|c| {
        c.compilers
            .get(&Language::C)
            .or_else(|| c.compilers.values().next())
            .map(|x| x.version.clone())
    });
    let compiler_series = compiler_version
        .as_deref()
        .map(|ver| ver.split('.').take(2).collect::<Vec<_>>().join("."))
        .unwrap_or_else(|| "default".into());
    let compiler_module = format!(
        "{}/{}",
        crate::module_dir(&r.compiler.family),
        crate::module_dir(compiler_version.as_deref().unwrap_or("default"))
    );
    let build_type = f.cmake.get("CMAKE_BUILD_TYPE").cloned().unwrap_or_default();
    // Meson's name for a build mode; `plain` (no flags of Meson's own) without one
    let meson_buildtype = r
        .build
        .as_deref()
        .and_then(|b| build_modes().iter().find(|m| m.name == b))
        .map_or("plain", |m| m.meson.as_str())
        .to_string();
    let blas = blas_ctx(r, c, f);
    let libs = f.lib_args();
    let ldflags = f.shared_link_args(langs);
    let link: IndexMap<&'static str, Vec<String>> = Language::ALL
        .iter()
        .map(|l| (l.as_str(), f.link_args(*l)))
        .collect();
    let build_env = build_env(f, &ldflags, &libs, &build_type);
    let mpi = mpi_ctx(r, c);
    let mut warnings = r.warnings.clone();
    if let Some(c) = c {
        warnings.extend(c.concrete_warnings.iter().cloned());
    }
    VariantCtx {
        index: v.index,
        name: v.name.clone(),
        short_hash: short(&v.hash),
        hash: v.hash.clone(),
        id_hash: concrete_hash.as_deref().map_or(short(&v.hash), short),
        concrete_hash,
        available: c.is_none_or(|c| c.available),
        reasons: c.map(|c| c.reasons.clone()).unwrap_or_default(),
        axes: v
            .axes
            .iter()
            .map(|(k, x)| (k.to_string(), x.to_string()))
            .collect(),
        compiler: r.compiler.family.clone(),
        fortran_compiler: r.fortran_family.clone(),
        compiler_version,
        compiler_series,
        compiler_module,
        build: r.build.clone(),
        build_type,
        meson_buildtype,
        openmp: r.openmp.is_some(),
        facets: r.facets.clone(),
        blas,
        cc: f.cc.clone(),
        cxx: f.cxx.clone(),
        fc: f.fc.clone(),
        cflags: f.cflags.clone(),
        cxxflags: f.cxxflags.clone(),
        fflags: f.fflags.clone(),
        ldflags,
        link,
        libs,
        cmake: f.cmake.clone(),
        meson: f.meson.clone(),
        env: f.env.clone(),
        build_env,
        warnings,
        apt: Vec::new(),
        modules: c.map(|c| c.modules.clone()).unwrap_or_default(),
        mpi,
        python: c.and_then(|c| c.python.as_ref().map(|p| p.path.clone())),
    }
}

/// The BLAS a variant links: the probe's record where there is one, else the resolved choice.
fn blas_ctx(r: &Resolved, c: Option<&ConcreteVariant>, f: &FlagSet) -> Option<BlasCtx> {
    r.blas.as_ref().map(|b| {
        let rec = c.and_then(|c| c.blas_library.as_ref());
        BlasCtx {
            id: rec.map_or(b.id.clone(), |x| x.id()),
            provider: rec.map_or(b.provider.clone(), |x| x.provider.clone()),
            build: rec.map_or(b.build.name.clone(), |x| x.build.clone()),
            threading: rec
                .map_or(b.build.threading, |x| x.threading)
                .as_str()
                .to_string(),
            vendor: f.cmake.get("BLA_VENDOR").cloned(),
            lib_dir: rec.map(|x| x.lib_dir.clone()),
            path: rec.map(|x| x.path.clone()),
            thread_vars: b.build.thread_vars.clone(),
        }
    })
}

/// The MPI a variant is built with, and the module names of its Lmod level.
fn mpi_ctx(r: &Resolved, c: Option<&ConcreteVariant>) -> Option<MpiCtx> {
    r.mpi.as_ref().map(|spec| {
        let cm = c.and_then(|c| c.mpi.as_ref());
        let version = cm.map_or_else(|| "default".to_string(), |m| m.version.clone());
        let (dir_name, dir_version) = (
            crate::module_dir(&spec.implementation),
            crate::module_dir(&version),
        );
        MpiCtx {
            implementation: spec.implementation.clone(),
            module: format!("{dir_name}/{dir_version}"),
            dir_name,
            dir_version,
            version,
            launcher: cm.map(|m| m.launcher.clone()).unwrap_or_default(),
            numproc_flag: cm.map_or_else(|| "-n".to_string(), |m| m.numproc_flag.clone()),
            ranks: cm.map(|m| m.ranks),
            wrappers: cm
                .map(|m| {
                    m.wrappers
                        .iter()
                        .map(|(l, w)| (l.as_str(), w.path.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    })
}

/// The variables a make or configure-script build reads, each flag list shell-quoted.
fn build_env(
    f: &FlagSet,
    ldflags: &[String],
    libs: &[String],
    build_type: &str,
) -> IndexMap<String, Option<String>> {
    let join = |w: &[String]| quote::shjoin(w).unwrap_or_else(|_| w.join(" "));
    let mut env: IndexMap<String, Option<String>> = IndexMap::new();
    env.insert("CC".into(), f.cc.clone());
    env.insert("CXX".into(), f.cxx.clone());
    env.insert("FC".into(), f.fc.clone());
    env.insert("CFLAGS".into(), Some(join(&f.cflags)));
    env.insert("CXXFLAGS".into(), Some(join(&f.cxxflags)));
    env.insert("FFLAGS".into(), Some(join(&f.fflags)));
    env.insert("LDFLAGS".into(), Some(join(ldflags)));
    env.insert("LIBS".into(), Some(join(libs)));
    env.insert("BLA_VENDOR".into(), f.cmake.get("BLA_VENDOR").cloned());
    env.insert(
        "CMAKE_BUILD_TYPE".into(),
        Some(build_type.to_string()).filter(|s| !s.is_empty()),
    );
    env
}
