//! Runtime axes (`[runtime]` in a matrix): what a test run sees, not what is built.
//!
//! `threads = [1, 2, 4]` sets `OMP_NUM_THREADS` and the BLAS build's own thread variables
//! (`providers/*.toml` `thread_vars`); any other key is an environment variable with its
//! values (`OMP_PROC_BIND = ["close", "spread"]`). `[[runtime.include]]` and
//! `[[runtime.exclude]]` follow the build axes' GitHub semantics; an exclude may also name
//! build axes, so a point can be left out for some variants only. A variant is built once and
//! its tests run once per [`Point`]; nothing here enters a spec or concrete hash (a result is
//! keyed by the concrete hash plus the point).
//!
//! Parsing refuses, located: a runtime axis that is also a build axis, a variable cfgmx owns
//! (compilers, flags, `CMAKE_*`, the thread variables `threads` sets), a thread count of 0,
//! and, once the core budget is known ([`Runtime::check_cores`]), one above it.

use crate::diag::{Diagnostic, Diagnostics, Source};
use crate::names::valid_env_name;
use crate::registry::Registry;
use crate::scalar::Scalar;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use toml::Spanned;

/// The runtime axis that sets the thread count.
pub const THREADS: &str = "threads";

/// Variables cfgmx itself sets for a build or a test: a runtime axis may not vary them (the
/// test would run another build than the one configured). Prefixes end in `_`.
const OWNED: &[&str] = &[
    "CC",
    "CXX",
    "FC",
    "F77",
    "F90",
    "CPP",
    "CFLAGS",
    "CXXFLAGS",
    "FFLAGS",
    "FCFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "LIBS",
    "MAKEFLAGS",
    "MFLAGS",
    "LC_ALL",
    "PATH",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "PKG_CONFIG_PATH",
    "CMAKE_",
    "CTEST_",
    "MESON_",
    "NINJA_",
    "CFGMX_",
];

/// One `[runtime]` item: a scalar of an axis, or a table of an include/exclude entry.
#[derive(Debug)]
pub(crate) enum Item {
    Scalar(Scalar),
    Table(Vec<(Spanned<String>, Spanned<Scalar>)>),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, integer or boolean, or a table of them")
            }
            fn visit_str<E>(self, v: &str) -> Result<Item, E> {
                Ok(Item::Scalar(Scalar::Str(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Item, E> {
                Ok(Item::Scalar(Scalar::Str(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Item, E> {
                Ok(Item::Scalar(Scalar::Int(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Item, E> {
                i64::try_from(v)
                    .map(|i| Item::Scalar(Scalar::Int(i)))
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Item, E> {
                Ok(Item::Scalar(Scalar::Bool(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Item, E> {
                Ok(Item::Scalar(Scalar::Float(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Item, A::Error> {
                let mut pairs = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    pairs.push((k, m.next_value::<Spanned<Scalar>>()?));
                }
                Ok(Item::Table(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[runtime]` as written: key -> list (axis values, or include/exclude tables).
pub(crate) type RawRuntime = IndexMap<Spanned<String>, Spanned<Vec<Spanned<Item>>>>;

/// One runtime axis.
#[derive(Debug, Clone)]
pub struct RuntimeAxis {
    pub name: String,
    pub values: Vec<String>,
}

/// An include or exclude entry of `[runtime]`.
#[derive(Debug, Clone)]
pub struct RuntimeEntry {
    pub pairs: Vec<(String, String)>,
}

/// The parsed `[runtime]` table.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub axes: Vec<RuntimeAxis>,
    pub include: Vec<RuntimeEntry>,
    pub exclude: Vec<RuntimeEntry>,
    /// Every thread count written (axis values and include entries), with its place.
    threads: Vec<(u32, Range<usize>)>,
}

/// One runtime point: axis name -> value, axes in the order written, then include-added keys.
/// `threads` is the thread count; every other key is an environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Point(pub IndexMap<String, String>);

impl Point {
    /// The thread count the point asks for, if it has one.
    pub fn threads(&self) -> Option<u32> {
        self.0.get(THREADS).and_then(|t| t.parse().ok())
    }

    /// The environment variables of the point other than the thread count.
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(k, _)| *k != THREADS)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `threads=2 OMP_PROC_BIND=close`: how reports and messages name the point.
    pub fn label(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A short, file-name-safe key of the point (its values are anything a user wrote): the
    /// first 8 hex digits of the SHA-256 of its label.
    pub fn key(&self) -> String {
        crate::hash::sha256_hex(self.label().as_bytes())[..8].to_string()
    }
}

impl Runtime {
    pub fn is_empty(&self) -> bool {
        self.axes.is_empty() && self.include.is_empty()
    }

    /// The largest thread count any point may ask for (0 when none sets one): what a job that
    /// tests every point must hold (a Slurm task's `--cpus-per-task`).
    pub fn max_threads(&self) -> u32 {
        self.threads.iter().map(|(t, _)| *t).max().unwrap_or(0)
    }

    /// The points of a variant whose build axes `get` returns: the runtime axes' product
    /// (first axis slowest) less what an exclude matches (its runtime keys against the point,
    /// its build keys against the variant), then each include added to the points whose axis
    /// values it does not contradict, or as a point of its own when it fits none.
    pub fn points(&self, get: &dyn Fn(&str) -> Option<String>) -> Vec<Point> {
        let mut points: Vec<Point> = vec![Point::default()];
        for a in &self.axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    a.values.iter().map(move |v| {
                        let mut q = p.clone();
                        q.0.insert(a.name.clone(), v.clone());
                        q
                    })
                })
                .collect();
        }
        if self.axes.is_empty() {
            points.clear();
        }
        let is_axis = |k: &str| self.axes.iter().any(|a| a.name == k);
        points.retain(|p| {
            !self.exclude.iter().any(|e| {
                e.pairs.iter().all(|(k, v)| match p.0.get(k) {
                    Some(x) => x == v,
                    None => get(k).as_deref() == Some(v.as_str()),
                })
            })
        });
        let originals = points.len();
        for e in &self.include {
            let mut matched = false;
            for p in points.iter_mut().take(originals) {
                let fits = e
                    .pairs
                    .iter()
                    .all(|(k, v)| !is_axis(k) || p.0.get(k) == Some(v));
                if fits {
                    matched = true;
                    for (k, v) in &e.pairs {
                        if !is_axis(k) {
                            p.0.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            if !matched {
                points.push(Point(e.pairs.iter().cloned().collect()));
            }
        }
        points
    }

    /// Refuses a thread count above `cores` (the machine's, or what `-j` gives: `given` says
    /// which), pointing at each value: the tests of that point would wait for cores that never
    /// come, or run with fewer threads than they claim.
    pub fn check_cores(&self, src: &Source, cores: usize, given: &str) -> Result<(), Diagnostics> {
        let diagnostics: Vec<Diagnostic> = self
            .threads
            .iter()
            .filter(|(t, _)| *t as usize > cores)
            .map(|(t, span)| {
                Diagnostic::at(
                    src,
                    span.clone(),
                    format!("runtime `threads` value {t} needs {t} cores, but {given}"),
                )
                .expected(format!(
                    "a thread count of at most {cores} (lower it, or give more cores with -j)"
                ))
            })
            .collect();
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics {
                diagnostics,
                sources: vec![src.clone()],
            })
        }
    }
}

/// Why `name` may not be a runtime variable, if it may not.
fn owned(name: &str, reg: &Registry) -> Option<String> {
    if OWNED
        .iter()
        .any(|o| name == *o || (o.ends_with('_') && name.starts_with(o)))
    {
        return Some(format!(
            "`{name}` is set by cfgmx for the build (compilers, flags, build tools): a runtime axis cannot vary it"
        ));
    }
    // An MPI wrapper's compiler override (`mpi/*.toml`: OMPI_CC, MPICH_FC, ...) decides which
    // compiler the variant was built with.
    let mpi_override = reg.mpi.values().any(|m| {
        m.compiler.as_ref().is_some_and(|q| {
            [&q.env_c, &q.env_cxx, &q.env_fortran]
                .iter()
                .any(|v| v.iter().any(|x| x == name))
        })
    });
    if mpi_override {
        return Some(format!(
            "`{name}` chooses the compiler an MPI wrapper runs (mpi/ data): a runtime axis cannot vary it"
        ));
    }
    let thread_var = name == crate::OMP_NUM_THREADS
        || reg.providers.values().any(|p| {
            p.builds
                .iter()
                .any(|b| b.thread_vars.iter().any(|v| v == name))
        });
    thread_var.then(|| {
        format!("`{name}` is a thread-count variable: the `threads` runtime axis sets it (and the BLAS build's own)")
    })
}

/// Parses `[runtime]`. `build_keys` are the matrix's build axes and include-added keys (a
/// runtime axis may not reuse one; an exclude may name one); `errs` gets every problem.
pub(crate) fn parse(
    raw: RawRuntime,
    src: &Source,
    reg: &Registry,
    build_keys: &[(String, Range<usize>)],
    errs: &mut Vec<Diagnostic>,
) -> Runtime {
    let mut p = Parser {
        src,
        reg,
        build_keys,
        errs,
    };
    let mut rt = Runtime::default();
    let mut include_raw = Vec::new();
    let mut exclude_raw = Vec::new();
    for (k, items) in raw {
        let name = k.get_ref().clone();
        if name == "include" || name == "exclude" {
            for it in items.into_inner() {
                match it.into_inner() {
                    Item::Table(pairs) if name == "include" => include_raw.push((k.span(), pairs)),
                    Item::Table(pairs) => exclude_raw.push((k.span(), pairs)),
                    Item::Scalar(_) => p.err(
                        k.span(),
                        format!("`runtime.{name}` holds a value, not a table"),
                        "[[runtime.include]] / [[runtime.exclude]] tables of `key = value`",
                    ),
                }
            }
            continue;
        }
        p.check_name(&k);
        if let Some(axis) = p.axis(name, &items, &mut rt.threads) {
            rt.axes.push(axis);
        }
    }
    for (span, pairs) in include_raw {
        let entry = p.include(span, &pairs, &mut rt.threads);
        rt.include.push(entry);
    }
    for (span, pairs) in exclude_raw {
        let entry = p.exclude(span, &pairs, &rt.axes);
        rt.exclude.push(entry);
    }
    rt
}

/// A `[runtime]` table under way: the file, the registry and the matrix's build keys it is
/// checked against, and where its problems go.
struct Parser<'a> {
    src: &'a Source,
    reg: &'a Registry,
    build_keys: &'a [(String, Range<usize>)],
    errs: &'a mut Vec<Diagnostic>,
}

/// A runtime include or exclude entry as written.
type RawPairs = Vec<(Spanned<String>, Spanned<Scalar>)>;

impl Parser<'_> {
    fn err(&mut self, span: Range<usize>, msg: String, expected: &str) {
        self.errs
            .push(Diagnostic::at(self.src, span, msg).expected(expected));
    }

    fn build_axis(&self, k: &str) -> Option<&(String, Range<usize>)> {
        self.build_keys.iter().find(|(b, _)| b == k)
    }

    /// A variable name's problems, whether it names an axis or an include key.
    fn check_name(&mut self, k: &Spanned<String>) {
        let src = self.src;
        let name = k.get_ref();
        if let Some((_, at)) = self.build_axis(name) {
            let (l, c) = src.line_col(at.start);
            self.err(
                k.span(),
                format!(
                    "runtime axis `{name}` is also a build axis ({}:{l}:{c}): a value cannot be both built and varied at run time",
                    src.name
                ),
                "a name that is not a build axis",
            );
        } else if name != THREADS && !valid_env_name(name) {
            self.err(
                k.span(),
                format!("invalid runtime variable name {name:?}"),
                "`threads` or an environment variable name: letters, digits and `_`, not starting with a digit",
            );
        } else if let Some(why) = owned(name, self.reg) {
            self.err(
                k.span(),
                why,
                "a variable the test run reads, such as OMP_PROC_BIND or OMP_SCHEDULE",
            );
        }
    }

    /// A value's text, or its problem: a thread count is an integer of at least 1; a
    /// variable's value goes into the test's environment as it is, so no control character.
    fn value(
        &mut self,
        key: &str,
        v: &Spanned<Scalar>,
        threads: &mut Vec<(u32, Range<usize>)>,
    ) -> Option<String> {
        match (key, v.get_ref()) {
            (THREADS, Scalar::Int(n)) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                threads.push((*n as u32, v.span()));
                Some(n.to_string())
            }
            (THREADS, Scalar::Int(0)) => {
                self.err(
                    v.span(),
                    "runtime `threads` value is 0".into(),
                    "a thread count of at least 1",
                );
                None
            }
            (THREADS, other) => {
                self.err(
                    v.span(),
                    format!(
                        "runtime `threads` value {:?} is not a thread count",
                        other.text()
                    ),
                    "an integer of at least 1",
                );
                None
            }
            (_, Scalar::Float(_)) => {
                self.err(
                    v.span(),
                    format!("runtime `{key}`: a floating-point value"),
                    "a string, integer or boolean",
                );
                None
            }
            (_, s) if s.text().chars().any(char::is_control) => {
                self.err(
                    v.span(),
                    format!(
                        "runtime `{key}`: value {:?} holds a control character",
                        s.text()
                    ),
                    "a value of printable characters",
                );
                None
            }
            (_, s) => Some(s.text()),
        }
    }

    /// One runtime axis and its values, each once; `None` when it has none.
    fn axis(
        &mut self,
        name: String,
        items: &Spanned<Vec<Spanned<Item>>>,
        threads: &mut Vec<(u32, Range<usize>)>,
    ) -> Option<RuntimeAxis> {
        if items.get_ref().is_empty() {
            self.err(
                items.span(),
                format!("runtime axis `{name}` has no values"),
                "a non-empty list of values",
            );
            return None;
        }
        let mut values: Vec<String> = Vec::new();
        for it in items.get_ref() {
            let span = it.span();
            let Item::Scalar(s) = it.get_ref() else {
                self.err(
                    span,
                    format!("runtime axis `{name}` holds a table"),
                    "a list of strings, integers or booleans",
                );
                continue;
            };
            let s = Spanned::new(span.clone(), s.clone());
            let Some(text) = self.value(&name, &s, threads) else {
                continue;
            };
            if values.contains(&text) {
                self.err(
                    span,
                    format!("duplicate value {text:?} in runtime axis `{name}`"),
                    "each value once",
                );
                continue;
            }
            values.push(text);
        }
        Some(RuntimeAxis { name, values })
    }

    fn include(
        &mut self,
        span: Range<usize>,
        pairs: &RawPairs,
        threads: &mut Vec<(u32, Range<usize>)>,
    ) -> RuntimeEntry {
        if pairs.is_empty() {
            self.err(
                span,
                "empty runtime include entry".into(),
                "at least one `key = value`",
            );
        }
        let mut out = Vec::new();
        for (k, v) in pairs {
            self.check_name(k);
            if let Some(text) = self.value(k.get_ref(), v, threads) {
                out.push((k.get_ref().clone(), text));
            }
        }
        RuntimeEntry { pairs: out }
    }

    /// An exclude entry: its keys are runtime or build axes.
    fn exclude(
        &mut self,
        span: Range<usize>,
        pairs: &RawPairs,
        axes: &[RuntimeAxis],
    ) -> RuntimeEntry {
        if pairs.is_empty() {
            self.err(
                span,
                "empty runtime exclude entry (it would exclude every point)".into(),
                "at least one `key = value`",
            );
        }
        let mut out = Vec::new();
        for (k, v) in pairs {
            let key = k.get_ref();
            let known = axes.iter().any(|a| &a.name == key) || self.build_axis(key).is_some();
            if !known {
                let mut names: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
                names.extend(self.build_keys.iter().map(|(b, _)| b.as_str()));
                let expected = format!("one of: {}", names.join(", "));
                self.err(
                    k.span(),
                    format!("runtime exclude names `{key}`, which is neither a runtime nor a build axis"),
                    &expected,
                );
                continue;
            }
            out.push((key.clone(), v.get_ref().text()));
        }
        RuntimeEntry { pairs: out }
    }
}
