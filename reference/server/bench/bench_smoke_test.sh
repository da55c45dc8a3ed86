#!/usr/bin/env bash
# ctest entry: signum-bench --pkcs11 still runs all four paths end to end (both deployments, the
# p11-kit server, forked signers as threads and as processes) and prints its table, ratios and
# targets. It asserts that every cell signed without errors, never how fast: speed lives in ci/bench.
#   bench_smoke_test.sh SIGNUM_BENCH
set -euo pipefail
BENCH=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for mode in "" --processes; do
  "$BENCH" --pkcs11 --keys ec-p256 --concurrency 2 --seconds 0.3 $mode >"$out" 2>&1 ||
    { cat "$out"; echo "bench_smoke_test: signum-bench $mode failed" >&2; exit 1; }
  row=$(grep -E '^ec-p256 +2 \|' "$out") || { cat "$out"; echo "no ec-p256 row" >&2; exit 1; }
  # Four cells, each "|  <rate> <p50> <p99>" with a positive rate and no "(failed)"/"(errors!)".
  cells=$(grep -oE '\| +[0-9]+ +[0-9.]+ +[0-9.]+' <<<"$row" | wc -l)
  if [[ $cells -ne 4 ]] || grep -qE 'failed|errors' <<<"$row"; then
    cat "$out"
    echo "bench_smoke_test: expected 4 measured cells ($mode): $row" >&2
    exit 1
  fi
  grep -q '^# targets' "$out" || { cat "$out"; echo "no targets section" >&2; exit 1; }
  echo "signum-bench --pkcs11 $mode: $row"
done
