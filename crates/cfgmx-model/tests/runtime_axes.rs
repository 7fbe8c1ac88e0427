//! `[runtime]` points: the product of the runtime axes with GitHub's include/exclude semantics
//! (an exclude may name build axes, for some variants only), in the order written, and
//! nothing of it in a variant's hash (a variant is built once whatever its points).

use cfgmx_model::{Matrix, Registry, Source};

fn matrix(runtime: &str) -> Matrix {
    let text = format!(
        "name = \"m\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\nblas = [\"none\"]\nbuild = [\"debug\", \"release\"]\n{runtime}"
    );
    Matrix::parse(&Source::new("m.toml", text), &Registry::builtin())
        .unwrap_or_else(|d| panic!("{d:?}"))
}

/// The labels of the points of the variant with `build`.
fn points(m: &Matrix, build: &str) -> Vec<String> {
    let b = build.to_string();
    m.runtime
        .points(&|k| (k == "build").then(|| b.clone()))
        .iter()
        .map(|p| p.label())
        .collect()
}

#[test]
fn points_follow_include_and_exclude() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "debug", &[]),
        (
            "[runtime]\nthreads = [1, 2, 4]\n",
            "debug",
            &["threads=1", "threads=2", "threads=4"],
        ),
        // first axis slowest
        (
            "[runtime]\nthreads = [1, 2]\nOMP_PROC_BIND = [\"close\", \"spread\"]\n",
            "debug",
            &[
                "threads=1 OMP_PROC_BIND=close",
                "threads=1 OMP_PROC_BIND=spread",
                "threads=2 OMP_PROC_BIND=close",
                "threads=2 OMP_PROC_BIND=spread",
            ],
        ),
        // a partial exclude; an exclude naming a build axis applies to its variants only
        (
            "[runtime]\nthreads = [1, 2]\nOMP_PROC_BIND = [\"close\", \"spread\"]\n[[runtime.exclude]]\nOMP_PROC_BIND = \"spread\"\nthreads = 1\n[[runtime.exclude]]\nbuild = \"release\"\nthreads = 2\n",
            "release",
            &["threads=1 OMP_PROC_BIND=close"],
        ),
        (
            "[runtime]\nthreads = [1, 2]\n[[runtime.exclude]]\nbuild = \"release\"\nthreads = 2\n",
            "debug",
            &["threads=1", "threads=2"],
        ),
        // an include adds its new keys where it fits, or is a point of its own
        (
            "[runtime]\nthreads = [1, 2]\n[[runtime.include]]\nthreads = 2\nOMP_SCHEDULE = \"static\"\n[[runtime.include]]\nthreads = 8\n",
            "debug",
            &["threads=1", "threads=2 OMP_SCHEDULE=static", "threads=8"],
        ),
        // only includes: each its own point
        (
            "[[runtime.include]]\nMKL_CBWR = \"AVX2\"\n",
            "debug",
            &["MKL_CBWR=AVX2"],
        ),
    ];
    for (runtime, build, want) in cases {
        let m = matrix(runtime);
        assert_eq!(points(&m, build), *want, "{runtime} for {build}");
    }
}

/// The spec hashes are the same with or without `[runtime]`: the points do not change what
/// is built.
#[test]
fn runtime_axes_leave_the_hashes_alone() {
    let reg = Registry::builtin();
    let hashes = |m: &Matrix| -> Vec<String> {
        m.variant_set(&reg)
            .unwrap()
            .variants
            .iter()
            .map(|v| v.hash.clone())
            .collect()
    };
    let plain = matrix("");
    let with = matrix("[runtime]\nthreads = [1, 2]\nOMP_PROC_BIND = [\"close\"]\n");
    assert_eq!(hashes(&plain), hashes(&with));
}

/// Thread counts above the cores are refused at each value's place.
#[test]
fn thread_counts_above_the_cores_are_located() {
    let m = matrix("[runtime]\nthreads = [1, 2, 64]\n[[runtime.include]]\nthreads = 128\n");
    assert!(m.runtime.check_cores(&m.source, 128, "x").is_ok());
    let d = m
        .runtime
        .check_cores(&m.source, 4, "this machine has 4 core(s)")
        .unwrap_err();
    let at: Vec<(usize, usize)> = d
        .diagnostics
        .iter()
        .map(|d| (d.line.unwrap(), d.column.unwrap()))
        .collect();
    assert_eq!(at, [(8, 18), (10, 11)]);
    assert!(d.diagnostics[0].message.contains("needs 64 cores"));
}
