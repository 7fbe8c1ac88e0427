//! How a compiler driver spells what cfgmx puts on its command lines: definitions, libraries,
//! library directories, rpath, output files, the macro dump the probe identifies a compiler
//! by, file suffixes, and the words its linker uses for a missing library.
//!
//! Every spelling is data: `toolchains/base/defaults.toml` holds the common (Unix driver)
//! spellings, and a family's `[driver]` table overrides only the keys that differ (MSVC's
//! `/D`, `/Fe`, `/link`, `.lib`). In a spelling, `{}` stands for the value. No code path
//! knows a family's spelling; it asks the family's [`Driver`].

use crate::diag::{Diagnostic, Source};
use crate::language::Language;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A family's driver spellings (defaults merged with its own `[driver]`). The include and
/// library suffix spellings are not on any command line cfgmx runs today; they are stated
/// here once for whatever comes to need them, and `cfgmx toolchains --json` shows them. The
/// compile-only and object-output spellings serve the probe programs of the languages in
/// `compile_then_link`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Driver {
    /// A preprocessor definition (`-D{}`).
    pub define: Vec<String>,
    /// An include directory (`-I{}`).
    pub include: Vec<String>,
    /// A library by link name (`-l{}`; cl: `{}.lib`).
    pub library: Vec<String>,
    /// A directory searched for libraries at link time (`-L{}`; cl: `/LIBPATH:{}`).
    pub library_path: Vec<String>,
    /// A directory searched at run time (`-Wl,-rpath,{}`); empty where there is none.
    pub rpath: Vec<String>,
    /// The executable a compile-and-link writes (`-o {}`; cl: `/Fe{}`).
    pub output: Vec<String>,
    /// Compile without linking (`-c`).
    pub compile_only: Vec<String>,
    /// The object a compile-only run writes (`-o {}`; cl: `/Fo{}`).
    pub object_output: Vec<String>,
    /// The languages whose probe programs are compiled, then linked, in two runs rather than
    /// one: clang runs its front end inside the driver only when the driver has nothing else
    /// to do, so a compile that fails (no `omp.h`) costs one process instead of two, and one
    /// that works costs the same. How the probe runs, not what a variant's command lines
    /// are: left out of the spec hash ([`Driver::for_variants`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compile_then_link: Vec<Language>,
    /// Preprocess and print every predefined macro, per language; `{}` is an empty source file
    /// of that language. A language without an entry is identified by running a program.
    pub dump_macros: IndexMap<Language, Vec<String>>,
    /// What goes before linker options on a compile-and-link command line: nothing where the
    /// driver takes them itself, `/link` for cl (everything after it goes to the linker).
    pub link_pass_through: Vec<String>,
    pub object_suffix: String,
    pub static_library_suffix: String,
    pub shared_library_suffix: String,
    /// The linker's words for a library it cannot find (`cannot find -l{}`).
    pub library_not_found: Vec<String>,
    /// Words that mark the linker's own complaint in its output (`undefined reference`).
    pub link_errors: Vec<String>,
}

/// What a spelling looks like, for a message.
const SPELLING_EXAMPLE: &str =
    "arguments with `{}` in exactly one of them, as in `[\"-D{}\"]` or `[\"-o\", \"{}\"]`"; // a message's example, not a compiler's

/// `[driver]` as written: every key optional, the defaults fill the rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDriver {
    define: Option<Spanned<Vec<String>>>,
    include: Option<Spanned<Vec<String>>>,
    library: Option<Spanned<Vec<String>>>,
    library_path: Option<Spanned<Vec<String>>>,
    rpath: Option<Spanned<Vec<String>>>,
    output: Option<Spanned<Vec<String>>>,
    compile_only: Option<Spanned<Vec<String>>>,
    object_output: Option<Spanned<Vec<String>>>,
    compile_then_link: Option<Vec<Language>>,
    dump_macros: Option<Spanned<IndexMap<Language, Vec<String>>>>,
    link_pass_through: Option<Spanned<Vec<String>>>,
    object_suffix: Option<Spanned<String>>,
    static_library_suffix: Option<Spanned<String>>,
    shared_library_suffix: Option<Spanned<String>>,
    library_not_found: Option<Spanned<Vec<String>>>,
    link_errors: Option<Spanned<Vec<String>>>,
}

/// Replaces `{}` in each word of `spelling` with `value`.
fn fill(spelling: &[String], value: &str) -> Vec<String> {
    spelling.iter().map(|w| w.replace("{}", value)).collect()
}

impl Driver {
    pub fn define(&self, d: &str) -> Vec<String> {
        fill(&self.define, d)
    }
    /// A library by link name; a path or an argument already spelled is passed as it is.
    pub fn library(&self, l: &str) -> Vec<String> {
        if l.starts_with('-') || l.contains('/') {
            vec![l.to_string()]
        } else {
            fill(&self.library, l)
        }
    }
    /// The link-time and run-time search path for `dir`.
    pub fn library_dir(&self, dir: &str) -> Vec<String> {
        let mut v = fill(&self.library_path, dir);
        v.extend(fill(&self.rpath, dir));
        v
    }
    pub fn output(&self, path: &str) -> Vec<String> {
        fill(&self.output, path)
    }
    /// The spellings that shape a variant's command lines (what its spec hash covers): all
    /// but how the probe runs its own programs.
    pub fn for_variants(&self) -> Driver {
        Driver {
            compile_then_link: Vec::new(),
            ..self.clone()
        }
    }
    /// A compile-only run's arguments before its source file, writing object `path`.
    pub fn compile_to(&self, path: &str) -> Vec<String> {
        let mut v = self.compile_only.clone();
        v.extend(fill(&self.object_output, path));
        v
    }
    /// The preprocessor run that prints `lang`'s predefined macros, `file` standing for an
    /// empty source file; `None` when the family has none.
    pub fn dump_macros(&self, lang: Language, file: &str) -> Option<Vec<String>> {
        self.dump_macros
            .get(&lang)
            .filter(|a| !a.is_empty())
            .map(|a| fill(a, file))
    }
    /// A compile-and-link command line's tail: `libs`, then the linker options after the
    /// pass-through (where the driver needs one), else the options before the libraries.
    pub fn link_tail(&self, options: &[String], libs: &[String]) -> Vec<String> {
        let libs = libs.iter().flat_map(|l| self.library(l));
        if self.link_pass_through.is_empty() || options.is_empty() {
            options.iter().cloned().chain(libs).collect()
        } else {
            libs.chain(self.link_pass_through.iter().cloned())
                .chain(options.iter().cloned())
                .collect()
        }
    }
    /// Whether `text` is the linker saying it cannot find library `lib`.
    pub fn says_missing(&self, text: &str, lib: &str) -> bool {
        fill(&self.library_not_found, lib)
            .iter()
            .any(|w| text.contains(w.as_str()))
    }
    /// Whether `line` is the linker's own complaint (a missing library or symbol).
    pub fn is_link_error(&self, line: &str) -> bool {
        self.link_errors.iter().any(|w| line.contains(w.as_str()))
    }
}

impl RawDriver {
    /// `base` with this table's keys put over it. Spellings that take a value must say where
    /// (`{}`); anything else would silently drop the value.
    pub(crate) fn over(&self, base: &Driver, src: &Source, errs: &mut Vec<Diagnostic>) -> Driver {
        let mut d = base.clone();
        let valued = |v: &Option<Spanned<Vec<String>>>,
                      out: &mut Vec<String>,
                      errs: &mut Vec<Diagnostic>,
                      may_be_empty: bool| {
            if let Some(s) = v {
                let words = s.get_ref();
                let holes = words.iter().filter(|w| w.contains("{}")).count();
                if holes != 1 && !(may_be_empty && words.is_empty()) {
                    errs.push(
                        Diagnostic::at(
                            src,
                            s.span(),
                            "a driver spelling must place its value once",
                        )
                        .expected(SPELLING_EXAMPLE),
                    );
                }
                check_words(src, s, errs);
                *out = words.clone();
            }
        };
        valued(&self.define, &mut d.define, errs, false);
        valued(&self.include, &mut d.include, errs, false);
        valued(&self.library, &mut d.library, errs, false);
        valued(&self.library_path, &mut d.library_path, errs, false);
        valued(&self.rpath, &mut d.rpath, errs, true);
        valued(&self.output, &mut d.output, errs, false);
        valued(&self.object_output, &mut d.object_output, errs, false);
        let plain = |v: &Option<Spanned<Vec<String>>>,
                     out: &mut Vec<String>,
                     errs: &mut Vec<Diagnostic>| {
            if let Some(s) = v {
                check_words(src, s, errs);
                *out = s.get_ref().clone();
            }
        };
        plain(&self.compile_only, &mut d.compile_only, errs);
        plain(&self.link_pass_through, &mut d.link_pass_through, errs);
        plain(&self.library_not_found, &mut d.library_not_found, errs);
        plain(&self.link_errors, &mut d.link_errors, errs);
        if let Some(m) = &self.dump_macros {
            d.dump_macros = m.get_ref().clone();
        }
        if let Some(l) = &self.compile_then_link {
            d.compile_then_link = l.clone();
        }
        for (v, out) in [
            (&self.object_suffix, &mut d.object_suffix),
            (&self.static_library_suffix, &mut d.static_library_suffix),
            (&self.shared_library_suffix, &mut d.shared_library_suffix),
        ] {
            if let Some(s) = v {
                let ok = s.get_ref().starts_with('.')
                    && crate::names::valid_file_name(&s.get_ref()[1..]);
                if !ok {
                    errs.push(
                        Diagnostic::at(
                            src,
                            s.span(),
                            format!("invalid file suffix {:?}", s.get_ref()),
                        )
                        .expected("a `.` and letters, digits, `_`, `-` (`.o`, `.lib`)"),
                    );
                }
                *out = s.get_ref().clone();
            }
        }
        d
    }
}

/// Each word is one argument (see `toolchain::flag_ok`).
fn check_words(src: &Source, s: &Spanned<Vec<String>>, errs: &mut Vec<Diagnostic>) {
    if let Some(bad) = s.get_ref().iter().find(|w| !crate::names::flag_ok(w)) {
        errs.push(
            Diagnostic::at(src, s.span(), format!("invalid driver spelling {bad:?}"))
                .expected("one non-empty argument per item, no space at either end"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_place_their_value() {
        let d = Driver {
            library: vec!["{}.lib".into()],
            library_path: vec!["/LIBPATH:{}".into()],
            link_pass_through: vec!["/link".into()],
            ..Default::default()
        };
        assert_eq!(d.library("openblas"), ["openblas.lib"]);
        assert_eq!(d.library("/x/libm.so"), ["/x/libm.so"]);
        assert_eq!(
            d.link_tail(&d.library_dir("/x"), &["m".into()]),
            ["m.lib", "/link", "/LIBPATH:/x"]
        );
    }

    /// Every spelling has a default, so a family says only what differs; cl overrides them.
    #[test]
    fn defaults_are_complete_and_a_family_overrides_single_keys() {
        let d = crate::toolchain::default_driver();
        for (k, v) in [
            ("define", &d.define),
            ("include", &d.include),
            ("library", &d.library),
            ("library_path", &d.library_path),
            ("rpath", &d.rpath),
            ("output", &d.output),
            ("compile_only", &d.compile_only),
            ("object_output", &d.object_output),
            ("library_not_found", &d.library_not_found),
            ("link_errors", &d.link_errors),
        ] {
            assert!(!v.is_empty(), "defaults.toml has no `{k}`");
        }
        assert_eq!(d.dump_macros.len(), 3);
        let reg = crate::Registry::builtin();
        let gcc = &reg.toolchains["gcc"];
        assert_eq!(&gcc.driver, d);
        let cl = &reg.toolchains["msvc"].driver;
        assert_eq!(cl.define("X=1"), ["/DX=1"]);
        assert!(cl.rpath.is_empty() && cl.dump_macros.is_empty());
        assert_eq!(cl.object_suffix, ".obj");
        assert!(reg.toolchains["msvc"].facet("pic").is_empty());
        assert_eq!(gcc.facet("debug")[0].flags, ["-g", "-O0"]);
        // each build mode selects the facet of its name, which the defaults spell
        let modes = crate::matrix::build_modes();
        assert_eq!(modes.len(), 4);
        for m in modes {
            assert!(
                !gcc.facet(&m.name).is_empty(),
                "no default facet {}",
                m.name
            );
        }
        assert_eq!(
            (modes[2].cmake.as_str(), modes[2].meson.as_str()),
            ("RelWithDebInfo", "debugoptimized")
        );
    }

    #[test]
    fn a_spelling_without_its_value_is_refused() {
        let text = "name = \"mycc\"\n[executables]\nc = [\"mycc\"]\n[driver]\ndefine = [\"-D\"]\n";
        let err = crate::Toolchain::parse(&Source::new("user.toml", text)).unwrap_err();
        assert!(
            err.to_string().contains("must place its value once"),
            "{err}"
        );
    }
}
