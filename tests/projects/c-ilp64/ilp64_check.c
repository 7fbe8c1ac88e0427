/* BLAS with 64-bit integers. idamax is called with an N whose low 32 bits are 2 and which is
 * negative as a 64-bit integer: an ILP64 library returns 0 (N < 1), an LP64 one reads 2 and
 * returns 2. dgemm then checks a product with int64_t dimensions. */
#include <stdint.h>
#include <stdio.h>

int64_t idamax_(const int64_t *n, const double *x, const int64_t *incx);
void dgemm_(const char *ta, const char *tb, const int64_t *m, const int64_t *n,
            const int64_t *k, const double *alpha, const double *a, const int64_t *lda,
            const double *b, const int64_t *ldb, const double *beta, double *c,
            const int64_t *ldc);
/* Weak: only OpenBLAS has them. */
int openblas_get_parallel(void) __attribute__((weak));
char *openblas_get_config(void) __attribute__((weak));

int main(void) {
    const double x[2] = {1, 5};
    const int64_t wide = (int64_t)(-(INT64_C(1) << 32) + 2), inc = 1;
    int64_t r = idamax_(&wide, x, &inc);
    if (r != 0) {
        printf("idamax: read N as a 32-bit integer (returned %lld): not an ILP64 BLAS\n",
               (long long)r);
        return 1;
    }
    const int64_t n = 2;
    const double one = 1.0, zero = 0.0;
    const double a[4] = {1, 3, 2, 4}, b[4] = {5, 7, 6, 8}, want[4] = {19, 43, 22, 50};
    double c[4] = {0};
    dgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n);
    for (int i = 0; i < 4; i++)
        if (c[i] != want[i]) {
            printf("dgemm: WRONG\n");
            return 1;
        }
    if (openblas_get_parallel)
        printf("blas-parallel: %d\n", openblas_get_parallel());
    if (openblas_get_config)
        printf("blas-config: %s\n", openblas_get_config());
    printf("ilp64: ok\n");
    return 0;
}
