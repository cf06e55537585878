#!/usr/bin/env bash
# CTest cli_infer: the runtime end to end on a trained tiny policy and the real LIBERO observation
# (tests/fixtures/libero_observation):
#   1. a tiny policy whose ternary in-dimensions are multiples of 128 (so every layout holds it) is
#      trained for 2 steps; `bitvla infer CHECKPOINT` (the training model: fp32 masters quantized by
#      the forward, the integer BitLinear forward that training runs on AVX-512 VNNI machines) is
#      the reference; the fp32 fake-quant forward (BV_BITLINEAR_INT=0) agrees with it within 2e-2
#      (activation codes that flip at rounding boundaries; the difference is printed);
#   2. exported as hf, tq5 and i2s with --dtype f32, each bundle's actions (packed weights, integer
#      kernels) equal the reference to 1e-4 (max abs, robot units and normalised); the default bf16
#      bundle is within the bf16 rounding of its full-precision tensors (5e-2 normalised) and its
#      difference is printed;
#      an i2s bundle of tiny, whose weights I2_S cannot hold are stored as TQ5, acts as its hf one;
#   3. the C API example (examples/act.c) runs two policies in two threads on the bundle;
#   4. `bitvla serve` answers an OFT-style request (json_numpy) with the same actions as
#      `bitvla infer`, refuses a bad one with 400 and keeps serving, and stops on SIGTERM;
#   5. errors: a corrupt bundle is refused naming the file, a bad observation naming the field,
#      bad flags with exit status 2.
#   Usage: tests/cli/infer.sh BITVLA EXAMPLE RECIPE WORK_DIR
set -euo pipefail
bitvla=$1 example=$2 recipe=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
obs=$here/../fixtures/libero_observation/observation.json
rm -rf "$work"
mkdir -p "$work"
export BV_PROGRESS=0 OMP_NUM_THREADS=2
fail() { echo "cli_infer: $*" >&2; exit 1; }
expect() { # STATUS REGEX CMD...
  local want=$1 re=$2 out st
  shift 2
  set +e
  out=$("$@" 2>&1)
  st=$?
  set -e
  [[ $st -eq $want ]] || fail "'$*' exited $st, expected $want: $out"
  grep -Eq -- "$re" <<< "$out" || fail "'$*': output does not match '$re': $out"
}
# maxdiff A.json B.json KEY: max |a - b| over the KEY arrays of two `infer --json` outputs
maxdiff() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
a, b = (json.load(open(p))[sys.argv[3]] for p in sys.argv[1:3])
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), (a, b)
print(max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x, y)))
EOF
}
below() { python3 -c "import sys; sys.exit(0 if float('$1') <= float('$2') else 1)"; }

# 1. a tiny policy every layout can hold, trained for 2 steps
printf '{"version": "1.0"}\n' > "$work/tok0.json"
printf '{"synth_task": {"action": {}}}\n' > "$work/st0.json"
"$bitvla" export --config tiny --random-init 0 --tokenizer "$work/tok0.json" --statistics "$work/st0.json" \
  --out "$work/cfg" > /dev/null
python3 - "$work/cfg/config.json" "$work/tiny128.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for k in ("quantization_config", "torch_dtype"): c.pop(k, None)
c["vision_config"].update(hidden_size=128, intermediate_size=256)
c["text_config"].update(hidden_size=128, intermediate_size=256)
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
"$bitvla" train "$recipe" --out "$work/run" --set model.config="$work/tiny128.json" \
  --set "data.shards=$work/data/train" --set "data.val_shards=$work/data/val" \
  --set "data.synth.rlds=$work/data/rlds" --set "tokenizer=$work/data/tokenizer.json" \
  --set data.synth.episodes=4 --set data.synth.val_episodes=1 --set data.synth.image_size=32 \
  --set steps=2 --set schedule.warmup_steps=1 --set validation.every=0 --set checkpoint.every=2 \
  --set micro_batch=2 --set global_batch=2 --set data.threads=1 > "$work/train.txt" 2>&1 ||
  fail "training the tiny policy: $(tail -5 "$work/train.txt")"
ckpt=$work/run/checkpoints/latest
"$bitvla" infer "$ckpt" --observation "$obs" --json > "$work/ref.json" || fail "infer on the checkpoint"
BV_BITLINEAR_INT=0 "$bitvla" infer "$ckpt" --observation "$obs" --json > "$work/fp32.json" ||
  fail "infer on the checkpoint, fp32 fake-quant forward"
d=$(maxdiff "$work/ref.json" "$work/fp32.json" normalized)
below "$d" 2e-2 || fail "the fp32 fake-quant forward differs from the integer one by $d (normalised), more than 2e-2"
echo "cli_infer: checkpoint, integer vs fp32 fake-quant BitLinear forward: max |difference| $d (normalised)"

# 2. every layout, f32: the same actions; bf16: within its rounding
for fmt in hf tq5 i2s; do
  "$bitvla" export "$ckpt" --out "$work/b-$fmt" --format "$fmt" --dtype f32 > /dev/null || fail "export --format $fmt"
  "$bitvla" infer "$work/b-$fmt" --observation "$obs" --json > "$work/$fmt.json" || fail "infer on the $fmt bundle"
  grep -q "\"source\": \"bundle ($fmt, f32)\"" "$work/$fmt.json" || fail "$fmt: $(cat "$work/$fmt.json")"
  for key in actions normalized; do
    d=$(maxdiff "$work/ref.json" "$work/$fmt.json" "$key")
    below "$d" 1e-4 || fail "$fmt bundle: $key differ from the checkpoint's by $d (max abs), more than 1e-4"
  done
  echo "cli_infer: $fmt f32 bundle vs checkpoint: max |difference| $d (normalised)"
done
# an i2s bundle of tiny stores what I2_S cannot hold (inputs of 64, 176) as TQ5: it acts as hf does
python3 - "$ckpt/config.json" "$work/tiny64.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))  # the trained policy's token ids, tiny's sizes
c["vision_config"].update(hidden_size=64, intermediate_size=128)
c["text_config"].update(hidden_size=64, intermediate_size=176)
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
rnd=(--config "$work/tiny64.json" --random-init 7 --tokenizer "$ckpt/tokenizer.json"
     --statistics "$ckpt/dataset_statistics.json" --dtype f32)
for fmt in hf i2s; do
  "$bitvla" export "${rnd[@]}" --format "$fmt" --out "$work/r-$fmt" > "$work/r-$fmt.txt" 2>&1 || fail "export tiny $fmt"
  "$bitvla" infer "$work/r-$fmt" --observation "$obs" --json > "$work/r-$fmt.json" || fail "infer on tiny $fmt"
done
grep -q "24 ternary weight(s) stored as TQ5" "$work/r-i2s.txt" || fail "tiny i2s: $(cat "$work/r-i2s.txt")"
# the training model with the same random weights acts as their bundle
"$bitvla" infer --config "$work/tiny64.json" --random-init 7 --tokenizer "$ckpt/tokenizer.json" \
  --statistics "$ckpt/dataset_statistics.json" --observation "$obs" --json > "$work/r-train.json" || fail "infer --random-init"
d=$(maxdiff "$work/r-hf.json" "$work/r-train.json" normalized)
below "$d" 1e-4 || fail "the random training model and its hf bundle differ by $d"
d=$(maxdiff "$work/r-hf.json" "$work/r-i2s.json" normalized)
below "$d" 1e-6 || fail "tiny i2s bundle (TQ5 fallbacks) acts unlike the hf one: $d"
"$bitvla" export "$ckpt" --out "$work/b-bf16" > /dev/null || fail "export (bf16)"
"$bitvla" infer "$work/b-bf16" --observation "$obs" --json > "$work/bf16.json" || fail "infer on the bf16 bundle"
d=$(maxdiff "$work/ref.json" "$work/bf16.json" normalized)
below "$d" 5e-2 || fail "bf16 bundle: normalised actions differ from the checkpoint's by $d, more than 5e-2"
echo "cli_infer: hf bf16 bundle vs checkpoint: max |difference| $d (normalised; bf16 rounding of the full-precision tensors)"
expect 0 "^task: pick up the black bowl" "$bitvla" infer "$work/b-bf16" --observation "$obs"

# 3. the C API, two policies in two threads
expect 0 "^bitvla_example_act: 2 threads x 2 chunks of 56 values" "$example" "$work/b-bf16" 2

# 4. bitvla serve: an OFT client's request answers what infer answers; a bad one is refused
"$bitvla" serve "$work/b-bf16" --port 0 --port-file "$work/port" --quiet 2> "$work/serve.txt" &
pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { kill "$pid" 2>/dev/null; fail "serve did not start: $(cat "$work/serve.txt")"; }
python3 - "$(cat "$work/port")" "$obs" "$work/bf16.json" <<'EOF' || { kill "$pid"; fail "serve: the client's checks failed"; }
import base64, http.client, json, os, struct, sys, zlib
port, obs_path, want_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def png_rgb(path):  # the fixture's 8-bit RGB PNGs, decoded with the standard library
    data = open(path, "rb").read()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype == 2, (depth, ctype)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, out, prev, bpp = zlib.decompress(idat), bytearray(), bytearray(w * 3), 3
    for y in range(h):
        f, line = raw[y * (w * 3 + 1)], bytearray(raw[y * (w * 3 + 1) + 1:(y + 1) * (w * 3 + 1)])
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return bytes(out), h, w

def arr(raw, dtype, shape):  # json_numpy's encoding
    return {"__numpy__": base64.b64encode(raw).decode(), "dtype": dtype, "shape": list(shape)}

o = json.load(open(obs_path))
d = os.path.dirname(obs_path)
full, h, w = png_rgb(os.path.join(d, o["full_image"]))
wrist, hw, ww = png_rgb(os.path.join(d, o["wrist_image"]))
body = {"full_image": arr(full, "|u1", (h, w, 3)), "wrist_image": arr(wrist, "|u1", (hw, ww, 3)),
        "state": arr(struct.pack("<8d", *o["state"]), "<f8", (8,)), "instruction": o["task_description"]}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.request("POST", "/act", json.dumps(body), {"Content-Type": "application/json"})
r = c.getresponse()
got = json.loads(r.read())
assert r.status == 200, (r.status, got)
want = json.load(open(want_path))["actions"]
acts = [struct.unpack("<7d", base64.b64decode(a["__numpy__"])) for a in got]
assert all(a["dtype"] == "<f8" and a["shape"] == [7] for a in got) and len(acts) == 8, got
diff = max(abs(u - v) for x, y in zip(acts, want) for u, v in zip(x, y))
assert diff <= 1e-6, ("serve and infer differ", diff)
body["state"] = arr(struct.pack("<7d", *o["state"][:7]), "<f8", (7,))
c.request("POST", "/act", json.dumps(body), {"Content-Type": "application/json"})
r = c.getresponse()
msg = r.read().decode()
assert r.status == 400 and "state" in msg, (r.status, msg)
body["state"] = arr(struct.pack("<8d", *o["state"]), "<f8", (8,))
c.request("POST", "/act", json.dumps(body), {"Content-Type": "application/json"})
r = c.getresponse()
assert r.status == 200 and len(json.loads(r.read())) == 8
print("cli_infer: serve answered an OFT request like infer (max |difference| %g), refused a bad one" % diff)
EOF
kill -TERM "$pid"
wait "$pid" || fail "serve exited $? after SIGTERM: $(cat "$work/serve.txt")"
grep -q "stopped by signal 15 after 2 answered, 1 refused" "$work/serve.txt" || fail "serve: $(cat "$work/serve.txt")"

# 5. errors
cp -r "$work/b-hf" "$work/bad"
printf 'X' | dd of="$work/bad/model.safetensors" bs=1 seek=4000 conv=notrunc status=none
expect 1 "model.safetensors: CRC-32C 0x[0-9a-f]+ but manifest.json says" "$bitvla" infer "$work/bad" --observation "$obs"
python3 -c "import json; o = json.load(open('$obs')); o['state'] = o['state'][:5]; o['full_image'] = '$here/../fixtures/libero_observation/full_image.png'; o['wrist_image'] = '$here/../fixtures/libero_observation/wrist_image.png'; json.dump(o, open('$work/obs5.json', 'w'))"
expect 1 "state has 5 values, expected 8" "$bitvla" infer "$work/b-hf" --observation "$work/obs5.json"
sed 's|full_image.png|none.png|' "$work/obs5.json" > "$work/obs6.json"
expect 1 "obs6.json: 'full_image': .*none.png: cannot open image" "$bitvla" infer "$work/b-hf" --observation "$work/obs6.json"
expect 2 "needs a value" "$bitvla" infer "$work/b-hf" --observation
expect 2 "unknown option '--frobnicate'" "$bitvla" infer "$work/b-hf" --frobnicate
expect 2 "--n-images" "$bitvla" infer "$work/b-hf" --observation "$obs" --n-images 3
expect 1 "neither a bundle" "$bitvla" infer "$work" --observation "$obs"
expect 2 "--port" "$bitvla" serve "$work/b-hf" --port 70000
expect 2 "--random-init needs --tokenizer" "$bitvla" infer --config tiny --random-init 1 --observation "$obs"
expect 2 "go together" "$bitvla" infer "$work/b-hf" --config tiny --random-init 1 --observation "$obs"
echo "cli_infer: ok"
