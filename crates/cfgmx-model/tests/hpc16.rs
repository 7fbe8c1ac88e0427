//! The foundation's promises, checked on the embedded data: hpc16 gives 16 distinct variants
//! with the real OpenMP spellings, debug means debug, and hashes move exactly when their
//! inputs do.

use cfgmx_model::registry::{builtin_provider_files, builtin_toolchain_files};
use cfgmx_model::{Language, Matrix, Registry, Source, Variant};
use std::collections::{HashMap, HashSet};

fn hpc16(reg: &Registry) -> Vec<Variant> {
    let src = cfgmx_model::registry::builtin_matrix("hpc16").expect("hpc16 is embedded");
    Matrix::parse(&src, reg)
        .unwrap()
        .variant_set(reg)
        .unwrap()
        .variants
}

fn all_flags(v: &Variant) -> Vec<String> {
    let f = v.flags();
    f.cflags
        .iter()
        .chain(&f.cxxflags)
        .chain(&f.fflags)
        .cloned()
        .collect()
}

#[test]
fn hpc16_has_16_distinct_variants() {
    let vs = hpc16(&Registry::builtin());
    assert_eq!(vs.len(), 16);
    assert_eq!(vs.iter().map(|v| &v.hash).collect::<HashSet<_>>().len(), 16);
    assert_eq!(vs.iter().map(|v| &v.name).collect::<HashSet<_>>().len(), 16);
}

#[test]
fn threaded_variants_carry_each_compilers_openmp_flag() {
    let want = [
        ("gcc", "-fopenmp"),
        ("icc", "-qopenmp"),
        ("pgi", "-mp"),
        ("xl", "-qsmp=omp"),
    ];
    for v in hpc16(&Registry::builtin()) {
        let fam = v.axes.get("compiler").unwrap().to_string();
        let flag = want.iter().find(|(f, _)| *f == fam).unwrap().1;
        let threaded = &**v.axes.get("blas").unwrap() == "threaded";
        let f = v.flags();
        for lang_flags in [&f.cflags, &f.cxxflags, &f.fflags] {
            assert_eq!(
                lang_flags.iter().any(|x| x == flag),
                threaded,
                "{}: {:?}",
                v.name,
                lang_flags
            );
        }
        for lang in [Language::C, Language::Cxx, Language::Fortran] {
            assert_eq!(
                f.link_args(lang).iter().any(|x| x == flag),
                threaded,
                "{} links {lang:?} with OpenMP",
                v.name
            );
        }
        // A facet's link flag is its own compiler's: never in the language-independent part.
        assert!(!f.ldflags.iter().any(|x| x == flag), "{}", v.name);
        let blas = &v.resolved.blas.as_ref().unwrap().build;
        assert_eq!(blas.threading.is_threaded(), threaded, "{}", v.name);
        if threaded {
            assert!(f.env.contains_key("OMP_NUM_THREADS"), "{}", v.name);
        }
    }
}

#[test]
fn debug_means_g_and_no_optimisation_beyond_o1() {
    let optimising = ["-O2", "-O3", "-O4", "-O5", "-Ofast", "-fast", "-O", "-Os"];
    for v in hpc16(&Registry::builtin()) {
        let flags = all_flags(&v);
        let debug = &**v.axes.get("build").unwrap() == "debug";
        if debug {
            assert!(
                flags.iter().any(|f| f == "-g"),
                "{} lacks -g: {flags:?}",
                v.name
            );
            assert!(
                !flags.iter().any(|f| optimising.contains(&f.as_str())),
                "{} optimises: {flags:?}",
                v.name
            );
            assert_eq!(v.flags().cmake["CMAKE_BUILD_TYPE"], "Debug");
        } else {
            assert!(
                flags.iter().any(|f| optimising.contains(&f.as_str())),
                "{} does not optimise",
                v.name
            );
            assert_eq!(v.flags().cmake["CMAKE_BUILD_TYPE"], "Release");
        }
    }
}

/// The registry with one descriptor's text edited.
fn registry_with(family_file: &str, edit: impl Fn(&str) -> String) -> Registry {
    let mut reg = Registry::default();
    let tcs: Vec<Source> = builtin_toolchain_files()
        .iter()
        .map(|(f, t)| {
            let text = if *f == family_file {
                edit(t)
            } else {
                t.to_string()
            };
            Source::new(*f, text)
        })
        .collect();
    reg.add_toolchains(&tcs).unwrap();
    let ps: Vec<Source> = builtin_provider_files()
        .iter()
        .map(|(f, t)| Source::new(*f, *t))
        .collect();
    reg.add_providers(&ps).unwrap();
    reg
}

fn hashes(reg: &Registry) -> HashMap<String, String> {
    hpc16(reg).into_iter().map(|v| (v.name, v.hash)).collect()
}

#[test]
fn changing_a_facet_flag_changes_only_the_variants_that_use_it() {
    let base = hashes(&Registry::builtin());
    let edited = hashes(&registry_with("gcc.toml", |t| {
        let t2 = t.replacen(
            "flags = [\"-fopenmp\"]",
            "flags = [\"-fopenmp\", \"-fopenmp-simd\"]",
            1,
        );
        assert_ne!(t, t2, "the edit applies");
        t2
    }));
    for (name, h) in &base {
        let changed = edited[name] != *h;
        let uses_it = name.starts_with("gcc-threaded");
        assert_eq!(changed, uses_it, "{name}: changed={changed}");
    }

    // gcc's debug is the defaults' (toolchains/base/defaults.toml): spelling its own
    // overrides it for gcc alone.
    let edited = hashes(&registry_with("gcc.toml", |t| {
        format!("{t}\n[[facets.debug]]\nflags = [\"-g3\", \"-O0\"]\n")
    }));
    for (name, h) in &base {
        assert_eq!(
            edited[name] != *h,
            name.starts_with("gcc-") && name.ends_with("-debug"),
            "{name}"
        );
    }
}

#[test]
fn formatting_and_comments_do_not_change_hashes() {
    let base = hashes(&Registry::builtin());
    let edited = hashes(&registry_with("gcc.toml", |t| {
        format!(
            "# a comment\n\n{}\n# trailing\n",
            t.replace(" = ", "   =   ")
        )
    }));
    assert_eq!(base, edited);
}

#[test]
fn axis_order_does_not_change_hashes_but_values_do() {
    let reg = Registry::builtin();
    let a = "name = \"a\"\n[axes]\ncompiler = [\"gcc\"]\nbuild = [\"debug\"]\n";
    let b = "name = \"b\"\n[axes]\nbuild = [\"debug\"]\ncompiler = [\"gcc\"]\n";
    let h = |t: &str| {
        Matrix::parse(&Source::new("m.toml", t), &reg)
            .unwrap()
            .variant_set(&reg)
            .unwrap()
            .variants[0]
            .hash
            .clone()
    };
    assert_eq!(h(a), h(b));
    assert_ne!(h(a), h(&a.replace("debug", "release")));
}

/// A self-contained descriptor and matrix, so repository data edits do not move this pin: the
/// same inputs must hash the same on every machine and in every release until the hash schema
/// changes (then bump `cfgmx-spec/N` and this value together).
#[test]
fn hashes_are_pinned_for_fixed_inputs() {
    let tc = r#"
name = "tiny"
[executables]
c = ["tinycc"]
[[version]]
args = ["--version"]
regex = ['tiny (\d+\.\d+)']
[[facets.debug]]
flags = ["-g"]
[[facets.openmp]]
flags = ["-fopenmp"]
link = ["-fopenmp"]
runtime = "gomp"
"#;
    let pv = r#"
name = "blas"
[[builds]]
name = "omp"
threading = "openmp"
libs = ["blas"]
openmp_runtime = "gomp"
thread_vars = ["OMP_NUM_THREADS"]
"#;
    let mut reg = Registry::default();
    reg.add_toolchains(&[Source::new("tiny.toml", tc)]).unwrap();
    reg.add_providers(&[Source::new("blas.toml", pv)]).unwrap();
    let m = r#"
name = "pin"
languages = ["c"]
[blas]
prefer = ["blas"]
[axes]
compiler = ["tiny"]
blas = ["threaded"]
build = ["debug"]
"#;
    let m = Matrix::parse(&Source::new("pin.toml", m), &reg).unwrap();
    let v = &m.variant_set(&reg).unwrap().variants[0];
    assert_eq!(v.name, "tiny-threaded-debug");
    assert_eq!(v.flags().cflags, ["-g", "-fopenmp"]);
    assert!(v.flags().ldflags.is_empty());
    assert_eq!(v.flags().link[&Language::C], ["-fopenmp"]);
    assert_eq!(v.hash, PINNED, "the spec hash of fixed inputs moved");
}

// cfgmx-spec/2: facet link flags moved from the shared `ldflags` into `link` per language
// (the hashed flag set changed shape, so the schema line and this value moved together).
const PINNED: &str = "4f459e6237c51fceaac572a78a770e167817848dc7c6b6cf79d52fcf1fbe912e";

/// A family's own driver spelling is hashed (cl's `.lib` shapes its link lines): editing it
/// moves that family's hashes, and a family that keeps the defaults' is untouched.
#[test]
fn editing_a_familys_driver_spelling_moves_its_hashes() {
    let m = "name = \"d\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"msvc\", \"gcc\"]\nblas = [\"sequential\"]\n";
    let hashes = |reg: &Registry| -> Vec<String> {
        let m = Matrix::parse(&Source::new("d.toml", m), reg).unwrap();
        let set = m.variant_set(reg).unwrap();
        set.variants.iter().map(|v| v.hash.clone()).collect()
    };
    let base = hashes(&Registry::builtin());
    let edited = hashes(&registry_with("msvc.toml", |t| {
        let t2 = t.replacen("library = [\"{}.lib\"]", "library = [\"lib{}.lib\"]", 1);
        assert_ne!(t, t2, "the edit applies");
        t2
    }));
    assert_ne!(base[0], edited[0], "msvc");
    assert_eq!(base[1], edited[1], "gcc");
}
