#!/usr/bin/env bash
# The training demo (README, docs/training.md): a byte-level RetNet learns
# the GNU licences every Debian system has (/usr/share/common-licenses,
# base-files; their terms allow verbatim copies), then writes text.
# Usage: scripts/train_demo.sh [STEPS] (default 600); run after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-600}"
export POCL_DEVICES="${POCL_DEVICES:-pthread}"
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${TMPDIR:-/tmp}/retcl-pocl-cache}"
mkdir -p "$POCL_CACHE_DIR"
work="${DEMO_DIR:-demo}"
mkdir -p "$work"
licenses=/usr/share/common-licenses
cat "$licenses"/{GPL-1,GPL-2,GPL-3,LGPL-2,LGPL-2.1,LGPL-3} >"$work/licenses.txt"
retcl=./build/tools/retcl
"$retcl" init-model --out "$work/byte-model" --embed-dim 128 --heads 2 \
  --ffn-dim 256 --layers 2 --vocab 256 --chunk 64 >/dev/null
"$retcl" train --model "$work/byte-model" --data "$work/licenses.txt" \
  --steps "$steps" --batch 8 --seq 128 --log-every 50 --eval-every 100 \
  --out "$work/byte-trained"
"$retcl" generate --model "$work/byte-trained" --text "This License " \
  --max-new 200 --temperature 0.5
