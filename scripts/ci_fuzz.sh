#!/usr/bin/env bash
# Fuzz the input parsers (docs/reliability.md): builds the libFuzzer
# harnesses fuzz/fuzz_{safetensors,config}.c with clang, ASan and UBSan
# (fuzz/build.sh), replays every file of fuzz/regressions/ and of the seed
# corpus, then fuzzes each harness for FUZZ_SECONDS (default 30) from a
# scratch copy of its seed corpus (the committed corpus never grows here).
# Fails on any crash, leak, timeout, out-of-memory or sanitizer report; a
# failing input is kept under $FUZZ_BUILD_DIR/artifacts/ (turn it into a
# regression: fuzz/regressions/README.md).
#
#   scripts/ci_fuzz.sh                      # 30 s per harness
#   FUZZ_SECONDS=600 scripts/ci_fuzz.sh     # a longer session
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
out="${FUZZ_BUILD_DIR:-build-fuzz}"
harnesses=(safetensors config)

fuzz/build.sh "$out"

work="$(mktemp -d "${TMPDIR:-/tmp}/retcl-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
artifacts="$out/artifacts"
mkdir -p "$artifacts"

# Every report is fatal and every leak is ours: the harnesses link no
# OpenCL implementation, only the parsers, cJSON and libc.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
unset LSAN_OPTIONS

# Anything a sanitizer or libFuzzer says that is a finding.
# (A broken harness check prints "fuzz_<name>: file:line: cond" and aborts,
# which libFuzzer reports as a deadly signal.)
findings='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'

status=0
summary=()
for h in "${harnesses[@]}"; do
  bin="$out/fuzz_$h"
  log="$work/$h.log"

  # 1. Replay: each regression and each seed, once.
  inputs=()
  for f in fuzz/regressions/"$h"/* fuzz/corpus/"$h"/*; do
    [ -f "$f" ] && [ "$(basename "$f")" != README.md ] && inputs+=("$f")
  done
  if ! "$bin" -runs=1 "${inputs[@]}" >"$log.replay" 2>&1 ||
      grep -Eq "$findings" "$log.replay"; then
    echo "ci_fuzz: fuzz_$h fails on a committed input:" >&2
    grep -E "Running:|^fuzz_[a-z]+: |$findings" "$log.replay" | tail -40 >&2
    status=1
    continue
  fi
  echo "ci_fuzz: fuzz_$h replayed ${#inputs[@]} committed inputs cleanly"

  # 2. Fuzz from a scratch copy of the seed corpus.
  mkdir -p "$work/corpus-$h"
  cp fuzz/corpus/"$h"/* "$work/corpus-$h/"
  rc=0
  "$bin" "$work/corpus-$h" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=16384 -dict="fuzz/$h.dict" -print_final_stats=1 \
    -artifact_prefix="$artifacts/$h-" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  final="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$final")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$final")"
  corp="$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$final")"
  line="fuzz_$h: ${seconds} s, ${execs:-?} executions (${rate:-?}/s), cov ${cov:-?} edges, ft ${ft:-?}, corpus ${corp:-?}"
  summary+=("$line")
  if [ "$rc" -ne 0 ] || grep -Eq "$findings" "$log"; then
    echo "ci_fuzz: fuzz_$h FAILED (exit $rc):" >&2
    grep -E -A40 "$findings" "$log" | head -80 >&2
    ls -l "$artifacts"/"$h"-* 2>/dev/null >&2 || true
    status=1
  else
    echo "ci_fuzz: $line"
  fi
done

echo "ci_fuzz summary:"
for line in "${summary[@]}"; do echo "  $line"; done
exit "$status"
