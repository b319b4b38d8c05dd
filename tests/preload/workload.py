"""tests/preload/workload.py -- a dict/list/str-heavy Python workload for the
preload test: run with PYTHONMALLOC=malloc so every object comes from the C
allocator, once on glibc and once on gomalloc; the printed lines (sizes,
checksums) must be identical.  Deterministic: fixed seed, sorted output."""
import hashlib
import json
import random
import sys

rng = random.Random(20260101)
h = hashlib.sha256()


def feed(*parts):
    for p in parts:
        h.update(repr(p).encode())


# 1. A large dict of small lists and strings, grown, mutated and shrunk.
d = {}
for i in range(200000):
    k = "key-%d-%s" % (i, "x" * (i % 37))
    d[k] = [i, str(i * 7), (i, i + 1), {"n": i % 97}]
for i in range(0, 200000, 3):
    del d["key-%d-%s" % (i, "x" * (i % 37))]
for k in list(d)[:5000]:
    d[k].append(k * 3)
feed(len(d), sum(v[0] for v in d.values()))
print("dict", len(d))

# 2. Lists of tuples: sort, slice, concatenate, reverse.
rows = [(rng.randrange(10**6), rng.random(), "r%d" % i) for i in range(150000)]
rows.sort()
merged = rows[::2] + rows[1::2]
merged.reverse()
feed(rows[:100], rows[-100:], len(merged))
print("rows", len(rows), rows[0][0], rows[-1][0])

# 3. Strings: build, split, join, encode (many sizes, many frees).
words = ["".join(chr(97 + (i * j) % 26) for j in range(1 + i % 40)) for i in range(60000)]
text = " ".join(words)
parts = text.split(" ")
upper = [w.upper() for w in parts if len(w) % 3]
blob = "\n".join(upper).encode("utf-8")
feed(len(text), len(parts), len(upper), hashlib.md5(blob).hexdigest())
print("text", len(text), len(upper))

# 4. Sets and nested containers, JSON round trip.
s = set()
for i in range(100000):
    s.add((i * 2654435761) % 1000003)
tree = {str(i): {"a": list(range(i % 20)), "b": {"c": str(i) * (i % 5)}} for i in range(20000)}
js = json.dumps(tree, sort_keys=True)
back = json.loads(js)
feed(len(s), sorted(s)[:50], len(js), back["19999"])
print("json", len(js), len(back))

# 5. Churn: many short-lived objects of mixed sizes (the allocator's reuse).
live = []
total = 0
for i in range(300000):
    n = rng.choice((8, 24, 100, 500, 3000, 40000))
    live.append(bytearray(n))
    total += n
    if len(live) > 2000:
        j = rng.randrange(len(live))
        live[j] = live[-1]
        live.pop()
feed(total, len(live))
print("churn", total, len(live))

print("checksum", h.hexdigest())
sys.stdout.flush()
