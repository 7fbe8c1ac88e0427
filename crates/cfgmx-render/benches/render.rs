//! Rendering every format for a 1,000-variant matrix, in process, against a peer measured in
//! the same run: expanding, resolving and concretising the same variants (the model's work
//! that every `cfgmx generate` does first). Prints milliseconds and the ratio; the target is
//! all 11 formats under 100 ms. Run: `cargo bench -p cfgmx-render`.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use cfgmx_model::{concretize, BlasRecord, CompilerRecord, Matrix, Profile, Registry, Source};
use cfgmx_render::{Context, Format, Renderer};
use std::time::{Duration, Instant};

fn matrix_text() -> String {
    let parts: Vec<String> = (1..=125).map(|i| format!("\"p{i}\"")).collect();
    format!(
        "name = \"m1000\"\nlanguages = [\"c\", \"fortran\"]\n[axes]\ncompiler = [\"gcc\", \"clang\"]\n\
         blas = [\"sequential\", \"threaded\"]\nbuild = [\"debug\", \"release\"]\npart = [{}]\n\
         [values.compiler.clang]\nfortran = \"gcc\"\n[blas]\nprefer = [\"openblas\"]\n",
        parts.join(", ")
    )
}

/// A Debian-like machine: the inputs a probe would report, not results.
fn profile() -> Profile {
    let cc = |path: &str, family: &str, version: &str, lang: &str| CompilerRecord {
        path: path.into(),
        family: family.into(),
        version: version.into(),
        languages: vec![serde_json::from_str(&format!("\"{lang}\"")).unwrap()],
        facets: Default::default(),
        real_path: None,
        wrapper: None,
        status: Default::default(),
        error: None,
    };
    let blas = |b: &str, t: &str| BlasRecord {
        path: format!("/usr/lib/x86_64-linux-gnu/openblas-{b}/libopenblas.so"),
        provider: "openblas".into(),
        build: b.into(),
        threading: serde_json::from_str(&format!("\"{t}\"")).unwrap(),
        lib_dir: format!("/usr/lib/x86_64-linux-gnu/openblas-{b}"),
        config: None,
        is_default: false,
        int_width: Default::default(),
        symbol_prefix: String::new(),
        symbol_suffix: String::new(),
        libs: vec!["openblas".into()],
    };
    let mut p = Profile::empty(2);
    p.compilers = vec![
        cc("/usr/bin/gcc", "gcc", "12.2.0", "c"),
        cc("/usr/bin/gfortran", "gcc", "12.2.0", "fortran"),
        cc("/usr/bin/clang", "clang", "14.0.6", "c"),
    ];
    p.blas = vec![
        blas("serial", "sequential"),
        blas("pthread", "pthread"),
        blas("openmp", "openmp"),
    ];
    p
}

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let reg = Registry::builtin();
    let m = Matrix::parse(&Source::new("m1000.toml", matrix_text()), &reg).unwrap();
    let prof = profile();
    let set = m.variant_set(&reg).unwrap();
    assert_eq!(set.variants.len(), 1000);
    let conc: Vec<_> = set
        .variants
        .iter()
        .map(|v| concretize(v, &m, &reg, &prof))
        .collect();
    let ctx = Context::new(
        &m,
        set.variants.iter().zip(conc.iter().map(Some)),
        set.short_len,
        Some(&prof),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let r = Renderer::new().threads(threads);
    let mut files = 0;
    let runs = 5;
    let render = best(runs, || {
        files = r.render_many(&Format::ALL, &ctx).unwrap().len();
    });
    if std::env::var_os("CFGMX_BENCH_DETAIL").is_some() {
        for f in Format::ALL {
            let d = best(3, || {
                r.render(f, &ctx).unwrap();
            });
            println!("  {f}: {:.1} ms", d.as_secs_f64() * 1e3);
        }
    }
    if std::env::var_os("CFGMX_BENCH_DETAIL").is_some() {
        println!(
            "  context only x1000: {:.1} ms",
            ctx_only(&ctx).as_secs_f64() * 1e3
        );
    }
    let peer = best(runs, || {
        let set = m.variant_set(&reg).unwrap();
        let n = set
            .variants
            .iter()
            .map(|v| concretize(v, &m, &reg, &prof))
            .filter(|c| c.available)
            .count();
        assert_eq!(n, 1000);
    });
    println!(
        "render, 11 formats, 1000 variants ({files} files, {threads} threads): {:.1} ms (best of {runs})",
        render.as_secs_f64() * 1e3
    );
    println!(
        "peer: expand + resolve + concretise, same matrix:   {:.1} ms",
        peer.as_secs_f64() * 1e3
    );
    println!(
        "ratio render / peer: {:.2}   target: render < 100 ms",
        render.as_secs_f64() / peer.as_secs_f64()
    );
}

#[allow(dead_code)]
fn ctx_only(ctx: &Context) -> Duration {
    best(3, || {
        for v in &ctx.variants {
            let mut t = tera::Context::new();
            if std::env::var_os("NOM").is_none() {
                t.insert("matrix", &ctx.matrix);
            }
            t.insert("v", v);
            std::hint::black_box(&t);
        }
    })
}
