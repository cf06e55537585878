"""Fixture for tests/test_augment.c: Pillow's bicubic resize with a crop box, and colour jitter
references from Python's colorsys.

Run with Debian's python (Pillow, numpy, torch for stio):  /usr/bin/python3 tests/gen/gen_augment.py
Writes tests/fixtures/augment.safetensors (about 120 KB).

Resize cases: NAME.img U8 (h, w, 3), NAME.box F64 (4) = (x0, y0, x1, y1) in pixels, NAME.out F32
(oh, ow, 3) = Image.resize((ow, oh), BICUBIC, box) of each channel as a float ("F" mode) image,
divided by 255. F mode resamples in double without 8-bit rounding, which is what
bv_aug_resize_bicubic computes.

Colour cases: colour.x F32 (n, 3) in [0, 1], and for each op colour.OP.out after the op and the
clip to [0, 1] (dlimp clips after each op), with the parameters in colour.params F64
(brightness delta, contrast factor, saturation factor, hue delta):
- brightness: x + d; contrast: (x - mean_c) * f + mean_c with the channel means over the n pixels
  (tf.image.adjust_contrast);
- saturation: colorsys.rgb_to_hsv, s = clip(s * f, 0, 1), colorsys.hsv_to_rgb
  (tf.image.adjust_saturation);
- hue: colorsys.rgb_to_hsv, h = (h + d) mod 1, colorsys.hsv_to_rgb (tf.image.adjust_hue).
"""
import colorsys
import math
import os

import numpy as np
import torch
from PIL import Image

import stio

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "augment.safetensors")
rng = np.random.default_rng(20240611)
t = {}


def test_image(h, w):
    """Smooth gradients plus edges plus noise: exercises both the filter shape and the borders."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([
        127 + 100 * np.sin(xx / 5.0) * np.cos(yy / 7.0),
        255 * (xx / (w - 1)),
        np.where((xx // 6 + yy // 6) % 2 == 0, 230.0, 20.0),
    ], axis=-1)
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def pil_resize(img, box, ow, oh):
    chans = []
    for c in range(3):
        im = Image.fromarray(img[:, :, c].astype(np.float32), mode="F")
        r = im.resize((ow, oh), Image.BICUBIC, box=tuple(float(b) for b in box))
        chans.append(np.asarray(r, dtype=np.float32))
    return np.stack(chans, axis=-1) / np.float32(255.0)


def center_box(w, h, scale=0.9):
    fw = fh = math.sqrt(scale)
    return ((1 - fw) / 2 * w, (1 - fh) / 2 * h, (1 - fw) / 2 * w + fw * w, (1 - fh) / 2 * h + fh * h)


def case(name, img, box, ow, oh):
    t[name + ".img"] = torch.from_numpy(img)
    t[name + ".box"] = torch.tensor(box, dtype=torch.float64)
    t[name + ".out"] = torch.from_numpy(pil_resize(img, box, ow, oh))


big = test_image(72, 72)
case("center_down", big, center_box(72, 72), 63, 63)  # 256 -> 224's ratio (about 1.08)
case("center_tiny", big, center_box(72, 72), 16, 16)  # strong downscale (the tiny preset's ratio)
small = test_image(23, 31)
case("center_up", small, center_box(31, 23), 40, 40)  # upscale, non-square input
case("box_rect", small, (3.25, 1.5, 27.75, 20.125), 17, 11)  # any box, non-square output
case("identity", small, (0.0, 0.0, 31.0, 23.0), 31, 23)  # whole image at its size: a copy

# colour jitter references
n = 500
x = rng.uniform(0, 1, (n, 3))
x[:20] = x[:20, :1]  # greys (hue undefined, saturation 0)
x[20:40, 0] = 0  # pixels on the hue sector borders
x[40:60] = np.array([[1.0, 0.0, 0.0]])  # pure red
x = x.astype(np.float32)
params = dict(brightness=0.137, contrast=0.83, saturation=1.17, hue=-0.043)
t["colour.x"] = torch.from_numpy(x)
t["colour.params"] = torch.tensor([params["brightness"], params["contrast"], params["saturation"], params["hue"]],
                                  dtype=torch.float64)
xd = x.astype(np.float64)
t["colour.brightness.out"] = torch.from_numpy(np.clip(xd + params["brightness"], 0, 1))
m = xd.mean(axis=0, keepdims=True)
t["colour.contrast.out"] = torch.from_numpy(np.clip((xd - m) * params["contrast"] + m, 0, 1))


def hsv_map(fn):
    out = np.empty_like(xd)
    for i, (r, g, b) in enumerate(xd):
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        h, s, v = fn(h, s, v)
        out[i] = colorsys.hsv_to_rgb(h, s, v)
    return np.clip(out, 0, 1)


t["colour.saturation.out"] = torch.from_numpy(hsv_map(lambda h, s, v: (h, min(1.0, max(0.0, s * params["saturation"])), v)))
t["colour.hue.out"] = torch.from_numpy(hsv_map(lambda h, s, v: ((h + params["hue"]) % 1.0, s, v)))

stio.save(OUT, t, metadata={"generator": "tests/gen/gen_augment.py"})
print("wrote", OUT, os.path.getsize(OUT), "bytes")
