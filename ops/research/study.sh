#!/usr/bin/env bash
# MMN as the paper ran it: Table 3 under {PyTorch Adagrad, TensorFlow Adagrad} x {pair
# effects off, on} x {domain skew as generated, uniform}, every model's learning rate chosen
# on a validation split of its training rows. Synthetic data (mmn data synth), one process.
# Usage: ops/research/study.sh OUT_DIR   (sizes from the environment, defaults below;
#        ONLY=REGEX runs only the cells whose name matches, e.g. ONLY='_pair_skew$')
# Summary: python -m ops.research.study_table OUT_DIR
set -euo pipefail
OUT=${1:?usage: ops/research/study.sh OUT_DIR}
MMN=${MMN:-mmn}
ROWS=${ROWS:-70000}
SEEDS=${SEEDS:-2}
HIDDEN=${HIDDEN:-128,64,32,32}
BUCKETS=${BUCKETS:-32768}
BATCH=${BATCH:-2048}
GRID_adagrad=${GRID_adagrad:-0.01,0.03,0.1}
GRID_adagrad_tf=${GRID_adagrad_tf:-0.03,0.3,3}
MODELS=${MODELS:-mmn,mmn_nodw,mmn_dw_norm,mmn_dw_temp,mmn_dw_clip,mmn_dw_axes,star_type,star_scen,esmm,dnn}
mkdir -p "$OUT"
synth() {  # name, then options
  local name=$1; shift
  [ -f "$OUT/$name/CriteoSearchData" ] || $MMN data synth --rows "$ROWS" --seed 0 --out "$OUT/$name" "$@"
}
synth skew_pair
synth skew_add --pair-effects 0
synth unif_pair --type-zipf 0 --scenario-zipf 0
synth unif_add --pair-effects 0 --type-zipf 0 --scenario-zipf 0
# Most informative cells first: a run cut short still has them.
for skew in skew unif; do
  for pair in pair add; do
    for opt in adagrad-tf adagrad; do
      grid_var="GRID_${opt//-/_}"
      cell="${opt}_${pair}_${skew}"
      [[ "$cell" =~ ${ONLY:-.} ]] || continue
      [ -f "$OUT/$cell.json" ] && ! grep -q '"partial": true' "$OUT/$cell.json" && continue
      echo "== $cell $(date -u +%H:%M:%S)"
      $MMN bench offline --data "$OUT/${skew}_${pair}/CriteoSearchData" --models "$MODELS" \
        --seeds "$SEEDS" --batch-size "$BATCH" --hidden "$HIDDEN" --buckets "$BUCKETS" \
        --optimizer "$opt" --lr-grid "${!grid_var}" --json "$OUT/$cell.json" > "$OUT/$cell.log" 2>&1
    done
  done
done
echo "== done $(date -u +%H:%M:%S)"
