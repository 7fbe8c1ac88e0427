/* Prints what this build really is: the OpenMP version it was compiled with and the
 * threading of the BLAS library the loader picked (OpenBLAS: 0 serial, 1 pthread, 2 openmp). */
#include <stdio.h>
/* The build tests' broken variant: flags any compiler accepts, that break this project only. */
#ifdef CFGMX_BROKEN_BUILD
#error "cfgmx test: this variant's flags break the project's build"
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* Weak: other BLAS libraries do not have it. */
int openblas_get_parallel(void) __attribute__((weak));
double ddot_(const int *n, const double *x, const int *incx, const double *y, const int *incy);

int main(void) {
#ifdef _OPENMP
    printf("openmp: %d threads=%d\n", _OPENMP, omp_get_max_threads());
#else
    printf("openmp: none\n");
#endif
    if (openblas_get_parallel)
        printf("blas-parallel: %d\n", openblas_get_parallel());
    else
        printf("blas-parallel: unknown\n");
    /* A real BLAS call, so the library is needed at link time whatever the linker's defaults. */
    const int n = 3, one = 1;
    const double x[3] = {1, 2, 3};
    double d = ddot_(&n, x, &one, x, &one);
    printf("ddot: %g\n", d);
    return d == 14.0 ? 0 : 1;
}
