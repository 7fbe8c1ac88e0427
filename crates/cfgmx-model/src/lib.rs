//! cfgmx's data model: what a build variant *is*, independent of any machine.
//!
//! It owns the toolchain descriptors ([`Toolchain`]), BLAS providers ([`Provider`]) and matrices
//! ([`Matrix`]) with located parsing errors ([`Diagnostic`]); the lazy expansion of a matrix into
//! combinations ([`Matrix::combos`]); the resolution of a combination through the descriptors
//! into a flag set ([`Variant`], [`Resolver`]); the spec hash ([`hash`]); the machine
//! [`Profile`] type the probe fills; and concretisation against it ([`concretize`]) into a
//! [`ConcreteVariant`] with its concrete hash.
//!
//! Never: spawns a process, reads the clock, the environment or the file system, or prints.
//! Everything here is a pure function of its inputs, so the same inputs give byte-identical
//! variants and hashes on every machine.

pub mod builtin;
pub mod concrete;
pub mod diag;
pub mod driver;
pub mod expand;
pub mod hash;
pub mod language;
pub mod matrix;
pub mod mpi;
pub mod names;
pub mod packages;
pub mod profile;
pub mod proof;
pub mod provider;
pub mod python;
pub mod registry;
pub mod resolve;
pub mod runtime;
mod scalar;
pub mod toolchain;
pub mod version;

pub use concrete::{concretize, ChosenCompiler, ConcreteMpi, ConcreteVariant, MpiWrapper};
pub use diag::{Diagnostic, Diagnostics, Source};
pub use driver::Driver;
pub use expand::{Combo, Combos};
pub use matrix::{BlasRequest, CompilerSpec, Matrix, TestSettings};
pub use mpi::MpiImpl;
pub use packages::Packages;
pub use profile::{
    BlasFailure, BlasLink, BlasRecord, CompilerRecord, FacetResult, IntWidth, ModuleSet, MpiRecord,
    ProbeStatus, Profile, Provided,
};
pub use proof::{LinkTest, Proof};
pub use provider::{BlasChoice, Build, Decoration, DefaultThreads, Provider, Threading};
pub use python::{PythonFailure, PythonImpl, PythonRecord};
pub use registry::Registry;
pub use resolve::{Axes, FlagSet, MpiSpec, Resolver, Variant};
pub use runtime::{Point, Runtime};
pub use toolchain::{Candidate, Language, Toolchain};
pub use version::{Version, VersionRange};

/// The OpenMP standard's thread-count variable: every OpenMP runtime reads it, whatever the
/// compiler family. The one place it is spelled (resolution, link tests, the probe's facet
/// tests and BLAS query, the build's test runs).
pub const OMP_NUM_THREADS: &str = "OMP_NUM_THREADS";

/// The name of the embedded default matrix.
pub const DEFAULT_MATRIX: &str = "hpc16";

/// Every variant of a matrix, resolved and checked for name clashes, with the short-hash
/// length that makes every hash unique in the set.
#[derive(Debug, Clone)]
pub struct VariantSet {
    pub variants: Vec<Variant>,
    pub short_len: usize,
}

/// Most combinations [`Matrix::variant_set`] holds in memory (the axes' product plus the
/// include entries, before exclude and constraints). Tables, JSON arrays, generated files and
/// builds of more variants are of no use to anyone, and holding 10^12 would never finish;
/// `cfgmx expand --jsonl` streams any number in constant memory.
pub const MAX_VARIANTS: u128 = 100_000;

pub use hash::{MIN_HASH_PREFIX, SHORT_HASH};

impl Matrix {
    /// Expands and resolves every variant. Fails with located diagnostics when a combination
    /// cannot resolve, two variants share a name, or the constraints leave nothing.
    pub fn variant_set(&self, reg: &Registry) -> Result<VariantSet, Diagnostics> {
        // An upper bound known before expanding: refuse at once rather than after an hour.
        let bound = self
            .product_size()
            .saturating_add(self.include.len() as u128);
        if bound > MAX_VARIANTS {
            return Err(Diagnostics::one(
                self.axes_diagnostic(format!(
                    "the axes give {} combinations, more than the {MAX_VARIANTS} cfgmx expands in memory",
                    self.product_size()
                ))
                .expected("fewer axis values, or stream them with `cfgmx expand --jsonl` (constant memory)"),
            )
            .with_source(&self.source));
        }
        let mut resolver = Resolver::new(self, reg);
        let mut combos = self.combos();
        let mut variants = Vec::new();
        let mut errs = Vec::new();
        for c in combos.by_ref() {
            match resolver.resolve_owned(c) {
                Ok(v) => variants.push(v),
                Err(d) => {
                    if !errs.contains(&d) {
                        errs.push(d)
                    }
                }
            }
        }
        let removed = combos.removed_by.clone();
        if variants.is_empty() && errs.is_empty() {
            errs = self.nothing_left(&removed);
        }
        let mut by_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, v) in variants.iter().enumerate() {
            if let Some(j) = by_name.insert(&v.name, i) {
                errs.push(
                    self.axes_diagnostic(format!("two variants are both named `{}` (variants {} and {})", v.name, j, i))
                        .expected("values that give distinct names; names join values with `-` and replace other characters with `_`"),
                );
            }
        }
        if !errs.is_empty() {
            return Err(Diagnostics {
                diagnostics: errs,
                sources: vec![self.source.clone()],
            });
        }
        let hashes: Vec<&str> = variants.iter().map(|v| v.hash.as_str()).collect();
        let short_len = hash::unique_prefix_len(&hashes, SHORT_HASH);
        Ok(VariantSet {
            variants,
            short_len,
        })
    }
}

impl Matrix {
    /// Why an expansion produced no variant, given how many combinations each constraint
    /// removed ([`Combos::removed_by`]): the constraints that did it, or the excludes.
    pub fn nothing_left(&self, removed_by: &[u64]) -> Vec<Diagnostic> {
        if !removed_by.iter().any(|n| *n > 0) {
            return vec![self
                .axes_diagnostic("the matrix expands to no variant (every combination is excluded)")
                .expected("at least one variant")];
        }
        removed_by
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                self.constraint_diagnostic(
                    i,
                    format!("this constraint removes {n} combination(s), and together the constraints remove every variant"),
                )
                .expected("constraints that leave at least one variant")
            })
            .collect()
    }
}

/// How a `HASH_OR_NAME` argument matched.
#[derive(Debug)]
pub enum Lookup<'a, T> {
    Found(&'a T),
    NotFound,
    Ambiguous(Vec<&'a T>),
}

/// Finds an item by exact name, else by hash prefix (full or short); a prefix shared by
/// several items is ambiguous.
pub fn lookup<'a, T>(
    items: &'a [T],
    key: &str,
    name: impl Fn(&T) -> &str,
    hashes: impl Fn(&T) -> Vec<&str>,
) -> Lookup<'a, T> {
    if let Some(v) = items.iter().find(|v| name(v) == key) {
        return Lookup::Found(v);
    }
    let key_l = key.to_ascii_lowercase();
    if key_l.len() < MIN_HASH_PREFIX || !key_l.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Lookup::NotFound;
    }
    let hits: Vec<&T> = items
        .iter()
        .filter(|v| hashes(v).iter().any(|h| h.starts_with(&key_l)))
        .collect();
    match hits.len() {
        0 => Lookup::NotFound,
        1 => Lookup::Found(hits[0]),
        _ => Lookup::Ambiguous(hits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_loads() {
        let r = Registry::builtin();
        assert!(r.toolchain("gcc").is_some());
        assert_eq!(
            r.blas("openblas-openmp").unwrap().build.threading,
            Threading::Openmp
        );
    }
}
