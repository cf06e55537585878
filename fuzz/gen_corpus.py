"""Writes the seed corpus fuzz/corpus/safetensors/ for fuzz_safetensors (Python stdlib only):
valid files covering every dtype, ranks 0..5, empty tensors and metadata, and one seed per kind
of malformed header so the fuzzer starts next to every check.  python3 fuzz/gen_corpus.py"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")
SIZE = {"F32": 4, "F64": 8, "BF16": 2, "F16": 2, "I8": 1, "U8": 1, "I32": 4, "I64": 8}


def image(header, data, pad=True, claimed=None):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if claimed is None else claimed) + h + data


def tensors(specs, meta=None):
    """specs: [(name, dtype, shape)] laid out in order; data bytes are 0, 1, 2, ..."""
    hdr, off = {}, 0
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape in specs:
        n = SIZE[dt]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    return hdr, bytes(i % 251 for i in range(off))


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    seeds["empty"] = image({}, b"")
    seeds["meta_only"] = image({"__metadata__": {"format": "pt"}}, b"")
    seeds["one_f32"] = image(*tensors([("w", "F32", [2, 3])]))
    seeds["all_dtypes"] = image(*tensors([("u8", "U8", [3]), ("f32", "F32", [2, 2]), ("bf16", "BF16", [5]),
                                          ("f16", "F16", [1, 3]), ("i8", "I8", [7]), ("f64", "F64", [2]),
                                          ("i32", "I32", [2]), ("i64", "I64", [1])],
                                         meta={"format": "pt", "note": "unaligned on purpose"}))
    seeds["ranks"] = image(*tensors([("r0", "F32", []), ("r1", "F16", [2]), ("r2", "BF16", [1, 2]),
                                     ("r3", "U8", [1, 2, 3]), ("r4", "I8", [2, 1, 1, 2]),
                                     ("r5", "F32", [1, 1, 2, 1, 2]), ("e", "F32", [0, 4])]))
    h, d = tensors([("a", "F32", [2]), ("b", "F32", [2])])
    h["b"]["data_offsets"] = [4, 12]
    seeds["bad_overlap"] = image(h, d[:12])
    h, d = tensors([("a", "F32", [2]), ("b", "F32", [2])])
    h["b"]["data_offsets"] = [12, 20]
    seeds["bad_gap"] = image(h, d + b"\0" * 4)
    h, d = tensors([("a", "F32", [2, 3])])
    h["a"]["data_offsets"] = [0, 10]
    seeds["bad_size"] = image(h, d[:10])
    seeds["bad_json"] = image(b'{"a":{"dtype":"F32","shape":[2,3}}', b"", pad=False)
    seeds["bad_dup"] = image(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                             b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\1\2")
    seeds["bad_meta"] = image({"__metadata__": {"epoch": 3}}, b"")
    seeds["bad_shape"] = image(b'{"a":{"dtype":"F32","shape":[-1,2.5],"data_offsets":[0,8]}}', bytes(8))
    seeds["bad_rank6"] = image(b'{"a":{"dtype":"U8","shape":[1,1,1,1,1,1],"data_offsets":[0,1]}}', b"\1")
    seeds["bad_meta_type"] = image({"__metadata__": None, "a": True}, b"")
    seeds["bad_claimed"] = image({}, b"", claimed=1 << 40)
    for name, b in seeds.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(b)
    print(len(seeds), "seeds in", OUT)


if __name__ == "__main__":
    main()
