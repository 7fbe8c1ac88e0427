#!/usr/bin/env python3
"""Runs a command and prints one JSON line: wall seconds, CPU seconds of the whole process
tree (user + sys of every waited-for descendant), and the peak number of compiler processes
running at once (cc1, cc1plus, f951, clang -cc1), polled from /proc every 5 ms.
Usage: measure.py CMD [ARGS...]   (the command's stdout/stderr pass through)"""
import json, os, resource, subprocess, sys, threading, time

COMPILERS = {"cc1", "cc1plus", "f951"}


def compilers_now():
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm in COMPILERS:
                n += 1
            elif comm.startswith("clang"):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"\0-cc1\0" in f.read():
                        n += 1
        except OSError:
            pass
    return n


def main():
    peak = 0
    done = threading.Event()

    def poll():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, compilers_now())
            time.sleep(0.005)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    code = subprocess.call(sys.argv[1:])
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    t.join()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"code": code, "wall": wall, "cpu": cpu, "peak_compilers": peak}),
          file=sys.stderr)


main()
