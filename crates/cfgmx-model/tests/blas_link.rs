//! A BLAS record's link line ([`BlasRecord::link`]) is exactly what concretisation puts on a
//! variant, and a variant only takes a library that answers its integer width (the `int`
//! role), undecorated.

use cfgmx_model::{
    concretize, BlasRecord, CompilerRecord, IntWidth, Language, Matrix, Profile, Registry, Source,
    Threading,
};

fn gcc() -> CompilerRecord {
    CompilerRecord {
        path: "/usr/bin/gcc".into(),
        family: "gcc".into(),
        version: "12.2.0".into(),
        languages: vec![Language::C],
        facets: Default::default(),
        real_path: None,
        wrapper: None,
        status: Default::default(),
        error: None,
    }
}

fn rec(provider: &str, build: &str, t: Threading, dir: &str, libs: &[&str]) -> BlasRecord {
    BlasRecord {
        path: format!("{dir}/lib{}.so", libs[0].rsplit('/').next().unwrap()),
        provider: provider.into(),
        build: build.into(),
        threading: t,
        lib_dir: dir.into(),
        config: None,
        is_default: false,
        int_width: IntWidth::Lp64,
        symbol_prefix: String::new(),
        symbol_suffix: String::new(),
        libs: libs.iter().map(|s| s.to_string()).collect(),
    }
}

fn variants(blas: &[&str], profile: &Profile) -> Vec<cfgmx_model::ConcreteVariant> {
    variants_with(blas, "", profile)
}

/// The variants of `compiler = ["gcc"]`, `blas = [blas]` and the `more` axes, on `profile`.
fn variants_with(
    blas: &[&str],
    more: &str,
    profile: &Profile,
) -> Vec<cfgmx_model::ConcreteVariant> {
    let reg = Registry::builtin();
    let quoted: Vec<String> = blas.iter().map(|b| format!("{b:?}")).collect();
    let text = format!(
        "name = \"t\"\nlanguages = [\"c\"]\n[blas]\nprefer = [\"openblas\", \"mkl\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [{}]\n{more}",
        quoted.join(", ")
    );
    let m = Matrix::parse(&Source::new("t.toml", text.as_str()), &reg).unwrap();
    m.variant_set(&reg)
        .unwrap()
        .variants
        .iter()
        .map(|v| concretize(v, &m, &reg, profile))
        .collect()
}

#[test]
fn the_records_link_line_replaces_the_build_link_names_in_place() {
    let dir = "/opt/venv/lib";
    let files = [
        "/opt/venv/lib/libmkl_intel_lp64.so.3",
        "/opt/venv/lib/libmkl_sequential.so.3",
        "/opt/venv/lib/libmkl_core.so.3",
    ];
    let mut libs: Vec<&str> = files.to_vec();
    libs.extend(["pthread", "m", "dl"]);
    let mut p = Profile::empty(2);
    p.compilers = vec![gcc()];
    p.blas = vec![rec("mkl", "sequential", Threading::Sequential, dir, &libs)];
    let v = &variants(&["mkl-sequential"], &p)[0];
    assert!(v.available, "{:?}", v.reasons);
    let f = &v.concrete_flags;
    let link = v.blas_library.as_ref().unwrap().link(&f.driver);
    assert_eq!(f.ldflags[..2], link.ldflags[..], "{:?}", f.ldflags);
    // the versioned files by full path, where `-lmkl_*` stood, in link order
    let args = f.lib_args();
    let at = args.iter().position(|a| a == files[0]).unwrap();
    assert_eq!(args[at..at + 3], files.map(String::from)[..], "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("-lmkl")), "{args:?}");
}

#[test]
fn decorated_or_other_width_libraries_are_never_picked() {
    let mut p = Profile::empty(2);
    p.compilers = vec![gcc()];
    let mut scipy = rec(
        "openblas",
        "pthread",
        Threading::Pthread,
        "/opt/scipy/lib",
        &["scipy_openblas64_"],
    );
    scipy.int_width = IntWidth::Ilp64;
    scipy.symbol_prefix = "scipy_".into();
    scipy.symbol_suffix = "64_".into();
    let mut ilp = rec(
        "openblas",
        "serial",
        Threading::Sequential,
        "/opt/ilp/lib",
        &["openblas"],
    );
    ilp.int_width = IntWidth::Ilp64;
    p.blas = vec![scipy, ilp];
    for v in variants(
        &[
            "openblas-pthread",
            "openblas-serial",
            "threaded",
            "sequential",
        ],
        &p,
    ) {
        assert!(!v.available, "{} took {:?}", v.variant.name, v.blas_library);
    }
    // a plain LP64 build beside them is taken
    p.blas.push(rec(
        "openblas",
        "pthread",
        Threading::Pthread,
        "/usr/lib/openblas-pthread",
        &["openblas"],
    ));
    let v = &variants(&["threaded"], &p)[0];
    assert!(v.available, "{:?}", v.reasons);
    assert_eq!(
        v.blas_library.as_ref().unwrap().lib_dir,
        "/usr/lib/openblas-pthread"
    );
}

/// This machine's OpenBLAS builds, as `cfgmx probe` reports them: Debian's LP64 and ILP64
/// serial builds side by side, and PyPI's scipy-openblas64 (ILP64, decorated symbols).
fn lp64_ilp64_scipy() -> Vec<BlasRecord> {
    let lp = rec(
        "openblas",
        "serial",
        Threading::Sequential,
        "/usr/lib/x86_64-linux-gnu/openblas-serial",
        &["openblas"],
    );
    let mut ilp = rec(
        "openblas",
        "serial",
        Threading::Sequential,
        "/usr/lib/x86_64-linux-gnu/openblas64-serial",
        &["openblas64"],
    );
    ilp.int_width = IntWidth::Ilp64;
    let mut scipy = rec(
        "openblas",
        "pthread",
        Threading::Pthread,
        "/opt/venv/scipy_openblas64/lib",
        &["scipy_openblas64_"],
    );
    scipy.int_width = IntWidth::Ilp64;
    scipy.symbol_prefix = "scipy_".into();
    scipy.symbol_suffix = "64_".into();
    vec![lp, ilp, scipy]
}

#[test]
fn an_ilp64_variant_links_exactly_an_ilp64_build_by_path() {
    let mut p = Profile::empty(2);
    p.compilers = vec![gcc()];
    p.blas = lp64_ilp64_scipy();
    let vs = variants_with(
        &["openblas-serial", "sequential"],
        "int = [\"lp64\", \"ilp64\"]\n",
        &p,
    );
    assert_eq!(vs.len(), 4);
    for v in &vs {
        assert!(v.available, "{}: {:?}", v.variant.name, v.reasons);
        let b = v.blas_library.as_ref().unwrap();
        let f = &v.concrete_flags;
        let ilp = v.variant.name.ends_with("-ilp64");
        assert_eq!(v.variant.resolved.int_width == IntWidth::Ilp64, ilp);
        assert_eq!(b.int_width == IntWidth::Ilp64, ilp, "{}", v.variant.name);
        assert!(
            b.symbol_suffix.is_empty(),
            "{} took {}",
            v.variant.name,
            b.path
        );
        if ilp {
            assert_eq!(f.cmake["BLA_SIZEOF_INTEGER"], "8");
            // FindBLAS is given the file, not a name the alternatives system resolves
            assert_eq!(f.cmake["BLAS_LIBRARIES"], b.path);
            assert_eq!(f.cmake["CMAKE_LIBRARY_PATH"], b.lib_dir);
            assert!(f.lib_args().contains(&"-lopenblas64".to_string()));
            assert!(!f.lib_args().contains(&"-lopenblas".to_string()));
        } else {
            assert!(!f.cmake.contains_key("BLA_SIZEOF_INTEGER"));
            assert!(!f.cmake.contains_key("BLAS_LIBRARIES"));
            assert!(f.lib_args().contains(&"-lopenblas".to_string()));
        }
    }
    // two variants, one library file each: the hashes of the widths differ
    assert_ne!(vs[0].concrete_hash, vs[1].concrete_hash);
}

#[test]
fn an_ilp64_variant_without_an_ilp64_build_says_what_there_is() {
    let mut p = Profile::empty(2);
    p.compilers = vec![gcc()];
    p.blas = lp64_ilp64_scipy();
    p.blas.remove(1); // no Debian ILP64 build: only LP64 and the decorated scipy one
    let vs = variants_with(&["openblas-serial", "threaded"], "int = [\"ilp64\"]\n", &p);
    let reasons: Vec<String> = vs.iter().map(|v| v.reasons.join("; ")).collect();
    assert!(vs.iter().all(|v| !v.available), "{reasons:?}");
    assert!(
        reasons[0].starts_with("no ILP64 build of BLAS openblas-serial found")
            && reasons[0].contains("openblas-serial/libopenblas.so is LP64"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].starts_with("no threaded ILP64 BLAS found")
            && reasons[1].contains("decorated symbols (scipy_dgemm_64_)"),
        "{}",
        reasons[1]
    );
}

#[test]
fn a_named_ilp64_build_makes_the_variant_ilp64() {
    let reg = Registry::builtin();
    let text = "name = \"t\"\nlanguages = [\"c\", \"fortran\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"mkl-sequential_ilp64\", \"mkl-sequential\"]\n";
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    let set = m.variant_set(&reg).unwrap();
    let r = &set.variants[0].resolved;
    assert_eq!(r.int_width, IntWidth::Ilp64);
    // Fortran's default integers follow (gfortran's `int64` facet), C declares its own
    assert!(
        r.flags.fflags.contains(&"-fdefault-integer-8".to_string()),
        "{:?}",
        r.flags
    );
    assert_eq!(r.flags.cmake["BLA_SIZEOF_INTEGER"], "8");
    let lp = &set.variants[1].resolved;
    assert_eq!(lp.int_width, IntWidth::Lp64);
    assert!(lp.flags.fflags.is_empty() && !lp.flags.cmake.contains_key("BLA_SIZEOF_INTEGER"));
}

#[test]
fn an_abstract_value_picks_a_build_of_the_variants_width() {
    let reg = Registry::builtin();
    let text = "name = \"t\"\nlanguages = [\"c\"]\n[blas]\nprefer = [\"mkl\"]\n[axes]\ncompiler = [\"gcc\", \"oneapi\"]\nblas = [\"sequential\", \"threaded\"]\nint = [\"lp64\", \"ilp64\"]\n";
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    let picked: Vec<(String, String)> = m
        .variant_set(&reg)
        .unwrap()
        .variants
        .iter()
        .map(|v| {
            let b = v.resolved.blas.as_ref().unwrap();
            (v.name.clone(), b.id.clone())
        })
        .collect();
    let want = [
        ("gcc-sequential-lp64", "mkl-sequential"),
        ("gcc-sequential-ilp64", "mkl-sequential_ilp64"),
        // the compiler's own OpenMP runtime first, at either width
        ("gcc-threaded-lp64", "mkl-gnu_thread"),
        ("gcc-threaded-ilp64", "mkl-gnu_thread_ilp64"),
        ("oneapi-sequential-lp64", "mkl-sequential"),
        ("oneapi-sequential-ilp64", "mkl-sequential_ilp64"),
        ("oneapi-threaded-lp64", "mkl-intel_thread"),
        ("oneapi-threaded-ilp64", "mkl-intel_thread_ilp64"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(picked, want);
}

/// The default provider order is data (`preference` in `providers/*.toml`): NVPL, which the
/// order once written in Rust left out, serves `threaded` where it is the only threaded BLAS.
#[test]
fn threaded_takes_nvpl_where_it_is_the_only_threaded_blas() {
    let reg = Registry::builtin();
    let text =
        "name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"threaded\"]\n";
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    assert_eq!(m.blas_policy.prefer[0], "openblas");
    let mut p = Profile::empty(2);
    p.compilers = vec![gcc()];
    p.blas = vec![rec(
        "nvpl",
        "gomp",
        Threading::Openmp,
        "/opt/nvpl/lib",
        &["nvpl_blas_lp64_gomp", "nvpl_blas_core"],
    )];
    let set = m.variant_set(&reg).unwrap();
    let v = concretize(&set.variants[0], &m, &reg, &p);
    assert!(v.available, "{:?}", v.reasons);
    let b = v.blas_library.as_ref().unwrap();
    assert_eq!((b.provider.as_str(), b.build.as_str()), ("nvpl", "gomp"));
}
