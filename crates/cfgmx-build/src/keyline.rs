//! The key line of a failed step: the one line a user needs to see why, put first in the
//! step's message so the terminal, JSON, JUnit and HTML all show it without the log.
//!
//! Configure: the build system's own error with its message text (CMake prints the text on
//! the indented lines after `CMake Error at FILE:LINE (message):`; Meson on one `ERROR:` line).
//! Build: the first diagnostic any compiler or linker calls an error. Test: the first failing
//! test and the line of its own output that says why. These are the build tools' output
//! forms, not compiler spellings: every family's driver prints `error` in its diagnostics.

use crate::testcase::{TestCaseResult, TestStatus};
use regex::Regex;
use std::sync::LazyLock;

/// A line longer than this is cut: a key line is read at a glance, the log has the rest.
const MAX: usize = 240;

fn cut(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// CMake's or Meson's error, with the message text.
pub fn configure(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    if let Some(i) = lines.iter().position(|l| l.starts_with("CMake Error")) {
        let head = lines[i].trim_end().trim_end_matches(':');
        // The message: the indented lines after the header, up to the first blank line.
        let text: Vec<&str> = lines[i + 1..]
            .iter()
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.trim().is_empty() && l.starts_with(' '))
            .map(|l| l.trim())
            .collect();
        return Some(if text.is_empty() {
            cut(head)
        } else {
            cut(&format!("{head}: {}", text.join(" ")))
        });
    }
    // Meson: `meson.build:3:0: ERROR: Dependency "foo" not found, tried pkgconfig`
    lines.iter().find(|l| l.contains("ERROR:")).map(|l| cut(l))
}

/// `error:` (gcc, clang, flang), `Error:` (gfortran), `error #123:` (Intel), `fatal error`:
/// never `-Werror=...` in a command line. The linker's own words (`undefined reference`) are
/// the driver data's (`toolchains/base/defaults.toml`, `link_errors`).
static DIAGNOSTIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\berror\b\s*(#\s*\d+\s*)?:").expect("valid"));
/// A location line on its own (`t.f90:3:5:`), which gfortran prints before its `Error:`.
static LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\S+:\d+(:\d+)?:\s*$").expect("valid"));

/// The first compiler or linker error of a build log.
pub fn build(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let i = lines.iter().position(|l| {
        // ninja's and make's own lines and the echoed command are not diagnostics
        !(l.starts_with("FAILED:") || l.starts_with("ninja:") || l.starts_with("$ "))
            && (DIAGNOSTIC.is_match(l) || cfgmx_model::toolchain::default_driver().is_link_error(l))
    })?;
    let line = lines[i].trim();
    let at = lines[..i]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| LOCATION.is_match(l))
        .filter(|_| line.starts_with("Error") || line.starts_with("error"));
    Some(match at {
        Some(at) => cut(&format!("{at} {line}")),
        None => cut(line),
    })
}

/// What in a test's output says why it failed: the last line naming a failure, else the last
/// line it printed.
pub fn test_reason(output: &str) -> Option<&str> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            [
                "fail", "error", "assert", "abort", "expected", "mismatch", "wrong",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .or(lines.last())
        .copied()
}

/// The first failing test and why, with how many others failed.
pub fn test(cases: &[TestCaseResult]) -> Option<String> {
    let failed: Vec<&TestCaseResult> = cases
        .iter()
        .filter(|c| c.status == TestStatus::Failed)
        .collect();
    let first = failed.first()?;
    let why = first.output.as_deref().and_then(test_reason);
    let mut s = match why {
        Some(w) => format!("{}: {w}", first.name),
        None => format!("{} failed", first.name),
    };
    match failed.len() {
        1 => {}
        2 => s.push_str(" (and 1 more test failed)"),
        n => s.push_str(&format!(" (and {} more tests failed)", n - 1)),
    }
    Some(cut(&s))
}

/// The last lines of a test's output, kept with a failed test's result.
pub fn tail(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmake_errors_keep_their_message() {
        let log = "-- Detecting C compile features - done\nCMake Error at CMakeLists.txt:3 (message):\n  the foo library is required\n\n    install libfoo-dev\n\n\n-- Configuring incomplete, errors occurred!\n";
        assert_eq!(
            configure(log).unwrap(),
            "CMake Error at CMakeLists.txt:3 (message): the foo library is required"
        );
        let log = "CMake Error at CMakeLists.txt:1 (cmake_minimum_required):\n  CMake 3.26 or higher is required.  You are running version 3.25.1\n\n";
        assert_eq!(
            configure(log).unwrap(),
            "CMake Error at CMakeLists.txt:1 (cmake_minimum_required): CMake 3.26 or higher is required.  You are running version 3.25.1"
        );
        let meson = "Found pkg-config: /usr/bin/pkg-config (1.8.1)\nRun-time dependency foo found: NO (tried pkgconfig and cmake)\n\nmeson.build:3:6: ERROR: Dependency \"foo\" not found, tried pkgconfig and cmake\n";
        assert_eq!(
            configure(meson).unwrap(),
            "meson.build:3:6: ERROR: Dependency \"foo\" not found, tried pkgconfig and cmake"
        );
        assert_eq!(configure("-- all fine\n"), None);
    }

    #[test]
    fn build_errors_from_several_compilers_and_the_linker() {
        let gcc = "[1/2] Building C object t.o\nFAILED: CMakeFiles/t.dir/t.c.o\n/usr/bin/gcc -Werror=format -O2 -c t.c\nt.c: In function 'main':\nt.c:1:24: error: 'x' undeclared (first use in this function)\nninja: build stopped: subcommand failed.\n";
        assert_eq!(
            build(gcc).unwrap(),
            "t.c:1:24: error: 'x' undeclared (first use in this function)"
        );
        let gfortran = "FAILED: t.o\n/usr/bin/gfortran -c t.f90\nt.f90:3:5:\n\n    3 |   y = 1\n      |     1\nError: Symbol 'y' at (1) has no IMPLICIT type\n";
        assert_eq!(
            build(gfortran).unwrap(),
            "t.f90:3:5: Error: Symbol 'y' at (1) has no IMPLICIT type"
        );
        let intel = "t.c(4): error #20: identifier \"x\" is undefined\n";
        assert_eq!(build(intel).unwrap(), intel.trim());
        let ld = "/usr/bin/ld: CMakeFiles/t.dir/t.c.o: in function `main':\nt.c:(.text+0x5): undefined reference to `foo'\ncollect2: error: ld returned 1 exit status\n";
        assert_eq!(
            build(ld).unwrap(),
            "t.c:(.text+0x5): undefined reference to `foo'"
        );
        assert_eq!(build("FAILED: x\n/usr/bin/gcc -Werror -c t.c\n"), None);
    }

    #[test]
    fn a_failing_test_is_named_with_its_own_reason() {
        let case = |name: &str, status, output: Option<&str>| TestCaseResult {
            name: name.into(),
            status,
            time_s: 0.0,
            output: output.map(str::to_string),
        };
        let cases = vec![
            case("ok", TestStatus::Passed, None),
            case(
                "threads",
                TestStatus::Failed,
                Some("running\nFAIL: sum is 3, expected 4\ncleanup\n"),
            ),
            case("other", TestStatus::Failed, None),
        ];
        assert_eq!(
            test(&cases).unwrap(),
            "threads: FAIL: sum is 3, expected 4 (and 1 more test failed)"
        );
        assert_eq!(test(&cases[2..]).unwrap(), "other failed");
        assert_eq!(test(&cases[..1]), None);
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    }
}
