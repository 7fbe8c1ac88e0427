//! Compiler versions and Spack-style version ranges (`12`, `10:13`, `12:`, `:9.4`).
//!
//! A range bound matches as a prefix, as in Spack: `:13` includes `13.2.0`, and `12` alone means
//! "12 or any 12.x".

use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// A dotted version such as `12.2.0`, `2021.10.0` or `4.0.0a`; compared component-wise,
/// numerically where both components are numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Part {
    Num(u64),
    Str(String),
}

impl Version {
    /// Parses a version; `None` when it does not start with a digit.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        if !s.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let mut parts = Vec::new();
        for comp in s.split(['.', '-', '_']) {
            if comp.is_empty() {
                return None;
            }
            // "0a" -> Num(0), Str("a"): split digits from a trailing tag.
            let digits: String = comp.chars().take_while(|c| c.is_ascii_digit()).collect();
            let rest = &comp[digits.len()..];
            if !digits.is_empty() {
                parts.push(Part::Num(digits.parse().ok()?));
            }
            if !rest.is_empty() {
                parts.push(Part::Str(rest.to_string()));
            }
        }
        Some(Version {
            text: s.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when `self` equals `prefix` or extends it (`12.2.0` starts with `12` and `12.2`).
    pub fn starts_with(&self, prefix: &Version) -> bool {
        prefix.parts.len() <= self.parts.len()
            && self.parts[..prefix.parts.len()] == prefix.parts[..]
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.parts.iter().zip(&other.parts) {
            let o = match (a, b) {
                (Part::Num(x), Part::Num(y)) => x.cmp(y),
                // A release sorts after its pre-release tag: 4.0.0 > 4.0.0a is not decidable in
                // general; compare numbers above strings so 1.2.3 > 1.2.rc.
                (Part::Num(_), Part::Str(_)) => Ordering::Greater,
                (Part::Str(_), Part::Num(_)) => Ordering::Less,
                (Part::Str(x), Part::Str(y)) => x.cmp(y),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        self.parts.len().cmp(&other.parts.len())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A Spack-style inclusive range with prefix-matching bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionRange {
    text: String,
    lo: Option<Version>,
    hi: Option<Version>,
    /// `12` alone: exactly 12 or 12.x.
    exact: bool,
}

impl VersionRange {
    /// Parses `A`, `A:`, `:B`, `A:B`; `Err` says what was expected.
    pub fn parse(s: &str) -> Result<VersionRange, String> {
        let s = s.trim();
        let bad =
            |b: &str| format!("`{b}` is not a version (expected digits such as `12` or `2021.10`)");
        if s.is_empty() {
            return Err("empty version range (expected `12`, `10:13`, `12:` or `:13`)".into());
        }
        let (lo, hi, exact) = match s.split_once(':') {
            None => {
                let v = Version::parse(s).ok_or_else(|| bad(s))?;
                (Some(v.clone()), Some(v), true)
            }
            Some((a, b)) => {
                if b.contains(':') {
                    return Err(format!("`{s}` has more than one `:` (expected `A:B`)"));
                }
                let lo = if a.is_empty() {
                    None
                } else {
                    Some(Version::parse(a).ok_or_else(|| bad(a))?)
                };
                let hi = if b.is_empty() {
                    None
                } else {
                    Some(Version::parse(b).ok_or_else(|| bad(b))?)
                };
                if let (Some(l), Some(h)) = (&lo, &hi) {
                    if l > h && !l.starts_with(h) {
                        return Err(format!("`{s}`: lower bound {l} is above upper bound {h}"));
                    }
                }
                (lo, hi, false)
            }
        };
        Ok(VersionRange {
            text: s.to_string(),
            lo,
            hi,
            exact,
        })
    }

    pub fn contains(&self, v: &Version) -> bool {
        if self.exact {
            return self.lo.as_ref().is_some_and(|lo| v.starts_with(lo));
        }
        let lo_ok = self
            .lo
            .as_ref()
            .is_none_or(|lo| v >= lo || v.starts_with(lo));
        let hi_ok = self
            .hi
            .as_ref()
            .is_none_or(|hi| v <= hi || v.starts_with(hi));
        lo_ok && hi_ok
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for VersionRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn orders_numerically() {
        assert!(v("12.2.0") > v("9.4.0"));
        assert!(v("2021.10.0") > v("2021.9.0"));
        assert!(v("12.2") < v("12.2.0"));
        assert!(v("4.0.0a").starts_with(&v("4.0.0")));
    }

    #[test]
    fn ranges_match_like_spack() {
        let cases: &[(&str, &str, bool)] = &[
            ("12", "12.2.0", true),
            ("12", "13.1", false),
            ("10:13", "13.2.0", true),
            ("10:13", "9.4.0", false),
            ("10:13", "14.1.0", false),
            ("12:", "14.1.0", true),
            ("12:", "11.4", false),
            (":9.4", "9.4.0", true),
            (":9.4", "9.5", false),
            ("2021.1:2021.6", "2021.6.0", true),
        ];
        for (r, ver, want) in cases {
            assert_eq!(
                VersionRange::parse(r).unwrap().contains(&v(ver)),
                *want,
                "{r} contains {ver}"
            );
        }
    }

    #[test]
    fn rejects_bad_ranges() {
        assert!(VersionRange::parse("").is_err());
        assert!(VersionRange::parse("x").is_err());
        assert!(VersionRange::parse("1:2:3").is_err());
        assert!(VersionRange::parse("13:10").is_err());
    }
}
