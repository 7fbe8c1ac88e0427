#include <stdio.h>
#include "tinyblas.h"
int main(void) {
  double x[1000], y[1000];
  for (int i = 0; i < 1000; i++) { x[i] = 1.0; y[i] = i; }
  double d = tb_dot(1000, x, y);
  printf("dot = %g\n", d);
  return d == 499500.0 ? 0 : 1;
}
