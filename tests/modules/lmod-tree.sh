#!/bin/sh
# Builds a hierarchical Lmod module tree under $1, as a site would: compilers in Core (each
# prepending a directory that holds the real gcc-11/gcc-12/clang-16/clang-19 under their plain
# names), Open MPI and MPICH under each compiler (wrapping the real installs, with the
# compiler overrides set to that compiler), and the Debian OpenBLAS builds as modules.
# Then MODULEPATH=$1/modules/Core.
set -eu
R=$1
M=$R/modules
mkdir -p "$M/Core" "$R/bin"

compiler() { # name version cc cxx fc real-suffix
    name=$1 ver=$2 cc=$3 cxx=$4 fc=$5 real=$6
    d=$R/bin/$name-$ver
    mkdir -p "$d" "$M/Core/$name" "$M/Compiler/$name/$ver"
    ln -sf "/usr/bin/$cc-$real" "$d/$cc"
    ln -sf "/usr/bin/$cxx-$real" "$d/$cxx"
    [ -z "$fc" ] || ln -sf "/usr/bin/$fc-$real" "$d/$fc"
    cat > "$M/Core/$name/$ver.lua" <<LUA
family("compiler")
prepend_path("PATH", "$d")
prepend_path("MODULEPATH", "$M/Compiler/$name/$ver")
setenv("CC", "$cc")
setenv("CXX", "$cxx")
LUA
    for mpi in openmpi mpich; do
        b=$R/bin/$mpi-$name-$ver
        mkdir -p "$b" "$M/Compiler/$name/$ver/$mpi"
        for w in mpicc mpicxx mpifort; do ln -sf "/usr/bin/$w.$mpi" "$b/$w"; done
        if [ $mpi = openmpi ]; then v=4.1; p=OMPI_; cxxv=OMPI_CXX; fcv=OMPI_FC; else v=4.0; p=MPICH_; cxxv=MPICH_CXX; fcv=MPICH_FC; fi
        {
            echo "family(\"mpi\")"
            echo "prepend_path(\"PATH\", \"$b\")"
            echo "setenv(\"${p}CC\", \"$cc\")"
            echo "setenv(\"$cxxv\", \"$cxx\")"
            [ -z "$fc" ] || echo "setenv(\"$fcv\", \"$fc\")"
        } > "$M/Compiler/$name/$ver/$mpi/$v.lua"
    done
}
compiler gcc 11 gcc g++ gfortran 11
compiler gcc 12 gcc g++ gfortran 12
compiler clang 16 clang clang++ "" 16
compiler clang 19 clang clang++ "" 19

mkdir -p "$M/Core/openblas"
for t in serial pthread openmp; do
    l=/usr/lib/x86_64-linux-gnu/openblas-$t
    cat > "$M/Core/openblas/0.3.21-$t.lua" <<LUA
prepend_path("LD_LIBRARY_PATH", "$l")
prepend_path("LIBRARY_PATH", "$l")
LUA
done
# Not a compiler, MPI or BLAS: never loaded by the probe.
mkdir -p "$M/Core/cmake"
echo 'prepend_path("PATH", "/nonexistent/cmake/bin")' > "$M/Core/cmake/3.25.lua"
