//! The output formats as one table, [`FORMATS`]: each format's name and help, its templates,
//! the files it writes (one per variant, or one per matrix cut into chunks where a service
//! caps a matrix), which of them are executable, and what it needs from the command line.
//! The renderer, `cfgmx generate` (file names, modes, `--merge`, repository-relative matrix
//! paths), `generate --help`, shell completion and the docs' list of formats all read it, so
//! adding a format is a row here, its template under `templates/`, and a line in
//! `docs/templates.md` (a test compares that list with this table).

use std::fmt;
use std::str::FromStr;

/// An output format (`-f`). Its facts are its row of [`FORMATS`] ([`Format::spec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    CmakePresets,
    CmakeToolchain,
    CmakeCache,
    MesonNative,
    Bento,
    ScikitBuildCore,
    MesonPython,
    Env,
    Lmod,
    Github,
    GithubWorkflow,
    Gitlab,
    Slurm,
}

/// A built-in template: its name (what errors point at; `.html` would turn on escaping) and
/// its text, embedded at compile time.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub name: &'static str,
    pub text: &'static str,
}

macro_rules! template {
    ($file:literal) => {
        Template {
            name: $file,
            text: include_str!(concat!("../../../templates/", $file)),
        }
    };
}

/// Where a format's main template writes.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// One file per variant, at `path` (`mpi_path` for a variant with an MPI, when given).
    /// Placeholders: `{name}` the variant, `{matrix}` the matrix as a directory name,
    /// `{compiler}` the variant's compiler module (`gcc/12.2.0`), `{mpi}` its MPI module.
    PerVariant {
        path: &'static str,
        mpi_path: Option<&'static str>,
    },
    /// One file for all variants, `STEM.EXT`; or, above `chunk` variants, one per chunk,
    /// `STEM-N.EXT`, each given its bounds as `chunk` (the most one GitHub matrix or Slurm
    /// array may hold).
    Matrix {
        stem: &'static str,
        ext: &'static str,
        chunk: usize,
        /// Within the one file, jobs grouped by at most this many variants, given to the
        /// template as `chunks` (`number`, `offset`, `end`, the `variants`' names): the most
        /// one GitHub matrix or GitLab `parallel: matrix` may create.
        jobs: Option<usize>,
    },
}

/// What a companion file is rendered once for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Once for the whole set, after the main files (Slurm's merge job and submit script),
    /// with the same context as the main template. `{path}` has no placeholder.
    Matrix,
    /// Once per compiler module the variants use, before the main files (Lmod's Core
    /// level); the template sees `c` (that compiler). Placeholder: `{compiler}`.
    Compiler,
    /// Once per compiler and MPI module, before the main files (Lmod's MPI level); the
    /// template sees `compiler_module` and `mpi`. Placeholders: `{compiler}`, `{mpi}`.
    CompilerMpi,
}

/// A file a format writes besides its main template's.
#[derive(Debug, Clone, Copy)]
pub struct Companion {
    pub template: Template,
    pub path: &'static str,
    pub per: Per,
    pub executable: bool,
}

/// What a format takes from the command line, besides the matrix. (Every format renders a
/// probe's concrete variants or abstract ones alike, and MPI variants wherever there are
/// some, so neither is a need.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Its jobs check the repository out: the matrix file is named relative to the
    /// repository, and one outside it is refused.
    pub repo_matrix: bool,
    /// Its jobs install cfgmx: `--cfgmx-from` says from where.
    pub cfgmx_from: bool,
    /// `--merge` adds its file to the user's existing one.
    pub merge: bool,
}

/// One row of [`FORMATS`].
#[derive(Debug, Clone, Copy)]
pub struct FormatSpec {
    pub format: Format,
    /// The `-f` name.
    pub name: &'static str,
    /// One line for `--help` and completion.
    pub help: &'static str,
    pub template: Template,
    pub layout: Layout,
    /// The main files are scripts meant to be run (mode 0755 rather than the umask's).
    pub executable: bool,
    pub companions: &'static [Companion],
    pub needs: Needs,
}

/// Every format, in the order `--help`, completion and the docs list them; a format's row is
/// at its `Format as usize` (a test checks it).
pub const FORMATS: &[FormatSpec] = &[
    FormatSpec {
        format: Format::CmakePresets,
        name: "cmake-presets",
        help: "CMakePresets.json: configure, build, test and workflow presets per variant",
        template: template!("cmake-presets.json.tera"),
        layout: Layout::Matrix {
            stem: "CMakePresets",
            ext: "json",
            chunk: usize::MAX,
            jobs: None,
        },
        executable: false,
        companions: &[],
        needs: Needs {
            merge: true,
            ..NONE
        },
    },
    FormatSpec {
        format: Format::CmakeToolchain,
        name: "cmake-toolchain",
        help: "toolchain/<variant>.cmake for `cmake --toolchain`",
        template: template!("cmake-toolchain.cmake.tera"),
        layout: per_variant("toolchain/{name}.cmake"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::CmakeCache,
        name: "cmake-cache",
        help: "cache/<variant>.cmake for `cmake -C`: build type, BLAS, matrix values",
        template: template!("cmake-cache.cmake.tera"),
        layout: per_variant("cache/{name}.cmake"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::MesonNative,
        name: "meson-native",
        help: "meson/<variant>.ini for `meson setup --native-file`",
        template: template!("meson-native.ini.tera"),
        layout: per_variant("meson/{name}.ini"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::Bento,
        name: "bento",
        help: "bento/<variant>.info: Bento-style Flag: and Path: sections",
        template: template!("bento.info.tera"),
        layout: per_variant("bento/{name}.info"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::ScikitBuildCore,
        name: "scikit-build-core",
        help: "python/scikit-build-core/<variant>.sh: settings for pip and `python -m build`",
        template: template!("scikit-build-core.sh.tera"),
        layout: per_variant("python/scikit-build-core/{name}.sh"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::MesonPython,
        name: "meson-python",
        help: "python/meson-python/<variant>.sh: settings for pip and `python -m build`",
        template: template!("meson-python.sh.tera"),
        // Beside `meson/` of the same output directory: the script finds its native file
        // at `../../meson/NAME.ini` from its own path.
        layout: per_variant("python/meson-python/{name}.sh"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::Env,
        name: "env",
        help: "env/<variant>.sh: CC, CFLAGS, LDFLAGS... exported, for `. FILE`",
        template: template!("env.sh.tera"),
        layout: per_variant("env/{name}.sh"),
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::Lmod,
        name: "lmod",
        help: "modules/: an Lmod hierarchy, compiler (Core), MPI and variant modules",
        template: template!("lmod.lua.tera"),
        // An MPI variant sits below its MPI module, which sits below the compiler's.
        layout: Layout::PerVariant {
            path: "modules/Compiler/{compiler}/{matrix}/{name}.lua",
            mpi_path: Some("modules/MPI/{compiler}/{mpi}/{matrix}/{name}.lua"),
        },
        executable: false,
        companions: &[
            Companion {
                template: template!("lmod-core.lua.tera"),
                path: "modules/Core/{compiler}.lua",
                per: Per::Compiler,
                executable: false,
            },
            Companion {
                template: template!("lmod-mpi.lua.tera"),
                path: "modules/Compiler/{compiler}/{mpi}.lua",
                per: Per::CompilerMpi,
                executable: false,
            },
        ],
        needs: NONE,
    },
    FormatSpec {
        format: Format::Github,
        name: "github",
        help: "github-matrix.json: a GitHub Actions job matrix (one file per 256 variants)",
        template: template!("github.json.tera"),
        layout: Layout::Matrix {
            stem: "github-matrix",
            ext: "json",
            chunk: GITHUB_MAX_JOBS,
            jobs: None,
        },
        executable: false,
        companions: &[],
        needs: NONE,
    },
    FormatSpec {
        format: Format::GithubWorkflow,
        name: "github-workflow",
        help: ".github/workflows/cfgmx.yml: a whole workflow that builds every variant",
        template: template!("github-workflow.yml.tera"),
        layout: Layout::Matrix {
            stem: ".github/workflows/cfgmx",
            ext: "yml",
            chunk: usize::MAX,
            jobs: Some(GITHUB_MAX_JOBS),
        },
        executable: false,
        companions: &[],
        needs: CI,
    },
    FormatSpec {
        format: Format::Gitlab,
        name: "gitlab",
        help: "gitlab-ci.yml: GitLab CI jobs that build every variant",
        template: template!("gitlab-ci.yml.tera"),
        layout: Layout::Matrix {
            stem: "gitlab-ci",
            ext: "yml",
            chunk: usize::MAX,
            jobs: Some(GITLAB_MAX_JOBS),
        },
        executable: false,
        companions: &[],
        needs: CI,
    },
    FormatSpec {
        format: Format::Slurm,
        name: "slurm",
        help: "slurm/: job arrays that build every variant, a merge job, a submit script",
        template: template!("slurm.sbatch.tera"),
        layout: Layout::Matrix {
            stem: "slurm/cfgmx-array",
            ext: "sbatch",
            chunk: SLURM_MAX_TASKS,
            jobs: None,
        },
        // Job scripts are meant to be run.
        executable: true,
        companions: &[
            // The job that merges every array task's result...
            Companion {
                template: template!("slurm-merge.sbatch.tera"),
                path: "slurm/cfgmx-merge.sbatch",
                per: Per::Matrix,
                executable: true,
            },
            // ...and the script that submits the arrays, then the merge job
            // (`--dependency=afterany`); it is run with `sh`.
            Companion {
                template: template!("slurm-submit.sh.tera"),
                path: "slurm/submit.sh",
                per: Per::Matrix,
                executable: false,
            },
        ],
        needs: NONE,
    },
];

/// Most jobs one GitHub Actions matrix may have.
pub const GITHUB_MAX_JOBS: usize = 256;
/// Most jobs one GitLab `parallel: matrix` may create.
pub const GITLAB_MAX_JOBS: usize = 200;
/// Tasks per Slurm array: indices 0..999 fit the default `MaxArraySize` of 1001.
pub const SLURM_MAX_TASKS: usize = 1000;

const NONE: Needs = Needs {
    repo_matrix: false,
    cfgmx_from: false,
    merge: false,
};

/// A CI service's jobs: they check the repository out and install cfgmx.
const CI: Needs = Needs {
    repo_matrix: true,
    cfgmx_from: true,
    merge: false,
};

const fn per_variant(path: &'static str) -> Layout {
    Layout::PerVariant {
        path,
        mpi_path: None,
    }
}

impl Format {
    /// Every format, in [`FORMATS`]' order.
    pub const ALL: [Format; FORMATS.len()] = {
        let mut all = [Format::Env; FORMATS.len()];
        let mut i = 0;
        while i < FORMATS.len() {
            all[i] = FORMATS[i].format;
            i += 1;
        }
        all
    };

    /// This format's row of [`FORMATS`].
    pub fn spec(self) -> &'static FormatSpec {
        &FORMATS[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// One file per variant (rather than one file, or one per chunk, for the whole set).
    pub fn per_variant(self) -> bool {
        matches!(self.spec().layout, Layout::PerVariant { .. })
    }
}

impl FormatSpec {
    /// Every template the format renders: the main one, then its companions'.
    pub fn templates(&self) -> impl Iterator<Item = Template> + '_ {
        std::iter::once(self.template).chain(self.companions.iter().map(|c| c.template))
    }
}

/// Every built-in template, each once.
pub fn builtin_templates() -> impl Iterator<Item = Template> {
    FORMATS.iter().flat_map(FormatSpec::templates)
}

/// `pattern` with each `{key}` replaced by its value.
pub(crate) fn fill(pattern: &str, values: &[(&str, &str)]) -> String {
    let mut out = pattern.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FORMATS
            .iter()
            .find(|f| f.name == s)
            .map(|f| f.format)
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|f| f.name).collect();
                format!("unknown format `{s}`; formats: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_at_its_own_row_with_a_unique_name_and_template() {
        let mut names = std::collections::BTreeSet::new();
        let mut templates = std::collections::BTreeSet::new();
        for (i, f) in FORMATS.iter().enumerate() {
            assert_eq!(f.format as usize, i, "{}", f.name);
            assert_eq!(f.format.as_str().parse::<Format>(), Ok(f.format));
            assert!(names.insert(f.name), "{} twice", f.name);
            assert!(!f.help.is_empty() && !f.help.contains('\n'), "{}", f.name);
            for t in f.templates() {
                assert!(templates.insert(t.name), "{} twice", t.name);
                assert!(!t.text.is_empty(), "{}", t.name);
            }
        }
    }

    /// The docs' table of formats (`docs/templates.md`, first column) and the README's
    /// sentence that lists them name exactly the registry's formats, in its order.
    #[test]
    fn docs_list_every_format_in_registry_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let want: Vec<&str> = FORMATS.iter().map(|f| f.name).collect();
        let doc = std::fs::read_to_string(root.join("docs/templates.md")).unwrap();
        let table: Vec<&str> = doc
            .split("## Formats")
            .nth(1)
            .expect("docs/templates.md has a `## Formats` section")
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name))
            .collect();
        assert_eq!(table, want, "docs/templates.md's table of formats");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let para = readme
            .split("## Generating configurations")
            .nth(1)
            .and_then(|s| s.split("for every available variant:").nth(1))
            .and_then(|s| s.split("(`cfgmx generate --help` lists them)").next())
            .expect("README's generate section lists the formats");
        let listed: Vec<&str> = para
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| !w.contains(' '))
            .collect();
        assert_eq!(listed, want, "README's list of formats");
    }
}
