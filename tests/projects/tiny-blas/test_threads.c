/* Prints the thread counts the variant's tests run with, so a log shows the budget at work. */
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
int main(void) {
  const char *omp = getenv("OMP_NUM_THREADS");
  printf("OMP_NUM_THREADS=%s\n", omp ? omp : "(unset)");
#ifdef _OPENMP
  printf("omp_get_max_threads() = %d\n", omp_get_max_threads());
#endif
  return 0;
}
