//! The `mpi` role: each variant's compiler paired with a wrapper of the implementation it asks
//! for, on a profile as the probe writes it (Debian's MPICH and Open MPI, both built with gcc
//! 12): the wrapper of the variant's own compiler as it is, another compiler through the
//! implementation's override variable for C, never for Fortran (module files), and the
//! concrete MPI in the flags and the concrete hash.

use cfgmx_model::{concretize, Matrix, Profile, Registry, Source};

fn wrapper(
    path: &str,
    imp: &str,
    ver: &str,
    lang: &str,
    cc: &str,
    launcher: &str,
    var: &str,
) -> serde_json::Value {
    serde_json::json!({
        "path": path, "implementation": imp, "version": ver, "language": lang,
        "compiler": cc, "compiler_family": "gcc", "compiler_version": "12.2.0",
        "compiler_env": var, "launcher": launcher, "status": "ok"
    })
}

fn profile() -> Profile {
    let c = |path: &str, fam: &str, ver: &str, lang: &str| serde_json::json!({"path": path, "family": fam, "version": ver, "languages": [lang], "status": "ok"});
    let om = "/usr/bin/mpirun.openmpi";
    let mp = "/usr/bin/mpiexec.mpich";
    serde_json::from_value(serde_json::json!({
        "schema": 1,
        "cpus": 4,
        "compilers": [
            c("/usr/bin/gcc", "gcc", "12.2.0", "c"),
            c("/usr/bin/gfortran", "gcc", "12.2.0", "fortran"),
            c("/usr/bin/gcc-11", "gcc", "11.3.0", "c"),
            c("/usr/bin/gfortran-11", "gcc", "11.3.0", "fortran"),
            c("/usr/bin/clang", "clang", "14.0.6", "c"),
            c("/usr/bin/flang-new-19", "clang", "19.1.7", "fortran"),
        ],
        "mpi": [
            wrapper("/usr/bin/mpicc", "openmpi", "4.1.4", "c", "/usr/bin/gcc", om, "OMPI_CC"),
            wrapper("/usr/bin/mpicc.openmpi", "openmpi", "4.1.4", "c", "/usr/bin/gcc", om, "OMPI_CC"),
            wrapper("/usr/bin/mpif77.openmpi", "openmpi", "4.1.4", "fortran", "/usr/bin/gfortran", om, "OMPI_FC"),
            wrapper("/usr/bin/mpifort.openmpi", "openmpi", "4.1.4", "fortran", "/usr/bin/gfortran", om, "OMPI_FC"),
            wrapper("/usr/bin/mpicc.mpich", "mpich", "4.0.2", "c", "/usr/bin/gcc", mp, "MPICH_CC"),
            wrapper("/usr/bin/mpifort.mpich", "mpich", "4.0.2", "fortran", "/usr/bin/gfortran", mp, "MPICH_FC"),
        ],
    }))
    .unwrap()
}

fn concrete(langs: &str, compiler: &str, mpi: &str, blas: &str) -> cfgmx_model::ConcreteVariant {
    let reg = Registry::builtin();
    let text = format!(
        "name = \"t\"\nlanguages = {langs}\n[axes]\ncompiler = [\"{compiler}\"]\nmpi = [\"{mpi}\"]\nblas = [\"{blas}\"]\n"
    );
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    let v = m.variant_set(&reg).unwrap().variants.remove(0);
    concretize(&v, &m, &reg, &profile())
}

/// (languages, compiler, mpi, available, C wrapper, override variable and value, reason part)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    Option<&'static str>,
    Option<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn each_compiler_is_paired_with_a_wrapper_of_the_implementation() {
    let cases: &[Case] = &[
        // the wrapper's own compiler: as it is, the suffixed name first
        (
            r#"["c", "fortran"]"#,
            "gcc",
            "openmpi",
            true,
            Some("/usr/bin/mpicc.openmpi"),
            None,
            "",
        ),
        (
            r#"["c", "fortran"]"#,
            "gcc",
            "mpich",
            true,
            Some("/usr/bin/mpicc.mpich"),
            None,
            "",
        ),
        (
            r#"["c", "fortran"]"#,
            "gcc",
            "openmpi@4.1",
            true,
            Some("/usr/bin/mpicc.openmpi"),
            None,
            "",
        ),
        // another C compiler: the override variable points the wrapper at it
        (
            r#"["c"]"#,
            "clang",
            "openmpi",
            true,
            Some("/usr/bin/mpicc.openmpi"),
            Some(("OMPI_CC", "/usr/bin/clang")),
            "",
        ),
        (
            r#"["c"]"#,
            "clang",
            "mpich",
            true,
            Some("/usr/bin/mpicc.mpich"),
            Some(("MPICH_CC", "/usr/bin/clang")),
            "",
        ),
        (
            r#"["c"]"#,
            "gcc@11",
            "mpich",
            true,
            Some("/usr/bin/mpicc.mpich"),
            Some(("MPICH_CC", "/usr/bin/gcc-11")),
            "",
        ),
        // another Fortran compiler (of another version too): unavailable, the module files
        (
            r#"["c", "fortran"]"#,
            "clang",
            "openmpi",
            false,
            None,
            None,
            "Fortran module files (`use mpi`, `use mpi_f08`) are compiler-specific",
        ),
        (
            r#"["c", "fortran"]"#,
            "gcc@11",
            "mpich",
            false,
            None,
            None,
            "this variant's Fortran compiler is gcc 11.3.0: Fortran module files",
        ),
        // a version the machine does not have
        (
            r#"["c"]"#,
            "gcc",
            "openmpi@5",
            false,
            None,
            None,
            "missing MPI: no openmpi@5 wrapper found; found only: openmpi 4.1.4",
        ),
        (
            r#"["c"]"#,
            "gcc",
            "intel-mpi",
            false,
            None,
            None,
            "missing MPI: no intel-mpi wrapper found",
        ),
    ];
    for (langs, compiler, mpi, ok, cc, over, why) in cases {
        let cv = concrete(langs, compiler, mpi, "none");
        let ctx = format!("{langs} {compiler} {mpi}: {:?}", cv.reasons);
        assert_eq!(cv.available, *ok, "{ctx}");
        assert!(cv.reasons.join("\n").contains(why), "{ctx}");
        let f = &cv.concrete_flags;
        match cc {
            Some(cc) => {
                let mp = cv.mpi.as_ref().expect("a concrete MPI");
                assert_eq!(f.cmake["MPI_C_COMPILER"], *cc, "{ctx}");
                assert_eq!(mp.wrappers[&cfgmx_model::Language::C].path, *cc, "{ctx}");
                let launcher = if mpi.starts_with("openmpi") {
                    "/usr/bin/mpirun.openmpi"
                } else {
                    "/usr/bin/mpiexec.mpich"
                };
                assert_eq!(f.cmake["MPIEXEC_EXECUTABLE"], launcher, "{ctx}");
                // no threads: every core is a rank
                assert_eq!(f.cmake["MPIEXEC_MAX_NUMPROCS"], "4", "{ctx}");
                if langs.contains("fortran") {
                    assert_eq!(
                        f.cmake["MPI_Fortran_COMPILER"],
                        if mpi.starts_with("openmpi") {
                            "/usr/bin/mpifort.openmpi"
                        } else {
                            "/usr/bin/mpifort.mpich"
                        },
                        "{ctx}"
                    );
                }
                for var in ["OMPI_CC", "MPICH_CC"] {
                    let want: Option<&str> = over.filter(|(k, _)| k == &var).map(|(_, v)| v);
                    assert_eq!(f.env.get(var).map(String::as_str), want, "{ctx}");
                }
                assert!(cv.concrete_hash.is_some(), "{ctx}");
            }
            None => assert!(cv.concrete_hash.is_none(), "{ctx}"),
        }
    }
}

#[test]
fn ranks_times_threads_fit_the_cores_and_open_mpi_never_oversubscribes() {
    let cv = concrete(r#"["c"]"#, "gcc", "openmpi", "openblas-openmp");
    // 4 cores, 2 threads per rank (the matrix's default `threads`)
    assert_eq!(cv.concrete_flags.cmake["MPIEXEC_MAX_NUMPROCS"], "2");
    assert_eq!(cv.mpi.as_ref().unwrap().ranks, 2);
    let env = &cv.concrete_flags.env;
    assert_eq!(env["OMPI_MCA_rmaps_base_oversubscribe"], "0");
    assert_eq!(env["OMPI_MCA_rmaps_base_no_oversubscribe"], "1");
    // cfgmx never allows running as root: that is the user's (or a test harness's) choice
    assert!(!env.contains_key("OMPI_ALLOW_RUN_AS_ROOT"));
    // a Slurm allocation of 1 task (`build --mpi-ranks 1`) caps the ranks
    let reg = Registry::builtin();
    let m = Matrix::parse(&Source::new("t.toml", "name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"openmpi\"]\nblas = [\"none\"]\n"), &reg).unwrap();
    let v = m.variant_set(&reg).unwrap().variants.remove(0);
    let mut p = profile();
    assert_eq!(concretize(&v, &m, &reg, &p).mpi.unwrap().ranks, 4);
    p.max_ranks = Some(1);
    let capped = concretize(&v, &m, &reg, &p);
    assert_eq!(capped.concrete_flags.cmake["MPIEXEC_MAX_NUMPROCS"], "1");
    // runtime points of up to 4 threads test under the one configured rank count: 4 / 4
    let m = Matrix::parse(&Source::new("t.toml", "name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"openmpi\"]\nblas = [\"none\"]\n[runtime]\nthreads = [1, 4]\n"), &reg).unwrap();
    let v = m.variant_set(&reg).unwrap().variants.remove(0);
    assert_eq!(concretize(&v, &m, &reg, &profile()).mpi.unwrap().ranks, 1);
}

#[test]
fn the_mpi_is_in_the_spec_and_concrete_hashes() {
    let a = concrete(r#"["c"]"#, "gcc", "openmpi", "none");
    let b = concrete(r#"["c"]"#, "gcc", "mpich", "none");
    let c = concrete(r#"["c"]"#, "gcc", "none", "none");
    assert_ne!(a.variant.hash, b.variant.hash);
    assert_ne!(a.concrete_hash, b.concrete_hash);
    assert!(c.mpi.is_none() && c.available);
    assert!(c.variant.spec_document()["resolved"].get("mpi").is_none());
    let doc = a.variant.spec_document();
    assert_eq!(doc["resolved"]["mpi"]["spec"]["implementation"], "openmpi");
    // a wrapper of another version is another concrete variant
    let mut p = profile();
    for r in &mut p.mpi {
        r.version = Some("4.1.5".into());
    }
    let reg = Registry::builtin();
    let m = Matrix::parse(&Source::new("t.toml", "name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"openmpi\"]\nblas = [\"none\"]\n"), &reg).unwrap();
    let v = m.variant_set(&reg).unwrap().variants.remove(0);
    let moved = concretize(&v, &m, &reg, &p);
    assert_eq!(moved.variant.hash, a.variant.hash);
    assert_ne!(moved.concrete_hash, a.concrete_hash);
}

#[test]
fn bad_mpi_values_are_located() {
    let reg = Registry::builtin();
    for (value, want) in [
        ("openmpj", "unknown MPI implementation `openmpj`"),
        ("openmpi@5:4", "lower bound 5 is above upper bound 4"),
        ("mpich@x", "`x` is not a version"),
    ] {
        let text = format!("name = \"t\"\n[axes]\ncompiler = [\"gcc\"]\nmpi = [\"{value}\"]\n");
        let e = Matrix::parse(&Source::new("t.toml", text), &reg)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{value}: {e}");
        assert!(e.contains("t.toml:4:"), "{value}: located: {e}");
    }
}
