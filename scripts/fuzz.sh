#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target in fuzz/ for FUZZ_SECONDS (default 60) each, one after
# the other, starting from the committed seeds (fuzz/seeds/<target>, captured from a real HAProxy
# and Docker engine by fuzz/capture-seeds.sh) plus the corpus earlier runs grew
# (target/fuzz-corpus/<target>), and writes executions, coverage and findings to docs/fuzzing.md.
#
# Toolchain: nightly when rustup has it (FUZZ_TOOLCHAIN=nightly), else the stable compiler with
# RUSTC_BOOTSTRAP=1 (accepts the -Z flags cargo-fuzz passes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^haproxy-drain-fuzz$')}
DOC=$ROOT/docs/fuzzing.md
LOGS=$ROOT/target/fuzz-logs
export CARGO_TARGET_DIR=$ROOT/target/fuzz

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if [ -z "${FUZZ_TOOLCHAIN:-}" ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then FUZZ_TOOLCHAIN=nightly; else FUZZ_TOOLCHAIN=stable; fi
fi
FUZZ=(cargo "+$FUZZ_TOOLCHAIN" fuzz)
[ "$FUZZ_TOOLCHAIN" = nightly ] || export RUSTC_BOOTSTRAP=1
# ASan needs its runtime from the toolchain; FUZZ_SANITIZER=none runs without it.
SANITIZER=${FUZZ_SANITIZER:-address}
toolchain="$(rustc "+$FUZZ_TOOLCHAIN" --version) (sanitizer: $SANITIZER${RUSTC_BOOTSTRAP:+, RUSTC_BOOTSTRAP=1})"

mkdir -p "$LOGS"
(cd fuzz && "${FUZZ[@]}" build -O --sanitizer "$SANITIZER")

rows=""
findings=""
for target in $TARGETS; do
  corpus=$ROOT/target/fuzz-corpus/$target
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  log=$LOGS/$target.log
  echo "fuzzing $target for ${SECONDS_PER_TARGET}s"
  set +e
  # Inputs that once crashed (fuzz/regressions/<target>) are replayed by every run.
  extra=(); [ -d "fuzz/regressions/$target" ] && extra=("regressions/$target")
  (cd fuzz && "${FUZZ[@]}" run -O --sanitizer "$SANITIZER" "$target" "$corpus" "seeds/$target" "${extra[@]}" -- \
     -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -max_len=65536 -timeout=10 \
     -rss_limit_mb=2048 -artifact_prefix="$ROOT/fuzz/artifacts/$target/") >"$log" 2>&1
  status=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  seeds=$(find "fuzz/seeds/$target" -type f | wc -l)
  crashes=$(grep -cE '^==[0-9]+== ?ERROR|^SUMMARY: libFuzzer|deadly signal|panicked at' "$log" || true)
  verdict="none"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    verdict="**exit $status**, see target/fuzz-logs/$target.log and fuzz/artifacts/$target/"
    findings+="- \`$target\`: $(grep -m1 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log" | sed 's/`//g')"$'\n'
  fi
  rows+="| \`$target\` | ${SECONDS_PER_TARGET} s | ${execs:-?} | ${per_sec:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} ($seeds seeds) | $verdict |"$'\n'
done

{
  sed '/^<!-- fuzz-results -->$/,$d' "$DOC"
  echo "<!-- fuzz-results -->"
  echo "## Last run"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`make fuzz FUZZ_SECONDS=$SECONDS_PER_TARGET\`, $toolchain, $(nproc) cores (shared)."
  echo
  echo "| target | time | executions | exec/s | cov | ft | corpus (units/size) | findings |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  if [ -n "$findings" ]; then echo "Findings:"; echo; printf '%s' "$findings"; else echo "Findings: no crash, panic, timeout or out-of-memory in this run."; fi
} > "$DOC.new"
mv "$DOC.new" "$DOC"
echo "results written to $DOC"
