/* `ddot_check N`: x.x through BLAS for x = 1..N must be N(N+1)(2N+1)/6.
 * `ddot_check threads`: with OpenMP, a parallel region must run on exactly OMP_NUM_THREADS
 * threads (the count cfgmx says it tests with); without OpenMP there is nothing to check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

double ddot_(const int *n, const double *x, const int *incx, const double *y, const int *incy);

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "threads") == 0) {
#ifdef _OPENMP
        const char *want = getenv("OMP_NUM_THREADS");
        int n = 0;
#pragma omp parallel reduction(+ : n)
        n += 1;
        printf("threads: %d (OMP_NUM_THREADS=%s)\n", n, want ? want : "unset");
        return want && atoi(want) == n ? 0 : 1;
#else
        printf("threads: no OpenMP\n");
        return 0;
#endif
    }
    const int n = argc > 1 ? atoi(argv[1]) : 3, one = 1;
    double *x = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) x[i] = i + 1;
    const double d = ddot_(&n, x, &one, x, &one);
    const double want = (double)n * (n + 1) * (2.0 * n + 1) / 6.0;
    printf("ddot(%d): %.17g (want %.17g)\n", n, d, want);
    free(x);
    return d == want ? 0 : 1;
}
