# py-churn: object churn, the allocation pattern of ordinary Python code.
#
# Every step builds a small dict, a tuple, a list and two f-strings (objects
# of 32 to 400 bytes, nearly all of them served by the object allocator)
# and puts the dict in one slot of a window of live records, freeing the
# record that was there: most objects die young, some live a window's
# length. Usage: SIZE THREADS (steps; THREADS is ignored). Prints
# "poolbench-metric: R ops/s" (steps per second of the timed loop) and
# checks its own result; exit status 3 if the check fails.
import sys
import time

WINDOW = 4096


def digits(n):
    return len(str(n))


def digit_sum(lo, hi):
    """Sum of the decimal lengths of lo..hi-1, by ranges of equal length."""
    total, start = 0, lo
    while start < hi:
        d = digits(start)
        end = min(hi, 10**d)
        total += (end - start) * d
        start = end
    return total


def expected(steps):
    # sum of i + len(f"obj-{i}-{i % 97}") + len(f"{i:x}") over the steps,
    # computed without the loop.
    ids = steps * (steps - 1) // 2
    names = 5 * steps + digit_sum(0, steps)
    full, rest = divmod(steps, 97)
    names += full * digit_sum(0, 97) + digit_sum(0, rest)
    hexes, start = 0, 0
    while start < steps:
        d = len(f"{start:x}")
        end = min(steps, 16**d)
        hexes += (end - start) * d
        start = end
    return ids + names + hexes


def main():
    steps = int(sys.argv[1])
    live = [None] * WINDOW
    total = 0
    t0 = time.perf_counter()
    for i in range(steps):
        name = f"obj-{i}-{i % 97}"
        rec = {
            "id": i,
            "name": name,
            "key": (i & 7, name, i * 2),
            "items": [i, i + 1, f"{i:x}"],
        }
        live[i % WINDOW] = rec
        total += rec["id"] + len(rec["name"]) + len(rec["items"][2])
    elapsed = time.perf_counter() - t0
    want = expected(steps)
    if total != want:
        print(f"check failed: total {total}, expected {want}", file=sys.stderr)
        sys.exit(3)
    for j, rec in enumerate(live):
        if rec is not None and (rec["id"] % WINDOW != j or rec["key"][2] != 2 * rec["id"]):
            print(f"check failed: slot {j} holds {rec!r}", file=sys.stderr)
            sys.exit(3)
    print(f"poolbench-metric: {steps / elapsed:.1f} ops/s")


main()
