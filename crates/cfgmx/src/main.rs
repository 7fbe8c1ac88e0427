//! The `cfgmx` binary: parses arguments, dispatches to a command, reports, exits.
//!
//! Exit codes: one table, `error::Exit` (0 ok, 1 failed, 2 bad input or usage, 101 internal
//! error, 130 interrupted), printed by `--help`. Only this crate prints.

mod cli;
mod commands;
mod complete;
mod error;
mod leftovers;
mod load;
mod lockfile;
mod output;
mod plan;
mod probing;
mod proven;
mod records;
mod template_child;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed pipe (`cfgmx expand | head`) ends the program quietly, as for any Unix filter.
    output::reset_sigpipe();
    // The probe runs this binary as its BLAS query helper (a child process per library).
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(cfgmx_probe::HELPER_ARG))
    {
        let rest: Vec<String> = std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // its answers are the probe's to read on this process's stdout
        let code = cfgmx_probe::helper_main(&rest, &mut std::io::stdout().lock());
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // ... and, under a loaded module environment, as the probe of what the modules added.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(cfgmx_probe::MODULE_HELPER_ARG))
    {
        let rest: Vec<String> = std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let vars = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let me = std::env::current_exe().unwrap_or_default();
        let code = cfgmx_probe::module_helper_main(&rest, vars, me, &mut std::io::stdout().lock());
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // `COMPLETE=bash cfgmx` (and the shell asking for candidates later): dynamic completion.
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .complete();
    // `generate --template` renders the user's template in a child (template_child.rs).
    let mut argv = std::env::args_os().skip(1);
    if argv.next().as_deref() == Some(std::ffi::OsStr::new(template_child::RENDER_ARG)) {
        let out = argv.next().map(|a| a.to_string_lossy().into_owned());
        return ExitCode::from(out.map_or(2, |o| template_child::child_main(&o)));
    }
    // clap prints its help and usage errors before cfgmx sees `--color`: it is told first.
    let mut command = <cli::Cli as clap::CommandFactory>::command().color(clap_colour());
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut m| {
            <cli::Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m)
                .map_err(|e| e.format(&mut command))
        });
    let args = match parsed {
        Ok(a) => a,
        Err(e) => {
            let exit = if e.use_stderr() {
                error::Exit::Usage
            } else {
                error::Exit::Ok
            };
            let _ = e.print();
            return exit.into();
        }
    };
    let json = args.global.json;
    install_panic_hook();
    let result = std::panic::catch_unwind(|| commands::run(args));
    if leftovers::exiting() {
        // The interrupt handler is cleaning up and exits 130: the result is not to be told.
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(Ok(exit)) => exit.into(),
        Ok(Err(e)) => {
            let said = match json {
                true => error::Said::AlsoAsJson,
                false => error::Said::OnStderr,
            };
            error::report(&e, said).into()
        }
        // The hook has said what happened.
        Err(_) => error::Exit::Internal.into(),
    }
}

/// The colour `--color` asks of clap's own output (help, usage errors), read from the
/// arguments before clap parses them: clap decides its colour before it has parsed anything.
/// `auto` (or no flag) is clap's own rule, which honours NO_COLOR and CLICOLOR_FORCE as cfgmx's
/// printers do; a malformed value is left for clap to refuse.
fn clap_colour() -> clap::ColorChoice {
    let mut choice = clap::ColorChoice::Auto;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--color") {
            Some("") => args.next().map(|v| v.to_string_lossy().into_owned()),
            Some(v) => v.strip_prefix('=').map(str::to_string),
            None => None,
        };
        choice = match value.as_deref() {
            Some("always") => clap::ColorChoice::Always,
            Some("never") => clap::ColorChoice::Never,
            Some("auto") => clap::ColorChoice::Auto,
            _ => choice,
        };
    }
    choice
}

/// A panic anywhere (a worker thread too) is a bug: said as one, with where it happened and
/// how to report it, never as a bare backtrace; `main` then exits 101.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info.location().map(|l| l.to_string());
        eprintln!("{}", error::internal_error_message(&what, at));
        // A developer who asks for it (RUST_BACKTRACE=1) still gets the backtrace.
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{trace}");
        }
    }));
}
