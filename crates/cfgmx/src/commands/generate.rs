//! `cfgmx generate`: render a matrix's variants into build-system, module and CI files.
//!
//! Rendering happens in full before anything is written, and every file is written to a
//! temporary name and renamed (one [`cfgmx_fs::Batch`]), with the modes the format table
//! gives, so a bad template or an unrepresentable value leaves the
//! output directory as it was. Files cfgmx wrote are listed, with their content hash, in
//! `DIR/.cfgmx-generated`; any other existing file is left alone unless `--force`.

use crate::cli::{GenerateArgs, Global};
use crate::error::{CliError, Exit, Result};
use crate::load::{self, Session};
use crate::probing;
use cfgmx_model::{
    ConcreteVariant, Diagnostic, Diagnostics, Matrix, Profile, Source, Variant, VariantSet,
};
use cfgmx_probe::ProbeOptions;
use cfgmx_render::{merge_presets, Context, RenderError, RenderedFile, Renderer, FORMATS};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MANIFEST: &str = ".cfgmx-generated";

pub fn run(g: &Global, a: GenerateArgs) -> Result<Exit> {
    // A source no file of the format names would be silently dropped.
    if let (Some(f), Some(_)) = (a.format, &a.cfgmx_from) {
        if !f.spec().needs.cfgmx_from {
            return Err(CliError::usage(format!(
                "--cfgmx-from applies to {} (or a --template that uses it) only",
                formats_that(|n| n.cfgmx_from)
            )));
        }
    }
    let session = Session::load(g)?;
    let reg = &session.registry;
    let m = session.matrix(a.matrix.as_deref())?;
    let g = &g.with_matrix(&m);
    let set = m.variant_set(reg)?;
    let (profile, prove, from) = profile(&session, g, &a)?;
    let concrete: Vec<Option<ConcreteVariant>> = match &profile {
        Some(p) => crate::proven::concretize_all(&set.variants, &m, reg, p, prove.as_ref())
            .into_iter()
            .map(Some)
            .collect(),
        None => set.variants.iter().map(|_| None).collect(),
    };
    let chosen = chosen(&a, &set, &concrete);
    let mut ctx = Context::new(&m, chosen, set.short_len, profile.as_ref()).with_packages(reg);
    ctx.ci.cfgmx_from = cfgmx_render::context::CfgmxSource::parse(a.cfgmx_from.as_deref());
    if let Some(arg) = &a.matrix {
        ctx.matrix.arg = match a.format {
            Some(f) if f.spec().needs.repo_matrix => repo_relative(arg, a.output.as_deref())?,
            _ => arg.clone(),
        };
    }
    // A header comment: a control character in a path would end the comment early.
    ctx.rendered_from = from
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let files = render(&a, &ctx, &m)?;
    match &a.output {
        Some(dir) => write_dir(g, &a, dir, files, &m),
        None => print_one(&files),
    }
}

/// The profile the variants are rendered against, the options their link tests run with
/// when it is this machine's, and what the files' header says they were rendered from.
/// A profile file may describe another machine (a CI runner): its variants are rendered
/// as it says. The cached profile is this machine's, so its variants are proven here by
/// their link tests (cached too).
fn profile(
    s: &Session,
    g: &Global,
    a: &GenerateArgs,
) -> Result<(Option<Profile>, Option<ProbeOptions>, String)> {
    Ok(match &a.profile {
        Some(p) => (
            Some(load::read_profile(p)?),
            None,
            format!("rendered from the profile {}", p.display()),
        ),
        None => {
            // The probe's cache, when the machine has not changed since `cfgmx probe`;
            // generating never runs a probe itself.
            let opts = probing::default_options(s, g, None)?;
            let cached = cfgmx_probe::load_cached(&s.registry, &opts).unwrap_or_else(|why| {
                eprintln!("warning: {why}");
                None
            });
            if cached.is_none() {
                eprintln!("note: no probed profile (run `cfgmx probe`, or pass --profile FILE): rendering abstract variants (compiler names, not paths)");
            }
            let from = match &cached {
                Some(_) => probe_cache_origin(&cfgmx_probe::cache_path(&opts)),
                None => cfgmx_render::ABSTRACT.to_string(),
            };
            (cached, Some(opts), from)
        }
    })
}

/// The variants to render (with their concrete form, when there is a profile): those this
/// machine can build unless `--all`; the others are named on stderr.
fn chosen<'a>(
    a: &GenerateArgs,
    set: &'a VariantSet,
    concrete: &'a [Option<ConcreteVariant>],
) -> Vec<(&'a Variant, Option<&'a ConcreteVariant>)> {
    let mut skipped = Vec::new();
    let chosen: Vec<_> = set
        .variants
        .iter()
        .zip(concrete)
        .filter(|(v, c)| {
            let keep = a.all || c.as_ref().is_none_or(|c| c.available);
            if !keep {
                skipped.push((v.name.clone(), c.as_ref().map(|c| c.reasons.join("; "))));
            }
            keep
        })
        .map(|(v, c)| (v, c.as_ref()))
        .collect();
    if !skipped.is_empty() {
        eprintln!(
            "note: skipping {} variant(s) this machine cannot build (--all includes them):",
            skipped.len()
        );
        for (n, why) in &skipped {
            eprintln!("  {n}: {}", why.as_deref().unwrap_or("unavailable"));
        }
    }
    chosen
}

/// Every file of `-f FORMAT`, or the one of `--template FILE`, rendered in full.
fn render(a: &GenerateArgs, ctx: &Context, m: &Matrix) -> Result<Vec<RenderedFile>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let renderer = Renderer::new().threads(threads);
    let files = match (&a.template, a.format) {
        (Some(t), _) => vec![render_template(t, ctx, m)?],
        (None, Some(f)) => renderer
            .render(f, ctx)
            .map_err(|e| render_error(e, None, &m.source))?,
        (None, None) => return Err(CliError::usage("give -f FORMAT or --template FILE")),
    };
    if a.merge && !merges(a) {
        return Err(CliError::usage(format!(
            "--merge applies to {} only",
            formats_that(|n| n.merge)
        )));
    }
    Ok(files)
}

/// Whether `-f`'s format takes `--merge` (the format table says).
fn merges(a: &GenerateArgs) -> bool {
    a.format.is_some_and(|f| f.spec().needs.merge)
}

/// The formats whose needs `pick` accepts, as `-f NAME` words.
fn formats_that(pick: impl Fn(&cfgmx_render::formats::Needs) -> bool) -> String {
    FORMATS
        .iter()
        .filter(|f| pick(&f.needs))
        .map(|f| format!("-f {}", f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The user's template, rendered in a child process (template_child.rs), as the file it
/// names.
fn render_template(t: &Path, ctx: &Context, m: &Matrix) -> Result<RenderedFile> {
    let src = load::read_source(t)?;
    let name = t
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "template".into());
    let scratch = tempfile::Builder::new()
        .prefix(&format!("cfgmx-render-{}-", std::process::id()))
        .tempdir()
        .map_err(|e| CliError::caused("cannot create a scratch directory", e))?;
    let content = crate::template_child::render(&src.name, &src.text, ctx, scratch.path())
        .map_err(|e| render_error(e, Some(&src), &m.source))?;
    let out = name.strip_suffix(".tera").unwrap_or(&name).to_string();
    // The output is named after the template: never a name that would land outside
    // DIR, hide, or overwrite cfgmx's own manifest.
    if out.is_empty() || out.starts_with('.') || out == MANIFEST {
        return Err(CliError::usage(format!(
            "--template {}: it would write a file called `{out}`; name the template after the file it makes (not empty, `..`, or starting with `.`), like `variants.md.tera`",
            t.display()
        )));
    }
    Ok(RenderedFile {
        path: PathBuf::from(out),
        content,
        executable: false,
    })
}

/// The one rendered file on stdout (without `-o DIR`).
fn print_one(files: &[RenderedFile]) -> Result<Exit> {
    if files.len() != 1 {
        return Err(CliError::usage(format!(
            "this renders {} files; write them with -o DIR",
            files.len()
        )));
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    out.write_all(files[0].content.as_bytes())
        .map_err(|e| CliError::runtime(e.to_string()))?;
    Ok(Exit::Ok)
}

/// Writes the files under `dir`, with the manifest, all or none: merged presets, then the
/// check of what would be overwritten, then the writes.
fn write_dir(
    g: &Global,
    a: &GenerateArgs,
    dir: &Path,
    mut files: Vec<RenderedFile>,
    m: &Matrix,
) -> Result<Exit> {
    // Merge, check what would be overwritten, then write: all checks before the first write.
    let mut manifest = read_manifest(dir)?;
    let mut merged = Vec::new();
    if a.merge {
        for f in &mut files {
            let target = dir.join(&f.path);
            if let Some(existing) = load::read_existing(&target)? {
                let existing = String::from_utf8_lossy(&existing);
                f.content = merge_presets(&target.display().to_string(), &existing, &f.content)
                    .map_err(|e| render_error(e, None, &m.source))?;
                merged.push(f.path.clone());
            }
        }
    }
    if !a.force {
        let mut foreign: Vec<String> = Vec::new();
        for f in files.iter().filter(|f| !merged.contains(&f.path)) {
            let target = dir.join(&f.path);
            let Some(bytes) = load::read_existing(&target)? else {
                continue;
            };
            let key = f.path.to_string_lossy().into_owned();
            if manifest.get(&key) != Some(&digest(&bytes)) {
                foreign.push(target.display().to_string());
            }
        }
        if !foreign.is_empty() {
            return Err(CliError::usage(format!(
                "not overwriting {} file(s) cfgmx did not generate (or that were edited since): {}; pass --force to overwrite{}",
                foreign.len(),
                foreign.join(", "),
                if merges(a) { ", or --merge to keep your presets" } else { "" }
            )));
        }
    }
    // Every file, the manifest last, is written in full to a temporary name before the first
    // rename: a full disk or any other write error then leaves DIR exactly as it was (no
    // partial file, and no complete file the manifest does not know about).
    let mut outputs: Vec<(PathBuf, &[u8], cfgmx_fs::Mode)> = Vec::new();
    let mut written = Vec::new();
    for f in &files {
        let target = dir.join(&f.path);
        manifest.insert(
            f.path.to_string_lossy().into_owned(),
            digest(f.content.as_bytes()),
        );
        written.push(target.display().to_string());
        // The format table says which files are scripts meant to be run.
        let mode = if f.executable {
            cfgmx_fs::Mode::Executable
        } else {
            cfgmx_fs::Mode::Regular
        };
        outputs.push((target, f.content.as_bytes(), mode));
    }
    let manifest_text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    outputs.push((
        dir.join(MANIFEST),
        manifest_text.as_bytes(),
        cfgmx_fs::Mode::Regular,
    ));
    write_all_atomic(dir, &outputs)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if g.json {
        writeln!(out, "{}", serde_json::json!({ "written": written })).ok();
    } else {
        for w in &written {
            writeln!(out, "wrote {w}").ok();
        }
    }
    Ok(Exit::Ok)
}

/// A matrix file as CI jobs name it: relative to the repository they check out (the nearest
/// directory holding `.git` above the output, else above the current directory, else the
/// current directory), as the absolute path of the machine that generated the files means
/// nothing on a runner. An embedded matrix's
/// name stays as it is.
fn repo_relative(arg: &str, output: Option<&Path>) -> Result<String> {
    let file = Path::new(arg);
    if !file.is_file() {
        return Ok(arg.to_string());
    }
    let canon = |p: &Path| {
        std::fs::canonicalize(p)
            .map_err(|e| CliError::caused(format!("cannot resolve {}", p.display()), e))
    };
    let matrix = canon(file)?;
    let cwd = canon(Path::new("."))?;
    let out = match output.filter(|o| o.is_dir()) {
        Some(o) => canon(o)?,
        None => cwd.clone(),
    };
    let git_root = |p: &Path| {
        p.ancestors()
            .find(|d| d.join(".git").exists())
            .map(Path::to_path_buf)
    };
    let root = git_root(&out).or_else(|| git_root(&cwd)).unwrap_or(cwd);
    match matrix.strip_prefix(&root) {
        Ok(rel) => Ok(rel.to_string_lossy().into_owned()),
        Err(_) => Err(CliError::usage(format!(
            "matrix {arg} is outside the repository {} the CI jobs check out; put it in the repository (CI runners see only its files)",
            root.display()
        ))),
    }
}

fn render_error(e: RenderError, template: Option<&Source>, matrix: &Source) -> CliError {
    match e {
        RenderError::Template {
            template: name,
            line,
            column,
            message,
        } => {
            let d = match (template, line) {
                (Some(src), Some(l)) => {
                    let off = src.offset(l, column.unwrap_or(1));
                    let end = (off + 1).min(src.text.len()).max(off);
                    Diagnostic::at(src, off..end, format!("template error: {message}"))
                }
                _ => {
                    let mut d = Diagnostic::file(name, format!("template error: {message}"));
                    d.line = line;
                    d.column = column;
                    d
                }
            };
            let mut ds = Diagnostics::one(d);
            if let Some(src) = template {
                ds = ds.with_source(src);
            }
            CliError::Input(ds)
        }
        RenderError::Unrepresentable { ref value, .. } => {
            // The value came from the user's template when it is written there and not in the
            // matrix (a literal piped through a filter): blame the file that holds it.
            let src = match template {
                Some(t)
                    if t.text.contains(value.as_str()) && !matrix.text.contains(value.as_str()) =>
                {
                    t
                }
                _ => matrix,
            };
            CliError::Input(
                Diagnostics::one(Diagnostic::file(&src.name, e.to_string()).expected(
                    "values the output format can represent (change the value, or pick another format)",
                ))
                .with_source(src),
            )
        }
        RenderError::Merge(m) => {
            CliError::Input(Diagnostics::one(Diagnostic::file("CMakePresets.json", m)))
        }
        RenderError::Usage(m) => CliError::usage(m),
    }
}

fn digest(bytes: &[u8]) -> String {
    cfgmx_model::hash::sha256_hex(bytes)
}

/// The manifest of what cfgmx wrote in `dir`; an unreadable one counts as empty (every file
/// is then treated as the user's), but a pipe or device in its place is refused.
fn read_manifest(dir: &Path) -> Result<BTreeMap<String, String>> {
    Ok(load::read_existing(&dir.join(MANIFEST))?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// Writes every `(path, bytes, mode)` under `dir` as one [`cfgmx_fs::Batch`]: all staged in
/// a directory inside `dir` first, then renamed into place; on any error before the renames
/// the staging directory is removed and nothing has changed. The staging directory carries
/// the process id, so Ctrl-C removes it ([`crate::leftovers`]) and the next run removes one a
/// killed run left.
fn write_all_atomic(dir: &Path, outputs: &[(PathBuf, &[u8], cfgmx_fs::Mode)]) -> Result<()> {
    let fail = |what: &str, p: &Path, e: std::io::Error| {
        CliError::caused(format!("cannot {what} {}", p.display()), e)
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("create", dir, e))?;
    crate::leftovers::sweep(
        dir,
        &[crate::leftovers::STAGING_PREFIX],
        crate::leftovers::Whose::Dead,
    );
    crate::leftovers::sweep_tmp_files(dir);
    let stage = dir.join(format!(
        "{}{}",
        crate::leftovers::STAGING_PREFIX,
        std::process::id()
    ));
    crate::leftovers::remove_on_interrupt(&stage);
    let written = (|| {
        let mut batch = cfgmx_fs::Batch::new(stage.clone());
        for (path, bytes, mode) in outputs {
            batch
                .add(path, bytes, *mode)
                .map_err(|e| fail("write", path, e))?;
        }
        if cfgmx_exec::closing() {
            // Interrupted while staging: what was rendered may rest on killed probes.
            return Err(CliError::runtime("interrupted"));
        }
        batch.commit().map_err(|(p, e)| fail("write", &p, e))
    })();
    crate::leftovers::forget(&stage);
    written
}

/// "rendered from the probe of DATE (cache FILE)": which probe the generated files' machine facts come
/// from, so two generated files that differ say why. The date is the cache file's mtime, when
/// the probe that wrote it ended.
fn probe_cache_origin(cache: &Path) -> String {
    let shown = std::path::absolute(cache).unwrap_or_else(|_| cache.to_path_buf());
    let date = std::fs::metadata(cache)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        });
    match date {
        Some(d) => format!("rendered from the probe of {d} (cache {})", shown.display()),
        None => format!("rendered from the probe cache {}", shown.display()),
    }
}
