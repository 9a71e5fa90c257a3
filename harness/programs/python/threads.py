# py-threads: THREADS threads of object churn contending for the GIL.
#
# Each thread does SIZE steps of py-churn's work; every 64 steps it hands
# its batch of records to the next thread through a shared slot, and takes
# (and frees) the batches the previous thread handed it: objects made on
# one thread die on another (a remote free for a per-thread allocator). CPython switches the
# GIL between the threads every switch interval (5 ms). Usage: SIZE
# THREADS. Prints "poolbench-metric: R ops/s" (steps of all threads per
# second, from the first start to the last finish) and checks its own
# result; exit status 3 if the check fails.
import sys
import threading
import time

BATCH = 64


def main():
    steps = int(sys.argv[1])
    threads = int(sys.argv[2])
    slots = [[] for _ in range(threads)]
    lock = threading.Lock()
    totals = [0] * threads
    handed = [0] * threads
    start = threading.Barrier(threads + 1)

    def work(t):
        start.wait()
        total = 0
        batch = []
        mine = 0
        for i in range(steps):
            name = f"t{t}-{i}"
            rec = {"id": i, "name": name, "key": (t, name, i * 2), "items": [i, f"{i:x}"]}
            batch.append(rec)
            total += rec["id"] + rec["key"][0]
            if len(batch) == BATCH:
                with lock:
                    slots[(t + 1) % threads].append(batch)
                    theirs = slots[t]
                    slots[t] = []
                mine += sum(len(b) for b in theirs)
                del theirs
                batch = []
        totals[t] = total
        handed[t] = mine

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in pool:
        p.join()
    elapsed = time.perf_counter() - t0
    for t in range(threads):
        want = steps * (steps - 1) // 2 + t * steps
        if totals[t] != want:
            print(f"check failed: thread {t} total {totals[t]}, expected {want}", file=sys.stderr)
            sys.exit(3)
    # Every full batch was handed on once: what was taken plus what is
    # still in the slots.
    left = sum(len(b) for s in slots for b in s)
    if sum(handed) + left != threads * (steps // BATCH) * BATCH:
        print(f"check failed: {sum(handed)} + {left} records handed", file=sys.stderr)
        sys.exit(3)
    print(f"poolbench-metric: {threads * steps / elapsed:.1f} ops/s")


main()
