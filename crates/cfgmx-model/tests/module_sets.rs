//! Variants behind environment modules: the module-provided compiler comes first, another
//! family's Fortran is never a second compiler module (Lmod's `family("compiler")` would swap
//! the first out), the modules go into the variant and its concrete hash, and a profile without
//! modules concretises exactly as before.

use cfgmx_model::{
    concretize, CompilerRecord, Language, Matrix, ModuleSet, Profile, Provided, Registry, Source,
};

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

fn set(load: &[&str], path_var: &str, provides: &[&CompilerRecord]) -> ModuleSet {
    ModuleSet {
        load: load.iter().map(|s| s.to_string()).collect(),
        env: [("PATH".to_string(), path_var.to_string())]
            .into_iter()
            .collect(),
        compilers: provides.iter().map(|c| Provided::compiler(c)).collect(),
        ..ModuleSet::default()
    }
}

#[test]
fn module_compilers_come_first_and_another_familys_fortran_is_not_a_second_module() {
    let reg = Registry::builtin();
    let text = "name = \"t\"\nlanguages = [\"c\", \"fortran\"]\n[axes]\ncompiler = [\"clang@16\", \"gcc@11\"]\n[values.compiler.\"clang@16\"]\nfortran = \"gcc\"\n";
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    let clang_mod = rec("/m/clang-16/clang", "clang", "16.0.6", Language::C);
    let gcc_mod_c = rec("/m/gcc-11/gcc", "gcc", "11.3.0", Language::C);
    let gcc_mod_f = rec("/m/gcc-11/gfortran", "gcc", "11.3.0", Language::Fortran);
    let plain = vec![
        rec("/usr/bin/clang-16", "clang", "16.0.6", Language::C),
        rec("/usr/bin/gcc-11", "gcc", "11.3.0", Language::C),
        rec("/usr/bin/gfortran", "gcc", "12.2.0", Language::Fortran),
    ];
    let set_variants = m.variant_set(&reg).unwrap();
    let mut without = Profile::empty(2);
    without.compilers = plain.clone();
    let before: Vec<_> = set_variants
        .variants
        .iter()
        .map(|v| concretize(v, &m, &reg, &without))
        .collect();

    let mut p = Profile::empty(2);
    p.compilers = vec![clang_mod.clone(), gcc_mod_c.clone(), gcc_mod_f.clone()];
    p.compilers.extend(plain);
    p.modules = vec![
        set(&["clang/16"], "/m/clang-16:/usr/bin", &[&clang_mod]),
        set(&["gcc/11"], "/m/gcc-11:/usr/bin", &[&gcc_mod_c, &gcc_mod_f]),
    ];
    let cs: Vec<_> = set_variants
        .variants
        .iter()
        .map(|v| concretize(v, &m, &reg, &p))
        .collect();
    let clang = cs
        .iter()
        .find(|c| c.variant.name.starts_with("clang"))
        .unwrap();
    assert!(clang.available, "{:?}", clang.reasons);
    assert_eq!(clang.compilers[&Language::C].path, "/m/clang-16/clang");
    assert_eq!(
        clang.compilers[&Language::Fortran].path,
        "/usr/bin/gfortran"
    );
    assert_eq!(clang.modules, vec!["clang/16".to_string()]);
    assert_eq!(clang.module_env["PATH"], "/m/clang-16:/usr/bin");
    let gcc = cs
        .iter()
        .find(|c| c.variant.name.starts_with("gcc"))
        .unwrap();
    assert_eq!(gcc.compilers[&Language::Fortran].path, "/m/gcc-11/gfortran");
    assert_eq!(gcc.modules, vec!["gcc/11".to_string()]);
    // Modules are part of the concrete hash; without them nothing changed.
    let plain_gcc = before
        .iter()
        .find(|c| c.variant.name.starts_with("gcc"))
        .unwrap();
    assert!(plain_gcc.modules.is_empty() && plain_gcc.module_env.is_empty());
    assert_ne!(plain_gcc.concrete_hash, gcc.concrete_hash);
    let mut again = p.clone();
    again.modules[1].load = vec!["gcc/11.3.0".to_string()];
    let renamed = concretize(
        set_variants
            .variants
            .iter()
            .find(|v| v.name.starts_with("gcc"))
            .unwrap(),
        &m,
        &reg,
        &again,
    );
    assert_eq!(renamed.compilers, gcc.compilers);
    assert_ne!(
        renamed.concrete_hash, gcc.concrete_hash,
        "the module name is in the hash"
    );
}
