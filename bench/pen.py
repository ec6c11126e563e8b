"""Does pen normalisation help the model recognise drawings? k-NN agreement before and after.

    .venv/bin/python bench/pen.py                      # the default model, about a minute
    .venv/bin/python bench/pen.py --checkpoint checkpoints/tutorial.pt

Drawings are simulated three ways, each through ``vae.preprocess.to_mnist`` with the pen kept as
drawn (``pen=False``) and normalised (the default):
  thin / thick MNIST   test digits enlarged 10x (a 280 px canvas) and eroded or dilated there,
                       as if written with a finer or broader pen;
  font, thin / thick   the ten digits from the machine's TrueType fonts, at a random size and place
                       on a 280 px canvas, with no outline or a broad one.
For each, the share whose 5 nearest training digits (posterior means, all 60,000) hold a majority of
the right digit, the same among the 10,000 test digits, and the Draw page's verdict (8 voters, at
least 5 to name a digit): right, wrong or unsure. Also prints MNIST's own stroke widths, the range
``to_mnist`` moves a pen into (``vae.preprocess.MNIST_STROKE``).
"""

from __future__ import annotations

import argparse
import glob
import platform
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from tqdm import tqdm

from vae import latent, load_checkpoint, load_mnist
from vae.neighbours import DigitVote, cached_means, default_cache_dir
from vae.preprocess import stroke_width, to_mnist

CANVAS = 280
FONT_GLOBS = ("/usr/share/fonts/truetype/dejavu/*.ttf", "/usr/share/fonts/truetype/liberation/*.ttf")


def redrawn_mnist(images: np.ndarray, radius: float) -> list[np.ndarray]:
    """MNIST digits on a 280 px canvas, eroded (radius < 0) or dilated (> 0) by |radius| px there."""
    out = []
    for image in images:
        big = np.asarray(Image.fromarray(image).resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)) >= 128
        if radius > 0:
            pen = ndimage.distance_transform_edt(~big) <= radius
        else:
            pen = ndimage.distance_transform_edt(big) > -radius
        out.append((pen * 255).astype(np.uint8))
    return out


def font_digits(per_digit: int, thick: bool, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Digits rendered from every font found, at a random size (90-240 px) and place."""
    fonts = sorted(f for pattern in FONT_GLOBS for f in glob.glob(pattern))
    if not fonts:
        raise SystemExit("no TrueType fonts found under " + ", ".join(FONT_GLOBS))
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit in range(10):
        for _ in range(per_digit):
            size = int(rng.integers(90, 241))
            font = ImageFont.truetype(fonts[rng.integers(len(fonts))], size)
            canvas = Image.new("L", (CANVAS, CANVAS), 0)
            draw = ImageDraw.Draw(canvas)
            outline = max(2, size // 9) if thick else 0
            left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font, stroke_width=outline)
            x = rng.integers(-left, max(-left + 1, CANVAS - right))
            y = rng.integers(-top, max(-top + 1, CANVAS - bottom))
            draw.text((x, y), str(digit), fill=255, font=font, stroke_width=outline, stroke_fill=255)
            images.append(np.asarray(canvas))
            labels.append(digit)
    return images, np.array(labels)


def majority_agreement(vote: DigitVote, mu: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Share of latents whose k nearest reference latents hold a majority (more than half) of their label."""
    _, neighbours = vote.index.kneighbors(mu, n_neighbors=k)
    return float(((vote.labels[neighbours] == labels[:, None]).sum(axis=1) > k // 2).mean())


def verdicts(vote: DigitVote, mu: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Shares of right, wrong and unsure verdicts of the Draw page's vote."""
    digits = [vote.vote(m).digit for m in mu]
    right = np.mean([d == y for d, y in zip(digits, labels)])
    unsure = np.mean([d is None for d in digits])
    return float(right), float(1 - right - unsure), float(unsure)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/default.pt")
    p.add_argument("--digits", type=int, default=500, help="MNIST test digits per redrawn set")
    p.add_argument("--per-font-digit", type=int, default=50, help="font digits of each kind per set")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.checkpoint}")

    mnist = load_mnist()
    widths = [stroke_width(image) for image in mnist.train_images[:5000].numpy() / 255.0]
    print("MNIST training digits' stroke width (px in 28x28), 5/25/50/75/95th percentile:",
          " ".join(f"{w:.2f}" for w in np.percentile(widths, [5, 25, 50, 75, 95])))

    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model
    train_vote = DigitVote(cached_means(ckpt, mnist.train_images, default_cache_dir()),
                           mnist.train_labels.numpy())
    test_vote = DigitVote(latent.encode(model, mnist.test_images)[0], mnist.test_labels.numpy())

    pick = np.random.default_rng(0).choice(len(mnist.test_images), args.digits, replace=False)
    originals, original_labels = mnist.test_images.numpy()[pick], mnist.test_labels.numpy()[pick]
    sets = {"MNIST as is": ([im for im in originals], original_labels)}
    for name, radius in (("thin MNIST (-5 px)", -5), ("thick MNIST (+12 px)", 12), ("thicker MNIST (+24 px)", 24)):
        sets[name] = (redrawn_mnist(originals, radius), original_labels)
    sets["font, thin"] = font_digits(args.per_font_digit, thick=False, seed=1)
    sets["font, thick"] = font_digits(args.per_font_digit, thick=True, seed=2)

    print(f"\n{'drawings':24s} {'pen':>10s} {'n':>5s} {'width':>6s} {'5-NN train':>11s} {'5-NN test':>10s} "
          f"{'verdict right/wrong/unsure':>27s} {'ms':>5s}")
    for name, (images, labels) in tqdm(sets.items(), desc="sets", leave=False):
        for pen in (False, True):
            start = time.perf_counter()
            inputs = np.stack([to_mnist(image, ink="light", pen=pen) for image in images])
            per_image_ms = (time.perf_counter() - start) / len(images) * 1000
            mu, _ = latent.encode(model, inputs)
            right, wrong, unsure = verdicts(train_vote, mu, labels)
            print(f"{name:24s} {'normalised' if pen else 'as drawn':>10s} {len(images):5d} "
                  f"{np.median([stroke_width(x) for x in inputs]):6.2f} "
                  f"{majority_agreement(train_vote, mu, labels):11.1%} "
                  f"{majority_agreement(test_vote, mu, labels):10.1%} "
                  f"{right:9.1%} {wrong:8.1%} {unsure:8.1%} {per_image_ms:5.1f}")


if __name__ == "__main__":
    main()
