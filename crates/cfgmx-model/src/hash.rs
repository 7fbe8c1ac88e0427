//! Spec and concrete hashes.
//!
//! A variant's **spec hash** is SHA-256 over a short text that names the schema, gives the
//! variant's axis values as canonical JSON, and the SHA-256 of the canonical JSON of the
//! resolved part (shared by every variant with the same role values):
//!
//! ```text
//! cfgmx-spec/2
//! axes {"blas":"threaded","build":"debug","compiler":"gcc"}
//! resolved <sha256 hex of canonical JSON of the resolved part>
//! ```
//!
//! *Canonical JSON* is compact (no spaces), with object keys sorted by byte order, strings
//! escaped as serde_json does, and no floats. The resolved part holds the compiler value, the
//! descriptor facts that select the compiler (executables, version rules, identity macros,
//! environment), every candidate list of every facet the variant uses, the BLAS provider build
//! and the policy that picked it, the matrix's languages, thread count and environment, the
//! contributions of the variant's values, and the resulting flag set. So editing a flag of a
//! facet changes exactly the variants that use that facet, and reordering axes or reformatting a
//! file changes nothing. `cfgmx show --spec` prints both documents.
//!
//! The **concrete hash** is the same over `cfgmx-concrete/1`, the spec hash, and the canonical
//! JSON of what the probe resolved: compiler paths and versions, working facet flags, BLAS
//! library paths.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const SPEC_SCHEMA: &str = "cfgmx-spec/2";
pub const CONCRETE_SCHEMA: &str = "cfgmx-concrete/1";

/// The workspace's one content hash: SHA-256 as lowercase hex (spec and concrete hashes,
/// `generate`'s manifest, the wheelhouse index, the build root's source fingerprint).
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// [`sha256_hex`] of pieces fed one after another, without joining them first.
#[derive(Default)]
pub struct ContentHasher(Sha256);

impl ContentHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        to_hex(&self.0.finalize())
    }
}

/// Lowercase hex, table-driven (the hex crate's iterator showed up in profiles).
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = vec![0u8; bytes.len() * 2];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Whether a string needs JSON escaping; branch-free so it vectorises (hot in streaming).
#[inline]
fn needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Compact JSON with sorted object keys.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string serialises"));
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Builds a spec hash from its parts (see the module docs), feeding SHA-256 incrementally.
pub struct SpecHasher {
    sha: Sha256,
    buf: String,
}

impl Default for SpecHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl SpecHasher {
    pub fn new() -> Self {
        let mut sha = Sha256::new();
        sha.update(SPEC_SCHEMA.as_bytes());
        sha.update(b"\n");
        SpecHasher {
            sha,
            buf: String::with_capacity(128),
        }
    }

    /// Adds the axes line: `axes ` + canonical JSON of the key -> value object. JSON escapes
    /// newlines, so a value cannot forge another line.
    pub fn axes(&mut self, pairs: &[(Arc<str>, Arc<str>)]) {
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_unstable_by(|a, b| pairs[*a].0.cmp(&pairs[*b].0));
        self.axes_in_order(pairs, &order);
    }

    /// [`SpecHasher::axes`] with the key-sorted order given (callers cache it).
    pub fn axes_in_order(&mut self, pairs: &[(Arc<str>, Arc<str>)], order: &[usize]) {
        let sorted = order.iter().map(|i| &pairs[*i]);
        self.buf.clear();
        self.buf.push_str("axes {");
        for (i, (k, v)) in sorted.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            push_json_str(&mut self.buf, k);
            self.buf.push(':');
            push_json_str(&mut self.buf, v);
        }
        self.buf.push_str("}\n");
        self.sha.update(self.buf.as_bytes());
    }

    /// The canonical axes JSON of the last [`SpecHasher::axes_in_order`] call (for records
    /// that want it without escaping the values again).
    pub fn axes_json(&self) -> &str {
        self.buf
            .strip_prefix("axes ")
            .unwrap_or("")
            .trim_end_matches('\n')
    }

    /// Adds a line `name <digest>`.
    pub fn part(&mut self, name: &str, digest_hex: &str) {
        self.sha.update(name.as_bytes());
        self.sha.update(b" ");
        self.sha.update(digest_hex.as_bytes());
        self.sha.update(b"\n");
    }

    pub fn finish(self) -> String {
        to_hex(&self.sha.finalize())
    }
}

/// Appends `s` as a JSON string literal (same escaping as serde_json).
pub fn push_json_str(out: &mut String, s: &str) {
    if !needs_escape(s) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("string serialises"));
    }
}

/// [`push_json_str`] for byte buffers.
pub fn push_json_bytes(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Hex digits of a hash that cfgmx shows: in tables, JSON `short_hash` fields, build
/// directory names and messages alike, so a hash copied from any of them is the same string.
/// 12 digits (48 bits) make a collision in one matrix or build root vanishingly unlikely;
/// a set where one happens is shown with more ([`unique_prefix_len`]).
pub const SHORT_HASH: usize = 12;

/// The fewest hex digits `show`, `env` and `reproduce` accept as a hash prefix (as git's
/// default abbreviation): shorter ones would match by accident.
pub const MIN_HASH_PREFIX: usize = 7;

/// The displayed form of a hash: its first [`SHORT_HASH`] digits.
pub fn short_hash(h: &str) -> &str {
    &h[..h.len().min(SHORT_HASH)]
}

/// Shortest prefix length (at least `min`) that makes every hash in `hashes` unique.
pub fn unique_prefix_len(hashes: &[&str], min: usize) -> usize {
    let mut sorted: Vec<&str> = hashes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut len = min;
    for w in sorted.windows(2) {
        let common = w[0]
            .bytes()
            .zip(w[1].bytes())
            .take_while(|(a, b)| a == b)
            .count();
        len = len.max(common + 1);
    }
    len.min(sorted.first().map_or(min, |h| h.len()))
}

/// Lists the JSON paths at which two documents differ, with both values.
pub fn diff_documents(a: &Value, b: &Value) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    diff_rec("", a, b, &mut out);
    out
}

fn diff_rec(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_rec(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_rec(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ if a == b => {}
        _ => out.push((path.to_string(), a.clone(), b.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[1,"x"],"c":null}}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn axes_part_ignores_axis_order() {
        let p = |pairs: &[(&str, &str)]| {
            let v: Vec<(Arc<str>, Arc<str>)> = pairs
                .iter()
                .map(|(a, b)| (Arc::from(*a), Arc::from(*b)))
                .collect();
            let mut h = SpecHasher::new();
            h.axes(&v);
            h.finish()
        };
        assert_eq!(p(&[("a", "1"), ("b", "2")]), p(&[("b", "2"), ("a", "1")]));
        assert_ne!(p(&[("a", "1"), ("b", "2")]), p(&[("a", "2"), ("b", "1")]));
        // escaping matters: a quote in a value cannot forge another key
        assert_ne!(p(&[("a", "1\",\"b\":\"2")]), p(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn known_answer() {
        // Pinned so that hashes stay the same across runs, machines and releases.
        let v: Vec<(Arc<str>, Arc<str>)> = vec![(Arc::from("compiler"), Arc::from("gcc"))];
        let mut h = SpecHasher::new();
        h.axes(&v);
        h.part("resolved", &sha256_hex(b"{}"));
        let text = format!(
            "cfgmx-spec/2\naxes {}\nresolved {}\n",
            r#"{"compiler":"gcc"}"#,
            sha256_hex(b"{}")
        );
        assert_eq!(h.finish(), sha256_hex(text.as_bytes()));
    }

    #[test]
    fn prefix_len_grows_until_unique() {
        assert_eq!(
            unique_prefix_len(&["abcdef01", "abcdef02", "12345678"], 4),
            8
        );
        assert_eq!(unique_prefix_len(&["a1111111", "b2222222"], 7), 7);
    }
}
