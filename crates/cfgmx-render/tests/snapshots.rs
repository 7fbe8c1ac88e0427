//! What users read, pinned: each format rendered for the first variant(s) of the gcc-clang
//! fixture matrix (abstract, so no machine paths). A change shows up as a diff here;
//! `CFGMX_BLESS=1 cargo test -p cfgmx-render --test snapshots` rewrites the snapshots.

use cfgmx_model::{Matrix, Registry, Source};
use cfgmx_render::{Context, Format, Renderer};
use std::path::Path;

#[test]
fn rendered_files_match_their_snapshots() {
    let reg = Registry::builtin();
    let src = Source::new(
        "gcc-clang.toml",
        include_str!("../../../tests/matrices/gcc-clang.toml"),
    );
    let m = Matrix::parse(&src, &reg).unwrap();
    let set = m.variant_set(&reg).unwrap();
    let ctx = Context::new(
        &m,
        set.variants.iter().map(|v| (v, None)),
        set.short_len,
        None,
    )
    .with_packages(&reg);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let bless = std::env::var_os("CFGMX_BLESS").is_some();
    let mut stale = Vec::new();
    for f in Format::ALL {
        let files = Renderer::new().render(f, &ctx).unwrap();
        // Per-variant formats: a gcc and a clang variant cover the differences (and Lmod's
        // compiler modules, one per compiler).
        let keep: Vec<_> = if f.per_variant() {
            files
                .into_iter()
                .filter(|x| {
                    let n = x.path.to_string_lossy();
                    n.contains("gcc-threaded-release")
                        || n.contains("clang-threaded-debug")
                        || n.contains("/Core/")
                })
                .collect()
        } else {
            files
        };
        for file in keep {
            let snap = dir.join(f.as_str()).join(&file.path);
            if bless {
                std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
                std::fs::write(&snap, &file.content).unwrap();
                continue;
            }
            match std::fs::read_to_string(&snap) {
                Ok(want) if want == file.content => {}
                Ok(want) => stale.push(format!(
                    "{}: differs\n--- snapshot\n{want}\n--- rendered\n{}",
                    snap.display(),
                    file.content
                )),
                Err(_) => stale.push(format!("{}: no snapshot", snap.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(CFGMX_BLESS=1 rewrites them)",
        stale.join("\n")
    );
}
