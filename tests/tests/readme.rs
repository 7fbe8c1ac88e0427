//! The README and docs run: every ```console block of README.md and docs/*.md is executed,
//! in order, as one shell session in a fresh directory outside the repository (a fresh HOME
//! holding a sample library in `~/src/mylib`, an empty probe cache, `cfgmx` on PATH).
//!
//! In a block, `$ COMMAND` lines are run with `sh -c` (so `&&` and `# comments` work as a
//! reader expects, and a `cd` holds for the next commands) and must exit 0; the lines after a command, if any, are its expected output
//! (stdout and stderr as a terminal shows them), where a line `...` stands for any number of
//! lines and `[..]` inside a line for any text (hashes, paths, versions, timings). A fenced
//! block whose info string has `file=NAME` (```toml file=big.toml) is written to NAME in the
//! session directory when the walk reaches it, so later commands can use it.

use cfgmx_tests::{bin, copy_project, repo, tempdir};
use std::path::Path;
use std::process::Command;

#[derive(Debug)]
enum Step {
    File {
        name: String,
        text: String,
    },
    Run {
        line: usize,
        cmd: String,
        expect: Vec<String>,
    },
}

fn steps(md: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut lines = md.lines().enumerate();
    while let Some((_, l)) = lines.next() {
        let Some(info) = l.trim_start().strip_prefix("```") else {
            continue;
        };
        let info = info.trim().to_string();
        let body: Vec<(usize, &str)> = lines
            .by_ref()
            .take_while(|(_, l)| l.trim_start() != "```")
            .collect();
        if let Some(name) = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("file="))
        {
            let text: Vec<&str> = body.iter().map(|(_, l)| *l).collect();
            out.push(Step::File {
                name: name.to_string(),
                text: text.join("\n") + "\n",
            });
        } else if info == "console" {
            for (i, l) in body {
                if let Some(cmd) = l.strip_prefix("$ ") {
                    out.push(Step::Run {
                        line: i + 1,
                        cmd: cmd.to_string(),
                        expect: Vec::new(),
                    });
                } else if let Some(Step::Run { expect, .. }) = out.last_mut() {
                    expect.push(l.to_string());
                }
            }
        }
    }
    out
}

/// Whether `line` matches `pattern`, where `[..]` matches any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.trim_end().split("[..]").collect();
    let line = line.trim_end();
    if parts.len() == 1 {
        return parts[0] == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the output lines match the expected ones (`...` = any lines).
fn matches(expect: &[String], got: &[&str]) -> bool {
    match expect.split_first() {
        None => got.is_empty(),
        Some((e, rest)) if e.trim() == "..." => (0..=got.len()).any(|k| matches(rest, &got[k..])),
        Some((e, rest)) => !got.is_empty() && line_matches(e, got[0]) && matches(rest, &got[1..]),
    }
}

fn run_session(doc: &Path) -> Vec<String> {
    let md = std::fs::read_to_string(doc).unwrap();
    let steps = steps(&md);
    let dir = tempdir();
    let home = dir.path().join("home");
    copy_project(&home.join("src/mylib"));
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    // The directory a `cd` left the session in, as a reader's shell would keep it.
    let mut cwd = work.clone();
    let cwd_file = dir.path().join("cwd");
    for s in steps {
        match s {
            Step::File { name, text } => std::fs::write(cwd.join(name), text).unwrap(),
            Step::Run { line, cmd, expect } => {
                ran += 1;
                let o = Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "exec 2>&1\n{cmd}\nstatus=$?\npwd > \"$CFGMX_README_CWD\"\nexit $status"
                    ))
                    .env("CFGMX_README_CWD", &cwd_file)
                    .current_dir(&cwd)
                    .env("HOME", &home)
                    .env("PATH", &path)
                    .env("CFGMX_CACHE_DIR", dir.path().join("cache"))
                    .env("NO_COLOR", "1")
                    .env("COLUMNS", "100")
                    .env_remove("CI")
                    .output()
                    .unwrap();
                if let Ok(d) = std::fs::read_to_string(&cwd_file) {
                    cwd = d.trim_end().into();
                }
                let text = String::from_utf8_lossy(&o.stdout);
                let got: Vec<&str> = text.lines().collect();
                let at = format!("{}:{line}: `{cmd}`", doc.display());
                if !o.status.success() {
                    failures.push(format!("{at} exited with {}:\n{text}", o.status));
                } else if !expect.is_empty() && !matches(&expect, &got) {
                    failures.push(format!(
                        "{at} printed\n{text}\nwhich does not match\n{}",
                        expect.join("\n")
                    ));
                }
            }
        }
    }
    assert!(ran > 0, "{}: no console example", doc.display());
    failures
}

#[test]
fn the_patterns_match_as_documented() {
    assert!(line_matches("a [..] c", "a bb c"));
    assert!(line_matches("[..]", "anything"));
    assert!(!line_matches("a [..] c", "a bb d"));
    assert!(line_matches("x  ", "x"));
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(&e(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(matches(&e(&["a", "...", "z"]), &["a", "z"]));
    assert!(!matches(&e(&["a", "z"]), &["a", "b", "z"]));
    assert!(matches(&e(&["..."]), &[]));
}

#[test]
fn every_console_example_of_the_readme_and_docs_runs() {
    let root = repo();
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("```console"))
        .collect();
    more.sort();
    docs.extend(more);
    let failures: Vec<String> = docs.iter().flat_map(|d| run_session(d)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The exit codes are one table (`error::Exit` in the binary), printed by `cfgmx --help`; the
/// README says the same codes with the same meanings, in the same order.
#[test]
fn the_readme_and_help_give_the_same_exit_codes() {
    let help = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    let help = help
        .split("Exit codes: ")
        .nth(1)
        .and_then(|t| t.split(". ").next())
        .expect("`cfgmx --help` has an `Exit codes:` line");
    // `0 ok; 1 a variant ...; 130 interrupted`: each code with its words.
    let from_help: Vec<(String, String)> = help
        .split("; ")
        .filter_map(|e| e.split_once(' '))
        .filter(|(c, _)| c.parse::<u8>().is_ok())
        .map(|(c, w)| {
            (
                c.to_string(),
                w.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    let codes: Vec<&str> = from_help.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["0", "1", "2", "101", "130"], "{help}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let readme = readme.replace('\n', " ");
    let line = readme
        .split("Exit codes: ")
        .nth(1)
        .and_then(|t| t.split(". ").next())
        .expect("the README has an `Exit codes:` sentence");
    // `**0** ok, **1** a variant ... (I/O, a tool), ...`: the same pairs, in order.
    let parts: Vec<&str> = line.split("**").collect();
    let from_readme: Vec<(String, String)> = parts[1..]
        .chunks(2)
        .filter_map(|pair| match pair {
            [code, words] => Some((
                code.to_string(),
                words
                    .trim()
                    .trim_end_matches(',')
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            )),
            _ => None,
        })
        .collect();
    // The README may go on after the table's words (a parenthesis on where it comes from).
    for ((hc, hw), (rc, rw)) in from_help.iter().zip(&from_readme) {
        assert_eq!(hc, rc, "help: {help}\nREADME: {line}");
        assert!(
            rw.starts_with(hw.as_str()),
            "exit {hc}: help says `{hw}`, the README `{rw}`"
        );
    }
    assert_eq!(
        from_help.len(),
        from_readme.len(),
        "help: {help}\nREADME: {line}"
    );
}
