#include <stdio.h>
#include "tinyblas.h"
int main(void) {
  static double x[100000];
  for (int i = 0; i < 100000; i++) x[i] = i;
  tb_scale(100000, 2.0, x);
  for (int i = 0; i < 100000; i++) if (x[i] != 2.0 * i) { printf("x[%d] = %g\n", i, x[i]); return 1; }
  return 0;
}
