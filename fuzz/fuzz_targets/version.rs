//! Version-text detection: input `EXE\nARG\nOUTPUT` is given to every builtin toolchain's
//! `detect_version` (with ARG and with each of its own rules' arguments), and every line of it
//! to `Version::parse` and `VersionRange::parse`/`contains`, whose order must be consistent.
#![no_main]

use cfgmx_model::{Registry, Version, VersionRange};
use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;
use std::sync::OnceLock;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::builtin)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let exe = parts.next().unwrap_or("");
    let arg = parts.next().unwrap_or("");
    let output = parts.next().unwrap_or("");
    let given = vec![arg.to_string()];
    for t in registry().toolchains.values() {
        // The fuzzed argument, then each rule's own (so every rule's regexes see the output).
        for args in std::iter::once(&given).chain(t.version.iter().map(|r| &r.args)) {
            if let Some(d) = t.detect_version(exe, args, output) {
                assert!(d.rule < t.version.len());
                // What was detected must read back the same way.
                let again = Version::parse(d.version.as_str()).expect("detected version reparses");
                assert_eq!(again.cmp(&d.version), Ordering::Equal);
            }
        }
    }
    let versions: Vec<Version> = text.lines().take(8).filter_map(Version::parse).collect();
    for w in versions.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{a} vs {b}");
        if a.starts_with(b) {
            assert!(a >= b, "{a} extends {b} but sorts below it");
        }
    }
    for line in text.lines().take(8) {
        if let Ok(r) = VersionRange::parse(line) {
            let _ = r.to_string();
            for v in &versions {
                let _ = r.contains(v);
            }
            // A single version is in its own exact range.
            if let Some(v) = Version::parse(line) {
                if !line.contains(':') {
                    assert!(r.contains(&v), "{line} not in its own range");
                }
            }
        }
    }
});
