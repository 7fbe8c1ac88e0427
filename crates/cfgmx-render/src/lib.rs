//! cfgmx's renderer: turns variants into the files build systems, module systems and CI
//! services read — CMake presets, toolchain and cache files, Meson native files, Bento-style
//! configs, scikit-build-core and meson-python settings for pip and `python -m build`, shell env scripts, Lmod module trees, GitHub/GitLab
//! matrices and Slurm job arrays.
//!
//! It owns the tera set-up ([`Renderer`]), the table of output formats ([`FORMATS`]: names,
//! templates — `templates/` at the top of the repository, embedded at compile time —, file
//! names and modes, what each needs), the template [`Context`], and one quoting filter
//! per target language ([`quote`]): a matrix value lands in a generated file as data, never as
//! code, and a value a target cannot represent (a `'` in a Meson machine file) is refused with
//! a [`RenderError::Unrepresentable`] instead of being mangled.
//!
//! Never: probes, spawns, reads files or prints. Rendering is a pure function of the context:
//! the same inputs give byte-identical files. Writing them (atomically) is the CLI's job.

pub mod context;
pub mod formats;
pub mod guard;
pub mod limits;
pub mod presets;
pub mod quote;

pub use context::{BlasCtx, Context, MatrixCtx, VariantCtx, ABSTRACT};
pub use formats::{
    Format, FormatSpec, Layout, Per, FORMATS, GITHUB_MAX_JOBS, GITLAB_MAX_JOBS, SLURM_MAX_TASKS,
};
pub use presets::merge_presets;

use formats::{fill, Companion};
use std::fmt;
use std::path::PathBuf;
use tera::Tera;

/// A name as one module directory or file name: as written when it is a safe file name.
pub(crate) fn module_dir(name: &str) -> String {
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

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the output directory.
    pub path: PathBuf,
    pub content: String,
    /// A script meant to be run: the writer gives it mode 0755 (from [`FORMATS`]).
    pub executable: bool,
}

/// Why rendering failed. Serialisable: a user's template is rendered in a child process,
/// which hands the error back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Tera with the built-in templates ([`FORMATS`]) and the quoting filters.
pub struct Renderer {
    tera: Tera,
    threads: usize,
    /// A built-in template that does not parse: every render answers with it (a test renders
    /// every template, so no build ships one).
    broken: Option<RenderError>,
}

/// Ends each file in a per-variant loop render.
const SEPARATOR: &str = "\u{0}cfgmx-end-of-file\u{0}";

fn loop_name(format: Format) -> String {
    format!("__each__/{}", format.spec().template.name)
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
        tera.register_function("range", limits::range);
        let loops = FORMATS.iter().filter(|f| f.format.per_variant()).map(|f| {
            (
                loop_name(f.format),
                // The template's text inlined in the loop: an include per variant
                // costs more than the body itself.
                format!(
                    "{{% for v in variants %}}{}{SEPARATOR}{{% endfor %}}",
                    f.template.text
                ),
            )
        });
        let all = formats::builtin_templates()
            .map(|t| (t.name.to_string(), t.text.to_string()))
            .chain(loops);
        let mut broken = None;
        // One at a time, so an error names the template that is broken.
        for (name, text) in all {
            if let Err(e) = tera.add_raw_template(&name, &text) {
                broken.get_or_insert_with(|| template_error(&name, &e, "built-in", None));
            }
        }
        Renderer {
            tera,
            threads: 1,
            broken,
        }
    }

    /// Whether every built-in template parsed.
    pub fn check_builtin(&self) -> Result<(), RenderError> {
        match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Renders on up to `n` threads (the caller knows the machine; rendering does not ask).
    pub fn threads(mut self, n: usize) -> Renderer {
        self.threads = n.max(1);
        self
    }

    /// Renders every file of `format` for the variants in `ctx`.
    pub fn render(&self, format: Format, ctx: &Context) -> Result<Vec<RenderedFile>, RenderError> {
        self.render_many(&[format], ctx)
    }

    /// Renders several formats at once, in the order given. The variants are turned into
    /// template values once, and with [`Renderer::threads`] > 1 the per-variant files are
    /// rendered on several threads; the result is the same file list either way.
    pub fn render_many(
        &self,
        formats: &[Format],
        ctx: &Context,
    ) -> Result<Vec<RenderedFile>, RenderError> {
        self.check_builtin()?;
        let n = ctx.variants.len();
        let per_variant: Vec<Format> = formats
            .iter()
            .copied()
            .filter(|f| f.per_variant())
            .collect();
        let whole: Vec<Format> = formats
            .iter()
            .copied()
            .filter(|f| !f.per_variant())
            .collect();
        let ranges = split_ranges(self.threads, n, per_variant.len(), whole.len());
        // Per range: each whole-set format's files (the first range only), then the
        // per-variant files, format after format.
        type Rendered = (Vec<Vec<RenderedFile>>, Vec<RenderedFile>);
        let work = |i: usize, (lo, hi): (usize, usize)| -> Result<Rendered, RenderError> {
            let mut whole_files = Vec::new();
            let mut files = Vec::new();
            if i == 0 && !whole.is_empty() {
                let mut t = self.base_context(ctx, 0, n);
                for f in &whole {
                    whole_files.push(self.render_whole(*f, ctx, &mut t)?);
                }
            }
            if !per_variant.is_empty() && lo < hi {
                let t = self.base_context(ctx, lo, hi);
                for f in &per_variant {
                    files.extend(self.render_each(*f, ctx, &t, lo, hi)?);
                }
            }
            Ok((whole_files, files))
        };
        let results: Vec<Result<_, RenderError>> = if ranges.len() == 1 {
            vec![work(0, ranges[0])]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = ranges
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let work = &work;
                        s.spawn(move || work(i, *r))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(RenderError::Usage("a render thread panicked".into()))
                        })
                    })
                    .collect()
            })
        };
        // Files in the order of `formats`, then of the variants.
        let mut whole_files = Vec::new();
        let mut by_range = Vec::new();
        for r in results {
            let (w, f) = r?;
            whole_files.extend(w);
            by_range.push(f);
        }
        let mut out = Vec::new();
        let mut whole_iter = whole_files.into_iter();
        let per_format = |f: Format| -> Vec<RenderedFile> {
            let mut v = Vec::new();
            for (k, files) in by_range.iter().enumerate() {
                let (lo, hi) = ranges[k];
                let count = hi - lo;
                let pos = per_variant.iter().position(|x| *x == f).unwrap_or(0);
                v.extend(files[pos * count..(pos + 1) * count].iter().cloned());
            }
            v
        };
        for f in formats {
            if f.per_variant() {
                out.extend(self.render_companions(*f, ctx)?);
                out.extend(per_format(*f));
            } else {
                out.extend(whole_iter.next().unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// The tera context for variants `lo..hi`, built once and moved in (no copy).
    fn base_context(&self, ctx: &Context, lo: usize, hi: usize) -> tera::Context {
        let value = serde_json::json!({
            "cfgmx_version": ctx.cfgmx_version,
            "matrix": ctx.matrix,
            "variants": &ctx.variants[lo..hi],
            "profile": ctx.profile,
            "rendered_from": ctx.rendered_from,
            "ci": ctx.ci,
        });
        tera::Context::from_value(value).unwrap_or_default()
    }

    /// A whole-set format: one file, or one per chunk where the service caps a matrix, then
    /// its companions rendered once for the set ([`Per::Matrix`]). The chunk is given to the
    /// template as bounds into `variants`, not as a copy.
    fn render_whole(
        &self,
        format: Format,
        ctx: &Context,
        t: &mut tera::Context,
    ) -> Result<Vec<RenderedFile>, RenderError> {
        let spec = format.spec();
        let Layout::Matrix {
            stem,
            ext,
            chunk: size,
            jobs,
        } = spec.layout
        else {
            return Err(RenderError::Usage(format!(
                "{format} renders one file per variant, not one for all"
            )));
        };
        let n = ctx.variants.len();
        let count = n.div_ceil(size).max(1);
        if let Some(per) = jobs {
            // One file; its jobs grouped as the service allows.
            let chunks: Vec<serde_json::Value> = ctx
                .variants
                .chunks(per)
                .enumerate()
                .map(|(i, c)| {
                    serde_json::json!({
                        "number": i + 1,
                        "offset": i * per,
                        "end": i * per + c.len(),
                        "variants": c.iter().map(|v| &v.name).collect::<Vec<_>>(),
                    })
                })
                .collect();
            t.insert("chunks", &chunks);
        }
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let offset = (i * size).min(n);
            let end = offset.saturating_add(size).min(n);
            t.insert(
                "chunk",
                &serde_json::json!({"number": i + 1, "count": count, "offset": offset, "end": end, "size": end - offset}),
            );
            let content = self.render_one(spec.template.name, t, format, None)?;
            let path = if count == 1 {
                format!("{stem}.{ext}")
            } else {
                format!("{stem}-{}.{ext}", i + 1)
            };
            out.push(RenderedFile {
                path: PathBuf::from(path),
                content,
                executable: spec.executable,
            });
        }
        for c in spec.companions.iter().filter(|c| c.per == Per::Matrix) {
            out.push(self.render_companion(format, c, t, &[])?);
        }
        Ok(out)
    }

    /// A per-variant format for variants `lo..hi` in one tera call (a loop over the same
    /// template), split at a separator no rendered file can contain: every filter refuses
    /// or escapes NUL. If the call fails, or the split does not give one file per variant,
    /// each variant is rendered alone, which also names the variant in an error.
    fn render_each(
        &self,
        format: Format,
        ctx: &Context,
        t: &tera::Context,
        lo: usize,
        hi: usize,
    ) -> Result<Vec<RenderedFile>, RenderError> {
        let joined = self.tera.render(&loop_name(format), t);
        if let Ok(text) = joined {
            let parts: Vec<&str> = text.split(SEPARATOR).collect();
            // The loop leaves an empty piece after the last separator.
            if parts.len() == hi - lo + 1 && parts[hi - lo].is_empty() {
                return ctx.variants[lo..hi]
                    .iter()
                    .zip(parts)
                    .map(|(v, content)| {
                        Ok(RenderedFile {
                            path: variant_path(format, &ctx.matrix, v)?,
                            content: content.to_string(),
                            executable: format.spec().executable,
                        })
                    })
                    .collect();
            }
        }
        (lo..hi)
            .map(|i| self.render_variant(format, ctx, i))
            .collect()
    }

    /// The companions of a per-variant format, which come before its files: for Lmod the
    /// Core level, one compiler module per family and version the variants use (the
    /// variants' own modules sit below it, under `Compiler/`), and the MPI level, one module
    /// per compiler and MPI. A compiler's template also sees the compilers of the first
    /// variant built with it (Fortran only when that variant's Fortran is the same family's).
    fn render_companions(
        &self,
        format: Format,
        ctx: &Context,
    ) -> Result<Vec<RenderedFile>, RenderError> {
        let mut out = Vec::new();
        for c in format.spec().companions {
            match c.per {
                Per::Matrix => {
                    let mut t = self.base_context(ctx, 0, ctx.variants.len());
                    out.push(self.render_companion(format, c, &mut t, &[])?);
                }
                Per::Compiler => {
                    let mut seen: indexmap::IndexMap<&str, &VariantCtx> = indexmap::IndexMap::new();
                    for v in &ctx.variants {
                        seen.entry(v.compiler_module.as_str()).or_insert(v);
                    }
                    for (module, v) in seen {
                        let (dir_family, dir_version) =
                            module.split_once('/').unwrap_or((module, "default"));
                        let mut t = tera::Context::new();
                        t.insert("cfgmx_version", ctx.cfgmx_version);
                        t.insert(
                            "c",
                            &serde_json::json!({
                                "family": v.compiler,
                                "version": v.compiler_version.as_deref().unwrap_or("default"),
                                "module": module,
                                "dir_family": dir_family,
                                "dir_version": dir_version,
                                "cc": v.cc,
                                "cxx": v.cxx,
                                "fc": if v.fortran_compiler.is_none() { v.fc.as_deref() } else { None },
                            }),
                        );
                        out.push(self.render_companion(
                            format,
                            c,
                            &mut t,
                            &[("compiler", module)],
                        )?);
                    }
                }
                Per::CompilerMpi => {
                    let mut mpis: indexmap::IndexMap<(&str, &str), &VariantCtx> =
                        indexmap::IndexMap::new();
                    for v in &ctx.variants {
                        if let Some(m) = &v.mpi {
                            mpis.entry((v.compiler_module.as_str(), m.module.as_str()))
                                .or_insert(v);
                        }
                    }
                    for ((compiler, module), v) in mpis {
                        let mut t = tera::Context::new();
                        t.insert("cfgmx_version", ctx.cfgmx_version);
                        t.insert("compiler_module", compiler);
                        t.insert("mpi", &v.mpi);
                        out.push(self.render_companion(
                            format,
                            c,
                            &mut t,
                            &[("compiler", compiler), ("mpi", module)],
                        )?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn render_companion(
        &self,
        format: Format,
        c: &Companion,
        t: &mut tera::Context,
        values: &[(&str, &str)],
    ) -> Result<RenderedFile, RenderError> {
        Ok(RenderedFile {
            path: PathBuf::from(fill(c.path, values)),
            content: self.render_one(c.template.name, t, format, None)?,
            executable: c.executable,
        })
    }

    /// Renders one variant's file of a per-variant format (the build runner's entry point).
    pub fn render_variant(
        &self,
        format: Format,
        ctx: &Context,
        variant_index: usize,
    ) -> Result<RenderedFile, RenderError> {
        self.check_builtin()?;
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
        let spec = format.spec();
        let content = self.render_one(spec.template.name, &t, format, Some(&v.name))?;
        Ok(RenderedFile {
            path: variant_path(format, &ctx.matrix, v)?,
            content,
            executable: spec.executable,
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
        let value = serde_json::to_value(ctx).map_err(|e| RenderError::Template {
            template: name.to_string(),
            line: None,
            column: None,
            message: e.to_string(),
        })?;
        self.render_user_value(name, text, &value)
    }

    /// [`Renderer::render_user`] against a context already turned into JSON (what a child
    /// process that renders the template receives). The output stops at
    /// [`limits::MAX_OUTPUT`] bytes.
    pub fn render_user_value(
        &self,
        name: &str,
        text: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, RenderError> {
        if let Some(f) = guard::check(text) {
            return Err(RenderError::Template {
                template: name.to_string(),
                line: Some(f.line),
                column: Some(f.column),
                message: f.message,
            });
        }
        let mut tera = self.tera.clone();
        tera.add_raw_template(name, text)
            .map_err(|e| template_error(name, &e, "template", None))?;
        let t = tera::Context::from_value(ctx.clone()).map_err(|e| RenderError::Template {
            template: name.to_string(),
            line: None,
            column: None,
            message: e.to_string(),
        })?;
        let mut out = limits::Capped {
            buf: Vec::new(),
            limit: limits::MAX_OUTPUT,
        };
        match tera.render_to(name, &t, &mut out) {
            Ok(()) => String::from_utf8(out.buf).map_err(|e| RenderError::Template {
                template: name.to_string(),
                line: None,
                column: None,
                message: e.to_string(),
            }),
            Err(e) if chain_has(&e, limits::OUTPUT_TAG) => Err(RenderError::Template {
                template: name.to_string(),
                line: None,
                column: None,
                message: format!(
                    "the output passed {} MiB, the most one generated file may have",
                    limits::MAX_OUTPUT >> 20
                ),
            }),
            Err(e) => Err(template_error(name, &e, "template", None)),
        }
    }
}

fn chain_has(e: &tera::Error, tag: &str) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        if x.to_string().contains(tag) {
            return true;
        }
        cur = x.source();
    }
    false
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
    // A parse error carries pest's own excerpt (` --> 2:7`, the line, a caret); the CLI
    // draws its own, so keep only what was expected.
    let message = match message
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= "))
    {
        Some(expected) if line.is_some() => expected.to_string(),
        _ => message,
    };
    RenderError::Template {
        template: template.to_string(),
        line,
        column,
        message,
    }
}

/// The path of a per-variant file: its format's pattern, filled in.
fn variant_path(format: Format, m: &MatrixCtx, v: &VariantCtx) -> Result<PathBuf, RenderError> {
    let Layout::PerVariant { path, mpi_path } = format.spec().layout else {
        return Err(RenderError::Usage(format!(
            "{format} renders one file for all variants, not one per variant"
        )));
    };
    let matrix = module_dir(&m.name);
    let mut values = vec![
        ("name", v.name.as_str()),
        ("matrix", matrix.as_str()),
        ("compiler", v.compiler_module.as_str()),
    ];
    let pattern = match (&v.mpi, mpi_path) {
        (Some(mpi), Some(p)) => {
            values.push(("mpi", mpi.module.as_str()));
            p
        }
        _ => path,
    };
    Ok(PathBuf::from(fill(pattern, &values)))
}

/// The variant ranges `lo..hi` of each render thread, for `n` variants, `per_variant` per-variant
/// formats and `whole` whole-set formats.
fn split_ranges(threads: usize, n: usize, per_variant: usize, whole: usize) -> Vec<(usize, usize)> {
    // Split the variants so each thread has about the same work: the thread that renders
    // the whole-set formats also takes a smaller share of the per-variant files.
    let threads = threads.clamp(1, n.max(1));
    let mut bounds = vec![0usize];
    if threads > 1 && per_variant > 0 {
        // Costs in variant-renders: a whole-set file costs about half a per-variant pass.
        let p = per_variant as f64;
        let w = whole as f64 * 0.5 * n as f64;
        let target = (p * n as f64 + w) / threads as f64;
        let first = (((target - w) / p).max(0.0) as usize).min(n);
        bounds.push(first);
        for t in 1..threads {
            bounds.push(first + (n - first) * t / (threads - 1));
        }
    } else {
        bounds.push(n);
    }
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

#[cfg(test)]
mod tests;
