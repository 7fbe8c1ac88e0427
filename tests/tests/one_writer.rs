//! One writer per file: `cfgmx build` configures each variant from the very files
//! `cfgmx generate` renders (cfgmx-render's quoting), never from a second writer of its own.
//! A value CMake can hold but Meson cannot (`it's`) builds with CMake, read back exactly from
//! the cache, and makes the variant unavailable, with the reason, for a Meson build.

use cfgmx_tests::{explain, variants, MatrixDir};

const MATRIX: &str = r#"name = "onewriter"
languages = ["c"]
[axes]
compiler = ["gcc"]
blas = ["none"]
build = ["release"]
note = ["q"]
[values.note.q]
cmake = { NOTE = "it's a] ]=] b" }
meson = { c_std = "it's" }
"#;

#[test]
fn a_build_reads_back_the_rendered_values_and_only_its_own_system_s_files() {
    let env = MatrixDir::new(MATRIX);
    let cm = env.path().join("cm");
    cfgmx_tests::write_c_project(
        &cm,
        "file(WRITE \"${CMAKE_BINARY_DIR}/note.txt\" \"${NOTE}\")\nadd_test(NAME t COMMAND t)\n",
        "int main(void) { return 0; }\n",
    );
    let o = env
        .cmd(&[
            "build",
            "m.toml",
            "--source",
            "cm",
            "--build-root",
            "root",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = &variants(&r)[0];
    assert_eq!(v["status"], "passed", "{v:#}");
    let hash = v["hash"].as_str().unwrap();
    let dir = env.path().join("root").join(&hash[..16]);
    let dir = if dir.is_dir() {
        dir
    } else {
        // the directory name is the store key: find the one holding this variant's build
        std::fs::read_dir(env.path().join("root"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.join("build/note.txt").is_file())
            .expect("a build directory with note.txt")
    };
    assert_eq!(
        std::fs::read_to_string(dir.join("build/note.txt")).unwrap(),
        "it's a] ]=] b"
    );
    // exactly what `generate -f cmake-cache` writes
    let g = env
        .cmd(&["generate", "m.toml", "-f", "cmake-cache", "-o", "gen"])
        .output()
        .unwrap();
    assert_eq!(g.status.code(), Some(0), "{}", explain(&g));
    let generated: Vec<String> = walk(&env.path().join("gen"));
    let cache = std::fs::read_to_string(dir.join("cfgmx-cache.cmake")).unwrap();
    assert!(
        generated.contains(&cache),
        "the build's cache differs from the generated one:\n{cache}"
    );

    // The same matrix against a Meson project: Meson strings cannot hold `'`.
    let me = env.path().join("me");
    std::fs::create_dir_all(&me).unwrap();
    std::fs::write(
        me.join("meson.build"),
        "project('p', 'c')\nt = executable('t', 't.c')\ntest('t', t)\n",
    )
    .unwrap();
    std::fs::write(me.join("t.c"), "int main(void) { return 0; }\n").unwrap();
    let o = env
        .cmd(&[
            "build",
            "m.toml",
            "--source",
            "me",
            "--build-root",
            "root-me",
            "--json",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", explain(&o)));
    let v = &variants(&r)[0];
    assert_eq!(v["status"], "unavailable", "{v:#}");
    let why = v["reason"].as_str().unwrap();
    assert!(why.contains("meson-native"), "{why}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push(t);
        }
    }
    out
}
