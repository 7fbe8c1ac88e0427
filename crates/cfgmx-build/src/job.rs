//! What one variant's build needs, as plain data: the entry of `cfgmx.lock` and the input of
//! the runner. Built from a [`ConcreteVariant`]; read back from the lock file on another
//! machine, so `show`/`env`/`reproduce HASH` mean the same thing there.

use cfgmx_model::{ConcreteVariant, IntWidth, Language, Registry, TestSettings, Threading};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const LOCK_SCHEMA: u32 = 1;
pub const LOCK_FILE: &str = "cfgmx.lock";

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
    /// `ilp64` for a variant built for 64-bit BLAS integers (none: LP64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int_width: Option<String>,
    /// Build-system files rendered by cfgmx-render for this variant, by format name
    /// (`cmake-toolchain`, `cmake-cache`, `meson-native`): the runner writes them as they are,
    /// and the lock carries them so another machine configures the same way.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub files: IndexMap<String, String>,
    /// Which tests the test step runs and how (the matrix's `[test]` and values' `test`);
    /// the driver spellings are `runner::test_selection`'s.
    #[serde(default, skip_serializing_if = "TestSettings::is_empty")]
    pub test: TestSettings,
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
            .and_then(|b| reg.blas(&format!("{}-{}", b.provider, b.build)))
            .or_else(|| r.blas.clone());
        let mut thread_vars = vec!["OMP_NUM_THREADS".to_string()];
        let mut threaded = r.openmp.is_some();
        if let Some(b) = &blas_choice {
            threaded |= b.build.threading != Threading::Sequential;
            for t in &b.build.thread_vars {
                if !thread_vars.contains(t) {
                    thread_vars.push(t.clone());
                }
            }
        }
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
            int_width: (r.int_width == IntWidth::Ilp64).then(|| "ilp64".to_string()),
            files: IndexMap::new(),
            test: r.test.clone(),
        })
    }

    pub fn short(&self) -> &str {
        &self.hash[..self.hash.len().min(12)]
    }
}

/// `cfgmx.lock`: the concrete variants keyed by hash.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LockFile {
    pub schema: u32,
    pub matrix: String,
    pub variants: BTreeMap<String, Job>,
}

impl LockFile {
    pub fn new(matrix: &str, jobs: &[Job]) -> LockFile {
        LockFile {
            schema: LOCK_SCHEMA,
            matrix: matrix.to_string(),
            variants: jobs.iter().map(|j| (j.hash.clone(), j.clone())).collect(),
        }
    }

    pub fn read(path: &Path) -> Result<LockFile, String> {
        let text = cfgmx_fs::read_to_string(path, cfgmx_fs::MAX_OWN_BYTES)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let lf: LockFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a cfgmx lock file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if lf.schema != LOCK_SCHEMA {
            return Err(format!(
                "{}: lock schema {} is not the {LOCK_SCHEMA} this cfgmx reads",
                path.display(),
                lf.schema
            ));
        }
        Ok(lf)
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        crate::store::write_atomic(path, text.as_bytes())
    }

    /// Adds `jobs` to the lock file at `path` (a file of another matrix, or no valid file, is
    /// started afresh). Entries are keyed by hash, and the read-merge-write holds an exclusive
    /// lock on the file's directory, so concurrent builds (a Slurm array's tasks, all in the
    /// submit directory) each add their variants and none is lost.
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
        let mut lf = match LockFile::read(path) {
            Ok(lf) if lf.matrix == matrix => lf,
            _ => LockFile::new(matrix, &[]),
        };
        for j in jobs {
            lf.variants.insert(j.hash.clone(), j.clone());
        }
        lf.write(path)
    }

    /// A job by name or hash prefix (at least 4 hex digits); `Err` says why not.
    pub fn find(&self, key: &str) -> Result<&Job, String> {
        let jobs: Vec<&Job> = self.variants.values().collect();
        match cfgmx_model::lookup(&jobs, key, |j| &j.name, |j| vec![&j.hash, &j.spec_hash]) {
            cfgmx_model::Lookup::Found(j) => Ok(j),
            cfgmx_model::Lookup::NotFound => Err(format!("no variant `{key}` in the lock file")),
            cfgmx_model::Lookup::Ambiguous(v) => Err(format!(
                "`{key}` matches {} variants in the lock file: {}",
                v.len(),
                v.iter()
                    .map(|j| j.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}
