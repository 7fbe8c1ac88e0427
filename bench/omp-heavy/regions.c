/* Runs N small parallel regions, each ending in a barrier, and checks the sum. */
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  double total = 0;
  for (int r = 0; r < n; r++) {
    double s = 0;
#pragma omp parallel for reduction(+ : s)
    for (int i = 0; i < 2000; i++) s += (double)(i % 7);
    total += s;
  }
  double want = 0;
  for (int i = 0; i < 2000; i++) want += (double)(i % 7);
  printf("threads=%d regions=%d\n", omp_get_max_threads(), n);
  return total == want * n ? 0 : 1;
}
