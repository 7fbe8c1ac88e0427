//! Finding candidate files without running anything: compiler executables by name and BLAS
//! library files by name, each with the identity (path, resolved file, device, inode, size,
//! mtime) the cache is keyed by. Cheap enough (directory listings and stats) to run on every
//! warm probe.

use crate::ProbeOptions;
use cfgmx_model::{Language, Registry};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Names that are not a family's own but may be any compiler (a `cc` symlink, Cray's wrappers).
const GENERIC: &[(&str, Language)] = &[
    ("cc", Language::C),
    ("c++", Language::Cxx),
    ("CC", Language::Cxx),
    ("ftn", Language::Fortran),
    ("f95", Language::Fortran),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Named like these families' executables.
    Named(Vec<String>),
    Generic,
    /// Named like an MPI implementation's wrapper (`mpi/*.toml`).
    Mpi,
}

/// A candidate compiler executable.
#[derive(Debug, Clone)]
pub struct Exe {
    pub path: PathBuf,
    /// File name as found (`gcc-12`).
    pub name: String,
    pub lang: Language,
    pub kind: Kind,
    /// Symlinks resolved (None when unresolvable, e.g. a dangling link).
    pub canonical: Option<PathBuf>,
}

/// A candidate BLAS library file.
#[derive(Debug, Clone)]
pub struct Lib {
    pub path: PathBuf,
    pub canonical: PathBuf,
    /// Providers whose library names it matches.
    pub providers: Vec<String>,
}

/// Identity of a file for the cache key: the name it was found under, the file it resolves to,
/// and that file's device, inode, size and mtime (a replaced or rebuilt compiler changes one of
/// them, even when copied over with its old mtime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub path: String,
    pub target: String,
    // Absent from caches written before they were part of the key: such a stamp never
    // matches, so an old cache is probed again rather than reported as corrupt.
    #[serde(default)]
    pub dev: u64,
    #[serde(default)]
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

#[derive(Debug, Default)]
pub struct Found {
    pub exes: Vec<Exe>,
    pub libs: Vec<Lib>,
    /// Directories searched for executables, in order (for resolving a wrapper's compiler).
    pub bin_dirs: Vec<PathBuf>,
    /// `libblas.so.3` (the system default alternative) and what it resolves to.
    pub default_blas: Option<(PathBuf, PathBuf)>,
    /// Every compiler and library file found, in discovery order: the probe cache's key. A
    /// compiler installed since is a new entry; an unrelated file in a `PATH` directory (a
    /// pyenv shim rewritten) is none, so it cannot flip a cached profile.
    pub stamps: Vec<Stamp>,
    /// Version tools' answers (`mpichversion`) by the tool's path: every wrapper beside one
    /// shares its run.
    pub mpi_versions: std::sync::Mutex<std::collections::HashMap<PathBuf, Option<String>>>,
    /// Programs behind MPI wrapper names that act by the name they are run under
    /// (`opal_wrapper`), from the MPI implementations' data.
    pub dispatchers: Vec<String>,
    /// Runs of one real file with the same arguments, shared by the names it is found under
    /// (`clang` and `clang++` are one binary: one `--version`). See `identify::Runner`.
    pub runs: SharedRuns,
}

/// One run's output, filled by whoever asks first.
type RunCell = std::sync::Arc<std::sync::OnceLock<cfgmx_exec::Outcome>>;

/// Outputs by (real file, arguments); each is run once, and a second asker waits for it.
#[derive(Debug, Default)]
pub struct SharedRuns(std::sync::Mutex<std::collections::HashMap<(PathBuf, Vec<String>), RunCell>>);

impl SharedRuns {
    /// The output of `real` run with `args`, from `run` the first time.
    pub fn get(
        &self,
        real: &Path,
        args: &[String],
        run: impl FnOnce() -> cfgmx_exec::Outcome,
    ) -> cfgmx_exec::Outcome {
        let cell = {
            let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
            m.entry((real.to_path_buf(), args.to_vec()))
                .or_default()
                .clone()
        };
        cell.get_or_init(run).clone()
    }

    /// Whether `real` has been run (or is running) with `args`.
    pub fn has(&self, real: &Path, args: &[String]) -> bool {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.contains_key(&(real.to_path_buf(), args.to_vec()))
    }
}

pub fn stamp(path: &Path, canonical: Option<&Path>) -> Stamp {
    let meta = std::fs::metadata(path);
    let (dev, ino, size, mtime_ns) = match &meta {
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            (
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            )
        }
        Err(_) => (0, 0, 0, -1),
    };
    Stamp {
        path: path.display().to_string(),
        target: canonical
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        dev,
        ino,
        size,
        mtime_ns,
    }
}

fn unique_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in dirs {
        // /bin -> usr/bin on merged-/usr systems: one directory, searched once.
        if let Ok(c) = std::fs::canonicalize(&d) {
            if c.is_dir() && seen.insert(c) {
                out.push(d);
            }
        }
    }
    out
}

pub fn discover(reg: &Registry, opts: &ProbeOptions) -> Found {
    let mut found = Found {
        dispatchers: reg
            .mpi
            .values()
            .flat_map(|m| m.dispatchers.iter().cloned())
            .collect(),
        ..Found::default()
    };
    let path_dirs: Vec<PathBuf> = opts
        .path
        .as_ref()
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    let wanted: Vec<PathBuf> = opts.search.iter().cloned().chain(path_dirs).collect();
    found.bin_dirs = unique_dirs(wanted);
    let mut seen_names: HashSet<(PathBuf, String)> = HashSet::new();
    for dir in &found.bin_dirs {
        let Some(names) = sorted_names(dir) else {
            continue;
        };
        for name in names {
            let Some((lang, kind)) = classify(reg, &name) else {
                continue;
            };
            let path = dir.join(&name);
            // A file name found in two directories is two compilers; the same path twice is one.
            if !seen_names.insert((dir.clone(), name.clone())) {
                continue;
            }
            let canonical = std::fs::canonicalize(&path).ok();
            if canonical.as_ref().is_some_and(|c| c.is_dir()) {
                continue;
            }
            found.stamps.push(stamp(&path, canonical.as_deref()));
            found.exes.push(Exe {
                canonical,
                path,
                name,
                lang,
                kind,
            });
        }
    }
    discover_libs(reg, opts, &mut found);
    found
}

/// What an executable name says: its language and which families may own it.
pub fn classify(reg: &Registry, name: &str) -> Option<(Language, Kind)> {
    if let Some((_, l)) = GENERIC.iter().find(|(n, _)| *n == name) {
        return Some((*l, Kind::Generic));
    }
    // Wrapper names, suffixed ones included (`mpicc.openmpi`), come from the MPI data.
    if let Some((l, _)) = reg.mpi.values().find_map(|m| m.wrapper_name(name)) {
        return Some((l, Kind::Mpi));
    }
    let mut lang = None;
    let mut fams = Vec::new();
    for t in reg.toolchains.values() {
        for l in Language::ALL {
            if t.executables.matches(l, name).is_some() {
                lang.get_or_insert(l);
                if !fams.contains(&t.name) {
                    fams.push(t.name.clone());
                }
            }
        }
    }
    lang.map(|l| (l, Kind::Named(fams)))
}

/// Library directories: `--search` dirs' `lib` siblings, the loader's and linker's paths, the
/// system's (with the multiarch directory), each with the subdirectories a provider build
/// installs into (Debian's `openblas-openmp/`).
fn lib_dirs(opts: &ProbeOptions) -> Vec<PathBuf> {
    if let Some(only) = &opts.lib_dirs {
        return unique_dirs(only.iter().cloned());
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for s in &opts.search {
        dirs.push(s.clone());
        if let Some(p) = s.parent() {
            dirs.push(p.join("lib"));
            dirs.push(p.join("lib64"));
        }
    }
    let mut system = vec![PathBuf::from("/usr/local/lib")];
    for base in ["/usr/lib", "/lib"] {
        if let Ok(rd) = std::fs::read_dir(base) {
            let mut multi: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains("-linux-"))
                .map(|e| e.path())
                .collect();
            multi.sort();
            system.extend(multi);
        }
    }
    system.extend(["/usr/lib64", "/usr/lib"].map(PathBuf::from));
    dirs.extend(system);
    unique_dirs(dirs)
}

fn lib_name_matches(file: &str, base: &str) -> bool {
    // libopenblas.so or libopenblas.so.0 (not libopenblas64_.so or libopenblasp-r0.3.so)
    file.strip_prefix("lib")
        .and_then(|r| r.strip_prefix(base))
        .and_then(|r| r.strip_prefix(".so"))
        .is_some_and(|r| {
            r.is_empty()
                || (r.starts_with('.')
                    && r[1..]
                        .split('.')
                        .all(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty()))
        })
}

fn discover_libs(reg: &Registry, opts: &ProbeOptions, found: &mut Found) {
    let bases: Vec<(String, String)> = reg
        .providers
        .values()
        .flat_map(|p| {
            p.detect
                .libraries
                .iter()
                .map(move |l| (p.name.clone(), l.clone()))
        })
        .collect();
    let subdir_names: Vec<&str> = reg
        .providers
        .values()
        .flat_map(|p| {
            p.builds
                .iter()
                .flat_map(|b| b.lib_dirs.iter().map(String::as_str))
        })
        .collect();
    let top = lib_dirs(opts);
    // Each directory is listed once (the multiarch one holds thousands of files): its names
    // give both the provider subdirectories (`openblas-openmp/`) and the library files.
    let mut dirs: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for d in &top {
        let Some(names) = sorted_names(d) else {
            continue;
        };
        let subs: Vec<PathBuf> = names
            .iter()
            .filter(|n| {
                subdir_names.contains(&n.as_str())
                    || bases.iter().any(|(_, b)| {
                        n.strip_prefix(b.as_str())
                            .is_some_and(|r| r.is_empty() || r.starts_with('-'))
                    })
            })
            .map(|n| d.join(n))
            .filter(|p| p.is_dir())
            .collect();
        dirs.push((d.clone(), names));
        for sd in subs {
            if let Some(names) = sorted_names(&sd) {
                dirs.push((sd, names));
            }
        }
    }
    // Every matching file, then one per real file: the copy in a build's own directory wins
    // (`openblas-pthread/libopenblas.so` over the alternatives link in the parent).
    let mut all: Vec<Lib> = Vec::new();
    for (d, names) in dirs {
        for n in names {
            let provs: Vec<String> = bases
                .iter()
                .filter(|(_, b)| lib_name_matches(&n, b))
                .map(|(p, _)| p.clone())
                .collect();
            if provs.is_empty() {
                continue;
            }
            let path = d.join(&n);
            let Ok(canonical) = std::fs::canonicalize(&path) else {
                continue;
            };
            found.stamps.push(stamp(&path, Some(&canonical)));
            match all.iter_mut().find(|l| l.canonical == canonical) {
                Some(l) => {
                    for p in provs {
                        if !l.providers.contains(&p) {
                            l.providers.push(p);
                        }
                    }
                    if better(&path, &l.path, &subdir_names, &bases) {
                        l.path = path;
                    }
                }
                None => all.push(Lib {
                    path,
                    canonical,
                    providers: provs,
                }),
            }
        }
    }
    found.libs = all;
    for d in &top {
        let p = d.join("libblas.so.3");
        if let Ok(c) = std::fs::canonicalize(&p) {
            found.stamps.push(stamp(&p, Some(&c)));
            found.default_blas = Some((p, c));
            break;
        }
    }
}

/// Whether `a` names a library better than `b`: in a build's own directory (a provider
/// build's `lib_dirs`, or `<library>-<build>` such as Debian's `openblas64-pthread/`, which
/// discovery lists too), then the development name (`libx.so`), then shorter.
fn better(a: &Path, b: &Path, build_dirs: &[&str], bases: &[(String, String)]) -> bool {
    let in_build = |p: &Path| {
        p.parent().and_then(|d| d.file_name()).is_some_and(|n| {
            let n = n.to_string_lossy();
            build_dirs.contains(&n.as_ref())
                || bases.iter().any(|(_, base)| {
                    n.strip_prefix(base.as_str())
                        .is_some_and(|r| r.len() > 1 && r.starts_with('-'))
                })
        })
    };
    let dev = |p: &Path| p.to_string_lossy().ends_with(".so");
    let rank = |p: &Path| (!in_build(p), !dev(p), p.as_os_str().len());
    rank(a) < rank(b)
}

/// A directory's entry names (UTF-8 only), sorted so discovery order is stable.
fn sorted_names(dir: &Path) -> Option<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        for (f, b, want) in [
            ("libopenblas.so", "openblas", true),
            ("libopenblas.so.0", "openblas", true),
            ("libblis.so.4.0", "blis", true),
            ("libopenblasp-r0.3.21.so", "openblas", false),
            ("libopenblas64_.so", "openblas", false),
            ("libblas.so.3", "blas", true),
            ("libblas.a", "blas", false),
            ("libblas.so.3.x", "blas", false),
        ] {
            assert_eq!(lib_name_matches(f, b), want, "{f} {b}");
        }
    }

    #[test]
    fn a_builds_own_directory_names_it_better_than_an_alternatives_link() {
        let dirs = ["openblas-pthread"];
        let bases = vec![("openblas".to_string(), "openblas64".to_string())];
        let multi = Path::new("/usr/lib/x86_64-linux-gnu");
        // Debian's ILP64 builds live in openblas64-<build>/, which no provider lists
        let own = multi.join("openblas64-pthread/libopenblas64.so");
        let alt = multi.join("libopenblas64.so");
        assert!(better(&own, &alt, &dirs, &bases));
        assert!(!better(&alt, &own, &dirs, &bases));
        // a listed build directory still wins over the parent
        let lp = multi.join("openblas-pthread/libopenblas.so");
        assert!(better(&lp, &multi.join("libopenblas.so"), &dirs, &bases));
    }

    #[test]
    fn executable_names() {
        let reg = Registry::builtin();
        let fam = |n: &str| match classify(&reg, n) {
            Some((_, Kind::Named(f))) => f.join(","),
            Some((_, Kind::Generic)) => "generic".into(),
            Some((_, Kind::Mpi)) => "mpi".into(),
            None => "-".into(),
        };
        assert!(fam("gcc-12").contains("gcc"));
        assert!(fam("clang-14").contains("clang"));
        assert_eq!(fam("clang-format"), "-");
        assert_eq!(fam("clangd"), "-");
        assert_eq!(fam("x86_64-linux-gnu-gcc"), "-");
        assert_eq!(fam("cc"), "generic");
        assert_eq!(fam("mpif90"), "mpi");
        assert_eq!(fam("mpicc.openmpi"), "mpi");
        assert_eq!(fam("mpif77.mpich"), "mpi");
        assert_eq!(fam("mpiifx"), "mpi");
        assert_eq!(fam("mpicc.nonsense"), "-");
        // Cray's drivers are any compiler's names too: generic, never MPI by name
        assert_eq!(fam("ftn"), "generic");
        assert_eq!(fam("xlc_r"), "xl");
    }
}
