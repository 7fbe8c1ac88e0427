//! BLAS providers as declarative data (`providers/<name>.toml`).
//!
//! A provider (OpenBLAS, BLIS, MKL, ...) has one or more *builds*, each with a threading mode,
//! a link line, the environment variables that set its thread count (in precedence order) and
//! the ones it ignores. A concrete BLAS value in a matrix is `<provider>-<build>`
//! (`openblas-openmp`, `mkl-sequential`).

use crate::diag::{Checks, Diagnostic, Diagnostics, Source};
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
    cmake_vendor: Option<Spanned<String>>,
    /// pkg-config / Meson dependency name.
    #[serde(default)]
    pkgconfig: Option<Spanned<String>>,
    #[serde(default)]
    detect: Option<Spanned<Detect>>,
    /// Where it stands in the default order an abstract `blas` value (`sequential`,
    /// `threaded`) picks providers in: lower first; a provider without one is picked only
    /// when a matrix's `[blas] prefer` names it.
    #[serde(default)]
    preference: Option<u32>,
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
    /// A BLAS routine every build exports, undecorated (`dgemm_`): a file without it (under
    /// any of `decorations`) is not this provider's BLAS.
    #[serde(default)]
    pub symbol: Option<String>,
    /// A Fortran `INTEGER FUNCTION f(N, X, INCX)` (`idamax_`) the probe calls with an `N` that
    /// reads 2 as a 32-bit integer and negative as a 64-bit one: its answer is the integer
    /// width (LP64 or ILP64) the library really uses.
    #[serde(default)]
    pub int_probe: Option<String>,
    /// Symbol decorations a build may carry, tried in order (scipy-openblas64: prefix
    /// `scipy_`, suffix `64_`, so `dgemm_` is `scipy_dgemm_64_` and `openblas_get_config` is
    /// `scipy_openblas_get_config64_`). None listed means undecorated only.
    #[serde(default)]
    pub decorations: Vec<Decoration>,
    /// A symbol only this provider exports (ATLAS `ATL_buildinfo`): its presence says the
    /// file is this provider's, a build of the provider's first sequential build unless
    /// `flags` say otherwise.
    #[serde(default)]
    pub marker: Option<String>,
    /// An `int f(void)` giving the thread count the library would use, asked with 2 OpenMP
    /// threads after loading one build's libraries (MKL `mkl_get_max_threads`): 1 means the
    /// sequential layer is linked, more a threaded one.
    #[serde(default)]
    pub threads: Option<String>,
    /// An `int f(int)` called with -1 that returns the active run-time threading layer (MKL
    /// `MKL_Set_Threading_Layer`), and what its answers mean.
    #[serde(default)]
    pub layer_query: Option<String>,
    #[serde(default)]
    pub layer_values: indexmap::IndexMap<String, String>,
    /// A `void f(char *buf, int len)` that writes a version string (MKL
    /// `MKL_Get_Version_String`).
    #[serde(default)]
    pub version_buffer: Option<String>,
    /// Libraries on a build's link line that live outside the provider's directory (the
    /// C library's, OpenMP runtimes), by link name, with the file to load for the query when
    /// none sits beside the provider's files (`gomp = "libgomp.so.1"`; empty: nothing to load,
    /// the C library has it).
    #[serde(default)]
    pub system_libs: indexmap::IndexMap<String, String>,
    /// Variables removed from the query's environment besides the builds' thread variables
    /// (they would change the library's answers).
    #[serde(default)]
    pub clear_env: Vec<String>,
    /// Variables set for the query (MKL_DYNAMIC=FALSE: the threaded layers then answer the 2
    /// threads asked for, whatever the machine's core count).
    #[serde(default)]
    pub query_env: indexmap::IndexMap<String, String>,
}

/// A prefix and suffix around every exported symbol name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Decoration {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
}

impl Detect {
    /// The decorations to try: the listed ones, or none (plain names).
    pub fn decorations(&self) -> Vec<Decoration> {
        if self.decorations.is_empty() {
            vec![Decoration::default()]
        } else {
            self.decorations.clone()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    name: Spanned<String>,
    threading: Threading,
    #[serde(default)]
    cmake_vendor: Option<Spanned<String>>,
    /// Libraries to link, in order (`-l` names).
    libs: Vec<Spanned<String>>,
    #[serde(default)]
    link: Vec<Spanned<String>>,
    /// The OpenMP runtime this build was compiled against (`gomp`, `iomp5`, `omp`).
    #[serde(default)]
    openmp_runtime: Option<Spanned<String>>,
    /// Variables that set its thread count, highest precedence first.
    #[serde(default)]
    thread_vars: Vec<Spanned<String>>,
    /// Variables users expect to work but this build ignores.
    #[serde(default)]
    ignored_vars: Vec<Spanned<String>>,
    /// Thread count when no variable is set: `"ncpu"` or a number.
    #[serde(default)]
    default_threads: Option<Spanned<String>>,
    /// Directory names this build installs its libraries in (Debian: `openblas-openmp`).
    #[serde(default)]
    lib_dirs: Vec<Spanned<String>>,
    /// The BLAS integer width the build's link line gives (`ilp64`: 64-bit); a library the
    /// probe found answering another width is not this build.
    #[serde(default)]
    int_width: IntWidth,
    /// The system packages that install this build (what a CI job installs).
    #[serde(default)]
    packages: crate::packages::RawPackages,
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
    /// See `RawProvider::preference`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<u32>,
    pub builds: Vec<Build>,
    pub notes: Vec<String>,
    #[serde(skip)]
    pub origin: String,
}

/// How many threads a build runs when no variable sets the count: one per CPU, or a fixed
/// number. Serialised as the data file spells it (`"ncpu"`, `"1"`), so spec hashes stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultThreads {
    Ncpu,
    Count(u32),
}

impl DefaultThreads {
    /// `"ncpu"` or a positive whole number without leading zeros; `None` for anything else.
    pub fn parse(t: &str) -> Option<DefaultThreads> {
        if t == "ncpu" {
            return Some(DefaultThreads::Ncpu);
        }
        let count = !t.is_empty() && !t.starts_with('0') && t.chars().all(|c| c.is_ascii_digit());
        count
            .then(|| t.parse().ok().map(DefaultThreads::Count))
            .flatten()
    }
}

impl std::fmt::Display for DefaultThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultThreads::Ncpu => f.write_str("ncpu"),
            DefaultThreads::Count(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for DefaultThreads {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// LP64 (32-bit BLAS integers) or ILP64 (64-bit).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum IntWidth {
    #[default]
    Lp64,
    Ilp64,
}

impl IntWidth {
    pub fn is_lp64(&self) -> bool {
        *self == IntWidth::Lp64
    }
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
    pub default_threads: Option<DefaultThreads>,
    pub lib_dirs: Vec<String>,
    /// Left out when LP64, so the spec hashes of every LP64 build stay as they were.
    #[serde(skip_serializing_if = "IntWidth::is_lp64")]
    pub int_width: IntWidth,
    pub notes: Vec<String>,
    /// The system packages that install it. Left out of the serialised build, which is part
    /// of the spec hash: where a library comes from is not what a variant links.
    #[serde(skip)]
    pub packages: crate::Packages,
}

/// One `[[builds]]` entry's name, variables, thread default, link flags, directories,
/// runtime and libraries.
fn check_build(src: &Source, b: &RawBuild, checks: Checks, errs: &mut Vec<Diagnostic>) {
    let bname = b.name.get_ref();
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
    check_build_vars(src, b, errs);
    // The probe and resolution take this as the thread count a variant runs with.
    if let Some(d) = &b.default_threads {
        let t = d.get_ref();
        if DefaultThreads::parse(t).is_none() {
            errs.push(
                Diagnostic::at(
                    src,
                    d.span(),
                    format!("build `{bname}`: invalid `default_threads` {t:?}"),
                )
                .expected("\"ncpu\" or a positive whole number such as \"1\""),
            );
        }
    }
    for f in &b.link {
        crate::names::check_flag(src, f, errs);
    }
    // A directory name searched under each library directory, never a path out of it.
    for d in &b.lib_dirs {
        if !crate::names::valid_file_name(d.get_ref()) {
            errs.push(
                Diagnostic::at(
                    src,
                    d.span(),
                    format!(
                        "build `{bname}`: invalid `lib_dirs` entry {:?}",
                        d.get_ref()
                    ),
                )
                .expected("a directory name (`openblas-openmp`), not a path"),
            );
        }
    }
    if checks == Checks::All {
        if let Some(rt) = &b.openmp_runtime {
            crate::toolchain::check_runtime(src, rt, errs);
        }
        for l in &b.libs {
            crate::names::check_lib(src, l, errs);
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
}

/// A build's `thread_vars` and `ignored_vars`: valid names, each listed once.
fn check_build_vars(src: &Source, b: &RawBuild, errs: &mut Vec<Diagnostic>) {
    let bname = b.name.get_ref();
    for var in b.thread_vars.iter().chain(&b.ignored_vars) {
        let var = var.get_ref();
        if !crate::names::valid_env_name(var) {
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
    // A variable listed twice, or both read and ignored, says two things about the
    // build; the env scripts and reports would print both.
    let mut vars_seen: Vec<(&str, &str)> = Vec::new();
    for (list, vars) in [
        ("thread_vars", &b.thread_vars),
        ("ignored_vars", &b.ignored_vars),
    ] {
        for v in vars {
            if let Some((prev, _)) = vars_seen.iter().find(|(_, x)| *x == v.get_ref()) {
                errs.push(
                    Diagnostic::at(
                        src,
                        v.span(),
                        format!(
                            "build `{bname}`: {:?} is already listed in `{prev}`",
                            v.get_ref()
                        ),
                    )
                    .expected("each variable once, in `thread_vars` or `ignored_vars`"),
                );
            } else {
                vars_seen.push((list, v.get_ref()));
            }
        }
    }
}

impl Provider {
    /// Parses and validates a provider. All problems in the file are reported together.
    pub fn parse(src: &Source) -> Result<Provider, Diagnostics> {
        let raw: RawProvider = crate::diag::parse_toml(src)?;
        let mut errs = Vec::new();
        let name = raw.name.get_ref().clone();
        if !crate::names::valid_ident(&name) {
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
        // The builtin providers are held to the same rules by this crate's tests; checking
        // them here would parse every builtin descriptor at each start-up.
        let checks = Checks::of(src);
        let mut builds: Vec<Build> = Vec::new();
        // Written into CMake caches (`BLA_VENDOR`, where `;` splits a list) and Meson files.
        let vendors = raw
            .cmake_vendor
            .iter()
            .chain(raw.builds.iter().flat_map(|b| &b.cmake_vendor));
        for v in vendors {
            crate::names::check_word(
                src,
                v,
                "CMake BLAS vendor",
                "`OpenBLAS`, `Intel10_64lp`",
                &mut errs,
            );
        }
        if let Some(p) = &raw.pkgconfig {
            crate::names::check_word(src, p, "pkg-config name", "`openblas`", &mut errs);
        }
        for b in raw.builds {
            let bname = b.name.get_ref().clone();
            let packages = b.packages.clone().check(src, &mut errs);
            if builds.iter().any(|x| x.name == bname) {
                errs.push(Diagnostic::at(
                    src,
                    b.name.span(),
                    format!("duplicate build `{bname}`"),
                ));
                continue;
            }
            check_build(src, &b, checks, &mut errs);
            builds.push(Build {
                name: bname,
                threading: b.threading,
                cmake_vendor: b
                    .cmake_vendor
                    .or_else(|| raw.cmake_vendor.clone())
                    .map(Spanned::into_inner),
                libs: unspan(b.libs),
                link: unspan(b.link),
                openmp_runtime: b.openmp_runtime.map(Spanned::into_inner),
                thread_vars: unspan(b.thread_vars),
                ignored_vars: unspan(b.ignored_vars),
                // An invalid value is an error above, so the file is refused.
                default_threads: b
                    .default_threads
                    .and_then(|d| DefaultThreads::parse(d.get_ref())),
                lib_dirs: unspan(b.lib_dirs),
                int_width: b.int_width,
                notes: b.notes,
                packages,
            });
        }
        if let Some(d) = &raw.detect {
            errs.extend(check_detect(src, d.span(), d.get_ref()));
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
            pkgconfig: raw.pkgconfig.map(Spanned::into_inner),
            detect: raw.detect.map(Spanned::into_inner).unwrap_or_default(),
            preference: raw.preference,
            builds,
            notes: raw.notes,
            origin: src.name.clone(),
        })
    }

    pub fn build(&self, name: &str) -> Option<&Build> {
        self.builds.iter().find(|b| b.name == name)
    }
}

/// A provider build's id, the concrete `blas` value that names it: `<provider>-<build>`.
pub fn blas_id(provider: &str, build: &str) -> String {
    format!("{provider}-{build}")
}

fn unspan(v: Vec<Spanned<String>>) -> Vec<String> {
    v.into_iter().map(Spanned::into_inner).collect()
}

/// The `[detect]` table's names: symbols and decorations must be C identifiers (they are
/// passed to `dlsym` and pasted together), layer answers integers, library names plain.
fn check_detect(src: &Source, span: std::ops::Range<usize>, d: &Detect) -> Vec<Diagnostic> {
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let part = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut errs = Vec::new();
    let mut bad = |what: String, expected: &str| {
        errs.push(
            Diagnostic::at(src, span.clone(), format!("[detect]: {what}")).expected(expected),
        );
    };
    let symbols = d
        .query
        .iter()
        .chain(&d.config)
        .chain(&d.symbol)
        .chain(&d.int_probe)
        .chain(&d.marker)
        .chain(&d.threads)
        .chain(&d.layer_query)
        .chain(&d.version_buffer)
        .chain(d.flags.keys());
    for s in symbols {
        if !ident(s) {
            bad(format!("invalid symbol name {s:?}"), "a C identifier");
        }
    }
    for v in d.clear_env.iter().chain(d.query_env.keys()) {
        if !crate::names::valid_env_name(v) {
            bad(
                format!("invalid environment variable name {v:?}"),
                "letters, digits and `_`, not starting with a digit",
            );
        }
    }
    for dec in &d.decorations {
        if !part(&dec.prefix) || !part(&dec.suffix) {
            bad(
                format!("invalid decoration {:?} / {:?}", dec.prefix, dec.suffix),
                "letters, digits and `_`",
            );
        }
    }
    for k in d.layer_values.keys().chain(d.query_values.keys()) {
        if k.parse::<i64>().is_err() {
            bad(format!("answer {k:?} is not an integer"), "an integer key");
        }
    }
    for (l, file) in d
        .libraries
        .iter()
        .map(|l| (l, ""))
        .chain(d.system_libs.iter().map(|(l, f)| (l, f.as_str())))
    {
        if l.is_empty() || l.contains(['/', ' ']) || file.contains(' ') {
            bad(
                format!("invalid library name {l:?}"),
                "a link name (`openblas`)",
            );
        }
    }
    errs
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
        if b.int_width != IntWidth::Lp64 {
            m.serialize_entry("int_width", &b.int_width)?;
        }
        m.end()
    }
}
