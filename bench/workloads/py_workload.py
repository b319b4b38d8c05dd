#!/usr/bin/env python3
"""py_workload.py -- a fixed allocation-heavy Python workload for bench/compare.

Run as `PYTHONMALLOC=malloc python3 py_workload.py [scale]` so that every Python
object goes through the C malloc under test (LD_PRELOAD picks it), not through
pymalloc's arenas.  Deterministic: the same objects are created whatever the
allocator; `scale` (default 1.0) multiplies the work.  Prints one line:
    time_s=<seconds> checksum=<n>
(bench/compare takes peak RSS from the process's rusage.)
"""
import random
import sys
import time


def dicts_and_lists(n, rng):
    # Records as dicts, grouped into lists, indexed, updated, dropped: the
    # object churn of a typical data-processing script.
    records = []
    for i in range(n):
        records.append({
            "id": i,
            "name": "user%07d" % i,
            "score": rng.random() * 100,
            "tags": [("t%d" % (i % 17)), ("g%d" % (i % 5))],
        })
    by_tag = {}
    for r in records:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r)
    total = 0
    for t, lst in by_tag.items():
        lst.sort(key=lambda r: r["score"])
        total += len(lst) + int(lst[0]["score"])
    # Drop every other record and rebuild: frees interleaved with allocations.
    records = [dict(r, score=r["score"] * 2) for r in records[::2]]
    total += len(records)
    return total


def strings(n, rng):
    # String building, splitting, joining and formatting: many small and a
    # few large blocks, many of them short-lived.
    words = ["".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 12)))
             for _ in range(2000)]
    total = 0
    for i in range(n):
        line = " ".join(words[(i * 7 + k) % len(words)] for k in range(20))
        parts = line.split(" ")
        up = "-".join(p.upper() for p in parts if len(p) > 3)
        total += len(up) + len("%s:%d:%r" % (parts[0], i, parts[-1]))
    big = "\n".join("line %d %s" % (i, words[i % len(words)]) for i in range(n))
    total += len(big.splitlines())
    return total


def nested(n, rng):
    # Trees of tuples and lists built and torn down, plus a growing/shrinking
    # set: pointer-rich objects of many sizes.
    total = 0
    for i in range(n // 100):
        tree = [(j, [j] * (j % 7), {"k": j}) for j in range(200)]
        total += sum(len(x[1]) for x in tree)
    s = set()
    for i in range(n):
        s.add(rng.randrange(n))
        if len(s) > n // 4:
            # keep about a third: a burst of frees, then the set regrows
            s = {x for x in s if (x + i) % 3 == 0}
    return total + len(s)


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    n = max(100, int(400000 * scale))
    rng = random.Random(1234)
    t0 = time.perf_counter()
    checksum = dicts_and_lists(n, rng) + strings(n // 4, rng) + nested(n, rng)
    t1 = time.perf_counter()
    print("time_s=%.6f checksum=%d" % (t1 - t0, checksum))


if __name__ == "__main__":
    main()
