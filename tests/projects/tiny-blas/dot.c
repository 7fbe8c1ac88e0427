#include "tinyblas.h"
double ddot_(const int *n, const double *x, const int *incx, const double *y, const int *incy);
double tb_dot(int n, const double *x, const double *y) {
  int one = 1;
  return ddot_(&n, x, &one, y, &one);
}
