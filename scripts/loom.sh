#!/usr/bin/env bash
# Model-checks the allocators' atomic protocols with loom (see
# allocator/src/loom_models.rs). Its own target directory keeps the
# `--cfg loom` build from invalidating the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
# Optimised, but with debug assertions: the models check the cheap
# preconditions (`debug_assert!`s) on every path they explore.
export RUSTFLAGS="--cfg loom -C debug-assertions=on ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
exec cargo test -p allocator --lib --release loom_models "$@"
