#!/usr/bin/env bash
# CTest cli_train: `bitvla train` end to end on a small built-in-task run (the data made by the
# recipe's synth section), stopped at step 4, resumed to step 6, then plotted; a new run into the
# same directory is refused, and the checkpoint layout is what docs/training.md says.
#   Usage: tests/cli/train.sh BITVLA RECIPE WORK_DIR
set -euo pipefail
bitvla=$1 recipe=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
export BV_PROGRESS=0
sets=(--set "data.shards=$work/data/train" --set "data.val_shards=$work/data/val"
      --set "data.synth.rlds=$work/data/rlds" --set "tokenizer=$work/data/tokenizer.json"
      --set data.synth.episodes=4 --set data.synth.val_episodes=2 --set data.synth.image_size=32
      --set steps=6 --set schedule.warmup_steps=2 --set validation.every=3 --set validation.batches=1
      --set checkpoint.every=2 --set checkpoint.keep=2)
fail() { echo "cli_train: $*" >&2; exit 1; }
"$bitvla" train "$recipe" --out "$work/run" "${sets[@]}" --stop-at 4 > "$work/out1.txt"
grep -q "^trained 4 steps" "$work/out1.txt" || fail "first part: $(cat "$work/out1.txt")"
"$bitvla" train --resume "$work/run" > "$work/out2.txt"
grep -q "^trained 6 steps" "$work/out2.txt" || fail "resume: $(cat "$work/out2.txt")"
ck="$work/run/checkpoints"
[[ "$(readlink "$ck/latest")" == step-00000006 ]] || fail "latest is $(readlink "$ck/latest")"
for f in model.safetensors optimizer.safetensors trainer_state.json recipe.json config.json \
         dataset_statistics.json tokenizer.json; do
  [[ -s "$ck/step-00000006/$f" ]] || fail "checkpoint lacks $f"
done
[[ ! -e "$ck/step-00000002" ]] || fail "keep 2: step 2 was not deleted"
n=$(grep -c '"kind": "train"' "$work/run/metrics.jsonl")
[[ $n -eq 6 ]] || fail "metrics.jsonl has $n train records, expected 6"
ls "$work/run"/events.out.tfevents.* > /dev/null || fail "no TensorBoard event file"
"$bitvla" plot "$work/run" > /dev/null
[[ -s "$work/run/plots/training.png" ]] || fail "no plot"
# the checkpoint loads in bitvla forward's loader (weights by HF name)
"$bitvla" info --config "$ck/latest/config.json" > /dev/null || fail "checkpoint config does not load"
# a new run into a used directory is refused, naming it
if out=$("$bitvla" train "$recipe" --out "$work/run" "${sets[@]}" 2>&1); then fail "reused a run directory"; fi
grep -q "is not empty" <<< "$out" || fail "unexpected message: $out"
echo "cli_train: ok"
