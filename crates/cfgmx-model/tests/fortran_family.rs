//! A compiler value's version range picks that family's compilers only: `clang@14` whose
//! Fortran comes from gcc takes gfortran whatever its version (it used to look for a
//! gfortran 14 and call the variant unbuildable).

use cfgmx_model::{concretize, CompilerRecord, Language, Matrix, Profile, Registry, Source};

fn rec(path: &str, family: &str, version: &str, lang: Language) -> CompilerRecord {
    CompilerRecord {
        path: path.into(),
        family: family.into(),
        version: version.into(),
        languages: vec![lang],
        facets: Default::default(),
        real_path: None,
        wrapper: None,
        status: Default::default(),
        error: None,
    }
}

#[test]
fn a_versioned_compiler_takes_another_familys_fortran_at_any_version() {
    let reg = Registry::builtin();
    let text = "name = \"t\"\nlanguages = [\"c\", \"fortran\"]\n[axes]\ncompiler = [\"clang@14\", \"gcc@11\"]\n[values.compiler.\"clang@14\"]\nfortran = \"gcc\"\n";
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    let mut p = Profile::empty(2);
    p.compilers = vec![
        rec("/usr/bin/clang-13", "clang", "13.0.1", Language::C),
        rec("/usr/bin/clang-14", "clang", "14.0.6", Language::C),
        rec("/usr/bin/gcc-11", "gcc", "11.3.0", Language::C),
        rec("/usr/bin/gfortran-12", "gcc", "12.2.0", Language::Fortran),
    ];
    let set = m.variant_set(&reg).unwrap();
    let cs: Vec<_> = set
        .variants
        .iter()
        .map(|v| concretize(v, &m, &reg, &p))
        .collect();
    let clang = cs
        .iter()
        .find(|c| c.variant.name.starts_with("clang"))
        .unwrap();
    assert!(clang.available, "{:?}", clang.reasons);
    assert_eq!(clang.compilers[&Language::C].path, "/usr/bin/clang-14");
    assert_eq!(
        clang.compilers[&Language::Fortran].path,
        "/usr/bin/gfortran-12"
    );
    // gcc@11's own Fortran must still be 11: there is none, so it cannot be built.
    let gcc = cs
        .iter()
        .find(|c| c.variant.name.starts_with("gcc"))
        .unwrap();
    assert!(!gcc.available, "{gcc:?}");
    assert!(
        gcc.reasons.iter().any(|r| r.contains("fortran")),
        "{:?}",
        gcc.reasons
    );
}
