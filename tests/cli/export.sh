#!/usr/bin/env bash
# CTest cli_export: `bitvla export` and `bitvla info BUNDLE_DIR` end to end on the tiny model:
# a random-init export, and one from a run directory (checkpoints/latest followed; the checkpoint
# is made by hand from an f32 bundle, without training), bad flags refused with the flag named and
# exit status 2, runtime errors with exit status 1 and nothing left behind, an existing bundle
# refused without --force, and info reading the memory report back (text and --json) and naming a
# corrupt file.
#   Usage: tests/cli/export.sh BITVLA WORK_DIR
set -euo pipefail
bitvla=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "cli_export: $*" >&2; exit 1; }
# expect STATUS REGEX CMD...: exit status and a line of stdout+stderr
expect() {
  local want=$1 re=$2 out st
  shift 2
  set +e
  out=$("$@" 2>&1)
  st=$?
  set -e
  [[ $st -eq $want ]] || fail "'$*' exited $st, expected $want: $out"
  grep -Eq -- "$re" <<< "$out" || fail "'$*': output does not match '$re': $out"
}
printf '{"version": "1.0"}\n' > "$work/tokenizer.json"
printf '{"synth_task": {"action": {}}}\n' > "$work/stats.json"
rnd=(--config tiny --random-init 3 --tokenizer "$work/tokenizer.json" --statistics "$work/stats.json")

# a random-init bundle, the memory report printed
expect 0 "^  llm lm_head +dropped +0 +0 +0 B +49152$" "$bitvla" export "${rnd[@]}" --out "$work/b1"
for f in model.safetensors config.json tokenizer.json dataset_statistics.json memory_report.json manifest.json; do
  [[ -s "$work/b1/$f" ]] || fail "bundle lacks $f"
done
grep -q '"random_init_seed": 3' "$work/b1/manifest.json" || fail "manifest does not name the seed"
grep -q '"quant_method": "bitnet"' "$work/b1/config.json" || fail "config.json lacks quantization_config"
# info reads it back
expect 0 "^bitvla info: bundle .*/b1: layout hf, dtype bf16, dataset synth_task, [0-9]+ tensors" "$bitvla" info "$work/b1"
expect 0 "deployable weights: [0-9.]+ kB; the paper reports 1.400 GB" "$bitvla" info "$work/b1"
expect 0 '"layout": "hf",' "$bitvla" info "$work/b1" --json
"$bitvla" info "$work/b1" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); r=d["memory_report"]; assert r["dropped_params"]==49152 and len(r["modules"])==9, r' \
  || fail "info --json"
# an existing bundle: refused, then replaced with --force
expect 1 "already holds a bundle .*use --force" "$bitvla" export "${rnd[@]}" --out "$work/b1" --format tq5
expect 0 "layout tq5" "$bitvla" export "${rnd[@]}" --out "$work/b1" --format tq5 --force --dtype f32
expect 0 "layout tq5, dtype f32" "$bitvla" info "$work/b1"
# from a run directory: its checkpoints/latest (a checkpoint made of a bundle's config, tokenizer
# and statistics and the fp32 weights bitvla writes: here the f32 bundle is not a checkpoint, so
# build one by hand)
ck="$work/run/checkpoints/step-00000001"
mkdir -p "$ck"
"$bitvla" export "${rnd[@]}" --out "$work/b32" --dtype f32 --keep-lm-head --format tq5 > /dev/null 2>&1
cp "$work/b32/config.json" "$work/b32/tokenizer.json" "$work/b32/dataset_statistics.json" "$ck/"
python3 - "$work/b32/model.safetensors" "$ck/model.safetensors" <<'PY' || fail "could not make a checkpoint"
# the f32 tensors as they are; the TQ5 ternary ones are not fp32 masters: replace them by zeros of
# their logical shape (read from the TQ5 header), which is what a checkpoint would hold
import json, struct, sys
src, dst = sys.argv[1:]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); data = b[8 + n:]
meta = h.pop("__metadata__")
out, blobs, off = {}, [], 0
for k, v in h.items():
    s, e = v["data_offsets"]; x = data[s:e]
    if v["dtype"] == "U8":
        rows, cols = struct.unpack("<QQ", x[8:24]); x = bytes(4 * rows * cols); shape = [rows, cols]
    else:
        shape = v["shape"]
    out[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(x)]}; blobs.append(x); off += len(x)
hj = json.dumps(out).encode(); hj += b" " * (-len(hj) % 8)
open(dst, "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
PY
printf '{"step": 1, "epoch": 0, "batch": 1, "skipped": 0, "nonfinite_in_row": 0, "samples": 8, "seed": 1, "data_seed": 0, "model_seed": 0, "version": 2}\n' \
  > "$ck/trainer_state.json"
ln -s step-00000001 "$work/run/checkpoints/latest"
expect 0 "^exported .*/run/checkpoints/step-00000001 to .*/b2" "$bitvla" export "$work/run" --out "$work/b2" --format tq5
grep -q '"checkpoint": ".*/run/checkpoints/step-00000001"' "$work/b2/manifest.json" || fail "manifest does not name the checkpoint"
grep -q '"step": 1,' "$work/b2/manifest.json" || fail "manifest does not give the step"

# usage errors: exit 2, the flag and the expected value named
expect 0 "^usage: bitvla export CHECKPOINT" "$bitvla" export --help
expect 2 "--format expects hf, tq5 or i2s, got 'q4'" "$bitvla" export "$work/run" --out "$work/x" --format q4
expect 2 "--dtype expects bf16 or f32, got 'fp16'" "$bitvla" export "$work/run" --out "$work/x" --dtype fp16
expect 2 "--out BUNDLE_DIR is required" "$bitvla" export "$work/run"
expect 2 "--out needs a value" "$bitvla" export "$work/run" --out
expect 2 "unknown option '--frob'" "$bitvla" export "$work/run" --out "$work/x" --frob
expect 2 "--random-init expects an integer" "$bitvla" export --config tiny --random-init x --out "$work/x"
expect 2 "--random-init needs --config" "$bitvla" export --random-init 1 --out "$work/x"
expect 2 "give a CHECKPOINT or --random-init SEED, not both" "$bitvla" export "$work/run" "${rnd[@]}" --out "$work/x"
expect 2 "expected one CHECKPOINT" "$bitvla" export a b --out "$work/x"
# runtime errors: exit 1, the file or tensor named, nothing written
expect 1 "/nonexistent: not a directory" "$bitvla" export /nonexistent --out "$work/x"
expect 0 "24 ternary weight\(s\) stored as TQ5: I2_S holds rows of whole 128-code blocks only" \
  "$bitvla" export "${rnd[@]}" --out "$work/x" --format i2s
rm -rf "$work/x"
[[ ! -e "$work/x" ]] || fail "a failed export left $work/x"
ls -a "$work" | grep -q '^\.x\.tmp' && fail "a failed export left a temporary"
expect 1 "nope.json: tokenizer not found" "$bitvla" export --config tiny --random-init 1 --tokenizer "$work/nope.json" \
  --statistics "$work/stats.json" --out "$work/x"
# info: a corrupt bundle is named; a directory that is no bundle is refused
printf 'X' | dd of="$work/b1/model.safetensors" bs=1 seek=5000 conv=notrunc 2> /dev/null
expect 1 "model.safetensors: CRC-32C 0x[0-9a-f]{8} but manifest.json says 0x[0-9a-f]{8}" "$bitvla" info "$work/b1"
expect 1 "not a bundle" "$bitvla" info "$work"
echo "cli_export: ok"
