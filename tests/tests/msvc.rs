//! MSVC end to end, through an emulated `cl`: a script that prints cl's real banner (recorded
//! in `tests/fixtures/compiler-versions.toml`), takes cl's spellings (`/openmp`, `/D`, `/Fe`,
//! `/Fo`, `/c`, `/link /LIBPATH:`, `x.lib`), defines `_MSC_VER` and forwards to gcc with the
//! flags translated. It proves that no GNU spelling is left in cfgmx's code: every
//! argument cfgmx gives a compiler comes from the family's `[driver]` table and facets.

use cfgmx_tests::{run_env, sh, tempdir};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// cl's banner as Visual Studio 2017 prints it with no argument (MicrosoftDocs/cpp-docs, the
/// fixture's `cl` case); cl prints it on stderr.
const BANNER: &str = "Microsoft (R) C/C++ Optimizing Compiler Version 19.10.25017 for x86
Copyright (C) Microsoft Corporation.  All rights reserved.

usage: cl [ option... ] filename... [ /link linkoption... ]";

/// The emulated cl: logs its arguments (one line per run), refuses what cl would not take
/// (a GNU spelling such as `-o` or `-E` fails the run), and runs gcc with gcc's spellings.
fn cl(log: &Path) -> String {
    format!(
        r#"#!/bin/sh
echo "$*" >> '{log}'
if [ $# = 0 ]; then
  printf '%s\n' '{BANNER}' >&2
  exit 0
fi
real=/usr/bin/gcc; link=0; first=1
for a do
  if [ $first = 1 ]; then set -- -D_MSC_VER=1910 -D_WIN32=1; first=0; fi
  case "$link:$a" in
    0:/link) link=1 ;;
    1:/LIBPATH:*) set -- "$@" "-L${{a#/LIBPATH:}}" ;;
    *:*.lib) set -- "$@" "-l${{a%.lib}}" ;;
    1:*) echo "LINK : warning LNK4044: unrecognized option '$a'; ignored" >&2 ;;
    0:/openmp) set -- "$@" -fopenmp ;;
    0:/D*) set -- "$@" "-D${{a#/D}}" ;;
    0:/I*) set -- "$@" "-I${{a#/I}}" ;;
    0:/Fe:*|0:/Fo:*) set -- "$@" -o "${{a#/F?:}}" ;;
    0:/Fe*|0:/Fo*) set -- "$@" -o "${{a#/F?}}" ;;
    0:/c) set -- "$@" -c ;;
    0:/Zi) set -- "$@" -g ;;
    0:/Od) set -- "$@" -O0 ;;
    0:/O1) set -- "$@" -Os ;;
    0:/O2) set -- "$@" -O2 ;;
    0:/std:c++latest) set -- "$@" -std=c++2b ;;
    0:/std:*) set -- "$@" "-std=${{a#/std:}}" ;;
    0:/Ob*|0:/nologo|0:/EH*|0:/W*|0:/M[DT]*) ;;
    0:-*) echo "cl : Command line error D8021 : invalid numeric argument '$a'" >&2; exit 2 ;;
    0:/*) echo "cl : Command line warning D9002 : ignoring unknown option '$a'" >&2 ;;
    *:*.cpp|*:*.cxx|*:*.cc) real=/usr/bin/g++; set -- "$@" "$a" ;;
    *) set -- "$@" "$a" ;;
  esac
done
exec $real "$@"
"#,
        log = log.display()
    )
}

#[test]
fn an_emulated_cl_is_probed_resolved_and_rendered_with_msvcs_spellings() {
    let d = tempdir();
    let bin = d.path().join("bin");
    let tools = d.path().join("tools");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&tools).unwrap();
    let log = d.path().join("cl.log");
    let cl_path = bin.join("cl");
    std::fs::write(&cl_path, cl(&log)).unwrap();
    std::fs::set_permissions(&cl_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // only cl on PATH besides what gcc needs under it
    for t in ["as", "ld"] {
        std::os::unix::fs::symlink(sh(&format!("command -v {t}")), tools.join(t)).unwrap();
    }
    let path = [("PATH", tools.to_str().unwrap())];
    let search = bin.to_str().unwrap();

    // Probed: the banner names the family, the OpenMP program (cl has no macro dump)
    // confirms it by `_MSC_VER`, and each facet is tried with cl's spelling.
    let probe = run_env(
        d.path(),
        &[
            "probe", "--json", "--fresh", "--search", search, "--facet", "debug", "--facet",
            "release",
        ],
        &path,
    );
    probe.expect_code(0);
    std::fs::write(d.path().join("p.json"), probe.stdout()).unwrap();
    let p: Value = probe.json();
    let c = p["compilers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == cl_path.to_str().unwrap())
        .unwrap_or_else(|| panic!("no record for cl: {p:#}"));
    assert_eq!(c["family"], "msvc", "{c:#}");
    assert_eq!(c["version"], "19.10.25017", "{c:#}");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["facets"]["openmp"]["flag"], "/openmp", "{c:#}");
    assert_eq!(c["facets"]["openmp"]["works"], true, "{c:#}");
    assert_eq!(c["facets"]["debug"]["flag"], "/Zi /Od /Ob0", "{c:#}");
    assert_eq!(c["facets"]["debug"]["works"], true, "{c:#}");
    let runs = std::fs::read_to_string(&log).unwrap();
    assert!(runs.contains(" /Fe"), "cl was never given /Fe:\n{runs}");
    for line in runs.lines() {
        let gnu = line
            .split_whitespace()
            .find(|a| a.starts_with('-') || *a == "/dev/null");
        assert_eq!(gnu, None, "cl was given a GNU spelling: {line}");
    }

    // Resolved and rendered: definitions, build types, the BLAS directory and library in
    // cl's spelling, presets with Ninja and cl as the compiler.
    std::fs::write(
        d.path().join("m.toml"),
        "name = \"win\"\nlanguages = [\"c\"]\n[axes]\ncompiler = [\"msvc\"]\n\
         blas = [\"openblas-serial\"]\nbuild = [\"debug\", \"release\"]\nflavor = [\"fast\"]\n\
         [values.flavor.fast]\ndefines = [\"USE_FAST=1\"]\n",
    )
    .unwrap();
    let g = run_env(
        d.path(),
        &[
            "generate",
            "m.toml",
            "-f",
            "cmake-presets",
            "--profile",
            "p.json",
            "--all",
        ],
        &path,
    );
    g.expect_code(0);
    let presets: Value = g.json();
    let conf = presets["configurePresets"].as_array().unwrap();
    assert_eq!(conf.len(), 2, "{presets:#}");
    for (p, build) in conf.iter().zip(["/Zi /Od /Ob0", "/O2 /Ob2 /DNDEBUG"]) {
        assert_eq!(p["generator"], "Ninja", "{p:#}");
        let env = &p["environment"];
        assert_eq!(env["CC"], cl_path.to_str().unwrap(), "{p:#}");
        assert_eq!(env["CFLAGS"], format!("{build} /DUSE_FAST=1"), "{p:#}");
        let ld = env["LDFLAGS"].as_str().unwrap();
        assert!(ld.starts_with("/LIBPATH:/"), "{p:#}");
        assert!(!ld.contains("-Wl,") && !ld.contains("-L"), "{p:#}");
        assert_eq!(env["LIBS"], "openblas.lib", "{p:#}");
    }
    // Meson's native file: cl's link arguments, the build mode's Meson name
    let out = d.path().join("out");
    let g = run_env(
        d.path(),
        &[
            "generate",
            "m.toml",
            "-f",
            "meson-native",
            "--profile",
            "p.json",
            "--all",
            "-o",
            out.to_str().unwrap(),
        ],
        &path,
    );
    g.expect_code(0);
    let native =
        std::fs::read_to_string(out.join("meson/msvc-openblas-serial-debug-fast.ini")).unwrap();
    assert!(native.contains("buildtype = 'debug'"), "{native}");
    assert!(
        native.contains("c_link_args = ['/LIBPATH:/") && native.contains("'openblas.lib']"),
        "{native}"
    );

    // Proven here: the link test builds with cl's spellings, the library before `/link`
    // and its directory after it, and runs.
    let e = run_env(
        d.path(),
        &["expand", "m.toml", "--probe", "--search", search, "--json"],
        &path,
    );
    e.expect_code(0);
    for v in e.json().as_array().unwrap() {
        assert_eq!(v["available"], true, "{v:#}");
    }
    let runs = std::fs::read_to_string(&log).unwrap();
    let proof = runs
        .lines()
        .find(|l| l.contains("proof.c"))
        .unwrap_or_else(|| panic!("no link test ran through cl:\n{runs}"));
    assert!(proof.contains(" /Fe/"), "{proof}");
    assert!(proof.contains(" openblas.lib /link /LIBPATH:/"), "{proof}");
}
