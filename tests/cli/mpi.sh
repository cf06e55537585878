#!/usr/bin/env bash
# CTest cli_mpi: data-parallel training under mpirun (recipes/dist.h, docs/distributed.md), on a
# small built-in-task run with global batch 8 = micro-batch 2 x (accumulation x ranks):
#   1. rank-count invariance: -np 1, 2 and 4 (accumulation 4, 2, 1), without and with ZeRO-1, 20
#      steps: model.safetensors and optimizer.safetensors byte-identical, and the logged losses,
#      gradient norms and validation L1 identical;
#   2. resume across rank counts: 2 ranks (ZeRO-1) stopped at step 10, resumed on 4 ranks, and 4
#      ranks resumed on 1: byte-identical to the uninterrupted run;
#   3. accumulation in place (distributed.exact false): -np 1 and -np 2 agree to rounding (1e-6) on
#      the first steps' gradient norms;
#   4. failures: an error on rank 1 and rank 1 killed with SIGKILL both end the job within 10 s
#      with a non-zero status and a message naming rank 1; `latest` still names a complete
#      checkpoint;
#   5. the non-finite guard, which every rank meets at once, stops the job with one message.
# Ranks are oversubscribed on the machine's cores with one thread each.
#   Usage: tests/cli/mpi.sh BITVLA ST_COMPARE RECIPE WORK_DIR
set -euo pipefail
bitvla=$1 compare=$2 recipe=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
export BV_PROGRESS=0 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
# under ASan: full unwinding, so tests/lsan.supp sees Open MPI's frames in what it keeps past
# MPI_Finalize
if [[ -n "${ASAN_OPTIONS:-}" ]]; then export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"; fi
sets=(--set "data.shards=$work/data/train" --set "data.val_shards=$work/data/val"
      --set "data.synth.rlds=$work/data/rlds" --set "tokenizer=$work/data/tokenizer.json"
      --set data.synth.episodes=8 --set data.synth.val_episodes=2 --set data.synth.image_size=32
      --set steps=20 --set schedule.warmup_steps=2 --set validation.every=10 --set validation.batches=4
      --set checkpoint.every=10 --set micro_batch=2 --set global_batch=8 --set data.threads=1
      --set distributed.bucket_mb=0.2)
fail() { echo "cli_mpi: $*" >&2; exit 1; }
run() { # NP RUN_DIR [more args]
  local np=$1 dir=$2
  shift 2
  if [[ $np == 0 ]]; then "$bitvla" train "$recipe" --out "$dir" "${sets[@]}" "$@"
  else mpirun -np "$np" "$bitvla" train "$recipe" --out "$dir" "${sets[@]}" "$@"; fi
}
# the metrics that must agree (no timings)
fingerprint() { sed -E 's/, "(samples_per_s|step_s|comm_wait_s)": [^,}]*//g' "$1/metrics.jsonl"; }
same_ckpt() { # A B: byte-identical weights and moments at step 20
  for f in model.safetensors optimizer.safetensors; do
    cmp -s "$1/checkpoints/step-00000020/$f" "$2/checkpoints/step-00000020/$f" ||
      fail "$2: $f differs from $1's: $("$compare" "$1/checkpoints/step-00000020/$f" "$2/checkpoints/step-00000020/$f" 1 || true)"
  done
  [[ "$(fingerprint "$1")" == "$(fingerprint "$2")" ]] || fail "$2: metrics differ from $1's"
}

# 1. invariance (np 0 = no mpirun at all: a plain process)
run 0 "$work/ref" > /dev/null
[[ "$(grep -c '"kind": "train"' "$work/ref/metrics.jsonl")" -eq 20 ]] || fail "reference run incomplete"
for zero in 0 1; do
  for np in 1 2 4; do
    run "$np" "$work/np$np-z$zero" --set distributed.zero=$zero > "$work/np$np-z$zero.txt" 2>&1 ||
      fail "np $np zero $zero: $(tail -5 "$work/np$np-z$zero.txt")"
    same_ckpt "$work/ref" "$work/np$np-z$zero"
  done
done
grep -q '"comm_wait_s"' "$work/np4-z1/metrics.jsonl" || fail "no comm_wait_s in a multi-rank run's metrics"

# 2. resume on another rank count
run 2 "$work/rs24" --set distributed.zero=1 --stop-at 10 > /dev/null 2>&1
mpirun -np 4 "$bitvla" train --resume "$work/rs24" > /dev/null 2>&1 || fail "resume 2 -> 4 failed"
same_ckpt "$work/ref" "$work/rs24"
run 4 "$work/rs41" --set distributed.zero=1 --stop-at 10 > /dev/null 2>&1
"$bitvla" train --resume "$work/rs41" > /dev/null 2>&1 || fail "resume 4 -> 1 failed"
same_ckpt "$work/ref" "$work/rs41"

# 3. accumulation in place (distributed.exact false): the reduced gradient differs from one rank's
#    only by the order of the sums, so the first steps' gradient norms agree to 1e-6; later steps
#    drift apart (a ternary weight on a rounding edge flips; Adam turns the rounding noise of
#    gradients that are zero in exact arithmetic, such as a key projection's bias, into full-size
#    updates): the reason exact is the default (docs/distributed.md)
run 0 "$work/sum1" --set distributed.exact=false --set steps=2 > /dev/null 2>&1
run 2 "$work/sum2" --set distributed.exact=false --set steps=2 > /dev/null 2>&1
paste <(grep '"kind": "train"' "$work/sum1/metrics.jsonl" | sed -E 's/.*"grad_norm": ([^,]*),.*/\1/') \
      <(grep '"kind": "train"' "$work/sum2/metrics.jsonl" | sed -E 's/.*"grad_norm": ([^,]*),.*/\1/') |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6 * $1) { print "grad_norm " NR ": " $1 " vs " $2; bad = 1 } }
       END { exit bad || NR != 2 }' || fail "exact=false: the first gradient norms differ beyond 1e-6"

# 4. failures end the job, naming the rank, within 10 s
for kind in error kill; do
  t0=$(date +%s)
  if BV_TRAIN_FAULT=1:13:$kind timeout 60 mpirun -np 2 "$bitvla" train "$recipe" --out "$work/fault-$kind" \
       "${sets[@]}" > "$work/fault-$kind.txt" 2>&1; then
    fail "a $kind on rank 1 did not fail the job"
  fi
  dt=$(( $(date +%s) - t0 ))
  (( dt <= 10 )) || fail "a $kind on rank 1 took $dt s to end the job"
  case $kind in
    error) grep -q "rank 1 of 2: .*injected fault at step 13" "$work/fault-$kind.txt" ;;
    kill) grep -q "rank 1 .*signal 9" "$work/fault-$kind.txt" ;;
  esac || fail "a $kind on rank 1: the message does not name rank 1: $(cat "$work/fault-$kind.txt")"
  [[ "$(readlink "$work/fault-$kind/checkpoints/latest")" == step-00000010 ]] ||
    fail "a $kind on rank 1: latest is $(readlink "$work/fault-$kind/checkpoints/latest" || echo none)"
  cmp -s "$work/fault-$kind/checkpoints/step-00000010/model.safetensors" "$work/ref/checkpoints/step-00000010/model.safetensors" ||
    fail "a $kind on rank 1: the step-10 checkpoint is not the reference's"
done
# 5. an error every rank meets alike (the non-finite guard: a learning rate of 1e30 blows the
#    weights up after the first step) is told once, by rank 0, and ends the job
if timeout 60 mpirun -np 2 "$bitvla" train "$recipe" --out "$work/nonfinite" "${sets[@]}" --set optimizer.lr=1e30 \
     --set schedule.warmup_steps=0 --set guard.max_nonfinite=1 > "$work/nonfinite.txt" 2>&1; then
  fail "the non-finite guard did not stop the job"
fi
grep -q "rank 0 of 2: .*non-finite" "$work/nonfinite.txt" || fail "non-finite: $(cat "$work/nonfinite.txt")"
! grep -q "rank 1 of 2" "$work/nonfinite.txt" || fail "non-finite: rank 1 repeated rank 0's message"
echo "cli_mpi: ok"
