//! What a user reads on a terminal: every table fits the width it is given (`COLUMNS`), with
//! rows from this machine's real probe and a real build; colour follows `--color` and
//! `NO_COLOR`; and the stable tables are snapshots at 80 and 200 columns.

use cfgmx_tests::{copy_project, tempdir, MatrixDir};
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

/// One probe of this machine for every test here (a cold probe takes seconds).
fn cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(tempdir).path()
}

/// gcc builds here; icc does not, so its row is unavailable with a long reason.
const MATRIX: &str = r#"
name = "fit"
languages = ["c"]
[axes]
compiler = ["gcc", "icc"]
blas = ["sequential"]
build = ["debug"]
"#;

/// `cfgmx ARGS` with `vars` set; a variable set to "-" is removed (the harness sets NO_COLOR).
fn run(env: &MatrixDir, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut c = env.cmd(args);
    for (k, v) in vars {
        match *v {
            "-" => c.env_remove(k),
            v => c.env(k, v),
        };
    }
    let o = c.output().unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "cfgmx {args:?}: {}",
        cfgmx_tests::explain(&o)
    );
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The lines of `text` wider than `width` columns (each char one column: the tables are ASCII
/// apart from the truncation mark).
fn too_wide(text: &str, width: usize) -> Vec<String> {
    text.lines()
        .filter(|l| l.chars().count() > width)
        .map(|l| format!("{} columns: {l}", l.chars().count()))
        .collect()
}

#[test]
fn every_table_fits_80_and_200_columns() {
    let env = MatrixDir::with_cache(MATRIX, cache());
    let src = env.path().join("src");
    copy_project(&src);
    let src = src.to_str().unwrap().to_string();
    // A real build: gcc passes, icc is unavailable; its JSON is what `report merge` reads.
    let o = run(
        &env,
        &[
            "build",
            "m.toml",
            "-j",
            "2",
            "--build-root",
            "root",
            "--source",
            &src,
            "--json",
        ],
        &[],
    );
    std::fs::write(env.path().join("shard.json"), &o.stdout).unwrap();
    let commands: [&[&str]; 8] = [
        &["probe"],
        &["expand"],
        &["expand", "--probe"],
        &["expand", "--probe", "--verbose"],
        &["providers"],
        &["toolchains"],
        &[
            "build",
            "m.toml",
            "-j",
            "2",
            "--build-root",
            "root",
            "--source",
            &src,
        ],
        &["report", "merge", "shard.json"],
    ];
    for width in [80usize, 200] {
        let w = width.to_string();
        for args in commands {
            let out = stdout(&run(&env, args, &[("COLUMNS", &w)]));
            assert!(
                out.lines().count() > 2,
                "cfgmx {args:?} printed no table:\n{out}"
            );
            let wide = too_wide(&out, width);
            assert!(
                wide.is_empty(),
                "cfgmx {args:?} at COLUMNS={width}:\n{}\n--- whole output ---\n{out}",
                wide.join("\n")
            );
        }
    }
    // Without a width (a pipe), lines stay whole: the icc reason is there in full.
    let out = stdout(&run(&env, &["expand", "--probe", "--verbose"], &[]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("icc-sequential-debug ") && l.contains("looked for icc")),
        "{out}"
    );
}

/// `probe` folds a family and version into one row: each version's compilers once, whatever
/// number of names (gcc, gcc-12, cc) it answers to, and no reason printed twice.
#[test]
fn probe_shows_one_row_per_toolchain() {
    let env = MatrixDir::with_cache(MATRIX, cache());
    let json: serde_json::Value =
        serde_json::from_slice(&run(&env, &["probe", "--json"], &[]).stdout).unwrap();
    let out = stdout(&run(&env, &["probe"], &[]));
    let compilers: &str = out
        .split("\n\n")
        .find(|s| s.starts_with("Compilers"))
        .unwrap_or_else(|| panic!("{out}"));
    let mpi: Vec<&str> = json["mpi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    let mut toolchains: Vec<(String, String)> = json["compilers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !mpi.contains(&c["path"].as_str().unwrap()))
        .map(|c| {
            let mut fam = c["family"].as_str().unwrap().to_string();
            if let Some(w) = c["wrapper"].as_str() {
                fam.push_str(&format!(" (via {w})"));
            }
            (fam, c["version"].as_str().unwrap().to_string())
        })
        .collect();
    toolchains.sort();
    toolchains.dedup();
    let rows: Vec<&str> = compilers.lines().skip(2).collect();
    assert_eq!(rows.len(), toolchains.len(), "{compilers}");
    for (fam, version) in &toolchains {
        let n = rows
            .iter()
            .filter(|r| r.starts_with(&format!("{fam} ")) && r.contains(&format!(" {version} ")))
            .count();
        assert_eq!(n, 1, "{fam} {version}:\n{compilers}");
    }
    // A long reason (a clang without its libomp: some 300 characters) is folded to a short
    // phrase in the table, never printed whole, let alone once per name of the compiler.
    for c in json["compilers"].as_array().unwrap() {
        for why in [&c["error"], &c["facets"]["openmp"]["reason"]] {
            if let Some(why) = why.as_str().filter(|w| w.len() > 100) {
                assert!(!out.contains(why), "{why}\n{out}");
            }
        }
    }
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let env = MatrixDir::with_cache(MATRIX, cache());
    const ESC: &str = "\x1b[";
    let expand = ["expand", "m.toml", "--probe"];
    // --color always: the statuses are coloured, even into a pipe and with NO_COLOR set.
    let out = stdout(&run(
        &env,
        &["--color", "always", "expand", "m.toml", "--probe"],
        &[],
    ));
    assert!(out.contains("\x1b[32mavailable"), "{out:?}");
    assert!(out.contains("\x1b[33munavailable"), "{out:?}");
    // --color never, even when CLICOLOR_FORCE asks for it.
    let out = stdout(&run(
        &env,
        &["--color", "never", "expand", "m.toml", "--probe"],
        &[("CLICOLOR_FORCE", "1")],
    ));
    assert!(!out.contains(ESC), "{out:?}");
    // auto: CLICOLOR_FORCE colours a pipe; NO_COLOR wins over it.
    let out = stdout(&run(
        &env,
        &expand,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "-")],
    ));
    assert!(out.contains(ESC), "{out:?}");
    let out = stdout(&run(
        &env,
        &expand,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    ));
    assert!(!out.contains(ESC), "{out:?}");
    // auto into a pipe: plain.
    let out = stdout(&run(&env, &expand, &[("NO_COLOR", "-")]));
    assert!(!out.contains(ESC), "{out:?}");
    // JSON is never coloured.
    let o = run(
        &env,
        &["--color", "always", "expand", "m.toml", "--probe", "--json"],
        &[],
    );
    assert!(!stdout(&o).contains(ESC));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
}

/// clap's own help and usage errors follow `--color` and `NO_COLOR` as cfgmx's output does,
/// through a pipe and on a terminal (a pty).
#[test]
fn help_and_usage_errors_follow_the_colour_flag() {
    const ESC: &str = "\x1b[";
    let d = tempdir();
    let bin = cfgmx_tests::bin();
    let piped = |args: &[&str]| {
        let o = std::process::Command::new(&bin)
            .args(args)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // `always` colours a pipe: help on stdout, a usage error on stderr, either spelling.
    for args in [
        &["--color", "always", "--help"][..],
        &["--color=always", "build", "--help"],
        &["--color", "always", "bogus"],
        &["expand", "--bogus", "--color=always"],
    ] {
        let out = piped(args);
        assert!(out.contains(ESC), "{args:?}: {out:?}");
    }
    assert!(!piped(&["--help"]).contains(ESC));
    // On a terminal: coloured by default, plain with `never` or NO_COLOR.
    let pty = |cmd: &str, no_color: bool| {
        let mut c = std::process::Command::new("script");
        c.args(["-q", "-c"])
            .arg(format!("{} {cmd}", bin.display()))
            .arg("/dev/null")
            .current_dir(d.path())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("TERM", "xterm");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    };
    assert!(pty("--help", false).contains(ESC));
    assert!(pty("bogus", false).contains(ESC));
    for (cmd, no_color) in [
        ("--color never --help", false),
        ("--color=never bogus", false),
        ("expand --color never --bogus", false),
        ("--help", true),
        ("bogus", true),
    ] {
        let out = pty(cmd, no_color);
        assert!(
            !out.contains(ESC) && out.contains("cfgmx"),
            "{cmd} (NO_COLOR {no_color}): {out:?}"
        );
    }
}

/// On a terminal (a pty), `auto` colours and the table takes the terminal's width.
#[test]
fn a_terminal_gets_colour_and_its_width() {
    let env = MatrixDir::with_cache(MATRIX, cache());
    // warm the probe first, so the pty run prints only the table
    run(&env, &["probe"], &[]);
    let bin = cfgmx_tests::bin();
    let o = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "stty cols 70 rows 40; {} expand m.toml --probe",
            bin.display()
        ))
        .arg("/dev/null")
        .current_dir(env.path())
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm")
        .env("CFGMX_CACHE_DIR", cache())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", cfgmx_tests::explain(&o));
    let out = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    assert!(out.contains("\x1b[32mavailable"), "{out:?}");
    let plain = strip_ansi(&out);
    let wide = too_wide(&plain, 70);
    assert!(wide.is_empty(), "{}\n{plain}", wide.join("\n"));
}

/// Runs `cfgmx ARGS` on a pseudo-terminal of 40 x 100 (Python's pty module) with its probe
/// cache in `cache`, types Ctrl-C once the display shows `mark` (and `wait` seconds more, so
/// spinners and timers have ticked), and returns the exit code and
/// every byte the terminal received, and whether the terminal echoes control characters
/// (`ECHOCTL`, as a fresh pty does) after cfgmx ended.
fn ctrl_c_in_a_pty(
    dir: &Path,
    args: &[&str],
    cache: &Path,
    mark: &str,
    wait: f64,
) -> (i32, Vec<u8>, bool) {
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", cfgmx_tests::PTY_DRIVER])
        .arg(cfgmx_tests::bin())
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE")
        // A user's terminal: under CI (set by `.ci/run`) the build shows no live display.
        .env_remove("CI")
        .env("TERM", "xterm")
        .env("CFGMX_CACHE_DIR", cache)
        .env("MARK", mark)
        .env("WAIT", wait.to_string());
    cfgmx_tests::pty_output(&mut cmd)
}

/// Ctrl-C during a build's live display on a terminal: the spinner lines and the overall bar
/// are gone from the screen, the report and the interrupted summary are there, and the
/// terminal is left as a shell prompt expects it (cursor visible, at the start of a line, no
/// colour or bold left on, its settings restored).
#[test]
fn ctrl_c_during_the_live_display_leaves_a_clean_terminal() {
    let env = MatrixDir::with_cache(MATRIX, cache());
    let src = env.path().join("slow");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(slow C)\nadd_executable(s s.c)\n\
         enable_testing()\nadd_test(NAME slow COMMAND sleep 60)\n",
    )
    .unwrap();
    std::fs::write(src.join("s.c"), "int main(void) { return 0; }\n").unwrap();
    run(&env, &["probe"], &[]);
    let (code, bytes, echoctl) = ctrl_c_in_a_pty(
        env.path(),
        &[
            "build",
            "m.toml",
            "-j",
            "2",
            "--build-root",
            "root",
            "--source",
            "slow",
        ],
        cache(),
        ": test",
        1.5,
    );
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(code, 130, "{raw:?}");
    // The live display was there while it ran.
    assert!(
        raw.contains("variants,") && raw.contains(": test"),
        "{raw:?}"
    );
    let mut term = vt100::Parser::new(40, 100, 0);
    term.process(&bytes);
    let screen = term.screen();
    let text = screen.contents();
    for stale in [
        "variants,",
        ": configure",
        ": build",
        ": test",
        "building [",
    ] {
        assert!(
            !text.contains(stale),
            "`{stale}` left on the screen:\n{text}"
        );
    }
    assert!(text.contains("cfgmx build: interrupted"), "{text}");
    assert!(
        text.contains("gcc-sequential-debug") && text.contains("interrupted"),
        "{text}"
    );
    assert!(!screen.hide_cursor(), "the cursor is left hidden");
    // The display turns off the echo of `^C` while it runs (the echo would wrap its last line):
    // the terminal gets its settings back.
    assert!(echoctl, "the terminal is left without ECHOCTL");
    assert_eq!(
        screen.cursor_position().1,
        0,
        "the cursor is not at a line start:\n{text}"
    );
    assert!(
        !screen.bold() && screen.fgcolor() == vt100::Color::Default,
        "colour or bold left on"
    );
}

/// Ctrl-C during a cold probe's progress bar: the bar is gone, the terminal gets its settings
/// back, exit 130.
#[test]
fn ctrl_c_during_the_probe_bar_leaves_a_clean_terminal() {
    let d = tempdir();
    let (code, bytes, echoctl) = ctrl_c_in_a_pty(
        d.path(),
        &["probe"],
        &d.path().join("cold"),
        "probing [",
        0.3,
    );
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(code, 130, "{raw:?}");
    let mut term = vt100::Parser::new(40, 100, 0);
    term.process(&bytes);
    let text = term.screen().contents();
    assert!(
        !text.contains("probing ["),
        "the bar is left on the screen:\n{text}"
    );
    assert_eq!(term.screen().cursor_position().1, 0, "{text}");
    assert!(echoctl, "the terminal is left without ECHOCTL");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// At 80 columns `providers`, `expand` and `toolchains` leave out their least useful columns (and say so)
/// rather than cut words: every word they show is a whole word of the unwrapped table
/// ("sequentia" + "l" would not be), and the note names what was left out.
#[test]
fn narrow_tables_wrap_only_between_words() {
    let d = tempdir();
    for (args, dropped) in [
        (&["providers"][..], &["IGNORES", "CMAKE VENDOR"][..]),
        (&["expand"][..], &["COMPILERS", "LIBS"][..]),
        (&["toolchains"][..], &["PIC"][..]),
    ] {
        let whole = cfgmx_tests::run_env(d.path(), args, &[]);
        whole.expect_code(0);
        let words: std::collections::HashSet<String> = whole
            .stdout()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let narrow = cfgmx_tests::run_env(d.path(), args, &[("COLUMNS", "80")]);
        narrow.expect_code(0);
        let out = narrow.stdout();
        let table: Vec<&str> = out
            .lines()
            .take_while(|l| !l.is_empty() && !l.starts_with('('))
            .collect();
        assert!(table.len() > 10, "{out}");
        for l in &table {
            assert!(l.chars().count() <= 80, "{args:?}: too wide: {l}");
            for w in l.split_whitespace() {
                assert!(words.contains(w), "{args:?}: `{w}` is a cut word:\n{out}");
            }
        }
        let note = out
            .lines()
            .skip_while(|l| !l.starts_with('('))
            .collect::<Vec<_>>()
            .join(" ");
        for c in dropped {
            assert!(
                note.contains(c),
                "{args:?}: the note does not name {c}:\n{out}"
            );
            assert!(!table[0].contains(c), "{args:?}: {c} still shown:\n{out}");
        }
    }
}

/// The tables that need no probe, as a user sees them at 80 and 200 columns.
#[test]
fn stable_tables_at_80_and_200_columns() {
    let d = tempdir();
    for width in ["80", "200"] {
        for (name, args) in [
            ("expand", &["expand"][..]),
            ("providers", &["providers"][..]),
            ("toolchains", &["toolchains"][..]),
        ] {
            let r = cfgmx_tests::run_env(d.path(), args, &[("COLUMNS", width)]);
            r.expect_code(0);
            insta::assert_snapshot!(format!("{name}_{width}"), r.stdout());
        }
    }
}
