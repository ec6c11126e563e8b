"""Each simulated user's own stroke on the Draw canvas, so that a drawing shown to the wrong user
is caught: twelve drawn by hand and random ones, no two alike in the model's 28x28 view."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from harness.browser import correlation
from vae.preprocess import to_mnist

STROKE_PX = 20  # the Draw page's default stroke width
CLASS = 30  # the largest class whose drawings the load bench tells apart, besides the first visitor
QUEUE_CLASS = 60  # the queue bench checks no drawing's isolation: past CLASS, its learners share strokes


def canvas_drawing(points: list[tuple[int, int]]) -> np.ndarray:
    """One stroke on the Draw page's canvas, white with round ends on black, as RGBA pixels."""
    canvas = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(canvas)
    pen.line(points, fill=255, width=STROKE_PX, joint="curve")
    for x, y in (points[0], points[-1]):
        pen.ellipse((x - STROKE_PX / 2, y - STROKE_PX / 2, x + STROKE_PX / 2, y + STROKE_PX / 2), fill=255)
    grey = np.asarray(canvas)
    return np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1)


def reference_view(points: list[tuple[int, int]]) -> np.ndarray:
    """The model's 28x28 view of one stroke."""
    return to_mnist(canvas_drawing(points), ink="light")


def likeness(shown: np.ndarray, reference: np.ndarray) -> float:
    """Pearson r of two 28x28 views, the best over shifts of up to a pixel: the browser's stroke
    may land a pixel off ours, which alone takes a thin line's r from 1 to about 0.5."""
    return max(correlation(shown, np.roll(reference, (dy, dx), axis=(0, 1))) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


# Strokes drawn by hand, in canvas pixels (the Draw canvas is 280 x 280): twelve shapes whose 28x28
# MNIST views correlate at most 0.46 with one another, even shifted by a pixel (see ``likeness``).
HAND_DRAWN = {
    "seven": [(70, 60), (210, 60), (125, 235)],
    "ell": [(80, 40), (80, 230), (200, 230)],
    "box": [(80, 50), (200, 50), (200, 230), (80, 230), (80, 60)],
    "vee": [(70, 50), (140, 230), (210, 50)],
    "hat": [(70, 230), (140, 50), (210, 230)],
    "slash": [(80, 230), (200, 50)],
    "backslash": [(80, 50), (200, 230)],
    "cup": [(70, 50), (70, 230), (210, 230), (210, 50)],
    "jay": [(200, 50), (200, 230), (80, 230)],
    "double-u": [(50, 60), (100, 230), (140, 100), (180, 230), (230, 60)],
    "em": [(50, 230), (100, 60), (140, 190), (180, 60), (230, 230)],
    "diamond": [(140, 40), (220, 140), (140, 240), (60, 140), (140, 40)],
}


def with_random_strokes(patterns: dict[str, list[tuple[int, int]]], wanted: int,
                        seed: int = 0) -> dict[str, list[tuple[int, int]]]:
    """``patterns`` and random strokes (3-5 corners on a 5x5 lattice of the canvas), ``wanted`` in
    all, each one kept only if its view correlates below 0.55 with every other's, even two pixels
    off (``likeness`` of a view shifted by one), so that a session's drawing stays recognisably its
    own."""
    patterns = dict(patterns)
    rng = np.random.default_rng(seed)
    lattice = [(60 + 40 * i, 50 + 45 * j) for i in range(5) for j in range(5)]
    views = [reference_view(points) for points in patterns.values()]
    while len(patterns) < wanted:
        corners = [lattice[k] for k in rng.choice(len(lattice), size=rng.integers(3, 6), replace=False)]
        view = reference_view(corners)
        shifted = np.roll(view, (1, -1), axis=(0, 1))
        if all(max(likeness(view, other), likeness(other, view), likeness(shifted, other),
                   likeness(np.roll(other, (1, -1), axis=(0, 1)), view)) < 0.55 for other in views):
            patterns[f"stroke-{len(patterns)}"] = corners
            views.append(view)
    return patterns


PATTERNS = with_random_strokes(HAND_DRAWN, CLASS + 1)  # one stroke per user, by index
MAX_SESSIONS = len(PATTERNS) - 1  # the last pattern is the first visitor's
REFERENCES = [reference_view(points) for points in PATTERNS.values()]  # the model's view of each


def pattern_check() -> list[dict]:
    """For each user's pattern, its view a pixel off: likeness to its own and to the closest other."""
    rows = []
    for own, reference in enumerate(REFERENCES):
        shown = np.roll(reference, (1, -1), axis=(0, 1))
        scores = [likeness(shown, other) for other in REFERENCES]
        rows.append({"best": int(np.argmax(scores)), "own": scores[own],
                     "closest_other": max(r for j, r in enumerate(scores) if j != own)})
    return rows
