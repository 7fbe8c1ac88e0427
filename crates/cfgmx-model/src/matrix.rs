//! Matrices (`matrices/<name>.toml`): named axes, GitHub-Actions-style `include`/`exclude`,
//! constraints between axes, per-value contributions and per-variant environment.
//!
//! Parsing validates everything that can be checked without expanding (unknown families, empty
//! axes, duplicate values, excludes naming unknown axes, unknown keys) and reports every problem
//! with its file, line and column.

use crate::diag::{Diagnostic, Diagnostics, Source};
use crate::names::valid_env_name;
use crate::registry::Registry;
use crate::scalar::Scalar;
use crate::toolchain::Language;
use crate::version::VersionRange;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// The axes with a meaning to cfgmx; any other axis is a user axis.
pub const COMPILER: &str = "compiler";
pub const BLAS: &str = "blas";
pub const BUILD: &str = "build";
/// The BLAS integer width of the variant: `lp64` (32-bit) or `ilp64` (64-bit). A role, not a
/// facet, because it decides which BLAS library a variant may link (and a C project has no
/// `int64` compiler facet at all); `ilp64` also applies the `int64` facet where a language has
/// one and sets `BLA_SIZEOF_INTEGER=8`.
pub const INT: &str = "int";
pub const INT_VALUES: &[&str] = &["lp64", "ilp64"];
/// The project's own OpenMP, apart from the BLAS threading: `on` compiles with the OpenMP
/// facet, `off` without it (a threaded BLAS still brings its own runtime); without the axis,
/// a variant uses OpenMP when its BLAS build is OpenMP-threaded.
pub const OPENMP: &str = "openmp";
pub const OPENMP_VALUES: &[&str] = &["on", "off"];
/// The MPI implementation a variant is built with: `none`, or an implementation of the
/// `mpi/` data (`openmpi`), optionally versioned like a compiler (`openmpi@4`). A role because
/// the MPI depends on the compiler: resolution pairs the variant's compiler with a wrapper of
/// that implementation.
pub const MPI: &str = "mpi";
/// Every axis with a meaning to cfgmx.
pub const ROLES: &[&str] = &[COMPILER, BLAS, BUILD, INT, OPENMP, MPI];

/// Build modes, the facet each selects and their CMake and Meson names: data, in
/// `toolchains/base/defaults.toml`.
pub use crate::toolchain::build_modes;

/// Abstract BLAS values.
pub const BLAS_ABSTRACT: &[&str] = &["sequential", "threaded", "none"];

/// What a `blas` value asks for: no BLAS, the matrix's policy's choice of a sequential or
/// threaded build, or a provider (`openblas`) or build (`openblas-openmp`) by name. Shown and
/// serialised as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlasRequest {
    None,
    Sequential,
    Threaded,
    Named(String),
}

impl BlasRequest {
    pub fn parse(value: &str) -> BlasRequest {
        match value {
            "none" => BlasRequest::None,
            "sequential" => BlasRequest::Sequential,
            "threaded" => BlasRequest::Threaded,
            id => BlasRequest::Named(id.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BlasRequest::None => "none",
            BlasRequest::Sequential => "sequential",
            BlasRequest::Threaded => "threaded",
            BlasRequest::Named(id) => id,
        }
    }

    /// `sequential` or `threaded`: the build is the matrix's BLAS policy's choice.
    pub fn by_policy(&self) -> bool {
        matches!(self, BlasRequest::Sequential | BlasRequest::Threaded)
    }
}

impl std::fmt::Display for BlasRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BlasRequest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A request compares with a BLAS id as the value it was written as.
impl PartialEq<String> for BlasRequest {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// `key = value` or `key = [values]` in a constraint (spans only work outside untagged enums).
type OneOrMany = Spanned<toml::Value>;

/// Axis name -> values, each with its place in the file.
type RawAxes = IndexMap<Spanned<String>, Spanned<Vec<Spanned<Scalar>>>>;

/// `[values.<axis>.<value>]` tables.
type RawValues = IndexMap<Spanned<String>, IndexMap<Spanned<String>, Spanned<RawContribution>>>;

/// An include, add or exclude entry: `key = value` pairs, each with its place in the file.
type RawEntry = Spanned<IndexMap<Spanned<String>, Spanned<Scalar>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    #[serde(default)]
    modules: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    languages: Option<Spanned<Vec<Language>>>,
    #[serde(default)]
    threads: Option<Spanned<u32>>,
    axes: Spanned<RawAxes>,
    #[serde(default)]
    include: Vec<RawEntry>,
    /// Extra jobs: each a new combination exactly as written, never merged into others.
    #[serde(default)]
    add: Vec<RawEntry>,
    #[serde(default)]
    exclude: Vec<RawEntry>,
    #[serde(default)]
    constraints: Vec<Spanned<RawConstraint>>,
    #[serde(default)]
    env: IndexMap<String, Spanned<Scalar>>,
    #[serde(default)]
    blas: Option<RawBlasPolicy>,
    #[serde(default)]
    values: RawValues,
    /// CMake cache variables for every variant (a value's own `cmake` entry wins).
    #[serde(default)]
    cmake: IndexMap<Spanned<String>, Scalar>,
    /// Meson options for every variant (a value's own `meson` entry wins).
    #[serde(default)]
    meson: IndexMap<Spanned<String>, Scalar>,
    /// Test selection and settings for every variant (a value's own `test` keys win).
    #[serde(default)]
    test: Option<Spanned<RawTest>>,
    /// `[probe]`: how a probe for this matrix looks (`modules = true`: ask the module system).
    #[serde(default)]
    probe: Option<RawProbe>,
    /// Runtime axes: what a test run sees, not what is built (`runtime.rs`).
    #[serde(default)]
    runtime: Option<crate::runtime::RawRuntime>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    #[serde(default)]
    include: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    exclude: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    labels: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    exclude_labels: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    timeout: Option<Spanned<i64>>,
    #[serde(default)]
    repeat_until_fail: Option<Spanned<i64>>,
    #[serde(default)]
    args: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConstraint {
    #[serde(rename = "when", default)]
    when: IndexMap<Spanned<String>, OneOrMany>,
    #[serde(default)]
    require: IndexMap<Spanned<String>, OneOrMany>,
    #[serde(default)]
    forbid: IndexMap<Spanned<String>, OneOrMany>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlasPolicy {
    #[serde(default)]
    prefer: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    threaded: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContribution {
    #[serde(default)]
    cflags: Vec<Spanned<String>>,
    #[serde(default)]
    cxxflags: Vec<Spanned<String>>,
    #[serde(default)]
    fflags: Vec<Spanned<String>>,
    #[serde(default)]
    ldflags: Vec<Spanned<String>>,
    #[serde(default)]
    libs: Vec<Spanned<String>>,
    #[serde(default)]
    defines: Vec<Spanned<String>>,
    #[serde(default)]
    facets: Vec<Spanned<String>>,
    #[serde(default)]
    env: IndexMap<String, Scalar>,
    #[serde(default)]
    cmake: IndexMap<Spanned<String>, Scalar>,
    #[serde(default)]
    meson: IndexMap<Spanned<String>, Scalar>,
    #[serde(default)]
    fortran: Option<Spanned<String>>,
    #[serde(default)]
    test: Option<Spanned<RawTest>>,
}

/// What one axis value adds to a variant (`[values.<axis>.<value>]`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Contribution {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cflags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cxxflags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fflags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ldflags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub defines: Vec<String>,
    /// Facets of the variant's compiler to apply (`pic`, `cxx17`, `openmp`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub cmake: IndexMap<String, String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub meson: IndexMap<String, String>,
    /// For `compiler` values: the family that provides Fortran (mixed toolchains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fortran: Option<String>,
    /// Test settings of this value; each key it sets wins over the matrix's `[test]`.
    #[serde(skip_serializing_if = "TestSettings::is_empty")]
    pub test: TestSettings,
}

/// Which tests a variant runs and how (`[test]`, or `test = {...}` under a value). Every key
/// is optional: unset keys take the matrix's `[test]` value, then the driver's default. The
/// driver spellings (ctest's `-R`/`-E`/`-L`, `meson test`'s names and `--suite`) are
/// cfgmx-build's one table; this is what the user asked, as data.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestSettings {
    /// Test-name regexes: only tests matching one of them run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Test-name regexes: tests matching one of them do not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
    /// Only tests with one of these labels (ctest) or suites (Meson) run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Tests with one of these labels / suites do not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_labels: Option<Vec<String>>,
    /// Seconds each test may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Run each test up to N times, stopping at its first failure (flaky tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_until_fail: Option<u32>,
    /// Extra arguments for the test driver, passed as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

impl TestSettings {
    pub fn is_empty(&self) -> bool {
        *self == TestSettings::default()
    }

    /// `other`'s keys replace this one's (a value's settings over the matrix's).
    pub fn overlay(&mut self, other: &TestSettings) {
        macro_rules! take {
            ($($f:ident),*) => {$(if other.$f.is_some() { self.$f = other.$f.clone(); })*};
        }
        take!(
            include,
            exclude,
            labels,
            exclude_labels,
            timeout,
            repeat_until_fail,
            args
        );
    }
}

/// A parsed `compiler` value: `gcc`, `gcc@12:`, `clang@14`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompilerSpec {
    pub family: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionRange>,
}

impl CompilerSpec {
    pub fn parse(s: &str) -> Result<CompilerSpec, String> {
        match s.split_once('@') {
            None => Ok(CompilerSpec {
                family: s.to_string(),
                versions: None,
            }),
            Some((f, r)) => Ok(CompilerSpec {
                family: f.to_string(),
                versions: Some(VersionRange::parse(r)?),
            }),
        }
    }
}

/// One axis: its name and values in order.
#[derive(Debug, Clone)]
pub struct Axis {
    pub name: Arc<str>,
    pub values: Vec<Arc<str>>,
    pub(crate) span: Range<usize>,
    /// Byte span of each value in the matrix file.
    pub value_spans: Vec<Range<usize>>,
}

/// One `include`, `add` or `exclude` entry: key -> value, in the order written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub pairs: Vec<(Arc<str>, Arc<str>)>,
    pub(crate) span: Range<usize>,
    /// An `[[add]]` entry (kept after the includes): always a combination of its own, never
    /// merged into the product's, so an extra job needs no axis that every name would carry.
    pub new: bool,
}

/// `when` these values, `require` or `forbid` those.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub when: Vec<(Arc<str>, Vec<Arc<str>>)>,
    pub require: Vec<(Arc<str>, Vec<Arc<str>>)>,
    pub forbid: Vec<(Arc<str>, Vec<Arc<str>>)>,
    pub reason: Option<String>,
    pub(crate) span: Range<usize>,
}

impl Constraint {
    /// True when the combination is allowed.
    pub fn allows(&self, get: &dyn Fn(&str) -> Option<Arc<str>>) -> bool {
        let matches = |conds: &[(Arc<str>, Vec<Arc<str>>)]| {
            conds
                .iter()
                .all(|(k, vs)| get(k).is_some_and(|v| vs.contains(&v)))
        };
        if !matches(&self.when) {
            return true;
        }
        let req_ok = self
            .require
            .iter()
            .all(|(k, vs)| get(k).is_some_and(|v| vs.contains(&v)));
        let forb_ok = self
            .forbid
            .iter()
            .all(|(k, vs)| !get(k).is_some_and(|v| vs.contains(&v)));
        req_ok && forb_ok
    }
}

/// How abstract `blas` values pick a provider build.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlasPolicy {
    /// Providers in order of preference.
    pub prefer: Vec<String>,
    /// Threading modes acceptable for `threaded`, in order of preference.
    pub threaded: Vec<crate::provider::Threading>,
}

impl BlasPolicy {
    /// The default policy: providers in the order of their `preference` (`providers/*.toml`),
    /// OpenMP before pthreads for `threaded`.
    pub fn from_registry(reg: &Registry) -> Self {
        use crate::provider::Threading::*;
        let mut ranked: Vec<(u32, &String)> = reg
            .providers
            .values()
            .filter_map(|p| Some((p.preference?, &p.name)))
            .collect();
        // stable: equal preferences keep the registry's (file name) order
        ranked.sort_by_key(|(rank, _)| *rank);
        BlasPolicy {
            prefer: ranked.into_iter().map(|(_, n)| n.clone()).collect(),
            threaded: vec![Openmp, Pthread],
        }
    }
}

/// A parsed, validated matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub name: String,
    pub description: String,
    pub languages: Vec<Language>,
    /// The file sets `languages` (else `languages` is every language, and `cfgmx build` may
    /// take them from the project instead).
    pub languages_declared: bool,
    /// Thread count given to threaded variants' env (`OMP_NUM_THREADS`, ...).
    pub threads: u32,
    pub axes: Vec<Axis>,
    pub include: Vec<Entry>,
    pub exclude: Vec<Entry>,
    pub constraints: Vec<Constraint>,
    pub env: IndexMap<String, String>,
    pub blas_policy: BlasPolicy,
    /// `[values.<axis>.<value>]`.
    pub values: IndexMap<String, IndexMap<String, Contribution>>,
    /// `[cmake]`: cache variables for every variant, under the values' own.
    pub cmake: IndexMap<String, String>,
    /// `[meson]`: options for every variant, under the values' own.
    pub meson: IndexMap<String, String>,
    /// `[test]`: test selection for every variant, under the values' own `test`.
    pub test: TestSettings,
    /// `[probe] modules = true`: every probe made for this matrix asks the module system too
    /// (as `--modules` does), so its variants can come from modules.
    pub probe_modules: bool,
    /// `[runtime]`: the points each built variant's tests run at (empty: one run).
    pub runtime: crate::runtime::Runtime,
    pub source: Source,
    /// Non-fatal findings (e.g. an include adding a variable that is not an axis).
    pub warnings: Vec<Diagnostic>,
}

impl Matrix {
    /// Parses and validates a matrix against the descriptors and providers of `reg`.
    pub fn parse(src: &Source, reg: &Registry) -> Result<Matrix, Diagnostics> {
        let raw: RawMatrix = crate::diag::parse_toml(src)?;
        let mut v = Validator {
            src,
            reg,
            errs: Vec::new(),
            warnings: Vec::new(),
        };
        let m = v.matrix(raw);
        if !v.errs.is_empty() {
            return Err(Diagnostics {
                diagnostics: v.errs,
                sources: vec![src.clone()],
            });
        }
        let mut m = m;
        m.warnings = v.warnings;
        Ok(m)
    }

    pub fn axis(&self, name: &str) -> Option<&Axis> {
        self.axes.iter().find(|a| &*a.name == name)
    }

    /// Number of combinations of the axes before include/exclude/constraints (saturating).
    pub fn product_size(&self) -> u128 {
        self.axes
            .iter()
            .fold(1u128, |acc, a| acc.saturating_mul(a.values.len() as u128))
    }

    pub fn contribution(&self, axis: &str, value: &str) -> Option<&Contribution> {
        self.values.get(axis).and_then(|m| m.get(value))
    }

    /// A located diagnostic pointing at constraint `i`.
    pub fn constraint_diagnostic(&self, i: usize, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.source, self.constraints[i].span.clone(), msg)
    }

    /// A located diagnostic pointing at include entry `i`.
    pub fn include_diagnostic(&self, i: usize, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.source, self.include[i].span.clone(), msg)
    }

    /// A diagnostic for the whole matrix, pointing at its `[axes]` table.
    pub fn axes_diagnostic(&self, msg: impl Into<String>) -> Diagnostic {
        let span = self.axes.first().map(|a| a.span.clone()).unwrap_or(0..0);
        Diagnostic::at(&self.source, span, msg)
    }
}

struct Validator<'a> {
    src: &'a Source,
    reg: &'a Registry,
    errs: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>, expected: impl Into<String>) {
        self.errs
            .push(Diagnostic::at(self.src, span, msg).expected(expected));
    }

    /// The whole file, section by section in the order its diagnostics are reported.
    fn matrix(&mut self, raw: RawMatrix) -> Matrix {
        self.matrix_name(&raw.name);
        let languages_declared = raw.languages.is_some();
        let languages = self.languages(raw.languages);
        let threads = self.threads(raw.threads);
        let axes_span = raw.axes.span();
        let axes = self.axes(raw.axes);
        if axes.is_empty() && raw.include.is_empty() && raw.add.is_empty() {
            self.err(
                axes_span,
                "the matrix has no axes and no include entries",
                "at least one axis under [axes]",
            );
        }
        let exclude = self.exclude(&raw.exclude, &axes);
        let include = self.include(&raw.include, &raw.add, &raw.values, &axes);
        let known = known_variables(&axes, &include);
        let constraints = self.constraints(&raw.constraints, &known);
        let env = self.env(raw.env);
        let blas_policy = self.blas_policy(raw.blas);
        let values = self.values(raw.values, &known, &axes, &include);

        // Project settings for every variant.
        self.option_names("CMake", &raw.cmake);
        self.option_names("Meson", &raw.meson);
        let settings = |m: &IndexMap<Spanned<String>, Scalar>| {
            m.iter()
                .map(|(k, v)| (k.get_ref().clone(), v.text()))
                .collect::<IndexMap<_, _>>()
        };
        let cmake = settings(&raw.cmake);
        let meson = settings(&raw.meson);
        let test = raw.test.as_ref().map(|t| self.test(t)).unwrap_or_default();
        let runtime = match raw.runtime {
            Some(r) => self.runtime(r, &axes, &raw.include),
            None => Default::default(),
        };

        Matrix {
            name: raw.name.into_inner(),
            description: raw.description,
            languages,
            languages_declared,
            threads,
            axes,
            include,
            exclude,
            constraints,
            env,
            blas_policy,
            values,
            cmake,
            meson,
            test,
            probe_modules: raw.probe.is_some_and(|p| p.modules),
            runtime,
            source: self.src.clone(),
            warnings: Vec::new(),
        }
    }

    fn matrix_name(&mut self, raw: &Spanned<String>) {
        let name = raw.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            self.err(
                raw.span(),
                format!("invalid matrix name {name:?}"),
                "letters, digits, `.`, `_` and `-`",
            );
        }
    }

    fn languages(&mut self, raw: Option<Spanned<Vec<Language>>>) -> Vec<Language> {
        match raw {
            Some(l) if l.get_ref().is_empty() => {
                self.err(
                    l.span(),
                    "`languages` is empty",
                    "at least one of \"c\", \"cxx\", \"fortran\"",
                );
                Vec::new()
            }
            Some(l) => {
                let span = l.span();
                let mut seen: Vec<Language> = Vec::new();
                for lang in l.into_inner() {
                    if seen.contains(&lang) {
                        self.err(
                            span.clone(),
                            format!("`languages` names {} twice", lang.as_str()),
                            "each language once",
                        );
                    } else {
                        seen.push(lang);
                    }
                }
                seen
            }
            None => Language::ALL.to_vec(),
        }
    }

    fn threads(&mut self, raw: Option<Spanned<u32>>) -> u32 {
        match raw {
            Some(t) if *t.get_ref() == 0 => {
                self.err(t.span(), "`threads` is 0", "a thread count of at least 1");
                1
            }
            Some(t) => t.into_inner(),
            None => 2,
        }
    }

    /// `[axes]`.
    fn axes(&mut self, raw: Spanned<RawAxes>) -> Vec<Axis> {
        let mut axes: Vec<Axis> = Vec::new();
        for (k, vals) in raw.into_inner() {
            let kname = k.get_ref().clone();
            if !valid_key(&kname) {
                self.err(
                    k.span(),
                    format!("invalid axis name {kname:?}"),
                    "letters, digits, `_` and `-`, starting with a letter",
                );
            }
            if vals.get_ref().is_empty() {
                self.err(
                    vals.span(),
                    format!("axis `{kname}` has no values"),
                    "a non-empty list of values",
                );
                continue;
            }
            let (values, value_spans) = self.axis_values(&kname, vals.get_ref());
            axes.push(Axis {
                name: kname.into(),
                values,
                span: k.span(),
                value_spans,
            });
        }
        axes
    }

    /// One axis's values, each once, with their places in the file.
    fn axis_values(
        &mut self,
        kname: &str,
        vals: &[Spanned<Scalar>],
    ) -> (Vec<Arc<str>>, Vec<Range<usize>>) {
        let mut values: Vec<Arc<str>> = Vec::new();
        let mut value_spans: Vec<Range<usize>> = Vec::new();
        for val in vals {
            let text = match val.get_ref() {
                Scalar::Float(_) => {
                    self.err(
                        val.span(),
                        format!("axis `{kname}`: a floating-point value"),
                        "a string, integer or boolean",
                    );
                    continue;
                }
                s => s.text(),
            };
            if let Some(first) = values.iter().position(|x| **x == *text) {
                let (l, c) = self.src.line_col(value_spans[first].start);
                self.errs.push(
                    Diagnostic::at(
                        self.src,
                        val.span(),
                        format!("duplicate value {text:?} in axis `{kname}`"),
                    )
                    .expected("each value once")
                    .note(format!("first listed at {}:{l}:{c}", self.src.name)),
                );
                continue;
            }
            self.check_role_value(kname, &text, val.span());
            values.push(text.into());
            value_spans.push(val.span());
        }
        (values, value_spans)
    }

    /// Exclude: every key must be an axis (GitHub semantics: partial match).
    fn exclude(&mut self, raw: &[RawEntry], axes: &[Axis]) -> Vec<Entry> {
        let is_axis = |k: &str| axes.iter().any(|a| &*a.name == k);
        let mut exclude = Vec::new();
        for e in raw {
            let mut pairs = Vec::new();
            if e.get_ref().is_empty() {
                self.err(
                    e.span(),
                    "empty exclude entry (it would exclude every combination)",
                    "at least one `axis = value`",
                );
            }
            for (k, val) in e.get_ref() {
                let key = k.get_ref();
                if !is_axis(key) {
                    self.err(
                        k.span(),
                        format!("exclude names axis `{key}`, which the matrix does not have"),
                        format!(
                            "one of: {}",
                            axes.iter().map(|a| &*a.name).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    continue;
                }
                let text = val.get_ref().text();
                let axis = axes.iter().find(|a| &*a.name == key.as_str()).unwrap();
                if !axis.values.iter().any(|v| **v == *text) {
                    self.warnings.push(
                        Diagnostic::at(self.src, val.span(), format!("exclude value {text:?} is not a value of axis `{key}`; this entry excludes nothing"))
                            .expected(format!("one of: {}", axis.values.join(", "))),
                    );
                }
                pairs.push((Arc::from(key.as_str()), Arc::from(text)));
            }
            exclude.push(Entry {
                pairs,
                span: e.span(),
                new: false,
            });
        }
        exclude
    }

    /// Include: keys may be axes or new variables (GitHub semantics). Add: the same keys,
    /// each entry a combination of its own.
    fn include(
        &mut self,
        raw_include: &[RawEntry],
        raw_add: &[RawEntry],
        raw_values: &RawValues,
        axes: &[Axis],
    ) -> Vec<Entry> {
        let is_axis = |k: &str| axes.iter().any(|a| &*a.name == k);
        let mut include = Vec::new();
        let entries = raw_include.iter().map(|e| (e, false));
        for (e, new) in entries.chain(raw_add.iter().map(|e| (e, true))) {
            let what = if new { "add" } else { "include" };
            if e.get_ref().is_empty() {
                self.err(
                    e.span(),
                    format!("empty {what} entry"),
                    "at least one `key = value`",
                );
            }
            let mut pairs = Vec::new();
            for (k, val) in e.get_ref() {
                let key = k.get_ref();
                if !valid_key(key) {
                    self.err(
                        k.span(),
                        format!("invalid key {key:?}"),
                        "letters, digits, `_` and `-`, starting with a letter",
                    );
                }
                if let Scalar::Float(_) = val.get_ref() {
                    self.err(
                        val.span(),
                        "a floating-point value",
                        "a string, integer or boolean",
                    );
                    continue;
                }
                let text = val.get_ref().text();
                self.check_role_value(key, &text, val.span());
                if !new
                    && !is_axis(key)
                    && !ROLES.contains(&key.as_str())
                    && !raw_values.keys().any(|v| v.get_ref() == key)
                {
                    self.warnings.push(Diagnostic::at(
                        self.src,
                        k.span(),
                        format!("include adds `{key}`, which is not an axis: it is added to the matching combinations (GitHub Actions semantics)"),
                    ));
                }
                pairs.push((Arc::from(key.as_str()), Arc::from(text)));
            }
            include.push(Entry {
                pairs,
                span: e.span(),
                new,
            });
        }
        include
    }

    fn constraints(&mut self, raw: &[Spanned<RawConstraint>], known: &[String]) -> Vec<Constraint> {
        let mut constraints = Vec::new();
        for c in raw {
            let rc = c.get_ref();
            if rc.require.is_empty() && rc.forbid.is_empty() {
                self.err(
                    c.span(),
                    "constraint has neither `require` nor `forbid`",
                    "`require = { axis = value }` or `forbid = { ... }`",
                );
            }
            let when = self.conds(&rc.when, known);
            let require = self.conds(&rc.require, known);
            let forbid = self.conds(&rc.forbid, known);
            constraints.push(Constraint {
                when,
                require,
                forbid,
                reason: rc.reason.clone(),
                span: c.span(),
            });
        }
        constraints
    }

    /// Environment for every variant.
    fn env(&mut self, raw: IndexMap<String, Spanned<Scalar>>) -> IndexMap<String, String> {
        let mut env = IndexMap::new();
        for (k, v) in raw {
            if !valid_env_name(&k) {
                self.err(
                    v.span(),
                    format!("invalid environment variable name {k:?}"),
                    "letters, digits and `_`, not starting with a digit",
                );
            }
            env.insert(k, v.get_ref().text());
        }
        env
    }

    fn blas_policy(&mut self, raw: Option<RawBlasPolicy>) -> BlasPolicy {
        let mut blas_policy = BlasPolicy::from_registry(self.reg);
        if let Some(p) = raw {
            if let Some(prefer) = p.prefer {
                blas_policy.prefer.clear();
                for s in prefer {
                    if !self.reg.providers.contains_key(s.get_ref()) {
                        let known = self
                            .reg
                            .providers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ");
                        self.err(
                            s.span(),
                            format!("unknown BLAS provider `{}`", s.get_ref()),
                            format!("one of: {known}"),
                        );
                    }
                    blas_policy.prefer.push(s.into_inner());
                }
            }
            if let Some(t) = p.threaded {
                blas_policy.threaded.clear();
                for s in t {
                    match s.get_ref().as_str() {
                        "openmp" => blas_policy
                            .threaded
                            .push(crate::provider::Threading::Openmp),
                        "pthread" => blas_policy
                            .threaded
                            .push(crate::provider::Threading::Pthread),
                        other => self.err(
                            s.span(),
                            format!("unknown threading `{other}`"),
                            "\"openmp\" or \"pthread\"",
                        ),
                    }
                }
            }
        }
        blas_policy
    }

    /// Per-value contributions (`[values.<axis>.<value>]`).
    fn values(
        &mut self,
        raw: RawValues,
        known: &[String],
        axes: &[Axis],
        include: &[Entry],
    ) -> IndexMap<String, IndexMap<String, Contribution>> {
        let mut values: IndexMap<String, IndexMap<String, Contribution>> = IndexMap::new();
        for (axis, vals) in raw {
            let aname = axis.get_ref().clone();
            if !known.contains(&aname) {
                self.err(
                    axis.span(),
                    format!("[values.{aname}] names no axis or include variable"),
                    format!("one of: {}", known.join(", ")),
                );
                continue;
            }
            let mut out = IndexMap::new();
            for (val, contrib) in vals {
                let vname = val.get_ref().clone();
                let in_axis = axes
                    .iter()
                    .find(|a| *a.name == *aname)
                    .map(|a| a.values.iter().any(|x| **x == *vname));
                let in_include = include
                    .iter()
                    .any(|e| e.pairs.iter().any(|(k, v)| **k == *aname && **v == *vname));
                if in_axis != Some(true) && !in_include {
                    self.err(val.span(), format!("[values.{aname}] describes {vname:?}, which is not a value of `{aname}`"), "a value listed in the axis or an include entry");
                }
                let c = self.contribution(&aname, &contrib);
                out.insert(vname, c);
            }
            values.insert(aname, out);
        }
        values
    }

    /// One `[values.<axis>.<value>]` table.
    fn contribution(&mut self, aname: &str, contrib: &Spanned<RawContribution>) -> Contribution {
        let rc = contrib.get_ref();
        for f in &rc.facets {
            if !self
                .reg
                .toolchains
                .values()
                .any(|t| t.facets.contains_key(f.get_ref()))
            {
                self.err(
                    f.span(),
                    format!("no toolchain has a facet `{}`", f.get_ref()),
                    "a facet name such as pic, openmp, cxx17",
                );
            }
        }
        if let Some(fc) = &rc.fortran {
            if aname != COMPILER {
                self.err(
                    fc.span(),
                    "`fortran` is only meaningful for compiler values",
                    "this key under [values.compiler.<value>]",
                );
            } else if !self.reg.toolchains.contains_key(fc.get_ref()) {
                self.err(
                    fc.span(),
                    format!("unknown toolchain family `{}`", fc.get_ref()),
                    format!("one of: {}", self.families()),
                );
            }
        }
        let text_map = |m: &IndexMap<String, Scalar>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.text()))
                .collect::<IndexMap<_, _>>()
        };
        let spanned_map = |m: &IndexMap<Spanned<String>, Scalar>| {
            m.iter()
                .map(|(k, v)| (k.get_ref().clone(), v.text()))
                .collect::<IndexMap<_, _>>()
        };
        // Each of these is pasted into link lines, CMake caches, Meson files and
        // scripts; a separator or shell character would change what they say.
        for l in &rc.libs {
            if !crate::names::valid_lib(l.get_ref()) {
                self.err(
                    l.span(),
                    format!("invalid library {:?}", l.get_ref()),
                    "a link name (`m`, `openblas`) or an absolute path (`/opt/x/libx.so`) of letters, digits, `.`, `_`, `+`, `-`",
                );
            }
        }
        let flags = rc.cflags.iter().chain(&rc.cxxflags).chain(&rc.fflags);
        for f in flags.chain(&rc.ldflags) {
            if !crate::names::flag_ok(f.get_ref()) {
                self.err(
                    f.span(),
                    format!("invalid flag {:?}", f.get_ref()),
                    "one non-empty argument, no space at either end",
                );
            }
        }
        for d in &rc.defines {
            let name = d.get_ref().split('=').next().unwrap_or("");
            if !valid_c_ident(name) {
                self.err(
                    d.span(),
                    format!("invalid define {:?}", d.get_ref()),
                    "`NAME` or `NAME=value`, NAME a C identifier (no `-D`)",
                );
            }
        }
        self.option_names("CMake", &rc.cmake);
        self.option_names("Meson", &rc.meson);
        let test = rc.test.as_ref().map(|t| self.test(t)).unwrap_or_default();
        for k in rc.env.keys() {
            if !valid_env_name(k) {
                self.err(
                    contrib.span(),
                    format!("invalid environment variable name {k:?}"),
                    "letters, digits and `_`, not starting with a digit",
                );
            }
        }
        Contribution {
            cflags: unspan(&rc.cflags),
            cxxflags: unspan(&rc.cxxflags),
            fflags: unspan(&rc.fflags),
            ldflags: unspan(&rc.ldflags),
            libs: rc.libs.iter().map(|l| l.get_ref().clone()).collect(),
            defines: rc.defines.iter().map(|d| d.get_ref().clone()).collect(),
            facets: rc.facets.iter().map(|f| f.get_ref().clone()).collect(),
            env: text_map(&rc.env),
            cmake: spanned_map(&rc.cmake),
            meson: spanned_map(&rc.meson),
            fortran: rc.fortran.as_ref().map(|f| f.get_ref().clone()),
            test,
        }
    }

    /// `[runtime]`, checked against the build's variables: the axes and include keys.
    fn runtime(
        &mut self,
        r: crate::runtime::RawRuntime,
        axes: &[Axis],
        include: &[RawEntry],
    ) -> crate::runtime::Runtime {
        let mut build_keys: Vec<(String, Range<usize>)> = axes
            .iter()
            .map(|a| (a.name.to_string(), a.span.clone()))
            .collect();
        for e in include {
            for k in e.get_ref().keys() {
                if !build_keys.iter().any(|(b, _)| b == k.get_ref()) {
                    build_keys.push((k.get_ref().clone(), k.span()));
                }
            }
        }
        crate::runtime::parse(r, self.src, self.reg, &build_keys, &mut self.errs)
    }

    /// CMake cache variable / Meson option names: pasted into caches, native files and
    /// command lines, so a separator or space would change what they say.
    fn option_names(&mut self, what: &str, keys: &IndexMap<Spanned<String>, Scalar>) {
        for k in keys.keys() {
            let ok = k
                .get_ref()
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '+'));
            if !ok {
                self.err(
                    k.span(),
                    format!("invalid {what} option name {:?}", k.get_ref()),
                    "letters, digits, `_`, `-`, `.`, `:`, `+`, starting with a letter or `_`",
                );
            }
        }
    }

    /// Checks a `[test]` table (or a value's `test = {...}`): regexes compile (cfgmx matches
    /// Meson test names with them itself, and a broken one would select nothing silently),
    /// labels are plain names (they are joined into one ctest regex), counts are positive.
    fn test(&mut self, t: &Spanned<RawTest>) -> TestSettings {
        let t = t.get_ref();
        let mut regexes = |v: &Option<Vec<Spanned<String>>>, key: &str| {
            v.as_ref().map(|v| {
                for r in v {
                    if let Err(e) = regex::Regex::new(r.get_ref()) {
                        let first = e.to_string();
                        let why = first.lines().last().unwrap_or("").trim().to_string();
                        self.err(
                            r.span(),
                            format!("`{key}`: invalid regex {:?} ({why})", r.get_ref()),
                            "a regular expression over test names, such as \"^unit_\"",
                        );
                    }
                }
                unspan(v)
            })
        };
        let include = regexes(&t.include, "include");
        let exclude = regexes(&t.exclude, "exclude");
        let mut names = |v: &Option<Vec<Spanned<String>>>, key: &str| {
            v.as_ref().map(|v| {
                for l in v {
                    let ok = !l.get_ref().is_empty()
                        && l.get_ref()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
                    if !ok {
                        self.err(
                            l.span(),
                            format!("`{key}`: invalid label {:?}", l.get_ref()),
                            "a label or suite name of letters, digits, `_` and `-`",
                        );
                    }
                }
                unspan(v)
            })
        };
        let labels = names(&t.labels, "labels");
        let exclude_labels = names(&t.exclude_labels, "exclude_labels");
        let mut count = |v: &Option<Spanned<i64>>, key: &str, what: &str| {
            v.as_ref().and_then(|n| match u32::try_from(*n.get_ref()) {
                Ok(x) if x >= 1 => Some(x),
                _ => {
                    self.err(
                        n.span(),
                        format!("`{key}` is {}", n.get_ref()),
                        format!("{what}, at least 1"),
                    );
                    None
                }
            })
        };
        let timeout = count(&t.timeout, "timeout", "seconds per test");
        let repeat_until_fail = count(&t.repeat_until_fail, "repeat_until_fail", "a run count");
        let args = t.args.as_ref().map(|v| {
            for a in v {
                if !crate::names::flag_ok(a.get_ref()) {
                    self.err(
                        a.span(),
                        format!("invalid test argument {:?}", a.get_ref()),
                        "one non-empty argument, no space at either end",
                    );
                }
            }
            unspan(v)
        });
        TestSettings {
            include,
            exclude,
            labels,
            exclude_labels,
            timeout,
            repeat_until_fail,
            args,
        }
    }

    fn families(&self) -> String {
        self.reg
            .toolchains
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks a value of a role axis (`compiler`, `blas`, `build`, `int`, `openmp`).
    fn check_role_value(&mut self, key: &str, text: &str, span: Range<usize>) {
        match key {
            COMPILER => match CompilerSpec::parse(text) {
                Err(e) => self.err(
                    span,
                    format!("compiler {text:?}: {e}"),
                    "`family` or `family@range`",
                ),
                Ok(spec) if !self.reg.toolchains.contains_key(&spec.family) => {
                    let fam = self.families();
                    self.err(
                        span,
                        format!("unknown toolchain family `{}`", spec.family),
                        format!("one of: {fam}"),
                    )
                }
                Ok(_) => {}
            },
            BLAS if !BLAS_ABSTRACT.contains(&text) && self.reg.blas(text).is_none() => {
                let ids: Vec<String> = self.reg.blas_ids().collect();
                self.err(
                    span,
                    format!("unknown BLAS {text:?}"),
                    format!(
                        "\"sequential\", \"threaded\", \"none\" or one of: {}",
                        ids.join(", ")
                    ),
                );
            }
            BUILD if !build_modes().iter().any(|m| m.name == text) => {
                let modes: Vec<&str> = build_modes().iter().map(|m| m.name.as_str()).collect();
                self.err(
                    span,
                    format!("unknown build mode {text:?}"),
                    format!("one of: {}", modes.join(", ")),
                );
            }
            INT if !INT_VALUES.contains(&text) => self.err(
                span,
                format!("unknown integer width {text:?}"),
                "\"lp64\" (32-bit BLAS integers) or \"ilp64\" (64-bit)",
            ),
            OPENMP if !OPENMP_VALUES.contains(&text) => self.err(
                span,
                format!("unknown OpenMP choice {text:?}"),
                "\"on\" (the project compiles with OpenMP) or \"off\"",
            ),
            MPI if text != "none" => {
                let names = || {
                    let mut v: Vec<String> = vec!["none".into()];
                    v.extend(self.reg.mpi.keys().cloned());
                    v.join(", ")
                };
                match CompilerSpec::parse(text) {
                    Err(e) => self.err(
                        span,
                        format!("MPI {text:?}: {e}"),
                        "`implementation` or `implementation@range`, as in \"openmpi@4\"",
                    ),
                    Ok(spec) if !self.reg.mpi.contains_key(&spec.family) => {
                        let all = names();
                        self.err(
                            span,
                            format!("unknown MPI implementation `{}`", spec.family),
                            format!("one of: {all}"),
                        )
                    }
                    Ok(_) => {}
                }
            }
            _ => {}
        }
    }

    fn conds(
        &mut self,
        m: &IndexMap<Spanned<String>, OneOrMany>,
        known: &[String],
    ) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        let mut out = Vec::new();
        for (k, v) in m {
            let key = k.get_ref();
            if !known.iter().any(|x| x == key) {
                self.err(k.span(), format!("constraint names `{key}`, which is neither an axis nor an include variable"), format!("one of: {}", known.join(", ")));
                continue;
            }
            let span = v.span();
            let items: Vec<&toml::Value> = match v.get_ref() {
                toml::Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            let mut vals = Vec::new();
            for it in items {
                match it {
                    toml::Value::String(x) => vals.push(x.clone()),
                    toml::Value::Integer(i) => vals.push(i.to_string()),
                    toml::Value::Boolean(b) => vals.push(b.to_string()),
                    _ => self.err(
                        span.clone(),
                        format!("constraint value for `{key}` is not a scalar"),
                        "a string, integer, boolean, or a list of them",
                    ),
                }
            }
            let mut texts = Vec::new();
            for t in vals {
                self.check_role_value(key, &t, span.clone());
                texts.push(Arc::from(t));
            }
            out.push((Arc::from(key.as_str()), texts));
        }
        out
    }
}

fn valid_key(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '-')
}

fn unspan(v: &[Spanned<String>]) -> Vec<String> {
    v.iter().map(|s| s.get_ref().clone()).collect()
}

/// Known variables: axes and include-added keys.
fn known_variables(axes: &[Axis], include: &[Entry]) -> Vec<String> {
    let mut known: Vec<String> = axes.iter().map(|a| a.name.to_string()).collect();
    for e in include {
        for (k, _) in &e.pairs {
            if !known.iter().any(|x| **x == **k) {
                known.push(k.to_string());
            }
        }
    }
    known
}

fn valid_c_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
