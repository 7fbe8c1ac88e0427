"""The extension against what its variant promises: cfgmx build sets CFGMX_BLAS_THREADING
and the thread variables (OMP_NUM_THREADS) for the test step."""
import os

import skext as ext

# openblas_get_parallel() per BLAS threading.
PARALLEL = {"sequential": 0, "pthread": 1, "openmp": 2}


def test_blas_threading():
    want = os.environ["CFGMX_BLAS_THREADING"]
    assert ext.info()["blas_parallel"] == PARALLEL[want]


def test_openmp_threads():
    info = ext.info()
    assert info["openmp"] > 0, "built without OpenMP"
    assert info["omp_threads"] == int(os.environ["OMP_NUM_THREADS"])


def test_blas_call():
    assert ext.info()["ddot"] == 14.0
