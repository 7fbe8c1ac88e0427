//! The `cfgmx` binary: parses arguments, dispatches to a command, reports, exits.
//!
//! Exit codes (one table, documented in `--help` and the README): 0 ok, 1 some variant failed,
//! 2 bad input or usage, 130 interrupted. Only this crate prints.

mod cli;
mod commands;
mod complete;
mod error;
mod leftovers;
mod load;
mod output;
mod proven;
mod template_child;

use clap::Parser;
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
        return ExitCode::from(cfgmx_probe::helper_main(&rest).clamp(0, 255) as u8);
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
        let code = cfgmx_probe::module_helper_main(&rest, vars, me);
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
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = args.global.json;
    let result = std::panic::catch_unwind(|| commands::run(args));
    if leftovers::exiting() {
        // The interrupt handler is cleaning up and exits 130: the result is not to be told.
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(e)) => ExitCode::from(error::report(&e, json)),
        Err(_) => {
            eprintln!("error: cfgmx hit an internal error (a bug); please report it with the command you ran");
            ExitCode::from(101)
        }
    }
}
