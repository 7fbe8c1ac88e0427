//! Checks a user template before tera sees it, for the two shapes that would overflow the
//! stack and abort the process (tera recurses with no depth limit): expressions or blocks
//! (`if`, `for`, ...) nested deeper than [`MAX_NESTING`] (parser and renderer recurse per
//! level; a debug build overflows at about 1,000) and macros that call
//! themselves, directly or through others (the renderer recurses per call, and whether a
//! recursion ends cannot be known beforehand).

/// Deepest `(`/`[` nesting accepted inside a tag, and deepest nesting of block tags.
pub const MAX_NESTING: usize = 64;

/// A problem found by [`check`]: 1-based line and column, and the message.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn line_col(text: &str, off: usize) -> (usize, usize) {
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The first problem in `text`, if any.
pub fn check(text: &str) -> Option<Finding> {
    nesting(text).or_else(|| recursion(text))
}

/// Byte ranges of tag interiors (`{{ ... }}`, `{% ... %}`), skipping `{# #}` comments.
fn tags(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'{' && matches!(b[i + 1], b'{' | b'%' | b'#') {
            let close = match b[i + 1] {
                b'{' => "}}",
                b'%' => "%}",
                _ => "#}",
            };
            let start = i + 2;
            let end = text[start..].find(close).map_or(b.len(), |e| start + e);
            if b[i + 1] != b'#' {
                out.push((start, end));
            }
            i = end + 2;
        } else {
            i += 1;
        }
    }
    out
}

const BLOCKS: &[&str] = &["if", "for", "macro", "block", "filter", "raw"];

fn nesting(text: &str) -> Option<Finding> {
    let mut blocks = 0usize;
    for (start, end) in tags(text) {
        if text[..start].ends_with('%') {
            let word = ident_at(text[start..end].trim_start_matches('-').trim_start());
            if BLOCKS.contains(&word) {
                blocks += 1;
                if blocks > MAX_NESTING {
                    let (line, column) = line_col(text, start);
                    return Some(Finding {
                        line,
                        column,
                        message: format!(
                            "blocks (`if`, `for`, ...) nested more than {MAX_NESTING} deep (tera would run out of stack)"
                        ),
                    });
                }
            } else if word
                .strip_prefix("end")
                .is_some_and(|w| BLOCKS.contains(&w))
            {
                blocks = blocks.saturating_sub(1);
            }
        }
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        for (k, c) in text[start..end].char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'' | '`') => quote = Some(c),
                (None, '(' | '[') => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        let (line, column) = line_col(text, start + k);
                        return Some(Finding {
                            line,
                            column,
                            message: format!(
                                "brackets nested more than {MAX_NESTING} deep (tera would run out of stack)"
                            ),
                        });
                    }
                }
                (None, ')' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Macros defined in `text`, each with its offset and the `self::` macros it calls.
fn macros(text: &str) -> Vec<(String, usize, Vec<String>)> {
    let mut out: Vec<(String, usize, Vec<String>)> = Vec::new();
    for (start, end) in tags(text) {
        let inner = text[start..end].trim_start_matches('-').trim_start();
        if let Some(rest) = inner.strip_prefix("macro") {
            let name = ident_at(rest.trim_start());
            if rest.starts_with(char::is_whitespace) && !name.is_empty() {
                out.push((name.to_string(), start, Vec::new()));
            }
            continue;
        }
        if inner.starts_with("endmacro") {
            // Calls after this belong to no macro until the next definition.
            out.push((String::new(), start, Vec::new()));
            continue;
        }
        let Some(cur) = out.last_mut().filter(|m| !m.0.is_empty()) else {
            continue;
        };
        let mut s = &text[start..end];
        while let Some(i) = s.find("self::") {
            let callee = ident_at(&s[i + 6..]);
            if !callee.is_empty() {
                cur.2.push(callee.to_string());
            }
            s = &s[i + 6..];
        }
    }
    out.retain(|m| !m.0.is_empty());
    out
}

fn recursion(text: &str) -> Option<Finding> {
    let ms = macros(text);
    let calls = |name: &str| -> Vec<String> {
        ms.iter()
            .filter(|m| m.0 == name)
            .flat_map(|m| m.2.clone())
            .collect()
    };
    for (name, off, _) in &ms {
        // Depth-first from each macro: does any path lead back to it?
        let mut path = vec![name.clone()];
        let mut stack = vec![(name.clone(), 0usize)];
        let mut seen = std::collections::HashSet::new();
        while let Some((cur, i)) = stack.pop() {
            let next = calls(&cur);
            if i >= next.len() {
                path.pop();
                continue;
            }
            stack.push((cur, i + 1));
            let n = &next[i];
            if n == name {
                path.push(n.clone());
                let (line, column) = line_col(text, *off);
                return Some(Finding {
                    line,
                    column,
                    message: format!(
                        "macro `{name}` calls itself ({}): recursive macros are refused, since tera recurses without a depth limit",
                        path.join(" -> ")
                    ),
                });
            }
            if seen.insert(n.clone()) {
                path.push(n.clone());
                stack.push((n.clone(), 0));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn finds_deep_nesting_and_recursive_macros_and_nothing_else() {
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(65), ")".repeat(65));
        let ok_deep = format!("{{{{ {}1{} }}}}", "(".repeat(64), ")".repeat(64));
        let cases: &[(&str, Option<(usize, &str)>)] = &[
            ("plain {{ x }} text ((((((((", None),
            (&deep, Some((1, "nested more than 64"))),
            (&ok_deep, None),
            (&"{% if x %}".repeat(65), Some((1, "blocks (`if`, `for`, ...) nested"))),
            (&"{% if x %}{% endif %}".repeat(100), None),
            ("{{ \"((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((\" }}", None),
            (
                "{% macro f(n) %}{{ self::f(n=n) }}{% endmacro f %}",
                Some((1, "`f` calls itself (f -> f)")),
            ),
            (
                "{% macro a() %}{{ self::b() }}{% endmacro %}\n{% macro b() %}{{ self::a() }}{% endmacro %}",
                Some((1, "(a -> b -> a)")),
            ),
            (
                "{% macro a() %}x{% endmacro %}{% macro b() %}{{ self::a() }}{% endmacro %}{{ self::b() }}",
                None,
            ),
        ];
        for (text, want) in cases {
            let got = check(text);
            match (want, &got) {
                (None, None) => {}
                (Some((line, msg)), Some(f)) => {
                    assert_eq!(f.line, *line, "{text}");
                    assert!(f.message.contains(msg), "{text}: {}", f.message);
                }
                _ => panic!("{text}: got {got:?}"),
            }
        }
    }
}
