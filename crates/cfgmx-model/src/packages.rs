//! The system packages that provide a compiler, a BLAS build or an MPI: what a generated CI
//! job installs on a fresh runner so it can build exactly its variant. Data files say it in a
//! `[packages]` table; only Debian/Ubuntu (`apt`) names exist for now, as every runner image
//! cfgmx generates for (GitHub's ubuntu-latest, GitLab's debian image) uses apt.
//!
//! A package name is pasted into an `apt-get install` line of a shell script: it is checked
//! against Debian's package-name rule (policy §5.6.7) when the file is read, so a name can
//! never carry a shell word or option.

use crate::diag::{Diagnostic, Source};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[packages]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPackages {
    /// Debian/Ubuntu packages, installed whatever the version.
    #[serde(default)]
    apt: Vec<Spanned<String>>,
    /// Used instead of `apt` when the compiler's version is known (probed): `{major}` is its
    /// major version (`gcc-{major}` -> `gcc-12`), so the runner installs the probed compiler.
    #[serde(default)]
    apt_versioned: Vec<Spanned<String>>,
}

/// The packages providing one toolchain, BLAS build or MPI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Packages {
    pub apt: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apt_versioned: Vec<String>,
}

impl Packages {
    pub fn is_empty(&self) -> bool {
        self.apt.is_empty() && self.apt_versioned.is_empty()
    }

    /// The apt packages to install: the versioned names for `version` (its first component
    /// is `{major}`) when there are some and it is known, else the plain ones.
    pub fn apt_for(&self, version: Option<&str>) -> Vec<String> {
        match version
            .and_then(|v| v.split('.').next())
            .filter(|m| !m.is_empty())
        {
            Some(major) if !self.apt_versioned.is_empty() => self
                .apt_versioned
                .iter()
                .map(|p| p.replace("{major}", major))
                .collect(),
            _ => self.apt.clone(),
        }
    }
}

impl RawPackages {
    /// Checks every name (all bad ones reported, each at its place) and unspans them.
    pub(crate) fn check(self, src: &Source, errs: &mut Vec<Diagnostic>) -> Packages {
        let mut check = |list: Vec<Spanned<String>>, versioned: bool| -> Vec<String> {
            list.into_iter()
                .map(|p| {
                    let s = p.get_ref();
                    let plain = if versioned {
                        s.replace("{major}", "0")
                    } else {
                        s.clone()
                    };
                    if !valid_apt_name(&plain) || (versioned && !s.contains("{major}")) {
                        let what = if versioned {
                            "a Debian package name with `{major}` where the compiler's major version goes (`gcc-{major}`)"
                        } else {
                            "a Debian package name: lowercase letters, digits, `+`, `-`, `.`, at least two characters, starting with a letter or digit (`libopenblas-dev`)"
                        };
                        errs.push(
                            Diagnostic::at(src, p.span(), format!("invalid apt package name {s:?}"))
                                .expected(what),
                        );
                    }
                    p.into_inner()
                })
                .collect()
        };
        Packages {
            apt: check(self.apt, false),
            apt_versioned: check(self.apt_versioned, true),
        }
    }
}

/// Debian policy 5.6.7: `[a-z0-9][a-z0-9+.-]+`.
fn valid_apt_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_names_follow_debian_policy() {
        for (name, ok) in [
            ("gcc-12", true),
            ("g++", true),
            ("libopenblas0-pthread", true),
            ("c", false),
            ("-y", false),
            ("Gcc", false),
            ("gcc;rm", false),
            ("gcc 12", false),
        ] {
            assert_eq!(valid_apt_name(name), ok, "{name}");
        }
    }

    #[test]
    fn the_versioned_names_follow_the_probed_major_version() {
        let p = Packages {
            apt: vec!["gcc".into()],
            apt_versioned: vec!["gcc-{major}".into(), "libgcc-{major}-dev".into()],
        };
        assert_eq!(p.apt_for(Some("12.2.0")), ["gcc-12", "libgcc-12-dev"]);
        assert_eq!(p.apt_for(None), ["gcc"]);
    }
}
