//! The machine profile: what `cfgmx probe` found. The probe crate fills it; this crate only
//! defines it (it is the JSON interface scripts read) and concretises variants against it.

pub use crate::provider::IntWidth;
use crate::provider::Threading;
use crate::toolchain::Language;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub const PROFILE_SCHEMA: u32 = 1;

/// Everything the probe established about one machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub schema: u32,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// At most this many MPI ranks per test (a Slurm allocation's tasks: `build --mpi-ranks`);
    /// never probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ranks: Option<u32>,
    pub compilers: Vec<CompilerRecord>,
    #[serde(default)]
    pub mpi: Vec<MpiRecord>,
    #[serde(default)]
    pub blas: Vec<BlasRecord>,
    /// Path the system `libblas.so.3` resolves to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_blas: Option<String>,
    /// BLAS library files that crashed, hung or failed when asked (the rest were asked on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blas_failures: Vec<BlasFailure>,
    /// Findings that concern the machine as a whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What environment modules provide (`cfgmx probe --modules`): each set of modules, loaded
    /// in order, and the compilers, MPI wrappers and BLAS files it puts in reach. The records
    /// themselves are in `compilers`, `mpi` and `blas`, found under the paths listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleSet>,
}

/// One record a module set provides: its path and what tells it from another record of the
/// same path (a compiler's family and version; an MPI wrapper's compiler family and version; a
/// BLAS file's provider and build).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Provided {
    pub path: String,
    pub family: String,
    pub version: String,
}

impl Provided {
    pub fn compiler(c: &CompilerRecord) -> Provided {
        Provided {
            path: c.path.clone(),
            family: c.family.clone(),
            version: c.version.clone(),
        }
    }
    pub fn mpi(m: &MpiRecord) -> Provided {
        Provided {
            path: m.path.clone(),
            family: m.compiler_family.clone().unwrap_or_default(),
            version: m.compiler_version.clone().unwrap_or_default(),
        }
    }
    pub fn blas(b: &BlasRecord) -> Provided {
        Provided {
            path: b.path.clone(),
            family: b.provider.clone(),
            version: b.build.clone(),
        }
    }
}

/// Modules to load, in order, and what loading them sets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModuleSet {
    /// `module load` arguments in order (`gcc/12`, `mpich/4.1`): parents first.
    pub load: Vec<String>,
    /// The variables loading them sets or changes (not the module system's own bookkeeping),
    /// with their values after the load.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// The compiler, MPI wrapper and BLAS records this set provides. A path alone is not
    /// enough: Cray's `cc` is one file that runs cce under `PrgEnv-cray` and gcc under
    /// `PrgEnv-gnu`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compilers: Vec<Provided>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpi: Vec<Provided>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blas: Vec<Provided>,
}

/// Outcome of running something during the probe.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    #[default]
    Ok,
    TimedOut,
    Crashed,
    NotExecutable,
    Unrecognised,
    Failed,
    /// A wrapper whose own compiler is not installed (`mpif90` over a missing `gfortran`).
    CompilerMissing,
}

/// One compiler executable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompilerRecord {
    /// As found (may be a symlink or a wrapper).
    pub path: String,
    /// The descriptor's name.
    pub family: String,
    pub version: String,
    pub languages: Vec<Language>,
    /// Facet name -> what the probe found.
    #[serde(default)]
    pub facets: IndexMap<String, FacetResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_path: Option<String>,
    /// A wrapper it goes through (`mpich`, `ccache`, `craype`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<String>,
    #[serde(default)]
    pub status: ProbeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a facet works with a compiler, and with which flag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FacetResult {
    /// The flags that worked (or the last tried), joined by spaces. Always present in the
    /// JSON (null when there is none): scripts rely on `flag`, `works` and `reason`.
    #[serde(default)]
    pub flag: Option<String>,
    pub works: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// The split flags, link flags and libraries of the working candidate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
    /// `_OPENMP` value for the OpenMP facet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An MPI compiler wrapper and what it wraps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MpiRecord {
    pub path: String,
    /// `mpich`, `openmpi`, `intel-mpi`, ...
    pub implementation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub language: Language,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler_version: Option<String>,
    /// The variable that replaces its compiler (`OMPI_FC`), from the implementation's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler_env: Option<String>,
    /// The launcher that goes with it (`mpirun.openmpi` beside `mpicc.openmpi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<String>,
    /// The file the wrapper's path resolves to, when it is a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_path: Option<String>,
    /// `ok`, or why it cannot be used (`compiler_missing`, `timed_out`, ...) with `error`.
    #[serde(default)]
    pub status: ProbeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One BLAS library file and its real threading.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlasRecord {
    pub path: String,
    pub provider: String,
    /// The provider build it is (`openmp`), from asking the library.
    pub build: String,
    pub threading: Threading,
    /// Directory to put first on the library search path to link this build.
    pub lib_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default)]
    pub is_default: bool,
    /// The integer width of the BLAS interface, from calling the library.
    #[serde(default)]
    pub int_width: IntWidth,
    /// Decoration of every BLAS symbol: `dgemm_` is exported as
    /// `<symbol_prefix>dgemm_<symbol_suffix>` (scipy-openblas64: `scipy_`, `64_`).
    #[serde(default)]
    pub symbol_prefix: String,
    #[serde(default)]
    pub symbol_suffix: String,
    /// The build's libraries in link order, as found here, spelled as in
    /// [`crate::FlagSet::libs`]: a link name (`openblas`, linked as `-lopenblas`) where the
    /// development file exists, the full path of a file that exists only versioned
    /// (`.../libmkl_core.so.3`, which `-l` cannot name). See [`BlasRecord::link`].
    #[serde(default)]
    pub libs: Vec<String>,
}

/// What linking a BLAS record takes: flags before the objects, libraries after them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlasLink {
    /// The library path and rpath of the build's directory (`Driver::library_dir`), first, so `-lblas` is this
    /// build's and not the system default, and found at run time without `LD_LIBRARY_PATH`.
    pub ldflags: Vec<String>,
    /// [`BlasRecord::libs`], in link order.
    pub libs: Vec<String>,
}

impl BlasRecord {
    /// The name under which the library exports the Fortran-interface BLAS routine `routine`
    /// (`<symbol_prefix><routine>_<symbol_suffix>`, as the probe asked the library).
    pub fn symbol(&self, routine: &str) -> String {
        format!("{}{routine}_{}", self.symbol_prefix, self.symbol_suffix)
    }

    /// The concrete BLAS value this record is (`openblas-openmp`): see [`crate::provider::blas_id`].
    pub fn id(&self) -> String {
        crate::provider::blas_id(&self.provider, &self.build)
    }

    /// The one link line of this record: what concretisation puts on a variant's link line
    /// (and what a link test must prove).
    /// `driver` spells the directory flags (the compiler family's).
    pub fn link(&self, driver: &crate::Driver) -> BlasLink {
        BlasLink {
            ldflags: driver.library_dir(&self.lib_dir),
            libs: self.libs.clone(),
        }
    }

    /// Whether a program calling plain `dgemm_` with 32-bit integers can use it.
    pub fn plain_lp64(&self) -> bool {
        self.plain(IntWidth::Lp64)
    }

    /// Whether a program calling plain `dgemm_` with integers of `width` can use it.
    pub fn plain(&self, width: IntWidth) -> bool {
        self.int_width == width && self.symbol_prefix.is_empty() && self.symbol_suffix.is_empty()
    }
}

/// A BLAS library file that could not be asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlasFailure {
    pub path: String,
    /// Providers its name matches.
    pub providers: Vec<String>,
    pub status: ProbeStatus,
    pub error: String,
}

impl Profile {
    /// The module set that provides this compiler record (`None`: it is on `PATH`).
    pub fn modules_for_compiler(&self, c: &CompilerRecord) -> Option<&ModuleSet> {
        let p = Provided::compiler(c);
        self.modules.iter().find(|m| m.compilers.contains(&p))
    }

    /// The module set that provides this MPI wrapper record.
    pub fn modules_for_mpi(&self, r: &MpiRecord) -> Option<&ModuleSet> {
        let p = Provided::mpi(r);
        self.modules.iter().find(|m| m.mpi.contains(&p))
    }

    /// The module set that provides this BLAS record.
    pub fn modules_for_blas(&self, b: &BlasRecord) -> Option<&ModuleSet> {
        let p = Provided::blas(b);
        self.modules.iter().find(|m| m.blas.contains(&p))
    }

    pub fn empty(cpus: usize) -> Profile {
        Profile {
            schema: PROFILE_SCHEMA,
            cpus,
            ..Default::default()
        }
    }
}
