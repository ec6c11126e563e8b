"""A small dataset of one's own, made on the spot: circles, squares and triangles of several colours,
sizes and places on a white background, 64x64 PNGs in one folder per kind, zipped as a user would
upload it. The tests and the screenshots train on it; nothing is downloaded."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("circle", "square", "triangle")
COLOURS = ((220, 40, 40), (40, 120, 220), (30, 160, 70), (230, 160, 20), (130, 60, 180))
SIDE = 64


def shape(kind: str, colour: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    """One shape of ``kind``, filled with ``colour``, at a random size and place."""
    image = Image.new("RGB", (SIDE, SIDE), "white")
    draw = ImageDraw.Draw(image)
    r = rng.uniform(12, 24)
    cx, cy = rng.uniform(r + 2, SIDE - r - 2, size=2)
    box = (cx - r, cy - r, cx + r, cy + r)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    return image


def shapes_zip(path: Path, per_kind: int = 40, seed: int = 0) -> Path:
    """``per_kind`` PNGs of each kind in ``shapes/<kind>/``, zipped at ``path``."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as zf:
        for kind in KINDS:
            for i in range(per_kind):
                png = io.BytesIO()
                shape(kind, COLOURS[i % len(COLOURS)], rng).save(png, format="PNG")
                zf.writestr(f"shapes/{kind}/{i:03d}.png", png.getvalue())
    return path
