#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ with libFuzzer's coverage instrumentation
# (stable toolchain: the same -C flags cargo-fuzz passes, minus AddressSanitizer,
# which needs nightly and adds little to code without `unsafe`) and runs each
# target for a fixed number of executions.
#
#   scripts/fuzz.sh [RUNS] [TARGET...]     RUNS defaults to 10000 per target
#
# Seeds come from fuzz/seeds/<target> (committed; see fuzz/README.md); the
# growing corpus lives in $FUZZ_CORPUS (default fuzz/corpus, not committed).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-10000}"
shift || true
HOST="$(rustc -vV | sed -n 's/^host: //p')"
TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}"
CORPUS="${FUZZ_CORPUS:-fuzz/corpus}"

ALL=$(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^waymark-fuzz$')
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && read -r -a TARGETS <<<"$(echo $ALL)"

# --target keeps the instrumentation off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --locked --release --manifest-path fuzz/Cargo.toml --target "$HOST" \
  --target-dir "$TARGET_DIR" --bins

failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$CORPUS/$t" "fuzz/artifacts/$t"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  log="$(mktemp)"
  start=$(date +%s)
  if "$TARGET_DIR/$HOST/release/$t" "$CORPUS/$t" "${seeds[@]}" \
      -runs="$RUNS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf '%-22s ok    %s executions, %s, corpus %s inputs, %ss\n' "$t" "${execs:-?}" \
      "${cov:-cov: ?}" "$(ls "$CORPUS/$t" | wc -l)" "$(( $(date +%s) - start ))"
  else
    printf '%-22s CRASH (input in fuzz/artifacts/%s/)\n' "$t" "$t"
    tail -40 "$log"
    failed=1
  fi
  rm -f "$log"
done
exit $failed
