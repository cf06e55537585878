#!/usr/bin/env bash
# CTest cli_eval_mpi: `bitvla eval closed-loop` with its episodes shared out over MPI ranks
# (eval/closed_loop.h, docs/evaluation.md "MPI"), on the agents that need no training:
#   1. the scripted expert with action noise and a step limit it sometimes misses (a mix of
#      successes and failures) and, through --baselines, the random agent: 3 tasks x 5 episodes
#      (shares of 8 and 7 on 2 ranks, 5 each on 3) in a plain process, under -np 2 with 2 threads
#      per rank and under -np 3: the JSON files identical but for the timings; rank 0 alone prints
#      the table;
#   2. --media under -np 2 (the same run): rank 0 re-runs the episodes shown and writes the pictures;
#   3. failures exit non-zero with one message naming the rank: a policy path that does not exist
#      (every rank fails alike: rank 0 says it), rank 1 failing after loading its agent and in the
#      third episode of its share (BV_EVAL_FAULT, closed_loop.h's test hook).
# Ranks are oversubscribed on the machine's cores with one OpenMP thread each.
#   Usage: tests/cli/eval_mpi.sh BITVLA WORK_DIR
set -euo pipefail
bitvla=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
export BV_PROGRESS=0 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
# under ASan: full unwinding, so tests/lsan.supp sees Open MPI's frames in what it keeps past
# MPI_Finalize
if [[ -n "${ASAN_OPTIONS:-}" ]]; then export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"; fi
fail() { echo "cli_eval_mpi: $*" >&2; exit 1; }
args=(--agent expert --expert-noise 0.3 --max-steps 115 --baselines --env synth --episodes 5 --tasks 0,3,5
      --image-size 64)

# 1. the same outcomes and numbers for any rank and thread count
"$bitvla" eval closed-loop "${args[@]}" --json "$work/np0.json" > "$work/np0.txt" 2>&1 ||
  fail "one process: $(cat "$work/np0.txt")"
for run in "2 2 --media $work/media" "3 1"; do
  read -r np threads more <<< "$run"
  # shellcheck disable=SC2086 # more: the flags, split
  mpirun -np "$np" "$bitvla" eval closed-loop "${args[@]}" --threads "$threads" --json "$work/np$np.json" $more \
    > "$work/np$np.txt" 2>&1 || fail "np $np: $(cat "$work/np$np.txt")"
  [[ "$(grep -c '^all ' "$work/np$np.txt")" -eq 1 ]] || fail "np $np: not one table: $(cat "$work/np$np.txt")"
done
grep -q "3 ranks x 1 thread," "$work/np3.txt" || fail "np 3: the header does not say the ranks: $(head -1 "$work/np3.txt")"
python3 - "$work"/np{0,2,3}.json <<'EOF' || fail "the JSON differs between rank counts"
import json, sys
def untimed(x):  # every key but the wall times
    if isinstance(x, dict): return {k: untimed(v) for k, v in x.items() if k != "seconds"}
    return x
ref = untimed(json.load(open(sys.argv[1])))
wins = sum(e["success"] for e in ref["outcomes"])
assert 0 < wins < 15 and len(ref["outcomes"]) == 15, f"the expert won {wins} of {len(ref['outcomes'])}: no mix"
assert len(ref["baselines"]["random"]["outcomes"]) == 15, ref["baselines"].keys()
for p in sys.argv[2:]:
    got = untimed(json.load(open(p)))
    for agent, a, b in (("expert", ref, got), ("random", ref["baselines"]["random"], got["baselines"]["random"])):
        for i, (x, y) in enumerate(zip(a["outcomes"], b["outcomes"])):
            if x != y: sys.exit(f"{p}: {agent} outcome {i}: {y}, one process: {x}")
    if got != ref: sys.exit(f"{p}: differs from one process's {sys.argv[1]} beyond the outcomes")
EOF

# 2. --media (np 2): rank 0 re-ran the episodes shown and wrote the pictures
for f in success.png task-00-strip.png task-03-strip.png task-05-rollout.png; do
  [[ -s $work/media/$f ]] || fail "--media wrote no $f: $(ls "$work/media")"
done
[[ "$(grep -c '^media: ' "$work/np2.txt")" -eq 1 ]] || fail "np 2: not one media line: $(cat "$work/np2.txt")"

# 3. failures: exit 1, one message, naming the rank
expect_fail() { # NAME PATTERN ENV... -- ARGS...: the job fails with one message matching PATTERN
  local name=$1 pattern=$2 envs=()
  shift 2
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  # odls_base_sigkill_timeout 0: mpirun ends the job at once instead of giving ranks that have
  # already exited a second to do so
  if env "${envs[@]}" OMPI_MCA_odls_base_sigkill_timeout=0 timeout 60 mpirun -np 2 "$bitvla" eval closed-loop "$@" > "$work/$name.txt" 2>&1; then
    fail "$name: the job did not fail"
  fi
  [[ "$(grep -c '^bitvla eval: ' "$work/$name.txt")" -eq 1 ]] && grep -q "^bitvla eval: $pattern" "$work/$name.txt" ||
    fail "$name: not one message matching '$pattern': $(cat "$work/$name.txt")"
  ! grep -Eq "Sanitizer|runtime error" "$work/$name.txt" || fail "$name: a sanitizer report: $(cat "$work/$name.txt")"
}
expect_fail missing "rank 0 of 2: loading policy $work/nothing: " -- "$work/nothing" --env synth --episodes 2
expect_fail load "rank 1 of 2: injected fault after loading" BV_EVAL_FAULT=1:load -- "${args[@]}"
expect_fail episode "rank 1 of 2: task 3 episode 0: injected fault" BV_EVAL_FAULT=1:2 -- "${args[@]}"
echo "cli_eval_mpi: ok"
