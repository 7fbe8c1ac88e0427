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

/// At 80 columns `providers` and `expand` leave out their least useful columns (and say so)
/// rather than cut words: every word they show is a whole word of the unwrapped table
/// ("sequentia" + "l" would not be), and the note names what was left out.
#[test]
fn narrow_tables_wrap_only_between_words() {
    let d = tempdir();
    for (args, dropped) in [
        (&["providers"][..], &["IGNORES", "CMAKE VENDOR"][..]),
        (&["expand"][..], &["COMPILERS", "LIBS"][..]),
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
