#!/usr/bin/env bash
# Installs what the tests need, then runs formatting, lints and the whole test suite.
# As root, the lab tests (network namespaces, real chassis) run too; otherwise they print
# SKIPPED lines (or fail, with OVN_HEATER_REQUIRE_LAB=1 as CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/setup.sh; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
