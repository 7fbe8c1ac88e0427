#include "tinyblas.h"
void tb_scale(int n, double a, double *x) {
#ifdef _OPENMP
#pragma omp parallel for
#endif
  for (int i = 0; i < n; i++) x[i] *= a;
}
