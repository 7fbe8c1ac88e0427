//! A matrix's variants as build jobs on this machine: concretised and proven against the
//! profile, each with the build-system files cfgmx-render renders for it. Shared by `build`
//! and `expand --lock`, which write the same jobs to `cfgmx.lock`.

use crate::error::Result;
use crate::load::Session;
use cfgmx_build::job::Job;
use cfgmx_build::python::Backend;
use cfgmx_build::report::{Status, VariantResult};
use cfgmx_build::runner::System;
use cfgmx_model::{ConcreteVariant, Matrix, Profile, Variant};
use cfgmx_probe::ProbeOptions;
use cfgmx_render::Format;
use std::path::Path;

/// The project a build configures: its build system, top directory and, for a Python
/// project, the wheel backend over that build system.
#[derive(Debug, Clone, Copy)]
pub struct Project<'a> {
    pub system: System,
    pub dir: &'a Path,
    pub python: Option<Backend>,
}

/// A matrix's variants on this machine.
pub struct Jobs {
    pub matrix: String,
    /// The thread count threaded variants test with (the matrix's `threads`).
    pub threads: u32,
    /// The available ones.
    pub jobs: Vec<Job>,
    /// The others, as report rows with status `unavailable` and why.
    pub unavailable: Vec<VariantResult>,
}

/// The matrix's available variants as jobs, plus the names and reasons of the others. With
/// a `project`, a matrix that sets no `languages` takes them from the project's build files.
/// `prove` are the options of this machine's link tests: the build runs here, so every
/// variant is proven here, whatever profile it came from.
pub fn jobs(
    s: &Session,
    mut m: Matrix,
    profile: &Profile,
    prove: &ProbeOptions,
    project: Option<Project>,
) -> Result<Jobs> {
    let reg = &s.registry;
    if let Some(p) = project.filter(|_| !m.languages_declared) {
        if let Some(langs) = project_languages(p.system, p.dir) {
            m.languages = langs;
        }
    }
    let set = m.variant_set(reg)?;
    let concrete = crate::proven::concretize_all(&set.variants, &m, reg, profile, Some(prove));
    let mut jobs = Vec::new();
    let mut unavailable = Vec::new();
    let mut chosen: Vec<(&Variant, ConcreteVariant)> = Vec::new();
    for (v, cv) in set.variants.iter().zip(concrete) {
        match Job::from_concrete(&cv, reg) {
            Some(j) if cv.available => {
                jobs.push(j);
                chosen.push((v, cv));
            }
            _ => {
                let axis = |k: &str| v.axes.get(k).map(|s| s.to_string()).unwrap_or_default();
                unavailable.push(VariantResult::not_built(
                    &v.name,
                    &v.hash,
                    [&axis("compiler"), &axis("blas"), &axis("build")],
                    Status::Unavailable,
                    &cv.reasons.join("; "),
                ))
            }
        }
    }
    // The build-system files come from the same renderer as `cfgmx generate`, so a build and
    // a generated config can never disagree.
    let ctx = cfgmx_render::Context::new(
        &m,
        chosen.iter().map(|(v, c)| (*v, Some(c))),
        set.short_len,
        Some(profile),
    );
    let cannot = render_files(&mut jobs, &ctx, project);
    // A variant whose build-system file cannot be written cannot be built: unavailable.
    for (i, why) in cannot.into_iter().rev() {
        let j = jobs.remove(i);
        unavailable.push(VariantResult::not_built(
            &j.name,
            &j.hash,
            [&j.compiler, &j.blas, &j.build],
            Status::Unavailable,
            &why,
        ));
    }
    for j in &mut jobs {
        j.threads = m.threads;
        let axes = j.axes.clone();
        j.runtime = m.runtime.points(&|k| axes.get(k).cloned());
    }
    Ok(Jobs {
        matrix: m.name.clone(),
        threads: m.threads,
        jobs,
        unavailable,
    })
}

/// The files of the project's build system only (a value Meson cannot hold must not stop
/// a CMake build); for the lock (no project) every one that can be written.
fn formats(project: Option<Project>) -> &'static [Format] {
    match project.map(|p| (p.python, p.system)) {
        // A wheel's settings script, and the files of the build system under it (what
        // `cfgmx reproduce` configures).
        Some((Some(Backend::ScikitBuildCore), _)) => &[
            Format::ScikitBuildCore,
            Format::CmakeToolchain,
            Format::CmakeCache,
        ],
        Some((Some(Backend::MesonPython), _)) => &[Format::MesonPython, Format::MesonNative],
        Some((None, System::Cmake)) => &[Format::CmakeToolchain, Format::CmakeCache],
        Some((None, System::Meson)) => &[Format::MesonNative],
        None => &[
            Format::CmakeToolchain,
            Format::CmakeCache,
            Format::MesonNative,
        ],
    }
}

/// Renders each job's env script and build-system files into it; returns the jobs (by index)
/// whose build-system file cannot be written for the project, with why.
fn render_files(
    jobs: &mut [Job],
    ctx: &cfgmx_render::Context,
    project: Option<Project>,
) -> Vec<(usize, String)> {
    let renderer = cfgmx_render::Renderer::new();
    let mut cannot = Vec::new();
    for (i, j) in jobs.iter_mut().enumerate() {
        // `cfgmx env HASH` prints this, from the lock: the same writer as `generate -f env`.
        match renderer.render_variant(Format::Env, ctx, i) {
            Ok(r) => {
                j.files.insert(Format::Env.as_str().to_string(), r.content);
            }
            Err(e) => eprintln!("note: {}: no env script in the lock: {e}", j.name),
        }
        for &f in formats(project) {
            match renderer.render_variant(f, ctx, i) {
                Ok(r) => {
                    j.files.insert(f.as_str().to_string(), r.content);
                }
                Err(e) if project.is_some() => {
                    cannot.push((i, format!("cannot write its {f} file: {e}")));
                    break;
                }
                Err(e) => eprintln!("note: {}: no {f} file in the lock: {e}", j.name),
            }
        }
    }
    cannot
}

/// The languages the project's build files enable, said on stderr; `None` (every language,
/// as before) when they cannot be read or name none cfgmx provides compilers for.
fn project_languages(system: System, dir: &Path) -> Option<Vec<cfgmx_model::Language>> {
    let file = match system {
        System::Cmake => "CMakeLists.txt",
        System::Meson => "meson.build",
    };
    match cfgmx_build::project::languages(system, dir) {
        Ok(Some(l)) => {
            let names: Vec<&str> = l.languages.iter().map(|l| l.as_str()).collect();
            if !l.others.is_empty() {
                let others: Vec<&str> = l.others.iter().map(String::as_str).collect();
                eprintln!(
                    "note: the project also enables {}: cfgmx sets no compiler for them",
                    others.join(", ")
                );
            }
            if names.is_empty() {
                eprintln!("note: the matrix sets no `languages` and {file} enables none cfgmx drives: every variant needs C, C++ and Fortran compilers");
                return None;
            }
            eprintln!(
                "note: the matrix sets no `languages`: {} from the project's {file}",
                names.join(", ")
            );
            Some(l.languages.into_iter().collect())
        }
        Ok(None) => {
            eprintln!("note: the matrix sets no `languages` and {file} names its languages through variables: every variant needs C, C++ and Fortran compilers (set `languages` in the matrix)");
            None
        }
        Err(e) => {
            eprintln!("warning: cannot read the project's languages ({e}): every variant needs C, C++ and Fortran compilers");
            None
        }
    }
}
