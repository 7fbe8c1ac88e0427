//! A user's template text, as `generate --template FILE` takes it, rendered against a fixed
//! small matrix's context through the guard (nesting, recursion) and the limits (`range`,
//! output size). Refusals and template errors are fine; a panic or a stack overflow is not.
//! (Work without output or lists, which only a time or memory limit stops, is bounded by the
//! CLI's child process, not here: such inputs are out of this target's scope.)
#![no_main]

mod common;

use cfgmx_model::{Matrix, Registry, Source};
use cfgmx_render::{Context, Renderer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn fixed() -> &'static (serde_json::Value, Renderer) {
    static F: OnceLock<(serde_json::Value, Renderer)> = OnceLock::new();
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
        (
            serde_json::to_value(&ctx).expect("context as JSON"),
            Renderer::new(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (ctx, renderer) = fixed();
    let _ = renderer.render_user_value("fuzz.tera", text, ctx);
});
