#!/usr/bin/env bash
# Installs the real parts cfgmx's tests run against (Debian/Ubuntu, as root or via sudo).
# Idempotent: a second run only checks. Used by .ci/run and by the README's test command.
set -euo pipefail

packages=(
  # compilers and their OpenMP runtimes
  gcc g++ gfortran clang libomp-dev
  # BLAS: the three OpenBLAS builds Debian installs side by side, BLIS, reference BLAS
  libopenblas-serial-dev libopenblas-pthread-dev libopenblas-openmp-dev
  libblis-dev libblas-dev
  # MPI wrappers, and ccache (a wrapper the probe must see through)
  mpich libmpich-dev ccache
  # build systems and tools the generated configs are fed to
  cmake ninja-build meson make pkg-config
  # environment modules (Lmod) for the generated module trees
  lmod
  # headless browser that opens the HTML build report in tests
  chromium
  # misc used by tests
  python3 python3-yaml file procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
