//! A BLAS record's link line ([`BlasRecord::link`]) is exactly what concretisation puts on a
//! variant, and a variant only takes a library that answers its build's integer width,
//! undecorated.

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
    let reg = Registry::builtin();
    let quoted: Vec<String> = blas.iter().map(|b| format!("{b:?}")).collect();
    let text = format!(
        "name = \"t\"\nlanguages = [\"c\"]\n[blas]\nprefer = [\"openblas\", \"mkl\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [{}]\n",
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
    let link = v.blas_library.as_ref().unwrap().link();
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
