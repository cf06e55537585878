"""Expected values for tests/test_rlds.c and tests/test_convert.c, decoded from the real Bridge RLDS
debug set (tests/fixtures/rlds_bridge_debug/1.0.0) by an implementation independent of bitvla:
Google's protobuf runtime (python3-protobuf) with the tf.train.Example schema in
tests/gen/feature.proto, compiled by protoc (protobuf-compiler) into a temporary directory, and
PIL (python3-pil) for the JPEGs. The TFRecord framing is read with struct and its CRCs checked with
a bitwise CRC-32C.

Run with Debian's python:  /usr/bin/python3 tests/gen/gen_bridge_expect.py [DATASET_DIR]
Writes tests/fixtures/bridge_expect.json (about 85 KB):
  n_episodes, lengths                 episodes and steps per episode
  episodes[str(i)] for a few i        action, state (T*7 floats), instruction, is_first, is_last,
                                      reward, file_path, episode_id
  images[]                            full RGB pixels (hex) of a few JPEG frames, decoded by PIL
  quantile_cases                      np.quantile of a few small float32 samples
  stats                               OFT dataset_statistics for the `bridge` schema (action =
                                      steps/action, proprio = steps/observation/state, no
                                      transform), computed the way OFT does: float32 arrays of
                                      all steps, np.mean / np.std / np.max / np.min over axis 0,
                                      np.quantile(x, 0.01 / 0.99, axis=0) (default linear method).
Floats are written with repr() of the float64 value (exact for float32 data).
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "fixtures", "bridge_expect.json")
REL = os.path.join("fixtures", "rlds_bridge_debug", "1.0.0")  # the vendored copy (tests/fixtures/README.md)
EPISODES = [0, 7, 24]  # episodes whose values are stored in full
IMAGES = [(0, "steps/observation/image_0", 0), (13, "steps/observation/image_2", 9), (24, "steps/observation/image_3", 5)]


def find_dataset():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.path.join(REPO, "tests", REL)


def crc32c(data):
    table = crc32c.table
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ table[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


crc32c.table = _table()


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    off = 0
    while off < len(data):
        (n,) = struct.unpack_from("<Q", data, off)
        (lc,) = struct.unpack_from("<I", data, off + 8)
        assert lc == masked(data[off:off + 8]), "length crc"
        payload = data[off + 12:off + 12 + n]
        (dc,) = struct.unpack_from("<I", data, off + 12 + n)
        assert dc == masked(payload), "data crc"
        yield payload
        off += 16 + n


def load_pb2():
    tmp = tempfile.mkdtemp()
    subprocess.check_call(["protoc", "--proto_path=" + HERE, "--python_out=" + tmp, os.path.join(HERE, "feature.proto")])
    sys.path.insert(0, tmp)
    import feature_pb2  # noqa: E402

    return feature_pb2


def main():
    ds = find_dataset()
    info = json.load(open(os.path.join(ds, "dataset_info.json")))
    split = [s for s in info["splits"] if s["name"] == "train"][0]
    n_shards = len(split["shardLengths"])
    pb2 = load_pb2()
    eps = []
    for k in range(n_shards):
        name = "%s-train.tfrecord-%05d-of-%05d" % (info["name"], k, n_shards)
        for rec in records(os.path.join(ds, name)):
            ex = pb2.Example()
            ex.ParseFromString(rec)
            eps.append(ex.features.feature)

    def floats(f, key):
        return np.array(f[key].float_list.value, dtype=np.float32)

    def ints(f, key):
        return [int(v) for v in f[key].int64_list.value]

    out = {"source": REL, "dataset_name": info["name"], "n_episodes": len(eps), "lengths": [], "episodes": {}, "images": []}
    actions, states = [], []
    for i, f in enumerate(eps):
        a = floats(f, "steps/action").reshape(-1, 7)
        s = floats(f, "steps/observation/state").reshape(-1, 7)
        assert len(a) == len(s) == len(f["steps/is_first"].int64_list.value)
        out["lengths"].append(len(a))
        actions.append(a)
        states.append(s)
        if i in EPISODES:
            out["episodes"][str(i)] = {
                "action": [float(x) for x in a.ravel()],
                "state": [float(x) for x in s.ravel()],
                "instruction": f["steps/language_instruction"].bytes_list.value[0].decode(),
                "is_first": ints(f, "steps/is_first"),
                "is_last": ints(f, "steps/is_last"),
                "reward": [float(x) for x in floats(f, "steps/reward")],
                "file_path": f["episode_metadata/file_path"].bytes_list.value[0].decode(),
                "episode_id": ints(f, "episode_metadata/episode_id")[0],
            }
    for ep, key, step in IMAGES:
        jpeg = eps[ep][key].bytes_list.value[step]
        im = Image.open(io.BytesIO(jpeg))
        assert im.format == "JPEG"
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        out["images"].append({"episode": ep, "key": key, "step": step, "h": rgb.shape[0], "w": rgb.shape[1],
                              "jpeg_bytes": len(jpeg), "rgb_hex": rgb.tobytes().hex()})

    def stats(x):
        x = np.concatenate(x, axis=0).astype(np.float32)
        x64 = x.astype(np.float64)
        return {
            "mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "max": x.max(0).tolist(), "min": x.min(0).tolist(),
            "q01": np.quantile(x, 0.01, axis=0).tolist(), "q99": np.quantile(x, 0.99, axis=0).tolist(),
            # the same moments accumulated in float64 (what bitvla computes; numpy's float32 ones above
            # carry float32 accumulation error)
            "mean64": x64.mean(0).tolist(), "std64": x64.std(0).tolist(),
        }

    out["stats"] = {"action": stats(actions), "proprio": stats(states),
                    "num_transitions": int(sum(out["lengths"])), "num_trajectories": len(eps)}
    # np.quantile (default 'linear') on small float32 samples: ties, n = 1 and 2, negative values
    rng = np.random.RandomState(0)
    cases = [np.array([3.5], np.float32), np.array([1.0, -2.0], np.float32),
             np.array([0.1, 0.1, 0.1, 0.7, -0.3, 0.1], np.float32),
             rng.randn(97).astype(np.float32), (rng.randn(1000) * 1e3).astype(np.float32).round(0)]
    qs = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]
    out["quantile_cases"] = [{"x": [float(v) for v in c], "q": qs, "want": [float(np.quantile(c, q)) for q in qs]}
                             for c in cases]
    with open(OUT, "w") as fp:
        json.dump(out, fp, separators=(",", ":"))
        fp.write("\n")
    print("wrote %s (%d bytes): %d episodes, %d steps" % (OUT, os.path.getsize(OUT), len(eps), sum(out["lengths"])))


if __name__ == "__main__":
    main()
