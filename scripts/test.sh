#!/usr/bin/env bash
# Runs every test of the project. Expects the tools that .ci/run installs
# (Rust toolchain, Python packages from tests/*/requirements.txt, the npm
# packages of tests/e2e). Uses one cargo profile (dev) for tests and the
# binary the Python suites drive.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

step() { printf '\n== %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "checked-in protobuf code matches its .proto files"
cargo run --quiet --locked -p waymark-protogen -- --check

step "building the waymark binary"
cargo build --locked -p waymark

step "cargo tests"
cargo test --locked --workspace

step "end-to-end and system tests (real OpenTelemetry clients, crash and bad-input tests)"
export WAYMARK_BIN="${WAYMARK_BIN:-$TARGET_DIR/debug/waymark}"
"$PYTHON" -m pytest tests/e2e tests/system -q -p no:cacheprovider
