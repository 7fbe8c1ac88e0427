/* `burn RANKS SECONDS`: RANKS processes (this one and RANKS-1 forked children), each spinning
 * an OpenMP team of OMP_NUM_THREADS threads for SECONDS of wall time: RANKS x threads busy
 * threads, as an MPI test of RANKS ranks would be. Fails if a process's team is not the size
 * OMP_NUM_THREADS asks for. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int spin(double seconds) {
    int team = 1;
    double end = now() + seconds;
#ifdef _OPENMP
#pragma omp parallel
    {
#pragma omp single
        team = omp_get_num_threads();
        volatile unsigned long x = 0;
        while (now() < end)
            x++;
    }
#else
    volatile unsigned long x = 0;
    while (now() < end)
        x++;
#endif
    const char *want = getenv("OMP_NUM_THREADS");
    if (want && atoi(want) != team) {
        fprintf(stderr, "FAIL: a team of %d threads, OMP_NUM_THREADS=%s\n", team, want);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int ranks = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    for (int r = 1; r < ranks; r++) {
        pid_t p = fork();
        if (p == 0)
            _exit(spin(seconds));
        if (p < 0) {
            perror("fork");
            return 1;
        }
    }
    int failed = spin(seconds);
    int status;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    printf("%d process(es) of %s thread(s) for %.1f s\n", ranks,
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "1", seconds);
    return failed;
}
