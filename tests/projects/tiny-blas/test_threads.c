/* Records the thread counts the variant's tests run with (in threads.txt in the build dir,
   as ctest shows passing tests' output only with -V), so a test can check the budget. */
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
int main(void) {
  FILE *f = fopen("threads.txt", "w");
  if (!f) return 1;
  const char *omp = getenv("OMP_NUM_THREADS");
  fprintf(f, "OMP_NUM_THREADS=%s\n", omp ? omp : "(unset)");
#ifdef _OPENMP
  fprintf(f, "omp_get_max_threads() = %d\n", omp_get_max_threads());
#endif
  return fclose(f) == 0 ? 0 : 1;
}
