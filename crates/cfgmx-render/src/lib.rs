//! cfgmx's renderer: turns variants into the files build systems, module systems and CI
//! services read — CMake presets, toolchain and cache files, Meson native files, Bento-style
//! configs, pip `--config-settings`, shell env scripts, Lmod module trees, GitHub/GitLab
//! matrices and Slurm job arrays.
//!
//! It owns the tera set-up ([`Renderer`]), the built-in templates (`templates/` at the top of
//! the repository, embedded at compile time), the template [`Context`], and one quoting filter
//! per target language ([`quote`]): a matrix value lands in a generated file as data, never as
//! code, and a value a target cannot represent (a `'` in a Meson machine file) is refused with
//! a [`RenderError::Unrepresentable`] instead of being mangled.
//!
//! Never: probes, spawns, reads files or prints. Rendering is a pure function of the context:
//! the same inputs give byte-identical files. Writing them (atomically) is the CLI's job.

pub mod context;
pub mod presets;
pub mod quote;

pub use context::{BlasCtx, Context, MatrixCtx, VariantCtx};
pub use presets::merge_presets;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use tera::Tera;

/// Most jobs one GitHub Actions matrix may have.
pub const GITHUB_MAX_JOBS: usize = 256;
/// Most jobs one GitLab `parallel: matrix` may create.
pub const GITLAB_MAX_JOBS: usize = 200;
/// Tasks per Slurm array: indices 0..999 fit the default `MaxArraySize` of 1001.
pub const SLURM_MAX_TASKS: usize = 1000;

/// An output format (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    CmakePresets,
    CmakeToolchain,
    CmakeCache,
    MesonNative,
    Bento,
    PipConfig,
    Env,
    Lmod,
    Github,
    Gitlab,
    Slurm,
}

impl Format {
    pub const ALL: [Format; 11] = [
        Format::CmakePresets,
        Format::CmakeToolchain,
        Format::CmakeCache,
        Format::MesonNative,
        Format::Bento,
        Format::PipConfig,
        Format::Env,
        Format::Lmod,
        Format::Github,
        Format::Gitlab,
        Format::Slurm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::CmakePresets => "cmake-presets",
            Format::CmakeToolchain => "cmake-toolchain",
            Format::CmakeCache => "cmake-cache",
            Format::MesonNative => "meson-native",
            Format::Bento => "bento",
            Format::PipConfig => "pip-config",
            Format::Env => "env",
            Format::Lmod => "lmod",
            Format::Github => "github",
            Format::Gitlab => "gitlab",
            Format::Slurm => "slurm",
        }
    }

    /// One file per variant (rather than one file, or one per chunk, for the whole set).
    pub fn per_variant(self) -> bool {
        matches!(
            self,
            Format::CmakeToolchain
                | Format::CmakeCache
                | Format::MesonNative
                | Format::Bento
                | Format::PipConfig
                | Format::Env
                | Format::Lmod
        )
    }

    fn template(self) -> &'static str {
        match self {
            Format::CmakePresets => "cmake-presets.json.tera",
            Format::CmakeToolchain => "cmake-toolchain.cmake.tera",
            Format::CmakeCache => "cmake-cache.cmake.tera",
            Format::MesonNative => "meson-native.ini.tera",
            Format::Bento => "bento.info.tera",
            Format::PipConfig => "pip-config.txt.tera",
            Format::Env => "env.sh.tera",
            Format::Lmod => "lmod.lua.tera",
            Format::Github => "github.json.tera",
            Format::Gitlab => "gitlab-ci.yml.tera",
            Format::Slurm => "slurm.sbatch.tera",
        }
    }

    /// The path of a per-variant file.
    fn variant_path(self, m: &MatrixCtx, v: &VariantCtx) -> PathBuf {
        let n = &v.name;
        PathBuf::from(match self {
            Format::CmakeToolchain => format!("toolchain/{n}.cmake"),
            Format::CmakeCache => format!("cache/{n}.cmake"),
            Format::MesonNative => format!("meson/{n}.ini"),
            Format::Bento => format!("bento/{n}.info"),
            Format::PipConfig => format!("pip/{n}.txt"),
            Format::Env => format!("env/{n}.sh"),
            Format::Lmod => format!("modules/Core/{}/{n}.lua", module_dir(&m.name)),
            _ => format!("{n}"),
        })
    }
}

/// The matrix name as a module directory: as written when it is a safe file name.
fn module_dir(name: &str) -> String {
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if safe {
        name.to_string()
    } else {
        cfgmx_model::resolve::slug(name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown format `{s}`; formats: {}", names.join(", "))
            })
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the output directory.
    pub path: PathBuf,
    pub content: String,
}

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// A template that does not parse or fails while rendering: the template file, and the
    /// line and column when tera knows them.
    Template {
        template: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// A value the target format cannot represent.
    Unrepresentable {
        format: String,
        variant: Option<String>,
        value: String,
        reason: String,
    },
    /// A variant index that is not in the context, or a format that is not per-variant.
    Usage(String),
    /// An existing CMakePresets.json that cannot be merged with.
    Merge(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Template {
                template,
                line,
                column,
                message,
            } => {
                write!(f, "{template}")?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some(c) = column {
                        write!(f, ":{c}")?;
                    }
                }
                write!(f, ": {message}")
            }
            RenderError::Unrepresentable {
                format,
                variant,
                value,
                reason,
            } => {
                write!(f, "cannot write the value {} ", quote::json(value))?;
                if let Some(v) = variant {
                    write!(f, "of variant `{v}` ")?;
                }
                write!(f, "in {format} output: {reason}")
            }
            RenderError::Usage(m) | RenderError::Merge(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RenderError {}

/// The embedded templates: (file name, text).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "cmake-presets.json.tera",
        include_str!("../../../templates/cmake-presets.json.tera"),
    ),
    (
        "cmake-toolchain.cmake.tera",
        include_str!("../../../templates/cmake-toolchain.cmake.tera"),
    ),
    (
        "cmake-cache.cmake.tera",
        include_str!("../../../templates/cmake-cache.cmake.tera"),
    ),
    (
        "meson-native.ini.tera",
        include_str!("../../../templates/meson-native.ini.tera"),
    ),
    (
        "bento.info.tera",
        include_str!("../../../templates/bento.info.tera"),
    ),
    (
        "pip-config.txt.tera",
        include_str!("../../../templates/pip-config.txt.tera"),
    ),
    (
        "env.sh.tera",
        include_str!("../../../templates/env.sh.tera"),
    ),
    (
        "lmod.lua.tera",
        include_str!("../../../templates/lmod.lua.tera"),
    ),
    (
        "github.json.tera",
        include_str!("../../../templates/github.json.tera"),
    ),
    (
        "gitlab-ci.yml.tera",
        include_str!("../../../templates/gitlab-ci.yml.tera"),
    ),
    (
        "slurm.sbatch.tera",
        include_str!("../../../templates/slurm.sbatch.tera"),
    ),
];

/// Tera with the embedded templates and the quoting filters.
pub struct Renderer {
    tera: Tera,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        let mut tera = Tera::default();
        // Escaping for HTML belongs to HTML outputs only; every built-in format has its own
        // quoting filter instead.
        tera.autoescape_on(vec![".html", ".htm", ".html.tera", ".htm.tera"]);
        quote::register(&mut tera);
        // The embedded templates are checked by the unit tests; a broken one is a build bug.
        if let Err(e) = tera.add_raw_templates(TEMPLATES.iter().copied()) {
            debug_assert!(false, "embedded template broken: {e}");
        }
        Renderer { tera }
    }

    /// Renders every file of `format` for the variants in `ctx`.
    pub fn render(&self, format: Format, ctx: &Context) -> Result<Vec<RenderedFile>, RenderError> {
        if format.per_variant() {
            return (0..ctx.variants.len())
                .map(|i| self.render_variant(format, ctx, i))
                .collect();
        }
        let (chunk, stem, ext) = match format {
            Format::CmakePresets => (usize::MAX, "CMakePresets", "json"),
            Format::Github => (GITHUB_MAX_JOBS, "github-matrix", "json"),
            Format::Gitlab => (usize::MAX, "gitlab-ci", "yml"),
            Format::Slurm => (SLURM_MAX_TASKS, "slurm/cfgmx-array", "sbatch"),
            _ => unreachable!("per-variant formats returned above"),
        };
        let chunks: Vec<&[VariantCtx]> = if ctx.variants.is_empty() {
            vec![&[]]
        } else {
            ctx.variants.chunks(chunk.min(ctx.variants.len())).collect()
        };
        // GitLab puts its jobs (200 each) in one file, so it sees all chunks at once.
        let gitlab_chunks: Vec<serde_json::Value> = ctx
            .variants
            .chunks(GITLAB_MAX_JOBS)
            .enumerate()
            .map(|(i, c)| {
                serde_json::json!({
                    "number": i + 1,
                    "variants": c.iter().map(|v| &v.name).collect::<Vec<_>>(),
                })
            })
            .collect();
        let n = chunks.len();
        let mut out = Vec::with_capacity(n);
        let mut offset = 0;
        for (i, vs) in chunks.into_iter().enumerate() {
            let mut t = tera::Context::new();
            t.insert("cfgmx_version", ctx.cfgmx_version);
            t.insert("matrix", &ctx.matrix);
            t.insert("variants", vs);
            t.insert("profile", &ctx.profile);
            t.insert(
                "chunk",
                &serde_json::json!({"number": i + 1, "count": n, "offset": offset}),
            );
            if format == Format::Gitlab {
                t.insert("chunks", &gitlab_chunks);
            }
            offset += vs.len();
            let content = self.render_one(format.template(), &t, format, None)?;
            let path = if n == 1 {
                format!("{stem}.{ext}")
            } else {
                format!("{stem}-{}.{ext}", i + 1)
            };
            out.push(RenderedFile {
                path: PathBuf::from(path),
                content,
            });
        }
        Ok(out)
    }

    /// Renders one variant's file of a per-variant format (the build runner's entry point).
    pub fn render_variant(
        &self,
        format: Format,
        ctx: &Context,
        variant_index: usize,
    ) -> Result<RenderedFile, RenderError> {
        if !format.per_variant() {
            return Err(RenderError::Usage(format!(
                "{format} renders one file for all variants, not one per variant"
            )));
        }
        let v = ctx.variants.get(variant_index).ok_or_else(|| {
            RenderError::Usage(format!(
                "no variant {variant_index} (the context has {})",
                ctx.variants.len()
            ))
        })?;
        let mut t = tera::Context::new();
        t.insert("cfgmx_version", ctx.cfgmx_version);
        t.insert("matrix", &ctx.matrix);
        t.insert("v", v);
        let content = self.render_one(format.template(), &t, format, Some(&v.name))?;
        Ok(RenderedFile {
            path: format.variant_path(&ctx.matrix, v),
            content,
        })
    }

    fn render_one(
        &self,
        template: &str,
        t: &tera::Context,
        format: Format,
        variant: Option<&str>,
    ) -> Result<String, RenderError> {
        self.tera
            .render(template, t)
            .map_err(|e| template_error(template, &e, format.as_str(), variant))
    }

    /// Renders a user's template (`--template FILE`) against the whole context: `matrix`,
    /// `variants`, `profile`, `cfgmx_version`. `name` is the file name: it decides HTML
    /// autoescaping (`.html`) and is what errors point at.
    pub fn render_user(
        &self,
        name: &str,
        text: &str,
        ctx: &Context,
    ) -> Result<String, RenderError> {
        let mut tera = self.tera.clone();
        tera.add_raw_template(name, text)
            .map_err(|e| template_error(name, &e, "template", None))?;
        let t = tera::Context::from_serialize(ctx).map_err(|e| RenderError::Template {
            template: name.to_string(),
            line: None,
            column: None,
            message: e.to_string(),
        })?;
        tera.render(name, &t)
            .map_err(|e| template_error(name, &e, "template", None))
    }
}

/// Turns a tera error into a located [`RenderError`]: tera reports parse errors with
/// ` --> line:col` inside its error chain, and filter refusals with [`quote::REFUSAL_TAG`].
fn template_error(
    template: &str,
    e: &tera::Error,
    format: &str,
    variant: Option<&str>,
) -> RenderError {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        chain.push(x.to_string());
        cur = x.source();
    }
    if let Some(r) = chain.iter().find_map(|m| quote::refusal_in(m)) {
        return RenderError::Unrepresentable {
            format: format.to_string(),
            variant: variant.map(str::to_string),
            value: r.value,
            reason: r.reason,
        };
    }
    let mut line = None;
    let mut column = None;
    for m in &chain {
        if let Some(pos) = m.find("--> ") {
            let loc: String = m[pos + 4..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ':')
                .collect();
            let mut it = loc.split(':').map(|x| x.parse::<usize>().ok());
            line = it.next().flatten();
            column = it.next().flatten();
            break;
        }
    }
    // The innermost messages say what went wrong; tera's outer ones only name the template.
    let message = chain
        .iter()
        .skip(1)
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let message = if message.is_empty() {
        chain.first().cloned().unwrap_or_default()
    } else {
        message
    };
    RenderError::Template {
        template: template.to_string(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests;
