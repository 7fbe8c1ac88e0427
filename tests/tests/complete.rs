//! Shell completion asks the binary (`COMPLETE=bash`, clap_complete's protocol) and gets what
//! exists here: format names for `-f`, the embedded matrices and the `*.toml` files of the
//! directory for MATRIX, and for a variant the default matrix's names plus the names and
//! hashes recorded in cfgmx.lock.

use cfgmx_tests::{bin, run_in, tempdir};
use std::path::Path;

/// The candidates bash would be offered for the last word of `words`.
fn complete(dir: &Path, words: &[&str]) -> Vec<String> {
    let o = std::process::Command::new(bin())
        .arg("--")
        .args(words)
        .current_dir(dir)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .split(['\u{b}', '\n'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn formats_matrices_variants_and_locked_hashes_complete() {
    let dir = tempdir();
    let d = dir.path();
    let f = complete(d, &["cfgmx", "generate", "-f", "cmake-"]);
    assert_eq!(
        f,
        ["cmake-presets", "cmake-toolchain", "cmake-cache"],
        "{f:?}"
    );
    assert!(complete(d, &["cfgmx", "generate", "-f", "github"])
        .contains(&"github-workflow".to_string()));
    // Every format of the table, in its order, and nothing else.
    let all = complete(d, &["cfgmx", "generate", "-f", ""]);
    let table: Vec<&str> = cfgmx_render::FORMATS.iter().map(|f| f.name).collect();
    assert_eq!(all, table);

    std::fs::write(
        d.join("mine.toml"),
        "name = \"mine\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"release\"]\n",
    )
    .unwrap();
    let m = complete(d, &["cfgmx", "expand", ""]);
    for want in ["hpc16", "solver", "mine.toml"] {
        assert!(m.contains(&want.to_string()), "{want} not in {m:?}");
    }

    let v = complete(d, &["cfgmx", "show", "gcc-thr"]);
    assert_eq!(v, ["gcc-threaded-debug", "gcc-threaded-release"], "{v:?}");

    // a lock written by expand --lock: its names and hashes complete `env`
    run_in(d, &["expand", "--probe", "--lock", "mine.toml"]).expect_code(0);
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cfgmx.lock")).unwrap()).unwrap();
    let text = lock.to_string();
    let e = complete(d, &["cfgmx", "env", ""]);
    assert!(e.contains(&"gcc-none-release".to_string()), "{e:?}");
    let hashes: Vec<&String> = e
        .iter()
        .filter(|w| w.len() == 12 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert!(!hashes.is_empty(), "no hash offered: {e:?}");
    assert!(
        hashes.iter().all(|h| text.contains(h.as_str())),
        "{hashes:?}"
    );
    // and a hash prefix typed completes to the lock's hash
    let first = hashes[0].clone();
    let one = complete(d, &["cfgmx", "env", &first[..5]]);
    assert!(one.contains(&first), "{one:?}");
}
