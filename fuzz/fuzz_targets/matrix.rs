//! Matrix parsing and expansion: arbitrary bytes as a matrix file, against the builtin
//! descriptors and providers. A parse error must be well located; a parsed matrix must expand,
//! resolve and concretise (against an empty machine) without panicking.
#![no_main]

mod common;

use cfgmx_model::{concretize, Matrix, Profile, Registry, Source};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Matrices up to this many product combinations are expanded whole (`variant_set`, which
/// also checks name clashes); larger ones only stream their first `STREAM` combinations, so
/// one input cannot take seconds.
const WHOLE: u128 = 2048;
const STREAM: usize = 256;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let reg = registry();
    let src = Source::new("fuzz.toml", text);
    let m = match Matrix::parse(&src, reg) {
        Ok(m) => m,
        Err(d) => return common::check_diagnostics(&d),
    };
    common::check_list(&m.warnings, std::slice::from_ref(&src));
    let profile = Profile::empty(4);
    // Includes can add combinations beyond the product: bound them too.
    if m.product_size() <= WHOLE && m.include.len() <= 64 {
        match m.variant_set(reg) {
            Ok(set) => {
                assert!(!set.variants.is_empty());
                for v in set.variants.iter().take(16) {
                    let _ = concretize(v, &m, reg, &profile);
                    let mut line = Vec::new();
                    v.write_json_line(&mut line);
                    assert!(serde_json_ok(&line), "bad JSON line");
                }
            }
            Err(d) => common::check_diagnostics(&d),
        }
    } else {
        let mut r = cfgmx_model::Resolver::new(&m, reg);
        for c in m.combos().take(STREAM) {
            match r.resolve(&c) {
                Ok(v) => {
                    let _ = concretize(&v, &m, reg, &profile);
                }
                Err(d) => common::check_list(&[d], std::slice::from_ref(&src)),
            }
        }
    }
});

/// The streamed record (`expand --jsonl`) must be one valid JSON value.
fn serde_json_ok(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice::<serde_json::Value>(line).is_ok()
}
