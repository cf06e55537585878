#!/usr/bin/env bash
# CTest cli_eval_policy: `bitvla eval closed-loop` on a policy end to end (the agents and the
# statistics are unit-tested in tests/test_closed_loop.c):
#   1. a tiny policy is trained for 2 steps on a few synth episodes (as tests/cli/infer.sh),
#      validated at steps 0 and 2 on 2 held-out batches;
#   2. its checkpoint is evaluated on 2 short episodes (2 chunks each) with 1 and with 2 threads,
#      and its f32 bundle with 1: the JSON has the documented fields and the per-episode outcomes agree;
#      the 2-thread run also has --baselines and --media: the policy's episodes re-run with rendering
#      end as evaluated (the policy is deterministic) and the pictures are written;
#   3. a checkpoint whose action_dim is not the env's is refused naming both dimensions.
#   The run, its bundle and the 6-d config and statistics stay in WORK_DIR for cli_eval_offline
#   (tests/cli/offline.sh), which needs this test as its fixture.
#   Usage: tests/cli/closed_loop.sh BITVLA RECIPE WORK_DIR
set -euo pipefail
bitvla=$1 recipe=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
# passive: OpenMP threads spinning at barriers on cores shared with other tests slow a tiny forward 10x
export BV_PROGRESS=0 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
fail() { echo "cli_eval_policy: $*" >&2; exit 1; }

"$bitvla" train "$recipe" --out "$work/run" \
  --set "data.shards=$work/data/train" --set "data.val_shards=$work/data/val" \
  --set "data.synth.rlds=$work/data/rlds" --set "tokenizer=$work/data/tokenizer.json" \
  --set data.synth.episodes=4 --set data.synth.val_episodes=1 --set data.synth.image_size=32 \
  --set steps=2 --set schedule.warmup_steps=1 --set validation.every=2 --set validation.batches=2 \
  --set checkpoint.every=2 \
  --set micro_batch=2 --set global_batch=2 --set data.threads=1 > "$work/train.txt" 2>&1 ||
  fail "training the tiny policy: $(tail -5 "$work/train.txt")"
ckpt=$work/run/checkpoints/latest

media=()
for t in 1 2; do
  [[ $t -eq 2 ]] && media=(--baselines --media "$work/media")
  "$bitvla" eval closed-loop "$ckpt" --env synth --episodes 2 --tasks 0 --image-size 64 --max-steps 16 \
    --threads $t --json "$work/eval$t.json" "${media[@]}" > "$work/eval$t.txt" 2>&1 ||
    fail "eval, $t threads: $(cat "$work/eval$t.txt")"
done
cat "$work/eval2.txt"
grep -Eq "^all +[0-9]+/2 .*\| +[0-9]+/2 .*\| +[0-9]+/2 " "$work/eval2.txt" ||
  fail "no overall row with the policy, random and expert: $(cat "$work/eval2.txt")"
for f in success.png task-00-strip.png task-00-rollout.png; do
  [[ -s $work/media/$f ]] || fail "--media wrote no $f: $(ls "$work/media")"
done
python3 - "$work/eval1.json" "$work/eval2.json" <<'EOF' || fail "the JSON checks failed"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("success_rate", "ci95", "episodes", "tasks", "outcomes"): assert k in a, k
assert 0 <= a["success_rate"] <= 1 and a["episodes"] == 2 and a["agent"] == "policy", a
assert len(a["tasks"]) == 1 and a["tasks"][0]["task"] == 0 and a["tasks"][0]["episodes"] == 2, a["tasks"]
for e in a["outcomes"]:  # 2 chunks of 8 at most: 16 steps, or fewer on a success
    assert 1 <= e["steps"] <= 16, e
assert a["outcomes"] == b["outcomes"], (a["outcomes"], b["outcomes"])
EOF

# its f32 bundle gives the same outcomes (the bundle acts as the checkpoint: tests/cli/infer.sh)
"$bitvla" export "$ckpt" --out "$work/bundle" --dtype f32 > /dev/null || fail "export"
"$bitvla" eval closed-loop "$work/bundle" --env synth --episodes 2 --tasks 0 --image-size 64 --max-steps 16 \
  --json "$work/evalb.json" > "$work/evalb.txt" 2>&1 || fail "eval of the bundle: $(cat "$work/evalb.txt")"
python3 - "$work/eval1.json" "$work/evalb.json" <<'EOF' || fail "checkpoint and bundle outcomes differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["outcomes"] == b["outcomes"], (a["outcomes"], b["outcomes"])
assert "bundle" in b["source"], b["source"]
EOF

# 3. a policy for another robot (6-d actions, its statistics 6-d too) is refused naming both sizes
python3 - "$ckpt/config.json" "$ckpt/dataset_statistics.json" "$work/c6.json" "$work/s6.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["action_dim"] = 6; json.dump(c, open(sys.argv[3], "w"))
s = json.load(open(sys.argv[2]))
for v in s.values():
    for k, x in v["action"].items(): v["action"][k] = x[:6]
json.dump(s, open(sys.argv[4], "w"))
EOF
set +e
out=$("$bitvla" eval closed-loop --config "$work/c6.json" --random-init 1 --tokenizer "$ckpt/tokenizer.json" \
  --statistics "$work/s6.json" --env synth --episodes 1 --tasks 0 --image-size 64 2>&1)
st=$?
set -e
echo "$out"
[[ $st -eq 1 ]] || fail "a 6-d policy: exit status $st, expected 1: $out"
grep -q "action_dim 6 and state_dim 8 do not match the synth env's action_dim 7 and state_dim 8" <<< "$out" ||
  fail "a 6-d policy: not the expected message: $out"
# and the random-weight 7-d model runs through the same code
"$bitvla" eval closed-loop --config "$ckpt/config.json" --random-init 1 --tokenizer "$ckpt/tokenizer.json" \
  --statistics "$ckpt/dataset_statistics.json" --env synth --episodes 1 --tasks 0 --image-size 64 --max-steps 8 \
  > "$work/rnd.txt" 2>&1 || fail "eval of a random-weight model: $(cat "$work/rnd.txt")"
echo "cli_eval_policy: passed"
