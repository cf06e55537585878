#!/usr/bin/env bash
# CTest cli_eval_media: `bitvla eval closed-loop --baselines --media DIR --json OUT` end to end on the
# scripted expert (no training): 2 tasks x 2 episodes at 64 px with a step limit under which each
# task has one success and one failure (eval/media.h and its unit tests hold the details):
#   1. the table has the expert's columns and the random baseline's; the JSON keeps its top-level
#      keys (success_rate the expert's) and adds baselines.random and baselines.expert;
#   2. DIR holds success.png, task-00/01-strip.png and task-00/01-rollout.png, each a valid PNG
#      (signature, every chunk's CRC, IHDR first, IEND last), the rollouts animated (acTL with
#      as many frames as fcTL chunks, the later frames in fdAT);
#   3. a media directory that cannot be made is an error naming it (exit 1).
#   Usage: tests/cli/eval_media.sh BITVLA WORK_DIR
set -euo pipefail
bitvla=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
export BV_PROGRESS=0
fail() { echo "cli_eval_media: $*" >&2; exit 1; }

"$bitvla" eval closed-loop --agent expert --env synth --episodes 2 --tasks 0,1 --image-size 64 --max-steps 110 \
  --baselines --media "$work/media" --json "$work/eval.json" > "$work/out.txt" 2>&1 || fail "eval: $(cat "$work/out.txt")"
cat "$work/out.txt"
grep -Eq "^ +expert +\| random$" "$work/out.txt" || fail "no expert | random header"
grep -Eq "^all +2/4 +50\.0% +\[.*\] +[0-9.]+ +\| +0/4 +0\.0% +\[" "$work/out.txt" || fail "no overall row with both agents"
grep -q "^media: $work/media/success.png" "$work/out.txt" || fail "the media line is missing"

python3 - "$work/eval.json" "$work/media" <<'EOF2' || fail "the JSON or PNG checks failed"
import json, os, struct, sys, zlib
j = json.load(open(sys.argv[1]))
keys = list(j)
assert keys[:12] == ["success_rate", "ci95", "successes", "episodes", "mean_steps", "agent", "source", "env",
                     "protocol", "seconds", "tasks", "outcomes"], keys
assert j["agent"] == "expert" and j["success_rate"] == 0.5, (j["agent"], j["success_rate"])
b = j["baselines"]
assert sorted(b) == ["expert", "random"], list(b)
assert b["random"]["agent"] == "random" and b["random"]["success_rate"] == 0 and b["random"]["episodes"] == 4
assert b["expert"]["success_rate"] == j["success_rate"] and len(b["random"]["tasks"]) == 2
assert [e["seed"] for e in b["random"]["outcomes"]] == [e["seed"] for e in j["outcomes"]]  # the same initial states

def chunks(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path + ": not a PNG signature"
    off, out = 8, []
    while off < len(data):
        n, = struct.unpack(">I", data[off:off + 4])
        typ, body = data[off + 4:off + 8], data[off + 8:off + 8 + n]
        crc, = struct.unpack(">I", data[off + 8 + n:off + 12 + n])
        assert zlib.crc32(typ + body) == crc, f"{path}: chunk {typ} has a bad CRC"
        out.append((typ.decode(), body))
        off += 12 + n
    assert out[0][0] == "IHDR" and out[-1][0] == "IEND", f"{path}: {out[0][0]} ... {out[-1][0]}"
    w, h = struct.unpack(">II", out[0][1][:8])
    assert w > 0 and h > 0
    return out

d = sys.argv[2]
names = sorted(os.listdir(d))
assert names == ["success.png", "task-00-rollout.png", "task-00-strip.png", "task-01-rollout.png",
                 "task-01-strip.png"], names
for n in names:
    c = chunks(os.path.join(d, n))
    types = [t for t, _ in c]
    if "rollout" in n:
        frames, plays = struct.unpack(">II", dict(c)["acTL"])
        assert frames > 1 and plays == 0, (n, frames, plays)
        assert types.count("fcTL") == frames and types.count("fdAT") == frames - 1, (n, frames, types.count("fcTL"))
    else:
        assert "IDAT" in types and "acTL" not in types, (n, types)
print("cli_eval_media: the JSON and", len(names), "PNGs check out")
EOF2

# 3. a media directory under a regular file cannot be made: exit 1, the path named
set +e
out=$("$bitvla" eval closed-loop --agent random --env synth --episodes 1 --tasks 0 --image-size 64 --max-steps 8 \
  --media "$work/out.txt/media" 2>&1)
st=$?
set -e
[[ $st -eq 1 ]] || fail "an impossible media directory: exit status $st, expected 1: $out"
grep -q "$work/out.txt" <<< "$out" || fail "an impossible media directory: the path is not named: $out"
echo "cli_eval_media: passed"
