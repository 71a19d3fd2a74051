#!/usr/bin/env bash
# Installs what the tests need, then runs formatting, lints and the whole test suite.
# As root, the lab tests (network namespaces, real chassis) run too; otherwise they print
# SKIPPED lines (or fail, with OVN_HEATER_REQUIRE_LAB=1 as CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/setup.sh; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The declared MSRV (rust-version in Cargo.toml, inherited by every crate) is checked, not
# trusted: clippy's incompatible_msrv lint covers std APIs, this covers the language and the
# locked dependencies.
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
# Fetching a second toolchain needs static.rust-lang.org; where that is out of reach the check
# is skipped loudly rather than failing the suite for a network reason.
if command -v rustup >/dev/null && rustup toolchain install "$msrv" --profile minimal; then
    cargo +"$msrv" check --workspace --all-targets --locked
elif command -v rustup >/dev/null; then
    echo "SKIPPED MSRV check: toolchain $msrv could not be installed (network?)" >&2
elif [ "${OVN_HEATER_REQUIRE_LAB:-}" = 1 ]; then
    echo "MSRV $msrv cannot be checked: rustup not found" >&2
    exit 1
else
    echo "SKIPPED MSRV check: rustup not found (rust-version $msrv)" >&2
fi
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
