#!/bin/sh
# test_mpi_cli.sh - the `retcl-mpi` program against `retcl` on one device,
# run as a user runs them (ctest: mpi_cli_np2, mpi_cli_np3).
#
#   test_mpi_cli.sh RETCL RETCL_MPI NPY_COMPARE NP MPIEXEC [MPIEXEC FLAGS...]
#
# On a small random checkpoint (retcl init-model) and a seeded random token
# sequence (RETCL_TEST_SEED, else the clock; printed on failure):
#  - `retcl-mpi run --split heads` in every mode and `--split sequence` in
#    chunkwise (the checkpoint's chunk and another) and recurrent mode give
#    the logits of `retcl run` in the same mode: max |diff| <= 1e-5 of
#    max |logit| (npy_compare); the .npy is poisoned before each run;
#  - `--split sequence --mode parallel` fails on every rank (unsupported);
#  - `retcl-mpi generate` (greedy) prints the tokens `retcl generate` does;
#  - a bad option, a token id outside the vocabulary and a prompt too
#    short for the ranks end EVERY rank with a non-zero status, within a
#    time limit (no hang), with one message from rank 0.
# With more than 2 ranks only the cases whose outcome depends on the rank
# count run (RETCL_TEST_FULL=1: all), to keep each test near 20 s.
set -u
if [ $# -lt 5 ]; then
  echo "usage: $0 RETCL RETCL_MPI NPY_COMPARE NP MPIEXEC [FLAGS...]" >&2
  exit 2
fi
RETCL=$1
RETCL_MPI=$2
NPY_COMPARE=$3
NP=$4
shift 4
# "$@" is now the mpiexec command up to the program: mpiexec -n NP ...

SEED=${RETCL_TEST_SEED:-$(date +%s)}
TOL=1e-5
# Seconds any one mpirun may take before it counts as a hang.
LIMIT=${RETCL_TEST_MPI_LIMIT:-120}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/retcl-mpi-cli-XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT
FAILS=0
START=$(date +%s)

fail() {
  echo "FAIL: $* (seed $SEED, $NP ranks; rerun with RETCL_TEST_SEED=$SEED)" >&2
  FAILS=$((FAILS + 1))
}

# mpiexec ... retcl-mpi ARGS with a time limit; output into $DIR/out,
# $DIR/err.
mpi_run() {
  timeout "$LIMIT" "$MPIEXEC_CMD" $MPIEXEC_ARGS "$RETCL_MPI" "$@" \
    >"$DIR/out" 2>"$DIR/err"
}

MPIEXEC_CMD=$1
shift
MPIEXEC_ARGS="$*"

# ---- the checkpoint and the input ----------------------------------------
MODEL=$DIR/model
V=50
CHUNK=4
"$RETCL" init-model --out "$MODEL" --embed-dim 32 --heads 4 --ffn-dim 64 \
  --layers 2 --vocab $V --chunk $CHUNK --seed "$SEED" >"$DIR/init.out" 2>&1 ||
  {
    cat "$DIR/init.out" >&2
    fail "retcl init-model"
    exit 1
  }
# 13 to 23 tokens: not a multiple of the chunk in most draws, and more than
# (NP - 1) * CHUNK for NP <= 3.
T=$(awk -v s="$SEED" 'BEGIN { srand(s); print 13 + int(rand() * 11) }')
TOKENS=$(awk -v s="$SEED" -v n="$T" -v v=$V 'BEGIN { srand(s + 1);
  for (i = 0; i < n; ++i) printf "%s%d", (i ? "," : ""), int(rand() * v) }')
echo "seed $SEED, $NP ranks, $T tokens: $TOKENS"

# ---- run: logits against retcl run ---------------------------------------
# check_run SPLIT MODE [EXTRA OPTIONS...]
check_run() {
  split=$1
  mode=$2
  shift 2
  tag=$mode$(echo "$*" | tr -d ' -')
  ref=$DIR/ref-$tag.npy
  if [ ! -f "$ref" ]; then
    "$RETCL" run --model "$MODEL" --tokens "$TOKENS" --mode "$mode" "$@" \
      --logits "$ref" >"$DIR/ref.out" 2>&1 ||
      {
        cat "$DIR/ref.out" >&2
        fail "retcl run --mode $mode $*"
        return
      }
  fi
  got=$DIR/got-$split-$tag.npy
  printf 'poison' >"$got"
  if ! mpi_run run --model "$MODEL" --tokens "$TOKENS" --split "$split" \
    --mode "$mode" "$@" --logits "$got"; then
    cat "$DIR/out" "$DIR/err" >&2
    fail "retcl-mpi run --split $split --mode $mode $*"
    return
  fi
  if ! grep -q "ranks: *$NP, $split split" "$DIR/out"; then
    cat "$DIR/out" >&2
    fail "retcl-mpi run --split $split --mode $mode: no 'ranks: $NP' line"
  fi
  printf '%-9s %-10s %-12s ' "$split" "$mode" "$*"
  "$NPY_COMPARE" "$got" "$ref" "$TOL" ||
    fail "retcl-mpi run --split $split --mode $mode $*: logits differ"
}

# Every case with 2 ranks; with more (uneven head, FFN and chunk splits),
# those whose outcome depends on the rank count, to stay within ~30 s
# (RETCL_TEST_FULL=1: all).
FULL=${RETCL_TEST_FULL:-0}
[ "$NP" -le 2 ] && FULL=1
check_run heads chunkwise
check_run heads recurrent
[ "$FULL" = 1 ] && check_run heads parallel
[ "$FULL" = 1 ] && check_run sequence chunkwise
check_run sequence chunkwise --chunk 3
check_run sequence recurrent

# Parallel form, split by sequence: the library's UNSUPPORTED on every rank.
if [ "$FULL" != 1 ]; then
  :
elif mpi_run run --model "$MODEL" --tokens "$TOKENS" --split sequence \
  --mode parallel; then
  fail "run --split sequence --mode parallel succeeded"
elif ! grep -q "unsupported" "$DIR/err"; then
  cat "$DIR/err" >&2
  fail "run --split sequence --mode parallel: no 'unsupported' message"
fi

# ---- generate: greedy tokens against retcl generate ----------------------
"$RETCL" generate --model "$MODEL" --prompt "$TOKENS" --max-new 8 \
  >"$DIR/gen.out" 2>&1 || {
  cat "$DIR/gen.out" >&2
  fail "retcl generate"
}
want=$(grep '^tokens:' "$DIR/gen.out")
if mpi_run generate --model "$MODEL" --prompt "$TOKENS" --max-new 8; then
  got=$(grep '^tokens:' "$DIR/out")
  echo "generate: retcl     $want"
  echo "generate: retcl-mpi $got"
  [ -n "$want" ] && [ "$got" = "$want" ] ||
    fail "retcl-mpi generate printed '$got', retcl generate '$want'"
else
  cat "$DIR/out" "$DIR/err" >&2
  fail "retcl-mpi generate"
fi

# ---- errors: every rank exits non-zero, none hangs ------------------------
# Each rank runs the program under a shell that records its exit status in
# $DIR/rc.<rank> and exits 0 itself, so mpirun does not end the other ranks
# for it: every rank must end on its own.
# expect_fail WHAT NEEDLE ARGS...
expect_fail() {
  what=$1
  needle=$2
  shift 2
  rm -f "$DIR"/rc.*
  # shellcheck disable=SC2016
  timeout "$LIMIT" "$MPIEXEC_CMD" $MPIEXEC_ARGS sh -c \
    '"$0" "$@"; echo $? >"'"$DIR"'/rc.${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-${PMIX_RANK:-0}}}"' \
    "$RETCL_MPI" "$@" >"$DIR/out" 2>"$DIR/err"
  status=$?
  if [ $status -eq 124 ]; then
    fail "$what: hung (killed after $LIMIT s)"
    return
  fi
  n=0
  for f in "$DIR"/rc.*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    if [ "$(cat "$f")" = 0 ]; then
      fail "$what: rank ${f##*.} exited 0"
    fi
  done
  [ $n -eq "$NP" ] || fail "$what: $n of $NP ranks reported an exit status"
  if ! grep -q "$needle" "$DIR/err"; then
    cat "$DIR/err" >&2
    fail "$what: stderr lacks '$needle'"
  fi
  # One message, from rank 0, not one per rank.
  lines=$(grep -c "$needle" "$DIR/err")
  [ "$lines" -eq 1 ] || {
    cat "$DIR/err" >&2
    fail "$what: '$needle' printed $lines times"
  }
  echo "error:    $what: every rank exited non-zero ($(head -n 1 "$DIR/err"))"
}

if [ "$FULL" = 1 ]; then
  expect_fail "bad --split" "split is sequence or heads" \
    run --model "$MODEL" --tokens "$TOKENS" --split diagonal
  expect_fail "generate without --max-new" "max-new N is required" \
    generate --model "$MODEL" --prompt "$TOKENS"
fi
expect_fail "token id outside the vocabulary" "not below the vocabulary" \
  run --model "$MODEL" --tokens "1,2,$V" --split heads
if [ "$NP" -gt 1 ]; then
  expect_fail "a prompt too short for the ranks" "prompt has 2" \
    generate --model "$MODEL" --prompt 1,2 --max-new 2
  expect_fail "a sequence too short for the ranks" "2 tokens make" \
    run --model "$MODEL" --tokens 1,2 --split sequence
fi

echo "$((FAILS)) failure(s), $(($(date +%s) - START)) s"
[ $FAILS -eq 0 ]
