"""The expected bytes of a small TensorBoard event file, for tests/test_tb_events.c, written by an
implementation independent of bitvla: Google's protobuf runtime (python3-protobuf) serializes the
Event messages of tests/gen/tb_event.proto (compiled by protoc, protobuf-compiler, into a temporary
directory), framed as TFRecords with a bitwise CRC-32C.

Run with Debian's python:  /usr/bin/python3 tests/gen/gen_tb_events.py
Writes tests/fixtures/tb_events.bin (under 1 KB). EVENTS below and k_events in
tests/test_tb_events.c must stay the same list.
"""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "fixtures", "tb_events.bin")

# (wall_time, step, [(tag, value), ...]); the first event is the file_version one (no step, no summary),
# values "START" a SessionLog START event (a restarted run: TensorBoard drops older points at steps
# >= its step).
# The cases: fields equal to their proto3 default left out (step 0, wall_time 0, value +0.0, empty
# tag) while -0.0 is written; a negative step (a ten-byte varint); a step above 2^32; a tag longer
# than 127 bytes (a two-byte length); a non-ASCII tag; inf and NaN; an empty summary; values that
# float32 rounds.
EVENTS = [
    (1700000000.25, None, None),
    (1700000001.5, 1, [("train/loss", 2.5)]),
    (1700000002.0, 2, [("train/loss", 1.25), ("train/lr", 3e-4), ("train/grad_norm", 0.1)]),
    (1700000002.75, 0, [("train/zero", 0.0), ("", -1.5)]),
    (1700000003.125, (1 << 40) + 3, [("val/val_l1", -1.5e-8), ("train/neg_zero", -0.0)]),
    (0.0, -1, [("t" * 200, float("inf")), ("train/\u00e9t\u00e9", -float("inf"))]),
    (1700000004.0, 5, [("train/nan", float("nan"))]),
    (1700000005.0, 6, []),
    (1700000006.5, 4, "START"),
    (1700000007.0, 4, [("train/loss", 0.875)]),
]


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


def record(payload):
    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", masked(n)) + payload + struct.pack("<I", masked(payload))


def load_pb2():
    tmp = tempfile.mkdtemp()
    subprocess.check_call(["protoc", "--proto_path=" + HERE, "--python_out=" + tmp, os.path.join(HERE, "tb_event.proto")])
    sys.path.insert(0, tmp)
    import tb_event_pb2  # noqa: E402

    return tb_event_pb2


def main():
    pb = load_pb2()
    out = b""
    for wall, step, values in EVENTS:
        ev = pb.Event(wall_time=wall)
        if values is None:
            ev.file_version = "brain.Event:2"
        elif values == "START":
            ev.step = step
            ev.session_log.status = pb.SessionLog.START
        else:
            ev.step = step
            ev.summary.SetInParent()
            for tag, v in values:
                ev.summary.value.add(tag=tag, simple_value=v)
        out += record(ev.SerializeToString())
    with open(OUT, "wb") as f:
        f.write(out)
    print(f"wrote {OUT} ({len(out)} bytes, {len(EVENTS)} events)")


if __name__ == "__main__":
    main()
