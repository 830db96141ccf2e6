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
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "the checked-in UI bundle matches ui/src"
(cd ui && npm run --silent build)
git diff --exit-code --stat -- ui/dist

# One build of every target with one feature resolution (--workspace
# everywhere), reused by every step below.
step "building the workspace (dev profile: binaries and tests)"
cargo build --locked --workspace --all-targets

step "checked-in protobuf code matches its .proto files"
"$TARGET_DIR/debug/waymark-protogen" --check

step "cargo tests"
cargo test --locked --workspace

step "fuzz targets, a short pass (every decoder; scripts/fuzz.sh for long runs)"
FUZZ_CORPUS="$TARGET_DIR/fuzz-corpus" bash scripts/fuzz.sh "${WAYMARK_FUZZ_RUNS:-20000}"

export WAYMARK_BIN="${WAYMARK_BIN:-$(cd "$TARGET_DIR/debug" && pwd)/waymark}"

step "end-to-end, system and demo tests (real OpenTelemetry, Zipkin and Jaeger clients; crash, bad-input and agent tests; the demo shop)"
"$PYTHON" -m pytest tests/e2e tests/system tests/demo tests/deploy -q -p no:cacheprovider

step "UI tests in headless Chromium, served by waymark itself"
(cd ui && WAYMARK_UI_URL=waymark npm test)
