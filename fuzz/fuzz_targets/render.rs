//! Template rendering with hostile context values: the input, split at `\x1f`, fills the
//! names, flags, CMake/Meson/env entries, paths and texts of a fixed small matrix's context;
//! every format is rendered (whole and per variant) plus a user template running every filter.
//! Refusals and errors are fine; panics are not. The quoting filters are also called directly,
//! and those whose target can be decoded here must give the value back exactly.
#![no_main]

mod common;

use cfgmx_model::{Matrix, Registry, Source};
use cfgmx_render::{quote, Context, Format, RenderError, Renderer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A user template that sends every variant field through the filters.
const USER: &str = r#"{{ matrix.name | sh }} {{ matrix.description | yaml }}
{% for v in variants %}{{ v.name | sh_name | default(value="") }}{{ v.cflags | shjoin }} {{ v.name | cmake }}
{{ v.fflags | meson }} {{ v.name | lua }} {{ v.name | lmod }} {{ v.name | bento }} {{ v.name | preset }}
{% for k, x in v.env %}{{ k | sh_name }}={{ x | sh }} {{ k | meson_key }}{% endfor %}
{% endfor %}"#;

struct Fixed {
    ctx: Context,
    renderer: Renderer,
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| {
        let reg = Registry::builtin();
        let m =
            Matrix::parse(&Source::new("small.toml", common::SMALL), &reg).expect("fixed matrix");
        let set = m.variant_set(&reg).expect("fixed variants");
        let ctx = Context::new(
            &m,
            set.variants.iter().map(|v| (v, None)),
            set.short_len,
            None,
        );
        Fixed {
            ctx,
            renderer: Renderer::new(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pieces: Vec<&str> = text.split('\x1f').collect();
    for p in &pieces {
        check_quoting(p);
    }
    let f = fixed();
    let mut ctx = f.ctx.clone();
    let n = ctx.variants.len();
    for (i, p) in pieces.iter().enumerate() {
        let s = p.to_string();
        let v = &mut ctx.variants[i % n];
        match i % 20 {
            0 => ctx.matrix.name = s,
            1 => ctx.matrix.description = s,
            2 => v.name = s,
            3 => v.cflags.push(s),
            4 => v.fflags.push(s),
            5 => v.ldflags.push(s),
            6 => v.libs.push(s),
            7 => {
                v.cmake.insert(s.clone(), s);
            }
            8 => {
                v.meson.insert(s.clone(), s);
            }
            9 => {
                v.env.insert(s.clone(), s);
            }
            10 => {
                if let Some(a) = ctx.matrix.axes.get_index_mut(0) {
                    a.1.push(s.clone());
                }
                v.axes.insert("user".into(), s);
            }
            11 => v.cc = Some(s),
            12 => v.fc = Some(s),
            13 => {
                if let Some(b) = v.blas.as_mut() {
                    b.lib_dir = Some(s.clone());
                    b.thread_vars.push(s);
                }
            }
            14 => v.compiler_version = Some(s),
            15 => v.build_type = s,
            16 => v.warnings.push(s),
            17 => {
                v.build_env.insert(s.clone(), Some(s));
            }
            18 => v.cxxflags.push(s),
            _ => v.link.entry("c").or_default().push(s),
        }
    }
    let r = &f.renderer;
    for format in Format::ALL {
        match r.render(format, &ctx) {
            Ok(files) => assert!(!files.is_empty(), "{format}: no file"),
            Err(e) => check_error(&e),
        }
        if format.per_variant() {
            for i in 0..n {
                if let Err(e) = r.render_variant(format, &ctx, i) {
                    check_error(&e);
                }
            }
        }
    }
    match r.render_user("user.txt", USER, &ctx) {
        Ok(_) => {}
        Err(e) => check_error(&e),
    }
});

fn check_error(e: &RenderError) {
    assert!(!e.to_string().is_empty());
    // Broken embedded templates would be a build bug, not a refusal of a value.
    if let RenderError::Template { template, .. } = e {
        assert_eq!(template, "user.txt", "embedded template failed: {e}");
    }
}

fn check_quoting(v: &str) {
    assert_eq!(
        serde_json::from_str::<String>(&quote::json(v))
            .ok()
            .as_deref(),
        Some(v)
    );
    assert_eq!(
        serde_json::from_str::<String>(&quote::preset(v)).ok(),
        Some(v.replace('$', "${dollar}"))
    );
    match quote::sh(v) {
        Ok(q) => assert_eq!(unquote_sh(&q).as_deref(), Some(v), "sh {q}"),
        Err(r) => assert!(v.contains('\0'), "sh refused {r:?}"),
    }
    if let Ok(q) = quote::cmake(v) {
        assert_eq!(unbracket_cmake(&q).as_deref(), Some(v), "cmake {q}");
    }
    let words: Vec<String> = v.split(' ').map(str::to_string).collect();
    if let Ok(j) = quote::shjoin(&words) {
        assert_eq!(split_sh(&j), Some(words), "shjoin {j}");
    }
    let y = quote::yaml(v);
    assert!(
        y.chars().all(yaml_printable),
        "YAML cannot hold a raw character of {y:?}"
    );
    let l = quote::lua(v);
    assert!(
        !l.chars().any(|c| c.is_ascii_control()),
        "raw control in Lua {l:?}"
    );
    let _ = quote::meson(v);
    let _ = quote::lmod(v);
    let _ = quote::bento(v);
    let _ = quote::sh_name(v);
    let _ = quote::meson_key(v);
}

/// YAML 1.2's `c-printable`: what a YAML stream may contain unescaped (`\n` etc. are escaped
/// by the filter, so they must not appear raw either).
fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7e | 0x85 | 0xa0..=0xd7ff | 0xe000..=0xfffd | 0x10000..=0x10ffff)
}

/// POSIX words: `'...'` literal, `\x` outside quotes is `x`, a space separates.
fn split_sh(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    x => cur.push(x),
                }
            },
            '\\' => cur.push(chars.next()?),
            ' ' => words.push(std::mem::take(&mut cur)),
            x => cur.push(x),
        }
    }
    words.push(cur);
    Some(words)
}

fn unquote_sh(s: &str) -> Option<String> {
    let mut w = split_sh(s)?;
    // One word, whatever spaces are inside the quotes.
    (w.len() == 1).then(|| w.remove(0))
}

/// `[==[text]==]` -> text, refusing a bracket that closes before the end.
fn unbracket_cmake(s: &str) -> Option<String> {
    let rest = s.strip_prefix('[')?;
    let eq = rest.find('[')?;
    let level = &rest[..eq];
    if !level.chars().all(|c| c == '=') {
        return None;
    }
    let body = &rest[eq + 1..];
    let close = format!("]{level}]");
    let end = body.find(&close)?;
    if end + close.len() != body.len() {
        return None;
    }
    let mut body = &body[..end];
    // CMake drops one newline right after the opening bracket.
    if let Some(b) = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))
    {
        body = b;
    }
    Some(body.to_string())
}
