# py-json: a JSON round trip: build batches of documents (nested dicts and
# lists of strings, ints and floats), dump them to text, load them back
# and compare. The decoder makes many small strings, dicts and lists.
# Usage: SIZE THREADS (documents; THREADS is ignored). Prints
# "poolbench-metric: R ops/s" (documents per second of the timed loop)
# and checks its own result; exit status 3 if the check fails.
import json
import sys
import time

BATCH = 64


def document(i):
    return {
        "id": i,
        "name": f"item-{i}",
        "price": i / 8,
        "tags": [f"t{(i * k) % 37}" for k in range(i % 5 + 1)],
        "stock": {"here": i % 13, "there": [i % 3, i % 7], "note": None},
        "ok": i % 2 == 0,
    }


def main():
    docs = int(sys.argv[1])
    done = 0
    size = 0
    t0 = time.perf_counter()
    while done < docs:
        n = min(BATCH, docs - done)
        batch = [document(done + k) for k in range(n)]
        text = json.dumps(batch)
        back = json.loads(text)
        if back != batch:
            print(f"check failed: documents {done}..{done + n} differ after a round trip",
                  file=sys.stderr)
            sys.exit(3)
        size += len(text)
        done += n
    elapsed = time.perf_counter() - t0
    again = sum(len(json.dumps([document(d + k) for k in range(min(BATCH, docs - d))]))
                for d in range(0, docs, BATCH))
    if again != size:
        print(f"check failed: {size} bytes of JSON, expected {again}", file=sys.stderr)
        sys.exit(3)
    print(f"poolbench-metric: {docs / elapsed:.1f} ops/s")


main()
