//! Unit tests of the renderer: quoting per target language, escaping, refusals, and the
//! template guard, against small matrices rendered in process.

use super::*;
use cfgmx_model::{Matrix, Registry, Source};

fn ctx(toml: &str) -> Context {
    let reg = Registry::builtin();
    let m = Matrix::parse(&Source::new("t.toml", toml.to_string()), &reg).expect("matrix");
    let set = m.variant_set(&reg).expect("variants");
    Context::new(
        &m,
        set.variants.iter().map(|v| (v, None)),
        set.short_len,
        None,
    )
}

const SMALL: &str = r#"
name = "small"
languages = ["c", "fortran"]
[axes]
compiler = ["gcc", "clang"]
blas = ["sequential"]
build = ["debug", "release"]
[values.compiler.clang]
fortran = "gcc"
"#;

#[test]
fn every_format_renders_the_embedded_templates() {
    let c = ctx(SMALL);
    let r = Renderer::new();
    for f in Format::ALL {
        let files = r.render(f, &c).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!files.is_empty(), "{f}");
        if f == Format::Lmod {
            // A compiler module per compiler (gcc, clang), then a module per variant.
            let core: Vec<_> = files
                .iter()
                .map(|x| x.path.to_string_lossy().into_owned())
                .filter(|p| p.starts_with("modules/Core/"))
                .collect();
            assert_eq!(
                core,
                [
                    "modules/Core/gcc/default.lua",
                    "modules/Core/clang/default.lua"
                ]
            );
            assert_eq!(files.len(), c.variants.len() + 2, "{f}");
        } else if f.per_variant() {
            assert_eq!(files.len(), c.variants.len(), "{f}");
        }
        for file in &files {
            assert!(!file.content.is_empty(), "{f}: {}", file.path.display());
        }
    }
}

#[test]
fn json_outputs_parse_and_split_at_the_limits() {
    let r = Renderer::new();
    let c = ctx(SMALL);
    let p = &r.render(Format::CmakePresets, &c).unwrap()[0];
    let v: serde_json::Value = serde_json::from_str(&p.content).expect(&p.content);
    assert_eq!(v["configurePresets"].as_array().unwrap().len(), 4);
    assert_eq!(v["workflowPresets"].as_array().unwrap().len(), 4);

    let mut big = c.clone();
    let one = big.variants[0].clone();
    big.variants = (0..300)
        .map(|i| {
            let mut v = one.clone();
            v.name = format!("v{i}");
            v
        })
        .collect();
    let gh = r.render(Format::Github, &big).unwrap();
    let sizes: Vec<usize> = gh
        .iter()
        .map(|f| {
            let j: serde_json::Value = serde_json::from_str(&f.content).unwrap();
            j["include"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, vec![256, 44]);
}

#[test]
fn template_syntax_error_is_located() {
    let r = Renderer::new();
    let e = r
        .render_user(
            "mine.txt",
            "line one\n{{ matrix.name | }}\nline three\n",
            &ctx(SMALL),
        )
        .unwrap_err();
    match e {
        RenderError::Template { template, line, .. } => {
            assert_eq!(template, "mine.txt");
            assert_eq!(line, Some(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn html_user_templates_are_escaped_and_others_not() {
    let r = Renderer::new();
    let mut c = ctx(SMALL);
    c.matrix.description = "<b>&</b>".into();
    let t = "{{ matrix.description }}";
    assert_eq!(
        r.render_user("a.html", t, &c).unwrap(),
        "&lt;b&gt;&amp;&lt;&#x2F;b&gt;"
    );
    assert_eq!(r.render_user("a.txt", t, &c).unwrap(), "<b>&</b>");
}

#[test]
fn meson_refusal_names_the_variant() {
    let r = Renderer::new();
    let mut c = ctx(SMALL);
    c.variants[0].cflags.push("-DX='1'".into());
    let e = r.render_variant(Format::MesonNative, &c, 0).unwrap_err();
    match e {
        RenderError::Unrepresentable { variant, value, .. } => {
            assert_eq!(variant.as_deref(), Some(c.variants[0].name.as_str()));
            assert_eq!(value, "-DX='1'");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn merge_keeps_user_presets_and_refuses_name_clashes() {
    let r = Renderer::new();
    let c = ctx(SMALL);
    let gen = &r.render(Format::CmakePresets, &c).unwrap()[0].content;
    let user = r#"{"version": 3, "configurePresets": [{"name": "mine", "binaryDir": "b"}]}"#;
    let merged = merge_presets("CMakePresets.json", user, gen).unwrap();
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v["version"], 6);
    assert_eq!(v["configurePresets"].as_array().unwrap().len(), 5);
    // Merging again replaces the generated presets instead of doubling them.
    let again = merge_presets("CMakePresets.json", &merged, gen).unwrap();
    assert_eq!(again, merged);
    let clash = format!(
        r#"{{"version": 6, "configurePresets": [{{"name": "{}"}}]}}"#,
        c.variants[0].name
    );
    assert!(matches!(
        merge_presets("CMakePresets.json", &clash, gen),
        Err(RenderError::Merge(_))
    ));
}

#[test]
fn threads_and_formats_together_give_the_same_files() {
    let c = ctx(SMALL);
    let one = Renderer::new();
    let two = Renderer::new().threads(2);
    let mut each = Vec::new();
    for f in Format::ALL {
        each.extend(one.render(f, &c).unwrap());
    }
    assert_eq!(one.render_many(&Format::ALL, &c).unwrap(), each);
    assert_eq!(two.render_many(&Format::ALL, &c).unwrap(), each);
    for (i, _) in c.variants.iter().enumerate() {
        let alone = one.render_variant(Format::Env, &c, i).unwrap();
        assert!(each.contains(&alone));
    }
}

#[test]
fn github_matrix_is_one_line_for_github_output() {
    let c = ctx(SMALL);
    let f = &Renderer::new().render(Format::Github, &c).unwrap()[0];
    assert!(f.content.starts_with("{\"include\":["), "{:?}", f.content);
    assert_eq!(f.content.trim_end().lines().count(), 1);
}
