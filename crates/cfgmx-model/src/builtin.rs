//! The data files built into cfgmx (`toolchains/`, `providers/`, `mpi/`, `matrices/`, filled
//! in by `build.rs`): a leaf, so that the descriptors' parsers and the registry can both read
//! it without importing each other. `registry` re-exports it.

use crate::diag::Source;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The embedded `toolchains/*.toml` files as (file name, text).
pub fn builtin_toolchain_files() -> &'static [(&'static str, &'static str)] {
    embedded::TOOLCHAINS
}

/// The embedded `toolchains/base/defaults.toml`: what every descriptor starts from.
pub fn builtin_toolchain_defaults() -> &'static str {
    embedded::TOOLCHAIN_DEFAULTS
}

/// The embedded `providers/*.toml` files.
pub fn builtin_provider_files() -> &'static [(&'static str, &'static str)] {
    embedded::PROVIDERS
}

/// The embedded `mpi/*.toml` files (one per MPI implementation).
pub fn builtin_mpi_files() -> &'static [(&'static str, &'static str)] {
    embedded::MPI
}

/// The embedded `matrices/*.toml` files (`hpc16.toml` is the default matrix).
pub fn builtin_matrix_files() -> &'static [(&'static str, &'static str)] {
    embedded::MATRICES
}

/// The embedded matrix called `name` (file `name.toml`).
pub fn builtin_matrix(name: &str) -> Option<Source> {
    builtin_matrix_files()
        .iter()
        .find(|(f, _)| f.strip_suffix(".toml") == Some(name))
        .map(|(f, t)| Source::new(format!("builtin:matrices/{f}"), *t))
}
