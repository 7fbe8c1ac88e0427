//! cfgmx's data model: what a build variant *is*, independent of any machine.
//!
//! It owns the toolchain descriptors ([`Toolchain`]), BLAS providers ([`Provider`]) and matrices
//! ([`Matrix`]) with located parsing errors ([`Diagnostic`]); the lazy expansion of a matrix into
//! combinations ([`Matrix::combos`]); the resolution of a combination through the descriptors
//! into a flag set ([`Variant`]); the spec hash; and, given a machine [`Profile`] that the probe
//! produced, the concretisation into a [`ConcreteVariant`] with its concrete hash.
//!
//! Never: spawns a process, reads the clock or the environment, or prints. Everything here is a
//! pure function of its inputs, so the same inputs give byte-identical variants and hashes.

pub mod diag;
pub mod provider;
pub mod registry;
pub mod toolchain;
pub mod version;

pub use diag::{Diagnostic, Diagnostics, Source};
pub use provider::{BlasChoice, Provider, Threading};
pub use registry::Registry;
pub use toolchain::{Candidate, Language, Toolchain};
pub use version::{Version, VersionRange};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_loads() {
        let r = Registry::builtin();
        assert!(r.toolchain("gcc").is_some());
        assert_eq!(r.blas("openblas-openmp").unwrap().build.threading, Threading::Openmp);
    }
}
