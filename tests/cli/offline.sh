#!/usr/bin/env bash
# CTest cli_eval_offline: `bitvla eval offline` end to end on the tiny policy that cli_eval_policy
# (tests/cli/closed_loop.sh, this test's fixture) trained, validated and exported into WORK_DIR
# (the metrics themselves are unit-tested in tests/test_action_metrics.c):
#   1. the checkpoint on the first validation.batches (2) batches of micro_batch (2) held-out
#      samples gives the trainer's last val_l1 and val_gripper_acc, bit for bit: both normalise the
#      held-out data with the training data's statistics (the policy's), not its own, which differ;
#      with --shard-statistics (its own) the figures differ, with a note;
#   2. the checkpoint and its f32 bundle on every held-out sample: the same figures up to float
#      rounding, the documented JSON fields and table rows, every sample counted once, per task;
#   3. a policy whose action_dim is not the shards' is refused naming the files, both dimensions.
#   Usage: tests/cli/offline.sh BITVLA WORK_DIR
set -euo pipefail
bitvla=$1 work=$2
out=$work/offline
rm -rf "$out"
mkdir -p "$out"
# passive: OpenMP threads spinning at barriers on cores shared with other tests slow a tiny forward 10x
export BV_PROGRESS=0 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
fail() { echo "cli_eval_offline: $*" >&2; exit 1; }
ckpt=$work/run/checkpoints/latest val=$work/data/val
[[ -d $ckpt && -d $work/bundle && -f $work/c6.json ]] || fail "no trained policy in $work (run cli_eval_policy first)"

# 1. the trainer's validation
"$bitvla" eval offline "$work/run" --shards "$val" --batches 2 --batch-size 2 --json "$out/val.json" \
  > "$out/val.txt" 2>&1 || fail "eval offline --batches 2: $(cat "$out/val.txt")"
! grep -q "note:" "$out/val.txt" || fail "a note with the policy's statistics: $(cat "$out/val.txt")"
"$bitvla" eval offline "$work/run" --shards "$val" --batches 2 --batch-size 2 --shard-statistics \
  --json "$out/own.json" > "$out/own.txt" 2>&1 || fail "eval offline --shard-statistics: $(cat "$out/own.txt")"
grep -q "note: normalised with the statistics of $val (--shard-statistics), which are not the policy's" "$out/own.txt" ||
  fail "--shard-statistics: no note: $(cat "$out/own.txt")"
python3 - "$work/run/metrics.jsonl" "$out/val.json" "$out/own.json" "$ckpt" "$val" <<'EOF' ||
import json, os, sys
val = [r for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "val"]
assert [r["step"] for r in val] == [0, 2], val
e, own = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
assert e["samples"] == 4 and e["batches"] == 2, e
assert e["l1"] == val[-1]["val_l1"], (e["l1"], val[-1]["val_l1"])
assert e["gripper_accuracy"] == val[-1]["val_gripper_acc"], (e["gripper_accuracy"], val[-1]["val_gripper_acc"])
assert e["statistics"] == "policy" and e["statistics_match_policy"] is False, e
assert os.path.samefile(e["statistics_path"], os.path.join(sys.argv[4], "dataset_statistics.json")), e
assert own["statistics"] == "shards" and own["statistics_match_policy"] is False, own
assert own["statistics_path"] == os.path.join(sys.argv[5], "dataset_statistics.json"), own
assert own["samples"] == 4 and own["l1"] != e["l1"], (own["l1"], e["l1"])
EOF
  fail "not the trainer's validation figures"

# 2. every sample: the checkpoint and its f32 bundle (exported by cli_eval_policy)
for p in ckpt bundle; do
  src=$ckpt
  [[ $p == bundle ]] && src=$work/bundle
  "$bitvla" eval offline "$src" --shards "$val" --json "$out/$p.json" > "$out/$p.txt" 2>&1 ||
    fail "eval offline of the $p: $(cat "$out/$p.txt")"
done
cat "$out/bundle.txt"
grep -Eq "^ +[0-9]+ +[0-9]+\.[0-9]{4} +[0-9.]+%( +[0-9]+\.[0-9]{4}){7}  all$" "$out/ckpt.txt" ||
  fail "no overall row: $(cat "$out/ckpt.txt")"
grep -q "mean |error| per dimension in robot units" "$out/ckpt.txt" || fail "no robot-unit table"
python3 - "$out/ckpt.json" "$out/bundle.json" <<'EOF' || fail "the JSON checks failed"
import json, math, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert list(a)[:2] == ["l1", "gripper_accuracy"], list(a)[:2]
for k in ("samples", "dim_l1", "dim_l1_unnormalized", "tasks", "shard_samples", "batches", "policy"): assert k in a, k
assert a["samples"] == a["shard_samples"] > 0 and a["action_dim"] == 7 and a["gripper_dim"] == 6, a
assert len(a["dim_l1"]) == 7 and len(a["dim_l1_unnormalized"]) == 7, a
assert 0 <= a["gripper_accuracy"] <= 1 and a["gripper_steps"] == 8 * a["samples"], a
assert sum(t["samples"] for t in a["tasks"]) == a["samples"] and a["tasks"][0]["instruction"], a["tasks"]
assert abs(a["l1"] - sum(a["dim_l1"]) / 7) < 1e-6, (a["l1"], a["dim_l1"])
assert "checkpoint" in a["policy"] and "bundle" in b["policy"], (a["policy"], b["policy"])
def close(x, y, what):
    assert math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6), (what, x, y)
close(a["l1"], b["l1"], "l1")
for x, y in zip(a["dim_l1"] + a["dim_l1_unnormalized"], b["dim_l1"] + b["dim_l1_unnormalized"]): close(x, y, "dims")
assert abs(a["gripper_correct"] - b["gripper_correct"]) <= 1, (a["gripper_correct"], b["gripper_correct"])
assert [t["instruction"] for t in a["tasks"]] == [t["instruction"] for t in b["tasks"]]
for s, t in zip(a["tasks"], b["tasks"]): close(s["l1"], t["l1"], "task l1")
EOF

# 3. a 6-d policy (cli_eval_policy's random-weight config and statistics) on 7-d shards
set +e
msg=$("$bitvla" eval offline --config "$work/c6.json" --random-init 1 --tokenizer "$ckpt/tokenizer.json" \
  --statistics "$work/s6.json" --shards "$val" 2>&1)
st=$?
set -e
echo "$msg"
[[ $st -eq 1 ]] || fail "a 6-d policy: exit status $st, expected 1: $msg"
grep -q "$work/s6.json: statistics for 6 action and 8 proprio dimensions, but $val/manifest.json has 'action_dim' 7 and 'proprio_dim' 8" \
  <<< "$msg" || fail "a 6-d policy: not the expected message: $msg"
# the same with the shards' own statistics: the policy's dimensions named
set +e
msg=$("$bitvla" eval offline --config "$work/c6.json" --random-init 1 --tokenizer "$ckpt/tokenizer.json" \
  --statistics "$work/s6.json" --shards "$val" --shard-statistics 2>&1)
st=$?
set -e
[[ $st -eq 1 ]] || fail "a 6-d policy, --shard-statistics: exit status $st, expected 1: $msg"
grep -q "$val/manifest.json: 'action_dim' 7 and 'proprio_dim' 8, but the policy $work/c6.json takes action_dim 6 and state_dim 8" \
  <<< "$msg" || fail "a 6-d policy, --shard-statistics: not the expected message: $msg"
echo "cli_eval_offline: passed"
