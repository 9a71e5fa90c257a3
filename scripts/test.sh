#!/usr/bin/env bash
# The project's test command: README.md's "run the tests", and what CI runs
# (.ci/run calls exactly this). Every step must pass; optional tools that are
# absent (Miri) are skipped with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
start=$SECONDS

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (clippy, warnings denied)"
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests (debug)"
cargo test --workspace

step "tests in release (checks the optimiser cannot delete the measured work)"
cargo test --release -p harness

step "benches build and run once in test mode"
cargo bench -p benches -- --test

step "loom models of the atomic protocols"
scripts/loom.sh

step "Miri on the single-threaded core"
scripts/miri.sh

step "a report from a real (tiny) run, rendered in a real browser"
rm -rf target/ci-report
# The preload library: gil and sharded run the Python workload through it
# (a workload skipped with a note where there is no python3).
cargo build --release -q -p preload
cargo run --release -q -p harness -- run -s gil,sharded,system,null -w python -w xmalloc \
    -w py-churn:20000 -t 1,2 --quick --no-progress --out target/ci-report
report=$(ls target/ci-report/*.html | grep -v '/index.html$' | head -n 1)
scripts/browser-check.sh "$report" target/ci-report/browser

printf '\nall checks passed in %ds\n' "$((SECONDS - start))"
