//! Quoting for each target language: a value goes in as data and comes out, when the target
//! tool reads the generated file, as exactly that value, never as code.
//!
//! Each function is plain (`&str -> Result<String, Refusal>`) so it can be tested without
//! tera; [`register`] installs them as tera filters of the same names.

use std::collections::HashMap;
use std::fmt::Write as _;
use tera::{Tera, Value};

/// A value a target language cannot represent at all (a `'` in a Meson machine file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub target: &'static str,
    pub value: String,
    pub reason: String,
}

/// Marks a filter error as a refusal so [`crate::RenderError`] can tell it from a template bug.
pub(crate) const REFUSAL_TAG: &str = "cfgmx-refusal:";

fn refuse(target: &'static str, value: &str, reason: impl Into<String>) -> Refusal {
    Refusal {
        target,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// POSIX shell: single quotes, where nothing is special; a `'` becomes `'\''`. NUL cannot be
/// in a shell word.
pub fn sh(v: &str) -> Result<String, Refusal> {
    if v.contains('\0') {
        return Err(refuse("sh", v, "a shell word cannot contain a NUL byte"));
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Ok(out)
}

/// An environment value for a script that `make` may read (`CFLAGS` in a recipe): [`sh`],
/// refusing `$`, which make expands in an environment variable's value (`$(shell cmd)` runs
/// `cmd`, `$ORIGIN` becomes `RIGIN`). No quoting serves both sh and make there.
pub fn sh_env(v: &str) -> Result<String, Refusal> {
    if v.contains('$') {
        return Err(refuse(
            "sh",
            v,
            "make expands `$` in an environment variable such as CFLAGS (`$(shell cmd)` would run cmd, `$ORIGIN` would lose its `$O`): set it in the build system instead",
        ));
    }
    sh(v)
}

/// Characters a shell word may have without quotes.
fn sh_plain(v: &str) -> bool {
    !v.is_empty()
        && v.bytes().all(
            |b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'/' | b'=' | b':' | b',' | b'+' | b'@' | b'%'),
        )
}

/// A list of arguments as one command-line fragment (`CFLAGS`, `CMAKE_C_FLAGS_INIT`): words
/// joined by spaces, each quoted only when it needs it, so `-DX="a b"` stays one argument.
pub fn shjoin(words: &[String]) -> Result<String, Refusal> {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if sh_plain(w) {
            out.push_str(w);
        } else {
            out.push_str(&sh(w)?);
        }
    }
    Ok(out)
}

/// CMake bracket argument `[==[...]==]`: no escapes, no `${}` expansion, no `;` splitting.
/// The `=` count is the smallest that cannot close early, inside the value or at its end.
pub fn cmake(v: &str) -> Result<String, Refusal> {
    if v.contains('\0') {
        return Err(refuse("cmake", v, "CMake files cannot contain a NUL byte"));
    }
    // The closing bracket must first appear at the very end: not inside the value, and not
    // straddling its end (a value ending in `]` or `]=` would close `]]` or `]=]` early).
    let mut level = 0;
    loop {
        let close = format!("]{}]", "=".repeat(level));
        let whole = format!("{v}{close}");
        if whole.find(&close) == Some(v.len()) {
            break;
        }
        level += 1;
    }
    let eq = "=".repeat(level);
    // CMake drops one newline right after the opening bracket; give it one to drop.
    let lead = if v.starts_with('\n') || v.starts_with('\r') {
        "\n"
    } else {
        ""
    };
    Ok(format!("[{eq}[{lead}{v}]{eq}]"))
}

/// Meson machine-file string literal. Meson doubles every `\` in a machine file before parsing
/// (so `\'` and `\n` escapes cannot work) and substitutes `@DIRNAME@`-style tokens first: a
/// backslash is written as itself, each `@` ends a piece joined with `+`, and what cannot be
/// written (a `'`, a line break, NUL) is refused rather than mangled.
pub fn meson(v: &str) -> Result<String, Refusal> {
    if v.contains('\'') {
        return Err(refuse(
            "meson",
            v,
            "Meson machine files cannot represent a single quote (`'`) in a string (meson issue #15573)",
        ));
    }
    if v.contains(['\n', '\r']) {
        return Err(refuse(
            "meson",
            v,
            "Meson machine files cannot represent a line break in a string",
        ));
    }
    if v.contains('\0') {
        return Err(refuse(
            "meson",
            v,
            "Meson machine files cannot contain a NUL byte",
        ));
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        out.push(c);
        if c == '@' {
            out.push_str("' + '");
        }
    }
    out.push('\'');
    Ok(out)
}

/// JSON string.
pub fn json(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

/// TOML basic string (a key or a value): JSON's escapes are TOML's, except that TOML also
/// wants DEL escaped, which JSON writes raw.
pub fn toml(v: &str) -> String {
    json(v).replace('\u{7f}', "\\u007F")
}

/// A string in CMakePresets.json: JSON, with `$` spelled `${dollar}` so CMake's macro expansion
/// (`${sourceDir}`, `$env{X}`) leaves the value alone.
pub fn preset(v: &str) -> String {
    json(&v.replace('$', "${dollar}"))
}

/// YAML double-quoted scalar: `\` and `"` escaped, control characters (C0, DEL and C1), the
/// Unicode line breaks YAML folds (U+0085, U+2028, U+2029), the BOM and the non-characters
/// U+FFFE/U+FFFF as escapes; other text as is. A YAML stream may not hold the C1 controls or
/// the non-characters raw at all (`c-printable`): a parser rejects the whole file.
pub fn yaml(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lua string literal `"..."`: `\`, `"` escaped, control bytes as decimal `\ddd` (three digits,
/// so a following digit cannot join the escape); UTF-8 text passes through (Lua strings are
/// bytes).
pub fn lua(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\{:03}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string in an Lmod modulefile: a Lua literal, and Lmod must also be able to hand it to
/// the shell. Lmod 8 writes a line break inside a value unquoted into its `eval` output, so
/// the rest of the value would run as a command: line breaks and other control characters
/// (tab excepted) are refused.
pub fn lmod(v: &str) -> Result<String, Refusal> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(refuse(
            "lmod",
            v,
            "Lmod passes a line break (or other control character) in a value unquoted to the shell, where the rest would run as a command",
        ));
    }
    Ok(lua(v))
}

/// Bento's `bento.info` has no quoting at all: a value runs to the end of the line and the
/// format is ASCII. Such values pass; others are refused.
pub fn bento(v: &str) -> Result<String, Refusal> {
    if v.contains(['\n', '\r']) || v.chars().any(|c| !c.is_ascii() || c.is_ascii_control()) {
        return Err(refuse(
            "bento",
            v,
            "bento.info values run to the end of the line and must be printable ASCII",
        ));
    }
    Ok(v.trim().to_string())
}

/// A shell variable name: `export NAME=...` takes only identifiers.
pub fn sh_name(v: &str) -> Result<String, Refusal> {
    let ok = v
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(v.to_string())
    } else {
        Err(refuse("sh", v, "an environment variable name must be letters, digits and `_`, not starting with a digit"))
    }
}

/// A Meson option name: Meson rejects keys with spaces or quotes, and `=` would end the key.
pub fn meson_key(v: &str) -> Result<String, Refusal> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(refuse(
            "meson",
            v,
            "a Meson option name must be letters, digits, `_`, `-`, `.` or `:`",
        ))
    }
}

/// The text of a scalar value; `null` is empty.
fn text(v: &Value, filter: &str) -> tera::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(tera::Error::msg(format!(
            "filter `{filter}` expects a string, number or boolean, got {v}"
        ))),
    }
}

fn words(v: &Value, filter: &str) -> tera::Result<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(|x| text(x, filter)).collect(),
        other => Ok(vec![text(other, filter)?]),
    }
}

fn to_tera(r: Refusal) -> tera::Error {
    // The value travels in JSON so the message can quote it unambiguously.
    tera::Error::msg(format!(
        "{REFUSAL_TAG}{}\u{1f}{}\u{1f}{}",
        r.target,
        json(&r.value),
        r.reason
    ))
}

/// Reads a refusal back out of a tera error chain.
pub(crate) fn refusal_in(msg: &str) -> Option<Refusal> {
    let rest = &msg[msg.find(REFUSAL_TAG)? + REFUSAL_TAG.len()..];
    let mut parts = rest.splitn(3, '\u{1f}');
    let target = match parts.next()? {
        "sh" => "sh",
        "cmake" => "cmake",
        "meson" => "meson",
        "bento" => "bento",
        "lmod" => "lmod",
        _ => "unknown",
    };
    let value: String = serde_json::from_str(parts.next()?).ok()?;
    let reason = parts.next()?.to_string();
    Some(Refusal {
        target,
        value,
        reason,
    })
}

type Args = HashMap<String, Value>;

/// Installs the filters `sh`, `sh_name`, `shjoin`, `meson_key`, `cmake`, `meson`, `json`, `toml`, `preset`, `yaml`, `lua`,
/// `lmod`, `bento`, `slug`. `meson` also takes a list and writes a Meson array.
pub fn register(t: &mut Tera) {
    t.register_filter("sh", |v: &Value, _: &Args| {
        Ok(Value::String(sh(&text(v, "sh")?).map_err(to_tera)?))
    });
    t.register_filter("sh_env", |v: &Value, _: &Args| {
        Ok(Value::String(sh_env(&text(v, "sh_env")?).map_err(to_tera)?))
    });
    t.register_filter("sh_name", |v: &Value, _: &Args| {
        Ok(Value::String(
            sh_name(&text(v, "sh_name")?).map_err(to_tera)?,
        ))
    });
    t.register_filter("meson_key", |v: &Value, _: &Args| {
        Ok(Value::String(
            meson_key(&text(v, "meson_key")?).map_err(to_tera)?,
        ))
    });
    t.register_filter("shjoin", |v: &Value, _: &Args| {
        Ok(Value::String(
            shjoin(&words(v, "shjoin")?).map_err(to_tera)?,
        ))
    });
    t.register_filter("cmake", |v: &Value, _: &Args| {
        Ok(Value::String(cmake(&text(v, "cmake")?).map_err(to_tera)?))
    });
    t.register_filter("meson", |v: &Value, _: &Args| {
        let s = match v {
            Value::Array(a) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|x| text(x, "meson").and_then(|s| meson(&s).map_err(to_tera)))
                    .collect::<tera::Result<_>>()?;
                format!("[{}]", items.join(", "))
            }
            Value::Bool(b) => b.to_string(),
            other => meson(&text(other, "meson")?).map_err(to_tera)?,
        };
        Ok(Value::String(s))
    });
    t.register_filter("json", |v: &Value, _: &Args| {
        Ok(Value::String(
            serde_json::to_string(v).map_err(|e| tera::Error::msg(e.to_string()))?,
        ))
    });
    t.register_filter("toml", |v: &Value, _: &Args| {
        let s = match v {
            Value::Bool(b) => b.to_string(),
            other => toml(&text(other, "toml")?),
        };
        Ok(Value::String(s))
    });
    t.register_filter("preset", |v: &Value, _: &Args| {
        Ok(Value::String(preset(&text(v, "preset")?)))
    });
    t.register_filter("yaml", |v: &Value, _: &Args| {
        Ok(Value::String(yaml(&text(v, "yaml")?)))
    });
    t.register_filter("lua", |v: &Value, _: &Args| {
        Ok(Value::String(lua(&text(v, "lua")?)))
    });
    t.register_filter("lmod", |v: &Value, _: &Args| {
        Ok(Value::String(lmod(&text(v, "lmod")?).map_err(to_tera)?))
    });
    // Names that must survive any parser unquoted (Slurm job names, file names).
    t.register_filter("slug", |v: &Value, _: &Args| {
        Ok(Value::String(cfgmx_model::resolve::slug(&text(v, "slug")?)))
    });
    t.register_filter("bento", |v: &Value, _: &Args| {
        Ok(Value::String(bento(&text(v, "bento")?).map_err(to_tera)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmake_bracket_level_avoids_the_value() {
        let cases = [
            ("a", "[[a]]"),
            ("x]]y", "[=[x]]y]=]"),
            // A value ending in `]` (or `]=`) would close the bracket early: `[[]=]]]` is a
            // syntax error in `cmake -P` (found by the render fuzz target).
            ("]=]", "[==[]=]]==]"),
            ("a]", "[=[a]]=]"),
            ("a]=", "[[a]=]]"),
            ("]]]=]", "[==[]]]=]]==]"),
            ("\nlead", "[[\n\nlead]]"),
        ];
        for (v, want) in cases {
            assert_eq!(cmake(v).unwrap(), want, "value {v:?}");
        }
    }

    #[test]
    fn sh_quotes_single_quotes() {
        assert_eq!(sh("it's").unwrap(), r"'it'\''s'");
        assert_eq!(
            shjoin(&["-O2".into(), "-DX=a b".into()]).unwrap(),
            "-O2 '-DX=a b'"
        );
        assert_eq!(shjoin(&["".into()]).unwrap(), "''");
    }

    #[test]
    fn meson_refuses_what_it_cannot_write() {
        assert!(meson("it's").is_err());
        assert!(meson("a\nb").is_err());
        assert_eq!(meson("a@DIRNAME@b").unwrap(), "'a@' + 'DIRNAME@' + 'b'");
        assert_eq!(meson(r"C:\x").unwrap(), r"'C:\x'");
    }

    #[test]
    fn yaml_and_lua_escape_controls() {
        assert_eq!(yaml("a\"b\\\n\u{2028}"), "\"a\\\"b\\\\\\n\\u2028\"");
        // Found by the `render` fuzz target: PyYAML rejects a raw U+0080 ("special characters
        // are not allowed"), so C1 controls and U+FFFE/U+FFFF must be escaped too.
        assert_eq!(
            yaml("\u{80}\u{85}\u{9f}\u{fffe}\u{ffff}\u{a0}"),
            "\"\\x80\\x85\\x9f\\ufffe\\uffff\u{a0}\""
        );
        assert_eq!(lua("a\"\\\n1"), "\"a\\\"\\\\\\0101\"");
    }

    #[test]
    fn refusal_round_trips_through_the_error_text() {
        let e = to_tera(meson("x'y").unwrap_err());
        let r = refusal_in(&e.to_string()).unwrap();
        assert_eq!(r.target, "meson");
        assert_eq!(r.value, "x'y");
    }
}
