//! The `python` role on a profile as the probe writes it (Debian's 3.11 and a pyenv 3.12): each
//! value takes its interpreter, which is in the concrete hash; a value with none is unavailable
//! with the reason; a variant without the axis keeps the concrete hash it had before the
//! profile listed interpreters.

use cfgmx_model::{concretize, ConcreteVariant, Matrix, Profile, Registry, Source};

fn profile(pythons: serde_json::Value) -> Profile {
    serde_json::from_value(serde_json::json!({
        "schema": 1,
        "cpus": 4,
        "compilers": [{"path": "/usr/bin/gcc", "family": "gcc", "version": "12.2.0",
                       "languages": ["c"], "status": "ok"}],
        "pythons": pythons,
        "python_failures": [{"path": "/shims/python3.99", "minor": "3.99",
                             "error": "exit status 127: pyenv: python3.99: command not found"}],
    }))
    .unwrap()
}

fn interpreter(path: &str, version: &str, venv: bool) -> serde_json::Value {
    let minor: Vec<&str> = version.split('.').take(2).collect();
    let nodot = minor.join("");
    serde_json::json!({
        "path": path, "implementation": "cpython", "minor": minor.join("."), "version": version,
        "tag": format!("cp{nodot}"), "abi": format!("cp{nodot}"),
        "ext_suffix": format!(".cpython-{nodot}-x86_64-linux-gnu.so"), "venv": venv,
    })
}

fn variants(axes: &str, p: &Profile) -> Vec<ConcreteVariant> {
    let reg = Registry::builtin();
    let text = format!("name = \"t\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"gcc\"]\n{axes}");
    let m = Matrix::parse(&Source::new("t.toml", text), &reg).unwrap();
    m.variant_set(&reg)
        .unwrap()
        .variants
        .iter()
        .map(|v| concretize(v, &m, &reg, p))
        .collect()
}

#[test]
fn each_value_takes_its_interpreter_into_the_concrete_hash() {
    let both = profile(serde_json::json!([
        interpreter("/usr/bin/python3.11", "3.11.2", true),
        interpreter(
            "/root/.pyenv/versions/3.12.1/bin/python3.12",
            "3.12.1",
            true
        ),
    ]));
    let vs = variants("python = [\"3.11\", \"3.12\", \"3.99\"]\n", &both);
    let py = |i: usize| vs[i].python.as_ref().map(|p| p.path.as_str());
    assert_eq!(py(0), Some("/usr/bin/python3.11"));
    assert_eq!(py(1), Some("/root/.pyenv/versions/3.12.1/bin/python3.12"));
    assert!(vs[0].available && vs[1].available);
    assert_ne!(vs[0].concrete_hash, vs[1].concrete_hash);
    // 3.99: unavailable, saying what there is and why the shim named for it did not count.
    assert!(!vs[2].available && vs[2].python.is_none());
    let why = vs[2].reasons.join("; ");
    assert!(
        why.contains("no interpreter answers to python = \"3.99\"")
            && why.contains("/usr/bin/python3.11 (3.11.2)")
            && why.contains("/shims/python3.99 did not answer: exit status 127"),
        "{why}"
    );
    // Another 3.12 build (an upgrade): the same spec, another concrete variant.
    let upgraded = profile(serde_json::json!([
        interpreter("/usr/bin/python3.11", "3.11.2", true),
        interpreter(
            "/root/.pyenv/versions/3.12.1/bin/python3.12",
            "3.12.9",
            true
        ),
    ]));
    let after = variants("python = [\"3.11\", \"3.12\"]\n", &upgraded);
    assert_eq!(after[0].concrete_hash, vs[0].concrete_hash);
    assert_eq!(after[1].variant.hash, vs[1].variant.hash);
    assert_ne!(after[1].concrete_hash, vs[1].concrete_hash);
    // One without a working venv module is passed over for one with it.
    let no_venv = profile(serde_json::json!([
        interpreter("/opt/bare/python3.12", "3.12.1", false),
        interpreter(
            "/root/.pyenv/versions/3.12.1/bin/python3.12",
            "3.12.1",
            true
        ),
    ]));
    let v = &variants("python = [\"3.12\"]\n", &no_venv)[0];
    assert_eq!(
        v.python.as_ref().map(|p| p.path.as_str()),
        Some("/root/.pyenv/versions/3.12.1/bin/python3.12")
    );
}

#[test]
fn a_variant_without_the_axis_keeps_its_hash() {
    let none = profile(serde_json::json!([]));
    let some = profile(serde_json::json!([interpreter(
        "/usr/bin/python3.11",
        "3.11.2",
        true
    )]));
    let a = &variants("blas = [\"none\"]\n", &none)[0];
    let b = &variants("blas = [\"none\"]\n", &some)[0];
    assert!(a.available && b.python.is_none());
    assert_eq!(a.concrete_hash, b.concrete_hash);
}
