"""Writes the seed corpora fuzz/corpus/example/ (serialized tf.train.Example messages) and
fuzz/corpus/tfrecord/ (small TFRecord files) for fuzz_example and fuzz_tfrecord. Python stdlib
only (the wire format is written by hand, including the unpacked and unknown-field forms that
TensorFlow never writes but a decoder must accept).  python3 fuzz/gen_corpus_example.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(f, wt):
    return varint(f << 3 | wt)


def ld(f, b):
    return tag(f, 2) + varint(len(b)) + b


def floats(vals, packed=True):
    if packed:
        return ld(2, ld(1, struct.pack("<%df" % len(vals), *vals)) if vals else b"")
    return ld(2, b"".join(tag(1, 5) + struct.pack("<f", v) for v in vals))


def ints(vals, packed=True):
    if packed:
        return ld(3, ld(1, b"".join(varint(v) for v in vals)) if vals else b"")
    return ld(3, b"".join(tag(1, 0) + varint(v) for v in vals))


def byts(vals):
    return ld(1, b"".join(ld(1, v) for v in vals))


def example(entries, extra=b""):
    feats = b"".join(ld(1, ld(1, k.encode()) + ld(2, v)) for k, v in entries)
    return ld(1, feats) + extra


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data):
    n = struct.pack("<Q", len(data))
    return n + struct.pack("<I", masked(n)) + data + struct.pack("<I", masked(data))


JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
unknown = tag(99, 0) + varint(7) + tag(98, 1) + b"12345678" + ld(97, b"junk") + tag(96, 5) + b"1234"
seeds = {
    "empty": b"",
    "empty_features": ld(1, b""),
    "episode": example([
        ("steps/action", floats([0.1 * i for i in range(14)])),
        ("steps/observation/state", floats([0.5] * 14)),
        ("steps/observation/image_0", byts([JPEG, JPEG])),
        ("steps/language_instruction", byts([b"pick up the cup", b"pick up the cup"])),
        ("steps/is_first", ints([1, 0])),
        ("steps/is_last", ints([0, 1])),
        ("steps/reward", floats([0.0, 1.0])),
        ("episode_metadata/episode_id", ints([-3])),
        ("episode_metadata/file_path", byts([b"/data/x.npy"])),
    ]),
    "unpacked": example([("f", floats([1.0, 2.5, -3.0], packed=False)), ("i", ints([-1, 2**40, 0], packed=False))]),
    "unknown_fields": example([("b", ld(1, unknown + ld(1, b"abc") + unknown) + unknown)], extra=unknown),
    "dup_and_merge": example([("d", byts([b"1"])), ("d", floats([2.0])), ("m", floats([1.0]) + floats([2.0])),
                              ("r", floats([1.0]) + ints([5]))]),
    "no_key_no_value": ld(1, ld(1, ld(2, ints([1]))) + ld(1, ld(1, b"novalue"))),
    "empty_lists": example([("e1", floats([])), ("e2", ints([])), ("e3", byts([])), ("e4", b"")]),
}
for d in ("example", "tfrecord"):
    os.makedirs(os.path.join(HERE, "corpus", d), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, "corpus", "example", name + ".pb"), "wb") as f:
        f.write(data)
files = {
    "one": record(seeds["episode"]),
    "three": record(seeds["episode"]) + record(b"") + record(seeds["unpacked"]),
    "truncated": (record(seeds["episode"]) + record(seeds["unpacked"]))[:-5],
}
for name, data in files.items():
    with open(os.path.join(HERE, "corpus", "tfrecord", name + ".tfrecord"), "wb") as f:
        f.write(data)
