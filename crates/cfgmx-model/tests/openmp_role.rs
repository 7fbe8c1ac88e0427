//! The project's OpenMP (`openmp = "on" | "off"`) is its own choice, apart from the BLAS
//! threading: every combination of compiler, BLAS threading and the project's choice gets the
//! OpenMP flag exactly when the project uses OpenMP, and the runtime warnings name what would
//! really load.

use cfgmx_model::{concretize, BlasRecord, IntWidth, Matrix, Profile, Registry, Source, Threading};

/// (compiler, blas, openmp axis value or "" for none) -> (compiled with OpenMP, warning part)
const CASES: &[(&str, &str, &str, bool, Option<&str>)] = &[
    // without the axis: today's pairing (an OpenMP BLAS brings the project's OpenMP)
    ("gcc", "openblas-serial", "", false, None),
    ("gcc", "openblas-pthread", "", false, None),
    ("gcc", "openblas-openmp", "", true, None),
    (
        "clang",
        "openblas-openmp",
        "",
        true,
        Some("two OpenMP runtimes would load: libgomp"),
    ),
    // on: the project's loops run in parallel whatever the BLAS
    ("gcc", "openblas-serial", "on", true, None),
    (
        "gcc",
        "openblas-pthread",
        "on",
        true,
        Some("pthread BLAS openblas-pthread called inside OpenMP regions"),
    ),
    ("gcc", "openblas-openmp", "on", true, None),
    ("clang", "openblas-serial", "on", true, None),
    (
        "clang",
        "openblas-pthread",
        "on",
        true,
        Some("pthread BLAS openblas-pthread called inside OpenMP regions"),
    ),
    (
        "clang",
        "openblas-openmp",
        "on",
        true,
        Some("two OpenMP runtimes would load: libgomp"),
    ),
    // off: threaded BLAS, serial project: one runtime (the BLAS's), nothing to warn about
    ("gcc", "openblas-serial", "off", false, None),
    ("gcc", "openblas-pthread", "off", false, None),
    ("gcc", "openblas-openmp", "off", false, None),
    ("clang", "openblas-openmp", "off", false, None),
    ("clang", "openblas-pthread", "off", false, None),
];

fn resolve(compiler: &str, blas: &str, openmp: &str) -> cfgmx_model::Variant {
    let reg = Registry::builtin();
    let axis = if openmp.is_empty() {
        String::new()
    } else {
        format!("openmp = [\"{openmp}\"]\n")
    };
    let text = format!(
        "name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"{compiler}\"]\nblas = [\"{blas}\"]\n{axis}"
    );
    let m = Matrix::parse(&Source::new("t.toml", text.as_str()), &reg).unwrap();
    m.variant_set(&reg).unwrap().variants.remove(0)
}

#[test]
fn the_projects_openmp_and_the_runtime_check_cover_every_combination() {
    for (compiler, blas, openmp, compiled, warning) in CASES {
        let v = resolve(compiler, blas, openmp);
        let r = &v.resolved;
        let case = format!("{compiler} {blas} openmp={openmp:?}");
        let has_flag = r.flags.cflags.iter().any(|f| f.starts_with("-fopenmp"));
        assert_eq!(has_flag, *compiled, "{case}: {:?}", r.flags.cflags);
        assert_eq!(r.openmp.is_some(), *compiled, "{case}");
        assert_eq!(r.facets.iter().any(|f| f == "openmp"), *compiled, "{case}");
        let warned: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("OpenMP") || w.contains("runtime"))
            .collect();
        match warning {
            Some(w) => assert!(warned.iter().any(|x| x.contains(w)), "{case}: {warned:?}"),
            None => assert!(warned.is_empty(), "{case}: {warned:?}"),
        }
        // a threaded BLAS keeps its own thread variable whatever the project does
        if *blas != "openblas-serial" {
            assert!(
                r.flags.env.contains_key("OMP_NUM_THREADS")
                    || r.flags.env.contains_key("OPENBLAS_NUM_THREADS"),
                "{case}: {:?}",
                r.flags.env
            );
        }
    }
}

#[test]
fn the_default_pairing_keeps_its_hashes_and_off_is_a_new_variant() {
    // `openmp` absent is the old model: same resolved digest as before the axis existed
    let default = resolve("gcc", "openblas-openmp", "");
    let on = resolve("gcc", "openblas-openmp", "on");
    let off = resolve("gcc", "openblas-openmp", "off");
    assert_eq!(default.resolved.flags, on.resolved.flags);
    assert_ne!(on.resolved.flags, off.resolved.flags);
    assert_ne!(on.hash, off.hash);
}

#[test]
fn a_serial_project_still_links_the_threaded_blas_it_names() {
    let reg = Registry::builtin();
    let mut p = Profile::empty(2);
    p.compilers = vec![cfgmx_model::CompilerRecord {
        path: "/usr/bin/gcc".into(),
        family: "gcc".into(),
        version: "12.2.0".into(),
        languages: vec![cfgmx_model::Language::C],
        facets: Default::default(),
        real_path: None,
        wrapper: None,
        status: Default::default(),
        error: None,
    }];
    // the spec prefers a pthread build, this machine has only the OpenMP one
    p.blas = vec![BlasRecord {
        path: "/usr/lib/openblas-openmp/libopenblas.so".into(),
        provider: "openblas".into(),
        build: "openmp".into(),
        threading: Threading::Openmp,
        lib_dir: "/usr/lib/openblas-openmp".into(),
        config: None,
        is_default: false,
        int_width: IntWidth::Lp64,
        symbol_prefix: String::new(),
        symbol_suffix: String::new(),
        libs: vec!["openblas".into()],
    }];
    let concrete = |axis: &str| {
        let text = format!("name = \"t\"\nlanguages = [\"c\"]\n[blas]\nthreaded = [\"pthread\", \"openmp\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"threaded\"]\n{axis}");
        let m = Matrix::parse(&Source::new("t.toml", text.as_str()), &reg).unwrap();
        let v = &m.variant_set(&reg).unwrap().variants[0];
        concretize(v, &m, &reg, &p)
    };
    // without the axis the OpenMP build needs the project's OpenMP flag, which the spec lacks
    let default = concrete("");
    assert!(!default.available);
    assert!(
        default.reasons[0].contains("needs OpenMP"),
        "{:?}",
        default.reasons
    );
    // a serial project takes it as it is: no flag, the library (and its runtime) linked
    let cv = concrete("openmp = [\"off\"]\n");
    assert!(cv.available, "{:?}", cv.reasons);
    assert!(!cv
        .concrete_flags
        .cflags
        .iter()
        .any(|f| f.contains("openmp")));
    assert!(cv.concrete_flags.libs.contains(&"openblas".to_string()));
    assert_eq!(cv.blas_library.unwrap().build, "openmp");
}
