//! `cfgmx expand`, `show`, `diff`, `toolchains`, `providers` as a user and a CI script see them.

use cfgmx_tests::{repo, run_in, tempdir};
use std::collections::HashSet;

#[test]
fn default_matrix_json_has_16_distinct_variants_with_flags() {
    let d = tempdir();
    let r = run_in(d.path(), &["expand", "--json"]);
    r.expect_code(0);
    let v = r.json();
    let vs = v.as_array().expect("a JSON array of variant records");
    assert_eq!(vs.len(), 16);
    let hashes: HashSet<&str> = vs.iter().map(|x| x["hash"].as_str().unwrap()).collect();
    assert_eq!(hashes.len(), 16);
    for x in vs {
        for key in ["name", "hash", "axes", "flags"] {
            assert!(x.get(key).is_some(), "record lacks {key}: {x}");
        }
        let short = x["short_hash"].as_str().unwrap();
        assert!(x["hash"].as_str().unwrap().starts_with(short) && short.len() >= 7);
        let cflags: Vec<&str> = x["flags"]["cflags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let (c, b) = (
            x["axes"]["compiler"].as_str().unwrap(),
            x["axes"]["blas"].as_str().unwrap(),
        );
        let omp = match c {
            "gcc" => "-fopenmp",
            "icc" => "-qopenmp",
            "pgi" => "-mp",
            "xl" => "-qsmp=omp",
            other => panic!("unexpected compiler {other}"),
        };
        assert_eq!(
            cflags.contains(&omp),
            b == "threaded",
            "{}: {cflags:?}",
            x["name"]
        );
    }
}

#[test]
fn jsonl_streams_full_hashes_matching_json() {
    let d = tempdir();
    let lines = run_in(d.path(), &["expand", "--jsonl"])
        .expect_code(0)
        .stdout();
    let json = run_in(d.path(), &["expand", "--json"]).json();
    let recs: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 16);
    for (a, b) in recs.iter().zip(json.as_array().unwrap()) {
        assert_eq!(a["hash"], b["hash"]);
        assert_eq!(a["flags"], b["flags"]);
        // Same object (key order aside: streamed axes are in the hashed, sorted order).
        assert_eq!(a["axes"], b["axes"]);
        assert_eq!(a["hash"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn table_lists_every_variant_with_short_hash() {
    let d = tempdir();
    let out = run_in(d.path(), &["expand"]).expect_code(0).stdout();
    assert!(out.starts_with("NAME"));
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("-debug") || l.contains("-release"))
            .count(),
        16
    );
    assert!(out.contains("16 variants from matrix `hpc16`"));
}

#[test]
fn show_finds_by_name_and_by_hash_prefix() {
    let d = tempdir();
    let json = run_in(d.path(), &["expand", "--json"]).json();
    let first = &json[3];
    let name = first["name"].as_str().unwrap();
    let short = first["short_hash"].as_str().unwrap();
    let by_name = run_in(d.path(), &["show", name]).expect_code(0).stdout();
    let by_hash = run_in(d.path(), &["show", short]).expect_code(0).stdout();
    assert_eq!(by_name, by_hash);
    assert!(by_name.contains(first["hash"].as_str().unwrap()));
    let spec = run_in(d.path(), &["show", name, "--spec", "--json"]).json();
    assert_eq!(spec["schema"], "cfgmx-spec/2");
    let miss = run_in(d.path(), &["show", "gcc-threaded-debugg"]);
    miss.expect_code(2);
    assert!(
        miss.stderr().contains("no variant `gcc-threaded-debugg`"),
        "{}",
        miss.stderr()
    );
}

#[test]
fn diff_names_the_inputs_that_differ() {
    let d = tempdir();
    let r = run_in(
        d.path(),
        &[
            "diff",
            "gcc-threaded-debug",
            "gcc-sequential-debug",
            "--json",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(r["same_hash"], false);
    let paths: Vec<&str> = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"axes.blas"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("resolved.flags.cflags")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("resolved.toolchain")),
        "same compiler: {paths:?}"
    );
    let same = run_in(
        d.path(),
        &["diff", "gcc-threaded-debug", "gcc-threaded-debug"],
    )
    .expect_code(0)
    .stdout();
    assert!(same.contains("identical specs"));
}

#[test]
fn diff_across_matrix_files_shows_an_edited_descriptor_flag() {
    let d = tempdir();
    let tc = d.path().join("tc");
    std::fs::create_dir(&tc).unwrap();
    let gcc = std::fs::read_to_string(repo().join("toolchains/gcc.toml")).unwrap();
    std::fs::write(
        tc.join("gcc.toml"),
        // gcc's debug is the defaults' (toolchains/base/defaults.toml): its own overrides it
        format!("{gcc}\n[[facets.debug]]\nflags = [\"-g3\", \"-O0\"]\n"),
    )
    .unwrap();
    let base = run_in(d.path(), &["expand", "--json"]).json();
    let edited = run_in(d.path(), &["--toolchains", "tc", "expand", "--json"]).json();
    let changed: Vec<&str> = base
        .as_array()
        .unwrap()
        .iter()
        .zip(edited.as_array().unwrap())
        .filter(|(a, b)| a["hash"] != b["hash"])
        .map(|(a, _)| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["gcc-sequential-debug", "gcc-threaded-debug"]);
}

#[test]
fn toolchains_and_providers_list_the_registry() {
    let d = tempdir();
    let t = run_in(d.path(), &["toolchains"]).expect_code(0).stdout();
    for fam in [
        "gcc",
        "clang",
        "apple-clang",
        "icc",
        "oneapi",
        "pgi",
        "nvhpc",
        "xl",
        "cce",
        "aocc",
        "armclang",
        "fujitsu",
        "msvc",
    ] {
        assert!(
            t.lines().any(|l| l.starts_with(&format!("{fam} "))),
            "no {fam} in\n{t}"
        );
    }
    let j = run_in(d.path(), &["toolchains", "--json"]).json();
    assert!(j.as_array().unwrap().len() >= 13);
    // One family: text for people (each facet's flags, from the descriptor), JSON on --json.
    let one = run_in(d.path(), &["toolchains", "clang"])
        .expect_code(0)
        .stdout();
    assert!(
        serde_json::from_str::<serde_json::Value>(&one).is_err(),
        "JSON without --json:\n{one}"
    );
    let desc = run_in(d.path(), &["toolchains", "clang", "--json"]).json();
    assert_eq!(desc["name"], "clang");
    assert!(one.starts_with("family        clang\n"), "{one}");
    for (facet, cands) in desc["facets"].as_object().unwrap() {
        for c in cands.as_array().unwrap() {
            let flags: Vec<&str> = c["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert!(
                one.contains(&flags.join(" ")),
                "facet {facet}: {flags:?} not shown:\n{one}"
            );
        }
    }
    let p = run_in(d.path(), &["providers"]).expect_code(0).stdout();
    for id in [
        "openblas-serial",
        "openblas-pthread",
        "openblas-openmp",
        "blis-openmp",
        "mkl-sequential",
        "mkl-intel_thread",
        "mkl-gnu_thread",
        "reference-sequential",
        "essl-smp",
    ] {
        assert!(p.contains(id), "no {id} in\n{p}");
    }
}

#[test]
fn usage_errors_exit_2_with_advice() {
    let d = tempdir();
    let r = run_in(d.path(), &["expand", "nosuchmatrix"]);
    r.expect_code(2);
    assert!(r.stderr().contains("embedded matrices: "), "{}", r.stderr());
    run_in(d.path(), &["frobnicate"]).expect_code(2);
    let h = run_in(d.path(), &["--help"]).expect_code(0).stdout();
    assert!(h.contains("Exit codes") && h.contains("Examples"));
}

#[test]
fn closed_pipe_is_not_an_error() {
    // A million-variant stream is cut after 10 bytes: cfgmx must end quietly, not panic.
    let m = repo().join("bench/million.toml");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} expand {} --jsonl | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}",
            cfgmx_tests::bin().display(),
            m.display()
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(status == "0" || status == "141", "status {status}");
}

/// `show --spec` prints the three lines the spec hash digests and the resolved part the third
/// line digests: recomputed with sha256sum, both give the variant's hash.
#[test]
fn show_spec_prints_the_documents_the_hash_is_computed_from() {
    let dir = tempdir();
    let json = run_in(dir.path(), &["expand", "--json"]).json();
    let list = json.as_array().or(json["variants"].as_array()).unwrap();
    let v = list
        .iter()
        .find(|v| v["name"] == "gcc-threaded-debug")
        .unwrap();
    let full = v["hash"].as_str().unwrap();
    let out = run_in(dir.path(), &["show", "gcc-threaded-debug", "--spec"]);
    out.expect_code(0);
    let text = out.stdout();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines[0], "cfgmx-spec/2", "{text}");
    assert!(
        lines[1].starts_with("axes {\"blas\":\"threaded\""),
        "{text}"
    );
    let resolved_sha = lines[2].strip_prefix("resolved ").unwrap();
    let sha = |bytes: &[u8]| {
        let mut c = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(bytes).unwrap();
        let o = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let doc = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]);
    assert_eq!(sha(doc.as_bytes()), full, "{text}");
    // the pretty JSON below, made canonical (compact, sorted keys), is what `resolved` digests
    let pretty = &lines[4..].join("\n");
    let value: serde_json::Value = serde_json::from_str(pretty).unwrap();
    let canonical = serde_json::to_string(&sorted(&value)).unwrap();
    assert_eq!(sha(canonical.as_bytes()), resolved_sha);
}

fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let mut m = serde_json::Map::new();
            for k in keys {
                m.insert(k.clone(), sorted(&o[k]));
            }
            serde_json::Value::Object(m)
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
        x => x.clone(),
    }
}
