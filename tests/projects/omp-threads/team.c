/* `team parallel` counts the threads of an OpenMP parallel region with a reduction and fails
 * when there are 2 or more; `team serial` always passes. Without OpenMP both pass. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "parallel") == 0) {
        int n = 1;
#ifdef _OPENMP
        n = 0;
#pragma omp parallel reduction(+ : n)
        n += 1;
#endif
        printf("team of %d thread(s)\n", n);
        return n >= 2 ? 1 : 0;
    }
    printf("serial\n");
    return 0;
}
