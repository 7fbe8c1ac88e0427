//! Descriptor parsing: arbitrary bytes as a toolchain descriptor and as a BLAS provider. Errors
//! must be well located; a parsed toolchain must read versions from text (its own regexes are
//! fuzz input), and a parsed descriptor must load into a registry that resolves a matrix.
#![no_main]

mod common;

use cfgmx_model::{Language, Matrix, Provider, Registry, Source, Toolchain};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::builtin)
}

/// Version texts a descriptor's rules are tried on (the input itself is tried too).
const TEXTS: &[&str] = &[
    "12.2.0\n",
    "gcc (Debian 12.2.0-14) 12.2.0\nCopyright (C) 2022 Free Software Foundation, Inc.\n",
    "Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu\n",
    "icc (ICC) 2021.10.0 20230609\n",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let src = Source::new("fuzz.toml", text);
    match Toolchain::parse(&src) {
        Ok(t) => exercise_toolchain(&t, &src, text),
        Err(d) => common::check_diagnostics(&d),
    }
    match Provider::parse(&src) {
        Ok(p) => {
            let mut reg = registry().clone();
            match reg.add_providers(std::slice::from_ref(&src)) {
                Ok(()) => {
                    for b in &p.builds {
                        let id = format!("{}-{}", p.name, b.name);
                        let _ = reg.blas(&id);
                        resolve_with(&reg, "gcc", &id);
                    }
                }
                Err(d) => common::check_diagnostics(&d),
            }
        }
        Err(d) => common::check_diagnostics(&d),
    }
});

fn exercise_toolchain(t: &Toolchain, src: &Source, text: &str) {
    let _ = t.to_json();
    let _ = t.languages();
    let _ = t.openmp_runtime();
    for lang in Language::ALL {
        for exe in t.executables.for_lang(lang) {
            let _ = t.executables.matches(lang, exe);
            let _ = t.executables.matches(lang, &format!("{exe}-12"));
        }
    }
    for rule in &t.version {
        for out in TEXTS.iter().copied().chain([text]) {
            let name = t.executables.c.first().map_or("cc", String::as_str);
            let _ = t.detect_version(name, &rule.args, out);
        }
    }
    let mut reg = registry().clone();
    match reg.add_toolchains(std::slice::from_ref(src)) {
        Ok(()) => resolve_with(&reg, &t.name, "sequential"),
        Err(d) => common::check_diagnostics(&d),
    }
}

/// Resolves a small matrix (every build mode, int64, threaded and given BLAS) with `compiler`.
fn resolve_with(reg: &Registry, compiler: &str, blas: &str) {
    let m = format!(
        "name = \"d\"\n[axes]\ncompiler = [\"{compiler}\"]\nblas = [\"{blas}\", \"threaded\"]\n\
         build = [\"debug\", \"release\", \"relwithdebinfo\", \"minsizerel\"]\n\
         int = [\"lp64\", \"ilp64\"]\n[values.int.ilp64]\nfacets = [\"int64\", \"pic\"]\n"
    );
    let msrc = Source::new("d.toml", m);
    match Matrix::parse(&msrc, reg) {
        Ok(m) => {
            if let Err(d) = m.variant_set(reg) {
                common::check_diagnostics(&d);
            }
        }
        Err(d) => common::check_diagnostics(&d),
    }
}
