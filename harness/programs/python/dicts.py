# py-dict: dict- and list-heavy code: counting words into a dict, grouping
# them into a dict of lists, sorting, comprehensions, and dropping it all.
# Dicts and lists grow through several sizes (their storage is reallocated
# as they do), and strings are looked up, not made.
# Usage: SIZE THREADS (rounds of 2000 words; THREADS is ignored). Prints
# "poolbench-metric: R ops/s" (words per second of the timed loop) and
# checks its own result; exit status 3 if the check fails.
import collections
import sys
import time

WORDS = 2000


def round_of(vocab, r):
    words = [vocab[(r * 31 + i * i) % len(vocab)] for i in range(WORDS)]
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    groups = {}
    for w, c in counts.items():
        groups.setdefault(c, []).append(w)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    rank = {w: i for i, (w, _) in enumerate(top)}
    pairs = [(w, rank.get(w, -1)) for w in words[:200]]
    return counts, groups, top, pairs


def main():
    rounds = int(sys.argv[1])
    vocab = [f"w{k:x}" for k in range(5003)]
    seen = 0
    t0 = time.perf_counter()
    for r in range(rounds):
        counts, groups, top, pairs = round_of(vocab, r)
        seen += sum(counts.values()) + len(pairs)
        if sum(len(ws) for ws in groups.values()) != len(counts):
            print(f"check failed: round {r} groups", file=sys.stderr)
            sys.exit(3)
    elapsed = time.perf_counter() - t0
    if seen != rounds * (WORDS + 200):
        print(f"check failed: saw {seen} words", file=sys.stderr)
        sys.exit(3)
    # One round again, counted another way.
    r = rounds // 2
    counts, _, top, _ = round_of(vocab, r)
    other = collections.Counter(vocab[(r * 31 + i * i) % len(vocab)] for i in range(WORDS))
    if counts != other or top[0][1] != max(other.values()):
        print(f"check failed: round {r} counts differ from Counter's", file=sys.stderr)
        sys.exit(3)
    print(f"poolbench-metric: {rounds * WORDS / elapsed:.1f} ops/s")


main()
