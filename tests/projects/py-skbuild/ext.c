/* A Python extension that calls BLAS and uses OpenMP, and reports what it was built with and
 * what it loaded: the tests hold that against what the variant promises. The meson-python
 * test project compiles this same file under another module name (EXT_NAME). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef EXT_NAME
#define EXT_NAME skext
#endif
#define CAT(a, b) a##b
#define INIT(n) CAT(PyInit_, n)
#define STR(n) #n
#define XSTR(n) STR(n)

/* OpenBLAS only: 0 sequential, 1 pthread, 2 OpenMP; weak, so another BLAS loads too. */
int openblas_get_parallel(void) __attribute__((weak));
double ddot_(const int *n, const double *x, const int *incx, const double *y, const int *incy);

static PyObject *info(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    int threads = 1;
#ifdef _OPENMP
#pragma omp parallel
    {
#pragma omp single
        threads = omp_get_num_threads();
    }
    int openmp = _OPENMP;
#else
    int openmp = 0;
#endif
    const int n = 3, one = 1;
    const double x[3] = {1, 2, 3};
    double dot = ddot_(&n, x, &one, x, &one);
#ifdef NDEBUG
    int ndebug = 1;
#else
    int ndebug = 0;
#endif
#ifdef __OPTIMIZE__
    int optimized = 1;
#else
    int optimized = 0;
#endif
    return Py_BuildValue("{s:i,s:i,s:i,s:d,s:i,s:i}", "openmp", openmp, "omp_threads", threads,
                         "blas_parallel", openblas_get_parallel ? openblas_get_parallel() : -1,
                         "ddot", dot, "ndebug", ndebug, "optimized", optimized);
}

static PyMethodDef methods[] = {
    {"info", info, METH_NOARGS, "What this build is and what it loaded."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, XSTR(EXT_NAME), NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC INIT(EXT_NAME)(void) { return PyModule_Create(&module); }
