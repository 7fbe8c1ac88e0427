//! Data-driven check of the builtin toolchain descriptors against real compiler outputs
//! (`tests/fixtures/compiler-versions.toml`, see the README next to its source).
//!
//! For every `detect` case the family's descriptor must read the expected version (or a more
//! precise one) and no other family may claim the same output; for every `reject` case the
//! named descriptor (`*`: every descriptor) must not claim it. Exceptions are listed below with
//! their reasons. Failures name the case and its `source`, so a regression can be traced to the
//! real output it breaks.

use cfgmx_model::{Registry, Toolchain, Version};
use serde::Deserialize;

const FIXTURES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/compiler-versions.toml"
));

#[derive(Debug, Deserialize)]
struct Fixtures {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    family: String,
    version: String,
    argument: String,
    executable: String,
    expect: String,
    #[serde(default)]
    rejected_by: Option<String>,
    #[serde(default)]
    notes: String,
    source: String,
    output: String,
}

/// Fixture family -> descriptor `name`.
const FAMILIES: &[(&str, &str)] = &[
    ("gcc", "gcc"),
    ("clang", "clang"),
    ("apple-clang", "apple-clang"),
    ("intel-classic", "icc"),
    ("oneapi", "oneapi"),
    ("pgi", "pgi"),
    ("nvhpc", "nvhpc"),
    ("xl", "xl"),
    ("cce", "cce"),
    ("aocc", "aocc"),
    ("rocmcc", "rocmcc"),
    // Arm Compiler for Linux: vendor release numbering (22.1)
    ("acfl", "armclang"),
    // Arm Toolchain for Linux: same program names as ACfL, LLVM numbering; its own descriptor so
    // that neither `clang` nor `armclang` claims it (fixture reject cases for both)
    ("atfl", "atfl"),
    ("fujitsu", "fujitsu"),
    ("nag", "nag"),
    ("msvc", "msvc"),
];

/// A case is named by (family, argument, executable, version) in the lists below.
type Key = (&'static str, &'static str, &'static str, &'static str);

/// `detect` cases whose output does not contain the version at all: the right answer is that
/// the family's descriptor does not claim it (the probe then asks `--version`).
const UNDETECTABLE: &[(Key, &str)] = &[
    (
        ("clang", "-dumpversion", "clang", "7.0.1"),
        "clang <= ~10 prints the GCC-compatible 4.2.1",
    ),
    (
        ("clang", "-dumpversion", "clang++ (cygwin)", "8.0.1"),
        "clang <= ~10 prints the GCC-compatible 4.2.1",
    ),
];

/// `reject` cases the named descriptor does claim, and why that is right or unavoidable.
const REJECT_EXCEPTIONS: &[(Key, &str)] = &[
    (
        ("apple-clang", "-dumpversion", "gcc", "15.0.0"),
        "a bare `15.0.0` from a program named gcc: only the preprocessor identity check (__apple_build_version__) can tell",
    ),
    (
        ("apple-clang", "--version", "clang", "11.0.0"),
        "valid Apple clang output; Spack's refusal comes from requiring clang++ in the same prefix, not from the output",
    ),
];

/// `detect` cases another family's descriptor also claims (genuine ambiguities the probe's
/// identity check settles): (key, other descriptor, reason).
const CROSS_EXCEPTIONS: &[(Key, &str, &str)] = &[];

/// Executable names in a case that cannot have printed its output: the Spack unit-test pairs
/// list all three oneAPI drivers for every banner.
fn plausible(case: &Case, name: &str) -> bool {
    if case.family == "oneapi" {
        if case.output.contains("(IFORT)") || case.output.contains("(IFX)") {
            return name == "ifx";
        }
        if case.output.contains("DPC++") {
            return name != "ifx";
        }
    }
    true
}

/// `gcc.exe (MSYS2)` -> `gcc`, `cl.bat` -> `cl`: the file name a probe would pass.
fn exe_names(case: &Case) -> Vec<String> {
    case.executable
        .split('/')
        .map(|n| {
            let n = n.split(" (").next().unwrap().trim();
            let n = n
                .strip_suffix(".exe")
                .or_else(|| n.strip_suffix(".bat"))
                .unwrap_or(n);
            n.to_string()
        })
        .filter(|n| plausible(case, n))
        .collect()
}

fn args(case: &Case) -> Vec<String> {
    if case.argument.starts_with('(') {
        // "(no argument; cl prints banner)"
        Vec::new()
    } else {
        case.argument
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

fn descriptor_for(family: &str) -> &'static str {
    FAMILIES
        .iter()
        .find(|(f, _)| *f == family)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| panic!("fixture family `{family}` has no descriptor mapping"))
}

fn key_matches(k: &Key, c: &Case) -> bool {
    k.0 == c.family && k.1 == c.argument && k.2 == c.executable && k.3 == c.version
}

/// Names the case and where its output comes from, so a failure can be traced to its source.
fn describe(c: &Case) -> String {
    format!(
        "{} {} `{} {}` [{}]",
        c.family, c.version, c.executable, c.argument, c.source
    )
}

/// The descriptors the reject case says must not claim it (`rejected_by`, else the notes'
/// "NOT detected as 'x'"); `*` is every descriptor (an output that is no compiler's banner).
fn rejecters(c: &Case) -> Vec<&'static str> {
    if c.rejected_by.as_deref() == Some("*") {
        return FAMILIES.iter().map(|(_, d)| *d).collect();
    }
    let fam = match &c.rejected_by {
        Some(r) => r.clone(),
        None => {
            let rest = c
                .notes
                .split("NOT detected as '")
                .nth(1)
                .unwrap_or_else(|| panic!("{}: reject case names no rejecter", describe(c)));
            rest.split('\'').next().unwrap().to_string()
        }
    };
    vec![descriptor_for(&fam)]
}

fn load() -> (Registry, Vec<Case>) {
    let fixtures: Fixtures = toml::from_str(FIXTURES).expect("fixture file parses");
    assert!(!fixtures.case.is_empty());
    (Registry::builtin(), fixtures.case)
}

fn tc<'r>(reg: &'r Registry, name: &str) -> &'r Toolchain {
    reg.toolchains
        .get(name)
        .unwrap_or_else(|| panic!("no builtin descriptor `{name}`"))
}

#[test]
fn every_fixture_family_has_a_descriptor() {
    let (reg, cases) = load();
    for c in &cases {
        // "none": an output that is no compiler's, only ever a reject case for every descriptor
        if c.family == "none" {
            assert!(
                c.expect == "reject" && c.rejected_by.as_deref() == Some("*"),
                "{}: family none must be a reject case with rejected_by = \"*\"",
                describe(c)
            );
            continue;
        }
        tc(&reg, descriptor_for(&c.family));
    }
}

#[test]
fn detect_cases_report_the_expected_version() {
    let (reg, cases) = load();
    let mut failures = Vec::new();
    let mut used = vec![false; UNDETECTABLE.len()];
    for c in cases.iter().filter(|c| c.expect == "detect") {
        let t = tc(&reg, descriptor_for(&c.family));
        let expected = Version::parse(&c.version).expect("fixture version parses");
        let names = exe_names(c);
        assert!(
            !names.is_empty(),
            "{}: no plausible executable",
            describe(c)
        );
        let undetectable = UNDETECTABLE.iter().position(|(k, _)| key_matches(k, c));
        for name in &names {
            let got = t.detect_version(name, &args(c), &c.output);
            if let Some(i) = undetectable {
                used[i] = true;
                if let Some(d) = got {
                    failures.push(format!(
                        "{} as `{name}`: claimed {} from an output without the version",
                        describe(c),
                        d.version
                    ));
                }
                continue;
            }
            match got {
                None => failures.push(format!(
                    "{} as `{name}`: `{}` does not claim it",
                    describe(c),
                    t.name
                )),
                Some(d) => {
                    let ok = d.version.starts_with(&expected)
                        || (d.imprecise && expected.starts_with(&d.version));
                    if !ok {
                        failures.push(format!(
                            "{} as `{name}`: reported {}{}",
                            describe(c),
                            d.version,
                            if d.imprecise { " (imprecise)" } else { "" }
                        ));
                    }
                }
            }
        }
    }
    for (i, u) in used.iter().enumerate() {
        assert!(u, "stale UNDETECTABLE entry {:?}", UNDETECTABLE[i].0);
    }
    assert!(
        failures.is_empty(),
        "version detection failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn reject_cases_are_not_claimed() {
    let (reg, cases) = load();
    let mut failures = Vec::new();
    let mut used = vec![false; REJECT_EXCEPTIONS.len()];
    for c in cases.iter().filter(|c| c.expect == "reject") {
        let exception = REJECT_EXCEPTIONS
            .iter()
            .position(|(k, _)| key_matches(k, c));
        for t in rejecters(c).into_iter().map(|d| tc(&reg, d)) {
            for name in exe_names(c) {
                let got = t.detect_version(&name, &args(c), &c.output);
                match (got, exception) {
                    (Some(_), Some(i)) => used[i] = true,
                    (Some(d), None) => failures.push(format!(
                        "{} as `{name}`: `{}` claims it ({})",
                        describe(c),
                        t.name,
                        d.version
                    )),
                    (None, _) => {}
                }
            }
        }
    }
    for (i, u) in used.iter().enumerate() {
        assert!(
            u,
            "stale REJECT_EXCEPTIONS entry {:?}",
            REJECT_EXCEPTIONS[i].0
        );
    }
    assert!(
        failures.is_empty(),
        "wrongly claimed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn no_other_family_claims_a_detect_case() {
    let (reg, cases) = load();
    let mut failures = Vec::new();
    let mut used = vec![false; CROSS_EXCEPTIONS.len()];
    for c in cases.iter().filter(|c| c.expect == "detect") {
        let own = descriptor_for(&c.family);
        for name in exe_names(c) {
            for (other, t) in &reg.toolchains {
                if other == own {
                    continue;
                }
                if let Some(d) = t.detect_version(&name, &args(c), &c.output) {
                    match CROSS_EXCEPTIONS
                        .iter()
                        .position(|(k, o, _)| key_matches(k, c) && o == other)
                    {
                        Some(i) => used[i] = true,
                        None => failures.push(format!(
                            "{} as `{name}`: also claimed by `{other}` ({})",
                            describe(c),
                            d.version
                        )),
                    }
                }
            }
        }
    }
    for (i, u) in used.iter().enumerate() {
        assert!(
            u,
            "stale CROSS_EXCEPTIONS entry {:?}",
            CROSS_EXCEPTIONS[i].0
        );
    }
    assert!(
        failures.is_empty(),
        "cross-family confusion:\n{}",
        failures.join("\n")
    );
}

/// Every supported family keeps real outputs to be read against: a descriptor whose cases were
/// all dropped would pass the checks above without being tested.
#[test]
fn every_descriptor_has_real_detect_cases() {
    let (reg, cases) = load();
    for (family, desc) in FAMILIES {
        tc(&reg, desc);
        assert!(
            cases
                .iter()
                .any(|c| c.expect == "detect" && c.family == *family),
            "no detect case for family `{family}` (descriptor `{desc}`)"
        );
    }
}

/// Every descriptor's facets follow the conventions the resolver relies on.
#[test]
fn debug_facets_do_not_optimise() {
    let reg = Registry::builtin();
    for (name, t) in &reg.toolchains {
        for c in t.facet("debug") {
            for f in &c.flags {
                let high = ["-O2", "-O3", "-O4", "-Ofast", "-Os", "-fast", "/O1", "/O2"];
                assert!(!high.contains(&f.as_str()), "{name}: debug facet has {f}");
            }
        }
        if t.facet("openmp").is_empty() {
            panic!("{name}: no openmp facet");
        }
    }
}
