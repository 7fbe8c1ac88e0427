/* Prints and appends to seen.txt the OMP_NUM_THREADS it was given and, built with OpenMP,
 * the size of a parallel region's team; fails when the two disagree (the runtime did not
 * get the count the test run was given). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    const char *bind = getenv("OMP_PROC_BIND");
    int team = 0;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : team)
    team += 1;
#endif
    char line[256];
    snprintf(line, sizeof line, "OMP_NUM_THREADS=%s team=%d OMP_PROC_BIND=%s\n",
             env ? env : "unset", team, bind ? bind : "unset");
    fputs(line, stdout);
    FILE *f = fopen("seen.txt", "a");
    if (f == NULL || fputs(line, f) < 0 || fclose(f) != 0) {
        perror("seen.txt");
        return 1;
    }
    if (team != 0 && (env == NULL || atoi(env) != team)) {
        fprintf(stderr, "team of %d threads, OMP_NUM_THREADS=%s\n", team, env ? env : "unset");
        return 1;
    }
    return 0;
}
