//! Inputs the fuzz targets (`fuzz/`) once failed on, kept as regular tests. Each file under
//! `tests/fuzz-regressions/matrix/` is parsed (and expanded) as a matrix, each under
//! `descriptor/` as a toolchain and as a provider; every error must be a located diagnostic
//! with a message, the invariant the fuzz targets check.

use cfgmx_model::{Diagnostics, Matrix, Provider, Registry, Source, Toolchain};
use std::path::Path;

fn files(kind: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fuzz-regressions")
        .join(kind);
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("dir entry").path();
            let bytes = std::fs::read(&p).expect("read regression");
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                String::from_utf8(bytes)
                    .expect("regressions are UTF-8, as the targets skip other input"),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression in {}", dir.display());
    out
}

/// Every diagnostic has a message and, when it has a span, one inside its file at the line
/// and column it claims.
fn check(name: &str, d: &Diagnostics) {
    assert!(
        !d.diagnostics.is_empty(),
        "{name}: error without diagnostic"
    );
    for x in &d.diagnostics {
        assert!(!x.message.trim().is_empty(), "{name}: empty message: {x:?}");
        if let Some(span) = &x.span {
            let src = d
                .sources
                .iter()
                .find(|s| s.name == x.file)
                .expect("source kept");
            assert!(span.end <= src.text.len(), "{name}: {x:?}");
            assert!(src.text.is_char_boundary(span.start), "{name}: {x:?}");
            let (l, c) = src.line_col(span.start);
            assert_eq!((x.line, x.column), (Some(l), Some(c)), "{name}");
        }
    }
}

#[test]
fn matrix_regressions_give_located_messages() {
    let reg = Registry::builtin();
    for (name, text) in files("matrix") {
        match Matrix::parse(&Source::new(&name, text), &reg) {
            Ok(m) => {
                if let Err(d) = m.variant_set(&reg) {
                    check(&name, &d)
                }
            }
            Err(d) => check(&name, &d),
        }
    }
}

#[test]
fn descriptor_regressions_give_located_messages() {
    for (name, text) in files("descriptor") {
        let src = Source::new(&name, text);
        if let Err(d) = Toolchain::parse(&src) {
            check(&name, &d);
        }
        if let Err(d) = Provider::parse(&src) {
            check(&name, &d);
        }
    }
}

#[test]
fn stray_control_character_is_named() {
    let src = Source::new("m.toml", "# a\u{b}b\nname = \"x\"\n");
    let d = Matrix::parse(&src, &Registry::builtin()).unwrap_err();
    let x = &d.diagnostics[0];
    assert_eq!(x.message, "unexpected control character U+000B");
    assert_eq!((x.line, x.column), (Some(1), Some(4)));
}
