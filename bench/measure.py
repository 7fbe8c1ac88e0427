#!/usr/bin/env python3
"""Runs a command and prints one JSON line: wall seconds, CPU seconds of the whole process
tree (user + sys of every waited-for descendant), and the peak number of compiler processes
of that tree running at once (cc1, cc1plus, f951, clang -cc1), polled every 10 ms.
Only the command's descendants count: on a shared machine others' compilers are not ours.
Usage: measure.py CMD [ARGS...]   (the command's stdout/stderr pass through)"""
import json, os, resource, subprocess, sys, threading, time

COMPILERS = {"cc1", "cc1plus", "f951"}


def descendants(root):
    """The pids below `root`, walked down through each thread's /proc/PID/task/TID/children.
    Walking only the command's own tree (not all of /proc) keeps the poller cheap: a poller
    that scans /proc every 5 ms costs a third of a core, which it steals from the command it
    measures and which would show up as idle time against the ideal."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def alive(pid):
    """Running or sleeping, not a zombie or gone (state is the field after `(comm)`)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def compilers_now(root):
    # The /proc walk is not atomic: a compiler that ended during it (a zombie, or gone) would
    # be counted beside the one that replaced it, so every hit is re-checked after the walk.
    hits = []
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm in COMPILERS:
                hits.append(pid)
            elif comm.startswith("clang"):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"\0-cc1\0" in f.read():
                        hits.append(pid)
        except OSError:
            pass
    return sum(1 for pid in hits if alive(pid))


def main():
    peak = 0
    done = threading.Event()

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    child = subprocess.Popen(sys.argv[1:])

    def poll():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, compilers_now(child.pid))
            time.sleep(0.01)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    code = child.wait()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    t.join()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"code": code, "wall": wall, "cpu": cpu, "peak_compilers": peak}),
          file=sys.stderr)


main()
