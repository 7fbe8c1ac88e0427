//! The set of toolchain descriptors and BLAS providers a run uses: the embedded defaults,
//! overridden or extended by user files (`--toolchains DIR`).

use crate::diag::{Diagnostic, Diagnostics, Source};
use crate::mpi::MpiImpl;
use crate::provider::{BlasChoice, Provider};
use crate::toolchain::Toolchain;
use indexmap::IndexMap;
use std::sync::Arc;

pub use crate::builtin::{
    builtin_matrix, builtin_matrix_files, builtin_mpi_files, builtin_provider_files,
    builtin_toolchain_defaults, builtin_toolchain_files,
};
pub use crate::toolchain::openmp_runtimes;

/// Where a file's `name` is, for a message about a second file of the same name. Only the
/// `name` key is read: the file already parsed once.
fn name_at(src: &Source, message: String, expected: &str) -> Diagnostic {
    #[derive(serde::Deserialize)]
    struct Named {
        name: toml::Spanned<String>,
    }
    match crate::diag::parse_toml::<Named>(src) {
        Ok(n) => Diagnostic::at(src, n.name.span(), message),
        Err(_) => Diagnostic::file(&src.name, message),
    }
    .expected(expected)
}

/// Descriptors and providers by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub toolchains: IndexMap<String, Arc<Toolchain>>,
    pub providers: IndexMap<String, Arc<Provider>>,
    /// MPI implementations by name.
    pub mpi: IndexMap<String, Arc<MpiImpl>>,
}

impl Registry {
    /// The embedded descriptors and providers.
    pub fn builtin() -> Registry {
        let mut r = Registry::default();
        let srcs: Vec<Source> = builtin_toolchain_files()
            .iter()
            .map(|(f, t)| Source::new(format!("builtin:toolchains/{f}"), *t))
            .collect();
        r.add_toolchains(&srcs)
            .expect("embedded toolchain descriptors are valid");
        let srcs: Vec<Source> = builtin_provider_files()
            .iter()
            .map(|(f, t)| Source::new(format!("builtin:providers/{f}"), *t))
            .collect();
        r.add_providers(&srcs)
            .expect("embedded providers are valid");
        let srcs: Vec<Source> = builtin_mpi_files()
            .iter()
            .map(|(f, t)| Source::new(format!("builtin:mpi/{f}"), *t))
            .collect();
        r.add_mpi(&srcs)
            .expect("embedded MPI implementations are valid");
        r
    }

    /// Adds or replaces descriptors (a user's file named like a builtin family replaces it).
    /// Every file is checked; all problems are returned together.
    pub fn add_toolchains(&mut self, srcs: &[Source]) -> Result<(), Diagnostics> {
        let mut errs: Option<Diagnostics> = None;
        let mut seen: IndexMap<String, String> = IndexMap::new();
        for src in srcs {
            match Toolchain::parse(src) {
                Ok(t) => {
                    if let Some(prev) = seen.get(&t.name) {
                        let d = name_at(
                            src,
                            format!("toolchain `{}` is also defined in {prev}", t.name),
                            "one file per family",
                        );
                        push(&mut errs, Diagnostics::one(d).with_source(src));
                        continue;
                    }
                    seen.insert(t.name.clone(), src.name.clone());
                    self.toolchains.insert(t.name.clone(), Arc::new(t));
                }
                Err(d) => push(&mut errs, d),
            }
        }
        errs.map_or(Ok(()), Err)
    }

    pub fn add_providers(&mut self, srcs: &[Source]) -> Result<(), Diagnostics> {
        let mut errs: Option<Diagnostics> = None;
        let mut seen: IndexMap<String, String> = IndexMap::new();
        for src in srcs {
            match Provider::parse(src) {
                Ok(p) => {
                    // Two files of one directory naming one provider: which one wins would
                    // depend on file order, so neither is taken.
                    if let Some(prev) = seen.get(&p.name) {
                        let d = name_at(
                            src,
                            format!("provider `{}` is also defined in {prev}", p.name),
                            "one file per provider",
                        );
                        push(&mut errs, Diagnostics::one(d).with_source(src));
                        continue;
                    }
                    seen.insert(p.name.clone(), src.name.clone());
                    self.providers.insert(p.name.clone(), Arc::new(p));
                }
                Err(d) => push(&mut errs, d),
            }
        }
        errs.map_or(Ok(()), Err)
    }

    /// Adds or replaces MPI implementations (a user's file named like a builtin one replaces
    /// it). Every file is checked; all problems are returned together.
    pub fn add_mpi(&mut self, srcs: &[Source]) -> Result<(), Diagnostics> {
        let mut errs: Option<Diagnostics> = None;
        let mut seen: IndexMap<String, String> = IndexMap::new();
        for src in srcs {
            match MpiImpl::parse(src) {
                Ok(m) => {
                    if let Some(prev) = seen.get(&m.name) {
                        let d = Diagnostic::file(
                            &src.name,
                            format!("MPI implementation `{}` is also defined in {prev}", m.name),
                        )
                        .expected("one file per implementation");
                        push(&mut errs, Diagnostics::one(d));
                        continue;
                    }
                    seen.insert(m.name.clone(), src.name.clone());
                    self.mpi.insert(m.name.clone(), Arc::new(m));
                }
                Err(d) => push(&mut errs, d),
            }
        }
        errs.map_or(Ok(()), Err)
    }

    pub fn toolchain(&self, name: &str) -> Option<&Arc<Toolchain>> {
        self.toolchains.get(name)
    }

    /// Every concrete BLAS id (`openblas-openmp`, ...), in registry order.
    pub fn blas_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.providers.values().flat_map(|p| {
            p.builds
                .iter()
                .map(move |b| crate::provider::blas_id(&p.name, &b.name))
        })
    }

    /// Looks up a concrete BLAS id: `<provider>-<build>`, or a provider with one build by name.
    pub fn blas(&self, id: &str) -> Option<BlasChoice> {
        for p in self.providers.values() {
            let choice = |b: &crate::provider::Build| BlasChoice {
                id: crate::provider::blas_id(&p.name, &b.name),
                provider: p.name.clone(),
                build: b.clone(),
                pkgconfig: p.pkgconfig.clone(),
            };
            if id == p.name && p.builds.len() == 1 {
                return Some(choice(&p.builds[0]));
            }
            if let Some(rest) = id
                .strip_prefix(p.name.as_str())
                .and_then(|r| r.strip_prefix('-'))
            {
                if let Some(b) = p.build(rest) {
                    return Some(choice(b));
                }
            }
        }
        None
    }
}

fn push(acc: &mut Option<Diagnostics>, d: Diagnostics) {
    match acc {
        Some(a) => a.extend(d),
        None => *acc = Some(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builtin files skip the checks that need the builtin data itself (runtimes) or cost
    /// start-up time (patterns, libraries); read as a user's copy, each must pass them all, so
    /// a user can copy any builtin file and edit it.
    #[test]
    fn every_builtin_file_passes_the_checks_a_users_file_gets() {
        for (f, t) in builtin_toolchain_files() {
            if let Err(e) = Toolchain::parse(&Source::new(format!("user/{f}"), *t)) {
                panic!("toolchains/{f} as a user's file: {e}");
            }
        }
        for (f, t) in builtin_provider_files() {
            if let Err(e) = Provider::parse(&Source::new(format!("user/{f}"), *t)) {
                panic!("providers/{f} as a user's file: {e}");
            }
        }
        for (f, t) in builtin_mpi_files() {
            if let Err(e) = MpiImpl::parse(&Source::new(format!("user/{f}"), *t)) {
                panic!("mpi/{f} as a user's file: {e}");
            }
        }
    }

    /// The runtime set is the builtin descriptors' own: each runtime once, and the ones the
    /// builtin providers link among them.
    #[test]
    fn openmp_runtimes_come_from_the_builtin_descriptors() {
        let rts = openmp_runtimes();
        for want in [
            "gomp", "omp", "iomp5", "xlsmp", "craymp", "fjomp", "pgmp", "acchost", "vcomp",
        ] {
            assert!(rts.iter().any(|r| r == want), "{want} missing from {rts:?}");
        }
        let mut sorted = rts.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), rts.len(), "{rts:?}");
    }

    #[test]
    fn two_user_providers_of_one_name_are_refused_naming_both_files() {
        let text = "name = \"myblas\"\n[[builds]]\nname = \"s\"\nthreading = \"sequential\"\nlibs = [\"myblas\"]\n";
        let mut reg = Registry::builtin();
        let err = reg
            .add_providers(&[Source::new("d/a.toml", text), Source::new("d/b.toml", text)])
            .unwrap_err();
        let d = &err.diagnostics[0];
        assert_eq!(
            (d.file.as_str(), d.line, d.column),
            ("d/b.toml", Some(1), Some(8))
        );
        assert!(
            d.message.contains("also defined in d/a.toml"),
            "{}",
            d.message
        );
    }
}
