//! `cfgmx init`: a matrix for the machine in front of the user. The probe says which compiler
//! families and versions and which BLAS builds exist; every variant of the candidate matrix is
//! then proven here (its link test), and what cannot be built is left out with the reason in a
//! comment, so the written file's variants are the ones `cfgmx build` can run. The file is
//! commented so it can be edited.

use crate::cli::{Global, InitArgs};
use crate::error::{CliError, Exit, Result};
use crate::load::Session;
use crate::probing::{self, Progress};
use cfgmx_model::{Language, Matrix, ProbeStatus, Profile, Registry, Source, Threading};
use std::collections::BTreeMap;
use std::path::Path;

/// A compiler axis value and what the probe found for it.
struct CompilerValue {
    /// `gcc`, or `gcc@12` when the family has several major versions here.
    value: String,
    family: String,
    /// `12.2.0 (/usr/bin/gcc)` per compiler found, for the comment.
    found: Vec<String>,
    /// Languages its own compilers cover.
    languages: Vec<Language>,
}

pub fn run(g: &Global, a: InitArgs) -> Result<Exit> {
    // Refused before anything is probed or written.
    if std::fs::symlink_metadata(&a.file).is_ok() && !a.force {
        return Err(CliError::usage(format!(
            "{} exists; `cfgmx init --force` overwrites it, or give another file name",
            a.file.display()
        )));
    }
    let session = Session::load(g)?;
    let reg = &session.registry;
    let opts = probing::default_options(&session, g, None)?;
    let progress = match g.json {
        true => Progress::Quiet,
        false => Progress::BarOrLine("cfgmx init"),
    };
    let profile = probing::probe_with_progress(reg, &opts, progress);
    let languages = languages(&a.source, &profile);
    let compilers = compiler_values(&profile, &languages);
    if compilers.is_empty() {
        return Err(CliError::runtime(format!(
            "the probe found no working compiler for {} here (`cfgmx probe` lists what it found)",
            names(&languages)
        )));
    }
    let mut draft = Draft {
        name: "local",
        languages,
        compilers,
        blas: blas_values(&profile),
        dropped: Vec::new(),
        excludes: Vec::new(),
        modules: g.modules,
    };
    // First every candidate, proven; then the file without what cannot be built.
    let candidate = parse(&draft.text(), &a.file, reg)?;
    let set = candidate.variant_set(reg)?;
    let cs = crate::proven::concretize_all(&set.variants, &candidate, reg, &profile, Some(&opts));
    draft.leave_out_unbuildable(&cs)?;
    let text = draft.text();
    // The file must read back as the matrix it describes (a failure here is a bug in init).
    let m = parse(&text, &a.file, reg)?;
    let n = m.variant_set(reg)?.variants.len();
    cfgmx_fs::write_atomic(&a.file, text.as_bytes())
        .map_err(|e| CliError::caused(format!("cannot write {}", a.file.display()), e))?;
    report(g, &a.file, n, &draft);
    Ok(Exit::Ok)
}

fn axis(v: &cfgmx_model::Variant, k: &str) -> String {
    v.axes.get(k).map(|s| s.to_string()).unwrap_or_default()
}

/// The matrix `init` writes, as it is drafted: the candidate first, then without what cannot
/// be built here.
struct Draft {
    name: &'static str,
    languages: Vec<Language>,
    compilers: Vec<CompilerValue>,
    /// `sequential`/`threaded`, each with the builds behind it.
    blas: Vec<(&'static str, Vec<String>)>,
    /// Compiler values left out whole: `value: why`.
    dropped: Vec<String>,
    /// Variants excluded: `name: why` and their compiler, blas and build values.
    excludes: Vec<(String, [String; 3])>,
    /// `[probe] modules = true`: the probe asked the module system.
    modules: bool,
}

impl Draft {
    /// Leaves out, by the proven candidates `cs`, a compiler value none of whose variants can
    /// be built (whole, with one reason) and every other variant that cannot (an exclude).
    fn leave_out_unbuildable(&mut self, cs: &[cfgmx_model::ConcreteVariant]) -> Result<()> {
        let mut dropped = Vec::new();
        self.compilers.retain(|c| {
            let mine: Vec<_> = cs
                .iter()
                .filter(|cv| axis(&cv.variant, "compiler") == c.value)
                .collect();
            if mine.iter().any(|cv| cv.available) {
                return true;
            }
            let why = mine
                .first()
                .map(|cv| cv.reasons.join("; "))
                .unwrap_or_default();
            dropped.push(format!("{}: {}", c.value, one_line(&why)));
            false
        });
        if self.compilers.is_empty() {
            return Err(CliError::runtime(format!(
                "no variant can be built here: {}",
                dropped.join("; ")
            )));
        }
        let kept = self.kept();
        self.excludes = cs
            .iter()
            .filter(|cv| !cv.available && kept.contains(&axis(&cv.variant, "compiler").as_str()))
            .map(|cv| {
                let v = &cv.variant;
                (
                    format!("{}: {}", v.name, one_line(&cv.reasons.join("; "))),
                    [axis(v, "compiler"), axis(v, "blas"), axis(v, "build")],
                )
            })
            .collect();
        self.dropped = dropped;
        Ok(())
    }

    /// The compiler values kept.
    fn kept(&self) -> Vec<&str> {
        self.compilers.iter().map(|c| c.value.as_str()).collect()
    }
}

/// Says what was written: the file, its variants, what was left out, what to run next.
fn report(g: &Global, file: &Path, n: usize, d: &Draft) {
    let kept = d.kept();
    let blas = &d.blas;
    if g.json {
        println!(
            "{}",
            serde_json::json!({
                "matrix": file,
                "variants": n,
                "compilers": kept,
                "blas": blas.iter().map(|b| b.0).collect::<Vec<_>>(),
                "excluded": d.excludes.len(),
                "left_out": d.dropped,
            })
        );
        return;
    }
    println!(
        "wrote {}: {n} variant(s) ({} x {} x debug/release{})",
        file.display(),
        kept.join(", "),
        if blas.is_empty() {
            "no BLAS".to_string()
        } else {
            blas.iter().map(|b| b.0).collect::<Vec<_>>().join("/")
        },
        if d.excludes.is_empty() {
            String::new()
        } else {
            format!(", {} excluded as unbuildable here", d.excludes.len())
        }
    );
    for x in &d.dropped {
        println!("  left out {x}");
    }
    println!(
        "next: cfgmx expand {0} --probe   # what each variant resolves to\n      cfgmx build {0}             # configure, build and test them all",
        file.display()
    );
}

fn parse(text: &str, file: &Path, reg: &Registry) -> Result<Matrix> {
    let src = Source::new(file.display().to_string(), text.to_string());
    Ok(Matrix::parse(&src, reg)?)
}

/// The first line of a reason, short enough for a comment.
fn one_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or_default();
    let l: String = l.chars().filter(|c| !c.is_control()).collect();
    if l.chars().count() > 160 {
        format!("{}...", l.chars().take(157).collect::<String>())
    } else {
        l
    }
}

fn names(langs: &[Language]) -> String {
    langs
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The project's languages when `source` has a build system cfgmx reads, else every language
/// some working compiler here provides.
fn languages(source: &Path, profile: &Profile) -> Vec<Language> {
    if let Some(system) = cfgmx_build::runner::System::detect(source) {
        if let Ok(Some(l)) = cfgmx_build::project::languages(system, source) {
            if !l.languages.is_empty() {
                return l.languages.into_iter().collect();
            }
        }
    }
    Language::ALL
        .into_iter()
        .filter(|l| {
            profile
                .compilers
                .iter()
                .any(|c| usable(c) && c.languages.contains(l))
        })
        .collect()
}

/// A compiler of its own (not an MPI wrapper, which a matrix reaches through `mpi`) that works.
fn usable(c: &cfgmx_model::CompilerRecord) -> bool {
    c.status == ProbeStatus::Ok && c.wrapper.is_none()
}

fn major(version: &str) -> String {
    version.split('.').next().unwrap_or(version).to_string()
}

/// One value per family that compiles the project's C or C++ (or its only language), one per
/// major version when the family has several here.
fn compiler_values(profile: &Profile, langs: &[Language]) -> Vec<CompilerValue> {
    // The language a compiler value is chosen by: C, else C++, else Fortran.
    let lead = langs.first().copied().unwrap_or(Language::C);
    let mut by_family: BTreeMap<String, BTreeMap<String, Vec<&cfgmx_model::CompilerRecord>>> =
        BTreeMap::new();
    for c in profile.compilers.iter().filter(|c| usable(c)) {
        by_family
            .entry(c.family.clone())
            .or_default()
            .entry(major(&c.version))
            .or_default()
            .push(c);
    }
    let mut out = Vec::new();
    for (family, majors) in by_family {
        let several = majors.len() > 1;
        // Numeric order of majors (`9` before `13`).
        let mut majors: Vec<_> = majors.into_iter().collect();
        majors.sort_by_key(|(m, _)| m.parse::<u64>().unwrap_or(u64::MAX));
        for (maj, recs) in majors {
            if !recs.iter().any(|c| c.languages.contains(&lead)) {
                continue;
            }
            let mut languages: Vec<Language> =
                recs.iter().flat_map(|c| c.languages.clone()).collect();
            languages.sort();
            languages.dedup();
            // `12.2.0: /usr/bin/gcc /usr/bin/g++ ...`, one entry per version.
            let mut found: Vec<String> = Vec::new();
            let mut versions: Vec<&str> = recs.iter().map(|c| c.version.as_str()).collect();
            versions.sort();
            versions.dedup();
            for ver in versions {
                let paths: Vec<&str> = recs
                    .iter()
                    .filter(|c| c.version == ver)
                    .map(|c| c.path.as_str())
                    .collect();
                found.push(format!("{ver} ({})", paths.join(" ")));
            }
            out.push(CompilerValue {
                value: if several {
                    format!("{family}@{maj}")
                } else {
                    family.clone()
                },
                family: family.clone(),
                found,
                languages,
            });
        }
    }
    out
}

/// `sequential` and `threaded` where the probe found such BLAS builds, each with the builds
/// behind it for the comment.
fn blas_values(profile: &Profile) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    for (value, seq) in [("sequential", true), ("threaded", false)] {
        let mut builds: Vec<String> = profile
            .blas
            .iter()
            .filter(|b| (b.threading == Threading::Sequential) == seq)
            .map(|b| b.id())
            .collect();
        builds.sort();
        builds.dedup();
        if !builds.is_empty() {
            out.push((value, builds));
        }
    }
    out
}

/// A TOML string (the values here are family names, versions and paths).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl Draft {
    /// The matrix file's text, commented.
    fn text(&self) -> String {
        let Draft {
            name,
            languages: langs,
            compilers,
            blas,
            dropped,
            excludes,
            modules,
        } = self;
        let list = |v: &[&str]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let mut s = String::new();
        s.push_str(
            "# Written by `cfgmx init` for this machine from its probe: the compiler families and\n\
             # versions, and the BLAS builds, found here; variants this machine cannot build are left\n\
             # out with the reason. Edit freely: `cfgmx expand THIS --probe` shows what each variant\n\
             # resolves to, `cfgmx build THIS` configures, builds and tests them all.\n",
        );
        s.push_str(&format!("name = {}\n", q(name)));
        s.push_str(&format!(
            "description = {}\n",
            q("the compilers and BLAS builds of this machine x debug/release (cfgmx init)")
        ));
        s.push_str("# The languages every variant needs a compiler for (the project's own, when init ran\n# beside its CMakeLists.txt or meson.build).\n");
        s.push_str(&format!(
            "languages = [{}]\n",
            list(&langs.iter().map(|l| l.as_str()).collect::<Vec<_>>())
        ));
        s.push_str(
            "\n[axes]\n# Compilers found (family@major where one family has several versions):\n",
        );
        for c in compilers {
            s.push_str(&format!("#   {}: {}\n", c.value, c.found.join(", ")));
        }
        for d in dropped {
            s.push_str(&format!("#   left out, cannot be built here: {d}\n"));
        }
        s.push_str(&format!(
            "compiler = [{}]\n",
            list(
                &compilers
                    .iter()
                    .map(|c| c.value.as_str())
                    .collect::<Vec<_>>()
            )
        ));
        if blas.is_empty() {
            s.push_str("# No BLAS library was found, so there is no blas axis.\n");
        } else {
            s.push_str("# BLAS builds found: `sequential` and `threaded` pick among them by the provider order:\n");
            for (v, builds) in blas {
                s.push_str(&format!("#   {v}: {}\n", builds.join(", ")));
            }
            s.push_str(&format!(
                "blas = [{}]\n",
                list(&blas.iter().map(|b| b.0).collect::<Vec<_>>())
            ));
        }
        s.push_str("build = [\"debug\", \"release\"]\n");
        // A family without a Fortran compiler of its own takes gcc's (gfortran), as the embedded
        // matrices do for clang.
        let needs_fortran = langs.contains(&Language::Fortran);
        let gfortran = compilers
            .iter()
            .any(|c| c.family == "gcc" && c.languages.contains(&Language::Fortran));
        for c in compilers {
            if needs_fortran && gfortran && !c.languages.contains(&Language::Fortran) {
                s.push_str(&format!(
                    "\n# {} has no Fortran compiler here: its Fortran comes from gcc.\n[values.compiler.{}]\nfortran = \"gcc\"\n",
                    c.value,
                    q(&c.value)
                ));
            }
        }
        if *modules {
            s.push_str(
                "\n# The probe asked the module system too (`cfgmx init --modules`): so does every probe\n\
                 # for this matrix, and variants load the modules their toolchains come from.\n\
                 [probe]\nmodules = true\n",
            );
        }
        if !excludes.is_empty() {
            s.push_str("\n# Variants this machine cannot build, and why:\n");
        }
        for (why, [c, b, m]) in excludes {
            s.push_str(&format!("# {why}\n[[exclude]]\ncompiler = {}\n", q(c)));
            if !b.is_empty() {
                s.push_str(&format!("blas = {}\n", q(b)));
            }
            s.push_str(&format!("build = {}\n", q(m)));
        }
        s
    }
}
