#!/bin/sh
# Builds a Cray-like Lmod tree under $1: PrgEnv-cray and PrgEnv-gnu modules that make the one
# set of craype drivers `cc`/`CC`/`ftn` mean a different compiler each (CCE: an emulated
# `craycc` over clang-16, which the driver runs by its path as craype does, that answers with Cray's banner and defines Cray's identity macros;
# GNU: the real gcc-12), with Cray MPICH inside the drivers (answering
# `--cray-print-opts=libs` as the real driver does) and LibSci as the BLAS, one library per
# PrgEnv (here the serial OpenBLAS under LibSci's names: LibSci cannot be installed).
# The banner is the real one of CCE 17 (tests/fixtures/compiler-versions.toml).
# Then MODULEPATH=$1/modules.
set -eu
R=$1
mkdir -p "$R/modules/PrgEnv-cray" "$R/modules/PrgEnv-gnu" "$R/craype/bin" "$R/cce/bin" "$R/libsci/cray/lib" "$R/libsci/gnu/lib"

cat > "$R/cce/bin/craycc" <<'SH'
#!/bin/sh
for a in "$@"; do
  case "$a" in
    --version|-V)
      printf '%s\n' 'Cray clang version 17.0.0  (b59b7a8e9169719529cf5ab440f3c301e515d047)' \
        'Target: x86_64-unknown-linux-gnu' 'Thread model: posix' \
        'InstalledDir: /opt/cray/pe/cce/17.0.0/cce-clang/x86_64/share/../bin'
      exit 0;;
  esac
done
exec /usr/bin/clang-16 -D_CRAYC=1 -D_RELEASE_MAJOR=17 -D_RELEASE_MINOR=0 -D__cray__=1 "$@"
SH
chmod +x "$R/cce/bin/craycc"
# Cray's Fortran front end, emulated over gfortran-12 (the real banner of crayftn for -V).
cat > "$R/cce/bin/crayftn" <<'SH'
#!/bin/sh
for a in "$@"; do
  case "$a" in
    --version|-V) echo 'Cray Fortran : Version 17.0.0'; exit 0;;
  esac
done
exec /usr/bin/gfortran-12 -D_CRAYFTN=1 -D_RELEASE_MAJOR=17 -D_RELEASE_MINOR=0 "$@"
SH
chmod +x "$R/cce/bin/crayftn"

# The drivers: the compiler of the loaded PrgEnv (PE_ENV), Cray MPICH's libraries on request,
# and craype's own verbose option, which prints the command it runs (in Cray's form: the
# compiler, the target's flags, the arguments, then the PE's include and library options).
for d in cc CC ftn; do
  cat > "$R/craype/bin/$d" <<SH
#!/bin/sh
case "\${PE_ENV:-}" in
  CRAY) case $d in cc|CC) real=$R/cce/bin/craycc;; ftn) real=$R/cce/bin/crayftn;; esac; pe=cray;;
  GNU) case $d in cc) real=/usr/bin/gcc-12;; CC) real=/usr/bin/g++-12;; ftn) real=/usr/bin/gfortran-12;; esac; pe=gnu;;
  *) echo "$d: no PrgEnv module is loaded (PE_ENV is not set)" >&2; exit 1;;
esac
verbose=
for a in "\$@"; do
  case "\$a" in
    --cray-print-opts=libs) echo "-L/opt/cray/pe/mpich/8.1.28/ofi/\$pe/12.3/lib -lmpi_\$pe"; exit 0;;
    -craype-verbose) verbose=1;;
  esac
done
if [ -n "\$verbose" ]; then
  for a in "\$@"; do shift; [ "\$a" = -craype-verbose ] || set -- "\$@" "\$a"; done
  # craype's text: the command it runs, the target's flags before the arguments and Cray
  # MPICH's and LibSci's directories and libraries after them, on one line
  echo "\$real -march=znver3 -dynamic -D__CRAY_X86_MILAN -D__CRAYXT_COMPUTE_LINUX_TARGET \$* -I/opt/cray/pe/libsci/23.12.5/\$pe/12.3/x86_64/include -I/opt/cray/pe/mpich/8.1.28/ofi/\$pe/12.3/include -L/opt/cray/pe/libsci/23.12.5/\$pe/12.3/x86_64/lib -L/opt/cray/pe/mpich/8.1.28/ofi/\$pe/12.3/lib -Wl,--as-needed,-lsci_\$pe,--no-as-needed -ldl -Wl,--as-needed,-lmpi_\$pe,--no-as-needed"
fi
exec "\$real" "\$@"
SH
  chmod +x "$R/craype/bin/$d"
done

for pe in cray gnu; do
  for f in libopenblas.so.0; do
    ln -sf "/usr/lib/x86_64-linux-gnu/openblas-serial/$f" "$R/libsci/$pe/lib/libsci_$pe.so"
  done
done

cat > "$R/modules/PrgEnv-cray/8.5.0.lua" <<LUA
family("PrgEnv")
setenv("PE_ENV", "CRAY")
prepend_path("PATH", "$R/craype/bin")
prepend_path("LD_LIBRARY_PATH", "$R/libsci/cray/lib")
prepend_path("LIBRARY_PATH", "$R/libsci/cray/lib")
LUA
cat > "$R/modules/PrgEnv-gnu/8.5.0.lua" <<LUA
family("PrgEnv")
setenv("PE_ENV", "GNU")
prepend_path("PATH", "$R/craype/bin")
prepend_path("LD_LIBRARY_PATH", "$R/libsci/gnu/lib")
prepend_path("LIBRARY_PATH", "$R/libsci/gnu/lib")
LUA
