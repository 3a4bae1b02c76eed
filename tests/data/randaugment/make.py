"""Regenerates the RandAugment parity fixture with Pillow (the library timm's RandAugment runs on).

    python3 tests/data/randaugment/make.py      # Pillow 13.0.0 made the committed files

`input.png` is a 40x32 RGB pattern; `expected/<name>.png` is Pillow's result of each operation
with the fixed argument listed in `ops.json` (the same arguments the Rust test passes).
"""
import json
import math
import os

from PIL import Image, ImageEnhance, ImageOps

here = os.path.dirname(os.path.abspath(__file__))
W, H = 40, 32
img = Image.new("RGB", (W, H))
px = img.load()
for y in range(H):
    for x in range(W):
        r = (x * 6 + y * 2) % 256
        g = int(127.5 + 120 * math.sin(x * 0.4) * math.cos(y * 0.3))
        b = 40 if (x // 8 + y // 8) % 2 else 210
        if (x - 26) ** 2 + (y - 12) ** 2 < 36:
            r, g, b = 250, 30, 20
        px[x, y] = (r, g, b)
img.save(os.path.join(here, "input.png"))

FILL = (123, 117, 104)
BIL = Image.Resampling.BILINEAR
ops = {
    "auto_contrast": ("AutoContrast", None, lambda im, a: ImageOps.autocontrast(im)),
    "equalize": ("Equalize", None, lambda im, a: ImageOps.equalize(im)),
    "invert": ("Invert", None, lambda im, a: ImageOps.invert(im)),
    "posterize_3": ("Posterize", 3, lambda im, a: ImageOps.posterize(im, a)),
    "solarize_100": ("Solarize", 100, lambda im, a: ImageOps.solarize(im, a)),
    "solarize_add_60": (
        "SolarizeAdd",
        60,
        lambda im, a: im.point([min(255, i + a) if i < 128 else i for i in range(256)] * 3),
    ),
    "color_1.9": ("Color", 1.9, lambda im, a: ImageEnhance.Color(im).enhance(a)),
    "color_0.3": ("Color", 0.3, lambda im, a: ImageEnhance.Color(im).enhance(a)),
    "contrast_1.9": ("Contrast", 1.9, lambda im, a: ImageEnhance.Contrast(im).enhance(a)),
    "contrast_0.3": ("Contrast", 0.3, lambda im, a: ImageEnhance.Contrast(im).enhance(a)),
    "brightness_1.9": ("Brightness", 1.9, lambda im, a: ImageEnhance.Brightness(im).enhance(a)),
    "brightness_0.3": ("Brightness", 0.3, lambda im, a: ImageEnhance.Brightness(im).enhance(a)),
    "sharpness_1.9": ("Sharpness", 1.9, lambda im, a: ImageEnhance.Sharpness(im).enhance(a)),
    "sharpness_0.3": ("Sharpness", 0.3, lambda im, a: ImageEnhance.Sharpness(im).enhance(a)),
    "rotate_30": ("Rotate", 30.0, lambda im, a: im.rotate(a, resample=BIL, fillcolor=FILL)),
    "rotate_-17.5": ("Rotate", -17.5, lambda im, a: im.rotate(a, resample=BIL, fillcolor=FILL)),
    "shear_x_0.3": (
        "ShearX",
        0.3,
        lambda im, a: im.transform(im.size, Image.Transform.AFFINE, (1, a, 0, 0, 1, 0), resample=BIL, fillcolor=FILL),
    ),
    "shear_y_-0.2": (
        "ShearY",
        -0.2,
        lambda im, a: im.transform(im.size, Image.Transform.AFFINE, (1, 0, 0, a, 1, 0), resample=BIL, fillcolor=FILL),
    ),
    "translate_x_-7.5": (
        "TranslateX",
        -7.5,
        lambda im, a: im.transform(im.size, Image.Transform.AFFINE, (1, 0, a, 0, 1, 0), resample=BIL, fillcolor=FILL),
    ),
    "translate_y_5.25": (
        "TranslateY",
        5.25,
        lambda im, a: im.transform(im.size, Image.Transform.AFFINE, (1, 0, 0, 0, 1, a), resample=BIL, fillcolor=FILL),
    ),
}
os.makedirs(os.path.join(here, "expected"), exist_ok=True)
listing = []
for name, (op, arg, fn) in ops.items():
    fn(img, arg).save(os.path.join(here, "expected", name + ".png"))
    listing.append({"name": name, "op": op, "arg": arg})
with open(os.path.join(here, "ops.json"), "w") as f:
    json.dump({"fill": FILL, "ops": listing}, f, indent=1)
    f.write("\n")
