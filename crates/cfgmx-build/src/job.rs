//! What one variant's build needs, as plain data: the entry of `cfgmx.lock` and the input of
//! the runner. Built from a [`ConcreteVariant`]; read back from the lock file on another
//! machine, so `show`/`env`/`reproduce HASH` mean the same thing there.

use cfgmx_model::hash::short_hash;
use cfgmx_model::{ConcreteVariant, IntWidth, Language, Registry, TestSettings, Threading};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const LOCK_SCHEMA: u32 = 2;
/// The lock file's name; defined by the store, which must skip it when fingerprinting a
/// source tree, so that the store needs nothing from this module.
pub use crate::store::LOCK_FILE;

/// One concrete variant, self-contained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub name: String,
    /// Concrete hash (full).
    pub hash: String,
    pub spec_hash: String,
    pub axes: IndexMap<String, String>,
    /// Grid labels: the values of the compiler, blas and build axes.
    pub compiler: String,
    pub blas: String,
    pub build: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cxx: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fc: Option<String>,
    /// Compiler family and version per language (`c` -> `gcc 12.2.0`).
    #[serde(default)]
    pub compiler_versions: IndexMap<String, String>,
    #[serde(default)]
    pub cflags: Vec<String>,
    #[serde(default)]
    pub cxxflags: Vec<String>,
    #[serde(default)]
    pub fflags: Vec<String>,
    /// Link flags whichever language links (`LDFLAGS`): see `FlagSet::shared_link_args`.
    #[serde(default)]
    pub ldflags: Vec<String>,
    /// Link flags per language (`c`, `cxx`, `fortran`) when that language's compiler links:
    /// its own facet link flags, then the shared ones.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub link: IndexMap<String, Vec<String>>,
    /// Libraries as linker arguments (`-lopenblas`).
    #[serde(default)]
    pub libs: Vec<String>,
    #[serde(default)]
    pub cmake: IndexMap<String, String>,
    #[serde(default)]
    pub meson: IndexMap<String, String>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Environment modules to load first (`module load` in scripts), and what they set (every
    /// step of `cfgmx build` runs with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub module_env: IndexMap<String, String>,
    /// The variant runs threads in its tests (OpenMP or a threaded BLAS), so its test step gets
    /// the cores it holds as thread count rather than parallel tests.
    #[serde(default)]
    pub threaded: bool,
    /// Variables that set the thread count (OMP_NUM_THREADS and the BLAS build's own).
    #[serde(default)]
    pub thread_vars: Vec<String>,
    /// The thread count a threaded variant's tests run with (the matrix's `threads`).
    #[serde(default = "default_threads")]
    pub threads: u32,
    /// The BLAS library file the variant links: the probe's record, asked for its threading
    /// and integer width. After the build, every built file that loads a library of its
    /// provider must load exactly this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_library: Option<String>,
    /// The library names any build of that provider has (`openblas`, `openblas64`, ...): how
    /// the check after the build tells the BLAS among what a file loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blas_names: Vec<String>,
    /// The threading its BLAS build promises (`sequential`, `pthread`, `openmp`): a Python
    /// project's tests get it as `CFGMX_BLAS_THREADING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_threading: Option<String>,
    /// The probe's threading query of the BLAS provider (the `providers/*.toml` `[detect]`
    /// `query`): each decorated spelling of the function, and what its answers mean. A
    /// Python project's installed extensions are checked by asking the BLAS they load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_query: Option<BlasQuery>,
    /// `ilp64` for a variant built for 64-bit BLAS integers (none: LP64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int_width: Option<String>,
    /// Build-system files rendered by cfgmx-render for this variant, by format name
    /// (`cmake-toolchain`, `cmake-cache`, `meson-native`): the runner writes them as they are,
    /// and the lock carries them so another machine configures the same way.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub files: IndexMap<String, String>,
    /// An MPI variant's ranks per test (`MPIEXEC_MAX_NUMPROCS`): the test step counts a test
    /// as this many ranks (or its ctest PROCESSORS, when more) times its threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi_ranks: Option<u32>,
    /// An MPI variant's launcher and the plain names its implementation installs it under
    /// (`mpiexec`, `mpirun`): a project's test that runs a bare `mpiexec` must launch with the
    /// variant's MPI, not whichever one the distribution's alternatives put on PATH (an MPICH
    /// program under Open MPI's launcher runs as separate one-rank jobs, and may still pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi_launcher: Option<MpiLauncher>,
    /// Which tests the test step runs and how (the matrix's `[test]` and values' `test`);
    /// the driver spellings are `runner::test_selection`'s.
    #[serde(default, skip_serializing_if = "TestSettings::is_empty")]
    pub test: TestSettings,
    /// The runtime points its tests run at (the matrix's `[runtime]`): built once, tested
    /// once per point. Empty: one test run, as the variant's own settings say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime: Vec<cfgmx_model::Point>,
    /// The interpreter the probe found for the variant's `python` axis value: a Python
    /// project's environment is made from it and its wheel must carry its tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<cfgmx_model::PythonRecord>,
}

/// See [`Job::mpi_launcher`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MpiLauncher {
    /// The launcher the probe found beside the variant's wrappers (`/usr/bin/mpiexec.mpich`).
    pub path: String,
    /// The plain names it answers to (from the implementation's `launchers`).
    pub names: Vec<String>,
}

/// A BLAS provider's threading query: `int f(void)` under each symbol decoration, and the
/// threading each answer means.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlasQuery {
    pub symbols: Vec<String>,
    pub values: IndexMap<String, String>,
}

impl MpiLauncher {
    /// The launcher of the variant's MPI `m`, and the plain names (no `.mpich` suffix) its
    /// implementation installs launchers under.
    fn of(m: &cfgmx_model::ConcreteMpi, reg: &Registry) -> MpiLauncher {
        MpiLauncher {
            path: m.launcher.clone(),
            names: reg
                .mpi
                .get(&m.implementation)
                .map(|imp| {
                    imp.launchers
                        .iter()
                        .filter(|n| !n.contains('.'))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl BlasQuery {
    /// Provider `p`'s query, if it has one.
    fn of(p: &cfgmx_model::Provider) -> Option<BlasQuery> {
        let q = p.detect.query.as_ref()?;
        Some(BlasQuery {
            symbols: p
                .detect
                .decorations()
                .iter()
                .map(|d| format!("{}{q}{}", d.prefix, d.suffix))
                .collect(),
            values: p
                .detect
                .query_values
                .iter()
                .map(|(k, t)| (k.clone(), t.as_str().to_string()))
                .collect(),
        })
    }
}

/// Whether a variant runs threads (its own OpenMP, or a threaded BLAS build), and the
/// variables that set their count: OMP_NUM_THREADS and the BLAS build's own.
fn threading(openmp: bool, blas: Option<&cfgmx_model::BlasChoice>) -> (bool, Vec<String>) {
    let mut thread_vars = vec![cfgmx_model::OMP_NUM_THREADS.to_string()];
    let mut threaded = openmp;
    if let Some(b) = blas {
        threaded |= b.build.threading != Threading::Sequential;
        for t in &b.build.thread_vars {
            if !thread_vars.contains(t) {
                thread_vars.push(t.clone());
            }
        }
    }
    (threaded, thread_vars)
}

/// The matrix's default `threads`, for a lock entry written before the field existed.
fn default_threads() -> u32 {
    2
}

impl Job {
    /// The available variant `cv` as a job; `None` when it cannot be built here.
    pub fn from_concrete(cv: &ConcreteVariant, reg: &Registry) -> Option<Job> {
        let hash = cv.concrete_hash.clone()?;
        let v = &cv.variant;
        let r = &v.resolved;
        let f = &cv.concrete_flags;
        let langs: Vec<Language> = cv.compilers.keys().copied().collect();
        let axis = |k: &str| v.axes.get(k).map(|s| s.to_string()).unwrap_or_default();
        let blas_choice = cv
            .blas_library
            .as_ref()
            .and_then(|b| reg.blas(&b.id()))
            .or_else(|| r.blas.clone());
        let (threaded, thread_vars) = threading(r.openmp.is_some(), blas_choice.as_ref());
        Some(Job {
            name: v.name.clone(),
            hash,
            spec_hash: v.hash.clone(),
            axes: v
                .axes
                .iter()
                .map(|(k, x)| (k.to_string(), x.to_string()))
                .collect(),
            compiler: axis("compiler"),
            blas: axis("blas"),
            build: axis("build"),
            cc: f.cc.clone(),
            cxx: f.cxx.clone(),
            fc: f.fc.clone(),
            compiler_versions: cv
                .compilers
                .iter()
                .map(|(l, c)| {
                    (
                        l.as_str().to_string(),
                        format!("{} {}", c.family, c.version),
                    )
                })
                .collect(),
            cflags: f.cflags.clone(),
            cxxflags: f.cxxflags.clone(),
            fflags: f.fflags.clone(),
            ldflags: f.shared_link_args(&langs),
            link: langs
                .iter()
                .map(|l| (l.as_str().to_string(), f.link_args(*l)))
                .collect(),
            libs: f.lib_args(),
            cmake: f.cmake.clone(),
            meson: f.meson.clone(),
            env: f.env.clone(),
            modules: cv.modules.clone(),
            module_env: cv.module_env.clone(),
            threaded,
            thread_vars,
            threads: default_threads(),
            blas_library: cv.blas_library.as_ref().map(|b| b.path.clone()),
            blas_names: cv
                .blas_library
                .as_ref()
                .and_then(|b| reg.providers.get(&b.provider))
                .map(|p| p.detect.libraries.clone())
                .unwrap_or_default(),
            blas_threading: blas_choice
                .as_ref()
                .map(|b| b.build.threading.as_str().to_string()),
            blas_query: cv
                .blas_library
                .as_ref()
                .and_then(|b| reg.providers.get(&b.provider))
                .and_then(|p| BlasQuery::of(p)),
            int_width: (r.int_width == IntWidth::Ilp64).then(|| "ilp64".to_string()),
            files: IndexMap::new(),
            mpi_ranks: cv.mpi.as_ref().map(|m| m.ranks),
            mpi_launcher: cv.mpi.as_ref().map(|m| MpiLauncher::of(m, reg)),
            test: r.test.clone(),
            runtime: Vec::new(),
            python: cv.python.clone(),
        })
    }

    pub fn short(&self) -> &str {
        short_hash(&self.hash)
    }

    /// The variables a test run sets over the variant's environment: `threads` in every
    /// thread variable (OMP_NUM_THREADS and the BLAS build's own), then a runtime point's own
    /// variables. The runner and `cfgmx reproduce` both take it from here.
    pub fn test_env(
        &self,
        threads: usize,
        point: Option<&cfgmx_model::Point>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .thread_vars
            .iter()
            .map(|v| (v.clone(), threads.to_string()))
            .collect();
        if !self
            .thread_vars
            .iter()
            .any(|v| v == cfgmx_model::OMP_NUM_THREADS)
        {
            env.push((cfgmx_model::OMP_NUM_THREADS.into(), threads.to_string()));
        }
        for (k, v) in point.into_iter().flat_map(cfgmx_model::Point::env) {
            env.push((k.to_string(), v.to_string()));
        }
        env
    }
}

/// `cfgmx.lock`: the concrete variants of every matrix built or locked in its directory, keyed
/// by matrix name and then by concrete hash. Building a second matrix adds to the file rather
/// than replacing it, so a hash from the first keeps resolving.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LockFile {
    pub schema: u32,
    pub matrices: BTreeMap<String, LockedMatrix>,
}

/// One matrix's entries in the lock file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LockedMatrix {
    pub variants: BTreeMap<String, Job>,
}

/// Schema 1 held one matrix: the one built last. Read so that an old lock keeps answering
/// `show`/`env`/`reproduce`; the next write turns it into schema 2.
#[derive(Deserialize)]
struct LockV1 {
    matrix: String,
    variants: BTreeMap<String, Job>,
}

/// Just the schema number, read first so an old or newer file gets a message of its own
/// rather than a serde error about a missing field.
#[derive(Deserialize)]
struct SchemaOnly {
    schema: u32,
}

impl LockFile {
    pub fn new(matrix: &str, jobs: &[Job]) -> LockFile {
        let mut lf = LockFile {
            schema: LOCK_SCHEMA,
            matrices: BTreeMap::new(),
        };
        lf.add(matrix, jobs);
        lf
    }

    /// Adds (or replaces, by hash) `jobs` under `matrix`; the other matrices' entries stay.
    pub fn add(&mut self, matrix: &str, jobs: &[Job]) {
        let m = self.matrices.entry(matrix.to_string()).or_default();
        for j in jobs {
            m.variants.insert(j.hash.clone(), j.clone());
        }
    }

    pub fn read(path: &Path) -> Result<LockFile, String> {
        let text = cfgmx_fs::read_to_string(path, cfgmx_fs::MAX_OWN_BYTES)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let located = |e: serde_json::Error| {
            format!(
                "{}:{}:{}: not a cfgmx lock file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        };
        let schema = serde_json::from_str::<SchemaOnly>(&text)
            .map_err(located)?
            .schema;
        match schema {
            1 => {
                let v1: LockV1 = serde_json::from_str(&text).map_err(located)?;
                let mut lf = LockFile::new(&v1.matrix, &[]);
                if let Some(m) = lf.matrices.get_mut(&v1.matrix) {
                    m.variants = v1.variants;
                }
                Ok(lf)
            }
            LOCK_SCHEMA => serde_json::from_str(&text).map_err(located),
            n => Err(format!(
                "{}: lock schema {n} is newer than the {LOCK_SCHEMA} this cfgmx reads (written by a newer cfgmx; rebuild or `cfgmx expand --lock` to write one this version reads)",
                path.display()
            )),
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        cfgmx_fs::write_atomic(path, text.as_bytes())
    }

    /// Adds `jobs` of `matrix` to the lock file at `path` (no valid file there is started
    /// afresh; other matrices' entries are kept). Entries are keyed by matrix and hash, and
    /// the read-merge-write holds an exclusive lock on the file's directory, so concurrent
    /// builds (a Slurm array's tasks, all in the submit directory) each add their variants
    /// and none is lost.
    pub fn update(path: &Path, matrix: &str, jobs: &[Job]) -> std::io::Result<()> {
        use fs4::fs_std::FileExt;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // The directory, not the file: the file is replaced by a rename on every write, and a
        // lock on a replaced file guards nothing. The lock goes with the handle.
        let guard = std::fs::File::open(dir)?;
        guard.lock_exclusive()?;
        let mut lf = LockFile::read(path).unwrap_or_default();
        lf.schema = LOCK_SCHEMA;
        lf.add(matrix, jobs);
        lf.write(path)
    }

    /// Every entry, with the matrix it belongs to.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Job)> {
        self.matrices
            .iter()
            .flat_map(|(m, lm)| lm.variants.values().map(move |j| (m.as_str(), j)))
    }

    /// What the file holds, for a message: `hpc16 (4 variants), solver (2 variants)`.
    pub fn summary(&self) -> String {
        if self.matrices.is_empty() {
            return "no variant".to_string();
        }
        self.matrices
            .iter()
            .map(|(m, lm)| format!("{m} ({} variant(s))", lm.variants.len()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A job, with its matrix, by name or hash prefix (concrete or spec; at least
    /// [`cfgmx_model::MIN_HASH_PREFIX`] hex digits); `Err` says why not, naming what the file
    /// holds.
    pub fn find(&self, key: &str) -> Result<(&str, &Job), String> {
        let entries: Vec<(&str, &Job)> = self.entries().collect();
        // A name may be in several matrices (`gcc-threaded-release` of two matrices): each
        // is a match, and the hash tells them apart.
        let by_name: Vec<&(&str, &Job)> = entries.iter().filter(|(_, j)| j.name == key).collect();
        if by_name.len() == 1 {
            return Ok(*by_name[0]);
        }
        let hits: Vec<&(&str, &Job)> = if by_name.len() > 1 {
            by_name
        } else {
            match cfgmx_model::lookup(&entries, key, |_| "", |(_, j)| vec![&j.hash, &j.spec_hash]) {
                cfgmx_model::Lookup::Found(e) => return Ok(*e),
                cfgmx_model::Lookup::NotFound => {
                    return Err(format!(
                        "no variant `{key}` in the lock file, which holds {}",
                        self.summary()
                    ))
                }
                cfgmx_model::Lookup::Ambiguous(v) => v,
            }
        };
        Err(format!(
            "`{key}` matches {} variants in the lock file: {}; give more hash digits",
            hits.len(),
            hits.iter()
                .map(|(m, j)| format!("{} {} of {m}", short_hash(&j.hash), j.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}
