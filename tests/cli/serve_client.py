#!/usr/bin/env python3
"""serve_client.py - the HTTP client of tests/test_serve.c: talks to a bv_serve server on
127.0.0.1:PORT as OFT's robot clients do (vla-scripts/deploy.py's protocol, arrays in the json_numpy
encoding) and checks every answer. Python's standard library only (http.client, json, base64,
struct, socket, threading), so the encoding below is written out by hand exactly as json_numpy 2.1
writes it: {"__numpy__": b64encode(raw C-order bytes), "dtype": numpy's dtype_to_descr ("|u1",
"<f4", "<f8"), "shape": [...]}.

The server under test runs the act callback of test_serve.c, which the function `expected` below
mirrors: actions[t][j] = state[j % n] * (t + 1) + mean(full_image) + 0.01 * mean(wrist_image or -1)
+ 0.001 * len(instruction in UTF-8 bytes), with chunk 8, action_dim 7, state_dim 8, max_body 1 MiB.
Instructions "fail" and "unfit" make the callback fail (500) or refuse the observation (400).

Usage: serve_client.py PORT. Prints one line per failed check; exit status 1 if any failed.
"""
import base64
import http.client
import json
import math
import socket
import struct
import sys
import threading
import time

PORT = int(sys.argv[1])
CHUNK, ADIM, SDIM, MAX_BODY = 8, 7, 8, 1 << 20
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def np_array(raw, dtype, shape):
    """json_numpy's encoding of an array whose C-order bytes are raw."""
    return {"__numpy__": base64.b64encode(raw).decode(), "dtype": dtype, "shape": list(shape)}


def image(h, w, seed, c=3):
    raw = bytes((seed * 31 + i * 7 + (i // 5)) % 256 for i in range(h * w * c))
    return raw, np_array(raw, "|u1", (h, w, c))


def state_f32(vals):
    return np_array(struct.pack("<%df" % len(vals), *vals), "<f4", (len(vals),))


def state_f64(vals):
    return np_array(struct.pack("<%dd" % len(vals), *vals), "<f8", (len(vals),))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected(state, full_raw, wrist_raw, instruction):
    mf = sum(full_raw) / len(full_raw)
    mw = sum(wrist_raw) / len(wrist_raw) if wrist_raw is not None else -1.0
    n = len(instruction.encode())
    return [[f32(state[j % len(state)]) * (t + 1) + mf + 0.01 * mw + 0.001 * n for j in range(ADIM)]
            for t in range(CHUNK)]


def post(path, body, conn=None, headers=None):
    """POST body (bytes or str) and return (status, headers, body bytes)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
    if isinstance(body, str):
        body = body.encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request("POST", path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    if own:
        conn.close()
    return r.status, r.getheaders(), data


def request(method, path):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
    conn.request(method, path)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def decode_chunk(lst, what):
    """The action chunk from deploy.py's response: a list of json_numpy float64 vectors."""
    out = []
    check(isinstance(lst, list) and len(lst) == CHUNK, "%s: a list of %d actions, got %r" % (what, CHUNK, str(lst)[:200]))
    if not isinstance(lst, list):
        return None
    for t, a in enumerate(lst):
        ok = isinstance(a, dict) and list(a.keys()) == ["__numpy__", "dtype", "shape"]
        check(ok, "%s[%d]: keys __numpy__, dtype, shape in that order, got %r" % (what, t, a))
        if not ok:
            return None
        check(a["dtype"] == "<f8" and a["shape"] == [ADIM], "%s[%d]: dtype <f8 shape [7], got %r %r" % (
            what, t, a["dtype"], a["shape"]))
        raw = base64.b64decode(a["__numpy__"], validate=True)
        check(len(raw) == 8 * ADIM, "%s[%d]: %d bytes" % (what, t, len(raw)))
        out.append(list(struct.unpack("<%dd" % ADIM, raw)))
    return out


def close(got, want, what):
    if got is None:
        return
    for t in range(CHUNK):
        for j in range(ADIM):
            g, w = got[t][j], want[t][j]
            if not math.isclose(g, w, rel_tol=1e-5, abs_tol=1e-4):
                check(False, "%s: action [%d][%d]: got %r want %r (tol 1e-5 relative)" % (what, t, j, g, w))
                return
    check(True, what)


def good(conn=None, st=None, instruction="pick up the black bowl", wrist=True, seed=1, state_enc=state_f32,
         what="good request"):
    st = st or [0.5 * i - 1.0 for i in range(SDIM)]
    full_raw, full = image(224, 224, seed)
    obs = {"full_image": full, "state": state_enc(st), "instruction": instruction}
    wrist_raw = None
    if wrist:
        wrist_raw, obs["wrist_image"] = image(128, 96, seed + 1)
    code, _, body = post("/act", json.dumps(obs), conn)
    check(code == 200, "%s: status 200, got %d: %s" % (what, code, body[:300]))
    if code != 200:
        return
    text = body.decode()
    parsed = json.loads(text)
    # starlette's JSONResponse: json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    check(json.dumps(parsed, ensure_ascii=False, allow_nan=False, separators=(",", ":")) == text,
          "%s: body byte for byte as FastAPI renders it, got %s" % (what, text[:200]))
    close(decode_chunk(parsed, what), expected(st, full_raw, wrist_raw, instruction), what)


def bad(body, code, needle, what, path="/act"):
    got, hdrs, data = post(path, body)
    msg = ""
    try:
        msg = json.loads(data)["error"]
    except Exception:  # noqa: BLE001
        check(False, "%s: the body is {\"error\": ...}, got %r" % (what, data[:200]))
    check(got == code and needle in msg, "%s: status %d with a message containing %r, got %d %r" % (
        what, code, needle, got, msg))


def obs_with(**kw):
    _, full = image(8, 8, 3)
    o = {"full_image": full, "state": [0.0] * SDIM, "instruction": "x"}
    for k, v in kw.items():
        if v is None:
            o.pop(k, None)
        else:
            o[k] = v
    return json.dumps(o)


def raw_exchange(data, shut=False, timeout=10):
    """Send raw bytes on a socket and return whatever comes back until the server closes or the
    first response is complete enough to read its status line."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out and (b"Content-Length" in out or b"content-length" in out.lower()):
                head, _, rest = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and len(rest) >= int(line.split(b":")[1]):
                        return out
        return out
    finally:
        s.close()


def main():
    # --- good requests, every accepted form ---
    good()
    good(state_enc=state_f64, wrist=False, what="float64 state, no wrist image")
    good(state_enc=lambda v: v, what="state as a plain JSON list")
    good(state_enc=lambda v: np_array(struct.pack(">%dd" % len(v), *v), ">f8", (len(v),)), what="big-endian state")
    good(instruction="put the bowl on the plate (é, 碗)", what="non-ASCII instruction")
    # one wrist image under another name containing "wrist", as deploy.py takes them
    full_raw, full = image(16, 16, 5)
    wrist_raw, wrist = image(8, 8, 6)
    st = [1.0] * SDIM
    code, _, body = post("/act", json.dumps({"full_image": full, "left_wrist_image": wrist, "state": state_f32(st),
                                             "instruction": "go"}))
    check(code == 200, "left_wrist_image: 200, got %d %s" % (code, body[:200]))
    if code == 200:
        close(decode_chunk(json.loads(body), "left_wrist_image"), expected(st, full_raw, wrist_raw, "go"),
              "left_wrist_image")
    # deploy.py's double encoding: {"encoded": json_numpy.dumps(obs)} -> JSONResponse(json_numpy.dumps(actions))
    full_raw, full = image(32, 24, 7)
    inner = json.dumps({"full_image": full, "state": state_f32(st), "instruction": "stack"})
    code, _, body = post("/act", json.dumps({"encoded": inner}))
    check(code == 200, "encoded: 200, got %d %s" % (code, body[:200]))
    if code == 200:
        s = json.loads(body)
        check(isinstance(s, str), "encoded: the response is a JSON string, got %r" % body[:100])
        if isinstance(s, str):
            lst = json.loads(s)
            check(json.dumps(lst) == s, "encoded: the string is json.dumps' text (separators ', ' ': '), got %s" % s[:200])
            check(json.dumps(s, ensure_ascii=False, separators=(",", ":")) == body.decode(),
                  "encoded: body byte for byte as FastAPI renders the string")
            close(decode_chunk(lst, "encoded"), expected(st, full_raw, None, "stack"), "encoded")

    # --- bad requests: each a 4xx naming the field ---
    _, img = image(8, 8, 1)
    raw4, img4 = image(8, 8, 1, c=4)
    bad("{", 400, "not JSON", "truncated JSON")
    bad("", 400, "empty body", "empty body")
    bad("[1, 2]", 400, "expected a JSON object, got a JSON list", "a list body")
    bad('{"a": 1, "a": 2}', 400, "not JSON", "duplicate keys")
    bad(b'{"full_image": 1, "instruction": "\xff\xfe"}', 400, "not JSON", "invalid UTF-8")
    bad(obs_with(full_image=None), 400, "missing 'full_image'", "no full_image")
    bad(obs_with(state=None), 400, "missing 'state'", "no state")
    bad(obs_with(instruction=None), 400, "missing 'instruction'", "no instruction")
    bad(obs_with(instruction=5), 400, "'instruction': expected a string, got an integer", "instruction a number")
    bad(obs_with(full_image=[[[0, 0, 0]]]), 400, "'full_image': expected a json_numpy array", "image as a list")
    bad(obs_with(full_image={"data": "AAAA"}), 400, "without \"__numpy__\"", "object without __numpy__")
    bad(obs_with(full_image=img4), 400, "'full_image': expected shape (H, W, 3) of an RGB image, got (8, 8, 4)",
        "RGBA image")
    bad(obs_with(full_image=np_array(bytes(64), "|u1", (8, 8))), 400, "got (8, 8)", "2-D image")
    bad(obs_with(full_image=np_array(bytes(192 * 4), "<f4", (8, 8, 3))), 400,
        "'full_image': expected dtype uint8", "float image")
    bad(obs_with(wrist_image=np_array(bytes(190), "|u1", (8, 8, 3))), 400,
        "'wrist_image': shape (8, 8, 3) of |u1 needs 192 bytes, but \"__numpy__\" holds 190", "byte count vs shape")
    broken = dict(img)
    broken["__numpy__"] = broken["__numpy__"][:40] + "!" + broken["__numpy__"][41:]
    bad(obs_with(full_image=broken), 400, "'full_image': \"__numpy__\" is not base64: character 40 is '!'", "bad base64")
    broken = dict(img)
    broken["__numpy__"] = broken["__numpy__"][:-1]
    bad(obs_with(full_image=broken), 400, "not padded base64", "base64 length")
    broken = dict(img)
    broken["dtype"] = "uint8"
    bad(obs_with(full_image=broken), 400, "not a numpy type descriptor", "dtype name instead of descriptor")
    broken = dict(img)
    broken["shape"] = [-8, 8, 3]
    bad(obs_with(full_image=broken), 400, "\"shape\"[0] must be an integer", "negative shape")
    bad(obs_with(state=np_array(bytes(64), "<i8", (8,))), 400, "'state': expected dtype float32 or float64",
        "integer state")
    bad(obs_with(state=state_f32([0.0] * 7)), 400, "'state': expected 8 values, got 7", "short state")
    bad(obs_with(state=np_array(bytes(64), "<f4", (2, 8))), 400, "'state': expected a vector", "2-D state")
    bad(obs_with(state=[0.0, 1.0, "x"] + [0.0] * 5), 400, "'state'[2]: expected a number, got a string",
        "state list with a string")
    bad(obs_with(state=state_f32([0.0, float("nan")] + [0.0] * 6)), 400, "'state'[1] is not a finite", "NaN state")
    bad(obs_with(left_wrist_image=img, right_wrist_image=img), 400,
        "two wrist images ('left_wrist_image' and 'right_wrist_image')", "two wrist images")
    bad(json.dumps({"encoded": obs_with(), "extra": 1}), 400, "'encoded' must be the only key", "encoded plus a key")
    bad(json.dumps({"encoded": 5}), 400, "'encoded': expected a string", "encoded not a string")
    bad(json.dumps({"encoded": "{"}), 400, "'encoded' is not JSON", "encoded not JSON")
    bad(obs_with(instruction="unfit"), 400, "test policy: this observation does not suit it", "policy refuses (400)")
    bad(obs_with(instruction="fail"), 500, "test policy: failed on purpose", "policy fails (500)")
    bad(obs_with(), 404, "no such path '/nope'", "POST to another path", path="/nope")
    code, hdrs, data = request("GET", "/act")
    check(code == 405 and hdrs.get("allow") == "POST" and b"takes POST" in data, "GET /act: 405 with Allow: POST, got %d %r"
          % (code, data))
    code, _, data = request("GET", "/")
    check(code == 404, "GET /: 404, got %d" % code)
    code, _, data = request("GET", "/health")
    check(code == 200 and json.loads(data) == {"status": "ok", "chunk": CHUNK, "action_dim": ADIM},
          "GET /health, got %d %r" % (code, data))

    # --- oversized bodies: 413 before the body is read ---
    hdr = ("POST /act HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % (MAX_BODY + 1)).encode()
    out = raw_exchange(hdr.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1))
    check(out.startswith(b"HTTP/1.1 413") and b"body of 1048577 bytes is larger than the limit of 1048576 bytes" in out,
          "Expect: 100-continue over the limit: 413 before the body, got %r" % out[:300])
    out = raw_exchange(hdr.replace(b"%d" % (MAX_BODY + 1), b"%d" % (10 * MAX_BODY)))
    check(out.startswith(b"HTTP/1.1 413") and b"10485760 bytes is larger" in out,
          "Content-Length of 10 MiB: 413 before the body, got %r" % out[:300])
    # a whole 1.5 MiB body sent at once by http.client: read, dropped, then 413
    try:
        code, _, data = post("/act", b"{" + b" " * (3 * MAX_BODY // 2) + b"}")
        check(code == 413 and b"larger than the limit" in data, "1.5 MiB body: 413, got %d %r" % (code, data[:200]))
    except (BrokenPipeError, ConnectionResetError) as e:
        check(False, "1.5 MiB body: the connection broke before the 413 could be read: %r" % e)
    # chunked, no Content-Length: cut while receiving
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
    try:
        conn.request("POST", "/act", body=iter([b"{" + b" " * 65536] * 24 + [b"}"]),
                     headers={"Content-Type": "application/json"}, encode_chunked=True)
        r = conn.getresponse()
        data = r.read()
        check(r.status == 413, "chunked 1.5 MiB body: 413, got %d %r" % (r.status, data[:200]))
    except (BrokenPipeError, ConnectionResetError) as e:
        check(False, "chunked body: the connection broke before the 413: %r" % e)
    conn.close()

    # --- broken HTTP: answered 400 or dropped, never fatal; a client that stalls mid-request holds
    # its own connection only (until the 30 s timeout), not the server ---
    out = raw_exchange(b"POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", shut=True)
    check(out.startswith(b"HTTP/1.1 400"), "Content-Length: abc: 400, got %r" % out[:100])
    raw_exchange(b"GARBAGE\r\n\r\n", shut=True)
    stalled = []
    for junk in (b"\x00\x01\x02" * 1000, b"POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"full",
                 b"POST /act HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"):
        sk = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        sk.sendall(junk)
        stalled.append(sk)
    t0 = time.time()
    good(what="good request beside stalled connections")
    check(time.time() - t0 < 5, "good request beside stalled connections: answered at once, took %.1f s" % (
        time.time() - t0))
    for sk in stalled:
        sk.close()
    # clients that hang up before reading their answer
    full_raw, full = image(224, 224, 9)
    body = json.dumps({"full_image": full, "state": [0.0] * SDIM, "instruction": "slow hang-up"}).encode()
    for i in range(3):
        sk = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        sk.sendall(b"POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        sk.close()

    # --- still serving after all of that, on one keep-alive connection too ---
    good(what="good request after the bad ones")
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
    for i in range(3):
        good(conn, st=[float(i)] * SDIM, seed=i, what="keep-alive request %d" % i)
    conn.close()

    # --- concurrent clients: each gets its own answer ---
    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        for i in range(4):
            good(conn, st=[k * 10.0 + i + 0.25 * j for j in range(SDIM)], seed=k * 4 + i,
                 instruction="slow task %d" % k, what="client %d request %d" % (k, i))
        conn.close()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    print("serve_client: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
