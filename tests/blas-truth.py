# Ground truth for tests/tests/blas.rs: asks each library itself, independently of cfgmx.
# argv: kind path [extra files...]; prints one JSON object {threading, width}.
import ctypes, json, os, subprocess, sys

kind, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
G = os.RTLD_GLOBAL | os.RTLD_LAZY


def width_by_call(fn):
    # N is 2 read as a 32-bit integer and negative read as a 64-bit one (i?amax returns 0)
    fn.restype = ctypes.c_int
    n = ctypes.c_int64(-(2**32) + 2)
    inc = ctypes.c_int64(1)
    x = (ctypes.c_double * 2)(1.0, 5.0)
    r = fn(ctypes.byref(n), x, ctypes.byref(inc))
    return {2: "lp64", 0: "ilp64"}[r]


out = {}
if kind == "openblas":
    pre, suf = (extra + ["", ""])[:2]
    lib = ctypes.CDLL(path)
    par = getattr(lib, f"{pre}openblas_get_parallel{suf}")()
    cfg_fn = getattr(lib, f"{pre}openblas_get_config{suf}")
    cfg_fn.restype = ctypes.c_char_p
    cfg = cfg_fn().decode()
    out["threading"] = {0: "sequential", 1: "pthread", 2: "openmp"}[par]
    out["width"] = "ilp64" if "USE64BITINT" in cfg.split() else "lp64"
elif kind == "blis":
    lib = ctypes.CDLL(path)
    omp, pth = lib.bli_info_get_enable_openmp(), lib.bli_info_get_enable_pthreads()
    out["threading"] = "openmp" if omp else "pthread" if pth else "sequential"
    out["width"] = width_by_call(lib.idamax_)
elif kind == "atlas":
    text = subprocess.run(
        [sys.executable, "-c", f"import ctypes; ctypes.CDLL({path!r}).ATL_buildinfo()"],
        capture_output=True, text=True, check=True).stdout
    assert text.startswith("ATLAS version"), text
    out["threading"] = "sequential"
    out["width"] = "lp64" if "F77_INTEGER=int " in text else "ilp64"
elif kind == "reference":
    lib = ctypes.CDLL(path)
    # the reference BLAS starts no threads: it imports no thread or OpenMP API
    syms = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True,
                          text=True, check=True).stdout
    assert "pthread_create" not in syms and "GOMP_" not in syms, syms
    out["threading"] = "sequential"
    out["width"] = width_by_call(lib.idamax_)
elif kind == "mkl":
    # extra: the build's files, loaded runtimes first, then in reverse link order
    libs = [ctypes.CDLL(f, mode=G) for f in reversed(extra)]
    main = ctypes.CDLL(path, mode=G)
    libs.append(main)
    get = lambda n: next(getattr(l, n) for l in libs if hasattr(l, n))
    n = get("mkl_get_max_threads")()
    maps = open("/proc/self/maps").read()
    rt = "iomp5" if "/libiomp5" in maps else "gomp" if "/libgomp" in maps else None
    out["threads"] = n
    out["runtime"] = rt
    out["width"] = width_by_call(get("idamax_"))
    try:
        layer = get("MKL_Set_Threading_Layer")(-1)
        iface = get("MKL_Set_Interface_Layer")(-1)
        out["layer"] = layer
        out["interface"] = iface
    except StopIteration:
        pass
print(json.dumps(out))
