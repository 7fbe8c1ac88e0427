//! A user's template is rendered in a child process (this binary, run under [`RENDER_ARG`])
//! with a time and a memory limit. tera has no budget of its own: a loop that doubles a string
//! or nests two long ranges makes no output to cap and no list to refuse, and a failed
//! allocation aborts the whole process. In a child, the worst a template can do is end the
//! child, which cfgmx reports as that template's error.

use cfgmx_render::{RenderError, Renderer};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// First argument under which the binary renders one template: the output file follows, and
/// the template's name, text and context come on standard input as JSON.
pub const RENDER_ARG: &str = "__cfgmx-render-template";
/// Wall time one template may take; `CFGMX_TEMPLATE_SECONDS` changes it (a slow shared
/// machine may need more, a test less).
const TIME_LIMIT: Duration = Duration::from_secs(30);

fn time_limit() -> Duration {
    std::env::var("CFGMX_TEMPLATE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(TIME_LIMIT, Duration::from_secs_f64)
}
/// Address space the rendering child may use.
pub const MEMORY_LIMIT: u64 = 2 << 30;

#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    name: String,
    text: String,
    context: serde_json::Value,
}

/// The child's side: renders, writes the output file, or prints the error as JSON and exits
/// 3.
pub fn child_main(out: &str) -> u8 {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 2;
    }
    let Ok(job) = serde_json::from_slice::<Job>(&input) else {
        return 2;
    };
    match Renderer::new().render_user_value(&job.name, &job.text, &job.context) {
        Ok(text) => match std::fs::write(out, text) {
            Ok(()) => 0,
            Err(_) => 4,
        },
        Err(e) => {
            let mut o = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut o, &e);
            let _ = o.flush();
            3
        }
    }
}

fn limit_error(name: &str, message: String) -> RenderError {
    RenderError::Template {
        template: name.to_string(),
        line: None,
        column: None,
        message,
    }
}

/// Renders `text` (the template called `name`) against `ctx` in a child process.
pub fn render(
    name: &str,
    text: &str,
    ctx: &cfgmx_render::Context,
    scratch: &Path,
) -> Result<String, RenderError> {
    let job = Job {
        name: name.to_string(),
        text: text.to_string(),
        context: serde_json::to_value(ctx).map_err(|e| limit_error(name, e.to_string()))?,
    };
    let payload = serde_json::to_vec(&job).map_err(|e| limit_error(name, e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| limit_error(name, e.to_string()))?;
    let out = scratch.join("rendered");
    let o = cfgmx_exec::Cmd::new(exe)
        .arg(RENDER_ARG)
        .arg(&out)
        .stdin(payload)
        .timeout(time_limit())
        .hook(|c| {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; it only lowers this child's limit.
            unsafe {
                c.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: MEMORY_LIMIT,
                        rlim_max: MEMORY_LIMIT,
                    };
                    libc::setrlimit(libc::RLIMIT_AS, &lim);
                    Ok(())
                });
            }
        })
        .output();
    if o.timed_out {
        return Err(limit_error(
            name,
            format!(
                "rendering took longer than {} s, the limit for one template (a loop too long? CFGMX_TEMPLATE_SECONDS sets the limit)",
                time_limit().as_secs_f64()
            ),
        ));
    }
    if let Some(sig) = o.signal {
        return Err(limit_error(
            name,
            format!(
                "rendering was stopped by signal {sig}: it needed more than the {} GiB of memory one template may use (a value or loop too large?)",
                MEMORY_LIMIT >> 30
            ),
        ));
    }
    match o.code {
        // our own scratch file, at most the renderer's output limit
        Some(0) => std::fs::read_to_string(&out).map_err(|e| limit_error(name, e.to_string())),
        Some(3) => Err(
            serde_json::from_str::<RenderError>(o.stdout.trim()).unwrap_or_else(|e| {
                limit_error(name, format!("unreadable error from the renderer: {e}"))
            }),
        ),
        _ => Err(limit_error(
            name,
            format!("the rendering process failed: {}", o.stderr.trim()),
        )),
    }
}
