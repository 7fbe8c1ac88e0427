/* C = A*B through BLAS from C and through the Fortran wrapper; both must match by hand. */
#include <stdio.h>

void dgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda, const double *b,
            const int *ldb, const double *beta, double *c, const int *ldc);
void fmatmul(int n, const double *a, const double *b, double *c);

static double dist(double x, double y) { return x > y ? x - y : y - x; }

int main(void) {
    const int n = 2;
    const double one = 1.0, zero = 0.0;
    /* column-major 2x2 */
    const double a[4] = {1, 3, 2, 4}, b[4] = {5, 7, 6, 8};
    const double want[4] = {19, 43, 22, 50};
    double c[4] = {0}, f[4] = {0};
    dgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n);
    fmatmul(n, a, b, f);
    int bad = 0;
    for (int i = 0; i < 4; i++)
        if (dist(c[i], want[i]) > 1e-12 || dist(f[i], want[i]) > 1e-12) bad = 1;
    printf("dgemm: %s\n", bad ? "WRONG" : "ok");
    return bad;
}
