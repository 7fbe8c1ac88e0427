#!/bin/sh
# Builds a hierarchical Environment Modules (Tcl) tree under $1, as a site would: gcc/12 and
# clang/16 in Core (each prepending a directory that holds the real gcc-12/clang-16 under their
# plain names, and `module use`-ing its MPI level), MPICH under each compiler (wrapping the real
# install, with the compiler override set to that compiler), and the serial OpenBLAS as a
# module. Then MODULEPATH=$1/modules/Core.
set -eu
R=$1
M=$R/modules
mkdir -p "$M/Core" "$R/bin"

compiler() { # name version cc cxx real-suffix
    name=$1 ver=$2 cc=$3 cxx=$4 real=$5
    d=$R/bin/$name-$ver
    mkdir -p "$d" "$M/Core/$name" "$M/Compiler/$name/$ver/mpich"
    ln -sf "/usr/bin/$cc-$real" "$d/$cc"
    ln -sf "/usr/bin/$cxx-$real" "$d/$cxx"
    cat > "$M/Core/$name/$ver" <<TCL
#%Module1.0
conflict $name
prepend-path PATH $d
setenv CC $cc
setenv CXX $cxx
module use $M/Compiler/$name/$ver
TCL
    b=$R/bin/mpich-$name-$ver
    mkdir -p "$b"
    for w in mpicc mpicxx mpiexec; do ln -sf "/usr/bin/$w.mpich" "$b/$w"; done
    # Hydra runs the proxy beside its launcher
    ln -sf /usr/bin/hydra_pmi_proxy "$b/hydra_pmi_proxy"
    cat > "$M/Compiler/$name/$ver/mpich/4.0" <<TCL
#%Module1.0
prepend-path PATH $b
setenv MPICH_CC $cc
setenv MPICH_CXX $cxx
TCL
}
compiler gcc 12 gcc g++ 12
compiler clang 16 clang clang++ 16

mkdir -p "$M/Core/openblas"
l=/usr/lib/x86_64-linux-gnu/openblas-serial
cat > "$M/Core/openblas/0.3.21-serial" <<TCL
#%Module1.0
prepend-path LD_LIBRARY_PATH $l
prepend-path LIBRARY_PATH $l
TCL
# Not a compiler, MPI or BLAS: never loaded by the probe.
mkdir -p "$M/Core/cmake"
printf '#%%Module1.0\nprepend-path PATH /nonexistent/cmake/bin\n' > "$M/Core/cmake/3.25"
