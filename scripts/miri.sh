#!/usr/bin/env bash
# Runs the allocator crate's single-threaded core tests (the in-crate unit
# tests: geometry, pool/arena transitions, shadow-model sequences) under
# Miri, which checks every raw-pointer access of the pymalloc core for
# undefined behaviour, plus the quick single-threaded tests of the public
# `Locked`/`Gil` paths (bad_input: realloc across classes, zero sizes;
# gil_handover: per-call GIL), and the size-less free of C (sizeless: the
# arena map and pool-header reads, every allocator). Multi-threaded tests, and those needing a
# huge malloc to fail, are #[cfg_attr(miri, ignore)]. Iteration counts
# shrink under cfg(miri) (see allocator/src/tests/mod.rs), so this takes a
# few minutes.
#
# Exits 0 with a message when Miri is not installed (CI may lack nightly).
#
# MIRIFLAGS: -Zmiri-permissive-provenance, because the core, like CPython's
# obmalloc, turns integers back into pointers: a block's pool header is
# found by masking its address (`pool_of`), and arena objects keep pool
# addresses as integers. Miri supports such casts only with permissive
# provenance (and warns without this flag); its checks of bounds,
# alignment, use-after-free, uninitialised reads and aliasing all stay on.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "Miri not installed, skipping (install: rustup +nightly component add miri)"
    exit 0
fi

export MIRIFLAGS="${MIRIFLAGS:--Zmiri-permissive-provenance}"
exec cargo +nightly miri test -p allocator --lib --test bad_input --test gil_handover --test sizeless "$@"
