/* One MPI job: every rank checks the job's size (argv[1]), its OpenMP threads (OMP_NUM_THREADS
 * when built with OpenMP, else 1) and its BLAS's threading (argv[2]: OpenBLAS's own answer,
 * 0 sequential, 1 pthread, 2 openmp) and thread count, and computes a dgemm; with argv[3], every
 * thread then computes for that many seconds. Each rank prints one line of what it got; the job
 * fails unless every rank got what was asked. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Weak: a BLAS other than OpenBLAS has neither. */
int openblas_get_parallel(void) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
void dgemm_(const char *, const char *, const int *, const int *, const int *, const double *,
            const double *, const int *, const double *, const int *, const double *, double *,
            const int *, size_t, size_t);

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int want_ranks = argc > 1 ? atoi(argv[1]) : size;
    const char *want_blas = argc > 2 ? argv[2] : "any";

    int threads = 1, want_threads = 1;
#ifdef _OPENMP
#pragma omp parallel
#pragma omp single
    threads = omp_get_num_threads();
    const char *env = getenv("OMP_NUM_THREADS");
    want_threads = env ? atoi(env) : -1;
#endif

    const char *blas = "unknown";
    int blas_threads = 1;
    if (openblas_get_parallel) {
        static const char *names[] = {"sequential", "pthread", "openmp"};
        int p = openblas_get_parallel();
        blas = p >= 0 && p <= 2 ? names[p] : "unknown";
        blas_threads = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    }
    /* A threaded BLAS runs the threads cfgmx set (OMP_NUM_THREADS and its own variable). */
    const char *benv = getenv("OMP_NUM_THREADS");
    int want_blas_threads = strcmp(blas, "sequential") == 0 || !benv ? 1 : atoi(benv);

    const int n = 2;
    const double one = 1, zero = 0, a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1};
    double c[4] = {0, 0, 0, 0};
    dgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n, 1, 1);
    int dgemm_ok = c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 4;

    /* argv[3]: seconds every thread of every rank computes (how a test that holds its
     * cores looks from /proc). */
    double busy = argc > 3 ? atof(argv[3]) : 0;
    volatile double sink = 0;
    if (busy > 0) {
        double until = MPI_Wtime() + busy;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : sink)
#endif
        while (MPI_Wtime() < until)
            for (int i = 0; i < 100000; i++)
                sink += i * 1e-9;
    }

    printf("hybrid rank %d of %d: threads %d, blas %s with %d thread(s), dgemm %s\n", rank, size,
           threads, blas, blas_threads, dgemm_ok ? "ok" : "wrong");
    int ok = size == want_ranks && threads == want_threads && dgemm_ok &&
             (strcmp(want_blas, "any") == 0 || strcmp(want_blas, blas) == 0) &&
             blas_threads == want_blas_threads;
    if (!ok)
        fprintf(stderr,
                "rank %d: wanted %d ranks, %d threads, blas %s with %d thread(s)\n", rank,
                want_ranks, want_threads, want_blas, want_blas_threads);
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Finalize();
    return all ? 0 : 1;
}
