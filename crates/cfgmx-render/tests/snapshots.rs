//! What users read, pinned: each format rendered for the first variant(s) of the gcc-clang
//! fixture matrix (abstract, so no machine paths), and of an MPI matrix concretised on a fixed
//! profile (Debian's MPICH and Open MPI, both built with gcc 12). A change shows up as a diff here;
//! `CFGMX_BLESS=1 cargo test -p cfgmx-render --test snapshots` rewrites the snapshots.

use cfgmx_model::{Matrix, Registry, Source};
use cfgmx_render::{Context, Format, Per, Renderer};
use std::path::Path;

#[test]
fn rendered_files_match_their_snapshots() {
    let reg = Registry::builtin();
    let src = Source::new(
        "gcc-clang.toml",
        include_str!("../../../tests/matrices/gcc-clang.toml"),
    );
    let m = Matrix::parse(&src, &reg).unwrap();
    let set = m.variant_set(&reg).unwrap();
    let ctx = Context::new(
        &m,
        set.variants.iter().map(|v| (v, None)),
        set.short_len,
        None,
    )
    .with_packages(&reg);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    check(
        &ctx,
        &dir,
        &["gcc-threaded-release", "clang-threaded-debug", "/Core/"],
    );
}

/// gcc x Open MPI through its own wrapper, clang x MPICH through `MPICH_CC`: the MPI in every
/// format (CMake variables, environment, packages, the Lmod MPI level).
#[test]
fn mpi_variants_match_their_snapshots() {
    let ctx = mpi_context();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots-mpi");
    check(
        &ctx,
        &dir,
        &[
            "gcc-openmpi-none",
            "clang-mpich-none",
            "/Compiler/",
            "/Core/",
        ],
    );
}

/// Every template of every row of the format table renders against the MPI context (which
/// has a compiler and an MPI level for Lmod's companions): a broken built-in template, or a
/// row whose template writes nothing, fails here rather than in a user's release build.
#[test]
fn every_registry_template_renders() {
    let r = Renderer::new();
    r.check_builtin().expect("every built-in template parses");
    let ctx = mpi_context();
    for spec in cfgmx_render::FORMATS {
        let files = r
            .render(spec.format, &ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        let paths: Vec<String> = files
            .iter()
            .map(|f| f.path.to_string_lossy().into_owned())
            .collect();
        // Each companion's files: one per compiler, per compiler and MPI, or one.
        let mut companions = std::collections::BTreeSet::new();
        for c in spec.companions {
            let want: std::collections::BTreeSet<String> = match c.per {
                Per::Matrix => [c.path.to_string()].into(),
                Per::Compiler => ctx
                    .variants
                    .iter()
                    .map(|v| c.path.replace("{compiler}", &v.compiler_module))
                    .collect(),
                Per::CompilerMpi => ctx
                    .variants
                    .iter()
                    .filter_map(|v| v.mpi.as_ref().map(|m| (v, m)))
                    .map(|(v, m)| {
                        c.path
                            .replace("{compiler}", &v.compiler_module)
                            .replace("{mpi}", &m.module)
                    })
                    .collect(),
            };
            assert!(
                !want.is_empty(),
                "{}: {} renders nothing here",
                spec.name,
                c.path
            );
            for w in &want {
                let f = files
                    .iter()
                    .find(|f| f.path.to_string_lossy() == w.as_str())
                    .unwrap_or_else(|| panic!("{}: no {w} in {paths:?}", spec.name));
                assert_eq!(f.executable, c.executable, "{w}");
                assert!(!f.content.is_empty(), "{w}");
            }
            companions.extend(want);
        }
        let main: Vec<_> = files
            .iter()
            .filter(|f| !companions.contains(f.path.to_string_lossy().as_ref()))
            .collect();
        match spec.layout {
            cfgmx_render::Layout::PerVariant { .. } => {
                assert_eq!(main.len(), ctx.variants.len(), "{}: {paths:?}", spec.name)
            }
            cfgmx_render::Layout::Matrix { .. } => assert_eq!(main.len(), 1, "{}", spec.name),
        }
        assert!(main
            .iter()
            .all(|f| f.executable == spec.executable && !f.content.is_empty()));
    }
}

/// The MPI matrix concretised on a fixed profile.
fn mpi_context() -> Context {
    let reg = Registry::builtin();
    let src = Source::new(
        "mpi.toml",
        "name = \"mpi\"\nlanguages = [\"c\", \"fortran\"]\n[axes]\ncompiler = [\"gcc\", \"clang\"]\nmpi = [\"openmpi\", \"mpich\"]\nblas = [\"none\"]\n[values.compiler.clang]\nfortran = \"gcc\"\n",
    );
    let m = Matrix::parse(&src, &reg).unwrap();
    let set = m.variant_set(&reg).unwrap();
    let c = |path: &str, fam: &str, ver: &str, lang: &str| serde_json::json!({"path": path, "family": fam, "version": ver, "languages": [lang], "status": "ok"});
    let w = |path: &str, imp: &str, ver: &str, lang: &str, cc: &str, launcher: &str| {
        serde_json::json!({"path": path, "implementation": imp, "version": ver, "language": lang,
            "compiler": cc, "compiler_family": "gcc", "compiler_version": "12.2.0",
            "launcher": launcher, "status": "ok"})
    };
    let (om, mp) = ("/usr/bin/mpirun.openmpi", "/usr/bin/mpiexec.mpich");
    let profile: cfgmx_model::Profile = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "cpus": 4,
        "compilers": [
            c("/usr/bin/gcc", "gcc", "12.2.0", "c"),
            c("/usr/bin/gfortran", "gcc", "12.2.0", "fortran"),
            c("/usr/bin/clang", "clang", "14.0.6", "c"),
        ],
        "mpi": [
            w("/usr/bin/mpicc.openmpi", "openmpi", "4.1.4", "c", "/usr/bin/gcc", om),
            w("/usr/bin/mpifort.openmpi", "openmpi", "4.1.4", "fortran", "/usr/bin/gfortran", om),
            w("/usr/bin/mpicc.mpich", "mpich", "4.0.2", "c", "/usr/bin/gcc", mp),
            w("/usr/bin/mpifort.mpich", "mpich", "4.0.2", "fortran", "/usr/bin/gfortran", mp),
        ],
    }))
    .unwrap();
    let cvs: Vec<cfgmx_model::ConcreteVariant> = set
        .variants
        .iter()
        .map(|v| cfgmx_model::concretize(v, &m, &reg, &profile))
        .collect();
    for cv in &cvs {
        assert!(cv.available, "{}: {:?}", cv.variant.name, cv.reasons);
    }
    Context::new(
        &m,
        set.variants.iter().zip(cvs.iter().map(Some)),
        set.short_len,
        Some(&profile),
    )
    .with_packages(&reg)
}

fn check(ctx: &Context, dir: &Path, names: &[&str]) {
    let bless = std::env::var_os("CFGMX_BLESS").is_some();
    let mut stale = Vec::new();
    for f in Format::ALL {
        let files = Renderer::new().render(f, ctx).unwrap();
        // Per-variant formats: a gcc and a clang variant cover the differences (and Lmod's
        // compiler modules, one per compiler).
        let keep: Vec<_> = if f.per_variant() {
            files
                .into_iter()
                .filter(|x| {
                    let n = x.path.to_string_lossy();
                    names.iter().any(|k| n.contains(k))
                })
                .collect()
        } else {
            files
        };
        for file in keep {
            let snap = dir.join(f.as_str()).join(&file.path);
            if bless {
                std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
                std::fs::write(&snap, &file.content).unwrap();
                continue;
            }
            match std::fs::read_to_string(&snap) {
                Ok(want) if want == file.content => {}
                Ok(want) => stale.push(format!(
                    "{}: differs\n--- snapshot\n{want}\n--- rendered\n{}",
                    snap.display(),
                    file.content
                )),
                Err(_) => stale.push(format!("{}: no snapshot", snap.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(CFGMX_BLESS=1 rewrites them)",
        stale.join("\n")
    );
}
