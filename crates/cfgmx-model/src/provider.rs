//! BLAS providers as declarative data (`providers/<name>.toml`).
//!
//! A provider (OpenBLAS, BLIS, MKL, ...) has one or more *builds*, each with a threading mode,
//! a link line, the environment variables that set its thread count (in precedence order) and
//! the ones it ignores. A concrete BLAS value in a matrix is `<provider>-<build>`
//! (`openblas-openmp`, `mkl-sequential`).

use crate::diag::{Diagnostic, Diagnostics, Source};
use serde::{Deserialize, Serialize};
use std::fmt;
use toml::Spanned;

/// How a BLAS build runs its kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Threading {
    Sequential,
    Pthread,
    Openmp,
    /// Chosen at run time (MKL's `mkl_rt`, FlexiBLAS).
    Runtime,
}

impl Threading {
    pub fn as_str(self) -> &'static str {
        match self {
            Threading::Sequential => "sequential",
            Threading::Pthread => "pthread",
            Threading::Openmp => "openmp",
            Threading::Runtime => "runtime",
        }
    }
    pub fn is_threaded(self) -> bool {
        !matches!(self, Threading::Sequential)
    }
}

impl fmt::Display for Threading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    /// CMake FindBLAS `BLA_VENDOR` for all builds (a build may override it).
    #[serde(default)]
    cmake_vendor: Option<String>,
    /// pkg-config / Meson dependency name.
    #[serde(default)]
    pkgconfig: Option<String>,
    #[serde(default)]
    detect: Detect,
    builds: Vec<RawBuild>,
    #[serde(default)]
    notes: Vec<String>,
}

/// How the probe recognises this provider's library files and asks them their threading.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    /// Library base names (`openblas` -> `libopenblas.so*`).
    #[serde(default)]
    pub libraries: Vec<String>,
    /// A C function `int f(void)` whose result tells the threading mode.
    #[serde(default)]
    pub query: Option<String>,
    /// Result of `query` -> threading (`"0" = "sequential"`).
    #[serde(default)]
    pub query_values: indexmap::IndexMap<String, Threading>,
    /// Functions returning non-zero when a threading model is compiled in (BLIS
    /// `bli_info_get_enable_openmp`), tried in order when there is no `query`.
    #[serde(default)]
    pub flags: indexmap::IndexMap<String, Threading>,
    /// A function returning a version or configuration string.
    #[serde(default)]
    pub config: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    name: Spanned<String>,
    threading: Threading,
    #[serde(default)]
    cmake_vendor: Option<String>,
    /// Libraries to link, in order (`-l` names).
    libs: Vec<String>,
    #[serde(default)]
    link: Vec<String>,
    /// The OpenMP runtime this build was compiled against (`gomp`, `iomp5`, `omp`).
    #[serde(default)]
    openmp_runtime: Option<String>,
    /// Variables that set its thread count, highest precedence first.
    #[serde(default)]
    thread_vars: Vec<String>,
    /// Variables users expect to work but this build ignores.
    #[serde(default)]
    ignored_vars: Vec<String>,
    /// Thread count when no variable is set: `"ncpu"` or a number.
    #[serde(default)]
    default_threads: Option<String>,
    /// Directory names this build installs its libraries in (Debian: `openblas-openmp`).
    #[serde(default)]
    lib_dirs: Vec<String>,
    #[serde(default)]
    notes: Vec<String>,
}

/// A parsed BLAS provider.
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    pub name: String,
    pub description: String,
    pub pkgconfig: Option<String>,
    pub detect: Detect,
    pub builds: Vec<Build>,
    pub notes: Vec<String>,
    #[serde(skip)]
    pub origin: String,
}

/// One build of a provider; what a concrete BLAS value names.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Build {
    pub name: String,
    pub threading: Threading,
    pub cmake_vendor: Option<String>,
    pub libs: Vec<String>,
    pub link: Vec<String>,
    pub openmp_runtime: Option<String>,
    pub thread_vars: Vec<String>,
    pub ignored_vars: Vec<String>,
    pub default_threads: Option<String>,
    pub lib_dirs: Vec<String>,
    pub notes: Vec<String>,
}

impl Provider {
    pub fn parse(src: &Source) -> Result<Provider, Diagnostics> {
        let raw: RawProvider = crate::diag::parse_toml(src)?;
        let mut errs = Vec::new();
        let name = raw.name.get_ref().clone();
        if !crate::toolchain::valid_ident(&name) {
            errs.push(
                Diagnostic::at(
                    src,
                    raw.name.span(),
                    format!("invalid provider name `{name}`"),
                )
                .expected("lowercase letters, digits and `-`, starting with a letter"),
            );
        }
        if raw.builds.is_empty() {
            errs.push(
                Diagnostic::file(&src.name, "provider lists no `[[builds]]`")
                    .expected("at least one build"),
            );
        }
        let mut builds: Vec<Build> = Vec::new();
        for b in raw.builds {
            let bname = b.name.get_ref().clone();
            if builds.iter().any(|x| x.name == bname) {
                errs.push(Diagnostic::at(
                    src,
                    b.name.span(),
                    format!("duplicate build `{bname}`"),
                ));
                continue;
            }
            // The build name becomes part of a BLAS id (`openblas-openmp`), a matrix value and
            // a variant name, so it is held to the same spelling as a provider name.
            let mut chars = bname.chars();
            if !(matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            {
                errs.push(
                    Diagnostic::at(src, b.name.span(), format!("invalid build name {bname:?}"))
                        .expected("lowercase letters, digits and `_`, starting with a letter"),
                );
            }
            for var in b.thread_vars.iter().chain(&b.ignored_vars) {
                if !crate::matrix::valid_env_name(var) {
                    errs.push(
                        Diagnostic::at(
                            src,
                            b.name.span(),
                            format!("build `{bname}`: invalid environment variable name {var:?}"),
                        )
                        .expected("letters, digits and `_`, not starting with a digit"),
                    );
                }
            }
            if b.threading == Threading::Openmp && b.openmp_runtime.is_none() {
                errs.push(
                    Diagnostic::at(
                        src,
                        b.name.span(),
                        format!("build `{bname}` is OpenMP-threaded but names no `openmp_runtime`"),
                    )
                    .expected("openmp_runtime = \"gomp\" (or omp, iomp5, ...)"),
                );
            }
            builds.push(Build {
                name: bname,
                threading: b.threading,
                cmake_vendor: b.cmake_vendor.or_else(|| raw.cmake_vendor.clone()),
                libs: b.libs,
                link: b.link,
                openmp_runtime: b.openmp_runtime,
                thread_vars: b.thread_vars,
                ignored_vars: b.ignored_vars,
                default_threads: b.default_threads,
                lib_dirs: b.lib_dirs,
                notes: b.notes,
            });
        }
        if !errs.is_empty() {
            return Err(Diagnostics {
                diagnostics: errs,
                sources: vec![src.clone()],
            });
        }
        Ok(Provider {
            name,
            description: raw.description,
            pkgconfig: raw.pkgconfig,
            detect: raw.detect,
            builds,
            notes: raw.notes,
            origin: src.name.clone(),
        })
    }

    pub fn build(&self, name: &str) -> Option<&Build> {
        self.builds.iter().find(|b| b.name == name)
    }
}

/// A provider build chosen for a variant: `openblas-openmp`.
///
/// Serialises compactly (id, provider, build name, threading, runtime, thread variables):
/// variant records repeat it millions of times; the whole build record is in `cfgmx providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlasChoice {
    /// `<provider>-<build>`.
    pub id: String,
    pub provider: String,
    pub build: Build,
    pub pkgconfig: Option<String>,
}

impl Serialize for BlasChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let b = &self.build;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("provider", &self.provider)?;
        m.serialize_entry("build", &b.name)?;
        m.serialize_entry("threading", &b.threading)?;
        if let Some(rt) = &b.openmp_runtime {
            m.serialize_entry("openmp_runtime", rt)?;
        }
        m.serialize_entry("thread_vars", &b.thread_vars)?;
        if !b.ignored_vars.is_empty() {
            m.serialize_entry("ignored_vars", &b.ignored_vars)?;
        }
        if let Some(v) = &b.cmake_vendor {
            m.serialize_entry("cmake_vendor", v)?;
        }
        if let Some(p) = &self.pkgconfig {
            m.serialize_entry("pkgconfig", p)?;
        }
        m.end()
    }
}
